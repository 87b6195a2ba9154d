//! The history as a hash chain: each run's entry carries the hash of the entry before it, and
//! its own hash covers that and its summary's bytes, so that editing, removing or reordering
//! an entry breaks every link after it.
//!
//! What it proves, and what not: it is a local file, so whoever can rewrite the file can also
//! recompute every hash after an edit, and dropping the newest entries leaves a shorter chain
//! that is still whole. `history verify` therefore prints the newest hash: kept somewhere else
//! (a CI log, a commit message), it pins everything up to that entry.

use crate::digest::Hash;

/// An entry as it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    /// The summary's bytes ([`super::Summary::encode`]).
    pub summary: Vec<u8>,
    pub prev: Hash,
    pub hash: Hash,
}

/// The first entry that breaks the chain, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    #[error("entry {id} was changed after it was recorded: its hash does not match its contents")]
    Edited { id: i64 },
    #[error(
        "entry {id} does not follow entry {after}: an entry between them was removed, or \
         entries were reordered"
    )]
    Unlinked { id: i64, after: i64 },
    #[error(
        "entry {id} is not the first entry, yet the chain starts there: earlier ones were removed"
    )]
    Truncated { id: i64 },
}

/// The hash of an entry whose predecessor's hash is `prev`.
pub fn link(prev: &Hash, summary: &[u8]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 history ledger");
    h.update(prev);
    h.update(&(summary.len() as u64).to_le_bytes());
    h.update(summary);
    *h.finalize().as_bytes()
}

/// Checks a whole history, oldest first; returns the newest entry's hash (`None` when empty),
/// or the first entry that breaks the chain.
pub fn verify(rows: &[Row]) -> Result<Option<Hash>, Broken> {
    let mut before: Option<&Row> = None;
    for row in rows {
        match before {
            None if row.prev != [0; 32] || row.id != 1 => {
                return Err(Broken::Truncated { id: row.id });
            }
            Some(previous) if row.prev != previous.hash || row.id != previous.id + 1 => {
                return Err(Broken::Unlinked {
                    id: row.id,
                    after: previous.id,
                });
            }
            _ => {}
        }
        if row.hash != link(&row.prev, &row.summary) {
            return Err(Broken::Edited { id: row.id });
        }
        before = Some(row);
    }
    Ok(before.map(|r| r.hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: i64) -> Vec<Row> {
        let mut rows: Vec<Row> = Vec::new();
        for id in 1..=n {
            let prev = rows.last().map_or([0; 32], |r| r.hash);
            let summary = format!("{{\"run\":{id}}}").into_bytes();
            let hash = link(&prev, &summary);
            rows.push(Row {
                id,
                summary,
                prev,
                hash,
            });
        }
        rows
    }

    #[test]
    fn a_whole_chain_verifies_to_its_newest_hash() {
        let rows = chain(4);
        assert_eq!(verify(&rows), Ok(Some(rows[3].hash)));
        assert_eq!(verify(&[]), Ok(None));
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_entry() {
        let mut edited = chain(4);
        edited[2].summary = b"{\"run\":99}".to_vec();
        assert_eq!(verify(&edited), Err(Broken::Edited { id: 3 }));

        let mut removed = chain(4);
        removed.remove(1);
        assert_eq!(verify(&removed), Err(Broken::Unlinked { id: 3, after: 1 }));

        // Renumbered so that the ids run on: the links still give it away.
        let mut renumbered = chain(4);
        renumbered.remove(1);
        for (i, row) in renumbered.iter_mut().enumerate() {
            row.id = i as i64 + 1;
        }
        assert_eq!(
            verify(&renumbered),
            Err(Broken::Unlinked { id: 2, after: 1 })
        );

        let mut reordered = chain(4);
        let (a, b) = (reordered[1].clone(), reordered[2].clone());
        reordered[1] = Row { id: 2, ..b };
        reordered[2] = Row { id: 3, ..a };
        assert_eq!(
            verify(&reordered),
            Err(Broken::Unlinked { id: 2, after: 1 })
        );

        let mut truncated = chain(4);
        truncated.remove(0);
        assert_eq!(verify(&truncated), Err(Broken::Truncated { id: 2 }));

        // An edit with its own hash recomputed still breaks the next link.
        let mut rehashed = chain(4);
        rehashed[1].summary = b"{\"run\":99}".to_vec();
        rehashed[1].hash = link(&rehashed[1].prev, &rehashed[1].summary);
        assert_eq!(verify(&rehashed), Err(Broken::Unlinked { id: 3, after: 2 }));
    }
}
