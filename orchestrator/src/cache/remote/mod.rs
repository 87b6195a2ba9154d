//! The remote level of the cache: results shared between machines through storage a team
//! already runs (Redis, WebDAV, S3 and compatibles), behind the local SQLite cache.
//!
//! Lookups go to the local cache first and only its misses to the remote; a remote hit fills
//! the local cache. Fresh results go to both, the remote write in the background through a
//! bounded queue that the end of the run waits for within a time budget. The remote never
//! fails a run: a failed operation is retried while the error is transient, each failure
//! counts against a per-run circuit breaker, and once it opens the remote is skipped for the
//! rest of the run with one warning in the report. Every object is sealed with a key derived
//! from `ORCHESTRATOR_CACHE_SECRET` ([`seal`]); without the secret nothing read could be
//! trusted, so the remote is not used at all.
//!
//! The storage client is the `remote-cache` cargo feature; a build without it warns that a
//! configured remote is not used, and runs on the local cache.

#[cfg(feature = "remote-cache")]
mod client;
pub mod seal;

#[cfg(feature = "remote-cache")]
pub use client::Remote;

/// Without the `remote-cache` feature there is no client: a remote can never be opened.
#[cfg(not(feature = "remote-cache"))]
#[derive(Debug)]
pub enum Remote {}

#[cfg(not(feature = "remote-cache"))]
impl Remote {
    pub fn open(settings: Resolved) -> Result<Remote, String> {
        Err(format!(
            "remote cache {} is not used: this orchestrator was built without the \
             `remote-cache` feature (fix: build it with `--features remote-cache`)",
            redact(&settings.url)
        ))
    }

    pub fn get(&self, _keys: &[crate::cache::Key]) -> Vec<Option<Vec<u8>>> {
        match *self {}
    }

    pub fn put(&self, _entries: &[(crate::cache::Key, Vec<u8>)]) {
        match *self {}
    }

    pub fn finish(&self) -> (Counts, Vec<String>) {
        match *self {}
    }
}

use std::time::Duration;

/// The environment variable that names the remote, over `[cache.remote] url`; `off` or empty
/// turns a configured remote off.
pub const URL_VAR: &str = "ORCHESTRATOR_REMOTE_CACHE";

/// The environment variable holding the secret every machine sharing the remote knows.
pub const SECRET_VAR: &str = "ORCHESTRATOR_CACHE_SECRET";

/// Set to a true value, the remote is only read (for builds of untrusted code).
pub const READ_ONLY_VAR: &str = "ORCHESTRATOR_REMOTE_CACHE_READ_ONLY";

/// The largest object read back; anything larger is refused unread past this size, as a
/// frame over the protocol's limit is.
pub const MAX_OBJECT_BYTES: u64 = 64 << 20;

/// `[cache.remote]` as configured, before the environment has its say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub url: Option<String>,
    pub read_only: bool,
    /// The longest one remote operation may take, retries included.
    pub timeout: Duration,
    /// How long the end of a run waits for background writes.
    pub write_budget: Duration,
    /// Failed operations in one run after which the remote is skipped.
    pub failures: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            url: None,
            read_only: false,
            timeout: Duration::from_secs(5),
            write_budget: Duration::from_secs(10),
            failures: 3,
        }
    }
}

/// What a run is to use: the settings with the environment applied and a secret found.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub url: String,
    pub read_only: bool,
    pub timeout: Duration,
    pub write_budget: Duration,
    pub failures: u32,
    pub seal: seal::Seal,
}

impl Settings {
    /// The remote a run uses, if any: `Ok(None)` when none is configured or it is turned off,
    /// `Err` with the warning to give when one is configured but cannot be used.
    pub fn resolve(&self) -> Result<Option<Resolved>, String> {
        let env = |name: &str| std::env::var(name).ok();
        let url = match env(URL_VAR) {
            Some(v) if v.is_empty() || v.eq_ignore_ascii_case("off") => return Ok(None),
            Some(v) => v,
            None => match &self.url {
                Some(url) => url.clone(),
                None => return Ok(None),
            },
        };
        let shown = redact(&url);
        let Some(secret) = env(SECRET_VAR).filter(|s| !s.is_empty()) else {
            return Err(format!(
                "remote cache {shown} is not used: {SECRET_VAR} is not set, so nothing read from \
                 it could be trusted (fix: set it to the secret shared by the machines that \
                 write the cache, or unset {URL_VAR} and [cache.remote])"
            ));
        };
        let read_only = self.read_only
            || env(READ_ONLY_VAR).is_some_and(|v| {
                matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
            });
        Ok(Some(Resolved {
            url,
            read_only,
            timeout: self.timeout,
            write_budget: self.write_budget,
            failures: self.failures,
            seal: seal::Seal::new(secret.as_bytes()),
        }))
    }
}

/// A URL fit for messages: without a password.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            match authority.rsplit_once('@') {
                Some((user, host)) => {
                    let user = user.split(':').next().unwrap_or_default();
                    let user = if user.is_empty() { "" } else { user };
                    format!("{scheme}://{user}:***@{host}{path}")
                }
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// What the remote did in one run, as `cache stats` shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub hits: u64,
    pub misses: u64,
    /// Operations that failed after their retries, or timed out.
    pub errors: u64,
    /// Objects whose tag did not verify, or that were too large: never served.
    pub rejected: u64,
    pub written: u64,
    /// Writes not made: the queue was full, the breaker open, or the budget over.
    pub unwritten: u64,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl Counts {
    /// The counters as `(name, value)`, under the names the cache database keeps them by.
    pub fn named(&self) -> [(&'static str, u64); 8] {
        [
            ("remote_hits", self.hits),
            ("remote_misses", self.misses),
            ("remote_errors", self.errors),
            ("remote_rejected", self.rejected),
            ("remote_written", self.written),
            ("remote_unwritten", self.unwritten),
            ("remote_bytes_read", self.bytes_read),
            ("remote_bytes_written", self.bytes_written),
        ]
    }

    /// The counters back from their names; `None` if the run used no remote.
    pub fn from_named(named: &[(String, u64)]) -> Option<Counts> {
        let get = |name: &str| named.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        Some(Counts {
            hits: get("remote_hits")?,
            misses: get("remote_misses")?,
            errors: get("remote_errors")?,
            rejected: get("remote_rejected")?,
            written: get("remote_written")?,
            unwritten: get("remote_unwritten")?,
            bytes_read: get("remote_bytes_read")?,
            bytes_written: get("remote_bytes_written")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("redis://:hunter2@cache:6379/0"),
            "redis://:***@cache:6379/0"
        );
        assert_eq!(
            redact("webdav+https://ci:pw@dav.example/cache"),
            "webdav+https://ci:***@dav.example/cache"
        );
        assert_eq!(redact("s3://bucket/prefix"), "s3://bucket/prefix");
    }

    #[test]
    fn counts_survive_their_names() {
        let counts = Counts {
            hits: 1,
            misses: 2,
            errors: 3,
            rejected: 4,
            written: 5,
            unwritten: 6,
            bytes_read: 7,
            bytes_written: 8,
        };
        let named: Vec<(String, u64)> = counts
            .named()
            .iter()
            .map(|(n, v)| (n.to_string(), *v))
            .collect();
        assert_eq!(Counts::from_named(&named), Some(counts));
        assert_eq!(Counts::from_named(&named[1..]), None);
    }
}
