//! Every run, recorded: each validator's duration, status, attempts, cache use and finding
//! count, for `orchestrator history`, `orchestrator stats` ([`stats`]) and `[alerts]`
//! ([`alerts`]), chained into a tamper-evident ledger ([`ledger`]).
//!
//! The history is a database of its own, `history.sqlite3` beside the cache's: a cache may
//! always be emptied or rebuilt (`cache clear`, a new schema), a record of past runs may not.
//! Like the cache it never fails a run: an error is one warning line and a run not recorded.

pub mod alerts;
pub mod commands;
pub mod ledger;
pub mod stats;

use crate::digest::Hash;
use crate::report::{Report, ReportFinding};
use rusqlite::config::DbConfig;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database file's name, in the cache directory.
pub const FILE_NAME: &str = "history.sqlite3";

/// Bumped when the table or the summary's encoding changes; an older history is refused rather
/// than rebuilt, since rebuilding would lose it.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    summary BLOB NOT NULL,
    prev BLOB NOT NULL,
    hash BLOB NOT NULL
);
";

/// The pages of write-ahead log (4 KiB each) past which a run copies the log into the
/// database and empties it; a run adds one or two. Each run's first connection reads the log
/// back, which a log this short makes cheap.
const CHECKPOINT_PAGES: u64 = 32;

/// The bytes a write-ahead log frame adds to its page.
const WAL_FRAME_HEADER: u64 = 24;

/// How long a run waits for another run's write.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

impl HistoryError {
    fn at(path: &Path, detail: impl std::fmt::Display) -> HistoryError {
        HistoryError {
            location: path.display().to_string(),
            detail: detail.to_string(),
            no_directory: false,
        }
    }
}

/// A failure of the history database, naming it.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {detail}")]
pub struct HistoryError {
    location: String,
    detail: String,
    /// The cache directory itself cannot be made, which the cache has already warned about.
    pub no_directory: bool,
}

/// What is kept of one run. Its encoding ([`Summary::encode`]) is what the ledger hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// When the run ended, in seconds since the Unix epoch.
    pub ended: i64,
    pub root: String,
    /// The run's status as the JSON report gives it.
    pub status: String,
    pub duration_ms: u64,
    /// [`report_hash`] of the run's report, in hex.
    pub report: String,
    pub validators: Vec<ValidatorRun>,
}

/// One validator's part in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidatorRun {
    pub name: String,
    pub status: String,
    pub duration_ms: u64,
    pub attempts: u32,
    pub files: u32,
    pub cached_files: u32,
    pub findings: u32,
}

impl ValidatorRun {
    /// Whether it ran at all: a skipped validator has no duration worth counting.
    pub fn ran(&self) -> bool {
        self.status != "skipped"
    }
}

/// A run as the history holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Its place in the history: 1 for the first run recorded.
    pub id: i64,
    pub summary: Summary,
    /// Its ledger hash ([`ledger::link`]).
    pub hash: Hash,
}

impl Summary {
    /// The summary of a finished run's report.
    pub fn of(report: &Report, ended: i64) -> Summary {
        Summary {
            report: blake3::Hash::from(report_hash(report)).to_hex().to_string(),
            ..Summary::unhashed(report, ended)
        }
    }

    /// [`Summary::of`] without the report's hash, which alerts do not look at.
    pub fn unhashed(report: &Report, ended: i64) -> Summary {
        Summary {
            ended,
            root: report.root.display().to_string(),
            status: report.status().as_str().to_owned(),
            duration_ms: millis(report.elapsed),
            report: String::new(),
            validators: report
                .validators
                .iter()
                .map(|v| ValidatorRun {
                    name: v.name.clone(),
                    status: v.status.as_str().to_owned(),
                    duration_ms: millis(v.duration),
                    attempts: u32::try_from(v.attempts.len()).unwrap_or(u32::MAX),
                    files: v.files,
                    cached_files: v.cached_files,
                    findings: v.findings,
                })
                .collect(),
        }
    }

