//! A run's files, which a whole-tree run finds while its validators start.
//!
//! Walking the tree and starting a validator need nothing of each other until the validator's
//! manifest says which files it checks. Starting one takes a while even on a warm run: its
//! process is moved into the run's cgroup, which waits for a kernel RCU grace period (10–15 ms
//! here), then it answers the handshake. So the walk of a `--all` run starts with the run, and
//! each executor waits for the files only after its handshake. The other selections (paths,
//! `--changed`) are resolved with the plan, where a mistyped path or revision is reported before
//! anything starts; a `--all` run that cannot list the tree (git refusing the repository, say)
//! ends with the same one-line error, once its validators are stopped.

use crate::select::{self, SelectError, Selection};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// The files of a run: found, or to be found when it starts.
#[derive(Debug, Clone)]
pub enum Files {
    Found(Arc<Found>),
    /// Every file under `root`, walked when the run starts ([`Files::start`]), its listing
    /// kept in the cache directory `kept` if there is one ([`crate::listing`]).
    Everything {
        root: PathBuf,
        cwd: PathBuf,
        kept: Option<PathBuf>,
    },
}

/// What selection found.
#[derive(Debug, Default)]
pub struct Found {
    /// Selected files, relative to the root.
    pub files: Vec<String>,
    /// With `--changed`, every file of the tree: those whose cached results list a changed file
    /// as an input are checked too. `None` otherwise.
    pub universe: Option<Vec<String>>,
    /// What selection left out and why.
    pub warnings: Vec<String>,
}

type Outcome = Option<Result<Arc<Found>, SelectError>>;

/// Files being found, shared by the executors of a run and the dispatcher.
#[derive(Debug, Clone)]
pub struct Finding {
    outcome: watch::Receiver<Outcome>,
    /// A `--changed` run, whose files have a [`Found::universe`]: known before they are found.
    changed: bool,
}

impl Files {
    /// Starts finding the files on a blocking thread, unless they are found already. Call it
    /// inside the run's runtime.
    pub fn start(&self) -> Finding {
        match self {
            Files::Found(found) => {
                let (_, outcome) = watch::channel(Some(Ok(found.clone())));
                let changed = found.universe.is_some();
                Finding { outcome, changed }
            }
            Files::Everything { root, cwd, kept } => {
                let (tx, rx) = watch::channel(None);
                let (root, cwd, kept) = (root.clone(), cwd.clone(), kept.clone());
                // A walk that panics drops `tx` unsent, which `result` reports.
                tokio::task::spawn_blocking(move || {
                    let found = select::select(&root, &cwd, &Selection::All, kept.as_deref()).map(
                        |selected| {
                            tracing::debug!("{} files found", selected.files.len());
                            Arc::new(Found {
                                files: selected.files,
                                universe: None,
                                warnings: selected.warnings,
                            })
                        },
                    );
                    let _ = tx.send(Some(found));
                });
                Finding {
                    outcome: rx,
                    changed: false,
                }
            }
        }
    }
}

impl Finding {
    /// Whether this is a `--changed` run.
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// The files once found, or why they could not be.
    pub async fn result(&self) -> Result<Arc<Found>, SelectError> {
        let mut rx = self.outcome.clone();
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or_else(|| {
            Err(SelectError::Walk {
                path: PathBuf::from("."),
                message: "internal error: the file walk stopped without an answer".to_owned(),
            })
        })
    }

    /// The files, once found; `None` when selection failed, which the dispatcher reports for
    /// the whole run.
    pub async fn files(&self) -> Option<Arc<Found>> {
        self.result().await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_walk_started_with_the_run_finds_what_selection_finds() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.py"), "x = 1\n").expect("write");
        std::fs::create_dir(dir.path().join("pkg")).expect("mkdir");
        std::fs::write(dir.path().join("pkg/b.py"), "y = 2\n").expect("write");
        let root = dir.path().to_owned();
        let files = Files::Everything {
            root: root.clone(),
            cwd: root.clone(),
            kept: None,
        };
        let finding = files.start();
        let found = finding.result().await.expect("found");
        let direct = select::select(&root, &root, &Selection::All, None).expect("select");
        assert_eq!(found.files, direct.files);
        assert_eq!(found.files, ["a.py", "pkg/b.py"]);
        // Every waiter gets the same answer.
        let again = finding.clone().files().await.expect("found again");
        assert!(Arc::ptr_eq(&found, &again));
    }

    #[tokio::test]
    async fn a_walk_that_fails_gives_its_error_to_every_waiter() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        let git = std::process::Command::new("git")
            .args(["init", "-q"])
            .current_dir(&root)
            .status()
            .expect("git");
        assert!(git.success());
        // git reads no index it cannot parse, and says so.
        std::fs::write(root.join(".git/index"), "garbage").expect("write");
        let files = Files::Everything {
            root: root.clone(),
            cwd: root,
            kept: None,
        };
        let finding = files.start();
        let error = finding
            .result()
            .await
            .expect_err("git cannot list the tree");
        assert!(error.to_string().contains("index"), "{error}");
        assert!(finding.files().await.is_none());
    }
}
