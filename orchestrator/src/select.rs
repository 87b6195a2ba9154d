//! Which files a run looks at: all of them, the given paths, or what changed.
//!
//! The whole tree is walked on every core by the `ignore` crate, honouring `.gitignore` files,
//! `.git/info/exclude` and the global excludes as git does; inside a work tree git adds its
//! tracked files (`git ls-files --cached`), which stay selected where an ignore rule matches
//! them. What changed is git's to say (`git diff`). Paths come out relative to the root,
//! `/`-separated, sorted and unique. Files whose names are not UTF-8 cannot be named in the
//! protocol and are left out with a warning.
//!
//! A symbolic link is checked as the file it points to, under the link's own path, when that is
//! a regular file inside the root. Any other link (dangling, to a directory, to a file outside
//! the root) is skipped with a warning saying why: a validator would either fail on it or check
//! something outside the project, and a file the user expects checked must never vanish from a
//! run without a word. A file listed but gone (deleted since the last commit) is not a warning.

use crate::locks::lock;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, PoisonError};

/// How files are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Every file that is not ignored.
    All,
    /// These files and directories (relative to the working directory).
    Paths(Vec<PathBuf>),
    /// Files changed against a revision, plus staged, unstaged and untracked ones.
    Changed { base: String },
}

/// The selected files, and what was left out and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Selected {
    pub files: Vec<String>,
    pub warnings: Vec<String>,
}

/// Why files could not be selected.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SelectError {
    #[error("--changed needs a git repository, and {0} is not in one; use --all or name paths")]
    NotGit(PathBuf),
    #[error("`{command}` failed: {stderr}")]
    Git { command: String, stderr: String },
    #[error("{0}: no such file or directory")]
    Missing(PathBuf),
    #[error("{path}: a symbolic link to {target}, which does not exist; fix or remove the link")]
    Dangling { path: PathBuf, target: PathBuf },
    #[error("{path} is outside the root {root}; run from inside it or pass -C")]
    OutsideRoot { path: PathBuf, root: PathBuf },
    #[error("cannot walk {path}: {message}")]
    Walk { path: PathBuf, message: String },
}

/// Selects files under `root`; relative `Paths` are taken from `cwd`. With `kept` (the cache
/// directory), a whole tree's listing is kept there and reused while the tree is unchanged
/// ([`crate::listing`]).
pub fn select(
    root: &Path,
    cwd: &Path,
    selection: &Selection,
    kept: Option<&Path>,
) -> Result<Selected, SelectError> {
    let in_git = || git(root, &["rev-parse", "--is-inside-work-tree"]).is_ok();
    let mut selected = Selected::default();
    let mut raw: Vec<Listed> = match selection {
        // One git process on the common path: only when listing fails is it worth asking
        // whether this is a work tree at all (outside one, the walk alone answers).
        Selection::All => {
            let walked = everything(root, in_git, kept)?;
            selected.warnings.extend(walked.warnings);
            walked.files
        }
        Selection::Changed { .. } if !in_git() => return Err(SelectError::NotGit(root.to_owned())),
        Selection::Changed { base } => {
            // The changes and the untracked files are listed at once; each git takes a core.
            let (changed, untracked) = std::thread::scope(|scope| {
                let untracked = scope.spawn(|| {
                    git_list(root, &["ls-files", "-z", "--others", "--exclude-standard"])
                });
                let changed = git_list(root, &["diff", "-z", "--name-only", "--relative", base, "--"])
                    .map_err(|e| match e {
                        SelectError::Git { stderr, .. } if stderr.contains("unknown revision") || stderr.contains("bad revision") => SelectError::Git {
                            command: format!("git diff {base}"),
                            stderr: format!("unknown revision `{base}`; pass an existing commit, branch or tag to --base"),
                        },
                        other => other,
                    });
                (
                    changed,
                    untracked
                        .join()
                        .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                )
            });
            let mut changed = changed?;
            changed.extend(untracked?);
            changed.into_iter().map(Listed::unknown).collect()
        }
        Selection::Paths(paths) => {
            let root_abs = root
                .canonicalize()
                .map_err(|_| SelectError::Missing(root.to_owned()))?;
            let mut raw = Vec::new();
            for path in paths {
                let full = cwd.join(path);
                let abs = full.canonicalize().map_err(|_| match full.read_link() {
                    Ok(target) => SelectError::Dangling {
                        path: path.clone(),
                        target,
                    },
                    Err(_) => SelectError::Missing(path.clone()),
                })?;
                let relative =
                    abs.strip_prefix(&root_abs)
                        .map_err(|_| SelectError::OutsideRoot {
                            path: path.clone(),
                            root: root.to_owned(),
                        })?;
                if abs.is_dir() {
                    let walked = walk(&root_abs, &abs);
                    selected.warnings.extend(walked.warnings);
                    raw.extend(walked.files);
                } else {
                    raw.push(Listed::unknown(relative.as_os_str().as_bytes().to_vec()));
                }
            }
            raw
        }
    };
    // A name listed twice (walked and tracked) is kept once, as the walk saw it.
    raw.sort_unstable_by(|a, b| a.name.cmp(&b.name).then(b.regular.cmp(&a.regular)));
    raw.dedup_by(|later, first| later.name == first.name);
    let root_abs = root.canonicalize().unwrap_or_else(|_| root.to_owned());
    for Listed { name, regular } in raw {
        let os = OsStr::from_bytes(&name);
        let Some(path) = os.to_str() else {
            selected.warnings.push(format!(
                "{}: the name is not valid UTF-8, so no validator can be told about it; skipped",
                os.to_string_lossy()
            ));
            continue;
        };
        if regular {
            selected.files.push(path.to_owned());
            continue;
        }
        match classify(&root_abs, &root.join(os)) {
            Entry::File => selected.files.push(path.to_owned()),
            Entry::Ignored => {}
            Entry::Skipped(why) => selected.warnings.push(format!("{path}: {why}; skipped")),
        }
    }
    Ok(selected)
}

