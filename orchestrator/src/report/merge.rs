//! `orchestrator merge-reports`: the JSON reports of a run's shards (`run --shard K/N`) put back
//! together into the report one unsharded run would have given, in any format.
//!
//! Shards must all carry the same shard count and run id, and no shard may come twice: those
//! are mistakes in the CI set-up, refused with the fix named. A missing shard is not a mistake
//! of the reports but of the run: the merged report says which one is missing and is
//! incomplete, as a validator that did not finish makes a run incomplete.

use super::{Attempt, Report, ReportFinding, Skip, Status, Suppressed, ValidatorReport};
use crate::shard::Shard;
use protocol::{Artifact, Finding, Severity};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why reports cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("{path}: cannot be read ({error}); check the path")]
    Unreadable { path: String, error: String },
    #[error("{path}: not an orchestrator JSON report ({detail}); pass the files written by `run --shard K/N --format json`")]
    NotAReport { path: String, detail: String },
    #[error(
        "{path}: the report of an unsharded run; only reports of `run --shard K/N` are merged"
    )]
    NotSharded { path: String },
    #[error("{path}: shard {index} of {count}, but {first} is a shard of {first_count}; merge the shards of one run")]
    Count {
        path: String,
        index: u32,
        count: u32,
        first: String,
        first_count: u32,
    },
    #[error("{path}: run id `{run_id}`, but {first} has `{first_id}`; merge the shards of one run (see --run-id)")]
    RunId {
        path: String,
        run_id: String,
        first: String,
        first_id: String,
    },
    #[error("{path}: shard {index} again (also {other}); pass each shard's report once")]
    Duplicate {
        path: String,
        index: u32,
        other: String,
    },
}

/// Reads the shard reports at `paths` and merges them, with `root` as the merged report's root
/// (where its findings' files are, for fingerprints).
pub fn merge_files(paths: &[PathBuf], root: PathBuf) -> Result<Report, MergeError> {
    let mut parts = Vec::with_capacity(paths.len());
    for path in paths {
        parts.push((path.display().to_string(), read(path)?));
    }
    merge(parts, root)
}

/// Merges parsed shard reports, each with the name it is known by in messages.
pub fn merge(parts: Vec<(String, Parsed)>, root: PathBuf) -> Result<Report, MergeError> {
    let mut seen: Vec<(u32, String)> = Vec::new();
    let mut first: Option<(String, Shard)> = None;
    for (name, part) in &parts {
        let shard = &part.shard;
        if let Some((first_name, expected)) = &first {
            if shard.count != expected.count {
                return Err(MergeError::Count {
                    path: name.clone(),
                    index: shard.index,
                    count: shard.count,
                    first: first_name.clone(),
                    first_count: expected.count,
                });
            }
            if shard.run_id != expected.run_id {
                return Err(MergeError::RunId {
                    path: name.clone(),
                    run_id: shard.run_id.clone(),
                    first: first_name.clone(),
                    first_id: expected.run_id.clone(),
                });
            }
        } else {
            first = Some((name.clone(), shard.clone()));
        }
        if let Some((_, other)) = seen.iter().find(|(i, _)| *i == shard.index) {
            return Err(MergeError::Duplicate {
                path: name.clone(),
                index: shard.index,
                other: other.clone(),
            });
        }
        seen.push((shard.index, name.clone()));
    }
    let count = first.as_ref().map_or(0, |(_, s)| s.count);
    let mut report = Report::new(root, &[], Vec::new());
    report.missing_shards = (1..=count)
        .filter(|k| !seen.iter().any(|(i, _)| i == k))
        .collect();
    for k in &report.missing_shards {
        report.warnings.push(format!(
            "shard {k} of {count} is missing: the files it would have checked were not \
             checked, and the validators it would have run are not in this report"
        ));
    }
    let mut by_elapsed = Duration::ZERO;
    for (_, part) in parts {
        let Parsed {
            validators,
            findings,
            warnings,
            fixed_files,
            baselines_written,
            interrupted,
            elapsed,
            critical_path,
            suppressed,
            shard: _,
        } = part;
        for v in validators {
            match report.validators.iter_mut().find(|m| m.name == v.name) {
                Some(merged) => combine(merged, v),
                None => report.validators.push(v),
            }
        }
        report.findings.extend(findings);
        for w in warnings {
            if !report.warnings.contains(&w) {
                report.warnings.push(w);
            }
        }
        report.fixed_files.extend(fixed_files);
        report.baselines_written.extend(baselines_written);
        if report.interrupted.is_none() {
            report.interrupted = interrupted;
        }
        if elapsed >= by_elapsed {
            by_elapsed = elapsed;
            report.critical_path = critical_path;
        }
        for s in suppressed {
            match report.suppressed.iter_mut().find(|m| m.by == s.by) {
                Some(merged) => merged.count += s.count,
                None => report.suppressed.push(s),
            }
        }
    }
    report.elapsed = by_elapsed;
    // A `project` validator appears on every shard, run on one and skipped on the others.
    for v in &mut report.validators {
        if v.status == Status::Skipped(Skip::OtherShard) && report.missing_shards.is_empty() {
            v.message = "it checks the whole project, and no shard ran it".into();
        }
    }
    report.validators.sort_by(|a, b| a.name.cmp(&b.name));
    report.fixed_files.sort();
    report.fixed_files.dedup();
    report.sort();
    Ok(report)
}

