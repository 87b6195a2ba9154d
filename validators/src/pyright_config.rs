//! What of the project's own pyright configuration decides how files can be checked: its
//! `include`, and whether it may report import cycles.
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
//! The configuration is `pyrightconfig.json` (JSON with comments and trailing commas) or else
//! `[tool.pyright]` in `pyproject.toml`, as pyright looks for them, read once per run. One that
//! cannot be read this way, or that `extends` another, is [`Include::Unknown`], and the run
//! checks the whole project instead.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::path::Path;

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
}

impl Config {
    /// Reads the configuration in `root` as pyright finds it.
    pub fn read(root: &Path) -> Config {
        let unknown = |why: &str| Config {
            include: Include::Unknown(why.to_owned()),
            reports_cycles: None,
        };
        let json = root.join("pyrightconfig.json");
        if json.is_file() {
            let Ok(text) = std::fs::read_to_string(&json) else {
                return unknown("pyrightconfig.json is not readable");
            };
            return match serde_json::from_str::<serde_json::Value>(&strip_jsonc(&text)) {
                Ok(config) => Config::from_table(&config, "pyrightconfig.json"),
                Err(_) => unknown("pyrightconfig.json is not JSON"),
            };
        }
        let Ok(text) = std::fs::read_to_string(root.join("pyproject.toml")) else {
            return Config {
                include: Include::Everything,
                reports_cycles: None,
            };
        };
        match toml::from_str::<serde_json::Value>(&text) {
            Ok(pyproject) => match pyproject.get("tool").and_then(|t| t.get("pyright")) {
                Some(table) => Config::from_table(table, "[tool.pyright]"),
                None => Config {
                    include: Include::Everything,
                    reports_cycles: None,
                },
            },
            Err(_) => unknown("pyproject.toml is not TOML"),
        }
    }

    fn from_table(table: &serde_json::Value, name: &'static str) -> Config {
        let cycles = match table.get("reportImportCycles") {
            Some(serde_json::Value::Bool(on)) => *on,
            Some(serde_json::Value::String(level)) => level != "none",
            Some(_) => true,
            None => table.get("typeCheckingMode").and_then(|m| m.as_str()) == Some("all"),
        };
        Config {
            include: Include::from_table(table, name),
            reports_cycles: cycles.then_some(name),
        }
    }
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
