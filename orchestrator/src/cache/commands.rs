//! `orchestrator cache stats|clear|gc|check` and `orchestrator breakers`: look at the cache
//! database, empty it, trim it, check it, and show or reset the circuit breakers it keeps.
//!
//! Unlike a run, these commands are about the cache itself, so a cache that cannot be opened
//! is an error here (exit code 2), with the fix named.

use super::{now_secs, sqlite, Setting, Store, StoreError};
use protocol::exit;
use std::path::Path;
use std::time::Duration;

/// `cache stats`.
pub fn stats(setting: &Setting) -> u8 {
    let Some(dir) = location(setting) else {
        return exit::USAGE;
    };
    if !dir.join(sqlite::FILE_NAME).exists() {
        println!("no cache at {} yet", dir.display());
        return exit::CLEAN;
    }
    match sqlite::SqliteStore::open(dir).and_then(|s| s.stats()) {
        Ok(stats) => {
            println!("location      {}", stats.location);
            println!("entries       {}", stats.entries);
            println!("findings size {}", human_bytes(stats.value_bytes));
            println!("on disk       {}", human_bytes(stats.disk_bytes));
            println!("known files   {}", stats.known_files);
            let counted = |name: &str| {
                stats
                    .last_run
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| *v)
            };
            match (counted("hits"), counted("misses")) {
                (Some(hits), Some(misses)) => {
                    let total = hits + misses;
                    let rate = if total == 0 {
                        0.0
                    } else {
                        hits as f64 * 100.0 / total as f64
                    };
                    println!("last run      {hits} hits, {misses} misses ({rate:.1}% hit)");
                }
                _ => println!("last run      none recorded"),
            }
            if let Some(remote) = super::remote::Counts::from_named(&stats.last_run) {
                println!(
                    "remote        {} hits, {} misses, {} errors, {} rejected; {} read",
                    remote.hits,
                    remote.misses,
                    remote.errors,
                    remote.rejected,
                    human_bytes(remote.bytes_read)
                );
                println!(
                    "remote writes {} written ({}), {} not written",
                    remote.written,
                    human_bytes(remote.bytes_written),
                    remote.unwritten
                );
            }
            exit::CLEAN
        }
        Err(e) => store_error(&e),
    }
}

/// `cache clear`: removes the database files, which works even when they are corrupt.
pub fn clear(setting: &Setting) -> u8 {
    let Some(dir) = location(setting) else {
        return exit::USAGE;
    };
    let mut removed = 0;
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let path = dir.join(format!("{}{suffix}", sqlite::FILE_NAME));
        match std::fs::remove_file(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                eprintln!(
                    "error: cannot remove {}: {e}; check its permissions",
                    path.display()
                );
                return exit::USAGE;
            }
        }
    }
    match crate::kept::clear(dir) {
        Ok(true) => removed += 1,
        Ok(false) => {}
        Err(e) => {
            eprintln!("error: {e}; check its permissions");
            return exit::USAGE;
        }
    }
    if removed == 0 {
        println!("no cache at {}; nothing to clear", dir.display());
    } else {
        println!("cleared the cache at {}", dir.display());
    }
    exit::CLEAN
}

/// `cache gc`: drops the stats of files that are gone, entries not hit within `max_age`, then
/// the least recently hit until everything fits in `max_size`.
pub fn gc(setting: &Setting, max_size: Option<u64>, max_age: Option<Duration>) -> u8 {
    let Some(dir) = location(setting) else {
        return exit::USAGE;
    };
    if max_size.is_none() && max_age.is_none() {
        eprintln!(
            "error: cache gc needs --max-size or --max-age (e.g. --max-size 500MB --max-age 30d)"
        );
        return exit::USAGE;
    }
    if !dir.join(sqlite::FILE_NAME).exists() {
        println!("no cache at {}; nothing to collect", dir.display());
        return exit::CLEAN;
    }
    let expire =
        max_age.map(|age| now_secs() - i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2));
    let result = sqlite::SqliteStore::open(dir).and_then(|store| {
        let before = store.stats()?;
        let removed = store.gc(max_size, expire)?;
        Ok((removed, before, store.stats()?))
    });
    match result {
        Ok((removed, before, after)) => {
            println!(
                "removed {} of {} entries and the stats of {} of {} files; on disk {} -> {}",
                removed.results,
                before.entries,
                removed.files,
                before.known_files,
                human_bytes(before.disk_bytes),
                human_bytes(after.disk_bytes)
            );
            exit::CLEAN
        }
        Err(e) => store_error(&e),
    }
}

