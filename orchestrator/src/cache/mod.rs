//! The result cache: findings per file, keyed by everything that can change them ([`key`]),
//! plus the stat table that lets an unchanged file go unread.
//!
//! A run talks to a [`Cache`], which never fails: the first time its [`Store`] reports an
//! error (corrupt, unreadable, read-only or long-locked database), it prints one warning line
//! and the rest of the run goes uncached. A slower run is acceptable; a failed or wrong one is
//! not. Behind the local store, a [`remote`] level can share results between machines.

pub mod commands;
mod config_files;
mod entry;
pub mod key;
mod probes;
pub mod remote;
mod run;
pub mod sqlite;

pub use config_files::ConfigFiles;
pub use entry::{digest, variant_key, Entry, InputList, Inputs};
pub use key::{Key, KeyInputs, Subject};
pub use probes::Probes;
pub use run::{decode_all, keys_digest, KeptResult, RecordHead, RunIndex, RunRecord, Uses};

use crate::digest::Hash;
use crate::locks::lock;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Entries hit less than this long ago are not marked hit again, so that a warm run on an
/// unchanged tree writes nothing. `gc --max-age` and `max_age` are therefore day-precise.
const TOUCH_INTERVAL: i64 = 86_400;

/// How long an operation is retried while another run holds the database.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Where results are kept, and whether to use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Off,
    At(PathBuf),
}

impl Setting {
    /// `--no-cache` or `ORCHESTRATOR_CACHE=off` turn the cache off; `--cache-dir`, then
    /// `ORCHESTRATOR_CACHE_DIR`, then the per-user cache directory say where it is.
    pub fn from_args(no_cache: bool, dir: Option<PathBuf>) -> Setting {
        let off = std::env::var("ORCHESTRATOR_CACHE").is_ok_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "off" | "0" | "false" | "no"
            )
        });
        if no_cache || off {
            return Setting::Off;
        }
        Setting::At(directory(dir))
    }
}

/// The cache directory, on or off: `--cache-dir`, then `ORCHESTRATOR_CACHE_DIR`, then the
/// per-user cache directory. The run history is kept there too.
pub fn directory(dir: Option<PathBuf>) -> PathBuf {
    dir.or_else(|| std::env::var_os("ORCHESTRATOR_CACHE_DIR").map(PathBuf::from))
        .unwrap_or_else(default_dir)
}

/// The per-user cache directory: `$XDG_CACHE_HOME/orchestrator/results`, else
/// `~/.cache/orchestrator/results`.
pub fn default_dir() -> PathBuf {
    validators::tools::cache_home().join("results")
}

/// A failure of the store, naming where it is; the kind tells the caller what to do (wait for
/// a busy one, start afresh after a corrupt or newer one).
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// Another run holds the database for longer than we wait.
    #[error("{location}: busy: another run holds it")]
    Busy { location: String },
    /// The file is not a database or is damaged.
    #[error("{location}: damaged ({detail})")]
    Corrupt { location: String, detail: String },
    /// A newer orchestrator wrote it; this one must not touch it.
    #[error(
        "{location}: written by a newer orchestrator (schema {found}; this one reads \
         {supported}); use another --cache-dir"
    )]
    NewerSchema {
        location: String,
        found: i64,
        supported: i64,
    },
    /// Anything else: a file that cannot be created, read or written.
    #[error("{location}: {detail}")]
    Io { location: String, detail: String },
}

impl StoreError {
    /// Whether the failure was another connection holding the database.
    pub fn is_busy(&self) -> bool {
        matches!(self, StoreError::Busy { .. })
    }

    /// A failure of the filesystem at `location`.
    pub fn io(location: &Path, error: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            location: location.display().to_string(),
            detail: error.to_string(),
        }
    }
}

/// What the stat fast path remembers of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    pub size: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: i64,
    pub hash: Hash,
    /// When the file was examined (before it was read): the "racy" check compares with it.
    pub written_ns: i64,
}

/// What `orchestrator cache stats` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub location: String,
    pub entries: u64,
    pub value_bytes: u64,
    pub known_files: u64,
    pub disk_bytes: u64,
    /// What the last run that used this cache counted, by name: `hits` and `misses`, and the
    /// remote's [`remote::Counts`] if it used one.
    pub last_run: Vec<(String, u64)>,
}

/// What `gc` removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub results: u64,
    /// Remembered stats of files that are gone.
    pub files: u64,
}