/// Folds one shard's part of a validator into the merged one: counts add up, the worst status
/// wins, and a shard that had nothing to do (no files, or a `project` validator run elsewhere)
/// does not count.
fn combine(merged: &mut ValidatorReport, part: ValidatorReport) {
    let idle = |s: Status| matches!(s, Status::Skipped(Skip::NoFiles | Skip::OtherShard));
    if idle(part.status) && !idle(merged.status) {
        return;
    }
    if idle(merged.status) {
        // Keep what the idle parts summed so far (nothing), take the working part whole.
        let files = merged.files;
        *merged = part;
        merged.files += files;
        return;
    }
    merged.status = worse(merged.status, part.status);
    merged.duration = merged.duration.max(part.duration);
    merged.files += part.files;
    merged.cached_files += part.cached_files;
    merged.dependents = match (merged.dependents, part.dependents) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    merged.checked.extend(part.checked);
    merged.findings += part.findings;
    merged.partial |= part.partial;
    if !part.message.is_empty() && merged.message != part.message {
        if merged.message.is_empty() {
            merged.message = part.message;
        } else {
            merged.message = format!("{}; {}", merged.message, part.message);
        }
    }
    merged.stderr_tail = merged.stderr_tail.take().or(part.stderr_tail);
    merged.version = merged.version.take().or(part.version);
    merged.tool = merged.tool.take().or(part.tool);
    merged.dimension = merged.dimension.take().or(part.dimension);
    // Attempt by attempt: the first attempts of every shard are the run's first attempt.
    for (i, attempt) in part.attempts.into_iter().enumerate() {
        match merged.attempts.get_mut(i) {
            Some(m) => {
                m.status = worse(m.status, attempt.status);
                m.duration = m.duration.max(attempt.duration);
                if m.message.is_empty() {
                    m.message = attempt.message;
                }
            }
            None => merged.attempts.push(attempt),
        }
    }
}

/// The status that tells more: any incomplete one over a complete one, failed over passed.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        _ if !s.completed() => 4,
        Status::Failed => 3,
        Status::Skipped(skip) if !skip.harmless() => 2,
        Status::Passed => 1,
        _ => 0,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// One shard's report, as read back.
#[derive(Debug)]
pub struct Parsed {
    validators: Vec<ValidatorReport>,
    findings: Vec<ReportFinding>,
    warnings: Vec<String>,
    fixed_files: Vec<String>,
    baselines_written: Vec<String>,
    interrupted: Option<crate::interrupt::Signal>,
    elapsed: Duration,
    critical_path: Vec<String>,
    suppressed: Vec<Suppressed>,
    shard: Shard,
}

/// Reads one shard's JSON report.
pub fn read(path: &Path) -> Result<Parsed, MergeError> {
    let name = path.display().to_string();
    let text = std::fs::read(path).map_err(|e| MergeError::Unreadable {
        path: name.clone(),
        error: e.to_string(),
    })?;
    parse(&text).map_err(|problem| match problem {
        Problem::NotSharded => MergeError::NotSharded { path: name },
        Problem::Invalid(detail) => MergeError::NotAReport { path: name, detail },
    })
}

