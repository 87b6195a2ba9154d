//! JUnit XML, the format every CI system's test tab reads (Jenkins, GitLab, Azure, CircleCI).
//!
//! A test suite per validator and a test case per file it checked, named by path: a file with
//! error findings fails with their text, its other findings go to the case's output. A
//! validator that did not complete adds an error case named after itself, with its message
//! and the end of its stderr; a skipped validator is one skipped case saying why.

use super::{Report, ReportFinding, Status, ValidatorReport};
use protocol::Severity;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::collections::BTreeMap;

/// The report as a JUnit XML document.
pub fn render(report: &Report) -> String {
    let mut junit = quick_junit::Report::new("orchestrator");
    junit.set_time(report.elapsed);
    for v in &report.validators {
        junit.add_test_suite(suite(report, v));
    }
    junit
        .to_string()
        .expect("a report of UTF-8 strings serialises")
}

fn suite(report: &Report, v: &ValidatorReport) -> TestSuite {
    let mut suite = TestSuite::new(v.name.as_str());
    suite.set_time(v.duration);
    if let Status::Skipped(skip) = v.status {
        let mut status = TestCaseStatus::skipped();
        status.set_message(if v.message.is_empty() {
            skip.as_str().to_owned()
        } else {
            v.message.clone()
        });
        suite.add_test_case(case(v, &v.name, status));
        return suite;
    }
    if !v.status.completed() {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_type(v.status.as_str()).set_message(format!(
            "{} {}: {}",
            v.name,
            v.status.as_str(),
            v.message
        ));
        if let Some(tail) = &v.stderr_tail {
            status.set_description(format!("stderr (end):\n{tail}"));
        }
        suite.add_test_case(case(v, &v.name, status));
    }
    let mut by_file: BTreeMap<&str, Vec<&ReportFinding>> =
        v.checked.iter().map(|p| (p.as_str(), Vec::new())).collect();
    for f in report.findings.iter().filter(|f| f.validator == v.name) {
        by_file.entry(&f.finding.path).or_default().push(f);
    }
    for (path, findings) in by_file {
        let (errors, others): (Vec<_>, Vec<_>) = findings
            .into_iter()
            .partition(|f| f.finding.severity == Severity::Error);
        let status = if errors.is_empty() {
            TestCaseStatus::success()
        } else {
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            let n = errors.len();
            status
                .set_type("findings")
                .set_message(format!("{n} error{}", if n == 1 { "" } else { "s" }))
                .set_description(lines(&errors));
            status
        };
        let mut case = case(v, path, status);
        if !others.is_empty() {
            case.set_system_out(lines(&others));
        }
        suite.add_test_case(case);
    }
    suite
}

fn case(v: &ValidatorReport, name: &str, status: TestCaseStatus) -> TestCase {
    let mut case = TestCase::new(name, status);
    case.set_classname(v.name.as_str());
    case
}

/// One `path:line:column: severity rule message` line per finding.
fn lines(findings: &[&ReportFinding]) -> String {
    findings
        .iter()
        .map(|f| {
            let g = &f.finding;
            format!(
                "{}:{}:{}: {} {} {}\n",
                g.path,
                g.line,
                g.column,
                g.severity.as_str(),
                g.rule,
                g.message
            )
        })
        .collect()
}
