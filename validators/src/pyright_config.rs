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
//! `[tool.pyright]` in `pyproject.toml`, as pyright looks for them, read once per run, with the
//! files it `extends` ([`crate::extended`]): a setting comes from the nearest file that has it,
//! its paths relative to that file. One that cannot be read this way, or whose `include` names
//! a path outside the root, is [`Include::Unknown`], and the run checks the whole project
//! instead.

use crate::extended::{Chain, Dialect};
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
    /// A digest of every file of the configuration, those it extends among them, which the
    /// coordinator does not see ([`crate::extended`]); `None` without a configuration.
    pub described: Option<String>,
}

impl Config {
    /// Reads the configuration in `root` as pyright finds it, with what it extends.
    pub fn read(root: &Path) -> Config {
        let first = ["pyrightconfig.json", "pyproject.toml"]
            .into_iter()
            .find_map(|name| Some((name, Chain::read(&root.join(name), &DIALECT)?)));
        let Some((file, chain)) = first else {
            return Config::default();
        };
        let name = match file {
            "pyproject.toml" => "[tool.pyright]",
            _ => file,
        };
        let described = Some(chain.describe(root));
        if chain.layers.is_empty() {
            return Config {
                include: Include::Unknown(chain.broken.unwrap_or_default()),
                described,
                ..Config::default()
            };
        }
        let cycles = match chain.get("reportImportCycles").map(|(_, v)| v) {
            Some(serde_json::Value::Bool(on)) => *on,
            Some(serde_json::Value::String(level)) => level != "none",
            Some(_) => true,
            None => chain.get("typeCheckingMode").and_then(|(_, m)| m.as_str()) == Some("all"),
        };
        Config {
            include: Include::from_chain(&chain, name, root),
            reports_cycles: cycles.then_some(name),
            venv: venv_of(&chain),
            described,
            ..roots_of(&chain, root)
        }
    }
}

/// How pyright reads a configuration file and the one it `extends`: the whole of a `.json`
/// file, `[tool.pyright]` of a `.toml` one.
pub const DIALECT: Dialect = Dialect {
    key: "extends",
    table: |path, value| match path.extension().is_some_and(|e| e == "json") {
        true => Some(value),
        false => value.get("tool")?.get("pyright").cloned(),
    },
    expands: false,
};

impl Default for Config {
    /// No configuration: every file, no cycles, stubs in `typings`.
    fn default() -> Config {
        Config {
            include: Include::Everything,
            reports_cycles: None,
            roots: vec![DEFAULT_STUB_PATH.to_owned()],
            outside: Vec::new(),
            venv: None,
            described: None,
        }
    }
}

/// Where pyright looks for local stubs when `stubPath` is not set.
const DEFAULT_STUB_PATH: &str = "typings";

/// [`Config::roots`] and [`Config::outside`] of a configuration, in the project at `root` (the
/// rest of the configuration is the default's). Each path is relative to the file that sets it.
fn roots_of(chain: &Chain, root: &Path) -> Config {
    fn strings(value: Option<&serde_json::Value>) -> Vec<&str> {
        let list = value.and_then(serde_json::Value::as_array);
        list.into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_str)
            .collect()
    }
    let mut found = vec![match chain.get("stubPath") {
        Some((dir, path)) => dir.join(path.as_str().unwrap_or(DEFAULT_STUB_PATH)),
        None => root.join(DEFAULT_STUB_PATH),
    }];
    if let Some((dir, paths)) = chain.get("extraPaths") {
        found.extend(strings(Some(paths)).into_iter().map(|p| dir.join(p)));
    }
    if let Some((dir, environments)) = chain.get("executionEnvironments") {
        for environment in environments.as_array().into_iter().flatten() {
            let root = environment.get("root").and_then(serde_json::Value::as_str);
            found.extend(root.map(|r| dir.join(r)));
            let extra = strings(environment.get("extraPaths"));
            found.extend(extra.into_iter().map(|p| dir.join(p)));
        }
    }
    let (mut roots, mut outside) = (Vec::new(), Vec::new());
    for path in found {
        match crate::extended::inside(root, &path) {
            Some(Some(relative)) => roots.push(relative),
            Some(None) => {}
            None => outside.push(path),
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

/// [`Config::venv`]: `venvPath` (relative to the file that sets it) joined with `venv`.
fn venv_of(chain: &Chain) -> Option<PathBuf> {
    let (dir, path) = chain.get("venvPath")?;
    let (_, venv) = chain.get("venv")?;
    Some(dir.join(path.as_str()?).join(venv.as_str()?))
}

impl Include {
    fn from_chain(chain: &Chain, name: &str, root: &Path) -> Include {
        if let Some(why) = &chain.broken {
            return Include::Unknown(why.clone());
        }
        let Some((dir, include)) = chain.get("include") else {
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
            // Relative to the file that sets it, which may be one extended from elsewhere.
            let spec = match crate::extended::inside(root, &dir.join(spec)) {
                Some(Some(spec)) => spec,
                Some(None) => return Include::Everything,
                None => {
                    return Include::Unknown(format!(
                        "{name}'s include has `{spec}` (in {}), outside the root",
                        dir.display()
                    ))
                }
            };
            for pattern in [spec.clone(), format!("{spec}/**")] {
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
        assert!(
            include.covers("pkg/m.py") && include.covers("a/b/c.py") && !include.covers("x.py")
        );
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
    fn an_extended_file_gives_what_the_nearer_one_does_not_set_relative_to_itself() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let root = root.path();
        std::fs::create_dir(root.join("configs")).expect("made");
        let base = root.join("configs/base.json");
        let write = |path: &Path, text: &str| std::fs::write(path, text).expect("written");
        write(
            &base,
            "{\"extraPaths\": [\"../lib\", \"../../shared\"], \"venvPath\": \"..\",
              \"venv\": \".venv\", \"reportImportCycles\": \"error\", \"include\": [\"../src\"]}",
        );
        let config = root.join("pyrightconfig.json");
        write(
            &config,
            "{\"extends\": \"configs/base.json\", \"include\": [\"pkg\"],
              \"reportImportCycles\": \"none\"}",
        );
        let read = Config::read(root);
        assert_eq!(read.roots, ["lib", "typings"]);
        assert_eq!(read.outside, [root.join("configs/../../shared")]);
        assert_eq!(read.venv, Some(root.join("configs/../.venv")));
        assert_eq!(read.reports_cycles, None);
        assert!(read.include.covers("pkg/a.py") && !read.include.covers("src/a.py"));
        write(&config, "{\"extends\": \"configs/base.json\"}");
        let read = Config::read(root);
        assert_eq!(read.reports_cycles, Some("pyrightconfig.json"));
        assert!(read.include.covers("src/a.py") && !read.include.covers("pkg/a.py"));
        let described = read.described.expect("described");
        write(&base, "{}");
        assert_ne!(
            Config::read(root).described,
            Some(described),
            "the base edited"
        );
        write(&base, "{\"include\": [\"../../elsewhere\"]}");
        let Include::Unknown(why) = Config::read(root).include else {
            panic!("an include outside the root is not followed");
        };
        assert!(why.contains("outside the root"), "{why}");
    }

    #[test]
    fn what_cannot_be_followed_says_why() {
        let Include::Unknown(why) =
            include_of("pyrightconfig.json", "{\"extends\": \"base.json\"}")
        else {
            panic!("a missing base is not followed");
        };
        assert!(why.contains("base.json (extended by"), "{why}");
        assert!(matches!(
            include_of("pyproject.toml", "[tool"),
            Include::Unknown(_)
        ));
    }
}
