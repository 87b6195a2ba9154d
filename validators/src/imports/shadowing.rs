//! Which names the places pyright looks in first hold more than once: part of pyright's
//! version, so that a module created where it shadows another checks every file again.
//!
//! An absolute import is looked for in the stub path, at the root, in the extra paths and in
//! `src` (the configured places, [`super::Places`]) before the Python environment, and the
//! first place that holds its first name answers it. A result lists the files under the places
//! that hold that name, and where none does, those a module created would be
//! ([`super::resolve`]). It does not list the same name under every other configured place, nor
//! under them all for every name the environment answers: each result would then rest on
//! thousands of absent files. Yet a module created there shadows the one found later: pyright,
//! 1.1.414, reads `typings/json.pyi` instead of the standard library's `json`, and a root
//! `annotated_types.py` instead of the installed package (a root `json.py` it leaves alone).
//! So the names each configured place holds that another configured place or the environment
//! holds too go into pyright's version: creating or removing such a module changes the version
//! and checks every file, which is rare and never serves a stale result.

use super::Places;
use std::collections::HashMap;
use std::path::Path;

/// `names held twice 0a1b2c3d4e5f`: a digest of each configured place ([`Places::configured`])
/// with the names it holds that another of them or the environment holds as well.
pub fn describe(root: &Path, configured: Places<'_>) -> String {
    let mut places: Vec<&str> = Vec::new();
    for place in configured.configured() {
        if !places.contains(&place) {
            places.push(place);
        }
    }
    let held: Vec<(&str, Vec<String>)> = places
        .into_iter()
        .map(|place| {
            let dir = root.join(place);
            let mut names = module_names(&dir, true);
            names.retain(|name| answers(&dir, name));
            (place, names)
        })
        .collect();
    let mut holders: HashMap<&str, usize> = HashMap::new();
    for name in held.iter().flat_map(|(_, names)| names) {
        *holders.entry(name).or_default() += 1;
    }
    let mut h = blake3::Hasher::new();
    for (place, names) in &held {
        h.update(place.as_bytes());
        h.update(&[1]);
        for name in names {
            if holders[name.as_str()] > 1 || configured.environment.contains(name) {
                h.update(name.as_bytes());
                h.update(&[0]);
            }
        }
    }
    format!("names held twice {}", &h.finalize().to_hex()[..12])
}

/// Whether `name` in `dir` answers an import ahead of later places: a module, a stub, a
/// package with an `__init__`, or a stub package. A directory without an `__init__` is a
/// namespace package, which pyright, like Python, takes only when no later place holds a
/// module or package of the name; so `__pycache__`, `build/` or `docs/` appearing at the root
/// does not check every file again.
fn answers(dir: &Path, name: &str) -> bool {
    let at = dir.join(name);
    ["py", "pyi"]
        .iter()
        .any(|ext| at.with_extension(ext).is_file())
        || ["__init__.py", "__init__.pyi"]
            .iter()
            .any(|init| at.join(init).is_file())
        || dir.join(format!("{name}-stubs")).is_dir()
}

/// The first names of the modules `dir` holds, sorted, each once: each directory's and each
/// `.py` and `.pyi` file's that is a Python name, and with `stub_packages`, `foo` for a
/// `foo-stubs` directory. Nothing where `dir` cannot be read.
pub fn module_names(dir: &Path, stub_packages: bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let name = match entry.path().is_dir() {
                true => match name.strip_suffix("-stubs") {
                    Some(stem) if stub_packages => stem.to_owned(),
                    _ => name,
                },
                false => (name.strip_suffix(".py"))
                    .or_else(|| name.strip_suffix(".pyi"))?
                    .to_owned(),
            };
            // Only a Python name can be imported (so `.git` or this cache's own directory
            // never counts).
            let mut chars = name.chars();
            let first = chars.next().is_some_and(|c| c.is_alphabetic() || c == '_');
            (first && chars.all(|c| c.is_alphanumeric() || c == '_')).then_some(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(files: &[&str], environment: &[&str]) -> String {
        let dir = crate::tree(files, "");
        let environment = environment.iter().map(|n| n.to_string()).collect();
        let roots = ["typings".to_owned()];
        let places = Places {
            roots: &roots,
            environment: &environment,
        };
        describe(dir.path(), places)
    }

    #[test]
    fn names_are_the_python_modules_and_packages_a_directory_holds() {
        let dir = crate::tree(
            &[
                "a.py",
                "b.pyi",
                "pkg/__init__.py",
                "foo-stubs/x.pyi",
                "notes.txt",
            ],
            "",
        );
        std::fs::create_dir(dir.path().join(".git")).expect("made");
        assert_eq!(module_names(dir.path(), false), ["a", "b", "pkg"]);
        assert_eq!(module_names(dir.path(), true), ["a", "b", "foo", "pkg"]);
    }

    #[test]
    fn only_a_module_that_could_shadow_another_changes_the_description() {
        let environment = ["json", "annotated_types"];
        let base = described(&["app/main.py", "helpers.py", "src/lib.py"], &environment);
        // Nothing else holds these names: the result lists them where they would be.
        assert_eq!(
            base,
            described(
                &[
                    "app/main.py",
                    "helpers.py",
                    "src/lib.py",
                    "tools.py",
                    "src/more.py"
                ],
                &environment
            )
        );
        // A directory without an `__init__` (a cache, a build's output) answers nothing first.
        assert_eq!(
            base,
            described(
                &[
                    "app/main.py",
                    "helpers.py",
                    "src/lib.py",
                    "__pycache__/x.pyc",
                    "json/a.txt"
                ],
                &["__pycache__", "json", "annotated_types"]
            )
        );
        // A name the environment holds, or another configured place.
        for shadowing in [
            "json.py",
            "typings/json.pyi",
            "src/annotated_types/__init__.py",
        ] {
            assert_ne!(
                base,
                described(
                    &["app/main.py", "helpers.py", "src/lib.py", shadowing],
                    &environment
                ),
                "{shadowing}"
            );
        }
        assert_ne!(
            base,
            described(
                &["app/main.py", "helpers.py", "src/lib.py", "typings/lib.pyi"],
                &environment
            ),
            "a stub for a project module"
        );
    }
}
