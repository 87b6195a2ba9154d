//! `orchestrator.toml`: finding it, parsing it, and overlaying a profile.
//!
//! The file is parsed into a plain [`Config`] with every value checked, so that a mistake is
//! reported once, in one line naming the file, the key and the fix, before anything runs.
//! Validator tables mix the coordinator's own keys ([`VALIDATOR_KEYS`]) with the validator's
//! configuration (every other key), which is passed through as JSON.

use crate::globs::{GlobError, Globs};
use crate::history::alerts::Alerts;
use crate::retry::{Cause, Policy};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::{Table, Value};

/// The configuration file's name.
pub const FILE_NAME: &str = "orchestrator.toml";

/// Default timeouts per dimension; any dimension not listed gets [`DEFAULT_TIMEOUT`]. Without
/// an explicit timeout in the configuration these are silence limits (see [`Limits`]).
const DIMENSION_TIMEOUTS: [(&str, u64); 5] = [
    ("code_quality", 60),
    ("type_safety", 120),
    ("security", 90),
    ("visual", 30),
    ("behavioral", 30),
];

/// Timeout of a dimension without a default of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a validator may run when no timeout is configured, however busy it keeps:
/// bounds a validator that sends progress forever without finishing.
pub const DEFAULT_CEILING: Duration = Duration::from_secs(30 * 60);

/// The time limits of one validator's run.
///
/// An explicit timeout in the configuration (the validator's `timeout`, or its dimension's
/// under `[timeouts]`) is a hard limit on the whole run: `total` is that, with no silence
/// limit. Without one, the dimension's default (or the validator's suggestion) is a *silence*
/// limit: a validator that sends nothing for that long is hung, while one that keeps sending
/// results, progress or log lines may work on up to [`DEFAULT_CEILING`]. That tells a hang from
/// a large job without knowing in advance how large the job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub total: Duration,
    pub silence: Option<Duration>,
}

/// Time between SIGTERM and SIGKILL when a validator is stopped.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(2);

/// Fix rounds of `run --fix` when the configuration sets none.
pub const DEFAULT_MAX_FIX_ROUNDS: u32 = 3;

/// The coordinator's keys in a validator table; all others are the validator's own.
pub const VALIDATOR_KEYS: [&str; 9] = [
    "enabled",
    "timeout",
    "files",
    "exclude",
    "batch_size",
    "retries",
    "retry_on",
    "after",
    "requires",
];

/// Consecutive incomplete runs that open a validator's circuit breaker, by default.
pub const DEFAULT_BREAKER_FAILURES: u32 = 3;

/// How long an open breaker keeps a validator from starting, by default.
pub const DEFAULT_BREAKER_COOLDOWN: Duration = Duration::from_secs(10 * 60);

/// The effective configuration, with a profile applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// Timeouts per dimension name, as configured (defaults are applied by
    /// [`Config::limits_for`]).
    pub timeouts: BTreeMap<String, Duration>,
    /// Time between SIGTERM and SIGKILL.
    pub grace_period: Duration,
    /// Per-validator settings, by validator name.
    pub validators: BTreeMap<String, ValidatorConfig>,
    /// `[tools]`: version pins of managed tools, by tool name.
    pub tools: BTreeMap<String, String>,
    /// `max_fix_rounds`: how many times `run --fix` lets validators fix before it stops.
    pub max_fix_rounds: u32,
    /// `[cache] max_age`: cached results not hit for longer are not served, and are removed.
    pub cache_max_age: Option<Duration>,
    /// `[cache.remote]`: the shared level behind the local cache.
    pub cache_remote: crate::cache::remote::Settings,
    /// `[breakers]`.
    pub breakers: Breakers,
    /// `baseline`: the saved findings `run` leaves out, relative to the root.
    pub baseline: Option<PathBuf>,
    /// `[alerts]`.
    pub alerts: Alerts,
}

/// `[breakers]`: when a validator that keeps failing to complete is held back (see
/// [`crate::breaker`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breakers {
    pub enabled: bool,
    /// Consecutive incomplete runs that open a breaker.
    pub failures: u32,
    /// How long an open breaker holds its validator back.
    pub cooldown: Duration,
}

impl Default for Breakers {
    fn default() -> Breakers {
        Breakers {
            enabled: true,
            failures: DEFAULT_BREAKER_FAILURES,
            cooldown: DEFAULT_BREAKER_COOLDOWN,
        }
    }
}

