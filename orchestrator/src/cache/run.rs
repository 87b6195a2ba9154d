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
//! A record is kept in two parts. Its head (in the slot) holds what decides whether it
//! answers, and what a report says of the run without its findings: the keys' digest, the
//! inputs' states, the results' paths, how many findings and errors they hold, the artifacts
//! they name, and the digest of the body. The body holds the results. A warm run whose
//! findings are already rendered ([`crate::rendered`]) reads only heads: on Django, pyright's
//! body is 6.7 MB and its head a tenth of that.
//!
//! The body is cut into chunks of about [`CHUNK_ODDS`] results, each kept under the digest of
//! its bytes ([`chunk_key`]), and [`body_slot`] holds the list of their keys. A chunk ends
//! after a result whose path's digest says so, so the cuts depend on the paths alone: a run
//! after a one-file change makes one new chunk, and every other is already kept. Without
//! that, each such run wrote every validator's whole body again (on four copies of Django,
//! 37 MB, with as much again for SQLite to copy from its log into the database).
//!
//! Head layout: byte 2 (the layout's version), the 32-byte digest of the keys, the 32-byte
//! digest of the body, the findings and the errors (u32, little-endian), then three lists,
//! each as its length (u32) and its items: the inputs, each as its path's length (u32), the
//! path, and 0 (absent) or 1 followed by its 32-byte hash; the results' paths; the artifacts'
//! paths. Body list layout: byte 4, then the 32-byte keys of the chunks, in order; the body's
//! digest is [`body_digest`] of those keys. Chunk layout: each result as its length (u32) and
//! its bytes: what the record says of it (its path, its findings and errors (u32 each), and
//! the artifacts they name, as a list of strings), then the result as an entry keeps it
//! (`entry::encode_result`). What comes first is read without decoding the result: a run that
//! serves results from a record to a report that holds their findings already never decodes
//! them ([`KeptResult`]).

use super::entry::{decode_result, encode_result};
use super::Key;
use crate::digest::Hash;
use protocol::{FileResult, Severity};
use std::sync::Arc;

/// The head's layout: 3 since it says when its inputs' states were read.
const LAYOUT: u8 = 3;
/// The body list's layout: 3 since bodies are kept in chunks, 4 since each result starts with
/// what the record says of it.
const BODY_LAYOUT: u8 = 4;
/// One result in this many, on average, ends a chunk.
pub const CHUNK_ODDS: u8 = 64;

/// The results of one complete run of a validator and what they were made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunRecord {
    /// [`keys_digest`] of the run's keys, in the order of its files.
    pub keys: Hash,
    /// When the inputs' states were read: [`crate::kept::settled_before`] the start of the
    /// run that read them, in nanoseconds since the epoch ([`RecordHead::settled`]).
    pub settled: i64,
    /// Every file a result listed as an input, sorted, with its hash then (`None`: absent).
    pub inputs: Vec<(String, Option<Hash>)>,
    /// The results, sorted by path.
    pub results: Vec<KeptResult>,
}

/// A result as a record keeps it: its bytes, and what the record says of it.
///
/// A run after a one-file change serves every other result from the last record and keeps
/// them all in the next one. Their bytes are the record's own, read back: kept as they were
/// read, they need neither a copy of the decoded result for the record nor encoding again
/// (on four copies of Django, 100 ms on two cores after pyright's end). Nor are they decoded
/// to be counted: the report decodes only those whose findings it does not hold already
/// ([`KeptResult::decode`]); on ten copies of Django the others are 84,000 results.
#[derive(Debug, Clone)]
pub struct KeptResult {
    pub path: String,
    findings: u32,
    /// Findings of severity error.
    errors: u32,
    /// The artifacts its findings name.
    artifacts: Vec<String>,
    /// What the record says of it, then the result.
    bytes: Encoded,
    /// Where, in `bytes`' chunk, the result starts.
    result: usize,
}

