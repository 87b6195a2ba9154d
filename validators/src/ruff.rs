//! `validator-ruff`: lint with ruff, one finding per diagnostic of `ruff check`.
//!
//! Runs `ruff check --output-format json --no-cache --force-exclude --no-fix` (`--fix` when
//! asked to fix, never what the configuration's `fix` says) on the requested files that
//! `ruff check .` would check, so ruff's own configuration applies as if run directly on the
//! project: its excludes (`--force-exclude`), and its `include`, which ruff applies only to what
//! it finds under a directory (a file given by name is checked whatever `include` says), so
//! the files are first held to what `ruff check --show-files .` lists. Jupyter notebooks are
//! checked as ruff checks them by default; a finding in one says which cell, and its line is
//! the cell's, as ruff's. So is `pyproject.toml`, where `RUF200` reports metadata ruff cannot
//! read. Exit code 0 or 1 with a JSON list is an answer; anything else is ruff
//! breaking, reported as `crashed` with ruff's own words. Syntax errors are findings
//! (`invalid-syntax`), as ruff reports them.
//!
//! A file's diagnostics rest on more than its text, and a cached result must say so:
//! - Which directories around it are packages: ruff finds a file's package by the
//!   `__init__.py` files above it (`INP001` reports a file outside any; isort's same-package
//!   detection reads the package's name). Each result lists the `__init__.py` and
//!   `__init__.pyi` of its directory and of each above it, there or not.
//! - Its configuration beyond the files the coordinator keys on by name, and the names ruff
//!   calls first-party (`ruff_config.rs`).

use crate::named::{Flag, Named};
use crate::ruff_config::Nested;
use crate::settings::Settings;
use crate::wrapper::{self, Located};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, Finding, Fix, LogLevel, Manifest, Scope, Severity, TextEdit, Validate};
use serde::Deserialize;
use std::collections::HashSet;
use std::path::Path;

/// How the files ruff checks are picked and checked, in its tool version so that results a
/// wrapper that did otherwise cached are not served: 2 held them to what `ruff check
/// --show-files .` lists, took notebooks and `pyproject.toml`, and kept a configuration's
/// `fix = true` from editing them, where 1 gave ruff every requested `.py` and `.pyi` file
/// and let it fix them (results then made of what ruff left).
const SELECTION: u32 = 2;

/// Keys of `[validators.ruff]`.
const KEYS: [&str; 4] = ["select", "ignore", "extend_select", "args"];

/// Ruff's `--config FILE` in the `args` setting: a configuration, read with what it extends.
const CONFIG: Flag = Flag {
    names: &["--config"],
    dialect: Some(&crate::ruff_config::DIALECT),
    in_dir: &[],
};

/// The ruff wrapper.
#[derive(Debug, Clone)]
pub struct Ruff {
    tool: Located,
}

impl Default for Ruff {
    fn default() -> Self {
        Ruff {
            tool: Located::find("ruff"),
        }
    }
}

impl Validator for Ruff {
    fn manifest(&self) -> Manifest {
        let mut manifest = Manifest::new(
            "ruff",
            env!("CARGO_PKG_VERSION"),
            Dimension::CodeQuality,
            Scope::PerFile,
        )
        .with_globs(["**/*.py", "**/*.pyi", "**/*.ipynb", "**/pyproject.toml"])
        .with_config_files(["pyproject.toml", "ruff.toml", ".ruff.toml"]);
        manifest.can_fix = true;
        let Some(version) = self.tool.version() else {
            return manifest;
        };
        // The validator runs in the root.
        let root = std::env::current_dir().unwrap_or_default();
        let version = format!(
            "{version}; files as ruff finds them ({SELECTION}); {}",
            crate::ruff_config::describe(&root)
        );
        manifest.with_tool("ruff", version)
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let executable = self.tool.executable()?;
        let settings = Settings::parse(&request.config_json, "ruff", &KEYS)?;
        let files = wrapper::existing(request);
        if files.is_empty() {
            return wrapper::report(request, Vec::new(), out);
        }
        let mut args: Vec<String> = [
            "check",
            "--output-format",
            "json",
            "--no-cache",
            "--force-exclude",
        ]
        .map(String::from)
        .into();
        // A configuration may say `fix = true`, which makes every `ruff check` edit the files
        // it checks: a run not asked to fix must leave them as they are.
        args.push(if request.fix { "--fix" } else { "--no-fix" }.into());
        for (key, flag) in [
            ("select", "--select"),
            ("ignore", "--ignore"),
            ("extend_select", "--extend-select"),
        ] {
            let rules = settings.strings(key)?;
            if !rules.is_empty() {
                args.extend([flag.to_owned(), rules.join(",")]);
            }
        }
        let extra = settings.strings("args")?;
        let named = Named::of(Path::new(&request.root), &extra, &[CONFIG]);
        let found = found_under_root(executable, &request.root, &extra, out)?;
        let files: Vec<&str> = (files.iter())
            .map(|f| f.path.as_str())
            .filter(|path| found.contains(*path))
            .collect();
        let findings = match files.is_empty() {
            true => Vec::new(),
            false => {
                args.extend(extra);
                args.push("--".into());
                args.extend(files.iter().map(|&f| f.to_owned()));
                check(executable, &args, &request.root, files.len(), out)?
            }
        };
        let mut nested = Nested::new(Path::new(&request.root));
        wrapper::report_with_inputs(request, findings, out, |path| {
            let mut inputs = crate::imports::packages_of(path);
            inputs.extend(nested.inputs(path));
            inputs.extend(named.inputs.iter().cloned());
            inputs
        })?;
        if let Some(warning) = nested.warning() {
            out.log(LogLevel::Warn, warning)?;
        }
        named.warn("ruff", out)
    }
}