/// What a listed path is to a run.
#[derive(Debug, PartialEq, Eq)]
enum Entry {
    /// A regular file, or a link to one inside the root: checked.
    File,
    /// Gone (deleted since it was listed) or a directory (a submodule): not a file to check.
    Ignored,
    /// Something the user may expect checked that cannot be: left out, with the reason.
    Skipped(String),
}

fn classify(root: &Path, full: &Path) -> Entry {
    let Ok(meta) = full.symlink_metadata() else {
        return Entry::Ignored;
    };
    if !meta.file_type().is_symlink() {
        return if meta.is_file() {
            Entry::File
        } else if meta.is_dir() {
            Entry::Ignored
        } else {
            Entry::Skipped("not a regular file".into())
        };
    }
    let target = full
        .read_link()
        .map_or_else(|_| "?".to_owned(), |t| t.display().to_string());
    match (full.metadata(), full.canonicalize()) {
        (Ok(meta), Ok(resolved)) if meta.is_file() && resolved.starts_with(root) => Entry::File,
        (Ok(meta), Ok(_)) if meta.is_file() => Entry::Skipped(format!(
            "a symbolic link to {target}, outside the root"
        )),
        (Ok(meta), _) if meta.is_dir() => Entry::Skipped(format!(
            "a symbolic link to the directory {target} (its files are checked under their own paths)"
        )),
        (Ok(_), _) => Entry::Skipped(format!("a symbolic link to {target}, not a regular file")),
        (Err(_), _) => Entry::Skipped(format!(
            "a symbolic link to {target}, which does not exist"
        )),
    }
}

/// A name a listing gave, relative to the root.
#[derive(Debug)]
pub(crate) struct Listed {
    pub(crate) name: Vec<u8>,
    /// The listing saw a regular file (a directory entry's type), so it need not be examined.
    pub(crate) regular: bool,
}

impl Listed {
    fn unknown(name: Vec<u8>) -> Listed {
        Listed {
            name,
            regular: false,
        }
    }
}

