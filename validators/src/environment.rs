//! The Python environment pyright resolves third-party imports from, as a short fingerprint
//! that goes into pyright's cache key: installing, removing or upgrading a package, or
//! switching interpreters, must not serve diagnostics made against the old environment.
//!
//! Pyright asks `python3` on `PATH` (then `python`) for its `sys.path`, unless its configuration
//! names a virtual environment (`venvPath` and `venv`), whose directories it reads instead; this
//! module asks that environment's `bin/python3` then, and `python3` on `PATH` otherwise.
//! The fingerprint covers the interpreter, its version, and each search-path directory with
//! its modification time and inode, which change whenever a package is installed into or
//! removed from it (pip and uv create and delete `*.dist-info` directories there).
//!
//! A search-path directory that is not an installation's (under none of the interpreter's
//! prefixes: one `PYTHONPATH` names, or a `.pth` file of an editable install of a sibling
//! project) holds modules someone edits. Outside the root, they are no result's inputs, so
//! they are stamped file by file instead ([`crate::outside`]); the root, and what holds it,
//! are left to the inputs.
//!
//! Starting an interpreter costs more than a warm run may (a pyenv shim alone takes 100 ms), so
//! what it says is remembered in the user's cache directory, keyed by what decides which
//! interpreter runs and with which paths: the executable found on `PATH` (its identity, as for
//! tool versions), the variables `PATH`, `PYTHONPATH`, `PYTHONHOME`, `VIRTUAL_ENV` and
//! `PYENV_VERSION`, and the project's `.python-version`. A `.pth` file installed later adds a
//! path too, so the memo holds while its search-path directories are as they were when the
//! interpreter was asked. The directories' times are read on every run, so package changes
//! never depend on that memo.

use crate::pyright_config::Config;
use crate::tools;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the interpreter says about itself.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Interpreter {
    executable: String,
    version: String,
    paths: Vec<String>,
    /// Where installations live: `sys.prefix`, `sys.base_prefix`, their `exec_` twins and the
    /// user's base (`~/.local`).
    prefixes: Vec<String>,
    /// The modules compiled into the interpreter (`sys`, `builtins`…).
    builtins: Vec<String>,
}

/// An [`Interpreter`] as remembered, with the [`states`] of its paths before it was asked.
#[derive(Debug, Serialize, Deserialize)]
struct Memo {
    interpreter: Interpreter,
    states: String,
}

/// Prints [`Interpreter`] as JSON; `sys.path[0]` of `-c` is the empty string, dropped.
const ASK: &str = "import json, site, sys; print(json.dumps({'executable': sys.executable, \
                   'version': '.'.join(map(str, sys.version_info[:3])), \
                   'paths': [p for p in sys.path if p], \
                   'prefixes': [p for p in [sys.prefix, sys.base_prefix, sys.exec_prefix, \
                   sys.base_exec_prefix, getattr(site, 'USER_BASE', None)] if p], \
                   'builtins': list(sys.builtin_module_names)}))";

/// `python 3.11.7 (/usr/bin/python3), packages 1f2e3d4c5b6a`, or `no python interpreter`;
/// then `, modules outside the root 0a1b2c3d4e5f` when the search path adds directories
/// outside the root, or the configuration does ([`Config::outside`]). The interpreter is the
/// configuration's virtual environment's ([`Config::venv`]) where it has one.
pub fn describe(root: &Path, config: &Config) -> String {
    let outside = |added: Vec<PathBuf>| {
        let mut dirs: Vec<PathBuf> = config.outside.iter().cloned().chain(added).collect();
        dirs.sort();
        dirs.dedup();
        crate::outside::describe(&dirs).map_or_else(String::new, |o| format!(", {o}"))
    };
    let Some(found) = interpreter_for(config) else {
        return format!("no python interpreter{}", outside(Vec::new()));
    };
    let Some(interpreter) = remembered(&found, root) else {
        return format!(
            "python at {} (unusable){}",
            found.display(),
            outside(Vec::new())
        );
    };
    let mut h = blake3::Hasher::new();
    for part in [&interpreter.executable, &interpreter.version] {
        h.update(part.as_bytes());
        h.update(&[0]);
    }
    for path in &interpreter.paths {
        h.update(path.as_bytes());
        h.update(&[0]);
        h.update(&directory_state(Path::new(path)));
    }
    let hex = h.finalize().to_hex();
    format!(
        "python {} ({}), packages {}{}",
        interpreter.version,
        interpreter.executable,
        &hex[..12],
        outside(interpreter.added(root))
    )
}

