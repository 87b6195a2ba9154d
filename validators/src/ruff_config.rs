//! What of ruff's own configuration a result rests on beyond the files the coordinator keys on
//! by name.
//!
//! Ruff checks a file with the nearest of `.ruff.toml`, `ruff.toml` and a `pyproject.toml` with
//! `[tool.ruff]`, in its directory or one above it; with none, the user's own (in
//! `~/.config/ruff/`). The coordinator keys each result on those names in the file's directory
//! and above. What it cannot see:
//! - **The files a configuration `extend`s**, whatever their names and wherever they are
//!   ([`crate::extended`]). The chain of the configuration that applies at the root (found
//!   there, above it, or the user's) goes into the tool's version ([`describe`]). One below the
//!   root is found only when its files are checked: the files it extends are listed among their
//!   results' inputs ([`Nested`]); one outside the root cannot be, and is warned of.
//! - **The user's configuration**, which is no file of the project: in the same digest.
//! - **Which top-level names are the project's**: isort's sections and the type-checking rules
//!   (`I001`, `TC001`…) call an import first-party when a directory or a `.py` file of its first
//!   name is in one of ruff's `src` directories (the directory of the configuration and its
//!   `src` unless the configuration sets `src`, relative to the file that sets it). Those names
//!   go into the tool's version, so adding or removing one checks every file again.

use crate::extended::{Chain, Dialect};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

/// The files ruff takes its configuration from in a directory, in the order it prefers them.
const NAMES: [&str; 3] = [".ruff.toml", "ruff.toml", "pyproject.toml"];

/// How ruff reads a configuration file and the one it `extend`s: `[tool.ruff]` of a
/// `pyproject.toml`, the whole of any other.
pub const DIALECT: Dialect = Dialect {
    key: "extend",
    table: |path, value| match path.file_name().is_some_and(|n| n == "pyproject.toml") {
        true => value.get("tool")?.get("ruff").cloned(),
        false => Some(value),
    },
    expands: true,
};

/// `first-party names 1f2e3d4c5b6a; configuration 0a1b2c3d4e5f` for the project at `root`:
/// what [`first_party`] finds, and the configuration that applies at the root with what it
/// extends (left out when there is none).
pub fn describe(root: &Path) -> String {
    let chain = applying(root);
    let mut described = format!("first-party names {}", first_party(root, chain.as_ref()));
    if let Some(chain) = &chain {
        described.push_str(&format!("; {}", chain.describe(root)));
    }
    described
}

/// The configuration ruff uses for a file in `dir` when none is nearer: the first in `dir` or
/// above it, else the user's.
fn applying(dir: &Path) -> Option<Chain> {
    dir.ancestors().find_map(in_dir).or_else(|| {
        let config = match std::env::var_os("XDG_CONFIG_HOME") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
        };
        in_dir(&config.join("ruff"))
    })
}

/// The configuration ruff takes from `dir` itself, if it has one.
fn in_dir(dir: &Path) -> Option<Chain> {
    NAMES
        .iter()
        .find_map(|name| Chain::read(&dir.join(name), &DIALECT))
}

/// A digest of the names ruff's isort calls first-party by what is on disk: each directory
/// and each `.py` and `.pyi` file's stem in each of ruff's `src` directories for the project
/// at `root`, whose configuration is `chain`.
fn first_party(root: &Path, chain: Option<&Chain>) -> String {
    let mut h = blake3::Hasher::new();
    for src in sources(root, chain) {
        let names = crate::imports::module_names(&src, false);
        // Named relative to the root where they are under it, so that clones share results.
        let src = match crate::extended::inside(root, &src) {
            Some(relative) => relative.unwrap_or_else(|| ".".to_owned()),
            None => src.display().to_string(),
        };
        for name in [src].into_iter().chain(names) {
            h.update(name.as_bytes());
            h.update(&[0]);
        }
        h.update(&[1]);
    }
    h.finalize().to_hex()[..12].to_owned()
}

/// Ruff's `src` directories: as the configuration sets them, relative to the file that does;
/// else the configuration's directory (the root without one) and its `src`.
fn sources(root: &Path, chain: Option<&Chain>) -> Vec<PathBuf> {
    if let Some((dir, list)) = chain.and_then(|c| c.get("src")) {
        let list = list.as_array().into_iter().flatten();
        return list
            .filter_map(serde_json::Value::as_str)
            .map(|src| dir.join(src))
            .collect();
    }
    let project = chain
        .and_then(|c| c.layers.first())
        .map_or(root, |layer| layer.dir());
    vec![project.to_owned(), project.join("src")]
}

/// The files extended by the configurations below the root, for each checked file: the
/// coordinator keys the file on the configurations themselves, not on what they extend.
#[derive(Debug)]
pub struct Nested<'r> {
    root: &'r Path,
    /// Per directory (relative to the root), the inputs of the files in it.
    by_dir: HashMap<String, Vec<String>>,
    /// Files extended from outside the root, each with the configuration that does.
    outside: BTreeSet<(PathBuf, PathBuf)>,
}