/// A validator's circuit breaker as the store keeps it (see [`crate::breaker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerRow {
    pub name: String,
    /// What the failures were counted against: the validator's executable and configuration.
    pub fingerprint: Vec<u8>,
    /// Consecutive incomplete runs.
    pub failures: u32,
    /// The status and message of the last of them.
    pub last_status: String,
    pub last_message: String,
    /// Open until then (seconds since the epoch); after it, one run may try (half-open).
    pub open_until: Option<i64>,
}

/// A stored value and when it was last hit.
pub type Stored = (Vec<u8>, i64);

/// A cache backend. Times are seconds since the Unix epoch.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// For each key: the stored value and when it was last hit, or `None` (a miss).
    fn get(&self, keys: &[Key]) -> Result<Vec<Option<Stored>>, StoreError>;
    fn put(&self, entries: &[(Key, Vec<u8>)], now: i64) -> Result<(), StoreError>;
    /// Keeps entries whose key is the digest of their value: one already kept is not written
    /// again, only marked hit at `now` if it was last hit before `stale`.
    fn put_shared(&self, entries: &[(Key, &[u8])], now: i64, stale: i64) -> Result<(), StoreError>;
    /// Marks entries as hit at `now`.
    fn touch(&self, keys: &[Key], now: i64) -> Result<(), StoreError>;
    /// The remembered stat of each absolute path.
    fn file_stats(&self, paths: &[String]) -> Result<Vec<Option<FileStat>>, StoreError>;
    fn put_file_stats(&self, entries: &[(String, FileStat)]) -> Result<(), StoreError>;
    /// Records what a run counted (replacing the last run's counts), and drops entries last
    /// hit before `expire_before`.
    fn finish_run(
        &self,
        counts: &[(&str, u64)],
        expire_before: Option<i64>,
    ) -> Result<(), StoreError>;
    /// Size and use, which also proves the store is readable (its health check).
    fn stats(&self) -> Result<Stats, StoreError>;
    /// The breakers kept, of one validator or of all, sorted by name.
    fn breakers(&self, name: Option<&str>) -> Result<Vec<BreakerRow>, StoreError>;
    fn put_breaker(&self, row: &BreakerRow) -> Result<(), StoreError>;
    /// Moves an open breaker's `open_until` from `seen` to `until`, unless another run did
    /// first; returns whether this call did.
    fn claim_breaker(&self, name: &str, seen: i64, until: i64) -> Result<bool, StoreError>;
    /// Removes the breakers of one validator or of all; returns how many.
    fn remove_breakers(&self, name: Option<&str>) -> Result<u64, StoreError>;
    /// `PRAGMA integrity_check` or its equivalent: `ok`, or what is wrong.
    fn integrity(&self) -> Result<String, StoreError>;
    /// Drops the remembered stats of files that no longer exist, results last hit before
    /// `expire_before`, then the least recently hit results until everything (results and
    /// stats) fits in `max_bytes`.
    fn gc(
        &self,
        max_bytes: Option<u64>,
        expire_before: Option<i64>,
    ) -> Result<Collected, StoreError>;
}

/// A run's handle on the cache; cheap to clone, never fails.
#[derive(Debug, Clone)]
pub struct Cache {
    inner: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    store: Box<dyn Store>,
    broken: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    max_age: Option<Duration>,
    /// Input lists read or written this run: lists are content-addressed, so one known to be
    /// stored is not written again (results arrive in batches that share most of their lists).
    lists_stored: Mutex<HashSet<Key>>,
    /// The shared level behind this one, for results and input lists (never for run records,
    /// remembered stats or breakers, which are about this machine).
    remote: Option<remote::Remote>,
    /// Warnings for the report from opening the remote.
    notes: Vec<String>,
    /// Run records kept but not yet written: written before anything reads their slots, or
    /// after the run while its report is written ([`Cache::write_behind`]).
    pending: Mutex<Vec<PendingRecord>>,
    /// The thread writing records behind the report, if one was started.
    writing: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// A run record encoded for its three slots (head, body list, index) and its body's chunks,
/// not yet written.
#[derive(Debug)]
struct PendingRecord {
    slot: Key,
    entries: [(Key, Vec<u8>); 3],
    chunks: Vec<run::Chunk>,
}

/// What pending records write, together.
#[derive(Debug, Default)]
struct Batch {
    /// Each replaces what its slot held.
    slots: Vec<(Key, Vec<u8>)>,
    /// Kept under the digest of their bytes: one already kept is not written again.
    chunks: Vec<run::Chunk>,
}

impl Batch {
    fn of(pending: Vec<PendingRecord>) -> Batch {
        let mut batch = Batch::default();
        for record in pending {
            batch.slots.extend(record.entries);
            batch.chunks.extend(record.chunks);
        }
        batch
    }

