//! The wrapped tools: where they are installed, which versions are pinned, how to install them.
//!
//! Each wrapper looks for its tool in the managed tools directory first (what
//! `orchestrator tools install` fills), then on `PATH`. Python tools live in one venv, pyright in
//! one npm prefix, inside that directory. The version actually found, not the pin, goes into the
//! manifest: a cached result must never be served for another version of the tool.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a tool is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A PyPI package installed with pip into the managed venv.
    Pip,
    /// An npm package installed into the managed npm prefix.
    Npm,
}

/// A tool a built-in validator wraps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ToolSpec {
    /// Package and executable name.
    pub name: &'static str,
    /// The version installed when `orchestrator.toml` pins none.
    pub default_version: &'static str,
    pub source: Source,
}

/// Every managed tool, with its default pin.
pub const TOOLS: [ToolSpec; 3] = [
    ToolSpec {
        name: "bandit",
        default_version: "1.9.4",
        source: Source::Pip,
    },
    ToolSpec {
        name: "pyright",
        default_version: "1.1.414",
        source: Source::Npm,
    },
    ToolSpec {
        name: "ruff",
        default_version: "0.17.6",
        source: Source::Pip,
    },
];

/// The browsers the visual and behavioral validators look for on `PATH`, in order.
pub const BROWSERS: [&str; 3] = ["chromium-headless-shell", "chromium", "google-chrome"];

/// The command that installs the browser those validators are tested with.
pub const BROWSER_INSTALL: &str =
    "apt-get install chromium-headless-shell chromium-common fonts-dejavu-core fonts-liberation";

/// The first of [`BROWSERS`] on `PATH`.
pub fn browser_on_path() -> Option<PathBuf> {
    BROWSERS.iter().find_map(|name| on_path(name))
}

/// The first executable called `name` on `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    find_on_path(name, std::env::var_os("PATH").as_deref())
}

/// The spec of a tool by name.
pub fn spec(name: &str) -> Option<ToolSpec> {
    TOOLS.iter().copied().find(|t| t.name == name)
}

/// The per-user cache directory of the orchestrator: `$XDG_CACHE_HOME/orchestrator`, else
/// `$HOME/.cache/orchestrator`, else a directory under the system's temporary directory.
pub fn cache_home() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| Path::new(v).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("orchestrator")
}

/// The managed tools directory: `ORCHESTRATOR_TOOLS_DIR`, else `tools` in [`cache_home`].
pub fn tools_dir() -> PathBuf {
    std::env::var_os("ORCHESTRATOR_TOOLS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_home().join("tools"))
}

impl ToolSpec {
    /// Where `orchestrator tools install` puts the executable, under `dir`.
    pub fn managed_path(&self, dir: &Path) -> PathBuf {
        match self.source {
            Source::Pip => dir.join("venv/bin").join(self.name),
            Source::Npm => dir.join("npm/node_modules/.bin").join(self.name),
        }
    }

    /// The executable to run: the managed one if installed, else the first on `PATH`.
    pub fn locate(&self) -> Option<PathBuf> {
        let managed = self.managed_path(&tools_dir());
        if is_executable(&managed) {
            return Some(managed);
        }
        on_path(self.name)
    }

    /// The exact version the executable reports, remembered per executable so that a run
    /// does not pay an interpreter's start-up (bandit, pyright) just to learn it again.
    ///
    /// The memo is keyed by the resolved executable's identity and its directory's (inode,
    /// size, mtime and ctime): reinstalling or upgrading a tool writes new files, whose ctime
    /// and inode no one can set back, so a stale version is never served.
    pub fn version_of(&self, executable: &Path) -> Result<String, String> {
        remembered_version(executable, |exe| self.ask_version(exe))
    }

    fn ask_version(&self, executable: &Path) -> Result<String, String> {
        let out = Command::new(executable)
            .arg("--version")
            .output()
            .map_err(|e| format!("cannot run {}: {e}", executable.display()))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // `ruff 0.17.6`, `pyright 1.1.414`, `bandit 1.9.4\n  python version = …`.
        text.lines()
            .next()
            .and_then(|line| line.split_whitespace().nth(1))
            .map(str::to_owned)
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                format!(
                    "`{} --version` did not print a version: {}",
                    executable.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })
    }

    /// What to tell a user whose tool is missing.
    pub fn not_installed_message(&self) -> String {
        format!(
            "{} is not installed (looked in {} and on PATH); run `orchestrator tools install`",
            self.name,
            self.managed_path(&tools_dir()).display()
        )
    }
}