impl KeptResult {
    /// A fresh result, encoded.
    pub fn of(result: &FileResult) -> KeptResult {
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let errors = result
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error);
        let artifacts: Vec<String> = result
            .findings
            .iter()
            .flat_map(|f| &f.artifacts)
            .map(|a| a.path.clone())
            .collect();
        let (findings, errors) = (count(result.findings.len()), count(errors.count()));
        let mut bytes = Vec::new();
        push_str(&mut bytes, &result.path);
        bytes.extend_from_slice(&findings.to_le_bytes());
        bytes.extend_from_slice(&errors.to_le_bytes());
        push_len(&mut bytes, artifacts.len());
        artifacts.iter().for_each(|a| push_str(&mut bytes, a));
        let at = bytes.len();
        bytes.extend_from_slice(&encode_result(result));
        let end = bytes.len();
        KeptResult {
            path: result.path.clone(),
            findings,
            errors,
            artifacts,
            bytes: Encoded {
                chunk: Arc::new(bytes),
                key: None,
                start: 0,
                end,
            },
            result: at,
        }
    }

    /// What the record says of a result read back, without decoding it; `None` for bytes
    /// that do not start as a kept result does.
    fn read(bytes: Encoded) -> Option<KeptResult> {
        let mut r = Reader(bytes.bytes());
        let path = r.string()?;
        let findings = r.u32()?;
        let errors = r.u32()?;
        let artifacts = r.strings(bytes.end - bytes.start)?;
        let result = bytes.end - r.0.len();
        Some(KeptResult {
            path,
            findings,
            errors,
            artifacts,
            bytes,
            result,
        })
    }

    /// The result; `None` when its bytes are not one.
    pub fn decode(&self) -> Option<FileResult> {
        decode_result(&self.bytes.chunk[self.result..self.bytes.end])
            .filter(|result| result.path == self.path)
    }

    /// How many findings it holds.
    pub fn findings(&self) -> u32 {
        self.findings
    }

    /// How many of its findings are of severity error.
    pub fn errors(&self) -> u32 {
        self.errors
    }
}

#[cfg(test)]
impl KeptResult {
    /// A result whose bytes after what the record says of it are not one, as a cache written
    /// by another build might hold.
    pub fn undecodable(path: &str) -> KeptResult {
        let mut kept = KeptResult::of(&FileResult::new(path, Vec::new()));
        kept.bytes.end = kept.result + 1;
        kept
    }
}

/// Two are equal when their bytes are, wherever they are kept.
impl PartialEq for KeptResult {
    fn eq(&self, other: &KeptResult) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for KeptResult {}

/// A result's bytes: all of a buffer of its own, or its part of a chunk read back, shared by
/// every result of that chunk.
#[derive(Debug, Clone)]
struct Encoded {
    chunk: Arc<Vec<u8>>,
    /// The key `chunk` was read under; `None` for a fresh result's own bytes.
    key: Option<Key>,
    start: usize,
    end: usize,
}

impl Encoded {
    fn bytes(&self) -> &[u8] {
        &self.chunk[self.start..self.end]
    }

    /// The chunk read back whose every result, in order, `parts` are: a chunk of the new
    /// record that is that chunk again, to be kept under its key without hashing or copying.
    fn whole_chunk(parts: &[&Encoded]) -> Option<Chunk> {
        let (first, last) = (parts.first()?, parts.last()?);
        let key = first.key?;
        let whole = first.start == LEN
            && last.end == first.chunk.len()
            && parts.windows(2).all(|pair| {
                Arc::ptr_eq(&pair[0].chunk, &pair[1].chunk) && pair[1].start == pair[0].end + LEN
            });
        whole.then(|| (key, first.chunk.clone()))
    }
}

/// The bytes of the length before each result in a chunk.
const LEN: usize = 4;

impl PartialEq for Encoded {
    fn eq(&self, other: &Encoded) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for Encoded {}

/// What a record says without its results: enough to know whether it answers a run, and to
/// report that run when its findings need not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHead {
    pub keys: Hash,
    /// The digest of the body: two records with the same one hold the same results.
    pub body: Hash,
    /// An input absent then is absent still while its directory's stamp is older than this:
    /// no entry was added there since its state was read.
    pub settled: i64,
    pub inputs: Vec<(String, Option<Hash>)>,
    /// The results' paths, in the record's order.
    pub paths: Vec<String>,
    pub findings: u32,
    /// Findings of severity error.
    pub errors: u32,
    /// Every artifact a finding names, which must still exist for the record to answer.
    pub artifacts: Vec<String>,
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

/// Where the list of the chunks of the body of the record in `slot` is kept.
pub fn body_slot(slot: &Key) -> Key {
    *blake3::Hasher::new_derive_key("orchestrator 2026 run record body")
        .update(slot)
        .finalize()
        .as_bytes()
}

/// A record's body as kept: the list of its chunks, and the chunks.
#[derive(Debug)]
pub struct Body {
    /// [`RecordHead::body`].
    pub digest: Hash,
    /// What [`body_slot`] holds.
    pub list: Vec<u8>,
    pub cut: Cut,
}

/// Results' bytes (a body's, or an index's lines) cut into chunks.
#[derive(Debug)]
pub struct Cut {
    /// Each chunk under its [`chunk_key`], in order; those of the last record, as read.
    pub chunks: Vec<Chunk>,
    /// For each chunk, whether it was read from the store as it is: it is there already, and
    /// need not be written again. After a one-file change on four copies of Django that is all
    /// but one chunk of 64 MB.
    pub stored: Vec<bool>,
}

impl Cut {
    /// `parts` in order, each with whether a chunk ends after it. A chunk whose parts are all
    /// of one chunk read back, in its order, is that chunk, neither copied nor hashed again.
    fn of<'a>(parts: impl Iterator<Item = (&'a Encoded, bool)>) -> Cut {
        let mut cut = Cut {
            chunks: Vec::new(),
            stored: Vec::new(),
        };
        let mut parts = parts.peekable();
        let mut chunk = Vec::new();
        while let Some((part, ends)) = parts.next() {
            chunk.push(part);
            if ends || parts.peek().is_none() {
                let whole = Encoded::whole_chunk(&chunk);
                cut.stored.push(whole.is_some());
                cut.chunks.push(whole.unwrap_or_else(|| {
                    let mut bytes = Vec::new();
                    for part in &chunk {
                        push_len(&mut bytes, part.bytes().len());
                        bytes.extend_from_slice(part.bytes());
                    }
                    (chunk_key(&bytes), Arc::new(bytes))
                }));
                chunk.clear();
            }
        }
        cut
    }

