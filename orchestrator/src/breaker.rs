//! Circuit breakers, one per validator, kept across runs in the cache database.
//!
//! A validator that hangs on every commit should not cost its full timeout on every commit.
//! After `failures` consecutive runs that did not complete because of the validator (timed
//! out, crashed, broke the protocol; never findings), its breaker opens: for `cooldown` it is
//! not started, and is reported `skipped` with the reason, which leaves the run incomplete: an
//! open breaker saves time and never turns into a pass. When the cooldown is over, one run
//! claims the trial (half-open: the claim moves the end of the cooldown, so concurrent runs
//! keep skipping); its success closes the breaker, its failure opens it for another cooldown.
//!
//! A breaker counts failures of one fingerprint of the validator (its executable, the
//! configuration the coordinator gives it, and the tool's own configuration files its manifest
//! declares): a change there starts it afresh, so a fix is tried at once, even while the
//! breaker is open. A missing tool, a refused configuration or an interrupted run says nothing
//! about the validator's health and leaves the breaker as it was.

use crate::cache::{now_secs, BreakerRow, Cache, ConfigFiles, Probes};
use crate::config::{Breakers, Config};
use crate::digest::Hash;
use crate::plan::PlannedValidator;
use crate::report::Status;
use crate::verdict::Outcome;
use std::path::Path;
use std::sync::Arc;

/// Whether a validator may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Closed (or turned off): run it.
    Closed,
    /// Half-open, and this run holds the trial: run it; its outcome decides.
    Trial,
    /// Open: do not start it; the message says why and until when.
    Open(String),
}

/// The part of a validator's fingerprint known before it starts: its executable and the
/// configuration the coordinator gives it.
pub fn of_validator(validator: &PlannedValidator, config: &Config) -> Hash {
    let mut hasher = blake3::Hasher::new();
    let mut field = |bytes: &[u8]| {
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    let program = &validator.launch.program;
    field(program.as_os_str().as_encoded_bytes());
    for arg in &validator.launch.args {
        field(arg.as_encoded_bytes());
    }
    // A reinstalled or rebuilt executable is another validator.
    if let Ok(meta) = std::fs::metadata(program) {
        use std::os::unix::fs::MetadataExt;
        field(&meta.len().to_le_bytes());
        field(&meta.mtime().to_le_bytes());
        field(&meta.mtime_nsec().to_le_bytes());
    }
    field(validator.settings.settings_json().as_bytes());
    field(format!("{:?}", validator.settings.timeout).as_bytes());
    field(format!("{:?} {:?}", config.timeouts, config.tools).as_bytes());
    *hasher.finalize().as_bytes()
}

/// The tool's own configuration files (`ruff.toml`, `pyproject.toml`…), which the validator's
/// manifest declares only once it has started. A breaker opened by a broken `ruff.toml`
/// must let the validator try again as soon as the file is fixed, so what its failures were
/// counted against keeps the names beside their state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolConfig {
    names: Vec<String>,
    /// The declared files as seen from every directory that holds a file of the run.
    state: Hash,
}

impl ToolConfig {
    /// The files called `names` above the run's `files` (relative to `root`), read through
    /// the run's `probes`.
    pub fn read(names: &[String], root: &Path, files: &[String], probes: Arc<Probes>) -> Self {
        let state =
            ConfigFiles::new(names, probes).for_project(root, files.iter().map(String::as_str));
        ToolConfig {
            names: names.to_vec(),
            state,
        }
    }
}

/// What a breaker's failures are counted against, as kept in its row: the validator's part,
/// then, when its manifest came, the tool's configuration (its state, then its names, each
/// ended by a NUL).
pub fn fingerprint(validator: &Hash, tool: Option<&ToolConfig>) -> Vec<u8> {
    let mut bytes = validator.to_vec();
    if let Some(tool) = tool {
        bytes.extend_from_slice(&tool.state);
        for name in &tool.names {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
        }
    }
    bytes
}

/// The configuration file names a kept fingerprint covers, when it was counted against
/// `validator` and has any: the current fingerprint to compare it with needs their state now.
pub fn declared(kept: &[u8], validator: &Hash) -> Option<Vec<String>> {
    let rest = kept.strip_prefix(validator.as_slice())?.get(32..)?;
    let names = rest.split(|b| *b == 0).filter(|n| !n.is_empty());
    Some(
        names
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect(),
    )
}

