//! `validator-bandit`: security checks with bandit, one finding per issue.
//!
//! Bandit is single-threaded, and a file's issues depend on that file alone, so the scope is
//! `per_file` with a default batch size: the coordinator runs batches in parallel processes.
//! Runs `bandit -f json -q ./FILES`, with the project's `.bandit` (`--ini`) or `[tool.bandit]`
//! in `pyproject.toml` (`-c`) when present, so that its excludes leave out the files
//! `bandit -r .` would leave out. Exit code 0 or 1 with a JSON report is an answer.
//! Files bandit cannot parse are findings (`syntax-error`), as bandit lists them in `errors`.
//!
//! Severity: bandit's HIGH and MEDIUM are errors, LOW is a warning.

use crate::named::{Flag, Named};
use crate::settings::Settings;
use crate::wrapper::{self, Located};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, Finding, Manifest, Scope, Severity, Validate};
use serde::Deserialize;
use std::path::Path;

/// Keys of `[validators.bandit]`.
const KEYS: [&str; 5] = ["skips", "tests", "severity", "confidence", "args"];

/// Files per bandit process when the configuration sets no `batch_size`.
const BATCH_SIZE: u32 = 200;

/// Bandit's flags in the `args` setting that name a file whose contents change results: a
/// configuration (`-c bandit.yaml`, `--ini`) and a baseline of issues to leave out.
const FILES: Flag = Flag {
    names: &["-c", "--configfile", "--ini", "-b", "--baseline"],
    dialect: None,
    in_dir: &[],
};

/// The bandit wrapper.
#[derive(Debug, Clone)]
pub struct Bandit {
    tool: Located,
}

impl Default for Bandit {
    fn default() -> Self {
        Bandit {
            tool: Located::find("bandit"),
        }
    }
}

impl Validator for Bandit {
    fn manifest(&self) -> Manifest {
        let mut manifest = Manifest::new(
            "bandit",
            env!("CARGO_PKG_VERSION"),
            Dimension::Security,
            Scope::PerFile,
        )
        .with_globs(["**/*.py"])
        .with_config_files([".bandit", "pyproject.toml"]);
        manifest.batch_size = Some(BATCH_SIZE);
        self.tool.describe(manifest)
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let executable = self.tool.executable()?;
        let settings = Settings::parse(&request.config_json, "bandit", &KEYS)?;
        let files = wrapper::existing(request);
        if files.is_empty() {
            return wrapper::report(request, Vec::new(), out);
        }
        let mut args: Vec<String> = ["-f", "json", "-q"].map(String::from).into();
        let root = Path::new(&request.root);
        if root.join(".bandit").is_file() {
            args.extend(["--ini".to_owned(), ".bandit".to_owned()]);
        }
        let pyproject = std::fs::read_to_string(root.join("pyproject.toml")).unwrap_or_default();
        if pyproject.contains("[tool.bandit") {
            args.extend(["-c".to_owned(), "pyproject.toml".to_owned()]);
        }
        for (key, flag) in [("skips", "--skip"), ("tests", "--tests")] {
            let ids = settings.strings(key)?;
            if !ids.is_empty() {
                args.extend([flag.to_owned(), ids.join(",")]);
            }
        }
        let levels = ["all", "low", "medium", "high"];
        if let Some(level) = settings.choice("severity", &levels)? {
            args.extend(["--severity-level".to_owned(), level]);
        }
        if let Some(level) = settings.choice("confidence", &levels)? {
            args.extend(["--confidence-level".to_owned(), level]);
        }
        let extra = settings.strings("args")?;
        let named = Named::of(root, &extra, &[FILES]);
        args.extend(extra);
        args.push("--".into());
        // As `./PATH`, the form `bandit -r .` gives its excludes to match against: explicit
        // paths are matched as given, so this keeps `exclude_dirs` and `.bandit` excludes
        // meaning what they mean when bandit is run on the project.
        args.extend(files.iter().map(|f| format!("./{}", f.path)));
        let output = wrapper::run(executable, &args, &[], &request.root, files.len(), out)?;
        let report: Option<Report> = serde_json::from_slice(&output.stdout).ok();
        let report = match (output.status.code(), report) {
            (Some(0 | 1), Some(report)) => report,
            _ => return Err(wrapper::tool_failed("bandit", &output, "failed")),
        };
        let mut findings: Vec<Finding> = report
            .results
            .into_iter()
            .filter_map(|r| r.into_finding(&request.root))
            .collect();
        findings.extend(
            report
                .errors
                .into_iter()
                .filter_map(|e| e.into_finding(&request.root)),
        );
        wrapper::report_with_inputs(request, findings, out, |_| named.inputs.clone())?;
        named.warn("bandit", out)
    }
}

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    errors: Vec<BanditError>,
    #[serde(default)]
    results: Vec<Issue>,
}

#[derive(Debug, Deserialize)]
struct BanditError {
    filename: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
struct Issue {
    filename: String,
    line_number: u32,
    col_offset: Option<u32>,
    end_col_offset: Option<u32>,
    #[serde(default)]
    line_range: Vec<u32>,
    test_id: String,
    issue_severity: String,
    issue_text: String,
    more_info: Option<String>,
}

impl Issue {
    fn into_finding(self, root: &str) -> Option<Finding> {
        Some(Finding {
            path: wrapper::relative(root, &self.filename)?,
            line: self.line_number.max(1),
            column: self.col_offset.unwrap_or(0) + 1,
            end_line: self.line_range.last().copied(),
            end_column: self.end_col_offset.map(|c| c + 1),
            rule: self.test_id,
            severity: match self.issue_severity.as_str() {
                "HIGH" | "MEDIUM" => Severity::Error,
                _ => Severity::Warning,
            },
            message: self.issue_text,
            help_url: self.more_info,
            fix: None,
            artifacts: Vec::new(),
        })
    }
}

impl BanditError {
    fn into_finding(self, root: &str) -> Option<Finding> {
        let rule = if self.reason.contains("syntax error") {
            "syntax-error"
        } else {
            "bandit-error"
        };
        Some(Finding::new(
            wrapper::relative(root, &self.filename)?,
            1,
            1,
            rule,
            Severity::Error,
            self.reason,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issues_and_errors_map_to_findings() {
        let json = r#"{"errors":[{"filename":"./bad.py","reason":"syntax error while parsing AST from file"}],
            "results":[{"col_offset":4,"end_col_offset":34,"filename":"./a.py","issue_severity":"HIGH",
            "issue_text":"shell=True","line_number":6,"line_range":[6],"test_id":"B602",
            "more_info":"https://bandit.readthedocs.io"}]}"#;
        let report: Report = serde_json::from_str(json).expect("bandit's format");
        let issue = report
            .results
            .into_iter()
            .next()
            .and_then(|r| r.into_finding("/r"))
            .expect("issue");
        assert_eq!(
            (
                issue.path.as_str(),
                issue.line,
                issue.column,
                issue.end_column
            ),
            ("a.py", 6, 5, Some(35))
        );
        assert_eq!(
            (issue.rule.as_str(), issue.severity),
            ("B602", Severity::Error)
        );
        let error = report
            .errors
            .into_iter()
            .next()
            .and_then(|e| e.into_finding("/r"))
            .expect("error");
        assert_eq!(
            (error.path.as_str(), error.rule.as_str()),
            ("bad.py", "syntax-error")
        );
    }
}
