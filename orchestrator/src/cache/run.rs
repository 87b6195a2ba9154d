//! A validator's whole run as one record: every result of its last complete run, under the
//! digest of all their keys, with the state of every file those results listed as inputs.
//!
//! A warm run on an unchanged tree would otherwise read one entry per file and one input
//! list per distinct import closure (on Django, 2,818 entries and 14 MB of lists for pyright
//! alone) and digest each list; with the record it reads one value and compares one set of
//! file states. The per-file entries stay the source of truth: a record is only a shortcut to
//! what they would answer, and any difference (a file changed, added or removed, which changes
//! a key; an input changed; an artifact gone) sends the run down the per-file path, which
//! writes the record again once the run is complete.
//!
//! Each validator identity (name, versions, configuration) in each root has one slot
//! ([`super::key::run_slot`]), overwritten by its next complete run, so records never pile up.
//!
//! Layout: byte 1 (the layout's version), the 32-byte digest of the keys, the number of inputs
//! (u32, little-endian), each input as its path's length (u32), the path, and 0 (absent) or 1
//! followed by its 32-byte hash; then each result as its length (u32) and its bytes as an
//! entry keeps them (`entry::encode_result`).

use super::entry::{decode_result, encode_result};
use super::Key;
use crate::digest::Hash;
use protocol::FileResult;

const LAYOUT: u8 = 1;

/// The results of one complete run of a validator and what they were made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// [`keys_digest`] of the run's keys, in the order of its files.
    pub keys: Hash,
    /// Every file a result listed as an input, sorted, with its hash then (`None`: absent).
    pub inputs: Vec<(String, Option<Hash>)>,
    /// The results, their `inputs` left empty, sorted by path.
    pub results: Vec<FileResult>,
}

/// One digest of a run's keys, in order: a file added, removed, renamed or changed, or any
/// change to the configuration, changes it.
pub fn keys_digest(keys: &[Key]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 run keys");
    h.update(&(keys.len() as u64).to_le_bytes());
    for key in keys {
        h.update(key);
    }
    *h.finalize().as_bytes()
}

impl RunRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![LAYOUT];
        bytes.extend_from_slice(&self.keys);
        push_len(&mut bytes, self.inputs.len());
        for (path, state) in &self.inputs {
            push_len(&mut bytes, path.len());
            bytes.extend_from_slice(path.as_bytes());
            match state {
                Some(hash) => {
                    bytes.push(1);
                    bytes.extend_from_slice(hash);
                }
                None => bytes.push(0),
            }
        }
        for result in &self.results {
            let encoded = encode_result(result);
            push_len(&mut bytes, encoded.len());
            bytes.extend(encoded);
        }
        bytes
    }

    /// `None` for bytes that are not a record in this layout: the run takes the per-file path.
    pub fn decode(bytes: &[u8]) -> Option<RunRecord> {
        let mut r = Reader(bytes);
        if r.take(1)? != [LAYOUT] {
            return None;
        }
        let keys: Hash = r.take(32)?.try_into().ok()?;
        let count = r.len()?;
        let mut inputs = Vec::with_capacity(count.min(bytes.len()));
        for _ in 0..count {
            let len = r.len()?;
            let path = std::str::from_utf8(r.take(len)?).ok()?.to_owned();
            let state = match r.take(1)? {
                [0] => None,
                [1] => Some(r.take(32)?.try_into().ok()?),
                _ => return None,
            };
            inputs.push((path, state));
        }
        let mut encoded = Vec::new();
        while !r.0.is_empty() {
            let len = r.len()?;
            encoded.push(r.take(len)?);
        }
        // Tens of thousands of findings to decode, a sixth of a warm run's time on one core.
        let results = crate::parallel::on_every_core(encoded, decode_result)
            .into_iter()
            .collect::<Option<Vec<_>>>()?;
        Some(RunRecord {
            keys,
            inputs,
            results,
        })
    }
}

/// Which of a record's results rest on which of its inputs, kept beside the record (in
/// `index_slot`) so that a run with nothing changed never reads it.
///
/// When some files changed, the record as a whole no longer answers, but most of its results
/// still do: those whose key is unchanged and none of whose inputs changed. The index says, for
/// each result in the record's order, its key and the positions in the record's inputs of the
/// files it listed, so that a run after a one-file change serves every other file from the
/// record and asks the per-file entries only about the rest.
///
/// Layout: byte 1, the record's 32-byte keys digest, the number of results (u32), then per
/// result its 32-byte key, the number of its inputs and their positions, ascending, each as
/// the gap from the previous one (LEB128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIndex {
    /// The [`RunRecord::keys`] of the record this indexes.
    pub keys: Hash,
    /// Per result of the record, in its order: the result's key, and its inputs' positions.
    pub results: Vec<(Key, Vec<u32>)>,
}

