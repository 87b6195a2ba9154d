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
//! applies); on a project with more modules than one pyright process holds, in several runs,
//! one after another (`pyright_batches.rs`). The import graph is read while pyright runs, below its priority: the import
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

use crate::imports::{Graph, Places, Ruff};
use crate::named::{Flag, Named};
use crate::overlay::ConfigOverlay;
use crate::pyright_config::{Config, Include};
use crate::settings::Settings;
use crate::wrapper::{self, Listed, Located, Priority, Running};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, FileInput, Finding, LogLevel, Manifest, Scope, Severity, Validate};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Keys of `[validators.pyright]`.
const KEYS: [&str; 6] = [
    "typeCheckingMode",
    "pythonVersion",
    "pythonPlatform",
    "level",
    "args",
    "modulesPerRun",
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
        let config = Config::read(&root);
        let environment = crate::environment::describe(&root, &config);
        let mut version = format!("{version}; {environment}");
        if let Some(configuration) = &config.described {
            version.push_str(&format!("; {configuration}"));
        }
        if let Some(ruff) = self.graph_tool.version() {
            let environment = crate::environment::names(&root, &config);
            version.push_str(&format!(
                "; imports by ruff {ruff} and statements (inputs {}); {}",
                crate::imports::INPUTS,
                crate::imports::shadowing(
                    &root,
                    Places {
                        roots: &config.roots,
                        environment: &environment,
                    }
                )
            ));
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
        let project = Config::read(root);
        let environment = crate::environment::names(root, &project);
        let ruff = self.graph_tool.executable().ok().map(|executable| Ruff {
            executable,
            root,
            priority: Priority::Beside,
            places: Places {
                roots: &project.roots,
                environment: &environment,
            },
        });
        let mode = settings.choice(
            "typeCheckingMode",
            &["off", "basic", "standard", "strict", "all"],
        )?;
        let extra = settings.strings("args")?;
        let named = Named::of(root, &extra, &[PROJECT]);
        if let Some(flag) = environment_flag(&extra) {
            out.log(
                LogLevel::Warn,
                format!(
                    "`args` name {flag}: results are keyed on the Python environment pyright \
                     finds without it, so an install there does not check files again; set \
                     venvPath and venv in pyright's configuration instead"
                ),
            )?;
        }
        let whole_project = match ruff {
            None => Some("ruff, which finds the imports, is not installed".to_owned()),
            Some(_) => project_wide(&project, mode.as_deref(), &extra),
        };
        match &whole_project {
            Some(why) => out.log(LogLevel::Info, format!("checking the whole project: {why}"))?,
            None => out.log(LogLevel::Debug, format!("checking {} files", files.len()))?,
        }
        let heap = crate::node_heap::heap();
        let budget = match settings.count("modulesPerRun")? {
            Some(0) => {
                return Err(Error::config(
                    "validators.pyright.modulesPerRun must be 1 or more (or left out, to size \
                     pyright's runs by node's heap limit)",
                ))
            }
            Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
            None => crate::pyright_batches::budget(heap.limit_mib),
        };
        let pyright = Command {
            executable,
            root: &request.root,
            args: common_args(&settings)?,
            extra,
            mode,
            env: heap
                .options
                .map(|o| ("NODE_OPTIONS", o))
                .into_iter()
                .collect(),
        };
        let include: Option<Vec<&FileInput>> = whole_project.is_none().then(|| {
            files
                .iter()
                .copied()
                .filter(|f| project.include.covers(&f.path))
                .collect()
        });
        if include.as_ref().is_some_and(Vec::is_empty) {
            return wrapper::report(request, Vec::new(), out);
        }
        let known = match (few, &include) {
            (false, Some(_)) => modules(root, &project.include),
            _ => 0,
        };
        if let (Some(ruff), Some(listed)) = (ruff, include.as_ref()) {
            if known > budget {
                // The graph splits the runs, so it is read before them, at pyright's priority:
                // for part of the project, only what the requested files import.
                let ruff = Ruff {
                    priority: Priority::Own,
                    ..ruff
                };
                let graph = graph_of(ruff, &files, files.len() * 2 < known, out)?;
                return pyright.check_in_runs(request, listed, &graph, budget, out);
            }
        }
        // Pyright matches every file it finds against every `include` entry. When most of the
        // project missed, listing it all saves little and costs that matching, so the project's
        // own `include` is checked and the findings of the requested files kept. (A few files
        // are never most of the project worth checking whole.)
        let include: Option<Vec<&str>> = include
            .filter(|listed| few || listed.len() * 2 < known)
            .map(|listed| listed.iter().map(|f| f.path.as_str()).collect());
        if whole_project.is_none() && include.is_none() {
            out.log(
                LogLevel::Debug,
                format!("most of the {known} modules missed: checking the whole project"),
            )?;
        }
        let started = pyright.start(include.as_deref())?;
        // The graph is read while pyright runs, not before it, and below pyright's priority:
        // pyright is what the run waits for, and the graph is needed only once it is done.
        let graph = match ruff {
            Some(ruff) => Some(graph_of(ruff, &files, few, out)?),
            None => None,
        };
        if let Some(graph) = &graph {
            out.log(
                LogLevel::Debug,
                format!("the import graph read has {} modules", graph.modules()),
            )?;
        }
        // Each file's import closure is worked out while pyright runs, not after it.
        let (findings, mut inputs) = std::thread::scope(|scope| {
            let inputs = graph.as_ref().map(|graph| {
                scope.spawn(|| {
                    files
                        .iter()
                        .map(|f| (f.path.clone(), graph.input_numbers(&f.path)))
                        .collect::<HashMap<_, _>>()
                })
            });
            let findings = started.findings(0, files.len(), out);
            (
                findings,
                inputs.and_then(|i| i.join().ok()).unwrap_or_default(),
            )
        });
        let findings = findings?;
        // The graph's paths and the named files go once; the results name them by number,
        // which on Django spares the coordinator two and a half million paths.
        let graph = match graph {
            Some(graph) => Some((out.input_paths(graph.paths().to_vec())?, graph)),
            None => None,
        };
        let first_named = out.input_paths(named.inputs.clone())?;
        let named_numbers = (0..named.inputs.len()).map(|n| first_named + n as u32);
        wrapper::report_with_inputs(request, findings, out, |path| {
            let mut found: Vec<u32> = match &graph {
                Some((first, graph)) => (inputs.remove(path))
                    .unwrap_or_else(|| graph.input_numbers(path))
                    .into_iter()
                    .map(|n| *first + n)
                    .collect(),
                None => Vec::new(),
            };
            found.extend(named_numbers.clone());
            Listed::Numbers(found)
        })?;
        named.warn("pyright", out)
    }
}

