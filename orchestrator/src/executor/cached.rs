//! The cache policy of a validator's run: which of its files the cache answers, and under
//! which keys the others' results are to be kept.
//!
//! A `per_file` validator's results are kept as they arrive, so files finished before a crash
//! are not checked again; a `project` validator's only when its whole run completed, since a
//! partial project answer may be wrong, and served only when every file hits, since each
//! file's key covers every input.
//!
//! A hit is served only while it is still true: every file its result listed as an input still
//! has the hash recorded with it ([`crate::cache::Entry`]), and every artifact its findings
//! point to still exists. Under `--update-baselines` a hit with findings is checked again, so
//! the validator can write the baseline it differs from.

use super::inputs::{Fresh, Stated};
use super::Context;
use crate::cache::{
    self, Cache, ConfigFiles, Entry, InputList, KeptResult, Key, KeyInputs, RecordHead, RunIndex,
    RunRecord, Subject, Uses,
};
use crate::digest::Hash;
use crate::event::{Event, Origin, Unread};
use crate::hashing::FileHashes;
use crate::kept;
use crate::locks::lock;
use crate::plan::PlannedValidator;
use protocol::{FileInput, FileResult, Manifest, Scope};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Files and their hashes (`None`: absent or unreadable).
type States = foldhash::HashMap<String, Option<Hash>>;

/// Where the results of the files sent to a validator are to be kept.
#[derive(Debug)]
pub struct ResultKeys {
    /// The validator's place in the plan.
    validator: usize,
    /// The key of each file sent to the validator.
    by_path: Mutex<HashMap<String, Key>>,
    /// `project` scope: keep results only once the whole run is done.
    pub all_or_nothing: bool,
    /// The run's [`RunRecord`], filled as results are served and kept.
    record: Mutex<Assembly>,
    /// The record's results being served while the validator checks the other files; it
    /// gives the files they turned out not to answer.
    pending: Mutex<Option<JoinHandle<Vec<FileInput>>>>,
}

/// A [`RunRecord`] and its [`RunIndex`] being put together.
#[derive(Debug)]
struct Assembly {
    slot: Key,
    keys: Hash,
    /// [`Context::settled`] of the run reading the inputs' states.
    settled: i64,
    /// How many results make the run complete.
    expected: usize,
    /// Each result with its key and the inputs it listed.
    results: Vec<(Key, KeptResult, Listed)>,
    /// Every input listed, with its state: those of the last record, in its order, then
    /// those first seen since, so that the lines of the results it serves stand as they are.
    inputs: Vec<(String, Option<Hash>)>,
    /// Positions in `inputs`, by path; made when first needed.
    at: Option<HashMap<String, u32>>,
    /// Per input, whether a result of this record lists it.
    used: Vec<bool>,
    /// An input was seen in two states (it changed during the run): no record is written.
    spoiled: bool,
}

/// The inputs a result listed.
#[derive(Debug)]
enum Listed {
    /// Their positions in the record being put together.
    At(Vec<u32>),
    /// The result's line in the last record's index, whose positions are this record's too.
    Line(Uses),
}

impl Assembly {
    /// An assembly that starts from `inputs`, the last record's, in their states now.
    fn new(
        slot: Key,
        keys: Hash,
        settled: i64,
        expected: usize,
        inputs: Vec<(String, Option<Hash>)>,
    ) -> Assembly {
        Assembly {
            slot,
            keys,
            settled,
            expected,
            results: Vec::new(),
            used: vec![false; inputs.len()],
            inputs,
            at: None,
            spoiled: false,
        }
    }

    /// The positions in `inputs`, by path.
    fn at(&mut self) -> &mut HashMap<String, u32> {
        let inputs = &self.inputs;
        self.at.get_or_insert_with(|| {
            let positions = (0..).map(|at: u32| at);
            inputs
                .iter()
                .map(|(path, _)| path.clone())
                .zip(positions)
                .collect()
        })
    }

    /// The position of `path`, added in `state` if new. With `check`, a path already seen in
    /// another state spoils the record.
    fn position(&mut self, path: &str, state: Option<Hash>, check: bool) -> u32 {
        let at = match self.at().get(path) {
            Some(&at) => {
                self.spoiled |= check && self.inputs[at as usize].1 != state;
                at
            }
            None => {
                let at = u32::try_from(self.inputs.len()).unwrap_or(u32::MAX);
                self.inputs.push((path.to_owned(), state));
                self.used.push(false);
                self.at().insert(path.to_owned(), at);
                at
            }
        };
        if let Some(used) = self.used.get_mut(at as usize) {
            *used = true;
        }
        at
    }

    /// The record and its index. Inputs no result lists any more (an import removed, a file
    /// deleted) are dropped once they are an eighth of them, which renumbers every line; until
    /// then, the lines of the results served from the last record are its own, and only the
    /// others are made.
    fn take(&mut self) -> (RunRecord, RunIndex) {
        let mut results = std::mem::take(&mut self.results);
        results.sort_by(|a, b| a.1.path.cmp(&b.1.path));
        let mut inputs = std::mem::take(&mut self.inputs);
        let used = std::mem::take(&mut self.used);
        let unused = used.iter().filter(|&&u| !u).count();
        let renumber = (unused * 8 > inputs.len()).then(|| {
            // A used input's new position is the number of used ones before it.
            let renumber: Vec<u32> = used
                .iter()
                .scan(0, |next, &u| {
                    let at = *next;
                    *next += u32::from(u);
                    Some(at)
                })
                .collect();
            let mut used = used.iter();
            inputs.retain(|_| used.next() == Some(&true));
            renumber
        });
        let mut kept = Vec::with_capacity(results.len());
        let mut lines = Vec::with_capacity(results.len());
        for (key, result, listed) in results {
            let line = match (listed, &renumber) {
                (Listed::Line(line), None) => line,
                (listed, renumber) => {
                    let mut positions = match listed {
                        Listed::At(positions) => positions,
                        Listed::Line(line) => line.iter().collect(),
                    };
                    if let Some(renumber) = renumber {
                        positions
                            .iter_mut()
                            .for_each(|p| *p = renumber[*p as usize]);
                    }
                    positions.sort_unstable();
                    positions.dedup();
                    Uses::new(&key, &positions)
                }
            };
            kept.push(result);
            lines.push(line);
        }
        let record = RunRecord {
            keys: self.keys,
            settled: self.settled,
            inputs,
            results: kept,
        };
        let index = RunIndex {
            keys: self.keys,
            results: lines,
        };
        (record, index)
    }
}