/// Where the [`RunIndex`] of the record in `slot` is kept.
pub fn index_slot(slot: &Key) -> Key {
    *blake3::Hasher::new_derive_key("orchestrator 2026 run record index")
        .update(slot)
        .finalize()
        .as_bytes()
}

impl RunIndex {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![LAYOUT];
        bytes.extend_from_slice(&self.keys);
        push_len(&mut bytes, self.results.len());
        for (key, uses) in &self.results {
            bytes.extend_from_slice(key);
            push_varint(&mut bytes, uses.len() as u64);
            let mut last = 0;
            for &at in uses {
                push_varint(&mut bytes, u64::from(at - last));
                last = at;
            }
        }
        bytes
    }

    /// `None` for bytes that are not an index in this layout, or whose positions are not
    /// ascending.
    pub fn decode(bytes: &[u8]) -> Option<RunIndex> {
        let mut r = Reader(bytes);
        if r.take(1)? != [LAYOUT] {
            return None;
        }
        let keys: Hash = r.take(32)?.try_into().ok()?;
        let count = r.len()?;
        let mut results = Vec::with_capacity(count.min(bytes.len() / 33));
        for _ in 0..count {
            let key: Key = r.take(32)?.try_into().ok()?;
            let n = usize::try_from(r.varint()?).ok()?;
            let mut uses = Vec::with_capacity(n.min(r.0.len()));
            let mut at: u32 = 0;
            for i in 0..n {
                let gap = u32::try_from(r.varint()?).ok()?;
                if i > 0 && gap == 0 {
                    return None;
                }
                at = at.checked_add(gap)?;
                uses.push(at);
            }
            results.push((key, uses));
        }
        r.0.is_empty().then_some(RunIndex { keys, results })
    }
}

fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push((value as u8) | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn push_len(bytes: &mut Vec<u8>, len: usize) {
    let len = u32::try_from(len).expect("a run record's parts are far below 4 GiB");
    bytes.extend_from_slice(&len.to_le_bytes());
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(bytes)).ok()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    fn record() -> RunRecord {
        let finding = Finding::new("a.py", 3, 1, "E1", Severity::Error, "bad");
        RunRecord {
            keys: keys_digest(&[[1; 32], [2; 32]]),
            inputs: vec![("a.py".into(), Some([5; 32])), ("a.pyi".into(), None)],
            results: vec![
                FileResult::new("a.py", vec![finding]),
                FileResult::new("b.py", Vec::new()),
            ],
        }
    }

    #[test]
    fn a_record_round_trips_and_damage_is_a_miss() {
        let record = record();
        let bytes = record.encode();
        assert_eq!(RunRecord::decode(&bytes), Some(record));
        for cut in [0, 1, 33, 40, bytes.len() - 1] {
            assert_eq!(RunRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut other_layout = bytes.clone();
        other_layout[0] = 9;
        assert_eq!(RunRecord::decode(&other_layout), None);
    }

    #[test]
    fn an_index_round_trips_and_damage_is_a_miss() {
        let index = RunIndex {
            keys: [3; 32],
            results: vec![([1; 32], vec![0, 1, 200, 70_000]), ([2; 32], Vec::new())],
        };
        let bytes = index.encode();
        assert_eq!(RunIndex::decode(&bytes), Some(index));
        for cut in [0, 1, 33, 40, bytes.len() - 1] {
            assert_eq!(RunIndex::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(RunIndex::decode(&longer), None);
        assert_ne!(index_slot(&[1; 32]), [1; 32]);
    }

    #[test]
    fn the_keys_digest_depends_on_every_key_and_their_order() {
        let (a, b) = ([1; 32], [2; 32]);
        assert_ne!(keys_digest(&[a, b]), keys_digest(&[b, a]));
        assert_ne!(keys_digest(&[a, b]), keys_digest(&[a]));
        assert_eq!(keys_digest(&[a, b]), keys_digest(&[a, b]));
    }
}
