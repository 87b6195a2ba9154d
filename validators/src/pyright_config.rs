//! What of the project's own pyright configuration decides how files can be checked: its
//! `include`, whether it may report import cycles, and where else than the root it finds
//! imports.
//!
//! A whole-project run reports the files of `include` (all of the root when it is not set),
//! less `exclude`. When pyright is given a list of files instead, the list replaces `include`,
//! so the list must first be cut down to what `include` covers, or a file the project leaves
//! out (tests, say) would gain findings. `exclude` needs no such care: pyright applies it to
//! the listed files itself.
//!
//! `reportImportCycles` is found by walking every checked file's imports, so a configuration
//! that may turn it on (the rule set to anything but `none`/`false`, or `typeCheckingMode` set
//! to `all`) is checked as a whole project.
//!
//! Pyright resolves an absolute import from its `stubPath` (`typings` unless set) and its
//! `extraPaths`, and each execution environment's `root` and `extraPaths`, as well as from the
//! root and `src`; ruff knows none of them, so the import graph is told ([`Config::roots`]).
//! Those outside the root are not inputs, which are paths under the root; what they hold goes
//! into the tool's version instead ([`Config::outside`], [`crate::outside`]).
//!
//! The configuration is `pyrightconfig.json` (JSON with comments and trailing commas) or else
//! `[tool.pyright]` in `pyproject.toml`, as pyright looks for them, read once per run. One that
//! cannot be read this way, or that `extends` another, is [`Include::Unknown`], and the run
//! checks the whole project instead.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};

/// The project's `include`.
#[derive(Debug)]
pub enum Include {
    /// Not set: every file under the root.
    Everything,
    /// These paths, directories (with everything under them) or globs, relative to the root.
    Only(GlobSet),
    /// A configuration this module cannot follow, and why.
    Unknown(String),
}

/// The parts of the project's configuration that matter here.
#[derive(Debug)]
pub struct Config {
    pub include: Include,
    /// Where the configuration may turn `reportImportCycles` on, if it does.
    pub reports_cycles: Option<&'static str>,
    /// The directories other than the root and `src` that pyright finds absolute imports in,
    /// relative to the root, `/`-separated; those outside the root are in `outside`.
    pub roots: Vec<String>,
    /// The directories outside the root that pyright finds absolute imports in, as the
    /// configuration names them joined to the root.
    pub outside: Vec<PathBuf>,
    /// The virtual environment `venvPath` and `venv` name together, joined to the root:
    /// pyright finds third-party imports there instead of asking `python3` on `PATH`.
    pub venv: Option<PathBuf>,
}

impl Config {
    /// Reads the configuration in `root` as pyright finds it.
    pub fn read(root: &Path) -> Config {
        let unknown = |why: &str| Config {
            include: Include::Unknown(why.to_owned()),
            ..Config::default()
        };
        let json = root.join("pyrightconfig.json");
        if json.is_file() {
            let Ok(text) = std::fs::read_to_string(&json) else {
                return unknown("pyrightconfig.json is not readable");
            };
            return match serde_json::from_str::<serde_json::Value>(&strip_jsonc(&text)) {
                Ok(config) => Config::from_table(&config, "pyrightconfig.json", root),
                Err(_) => unknown("pyrightconfig.json is not JSON"),
            };
        }
        let Ok(text) = std::fs::read_to_string(root.join("pyproject.toml")) else {
            return Config::default();
        };
        match toml::from_str::<serde_json::Value>(&text) {
            Ok(pyproject) => match pyproject.get("tool").and_then(|t| t.get("pyright")) {
                Some(table) => Config::from_table(table, "[tool.pyright]", root),
                None => Config::default(),
            },
            Err(_) => unknown("pyproject.toml is not TOML"),
        }
    }

    fn from_table(table: &serde_json::Value, name: &'static str, root: &Path) -> Config {
        let cycles = match table.get("reportImportCycles") {
            Some(serde_json::Value::Bool(on)) => *on,
            Some(serde_json::Value::String(level)) => level != "none",
            Some(_) => true,
            None => table.get("typeCheckingMode").and_then(|m| m.as_str()) == Some("all"),
        };
        Config {
            include: Include::from_table(table, name),
            reports_cycles: cycles.then_some(name),
            venv: venv_of(table, root),
            ..roots_of(table, root)
        }
    }
}

impl Default for Config {
    /// No configuration: every file, no cycles, stubs in `typings`.
    fn default() -> Config {
        Config {
            include: Include::Everything,
            reports_cycles: None,
            roots: vec![DEFAULT_STUB_PATH.to_owned()],
            outside: Vec::new(),
            venv: None,
        }
    }
}