    /// The chunks first, so that no body list is kept without its chunks.
    fn write(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        store.put_shared(&run::slices(&self.chunks), now, now - TOUCH_INTERVAL)?;
        store.put(&self.slots, now)
    }
}

impl Shared {
    /// Waits for the records being written behind the report, if any are.
    fn wait_for_writes_behind(&self) {
        let thread = lock(&self.writing).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Shared {
    /// Records still pending when the last handle goes (a command that did not write behind)
    /// are written now rather than lost.
    fn drop(&mut self) {
        let pending = std::mem::take(self.pending.get_mut().unwrap_or_else(|e| e.into_inner()));
        if pending.is_empty() || self.broken.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = Batch::of(pending).write(self.store.as_ref(), now_secs()) {
            warn(&e);
        }
    }
}

impl Cache {
    /// No cache: every lookup misses, nothing is kept.
    pub fn off() -> Cache {
        Cache { inner: None }
    }

    /// Opens the cache a setting names, with the remote level `remote` configures; a cache that
    /// cannot be opened gives the warning line and an uncached run, a remote that cannot be
    /// used a warning in the report and a run on the local cache.
    pub fn open(setting: &Setting, max_age: Option<Duration>, remote: &remote::Settings) -> Cache {
        let Setting::At(dir) = setting else {
            return Cache::off();
        };
        let store = match sqlite::SqliteStore::open(dir) {
            Ok(store) => store,
            Err(e) => {
                warn(&e);
                return Cache::off();
            }
        };
        let (remote, notes) = match remote
            .resolve()
            .and_then(|r| r.map(remote::Remote::open).transpose())
        {
            Ok(remote) => (remote, Vec::new()),
            Err(warning) => (None, vec![warning]),
        };
        Cache::build(Box::new(store), max_age, remote, notes)
    }

    pub fn with_store(store: Box<dyn Store>, max_age: Option<Duration>) -> Cache {
        Cache::build(store, max_age, None, Vec::new())
    }

    fn build(
        store: Box<dyn Store>,
        max_age: Option<Duration>,
        remote: Option<remote::Remote>,
        notes: Vec<String>,
    ) -> Cache {
        Cache {
            inner: Some(Arc::new(Shared {
                store,
                broken: AtomicBool::new(false),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                max_age,
                lists_stored: Mutex::default(),
                remote,
                notes,
                pending: Mutex::default(),
                writing: Mutex::default(),
            })),
        }
    }

    /// Whether lookups can hit at all.
    pub fn enabled(&self) -> bool {
        self.usable().is_some()
    }

    fn usable(&self) -> Option<&Shared> {
        self.inner
            .as_deref()
            .filter(|s| !s.broken.load(Ordering::Relaxed))
    }

    /// Runs a store operation; its first failure warns and turns the cache off. A busy
    /// database (another run writing) is retried for up to [`BUSY_RETRY`] first: SQLite's own
    /// busy handler does not cover every case of contention.
    fn with<T>(&self, op: impl Fn(&dyn Store) -> Result<T, StoreError>) -> Option<T> {
        let shared = self.usable()?;
        let started = std::time::Instant::now();
        loop {
            match op(shared.store.as_ref()) {
                Ok(value) => return Some(value),
                Err(e) if e.is_busy() && started.elapsed() < BUSY_RETRY => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    if !shared.broken.swap(true, Ordering::Relaxed) {
                        warn(&e);
                    }
                    return None;
                }
            }
        }
    }

    /// The cached entries of `keys`, in order; `None` for a miss. Counts hits and misses;
    /// a caller that rejects a hit (its inputs changed) reports it with [`Cache::rejected`].
    pub fn get(&self, keys: &[Key]) -> Vec<Option<Entry>> {
        let results = self.peek(keys);
        if let Some(shared) = self.usable() {
            let hits = results.iter().filter(|r| r.is_some()).count() as u64;
            shared.hits.fetch_add(hits, Ordering::Relaxed);
            shared
                .misses
                .fetch_add(keys.len() as u64 - hits, Ordering::Relaxed);
        }
        results
    }

    /// [`Cache::get`] without counting: for looking at what the cache knows (which results
    /// depend on a changed file) rather than for serving it.
    pub fn peek(&self, keys: &[Key]) -> Vec<Option<Entry>> {
        let now = now_secs();
        let mut touch = Vec::new();
        let decoded: Vec<_> = self
            .read(keys, now, &mut touch, true)
            .into_iter()
            .map(|bytes| Entry::decode(&bytes?))
            .collect();
        // Each distinct input list once, however many entries refer to it.
        let mut ids: Vec<Key> = decoded
            .iter()
            .flatten()
            .filter_map(|(_, inputs)| inputs.map(|(list, _)| list))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let lists: HashMap<Key, Arc<InputList>> = ids
            .iter()
            .zip(self.read(&ids, now, &mut touch, true))
            .filter_map(|(id, bytes)| Some((*id, Arc::new(InputList::decode(bytes?)?))))
            .collect();
        if let Some(mut stored) = self.lists_stored() {
            stored.extend(lists.keys().copied());
        }
        if !touch.is_empty() {
            self.with(|s| s.touch(&touch, now));
        }
        decoded
            .into_iter()
            .map(|found| {
                let (result, inputs) = found?;
                let inputs = match inputs {
                    // An entry whose list is gone (trimmed, damaged) is a miss.
                    Some((list, digest)) => Some(Inputs {
                        list: lists.get(&list)?.clone(),
                        digest,
                    }),
                    None => None,
                };
                Some(Entry { result, inputs })
            })
            .collect()
    }

    /// The stored bytes of `keys`, in order, without those that have expired; the keys last hit
    /// more than [`TOUCH_INTERVAL`] ago are added to `touch`. With `shared`, the local misses
    /// are looked up in the remote level, and its hits kept locally.
    fn read(
        &self,
        keys: &[Key],
        now: i64,
        touch: &mut Vec<Key>,
        shared: bool,
    ) -> Vec<Option<Vec<u8>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let expired_before = self.expire_before(now);
        let Some(found) = self.with(|s| s.get(keys)) else {
            return vec![None; keys.len()];
        };
        let mut found: Vec<Option<Vec<u8>>> = found
            .into_iter()
            .zip(keys)
            .map(|(stored, key)| {
                let (bytes, last_hit) = stored?;
                if expired_before.is_some_and(|before| last_hit < before) {
                    return None;
                }
                if now - last_hit >= TOUCH_INTERVAL {
                    touch.push(*key);
                }
                Some(bytes)
            })
            .collect();
        if let Some(remote) = self
            .usable()
            .and_then(|s| s.remote.as_ref())
            .filter(|_| shared)
        {
            let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
            if !missing.is_empty() {
                let asked: Vec<Key> = missing.iter().map(|&i| keys[i]).collect();
                let fetched: Vec<(Key, Vec<u8>)> = remote
                    .get(&asked)
                    .into_iter()
                    .zip(missing)
                    .filter_map(|(bytes, i)| {
                        let bytes = bytes?;
                        found[i] = Some(bytes.clone());
                        Some((keys[i], bytes))
                    })
                    .collect();
                if !fetched.is_empty() {
                    self.with(|s| s.put(&fetched, now));
                }
            }
        }
        found
    }

