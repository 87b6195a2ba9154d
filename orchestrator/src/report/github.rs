//! GitHub Actions workflow commands: each finding becomes an annotation on the pull request's
//! diff (<https://docs.github.com/en/actions/reference/workflows-and-actions/workflow-commands>).
//!
//! GitHub shows only the first ten annotations of each kind from a step, so the order matters:
//! validators that did not complete first (their silence is the worst news), then errors,
//! warnings and notices, and last a summary line with the counts. [`step_summary`] is the
//! Markdown table appended to `GITHUB_STEP_SUMMARY`, shown on the run's page.

use super::{Report, ReportFinding, Status};
use protocol::Severity;
use std::fmt::Write;

/// The annotations, most important first, and a summary line.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    for v in report.validators.iter().filter(|v| !v.status.completed()) {
        let title = format!("{} {}", v.name, v.status.as_str().replace('_', " "));
        let _ = writeln!(
            out,
            "::error title={}::{}",
            property(&title),
            data(&format!("{title}: {}", v.message))
        );
    }
    let mut findings: Vec<&ReportFinding> = report.findings.iter().collect();
    findings.sort_by_key(|f| f.finding.severity);
    for f in findings {
        out.push_str(&annotation(f));
    }
    let count = |s: Severity| report.count(s);
    let incomplete = report.incomplete();
    let _ = write!(
        out,
        "orchestrator: {}: {} errors, {} warnings, {} notes",
        report.status().as_str(),
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    if !incomplete.is_empty() {
        let _ = write!(out, "; did not complete: {}", incomplete.join(", "));
    }
    out.push('\n');
    out
}

fn annotation(f: &ReportFinding) -> String {
    let g = &f.finding;
    let command = match g.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info => "notice",
    };
    let mut properties = vec![
        format!("file={}", property(&g.path)),
        format!("line={}", g.line),
        format!("col={}", g.column),
    ];
    if let Some(end) = g.end_line {
        properties.push(format!("endLine={end}"));
    }
    if let Some(end) = g.end_column {
        properties.push(format!("endColumn={end}"));
    }
    properties.push(format!(
        "title={}",
        property(&format!("{} {}", f.validator, g.rule))
    ));
    format!(
        "::{command} {}::{}\n",
        properties.join(","),
        data(&g.message)
    )
}

/// GitHub's escaping of a command's message.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a property value, which also cannot hold `:` or `,`.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

/// A Markdown summary of the run for `GITHUB_STEP_SUMMARY`.
pub fn step_summary(report: &Report) -> String {
    let mut out = format!(
        "### orchestrator: {}\n\n| validator | status | files | cached | findings | time |\n|---|---|---:|---:|---:|---:|\n",
        report.status().as_str()
    );
    for v in &report.validators {
        let status = match v.status {
            Status::Skipped(skip) => format!("skipped ({})", skip.as_str()),
            other => other.as_str().replace('_', " "),
        };
        let _ = writeln!(
            out,
            "| {} | {status} | {} | {} | {} | {:.2}s |",
            cell(&v.name),
            v.files,
            v.cached_files,
            v.findings,
            v.duration.as_secs_f64()
        );
    }
    out.push('\n');
    out
}

/// A table cell: a `|` would end it early.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Finding;

    #[test]
    fn messages_and_properties_are_escaped_as_github_expects() {
        assert_eq!(data("100% done\r\nnext"), "100%25 done%0D%0Anext");
        assert_eq!(property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn an_annotation_carries_the_position_and_a_title() {
        let mut finding = Finding::new("src/a,b.py", 3, 5, "F401", Severity::Error, "unused: os");
        finding.end_line = Some(3);
        finding.end_column = Some(11);
        let f = ReportFinding {
            validator: "ruff".into(),
            finding,
        };
        assert_eq!(
            annotation(&f),
            "::error file=src/a%2Cb.py,line=3,col=5,endLine=3,endColumn=11,title=ruff F401::unused: os\n"
        );
    }
}