    fn keys(&self) -> Vec<Key> {
        self.chunks.iter().map(|(key, _)| *key).collect()
    }

    /// The chunks not in the store yet.
    pub fn unstored(self) -> impl Iterator<Item = Chunk> {
        self.chunks
            .into_iter()
            .zip(self.stored)
            .filter_map(|(chunk, stored)| (!stored).then_some(chunk))
    }
}

/// The key a chunk is kept under: the digest of its bytes, so a chunk two records share is
/// kept once.
pub fn chunk_key(chunk: &[u8]) -> Key {
    *blake3::Hasher::new_derive_key("orchestrator 2026 run record chunk")
        .update(chunk)
        .finalize()
        .as_bytes()
}

/// The digest of a body, from its chunks' keys, which are digests of the chunks.
fn body_digest(chunks: &[Key]) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 run record body digest");
    for key in chunks {
        h.update(key);
    }
    *h.finalize().as_bytes()
}

/// Whether a chunk ends after the result for `path`: one path in [`CHUNK_ODDS`] does.
fn ends_chunk(path: &str) -> bool {
    blake3::hash(path.as_bytes()).as_bytes()[0] % CHUNK_ODDS == 0
}

impl RunRecord {
    /// The head and the body.
    pub fn encode(&self) -> (Vec<u8>, Body) {
        let cut = Cut::of(
            self.results
                .iter()
                .map(|result| (&result.bytes, ends_chunk(&result.path))),
        );
        let keys = cut.keys();
        let digest = body_digest(&keys);
        let mut list = Vec::with_capacity(1 + 32 * keys.len());
        list.push(BODY_LAYOUT);
        keys.iter().for_each(|key| list.extend_from_slice(key));
        let sum = |n: fn(&KeptResult) -> u32| {
            self.results
                .iter()
                .fold(0u32, |t, r| t.saturating_add(n(r)))
        };
        let mut head = vec![LAYOUT];
        head.extend_from_slice(&self.keys);
        head.extend_from_slice(&digest);
        head.extend_from_slice(&sum(|r| r.findings).to_le_bytes());
        head.extend_from_slice(&sum(|r| r.errors).to_le_bytes());
        head.extend_from_slice(&self.settled.to_le_bytes());
        push_len(&mut head, self.inputs.len());
        for (path, state) in &self.inputs {
            push_str(&mut head, path);
            match state {
                Some(hash) => {
                    head.push(1);
                    head.extend_from_slice(hash);
                }
                None => head.push(0),
            }
        }
        push_len(&mut head, self.results.len());
        for result in &self.results {
            push_str(&mut head, &result.path);
        }
        let artifacts: Vec<&str> = self
            .results
            .iter()
            .flat_map(|r| &r.artifacts)
            .map(String::as_str)
            .collect();
        push_len(&mut head, artifacts.len());
        for path in artifacts {
            push_str(&mut head, path);
        }
        let body = Body { digest, list, cut };
        (head, body)
    }
}

