//! SARIF 2.1.0, the format GitHub code scanning (and most security dashboards) read.
//!
//! One run per validator that started, or that was held back by another's failure or its own
//! breaker: a run whose invocation says it did not succeed keeps a reader from concluding
//! that its missing alerts were fixed. Validators skipped for having nothing to check have no
//! run. Positions are 1-based, columns in Unicode code points (`columnKind`), paths relative
//! to `%SRCROOT%`, the checkout. The output must stay within GitHub's upload limits
//! (<https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning>):
//! at most [`MAX_RESULTS`] results a run and [`MAX_GZIPPED`] bytes compressed; past them the
//! least severe results are dropped, and the run and the caller are told.

use super::{Rendered, Report, ReportFinding, Status, ValidatorReport};
use protocol::Severity;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::io::Write;

/// GitHub's limit on results in one run.
pub const MAX_RESULTS: usize = 25_000;
/// GitHub's limit on an upload, gzip-compressed.
pub const MAX_GZIPPED: usize = 10 * 1024 * 1024;

/// The SARIF log, pretty-printed, and a warning for each run whose results were cut.
pub fn render(report: &Report) -> Rendered {
    let prints = report.fingerprints();
    let mut cap = MAX_RESULTS;
    loop {
        let mut warnings = Vec::new();
        let runs: Vec<Value> = report
            .validators
            .iter()
            .filter(|v| has_run(v.status))
            .map(|v| run(report, v, prints, cap, &mut warnings))
            .collect();
        let log = json!({
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": runs,
        });
        let text = serde_json::to_string_pretty(&log).expect("JSON values serialise") + "\n";
        if cap == 0 || text.len() <= MAX_GZIPPED || gzipped_len(&text) <= MAX_GZIPPED {
            return Rendered { text, warnings };
        }
        // Over the size limit: halve what each run may hold until it fits.
        cap /= 2;
    }
}

fn has_run(status: Status) -> bool {
    match status {
        Status::Skipped(skip) => !skip.harmless(),
        _ => true,
    }
}

fn run(
    report: &Report,
    v: &ValidatorReport,
    prints: &[String],
    cap: usize,
    warnings: &mut Vec<String>,
) -> Value {
    // (place in the report, finding, fingerprint)
    let mut mine: Vec<(usize, &ReportFinding, &String)> = report
        .findings
        .iter()
        .zip(prints)
        .enumerate()
        .filter(|(_, (f, _))| f.validator == v.name)
        .map(|(i, (f, print))| (i, f, print))
        .collect();
    let rules = Rules::of(&mine);
    let mut notifications = Vec::new();
    if !v.status.completed() || matches!(v.status, Status::Skipped(_)) {
        notifications.push(json!({
            "level": if v.status.completed() { "note" } else { "error" },
            "message": { "text": not_run_message(v) },
        }));
    }
    if mine.len() > cap {
        let dropped = mine.len() - cap;
        // The most severe first; within a severity, the report's order.
        mine.sort_by_key(|(i, f, _)| (f.finding.severity, *i));
        mine.truncate(cap);
        mine.sort_by_key(|(i, _, _)| *i);
        let text = format!(
            "{}: {dropped} of its least severe results were left out of the SARIF log to stay \
             within GitHub's limits; the JSON report has them all",
            v.name
        );
        notifications.push(json!({ "level": "warning", "message": { "text": text } }));
        warnings.push(text);
    }
    let results: Vec<Value> = mine
        .iter()
        .map(|(_, f, print)| result(f, print, &rules))
        .collect();
    let (name, version) = driver(v);
    let mut driver = json!({
        "name": name,
        "fullName": format!("orchestrator validator-{}", v.name),
        "rules": rules.descriptors(v),
    });
    if let Some(version) = version {
        driver["version"] = json!(version);
    }
    json!({
        "tool": { "driver": driver },
        "automationDetails": { "id": format!("orchestrator/{}/", v.name) },
        "invocations": [{
            "executionSuccessful": v.status.completed(),
            "toolExecutionNotifications": notifications,
        }],
        "columnKind": "unicodeCodePoints",
        "results": results,
    })
}

