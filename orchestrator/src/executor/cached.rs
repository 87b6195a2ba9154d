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

use super::Context;
use crate::cache::{
    self, ConfigFiles, Entry, InputList, Key, KeyInputs, RecordHead, RunIndex, RunRecord, Subject,
};
use crate::digest::Hash;
use crate::event::{Event, Unread};
use crate::plan::PlannedValidator;
use protocol::{FileInput, FileResult, Manifest, Scope};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Files and their hashes (`None`: absent or unreadable).
type States = HashMap<String, Option<Hash>>;

/// Where the results of the files sent to a validator are to be kept.
#[derive(Debug)]
pub struct ResultKeys {
    /// The validator's place in the plan.
    validator: usize,
    pub by_path: HashMap<String, Key>,
    /// `project` scope: keep results only once the whole run is done.
    pub all_or_nothing: bool,
    /// The run's [`RunRecord`], filled as results are served and kept.
    record: Mutex<Assembly>,
}

/// A [`RunRecord`] and its [`RunIndex`] being put together.
#[derive(Debug)]
struct Assembly {
    slot: Key,
    keys: Hash,
    /// How many results make the run complete.
    expected: usize,
    /// Each result with its key and the positions in `inputs` of the files it listed.
    results: Vec<(Key, FileResult, Vec<u32>)>,
    /// Every input listed, with its state, in the order first seen.
    inputs: Vec<(String, Option<Hash>)>,
    /// Positions in `inputs`, by path.
    at: HashMap<String, u32>,
    /// An input was seen in two states (it changed during the run): no record is written.
    spoiled: bool,
}

impl Assembly {
    fn new(slot: Key, keys: Hash, expected: usize) -> Assembly {
        Assembly {
            slot,
            keys,
            expected,
            results: Vec::new(),
            inputs: Vec::new(),
            at: HashMap::new(),
            spoiled: false,
        }
    }

    /// The position of `path`, added in `state` if new. With `check`, a path already seen in
    /// another state spoils the record.
    fn position(&mut self, path: &str, state: Option<Hash>, check: bool) -> u32 {
        match self.at.get(path) {
            Some(&at) => {
                self.spoiled |= check && self.inputs[at as usize].1 != state;
                at
            }
            None => {
                let at = u32::try_from(self.inputs.len()).unwrap_or(u32::MAX);
                self.inputs.push((path.to_owned(), state));
                self.at.insert(path.to_owned(), at);
                at
            }
        }
    }
}

impl ResultKeys {
    fn lock(&self) -> std::sync::MutexGuard<'_, Assembly> {
        crate::locks::lock(&self.record)
    }

    /// Adds fresh results and their keys to the run's record, `state` giving the hash each of
    /// their inputs had when it was kept. The results' input lists are taken.
    pub fn record<'a>(
        &self,
        results: impl IntoIterator<Item = (Key, FileResult)>,
        state: impl Fn(&str) -> Option<&'a Hash>,
    ) {
        let mut record = self.lock();
        for (key, mut result) in results {
            let uses = std::mem::take(&mut result.inputs)
                .iter()
                .map(|path| record.position(path, state(path).copied(), true))
                .collect();
            record.results.push((key, result, uses));
        }
    }

    /// Adds results the run record answered, each with the positions in `table` of the inputs
    /// it listed, whose states are `now`.
    fn record_recorded(&self, part: Part) {
        let mut record = self.lock();
        let mut renumbered: Vec<Option<u32>> = vec![None; part.table.len()];
        for (key, result, uses) in part.results.into_iter().flatten() {
            let uses = uses
                .iter()
                .map(|&u| {
                    let u = u as usize;
                    *renumbered[u]
                        .get_or_insert_with(|| record.position(&part.table[u], part.now[u], false))
                })
                .collect();
            record.results.push((key, result, uses));
        }
    }

    /// Adds results the cache answered, each with the inputs it listed (in the state `states`
    /// found them in).
    fn record_cached<'p>(
        &self,
        results: impl IntoIterator<Item = (Key, FileResult, Vec<&'p str>)>,
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
            record.results.push((key, result, uses));
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
            let mut results = std::mem::take(&mut assembly.results);
            results.sort_by(|a, b| a.1.path.cmp(&b.1.path));
            let mut order: Vec<u32> = (0..assembly.inputs.len() as u32).collect();
            order.sort_by(|&a, &b| {
                assembly.inputs[a as usize]
                    .0
                    .cmp(&assembly.inputs[b as usize].0)
            });
            let mut renumber = vec![0; order.len()];
            for (new, &old) in order.iter().enumerate() {
                renumber[old as usize] = new as u32;
            }
            let mut taken = std::mem::take(&mut assembly.inputs);
            let inputs = order
                .iter()
                .map(|&old| std::mem::take(&mut taken[old as usize]))
                .collect();
            let mut keyed = Vec::with_capacity(results.len());
            let mut kept = Vec::with_capacity(results.len());
            for (key, result, uses) in results {
                let mut uses: Vec<u32> = uses.iter().map(|&u| renumber[u as usize]).collect();
                uses.sort_unstable();
                uses.dedup();
                keyed.push((key, uses));
                kept.push(result);
            }
            let keys = assembly.keys;
            let record = RunRecord {
                keys,
                inputs,
                results: kept,
            };
            let index = RunIndex {
                keys,
                results: keyed,
            };
            (assembly.slot, record, index)
        };
        let cache = ctx.cache.clone();
        let kept =
            tokio::task::spawn_blocking(move || cache.put_run_record(&slot, &record, &index)).await;
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

