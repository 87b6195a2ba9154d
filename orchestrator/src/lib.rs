//! The coordinator: it finds validators, runs them under supervision, and reports.
//!
//! A run flows one way: [`cli`] parses arguments; [`plan`] resolves them with [`config`],
//! [`discovery`] and [`select`] into a validated plan; the [`dispatcher`] starts one
//! [`executor`] per validator and folds their events into a [`report`]; each executor drives
//! validator processes through [`session`], under the process-tree control of [`process`].
//! `docs/architecture.md` tells the same story at length.

pub mod below;
pub mod breaker;
pub mod cache;
pub mod cli;
pub mod config;
pub mod digest;
pub mod discovery;
pub mod dispatcher;
pub mod doctor;
pub mod event;
pub mod executor;
pub mod globs;
pub mod hashing;
pub mod history;
pub mod hold;
pub mod hook;
pub mod init;
pub mod interrupt;
pub mod kept;
pub mod list;
pub mod listing;
pub mod locks;
pub mod parallel;
pub mod plan;
pub mod priority;
pub mod process;
pub mod progress;
pub mod rendered;
pub mod report;
pub mod retry;
pub mod schedule;
pub mod select;
pub mod selected;
pub mod session;
pub mod shard;
pub mod splice;
pub mod staged;
pub mod tools;
pub mod tracked;
pub mod verdict;
pub mod watchdog;
pub mod worktree;

use std::time::Duration;

/// A duration as people write it in configuration: `2s`, `1.5s`, `250ms`.
pub fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The tokio runtime every command uses.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime can be built")
}
