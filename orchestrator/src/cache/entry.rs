//! What the cache keeps per key: a file's result and, when the result says it depended on other
//! files (`FileResult.inputs`), one digest of the state those files were in when it was made.
//!
//! This is ccache's manifest idea: the key covers what is known before running (the file, the
//! configuration, the tool), and the recorded inputs cover what only the run could tell (the
//! stylesheets a page loaded, the modules a module imports). A hit is served only while its
//! inputs' [`digest`] is unchanged: every input still has its recorded hash, or is still absent.
//!
//! Input lists are long and shared — a type-checked module depends on hundreds of others, and
//! the modules of one package on the same ones — so each distinct list is kept once, under its
//! own [`InputList::id`], and entries refer to it. On Django that is 886 lists where the entries
//! name 450,000 inputs. A lookup reads each list once, hashes the files they name once, and
//! computes each list's digest once.
//!
//! Entry layout: byte 2 (the layout's version), the list's 32-byte id (zeros: no inputs), the
//! 32-byte digest, then the result without its inputs as the protocol encodes a
//! `Response::FileResult`. List layout: the paths joined by NUL bytes.

use crate::digest::Hash;
use protocol::{FileResult, Response};
use std::sync::Arc;

/// The first byte of an entry in this layout.
const LAYOUT: u8 = 2;

/// A cached result and the state of its inputs when it was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The result, its `inputs` left empty: they are in [`Entry::inputs`].
    pub result: FileResult,
    pub inputs: Option<Inputs>,
}

/// The files a result depended on, and their state then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inputs {
    pub list: Arc<InputList>,
    /// [`digest`] of the list's files when the result was made.
    pub digest: Hash,
}

/// A list of input paths, as a result gave it: kept as its stored text (the paths joined by
/// NUL bytes), since a warm run reads hundreds of thousands of them only to hash their states.
#[derive(Debug, PartialEq, Eq)]
pub struct InputList {
    id: Hash,
    text: String,
}

impl InputList {
    pub fn new<'p>(paths: impl IntoIterator<Item = &'p str>) -> InputList {
        let mut text = String::new();
        for (at, path) in paths.into_iter().enumerate() {
            if at > 0 {
                text.push('\0');
            }
            text.push_str(path);
        }
        InputList::from_text(text)
    }

    fn from_text(text: String) -> InputList {
        let id = *blake3::Hasher::new_derive_key("orchestrator 2026 input list")
            .update(text.as_bytes())
            .finalize()
            .as_bytes();
        InputList { id, text }
    }

    /// Where the list is kept: the hash of its encoding, so equal lists are kept once.
    pub fn id(&self) -> Hash {
        self.id
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.text.split('\0')
    }

    pub fn encode(&self) -> Vec<u8> {
        self.text.clone().into_bytes()
    }

    /// `None` for bytes that are not a list: the entries that refer to it miss.
    pub fn decode(bytes: Vec<u8>) -> Option<InputList> {
        String::from_utf8(bytes).ok().map(InputList::from_text)
    }
}

/// Where the entry of `key` made with its inputs in the state `digest` is kept besides `key`
/// itself. Checking a file again with other inputs (a module it imports changed) replaces the
/// entry under `key`; this copy still answers when those inputs come back as they were (the
/// change undone, a branch checked out again), instead of a whole re-check of every module
/// that imports the one changed.
pub fn variant_key(key: &Hash, digest: &Hash) -> Hash {
    *blake3::Hasher::new_derive_key("orchestrator 2026 entry variant")
        .update(key)
        .update(digest)
        .finalize()
        .as_bytes()
}

/// One digest of the state of a list's inputs: each path with its content hash, or with its
/// absence.
pub fn digest<'a, 'p>(inputs: impl IntoIterator<Item = (&'p str, Option<&'a Hash>)>) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 input states");
    for (path, state) in inputs {
        h.update(path.as_bytes());
        match state {
            Some(hash) => h.update(&[1]).update(hash),
            None => h.update(&[0]),
        };
    }
    *h.finalize().as_bytes()
}

impl Inputs {
    /// The inputs of a fresh result, each path with its state now; `None` for no inputs.
    pub fn of<'a, 'p, I>(inputs: I) -> Option<Inputs>
    where
        I: IntoIterator<Item = (&'p str, Option<&'a Hash>)>,
        I::IntoIter: Clone,
    {
        let inputs = inputs.into_iter();
        let list = InputList::new(inputs.clone().map(|(path, _)| path));
        (!list.text.is_empty()).then(|| Inputs {
            digest: digest(inputs),
            list: Arc::new(list),
        })
    }
}

