//! `run --staged`: checking what is about to be committed, not the working tree.
//!
//! The working tree may hold edits that are not staged; a pre-commit check must see the
//! index. Tools like pre-commit stash the unstaged edits away and put them back afterwards,
//! which loses work when the runner is killed in between. Here nothing in the working tree or
//! the index is ever written: the index is exported (`git checkout-index --prefix`) into a
//! private directory, and the validators check that copy. Killed at any moment, a run leaves at
//! worst a stale copy in the temporary directory, which the next `--staged` run removes.

use crate::select::{self, SelectError};
use std::path::{Path, PathBuf};

/// The name of a snapshot directory: the prefix, then the process id of the run that owns it.
const PREFIX: &str = "orchestrator-staged-";

/// A copy of the index, removed when dropped.
#[derive(Debug)]
pub struct Snapshot {
    /// The directory the index was exported into (the work tree's top).
    dir: PathBuf,
    /// The root of the run inside it: the same place relative to the top as the real root.
    pub root: PathBuf,
    /// The staged files (added, copied, modified, renamed), relative to the root.
    pub files: Vec<String>,
}

impl Snapshot {
    /// Exports the index of the repository `root` is in. `config`, the root's configuration
    /// file, is copied in when the index has none, so that an uncommitted configuration still
    /// applies.
    pub fn take(root: &Path, config: Option<&Path>) -> Result<Snapshot, SelectError> {
        let top =
            crate::worktree::toplevel(root).ok_or_else(|| SelectError::NotGit(root.to_owned()))?;
        remove_stale();
        let staged = select::git(
            root,
            &[
                "diff",
                "--cached",
                "--name-only",
                "-z",
                "--diff-filter=ACMR",
                "--relative",
                "--no-ext-diff",
            ],
        )?;
        let files: Vec<String> = staged
            .split(|b| *b == 0)
            .filter(|n| !n.is_empty())
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect();
        let dir = std::env::temp_dir().join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| SelectError::Walk {
            path: dir.clone(),
            message: e.to_string(),
        })?;
        // From here on `snapshot` owns the directory and removes it on any early return.
        let inside = root.strip_prefix(&top).unwrap_or(Path::new(""));
        let snapshot = Snapshot {
            root: dir.join(inside),
            dir,
            files,
        };
        let mut prefix = snapshot.dir.as_os_str().to_owned();
        prefix.push("/");
        let prefix = format!("--prefix={}", prefix.to_string_lossy());
        select::git(&top, &["checkout-index", "--all", "--force", &prefix])?;
        std::fs::create_dir_all(&snapshot.root).map_err(|e| SelectError::Walk {
            path: snapshot.root.clone(),
            message: e.to_string(),
        })?;
        if let Some(config) = config {
            let copy = snapshot.root.join(config.file_name().unwrap_or_default());
            if !copy.exists() {
                let _ = std::fs::copy(config, copy);
            }
        }
        Ok(snapshot)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Removes snapshots left by runs that were killed: those whose process is gone.
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
