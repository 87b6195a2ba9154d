//! Files a validator's `args` setting names: `--config ci/ruff.toml` for ruff, `-c bandit.yaml`
//! for bandit, `--project ci/pyright.json` for pyright.
//!
//! The settings are part of every cache key, but the contents of the files they name are not,
//! so an edit to `bandit.yaml` would leave every result standing. Each such file, with what a
//! configuration among them extends ([`crate::extended`]), is listed among every result's
//! inputs. One outside the root cannot be an input, which is a path under the root, and is
//! warned of instead.

use crate::extended::{Chain, Dialect};
use protocol::sdk::{Error, Reporter};
use protocol::LogLevel;
use std::path::{Path, PathBuf};

/// The files named, as inputs, and those outside the root.
#[derive(Debug, Default)]
pub struct Named {
    /// Relative to the root, `/`-separated.
    pub inputs: Vec<String>,
    outside: Vec<PathBuf>,
}

/// A flag of the tool that takes a file, and how the file is read.
#[derive(Debug)]
pub struct Flag {
    /// `--config`, `-c`…; a one-letter flag also takes its value joined (`-cFILE`).
    pub names: &'static [&'static str],
    /// How the tool reads the file when it is a configuration that can extend another.
    pub dialect: Option<&'static Dialect>,
    /// The files the tool looks for, in order, when the value is a directory (pyright's
    /// `--project DIR`).
    pub in_dir: &'static [&'static str],
}

impl Named {
    /// The files `args` names after one of `flags`, as the tool in `root` reads them. A value
    /// that names no file (ruff's `--config "lint.select = ['E']"`) is not a file's name.
    pub fn of(root: &Path, args: &[String], flags: &[Flag]) -> Named {
        let mut named = Named::default();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let found = flags.iter().find_map(|flag| {
                let value = flag.names.iter().find_map(|name| {
                    if arg == name {
                        return Some(args.clone().next()?.as_str());
                    }
                    let rest = arg.strip_prefix(name)?;
                    match (rest.strip_prefix('='), name.len()) {
                        (Some(value), _) => Some(value),
                        // `-cFILE`: only a one-letter flag takes its value joined.
                        (None, 2) if !rest.is_empty() => Some(rest),
                        _ => None,
                    }
                })?;
                Some((flag, value))
            });
            if let Some((flag, value)) = found {
                named.add(root, &root.join(value), flag);
            }
        }
        named.inputs.sort();
        named.inputs.dedup();
        named
    }

    fn add(&mut self, root: &Path, path: &Path, flag: &Flag) {
        let path = match path.is_dir() {
            true => match flag
                .in_dir
                .iter()
                .map(|f| path.join(f))
                .find(|f| f.is_file())
            {
                Some(file) => file,
                None => return,
            },
            false => path.to_owned(),
        };
        if !path.is_file() {
            return;
        }
        let chain = flag.dialect.and_then(|d| Chain::read(&path, d));
        let extended = chain.iter().flat_map(Chain::extended).map(Path::to_owned);
        for file in [path.clone()].into_iter().chain(extended) {
            match crate::extended::inside(root, &file) {
                Some(Some(relative)) => self.inputs.push(relative),
                _ => self.outside.push(file),
            }
        }
    }

    /// What to tell the user of files named outside the root, if any were.
    fn warning(&self, tool: &str) -> Option<String> {
        let read = format!("{tool} reads {}", self.outside.first()?.display());
        Some(crate::extended::unseen(&read, self.outside.len() - 1))
    }

    /// Sends [`Named::warning`] as the run's log, if there is one.
    pub fn warn(&self, tool: &str, out: &mut Reporter<'_>) -> Result<(), Error> {
        match self.warning(tool) {
            Some(warning) => out.log(LogLevel::Warn, warning),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: Flag = Flag {
        names: &["--config", "-c"],
        dialect: None,
        in_dir: &[],
    };

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn a_file_is_named_after_its_flag_in_each_form_and_only_a_file_is() {
        let root = crate::tree(&["a.yaml", "b.yaml", "c.yaml", "d.yaml", "sub/e.toml"], "");
        let named = Named::of(
            root.path(),
            &args(&[
                "--config",
                "a.yaml",
                "--config=b.yaml",
                "-cc.yaml",
                "-c",
                "./sub/e.toml",
                "--config",
                "lint.select = ['E']",
                "--configs=d.yaml",
                "d.yaml",
                "-c",
            ]),
            &[CONFIG],
        );
        assert_eq!(named.inputs, ["a.yaml", "b.yaml", "c.yaml", "sub/e.toml"]);
        assert_eq!(named.warning("tool"), None);
    }

    #[test]
    fn a_configuration_brings_what_it_extends_and_a_file_outside_is_warned_of() {
        let root = crate::tree(&["ci/base.json"], "{}");
        std::fs::write(
            root.path().join("ci/pyright.json"),
            "{\"extends\": \"base.json\"}",
        )
        .expect("written");
        let outside = tempfile::tempdir().expect("a temporary directory");
        let far = outside.path().join("far.json");
        std::fs::write(&far, "{}").expect("written");
        const DIALECT: Dialect = Dialect {
            key: "extends",
            table: |_, value| Some(value),
            expands: false,
        };
        let project = Flag {
            names: &["--project", "-p"],
            dialect: Some(&DIALECT),
            in_dir: &["missing.json", "pyright.json"],
        };
        let far = far.to_str().expect("UTF-8");
        let named = Named::of(
            root.path(),
            &args(&["-p", "ci", "--project", far]),
            &[project],
        );
        assert_eq!(named.inputs, ["ci/base.json", "ci/pyright.json"]);
        let warning = named.warning("pyright").expect("a warning");
        assert!(warning.contains("far.json, outside the root"), "{warning}");
    }
}
