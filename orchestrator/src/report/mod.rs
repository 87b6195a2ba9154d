//! The outcome of a run, and its renderings.
//!
//! A [`Report`] is built by the dispatcher from executor events and is the only input of the
//! renderers ([`human`], [`json`]) and of the exit code, so every format tells the same story.

pub mod fingerprint;
pub mod github;
pub mod gitlab;
pub mod html;
pub mod human;
pub mod json;
pub mod junit;
pub mod merge;
pub mod sarif;

use protocol::{exit, Finding, Severity};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// A report in one of its formats (`--format`, `--report FORMAT=FILE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings by file, a table, a verdict; for people.
    Human,
    /// Everything, for scripts (schema in docs/report-schema.md).
    Json,
    /// SARIF 2.1.0, for GitHub code scanning and security dashboards.
    Sarif,
    /// JUnit XML, for CI test tabs.
    Junit,
    /// GitHub Actions annotations.
    Github,
    /// GitLab Code Quality.
    Gitlab,
    /// One self-contained HTML page.
    Html,
}

/// A rendered report, and what the user should know about the rendering (results a format's
/// limits left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub text: String,
    pub warnings: Vec<String>,
}

impl From<String> for Rendered {
    fn from(text: String) -> Rendered {
        Rendered {
            text,
            warnings: Vec::new(),
        }
    }
}

impl Format {
    /// [`Format::render`] into `out`; returns the warnings rendering gave. The JSON report is
    /// written as it is serialised, so a large one is never held whole in memory, and its
    /// findings also go to `keep` ([`json::write`]).
    pub fn write(
        self,
        report: &Report,
        colour: bool,
        out: &mut dyn std::io::Write,
        keep: &mut Option<crate::rendered::Keeping>,
    ) -> std::io::Result<Vec<String>> {
        if self == Format::Json {
            json::write(report, out, keep)?;
            return Ok(Vec::new());
        }
        let rendered = self.render(report, colour);
        out.write_all(rendered.text.as_bytes())?;
        Ok(rendered.warnings)
    }

    /// Renders `report`; `colour` applies to the human format only.
    pub fn render(self, report: &Report, colour: bool) -> Rendered {
        match self {
            Format::Human => human::render(report, colour).into(),
            Format::Json => json::render(report).into(),
            Format::Sarif => sarif::render(report),
            Format::Junit => junit::render(report).into(),
            Format::Github => github::render(report).into(),
            Format::Gitlab => gitlab::render(report).into(),
            Format::Html => html::render(report).into(),
        }
    }
}

/// How one validator's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Completed, no error finding.
    Passed,
    /// Completed, at least one error finding.
    Failed,
    /// Did not finish within its timeout and was stopped.
    TimedOut,
    /// Exited or was killed before finishing, or reported that its tool broke.
    Crashed,
    /// Broke the protocol (bad frame, message out of order).
    ProtocolError,
    /// Its tool is not installed.
    NotInstalled,
    /// It refused its configuration (`[validators.NAME]`): a user's mistake to fix.
    ConfigError,
    /// Not run, for the reason given.
    Skipped(Skip),
    /// Stopped because the coordinator was asked to stop (Ctrl-C, SIGTERM).
    Interrupted,
}

impl Status {
    /// Every status but `Skipped`, whose reason is named apart.
    const UNSKIPPED: [Status; 8] = [
        Status::Passed,
        Status::Failed,
        Status::TimedOut,
        Status::Crashed,
        Status::ProtocolError,
        Status::NotInstalled,
        Status::ConfigError,
        Status::Interrupted,
    ];

    /// The status a report names, by [`Status::as_str`] and, for `skipped`, [`Skip::as_str`].
    pub fn named(name: &str, skip: Option<&str>) -> Option<Status> {
        if name == "skipped" {
            let skip = Skip::ALL.into_iter().find(|s| Some(s.as_str()) == skip)?;
            return Some(Status::Skipped(skip));
        }
        Status::UNSKIPPED.into_iter().find(|s| s.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed_out",
            Status::Crashed => "crashed",
            Status::ProtocolError => "protocol_error",
            Status::NotInstalled => "not_installed",
            Status::ConfigError => "config_error",
            Status::Skipped(_) => "skipped",
            Status::Interrupted => "interrupted",
        }
    }

    /// Whether the validator gave a complete answer, or was not asked for one. A validator held
    /// back by its open circuit breaker was asked and gave none: the run cannot pass on it.
    pub fn completed(self) -> bool {
        match self {
            Status::Passed | Status::Failed => true,
            Status::Skipped(skip) => skip != Skip::CircuitOpen,
            _ => false,
        }
    }
}

