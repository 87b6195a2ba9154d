//! GitLab Code Quality JSON, shown in merge-request widgets and diffs
//! (<https://docs.gitlab.com/ci/testing/code_quality/#code-quality-report-format>).
//!
//! An array of issues, each with a description, the check's name, a fingerprint unique to the
//! issue (GitLab tells new from fixed issues by it, so it is the fingerprint that survives
//! unrelated edits), a severity and a location. Security findings of severity error are
//! `critical`; other errors `major`, warnings `minor`, the rest `info`. A validator that did not
//! complete has no place in this format: the other report of the job says so.

use super::Report;
use protocol::Severity;
use serde::Serialize;

#[derive(Serialize)]
struct Issue<'a> {
    description: String,
    check_name: String,
    fingerprint: String,
    severity: &'static str,
    location: Location<'a>,
}

#[derive(Serialize)]
struct Location<'a> {
    path: &'a str,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<u32>,
}

/// The Code Quality report, pretty-printed.
pub fn render(report: &Report) -> String {
    let security: Vec<&str> = report
        .validators
        .iter()
        .filter(|v| v.dimension.as_deref() == Some("security"))
        .map(|v| v.name.as_str())
        .collect();
    let issues: Vec<Issue> = report
        .findings
        .iter()
        .zip(report.fingerprints())
        .map(|(f, print)| {
            let g = &f.finding;
            let severity = match g.severity {
                Severity::Error if security.contains(&f.validator.as_str()) => "critical",
                Severity::Error => "major",
                Severity::Warning => "minor",
                Severity::Info => "info",
            };
            Issue {
                description: format!("{}: {}", g.rule, g.message),
                check_name: format!("{}/{}", f.validator, g.rule),
                // GitLab's own examples use MD5-length fingerprints; the validator is part of
                // the hash already, the occurrence keeps repeated issues apart.
                fingerprint: print.replace(':', "-"),
                severity,
                location: Location {
                    path: &g.path,
                    lines: Lines {
                        begin: g.line,
                        end: g.end_line.filter(|end| *end != g.line),
                    },
                },
            }
        })
        .collect();
    serde_json::to_string_pretty(&issues).expect("issues serialise") + "\n"
}
