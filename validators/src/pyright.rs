//! `validator-pyright`: type-check with pyright, one finding per diagnostic.
//!
//! Pyright's results in one file depend on the others (types flow through imports), so the
//! scope is `project`. Pyright is run on the project as a user runs it, `pyright --outputjson`
//! in the root with no paths, because paths on the command line override the project's own
//! `include`, `exclude` and `ignore`: the files it checks are the ones its configuration names,
//! and the findings reported are those of the requested files among them. Exit code 0 or 1 with
//! a JSON report is an answer; 2 (fatal), 3 (configuration error), 4 (bad arguments) or
//! unreadable output is pyright breaking. Parse errors are findings.
//!
//! Pyright positions are 0-based; findings are 1-based. Diagnostics without a rule (syntax
//! errors, unresolvable configuration) get the rule id `pyright`.

use crate::settings::Settings;
use crate::wrapper::{self, Located};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, Finding, Manifest, Scope, Severity, Validate};
use serde::Deserialize;

/// Keys of `[validators.pyright]`.
const KEYS: [&str; 5] = [
    "typeCheckingMode",
    "pythonVersion",
    "pythonPlatform",
    "level",
    "args",
];

/// The pyright wrapper.
#[derive(Debug, Clone)]
pub struct Pyright {
    tool: Located,
}

impl Default for Pyright {
    fn default() -> Self {
        Pyright {
            tool: Located::find("pyright"),
        }
    }
}

impl Validator for Pyright {
    fn manifest(&self) -> Manifest {
        let manifest = Manifest::new(
            "pyright",
            env!("CARGO_PKG_VERSION"),
            Dimension::TypeSafety,
            Scope::Project,
        )
        .with_globs(["**/*.py", "**/*.pyi"])
        .with_config_files(["pyrightconfig.json", "pyproject.toml"]);
        self.tool.describe(manifest)
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let executable = self.tool.executable()?;
        let settings = Settings::parse(&request.config_json, "pyright", &KEYS)?;
        let files = wrapper::existing(request);
        if files.is_empty() {
            return wrapper::report(request, Vec::new(), out);
        }
        let mut args = vec!["--outputjson".to_owned()];
        for (key, flag) in [
            ("pythonVersion", "--pythonversion"),
            ("pythonPlatform", "--pythonplatform"),
        ] {
            if let Some(value) = settings.string(key)? {
                args.extend([flag.to_owned(), value]);
            }
        }
        if let Some(level) = settings.choice("level", &["error", "warning"])? {
            args.extend(["--level".to_owned(), level]);
        }
        let overlay = match settings.choice(
            "typeCheckingMode",
            &["off", "basic", "standard", "strict", "all"],
        )? {
            Some(mode) => Some(ConfigOverlay::write(&request.root, &mode)?),
            None => None,
        };
        if let Some(overlay) = &overlay {
            args.extend(["--project".to_owned(), overlay.path.display().to_string()]);
        }
        args.extend(settings.strings("args")?);
        let output = wrapper::run(executable, &args, &request.root, files.len(), out)?;
        drop(overlay);
        if !matches!(output.status.code(), Some(0 | 1)) {
            return Err(wrapper::tool_failed("pyright", &output, "failed"));
        }
        let report: Report = serde_json::from_slice(&output.stdout).map_err(|_| {
            wrapper::tool_failed(
                "pyright",
                &output,
                "printed something that is not its JSON report",
            )
        })?;
        let findings = report
            .general_diagnostics
            .into_iter()
            .filter_map(|d| d.into_finding(&request.root))
            .collect();
        wrapper::report(request, findings, out)
    }
}

/// A configuration file that sets `typeCheckingMode` on top of the project's own, which pyright
/// has no command-line flag for. It sits in the root (so relative paths and imports resolve as
/// in a direct run), extends the project's configuration, and is removed when dropped.
struct ConfigOverlay {
    path: std::path::PathBuf,
}

impl ConfigOverlay {
    fn write(root: &str, mode: &str) -> Result<ConfigOverlay, Error> {
        let root = std::path::Path::new(root);
        let base = ["pyrightconfig.json", "pyproject.toml"]
            .into_iter()
            .find(|name| root.join(name).is_file());
        let mut config = serde_json::json!({ "typeCheckingMode": mode });
        if let Some(base) = base {
            config["extends"] = format!("./{base}").into();
        }
        let path = root.join(format!(".orchestrator-pyright-{}.json", std::process::id()));
        std::fs::write(&path, config.to_string())
            .map_err(|e| Error::failed(format!("cannot write {}: {e}", path.display())))?;
        Ok(ConfigOverlay { path })
    }
}

impl Drop for ConfigOverlay {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The parts of `pyright --outputjson` that matter here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    general_diagnostics: Vec<Diagnostic>,
}

#[derive(Debug, Deserialize)]
struct Diagnostic {
    file: String,
    severity: String,
    message: String,
    range: Option<Range>,
    rule: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Range {
    start: Position,
    end: Position,
}

#[derive(Debug, Deserialize)]
struct Position {
    line: u32,
    character: u32,
}

impl Diagnostic {
    fn into_finding(self, root: &str) -> Option<Finding> {
        let path = wrapper::relative(root, &self.file)?;
        let (line, column, end) = match self.range {
            Some(r) => (r.start.line + 1, r.start.character + 1, Some(r.end)),
            None => (1, 1, None),
        };
        Some(Finding {
            path,
            line,
            column,
            end_line: end.as_ref().map(|e| e.line + 1),
            end_column: end.as_ref().map(|e| e.character + 1),
            rule: self.rule.unwrap_or_else(|| "pyright".to_owned()),
            severity: match self.severity.as_str() {
                "error" => Severity::Error,
                "warning" => Severity::Warning,
                _ => Severity::Info,
            },
            message: self.message,
            help_url: None,
            fix: None,
            artifacts: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_become_one_based_and_severities_map() {
        let json = r#"{"version":"1.1.414","generalDiagnostics":[
            {"file":"/r/a.py","severity":"error","message":"bad","range":{"start":{"line":5,"character":20},
             "end":{"line":5,"character":21}},"rule":"reportArgumentType"},
            {"file":"/r/b.py","severity":"information","message":"syntax",
             "range":{"start":{"line":0,"character":0},"end":{"line":0,"character":3}}}],
            "summary":{"filesAnalyzed":2}}"#;
        let report: Report = serde_json::from_str(json).expect("pyright's format");
        let f: Vec<Finding> = report
            .general_diagnostics
            .into_iter()
            .filter_map(|d| d.into_finding("/r"))
            .collect();
        assert_eq!((f[0].line, f[0].column, f[0].end_column), (6, 21, Some(22)));
        assert_eq!(f[0].rule, "reportArgumentType");
        assert_eq!(
            (f[1].rule.as_str(), f[1].severity),
            ("pyright", Severity::Info)
        );
    }
}
