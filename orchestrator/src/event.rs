//! What an executor tells the dispatcher while a validator runs. The dispatcher folds these
//! into the report and the progress line draws them; neither needs anything else from an
//! executor.

use crate::cache::{KeptResult, Key, RecordHead};
use crate::digest::Hash;
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
        origin: Origin,
    },
    /// Results a run record answered while the last rendered findings may hold theirs
    /// ([`crate::splice`]): as kept, decoded only if the report needs their findings after
    /// all. `body` is the digest of the record's body ([`RecordHead::body`]).
    Served {
        index: usize,
        body: Hash,
        results: Vec<KeptResult>,
    },
    /// Every result of the validator's run is a result of its run record, whose body has the
    /// digest `body` ([`RecordHead::body`]): what the report's findings were made of, for the
    /// next run to reuse them ([`crate::rendered`]). Sent before `Finished`, after the results
    /// when they were sent; `unread` instead of them when they were left unread, because the
    /// last rendered findings already hold them.
    Recorded {
        index: usize,
        body: Hash,
        unread: Option<Box<Unread>>,
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

/// Where results come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The validator checked the files.
    Validator,
    /// The cache: its entries for the files, or a run record.
    Cache,
}

/// Results a run record answered and nobody read: their head, and where their body is should
/// the report need them after all.
#[derive(Debug)]
pub struct Unread {
    pub slot: Key,
    pub head: RecordHead,
}