/// One `[validators.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidatorConfig {
    pub enabled: Option<bool>,
    pub timeout: Option<Duration>,
    /// Replaces the manifest's globs.
    pub files: Option<Globs>,
    pub exclude: Globs,
    pub batch_size: Option<u32>,
    /// `retries` and `retry_on`.
    pub retry: Policy,
    /// `after`: validators that must have finished before this one starts.
    pub after: Vec<String>,
    /// `requires`: validators that must have passed for this one to run at all (they are
    /// also waited for, as with `after`).
    pub requires: Vec<String>,
    /// Every other key: the validator's own configuration.
    pub settings: Table,
}

/// A configuration mistake, in one line naming the file and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {kind}")]
pub struct ConfigError {
    pub path: String,
    pub kind: ConfigErrorKind,
}

/// What is wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigErrorKind {
    #[error("cannot read the file ({0}); check that it exists and is readable")]
    Unreadable(#[source] std::io::Error),
    #[error("invalid TOML at line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("unknown key `{key}`; the known keys are {known}")]
    UnknownKey { key: String, known: String },
    #[error("`{key}` must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("`{key}`: invalid duration {value}; write a number with a unit: \"500ms\", \"30s\", \"2m\", \"1h\", \"30d\"")]
    BadDuration { key: String, value: String },
    #[error("`{key}`: {source}; fix the pattern (`*` stays in one directory, `**/` crosses them, `[...]` must be closed)")]
    BadGlob {
        key: String,
        #[source]
        source: GlobError,
    },
    #[error("`{key}`: unknown value `{value}`; the known values are {known}")]
    UnknownValue {
        key: String,
        value: String,
        known: String,
    },
    #[error("unknown profile `{name}`; add a [profiles.{name}] table or choose one of: {known}")]
    UnknownProfile { name: String, known: String },
}

impl Config {
    /// The built-in defaults, used when there is no configuration file.
    pub fn defaults() -> Config {
        Config {
            path: None,
            timeouts: BTreeMap::new(),
            grace_period: DEFAULT_GRACE_PERIOD,
            validators: BTreeMap::new(),
            tools: BTreeMap::new(),
            max_fix_rounds: DEFAULT_MAX_FIX_ROUNDS,
            cache_max_age: None,
            cache_remote: crate::cache::remote::Settings::default(),
            breakers: Breakers::default(),
            baseline: None,
            alerts: Alerts::default(),
        }
    }

    /// Reads and checks a configuration file, applying `profile` if given.
    pub fn load(path: &Path, profile: Option<&str>) -> Result<Config, ConfigError> {
        let error = |kind| ConfigError {
            path: path.display().to_string(),
            kind,
        };
        let text =
            std::fs::read_to_string(path).map_err(|e| error(ConfigErrorKind::Unreadable(e)))?;
        Config::parse(&text, Some(path.to_owned()), profile).map_err(error)
    }