/// The first names of the modules the interpreter pyright would ask can import: those
/// compiled into it, and each module, package or stub package (`name-stubs`) in a directory of
/// its search path. Empty without an interpreter.
pub fn names(root: &Path, config: &Config) -> HashSet<String> {
    let Some(interpreter) = interpreter_for(config).and_then(|found| remembered(&found, root))
    else {
        return HashSet::new();
    };
    let mut names: HashSet<String> = interpreter.builtins.into_iter().collect();
    for path in &interpreter.paths {
        let Ok(entries) = std::fs::read_dir(path) else {
            continue;
        };
        for entry in entries.flatten() {
            let file = entry.file_name();
            let Some(file) = file.to_str() else {
                continue;
            };
            // `os.py`, `_ssl.cpython-311-x86_64-linux-gnu.so`, `yaml`, `yaml-stubs`.
            let stem = file.split('.').next().unwrap_or_default();
            let name = stem.strip_suffix("-stubs").unwrap_or(stem);
            if !name.is_empty() && !name.contains('-') {
                names.insert(name.to_owned());
            }
        }
    }
    names
}

/// The interpreter pyright would ask: the configuration's virtual environment's, else
/// `python3`, then `python`, on `PATH`.
fn interpreter_for(config: &Config) -> Option<PathBuf> {
    let in_venv = |name: &str| {
        let python = config.venv.as_ref()?.join("bin").join(name);
        python.is_file().then_some(python)
    };
    (["python3", "python"].into_iter())
        .find_map(in_venv)
        .or_else(|| ["python3", "python"].into_iter().find_map(tools::on_path))
}

impl Interpreter {
    /// The search-path directories under none of the prefixes, outside `root` and not
    /// holding it.
    fn added(&self, root: &Path) -> Vec<PathBuf> {
        let installed = |path: &Path| self.prefixes.iter().any(|p| path.starts_with(p));
        (self.paths.iter().map(Path::new))
            .filter(|path| !installed(path) && !path.starts_with(root) && !root.starts_with(path))
            .map(Path::to_owned)
            .collect()
    }
}

/// The [`directory_state`] of every path, as one digest.
fn states(paths: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    for path in paths {
        h.update(&directory_state(Path::new(path)));
    }
    h.finalize().to_hex().to_string()
}

/// A search-path entry's modification time and inode (zeros when it does not exist).
fn directory_state(path: &Path) -> [u8; 24] {
    use std::os::unix::fs::MetadataExt;
    let mut state = [0; 24];
    if let Ok(m) = std::fs::metadata(path) {
        state[..8].copy_from_slice(&m.mtime().to_le_bytes());
        state[8..16].copy_from_slice(&m.mtime_nsec().to_le_bytes());
        state[16..].copy_from_slice(&m.ino().to_le_bytes());
    }
    state
}

/// The interpreter's own answer, from the memo when what selects the interpreter is unchanged
/// and its search-path directories are as they were.
fn remembered(found: &Path, root: &Path) -> Option<Interpreter> {
    let memo = memo_key(found, root).map(|k| tools::cache_home().join("python").join(k));
    if let Some(known) = memo
        .as_ref()
        .and_then(|m| std::fs::read(m).ok())
        .and_then(|bytes| serde_json::from_slice::<Memo>(&bytes).ok())
        .filter(|known| known.states == states(&known.interpreter.paths))
    {
        return Some(known.interpreter);
    }
    let asked = SystemTime::now();
    let output = Command::new(found)
        .args(["-c", ASK])
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let interpreter: Interpreter = serde_json::from_slice(&output.stdout).ok()?;
    let states = states(&interpreter.paths);
    // A directory that changed while the interpreter was asked may hold a `.pth` file it did
    // not read: not remembered, so asked again next time.
    if let (Some(memo), true) = (memo, unchanged_since(&interpreter.paths, asked)) {
        let known = Memo {
            interpreter,
            states,
        };
        if let Ok(text) = serde_json::to_string(&known) {
            tools::remember(&memo, &text);
        }
        return Some(known.interpreter);
    }
    Some(interpreter)
}