    /// The head of the record of the last complete run kept in `slot` ([`RunRecord`]). A
    /// record not hit for a day is not served, so that once a day the run takes the per-file
    /// path and marks the entries and lists the record stands for as hit: without that,
    /// `max_age` would expire them under a record in daily use.
    pub fn run_record(&self, slot: &Key) -> Option<RecordHead> {
        self.written(slot);
        let now = now_secs();
        let mut touch = Vec::new();
        let bytes = self
            .read(std::slice::from_ref(slot), now, &mut touch, false)
            .pop()??;
        if !touch.is_empty() {
            return None;
        }
        RecordHead::decode(&bytes)
    }

    /// The `count` results of the record in `slot` whose body's digest is `body`
    /// ([`RecordHead::body`]); `None` when that body is gone or is another record's.
    pub fn run_results(
        &self,
        slot: &Key,
        body: &Hash,
        count: usize,
    ) -> Option<Vec<protocol::FileResult>> {
        let (keys, chunks) = self.run_chunks(slot, body)?;
        run::decode_chunks(&keys, chunks, count)
    }

    /// [`Cache::run_results`] as kept, not decoded: to be kept in the next record as they
    /// are, and decoded only where needed ([`KeptResult::decode`]).
    pub fn run_results_kept(
        &self,
        slot: &Key,
        body: &Hash,
        count: usize,
    ) -> Option<Vec<KeptResult>> {
        let (keys, chunks) = self.run_chunks(slot, body)?;
        run::kept_results(&keys, chunks, count)
    }