/// The files `ruff check .` (with `extra`, the settings' `args`) would check under `root`,
/// relative to it: what it finds there that its `include` takes and its excludes leave.
fn found_under_root(
    executable: &Path,
    root: &str,
    extra: &[String],
    out: &mut Reporter<'_>,
) -> Result<HashSet<String>, Error> {
    let mut args: Vec<String> = vec!["check".into(), "--show-files".into()];
    args.extend(extra.iter().cloned());
    args.extend(["--".into(), ".".into()]);
    let output = wrapper::run(executable, &args, &[], root, 0, out)?;
    if output.status.code() != Some(0) {
        return Err(wrapper::tool_failed(
            "ruff",
            &output,
            "could not list the files it checks",
        ));
    }
    let listed = String::from_utf8_lossy(&output.stdout);
    Ok(listed
        .lines()
        .filter_map(|line| wrapper::relative(root, line))
        .collect())
}

/// Ruff's findings on the files `args` name.
fn check(
    executable: &Path,
    args: &[String],
    root: &str,
    files: usize,
    out: &mut Reporter<'_>,
) -> Result<Vec<Finding>, Error> {
    let output = wrapper::run(executable, args, &[], root, files, out)?;
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(wrapper::tool_failed("ruff", &output, "failed"));
    }
    let diagnostics: Vec<Diagnostic> = serde_json::from_slice(&output.stdout).map_err(|_| {
        wrapper::tool_failed(
            "ruff",
            &output,
            "printed something that is not its JSON report",
        )
    })?;
    Ok(diagnostics
        .into_iter()
        .filter_map(|d| d.into_finding(root))
        .collect())
}

/// One element of `ruff check --output-format json`.
#[derive(Debug, Deserialize)]
struct Diagnostic {
    /// The notebook cell the location is in (from 1), for a Jupyter notebook.
    cell: Option<u32>,
    code: Option<String>,
    name: Option<String>,
    message: String,
    filename: String,
    location: Location,
    end_location: Option<Location>,
    severity: Option<String>,
    url: Option<String>,
    fix: Option<RuffFix>,
}

#[derive(Debug, Deserialize)]
struct Location {
    row: u32,
    column: u32,
}

#[derive(Debug, Deserialize)]
struct RuffFix {
    message: Option<String>,
    edits: Vec<Edit>,
}

#[derive(Debug, Deserialize)]
struct Edit {
    content: String,
    location: Location,
    end_location: Location,
}

impl Diagnostic {
    fn into_finding(self, root: &str) -> Option<Finding> {
        let path = wrapper::relative(root, &self.filename)?;
        let rule = self.code.or(self.name).unwrap_or_else(|| "ruff".to_owned());
        Some(Finding {
            path,
            line: self.location.row.max(1),
            column: self.location.column.max(1),
            end_line: self.end_location.as_ref().map(|l| l.row),
            end_column: self.end_location.as_ref().map(|l| l.column),
            rule,
            severity: match self.severity.as_deref() {
                Some("warning") => Severity::Warning,
                Some("info") => Severity::Info,
                _ => Severity::Error,
            },
            message: match self.cell {
                Some(cell) => format!("cell {cell}: {}", self.message),
                None => self.message,
            },
            help_url: self.url,
            fix: self.fix.map(|f| Fix {
                description: f.message.unwrap_or_default(),
                edits: f
                    .edits
                    .into_iter()
                    .map(|e| TextEdit {
                        line: e.location.row,
                        column: e.location.column,
                        end_line: e.end_location.row,
                        end_column: e.end_location.column,
                        replacement: e.content,
                    })
                    .collect(),
            }),
            artifacts: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diagnostic_maps_field_for_field() {
        let json = r#"[{"cell":null,"code":"F401","end_location":{"column":10,"row":1},
            "filename":"/r/a.py","fix":{"applicability":"safe","edits":[{"content":"",
            "end_location":{"column":1,"row":2},"location":{"column":1,"row":1}}],
            "message":"Remove unused import: `os`"},"location":{"column":8,"row":1},
            "message":"`os` imported but unused","name":"unused-import","noqa_row":1,
            "severity":"error","url":"https://docs.astral.sh/ruff/rules/unused-import"}]"#;
        let d: Vec<Diagnostic> = serde_json::from_str(json).expect("ruff's format");
        let f = d
            .into_iter()
            .next()
            .and_then(|d| d.into_finding("/r"))
            .expect("a finding");
        assert_eq!((f.path.as_str(), f.line, f.column), ("a.py", 1, 8));
        assert_eq!((f.end_line, f.end_column), (Some(1), Some(10)));
        assert_eq!(f.rule, "F401");
        assert_eq!(f.severity, Severity::Error);
        let fix = f.fix.expect("a fix");
        assert_eq!(fix.edits[0].end_line, 2);
    }

    #[test]
    fn a_syntax_error_without_code_keeps_ruffs_name() {
        let json = r#"[{"code":null,"name":"invalid-syntax","filename":"b.py","message":"Expected an identifier",
            "location":{"row":1,"column":5},"end_location":{"row":1,"column":6},"fix":null,"url":null}]"#;
        let d: Vec<Diagnostic> = serde_json::from_str(json).expect("ruff's format");
        let f = d
            .into_iter()
            .next()
            .and_then(|d| d.into_finding("/r"))
            .expect("a finding");
        assert_eq!(f.rule, "invalid-syntax");
    }
}