    /// Parses configuration text, applying `profile` if given.
    pub fn parse(
        text: &str,
        path: Option<PathBuf>,
        profile: Option<&str>,
    ) -> Result<Config, ConfigErrorKind> {
        let mut table: Table = text
            .parse()
            .map_err(|e: toml::de::Error| syntax(text, &e))?;
        check_keys(
            &table,
            "",
            &[
                "timeouts",
                "grace_period",
                "validators",
                "profiles",
                "tools",
                "max_fix_rounds",
                "cache",
                "breakers",
                "baseline",
                "alerts",
            ],
        )?;
        let profiles = match table.remove("profiles") {
            None => Table::new(),
            Some(p) => into_table(p, "profiles")?,
        };
        if let Some(name) = profile {
            let Some(overlay) = profiles.get(name) else {
                let known: Vec<&str> = profiles.keys().map(String::as_str).collect();
                return Err(ConfigErrorKind::UnknownProfile {
                    name: name.to_owned(),
                    known: if known.is_empty() {
                        "(none defined)".to_owned()
                    } else {
                        known.join(", ")
                    },
                });
            };
            let key = format!("profiles.{name}");
            let overlay = into_table(overlay.clone(), &key)?;
            check_keys(
                &overlay,
                &key,
                &["timeouts", "grace_period", "validators", "max_fix_rounds"],
            )?;
            merge(&mut table, overlay);
        }
        let mut config = Config::defaults();
        config.path = path;
        if let Some(timeouts) = table.remove("timeouts") {
            for (dimension, value) in into_table(timeouts, "timeouts")? {
                let key = format!("timeouts.{dimension}");
                config.timeouts.insert(dimension, duration(&value, &key)?);
            }
        }
        if let Some(grace) = table.remove("grace_period") {
            config.grace_period = duration(&grace, "grace_period")?;
        }
        if let Some(baseline) = table.remove("baseline") {
            let file = baseline.as_str().filter(|f| !f.is_empty()).ok_or_else(|| {
                wrong(
                    "baseline",
                    "a file name such as \".orchestrator/baseline.json\"",
                )
            })?;
            config.baseline = Some(PathBuf::from(file));
        }
        if let Some(rounds) = table.remove("max_fix_rounds") {
            config.max_fix_rounds = positive(&rounds, "max_fix_rounds")?;
        }
        if let Some(cache) = table.remove("cache") {
            let cache = into_table(cache, "cache")?;
            check_keys(&cache, "cache", &["max_age", "remote"])?;
            if let Some(age) = cache.get("max_age") {
                config.cache_max_age = Some(duration(age, "cache.max_age")?);
            }
            if let Some(remote) = cache.get("remote") {
                config.cache_remote = remote_table(remote.clone())?;
            }
        }
        if let Some(breakers) = table.remove("breakers") {
            let breakers = into_table(breakers, "breakers")?;
            check_keys(&breakers, "breakers", &["enabled", "failures", "cooldown"])?;
            if let Some(v) = breakers.get("enabled") {
                config.breakers.enabled = v
                    .as_bool()
                    .ok_or_else(|| wrong("breakers.enabled", "true or false"))?;
            }
            if let Some(v) = breakers.get("failures") {
                config.breakers.failures = positive(v, "breakers.failures")?;
            }
            if let Some(v) = breakers.get("cooldown") {
                config.breakers.cooldown = duration(v, "breakers.cooldown")?;
            }
        }
        if let Some(alerts) = table.remove("alerts") {
            config.alerts = alerts_table(alerts)?;
        }
        if let Some(tools) = table.remove("tools") {
            for (tool, value) in into_table(tools, "tools")? {
                let key = format!("tools.{tool}");
                if validators::tools::spec(&tool).is_none() {
                    let known: Vec<&str> =
                        validators::tools::TOOLS.iter().map(|t| t.name).collect();
                    return Err(ConfigErrorKind::UnknownKey {
                        key,
                        known: known.join(", "),
                    });
                }
                let version = value
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| wrong(&key, "a version string such as \"0.8.4\""))?;
                config.tools.insert(tool, version.to_owned());
            }
        }
        if let Some(validators) = table.remove("validators") {
            for (name, value) in into_table(validators, "validators")? {
                let key = format!("validators.{name}");
                let parsed = ValidatorConfig::parse(into_table(value, &key)?, &key)?;
                config.validators.insert(name, parsed);
            }
        }
        Ok(config)
    }

    /// The limits of validator `name` of `dimension` (see [`Limits`]): its own `timeout`, else
    /// the configured dimension timeout, as hard limits; else what the validator suggests, else
    /// the dimension's default, as silence limits under [`DEFAULT_CEILING`].
    pub fn limits_for(&self, name: &str, dimension: &str, suggested: Option<Duration>) -> Limits {
        let explicit = self
            .validators
            .get(name)
            .and_then(|v| v.timeout)
            .or_else(|| self.timeouts.get(dimension).copied());
        if let Some(total) = explicit {
            return Limits {
                total,
                silence: None,
            };
        }
        let silence = suggested.unwrap_or_else(|| {
            DIMENSION_TIMEOUTS
                .iter()
                .find(|(d, _)| *d == dimension)
                .map_or(DEFAULT_TIMEOUT, |(_, secs)| Duration::from_secs(*secs))
        });
        Limits {
            total: DEFAULT_CEILING.max(silence),
            silence: Some(silence),
        }
    }

    /// The limit of a handshake, before the dimension is known: the validator's own
    /// `timeout`, else [`DEFAULT_TIMEOUT`].
    pub fn handshake_limits(&self, name: &str) -> Limits {
        let total = self.validators.get(name).and_then(|v| v.timeout);
        Limits {
            total: total.unwrap_or(DEFAULT_TIMEOUT),
            silence: None,
        }
    }

    /// A warning for each `[timeouts]` key that is neither a known dimension nor the dimension
    /// of a validator of this run (a typo such as `type_saftey` would otherwise go unnoticed).
    pub fn unused_timeouts<'a>(&self, dimensions: impl Iterator<Item = &'a str>) -> Vec<String> {
        let mut known: Vec<&str> = DIMENSION_TIMEOUTS.iter().map(|(d, _)| *d).collect();
        for dimension in dimensions {
            if !known.contains(&dimension) {
                known.push(dimension);
            }
        }
        self.timeouts
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| {
                format!(
                    "[timeouts] {key}: no validator of this run has that dimension, so it \
                     applies to nothing; the dimensions are {}",
                    known.join(", ")
                )
            })
            .collect()
    }
}