/// Why a validator was not run (or stopped before it finished, for [`Skip::FailFast`]).
///
/// Only [`Skip::CircuitOpen`] leaves the run incomplete. A validator skipped because another
/// one failed ([`Skip::Requires`], [`Skip::FailFast`]) does not: that other validator's status
/// already keeps the run from passing, and decides its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Skip {
    /// `enabled = false` in the configuration.
    Disabled,
    /// No selected file matches its globs.
    NoFiles,
    /// A fixing round, and it cannot fix.
    CannotFix,
    /// A validator it `requires` did not pass.
    Requires,
    /// `--fail-fast`: another validator failed first.
    FailFast,
    /// Its circuit breaker is open after repeated incomplete runs.
    CircuitOpen,
    /// `run --shard`: a `project` validator, run whole on another shard.
    OtherShard,
}

impl Skip {
    pub const ALL: [Skip; 7] = [
        Skip::Disabled,
        Skip::NoFiles,
        Skip::CannotFix,
        Skip::Requires,
        Skip::FailFast,
        Skip::CircuitOpen,
        Skip::OtherShard,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skip::Disabled => "disabled",
            Skip::NoFiles => "no_files",
            Skip::CannotFix => "cannot_fix",
            Skip::Requires => "requires",
            Skip::FailFast => "fail_fast",
            Skip::CircuitOpen => "circuit_open",
            Skip::OtherShard => "other_shard",
        }
    }

    /// Whether a validator skipped this way counts as passed for those that `require` it:
    /// it had nothing to check, which is not a failure.
    pub fn harmless(self) -> bool {
        matches!(
            self,
            Skip::Disabled | Skip::NoFiles | Skip::CannotFix | Skip::OtherShard
        )
    }
}

/// The whole run's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Passed,
    Failed,
    Incomplete,
    /// A validator refused its configuration: the run could not check what was asked.
    ConfigError,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Incomplete => "incomplete",
            RunStatus::ConfigError => "config_error",
        }
    }

    /// The process exit code: incomplete wins over failed, since an incomplete run cannot be
    /// called clean; a configuration error wins over both, as the first thing to fix (it is a
    /// usage error, like a bad `orchestrator.toml`).
    pub fn exit_code(self) -> u8 {
        match self {
            RunStatus::Passed => exit::CLEAN,
            RunStatus::Failed => exit::FINDINGS,
            RunStatus::Incomplete => exit::INCOMPLETE,
            RunStatus::ConfigError => exit::USAGE,
        }
    }
}

/// One validator's part of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatorReport {
    pub name: String,
    /// Unknown when the validator never answered its handshake.
    pub dimension: Option<String>,
    pub version: Option<String>,
    /// `name version` of the wrapped tool.
    pub tool: Option<String>,
    pub status: Status,
    pub duration: Duration,
    /// Files it was asked to check.
    pub files: u32,
    /// Of those, the files answered from the cache without running the validator.
    pub cached_files: u32,
    /// With `--changed`: of `files`, those checked because their last result listed a changed
    /// file as an input (the modules that import a changed module, say).
    pub dependents: Option<u32>,
    /// The files whose results arrived, in arrival order (JUnit's test cases).
    pub checked: Vec<String>,
    pub findings: u32,
    /// Why it did not complete, or why it was skipped; empty otherwise.
    pub message: String,
    /// Its findings are those of the files finished before it stopped.
    pub partial: bool,
    /// The end of its stderr, when it did not complete.
    pub stderr_tail: Option<String>,
    /// Each attempt to run it, the last one included (more than one after a retry).
    pub attempts: Vec<Attempt>,
}

/// One attempt to run a validator: its processes from start to end.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub status: Status,
    pub message: String,
    pub duration: Duration,
}

impl ValidatorReport {
    /// How many files' results arrived.
    pub fn files_done(&self) -> u32 {
        u32::try_from(self.checked.len()).unwrap_or(u32::MAX)
    }

    /// A report for a validator that has not produced anything yet.
    pub fn new(name: &str) -> ValidatorReport {
        ValidatorReport {
            name: name.to_owned(),
            dimension: None,
            version: None,
            tool: None,
            status: Status::Skipped(Skip::NoFiles),
            duration: Duration::ZERO,
            files: 0,
            cached_files: 0,
            dependents: None,
            checked: Vec::new(),
            findings: 0,
            message: String::new(),
            partial: false,
            stderr_tail: None,
            attempts: Vec::new(),
        }
    }
}

/// A finding and the validator that made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFinding {
    pub validator: String,
    pub finding: Finding,
}