/// Sends what the cache holds for these inputs as results; returns the inputs still to check
/// and the keys their results are to be kept under. A `changed` (`--changed`) run's record has
/// a slot of its own.
///
/// The record of the validator's last complete run answers first: whole when nothing changed,
/// else for each file whose key and inputs are unchanged. Only the other files are looked up
/// one by one.
pub async fn serve(
    index: usize,
    validator: &PlannedValidator,
    manifest: &Manifest,
    inputs: Vec<FileInput>,
    changed: bool,
    ctx: &Context,
) -> (Vec<FileInput>, Option<Arc<ResultKeys>>) {
    if ctx.fix || !ctx.cache.enabled() {
        return (inputs, None);
    }
    let base = KeyInputs::new(manifest, &validator.settings.settings_json());
    let config_files = ConfigFiles::new(&manifest.config_files, ctx.probes.clone());
    let all_or_nothing = manifest.scope != Scope::PerFile;
    let slot = cache::key::run_slot(&base, &ctx.root, changed);
    // The record is read while the keys are computed: neither needs the other.
    let record = {
        let cache = ctx.cache.clone();
        tokio::task::spawn_blocking(move || cache.run_record(&slot))
    };
    let root = ctx.root.clone();
    let cache = ctx.cache.clone();
    let keys = tokio::task::spawn_blocking(move || {
        let keys = keys_of(&base, config_files, &root, &inputs, all_or_nothing);
        (inputs, keys)
    });
    let Ok((inputs, keys)) = keys.await else {
        return (Vec::new(), None);
    };
    let digest = cache::keys_digest(&keys);
    let record = record.await.ok().flatten();
    let mut part = match Recorded::of(record, &slot, &keys, &digest, !all_or_nothing, ctx).await {
        Recorded::Whole(head) => {
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
                let cache = ctx.cache.clone();
                let read = tokio::task::spawn_blocking(move || cache.run_results(&slot, &head));
                read.await.ok().flatten().map(Answer::Read)
            };
            // A body gone since its head was read (another run replaced the record) leaves
            // the per-file path.
            match answer {
                Some(results) => {
                    tracing::debug!(
                        validator = %validator.name,
                        unread,
                        "{served} results from the record of its last complete run",
                    );
                    ctx.cache.served(served as u64);
                    let unread = match results {
                        Answer::Read(results) => {
                            tell_cached(index, results, ctx).await;
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
                    return (Vec::new(), None);
                }
                None => Part::default(),
            }
        }
        Recorded::Part(part) => part,
        Recorded::Nothing => Part::default(),
    };
    part.results.resize_with(keys.len(), || None);
    let served = part.results.iter().filter(|r| r.is_some()).count();
    let asked: Vec<Key> = keys
        .iter()
        .zip(&part.results)
        .filter(|(_, r)| r.is_none())
        .map(|(k, _)| *k)
        .collect();
    let lookup = tokio::task::spawn_blocking(move || {
        let found = cache.get(&asked);
        (inputs, keys, found)
    });
    let Ok((inputs, keys, found)) = lookup.await else {
        return (Vec::new(), None);
    };
    let mut found = found.into_iter();
    let mut found: Vec<Option<Entry>> = part
        .results
        .iter()
        .map(|r| {
            if r.is_some() {
                None
            } else {
                found.next().flatten()
            }
        })
        .collect();
    let (stale, states) = still_true(&keys, &mut found, ctx).await;
    let complete = found
        .iter()
        .zip(&part.results)
        .all(|(f, r)| f.is_some() || r.is_some());
    if all_or_nothing && !complete {
        found = vec![None; keys.len()];
    }
    ctx.cache.rejected(stale);
    ctx.cache.served(served as u64);
    if served > 0 {
        tracing::debug!(
            validator = %validator.name,
            "{served} results from the record of its last complete run, {} looked up one by one",
            keys.len() - served
        );
    }
    let expected = inputs.len();
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    let mut by_path = HashMap::new();
    let mut cached = Vec::new();
    for (((input, key), entry), kept) in inputs.into_iter().zip(keys).zip(found).zip(&part.results)
    {
        match (entry, kept) {
            (_, Some((_, result, _))) => hits.push(result.clone()),
            (Some(entry), None) => {
                hits.push(entry.result.clone());
                cached.push((key, entry));
            }
            (None, None) => {
                by_path.insert(input.path.clone(), key);
                misses.push(input);
            }
        }
    }
    let keys = ResultKeys {
        validator: index,
        by_path,
        all_or_nothing,
        record: Mutex::new(Assembly::new(slot, digest, expected)),
    };
    keys.record_recorded(part);
    keys.record_cached(
        cached.iter().map(|(key, entry)| {
            let listed = entry
                .inputs
                .as_ref()
                .map_or_else(Vec::new, |i| i.list.paths().collect());
            (*key, entry.result.clone(), listed)
        }),
        &states,
    );
    tell_cached(index, hits, ctx).await;
    if misses.is_empty() {
        keys.finish(ctx).await;
    }
    (misses, Some(Arc::new(keys)))
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
    Read(Vec<FileResult>),
    Unread(Box<Unread>),
}

/// The results a record answers when some files changed.
#[derive(Default)]
struct Part {
    /// The record's inputs, and their states now.
    table: Vec<String>,
    now: Vec<Option<Hash>>,
    /// Per file in this run's order: its key, the recorded result and the positions in `table`
    /// of the inputs it listed, where its key is unchanged and none of those inputs changed.
    results: Vec<Option<(Key, FileResult, Vec<u32>)>>,
}

impl Recorded {
    /// What `record`, read from `slot`, answers; its index is read when the record does not
    /// answer whole and `in_part` (a `project` validator's results hold only all together).
    /// A result is kept only while every artifact it names exists and, under
    /// `--update-baselines`, it has no finding.
    async fn of(
        head: Option<RecordHead>,
        slot: &Key,
        keys: &[Key],
        digest: &Hash,
        in_part: bool,
        ctx: &Context,
    ) -> Recorded {
        let Some(head) = head else {
            return Recorded::Nothing;
        };
        let slot = *slot;
        let paths: Vec<String> = head.inputs.iter().map(|(p, _)| p.clone()).collect();
        let now = if paths.is_empty() {
            Vec::new()
        } else {
            ctx.hashes.of(paths).await
        };
        let changed: Vec<bool> = head
            .inputs
            .iter()
            .zip(&now)
            .map(|((_, then), (_, now))| now.as_ref().ok() != then.as_ref())
            .collect();
        let artifacts_there = head.artifacts.iter().all(|a| artifact_exists(&ctx.root, a));
        if head.keys == *digest
            && !changed.contains(&true)
            && artifacts_there
            && (!ctx.update_baselines || head.findings == 0)
        {
            return Recorded::Whole(head);
        }
        if !in_part {
            return Recorded::Nothing;
        }
        let holds = |r: &FileResult| {
            artifacts_exist(r, &ctx.root) && (!ctx.update_baselines || r.findings.is_empty())
        };
        let cache = ctx.cache.clone();
        let recorded_keys = head.keys;
        let Ok(Some((head, results, index))) = tokio::task::spawn_blocking(move || {
            let index = cache.run_index(&slot, &recorded_keys)?;
            let results = cache.run_results(&slot, &head)?;
            Some((head, results, index))
        })
        .await
        else {
            return Recorded::Nothing;
        };
        if index.results.len() != results.len() {
            return Recorded::Nothing;
        }
        let by_key: HashMap<&Key, usize> = index
            .results
            .iter()
            .enumerate()
            .map(|(i, (key, _))| (key, i))
            .collect();
        // Each result moves to the one file whose key is its own: on ten copies of Django the
        // results hold 270,000 findings, and every copy of them counts.
        let mut results: Vec<Option<FileResult>> = results.into_iter().map(Some).collect();
        let results = keys
            .iter()
            .map(|key| {
                let &i = by_key.get(key)?;
                let uses = &index.results[i].1;
                let unchanged = uses
                    .iter()
                    .all(|&u| changed.get(u as usize) == Some(&false));
                let result = results[i].take_if(|r| unchanged && holds(r))?;
                Some((*key, result, uses.clone()))
            })
            .collect();
        Recorded::Part(Part {
            table: head.inputs.into_iter().map(|(path, _)| path).collect(),
            now: now.into_iter().map(|(_, hash)| hash.ok()).collect(),
            results,
        })
    }
}

/// Sends results the cache answered.
async fn tell_cached(index: usize, results: Vec<FileResult>, ctx: &Context) {
    if results.is_empty() {
        return;
    }
    let cached = true;
    ctx.tell(Event::Results {
        index,
        results,
        cached,
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
    let mut lists: HashMap<Hash, &InputList> = HashMap::new();
    for inputs in found.iter().flatten().filter_map(|e| e.inputs.as_ref()) {
        lists.entry(inputs.list.id()).or_insert(&inputs.list);
    }
    let paths: HashSet<&str> = lists.values().flat_map(|l| l.paths()).collect();
    let paths: Vec<String> = paths.into_iter().map(str::to_owned).collect();
    let now: States = if paths.is_empty() {
        HashMap::new()
    } else {
        let hashed = ctx.hashes.of(paths).await;
        hashed.into_iter().map(|(p, h)| (p, h.ok())).collect()
    };
    let digests: HashMap<Hash, Hash> = lists
        .into_iter()
        .map(|(id, list)| {
            let state = |p: &str| now.get(p).and_then(Option::as_ref);
            (id, cache::digest(list.paths(), state))
        })
        .collect();
    let holds = |result: &FileResult| {
        artifacts_exist(result, &ctx.root) && (!ctx.update_baselines || result.findings.is_empty())
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
        } else if !holds(&entry.result) {
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
                    && holds(&v.result)
            };
            match variant.filter(fits) {
                Some(variant) => found[at] = Some(variant),
                None => dropped += 1,
            }
        }
    }
    (dropped, now)
}

/// Whether every artifact a result's findings point to is still on disk.
fn artifacts_exist(result: &FileResult, root: &Path) -> bool {
    result
        .findings
        .iter()
        .flat_map(|f| &f.artifacts)
        .all(|a| artifact_exists(root, &a.path))
}

/// An artifact's path is relative to the root when under it, else absolute.
fn artifact_exists(root: &Path, path: &str) -> bool {
    root.join(path).is_file()
}