enum Problem {
    NotSharded,
    Invalid(String),
}

fn parse(text: &[u8]) -> Result<Parsed, Problem> {
    let json: JsonReport =
        serde_json::from_slice(text).map_err(|e| Problem::Invalid(e.to_string()))?;
    if json.schema_version != super::json::SCHEMA_VERSION {
        return Err(Problem::Invalid(format!(
            "schema version {}, this orchestrator writes {}",
            json.schema_version,
            super::json::SCHEMA_VERSION
        )));
    }
    let shard = json.shard.ok_or(Problem::NotSharded)?;
    let invalid = |what: String| Problem::Invalid(what);
    let validators = json
        .validators
        .into_iter()
        .map(|v| {
            let status = Status::named(&v.status, v.skip_reason.as_deref())
                .ok_or_else(|| invalid(format!("unknown status `{}`", v.status)))?;
            // An attempt is skipped for the validator's reason.
            let attempts = v
                .attempts
                .into_iter()
                .map(|a| {
                    Ok(Attempt {
                        status: Status::named(&a.status, v.skip_reason.as_deref())
                            .ok_or_else(|| invalid(format!("unknown status `{}`", a.status)))?,
                        message: a.message,
                        duration: Duration::from_millis(a.duration_ms),
                    })
                })
                .collect::<Result<_, Problem>>()?;
            Ok(ValidatorReport {
                name: v.name,
                dimension: v.dimension,
                version: v.version,
                tool: v.tool,
                status,
                duration: Duration::from_millis(v.duration_ms),
                files: v.files,
                cached_files: v.cached_files,
                dependents: v.dependents,
                checked: v.checked.unwrap_or_default(),
                findings: v.findings,
                message: v.message,
                partial: v.partial,
                stderr_tail: v.stderr_tail,
                attempts,
            })
        })
        .collect::<Result<_, Problem>>()?;
    let findings = json
        .findings
        .into_iter()
        .map(report_finding)
        .collect::<Result<_, Problem>>()?;
    let interrupted = match json.interrupted {
        None => None,
        Some(name) => Some(
            crate::interrupt::Signal::named(&name)
                .ok_or_else(|| invalid(format!("unknown signal `{name}`")))?,
        ),
    };
    Ok(Parsed {
        validators,
        findings,
        warnings: json.warnings,
        fixed_files: json.fixed_files,
        baselines_written: json.baselines_written,
        interrupted,
        elapsed: Duration::from_millis(json.duration_ms),
        critical_path: json.critical_path,
        suppressed: json
            .suppressed
            .into_iter()
            .map(|s| Suppressed {
                by: s.by,
                count: s.count,
            })
            .collect(),
        shard: Shard {
            index: shard.index,
            count: shard.count,
            run_id: shard.run_id,
        },
    })
}

#[derive(Deserialize)]
struct JsonReport {
    schema_version: u32,
    validators: Vec<JsonValidator>,
    findings: Vec<JsonFinding>,
    warnings: Vec<String>,
    fixed_files: Vec<String>,
    baselines_written: Vec<String>,
    interrupted: Option<String>,
    duration_ms: u64,
    critical_path: Vec<String>,
    suppressed: Vec<JsonSuppressed>,
    shard: Option<JsonShard>,
}

#[derive(Deserialize)]
struct JsonShard {
    index: u32,
    count: u32,
    run_id: String,
}

#[derive(Deserialize)]
struct JsonSuppressed {
    by: String,
    count: usize,
}