/// A name for the exact installed state of an executable, or `None` if it cannot be examined.
pub fn fingerprint(executable: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let real = executable.canonicalize().ok()?;
    let mut h = blake3::Hasher::new();
    h.update(real.as_os_str().as_encoded_bytes());
    for path in [real.as_path(), real.parent()?] {
        let m = std::fs::metadata(path).ok()?;
        for n in [m.ino(), m.size()] {
            h.update(&n.to_le_bytes());
        }
        for n in [m.mtime(), m.mtime_nsec(), m.ctime(), m.ctime_nsec()] {
            h.update(&n.to_le_bytes());
        }
    }
    Some(h.finalize().to_hex().to_string())
}

/// Writes a memo atomically (temporary file, then rename); a memo that cannot be written only
/// costs the next run a `--version`.
/// The version `ask` finds for an executable, remembered per executable as
/// [`ToolSpec::version_of`] explains; for any executable whose version is asked on every run
/// (the browser validators' browser, say).
pub fn remembered_version(
    executable: &Path,
    ask: impl FnOnce(&Path) -> Result<String, String>,
) -> Result<String, String> {
    let memo = fingerprint(executable).map(|f| cache_home().join("tool-versions").join(f));
    if let Some(version) = memo
        .as_ref()
        .and_then(|m| std::fs::read_to_string(m).ok())
        .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace))
    {
        return Ok(version);
    }
    let version = ask(executable)?;
    if let Some(memo) = memo {
        remember(&memo, &version);
    }
    Ok(version)
}

pub(crate) fn remember(memo: &Path, version: &str) {
    let Some(dir) = memo.parent() else { return };
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    let _ = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&tmp, version))
        .and_then(|()| std::fs::rename(&tmp, memo));
}

fn find_on_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    std::env::split_paths(path_var?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

/// Whether `path` is a file anyone may execute; `metadata` follows symlinks, so a link to an
/// executable counts. Tool lookup and validator discovery share this rule.
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reinstalled_tool_has_a_new_fingerprint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tool = dir.path().join("tool");
        std::fs::write(&tool, "#!/bin/sh\necho tool 1.0\n").expect("write");
        let first = fingerprint(&tool).expect("examinable");
        assert_eq!(
            fingerprint(&tool),
            Some(first.clone()),
            "stable while unchanged"
        );
        // A new install writes a new file, even one of the same size and mtime.
        let mtime = std::fs::metadata(&tool)
            .and_then(|m| m.modified())
            .expect("mtime");
        std::fs::remove_file(&tool).expect("rm");
        std::fs::write(&tool, "#!/bin/sh\necho tool 2.0\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&tool)
            .and_then(|f| f.set_modified(mtime))
            .expect("set mtime back");
        assert_ne!(fingerprint(&tool), Some(first));
    }

    #[test]
    fn managed_paths_follow_the_install_layout() {
        let dir = Path::new("/t");
        let ruff = spec("ruff").expect("ruff is managed");
        let pyright = spec("pyright").expect("pyright is managed");
        assert_eq!(ruff.managed_path(dir), Path::new("/t/venv/bin/ruff"));
        assert_eq!(
            pyright.managed_path(dir),
            Path::new("/t/npm/node_modules/.bin/pyright")
        );
    }

    #[test]
    fn the_path_search_takes_the_first_executable() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().expect("tempdir");
        let b = tempfile::tempdir().expect("tempdir");
        for dir in [a.path(), b.path()] {
            let tool = dir.join("tool");
            std::fs::write(&tool, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        std::fs::set_permissions(
            a.path().join("tool"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let path = std::env::join_paths([a.path(), b.path()]).expect("joins");
        assert_eq!(
            find_on_path("tool", Some(&path)),
            Some(b.path().join("tool"))
        );
    }
}
