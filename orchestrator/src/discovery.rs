//! Finding validators: executables named `validator-NAME`.
//!
//! The directory of the `orchestrator` executable is searched first (that is where the
//! built-in validators are installed, and where `cargo build` puts them), then each `PATH`
//! entry in order. The first executable of a name wins; later ones are kept as shadowed, so
//! `orchestrator list` can say why a validator on `PATH` is not the one that runs.
//!
//! The built-in validators are also compiled into the coordinator itself
//! (`orchestrator __validator NAME`). They rank with the coordinator's directory: a
//! `validator-NAME` file there replaces its built-in twin, and either shadows `PATH`. That is
//! what lets a bare `cargo run -p orchestrator` find them.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use validators::tools::is_executable;

/// Executable name prefix of every validator.
pub const PREFIX: &str = "validator-";

/// One validator name and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub name: String,
    /// The executable that runs.
    pub path: PathBuf,
    /// Its arguments (only built-ins have any).
    pub args: Vec<OsString>,
    /// Executables of the same name found later in the search order.
    pub shadowed: Vec<PathBuf>,
}

/// Built-in validators carried by an executable: run as `EXECUTABLE __validator NAME`.
#[derive(Debug, Clone, Copy)]
pub struct Builtins<'a> {
    pub executable: &'a Path,
    pub names: &'a [&'a str],
}

/// The argument that makes the coordinator serve a built-in validator.
pub const BUILTIN_ARG: &str = "__validator";

/// Searches `first` (the coordinator's own directory) and `builtins`, then `path_var`
/// (`PATH`). Returns validators sorted by name.
pub fn discover(
    first: Option<&Path>,
    builtins: Option<Builtins<'_>>,
    path_var: Option<&OsStr>,
) -> Vec<Discovered> {
    let mut found: BTreeMap<String, Discovered> = BTreeMap::new();
    let mut seen_dirs = Vec::new();
    let mut path_dirs: Vec<PathBuf> = Vec::new();
    if let Some(path_var) = path_var {
        path_dirs.extend(std::env::split_paths(path_var).filter(|d| !d.as_os_str().is_empty()));
    }
    if let Some(first) = first {
        scan(first, &mut found, &mut seen_dirs);
    }
    for name in builtins.iter().flat_map(|b| b.names.iter()) {
        let builtins = builtins.expect("iterating its names");
        found
            .entry((*name).to_owned())
            .or_insert_with(|| Discovered {
                name: (*name).to_owned(),
                path: builtins.executable.to_owned(),
                args: vec![BUILTIN_ARG.into(), (*name).into()],
                shadowed: Vec::new(),
            });
    }
    for dir in path_dirs {
        scan(&dir, &mut found, &mut seen_dirs);
    }
    found.into_values().collect()
}

/// Adds the validators of `dir` to `found`, or to the shadowed ones of a name already found.
fn scan(dir: &Path, found: &mut BTreeMap<String, Discovered>, seen_dirs: &mut Vec<PathBuf>) {
    // The same directory twice on PATH would shadow each validator by itself.
    let canonical = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if seen_dirs.contains(&canonical) {
        return;
    }
    seen_dirs.push(canonical);
    for (name, path) in validators_in(dir) {
        match found.get_mut(&name) {
            Some(existing) => existing.shadowed.push(path),
            None => {
                found.insert(
                    name.clone(),
                    Discovered {
                        name,
                        path,
                        args: Vec::new(),
                        shadowed: Vec::new(),
                    },
                );
            }
        }
    }
}

/// Discovers validators as a run does: the coordinator's directory, its built-ins, `PATH`.
pub fn discover_all() -> Vec<Discovered> {
    let exe = std::env::current_exe().ok();
    let builtins = exe.as_deref().map(|executable| Builtins {
        executable,
        names: &validators::BUILTIN,
    });
    discover(
        exe.as_deref().and_then(Path::parent),
        builtins,
        std::env::var_os("PATH").as_deref(),
    )
}

/// `(name, path)` of every validator executable directly in `dir`, sorted by name.
fn validators_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name();
            let name = file_name.to_str()?.strip_prefix(PREFIX)?;
            if !valid_name(name) {
                return None;
            }
            let path = entry.path();
            is_executable(&path).then(|| (name.to_owned(), path))
        })
        .collect();
    found.sort();
    found
}

/// Names are what config tables and `--validators` use: letters, digits, `-` and `_`. This
/// also leaves out build by-products such as `validator-x.d`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn touch(dir: &Path, name: &str, mode: u32) {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }

    #[test]
    fn the_first_directory_wins_and_later_ones_are_shadowed() {
        let own = tempfile::tempdir().expect("tempdir");
        let on_path = tempfile::tempdir().expect("tempdir");
        touch(own.path(), "validator-ruff", 0o755);
        touch(on_path.path(), "validator-ruff", 0o755);
        touch(on_path.path(), "validator-extra", 0o755);
        let path_var = std::env::join_paths([on_path.path()]).expect("joins");
        let found = discover(Some(own.path()), None, Some(&path_var));
        assert_eq!(
            found,
            [
                Discovered {
                    name: "extra".into(),
                    path: on_path.path().join("validator-extra"),
                    args: vec![],
                    shadowed: vec![],
                },
                Discovered {
                    name: "ruff".into(),
                    path: own.path().join("validator-ruff"),
                    args: vec![],
                    shadowed: vec![on_path.path().join("validator-ruff")],
                },
            ]
        );
    }

    #[test]
    fn builtins_rank_after_the_own_directory_and_before_path() {
        let own = tempfile::tempdir().expect("tempdir");
        let on_path = tempfile::tempdir().expect("tempdir");
        touch(own.path(), "validator-ruff", 0o755);
        touch(on_path.path(), "validator-bandit", 0o755);
        let exe = own.path().join("orchestrator");
        let builtins = Builtins {
            executable: &exe,
            names: &["bandit", "ruff"],
        };
        let path_var = std::env::join_paths([on_path.path()]).expect("joins");
        let found = discover(Some(own.path()), Some(builtins), Some(&path_var));
        assert_eq!(found[0].name, "bandit");
        assert_eq!(found[0].path, exe);
        assert_eq!(found[0].args, [BUILTIN_ARG, "bandit"]);
        assert_eq!(found[0].shadowed, [on_path.path().join("validator-bandit")]);
        assert_eq!(found[1].path, own.path().join("validator-ruff"));
        assert!(found[1].args.is_empty());
    }

    #[test]
    fn non_executables_and_by_products_are_not_validators() {
        let dir = tempfile::tempdir().expect("tempdir");
        touch(dir.path(), "validator-plain", 0o644);
        touch(dir.path(), "validator-x.d", 0o755);
        touch(dir.path(), "validator-", 0o755);
        touch(dir.path(), "other", 0o755);
        assert!(discover(Some(dir.path()), None, None).is_empty());
    }

    #[test]
    fn a_directory_listed_twice_does_not_shadow_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        touch(dir.path(), "validator-a", 0o755);
        let path_var = std::env::join_paths([dir.path(), dir.path()]).expect("joins");
        let found = discover(Some(dir.path()), None, Some(&path_var));
        assert_eq!(found.len(), 1);
        assert!(found[0].shadowed.is_empty());
    }
}