/// Whether none of `paths` was modified or changed from a second before `since` on: the
/// margin covers file times, which the kernel takes from a clock that lags.
fn unchanged_since(paths: &[String], since: SystemTime) -> bool {
    use std::os::unix::fs::MetadataExt;
    let since = (since.duration_since(UNIX_EPOCH).unwrap_or_default())
        .saturating_sub(Duration::from_secs(1));
    let since = since.as_nanos() as i64;
    paths.iter().all(|path| match std::fs::metadata(path) {
        Ok(m) => [(m.mtime(), m.mtime_nsec()), (m.ctime(), m.ctime_nsec())]
            .into_iter()
            .all(|(s, n)| s * 1_000_000_000 + n < since),
        Err(_) => true,
    })
}

fn memo_key(found: &Path, root: &Path) -> Option<String> {
    let mut h = blake3::Hasher::new();
    h.update(tools::fingerprint(found)?.as_bytes());
    for name in [
        "PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "VIRTUAL_ENV",
        "PYENV_VERSION",
    ] {
        h.update(name.as_bytes());
        h.update(&[0]);
        if let Some(value) = std::env::var_os(name) {
            h.update(value.as_encoded_bytes());
        }
        h.update(&[0]);
    }
    h.update(root.as_os_str().as_encoded_bytes());
    h.update(&[0]);
    for file in [root.join(".python-version"), pyenv_global()] {
        h.update(&std::fs::read(file).unwrap_or_default());
        h.update(&[0]);
    }
    Some(h.finalize().to_hex().to_string())
}

/// pyenv's global version file, which its shims read when nothing closer names a version.
fn pyenv_global() -> PathBuf {
    std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")))
        .unwrap_or_default()
        .join("version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_package_directory_changes_the_fingerprint() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let before = directory_state(dir.path());
        std::thread::sleep(Duration::from_millis(20));
        std::fs::create_dir(dir.path().join("pkg-1.0.dist-info")).expect("created");
        assert_ne!(before, directory_state(dir.path()));
        assert_eq!(directory_state(&dir.path().join("absent")), [0; 24]);
    }

    #[test]
    fn the_interpreter_on_path_is_described() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let described = describe(root.path(), &Config::default());
        assert!(
            described.starts_with("python 3.") && described.contains(", packages "),
            "{described}"
        );
        assert_eq!(
            describe(root.path(), &Config::default()),
            described,
            "stable between runs"
        );
        let shared = crate::tree(&["lib/util.py"], "x = 1\n");
        let config = Config {
            outside: vec![shared.path().to_owned()],
            ..Config::default()
        };
        let with = describe(root.path(), &config);
        assert!(with.starts_with(&described), "{with}");
        assert!(with.contains(", modules outside the root "), "{with}");
    }

    #[test]
    fn the_names_of_the_standard_library_and_of_what_the_interpreter_compiled_in_are_known() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let names = names(root.path(), &Config::default());
        for name in ["os", "json", "sys", "builtins", "_ssl"] {
            assert!(names.contains(name), "{name}");
        }
        assert!(!names.contains("__builtins__") && !names.contains("helpers"));
    }

    #[test]
    fn the_paths_added_are_those_outside_every_prefix_and_the_root() {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        let interpreter = Interpreter {
            executable: "/venv/bin/python3".to_owned(),
            version: "3.11.2".to_owned(),
            paths: strings(&[
                "/usr/lib/python311.zip",
                "/usr/lib/python3.11",
                "/venv/lib/python3.11/site-packages",
                "/home/u/.local/lib/python3.11/site-packages",
                "/work/shared/src",
                "/work/project/src",
                "/work",
            ]),
            prefixes: strings(&["/venv", "/usr", "/usr", "/usr", "/home/u/.local"]),
            builtins: strings(&["sys"]),
        };
        assert_eq!(
            interpreter.added(Path::new("/work/project")),
            [PathBuf::from("/work/shared/src")]
        );
    }
}
