//! `validator-pyright`: type-check with pyright, one finding per diagnostic.
//!
//! Pyright's results in one file depend on others (types flow through imports), so each
//! file's result lists as its inputs every file its diagnostics can depend on: its imports,
//! transitively, from the import graph (`imports.rs`). The scope is therefore `per_file`:
//! the coordinator serves each file from its cache while neither the file nor any input
//! changed, so a change to a leaf module re-checks that module, and a change to a hub re-checks
//! what imports it. The files that missed are checked together in one pyright run whose
//! configuration is the project's own, extended with `include` set to those files (pyright
//! loads the modules they import as it always does, and the project's `exclude` still
//! applies). The import graph is read while pyright runs, below its priority: the import
//! closures of a few files (an edit's worth), or for more the whole graph. Whether to list the
//! files or check the whole project (most of it missed) is decided by counting the project's
//! modules in a walk of the tree. Without ruff, which builds the graph, the scope is
//! `project`, as it was before.
//!
//! Some findings belong to the project rather than to a file: `reportImportCycles` (on in
//! `typeCheckingMode = "all"`) is found by walking every checked file's imports. Where the
//! configuration may turn it on, or names a project of its own (`args = ["--project", …]`),
//! each run checks the whole project and keeps the findings of the files that missed, which
//! the coordinator logs (`-v`). Cached results stay right there too: a cycle through a file
//! runs through its inputs.
//!
//! Pyright is run as a user runs it, `pyright --outputjson` in the root, with room to grow
//! its heap on a large tree (`node_heap.rs`); the project's Python environment (the
//! interpreter pyright asks for its search paths, and the packages installed there;
//! `environment.rs`) is part of the tool's version, and so of every cache key. Exit code 0 or
//! 1 with a JSON report is an answer; 2 (fatal), 3 (configuration error), 4 (bad arguments)
//! or unreadable output is pyright breaking. Parse errors are findings.
//!
//! Pyright positions are 0-based; findings are 1-based. Diagnostics without a rule (syntax
//! errors, unresolvable configuration) get the rule id `pyright`.

use crate::imports::{Graph, Ruff};
use crate::overlay::ConfigOverlay;
use crate::pyright_config::{Config, Include};
use crate::settings::Settings;
use crate::wrapper::{self, Located, Priority, Running};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, Finding, LogLevel, Manifest, Scope, Severity, Validate};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

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
    /// Builds the import graph; without it the scope is `project`.
    graph_tool: Located,
}

impl Default for Pyright {
    fn default() -> Self {
        Pyright {
            tool: Located::find("pyright"),
            graph_tool: Located::find("ruff"),
        }
    }
}