/// Pyright's `--project FILE` (or a directory holding one) in the `args` setting: a
/// configuration, read with what it extends.
const PROJECT: Flag = Flag {
    names: &["--project", "-p"],
    dialect: Some(&crate::pyright_config::DIALECT),
    in_dir: &["pyrightconfig.json", "pyproject.toml"],
};

/// The flag in `args` that points pyright at another Python environment than the one the
/// handshake described (which is part of every key), if one does.
fn environment_flag(args: &[String]) -> Option<&str> {
    args.iter().map(String::as_str).find(|arg| {
        ["--pythonpath", "--venvpath", "-v"]
            .iter()
            .any(|flag| arg == flag || arg.strip_prefix(flag).is_some_and(|r| r.starts_with('=')))
    })
}

/// How pyright is run for a request: what every run of it shares.
struct Command<'a> {
    executable: &'a Path,
    root: &'a str,
    /// `--outputjson` and the flags the settings give.
    args: Vec<String>,
    /// The settings' `args`, last.
    extra: Vec<String>,
    mode: Option<String>,
    env: Vec<(&'static str, String)>,
}

/// A pyright run started, with the overlay configuration it reads, if any.
struct Started {
    running: Running,
    overlay: Option<ConfigOverlay>,
    at: std::time::Instant,
    root: String,
}