#[derive(Deserialize)]
struct JsonValidator {
    name: String,
    dimension: Option<String>,
    version: Option<String>,
    tool: Option<String>,
    status: String,
    skip_reason: Option<String>,
    duration_ms: u64,
    files: u32,
    cached_files: u32,
    dependents: Option<u32>,
    findings: u32,
    partial: bool,
    message: String,
    stderr_tail: Option<String>,
    attempts: Vec<JsonAttempt>,
    checked: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct JsonAttempt {
    status: String,
    message: String,
    duration_ms: u64,
}

/// A finding as a JSON report has it.
fn report_finding(f: JsonFinding) -> Result<ReportFinding, Problem> {
    let severity = Severity::named(&f.severity)
        .ok_or_else(|| Problem::Invalid(format!("unknown severity `{}`", f.severity)))?;
    Ok(ReportFinding {
        validator: f.validator,
        finding: Finding {
            path: f.path,
            line: f.line,
            column: f.column,
            end_line: f.end_line,
            end_column: f.end_column,
            rule: f.rule,
            severity,
            message: f.message,
            help_url: f.help_url,
            fix: None,
            artifacts: f
                .artifacts
                .into_iter()
                .map(|a| Artifact {
                    kind: a.kind,
                    path: a.path,
                })
                .collect(),
        },
    })
}

/// The findings of a JSON report's findings array; `None` for anything else.
pub fn findings_array(array: &[u8]) -> Option<Vec<ReportFinding>> {
    let findings: Vec<JsonFinding> = serde_json::from_slice(array).ok()?;
    findings
        .into_iter()
        .map(|f| report_finding(f).ok())
        .collect()
}

#[derive(Deserialize)]
struct JsonFinding {
    validator: String,
    path: String,
    line: u32,
    column: u32,
    end_line: Option<u32>,
    end_column: Option<u32>,
    rule: String,
    severity: String,
    message: String,
    help_url: Option<String>,
    artifacts: Vec<JsonArtifact>,
}

#[derive(Deserialize)]
struct JsonArtifact {
    kind: String,
    path: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(status: Status, files: u32, findings: u32) -> ValidatorReport {
        ValidatorReport {
            status,
            files,
            findings,
            checked: (0..files).map(|i| format!("f{i}.py")).collect(),
            attempts: vec![Attempt {
                status,
                message: String::new(),
                duration: Duration::from_millis(u64::from(files)),
            }],
            ..ValidatorReport::new("v")
        }
    }

    #[test]
    fn parts_add_up_and_the_worst_status_wins() {
        let mut merged = part(Status::Passed, 3, 0);
        combine(&mut merged, part(Status::Failed, 2, 4));
        combine(&mut merged, part(Status::Skipped(Skip::NoFiles), 0, 0));
        assert_eq!(merged.status, Status::Failed);
        assert_eq!((merged.files, merged.findings), (5, 4));
        assert_eq!(merged.checked.len(), 5);
        assert_eq!(
            merged.attempts.len(),
            1,
            "the first attempts of every shard are one"
        );
        assert_eq!(merged.attempts[0].status, Status::Failed);
        assert_eq!(merged.duration, Duration::ZERO.max(merged.duration));
        combine(&mut merged, part(Status::TimedOut, 1, 0));
        assert_eq!(
            merged.status,
            Status::TimedOut,
            "incomplete wins over failed"
        );
    }

    #[test]
    fn a_shard_with_nothing_to_do_does_not_count() {
        let mut merged = part(Status::Skipped(Skip::OtherShard), 0, 0);
        combine(&mut merged, part(Status::Passed, 4, 0));
        combine(&mut merged, part(Status::Skipped(Skip::OtherShard), 0, 0));
        assert_eq!(merged.status, Status::Passed);
        assert_eq!(merged.files, 4);
        assert_eq!(
            worse(Status::Passed, Status::Skipped(Skip::NoFiles)),
            Status::Passed
        );
        let open = Status::Skipped(Skip::CircuitOpen);
        assert_eq!(
            worse(Status::Failed, open),
            open,
            "an open breaker is incomplete"
        );
    }

    #[test]
    fn a_report_that_is_not_a_shard_or_not_json_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let garbage = write("garbage.json", "not json");
        let err = merge_files(&[garbage], PathBuf::new()).expect_err("garbage");
        assert!(
            err.to_string().contains("not an orchestrator JSON report"),
            "{err}"
        );
        let missing = dir.path().join("absent.json");
        let err = merge_files(&[missing], PathBuf::new()).expect_err("absent");
        assert!(err.to_string().contains("cannot be read"), "{err}");
        let unsharded = write(
            "whole.json",
            &super::super::json::render(&Report::new(
                PathBuf::new(),
                &["v".to_owned()],
                Vec::new(),
            )),
        );
        let err = merge_files(&[unsharded], PathBuf::new()).expect_err("unsharded");
        assert!(
            err.to_string().contains("the report of an unsharded run"),
            "{err}"
        );
    }
}