/// The tool's name and version when the validator wraps one (GitHub shows them), else the
/// validator's own.
fn driver(v: &ValidatorReport) -> (String, Option<String>) {
    match v.tool.as_deref().and_then(|t| t.split_once(' ')) {
        Some((name, version)) => (name.to_owned(), Some(version.to_owned())),
        None => (v.name.clone(), v.version.clone()),
    }
}

fn not_run_message(v: &ValidatorReport) -> String {
    let status = match v.status {
        Status::Skipped(skip) => format!("skipped ({})", skip.as_str()),
        other => other.as_str().replace('_', " "),
    };
    if v.message.is_empty() {
        format!("{}: {status}", v.name)
    } else {
        format!("{}: {status}: {}", v.name, v.message)
    }
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "note",
    }
}

fn result(f: &ReportFinding, print: &str, rules: &Rules) -> Value {
    let finding = &f.finding;
    let mut region = json!({ "startLine": finding.line, "startColumn": finding.column });
    if let Some(end) = finding.end_line {
        region["endLine"] = json!(end);
    }
    if let Some(end) = finding.end_column {
        region["endColumn"] = json!(end);
    }
    let text = if finding.message.trim().is_empty() {
        finding.rule.clone()
    } else {
        finding.message.clone()
    };
    json!({
        "ruleId": finding.rule,
        "ruleIndex": rules.index(&finding.rule),
        "level": level(finding.severity),
        "message": { "text": text },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": { "uri": uri(&finding.path), "uriBaseId": "%SRCROOT%" },
                "region": region,
            },
        }],
        "partialFingerprints": { "primaryLocationLineHash": print },
    })
}

/// A root-relative path as a URI reference: every byte outside RFC 3986's unreserved set
/// and `/` percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The rules a run's results refer to, each described from what is known of it.
struct Rules<'a> {
    /// Rule id → its first finding (the report's order) and its most severe level.
    by_id: BTreeMap<&'a str, (&'a ReportFinding, Severity)>,
    /// Rule id → its place in `by_id`'s order, which is the order of `rules`.
    index: HashMap<&'a str, usize>,
}