/// Where pyright looks for local stubs when `stubPath` is not set.
const DEFAULT_STUB_PATH: &str = "typings";

/// [`Config::roots`] and [`Config::outside`] of a configuration table, in the project at
/// `root` (the rest of the configuration is the default's).
fn roots_of(table: &serde_json::Value, root: &Path) -> Config {
    let strings = |value: Option<&serde_json::Value>| -> Vec<String> {
        let list = value.and_then(serde_json::Value::as_array);
        list.into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut found = vec![table
        .get("stubPath")
        .and_then(serde_json::Value::as_str)
        .unwrap_or(DEFAULT_STUB_PATH)
        .to_owned()];
    found.extend(strings(table.get("extraPaths")));
    let environments = table
        .get("executionEnvironments")
        .and_then(serde_json::Value::as_array);
    for environment in environments.into_iter().flatten() {
        found.extend(
            environment
                .get("root")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        );
        found.extend(strings(environment.get("extraPaths")));
    }
    let (mut roots, mut outside) = (Vec::new(), Vec::new());
    for path in &found {
        match inside(root, path) {
            Some(Some(relative)) => roots.push(relative),
            Some(None) => {}
            None => outside.push(root.join(path)),
        }
    }
    roots.sort();
    roots.dedup();
    outside.sort();
    outside.dedup();
    Config {
        roots,
        outside,
        ..Config::default()
    }
}

/// [`Config::venv`] of a configuration table.
fn venv_of(table: &serde_json::Value, root: &Path) -> Option<PathBuf> {
    let text = |key: &str| table.get(key).and_then(serde_json::Value::as_str);
    Some(root.join(text("venvPath")?).join(text("venv")?))
}

/// `path`, as the configuration gives it, relative to the project at `root` and
/// `/`-separated, if it is under the root: `Some(None)` for the root itself, `None` outside.
fn inside(root: &Path, path: &str) -> Option<Option<String>> {
    let path = Path::new(path);
    let relative = match path.strip_prefix(root) {
        Ok(relative) => relative,
        Err(_) if path.is_absolute() => return None,
        Err(_) => path,
    };
    let mut parts = Vec::new();
    for part in relative.components() {
        match part {
            std::path::Component::Normal(name) => parts.push(name.to_str()?),
            std::path::Component::CurDir => {}
            // `lib/../src`, or a name that is not UTF-8: taken as outside, which costs a walk
            // of it on every run rather than a stale result.
            _ => return None,
        }
    }
    Some((!parts.is_empty()).then(|| parts.join("/")))
}

impl Include {
    fn from_table(config: &serde_json::Value, name: &str) -> Include {
        if config.get("extends").is_some() {
            return Include::Unknown(format!("{name} extends another configuration"));
        }
        let Some(include) = config.get("include") else {
            return Include::Everything;
        };
        let Some(specs) = include.as_array().and_then(|a| {
            a.iter()
                .map(serde_json::Value::as_str)
                .collect::<Option<Vec<_>>>()
        }) else {
            return Include::Unknown(format!("{name}'s include is not a list of paths"));
        };
        let mut set = GlobSetBuilder::new();
        for spec in specs {
            let spec = spec.trim_start_matches("./").trim_end_matches('/');
            if spec.is_empty() || spec == "." {
                return Include::Everything;
            }
            for pattern in [spec.to_owned(), format!("{spec}/**")] {
                // Pyright's `*` stays within a directory; `**` crosses them.
                match GlobBuilder::new(&pattern).literal_separator(true).build() {
                    Ok(glob) => set.add(glob),
                    Err(_) => return Include::Unknown(format!("{name}'s include has `{spec}`")),
                };
            }
        }
        match set.build() {
            Ok(set) => Include::Only(set),
            Err(e) => Include::Unknown(format!("{name}'s include: {e}")),
        }
    }

    /// Whether a root-relative path is covered.
    pub fn covers(&self, path: &str) -> bool {
        match self {
            Include::Everything | Include::Unknown(_) => true,
            Include::Only(set) => set.is_match(path),
        }
    }
}

/// JSON with comments (`//`, `/* */`) and trailing commas made plain JSON; strings are kept
/// as they are.
fn strip_jsonc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push(c);
                while let Some(s) = chars.next() {
                    out.push(s);
                    match s {
                        '\\' => out.extend(chars.next()),
                        '"' => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                while chars.peek().is_some_and(|&n| n != '\n') {
                    chars.next();
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut last = ' ';
                for n in chars.by_ref() {
                    if last == '*' && n == '/' {
                        break;
                    }
                    last = n;
                }
            }
            ',' => {
                let next = chars.clone().find(|n| !n.is_whitespace());
                if !matches!(next, Some('}' | ']')) {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_of(file: &str, text: &str) -> Config {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(root.path().join(file), text).expect("written");
        Config::read(root.path())
    }

    fn include_of(file: &str, text: &str) -> Include {
        config_of(file, text).include
    }

    #[test]
    fn import_cycles_are_on_when_the_rule_or_mode_all_says_so() {
        for (text, on) in [
            ("{\"reportImportCycles\": \"warning\"}", true),
            ("{\"reportImportCycles\": true}", true),
            ("{\"reportImportCycles\": \"none\"}", false),
            ("{\"typeCheckingMode\": \"all\"}", true),
            ("{\"typeCheckingMode\": \"strict\"}", false),
        ] {
            let config = config_of("pyrightconfig.json", text);
            assert_eq!(config.reports_cycles.is_some(), on, "{text}");
        }
        let pyproject = "[tool.pyright]\nreportImportCycles = \"error\"\n";
        assert_eq!(
            config_of("pyproject.toml", pyproject).reports_cycles,
            Some("[tool.pyright]")
        );
    }

    #[test]
    fn directories_files_and_globs_are_covered_as_pyright_reads_them() {
        let include = include_of(
            "pyproject.toml",
            "[tool.pyright]\ninclude = [\"src/requests\", \"./tools/\", \"scripts/*.py\"]\n",
        );
        for (path, covered) in [
            ("src/requests/api.py", true),
            ("src/requests_extra/x.py", false),
            ("tools/a/b.py", true),
            ("scripts/run.py", true),
            ("tests/test_api.py", false),
        ] {
            assert_eq!(include.covers(path), covered, "{path}");
        }
    }

    #[test]
    fn no_include_or_no_pyright_table_is_everything() {
        assert!(matches!(
            include_of("pyproject.toml", "[tool.ruff]\nline-length = 90\n"),
            Include::Everything
        ));
        assert!(matches!(
            include_of("pyrightconfig.json", "{\"strict\": [\"a\"]}"),
            Include::Everything
        ));
    }

    #[test]
    fn pyrightconfig_may_have_comments_and_trailing_commas() {
        let include = include_of(
            "pyrightconfig.json",
            "{\n  // the package\n  \"include\": [\"pkg\", /* and */ \"a//b\",],\n}\n",
        );
        assert!(include.covers("pkg/m.py") && include.covers("a//b") && !include.covers("x.py"));
    }

    #[test]
    fn the_roots_are_the_stub_path_the_extra_paths_and_each_environments_split_by_the_root() {
        assert_eq!(Config::default().roots, ["typings"]);
        let root = tempfile::tempdir().expect("a temporary directory");
        let outside = "/elsewhere/lib";
        let inside_absolute = root.path().join("vendor/pkgs");
        let text = format!(
            "{{\"stubPath\": \"./stubs/\", \"extraPaths\": [\"lib\", \"{outside}\", \"{}\"],
              \"executionEnvironments\": [
                {{\"root\": \"services/api\", \"extraPaths\": [\"../shared\", \"common\"]}},
                {{\"root\": \".\"}}
              ]}}",
            inside_absolute.display()
        );
        std::fs::write(root.path().join("pyrightconfig.json"), text).expect("written");
        let config = Config::read(root.path());
        assert_eq!(
            config.roots,
            ["common", "lib", "services/api", "stubs", "vendor/pkgs"]
        );
        assert_eq!(
            config.outside,
            [PathBuf::from(outside), root.path().join("../shared")]
        );
        assert_eq!(config.venv, None);
    }

    #[test]
    fn a_virtual_environment_is_named_by_venv_path_and_venv_together() {
        let venv = |text: &str| config_of("pyrightconfig.json", text).venv;
        assert_eq!(venv("{\"venv\": \".venv\"}"), None);
        let named = venv("{\"venvPath\": \"envs\", \"venv\": \"py311\"}").expect("named");
        assert!(named.ends_with("envs/py311"), "{}", named.display());
    }

    #[test]
    fn what_cannot_be_followed_says_why() {
        let Include::Unknown(why) =
            include_of("pyrightconfig.json", "{\"extends\": \"base.json\"}")
        else {
            panic!("extends is not followed");
        };
        assert!(why.contains("extends"), "{why}");
        assert!(matches!(
            include_of("pyproject.toml", "[tool"),
            Include::Unknown(_)
        ));
    }
}
