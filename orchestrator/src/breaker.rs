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
use std::path::PathBuf;
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

/// Where a run looks at configuration files: its root, and the probes that read each
/// directory's once.
#[derive(Debug, Clone)]
pub struct Looking {
    pub root: Arc<PathBuf>,
    pub probes: Arc<Probes>,
}

/// The tool's own configuration files (`ruff.toml`, `pyproject.toml`…), which the validator's
/// manifest declares only once it has started. A breaker opened by a broken `ruff.toml` must
/// let the validator try again as soon as the file is fixed, so what its failures were counted
/// against keeps the names, the directories they were looked for from, and their state then:
/// the directories of the failing runs' files (of the whole tree, for a `--all` or `--changed`
/// run), gathered over the consecutive failures. A later run compares the state of those
/// directories, not of its own files: a hook's runs, each on other files, still count together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolConfig {
    names: Vec<String>,
    /// Relative to the root; `.` for the root itself.
    dirs: Vec<String>,
    state: Hash,
}

impl ToolConfig {
    /// The files called `names` above `files` (relative to the root).
    pub fn read(names: &[String], files: &[String], looking: &Looking) -> Self {
        let dirs = files
            .iter()
            .map(|f| f.rfind('/').map_or(".", |end| &f[..end]).to_owned());
        Self::over(names.to_vec(), dirs.collect(), looking)
    }

    fn over(names: Vec<String>, mut dirs: Vec<String>, looking: &Looking) -> Self {
        dirs.push(".".to_owned());
        dirs.sort();
        dirs.dedup();
        let state = state_of(&names, &dirs, looking);
        ToolConfig { names, dirs, state }
    }

    /// This, looked at from `earlier`'s directories too: the failures counted so far.
    fn and(self, earlier: ToolConfig, looking: &Looking) -> Self {
        let dirs = self.dirs.into_iter().chain(earlier.dirs).collect();
        Self::over(self.names, dirs, looking)
    }

    /// Whether the files are as they were when this was read.
    pub fn unchanged(&self, looking: &Looking) -> bool {
        state_of(&self.names, &self.dirs, looking) == self.state
    }
}

/// The files called `names` in each of `dirs` and their ancestors.
fn state_of(names: &[String], dirs: &[String], looking: &Looking) -> Hash {
    let root = looking.root.as_path();
    let mut files = ConfigFiles::new(names, looking.probes.clone());
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 breaker tool configuration");
    for dir in dirs {
        h.update(&files.for_dir(&root.join(dir)));
    }
    *h.finalize().as_bytes()
}

/// What a breaker's failures are counted against, as kept in its row: the validator's part,
/// then, when its manifest came, the tool's configuration: its state, its names each ended by
/// a NUL, a NUL, and its directories each ended by a NUL.
pub fn fingerprint(validator: &Hash, tool: Option<&ToolConfig>) -> Vec<u8> {
    let mut bytes = validator.to_vec();
    if let Some(tool) = tool {
        bytes.extend_from_slice(&tool.state);
        for name in tool.names.iter().chain([&String::new()]).chain(&tool.dirs) {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
        }
    }
    bytes
}

/// The tool's configuration a kept fingerprint was counted against, if any.
fn tool_of(kept: &[u8]) -> Option<ToolConfig> {
    let state: Hash = kept.get(32..64)?.try_into().ok()?;
    let mut parts = kept[64..].split(|b| *b == 0);
    let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    let names = parts
        .by_ref()
        .take_while(|p| !p.is_empty())
        .map(text)
        .collect();
    let dirs = parts.filter(|p| !p.is_empty()).map(text).collect();
    Some(ToolConfig { names, dirs, state })
}

/// Whether the failures `row` counts were counted against the validator as it is now: its own
/// part is `validator`, and the tool's configuration files they were counted with are
/// unchanged.
pub fn same(row: &BreakerRow, validator: &Hash, looking: &Looking) -> bool {
    row.fingerprint.get(..32) == Some(validator.as_slice())
        && tool_of(&row.fingerprint).is_none_or(|tool| tool.unchanged(looking))
}

