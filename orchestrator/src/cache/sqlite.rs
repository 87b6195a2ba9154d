//! The SQLite store: one database file, `cache.sqlite3`, in the cache directory.
//!
//! WAL mode lets runs read while another writes; a busy timeout makes concurrent runs wait
//! for each other instead of failing; every write is one transaction. The schema has a version
//! (`PRAGMA user_version`): an older one is rebuilt (a cache may always be emptied), a newer
//! one is refused, so that an older orchestrator never damages a newer one's cache.

use super::{BreakerRow, Collected, FileStat, Key, Stats, Store, StoreError, Stored};
use crate::locks::lock;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The database file's name inside the cache directory.
pub const FILE_NAME: &str = "cache.sqlite3";

/// Bumped whenever the tables or the encoding of values change; older caches are rebuilt.
const SCHEMA_VERSION: i64 = 4;

/// How long a run waits for another run's write before giving up on the cache.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `results` is a rowid table, not `WITHOUT ROWID`: its values run to hundreds of kilobytes,
/// and a clustered table keeps whole rows in its search tree, so that every step of a lookup
/// read another row's value from its overflow pages (a warm run on Django spent a third of
/// its time there). Here the key index holds only keys, and only the value found is read;
/// `value` comes last so that reading or updating `last_hit` does not walk its pages.
const SCHEMA: &str = "
CREATE TABLE results (
    key BLOB PRIMARY KEY,
    created INTEGER NOT NULL,
    last_hit INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX results_by_last_hit ON results (last_hit);
CREATE TABLE files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    ctime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    hash BLOB NOT NULL,
    written_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE breakers (
    name TEXT PRIMARY KEY,
    fingerprint BLOB NOT NULL,
    failures INTEGER NOT NULL,
    last_status TEXT NOT NULL,
    last_message TEXT NOT NULL,
    open_until INTEGER
) WITHOUT ROWID;
";

/// A cache database.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Connections that only read, used while `conn` is busy: the validators of a warm run
    /// each read their record at the same moment, and WAL lets readers run side by side.
    spares: Mutex<Vec<Connection>>,
}

/// A connection to read with, and where it goes back to.
enum Reading<'a> {
    Main(std::sync::MutexGuard<'a, Connection>),
    Spare(&'a SqliteStore, Option<Connection>),
}

impl std::ops::Deref for Reading<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            Reading::Main(conn) => conn,
            Reading::Spare(_, conn) => conn.as_ref().expect("a spare is held until dropped"),
        }
    }
}

impl std::ops::DerefMut for Reading<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        match self {
            Reading::Main(conn) => conn,
            Reading::Spare(_, conn) => conn.as_mut().expect("a spare is held until dropped"),
        }
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        if let Reading::Spare(store, conn) = self {
            if let Some(conn) = conn.take() {
                lock(&store.spares).push(conn);
            }
        }
    }
}

/// The last run's counts, by name.
fn last_run(conn: &Connection) -> rusqlite::Result<Vec<(String, u64)>> {
    conn.prepare(
        "SELECT substr(name, 10), value FROM meta WHERE name LIKE 'last_run_%' ORDER BY name",
    )?
    .query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?
    .collect()
}

