//! `orchestrator history`, `history verify` and `stats`, and what `run` does with the history:
//! record the run, and raise its `[alerts]`.

use super::alerts::Alerts;
use super::{ledger, stats, History, Recorded, Summary, Window};
use crate::report::Report;
use protocol::exit;
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;

/// How `history` and `stats` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    /// OpenMetrics text, for Prometheus (`stats` only).
    Openmetrics,
}

/// The alerts a finished run raises against the history of the cache directory `dir`: warnings
/// for its report, which must hold them before it is written. Without `[alerts]` the history is
/// not read.
pub fn alerts(dir: &Path, report: &Report, alerts: &Alerts) -> Vec<String> {
    if !alerts.any() {
        return Vec::new();
    }
    // No history yet (or none that can be opened, which recording the run warns of) is no
    // earlier run: the alerts that need none still apply.
    let earlier = match History::open_to_read(dir).map(|h| h.window(Window::Runs(alerts.window), 0))
    {
        Err(_) => Vec::new(),
        Ok(Ok(earlier)) => earlier.into_iter().map(|r| r.summary).collect(),
        Ok(Err(e)) => {
            eprintln!("warning: alerts not checked: cannot read the history: {e}");
            return Vec::new();
        }
    };
    alerts.check(&earlier, &Summary::unhashed(report, super::now_secs()))
}

/// Records a finished run in the history of the cache directory `dir`. A history that cannot
/// be used costs one warning, never the run. `run` calls it on a thread of its own while the
/// report is written: hashing tens of thousands of findings need not wait for that, nor it for
/// the hash.
pub fn record(dir: &Path, report: &Report) {
    if let Some(mut history) = open_to_record(dir) {
        write(&mut history, &Summary::of(report, super::now_secs()));
    }
}

fn open_to_record(dir: &Path) -> Option<History> {
    match History::open(dir) {
        Ok(history) => Some(history),
        // One warning per unusable directory: the cache's (under --no-cache, none).
        Err(e) if e.no_directory => {
            tracing::info!("the run is not recorded in the history: {e}");
            None
        }
        Err(e) => {
            eprintln!("warning: the run is not recorded in the history: {e}");
            None
        }
    }
}

fn write(history: &mut History, summary: &Summary) {
    if let Err(e) = history.record(summary) {
        eprintln!("warning: the run is not recorded in the history: {e}");
    }
}

fn open(dir: &Path) -> Result<History, u8> {
    History::open(dir).map_err(|e| {
        eprintln!("error: cannot read the history: {e}");
        exit::USAGE
    })
}

/// `history`: the newest `limit` runs, newest first.
pub fn list(dir: &Path, limit: u32, format: Format) -> u8 {
    let history = match open(dir) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let mut runs = match history.window(Window::Runs(limit), 0) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("error: cannot read the history: {e}");
            return exit::USAGE;
        }
    };
    runs.reverse();
    let text = match format {
        Format::Json => {
            #[derive(Serialize)]
            struct Entry<'a> {
                id: i64,
                hash: String,
                #[serde(flatten)]
                summary: &'a Summary,
            }
            let entries: Vec<Entry> = runs
                .iter()
                .map(|r| Entry {
                    id: r.id,
                    hash: hex(&r.hash),
                    summary: &r.summary,
                })
                .collect();
            let mut text = serde_json::to_string_pretty(&entries).expect("entries serialise");
            text.push('\n');
            text
        }
        Format::Human => human(&runs),
        Format::Openmetrics => {
            eprintln!("error: `history` prints human or json; OpenMetrics is for `stats`");
            return exit::USAGE;
        }
    };
    print!("{text}");
    exit::CLEAN
}

fn human(runs: &[Recorded]) -> String {
    if runs.is_empty() {
        return "no run recorded yet\n".to_owned();
    }
    let mut out = format!(
        "{:>5}  {:<19}  {:<10}  {:>9}  validators\n",
        "run", "ended (UTC)", "status", "duration"
    );
    for run in runs {
        let s = &run.summary;
        let validators: Vec<String> = s
            .validators
            .iter()
            .map(|v| {
                format!(
                    "{} {} {:.2}s",
                    v.name,
                    v.status,
                    v.duration_ms as f64 / 1000.0
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "{:>5}  {:<19}  {:<10}  {:>8.2}s  {}",
            run.id,
            when(s.ended),
            s.status,
            s.duration_ms as f64 / 1000.0,
            validators.join(", ")
        );
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS`, UTC.
fn when(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
    )
}

fn hex(hash: &crate::digest::Hash) -> String {
    blake3::Hash::from(*hash).to_hex().to_string()
}

/// `history verify`: checks the chain, and that it holds the `pinned` hash when one is given;
/// exit 1, naming the first bad entry, when it does not hold.
pub fn verify(dir: &Path, pinned: Option<&str>) -> u8 {
    let history = match open(dir) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let rows = match history.rows(None) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: cannot read the history: {e}");
            return exit::USAGE;
        }
    };
    let head = match ledger::verify(&rows) {
        Ok(head) => head,
        Err(broken) => {
            eprintln!("error: the history was tampered with: {broken}");
            return exit::FINDINGS;
        }
    };
    if let Some(pinned) = pinned {
        let pinned = pinned.trim().to_ascii_lowercase();
        match rows.iter().find(|r| hex(&r.hash) == pinned) {
            Some(row) => println!("the pinned hash is entry {}'s", row.id),
            None => {
                eprintln!(
                    "error: the history does not hold the pinned hash {pinned}: the entries up \
                     to it were rewritten or removed"
                );
                return exit::FINDINGS;
            }
        }
    }
    match head {
        None => println!("no run recorded yet"),
        Some(head) => println!(
            "{} runs, chain intact; newest hash {} (keep it elsewhere, and check it later with \
             --pinned)",
            rows.len(),
            hex(&head)
        ),
    }
    exit::CLEAN
}

/// `stats`: per validator figures over a window.
pub fn stats(dir: &Path, window: Window, format: Format) -> u8 {
    let history = match open(dir) {
        Ok(history) => history,
        Err(code) => return code,
    };
    let runs = match history.window(window, super::now_secs()) {
        Ok(runs) => runs,
        Err(e) => {
            eprintln!("error: cannot read the history: {e}");
            return exit::USAGE;
        }
    };
    let figures = stats::of(runs.iter().map(|r| &r.summary));
    let text = match format {
        Format::Human => stats::human(&figures, runs.len()),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&figures).expect("stats serialise");
            text.push('\n');
            text
        }
        Format::Openmetrics => stats::openmetrics(&figures),
    };
    print!("{text}");
    exit::CLEAN
}