impl ValidatorConfig {
    fn parse(mut table: Table, key: &str) -> Result<ValidatorConfig, ConfigErrorKind> {
        let mut config = ValidatorConfig::default();
        let sub = |k: &str| format!("{key}.{k}");
        if let Some(v) = table.remove("enabled") {
            config.enabled = Some(
                v.as_bool()
                    .ok_or_else(|| wrong(&sub("enabled"), "true or false"))?,
            );
        }
        if let Some(v) = table.remove("timeout") {
            config.timeout = Some(duration(&v, &sub("timeout"))?);
        }
        if let Some(v) = table.remove("files") {
            config.files = Some(globs(v, &sub("files"))?);
        }
        if let Some(v) = table.remove("exclude") {
            config.exclude = globs(v, &sub("exclude"))?;
        }
        if let Some(v) = table.remove("batch_size") {
            config.batch_size = Some(positive(&v, &sub("batch_size"))?);
        }
        if let Some(v) = table.remove("retries") {
            config.retry.retries = v
                .as_integer()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n <= 10)
                .ok_or_else(|| wrong(&sub("retries"), "a whole number from 0 to 10"))?;
        }
        if let Some(v) = table.remove("retry_on") {
            let key = sub("retry_on");
            let names: Vec<&str> = Cause::ALL.iter().map(|(n, _)| *n).collect();
            config.retry.retry_on = strings(v, &key)?
                .iter()
                .map(|name| {
                    Cause::ALL
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, c)| *c)
                        .ok_or_else(|| ConfigErrorKind::UnknownValue {
                            key: key.clone(),
                            value: name.clone(),
                            known: names.join(", "),
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = table.remove("after") {
            config.after = strings(v, &sub("after"))?;
        }
        if let Some(v) = table.remove("requires") {
            config.requires = strings(v, &sub("requires"))?;
        }
        debug_assert!(VALIDATOR_KEYS.iter().all(|k| !table.contains_key(*k)));
        config.settings = table;
        Ok(config)
    }

    /// The validator's own settings as the JSON object sent in `Validate.config_json`. Keys are
    /// sorted, so equal tables give equal text.
    pub fn settings_json(&self) -> String {
        serde_json::to_string(&self.settings).expect("a TOML table is always valid JSON")
    }
}

fn duration(value: &Value, key: &str) -> Result<Duration, ConfigErrorKind> {
    value
        .as_str()
        .and_then(validators::settings::parse_duration)
        .ok_or_else(|| ConfigErrorKind::BadDuration {
            key: key.to_owned(),
            value: value.to_string(),
        })
}

fn globs(value: Value, key: &str) -> Result<Globs, ConfigErrorKind> {
    Globs::new(strings(value, key)?).map_err(|source| ConfigErrorKind::BadGlob {
        key: key.to_owned(),
        source,
    })
}

/// `[cache.remote]`: a URL, whether to only read, an operation's time limit, the end-of-run
/// budget for writes, and the failures that make a run skip the remote.
fn remote_table(value: Value) -> Result<crate::cache::remote::Settings, ConfigErrorKind> {
    let table = into_table(value, "cache.remote")?;
    check_keys(
        &table,
        "cache.remote",
        &["url", "read_only", "timeout", "write_budget", "failures"],
    )?;
    let mut remote = crate::cache::remote::Settings::default();
    if let Some(url) = table.get("url") {
        let url = url.as_str().filter(|u| u.contains("://")).ok_or_else(|| {
            wrong(
                "cache.remote.url",
                "a URL such as \"redis://127.0.0.1:6379/0\", \"webdav+https://host/path\" or \"s3://bucket/prefix\"",
            )
        })?;
        remote.url = Some(url.to_owned());
    }
    if let Some(v) = table.get("read_only") {
        remote.read_only = v
            .as_bool()
            .ok_or_else(|| wrong("cache.remote.read_only", "true or false"))?;
    }
    if let Some(v) = table.get("timeout") {
        remote.timeout = duration(v, "cache.remote.timeout")?;
    }
    if let Some(v) = table.get("write_budget") {
        remote.write_budget = duration(v, "cache.remote.write_budget")?;
    }
    if let Some(v) = table.get("failures") {
        remote.failures = positive(v, "cache.remote.failures")?;
    }
    Ok(remote)
}

/// `[alerts]`: a factor above 1, two shares between 0 and 1, a window of runs.
fn alerts_table(value: Value) -> Result<Alerts, ConfigErrorKind> {
    let table = into_table(value, "alerts")?;
    let keys = ["p95_regression", "timeout_rate", "hit_rate_below", "window"];
    check_keys(&table, "alerts", &keys)?;
    let number = |key: &str| {
        table
            .get(key)
            .map(|v| v.as_float().or(v.as_integer().map(|n| n as f64)))
    };
    let mut alerts = Alerts::default();
    if let Some(factor) = number("p95_regression") {
        alerts.p95_regression = Some(factor.filter(|f| *f >= 1.0).ok_or_else(|| {
            wrong(
                "alerts.p95_regression",
                "a number of at least 1, such as 1.5",
            )
        })?);
    }
    for (key, slot) in [
        ("timeout_rate", &mut alerts.timeout_rate),
        ("hit_rate_below", &mut alerts.hit_rate_below),
    ] {
        if let Some(share) = number(key) {
            let share = share.filter(|s| (0.0..=1.0).contains(s)).ok_or_else(|| {
                wrong(&format!("alerts.{key}"), "a share from 0 to 1, such as 0.1")
            })?;
            *slot = Some(share);
        }
    }
    if let Some(window) = table.get("window") {
        alerts.window = positive(window, "alerts.window")?;
    }
    Ok(alerts)
}

fn positive(value: &Value, key: &str) -> Result<u32, ConfigErrorKind> {
    value
        .as_integer()
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| wrong(key, "a positive whole number"))
}

fn strings(value: Value, key: &str) -> Result<Vec<String>, ConfigErrorKind> {
    let list = match value {
        Value::Array(list) => list,
        _ => return Err(wrong(key, "a list of strings")),
    };
    list.into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(wrong(key, "a list of strings")),
        })
        .collect()
}