impl ResultKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Assembly> {
        lock(&self.record)
    }

    /// Adds fresh results and their keys to the run's record, `stated` giving the state each
    /// of their inputs had when it was kept.
    pub fn record(&self, results: &[Fresh], stated: &Stated) {
        // Encoded here, as they arrive, not once the run has ended and the report waits.
        let kept = crate::parallel::on_every_core(
            results.iter().map(|f| &f.result).collect(),
            KeptResult::of,
        );
        let mut record = self.lock();
        // Each input's place in the record, looked up once however many results list it.
        let mut positions: Vec<Option<u32>> = vec![None; stated.len()];
        for &n in results.iter().flat_map(|f| &f.inputs) {
            if let Some(slot @ None) = positions.get_mut(n as usize) {
                let (path, state) = stated.input(n);
                *slot = Some(record.position(path, state.copied(), true));
            }
        }
        for (fresh, kept) in results.iter().zip(kept) {
            let at = |n: &u32| positions.get(*n as usize).copied().flatten();
            let uses = fresh.inputs.iter().filter_map(at).collect();
            record.results.push((fresh.key, kept, Listed::At(uses)));
        }
    }

    /// Adds results the run record answered, each with its line in the record's index: the
    /// record's inputs are this one's first, in their order.
    fn record_recorded(&self, results: Vec<(Key, KeptResult, Uses)>) {
        let mut record = self.lock();
        for (key, result, line) in results {
            for at in line.iter() {
                if let Some(used) = record.used.get_mut(at as usize) {
                    *used = true;
                }
            }
            record.results.push((key, result, Listed::Line(line)));
        }
        // Made here, while the validator works, rather than when its first result comes.
        record.at();
    }

    /// The key the result for `path` is kept under, if `path` was sent to the validator.
    pub fn key_of(&self, path: &str) -> Option<Key> {
        lock(&self.by_path).get(path).copied()
    }

    /// Waits until the results the record answers are served; returns the files they turned
    /// out not to answer, which the validator must check too. Called before the run's record
    /// is kept, and before its outcome is told.
    pub async fn settle(&self) -> Vec<FileInput> {
        let pending = lock(&self.pending).take();
        let Some(pending) = pending else {
            return Vec::new();
        };
        match pending.await {
            Ok(left) => left,
            // A panic in our code: the executor's task dies with it, and the dispatcher
            // reports the validator crashed.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Vec::new(),
        }
    }

    /// Records and sends what a lookup found; returns the files it did not answer, whose
    /// results are to be kept under their keys.
    async fn take_looked(&self, looked: Looked, ctx: &Context) -> Vec<FileInput> {
        self.record_cached(
            looked.hits.iter().map(|(key, entry)| {
                let listed = entry
                    .inputs
                    .as_ref()
                    .map_or_else(Vec::new, |i| i.list.paths().collect());
                (*key, KeptResult::of(&entry.result), listed)
            }),
            &looked.states,
        );
        let results = looked.hits.into_iter().map(|(_, e)| e.result).collect();
        tell_cached(self.validator, results, Origin::Cache, ctx).await;
        let mut by_path = lock(&self.by_path);
        looked
            .misses
            .into_iter()
            .map(|(input, key)| {
                by_path.insert(input.path.clone(), key);
                input
            })
            .collect()
    }

    /// Serves the results `part` answers (`later`): read from the record, or, when its body
    /// was replaced by another run's meanwhile, looked up one by one. Returns the files left
    /// without a result.
    async fn answer(
        self: Arc<Self>,
        part: Part,
        later: Vec<Later>,
        ctx: Context,
    ) -> Vec<FileInput> {
        // Results read back with their bytes go into the next record as they are.
        let results: Option<Vec<Option<KeptResult>>> = match part.results {
            Results::Read(results) => Some(
                (results.into_iter())
                    .map(|r| r.map(|r| KeptResult::of(&r)))
                    .collect(),
            ),
            Results::Unread { slot, body, count } => {
                let cache = ctx.cache.clone();
                tokio::task::spawn_blocking(move || cache.run_results_kept(&slot, &body, count))
                    .await
                    .ok()
                    .flatten()
                    .map(|results| results.into_iter().map(Some).collect())
            }
        };
        let mut taken = Vec::with_capacity(later.len());
        let mut left = Vec::new();
        let mut results = results.unwrap_or_default();
        for Later {
            input,
            key,
            at,
            uses,
        } in later
        {
            match results.get_mut(at).and_then(Option::take) {
                Some(kept) => taken.push((input, key, kept, uses)),
                None => left.push((input, key)),
            }
        }
        drop(results);
        let hits: Vec<KeptResult> = taken.iter().map(|(_, _, kept, _)| kept.clone()).collect();
        let holding = ctx.rendered.is_some();
        let hits = tokio::task::spawn_blocking(move || Served::of(hits, holding)).await;
        match hits.ok().flatten() {
            Some(hits) => {
                ctx.cache.served(taken.len() as u64);
                let served = taken
                    .into_iter()
                    .map(|(_, key, kept, uses)| (key, kept, uses));
                self.record_recorded(served.collect());
                hits.tell(self.validator, part.body, &ctx).await;
            }
            // Bytes whose digest holds but that do not decode (written by another build):
            // the results are looked up one by one instead.
            None => left.extend(taken.into_iter().map(|(input, key, _, _)| (input, key))),
        }
        if left.is_empty() {
            return Vec::new();
        }
        tracing::debug!(
            "{} results of the record of the last complete run are gone; looked up one by one",
            left.len()
        );
        let looked = look_up(left, self.all_or_nothing, &ctx).await;
        self.take_looked(looked, &ctx).await
    }

    /// Adds results the cache answered, each with the inputs it listed (in the state `states`
    /// found them in).
    fn record_cached<'p>(
        &self,
        results: impl IntoIterator<Item = (Key, KeptResult, Vec<&'p str>)>,
        states: &States,
    ) {
        let mut record = self.lock();
        for (key, result, listed) in results {
            let uses = listed
                .into_iter()
                .map(|path| {
                    let now = states.get(path).copied().flatten();
                    record.position(path, now, false)
                })
                .collect();
            record.results.push((key, result, Listed::At(uses)));
        }
    }

    /// Keeps the run's record and its index once every file has its result, and tells the
    /// dispatcher the run's results are the record's; called when a run completed.
    pub async fn finish(&self, ctx: &Context) {
        let (slot, record, index) = {
            let mut assembly = self.lock();
            if assembly.spoiled || assembly.results.len() != assembly.expected {
                return;
            }
            let (record, index) = assembly.take();
            (assembly.slot, record, index)
        };
        let cache = ctx.cache.clone();
        let started = std::time::Instant::now();
        let count = record.results.len();
        // How many inputs the results list between them, and how many distinct: what a
        // change to how a validator lists its inputs costs.
        let listed = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            let uses: usize = index.results.iter().map(|line| line.iter().count()).sum();
            (uses, record.inputs.len())
        });
        let kept =
            tokio::task::spawn_blocking(move || cache.put_run_record(&slot, &record, &index)).await;
        let (uses, distinct) = listed.unwrap_or_default();
        tracing::debug!(
            index = self.validator,
            "encoded the record of {count} results, listing {uses} inputs ({distinct} distinct), \
             in {:?}; it is written behind the report",
            started.elapsed()
        );
        if let Ok(Some(body)) = kept {
            let index = self.validator;
            ctx.tell(Event::Recorded {
                index,
                body,
                unread: None,
            })
            .await;
        }
    }
}

