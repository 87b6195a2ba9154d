//! The report for people: findings grouped by file, what did not complete and why, a summary
//! table, and a verdict line. Colour only when asked for (a terminal, no `NO_COLOR`).

use super::{Report, RunStatus, Skip, Status, ValidatorReport};
use protocol::Severity;
use std::fmt::Write;

/// How many stderr lines of a failed validator are shown.
const STDERR_LINES: usize = 12;

/// ANSI styling that can be switched off.
#[derive(Debug, Clone, Copy)]
struct Paint(bool);

impl Paint {
    fn wrap(self, code: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    fn bold(self, t: &str) -> String {
        self.wrap("1", t)
    }
    fn red(self, t: &str) -> String {
        self.wrap("31", t)
    }
    fn yellow(self, t: &str) -> String {
        self.wrap("33", t)
    }
    fn green(self, t: &str) -> String {
        self.wrap("32", t)
    }
    fn dim(self, t: &str) -> String {
        self.wrap("2", t)
    }
    fn severity(self, s: Severity) -> String {
        let padded = format!("{:<7}", s.as_str());
        match s {
            Severity::Error => self.red(&padded),
            Severity::Warning => self.yellow(&padded),
            Severity::Info => self.dim(&padded),
        }
    }
    fn status(self, s: Status) -> String {
        let padded = format!("{:<14}", s.as_str());
        match s {
            Status::Passed => self.green(&padded),
            Status::Failed => self.red(&padded),
            Status::Skipped(_) => self.dim(&padded),
            _ => self.yellow(&padded),
        }
    }
}

/// Renders the report; `color` turns on ANSI colours.
pub fn render(report: &Report, color: bool) -> String {
    let paint = Paint(color);
    let mut out = String::new();
    let mut last_path: Option<&str> = None;
    let location = |f: &super::ReportFinding| {
        format!("{}:{}:{}", f.finding.path, f.finding.line, f.finding.column)
    };
    // Aligned columns read faster; one very long path should not push every line right.
    let width = report
        .findings
        .iter()
        .map(|f| location(f).len())
        .max()
        .unwrap_or(0)
        .min(60);
    for f in &report.findings {
        if last_path.is_some_and(|p| p != f.finding.path) {
            out.push('\n');
        }
        last_path = Some(&f.finding.path);
        // A message's first line goes in the row; the rest (a diff, a tool's explanation)
        // and the artifacts follow, indented, so they stay readable.
        let mut lines = f.finding.message.lines();
        let _ = writeln!(
            out,
            "{}  {} {}  {}  {}",
            paint.bold(&format!("{:<width$}", location(f))),
            paint.severity(f.finding.severity),
            f.finding.rule,
            lines.next().unwrap_or_default(),
            paint.dim(&format!("[{}]", f.validator)),
        );
        for line in lines {
            let _ = writeln!(out, "    {line}");
        }
        for artifact in &f.finding.artifacts {
            let _ = writeln!(
                out,
                "    {} {}",
                paint.dim(&format!("{}:", artifact.kind)),
                artifact.path
            );
        }
    }
    if !report.findings.is_empty() {
        out.push('\n');
    }
    listing(&mut out, &paint.green("fixed"), "file", &report.fixed_files);
    listing(
        &mut out,
        &paint.green("wrote"),
        "baseline",
        &report.baselines_written,
    );
    for warning in &report.warnings {
        let _ = writeln!(out, "{} {warning}", paint.yellow("warning:"));
    }
    for v in report.validators.iter().filter(|v| v.attempts.len() > 1) {
        retried(&mut out, v, paint);
    }
    for v in report.validators.iter().filter(|v| held_back(v.status)) {
        let _ = writeln!(out, "{} {}: {}", paint.dim("skipped"), v.name, v.message);
    }
    for v in report.validators.iter().filter(|v| !v.status.completed()) {
        problem(&mut out, v, paint);
    }
    if !report.warnings.is_empty()
        || report
            .validators
            .iter()
            .any(|v| !v.status.completed() || v.attempts.len() > 1 || held_back(v.status))
    {
        out.push('\n');
    }
    table(&mut out, report, paint);
    for s in &report.suppressed {
        let _ = writeln!(
            out,
            "{} {} finding{} not new ({})",
            paint.dim("left out"),
            s.count,
            plural(s.count),
            s.by
        );
    }
    for v in &report.validators {
        if let Some(n) = v.dependents.filter(|&n| n > 0) {
            let _ = writeln!(
                out,
                "{} {n} file{} that depend{} on the changed ones ({})",
                paint.dim("also checked"),
                plural(n as usize),
                if n == 1 { "s" } else { "" },
                v.name
            );
        }
    }
    critical_path(&mut out, report);
    verdict(&mut out, report, paint);
    out
}

/// Runs shorter than this do not name their critical path: there is nothing to win.
const CRITICAL_PATH_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

/// "critical path: ruff 1.20s → pyright 8.31s (run 9.61s)": what to shorten for a faster run.
fn critical_path(out: &mut String, report: &Report) {
    if report.elapsed < CRITICAL_PATH_AFTER || report.critical_path.is_empty() {
        return;
    }
    let chain: Vec<String> = report
        .critical_path
        .iter()
        .filter_map(|name| report.validators.iter().find(|v| &v.name == name))
        .map(|v| format!("{} {:.2}s", v.name, v.duration.as_secs_f64()))
        .collect();
    let _ = writeln!(
        out,
        "critical path: {} (run {:.2}s)",
        chain.join(" → "),
        report.elapsed.as_secs_f64()
    );
}

/// A validator skipped because of another's failure: why is worth a line (an open breaker is
/// not complete, and gets its line as a problem).
fn held_back(status: Status) -> bool {
    matches!(status, Status::Skipped(Skip::Requires | Skip::FailFast))
}

/// "retried ruff: passed after 1 retry", then why each earlier attempt failed.
fn retried(out: &mut String, v: &ValidatorReport, paint: Paint) {
    let retries = v.attempts.len() - 1;
    let _ = writeln!(
        out,
        "{} {}: {} after {retries} retr{}",
        paint.yellow("retried"),
        v.name,
        v.status.as_str(),
        if retries == 1 { "y" } else { "ies" }
    );
    for (number, attempt) in v.attempts.iter().enumerate().take(retries) {
        let _ = writeln!(
            out,
            "  attempt {}: {} after {:.2}s: {}",
            number + 1,
            attempt.status.as_str(),
            attempt.duration.as_secs_f64(),
            attempt.message
        );
    }
}

fn problem(out: &mut String, v: &ValidatorReport, paint: Paint) {
    let mut line = format!(
        "{} {}: {}",
        paint.yellow(v.status.as_str()),
        v.name,
        v.message
    );
    if v.partial {
        let _ = write!(
            line,
            " (partial: {} of {} files finished)",
            v.files_done(),
            v.files
        );
    }
    let _ = writeln!(out, "{line}");
    if let Some(tail) = v.stderr_tail.as_deref().filter(|t| !t.is_empty()) {
        let lines: Vec<&str> = tail.lines().collect();
        let shown = &lines[lines.len().saturating_sub(STDERR_LINES)..];
        let _ = writeln!(
            out,
            "  stderr (last {} line{}):",
            shown.len(),
            plural(shown.len())
        );
        for l in shown {
            let _ = writeln!(out, "  {} {l}", paint.dim("|"));
        }
    }
}

fn table(out: &mut String, report: &Report, paint: Paint) {
    let width = report
        .validators
        .iter()
        .map(|v| v.name.len())
        .max()
        .unwrap_or(0)
        .max("validator".len());
    let _ = writeln!(
        out,
        "{}",
        paint.bold(&format!(
            "{:<width$}  {:<14}  {:>6}  {:>6}  {:>8}  {:>8}",
            "validator", "status", "files", "cached", "findings", "time"
        ))
    );
    for v in &report.validators {
        let _ = writeln!(
            out,
            "{:<width$}  {}  {:>6}  {:>6}  {:>8}  {:>8}",
            v.name,
            paint.status(v.status),
            v.files,
            v.cached_files,
            v.findings,
            format!("{:.2}s", v.duration.as_secs_f64()),
        );
    }
}

/// "fixed 2 files:" and the paths, one a line; nothing when there are none.
fn listing(out: &mut String, verb: &str, noun: &str, paths: &[String]) {
    if paths.is_empty() {
        return;
    }
    let n = paths.len();
    let _ = writeln!(out, "{verb} {n} {noun}{}:", plural(n));
    for path in paths {
        let _ = writeln!(out, "  {path}");
    }
    out.push('\n');
}

fn verdict(out: &mut String, report: &Report, paint: Paint) {
    let count = |s: Severity| report.count(s);
    let tally = format!(
        "{} error{}, {} warning{}, {} info",
        count(Severity::Error),
        plural(count(Severity::Error)),
        count(Severity::Warning),
        plural(count(Severity::Warning)),
        count(Severity::Info),
    );
    let line = match report.status() {
        RunStatus::Passed => paint.green(&format!("passed: {tally}")),
        RunStatus::Failed => paint.red(&format!("failed: {tally}")),
        RunStatus::Incomplete => {
            let missing = report
                .validators
                .iter()
                .filter(|v| !v.status.completed())
                .count();
            let mut why = report
                .interrupted
                .map_or(String::new(), |s| format!("interrupted by {}; ", s.name));
            if !report.missing_shards.is_empty() {
                let shards: Vec<String> =
                    report.missing_shards.iter().map(u32::to_string).collect();
                let _ = write!(why, "shard {} missing; ", shards.join(", "));
            }
            paint.yellow(&format!(
                "{why}incomplete: {missing} of {} validator{} did not complete; {tally}",
                report.validators.len(),
                plural(report.validators.len()),
            ))
        }
        RunStatus::ConfigError => {
            let refused: Vec<&str> = report
                .validators
                .iter()
                .filter(|v| v.status == Status::ConfigError)
                .map(|v| v.name.as_str())
                .collect();
            paint.red(&format!(
                "configuration error: fix [validators.{}] in orchestrator.toml; {tally}",
                refused.join("], [validators.")
            ))
        }
    };
    let _ = writeln!(out, "\n{line}");
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