/// Sorts findings into their reported order: path, position, validator, rule, message, and
/// the order they came in. The sort is stable and takes runs already in order as they are, so
/// findings sorted result by result as they arrive ([`crate::dispatcher`]) are merged in a few
/// passes, not sorted again: on a warm run each validator's results come in path order, from
/// its run record.
pub fn sort_findings(findings: &mut [ReportFinding]) {
    // Borrowed keys: tens of thousands of findings are compared hundreds of thousands of
    // times.
    fn key(f: &ReportFinding) -> (&str, u32, u32, &str, &str, &str) {
        (
            &f.finding.path,
            f.finding.line,
            f.finding.column,
            &f.validator,
            &f.finding.rule,
            &f.finding.message,
        )
    }
    findings.sort_by(|a, b| key(a).cmp(&key(b)));
}

/// Everything a run found out.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The root the findings' paths are relative to.
    pub root: PathBuf,
    /// In the order of the plan (sorted by name).
    pub validators: Vec<ValidatorReport>,
    /// Sorted by path, line, column, validator, rule.
    pub findings: Vec<ReportFinding>,
    /// Things the user should know that are not findings (files that could not be read).
    pub warnings: Vec<String>,
    /// Files that `run --fix` changed, sorted; empty without `--fix`.
    pub fixed_files: Vec<String>,
    /// Baselines that `run --update-baselines` wrote, sorted; empty without it.
    pub baselines_written: Vec<String>,
    /// The signal that stopped the run before every validator finished.
    pub interrupted: Option<crate::interrupt::Signal>,
    /// How long the run took, from its first validator's start to its last one's end.
    pub elapsed: Duration,
    /// The chain of validators that decided the run's duration (see
    /// [`crate::schedule::Schedule::critical_path`]).
    pub critical_path: Vec<String>,
    /// Findings left out as not new (`--baseline`, `--new-since`), by each filter applied.
    pub suppressed: Vec<Suppressed>,
    /// `run --shard`: which part of a run this is (`merge-reports` puts the parts together).
    pub shard: Option<crate::shard::Shard>,
    /// `merge-reports`: the shards (1-based) whose reports were not given; the run is
    /// incomplete without them.
    pub missing_shards: Vec<u32>,
    /// One per finding, computed on first use (it reads the files findings are in, which a
    /// run that renders no fingerprint need not do); see [`Report::fingerprints`].
    fingerprints: OnceLock<Vec<String>>,
    /// [`Report::findings_hash`], computed once: the history and the kept findings both need it.
    findings_hash: OnceLock<crate::digest::Hash>,
    /// What the findings were made of, when every validator that found something had as its
    /// results those of a run record ([`crate::rendered`]).
    pub makings: Option<crate::rendered::Makings>,
    /// The kept findings that are this report's, with `findings` (none, or those of the paths
    /// whose kept findings changed) between them; the JSON report copies them. Only in a run
    /// that renders nothing else from its findings.
    pub reused: Option<crate::rendered::Reuse>,
}

/// Findings a run found but does not report, because they are not new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// What left them out: `baseline .orchestrator/baseline.json`, `--new-since main`.
    pub by: String,
    pub count: usize,
}

impl Report {
    /// The report of a run of validators `names` before anything happened.
    pub fn new(root: PathBuf, names: &[String], warnings: Vec<String>) -> Report {
        Report {
            root,
            validators: names.iter().map(|n| ValidatorReport::new(n)).collect(),
            findings: Vec::new(),
            warnings,
            fixed_files: Vec::new(),
            baselines_written: Vec::new(),
            interrupted: None,
            elapsed: Duration::ZERO,
            critical_path: Vec::new(),
            suppressed: Vec::new(),
            shard: None,
            missing_shards: Vec::new(),
            fingerprints: OnceLock::new(),
            findings_hash: OnceLock::new(),
            makings: None,
            reused: None,
        }
    }

    /// This report as one shard's part of a run.
    pub fn for_shard(self, shard: Option<crate::shard::Shard>) -> Report {
        Report { shard, ..self }
    }

    /// The fingerprint of each finding, in order ([`fingerprint`]). Computed over every
    /// finding the run made, before any is suppressed, so that a finding's fingerprint does
    /// not depend on which filters were applied.
    pub fn fingerprints(&self) -> &[String] {
        self.fingerprints.get_or_init(|| {
            fingerprint::fingerprints(&self.findings, &mut fingerprint::Sources::new(&self.root))
        })
    }

    /// [`crate::history::findings_hash`] of the findings as they now are (those kept come with
    /// theirs).
    pub fn findings_hash(&self) -> crate::digest::Hash {
        match &self.reused {
            Some(reuse) => reuse.findings_hash,
            None => *self
                .findings_hash
                .get_or_init(|| crate::history::findings_hash(&self.findings)),
        }
    }

