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
use crate::cache::{self, ConfigFiles, Entry, InputList, Key, KeyInputs, RunRecord, Subject};
use crate::digest::Hash;
use crate::event::Event;
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
    pub by_path: HashMap<String, Key>,
    /// `project` scope: keep results only once the whole run is done.
    pub all_or_nothing: bool,
    /// The run's [`RunRecord`], filled as results are served and kept.
    record: Mutex<Assembly>,
}

/// A [`RunRecord`] being put together.
#[derive(Debug)]
struct Assembly {
    slot: Key,
    keys: Hash,
    /// How many results make the run complete.
    expected: usize,
    results: Vec<FileResult>,
    inputs: States,
    /// An input was seen in two states (it changed during the run): no record is written.
    spoiled: bool,
}

impl ResultKeys {
    /// Adds results to the run's record, `state` giving the hash each of their inputs had
    /// when it was kept. The results' input lists are taken.
    pub fn record<'a>(
        &self,
        results: impl IntoIterator<Item = FileResult>,
        state: impl Fn(&str) -> Option<&'a Hash>,
    ) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for mut result in results {
            for path in std::mem::take(&mut result.inputs) {
                let now = state(&path).copied();
                let seen = record.inputs.entry(path).or_insert(now);
                record.spoiled |= *seen != now;
            }
            record.results.push(result);
        }
    }

    /// Adds the inputs the lists of cached results name, in the state they were found in.
    fn record_inputs(&self, lists: &[Arc<InputList>], states: &States) {
        let mut record = self
            .record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut seen = HashSet::new();
        for list in lists.iter().filter(|l| seen.insert(l.id())) {
            for path in list.paths() {
                if !record.inputs.contains_key(path) {
                    let now = states.get(path).copied().flatten();
                    record.inputs.insert(path.to_owned(), now);
                }
            }
        }
    }

    /// Keeps the run's record once every file has its result; called when a run completed.
    pub async fn finish(&self, ctx: &Context) {
        let record = {
            let mut assembly = self
                .record
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if assembly.spoiled || assembly.results.len() != assembly.expected {
                return;
            }
            let mut results = std::mem::take(&mut assembly.results);
            results.sort_by(|a, b| a.path.cmp(&b.path));
            let mut inputs: Vec<_> = std::mem::take(&mut assembly.inputs).into_iter().collect();
            inputs.sort_unstable();
            let record = RunRecord {
                keys: assembly.keys,
                inputs,
                results,
            };
            (assembly.slot, record)
        };
        let cache = ctx.cache.clone();
        let _ =
            tokio::task::spawn_blocking(move || cache.put_run_record(&record.0, &record.1)).await;
    }
}

/// Sends what the cache holds for these inputs as results; returns the inputs still to check
/// and the keys their results are to be kept under.
pub async fn serve(
    index: usize,
    validator: &PlannedValidator,
    manifest: &Manifest,
    inputs: Vec<FileInput>,
    ctx: &Context,
) -> (Vec<FileInput>, Option<Arc<ResultKeys>>) {
    if ctx.fix || !ctx.cache.enabled() {
        return (inputs, None);
    }
    let base = KeyInputs::new(manifest, &validator.settings.settings_json());
    let declared = manifest.config_files.clone();
    let all_or_nothing = manifest.scope != Scope::PerFile;
    let slot = cache::key::run_slot(&base, &ctx.root, ctx.universe.is_some());
    let root = ctx.root.clone();
    let cache = ctx.cache.clone();
    let keys = tokio::task::spawn_blocking(move || {
        let keys = keys_of(&base, &declared, &root, &inputs, all_or_nothing);
        (inputs, keys)
    });
    let Ok((inputs, keys)) = keys.await else {
        return (Vec::new(), None);
    };
    let digest = cache::keys_digest(&keys);
    if let Some(results) = from_record(&slot, &digest, ctx).await {
        tracing::debug!(
            validator = %validator.name,
            "{} results from the record of its last complete run",
            results.len()
        );
        ctx.cache.served(results.len() as u64);
        tell_cached(index, results, ctx).await;
        return (Vec::new(), None);
    }
    let lookup = tokio::task::spawn_blocking(move || {
        let found = cache.get(&keys);
        (inputs, keys, found)
    });
    let Ok((inputs, keys, mut found)) = lookup.await else {
        return (Vec::new(), None);
    };
    let (stale, states) = still_true(&mut found, ctx).await;
    if all_or_nothing && found.iter().any(Option::is_none) {
        found = vec![None; keys.len()];
    }
    ctx.cache.rejected(stale);
    let expected = inputs.len();
    let mut hits = Vec::new();
    let mut misses = Vec::new();
    let mut by_path = HashMap::new();
    let mut listed = Vec::new();
    for ((input, key), entry) in inputs.into_iter().zip(keys).zip(found) {
        match entry {
            Some(entry) => {
                if let Some(inputs) = entry.inputs {
                    listed.push(inputs.list);
                }
                hits.push(entry.result);
            }
            None => {
                by_path.insert(input.path.clone(), key);
                misses.push(input);
            }
        }
    }
    let keys = ResultKeys {
        by_path,
        all_or_nothing,
        record: Mutex::new(Assembly {
            slot,
            keys: digest,
            expected,
            results: Vec::new(),
            inputs: HashMap::new(),
            spoiled: false,
        }),
    };
    keys.record(hits.iter().cloned(), |_| None);
    keys.record_inputs(&listed, &states);
    tell_cached(index, hits, ctx).await;
    if misses.is_empty() {
        keys.finish(ctx).await;
    }
    (misses, Some(Arc::new(keys)))
}

