//! A tool's configuration and the files it extends: pyright's `"extends": "../base.json"`,
//! ruff's `extend = "../lint/base.toml"`.
//!
//! The coordinator keys results on the configuration files a validator declares by name
//! (`pyproject.toml`, `ruff.toml`…) in a file's directory and those above it. A file pulled in
//! by `extends` can have any name and be anywhere, so an edit to it would leave every result
//! standing. Each chain is followed here as its tool follows it, so that the wrappers can key
//! on every file of it, and read settings (ruff's `src`, pyright's `extraPaths`) from the file
//! that sets them, relative to that file's directory, as the tools do.

use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// How many files deep a chain is followed; a longer one is taken as broken.
const DEEPEST: usize = 16;

/// How one tool's configuration files extend one another.
#[derive(Debug)]
pub struct Dialect {
    /// The setting that names the file extended.
    pub key: &'static str,
    /// The tool's table in a parsed file (`[tool.ruff]` of a `pyproject.toml`), if it has one.
    pub table: fn(&Path, serde_json::Value) -> Option<serde_json::Value>,
    /// Whether `~` and environment variables in the path are expanded (ruff's are).
    pub expands: bool,
}

/// One configuration file of a chain and the tool's table in it.
#[derive(Debug)]
pub struct Layer {
    pub file: PathBuf,
    pub table: serde_json::Value,
}

impl Layer {
    /// The directory the file's relative paths are resolved from.
    pub fn dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("/"))
    }
}

/// A configuration and the files it extends, nearest first.
#[derive(Debug)]
pub struct Chain {
    /// The files read, the first one's table first.
    pub layers: Vec<Layer>,
    /// Every file of the chain with a digest of its bytes (`None`: not readable), the one the
    /// chain broke at among them.
    files: Vec<(PathBuf, Option<blake3::Hash>)>,
    /// Why the chain could not be followed to its end, if it could not.
    pub broken: Option<String>,
}

impl Chain {
    /// The configuration in `first` and what it extends. `None` when `first` is not a file or
    /// holds no table for the tool (a `pyproject.toml` without `[tool.ruff]`).
    pub fn read(first: &Path, dialect: &Dialect) -> Option<Chain> {
        let bytes = std::fs::read(first).ok();
        if bytes.is_none() && !first.is_file() {
            return None;
        }
        let mut chain = Chain {
            layers: Vec::new(),
            files: vec![(first.to_owned(), bytes.as_deref().map(blake3::hash))],
            broken: None,
        };
        match parse(first, bytes.as_deref(), dialect) {
            Ok(Some(table)) => chain.layers.push(Layer {
                file: first.to_owned(),
                table,
            }),
            Ok(None) => return None,
            Err(why) => {
                chain.broken = Some(format!("{} {why}", first.display()));
                return Some(chain);
            }
        }
        chain.follow(dialect);
        Some(chain)
    }

    /// Reads each file the last layer extends, until one extends nothing.
    fn follow(&mut self, dialect: &Dialect) {
        let mut seen: HashSet<PathBuf> = self.files.iter().map(|(f, _)| canonical(f)).collect();
        while let Some(last) = self.layers.last() {
            let Some(value) = last.table.get(dialect.key) else {
                return;
            };
            let name = last.file.display().to_string();
            let Some(path) = value.as_str() else {
                self.broken = Some(format!("{name}: `{}` is not a path", dialect.key));
                return;
            };
            let path = last.dir().join(if dialect.expands {
                expand(path)
            } else {
                path.to_owned()
            });
            let bytes = std::fs::read(&path).ok();
            self.files
                .push((path.clone(), bytes.as_deref().map(blake3::hash)));
            let fail = |why: &str| format!("{} (extended by {name}) {why}", path.display());
            if !seen.insert(canonical(&path)) {
                self.broken = Some(fail("extends itself in the end"));
                return;
            }
            if self.files.len() > DEEPEST {
                self.broken = Some(fail(&format!("is more than {DEEPEST} files deep")));
                return;
            }
            let table = match parse(&path, bytes.as_deref(), dialect) {
                Ok(table) => table.unwrap_or_else(|| serde_json::json!({})),
                Err(why) => {
                    self.broken = Some(fail(why));
                    return;
                }
            };
            self.layers.push(Layer { file: path, table });
        }
    }

    /// The value of `key` from the nearest layer that sets it, with that layer's directory.
    pub fn get(&self, key: &str) -> Option<(&Path, &serde_json::Value)> {
        self.layers
            .iter()
            .find_map(|layer| Some((layer.dir(), layer.table.get(key)?)))
    }