impl Entry {
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = vec![LAYOUT];
        match &self.inputs {
            Some(inputs) => {
                bytes.extend_from_slice(&inputs.list.id());
                bytes.extend_from_slice(&inputs.digest);
            }
            None => bytes.extend_from_slice(&[0; 64]),
        }
        bytes.extend(encode_result(&self.result));
        bytes
    }

    /// The result and, when it had inputs, its list's id and digest; `None` for bytes that are
    /// not an entry (written by another build, or damaged): a miss.
    pub fn decode(bytes: &[u8]) -> Option<(FileResult, Option<(Hash, Hash)>)> {
        let (&layout, rest) = bytes.split_first()?;
        if layout != LAYOUT {
            return None;
        }
        let list: Hash = rest.get(..32)?.try_into().ok()?;
        let digest: Hash = rest.get(32..64)?.try_into().ok()?;
        let result = decode_result(&rest[64..])?;
        let inputs = (list != [0; 32]).then_some((list, digest));
        Some((result, inputs))
    }
}

/// A result as the cache keeps it: what only its run can say (that it modified the file, the
/// baselines it wrote) left out, its inputs too (they are kept beside it), encoded as the
/// protocol encodes a `Response::FileResult`.
pub fn encode_result(result: &FileResult) -> Vec<u8> {
    let mut result = result.clone();
    result.modified = false;
    result.baselines_written.clear();
    result.inputs.clear();
    protocol::codec::encode(&Response::FileResult(result))
}

/// [`encode_result`]'s bytes back; `None` for anything else.
pub fn decode_result(bytes: &[u8]) -> Option<FileResult> {
    match protocol::codec::decode::<Response>(bytes) {
        Ok(Response::FileResult(result)) => Some(result),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    fn result() -> FileResult {
        FileResult {
            inputs: vec!["a.css".into(), "gone.js".into()],
            ..FileResult::new(
                "a.html",
                vec![Finding::new("a.html", 1, 1, "R", Severity::Error, "m")],
            )
        }
    }

    /// [`result`]'s entry, its inputs in `state`.
    fn entry<'a>(state: impl Fn(&str) -> Option<&'a Hash>) -> Entry {
        let mut result = result();
        let paths = std::mem::take(&mut result.inputs);
        let inputs = Inputs::of(paths.iter().map(|p| (p.as_str(), state(p))));
        Entry { result, inputs }
    }

    #[test]
    fn no_inputs_make_no_list() {
        assert_eq!(Inputs::of(std::iter::empty()), None);
    }

    #[test]
    fn an_entry_round_trips_and_refers_to_its_list() {
        let hash = [7; 32];
        let entry = entry(|p| (p == "a.css").then_some(&hash));
        let inputs = entry.inputs.clone().expect("the result had inputs");
        assert!(inputs.list.paths().eq(["a.css", "gone.js"]));
        assert!(entry.result.inputs.is_empty());
        let (decoded, refers) = Entry::decode(&entry.encode()).expect("an entry");
        assert_eq!(decoded, entry.result);
        assert_eq!(refers, Some((inputs.list.id(), inputs.digest)));
        let list = InputList::decode(inputs.list.encode()).expect("a list");
        assert_eq!(list, *inputs.list);
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(Entry::decode(&[1, 0, 0, 0, 9]), None);
    }

    #[test]
    fn the_digest_changes_with_any_input_and_with_absence() {
        let (one, two) = ([1; 32], [2; 32]);
        let both = digest([("a", Some(&one)), ("b", Some(&one))]);
        assert_ne!(both, digest([("a", Some(&one)), ("b", Some(&two))]));
        assert_ne!(both, digest([("a", Some(&one)), ("b", None)]));
        assert_eq!(both, digest([("a", Some(&one)), ("b", Some(&one))]));
    }

    #[test]
    fn equal_lists_share_an_id() {
        let a = entry(|_| None);
        let b = entry(|_| None);
        let (a, b) = (a.inputs.expect("inputs"), b.inputs.expect("inputs"));
        assert_eq!(a.list.id(), b.list.id());
    }
}