/// The results of the run record in `slot`, if it is of a run with these keys and is still
/// true: each of its inputs in the state it recorded, each artifact still on disk, and no
/// baseline to write.
async fn from_record(slot: &Key, keys: &Hash, ctx: &Context) -> Option<Vec<FileResult>> {
    let (cache, slot) = (ctx.cache.clone(), *slot);
    let record = tokio::task::spawn_blocking(move || cache.run_record(&slot))
        .await
        .ok()??;
    if record.keys != *keys {
        return None;
    }
    let paths: Vec<String> = record.inputs.iter().map(|(p, _)| p.clone()).collect();
    if !paths.is_empty() {
        let now = ctx.hashes.of(paths).await;
        let same = record
            .inputs
            .iter()
            .zip(&now)
            .all(|((_, then), (_, now))| now.as_ref().ok() == then.as_ref());
        if !same {
            return None;
        }
    }
    let keep = record
        .results
        .iter()
        .all(|r| artifacts_exist(r, &ctx.root) && (!ctx.update_baselines || r.findings.is_empty()));
    keep.then_some(record.results)
}

/// Sends results the cache answered.
async fn tell_cached(index: usize, results: Vec<FileResult>, ctx: &Context) {
    for result in results {
        let event = Event::FileResult {
            index,
            result,
            cached: true,
        };
        ctx.tell(event).await;
    }
}

/// The keys of `inputs`' results, in order.
fn keys_of(
    base: &KeyInputs,
    declared: &[String],
    root: &Path,
    inputs: &[FileInput],
    all_or_nothing: bool,
) -> Vec<Key> {
    let mut config_files = ConfigFiles::new(declared);
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
    let declared = manifest.config_files.clone();
    let (root, cache) = (ctx.root.clone(), ctx.cache.clone());
    let lookup = tokio::task::spawn_blocking(move || {
        let keys = keys_of(&base, &declared, &root, &others, false);
        let found = cache.peek(&keys);
        (others, found)
    });
    let Ok((others, mut found)) = lookup.await else {
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
    still_true(&mut found, ctx).await;
    others
        .into_iter()
        .zip(listed)
        .zip(found)
        .filter(|((_, listed), now)| *listed && now.is_none())
        .map(|((file, _), _)| file)
        .collect()
}

/// Drops the hits that are no longer true (an input changed, an artifact is gone, or a baseline
/// may need writing); returns how many were dropped, and the state of every input listed.
///
/// Every file any list names is hashed once, and each distinct list's digest computed once.
async fn still_true(found: &mut [Option<Entry>], ctx: &Context) -> (u64, States) {
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
    let mut dropped = 0;
    for slot in found.iter_mut() {
        let Some(entry) = slot else { continue };
        let inputs_same = entry
            .inputs
            .as_ref()
            .is_none_or(|i| digests.get(&i.list.id()) == Some(&i.digest));
        let keep = inputs_same
            && artifacts_exist(&entry.result, &ctx.root)
            && (!ctx.update_baselines || entry.result.findings.is_empty());
        if !keep {
            *slot = None;
            dropped += 1;
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
        .all(|a| root.join(&a.path).is_file())
}