    /// JSON with the fields in their declared order: the same summary always gives the same
    /// bytes, and the stored bytes are what is hashed, never a re-encoding.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a summary always serialises")
    }

    pub fn decode(bytes: &[u8]) -> Option<Summary> {
        serde_json::from_slice(bytes).ok()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One hash of what a report says, timings aside: each validator's name, status and finding
/// count, and its findings' [`findings_hash`]. Two runs that reported the same thing have the
/// same hash.
pub fn report_hash(report: &Report) -> Hash {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 report contents");
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(report.status().as_str().as_bytes());
    for v in &report.validators {
        field(v.name.as_bytes());
        field(v.status.as_str().as_bytes());
        field(&v.findings.to_le_bytes());
    }
    field(&report.findings_hash());
    *h.finalize().as_bytes()
}

/// One hash of findings: each one's validator, path, position, rule, severity and message.
/// It is the sum of each finding's own hash ([`FindingsSum`]), so it does not depend on the
/// findings' order, and a report that changes a few of the findings kept from the last one
/// ([`crate::rendered`]) works it out from theirs alone.
pub fn findings_hash(findings: &[ReportFinding]) -> Hash {
    let mut sum = FindingsSum::default();
    for f in findings {
        sum.add(&FindingFields::of(f));
    }
    sum.digest()
}

/// What [`findings_hash`] hashes of one finding.
#[derive(Debug, Clone, Copy)]
pub struct FindingFields<'a> {
    pub validator: &'a str,
    pub path: &'a str,
    pub line: u32,
    pub column: u32,
    pub rule: &'a str,
    pub severity: &'a str,
    pub message: &'a str,
}

impl<'a> FindingFields<'a> {
    pub fn of(f: &'a ReportFinding) -> FindingFields<'a> {
        FindingFields::from(&f.validator, &f.finding)
    }

    pub fn from(validator: &'a str, f: &'a protocol::Finding) -> FindingFields<'a> {
        FindingFields {
            validator,
            path: &f.path,
            line: f.line,
            column: f.column,
            rule: &f.rule,
            severity: f.severity.as_str(),
            message: &f.message,
        }
    }

    /// The finding's own hash, as four little-endian lanes.
    fn lanes(&self) -> [u64; 4] {
        static KEYED: std::sync::OnceLock<blake3::Hasher> = std::sync::OnceLock::new();
        let mut h = KEYED
            .get_or_init(|| blake3::Hasher::new_derive_key("orchestrator 2026 report finding"))
            .clone();
        let mut field = |bytes: &[u8]| {
            h.update(&(bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(self.validator.as_bytes());
        field(self.path.as_bytes());
        field(&self.line.to_le_bytes());
        field(&self.column.to_le_bytes());
        field(self.rule.as_bytes());
        field(self.severity.as_bytes());
        field(self.message.as_bytes());
        let bytes = h.finalize();
        std::array::from_fn(|i| {
            let lane: [u8; 8] = bytes.as_bytes()[i * 8..i * 8 + 8]
                .try_into()
                .expect("a lane is 8 of 32 bytes");
            u64::from_le_bytes(lane)
        })
    }
}

/// A multiset of findings as the lane-wise sum (modulo 2^64) of their hashes: findings are
/// added and taken away in any order, and equal multisets have equal sums.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindingsSum([u64; 4]);

impl FindingsSum {
    pub fn add(&mut self, f: &FindingFields) {
        for (lane, x) in self.0.iter_mut().zip(f.lanes()) {
            *lane = lane.wrapping_add(x);
        }
    }

    pub fn remove(&mut self, f: &FindingFields) {
        for (lane, x) in self.0.iter_mut().zip(f.lanes()) {
            *lane = lane.wrapping_sub(x);
        }
    }

    /// The sum as [`findings_hash`] gives it.
    pub fn digest(&self) -> Hash {
        let mut bytes = [0; 32];
        for (at, lane) in bytes.chunks_exact_mut(8).zip(self.0) {
            at.copy_from_slice(&lane.to_le_bytes());
        }
        bytes
    }

    /// The sum whose [`FindingsSum::digest`] is `hash`.
    pub fn of_digest(hash: &Hash) -> FindingsSum {
        FindingsSum(std::array::from_fn(|i| {
            u64::from_le_bytes(hash[i * 8..i * 8 + 8].try_into().expect("8 bytes"))
        }))
    }
}

/// Which past runs a question is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last N runs.
    Runs(u32),
    /// The runs that ended in the last N days.
    Days(u32),
}

/// The history database of one cache directory.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    conn: Connection,
}

impl History {
    /// Opens (creating if needed) the history in the cache directory `dir`.
    pub fn open(dir: &Path) -> Result<History, HistoryError> {
        let path = dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| HistoryError::at(&path, e);
        std::fs::create_dir_all(dir).map_err(|e| HistoryError {
            no_directory: true,
            ..fail(&e)
        })?;
        let conn = Self::connect(&path).map_err(|e| fail(&e))?;
        let history = History { path, conn };
        history.migrate()?;
        Ok(history)
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Two runs opening a new history at once: SQLite may refuse one the switch to WAL at
        // once rather than wait.
        crate::cache::sqlite::retrying_while_busy(
            || conn.pragma_update(None, "journal_mode", "WAL"),
            crate::cache::sqlite::is_busy,
            BUSY_TIMEOUT,
        )?;
        // No flush to the disk per run: a power cut may lose the last runs, never the ledger's
        // consistency, and a flush per run cost the run's report, written meanwhile, its speed.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Nor a checkpoint per run: by default the last connection to close copies the
        // write-ahead log into the database and deletes it, and the next run's commit starts
        // a new log, four flushes at the end of every run. `record` empties the log once it
        // is long instead (`bound_log`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
        Ok(conn)
    }

