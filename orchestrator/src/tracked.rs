//! The files git tracks under a root, kept while git's index is unchanged: a warm run of an
//! unchanged work tree then starts no git process at all.
//!
//! `git ls-files --cached` answers from the index alone, and git never edits the index in
//! place: every change writes a new file (`index.lock`) and renames it over the old one, so
//! the index's stamp (device, inode, size, modification and change times) changes with its
//! contents. A list is kept with the stamp the index had both before and after git listed it,
//! and only when that stamp is older than the listing by [`kept::SETTLED`], as for the tree's
//! listing ([`crate::listing`]).
//!
//! Whatever points git elsewhere than the `.git` directory at or above the root (its
//! `GIT_DIR`, `GIT_INDEX_FILE`… variables, a `.git` file of a linked work tree or a
//! submodule) leaves git to answer every time.
//!
//! Layout ([`crate::kept`]): the 8 bytes `orchtrk1`, the 32-byte id of the root and the index,
//! the index's stamp, the count (u32) of names and the names, and last the digest.

use crate::digest::Hash;
use crate::kept::{self, put_bytes, put_count, Kind, Reader, Stamp};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const MAGIC: &[u8; 8] = b"orchtrk1";

/// The variables by which git may find another repository, index or work tree than the one
/// a walk up from the root finds.
const REDIRECTS: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
];

/// The files git tracks under `root`, as `git` (which runs `git ls-files`) lists them: from
/// the list kept in the cache directory `dir` while git's index is as it was then; otherwise
/// from `git`, and kept for the next run where that can be trusted.
pub(crate) fn tracked<E>(
    dir: &Path,
    root: &Path,
    git: impl FnOnce() -> Result<Vec<Vec<u8>>, E>,
) -> Result<Vec<Vec<u8>>, E> {
    tracked_at(dir, root, SystemTime::now(), git)
}

/// [`tracked`], for a listing that starts at `started`.
fn tracked_at<E>(
    dir: &Path,
    root: &Path,
    started: SystemTime,
    git: impl FnOnce() -> Result<Vec<Vec<u8>>, E>,
) -> Result<Vec<Vec<u8>>, E> {
    let Some(index) = index_of(root) else {
        return git();
    };
    let target = kept::file_for(dir, Kind::Tracked, root);
    let before = Stamp::of(&index);
    if let Some(names) = before.and_then(|stamp| load(&target, root, &index, stamp)) {
        tracing::debug!("the index is as when git listed its files: git not run");
        return Ok(names);
    }
    let names = git()?;
    match (
        before,
        Stamp::settled(&index, kept::settled_before(started)),
    ) {
        (Some(before), Ok(Some(after))) if before == after => {
            match kept::replace(&target, &encode(root, &index, after, &names)) {
                Ok(()) => tracing::debug!("kept the {} files git tracks", names.len()),
                Err(e) => tracing::debug!(
                    "the tracked files were not kept: cannot write {}: {e}",
                    target.display()
                ),
            }
        }
        _ => tracing::debug!("the tracked files were not kept: the index is new or changed"),
    }
    Ok(names)
}

/// The index of the repository at or above `root`, where nothing points git elsewhere.
fn index_of(root: &Path) -> Option<PathBuf> {
    if REDIRECTS.iter().any(|var| std::env::var_os(var).is_some()) {
        return None;
    }
    let canonical = root.canonicalize().ok()?;
    let git = canonical
        .ancestors()
        .map(|dir| dir.join(".git"))
        .find(|git| git.symlink_metadata().is_ok())?;
    git.is_dir().then(|| git.join("index"))
}

/// What the list depends on besides the index's stamp: the root and where the index is.
fn id(root: &Path, index: &Path) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 tracked files");
    for bytes in [root.as_os_str().as_bytes(), index.as_os_str().as_bytes()] {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    *h.finalize().as_bytes()
}

fn encode(root: &Path, index: &Path, stamp: Stamp, names: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * names.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&id(root, index));
    Stamp::put(Some(&stamp), &mut out);
    put_count(names.len(), &mut out);
    for name in names {
        put_bytes(name, &mut out);
    }
    kept::seal(&mut out);
    out
}

