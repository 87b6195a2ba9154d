//! Holding the line: reporting only the findings a change adds.
//!
//! A team adopting checks on an old codebase cannot fix thousands of findings first. Two
//! filters let it start anyway: a saved [`Baseline`] of today's findings, matched by
//! fingerprints that survive unrelated edits ([`crate::report::fingerprint`]), and
//! [`ChangedLines`], the lines `git diff` says changed since a revision. Either leaves the
//! other findings out of the report and its exit status, and the report says how many.

use crate::report::fingerprint;
use crate::report::Report;
use crate::select::{self, SelectError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// Where `baseline save` writes when not told, relative to the root.
pub const DEFAULT_BASELINE: &str = ".orchestrator/baseline.json";

/// The saved findings of a run.
#[derive(Debug, Serialize, Deserialize)]
pub struct Baseline {
    /// [`fingerprint::VERSION`] when saved: fingerprints of another version never match.
    pub fingerprint_version: u32,
    pub findings: Vec<Entry>,
}

/// One saved finding: its fingerprint, and what a person reading the file needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Entry {
    pub fingerprint: String,
    pub validator: String,
    pub rule: String,
    pub path: String,
    pub message: String,
}

/// Why a baseline cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("baseline {0}: no such file; create it with `orchestrator baseline save {0}`")]
    Missing(String),
    #[error("baseline {path}: cannot be read ({source})")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("baseline {path}: not a baseline file ({message}); save it again with `orchestrator baseline save {path}`")]
    Malformed { path: String, message: String },
    #[error("baseline {path}: saved by another version of orchestrator (fingerprints v{found}, this one v{expected}); save it again with `orchestrator baseline save {path}`")]
    Version {
        path: String,
        found: u32,
        expected: u32,
    },
    #[error("baseline {path}: cannot be written ({source})")]
    Unwritable {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl Baseline {
    /// The baseline of a run: every finding it reported.
    pub fn of(report: &Report) -> Baseline {
        Baseline {
            fingerprint_version: fingerprint::VERSION,
            findings: report
                .findings
                .iter()
                .zip(report.fingerprints())
                .map(|(f, fingerprint)| Entry {
                    fingerprint: fingerprint.clone(),
                    validator: f.validator.clone(),
                    rule: f.finding.rule.clone(),
                    path: f.finding.path.clone(),
                    message: f.finding.message.clone(),
                })
                .collect(),
        }
    }

    pub fn load(path: &Path) -> Result<Baseline, BaselineError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => BaselineError::Missing(name.clone()),
            _ => BaselineError::Unreadable {
                path: name.clone(),
                source,
            },
        })?;
        let baseline: Baseline =
            serde_json::from_str(&text).map_err(|e| BaselineError::Malformed {
                path: name.clone(),
                message: e.to_string(),
            })?;
        if baseline.fingerprint_version != fingerprint::VERSION {
            return Err(BaselineError::Version {
                path: name,
                found: baseline.fingerprint_version,
                expected: fingerprint::VERSION,
            });
        }
        Ok(baseline)
    }

    /// Writes the baseline, creating its directory, through a temporary file and a rename.
    pub fn save(&self, path: &Path) -> Result<(), BaselineError> {
        let failed = |source| BaselineError::Unwritable {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let text = serde_json::to_string_pretty(self).expect("a baseline serialises") + "\n";
        crate::cli::write_atomically(path, &text).map_err(failed)
    }

    /// Leaves out of `report` every finding this baseline holds; `name` says which file.
    pub fn apply(&self, report: &mut Report, name: &str) {
        let known: HashSet<&str> = self
            .findings
            .iter()
            .map(|e| e.fingerprint.as_str())
            .collect();
        let keep: Vec<bool> = report
            .fingerprints()
            .iter()
            .map(|p| !known.contains(p.as_str()))
            .collect();
        report.suppress(format!("baseline {name}"), keep);
    }
}

/// The lines changed since a revision, by root-relative path.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChangedLines {
    /// Files with changed lines; a file new since the revision has every line changed.
    lines: BTreeMap<String, BTreeSet<u32>>,
    new_files: BTreeSet<String>,
}