fn into_table(value: Value, key: &str) -> Result<Table, ConfigErrorKind> {
    match value {
        Value::Table(t) => Ok(t),
        _ => Err(wrong(key, "a table")),
    }
}

fn wrong(key: &str, expected: &'static str) -> ConfigErrorKind {
    ConfigErrorKind::WrongType {
        key: key.to_owned(),
        expected,
    }
}

fn check_keys(table: &Table, prefix: &str, known: &[&str]) -> Result<(), ConfigErrorKind> {
    match table.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(ConfigErrorKind::UnknownKey {
            key: if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            },
            known: known.join(", "),
        }),
    }
}

/// Overlays `top` on `base`: tables merge key by key, anything else is replaced.
fn merge(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(t)) => merge(b, t),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// One line from a TOML error: its message and the line it points at.
fn syntax(text: &str, error: &toml::de::Error) -> ConfigErrorKind {
    // Lines before the error's start, plus its own: counting newlines, not `lines()`, which
    // would miss the line an error starts at the very beginning of.
    let line = error.span().map_or(1, |span| {
        let before = text.get(..span.start).unwrap_or(text);
        before.bytes().filter(|b| *b == b'\n').count() + 1
    });
    ConfigErrorKind::Syntax {
        line,
        message: error.message().trim().replace('\n', " "),
    }
}