impl RecordHead {
    /// `None` for bytes that are not a head in this layout: the run takes the per-file path.
    pub fn decode(bytes: &[u8]) -> Option<RecordHead> {
        let mut r = Reader(bytes);
        if r.take(1)? != [LAYOUT] {
            return None;
        }
        let keys: Hash = r.take(32)?.try_into().ok()?;
        let body: Hash = r.take(32)?.try_into().ok()?;
        let findings = r.u32()?;
        let errors = r.u32()?;
        let settled = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
        let count = r.len()?;
        let mut inputs = Vec::with_capacity(count.min(bytes.len()));
        for _ in 0..count {
            let path = r.string()?;
            let state = match r.take(1)? {
                [0] => None,
                [1] => Some(r.take(32)?.try_into().ok()?),
                _ => return None,
            };
            inputs.push((path, state));
        }
        let paths = r.strings(bytes.len())?;
        let artifacts = r.strings(bytes.len())?;
        r.0.is_empty().then_some(RecordHead {
            keys,
            body,
            settled,
            inputs,
            paths,
            findings,
            errors,
            artifacts,
        })
    }
}

/// The keys of the chunks a body list names, if it lists the body whose digest is `digest`.
pub fn chunk_keys(list: &[u8], digest: &Hash) -> Option<Vec<Key>> {
    let (&[BODY_LAYOUT], keys) = list.split_at_checked(1)? else {
        return None;
    };
    if keys.len() % 32 != 0 {
        return None;
    }
    let keys: Vec<Key> = keys
        .chunks_exact(32)
        .map(|key| key.try_into().expect("32 bytes"))
        .collect();
    (body_digest(&keys) == *digest).then_some(keys)
}

/// The `count` results in `chunks`, read from under `keys`, as kept: not decoded. `None`
/// when a chunk is not the one its key names.
pub fn kept_results(keys: &[Key], chunks: Vec<Vec<u8>>, count: usize) -> Option<Vec<KeptResult>> {
    let parts = parts_of(keys, chunks, count)?;
    parts.into_iter().map(KeptResult::read).collect()
}

/// [`kept_results`], decoded.
pub fn decode_chunks(keys: &[Key], chunks: Vec<Vec<u8>>, count: usize) -> Option<Vec<FileResult>> {
    decode_all(kept_results(keys, chunks, count)?)
}

/// Results decoded; `None` when one is not.
pub fn decode_all(kept: Vec<KeptResult>) -> Option<Vec<FileResult>> {
    // Tens of thousands of findings to decode, a sixth of a warm run's time on one core.
    crate::parallel::on_every_core(kept, |kept| kept.decode())
        .into_iter()
        .collect()
}

/// A chunk of a body under its [`chunk_key`], shared by the results read back from it.
pub type Chunk = (Key, Arc<Vec<u8>>);

/// Chunks as the store takes them.
pub fn slices(chunks: &[Chunk]) -> Vec<(Key, &[u8])> {
    chunks
        .iter()
        .map(|(key, chunk)| (*key, &chunk[..]))
        .collect()
}

/// The parts of `chunks` (a body's results, or an index's lines), each with its chunk, checked
/// against `keys`; `None` unless they are `count`.
fn parts_of(keys: &[Key], chunks: Vec<Vec<u8>>, count: usize) -> Option<Vec<Encoded>> {
    if keys.len() != chunks.len() {
        return None;
    }
    // A damaged head's count must not decide the allocation: each part takes LEN bytes.
    let most = chunks.iter().map(Vec::len).sum::<usize>() / LEN;
    let mut parts = Vec::with_capacity(count.min(most));
    for (key, chunk) in keys.iter().zip(chunks) {
        if chunk_key(&chunk) != *key {
            return None;
        }
        let chunk = Arc::new(chunk);
        let mut r = Reader(&chunk);
        while !r.0.is_empty() {
            let len = r.len()?;
            let start = chunk.len() - r.0.len();
            r.take(len)?;
            parts.push(Encoded {
                chunk: chunk.clone(),
                key: Some(*key),
                start,
                end: start + len,
            });
        }
    }
    (parts.len() == count).then_some(parts)
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
/// Its lines are cut into chunks as a body is (a chunk ends after a line whose key's digest
/// says so), each kept under the digest of its bytes. The next record keeps the positions of
/// the inputs it shares with this one, so the line of a result it serves from this record is
/// the same bytes: after a one-file change, every chunk but one or two is kept as it was read.
/// Written whole, a pyright index on ten copies of Django is 14 MB, and as much again for
/// SQLite to copy from its log.
///
/// Layout: byte 3, the record's 32-byte keys digest, the number of results (u32), then the
/// 32-byte keys of its chunks. Chunk layout: each line as its length (u32) and its bytes: the
/// result's 32-byte key, the number of its inputs and their positions, ascending, each as the
/// gap from the previous one (LEB128).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIndex {
    /// The [`RunRecord::keys`] of the record this indexes.
    pub keys: Hash,
    /// Per result of the record, in its order.
    pub results: Vec<Uses>,
}