    /// The files the first one extends, in order.
    pub fn extended(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().skip(1).map(|(path, _)| path.as_path())
    }

    /// `configuration 1f2e3d4c5b6a`: a digest of the path and bytes of every file of the chain,
    /// each path relative to `root` where it is under it, so that clones of one repository
    /// share results.
    pub fn describe(&self, root: &Path) -> String {
        let mut h = blake3::Hasher::new();
        for (path, bytes) in &self.files {
            match inside(root, path) {
                Some(relative) => h.update(relative.unwrap_or_default().as_bytes()),
                None => h.update(&[1]).update(path.as_os_str().as_encoded_bytes()),
            };
            h.update(&[0]);
            match bytes {
                Some(hash) => h.update(&[1]).update(hash.as_bytes()),
                None => h.update(&[2]),
            };
        }
        format!("configuration {}", &h.finalize().to_hex()[..12])
    }
}

/// The tool's table in a file's bytes: JSON with comments for a `.json` file, TOML otherwise;
/// or what is wrong with them.
fn parse(
    path: &Path,
    bytes: Option<&[u8]>,
    dialect: &Dialect,
) -> Result<Option<serde_json::Value>, &'static str> {
    let bytes = bytes.ok_or("is not readable")?;
    let text = std::str::from_utf8(bytes).map_err(|_| "is not UTF-8")?;
    let value = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&strip_jsonc(text)).map_err(|_| "is not JSON")?
    } else {
        toml::from_str(text).map_err(|_| "is not TOML")?
    };
    Ok((dialect.table)(path, value))
}

/// `path` as it is on disk when it can be resolved, so that two spellings of one file are one.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// `~` at the start and `$NAME` or `${NAME}` anywhere replaced as a shell would; a variable
/// that is not set is left as written.
fn expand(path: &str) -> String {
    let home = std::env::var("HOME").ok();
    let path = match (path.strip_prefix('~'), &home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => path.to_owned(),
    };
    let mut out = String::with_capacity(path.len());
    let mut rest = path.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        match std::env::var(name) {
            Ok(value) if !name.is_empty() => out.push_str(&value),
            _ => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// `path` relative to `root` and `/`-separated, read the way the tools read paths (`..` taken
/// back lexically, links not followed), if it is under the root: `Some(None)` for the root
/// itself, `None` outside it or not UTF-8.
pub fn inside(root: &Path, path: &Path) -> Option<Option<String>> {
    let mut normal = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                if !normal.pop() {
                    return None;
                }
            }
            part => normal.push(part),
        }
    }
    let relative = normal.strip_prefix(root).ok()?;
    let parts = relative.components().map(|part| part.as_os_str().to_str());
    let parts = parts.collect::<Option<Vec<_>>>()?;
    Some((!parts.is_empty()).then(|| parts.join("/")))
}

