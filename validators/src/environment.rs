//! The Python environment pyright resolves third-party imports from, as a short fingerprint
//! that goes into pyright's cache key: installing, removing or upgrading a package, or
//! switching interpreters, must not serve diagnostics made against the old environment.
//!
//! Pyright asks `python3` on `PATH` (then `python`) for its `sys.path`; so does this module.
//! The fingerprint covers the interpreter, its version, and each search-path directory with
//! its modification time and inode, which change whenever a package is installed into or
//! removed from it (pip and uv create and delete `*.dist-info` directories there).
//!
//! Starting an interpreter costs more than a warm run may (a pyenv shim alone takes 100 ms), so
//! what it says is remembered in the user's cache directory, keyed by what decides which
//! interpreter runs and with which paths: the executable found on `PATH` (its identity, as for
//! tool versions), the variables `PATH`, `PYTHONPATH`, `PYTHONHOME`, `VIRTUAL_ENV` and
//! `PYENV_VERSION`, and the project's `.python-version`. The directories' times are read
//! on every run, so package changes never depend on that memo.

use crate::tools;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What the interpreter says about itself.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Interpreter {
    executable: String,
    version: String,
    paths: Vec<String>,
}

/// Prints [`Interpreter`] as JSON; `sys.path[0]` of `-c` is the empty string, dropped.
const ASK: &str = "import json, sys; print(json.dumps({'executable': sys.executable, \
                   'version': '.'.join(map(str, sys.version_info[:3])), \
                   'paths': [p for p in sys.path if p]}))";

/// `python 3.11.7 (/usr/bin/python3), packages 1f2e3d4c5b6a`, or `no python interpreter`.
pub fn describe(root: &Path) -> String {
    let Some(found) = ["python3", "python"].into_iter().find_map(tools::on_path) else {
        return "no python interpreter".to_owned();
    };
    let Some(interpreter) = remembered(&found, root) else {
        return format!("python at {} (unusable)", found.display());
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
        "python {} ({}), packages {}",
        interpreter.version,
        interpreter.executable,
        &hex[..12]
    )
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

/// The interpreter's own answer, from the memo when what selects the interpreter is unchanged.
fn remembered(found: &Path, root: &Path) -> Option<Interpreter> {
    let memo = memo_key(found, root).map(|k| tools::cache_home().join("python").join(k));
    if let Some(known) = memo
        .as_ref()
        .and_then(|m| std::fs::read(m).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return Some(known);
    }
    let output = Command::new(found)
        .args(["-c", ASK])
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let interpreter: Interpreter = serde_json::from_slice(&output.stdout).ok()?;
    if let (Some(memo), Ok(text)) = (memo, serde_json::to_string(&interpreter)) {
        tools::remember(&memo, &text);
    }
    Some(interpreter)
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
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::create_dir(dir.path().join("pkg-1.0.dist-info")).expect("created");
        assert_ne!(before, directory_state(dir.path()));
        assert_eq!(directory_state(&dir.path().join("absent")), [0; 24]);
    }

    #[test]
    fn the_interpreter_on_path_is_described() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let described = describe(root.path());
        assert!(
            described.starts_with("python 3.") && described.contains(", packages "),
            "{described}"
        );
        assert_eq!(describe(root.path()), described, "stable between runs");
    }
}