/// A connection to the database at `path`, read-write (`extra` may add creating it), with the
/// store's busy timeout and page cache.
fn connect(path: &Path, extra: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | extra,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A warm run looks up thousands of keys: keep the pages it reads cached.
    conn.pragma_update(None, "cache_size", -16_000i64)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir`, and brings its schema up to date.
    ///
    /// Two runs creating one database at once can find it busy in ways SQLite's busy handler
    /// does not wait for (switching a new file to WAL), so opening is retried for as long as
    /// the busy timeout.
    pub fn open(dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| match e.kind() {
            // `--cache-dir` naming a file, or a path through one: say so, not "File exists".
            std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotADirectory => {
                StoreError::io(dir, "a file is in the way of the cache's directory")
            }
            _ => StoreError::io(dir, e),
        })?;
        retrying_while_busy(
            || SqliteStore::open_once(dir),
            |(_, busy)| *busy,
            BUSY_TIMEOUT,
        )
        .map_err(|(e, _)| e)
    }

    /// One attempt; the flag tells whether the failure was the database being busy.
    fn open_once(dir: &Path) -> Result<SqliteStore, (StoreError, bool)> {
        let path = dir.join(FILE_NAME);
        let err = |e: rusqlite::Error| (classify(&path, &e), is_busy(&e));
        let conn = connect(&path, OpenFlags::SQLITE_OPEN_CREATE).map_err(err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        let store = SqliteStore {
            conn: Mutex::new(conn),
            spares: Mutex::default(),
            path,
        };
        store.migrate().map_err(|e| {
            let busy = e.is_busy();
            (e, busy)
        })?;
        Ok(store)
    }

    /// Runs `sql` once per item in one write transaction.
    fn write_each<T>(
        &self,
        sql: &str,
        items: &[T],
        mut exec: impl FnMut(&mut rusqlite::Statement<'_>, &T) -> rusqlite::Result<usize>,
    ) -> Result<(), StoreError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut stmt = tx.prepare(sql).map_err(|e| self.err(e))?;
            for item in items {
                exec(&mut stmt, item).map_err(|e| self.err(e))?;
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        classify(&self.path, &e)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// A connection for reading: the main one when it is free, else a spare, opened when none
    /// is left.
    fn reading(&self) -> Result<Reading<'_>, StoreError> {
        match self.conn.try_lock() {
            Ok(conn) => return Ok(Reading::Main(conn)),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => {
                return Ok(Reading::Main(poisoned.into_inner()))
            }
            Err(std::sync::TryLockError::WouldBlock) => {}
        }
        let spare = lock(&self.spares).pop();
        let conn = match spare {
            Some(conn) => conn,
            None => connect(&self.path, OpenFlags::empty()).map_err(|e| self.err(e))?,
        };
        Ok(Reading::Spare(self, Some(conn)))
    }

    /// Creates the tables of a new database, rebuilds an older one, refuses a newer one.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
        // The common case, a current schema, needs no write lock.
        let current: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if current == SCHEMA_VERSION {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let version: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        match version {
            SCHEMA_VERSION => return Ok(()),
            v if v > SCHEMA_VERSION => {
                return Err(StoreError::NewerSchema {
                    location: self.path.display().to_string(),
                    found: v,
                    supported: SCHEMA_VERSION,
                })
            }
            _ => {}
        }
        // Version 0 is a new file or one from before versioning; either way, start afresh.
        tx.execute_batch(
            "DROP TABLE IF EXISTS results; DROP TABLE IF EXISTS files; DROP TABLE IF EXISTS meta; \
             DROP TABLE IF EXISTS breakers;",
        )
        .map_err(|e| self.err(e))?;
        tx.execute_batch(SCHEMA).map_err(|e| self.err(e))?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))
    }
}

/// The kind of a SQLite failure, from its error code rather than its text.
fn classify(path: &Path, e: &rusqlite::Error) -> StoreError {
    let location = path.display().to_string();
    match e.sqlite_error_code() {
        _ if is_busy(e) => StoreError::Busy { location },
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Corrupt {
                location,
                detail: e.to_string(),
            }
        }
        _ => StoreError::Io {
            location,
            detail: e.to_string(),
        },
    }
}

/// What a remembered stat costs in the database, near enough: its path and seven integers.
const FILE_ROW_OVERHEAD: i64 = 64;

/// `attempt`, again while it fails `busy` and `timeout` has not passed since the first: two
/// processes creating one database at once can find it busy in ways SQLite's busy handler does
/// not wait for (both reading a new file, then both wanting it whole to switch it to WAL).
pub fn retrying_while_busy<T, E>(
    mut attempt: impl FnMut() -> Result<T, E>,
    busy: impl Fn(&E) -> bool,
    timeout: Duration,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    loop {
        match attempt() {
            Err(e) if busy(&e) && started.elapsed() < timeout => {
                tracing::debug!("database busy while opening; retrying");
                std::thread::sleep(Duration::from_millis(20));
            }
            done => return done,
        }
    }
}

/// Whether SQLite said the database is busy or locked.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

impl Store for SqliteStore {
    fn get(&self, keys: &[Key]) -> Result<Vec<Option<Stored>>, StoreError> {
        // One read transaction for the whole batch: one lock, and a page cache that lasts.
        let mut conn = self.reading()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        let found = {
            let mut stmt = tx
                .prepare("SELECT value, last_hit FROM results WHERE key = ?1")
                .map_err(|e| self.err(e))?;
            keys.iter()
                .map(|key| {
                    stmt.query_row(params![&key[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                        .map_err(|e| self.err(e))
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        tx.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }

    fn put(&self, entries: &[(Key, Vec<u8>)], now: i64) -> Result<(), StoreError> {
        self.write_each(
            "INSERT OR REPLACE INTO results (key, value, created, last_hit) VALUES (?1, ?2, ?3, ?3)",
            entries,
            |stmt, (key, value)| stmt.execute(params![&key[..], value, now]),
        )
    }

    fn put_shared(&self, entries: &[(Key, &[u8])], now: i64, stale: i64) -> Result<(), StoreError> {
        self.write_each(
            "INSERT INTO results (key, value, created, last_hit) VALUES (?1, ?2, ?3, ?3) \
             ON CONFLICT (key) DO UPDATE SET last_hit = ?3 WHERE last_hit < ?4",
            entries,
            |stmt, (key, value)| stmt.execute(params![&key[..], value, now, stale]),
        )
    }

    fn touch(&self, keys: &[Key], now: i64) -> Result<(), StoreError> {
        self.write_each(
            "UPDATE results SET last_hit = ?2 WHERE key = ?1",
            keys,
            |stmt, key| stmt.execute(params![&key[..], now]),
        )
    }

    /// Many paths under one directory (a whole tree's) are read in one ordered scan of that
    /// directory's rows, a fifth of the cost of as many lookups. The scan stops after
    /// `SCAN_PER_PATH` rows per path asked, so that a few paths in a large tree cost no more
    /// than lookups; what it did not reach is looked up.
    fn file_stats(&self, paths: &[String]) -> Result<Vec<Option<FileStat>>, StoreError> {
        let mut conn = self.reading()?;
        let tx = conn.transaction().map_err(|e| self.err(e))?;
        // Thousands of rows a warm run: the hash is read in place, not copied to the heap.
        let row = |r: &rusqlite::Row<'_>, at: usize| -> rusqlite::Result<Option<FileStat>> {
            let hash = r.get_ref(at + 4)?.as_blob()?;
            // A hash of the wrong length is damage: treat the entry as absent.
            let Ok(hash) = <[u8; 32]>::try_from(hash) else {
                return Ok(None);
            };
            Ok(Some(FileStat {
                size: r.get(at)?,
                mtime_ns: r.get(at + 1)?,
                ctime_ns: r.get(at + 2)?,
                inode: r.get(at + 3)?,
                hash,
                written_ns: r.get(at + 5)?,
            }))
        };
        let mut scanned: foldhash::HashMap<String, FileStat> = foldhash::HashMap::default();
        let mut reached: Option<String> = None;
        if let Some((from, to)) = scan_range(paths) {
            let mut stmt = tx
                .prepare(
                    "SELECT path, size, mtime_ns, ctime_ns, inode, hash, written_ns FROM files \
                     WHERE path >= ?1 AND path < ?2 ORDER BY path LIMIT ?3",
                )
                .map_err(|e| self.err(e))?;
            let limit = paths.len().saturating_mul(SCAN_PER_PATH);
            let mut rows = stmt
                .query(params![from, to, i64::try_from(limit).unwrap_or(i64::MAX)])
                .map_err(|e| self.err(e))?;
            let mut count = 0;
            while let Some(r) = rows.next().map_err(|e| self.err(e))? {
                let path: String = r.get(0).map_err(|e| self.err(e))?;
                count += 1;
                if count == limit {
                    reached = Some(path.clone());
                }
                if let Some(stat) = row(r, 1).map_err(|e| self.err(e))? {
                    scanned.insert(path, stat);
                }
            }
            if count < limit {
                reached = Some(to);
            }
        }
        let mut stmt = tx
            .prepare(
                "SELECT size, mtime_ns, ctime_ns, inode, hash, written_ns FROM files WHERE path = ?1",
            )
            .map_err(|e| self.err(e))?;
        let found = paths
            .iter()
            .map(|path| {
                if reached.as_ref().is_some_and(|reached| path < reached) {
                    return Ok(scanned.get(path).cloned());
                }
                stmt.query_row(params![path], |r| row(r, 0))
                    .optional()
                    .map(Option::flatten)
                    .map_err(|e| self.err(e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        drop(stmt);
        tx.commit().map_err(|e| self.err(e))?;
        Ok(found)
    }

    fn put_file_stats(&self, entries: &[(String, FileStat)]) -> Result<(), StoreError> {
        self.write_each(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, ctime_ns, inode, hash, written_ns) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            entries,
            |stmt, (path, f)| {
                stmt.execute(params![
                    path,
                    f.size,
                    f.mtime_ns,
                    f.ctime_ns,
                    f.inode,
                    &f.hash[..],
                    f.written_ns
                ])
            },
        )
    }

    fn finish_run(
        &self,
        counts: &[(&str, u64)],
        expire_before: Option<i64>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        // A warm run counts what the one before it did: writing the same counts again would
        // be the run's only write, and cost a sync of a new log and a checkpoint when the
        // database closes. (Expiring nothing dirties no page either.)
        let mut counted: Vec<(String, u64)> =
            counts.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect();
        counted.sort();
        let same = last_run(&conn).map_err(|e| self.err(e))? == counted;
        if same && expire_before.is_none() {
            return Ok(());
        }
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        if !same {
            tx.execute("DELETE FROM meta WHERE name LIKE 'last_run_%'", [])
                .map_err(|e| self.err(e))?;
            let mut stmt = tx
                .prepare("INSERT INTO meta (name, value) VALUES (?1, ?2)")
                .map_err(|e| self.err(e))?;
            for (name, value) in counts {
                stmt.execute(params![format!("last_run_{name}"), *value as i64])
                    .map_err(|e| self.err(e))?;
            }
        }
        if let Some(before) = expire_before {
            tx.execute("DELETE FROM results WHERE last_hit < ?1", params![before])
                .map_err(|e| self.err(e))?;
        }
        tx.commit().map_err(|e| self.err(e))
    }

    fn stats(&self) -> Result<Stats, StoreError> {
        let conn = self.conn();
        let (entries, bytes): (i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(length(value)), 0) FROM results",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let files: i64 = conn
            .query_row("SELECT count(*) FROM files", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let last_run = last_run(&conn).map_err(|e| self.err(e))?;
        let disk = [FILE_NAME, &format!("{FILE_NAME}-wal")]
            .iter()
            .filter_map(|name| std::fs::metadata(self.path.with_file_name(name)).ok())
            .map(|m| m.len())
            .sum();
        Ok(Stats {
            location: self.path.display().to_string(),
            entries: entries as u64,
            value_bytes: bytes as u64,
            known_files: files as u64,
            disk_bytes: disk,
            last_run,
        })
    }

    fn breakers(&self, name: Option<&str>) -> Result<Vec<BreakerRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare(
                "SELECT name, fingerprint, failures, last_status, last_message, open_until \
                 FROM breakers WHERE ?1 IS NULL OR name = ?1 ORDER BY name",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([name], |r| {
                Ok(BreakerRow {
                    name: r.get(0)?,
                    fingerprint: r.get(1)?,
                    failures: r.get(2)?,
                    last_status: r.get(3)?,
                    last_message: r.get(4)?,
                    open_until: r.get(5)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    fn put_breaker(&self, row: &BreakerRow) -> Result<(), StoreError> {
        self.write_each(
            "INSERT OR REPLACE INTO breakers \
             (name, fingerprint, failures, last_status, last_message, open_until) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            std::slice::from_ref(row),
            |stmt, row| {
                stmt.execute(params![
                    row.name,
                    row.fingerprint,
                    row.failures,
                    row.last_status,
                    row.last_message,
                    row.open_until
                ])
            },
        )
    }

    fn claim_breaker(&self, name: &str, seen: i64, until: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE breakers SET open_until = ?3 WHERE name = ?1 AND open_until = ?2",
                params![name, seen, until],
            )
            .map_err(|e| self.err(e))?;
        Ok(changed == 1)
    }

    fn remove_breakers(&self, name: Option<&str>) -> Result<u64, StoreError> {
        let conn = self.conn();
        let removed = conn
            .execute("DELETE FROM breakers WHERE ?1 IS NULL OR name = ?1", [name])
            .map_err(|e| self.err(e))?;
        Ok(removed as u64)
    }

    fn integrity(&self) -> Result<String, StoreError> {
        let conn = self.conn();
        let lines: Vec<String> = conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut stmt| {
                stmt.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()
            })
            .map_err(|e| self.err(e))?;
        Ok(lines.join("; "))
    }

    fn gc(
        &self,
        max_bytes: Option<u64>,
        expire_before: Option<i64>,
    ) -> Result<Collected, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))?;
        let mut collected = Collected::default();
        {
            // Stats of files that are gone (or are no longer regular files) serve no run.
            let paths: Vec<String> = tx
                .prepare("SELECT path FROM files")
                .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
                .map_err(|e| self.err(e))?;
            let mut delete = tx
                .prepare("DELETE FROM files WHERE path = ?1")
                .map_err(|e| self.err(e))?;
            for path in paths.iter().filter(|p| !Path::new(p).is_file()) {
                collected.files += delete.execute([path]).map_err(|e| self.err(e))? as u64;
            }
        }
        if let Some(before) = expire_before {
            collected.results += tx
                .execute("DELETE FROM results WHERE last_hit < ?1", params![before])
                .map_err(|e| self.err(e))? as u64;
        }
        if let Some(max) = max_bytes {
            // The stats count against the limit too; they are small and make every warm run
            // fast, so results go first: keep the most recently hit that still fit.
            let stats_bytes: i64 = tx
                .query_row(
                    "SELECT coalesce(sum(length(path) + ?1), 0) FROM files",
                    [FILE_ROW_OVERHEAD],
                    |r| r.get(0),
                )
                .map_err(|e| self.err(e))?;
            let mut stmt = tx
                .prepare("SELECT key, length(value) + length(key) FROM results ORDER BY last_hit DESC, created DESC")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, i64>(1)?)))
                .map_err(|e| self.err(e))?;
            let mut kept = stats_bytes as u64;
            let mut doomed = Vec::new();
            for row in rows {
                let (key, size) = row.map_err(|e| self.err(e))?;
                kept += size as u64;
                if kept > max {
                    doomed.push(key);
                }
            }
            drop(stmt);
            let mut delete = tx
                .prepare("DELETE FROM results WHERE key = ?1")
                .map_err(|e| self.err(e))?;
            for key in &doomed {
                delete.execute([key]).map_err(|e| self.err(e))?;
            }
            collected.results += doomed.len() as u64;
            if stats_bytes as u64 > max {
                collected.files += tx
                    .execute("DELETE FROM files", [])
                    .map_err(|e| self.err(e))? as u64;
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        // Give the space back to the filesystem; another run may hold the database, in which
        // case the space is reused later instead.
        if collected != Collected::default() {
            let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;");
        }
        Ok(collected)
    }
}

/// How many rows a scan of file stats reads per path asked, at most.
const SCAN_PER_PATH: usize = 4;

/// Below this many paths, file stats are looked up one by one.
const SCAN_FROM: usize = 64;

/// The rows to scan for `paths`' stats: those of the deepest directory holding them all, as a
/// half-open range of paths (`/` is followed by `0` in byte order). `None` for too few paths to
/// be worth a scan.
fn scan_range(paths: &[String]) -> Option<(String, String)> {
    if paths.len() < SCAN_FROM {
        return None;
    }
    let first = paths.iter().min()?;
    let last = paths.iter().max()?;
    let common = first
        .bytes()
        .zip(last.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let directory = first[..common].rfind('/')?;
    let from = first[..=directory].to_owned();
    let to = format!("{}0", &first[..directory]);
    Some((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_attempt_is_tried_again_until_the_timeout_and_no_other_failure_is() {
        // Busy twice, then done: the third attempt's answer.
        let mut tries = 0;
        let done = retrying_while_busy(
            || {
                tries += 1;
                if tries < 3 {
                    Err("busy")
                } else {
                    Ok(tries)
                }
            },
            |e| *e == "busy",
            Duration::from_secs(5),
        );
        assert_eq!(done, Ok(3));
        // Another failure is not waited on.
        let mut tries = 0;
        let failed: Result<(), &str> = retrying_while_busy(
            || {
                tries += 1;
                Err("corrupt")
            },
            |e| *e == "busy",
            Duration::from_secs(5),
        );
        assert_eq!((failed, tries), (Err("corrupt"), 1));
        // Busy for good: the busy error, once the timeout has passed.
        let started = std::time::Instant::now();
        let busy: Result<(), &str> =
            retrying_while_busy(|| Err("busy"), |e| *e == "busy", Duration::from_millis(100));
        assert_eq!(busy, Err("busy"));
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn entries_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.put(&[([1; 32], b"one".to_vec())], 10).expect("put");
        drop(store);
        let store = SqliteStore::open(dir.path()).expect("reopen");
        let got = store.get(&[[1; 32], [2; 32]]).expect("get");
        assert_eq!(got, vec![Some((b"one".to_vec(), 10)), None]);
    }

    #[test]
    fn a_shared_entry_already_kept_is_only_marked_hit_once_stale() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        let entry: [(Key, &[u8]); 1] = [([1; 32], b"chunk")];
        store.put_shared(&entry, 10, 0).expect("first");
        store.put_shared(&entry, 20, 5).expect("not stale");
        assert_eq!(
            store.get(&[[1; 32]]).expect("get"),
            vec![Some((b"chunk".to_vec(), 10))]
        );
        store.put_shared(&entry, 30, 15).expect("stale");
        assert_eq!(
            store.get(&[[1; 32]]).expect("get"),
            vec![Some((b"chunk".to_vec(), 30))]
        );
        let created: i64 = store
            .conn()
            .query_row("SELECT created FROM results", [], |r| r.get(0))
            .expect("created");
        assert_eq!(created, 10, "kept once, never written again");
    }

    #[test]
    fn a_run_counted_as_the_last_one_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        let changes = || store.conn().total_changes();
        store
            .finish_run(&[("misses", 0), ("hits", 3)], None)
            .expect("first");
        let after_first = changes();
        store
            .finish_run(&[("hits", 3), ("misses", 0)], None)
            .expect("same");
        assert_eq!(changes(), after_first, "the same counts again");
        store
            .finish_run(&[("hits", 3), ("misses", 0)], Some(0))
            .expect("same, with nothing to expire");
        assert_eq!(changes(), after_first, "nothing expired");
        store
            .finish_run(&[("hits", 4), ("misses", 0)], None)
            .expect("other");
        assert!(changes() > after_first, "other counts");
        let stats = store.stats().expect("stats");
        assert_eq!(
            stats.last_run,
            [("hits".to_owned(), 4), ("misses".to_owned(), 0)]
        );
    }

    #[test]
    fn a_read_while_the_main_connection_is_busy_takes_a_spare_and_gives_it_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.put(&[([1; 32], b"one".to_vec())], 10).expect("put");
        let busy = store.conn();
        for _ in 0..2 {
            let got = store.get(&[[1; 32], [2; 32]]).expect("get");
            assert_eq!(got, vec![Some((b"one".to_vec(), 10)), None]);
        }
        assert_eq!(lock(&store.spares).len(), 1, "one spare, used twice");
        drop(busy);
        assert!(store.get(&[[1; 32]]).expect("get")[0].is_some());
    }

    #[test]
    fn an_older_schema_is_rebuilt_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        store.put(&[([1; 32], b"one".to_vec())], 10).expect("put");
        store
            .conn()
            .pragma_update(None, "user_version", 0)
            .expect("downgrade");
        drop(store);
        let store = SqliteStore::open(dir.path()).expect("rebuilt");
        assert_eq!(store.get(&[[1; 32]]).expect("get"), vec![None]);
        store
            .conn()
            .pragma_update(None, "user_version", 99)
            .expect("upgrade");
        drop(store);
        let err = SqliteStore::open(dir.path()).expect_err("newer");
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("newer orchestrator (schema 99"),
            "{err}"
        );
    }

    #[test]
    fn gc_keeps_the_most_recently_hit_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        for (i, hit) in [(1u8, 100), (2, 300), (3, 200)] {
            store.put(&[([i; 32], vec![0; 100])], hit).expect("put");
        }
        assert_eq!(store.gc(Some(300), None).expect("gc").results, 1);
        let got = store.get(&[[1; 32], [2; 32], [3; 32]]).expect("get");
        assert!(got[0].is_none() && got[1].is_some() && got[2].is_some());
        assert_eq!(store.gc(None, Some(250)).expect("gc").results, 1);
        assert!(store.get(&[[3; 32]]).expect("get")[0].is_none());
    }

    fn stat(hash: u8) -> FileStat {
        FileStat {
            size: 1,
            mtime_ns: 1,
            ctime_ns: 1,
            inode: 1,
            hash: [hash; 32],
            written_ns: 1,
        }
    }

    #[test]
    fn many_stats_are_read_in_a_scan_and_what_it_does_not_reach_is_looked_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(dir.path()).expect("open");
        // A tree of 1,000 files, of which every other one has a stat, and a sibling directory
        // whose name sorts right after `/r/t` in byte order.
        let path = |i: usize| format!("/r/t/{i:04}.py");
        let kept: Vec<(String, FileStat)> = (0..1000)
            .step_by(2)
            .map(|i| (path(i), stat((i % 251) as u8)))
            .chain([
                ("/r/t0/x.py".to_owned(), stat(9)),
                ("/r/t.py".to_owned(), stat(8)),
            ])
            .collect();
        store.put_file_stats(&kept).expect("put");
        let expect = |asked: &[String]| -> Vec<Option<FileStat>> {
            asked
                .iter()
                .map(|p| kept.iter().find(|(k, _)| k == p).map(|(_, s)| s.clone()))
                .collect()
        };
        // Every file: one scan answers all.
        let all: Vec<String> = (0..1000).rev().map(path).collect();
        assert_eq!(store.file_stats(&all).expect("stats"), expect(&all));
        // 100 files spread over the tree: the scan stops after 400 rows, and the rest are
        // looked up.
        let spread: Vec<String> = (0..1000).step_by(10).map(path).collect();
        assert_eq!(store.file_stats(&spread).expect("stats"), expect(&spread));
        // Paths in two directories, and outside the tree.
        let mixed: Vec<String> = (0..100)
            .map(path)
            .chain([
                "/r/t0/x.py".to_owned(),
                "/r/t.py".to_owned(),
                "/q.py".to_owned(),
            ])
            .collect();
        assert_eq!(store.file_stats(&mixed).expect("stats"), expect(&mixed));
        assert_eq!(
            scan_range(&mixed[..99]),
            Some(("/r/t/".into(), "/r/t0".into()))
        );
        assert_eq!(scan_range(&mixed[..10]), None, "too few to scan");
    }

    #[test]
    fn gc_drops_the_stats_of_files_that_are_gone_and_counts_them_in_the_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kept = dir.path().join("kept.py");
        std::fs::write(&kept, "x").expect("write");
        let kept = kept.display().to_string();
        let gone = dir.path().join("gone.py").display().to_string();
        let store = SqliteStore::open(dir.path()).expect("open");
        store
            .put_file_stats(&[(kept.clone(), stat(1)), (gone.clone(), stat(2))])
            .expect("put");
        let collected = store.gc(None, Some(0)).expect("gc");
        assert_eq!(
            collected,
            Collected {
                results: 0,
                files: 1
            }
        );
        let known = store.file_stats(&[kept, gone]).expect("stats");
        assert!(known[0].is_some() && known[1].is_none());
        // One result of ~132 bytes and one stat row: a limit that fits the result alone does
        // not fit both.
        store.put(&[([1; 32], vec![0; 100])], 10).expect("put");
        let collected = store.gc(Some(150), None).expect("gc");
        assert_eq!(collected.results, 1, "the stats count against the size");
    }

    #[test]
    fn failures_are_told_apart_by_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(FILE_NAME), vec![7u8; 4096]).expect("write");
        let err = SqliteStore::open(dir.path()).expect_err("not a database");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }

    #[test]
    fn a_file_where_the_directory_should_be_is_named_as_such() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cache");
        std::fs::write(&file, "").expect("write");
        for dir in [file.clone(), file.join("below")] {
            let err = SqliteStore::open(&dir).expect_err("a file in the way");
            let said = err.to_string();
            assert!(
                said.ends_with("a file is in the way of the cache's directory"),
                "{said}"
            );
            assert!(said.starts_with(&dir.display().to_string()), "{said}");
        }
    }
}