impl Validator for Pyright {
    fn manifest(&self) -> Manifest {
        let scope = match self.graph_tool.version() {
            Some(_) => Scope::PerFile,
            None => Scope::Project,
        };
        let manifest = Manifest::new(
            "pyright",
            env!("CARGO_PKG_VERSION"),
            Dimension::TypeSafety,
            scope,
        )
        .with_globs(["**/*.py", "**/*.pyi"])
        .with_config_files(["pyrightconfig.json", "pyproject.toml"]);
        let Some(version) = self.tool.version() else {
            return manifest;
        };
        // The validator runs in the root; the environment is the one pyright would find there.
        let root = std::env::current_dir().unwrap_or_default();
        let mut version = format!("{version}; {}", crate::environment::describe(&root));
        if let Some(ruff) = self.graph_tool.version() {
            version.push_str(&format!("; imports by ruff {ruff}"));
        }
        manifest.with_tool("pyright", version)
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let executable = self.tool.executable()?;
        let settings = Settings::parse(&request.config_json, "pyright", &KEYS)?;
        let files = wrapper::existing(request);
        if files.is_empty() {
            return wrapper::report(request, Vec::new(), out);
        }
        let root = Path::new(&request.root);
        // A few files (an edit's worth) need only their own import closures; more share most
        // of the tree, which one walk reads faster.
        let few = files.len() <= FEW;
        let ruff = self.graph_tool.executable().ok();
        let mode = settings.choice(
            "typeCheckingMode",
            &["off", "basic", "standard", "strict", "all"],
        )?;
        let extra = settings.strings("args")?;
        let project = Config::read(root);
        let whole_project = match ruff {
            None => Some("ruff, which finds the imports, is not installed".to_owned()),
            Some(_) => project_wide(&project, mode.as_deref(), &extra),
        };
        match &whole_project {
            Some(why) => out.log(LogLevel::Info, format!("checking the whole project: {why}"))?,
            None => out.log(LogLevel::Debug, format!("checking {} files", files.len()))?,
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
        let include: Option<Vec<&str>> = whole_project.is_none().then(|| {
            files
                .iter()
                .map(|f| f.path.as_str())
                .filter(|p| project.include.covers(p))
                .collect()
        });
        if include.as_ref().is_some_and(Vec::is_empty) {
            return wrapper::report(request, Vec::new(), out);
        }
        // Pyright matches every file it finds against every `include` entry. When most of the
        // project missed, listing it all saves little and costs that matching, so the project's
        // own `include` is checked and the findings of the requested files kept. (A few files
        // are never most of the project worth checking whole.)
        let known = match (few, &include) {
            (false, Some(_)) => modules(root, &project.include),
            _ => 0,
        };
        let include = include.filter(|listed| few || listed.len() * 2 < known);
        if whole_project.is_none() && include.is_none() {
            out.log(
                LogLevel::Debug,
                format!("most of the {known} modules missed: checking the whole project"),
            )?;
        }
        let overlay = match (&mode, &include) {
            (None, None) => None,
            _ => Some(ConfigOverlay::write(
                root,
                mode.as_deref(),
                include.as_deref(),
            )?),
        };
        if let Some(overlay) = &overlay {
            args.extend(["--project".to_owned(), overlay.path.display().to_string()]);
        }
        args.extend(extra);
        let started = std::time::Instant::now();
        let env: Vec<(&str, String)> = crate::node_heap::node_options()
            .map(|options| ("NODE_OPTIONS", options))
            .into_iter()
            .collect();
        let running = Running::start(executable, &args, &env, &request.root)?;
        // The graph is read while pyright runs, not before it, and below pyright's priority:
        // pyright is what the run waits for, and the graph is needed only once it is done.
        let graph = match ruff {
            Some(executable) => {
                let ruff = Ruff {
                    executable,
                    root,
                    priority: Priority::Beside,
                };
                let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
                Some(match few {
                    true => Graph::around(ruff, &paths, out)?,
                    false => Graph::build(ruff, out)?,
                })
            }
            None => None,
        };
        if let Some(graph) = &graph {
            out.log(
                LogLevel::Debug,
                format!("the import graph read has {} modules", graph.modules()),
            )?;
        }
        // Each file's import closure is worked out while pyright runs, not after it.
        let (output, mut inputs) = std::thread::scope(|scope| {
            let inputs = graph.as_ref().map(|graph| {
                scope.spawn(|| {
                    files
                        .iter()
                        .map(|f| (f.path.clone(), graph.inputs_of(&f.path)))
                        .collect::<HashMap<_, _>>()
                })
            });
            let output = running.finish(files.len(), out);
            (
                output,
                inputs.and_then(|i| i.join().ok()).unwrap_or_default(),
            )
        });
        let output = output?;
        drop(overlay);
        let took = started.elapsed().as_secs_f64();
        out.log(LogLevel::Debug, format!("pyright ran for {took:.1} s"))?;
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
        match &graph {
            Some(graph) => wrapper::report_with_inputs(request, findings, out, |path| {
                inputs.remove(path).unwrap_or_else(|| graph.inputs_of(path))
            }),
            None => wrapper::report(request, findings, out),
        }
    }
}

/// Up to how many files a run reads only their import closures ([`Graph::around`]).
const FEW: usize = 16;

/// How many Python modules under `root` the project's `include` covers, as a walk that
/// honours the ignore files and leaves out what pyright leaves out by default (hidden
/// directories, `node_modules`, `__pycache__`) finds them: enough to tell whether most of the
/// project is asked for, without waiting for the import graph (on Django, about 0.1 s against
/// 0.7 s).
fn modules(root: &Path, include: &Include) -> usize {
    let walk = ignore::WalkBuilder::new(root)
        .filter_entry(|e| !matches!(e.file_name().to_str(), Some("node_modules" | "__pycache__")))
        .build();
    let module = |e: &ignore::DirEntry| {
        let relative = e.path().strip_prefix(root).ok().and_then(Path::to_str);
        e.file_type().is_some_and(|t| t.is_file())
            && relative
                .is_some_and(|r| (r.ends_with(".py") || r.ends_with(".pyi")) && include.covers(r))
    };
    walk.filter_map(Result::ok).filter(module).count()
}

/// Why this run must check the whole project, or `None` when files can be checked on their
/// own: the configuration may report import cycles, or names a project of its own.
fn project_wide(config: &Config, mode: Option<&str>, args: &[String]) -> Option<String> {
    if let Include::Unknown(why) = &config.include {
        return Some(format!("{why}, so its include cannot be followed"));
    }
    if mode == Some("all") {
        return Some("typeCheckingMode \"all\" reports import cycles".to_owned());
    }
    if args.iter().any(|a| a == "-p" || a.starts_with("--project")) {
        return Some("`args` name a project of their own".to_owned());
    }
    config.reports_cycles.map(|name| {
        format!("{name} turns on reportImportCycles, which looks at every file's imports")
    })
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
    fn the_project_is_counted_as_pyright_and_git_would_see_it() {
        let root = tempfile::tempdir().expect("tempdir");
        for file in [
            "pkg/a.py",
            "pkg/b.pyi",
            "pkg/notes.txt",
            "tests/t.py",
            "build/gen.py",
            ".venv/lib/site.py",
            "web/node_modules/x.py",
            "pkg/__pycache__/a.py",
        ] {
            let path = root.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x = 1\n").expect("write");
        }
        std::fs::write(root.path().join(".gitignore"), "build/\n").expect("write");
        // An ignore file counts where git would read it: in a repository.
        std::fs::create_dir(root.path().join(".git")).expect("mkdir");
        assert_eq!(modules(root.path(), &Include::Everything), 3);
        std::fs::write(
            root.path().join("pyrightconfig.json"),
            r#"{"include": ["pkg"]}"#,
        )
        .expect("write");
        assert_eq!(modules(root.path(), &Config::read(root.path()).include), 2);
    }

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