/// The cache's side of a validator's run, begun at its handshake: the record of its last
/// complete run is read and the state of its inputs looked up while the run's files are still
/// being found and hashed. None of that needs the files (the record's slot is the validator's
/// identity, its configuration and the root), and on a warm run of Django it was a chain of
/// 30–40 ms that started only once the files were hashed.
pub struct Lookup {
    base: KeyInputs,
    slot: Key,
    /// `project` scope: the record answers every file or none.
    all_or_nothing: bool,
    head: Aborting<Option<Head>>,
}

/// A task stopped when its handle is dropped: a validator skipped before its files were
/// served (no file matches, another shard's) stops the lookup it no longer needs.
struct Aborting<T>(JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Lookup {
    /// Starts reading the record; `None` when the cache answers nothing (a fixing round, or
    /// the cache disabled). A `changed` (`--changed`) run's record has a slot of its own.
    pub fn start(
        validator: &PlannedValidator,
        manifest: &Manifest,
        changed: bool,
        ctx: &Context,
    ) -> Option<Lookup> {
        if ctx.fix || !ctx.cache.enabled() {
            return None;
        }
        let base = KeyInputs::new(manifest, &validator.settings.settings_json());
        let all_or_nothing = manifest.scope != Scope::PerFile;
        let slot = cache::key::run_slot(&base, &ctx.root, changed);
        let ctx = ctx.clone();
        let head = tokio::spawn(async move {
            let cache = ctx.cache.clone();
            let read = tokio::task::spawn_blocking(move || cache.run_record(&slot));
            let head = read.await.ok().flatten()?;
            Some(Head::examine(head, slot, !all_or_nothing, &ctx))
        });
        Some(Lookup {
            base,
            slot,
            all_or_nothing,
            head: Aborting(head),
        })
    }
}

/// Sends what the cache holds for these inputs as results; returns the inputs still to check
/// and the keys their results are to be kept under; every input, and no keys, without a
/// `lookup`.
///
/// The record of the validator's last complete run answers first: whole when nothing changed,
/// else for each file whose key and inputs are unchanged. Only the other files are looked up
/// one by one. Which files the record answers is known from its head and index alone, so the
/// validator starts on the others at once while the record's results are read
/// ([`ResultKeys::settle`]): on ten copies of Django that read is two seconds.
pub async fn serve(
    index: usize,
    validator: &PlannedValidator,
    manifest: &Manifest,
    inputs: Vec<FileInput>,
    lookup: Option<Lookup>,
    ctx: &Context,
) -> (Vec<FileInput>, Option<Arc<ResultKeys>>) {
    let Some(Lookup {
        base,
        slot,
        all_or_nothing,
        mut head,
    }) = lookup
    else {
        return (inputs, None);
    };
    let config_files = ConfigFiles::new(&manifest.config_files, ctx.probes.clone());
    let root = ctx.root.clone();
    let keys = tokio::task::spawn_blocking(move || {
        let keys = keys_of(&base, config_files, &root, &inputs, all_or_nothing);
        (inputs, keys)
    });
    let head = match (&mut head.0).await {
        Ok(head) => head,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => None,
    };
    let Ok((inputs, keys)) = keys.await else {
        return (Vec::new(), None);
    };
    let digest = cache::keys_digest(&keys);
    let mut part = match Recorded::of(head, &slot, &keys, &digest, !all_or_nothing, ctx).await {
        Recorded::Whole(head) => {
            if serve_whole(index, validator, slot, head, ctx).await {
                return (Vec::new(), None);
            }
            // A body gone since its head was read (another run replaced the record) leaves
            // the per-file path.
            None
        }
        Recorded::Part(part) => Some(part),
        Recorded::Nothing => None,
    };
    let expected = inputs.len();
    let (mut answers, recorded) = part
        .as_mut()
        .map(|p| {
            (
                std::mem::take(&mut p.answers),
                std::mem::take(&mut p.inputs),
            )
        })
        .unwrap_or_default();
    answers.resize_with(keys.len(), || None);
    let mut later = Vec::new();
    let mut asked = Vec::new();
    for ((input, key), answer) in inputs.into_iter().zip(keys).zip(answers) {
        match answer {
            Some((at, uses)) => later.push(Later {
                input,
                key,
                at,
                uses,
            }),
            None => asked.push((input, key)),
        }
    }
    if !later.is_empty() {
        tracing::debug!(
            validator = %validator.name,
            "{} results from the record of its last complete run, {} looked up one by one",
            later.len(),
            asked.len()
        );
    }
    let looked = look_up(asked, all_or_nothing, ctx).await;
    let keys = Arc::new(ResultKeys {
        validator: index,
        by_path: Mutex::new(HashMap::new()),
        all_or_nothing,
        record: Mutex::new(Assembly::new(slot, digest, ctx.settled, expected, recorded)),
        pending: Mutex::new(None),
    });
    let mut misses = keys.take_looked(looked, ctx).await;
    if let Some(part) = part {
        let answering = keys.clone().answer(part, later, ctx.clone());
        if misses.is_empty() {
            misses = answering.await;
        } else {
            // Wanted when the run ends: read once the others know what they must check.
            let priorities = ctx.priorities.clone();
            *lock(&keys.pending) = Some(tokio::spawn(async move {
                priorities.all_served().await;
                answering.await
            }));
        }
    }
    if misses.is_empty() {
        keys.finish(ctx).await;
    }
    (misses, Some(keys))
}

/// Serves a record that answers every file; `false` when its body is gone.
async fn serve_whole(
    index: usize,
    validator: &PlannedValidator,
    slot: Key,
    head: RecordHead,
    ctx: &Context,
) -> bool {
    let served = head.paths.len();
    let body = head.body;
    // Findings the last rendered report already holds are not read, nor are none.
    let unread = head.findings == 0
        || ctx
            .rendered
            .as_ref()
            .is_some_and(|r| r.lists(&validator.name, &body));
    let answer = if unread {
        Some(Answer::Unread(Box::new(Unread { slot, head })))
    } else {
        let (cache, holding) = (ctx.cache.clone(), ctx.rendered.is_some());
        let read = tokio::task::spawn_blocking(move || {
            let results = cache.run_results_kept(&slot, &body, served)?;
            Served::of(results, holding).map(Answer::Read)
        });
        read.await.ok().flatten()
    };
    let Some(answer) = answer else {
        return false;
    };
    tracing::debug!(
        validator = %validator.name,
        unread = matches!(answer, Answer::Unread(_)),
        "{served} results from the record of its last complete run",
    );
    ctx.cache.served(served as u64);
    let unread = match answer {
        Answer::Read(results) => {
            results.tell(index, body, ctx).await;
            None
        }
        Answer::Unread(unread) => Some(unread),
    };
    ctx.tell(Event::Recorded {
        index,
        body,
        unread,
    })
    .await;
    true
}

/// A file the record of the last complete run answers, and where its result is in the record.
struct Later {
    input: FileInput,
    key: Key,
    /// The result's position in the record.
    at: usize,
    /// The positions in the record's inputs of the files the result listed.
    uses: Uses,
}

/// What the per-file entries answer of some files.
struct Looked {
    hits: Vec<(Key, Entry)>,
    misses: Vec<(FileInput, Key)>,
    /// The state of every input the hits listed.
    states: States,
}

/// Looks `asked` up one entry per file. A `project` validator's results (`all_or_nothing`)
/// are served only when every file hits, since each file's key covers every input.
async fn look_up(asked: Vec<(FileInput, Key)>, all_or_nothing: bool, ctx: &Context) -> Looked {
    let keys: Vec<Key> = asked.iter().map(|(_, key)| *key).collect();
    let mut found = if keys.is_empty() {
        Vec::new()
    } else {
        let (cache, wanted) = (ctx.cache.clone(), keys.clone());
        tokio::task::spawn_blocking(move || cache.get(&wanted))
            .await
            .unwrap_or_else(|_| vec![None; keys.len()])
    };
    let (stale, states) = still_true(&keys, &mut found, ctx).await;
    if all_or_nothing && found.iter().any(Option::is_none) {
        found.fill(None);
    }
    ctx.cache.rejected(stale);
    let mut looked = Looked {
        hits: Vec::new(),
        misses: Vec::new(),
        states,
    };
    for ((input, key), entry) in asked.into_iter().zip(found) {
        match entry {
            Some(entry) => looked.hits.push((key, entry)),
            None => looked.misses.push((input, key)),
        }
    }
    looked
}

/// What the record of a validator's last complete run answers of this run.
enum Recorded {
    /// Every result: a run with the same keys, every input and artifact as recorded.
    Whole(RecordHead),
    Part(Part),
    Nothing,
}

/// A record's whole answer: its results, or their head alone.
enum Answer {
    Read(Served),
    Unread(Box<Unread>),
}

/// Results a record answered, as the dispatcher gets them: as kept when the report may hold
/// their findings already ([`crate::splice`]), which decodes only those it needs; else
/// decoded.
enum Served {
    Kept(Vec<KeptResult>),
    Decoded(Vec<FileResult>),
}

impl Served {
    /// `None` when a result is to be decoded and cannot be. Decoding tens of thousands takes
    /// every core: on a blocking thread.
    fn of(results: Vec<KeptResult>, holding: bool) -> Option<Served> {
        match holding {
            true => Some(Served::Kept(results)),
            false => cache::decode_all(results).map(Served::Decoded),
        }
    }

    /// Sends them for the validator at `index`, from the record whose body is `body`.
    async fn tell(self, index: usize, body: Hash, ctx: &Context) {
        match self {
            Served::Kept(results) if results.is_empty() => {}
            Served::Kept(results) => {
                ctx.tell(Event::Served {
                    index,
                    body,
                    results,
                })
                .await;
            }
            Served::Decoded(results) => tell_cached(index, results, Origin::Cache, ctx).await,
        }
    }
}

/// The results a record answers when some files changed.
struct Part {
    /// The digest of the record's body.
    body: Hash,
    /// The record's inputs, in their states now.
    inputs: Vec<(String, Option<Hash>)>,
    /// Per file in this run's order, where its key is unchanged and none of the inputs its
    /// result listed changed: the result's position in the record, and the positions in
    /// `inputs` of those inputs (its line in the index).
    answers: Vec<Option<(usize, Uses)>>,
    results: Results,
}

/// A record's results, where a [`Part`] gets them.
enum Results {
    /// Read before deciding which files the record answers, since some results might not
    /// hold (an artifact gone, or `--update-baselines`): those are `None`.
    Read(Vec<Option<FileResult>>),
    /// To be read while the validator checks the other files.
    Unread { slot: Key, body: Hash, count: usize },
}

/// A record's head, with the state of its inputs being looked up.
struct Head {
    head: RecordHead,
    examined: JoinHandle<Examined>,
}

/// The state of a record's inputs now, and which changed.
struct Examined {
    now: Vec<(String, Result<Hash, String>)>,
    changed: Vec<bool>,
    /// The record's index, read once an input is seen changed.
    lines: Option<Lines>,
}

/// A record's index, and which of its results rest on no changed input.
struct Lines {
    index: RunIndex,
    unchanged: Vec<bool>,
}

impl Head {
    /// Starts looking up the state of `head`'s inputs. When one changed and the record may
    /// answer `in_part`, its index is read and scanned at once, while the keys are still
    /// computed: on ten copies of Django that is 28 million positions.
    fn examine(head: RecordHead, slot: Key, in_part: bool, ctx: &Context) -> Head {
        let paths: Vec<String> = head.inputs.iter().map(|(p, _)| p.clone()).collect();
        let then: Vec<Option<Hash>> = head.inputs.iter().map(|(_, state)| *state).collect();
        let (hashes, cache, keys) = (ctx.hashes.clone(), ctx.cache.clone(), head.keys);
        let settled = head.settled;
        let examined = tokio::spawn(async move {
            let now = states_now(&hashes, settled, paths, &then).await;
            let changed: Vec<bool> = then
                .iter()
                .zip(&now)
                .map(|(then, (_, now))| now.as_ref().ok() != then.as_ref())
                .collect();
            let lines = match in_part && changed.contains(&true) {
                true => read_lines(cache, slot, keys, changed.clone()).await,
                false => None,
            };
            Examined {
                now,
                changed,
                lines,
            }
        });
        Head { head, examined }
    }
}

/// The state now of a record's inputs, `paths`, which were in the states `then` at `settled`
/// ([`RecordHead::settled`]). One absent then is absent still, without a look of its own,
/// where a directory on its way is missing, or where every directory on its way from the root
/// is unchanged since `settled` ([`kept::Since`]): then no entry was added to its directory,
/// and the path leads to the same directory it did. Pyright's results list every module's stub
/// and every module an import could find, most of which do not exist: on Django about 2,500
/// paths in a few hundred directories.
async fn states_now(
    hashes: &FileHashes,
    settled: i64,
    paths: Vec<String>,
    then: &[Option<Hash>],
) -> Vec<(String, Result<Hash, String>)> {
    if paths.is_empty() {
        return Vec::new();
    }
    // Sets, not sorted lists: a few thousand paths share a few hundred directories.
    let dirs: foldhash::HashSet<&str> = (paths.iter().zip(then))
        .filter(|(_, state)| state.is_none())
        .map(|(path, _)| dir_of(path))
        .collect();
    let on_the_way: foldhash::HashSet<&str> = dirs.iter().flat_map(|dir| down_to(dir)).collect();
    let on_the_way: Vec<String> = on_the_way.into_iter().map(str::to_owned).collect();
    let hashes_root = hashes.clone();
    let since: foldhash::HashMap<String, kept::Since> = tokio::task::spawn_blocking(move || {
        let root = hashes_root.root();
        crate::parallel::on_every_core(on_the_way, |dir| {
            (kept::Stamp::dir_since(root, dir.as_bytes(), settled), dir)
        })
        .into_iter()
        .map(|(since, dir)| (dir, since))
        .collect()
    })
    .await
    .unwrap_or_default();
    let vouched: foldhash::HashSet<&str> = dirs
        .into_iter()
        .filter(|dir| {
            let way: Vec<Option<kept::Since>> =
                down_to(dir).map(|d| since.get(d).copied()).collect();
            way.contains(&Some(kept::Since::Missing))
                || way.iter().all(|s| *s == Some(kept::Since::Unchanged))
        })
        .collect();
    let absent: Vec<bool> = (paths.iter().zip(then))
        .map(|(path, state)| state.is_none() && vouched.contains(dir_of(path)))
        .collect();
    let looked: Vec<String> = (paths.iter().zip(&absent))
        .filter(|(_, absent)| !**absent)
        .map(|(path, _)| path.clone())
        .collect();
    let mut looked = match looked.is_empty() {
        true => Vec::new(),
        false => hashes.of(looked).await,
    }
    .into_iter();
    (paths.into_iter().zip(absent))
        .map(|(path, absent)| match absent {
            true => (
                path,
                Err("absent, as its directory is unchanged".to_owned()),
            ),
            false => looked.next().expect("a state for every path looked up"),
        })
        .collect()
}

/// The directory of a root-relative path (`""` for the root's own files).
fn dir_of(path: &str) -> &str {
    path.rfind('/').map_or("", |end| &path[..end])
}

/// The directories from the root ("") down to `dir`, which is one of them.
fn down_to(dir: &str) -> impl Iterator<Item = &str> {
    let below = dir.match_indices('/').map(|(at, _)| &dir[..at]);
    std::iter::once("")
        .chain(below)
        .chain((!dir.is_empty()).then_some(dir))
}

/// The index of the record in `slot` whose keys' digest is `keys`, scanned for the results
/// that rest on no input `changed`.
async fn read_lines(cache: Cache, slot: Key, keys: Hash, changed: Vec<bool>) -> Option<Lines> {
    let read = tokio::task::spawn_blocking(move || {
        let index = cache.run_index(&slot, &keys)?;
        let lines: Vec<&Uses> = index.results.iter().collect();
        let unchanged = crate::parallel::on_every_core(lines, |line| {
            line.iter()
                .all(|at| changed.get(at as usize) == Some(&false))
        });
        Some(Lines { index, unchanged })
    });
    read.await.ok().flatten()
}

impl Recorded {
    /// What `head`, read from `slot`, answers; its index is read when the record does not
    /// answer whole and `in_part` (a `project` validator's results hold only all together).
    /// A result is kept only while every artifact it names exists and, under
    /// `--update-baselines`, it has no finding.
    async fn of(
        head: Option<Head>,
        slot: &Key,
        keys: &[Key],
        digest: &Hash,
        in_part: bool,
        ctx: &Context,
    ) -> Recorded {
        let Some(Head { head, examined }) = head else {
            return Recorded::Nothing;
        };
        let Examined {
            now,
            changed,
            lines,
        } = match examined.await {
            Ok(examined) => examined,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => return Recorded::Nothing,
        };
        let slot = *slot;
        let artifacts_there = head.artifacts.iter().all(|a| artifact_exists(&ctx.root, a));
        let all_hold = artifacts_there && (!ctx.update_baselines || head.findings == 0);
        if head.keys == *digest && !changed.contains(&true) && all_hold {
            return Recorded::Whole(head);
        }
        if !in_part {
            return Recorded::Nothing;
        }
        let (body, count) = (head.body, head.paths.len());
        // Only the keys changed (a file added or removed, say): the index is read now.
        let lines = match lines {
            Some(lines) => Some(lines),
            None => read_lines(ctx.cache.clone(), slot, head.keys, changed).await,
        };
        let cache = ctx.cache.clone();
        // Results that all hold need not be read to know which files they answer.
        let read = match all_hold {
            true => Some(None),
            false => tokio::task::spawn_blocking(move || cache.run_results(&slot, &body, count))
                .await
                .ok()
                .flatten()
                .map(Some),
        };
        let (Some(Lines { index, unchanged }), Some(read)) = (lines, read) else {
            return Recorded::Nothing;
        };
        if index.results.len() != count {
            return Recorded::Nothing;
        }
        let read: Option<Vec<Option<FileResult>>> =
            read.map(|results| results.into_iter().map(Some).collect());
        let by_key: HashMap<Key, usize> = index
            .results
            .iter()
            .enumerate()
            .map(|(i, line)| (line.key(), i))
            .collect();
        let answers = keys
            .iter()
            .map(|key| {
                let &i = by_key.get(key)?;
                let holding = read
                    .as_ref()
                    .is_none_or(|read| read[i].as_ref().is_some_and(|r| holds(r, ctx)));
                (unchanged[i] && holding).then(|| (i, index.results[i].clone()))
            })
            .collect();
        Recorded::Part(Part {
            body,
            inputs: (head.inputs.into_iter().zip(now))
                .map(|((path, _), (_, now))| (path, now.ok()))
                .collect(),
            answers,
            results: match read {
                Some(read) => Results::Read(read),
                None => Results::Unread { slot, body, count },
            },
        })
    }
}

/// Sends results the cache answered.
async fn tell_cached(index: usize, results: Vec<FileResult>, origin: Origin, ctx: &Context) {
    if results.is_empty() {
        return;
    }
    ctx.tell(Event::Results {
        index,
        results,
        origin,
    })
    .await;
}

/// The keys of `inputs`' results, in order.
fn keys_of(
    base: &KeyInputs,
    mut config_files: ConfigFiles,
    root: &Path,
    inputs: &[FileInput],
    all_or_nothing: bool,
) -> Vec<Key> {
    if all_or_nothing {
        let all = cache::key::project_inputs(inputs);
        let config = config_files.for_project(root, inputs.iter().map(|f| f.path.as_str()));
        inputs
            .iter()
            .map(|f| {
                let subject = Subject::ProjectFile {
                    inputs: &all,
                    path: &f.path,
                };
                cache::key::key(base, &config, subject)
            })
            .collect()
    } else {
        inputs
            .iter()
            .map(|f| {
                let config = config_files.for_file(root, &f.path);
                let subject = Subject::File {
                    path: &f.path,
                    content: &f.content_hash,
                };
                cache::key::key(base, &config, subject)
            })
            .collect()
    }
}

/// With `--changed`, of the files that did not change (`others`), those whose cached result
/// listed an input that is no longer in the state it recorded: the modules importing a changed
/// module, the pages loading a changed stylesheet. A file with no cached result at all cannot
/// be placed; how many there are is logged.
pub async fn dependents(
    validator: &PlannedValidator,
    manifest: &Manifest,
    others: Vec<FileInput>,
    ctx: &Context,
) -> Vec<FileInput> {
    if ctx.fix || !ctx.cache.enabled() || others.is_empty() {
        return Vec::new();
    }
    let base = KeyInputs::new(manifest, &validator.settings.settings_json());
    let config_files = ConfigFiles::new(&manifest.config_files, ctx.probes.clone());
    let (root, cache) = (ctx.root.clone(), ctx.cache.clone());
    let lookup = tokio::task::spawn_blocking(move || {
        let keys = keys_of(&base, config_files, &root, &others, false);
        let found = cache.peek(&keys);
        (others, keys, found)
    });
    let Ok((others, keys, mut found)) = lookup.await else {
        return Vec::new();
    };
    let unknown = found.iter().filter(|e| e.is_none()).count();
    if unknown > 0 {
        tracing::info!(
            validator = %validator.name,
            "{unknown} unchanged files have no cached result, so whether they depend on the \
             changed ones is unknown; a run without --changed checks them"
        );
    }
    // Only a result that lists inputs can depend on another file.
    for slot in found.iter_mut() {
        if slot.as_ref().is_some_and(|e| e.inputs.is_none()) {
            *slot = None;
        }
    }
    let listed: Vec<bool> = found.iter().map(Option::is_some).collect();
    still_true(&keys, &mut found, ctx).await;
    others
        .into_iter()
        .zip(listed)
        .zip(found)
        .filter(|((_, listed), now)| *listed && now.is_none())
        .map(|((file, _), _)| file)
        .collect()
}

/// Drops the hits (of `keys`) that are no longer true (an input changed, an artifact is gone, or
/// a baseline may need writing); returns how many were dropped, and the state of every input
/// listed. A hit whose inputs changed is replaced by the variant kept for their state now
/// ([`cache::variant_key`]) where there is one.
///
/// Every file any list names is hashed once, and each distinct list's digest computed once.
async fn still_true(keys: &[Key], found: &mut [Option<Entry>], ctx: &Context) -> (u64, States) {
    let mut lists: foldhash::HashMap<Hash, Arc<InputList>> = foldhash::HashMap::default();
    for inputs in found.iter().flatten().filter_map(|e| e.inputs.as_ref()) {
        lists
            .entry(inputs.list.id())
            .or_insert_with(|| inputs.list.clone());
    }
    let lists: Vec<Arc<InputList>> = lists.into_values().collect();
    let (digests, now) = match lists.is_empty() {
        true => Default::default(),
        false => digests_now(lists, ctx).await,
    };
    let mut dropped = 0;
    // Entries whose inputs changed, with their list and its digest now: a variant kept for
    // that state may answer instead.
    let mut changed = Vec::new();
    for (at, slot) in found.iter_mut().enumerate() {
        let Some(entry) = slot else { continue };
        let moved = entry.inputs.as_ref().and_then(|i| {
            let now = digests.get(&i.list.id())?;
            (*now != i.digest).then_some((i.list.id(), *now))
        });
        if let Some((list, now)) = moved {
            changed.push((at, list, now));
            *slot = None;
        } else if !holds(&entry.result, ctx) {
            *slot = None;
            dropped += 1;
        }
    }
    if !changed.is_empty() {
        let variants: Vec<Key> = changed
            .iter()
            .map(|(at, _, now)| cache::variant_key(&keys[*at], now))
            .collect();
        let asked = variants.len();
        let cache = ctx.cache.clone();
        let variants = tokio::task::spawn_blocking(move || cache.peek(&variants))
            .await
            .unwrap_or_else(|_| vec![None; asked]);
        for ((at, list, now), variant) in changed.into_iter().zip(variants) {
            let fits = |v: &Entry| {
                v.inputs
                    .as_ref()
                    .is_some_and(|i| i.list.id() == list && i.digest == now)
                    && holds(&v.result, ctx)
            };
            match variant.filter(fits) {
                Some(variant) => found[at] = Some(variant),
                None => dropped += 1,
            }
        }
    }
    (dropped, now)
}

/// The digest of each of `lists` (by its id) for its inputs' states now, and those states.
/// A hub module's change on Django undoes 2,041 results listing 2.7 million inputs between
/// them, 9,205 distinct: those are gathered, and the digests worked out, on every core and off
/// the runtime's workers.
async fn digests_now(
    lists: Vec<Arc<InputList>>,
    ctx: &Context,
) -> (foldhash::HashMap<Hash, Hash>, States) {
    let (lists, paths) = blocking(move || {
        let paths = distinct_paths(&lists);
        (lists, paths)
    })
    .await;
    let hashed = ctx.hashes.of(paths).await;
    let now: States = hashed.into_iter().map(|(p, h)| (p, h.ok())).collect();
    blocking(move || {
        let digest = |list: Arc<InputList>| {
            let state = |p: &str| now.get(p).and_then(Option::as_ref);
            (
                list.id(),
                cache::digest(list.paths().map(|p| (p, state(p)))),
            )
        };
        let digests = crate::parallel::on_every_core(lists, digest);
        (digests.into_iter().collect(), now)
    })
    .await
}

/// `work` on a blocking thread; its panic goes on here.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => done,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The distinct paths `lists` name.
fn distinct_paths(lists: &[Arc<InputList>]) -> Vec<String> {
    /// Lists of a few hundred inputs each: fewer are not worth a thread.
    const LEAST: usize = 64;
    let sets = crate::parallel::over_slices(lists, LEAST, |slice| {
        (slice.iter())
            .flat_map(|l| l.paths())
            .collect::<foldhash::HashSet<&str>>()
    });
    let mut sets = sets.into_iter();
    let mut paths = sets.next().unwrap_or_default();
    sets.for_each(|set| paths.extend(set));
    paths.into_iter().map(str::to_owned).collect()
}

/// Whether a cached result may still be served: every artifact its findings point to is on
/// disk, and under `--update-baselines` it has no finding (the validator must see the file to
/// write the baseline it differs from).
fn holds(result: &FileResult, ctx: &Context) -> bool {
    let mut artifacts = result.findings.iter().flat_map(|f| &f.artifacts);
    artifacts.all(|a| artifact_exists(&ctx.root, &a.path))
        && (!ctx.update_baselines || result.findings.is_empty())
}

/// An artifact's path is relative to the root when under it, else absolute.
fn artifact_exists(root: &Path, path: &str) -> bool {
    root.join(path).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{Cache, RunIndex, Setting};
    use crate::config::Config;
    use crate::hashing::FileHashes;
    use crate::priority::Priorities;
    use crate::selected::{Files, Found};
    use protocol::{Finding, Severity};
    use std::path::PathBuf;
    use tokio::sync::{mpsc, Semaphore};

    fn context(root: &Path, cache: Cache) -> (Context, mpsc::Receiver<Event>) {
        let (events, inbox) = mpsc::channel(16);
        let ctx = Context {
            root: Arc::new(root.to_owned()),
            files: Files::Found(Arc::new(Found::default())).start(),
            config: Arc::new(Config::defaults()),
            hashes: FileHashes::new(root, cache.clone()),
            cache,
            permits: Arc::new(Semaphore::new(1)),
            wanting: Arc::default(),
            events,
            fix: false,
            update_baselines: false,
            artifacts_dir: Arc::new(PathBuf::from("/nonexistent")),
            shard: None,
            priorities: Arc::new(Priorities::none()),
            probes: Arc::default(),
            rendered: None,
            settled: i64::MIN,
        };
        (ctx, inbox)
    }

    fn cache_in(dir: &Path) -> Cache {
        Cache::open(&Setting::At(dir.join("cache")), None, &Default::default())
    }

    fn result(path: &str) -> FileResult {
        let finding = Finding::new(path, 1, 1, "R1", Severity::Error, "m");
        FileResult::new(path, vec![finding])
    }

    fn input(path: &str) -> FileInput {
        FileInput {
            path: path.into(),
            content_hash: [0; 32],
        }
    }

    fn later(path: &str, key: Key, at: usize) -> Later {
        Later {
            input: input(path),
            key,
            at,
            uses: Uses::new(&key, &[]),
        }
    }

    fn result_keys(expected: usize) -> Arc<ResultKeys> {
        Arc::new(ResultKeys {
            validator: 0,
            by_path: Mutex::new(HashMap::new()),
            all_or_nothing: false,
            record: Mutex::new(Assembly::new(
                [7; 32],
                [1; 32],
                i64::MIN,
                expected,
                Vec::new(),
            )),
            pending: Mutex::new(None),
        })
    }

    fn part(results: Results) -> Part {
        Part {
            body: [0; 32],
            inputs: Vec::new(),
            answers: Vec::new(),
            results,
        }
    }

    /// The paths of the cached results told so far.
    fn told(inbox: &mut mpsc::Receiver<Event>) -> Vec<String> {
        let mut paths = Vec::new();
        while let Ok(event) = inbox.try_recv() {
            match event {
                Event::Results {
                    results, origin, ..
                } if origin != Origin::Validator => {
                    paths.extend(results.into_iter().map(|r| r.path));
                }
                _ => {}
            }
        }
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn results_a_record_answers_are_read_while_the_validator_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_in(dir.path());
        let (slot, a, b) = ([7; 32], [2; 32], [3; 32]);
        let record = RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: vec![
                KeptResult::of(&result("a.py")),
                KeptResult::of(&result("b.py")),
            ],
        };
        let index = RunIndex {
            keys: [1; 32],
            results: vec![Uses::new(&a, &[]), Uses::new(&b, &[])],
        };
        let body = cache.put_run_record(&slot, &record, &index).expect("kept");
        let (ctx, mut inbox) = context(dir.path(), cache);
        let keys = result_keys(2);
        let results = Results::Unread {
            slot,
            body,
            count: 2,
        };
        let pending = tokio::spawn(keys.clone().answer(
            part(results),
            vec![later("a.py", a, 0), later("b.py", b, 1)],
            ctx.clone(),
        ));
        *lock(&keys.pending) = Some(pending);
        assert!(keys.settle().await.is_empty(), "nothing is left to check");
        assert!(keys.settle().await.is_empty(), "settling twice waits once");
        assert_eq!(told(&mut inbox), ["a.py", "b.py"]);
        let next: Vec<KeptResult> = keys
            .lock()
            .results
            .iter()
            .map(|(_, kept, _)| kept.clone())
            .collect();
        assert_eq!(
            next, record.results,
            "both go into the next record, as read"
        );
    }

    #[tokio::test]
    async fn a_record_replaced_meanwhile_is_answered_one_file_at_a_time_and_the_rest_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = cache_in(dir.path());
        let (a, b) = ([2; 32], [3; 32]);
        // `a.py` has its own entry; `b.py` has none.
        let entry = Entry {
            result: result("a.py"),
            inputs: None,
        };
        cache.put(&[(a, entry)]);
        let (ctx, mut inbox) = context(dir.path(), cache);
        let keys = result_keys(2);
        // No body under this slot: another run replaced the record after its index was read.
        let results = Results::Unread {
            slot: [9; 32],
            body: [4; 32],
            count: 2,
        };
        let left = keys
            .clone()
            .answer(
                part(results),
                vec![later("a.py", a, 0), later("b.py", b, 1)],
                ctx,
            )
            .await;
        assert_eq!(left, [input("b.py")], "checked by the validator after all");
        assert_eq!(
            keys.key_of("b.py"),
            Some(b),
            "its result is kept under its key"
        );
        assert_eq!(keys.key_of("a.py"), None);
        assert_eq!(told(&mut inbox), ["a.py"]);
        assert_eq!(keys.lock().results.len(), 1);
    }

    #[test]
    fn lines_served_from_the_last_record_stand_until_an_eighth_of_its_inputs_is_unused() {
        let seeded = |n: usize| -> Vec<(String, Option<Hash>)> {
            (0..n)
                .map(|i| (format!("m{i}.py"), Some([i as u8; 32])))
                .collect()
        };
        let served = Uses::new(&[1; 32], &(0..16).filter(|&i| i != 3).collect::<Vec<u32>>());
        let kept = |path: &str| KeptResult::of(&result(path));
        let mut assembly = Assembly::new([7; 32], [1; 32], i64::MIN, 2, seeded(16));
        assembly
            .results
            .push(([1; 32], kept("a.py"), Listed::Line(served.clone())));
        served
            .iter()
            .for_each(|at| assembly.used[at as usize] = true);
        let fresh = vec![
            assembly.position("new.py", None, true),
            assembly.position("m0.py", Some([0; 32]), true),
        ];
        assert_eq!(fresh, [16, 0], "the last record's inputs keep their places");
        assert!(!assembly.spoiled);
        assembly
            .results
            .push(([2; 32], kept("b.py"), Listed::At(fresh)));
        let (record, index) = assembly.take();
        assert_eq!(record.inputs.len(), 17, "one unused of 17 stays");
        assert_eq!(record.inputs[16].0, "new.py");
        assert_eq!(index.results[0], served);
        assert_eq!(index.results[1].iter().collect::<Vec<_>>(), [0, 16]);

        let mut assembly = Assembly::new([7; 32], [1; 32], i64::MIN, 2, seeded(4));
        let served = Uses::new(&[1; 32], &[2]);
        assembly
            .results
            .push(([1; 32], kept("a.py"), Listed::Line(served)));
        assembly.used[2] = true;
        assert_eq!(assembly.position("m3.py", Some([3; 32]), true), 3);
        assembly
            .results
            .push(([3; 32], kept("b.py"), Listed::At(vec![3])));
        assert!(!assembly.spoiled);
        assert_eq!(assembly.position("m1.py", Some([9; 32]), true), 1);
        assert!(assembly.spoiled, "an input seen in two states");
        let (record, index) = assembly.take();
        assert_eq!(
            record
                .inputs
                .iter()
                .map(|(p, _)| p.as_str())
                .collect::<Vec<_>>(),
            ["m1.py", "m2.py", "m3.py"],
            "one unused of four: dropped, and the lines renumbered"
        );
        let positions = |line: &Uses| line.iter().collect::<Vec<_>>();
        let lines: Vec<Vec<u32>> = index.results.iter().map(positions).collect();
        assert_eq!(lines, [vec![1], vec![2]]);
    }

    /// The stamp of the directory `dir`, in nanoseconds, changed or modified, whichever is later.
    fn stamped(dir: &Path) -> i64 {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir).expect("the directory");
        (m.ctime() * 1_000_000_000 + m.ctime_nsec()).max(m.mtime() * 1_000_000_000 + m.mtime_nsec())
    }

    #[tokio::test]
    async fn an_input_absent_then_is_absent_still_without_a_look_while_its_directory_is_unchanged()
    {
        let root = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir_all(root.path().join("pkg")).expect("a directory");
        std::fs::write(root.path().join("pkg/a.py"), "x = 1\n").expect("written");
        let hashes = FileHashes::new(root.path(), Cache::off());
        let paths = vec![
            "gone/b.py".to_owned(),
            "pkg/a.py".to_owned(),
            "pkg/b.py".to_owned(),
        ];
        let then = [None, Some([0; 32]), None];
        let absent = |states: &[(String, Result<Hash, String>)]| -> Vec<bool> {
            states.iter().map(|(_, s)| s.is_err()).collect()
        };
        std::fs::write(root.path().join("pkg/b.py"), "y = 2\n").expect("written");
        let created = stamped(&root.path().join("pkg"));
        // A record whose states were read after `pkg` last changed vouches for its absent
        // inputs there: none is looked up, which `pkg/b.py`, there all the same in this made-up
        // case, shows. A missing directory holds nothing.
        let now = states_now(&hashes, created + 1, paths.clone(), &then).await;
        assert_eq!(absent(&now), [true, false, true], "{now:?}");
        // A record made before the file was created does not: the directory changed since,
        // and the file is looked up and found.
        let now = states_now(&hashes, created, paths.clone(), &then).await;
        assert_eq!(absent(&now), [true, false, false], "{now:?}");
        assert_eq!(
            now.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            paths.iter().collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn an_input_absent_then_below_a_link_or_a_moved_directory_is_looked_up() {
        let root = tempfile::tempdir().expect("a temporary directory");
        let at = |p: &str| root.path().join(p);
        for dir in ["one/sub", "two/sub", "new/sub"] {
            std::fs::create_dir_all(at(dir)).expect("a directory");
        }
        std::fs::write(at("two/sub/x.py"), "").expect("written");
        std::fs::write(at("new/sub/x.py"), "").expect("written");
        std::os::unix::fs::symlink("two", at("link")).expect("a link");
        let hashes = FileHashes::new(root.path(), Cache::off());
        let found = |now: Vec<(String, Result<Hash, String>)>| -> Vec<bool> {
            now.iter().map(|(_, state)| state.is_ok()).collect()
        };
        // A record made when `link` led to `one`, where `sub/x.py` is absent, lists it as
        // absent. What a link leads to can be replaced (`two` moved away, another moved in)
        // with no stamp on the way from the root showing it: here, every stamp is older.
        let settled = stamped(root.path()) + 1;
        let paths = vec!["link/sub/x.py".to_owned()];
        let now = states_now(&hashes, settled, paths, &[None]).await;
        assert_eq!(found(now), [true], "below a link");
        // `pkg` is moved into place after; its `sub` is as old as ever.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::rename(at("new"), at("pkg")).expect("moved");
        let paths = vec!["pkg/sub/x.py".to_owned(), "one/sub/x.py".to_owned()];
        let now = states_now(&hashes, settled, paths, &[None, None]).await;
        assert_eq!(found(now), [true, false], "below a moved directory");
    }
}
