//! Fingerprints of findings that survive unrelated edits.
//!
//! A finding's line number changes whenever a line above it is added or removed, so it cannot
//! identify the finding across commits. Its fingerprint is instead the hash of the validator,
//! the rule, the path, and the whitespace-normalised text of the finding's line and of the lines
//! either side; an occurrence index tells apart findings whose hashes are equal (the same rule
//! twice on one line, or a repeated block). Moving code keeps it; editing the finding's line or
//! its neighbours changes it, as it should: that may be a different finding.
//!
//! The same fingerprint is SARIF's `primaryLocationLineHash` (GitHub code scanning matches
//! alerts across commits with it), GitLab's `fingerprint`, and the key of a saved baseline.

use super::ReportFinding;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Bumped whenever the text hashed changes: saved baselines then stop matching, and say so.
pub const VERSION: u32 = 1;

/// Lines of the files findings are in, read once each.
#[derive(Debug)]
pub struct Sources {
    root: PathBuf,
    files: HashMap<String, Vec<String>>,
}

impl Sources {
    pub fn new(root: &Path) -> Sources {
        Sources {
            root: root.to_owned(),
            files: HashMap::new(),
        }
    }

    /// The file's lines; none when it cannot be read as text (deleted since, binary, a page
    /// the validator loaded over HTTP): its findings are then fingerprinted without context.
    pub fn lines(&mut self, path: &str) -> &[String] {
        self.files.entry(path.to_owned()).or_insert_with(|| {
            std::fs::read(self.root.join(path))
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .map(|text| text.lines().map(normalise).collect())
                .unwrap_or_default()
        })
    }
}

/// A line without its indentation and with runs of whitespace made one space, so that
/// re-indenting or re-aligning code keeps its findings' fingerprints.
fn normalise(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// One fingerprint per finding, in order: `HASH:OCCURRENCE`, HASH 16 hex digits.
///
/// Findings must be in the report's order (sorted by position), so that occurrence indices
/// count from the top of the file.
pub fn fingerprints(findings: &[ReportFinding], sources: &mut Sources) -> Vec<String> {
    let mut seen: HashMap<String, u32> = HashMap::new();
    findings
        .iter()
        .map(|f| {
            let hash = hash(f, sources.lines(&f.finding.path));
            let occurrence = seen.entry(hash.clone()).or_insert(0);
            let fingerprint = format!("{hash}:{occurrence}");
            *occurrence += 1;
            fingerprint
        })
        .collect()
}

fn hash(f: &ReportFinding, lines: &[String]) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [
        f.validator.as_str(),
        f.finding.rule.as_str(),
        f.finding.path.as_str(),
    ] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    // Lines are 1-based; the finding's line is at index line - 1, its neighbours either side.
    let at = f.finding.line as usize;
    for index in [at.checked_sub(2), at.checked_sub(1), Some(at)] {
        let line = index.and_then(|i| lines.get(i)).map_or("", String::as_str);
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().to_hex()[..16].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    fn at(path: &str, line: u32, rule: &str) -> ReportFinding {
        ReportFinding {
            validator: "lint".into(),
            finding: Finding::new(path, line, 1, rule, Severity::Error, "m"),
        }
    }

    fn prints(text: &str, findings: &[ReportFinding]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("a.py"), text).expect("written");
        fingerprints(findings, &mut Sources::new(dir.path()))
    }

    #[test]
    fn moving_code_down_keeps_the_fingerprint() {
        let before = prints("import os\nx = 1\ny = 2\n", &[at("a.py", 2, "R")]);
        let after = prints(
            "\n\n# new\nimport os\n  x  =  1\ny = 2\n",
            &[at("a.py", 5, "R")],
        );
        assert_eq!(before, after);
    }

    #[test]
    fn editing_the_line_or_a_neighbour_changes_it() {
        let base = prints("a\nb\nc\nd\n", &[at("a.py", 2, "R")]);
        assert_ne!(base, prints("a\nB\nc\nd\n", &[at("a.py", 2, "R")]));
        assert_ne!(base, prints("A\nb\nc\nd\n", &[at("a.py", 2, "R")]));
        assert_ne!(base, prints("a\nb\nC\nd\n", &[at("a.py", 2, "R")]));
        assert_eq!(base, prints("a\nb\nc\nD\n", &[at("a.py", 2, "R")]));
    }

    #[test]
    fn equal_hashes_are_told_apart_by_occurrence() {
        let p = prints("x\nx\nx\nx\nx\n", &[at("a.py", 2, "R"), at("a.py", 3, "R")]);
        assert_eq!(p[0].split(':').next(), p[1].split(':').next());
        assert!(p[0].ends_with(":0") && p[1].ends_with(":1"), "{p:?}");
    }

    #[test]
    fn the_rule_and_validator_are_part_of_it_and_an_unreadable_file_is_no_error() {
        let p = prints("x\n", &[at("a.py", 1, "R"), at("a.py", 1, "S")]);
        assert_ne!(p[0], p[1]);
        let gone = prints("x\n", &[at("missing.py", 1, "R")]);
        assert_eq!(gone.len(), 1);
    }
}