/// The index list's layout, 3 since indexes are kept in chunks.
const INDEX_LAYOUT: u8 = 3;

/// Where the [`RunIndex`] of the record in `slot` is kept.
pub fn index_slot(slot: &Key) -> Key {
    *blake3::Hasher::new_derive_key("orchestrator 2026 run record index")
        .update(slot)
        .finalize()
        .as_bytes()
}

impl RunIndex {
    /// The list for `index_slot`, and the chunks.
    pub fn encode(&self) -> (Vec<u8>, Cut) {
        let cut = Cut::of(self.results.iter().map(|uses| {
            let key = uses.key();
            (&uses.line, key[0] % CHUNK_ODDS == 0)
        }));
        let keys = cut.keys();
        let mut list = Vec::with_capacity(1 + 32 + 4 + 32 * keys.len());
        list.push(INDEX_LAYOUT);
        list.extend_from_slice(&self.keys);
        push_len(&mut list, self.results.len());
        keys.iter().for_each(|key| list.extend_from_slice(key));
        (list, cut)
    }
}

/// Two lines are equal when their bytes are, wherever they are kept.
impl PartialEq for Uses {
    fn eq(&self, other: &Uses) -> bool {
        self.line == other.line
    }
}

impl Eq for Uses {}

/// An index list's keys digest, its number of results, and its chunks' keys; `None` for bytes
/// that are not a list in this layout.
pub fn index_chunk_keys(list: &[u8]) -> Option<(Hash, usize, Vec<Key>)> {
    let mut r = Reader(list);
    if r.take(1)? != [INDEX_LAYOUT] {
        return None;
    }
    let keys: Hash = r.take(32)?.try_into().ok()?;
    let count = r.len()?;
    if r.0.len() % 32 != 0 {
        return None;
    }
    let chunks =
        r.0.chunks_exact(32)
            .map(|key| key.try_into().expect("32 bytes"))
            .collect();
    Some((keys, count, chunks))
}

/// The index of `count` lines in `chunks`, read from under `keys`; `None` when a chunk is not
/// the one its key names, or a line does not start as one in this layout. The positions are
/// left encoded: a pyright index on ten copies of Django lists 28 million, which a run after a
/// one-file change needs only to scan once before the validator can start.
pub fn decode_index(
    digest: Hash,
    keys: &[Key],
    chunks: Vec<Vec<u8>>,
    count: usize,
) -> Option<RunIndex> {
    let parts = parts_of(keys, chunks, count)?;
    let results = parts.into_iter().map(Uses::read).collect::<Option<_>>()?;
    Some(RunIndex {
        keys: digest,
        results,
    })
}

/// One line of a [`RunIndex`]: a result's key and the positions in the record's inputs of the
/// files it listed, ascending, encoded (decoded as they are walked).
#[derive(Debug, Clone)]
pub struct Uses {
    line: Encoded,
    /// Where, in the line's chunk, the first gap is.
    gaps: usize,
    count: u32,
}

impl Uses {
    /// The line of the result kept under `key` that listed the inputs at `positions`, which
    /// ascend.
    pub fn new(key: &Key, positions: &[u32]) -> Uses {
        let mut line = key.to_vec();
        push_varint(&mut line, positions.len() as u64);
        let gaps = line.len();
        let mut last = 0;
        for &at in positions {
            push_varint(&mut line, u64::from(at - last));
            last = at;
        }
        let end = line.len();
        Uses {
            line: Encoded {
                chunk: Arc::new(line),
                key: None,
                start: 0,
                end,
            },
            gaps,
            count: u32::try_from(positions.len()).expect("fewer inputs than 4 billion"),
        }
    }

    /// A line read back. Its chunk's digest was checked, so its gaps are as they were made and
    /// are not walked here: a pyright index on ten copies of Django has 28 million.
    fn read(line: Encoded) -> Option<Uses> {
        let bytes = line.bytes();
        let mut r = Reader(bytes);
        r.take(32)?;
        let count = u32::try_from(r.varint()?).ok()?;
        let gaps = line.start + bytes.len() - r.0.len();
        Some(Uses { line, gaps, count })
    }