impl ChangedLines {
    /// What changed since `rev`: in the index when `staged`, else in the working tree (staged
    /// or not) and its untracked files.
    pub fn since(root: &Path, rev: &str, staged: bool) -> Result<ChangedLines, SelectError> {
        if crate::worktree::toplevel(root).is_none() {
            return Err(SelectError::NotGit(root.to_owned()));
        }
        let mut args = vec![
            "-c",
            "core.quotePath=false",
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--unified=0",
            "--relative",
            // A moved file keeps its old findings old: only its changed lines are new.
            "--find-renames",
        ];
        if staged {
            args.push("--cached");
        }
        args.extend([rev, "--"]);
        let diff = select::git(root, &args)?;
        let mut changed = ChangedLines::parse(&String::from_utf8_lossy(&diff));
        if staged {
            return Ok(changed);
        }
        let untracked = select::git(
            root,
            &[
                "ls-files",
                "-z",
                "--others",
                "--exclude-standard",
                "--",
                ".",
            ],
        )?;
        for name in untracked.split(|b| *b == 0).filter(|n| !n.is_empty()) {
            changed
                .new_files
                .insert(String::from_utf8_lossy(name).into_owned());
        }
        Ok(changed)
    }

    /// Reads a `git diff --unified=0`: the `+++ b/PATH` headers and the new side of each hunk
    /// (`@@ -a,b +START,COUNT @@`).
    fn parse(diff: &str) -> ChangedLines {
        let mut changed = ChangedLines::default();
        let mut file: Option<String> = None;
        let mut new_file = false;
        for line in diff.lines() {
            if line.starts_with("diff --git ") {
                file = None;
                new_file = false;
            } else if line.starts_with("new file mode") {
                new_file = true;
            } else if let Some(path) = line.strip_prefix("+++ ") {
                file = path.strip_prefix("b/").map(str::to_owned);
                if let (Some(path), true) = (&file, new_file) {
                    changed.new_files.insert(path.clone());
                }
            } else if let (Some(path), Some(hunk)) = (&file, line.strip_prefix("@@ ")) {
                let Some(new) = hunk.split(' ').find_map(|part| part.strip_prefix('+')) else {
                    continue;
                };
                let (start, count) = match new.split_once(',') {
                    Some((start, count)) => (start.parse().ok(), count.parse().ok()),
                    None => (new.parse().ok(), Some(1)),
                };
                if let (Some(start), Some(count)) = (start, count) {
                    let lines: std::ops::Range<u32> = start..start + count;
                    changed.lines.entry(path.clone()).or_default().extend(lines);
                }
            }
        }
        changed
    }

    fn contains(&self, path: &str, line: u32) -> bool {
        self.new_files.contains(path) || self.lines.get(path).is_some_and(|l| l.contains(&line))
    }

    /// Leaves out of `report` every finding not on a changed line.
    pub fn apply(&self, report: &mut Report, rev: &str) {
        let keep: Vec<bool> = report
            .findings
            .iter()
            .map(|f| self.contains(&f.finding.path, f.finding.line))
            .collect();
        report.suppress(format!("--new-since {rev}"), keep);
    }
}

/// The baseline file a run uses: `--baseline`, else the configuration's, relative to the root.
pub fn baseline_file(
    root: &Path,
    arg: Option<&Path>,
    configured: Option<&Path>,
) -> Option<PathBuf> {
    arg.map(Path::to_owned)
        .or_else(|| configured.map(|c| root.join(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_gives_the_new_side_of_each_hunk_and_new_files_whole() {
        let diff = "diff --git a/a.py b/a.py\nindex 1..2 100644\n--- a/a.py\n+++ b/a.py\n\
                    @@ -1,0 +2,2 @@\n+x\n+y\n@@ -9 +11 @@\n-old\n+new\n@@ -20,3 +22,0 @@\n-gone\n\
                    diff --git a/n.py b/n.py\nnew file mode 100644\n--- /dev/null\n+++ b/n.py\n@@ -0,0 +1 @@\n+z\n\
                    diff --git a/d.py b/d.py\ndeleted file mode 100644\n--- a/d.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-d\n";
        let changed = ChangedLines::parse(diff);
        assert!(changed.contains("a.py", 2) && changed.contains("a.py", 3));
        assert!(changed.contains("a.py", 11));
        assert!(!changed.contains("a.py", 1) && !changed.contains("a.py", 4));
        assert!(!changed.contains("a.py", 22), "a deletion adds no line");
        assert!(changed.contains("n.py", 40), "a new file is new throughout");
        assert!(!changed.contains("d.py", 1));
    }
}