    /// The keys and bytes of the chunks of the body `body` of the record in `slot`.
    fn run_chunks(&self, slot: &Key, body: &Hash) -> Option<(Vec<Key>, Vec<Vec<u8>>)> {
        self.written(slot);
        let list = self.read_kept(&[run::body_slot(slot)]).pop()??;
        let keys = run::chunk_keys(&list, body)?;
        let chunks = self.read_kept(&keys).into_iter().collect::<Option<_>>()?;
        Some((keys, chunks))
    }

    /// What `keys` hold, each marked hit when it was last a day ago or more: a chunk the next
    /// record keeps as read is not written again (`Cut::stored`), so a read is what keeps it
    /// from growing old, as a write would have.
    fn read_kept(&self, keys: &[Key]) -> Vec<Option<Vec<u8>>> {
        let now = now_secs();
        let mut touch = Vec::new();
        let read = self.read(keys, now, &mut touch, false);
        if !touch.is_empty() {
            self.with(|s| s.touch(&touch, now));
        }
        read
    }

    /// The index of the record in `slot` ([`RunIndex`]), if it is the index of a record with
    /// these `keys`.
    pub fn run_index(&self, slot: &Key, keys: &Hash) -> Option<RunIndex> {
        self.written(slot);
        let list = self.read_kept(&[run::index_slot(slot)]).pop()??;
        let (digest, count, chunk_keys) = run::index_chunk_keys(&list)?;
        if digest != *keys {
            return None;
        }
        let chunks = self
            .read_kept(&chunk_keys)
            .into_iter()
            .collect::<Option<_>>()?;
        run::decode_index(digest, &chunk_keys, chunks, count)
    }

    /// Keeps a run's record and its index in `slot`, replacing those there; returns the
    /// digest of its body ([`RecordHead::body`]). The record is written before anything reads
    /// that slot, and at the latest when the run's writes end ([`Writes`]): on Django, a
    /// pyright record is 6.7 MB, whose write need not hold up the report.
    pub fn put_run_record(&self, slot: &Key, record: &RunRecord, index: &RunIndex) -> Option<Hash> {
        let shared = self.usable()?;
        let (head, body) = record.encode();
        let (index, lines) = index.encode();
        let entries = [
            (*slot, head),
            (run::body_slot(slot), body.list),
            (run::index_slot(slot), index),
        ];
        let mut pending = lock(&shared.pending);
        pending.retain(|p| p.slot != *slot);
        pending.push(PendingRecord {
            slot: *slot,
            entries,
            chunks: body.cut.unstored().chain(lines.unstored()).collect(),
        });
        Some(body.digest)
    }

    /// Writes the records kept so far if one of them is `slot`'s, and waits for any written
    /// behind, so that a read of it finds the newest.
    fn written(&self, slot: &Key) {
        let Some(shared) = self.usable() else {
            return;
        };
        shared.wait_for_writes_behind();
        if lock(&shared.pending).iter().any(|p| p.slot == *slot) {
            self.write_pending();
        }
    }

    fn write_pending(&self) {
        if let Some(batch) = self.take_pending() {
            self.with(|s| batch.write(s, now_secs()));
        }
    }

    /// What the records kept so far write, taken from the pending list; `None` when none are.
    fn take_pending(&self) -> Option<Batch> {
        let pending = std::mem::take(&mut *lock(&self.usable()?.pending));
        (!pending.is_empty()).then(|| Batch::of(pending))
    }

    /// Starts writing the records kept so far on a thread of its own, and returns what waits
    /// for it: the run's report is written meanwhile. The thread owns those records from
    /// now on, so a read of their slots waits for it ([`Cache::run_record`]).
    pub fn write_behind(&self) -> Writes {
        if let (Some(shared), Some(batch)) = (self.usable(), self.take_pending()) {
            let cache = self.clone();
            let thread = std::thread::spawn(move || {
                cache.with(|s| batch.write(s, now_secs()));
            });
            shared.wait_for_writes_behind();
            *lock(&shared.writing) = Some(thread);
        }
        Writes(self.clone())
    }