    /// Opens an existing history only to read it: no journal mode set, nothing created or
    /// migrated, so that reading at the start of a run never contends with another run
    /// recording its end.
    pub fn open_to_read(dir: &Path) -> Result<History, HistoryError> {
        let path = dir.join(FILE_NAME);
        let fail = |e: &dyn std::fmt::Display| HistoryError::at(&path, e);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| fail(&e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| fail(&e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| fail(&e))?;
        if version != SCHEMA_VERSION {
            return Err(fail(&format!("a history of version {version}")));
        }
        Ok(History { path, conn })
    }

    fn err(&self, e: impl std::fmt::Display) -> HistoryError {
        HistoryError::at(&self.path, e)
    }

    fn migrate(&self) -> Result<(), HistoryError> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        match version {
            SCHEMA_VERSION => Ok(()),
            0 => {
                // Taking the write lock first: a read lock upgraded while another run creates
                // the table fails at once instead of waiting.
                let tx = rusqlite::Transaction::new_unchecked(
                    &self.conn,
                    rusqlite::TransactionBehavior::Immediate,
                )
                .map_err(|e| self.err(e))?;
                let again: i64 = tx
                    .pragma_query_value(None, "user_version", |r| r.get(0))
                    .map_err(|e| self.err(e))?;
                if again == 0 {
                    tx.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
                    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                        .map_err(|e| self.err(e))?;
                }
                tx.commit().map_err(|e| self.err(e))
            }
            other => Err(self.err(format!(
                "a history of version {other}, which this orchestrator (version \
                 {SCHEMA_VERSION}) cannot read; use the orchestrator that wrote it, or move \
                 the file away"
            ))),
        }
    }

    /// Appends a run, linked to the last one recorded.
    pub fn record(&mut self, summary: &Summary) -> Result<Recorded, HistoryError> {
        let bytes = summary.encode();
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| HistoryError::at(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(fail)?;
        let prev: Hash =
            match tx.query_row("SELECT hash FROM runs ORDER BY id DESC LIMIT 1", [], |r| {
                r.get::<_, Vec<u8>>(0)
            }) {
                Ok(bytes) => bytes.try_into().unwrap_or([0; 32]),
                Err(rusqlite::Error::QueryReturnedNoRows) => [0; 32],
                Err(e) => return Err(fail(e)),
            };
        let hash = ledger::link(&prev, &bytes);
        tx.execute(
            "INSERT INTO runs (summary, prev, hash) VALUES (?1, ?2, ?3)",
            params![bytes, &prev[..], &hash[..]],
        )
        .map_err(fail)?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(fail)?;
        self.bound_log();
        Ok(Recorded {
            id,
            summary: summary.clone(),
            hash,
        })
    }

    /// Copies the write-ahead log into the database and empties it once it is longer than
    /// `CHECKPOINT_PAGES`. SQLite's own automatic checkpoint would not do: each run's first
    /// connection rebuilds the log's index, forgetting what was already copied, so the log
    /// would only grow. A checkpoint that other runs' readers hold up is left to a later run.
    fn bound_log(&self) {
        let mut log = self.path.clone().into_os_string();
        log.push("-wal");
        let long = CHECKPOINT_PAGES * (4096 + WAL_FRAME_HEADER);
        if std::fs::metadata(&log).is_ok_and(|m| m.len() > long) {
            // A TRUNCATE checkpoint waits, through the busy handler, until no reader is behind
            // the log's end: a run reading the history at that moment (`orchestrator
            // history`, the start of another run) would hold this run's end for the whole busy
            // timeout. Without a handler it copies what it can at once, and leaves the rest.
            let checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)";
            let done = (self.conn.busy_timeout(Duration::ZERO))
                .and_then(|()| self.conn.query_row(checkpoint, [], |r| r.get::<_, i64>(0)));
            match done {
                Ok(0) => {}
                Ok(_) => tracing::debug!("{}: log not emptied: in use", self.path.display()),
                Err(e) => tracing::debug!("{}: log not emptied: {e}", self.path.display()),
            }
            if let Err(e) = self.conn.busy_timeout(BUSY_TIMEOUT) {
                tracing::debug!("{}: busy timeout not restored: {e}", self.path.display());
            }
        }
    }

