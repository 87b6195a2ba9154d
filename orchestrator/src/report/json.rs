//! The JSON report, version [`SCHEMA_VERSION`], documented in `docs/report-schema.md`.
//!
//! Dedicated serialisable types keep the schema explicit: renaming a field of the report's
//! internal types cannot silently change what scripts read.

use super::{Report, ReportFinding, Status, ValidatorReport};
use serde::Serialize;
use std::io::Write;

/// Bumped on any change that could break a reader: a field removed, renamed or retyped.
/// Adding a field is not a breaking change.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Serialize)]
struct JsonReport<'a> {
    schema_version: u32,
    status: &'static str,
    validators: Vec<JsonValidator<'a>>,
    findings: Findings<'a>,
    warnings: &'a [String],
    fixed_files: &'a [String],
    baselines_written: &'a [String],
    interrupted: Option<&'static str>,
    duration_ms: u64,
    critical_path: &'a [String],
    suppressed: Vec<JsonSuppressed<'a>>,
    /// Only in a sharded run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<JsonShard<'a>>,
    /// Only in a merged report with shards missing.
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    missing_shards: &'a [u32],
}

#[derive(Serialize)]
struct JsonShard<'a> {
    index: u32,
    count: u32,
    run_id: &'a str,
}

#[derive(Serialize)]
struct JsonSuppressed<'a> {
    by: &'a str,
    count: usize,
}

#[derive(Serialize)]
struct JsonValidator<'a> {
    name: &'a str,
    dimension: Option<&'a str>,
    version: Option<&'a str>,
    tool: Option<&'a str>,
    status: &'static str,
    skip_reason: Option<&'static str>,
    duration_ms: u64,
    files: u32,
    files_done: u32,
    cached_files: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependents: Option<u32>,
    findings: u32,
    partial: bool,
    message: &'a str,
    stderr_tail: Option<&'a str>,
    attempts: Vec<JsonAttempt<'a>>,
    /// Only in a sharded run's report: the files whose results arrived, which a merged
    /// report's JUnit cases need.
    #[serde(skip_serializing_if = "Option::is_none")]
    checked: Option<&'a [String]>,
}

#[derive(Serialize)]
struct JsonAttempt<'a> {
    status: &'static str,
    message: &'a str,
    duration_ms: u64,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    validator: &'a str,
    path: &'a str,
    line: u32,
    column: u32,
    end_line: Option<u32>,
    end_column: Option<u32>,
    rule: &'a str,
    severity: &'static str,
    message: &'a str,
    help_url: Option<&'a str>,
    artifacts: Vec<JsonArtifact<'a>>,
}

#[derive(Serialize)]
struct JsonArtifact<'a> {
    kind: &'a str,
    path: &'a str,
}

/// The report as pretty-printed JSON, ending in a newline.
/// The findings, serialised one by one as they are written: a large report is not held twice.
struct Findings<'a>(&'a [ReportFinding]);

impl Serialize for Findings<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(finding))
    }
}

pub fn render(report: &Report) -> String {
    let mut text = Vec::new();
    write(report, &mut text).expect("writing to memory never fails");
    String::from_utf8(text).expect("serde_json writes UTF-8")
}

/// [`render`] straight into `out`, for reports of tens of megabytes.
pub fn write(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    let mut blocks = Blocks {
        block: Vec::with_capacity(BLOCK),
        out,
    };
    serde_json::to_writer_pretty(&mut blocks, &document(report)).map_err(std::io::Error::from)?;
    blocks.write_all(b"\n")?;
    blocks.flush()
}

fn document(report: &Report) -> JsonReport<'_> {
    JsonReport {
        schema_version: SCHEMA_VERSION,
        status: report.status().as_str(),
        validators: report
            .validators
            .iter()
            .map(|v| validator(v, report.shard.is_some()))
            .collect(),
        findings: Findings(&report.findings),
        warnings: &report.warnings,
        fixed_files: &report.fixed_files,
        baselines_written: &report.baselines_written,
        interrupted: report.interrupted.map(|s| s.name),
        duration_ms: millis(report.elapsed),
        critical_path: &report.critical_path,
        suppressed: report
            .suppressed
            .iter()
            .map(|s| JsonSuppressed {
                by: &s.by,
                count: s.count,
            })
            .collect(),
        missing_shards: &report.missing_shards,
        shard: report.shard.as_ref().map(|s| JsonShard {
            index: s.index,
            count: s.count,
            run_id: &s.run_id,
        }),
    }
}

/// The size of the blocks [`Blocks`] hands on.
const BLOCK: usize = 256 * 1024;

/// Gathers serde_json's many small writes (a key, a colon, an indent) into blocks. Its own type
/// lets each write compile to an append; through `dyn Write` each was a call, and they were a
/// third of a large report's cost.
struct Blocks<'a> {
    block: Vec<u8>,
    out: &'a mut dyn Write,
}

impl Blocks<'_> {
    fn hand_on(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.block)?;
        self.block.clear();
        Ok(())
    }
}

impl Write for Blocks<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.block.len() + buf.len() > BLOCK {
            self.hand_on()?;
        }
        self.block.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_on()?;
        self.out.flush()
    }
}

fn validator(v: &ValidatorReport, sharded: bool) -> JsonValidator<'_> {
    JsonValidator {
        name: &v.name,
        dimension: v.dimension.as_deref(),
        version: v.version.as_deref(),
        tool: v.tool.as_deref(),
        status: v.status.as_str(),
        skip_reason: match v.status {
            Status::Skipped(skip) => Some(skip.as_str()),
            _ => None,
        },
        duration_ms: millis(v.duration),
        files: v.files,
        files_done: v.files_done(),
        cached_files: v.cached_files,
        dependents: v.dependents,
        findings: v.findings,
        partial: v.partial,
        message: &v.message,
        stderr_tail: v.stderr_tail.as_deref(),
        attempts: v
            .attempts
            .iter()
            .map(|a| JsonAttempt {
                status: a.status.as_str(),
                message: &a.message,
                duration_ms: millis(a.duration),
            })
            .collect(),
        checked: sharded.then_some(v.checked.as_slice()),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn finding(f: &ReportFinding) -> JsonFinding<'_> {
    JsonFinding {
        validator: &f.validator,
        path: &f.finding.path,
        line: f.finding.line,
        column: f.finding.column,
        end_line: f.finding.end_line,
        end_column: f.finding.end_column,
        rule: &f.finding.rule,
        severity: f.finding.severity.as_str(),
        message: &f.finding.message,
        help_url: f.finding.help_url.as_deref(),
        artifacts: f
            .finding
            .artifacts
            .iter()
            .map(|a| JsonArtifact {
                kind: &a.kind,
                path: &a.path,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportFinding;
    use protocol::{Finding, Severity};

    #[test]
    fn a_report_of_many_blocks_is_the_json_serde_writes() {
        let mut report = Report::new("/r".into(), &["lint".to_owned()], Vec::new());
        for i in 0..6000 {
            let message = format!("line {i}: a \"quoted\" message\twith\\escapes é");
            report.findings.push(ReportFinding {
                validator: "lint".into(),
                finding: Finding::new(
                    format!("pkg/m{}.py", i % 97),
                    i,
                    1,
                    "R1",
                    Severity::Error,
                    message,
                ),
            });
        }
        let written = render(&report);
        assert!(written.len() > 3 * BLOCK, "{} bytes", written.len());
        let expected = serde_json::to_string_pretty(&document(&report)).expect("serialises") + "\n";
        assert!(written == expected, "the blocks changed the text");
    }
}