/// Finds the configuration file by walking up from `start`.
pub fn find(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, None, None).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_silence_limits_under_a_ceiling() {
        let c = Config::defaults();
        let limits = c.limits_for("x", "type_safety", None);
        assert_eq!(limits.silence, Some(Duration::from_secs(120)));
        assert_eq!(limits.total, DEFAULT_CEILING);
        let security = c.limits_for("x", "security", None).silence;
        assert_eq!(security, Some(Duration::from_secs(90)));
        let other = c.limits_for("x", "spelling", None).silence;
        assert_eq!(other, Some(DEFAULT_TIMEOUT));
    }

    #[test]
    fn explicit_timeouts_are_hard_limits_and_a_validators_wins() {
        let c = parse("[timeouts]\ntype_safety = \"5s\"\n[validators.p]\ntimeout = \"2s\"")
            .expect("valid");
        let suggested = Some(Duration::from_secs(7));
        let hard = |secs| Limits {
            total: Duration::from_secs(secs),
            silence: None,
        };
        assert_eq!(c.limits_for("p", "type_safety", suggested), hard(2));
        assert_eq!(c.limits_for("q", "type_safety", suggested), hard(5));
        let suggested_limits = c.limits_for("q", "security", suggested);
        assert_eq!(suggested_limits.silence, Some(Duration::from_secs(7)));
        assert_eq!(c.handshake_limits("p"), hard(2));
        assert_eq!(c.handshake_limits("q").total, DEFAULT_TIMEOUT);
    }

    #[test]
    fn a_timeout_for_no_known_dimension_is_warned_about() {
        let c = parse("[timeouts]\ntype_saftey = \"5s\"\nvisual = \"1s\"\nspelling = \"1s\"")
            .expect("valid");
        let warnings = c.unused_timeouts(["spelling"].into_iter());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("[timeouts] type_saftey: no validator of this run"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0]
                .ends_with("code_quality, type_safety, security, visual, behavioral, spelling"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn an_invalid_glob_is_a_configuration_error_naming_its_key() {
        let err = parse("[validators.ruff]\nexclude = [\"src/[a.py\"]").expect_err("bad glob");
        assert!(
            err.starts_with("`validators.ruff.exclude`: invalid glob \"src/[a.py\""),
            "{err}"
        );
        let err = parse("[validators.ruff]\nfiles = [\"{a\"]").expect_err("bad glob");
        assert!(
            err.starts_with("`validators.ruff.files`: invalid glob"),
            "{err}"
        );
    }

    #[test]
    fn unknown_validator_keys_are_the_validators_settings() {
        let c = parse("[validators.ruff]\nenabled = false\nselect = [\"F\"]\nline-length = 99")
            .expect("valid");
        let ruff = &c.validators["ruff"];
        assert_eq!(ruff.enabled, Some(false));
        assert_eq!(ruff.settings_json(), r#"{"line-length":99,"select":["F"]}"#);
    }

    #[test]
    fn alerts_take_a_factor_shares_and_a_window() {
        let config = parse(
            "[alerts]\np95_regression = 2\ntimeout_rate = 0.1\nhit_rate_below = 0.5\nwindow = 30",
        )
        .expect("valid");
        assert_eq!(config.alerts.p95_regression, Some(2.0));
        assert_eq!(config.alerts.timeout_rate, Some(0.1));
        assert_eq!(config.alerts.hit_rate_below, Some(0.5));
        assert_eq!(config.alerts.window, 30);
        assert!(!parse("").expect("empty").alerts.any());
        for (text, message) in [
            (
                "p95_regression = 0.5",
                "`alerts.p95_regression` must be a number of at least 1",
            ),
            (
                "timeout_rate = 2",
                "`alerts.timeout_rate` must be a share from 0 to 1",
            ),
            ("hit_rate = 0.5", "unknown key `alerts.hit_rate`"),
        ] {
            let err = parse(&format!("[alerts]\n{text}")).expect_err(text);
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn an_unknown_top_level_key_is_named_with_the_known_ones() {
        assert_eq!(
            parse("timeout = 3").expect_err("unknown"),
            "unknown key `timeout`; the known keys are timeouts, grace_period, validators, \
             profiles, tools, max_fix_rounds, cache, breakers, baseline, alerts"
        );
    }

    #[test]
    fn a_bad_duration_names_its_key_and_shows_the_value_as_written() {
        let err = parse("[validators.ruff]\ntimeout = \"soon\"").expect_err("bad");
        assert!(
            err.starts_with("`validators.ruff.timeout`: invalid duration \"soon\"; write"),
            "{err}"
        );
        assert!(err.contains("\"30s\""), "{err}");
        let err = parse("[timeouts]\ntype_safety = \"90\"").expect_err("no unit");
        assert!(err.contains("invalid duration \"90\"; write"), "{err}");
        let err = parse("[timeouts]\ntype_safety = 90").expect_err("a number");
        assert!(err.contains("invalid duration 90; write"), "{err}");
    }

    #[test]
    fn a_syntax_error_is_one_line_with_its_line_number() {
        let err = parse("[timeouts]\ncode_quality = \n").expect_err("syntax");
        assert!(err.starts_with("invalid TOML at line 2:"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        // An error whose span starts a line: a duplicate key on line 3.
        let err = parse("[cache]\nmax_age = \"1d\"\nmax_age = \"2d\"\n").expect_err("dup");
        assert!(err.starts_with("invalid TOML at line 3:"), "{err}");
    }

    #[test]
    fn a_profile_overlays_validator_tables_key_by_key() {
        let text = "[validators.ruff]\nselect = [\"F\"]\ntimeout = \"9s\"\n\
                    [profiles.ci.validators.ruff]\ntimeout = \"1s\"";
        let c = Config::parse(text, None, Some("ci")).expect("valid");
        assert_eq!(c.validators["ruff"].timeout, Some(Duration::from_secs(1)));
        assert_eq!(c.validators["ruff"].settings_json(), r#"{"select":["F"]}"#);
        let plain = Config::parse(text, None, None).expect("valid");
        assert_eq!(
            plain.validators["ruff"].timeout,
            Some(Duration::from_secs(9))
        );
    }

    #[test]
    fn an_unknown_profile_lists_the_known_ones() {
        let err = Config::parse("[profiles.ci]\n", None, Some("dev")).expect_err("unknown");
        assert_eq!(
            err.to_string(),
            "unknown profile `dev`; add a [profiles.dev] table or choose one of: ci"
        );
    }

    #[test]
    fn tool_pins_name_known_tools() {
        let c = parse("[tools]\nruff = \"0.8.4\"").expect("valid");
        assert_eq!(c.tools["ruff"], "0.8.4");
        let err = parse("[tools]\nblack = \"1\"").expect_err("unknown tool");
        assert!(
            err.starts_with("unknown key `tools.black`; the known keys are bandit, pyright, ruff"),
            "{err}"
        );
    }

    #[test]
    fn fix_rounds_and_cache_age_are_read_and_checked() {
        let config = parse("max_fix_rounds = 5\n[cache]\nmax_age = \"30d\"").expect("valid");
        assert_eq!(config.max_fix_rounds, 5);
        assert_eq!(config.cache_max_age, Some(Duration::from_secs(30 * 86400)));
        assert_eq!(Config::defaults().max_fix_rounds, DEFAULT_MAX_FIX_ROUNDS);
        let err = parse("max_fix_rounds = 0").expect_err("zero rounds");
        assert!(
            err.contains("`max_fix_rounds` must be a positive whole number"),
            "{err}"
        );
        let err = parse("[cache]\nsize = 1").expect_err("unknown key");
        assert!(err.contains("unknown key `cache.size`"), "{err}");
    }

    #[test]
    fn the_remote_cache_table_is_read_and_checked() {
        let config = parse(
            "[cache.remote]\nurl = \"redis://127.0.0.1:6379/0\"\nread_only = true\n\
             timeout = \"2s\"\nwrite_budget = \"30s\"\nfailures = 5",
        )
        .expect("valid");
        let remote = config.cache_remote;
        assert_eq!(remote.url.as_deref(), Some("redis://127.0.0.1:6379/0"));
        assert!(remote.read_only);
        assert_eq!(remote.timeout, Duration::from_secs(2));
        assert_eq!(remote.write_budget, Duration::from_secs(30));
        assert_eq!(remote.failures, 5);
        let err = parse("[cache.remote]\nurl = \"127.0.0.1:6379\"").expect_err("no scheme");
        assert!(
            err.starts_with("`cache.remote.url` must be a URL such as"),
            "{err}"
        );
        let err = parse("[cache.remote]\nsecret = \"x\"").expect_err("no secrets in files");
        assert!(err.contains("unknown key `cache.remote.secret`"), "{err}");
        let err = parse("[cache.remote]\nfailures = 0").expect_err("zero");
        assert!(
            err.contains("`cache.remote.failures` must be a positive"),
            "{err}"
        );
    }

    #[test]
    fn a_wrongly_typed_batch_size_is_named() {
        assert_eq!(
            parse("[validators.b]\nbatch_size = 0").expect_err("zero"),
            "`validators.b.batch_size` must be a positive whole number"
        );
    }
}