    /// The runs of a window, oldest first; `now` is the time days are counted back from.
    pub fn window(&self, window: Window, now: i64) -> Result<Vec<Recorded>, HistoryError> {
        let rows = self.rows(match window {
            Window::Runs(n) => Some(i64::from(n)),
            Window::Days(_) => None,
        })?;
        let mut runs: Vec<Recorded> = rows
            .into_iter()
            .filter_map(|row| {
                Some(Recorded {
                    id: row.id,
                    summary: Summary::decode(&row.summary)?,
                    hash: row.hash,
                })
            })
            .collect();
        if let Window::Days(days) = window {
            let since = now - i64::from(days) * 86_400;
            runs.retain(|r| r.summary.ended >= since);
        }
        Ok(runs)
    }

    /// Every stored row as it is, oldest first (the newest `limit` only, when given).
    pub fn rows(&self, limit: Option<i64>) -> Result<Vec<ledger::Row>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, summary, prev, hash FROM (SELECT * FROM runs ORDER BY id DESC \
                 LIMIT ?1) ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![limit.unwrap_or(-1)], |r| {
                // Whatever was written there is read back as bytes, so that a tampered entry is
                // reported as such rather than as an unreadable history.
                let bytes = |i: usize| -> rusqlite::Result<Vec<u8>> {
                    Ok(match r.get_ref(i)? {
                        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
                        _ => Vec::new(),
                    })
                };
                let hash = |b: Vec<u8>| -> Hash { b.try_into().unwrap_or([0xff; 32]) };
                Ok(ledger::Row {
                    id: r.get(0)?,
                    summary: bytes(1)?,
                    prev: hash(bytes(2)?),
                    hash: hash(bytes(3)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_findings_hash_is_of_the_findings_in_any_order_and_is_updated_in_place() {
        use protocol::{Finding, Severity};
        let found = |validator: &str, path: &str, line: u32| ReportFinding {
            validator: validator.into(),
            finding: Finding::new(path, line, 1, "R1", Severity::Error, "m"),
        };
        let (a, b, c) = (
            found("lint", "a.py", 1),
            found("lint", "b.py", 2),
            found("types", "a.py", 1),
        );
        let all = findings_hash(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(all, findings_hash(&[c.clone(), a.clone(), b.clone()]));
        assert_ne!(all, findings_hash(&[a.clone(), b.clone()]));
        assert_ne!(
            all,
            findings_hash(&[a.clone(), b.clone(), c.clone(), c.clone()])
        );
        assert_ne!(
            findings_hash(std::slice::from_ref(&a)),
            findings_hash(std::slice::from_ref(&c)),
            "the validator counts"
        );
        let mut sum = FindingsSum::of_digest(&all);
        sum.remove(&FindingFields::of(&b));
        assert_eq!(sum.digest(), findings_hash(&[a.clone(), c.clone()]));
        sum.add(&FindingFields::of(&b));
        assert_eq!(sum.digest(), all);
    }

    pub(super) fn summary(ended: i64, validators: &[(&str, &str, u64)]) -> Summary {
        Summary {
            ended,
            root: "/repo".into(),
            status: "passed".into(),
            duration_ms: 10,
            report: "00".into(),
            validators: validators
                .iter()
                .map(|(name, status, ms)| ValidatorRun {
                    name: (*name).into(),
                    status: (*status).into(),
                    duration_ms: *ms,
                    attempts: 1,
                    files: 10,
                    cached_files: 5,
                    findings: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn runs_are_appended_linked_and_read_back_by_window() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut history = History::open(dir.path()).expect("open");
        let day = 86_400;
        let first = history
            .record(&summary(10 * day, &[("ruff", "passed", 5)]))
            .expect("record");
        let second = history
            .record(&summary(12 * day, &[("ruff", "failed", 7)]))
            .expect("record");
        assert_eq!((first.id, second.id), (1, 2));
        let rows = history.rows(None).expect("rows");
        assert_eq!(rows[1].prev, first.hash);
        assert_eq!(ledger::verify(&rows), Ok(Some(second.hash)));
        let last = history.window(Window::Runs(1), 0).expect("window");
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].summary.validators[0].status, "failed");
        let recent = history.window(Window::Days(1), 12 * day + 5).expect("days");
        assert_eq!(recent.len(), 1);
        drop(history);
        let reopened = History::open(dir.path()).expect("reopen");
        assert_eq!(reopened.window(Window::Runs(10), 0).expect("all").len(), 2);
    }

    #[test]
    fn runs_recorded_one_per_connection_are_not_checkpointed_on_close_yet_stay_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join(format!("{FILE_NAME}-wal"));
        let (mut largest, mut emptied) = (0, 0);
        let runs = 4 * CHECKPOINT_PAGES as usize;
        for n in 0..runs {
            let mut history = History::open(dir.path()).expect("open");
            history
                .record(&summary(n as i64, &[("ruff", "passed", 5)]))
                .expect("record");
            drop(history);
            // Closing left the log as it was rather than copying it into the database and
            // deleting it; only a run that found it long emptied it.
            let size = std::fs::metadata(&log).expect("the log is kept").len();
            emptied += usize::from(size == 0);
            largest = largest.max(size);
        }
        // One run's pages past the bound, and the log's own header.
        let bound = (CHECKPOINT_PAGES + 2) * (4096 + WAL_FRAME_HEADER) + 32;
        assert!(largest <= bound, "the log grew to {largest} bytes");
        assert!(
            (1..runs / 8).contains(&emptied),
            "the log was emptied {emptied} times in {runs} runs"
        );
        let read = History::open_to_read(dir.path()).expect("read");
        let rows = read.rows(None).expect("rows");
        assert_eq!(rows.len(), runs);
        assert!(ledger::verify(&rows).is_ok());
    }

    #[test]
    fn a_reader_holding_the_log_does_not_hold_up_the_end_of_a_run() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join(format!("{FILE_NAME}-wal"));
        let mut history = History::open(dir.path()).expect("open");
        history
            .record(&summary(0, &[("ruff", "passed", 5)]))
            .expect("record");
        // Another process reading the history, its snapshot older than every run after it.
        let reader = Connection::open(dir.path().join(FILE_NAME)).expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let seen: i64 =
            (reader.query_row("SELECT count(*) FROM runs", [], |r| r.get(0))).expect("read");
        assert_eq!(seen, 1);
        let long = CHECKPOINT_PAGES * (4096 + WAL_FRAME_HEADER);
        let mut n = 1;
        while std::fs::metadata(&log).expect("log").len() <= 2 * long {
            let started = std::time::Instant::now();
            history
                .record(&summary(n, &[("ruff", "passed", 5)]))
                .expect("record");
            assert!(
                started.elapsed() < BUSY_TIMEOUT / 2,
                "run {n} waited {:?} for the reader",
                started.elapsed()
            );
            n += 1;
        }
        reader.execute_batch("COMMIT").expect("end the read");
        drop(reader);
        history
            .record(&summary(n, &[("ruff", "passed", 5)]))
            .expect("record");
        assert_eq!(
            std::fs::metadata(&log).expect("log").len(),
            0,
            "emptied once free"
        );
        assert_eq!(history.rows(None).expect("rows").len() as i64, n + 1);
    }
}