/// Every file of the tree at `root` that git does not ignore.
///
/// The tree is walked in parallel, honouring ignore files as git does, while git lists the
/// tracked files: a tracked file stays selected even where an ignore rule matches it, and one
/// deleted since is listed, to be dropped. The walk and the small tracked list together cost
/// about half of `git ls-files --others`, which reads every directory on one thread; that
/// listing was a fifth of a warm run. Outside a work tree the walk alone answers. With `kept`,
/// the walk is skipped while the tree is as a kept listing found it, and git is not run while
/// its index is as when it listed the tracked files kept ([`crate::tracked`]).
fn everything(
    root: &Path,
    in_git: impl Fn() -> bool,
    kept: Option<&Path>,
) -> Result<Walked, SelectError> {
    let (tracked, mut walked) = std::thread::scope(|scope| {
        let tracked = scope.spawn(|| {
            let list = || git_list(root, &["ls-files", "-z", "--cached"]);
            match kept {
                Some(dir) => crate::tracked::tracked(dir, root, list),
                None => list(),
            }
        });
        let walked = match kept {
            Some(dir) => crate::listing::list(dir, root),
            None => walk(root, root),
        };
        let tracked = tracked.join().unwrap_or_else(|_| {
            Err(SelectError::Git {
                command: "git ls-files --cached".into(),
                stderr: "the thread reading its output stopped".into(),
            })
        });
        (tracked, walked)
    });
    match tracked {
        Ok(tracked) => {
            walked.leave_out_nested_repositories();
            walked
                .files
                .extend(tracked.into_iter().map(Listed::unknown));
            Ok(walked)
        }
        Err(_) if !in_git() => Ok(walked),
        Err(e) => Err(e),
    }
}

/// What a walk found.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    pub(crate) files: Vec<Listed>,
    /// Directories below the walk's start that hold a repository of their own.
    pub(crate) repositories: Vec<Vec<u8>>,
    /// The directories it read, the start (`""`) among them.
    pub(crate) dirs: Vec<Vec<u8>>,
    /// What could not be walked (an unreadable directory, a broken ignore file), as git warns
    /// of it and goes on.
    pub(crate) warnings: Vec<String>,
}

impl Walked {
    /// Drops the files of nested repositories: git lists neither them nor a submodule's files,
    /// which belong to another project.
    fn leave_out_nested_repositories(&mut self) {
        if self.repositories.is_empty() {
            return;
        }
        let inside = |name: &[u8]| {
            self.repositories.iter().any(|repo| {
                name.len() > repo.len() && name.starts_with(repo) && name[repo.len()] == b'/'
            })
        };
        let files = std::mem::take(&mut self.files);
        self.files = files.into_iter().filter(|f| !inside(&f.name)).collect();
    }
}

/// Files under `dir` honouring ignore files, as names relative to `root`, on as many threads
/// as there are cores.
pub(crate) fn walk(root: &Path, dir: &Path) -> Walked {
    walk_to(root, dir, None)
}

/// [`walk`] down to `depth` levels below `dir` (its entries are level 1), or all the way.
/// Ignore files of the directories above `dir` apply as they would to a walk from `root`.
pub(crate) fn walk_to(root: &Path, dir: &Path, depth: Option<usize>) -> Walked {
    let found = Mutex::new(Walked::default());
    let walker = ignore::WalkBuilder::new(dir)
        .max_depth(depth)
        .hidden(false)
        // `.ignore` files are ripgrep's, not git's.
        .ignore(false)
        .require_git(false)
        .build_parallel();
    walker.run(|| {
        Box::new(|entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    lock(&found)
                        .warnings
                        .push(format!("{e}; what it holds is not checked"));
                    return ignore::WalkState::Continue;
                }
            };
            let Ok(relative) = entry.path().strip_prefix(root) else {
                return ignore::WalkState::Continue;
            };
            let name = relative.as_os_str().as_bytes();
            if entry.file_name() == ".git" {
                if let Some(parent) = relative.parent().filter(|p| !p.as_os_str().is_empty()) {
                    lock(&found)
                        .repositories
                        .push(parent.as_os_str().as_bytes().to_vec());
                }
                return ignore::WalkState::Skip;
            }
            // Links are listed too, for the selection to check or explain (they are not
            // followed).
            match entry.file_type() {
                Some(t) if t.is_file() || t.is_symlink() => lock(&found).files.push(Listed {
                    name: name.to_vec(),
                    regular: t.is_file(),
                }),
                Some(t) if t.is_dir() => lock(&found).dirs.push(name.to_vec()),
                _ => {}
            }
            ignore::WalkState::Continue
        })
    });
    let mut walked = found.into_inner().unwrap_or_else(PoisonError::into_inner);
    walked.warnings.sort();
    walked
}