    /// The key of the result.
    pub fn key(&self) -> Key {
        self.line.bytes()[..32]
            .try_into()
            .expect("a line starts with its key")
    }

    /// The positions, ascending; a line cut short ends early.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        let mut r = Reader(&self.line.chunk[self.gaps..self.line.end]);
        let mut at = 0u32;
        (0..self.count).map_while(move |_| {
            at = at.checked_add(u32::try_from(r.varint()?).ok()?)?;
            Some(at)
        })
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

fn push_str(bytes: &mut Vec<u8>, text: &str) {
    push_len(bytes, text.len());
    bytes.extend_from_slice(text.as_bytes());
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

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(self.u32()?).ok()
    }

    fn string(&mut self) -> Option<String> {
        let len = self.len()?;
        Some(std::str::from_utf8(self.take(len)?).ok()?.to_owned())
    }

    /// A list of strings, of at most `most` items.
    fn strings(&mut self, most: usize) -> Option<Vec<String>> {
        let count = self.len()?;
        let mut items = Vec::with_capacity(count.min(most));
        for _ in 0..count {
            items.push(self.string()?);
        }
        Some(items)
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

    fn results() -> Vec<FileResult> {
        let finding = Finding::new("a.py", 3, 1, "E1", Severity::Error, "bad");
        let mut shot = Finding::new("a.py", 4, 1, "V1", Severity::Warning, "looks different");
        shot.artifacts.push(protocol::Artifact {
            kind: "screenshot".into(),
            path: "shots/a.png".into(),
        });
        vec![
            FileResult::new("a.py", vec![finding, shot]),
            FileResult::new("b.py", Vec::new()),
        ]
    }

    fn record() -> RunRecord {
        RunRecord {
            settled: i64::MIN,
            keys: keys_digest(&[[1; 32], [2; 32]]),
            inputs: vec![("a.py".into(), Some([5; 32])), ("a.pyi".into(), None)],
            results: results().iter().map(KeptResult::of).collect(),
        }
    }

    fn chunks_of(cut: &Cut) -> Vec<Vec<u8>> {
        cut.chunks.iter().map(|(_, c)| c.to_vec()).collect()
    }

    /// The results a body holds, read back as the cache reads them.
    fn read_back(body: &Body, digest: &Hash, count: usize) -> Option<Vec<FileResult>> {
        let keys = chunk_keys(&body.list, digest)?;
        decode_chunks(&keys, chunks_of(&body.cut), count)
    }

    #[test]
    fn a_record_round_trips_and_damage_is_a_miss() {
        let record = record();
        let (head_bytes, body) = record.encode();
        let head = RecordHead::decode(&head_bytes).expect("a head");
        assert_eq!(head.keys, record.keys);
        assert_eq!(head.inputs, record.inputs);
        assert_eq!(head.paths, ["a.py", "b.py"]);
        assert_eq!((head.findings, head.errors), (2, 1));
        assert_eq!(head.artifacts, ["shots/a.png"]);
        assert_eq!(head.body, body.digest);
        assert_eq!(
            read_back(&body, &head.body, head.paths.len()),
            Some(results())
        );
        for cut in [0, 1, 33, 72, head_bytes.len() - 1] {
            assert_eq!(
                RecordHead::decode(&head_bytes[..cut]),
                None,
                "head cut at {cut}"
            );
        }
        let mut other_layout = head_bytes.clone();
        other_layout[0] = 9;
        assert_eq!(RecordHead::decode(&other_layout), None);
        for cut in [0, 1, body.list.len() - 1] {
            assert_eq!(
                chunk_keys(&body.list[..cut], &head.body),
                None,
                "list cut at {cut}"
            );
        }
        let keys = chunk_keys(&body.list, &head.body).expect("the list");
        let mut chunks = chunks_of(&body.cut);
        assert_eq!(
            decode_chunks(&keys, chunks.clone(), 1),
            None,
            "another count"
        );
        assert_eq!(
            decode_chunks(&keys, chunks[1..].to_vec(), 2),
            None,
            "a chunk missing"
        );
        chunks[0][5] ^= 1;
        assert_eq!(decode_chunks(&keys, chunks, 2), None, "a damaged chunk");
    }

    #[test]
    fn a_body_answers_only_the_head_that_describes_it() {
        let record = record();
        let (head, _) = record.encode();
        let head = RecordHead::decode(&head).expect("a head");
        let mut other = record.clone();
        let mut changed = results();
        changed[1]
            .findings
            .push(Finding::new("b.py", 1, 1, "W", Severity::Warning, "w"));
        other.results[1] = KeptResult::of(&changed[1]);
        let (other_head, other_body) = other.encode();
        let other_head = RecordHead::decode(&other_head).expect("a head");
        assert_ne!(head.body, other_head.body);
        assert_eq!(read_back(&other_body, &head.body, head.paths.len()), None);
        assert_ne!(body_slot(&[1; 32]), index_slot(&[1; 32]));
    }

    #[test]
    fn results_read_back_with_their_bytes_make_the_same_record_again() {
        let record = record();
        let (head, body) = record.encode();
        let keys = chunk_keys(&body.list, &body.digest).expect("the list");
        let kept = kept_results(&keys, chunks_of(&body.cut), 2).expect("the results");
        let decoded = decode_all(kept.clone()).expect("decoded");
        assert_eq!(decoded, results());
        let said = |k: &KeptResult| {
            (
                k.path.clone(),
                k.findings(),
                k.errors(),
                k.artifacts.clone(),
            )
        };
        assert_eq!(
            kept.iter().map(said).collect::<Vec<_>>(),
            record.results.iter().map(said).collect::<Vec<_>>(),
            "what the record says of them, read without decoding them"
        );
        assert_eq!(
            kept, record.results,
            "bytes and what the head says, as encoded"
        );
        // One served from the last record, one fresh: the record is byte for byte the same.
        let again = RunRecord {
            results: vec![kept[0].clone(), KeptResult::of(&decoded[1])],
            settled: i64::MIN,
            ..record.clone()
        };
        let (again_head, again_body) = again.encode();
        assert_eq!(again_head, head);
        assert_eq!(again_body.list, body.list);
        assert_eq!(again_body.cut.chunks, body.cut.chunks);
        assert_eq!(
            kept_results(&keys, chunks_of(&body.cut), 3),
            None,
            "another count"
        );
    }

    #[test]
    fn chunks_read_back_whole_are_kept_as_read() {
        let fresh: Vec<FileResult> = (0..2000)
            .map(|n| {
                let path = format!("pkg/m{n:04}.py");
                let finding = Finding::new(&path, 1, 1, "E1", Severity::Error, "bad");
                FileResult::new(&path, vec![finding])
            })
            .collect();
        let record = RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: fresh.iter().map(KeptResult::of).collect(),
        };
        let (_, body) = record.encode();
        let keys = chunk_keys(&body.list, &body.digest).expect("the list");
        let mut kept = kept_results(&keys, chunks_of(&body.cut), 2000).expect("the results");
        let mut changed = fresh[1000].clone();
        changed.findings.clear();
        kept[1000] = KeptResult::of(&changed);
        let again = RunRecord {
            results: kept.clone(),
            settled: i64::MIN,
            ..record
        };
        let (_, again_body) = again.encode();
        let read: Vec<&Arc<Vec<u8>>> = kept.iter().map(|k| &k.bytes.chunk).collect();
        let as_read = again_body
            .cut
            .chunks
            .iter()
            .filter(|(_, chunk)| read.iter().any(|r| Arc::ptr_eq(r, chunk)))
            .count();
        assert_eq!(
            as_read,
            body.cut.chunks.len() - 1,
            "all but the changed one, as read"
        );
        assert_eq!(
            again_body.cut.stored.iter().filter(|&&s| s).count(),
            as_read,
            "those are not written again"
        );
        assert!(
            body.cut.stored.iter().all(|&s| !s),
            "fresh chunks are written"
        );
        let mut expected = fresh.clone();
        expected[1000] = changed;
        assert_eq!(
            read_back(&again_body, &again_body.digest, 2000),
            Some(expected)
        );
        let new: Vec<_> = again_body
            .cut
            .chunks
            .iter()
            .filter(|c| !body.cut.chunks.contains(c))
            .collect();
        assert_eq!(new.len(), 1);
    }