/// Decides whether the validator whose breaker is `row` may start, claiming the trial of a
/// half-open breaker; `same`: the row counts this validator as it is now ([`same`]).
pub fn admit(cache: &Cache, settings: Breakers, row: &BreakerRow, same: bool) -> Gate {
    if !settings.enabled {
        return Gate::Closed;
    }
    let name = row.name.as_str();
    let now = now_secs();
    match state(row, same, settings, now) {
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

/// Records a run's outcome in the breaker of the validator whose own part is `validator`;
/// `tool`: its tool's configuration files as the run found them, once its manifest came.
pub fn record(
    cache: &Cache,
    settings: Breakers,
    (name, validator): (&str, &Hash),
    tool: Option<ToolConfig>,
    looking: &Looking,
    outcome: &Outcome,
) {
    if !settings.enabled {
        return;
    }
    let previous = cache.breakers(Some(name)).into_iter().next();
    let same = (previous.as_ref()).is_some_and(|row| same(row, validator, looking));
    let earlier = (previous.as_ref())
        .filter(|_| same)
        .and_then(|row| tool_of(&row.fingerprint));
    let tool = match (tool, earlier) {
        (Some(tool), Some(earlier)) if tool.names == earlier.names => {
            Some(tool.and(earlier, looking))
        }
        (tool, _) => tool,
    };
    let fingerprint = fingerprint(validator, tool.as_ref());
    let change = next(
        previous,
        same,
        name,
        &fingerprint,
        outcome,
        settings,
        now_secs(),
    );
    match change {
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

/// The state of a kept breaker; `same`: it counts the validator as it is now.
pub fn state(row: &BreakerRow, same: bool, settings: Breakers, now: i64) -> State {
    match row.open_until {
        _ if !same => State::Closed,
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
    same: bool,
    name: &str,
    fingerprint: &[u8],
    outcome: &Outcome,
    settings: Breakers,
    now: i64,
) -> Change {
    match outcome.status {
        status if counts(status) => {
            let before = previous.filter(|_| same).map_or(0, |row| row.failures);
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

    /// Whether `row` was counted against `fingerprint`, as [`same`] says of a validator whose
    /// tool's configuration is unchanged.
    fn counts_as(row: &BreakerRow, fingerprint: &[u8]) -> bool {
        row.fingerprint == fingerprint
    }

    /// The row after a sequence of outcomes, starting from none.
    fn after(statuses: &[Status], fingerprint: &[u8], now: i64) -> Option<BreakerRow> {
        let mut row: Option<BreakerRow> = None;
        for status in statuses {
            let same = row.as_ref().is_some_and(|r| counts_as(r, fingerprint));
            match next(
                row.clone(),
                same,
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
        assert_eq!(state(&two, true, SETTINGS, 1000), State::Closed);
        let three = after(&[Status::TimedOut; 3], b"f", 1000).expect("kept");
        assert_eq!(three.open_until, Some(1600));
        assert_eq!(three.last_status, "timed_out");
        assert_eq!(
            state(&three, true, SETTINGS, 1599),
            State::Open { until: 1600 }
        );
        assert_eq!(
            state(&three, true, SETTINGS, 1600),
            State::HalfOpen { since: 1600 }
        );
        // Another configuration or executable: another breaker.
        assert_eq!(state(&three, false, SETTINGS, 1000), State::Closed);
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
        let row = next(
            fresh,
            false,
            "v",
            b"g",
            &outcome(Status::Crashed),
            SETTINGS,
            0,
        );
        assert!(
            matches!(row, Change::Put(r) if r.failures == 1),
            "counted afresh"
        );
    }

    #[test]
    fn a_failed_trial_opens_it_again() {
        let open = after(&[Status::Crashed; 3], b"f", 0);
        let change = next(
            open,
            true,
            "v",
            b"f",
            &outcome(Status::Crashed),
            SETTINGS,
            5000,
        );
        assert!(matches!(change, Change::Put(r) if r.open_until == Some(5600)));
    }

    #[test]
    fn failures_counted_with_a_tool_configuration_count_until_those_files_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub/deep")).expect("mkdir");
        std::fs::write(root.join("sub/ruff.toml"), "[tool]").expect("write");
        let names = ["ruff.toml".to_owned(), "pyproject.toml".to_owned()];
        // Each look with probes of its own, as each run has.
        let looking = || Looking {
            root: Arc::new(root.to_owned()),
            probes: Arc::default(),
        };
        let read = |files: &[&str]| {
            let files: Vec<String> = files.iter().map(|f| (*f).to_owned()).collect();
            ToolConfig::read(&names, &files, &looking())
        };
        let tool = read(&["sub/deep/app.py", "top.py"]);
        assert_eq!(tool.dirs, [".", "sub/deep"]);
        let own = [1; 32];
        let kept = fingerprint(&own, Some(&tool));
        assert_eq!(tool_of(&kept), Some(tool.clone()), "read back as written");
        assert_eq!(tool_of(&fingerprint(&own, None)), None, "no manifest came");
        let row = |fingerprint: Vec<u8>| BreakerRow {
            name: "v".to_owned(),
            fingerprint,
            failures: 3,
            last_status: "crashed".to_owned(),
            last_message: String::new(),
            open_until: Some(1600),
        };
        let same_now = |r: &BreakerRow, own: &Hash| same(r, own, &looking());
        assert!(same_now(&row(kept.clone()), &own));
        assert!(!same_now(&row(kept.clone()), &[2; 32]), "another validator");
        // Failures on other files count together, looked at from all their directories.
        let gathered = read(&["z.py"]).and(tool, &looking());
        assert_eq!(gathered.dirs, [".", "sub/deep"]);
        assert!(same_now(
            &row(fingerprint(&own, Some(&read(&["z.py"])))),
            &own
        ));
        std::fs::write(root.join("sub/ruff.toml"), "[lint]").expect("write");
        assert!(
            !same_now(&row(kept), &own),
            "the file above a counted directory was fixed"
        );
        let gathered = fingerprint(&own, Some(&gathered));
        assert!(
            !same_now(&row(gathered), &own),
            "and above one counted earlier"
        );
        assert!(same_now(&row(fingerprint(&own, None)), &own));
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