/// Decides whether the validator whose breaker is `row` may start, claiming the trial of a
/// half-open breaker; `fingerprint` is the validator's now.
pub fn admit(cache: &Cache, settings: Breakers, row: &BreakerRow, fingerprint: &[u8]) -> Gate {
    if !settings.enabled {
        return Gate::Closed;
    }
    let name = row.name.as_str();
    let now = now_secs();
    match state(row, fingerprint, settings, now) {
        State::Closed => Gate::Closed,
        State::Open { until } => Gate::Open(open_message(row, until)),
        State::HalfOpen { since } => {
            let until = now + secs(settings.cooldown);
            if cache.claim_breaker(name, since, until) {
                tracing::info!(validator = name, "circuit half-open: trying it once");
                Gate::Trial
            } else {
                Gate::Open(open_message(row, until))
            }
        }
    }
}

/// Records a run's outcome in the validator's breaker.
pub fn record(
    cache: &Cache,
    settings: Breakers,
    name: &str,
    fingerprint: &[u8],
    outcome: &Outcome,
) {
    if !settings.enabled {
        return;
    }
    let previous = cache.breakers(Some(name)).into_iter().next();
    match next(previous, name, fingerprint, outcome, settings, now_secs()) {
        Change::Keep => {}
        Change::Close => {
            cache.reset_breakers(Some(name));
        }
        Change::Put(row) => {
            if row.open_until.is_some() {
                tracing::warn!(
                    validator = name,
                    "circuit open after {} incomplete runs in a row",
                    row.failures
                );
            }
            cache.put_breaker(&row);
        }
    }
}

/// A breaker's state at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Closed,
    Open {
        until: i64,
    },
    /// The cooldown that ended at `since` is over: one run may try.
    HalfOpen {
        since: i64,
    },
}

/// The state of a kept breaker for a validator with `fingerprint`.
pub fn state(row: &BreakerRow, fingerprint: &[u8], settings: Breakers, now: i64) -> State {
    match row.open_until {
        _ if row.fingerprint != fingerprint => State::Closed,
        _ if row.failures < settings.failures => State::Closed,
        None => State::Closed,
        Some(until) if until > now => State::Open { until },
        Some(since) => State::HalfOpen { since },
    }
}

/// Whether a run that ended so counts as a failure of the validator: it did not complete
/// because of the validator (never findings).
pub fn counts(status: Status) -> bool {
    matches!(
        status,
        Status::TimedOut | Status::Crashed | Status::ProtocolError
    )
}

/// What a run's outcome does to its breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Keep,
    Close,
    Put(BreakerRow),
}

fn next(
    previous: Option<BreakerRow>,
    name: &str,
    fingerprint: &[u8],
    outcome: &Outcome,
    settings: Breakers,
    now: i64,
) -> Change {
    match outcome.status {
        status if counts(status) => {
            let before = previous
                .filter(|row| row.fingerprint == fingerprint)
                .map_or(0, |row| row.failures);
            let failures = before.saturating_add(1);
            Change::Put(BreakerRow {
                name: name.to_owned(),
                fingerprint: fingerprint.to_vec(),
                failures,
                last_status: outcome.status.as_str().to_owned(),
                last_message: outcome.message.clone(),
                open_until: (failures >= settings.failures).then(|| now + secs(settings.cooldown)),
            })
        }
        status if status.completed() && previous.is_some() => Change::Close,
        _ => Change::Keep,
    }
}