    /// Keeps only the findings `keep` says are to be reported, counting the rest as suppressed
    /// `by` what is named, and brings each validator's count and verdict in line: one whose
    /// error findings were all left out has passed.
    pub fn suppress(&mut self, by: String, keep: impl IntoIterator<Item = bool>) {
        let keep: Vec<bool> = keep.into_iter().collect();
        let mut prints = self.fingerprints().to_vec();
        retain_by(&mut prints, &keep);
        self.fingerprints = OnceLock::from(prints);
        self.findings_hash = OnceLock::new();
        let before = self.findings.len();
        retain_by(&mut self.findings, &keep);
        let count = before - self.findings.len();
        for v in &mut self.validators {
            let mine = self.findings.iter().filter(|f| f.validator == v.name);
            v.findings = u32::try_from(mine.clone().count()).unwrap_or(u32::MAX);
            let errors = mine
                .filter(|f| f.finding.severity == Severity::Error)
                .count();
            if v.status == Status::Failed && errors == 0 {
                v.status = Status::Passed;
            }
        }
        self.suppressed.push(Suppressed { by, count });
    }

    /// Sorts findings into their reported order; call once all are in.
    pub fn sort(&mut self) {
        self.baselines_written.sort();
        sort_findings(&mut self.findings);
        self.findings_hash = OnceLock::new();
    }

    pub fn status(&self) -> RunStatus {
        if self
            .validators
            .iter()
            .any(|v| v.status == Status::ConfigError)
        {
            RunStatus::ConfigError
        } else if self.validators.iter().any(|v| !v.status.completed())
            || !self.missing_shards.is_empty()
        {
            RunStatus::Incomplete
        } else if self.errors() > 0 {
            RunStatus::Failed
        } else {
            RunStatus::Passed
        }
    }

    /// Number of findings of severity error.
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    /// Number of findings of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        if let Some(reuse) = &self.reused {
            return reuse.count(severity);
        }
        self.findings
            .iter()
            .filter(|f| f.finding.severity == severity)
            .count()
    }

    /// The validators that did not complete, by name.
    pub fn incomplete(&self) -> Vec<&str> {
        self.validators
            .iter()
            .filter(|v| !v.status.completed())
            .map(|v| v.name.as_str())
            .collect()
    }
}

/// Keeps the items whose place in `keep` is true (and any past its end).
fn retain_by<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut keep = keep.iter();
    items.retain(|_| keep.next().copied().unwrap_or(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(statuses: &[Status], errors: usize) -> Report {
        Report {
            validators: statuses
                .iter()
                .map(|s| ValidatorReport {
                    status: *s,
                    ..ValidatorReport::new("v")
                })
                .collect(),
            findings: (0..errors)
                .map(|_| ReportFinding {
                    validator: "v".into(),
                    finding: Finding::new("a", 1, 1, "R", Severity::Error, "m"),
                })
                .collect(),
            ..Report::new(PathBuf::new(), &[], vec![])
        }
    }

    #[test]
    fn a_fingerprint_does_not_change_when_other_findings_are_suppressed() {
        let mut r = report(&[Status::Failed], 3);
        let before = r.fingerprints().to_vec();
        assert!(
            before[1].ends_with(":1"),
            "equal hashes, told apart: {before:?}"
        );
        r.suppress("test".into(), [false, true, false]);
        assert_eq!(r.fingerprints(), &before[1..2]);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.suppressed[0].count, 2);
    }

    #[test]
    fn an_incomplete_run_wins_over_findings() {
        let r = report(&[Status::Failed, Status::TimedOut], 1);
        assert_eq!(r.status(), RunStatus::Incomplete);
        assert_eq!(r.status().exit_code(), 3);
    }

    #[test]
    fn errors_fail_and_skipped_validators_do_not_make_a_run_incomplete() {
        assert_eq!(
            report(&[Status::Failed, Status::Skipped(Skip::Requires)], 1)
                .status()
                .exit_code(),
            1
        );
        assert_eq!(
            report(&[Status::Passed, Status::Skipped(Skip::NoFiles)], 0)
                .status()
                .exit_code(),
            0
        );
    }

    #[test]
    fn an_open_circuit_breaker_never_turns_into_a_pass() {
        let r = report(&[Status::Passed, Status::Skipped(Skip::CircuitOpen)], 0);
        assert_eq!(r.status(), RunStatus::Incomplete);
    }

    #[test]
    fn a_refused_configuration_is_a_usage_error_that_wins_over_the_rest() {
        let r = report(&[Status::TimedOut, Status::ConfigError, Status::Failed], 1);
        assert_eq!(r.status(), RunStatus::ConfigError);
        assert_eq!(r.status().exit_code(), 2);
    }

    #[test]
    fn warnings_alone_do_not_fail_a_run() {
        let mut r = report(&[Status::Passed], 0);
        r.findings.push(ReportFinding {
            validator: "v".into(),
            finding: Finding::new("a", 1, 1, "W", Severity::Warning, "m"),
        });
        assert_eq!(r.status(), RunStatus::Passed);
    }
}
