//! The cache policy of a validator's run: which of its files the cache answers, and under
//! which keys the others' results are to be kept.
//!
//! A `per_file` validator's results are kept as they arrive, so files finished before a crash
//! are not checked again; a `project` validator's only when its whole run completed, since a
//! partial project answer may be wrong, and served only when every file hits, since each
//! file's key covers every input.

use super::Context;
use crate::cache::{self, ConfigFiles, Key, KeyInputs, Subject};
use crate::event::Event;
use crate::plan::PlannedValidator;
use protocol::{FileInput, Manifest, Scope};
use std::collections::HashMap;
use std::sync::Arc;

/// Where the results of the files sent to a validator are to be kept.
#[derive(Debug)]
pub struct ResultKeys {
    pub by_path: HashMap<String, Key>,
    /// `project` scope: keep results only once the whole run is done.
    pub all_or_nothing: bool,
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
    let root = ctx.root.clone();
    let cache = ctx.cache.clone();
    let unserved = inputs.clone();
    let lookup = tokio::task::spawn_blocking(move || {
        let mut config_files = ConfigFiles::new(&declared);
        let keys: Vec<Key> = if all_or_nothing {
            let all = cache::key::project_inputs(&inputs);
            let config = config_files.for_project(&root, inputs.iter().map(|f| f.path.as_str()));
            inputs
                .iter()
                .map(|f| {
                    let subject = Subject::ProjectFile {
                        inputs: &all,
                        path: &f.path,
                    };
                    cache::key::key(&base, &config, subject)
                })
                .collect()
        } else {
            inputs
                .iter()
                .map(|f| {
                    let config = config_files.for_file(&root, &f.path);
                    let subject = Subject::File {
                        path: &f.path,
                        content: &f.content_hash,
                    };
                    cache::key::key(&base, &config, subject)
                })
                .collect()
        };
        let mut found = cache.get(&keys);
        if all_or_nothing && found.iter().any(Option::is_none) {
            found = vec![None; keys.len()];
        }
        let mut hits = Vec::new();
        let mut misses = Vec::new();
        let mut by_path = HashMap::new();
        for ((input, key), result) in inputs.into_iter().zip(keys).zip(found) {
            match result {
                Some(result) => hits.push(result),
                None => {
                    by_path.insert(input.path.clone(), key);
                    misses.push(input);
                }
            }
        }
        (hits, misses, by_path)
    });
    let Ok((hits, misses, by_path)) = lookup.await else {
        return (unserved, None);
    };
    for result in hits {
        let event = Event::FileResult {
            index,
            result,
            cached: true,
        };
        ctx.tell(event).await;
    }
    let keys = ResultKeys {
        by_path,
        all_or_nothing,
    };
    (misses, Some(Arc::new(keys)))
}