    #[test]
    fn a_one_file_change_makes_one_new_chunk() {
        let results = |paths: &[String], changed: &str| -> Vec<FileResult> {
            paths
                .iter()
                .map(|path| {
                    let rule = if path == changed { "E2" } else { "E1" };
                    let finding = Finding::new(path, 1, 1, rule, Severity::Error, "bad");
                    FileResult::new(path, vec![finding])
                })
                .collect()
        };
        let chunks = |results: Vec<FileResult>| -> std::collections::HashSet<Key> {
            let record = RunRecord {
                keys: [1; 32],
                settled: i64::MIN,
                inputs: Vec::new(),
                results: results.iter().map(KeptResult::of).collect(),
            };
            let (_, body) = record.encode();
            assert_eq!(
                read_back(&body, &body.digest, record.results.len()),
                Some(results)
            );
            body.cut.keys().into_iter().collect()
        };
        let paths: Vec<String> = (0..2000).map(|n| format!("pkg/m{n:04}.py")).collect();
        let before = chunks(results(&paths, ""));
        assert!(
            (10..100).contains(&before.len()),
            "about one result in {CHUNK_ODDS} ends a chunk: {} chunks",
            before.len()
        );
        let changed = chunks(results(&paths, "pkg/m1000.py"));
        assert_eq!(changed.difference(&before).count(), 1, "one result changed");
        for added in ["pkg/m0499a.py", "pkg/m1499a.py"] {
            let mut more = paths.clone();
            more.push(added.into());
            more.sort();
            // The chunk the file lands in is new, and cut in two if the file ends a chunk.
            let new = 1 + usize::from(ends_chunk(added));
            let more = chunks(results(&more, ""));
            assert_eq!(more.difference(&before).count(), new, "{added} added");
        }
    }