/// `circuit open: timed out in the last 3 runs; next attempt after 17:42, or run with
/// --reset-breakers`.
fn open_message(row: &BreakerRow, until: i64) -> String {
    format!(
        "circuit open: {} in the last {} runs ({}); next attempt after {}, or run with \
         --reset-breakers",
        row.last_status.replace('_', " "),
        row.failures,
        row.last_message,
        local_time(until)
    )
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// A time as people read it here: `17:42` today, `2026-11-24 17:42` on another day.
pub fn local_time(when: i64) -> String {
    let (date, time) = local(when);
    if date == local(now_secs()).0 {
        time
    } else {
        format!("{date} {time}")
    }
}

/// `("YYYY-MM-DD", "HH:MM")` in the local time zone.
fn local(when: i64) -> (String, String) {
    let t: libc::time_t = when;
    // SAFETY: localtime_r writes only into `tm`, which lives for the call.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    };
    (
        format!(
            "{:04}-{:02}-{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday
        ),
        format!("{:02}:{:02}", tm.tm_hour, tm.tm_min),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SETTINGS: Breakers = Breakers {
        enabled: true,
        failures: 3,
        cooldown: Duration::from_secs(600),
    };

    fn outcome(status: Status) -> Outcome {
        Outcome::plain(status, "sent nothing for 1s", Duration::ZERO)
    }

    /// The row after a sequence of outcomes, starting from none.
    fn after(statuses: &[Status], fingerprint: &[u8], now: i64) -> Option<BreakerRow> {
        let mut row = None;
        for status in statuses {
            match next(
                row.clone(),
                "v",
                fingerprint,
                &outcome(*status),
                SETTINGS,
                now,
            ) {
                Change::Keep => {}
                Change::Close => row = None,
                Change::Put(r) => row = Some(r),
            }
        }
        row
    }

    #[test]
    fn three_incomplete_runs_in_a_row_open_it_for_the_cooldown() {
        let two = after(&[Status::TimedOut, Status::Crashed], b"f", 1000).expect("kept");
        assert_eq!(two.failures, 2);
        assert_eq!(state(&two, b"f", SETTINGS, 1000), State::Closed);
        let three = after(&[Status::TimedOut; 3], b"f", 1000).expect("kept");
        assert_eq!(three.open_until, Some(1600));
        assert_eq!(three.last_status, "timed_out");
        assert_eq!(
            state(&three, b"f", SETTINGS, 1599),
            State::Open { until: 1600 }
        );
        assert_eq!(
            state(&three, b"f", SETTINGS, 1600),
            State::HalfOpen { since: 1600 }
        );
        // Another configuration or executable: another breaker.
        assert_eq!(state(&three, b"g", SETTINGS, 1000), State::Closed);
    }

    #[test]
    fn findings_and_a_completed_run_close_it_and_other_statuses_leave_it() {
        assert_eq!(after(&[Status::TimedOut, Status::Failed], b"f", 0), None);
        let kept = after(
            &[Status::TimedOut, Status::NotInstalled, Status::Interrupted],
            b"f",
            0,
        )
        .expect("kept");
        assert_eq!(kept.failures, 1);
        let fresh = after(&[Status::TimedOut, Status::TimedOut], b"f", 0);
        let row = next(fresh, "v", b"g", &outcome(Status::Crashed), SETTINGS, 0);
        assert!(
            matches!(row, Change::Put(r) if r.failures == 1),
            "counted afresh"
        );
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let open = after(&[Status::Crashed; 3], b"f", 0);
        let change = next(open, "v", b"f", &outcome(Status::Crashed), SETTINGS, 5000);
        assert!(matches!(change, Change::Put(r) if r.open_until == Some(5600)));
    }

    #[test]
    fn a_kept_fingerprint_gives_back_the_configuration_files_it_covers() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/ruff.toml"), "[tool]").expect("write");
        let names = ["ruff.toml".to_owned(), "pyproject.toml".to_owned()];
        let files = ["top.py".to_owned(), "sub/app.py".to_owned()];
        let read = || ToolConfig::read(&names, dir.path(), &files, Arc::default());
        let broken = read();
        let (own, other) = ([1; 32], [2; 32]);
        let kept = fingerprint(&own, Some(&broken));
        assert_eq!(declared(&kept, &own), Some(names.to_vec()));
        assert_eq!(declared(&kept, &other), None, "another validator's");
        assert_eq!(
            declared(&fingerprint(&own, None), &own),
            None,
            "no manifest came"
        );
        assert_eq!(kept, fingerprint(&own, Some(&read())), "nothing changed");
        std::fs::write(dir.path().join("sub/ruff.toml"), "[lint]").expect("write");
        assert_ne!(kept, fingerprint(&own, Some(&read())), "the file was fixed");
        let row = after(&[Status::Crashed; 3], &kept, 1000).expect("kept");
        let now = fingerprint(&own, Some(&read()));
        assert_eq!(state(&row, &now, SETTINGS, 1000), State::Closed);
    }

    #[test]
    fn the_message_names_the_failure_and_the_next_attempt() {
        let row = after(&[Status::TimedOut; 3], b"f", now_secs()).expect("kept");
        let message = open_message(&row, row.open_until.expect("open"));
        assert!(
            message.starts_with("circuit open: timed out in the last 3 runs (sent nothing for 1s); next attempt after "),
            "{message}"
        );
        assert!(
            message.ends_with(", or run with --reset-breakers"),
            "{message}"
        );
        assert_eq!(local_time(now_secs()).len(), "17:42".len());
    }
}
