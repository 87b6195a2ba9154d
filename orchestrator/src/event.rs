//! What an executor tells the dispatcher while a validator runs. The dispatcher folds these
//! into the report and the progress line draws them; neither needs anything else from an
//! executor.

use crate::verdict::Outcome;
use protocol::{FileResult, Manifest};

/// One thing that happened in one validator's run; `index` is its place in the plan.
#[derive(Debug)]
pub enum Event {
    /// The validator answered its handshake and will check `files` files; with `--changed`,
    /// `dependents` of them are there because their cached results listed a changed file as an
    /// input.
    Started {
        index: usize,
        manifest: Manifest,
        files: u32,
        dependents: Option<u32>,
    },
    /// Files' findings arrived, from the validator (one at a time) or from the cache (all it
    /// answered at once: one event, not thousands, for a run that checks nothing).
    Results {
        index: usize,
        results: Vec<FileResult>,
        cached: bool,
    },
    /// The validator's own count of files done (a `project` validator sends no results until
    /// the end, so this is how its progress shows).
    Progress { index: usize, done: u32, total: u32 },
    /// Files that could not be read and were not sent.
    Unreadable { index: usize, warnings: Vec<String> },
    /// The validator's run is over. An executor's last event; one whose task dies without
    /// sending it is judged by the dispatcher.
    Finished { index: usize, outcome: Outcome },
}