    /// An index read back as the cache reads it.
    fn index_read_back(list: &[u8], cut: &Cut) -> Option<RunIndex> {
        let (digest, count, keys) = index_chunk_keys(list)?;
        decode_index(digest, &keys, chunks_of(cut), count)
    }

    fn positions(index: &RunIndex) -> Vec<(Key, Vec<u32>)> {
        let lines = index.results.iter();
        lines.map(|u| (u.key(), u.iter().collect())).collect()
    }

    #[test]
    fn an_index_round_trips_and_damage_is_a_miss() {
        let lines = vec![([1; 32], vec![0, 1, 200, 70_000]), ([2; 32], Vec::new())];
        let index = RunIndex {
            keys: [3; 32],
            results: lines.iter().map(|(k, p)| Uses::new(k, p)).collect(),
        };
        let (list, cut) = index.encode();
        let read = index_read_back(&list, &cut).expect("an index just encoded");
        assert_eq!(read, index);
        assert_eq!(positions(&read), lines);
        for at in [0, 1, 33, 37, list.len() - 1] {
            assert!(
                index_read_back(&list[..at], &cut).is_none(),
                "list cut at {at}"
            );
        }
        let (digest, count, keys) = index_chunk_keys(&list).expect("the list");
        assert!(decode_index(digest, &keys, chunks_of(&cut), count + 1).is_none());
        let mut damaged = chunks_of(&cut);
        damaged[0][40] ^= 1;
        assert!(decode_index(digest, &keys, damaged, count).is_none());
        // A line too short for its key, in a chunk whose key is right.
        let mut short = Vec::new();
        push_len(&mut short, 31);
        short.extend_from_slice(&[1; 31]);
        let key = chunk_key(&short);
        assert!(decode_index(digest, &[key], vec![short], 1).is_none());
        assert_ne!(index_slot(&[1; 32]), [1; 32]);
    }

    #[test]
    fn lines_read_back_make_the_same_chunks_again() {
        let lines: Vec<(Key, Vec<u32>)> = (0..2000u32)
            .map(|n| (*blake3::hash(&n.to_le_bytes()).as_bytes(), vec![n, n + 1]))
            .collect();
        let index = RunIndex {
            keys: [3; 32],
            results: lines.iter().map(|(k, p)| Uses::new(k, p)).collect(),
        };
        let (list, cut) = index.encode();
        assert!(cut.stored.iter().all(|&s| !s), "fresh chunks are written");
        let mut read = index_read_back(&list, &cut).expect("the index");
        read.results[1000] = Uses::new(&lines[1000].0, &[0]);
        let (_, again) = read.encode();
        let new: Vec<_> = again
            .chunks
            .iter()
            .filter(|c| !cut.chunks.contains(c))
            .collect();
        assert_eq!(new.len(), 1, "one line changed");
        assert_eq!(again.stored.iter().filter(|&&s| !s).count(), 1, "written");
    }

    #[test]
    fn the_keys_digest_depends_on_every_key_and_their_order() {
        let (a, b) = ([1; 32], [2; 32]);
        assert_ne!(keys_digest(&[a, b]), keys_digest(&[b, a]));
        assert_ne!(keys_digest(&[a, b]), keys_digest(&[a]));
        assert_eq!(keys_digest(&[a, b]), keys_digest(&[a, b]));
    }
}