/// NUL-separated output of a git command, as raw names.
pub(crate) fn git_list(root: &Path, args: &[&str]) -> Result<Vec<Vec<u8>>, SelectError> {
    let out = git(root, args)?;
    Ok(out
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

pub(crate) fn git(root: &Path, args: &[&str]) -> Result<Vec<u8>, SelectError> {
    let failed = |stderr: String| SelectError::Git {
        command: format!("git {}", args.join(" ")),
        stderr,
    };
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| failed(format!("cannot run git ({e}); install git or use paths")))?;
    if !output.status.success() {
        return Err(failed(
            String::from_utf8_lossy(&output.stderr)
                .trim()
                .replace('\n', "; "),
        ));
    }
    Ok(output.stdout)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for f in files {
            let path = dir.path().join(f);
            fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            fs::write(path, "x\n").expect("write");
        }
        dir
    }

    /// `git ARGS` in `dir`, with an identity to commit as; it must succeed.
    pub(crate) fn run_git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .output()
            .expect("git runs")
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    /// A tree with links of every kind: to a file inside, to a directory, dangling, outside.
    fn links() -> (tempfile::TempDir, tempfile::TempDir) {
        use std::os::unix::fs::symlink;
        let dir = tree(&["real.py", "pkg/mod.py"]);
        let outside = tree(&["elsewhere.py"]);
        let d = dir.path();
        symlink("real.py", d.join("alias.py")).expect("link");
        symlink("pkg", d.join("pkglink")).expect("link");
        symlink("missing.py", d.join("dangling.py")).expect("link");
        symlink(outside.path().join("elsewhere.py"), d.join("out.py")).expect("link");
        (dir, outside)
    }

    fn assert_links_explained(got: &Selected) {
        assert_eq!(got.files, ["alias.py", "pkg/mod.py", "real.py"]);
        let warning = |path: &str| {
            got.warnings
                .iter()
                .find(|w| w.starts_with(&format!("{path}: ")))
                .unwrap_or_else(|| panic!("a warning for {path} in {:?}", got.warnings))
                .clone()
        };
        assert_eq!(
            warning("dangling.py"),
            "dangling.py: a symbolic link to missing.py, which does not exist; skipped"
        );
        assert!(
            warning("pkglink").contains("a symbolic link to the directory pkg"),
            "{got:?}"
        );
        assert!(
            warning("out.py").contains("outside the root; skipped"),
            "{got:?}"
        );
        assert_eq!(got.warnings.len(), 3, "{:?}", got.warnings);
    }

    #[test]
    fn links_are_checked_inside_the_root_and_explained_otherwise() {
        let (dir, _outside) = links();
        assert_links_explained(
            &select(dir.path(), dir.path(), &Selection::All, None).expect("walk"),
        );
        run_git(dir.path(), &["init", "-q"]);
        run_git(dir.path(), &["add", "-A"]);
        run_git(dir.path(), &["commit", "-qm", "links"]);
        assert_links_explained(
            &select(dir.path(), dir.path(), &Selection::All, None).expect("git"),
        );
    }

    #[test]
    fn a_dangling_link_named_on_the_command_line_is_one_clear_error() {
        let (dir, _outside) = links();
        let err = select(
            dir.path(),
            dir.path(),
            &Selection::Paths(vec!["dangling.py".into()]),
            None,
        )
        .expect_err("dangling");
        assert_eq!(
            err.to_string(),
            "dangling.py: a symbolic link to missing.py, which does not exist; fix or remove \
             the link"
        );
    }

    #[test]
    fn outside_git_ignore_files_are_honoured() {
        let dir = tree(&[
            ".gitignore",
            "a.py",
            "build/b.py",
            "src/c.py",
            ".hidden/d.py",
        ]);
        fs::write(dir.path().join(".gitignore"), "build/\n").expect("write");
        let got = select(dir.path(), dir.path(), &Selection::All, None).expect("selects");
        assert_eq!(
            got.files,
            [".gitignore", ".hidden/d.py", "a.py", "src/c.py"]
        );
    }

    #[test]
    fn in_git_untracked_files_count_and_ignored_ones_do_not() {
        let dir = tree(&[".gitignore", "a.py", "ignored.log", "new.py"]);
        fs::write(dir.path().join(".gitignore"), "*.log\n").expect("write");
        run_git(dir.path(), &["init", "-q"]);
        run_git(dir.path(), &["add", "a.py", ".gitignore"]);
        run_git(dir.path(), &["commit", "-qm", "one"]);
        let got = select(dir.path(), dir.path(), &Selection::All, None).expect("selects");
        assert_eq!(got.files, [".gitignore", "a.py", "new.py"]);
    }

    #[test]
    fn in_git_the_walk_agrees_with_git_on_what_is_listed() {
        // A tracked file an ignore rule matches stays selected; a deleted one goes; a nested
        // repository's files are another project's; ripgrep's `.ignore` files mean nothing
        // to git.
        let dir = tree(&[
            ".gitignore",
            "a.py",
            "gone.py",
            "logs/kept.log",
            "logs/new.log",
            "nested/.git/HEAD",
            "nested/inner.py",
            "sub/.ignore",
            "sub/b.py",
        ]);
        fs::write(dir.path().join(".gitignore"), "*.log\n").expect("write");
        fs::write(dir.path().join("sub/.ignore"), "b.py\n").expect("write");
        run_git(dir.path(), &["init", "-q"]);
        run_git(dir.path(), &["add", ".gitignore", "a.py", "gone.py", "sub"]);
        run_git(dir.path(), &["add", "-f", "logs/kept.log"]);
        run_git(dir.path(), &["commit", "-qm", "one"]);
        fs::remove_file(dir.path().join("gone.py")).expect("rm");
        let got = select(dir.path(), dir.path(), &Selection::All, None).expect("selects");
        assert_eq!(
            got.files,
            [
                ".gitignore",
                "a.py",
                "logs/kept.log",
                "sub/.ignore",
                "sub/b.py"
            ]
        );
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    }

    #[test]
    fn an_unreadable_directory_is_a_warning_and_the_rest_is_selected() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&["a.py", "locked/b.py"]);
        let locked = dir.path().join("locked");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).expect("chmod");
        if fs::read_dir(&locked).is_ok() {
            // Root reads any directory; restore and leave the case to other users.
            fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
            eprintln!("skipped: this user reads directories without permission");
            return;
        }
        let got = select(dir.path(), dir.path(), &Selection::All, None);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).expect("chmod");
        let got = got.expect("selects");
        assert_eq!(got.files, ["a.py"]);
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        assert!(got.warnings[0].contains("locked"), "{:?}", got.warnings);
    }

    #[test]
    fn changed_files_include_modified_and_untracked_but_not_deleted() {
        let dir = tree(&["a.py", "b.py", "c.py"]);
        run_git(dir.path(), &["init", "-q"]);
        run_git(dir.path(), &["add", "."]);
        run_git(dir.path(), &["commit", "-qm", "one"]);
        fs::write(dir.path().join("a.py"), "changed\n").expect("write");
        fs::remove_file(dir.path().join("b.py")).expect("rm");
        fs::write(dir.path().join("new.py"), "new\n").expect("write");
        let changed = Selection::Changed {
            base: "HEAD".into(),
        };
        let got = select(dir.path(), dir.path(), &changed, None).expect("selects");
        assert_eq!(got.files, ["a.py", "new.py"]);
    }

    #[test]
    fn an_unknown_base_names_the_revision() {
        let dir = tree(&["a.py"]);
        run_git(dir.path(), &["init", "-q"]);
        let changed = Selection::Changed {
            base: "nope".into(),
        };
        let err = select(dir.path(), dir.path(), &changed, None).expect_err("bad base");
        assert!(err.to_string().contains("unknown revision `nope`"), "{err}");
    }

    #[test]
    fn paths_are_taken_from_the_working_directory_and_must_be_inside_the_root() {
        let dir = tree(&["src/a.py", "src/b.py", "other.py"]);
        let src = dir.path().join("src");
        let got = select(
            dir.path(),
            &src,
            &Selection::Paths(vec!["a.py".into()]),
            None,
        )
        .expect("selects");
        assert_eq!(got.files, ["src/a.py"]);
        let got = select(
            dir.path(),
            dir.path(),
            &Selection::Paths(vec!["src".into()]),
            None,
        )
        .expect("selects");
        assert_eq!(got.files, ["src/a.py", "src/b.py"]);
        let err = select(
            &src,
            dir.path(),
            &Selection::Paths(vec!["other.py".into()]),
            None,
        )
        .expect_err("outside");
        assert!(matches!(err, SelectError::OutsideRoot { .. }), "{err}");
    }

    #[test]
    fn non_utf8_names_are_skipped_with_a_warning() {
        let dir = tree(&["ok.py"]);
        let name = OsStr::from_bytes(b"bad\xff.py");
        fs::write(dir.path().join(name), "x").expect("write");
        let got = select(dir.path(), dir.path(), &Selection::All, None).expect("selects");
        assert_eq!(got.files, ["ok.py"]);
        assert_eq!(got.warnings.len(), 1);
        assert!(
            got.warnings[0].contains("not valid UTF-8"),
            "{:?}",
            got.warnings
        );
    }
}
