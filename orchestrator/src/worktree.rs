//! Where the git work tree around a directory starts: the root of a run without an
//! `orchestrator.toml`.
//!
//! `git rev-parse --show-toplevel` answers it, and costs a process: about 4 ms of a warm run
//! on Django that otherwise starts no git at all (`tracked.rs` reads git's index itself). So
//! the plain case is read from the disk, as git's own discovery does it: the nearest directory,
//! from the start up, that holds a `.git` directory with a `HEAD`, or a `.git` file naming one
//! (a linked work tree, a submodule). Wherever git's answer could differ, git is asked: a
//! `GIT_DIR`, `GIT_WORK_TREE` or `GIT_CEILING_DIRECTORIES` in the environment; a start inside a
//! `.git` directory; a file-system boundary crossed on the way up (git stops there); a work tree
//! or `.git` owned by another user (git refuses it unless `safe.directory` says otherwise);
//! a `core.worktree` in the repository's configuration; a `.git` file that names no
//! directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The top of the git work tree containing `dir`, if any.
pub fn toplevel(dir: &Path) -> Option<PathBuf> {
    match discover(dir) {
        Found::Top(top) => Some(top),
        Found::Nothing => None,
        Found::AskGit => asked(dir),
    }
}

/// What the disk says about the work tree around a directory.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    Top(PathBuf),
    Nothing,
    AskGit,
}

fn discover(dir: &Path) -> Found {
    let steered = ["GIT_DIR", "GIT_WORK_TREE", "GIT_CEILING_DIRECTORIES"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    // Git names the top by its real path, links resolved.
    let Ok(dir) = dir.canonicalize() else {
        return Found::AskGit;
    };
    if steered || dir.components().any(|c| c.as_os_str() == ".git") {
        return Found::AskGit;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let user = unsafe { libc::geteuid() };
    let Ok(start) = std::fs::metadata(&dir) else {
        return Found::AskGit;
    };
    for candidate in dir.ancestors() {
        let Ok(here) = std::fs::metadata(candidate) else {
            return Found::AskGit;
        };
        if here.dev() != start.dev() {
            return Found::AskGit;
        }
        let dot_git = candidate.join(".git");
        let Ok(meta) = std::fs::symlink_metadata(&dot_git) else {
            continue;
        };
        if meta.uid() != user || here.uid() != user {
            return Found::AskGit;
        }
        let git_dir = match meta.is_file() {
            true => match named_git_dir(&dot_git) {
                Some(git_dir) => git_dir,
                None => return Found::AskGit,
            },
            // Not a repository (git looks further up then).
            false if !dot_git.join("HEAD").is_file() => continue,
            false => dot_git,
        };
        return match sets_worktree(&git_dir) {
            true => Found::AskGit,
            false => Found::Top(candidate.to_owned()),
        };
    }
    Found::Nothing
}

/// The directory a `.git` file (`gitdir: PATH`) names, relative to the file's directory, if it
/// is one.
fn named_git_dir(file: &Path) -> Option<PathBuf> {
    let text = std::fs::read_to_string(file).ok()?;
    let named = text.strip_prefix("gitdir:")?.trim();
    let git_dir = file.parent()?.join(named);
    git_dir.is_dir().then_some(git_dir)
}

/// Whether a repository's configuration may set `core.worktree` (for a linked work tree, its
/// own `config.worktree` too): read loosely, as any line naming `worktree` sends the question
/// to git.
fn sets_worktree(git_dir: &Path) -> bool {
    ["config", "config.worktree"].iter().any(|name| {
        std::fs::read_to_string(git_dir.join(name)).is_ok_and(|text| {
            text.lines().any(|line| {
                line.to_ascii_lowercase()
                    .trim_start()
                    .starts_with("worktree")
            })
        })
    })
}

/// `git rev-parse --show-toplevel` in `dir`.
fn asked(dir: &Path) -> Option<PathBuf> {
    let out = crate::select::git(dir, &["rev-parse", "--show-toplevel"]).ok()?;
    let text = String::from_utf8(out).ok()?;
    Some(PathBuf::from(text.trim_end_matches('\n')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::tests::run_git as git;

    /// What the disk says, and what git says, from `dir`.
    fn both(dir: &Path) -> (Found, Option<PathBuf>) {
        (discover(dir), asked(dir))
    }

    #[test]
    fn the_top_found_on_disk_is_the_one_git_names() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().canonicalize().expect("canonical");
        let repo = base.join("repo");
        let deep = repo.join("a/b");
        std::fs::create_dir_all(&deep).expect("mkdir");
        git(&repo, &["init", "-q"]);
        // A nested repository is its own top; a directory named `.git` without a `HEAD` is
        // not a repository.
        let nested = repo.join("a/nested");
        std::fs::create_dir_all(nested.join("x")).expect("mkdir");
        git(&nested, &["init", "-q"]);
        std::fs::create_dir_all(deep.join(".git")).expect("mkdir");
        for (dir, top) in [(&repo, &repo), (&deep, &repo), (&nested.join("x"), &nested)] {
            let (found, git) = both(dir);
            assert_eq!(found, Found::Top(top.clone()), "from {}", dir.display());
            assert_eq!(
                git.as_ref(),
                Some(top),
                "git agrees, from {}",
                dir.display()
            );
        }
        // A linked work tree: a `.git` file.
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "first"]);
        let linked = base.join("linked");
        git(
            &repo,
            &["worktree", "add", "-q", linked.to_str().expect("utf-8")],
        );
        std::fs::create_dir_all(linked.join("sub")).expect("mkdir");
        assert_eq!(
            both(&linked.join("sub")),
            (Found::Top(linked.clone()), Some(linked))
        );
        // Outside any repository.
        let outside = base.join("plain");
        std::fs::create_dir_all(&outside).expect("mkdir");
        assert_eq!(discover(&outside), Found::Nothing);
    }

    #[test]
    fn git_is_asked_where_its_answer_could_differ() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let repo = tmp.path().canonicalize().expect("canonical");
        git(&repo, &["init", "-q"]);
        assert_eq!(discover(&repo.join(".git")), Found::AskGit, "inside .git");
        git(&repo, &["config", "core.worktree", "/elsewhere"]);
        assert_eq!(discover(&repo), Found::AskGit, "core.worktree set");
        let broken = repo.join("broken");
        std::fs::create_dir_all(&broken).expect("mkdir");
        std::fs::write(broken.join(".git"), "gitdir: ../missing\n").expect("written");
        assert_eq!(
            discover(&broken),
            Found::AskGit,
            "a .git file naming nothing"
        );
    }
}
