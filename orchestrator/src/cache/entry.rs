//! What the cache keeps per key: a file's result and, for each file the result says it
//! depended on (`FileResult.inputs`), the content hash that file had when the result was made.
//!
//! This is ccache's manifest idea: the key covers what is known before running (the file, the
//! configuration, the tool), and the recorded inputs cover what only the run could tell (the
//! stylesheets a page loaded). A hit is served only while every input still has its recorded
//! hash, or is still absent.
//!
//! Layout: `u32` input count (little-endian), then per input one byte (0 absent, 1 present)
//! followed, when present, by its 32-byte hash; then the result as the protocol encodes a
//! `Response::FileResult`. The inputs' paths are the result's own `inputs`, in order.

use crate::digest::Hash;
use protocol::{FileResult, Response};

/// A cached result and the state of its inputs when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub result: FileResult,
    /// One per `result.inputs`, in order: its hash, or `None` if it did not exist.
    pub inputs: Vec<Option<Hash>>,
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut result = self.result.clone();
        result.modified = false;
        result.baselines_written.clear();
        let mut bytes = u32::try_from(self.inputs.len())
            .unwrap_or(u32::MAX)
            .to_le_bytes()
            .to_vec();
        for input in &self.inputs {
            match input {
                Some(hash) => {
                    bytes.push(1);
                    bytes.extend_from_slice(hash);
                }
                None => bytes.push(0),
            }
        }
        bytes.extend(protocol::codec::encode(&Response::FileResult(result)));
        bytes
    }

    /// `None` for bytes that are not an entry (written by another build, or damaged): a miss.
    pub fn decode(bytes: &[u8]) -> Option<Entry> {
        let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
        let mut rest = &bytes[4..];
        let mut inputs = Vec::new();
        for _ in 0..count {
            let (&flag, tail) = rest.split_first()?;
            rest = tail;
            inputs.push(match flag {
                0 => None,
                1 => {
                    let hash: Hash = rest.get(..32)?.try_into().ok()?;
                    rest = &rest[32..];
                    Some(hash)
                }
                _ => return None,
            });
        }
        let Ok(Response::FileResult(result)) = protocol::codec::decode::<Response>(rest) else {
            return None;
        };
        (result.inputs.len() == inputs.len()).then_some(Entry { result, inputs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    #[test]
    fn an_entry_round_trips_with_present_and_absent_inputs() {
        let result = FileResult {
            inputs: vec!["a.css".into(), "gone.js".into()],
            ..FileResult::new(
                "a.html",
                vec![Finding::new("a.html", 1, 1, "R", Severity::Error, "m")],
            )
        };
        let entry = Entry {
            result,
            inputs: vec![Some([7; 32]), None],
        };
        assert_eq!(Entry::decode(&entry.encode()), Some(entry.clone()));
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Entry::decode(&[2, 0, 0, 0, 9]), None);
    }
}