impl<'r> Nested<'r> {
    pub fn new(root: &'r Path) -> Nested<'r> {
        Nested {
            root,
            by_dir: HashMap::new(),
            outside: BTreeSet::new(),
        }
    }

    /// The files the configuration of `file` (relative to the root) extends, relative to the
    /// root; none when that configuration is the root's or one above it ([`describe`] has it).
    pub fn inputs(&mut self, file: &str) -> Vec<String> {
        self.of_dir(crate::imports::parent(file))
    }

    fn of_dir(&mut self, dir: &str) -> Vec<String> {
        if dir.is_empty() {
            return Vec::new();
        }
        if let Some(inputs) = self.by_dir.get(dir) {
            return inputs.clone();
        }
        let inputs = match in_dir(&self.root.join(dir)) {
            Some(chain) => {
                let mut inputs = Vec::new();
                for file in chain.extended() {
                    match crate::extended::inside(self.root, file) {
                        Some(Some(relative)) => inputs.push(relative),
                        _ => {
                            let config = chain.layers.first().map(|l| l.file.clone());
                            self.outside
                                .insert((config.unwrap_or_default(), file.to_owned()));
                        }
                    }
                }
                inputs
            }
            None => self.of_dir(crate::imports::parent(dir)),
        };
        self.by_dir.insert(dir.to_owned(), inputs.clone());
        inputs
    }

    /// What to tell the user of files extended from outside the root, if any were.
    pub fn warning(&self) -> Option<String> {
        let (config, file) = self.outside.first()?;
        let read = format!("{} extends {}", config.display(), file.display());
        Some(crate::extended::unseen(&read, self.outside.len() - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_party_names_are_the_python_names_in_the_sources_ruff_is_configured_with() {
        let root = crate::tree(&["lib/pkg/__init__.py", "top.py", "src/other.pyi"], "");
        let at = |p: &str| root.path().join(p);
        let names = || first_party(root.path(), applying(root.path()).as_ref());
        assert_eq!(sources(root.path(), None), [at(""), at("src")]);
        let before = names();
        std::fs::create_dir(at(".cache")).expect("a directory");
        std::fs::write(at("notes.txt"), "").expect("written");
        assert_eq!(names(), before, "no Python name");
        std::fs::write(at("src/helpers.py"), "").expect("written");
        let added = names();
        assert_ne!(added, before, "a module in src");
        std::fs::write(at("ruff.toml"), "src = [\"lib\"]\n").expect("written");
        let chain = applying(root.path());
        assert_eq!(sources(root.path(), chain.as_ref()), [at("lib")]);
        let configured = names();
        std::fs::write(at("src/more.py"), "").expect("written");
        assert_eq!(names(), configured, "src is not one any more");
    }

    #[test]
    fn src_is_read_through_extend_relative_to_the_file_that_sets_it() {
        let root = crate::tree(&["lint/base.toml", "lint/lib/m.py"], "src = [\"lib\"]\n");
        let at = |p: &str| root.path().join(p);
        std::fs::write(
            at("pyproject.toml"),
            "[tool.ruff]\nextend = \"lint/base.toml\"\n",
        )
        .expect("written");
        let chain = applying(root.path()).expect("the root's configuration");
        assert_eq!(sources(root.path(), Some(&chain)), [at("lint/lib")]);
        let before = describe(root.path());
        assert!(before.contains("; configuration "), "{before}");
        std::fs::write(at("lint/base.toml"), "src = [\"lib\"]\nline-length = 70\n")
            .expect("written");
        assert_ne!(describe(root.path()), before, "the extended file edited");
    }

    #[test]
    fn a_configuration_below_the_root_lists_what_it_extends_for_the_files_under_it() {
        let root = crate::tree(&["pkg/sub/a.py", "top.py", "shared/base.toml"], "");
        let at = |p: &str| root.path().join(p);
        std::fs::write(at("pkg/ruff.toml"), "extend = \"../shared/base.toml\"\n").expect("written");
        let outside = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(at("other")).expect("made");
        let far = outside.path().join("far.toml");
        std::fs::write(&far, "").expect("written");
        std::fs::write(
            at("other/.ruff.toml"),
            format!("extend = \"{}\"\n", far.display()),
        )
        .expect("written");
        let mut nested = Nested::new(root.path());
        assert_eq!(nested.inputs("pkg/sub/a.py"), ["shared/base.toml"]);
        assert_eq!(nested.inputs("pkg/b.py"), ["shared/base.toml"]);
        assert!(nested.inputs("top.py").is_empty());
        assert_eq!(nested.warning(), None);
        assert!(nested.inputs("other/c.py").is_empty());
        let warning = nested.warning().expect("a warning");
        assert!(warning.contains("far.toml, outside the root"), "{warning}");
    }
}