impl Command<'_> {
    /// Starts pyright on `include`, or on the project's own `include` when `None`.
    fn start(&self, include: Option<&[&str]>) -> Result<Started, Error> {
        let root = Path::new(self.root);
        let overlay = match (&self.mode, include) {
            (None, None) => None,
            _ => Some(ConfigOverlay::write(root, self.mode.as_deref(), include)?),
        };
        let mut args = self.args.clone();
        if let Some(overlay) = &overlay {
            args.extend(["--project".to_owned(), overlay.path.display().to_string()]);
        }
        args.extend(self.extra.iter().cloned());
        Ok(Started {
            running: Running::start(self.executable, &args, &self.env, self.root)?,
            overlay,
            at: std::time::Instant::now(),
            root: self.root.to_owned(),
        })
    }

    /// Checks `listed` (the requested files pyright is to check) in runs of at most `budget`
    /// modules each (`pyright_batches.rs`), answering each run's files as it ends, then the
    /// requested files no run checks. `graph` orders and splits them; the next run is worked
    /// out while one runs.
    fn check_in_runs(
        &self,
        request: &Validate,
        listed: &[&FileInput],
        graph: &Graph,
        budget: usize,
        out: &mut Reporter<'_>,
    ) -> Result<(), Error> {
        // Files that import one another go together, so that a run loads fewer modules that
        // another run loads too (a package and its tests, not every package and then every
        // test); within a group, by path.
        let groups = graph.groups();
        let mut listed = listed.to_vec();
        listed.sort_by_cached_key(|f| {
            let group = groups.get(f.path.as_str()).copied().unwrap_or(&f.path);
            (group.to_owned(), f.path.clone())
        });
        let paths: Vec<&str> = listed.iter().map(|f| f.path.as_str()).collect();
        let next_run = |start: usize| {
            crate::pyright_batches::next_run(
                &paths,
                start,
                |f| graph.inputs_of(f),
                |m| graph.knows(m),
                budget,
            )
        };
        let mut run = next_run(0);
        let mut start = 0;
        let mut runs = 0;
        while !run.is_empty() {
            let end = start + run.len();
            runs += 1;
            out.log(
                LogLevel::Info,
                format!(
                    "pyright run {runs}: {} of {} files ({}..), at most {budget} modules a run",
                    run.len(),
                    paths.len(),
                    paths[start]
                ),
            )?;
            let started = self.start(Some(&paths[start..end]))?;
            let (findings, following) = std::thread::scope(|scope| {
                let following = scope.spawn(|| match end < paths.len() {
                    true => next_run(end),
                    false => Vec::new(),
                });
                let findings = started.findings(start, paths.len(), out);
                (findings, following.join().unwrap_or_default())
            });
            let mut inputs = run.into_iter();
            wrapper::report_files(
                request,
                listed[start..end].iter().copied(),
                findings?,
                out,
                |_| inputs.next().unwrap_or_default(),
            )?;
            (start, run) = (end, following);
        }
        let checked: HashSet<&str> = paths.into_iter().collect();
        let rest = request
            .files
            .iter()
            .filter(|f| !checked.contains(f.path.as_str()));
        wrapper::report_files(request, rest, Vec::new(), out, |path| graph.inputs_of(path))
    }
}

impl Started {
    /// Waits for pyright (`done` of the request's `files` answered before it) and reads its
    /// findings.
    fn findings(
        self,
        done: usize,
        files: usize,
        out: &mut Reporter<'_>,
    ) -> Result<Vec<Finding>, Error> {
        let output = self.running.finish(done, files, out);
        drop(self.overlay);
        let output = output?;
        let took = self.at.elapsed().as_secs_f64();
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
        Ok(report
            .general_diagnostics
            .into_iter()
            .filter_map(|d| d.into_finding(&self.root))
            .collect())
    }
}

/// The import graph that [`Graph::inputs_of`] reads for `files`: only their closures when
/// they are `part` of the project ([`Graph::around`]), else the whole tree's.
fn graph_of(
    ruff: Ruff<'_>,
    files: &[&FileInput],
    part: bool,
    out: &mut Reporter<'_>,
) -> Result<Graph, Error> {
    match part {
        true => {
            let paths: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
            Graph::around(ruff, &paths, out)
        }
        false => Graph::build(ruff, out),
    }
}

/// `--outputjson` and the flags of the settings that pyright has flags for.
fn common_args(settings: &Settings) -> Result<Vec<String>, Error> {
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
    Ok(args)
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
    fn a_flag_that_picks_another_python_environment_is_found_in_each_form() {
        let args = |list: &[&str]| list.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            environment_flag(&args(&["--verbose", "--level", "error"])),
            None
        );
        assert_eq!(environment_flag(&args(&["--venvpathx"])), None);
        for flag in ["--pythonpath", "--venvpath=envs", "-v"] {
            assert_eq!(
                environment_flag(&args(&["--verbose", flag, "x"])),
                Some(flag)
            );
        }
    }

    #[test]
    fn the_project_is_counted_as_pyright_and_git_would_see_it() {
        let root = crate::tree(
            &[
                "pkg/a.py",
                "pkg/b.pyi",
                "pkg/notes.txt",
                "tests/t.py",
                "build/gen.py",
                ".venv/lib/site.py",
                "web/node_modules/x.py",
                "pkg/__pycache__/a.py",
            ],
            "x = 1\n",
        );
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