/// `cache check`: the database's own integrity check; exit 1 when it finds damage.
pub fn check(setting: &Setting) -> u8 {
    if location(setting).is_none() {
        return exit::USAGE;
    }
    match health(setting) {
        Ok(fine) => {
            println!("{fine}");
            exit::CLEAN
        }
        Err(problem) => {
            println!("{problem}");
            exit::FINDINGS
        }
    }
}

/// The cache's state in one line: fine, or what is wrong and the fix.
pub fn health(setting: &Setting) -> Result<String, String> {
    let Setting::At(dir) = setting else {
        return Ok("off (ORCHESTRATOR_CACHE=off or --no-cache)".to_owned());
    };
    let file = dir.join(sqlite::FILE_NAME);
    if !file.exists() {
        return Ok(format!("no cache at {} yet", dir.display()));
    }
    match sqlite::SqliteStore::open(dir).and_then(|s| s.integrity()) {
        Ok(verdict) if verdict == "ok" => Ok(format!("ok: {}", file.display())),
        Ok(problems) => Err(format!(
            "damaged: {}: {problems}; `orchestrator cache clear` starts afresh",
            file.display()
        )),
        Err(e) => Err(format!("{e}; `orchestrator cache clear` starts afresh")),
    }
}

/// `breakers`: every kept breaker, its state and its last failure.
pub fn breakers(setting: &Setting, settings: crate::config::Breakers) -> u8 {
    use crate::breaker::{local_time, state, State};
    let Some(dir) = location(setting) else {
        return exit::USAGE;
    };
    if !settings.enabled {
        println!("circuit breakers are turned off ([breakers] enabled = false)");
    }
    if !dir.join(sqlite::FILE_NAME).exists() {
        println!("no breakers: no cache at {} yet", dir.display());
        return exit::CLEAN;
    }
    let rows = match sqlite::SqliteStore::open(dir).and_then(|s| s.breakers(None)) {
        Ok(rows) => rows,
        Err(e) => return store_error(&e),
    };
    if rows.is_empty() {
        println!("every breaker is closed: no validator failed to complete in its last run");
        return exit::CLEAN;
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(9);
    println!(
        "{:<width$}  {:<22}  failures  last failure",
        "validator", "state"
    );
    for row in &rows {
        // Listed against its own fingerprint: the state it has for the validator it counted.
        let state = match state(row, true, settings, now_secs()) {
            State::Closed => "closed".to_owned(),
            State::Open { until } => format!("open until {}", local_time(until)),
            State::HalfOpen { .. } => "half-open".to_owned(),
        };
        println!(
            "{:<width$}  {state:<22}  {:>8}  {}: {}",
            row.name, row.failures, row.last_status, row.last_message
        );
    }
    exit::CLEAN
}

/// `breakers reset [NAME]`: closes one validator's breaker, or all.
pub fn reset_breakers(setting: &Setting, name: Option<&str>) -> u8 {
    let Some(dir) = location(setting) else {
        return exit::USAGE;
    };
    if !dir.join(sqlite::FILE_NAME).exists() {
        println!("no breakers to reset: no cache at {} yet", dir.display());
        return exit::CLEAN;
    }
    match sqlite::SqliteStore::open(dir).and_then(|s| s.remove_breakers(name)) {
        Ok(n) => {
            let of = name.map_or(String::new(), |n| format!(" of {n}"));
            println!("closed {n} breaker{}{of}", if n == 1 { "" } else { "s" });
            exit::CLEAN
        }
        Err(e) => store_error(&e),
    }
}

fn location(setting: &Setting) -> Option<&Path> {
    match setting {
        Setting::At(dir) => Some(dir),
        Setting::Off => {
            eprintln!("error: the cache is turned off (--no-cache or ORCHESTRATOR_CACHE=off); turn it on to manage it");
            None
        }
    }
}

fn store_error(e: &StoreError) -> u8 {
    eprintln!("error: cannot use the cache at {e}; `orchestrator cache clear` starts afresh");
    exit::USAGE
}

/// Parses `500MB`, `2GiB`, `1024` (bytes); decimal and binary units.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = number * factor;
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_decimal_and_binary_units() {
        assert_eq!(parse_size("500MB"), Some(500_000_000));
        assert_eq!(parse_size("2GiB"), Some(2 << 30));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("1.5k"), Some(1500));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