    /// Counts `n` results served from a run record as hits.
    pub fn served(&self, n: u64) {
        if let Some(shared) = self.usable() {
            shared.hits.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts `n` hits of [`Cache::get`] as misses: their recorded inputs have changed.
    pub fn rejected(&self, n: u64) {
        if let Some(shared) = self.usable() {
            shared.hits.fetch_sub(n, Ordering::Relaxed);
            shared.misses.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Keeps entries.
    pub fn put(&self, entries: &[(Key, Entry)]) {
        if entries.is_empty() || !self.enabled() {
            return;
        }
        let mut encoded: Vec<(Key, Vec<u8>)> = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let bytes = entry.encode();
            if let Some(inputs) = &entry.inputs {
                encoded.push((variant_key(key, &inputs.digest), bytes.clone()));
            }
            encoded.push((*key, bytes));
        }
        if let Some(mut stored) = self.lists_stored() {
            for list in entries.iter().filter_map(|(_, e)| e.inputs.as_ref()) {
                if stored.insert(list.list.id()) {
                    encoded.push((list.list.id(), list.list.encode()));
                }
            }
        }
        self.with(|s| s.put(&encoded, now_secs()));
        if let Some(remote) = self.usable().and_then(|s| s.remote.as_ref()) {
            remote.put(&encoded);
        }
    }

    /// See [`Shared::lists_stored`]; a poisoned lock only means a panic elsewhere.
    fn lists_stored(&self) -> Option<std::sync::MutexGuard<'_, HashSet<Key>>> {
        let shared = self.usable()?;
        Some(lock(&shared.lists_stored))
    }

    pub fn file_stats(&self, paths: &[String]) -> Vec<Option<FileStat>> {
        self.with(|s| s.file_stats(paths))
            .unwrap_or_else(|| vec![None; paths.len()])
    }

    pub fn put_file_stats(&self, entries: &[(String, FileStat)]) {
        self.with(|s| s.put_file_stats(entries));
    }

    /// Waits for the remote's writes within their budget, records what the run counted, and
    /// applies `max_age`; returns the warnings the report is to carry about the remote.
    pub fn finish_run(&self) -> Vec<String> {
        let Some(shared) = self.inner.as_deref() else {
            return Vec::new();
        };
        let mut notes = shared.notes.clone();
        let remote = shared.remote.as_ref().map(remote::Remote::finish);
        if self.usable().is_none() {
            return notes;
        }
        let mut counts = vec![
            ("hits", shared.hits.load(Ordering::Relaxed)),
            ("misses", shared.misses.load(Ordering::Relaxed)),
        ];
        if let Some((remote_counts, warnings)) = remote {
            counts.extend(remote_counts.named());
            notes.extend(warnings);
        }
        let expire = self.expire_before(now_secs());
        self.with(|s| s.finish_run(&counts, expire));
        notes
    }

    /// The breakers kept, of one validator or of all; none without a usable cache.
    pub fn breakers(&self, name: Option<&str>) -> Vec<BreakerRow> {
        self.with(|s| s.breakers(name)).unwrap_or_default()
    }

    pub fn put_breaker(&self, row: &BreakerRow) {
        self.with(|s| s.put_breaker(row));
    }

    /// See [`Store::claim_breaker`]; `false` without a usable cache.
    pub fn claim_breaker(&self, name: &str, seen: i64, until: i64) -> bool {
        self.with(|s| s.claim_breaker(name, seen, until))
            .unwrap_or(false)
    }

    /// Closes the breakers of one validator or of all; returns how many were kept.
    pub fn reset_breakers(&self, name: Option<&str>) -> u64 {
        self.with(|s| s.remove_breakers(name)).unwrap_or(0)
    }

    fn expire_before(&self, now: i64) -> Option<i64> {
        let age = self.inner.as_ref()?.max_age?;
        Some(now - i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2))
    }
}

/// The records of a run being written behind its report ([`Cache::write_behind`]); dropping
/// it waits until they are written, so that the process ends with its cache complete.
#[derive(Debug)]
#[must_use = "dropping it at once waits for the writes"]
pub struct Writes(Cache);

impl Drop for Writes {
    fn drop(&mut self) {
        if let Some(shared) = self.0.inner.as_deref() {
            shared.wait_for_writes_behind();
            self.0.write_pending();
        }
    }
}

fn warn(e: &StoreError) {
    eprintln!(
        "warning: the result cache cannot be used ({e}); this run is not cached \
         (fix: `orchestrator cache clear`, another --cache-dir, or --no-cache)"
    );
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{FileResult, Finding, Severity};

    fn result(path: &str) -> Entry {
        Entry {
            result: FileResult::new(
                path,
                vec![Finding::new(path, 1, 2, "F401", Severity::Error, "unused")],
            ),
            inputs: None,
        }
    }

    /// Puts `record` into `slot` of `store` as last hit at `at`, without the first `missing`
    /// chunks of its body; returns how many chunks the body has.
    fn put_directly(
        store: &sqlite::SqliteStore,
        slot: Key,
        record: &RunRecord,
        at: i64,
        missing: usize,
    ) -> usize {
        let (head, body) = record.encode();
        let parts = [(slot, head), (run::body_slot(&slot), body.list)];
        store.put(&parts, at).expect("put");
        store
            .put_shared(&run::slices(&body.cut.chunks)[missing..], at, 0)
            .expect("put");
        body.cut.chunks.len()
    }

    /// A store in `dir` holding a record of one result, last hit over a day ago; with the
    /// record, its slot and that time.
    fn day_old_record(dir: &Path) -> (sqlite::SqliteStore, RunRecord, Key, i64) {
        let store = sqlite::SqliteStore::open(dir).expect("open");
        let record = RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: vec![KeptResult::of(&result("a.py").result)],
        };
        let slot = [7; 32];
        let day_old = now_secs() - TOUCH_INTERVAL - 1;
        put_directly(&store, slot, &record, day_old, 0);
        (store, record, slot, day_old)
    }