/// The names kept in `target` if they were listed from the index as it is now (`stamp`);
/// anything missing, damaged or listed otherwise is as good as none.
fn load(target: &Path, root: &Path, index: &Path, stamp: Stamp) -> Option<Vec<Vec<u8>>> {
    let bytes = std::fs::read(target).ok()?;
    let mut r = Reader::unsealed(&bytes)?;
    if r.take(8)? != MAGIC || r.take(32)? != id(root, index) || Stamp::take(&mut r)?? != stamp {
        return None;
    }
    let count = r.count()?;
    let mut names = Vec::with_capacity(count);
    for _ in 0..count {
        names.push(r.bytes()?.to_vec());
    }
    r.is_empty().then_some(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs")
            .status;
        assert!(status.success(), "git {args:?}");
    }

    /// A repository with two tracked files, one of them ignored, and one untracked file.
    fn repository() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q"]);
        std::fs::write(dir.path().join("a.py"), "x\n").expect("write");
        std::fs::write(dir.path().join("b.log"), "x\n").expect("write");
        std::fs::write(dir.path().join(".gitignore"), "*.log\n").expect("write");
        git(dir.path(), &["add", "-f", "a.py", "b.log"]);
        std::fs::write(dir.path().join("c.py"), "x\n").expect("write");
        dir
    }

    /// Lists as a run that starts well after the index was written (a test cannot wait for
    /// it to age), and says whether git had to run.
    fn list_later(cache: &Path, root: &Path) -> (Vec<String>, bool) {
        let later = SystemTime::now() + kept::SETTLED + Duration::from_secs(1);
        let mut ran = false;
        let names = tracked_at(cache, root, later, || {
            ran = true;
            crate::select::git_list(root, &["ls-files", "-z", "--cached"])
        })
        .expect("listed");
        let mut names: Vec<String> = names
            .into_iter()
            .map(|n| String::from_utf8(n).expect("utf-8"))
            .collect();
        names.sort();
        (names, ran)
    }

    #[test]
    fn an_unchanged_index_answers_without_git_and_a_changed_one_asks_git_again() {
        let (root, cache) = (repository(), tempfile::tempdir().expect("tempdir"));
        let (first, ran) = list_later(cache.path(), root.path());
        assert_eq!(first, ["a.py", "b.log"]);
        assert!(ran, "nothing was kept yet");
        assert_eq!(list_later(cache.path(), root.path()), (first, false));
        git(root.path(), &["add", "c.py"]);
        assert_eq!(
            list_later(cache.path(), root.path()),
            (vec!["a.py".into(), "b.log".into(), "c.py".into()], true)
        );
        git(root.path(), &["rm", "-q", "--cached", "b.log"]);
        let (names, ran) = list_later(cache.path(), root.path());
        assert_eq!((names, ran), (vec!["a.py".into(), "c.py".into()], true));
    }

    #[test]
    fn a_fresh_index_is_not_kept() {
        let (root, cache) = (repository(), tempfile::tempdir().expect("tempdir"));
        let now = SystemTime::now();
        let listed = |at| {
            let mut ran = false;
            tracked_at(cache.path(), root.path(), at, || {
                ran = true;
                crate::select::git_list(root.path(), &["ls-files", "-z", "--cached"])
            })
            .expect("listed");
            ran
        };
        assert!(listed(now));
        assert!(
            listed(now),
            "an index written within the last two seconds vouches for nothing"
        );
    }

    #[test]
    fn a_redirected_git_or_a_damaged_list_leaves_git_to_answer() {
        let (root, cache) = (repository(), tempfile::tempdir().expect("tempdir"));
        list_later(cache.path(), root.path());
        let target = kept::file_for(cache.path(), Kind::Tracked, root.path());
        let mut bytes = std::fs::read(&target).expect("kept");
        let last = bytes.len() - 40;
        bytes[last] ^= 1;
        std::fs::write(&target, bytes).expect("write");
        assert!(list_later(cache.path(), root.path()).1, "a damaged list");
        assert!(!list_later(cache.path(), root.path()).1, "kept again");
        let worktree = tempfile::tempdir().expect("tempdir");
        std::fs::write(worktree.path().join(".git"), "gitdir: elsewhere\n").expect("write");
        assert_eq!(index_of(worktree.path()), None, "a .git file");
        assert!(index_of(root.path()).is_some());
    }
}
