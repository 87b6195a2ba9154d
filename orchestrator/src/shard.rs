//! `run --shard K/N`: one deterministic part of a run, so that N CI machines can share the work
//! and `merge-reports` can put their reports back together.
//!
//! A `per_file` validator's files are split by a hash of their path, so a file stays on the
//! same shard however the tree around it changes, and each shard's cache keeps serving it. A
//! `project` validator must see every file at once: it runs whole on one shard, chosen by a
//! hash of its name, and the others report it as skipped (`other_shard`).

use std::path::Path;

/// One shard of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shard {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    /// What the shards of one run share, so that a merge can tell they belong together.
    pub run_id: String,
}

/// A `--shard` that is not `K/N` with 1 ≤ K ≤ N.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--shard `{0}` must be K/N with 1 <= K <= N, such as 2/4")]
pub struct ShardError(String);

impl Shard {
    /// Parses `K/N`; the run id comes from [`run_id`].
    pub fn parse(text: &str, run_id: String) -> Result<Shard, ShardError> {
        let bad = || ShardError(text.to_owned());
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard {
            index,
            count,
            run_id,
        })
    }

    /// Whether this shard checks `path` for a `per_file` validator.
    pub fn owns_file(&self, path: &str) -> bool {
        self.slot(b"file", path) == self.index - 1
    }

    /// Whether this shard runs the `project` validator `name`.
    pub fn owns_validator(&self, name: &str) -> bool {
        self.slot(b"validator", name) == self.index - 1
    }

    fn slot(&self, kind: &[u8], text: &str) -> u32 {
        let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 shard");
        h.update(kind);
        h.update(&[0]);
        h.update(text.as_bytes());
        let bytes = h.finalize();
        let mut first = [0; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        (u64::from_le_bytes(first) % u64::from(self.count)) as u32
    }
}

/// The run id of a sharded run: `--run-id`, else `ORCHESTRATOR_RUN_ID` (clap reads both), else
/// the commit checked out in `root`, so that shards of one commit merge and shards of two do
/// not; `unknown` outside git.
pub fn run_id(given: Option<String>, root: &Path) -> String {
    given.unwrap_or_else(|| {
        std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| "unknown".to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shards(n: u32) -> Vec<Shard> {
        (1..=n)
            .map(|k| Shard::parse(&format!("{k}/{n}"), "r".into()).expect("valid"))
            .collect()
    }

    #[test]
    fn every_file_and_validator_belongs_to_exactly_one_shard() {
        for n in [1, 2, 4, 7] {
            let all = shards(n);
            for i in 0..500 {
                let path = format!("pkg{}/module_{i}.py", i % 13);
                assert_eq!(all.iter().filter(|s| s.owns_file(&path)).count(), 1);
                let name = format!("validator{i}");
                assert_eq!(all.iter().filter(|s| s.owns_validator(&name)).count(), 1);
            }
        }
    }

    #[test]
    fn files_are_spread_evenly_enough() {
        let all = shards(4);
        for shard in &all {
            let owned = (0..4000)
                .filter(|i| shard.owns_file(&format!("src/m{i}.py")))
                .count();
            assert!(
                (800..1200).contains(&owned),
                "shard {}: {owned}",
                shard.index
            );
        }
    }

    #[test]
    fn a_malformed_shard_is_named() {
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            let err = Shard::parse(bad, String::new()).expect_err(bad);
            assert_eq!(
                err.to_string(),
                format!("--shard `{bad}` must be K/N with 1 <= K <= N, such as 2/4")
            );
        }
        assert_eq!(
            Shard::parse("2/4", "x".into()),
            Ok(Shard {
                index: 2,
                count: 4,
                run_id: "x".into()
            })
        );
    }
}