    #[test]
    fn a_run_record_not_hit_for_a_day_is_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, record, slot, _) = day_old_record(dir.path());
        let cache = Cache::with_store(Box::new(store), None);
        assert_eq!(
            cache.run_record(&slot),
            None,
            "the per-file path marks its entries hit"
        );
        let index = RunIndex {
            keys: record.keys,
            results: vec![Uses::new(&[2; 32], &[])],
        };
        cache.put_run_record(&slot, &record, &index);
        let head = cache.run_record(&slot).expect("a record just kept");
        assert_eq!(head.keys, record.keys);
        assert_eq!(
            cache.run_results(&slot, &head.body, head.paths.len()),
            Some(vec![result("a.py").result])
        );
        let read = cache
            .run_index(&slot, &[1; 32])
            .expect("the index just kept");
        assert_eq!(read.results.len(), 1);
        assert_eq!(read.results[0].key(), [2; 32]);
        assert!(
            cache.run_index(&slot, &[9; 32]).is_none(),
            "another record's index"
        );
    }

    #[test]
    fn chunks_read_old_are_marked_hit_since_a_record_keeping_them_does_not_write_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, record, slot, day_old) = day_old_record(dir.path());
        let (head, body) = record.encode();
        store
            .put(&[(slot, head)], now_secs())
            .expect("a fresh head");
        let cache = Cache::with_store(Box::new(store), None);
        let head = cache.run_record(&slot).expect("a fresh head");
        assert!(cache.run_results(&slot, &head.body, 1).is_some());
        let keys: Vec<Key> = body.cut.chunks.iter().map(|(key, _)| *key).collect();
        let look = sqlite::SqliteStore::open(dir.path()).expect("open");
        for found in look.get(&keys).expect("get") {
            let (_, last_hit) = found.expect("the chunk");
            assert!(last_hit > day_old, "marked hit when read");
        }
    }

    #[test]
    fn a_record_with_a_chunk_gone_has_no_results() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite::SqliteStore::open(dir.path()).expect("open");
        let record = RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: (0..1000)
                .map(|i| KeptResult::of(&result(&format!("m{i}.py")).result))
                .collect(),
        };
        let slot = [7; 32];
        // The first chunk collected by `cache gc`, say; the others still kept.
        let chunks = put_directly(&store, slot, &record, now_secs(), 1);
        assert!(chunks > 1, "{chunks} chunks");
        let cache = Cache::with_store(Box::new(store), None);
        let head = cache.run_record(&slot).expect("the head is kept");
        assert_eq!(
            cache.run_results(&slot, &head.body, head.paths.len()),
            None,
            "a body missing a chunk is gone, and its files are looked up one by one"
        );
    }

    #[test]
    fn a_run_record_is_written_behind_the_report_and_never_lost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || {
            Cache::open(
                &Setting::At(dir.path().to_owned()),
                None,
                &remote::Settings::default(),
            )
        };
        let record = |path: &str| RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: vec![KeptResult::of(&result(path).result)],
        };
        let index = RunIndex {
            keys: [1; 32],
            results: vec![Uses::new(&[2; 32], &[])],
        };
        let stored = |slot: &Key| {
            let cache = open();
            let head = cache.run_record(slot)?;
            cache.run_results(slot, &head.body, head.paths.len())
        };
        // Written behind: not in the database until written, there once `Writes` is dropped.
        let cache = open();
        let body = cache.put_run_record(&[7; 32], &record("a.py"), &index);
        assert!(body.is_some());
        assert_eq!(stored(&[7; 32]), None, "pending, not yet written");
        let writes = cache.write_behind();
        drop(writes);
        assert_eq!(stored(&[7; 32]), Some(vec![result("a.py").result]));
        // A read while a large record is being written behind waits for it.
        let many = RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: (0..20_000)
                .map(|i| KeptResult::of(&result(&format!("m{i}.py")).result))
                .collect(),
        };
        cache.put_run_record(&[9; 32], &many, &index);
        let writes = cache.write_behind();
        let head = cache
            .run_record(&[9; 32])
            .expect("written before it is read");
        assert_eq!(head.paths.len(), 20_000);
        drop(writes);
        // A second record for the slot replaces the pending one, and is written when the last
        // handle goes, for a command that never writes behind.
        cache.put_run_record(&[8; 32], &record("b.py"), &index);
        cache.put_run_record(&[8; 32], &record("c.py"), &index);
        drop(cache);
        assert_eq!(stored(&[8; 32]), Some(vec![result("c.py").result]));
    }

    #[test]
    fn an_input_list_shared_by_entries_is_kept_once_and_a_lost_list_is_a_miss() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(
            &Setting::At(dir.path().to_owned()),
            None,
            &remote::Settings::default(),
        );
        let with_inputs = |path: &str| Entry {
            result: FileResult::new(path, Vec::new()),
            inputs: Inputs::of([("lib/a.py", None), ("lib/b.pyi", None)]),
        };
        let (one, two) = (with_inputs("x.py"), with_inputs("y.py"));
        cache.put(&[([1; 32], one.clone()), ([2; 32], two.clone())]);
        assert_eq!(
            cache.get(&[[1; 32], [2; 32]]),
            vec![Some(one.clone()), Some(two)]
        );
        let stats = cache.with(|s| s.stats()).expect("stats");
        assert_eq!(
            stats.entries, 5,
            "two results, each also under its inputs' state, and one list"
        );
        let inputs = one.inputs.as_ref().expect("inputs");
        assert_eq!(
            cache.get(&[variant_key(&[1; 32], &inputs.digest)]),
            vec![Some(one.clone())],
            "the variant"
        );
        let list = inputs.list.id();
        cache.with(|s| s.put(&[(list, vec![0xff])], now_secs()));
        assert_eq!(cache.get(&[[1; 32]]), vec![None]);
    }

    #[test]
    fn hits_return_what_was_put_and_are_counted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(
            &Setting::At(dir.path().to_owned()),
            None,
            &remote::Settings::default(),
        );
        cache.put(&[([1; 32], result("a.py"))]);
        assert_eq!(
            cache.get(&[[1; 32], [2; 32]]),
            vec![Some(result("a.py")), None]
        );
        cache.finish_run();
        let stats = cache.with(|s| s.stats()).expect("stats");
        let counted = vec![("hits".to_owned(), 1), ("misses".to_owned(), 1)];
        assert_eq!(stats.last_run, counted);
        assert_eq!(stats.entries, 1);
    }

    #[test]
    fn a_corrupt_database_gives_an_uncached_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(sqlite::FILE_NAME), vec![0x5a; 8192]).expect("write");
        let cache = Cache::open(
            &Setting::At(dir.path().to_owned()),
            None,
            &remote::Settings::default(),
        );
        assert!(!cache.enabled());
        cache.put(&[([1; 32], result("a.py"))]);
        assert_eq!(cache.get(&[[1; 32]]), vec![None]);
    }

    #[test]
    fn entries_older_than_max_age_are_not_served() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = sqlite::SqliteStore::open(dir.path()).expect("open");
        let old = result("a.py").encode();
        store
            .put(&[([1; 32], old)], now_secs() - 10 * 86_400)
            .expect("put");
        let cache = Cache::with_store(Box::new(store), Some(Duration::from_secs(86_400)));
        assert_eq!(cache.get(&[[1; 32]]), vec![None]);
    }
}