impl<'a> Rules<'a> {
    fn of(findings: &[(usize, &'a ReportFinding, &String)]) -> Rules<'a> {
        let mut by_id: BTreeMap<&str, (&ReportFinding, Severity)> = BTreeMap::new();
        for (_, f, _) in findings {
            by_id
                .entry(f.finding.rule.as_str())
                .and_modify(|(_, worst)| *worst = (*worst).min(f.finding.severity))
                .or_insert((f, f.finding.severity));
        }
        let index = by_id.keys().enumerate().map(|(i, id)| (*id, i)).collect();
        Rules { by_id, index }
    }

    fn index(&self, id: &str) -> usize {
        self.index[id]
    }

    /// `reportingDescriptor`s. Validators send no rule catalogue, so a rule is described by
    /// its id and its first message; `security-severity` (GitHub's 0–10 scale) is given for
    /// validators of the security dimension, from the worst severity they reported it with.
    fn descriptors(&self, v: &ValidatorReport) -> Vec<Value> {
        let security = v.dimension.as_deref() == Some("security");
        self.by_id
            .iter()
            .map(|(id, (first, worst))| {
                let mut rule = json!({
                    "id": id,
                    "shortDescription": { "text": format!("{} {id}", v.name) },
                    "fullDescription": { "text": first.finding.message },
                    "defaultConfiguration": { "level": level(*worst) },
                });
                if let Some(url) = &first.finding.help_url {
                    rule["helpUri"] = json!(url);
                    rule["help"] = json!({ "text": format!("{id}: see {url}") });
                } else {
                    rule["help"] = json!({ "text": first.finding.message });
                }
                if security {
                    let score = match worst {
                        Severity::Error => "8.0",
                        Severity::Warning => "5.0",
                        Severity::Info => "2.0",
                    };
                    rule["properties"] =
                        json!({ "security-severity": score, "tags": ["security"] });
                }
                rule
            })
            .collect()
    }
}

fn gzipped_len(text: &str) -> usize {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_or(usize::MAX, |bytes| bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ValidatorReport;
    use protocol::Finding;

    fn report_with(n: usize) -> Report {
        let mut report = Report::new(std::path::PathBuf::new(), &["lint".into()], vec![]);
        report.validators[0].status = Status::Failed;
        for i in 0..n {
            let severity = if i % 2 == 0 {
                Severity::Info
            } else {
                Severity::Error
            };
            report.findings.push(ReportFinding {
                validator: "lint".into(),
                finding: Finding::new("a b.py", 1 + i as u32, 1, "R1", severity, "m"),
            });
        }
        report
    }

    #[test]
    fn paths_are_percent_encoded_uri_references() {
        assert_eq!(uri("src/a b/ü.py"), "src/a%20b/%C3%BC.py");
        assert_eq!(uri("a-b_c.~d/e.py"), "a-b_c.~d/e.py");
    }

    #[test]
    fn a_run_over_the_result_limit_keeps_the_most_severe_and_says_so() {
        let report = report_with(MAX_RESULTS + 10);
        let rendered = render(&report);
        let log: Value = serde_json::from_str(&rendered.text).expect("valid JSON");
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), MAX_RESULTS);
        let errors = results.iter().filter(|r| r["level"] == "error").count();
        assert_eq!(errors, (MAX_RESULTS + 10) / 2, "every error is kept");
        assert_eq!(rendered.warnings.len(), 1, "{:?}", rendered.warnings);
        assert!(rendered.warnings[0].contains("10 of its least severe results"));
    }

    #[test]
    fn a_log_over_the_gzipped_size_limit_is_cut_until_it_fits() {
        // Messages of hexadecimal noise compress to about half: 20,000 of 1,280 characters
        // are over 10 MB gzipped, half of them under.
        let mut report = report_with(20_000);
        for (i, f) in report.findings.iter_mut().enumerate() {
            let mut hasher = blake3::Hasher::new();
            hasher.update(&i.to_le_bytes());
            let mut noise = vec![0u8; 640];
            hasher.finalize_xof().fill(&mut noise);
            f.finding.message = noise.iter().map(|b| format!("{b:02x}")).collect();
        }
        let rendered = render(&report);
        assert!(gzipped_len(&rendered.text) <= MAX_GZIPPED);
        let log: Value = serde_json::from_str(&rendered.text).expect("valid JSON");
        let results = log["runs"][0]["results"].as_array().expect("results");
        assert_eq!(results.len(), MAX_RESULTS / 2);
        assert!(
            rendered.warnings[0].contains("7500 of its least severe results"),
            "{:?}",
            rendered.warnings
        );
    }

    #[test]
    fn validators_with_nothing_to_check_have_no_run_and_incomplete_ones_are_unsuccessful() {
        let mut report = report_with(0);
        report.validators.push(ValidatorReport::new("idle"));
        report.validators.push(ValidatorReport {
            status: Status::TimedOut,
            message: "stopped after 5s".into(),
            ..ValidatorReport::new("slow")
        });
        let log: Value = serde_json::from_str(&render(&report).text).expect("valid JSON");
        let runs = log["runs"].as_array().expect("runs");
        assert_eq!(runs.len(), 2);
        let slow = &runs[1]["invocations"][0];
        assert_eq!(slow["executionSuccessful"], false);
        assert_eq!(
            slow["toolExecutionNotifications"][0]["message"]["text"],
            "slow: timed out: stopped after 5s"
        );
    }
}