/// The warning for a file read from outside the root, which no result can list as an input:
/// `read` says which and by what, `more` counts the others.
pub fn unseen(read: &str, more: usize) -> String {
    let more = match more {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    format!(
        "{read}, outside the root{more}: an edit there does not check files again; run \
         `orchestrator cache clear` after one"
    )
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

    /// A dialect that takes the whole file, as ruff takes a `ruff.toml`.
    const WHOLE: Dialect = Dialect {
        key: "extend",
        table: |_, value| Some(value),
        expands: true,
    };

    #[test]
    fn a_chain_is_followed_from_each_files_directory_and_settings_come_from_the_nearest() {
        let tree = crate::tree(&[], "");
        let root = tree.path();
        std::fs::create_dir_all(root.join("project/lint")).expect("made");
        std::fs::write(
            root.join("project/ruff.toml"),
            "extend = \"lint/base.toml\"\nline-length = 90\n",
        )
        .expect("written");
        std::fs::write(
            root.join("project/lint/base.toml"),
            "extend = \"../../shared.toml\"\nline-length = 80\nsrc = [\"lib\"]\n",
        )
        .expect("written");
        std::fs::write(root.join("shared.toml"), "select = [\"E\"]\n").expect("written");
        let chain = Chain::read(&root.join("project/ruff.toml"), &WHOLE).expect("a chain");
        assert_eq!(chain.broken, None);
        assert_eq!(chain.layers.len(), 3);
        let (dir, length) = chain.get("line-length").expect("set");
        assert_eq!(
            (dir, length.as_i64()),
            (root.join("project").as_path(), Some(90))
        );
        let (dir, _) = chain.get("src").expect("set");
        assert_eq!(dir, root.join("project/lint"));
        assert!(chain.get("select").is_some() && chain.get("exclude").is_none());
        let extended: Vec<_> = chain.extended().map(Path::to_owned).collect();
        assert_eq!(
            extended,
            [
                root.join("project/lint/base.toml"),
                root.join("project/lint/../../shared.toml")
            ]
        );
    }

    #[test]
    fn an_edit_to_any_file_of_the_chain_changes_its_description() {
        let tree = crate::tree(&[], "");
        let root = tree.path();
        std::fs::write(root.join("ruff.toml"), "extend = \"base.toml\"\n").expect("written");
        std::fs::write(root.join("base.toml"), "line-length = 80\n").expect("written");
        let describe = || Chain::read(&root.join("ruff.toml"), &WHOLE).map(|c| c.describe(root));
        let first = describe().expect("a chain");
        assert_eq!(describe().as_ref(), Some(&first), "nothing changed");
        let clone = crate::tree(&[], "");
        for file in ["ruff.toml", "base.toml"] {
            std::fs::copy(root.join(file), clone.path().join(file)).expect("copied");
        }
        let cloned = Chain::read(&clone.path().join("ruff.toml"), &WHOLE).expect("a chain");
        assert_eq!(cloned.describe(clone.path()), first, "a clone elsewhere");
        std::fs::write(root.join("base.toml"), "line-length = 88\n").expect("written");
        let edited = describe().expect("a chain");
        assert_ne!(edited, first);
        std::fs::remove_file(root.join("base.toml")).expect("removed");
        let chain = Chain::read(&root.join("ruff.toml"), &WHOLE).expect("a chain");
        assert_ne!(chain.describe(root), edited);
        let broken = chain.broken.expect("broken");
        assert!(broken.contains("base.toml (extended by"), "{broken}");
    }

    #[test]
    fn a_missing_file_a_table_not_there_a_cycle_and_bad_text_are_told_apart() {
        let tree = crate::tree(&[], "");
        let root = tree.path();
        assert!(Chain::read(&root.join("ruff.toml"), &WHOLE).is_none());
        let ruff_only = Dialect {
            table: |_, value| value.get("tool")?.get("ruff").cloned(),
            ..WHOLE
        };
        std::fs::write(root.join("pyproject.toml"), "[project]\nname = \"x\"\n").expect("written");
        assert!(Chain::read(&root.join("pyproject.toml"), &ruff_only).is_none());
        std::fs::write(root.join("a.toml"), "extend = \"b.toml\"\n").expect("written");
        std::fs::write(root.join("b.toml"), "extend = \"./a.toml\"\n").expect("written");
        let cycle = Chain::read(&root.join("a.toml"), &WHOLE).expect("a chain");
        assert!(cycle.broken.expect("broken").contains("extends itself"));
        std::fs::write(root.join("c.toml"), "extend = [").expect("written");
        let bad = Chain::read(&root.join("c.toml"), &WHOLE).expect("a chain");
        assert!(bad.layers.is_empty());
        assert!(bad.broken.expect("broken").ends_with("is not TOML"));
    }

    #[test]
    fn home_and_variables_are_expanded_as_a_shell_would() {
        let home = std::env::var("HOME").expect("HOME is set");
        assert_eq!(expand("~/base.toml"), format!("{home}/base.toml"));
        assert_eq!(expand("${HOME}/x/$HOME"), format!("{home}/x/{home}"));
        assert_eq!(expand("a~/$NOT_SET_HERE_1/${}"), "a~/$NOT_SET_HERE_1/${}");
        assert_eq!(expand("cost$"), "cost$");
    }

    #[test]
    fn a_path_is_inside_the_root_after_its_dot_dots_are_taken_back() {
        let root = Path::new("/work/project");
        let inside = |p: &str| inside(root, &root.join(p));
        assert_eq!(inside("lib"), Some(Some("lib".to_owned())));
        assert_eq!(inside("configs/../lib/./x"), Some(Some("lib/x".to_owned())));
        assert_eq!(inside("."), Some(None));
        assert_eq!(inside("../shared"), None);
        assert_eq!(inside("../project/lib"), Some(Some("lib".to_owned())));
        assert_eq!(super::inside(root, Path::new("/elsewhere")), None);
    }
}
