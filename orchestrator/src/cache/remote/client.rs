//! The remote level's client: OpenDAL's operator for the storage a URL names, run on a small
//! runtime of its own so that the cache's synchronous callers (blocking threads of the run's
//! runtime, and commands with no runtime at all) can use it alike.

use super::seal::Seal;
use super::{redact, Counts, Resolved, MAX_OBJECT_BYTES};
use crate::cache::Key;
use crate::locks::lock;
use backon::BackoffBuilder;
use opendal::{ErrorKind, Operator};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// Objects live under this prefix: a later format goes beside it, not over it.
const PREFIX: &str = "orchestrator/v1/";

/// Reads and writes in flight at once.
const CONCURRENCY: usize = 32;

/// Results waiting to be written, at most; past it, results are left unwritten rather than
/// slowing the run or holding its memory.
const QUEUE: usize = 4096;

/// Tries of one operation whose error the storage calls transient.
const RETRIES: usize = 2;

/// A remote cache, open for one run.
pub struct Remote {
    runtime: Option<tokio::runtime::Runtime>,
    shared: Arc<Shared>,
    writer: Mutex<Option<Writer>>,
}

struct Shared {
    op: Operator,
    seal: Seal,
    shown: String,
    read_only: bool,
    timeout: Duration,
    write_budget: Duration,
    allowed_failures: u32,
    failures: AtomicU32,
    open: AtomicBool,
    /// The first failure's text, for the warning once the breaker opens.
    first_error: Mutex<Option<String>>,
    counts: Tally,
}

#[derive(Default)]
struct Tally {
    hits: AtomicU64,
    misses: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    written: AtomicU64,
    unwritten: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
}

struct Writer {
    queue: mpsc::Sender<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.shared.shown)
            .field("read_only", &self.shared.read_only)
            .finish_non_exhaustive()
    }
}

impl Remote {
    /// Connects nothing yet: the operator is built from the URL, and its first use connects.
    /// The error is the warning line to give.
    pub fn open(settings: Resolved) -> Result<Remote, String> {
        let shown = redact(&settings.url);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("remote-cache")
            .enable_all()
            .build()
            .map_err(|e| format!("remote cache {shown} is not used: no runtime for it ({e})"))?;
        // Plain and TLS connections alike go through rustls, with ring as its crypto.
        let _ = rustls::crypto::ring::default_provider().install_default();
        opendal_http_transport_reqwest::install_default();
        let op = {
            let _entered = runtime.enter();
            operator(&settings.url)
        }
        .and_then(|op| probe(&settings.url, settings.timeout).map(|()| op))
        .map_err(|e| format!("remote cache {shown} is not used: {e}"))?;
        let shared = Arc::new(Shared {
            op,
            seal: settings.seal,
            shown,
            read_only: settings.read_only,
            timeout: settings.timeout,
            write_budget: settings.write_budget,
            allowed_failures: settings.failures.max(1),
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            first_error: Mutex::new(None),
            counts: Tally::default(),
        });
        let writer = (!shared.read_only).then(|| {
            let (queue, receiver) = mpsc::channel(QUEUE);
            let task = runtime.spawn(write_all(shared.clone(), receiver));
            Writer { queue, task }
        });
        Ok(Remote {
            runtime: Some(runtime),
            shared,
            writer: Mutex::new(writer),
        })
    }

    /// The stored values of `keys`, in order: `None` for a miss, a failure, or an object that
    /// does not verify.
    pub fn get(&self, keys: &[Key]) -> Vec<Option<Vec<u8>>> {
        let (Some(runtime), false) = (&self.runtime, self.shared.tripped()) else {
            return vec![None; keys.len()];
        };
        let found = runtime.block_on(async {
            let permits = Arc::new(Semaphore::new(CONCURRENCY));
            let mut reads = JoinSet::new();
            for (i, key) in keys.iter().enumerate() {
                let (shared, permits, key) = (self.shared.clone(), permits.clone(), *key);
                reads.spawn(async move {
                    let _permit = permits.acquire_owned().await;
                    (i, shared.fetch(&key).await)
                });
            }
            let mut found = vec![None; keys.len()];
            while let Some(done) = reads.join_next().await {
                if let Ok((i, value)) = done {
                    found[i] = value;
                }
            }
            found
        });
        found
    }

    /// Queues `entries` to be written in the background; those that do not fit in the queue
    /// are left unwritten.
    pub fn put(&self, entries: &[(Key, Vec<u8>)]) {
        let writer = lock(&self.writer);
        let Some(writer) = writer.as_ref() else {
            return;
        };
        for (key, value) in entries {
            let object = (self.shared.object(key), self.shared.seal.seal(key, value));
            if self.shared.tripped() || writer.queue.try_send(object).is_err() {
                self.shared.counts.unwritten.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Waits for the queued writes within the write budget, then gives this run's counts and
    /// the warnings the report is to carry.
    pub fn finish(&self) -> (Counts, Vec<String>) {
        let mut warnings = Vec::new();
        if let (Some(runtime), Some(writer)) = (&self.runtime, lock(&self.writer).take()) {
            let Writer { queue, mut task } = writer;
            drop(queue);
            let budget = self.shared.write_budget;
            let ended =
                runtime.block_on(async { tokio::time::timeout(budget, &mut task).await.is_ok() });
            if !ended {
                task.abort();
                let _ = runtime.block_on(task);
                warnings.push(format!(
                    "remote cache {}: results still being written after the write budget of \
                     {}s were left unwritten (fix: a larger [cache.remote] write_budget, or a \
                     faster store)",
                    self.shared.shown,
                    budget.as_secs_f64()
                ));
            }
        }
        let counts = self.shared.counts.snapshot();
        if self.shared.open.load(Ordering::Relaxed) {
            let first = lock(&self.shared.first_error).clone().unwrap_or_default();
            warnings.push(format!(
                "remote cache {}: skipped for the rest of the run after {} failed operations \
                 (first: {first}); results came from and went to the local cache only",
                self.shared.shown, self.shared.allowed_failures
            ));
        }
        if counts.rejected > 0 {
            warnings.push(format!(
                "remote cache {}: {} objects were not served: their tag did not verify or they \
                 were too large (written with another {}, or altered in the store)",
                self.shared.shown,
                counts.rejected,
                super::SECRET_VAR
            ));
        }
        // Nothing stays queued past here: a later write would come after the counts.
        self.shared.open.store(true, Ordering::Relaxed);
        (counts, warnings)
    }
}

impl Drop for Remote {
    /// Dropping a runtime waits for its tasks, which is not allowed on the run's own
    /// threads; nothing left is worth waiting for once the run has finished.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Shared {
    fn object(&self, key: &Key) -> String {
        format!("{PREFIX}{}", self.seal.name(key))
    }

    fn tripped(&self) -> bool {
        self.open.load(Ordering::Relaxed)
    }

    /// One object, verified; failures count against the breaker.
    async fn fetch(&self, key: &Key) -> Option<Vec<u8>> {
        if self.tripped() {
            return None;
        }
        let path = self.object(key);
        // The size first, so that an object over the limit is never read: one request more
        // per hit, none more per miss (and a range read costs the same two on key-value
        // stores).
        let size = match self.attempt(|| self.op.stat(&path)).await {
            Ok(Some(meta)) => meta.content_length(),
            Ok(None) => {
                self.counts.misses.fetch_add(1, Ordering::Relaxed);
                return None;
            }
            Err(()) => return None,
        };
        if size > MAX_OBJECT_BYTES {
            self.counts.rejected.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let read = self.attempt(|| self.op.read(&path)).await;
        let counts = &self.counts;
        match read {
            Ok(Some(buffer)) => {
                let object = buffer.to_vec();
                counts
                    .bytes_read
                    .fetch_add(object.len() as u64, Ordering::Relaxed);
                if object.len() as u64 > MAX_OBJECT_BYTES {
                    counts.rejected.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                match self.seal.open(key, &object) {
                    Ok(value) => {
                        counts.hits.fetch_add(1, Ordering::Relaxed);
                        Some(value.to_vec())
                    }
                    Err(why) => {
                        tracing::debug!(object = %path, %why, "remote object not served");
                        counts.rejected.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            }
            Ok(None) => {
                counts.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
            Err(()) => None,
        }
    }

    /// One write; failures count against the breaker.
    async fn store(&self, path: &str, object: Vec<u8>) {
        if self.tripped() {
            self.counts.unwritten.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let size = object.len() as u64;
        let buffer = opendal::Buffer::from(object);
        let wrote = self
            .attempt(|| async { self.op.write(path, buffer.clone()).await.map(Some) })
            .await;
        if wrote.is_ok() {
            self.counts.written.fetch_add(1, Ordering::Relaxed);
            self.counts.bytes_written.fetch_add(size, Ordering::Relaxed);
        } else {
            self.counts.unwritten.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Runs `op` within the time limit, again while its error is transient; `Ok(None)` is a
    /// missing object. A final failure is counted and may open the breaker.
    async fn attempt<T, F, Fut>(&self, op: F) -> Result<Option<T>, ()>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = opendal::Result<T>>,
    {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_millis(500))
            .with_jitter()
            .with_max_times(RETRIES)
            .build();
        let outcome = tokio::time::timeout(self.timeout, async {
            loop {
                match op().await {
                    Ok(value) => return Ok(Some(value)),
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) if e.is_temporary() && !self.tripped() => match delays.next() {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(e.to_string()),
                    },
                    Err(e) => return Err(e.to_string()),
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {}s", self.timeout.as_secs_f64())));
        outcome.map_err(|error| self.failed(error))
    }

    fn failed(&self, error: String) {
        tracing::debug!(remote = %self.shown, %error, "remote cache operation failed");
        self.counts.errors.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_error).get_or_insert(error);
        if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= self.allowed_failures {
            self.open.store(true, Ordering::Relaxed);
        }
    }
}

impl Tally {
    fn snapshot(&self) -> Counts {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            hits: get(&self.hits),
            misses: get(&self.misses),
            errors: get(&self.errors),
            rejected: get(&self.rejected),
            written: get(&self.written),
            unwritten: get(&self.unwritten),
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
        }
    }
}

/// Drains the queue, [`CONCURRENCY`] writes at a time.
async fn write_all(shared: Arc<Shared>, mut queue: mpsc::Receiver<(String, Vec<u8>)>) {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut writes = JoinSet::new();
    while let Some((path, object)) = queue.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        writes.spawn(async move {
            shared.store(&path, object).await;
            drop(permit);
        });
        while writes.try_join_next().is_some() {}
    }
    while writes.join_next().await.is_some() {}
}

/// The operator for a remote URL. Schemes: `redis://` and `rediss://` (database in the path,
/// credentials in the user part), `webdav+http://` and `webdav+https://` (the collection in
/// the path), `s3://BUCKET/PREFIX` (credentials, region and endpoint from the usual AWS
/// environment variables, or `?region=` and `?endpoint=`).
fn operator(text: &str) -> Result<Operator, String> {
    let url =
        url::Url::parse(text).map_err(|e| format!("`{}` is not a URL ({e})", redact(text)))?;
    let host = url.host_str().unwrap_or_default();
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let password = url.password().map(decode);
    let user = decode(url.username());
    let built = match url.scheme() {
        "redis" | "rediss" => {
            let db = url.path().trim_matches('/');
            let db: i64 = if db.is_empty() {
                0
            } else {
                db.parse()
                    .map_err(|_| format!("the database `{db}` is not a number"))?
            };
            let mut builder = opendal::services::Redis::default()
                .endpoint(&format!("{}://{authority}", url.scheme()))
                .db(db)
                .root("/");
            if !user.is_empty() {
                builder = builder.username(&user);
            }
            if let Some(password) = &password {
                builder = builder.password(password);
            }
            Operator::new(builder)
        }
        "webdav+http" | "webdav+https" => {
            let scheme = url.scheme().trim_start_matches("webdav+");
            let mut builder = opendal::services::Webdav::default()
                .endpoint(&format!("{scheme}://{authority}"))
                .root(url.path());
            if !user.is_empty() {
                builder = builder.username(&user);
            }
            if let Some(password) = &password {
                builder = builder.password(password);
            }
            Operator::new(builder)
        }
        "s3" => {
            let mut builder = opendal::services::S3::default()
                .bucket(host)
                .root(url.path());
            for (name, value) in url.query_pairs() {
                builder = match name.as_ref() {
                    "region" => builder.region(&value),
                    "endpoint" => builder.endpoint(&value),
                    other => {
                        return Err(format!(
                            "unknown s3 URL parameter `{other}` (known: region, endpoint)"
                        ))
                    }
                };
            }
            Operator::new(builder)
        }
        other => {
            return Err(format!(
                "unsupported URL scheme `{other}` (use redis://, rediss://, webdav+http://, \
                 webdav+https:// or s3://)"
            ))
        }
    };
    built.map_err(|e| e.to_string())
}

/// Whether the server a URL names accepts connections, within `limit` (at most 2 s). A
/// storage client retries a refused connection for seconds before it fails; asking first
/// turns a server that is down into one warning at once, not a wait at the first operation.
/// A URL without a host (S3's default endpoint) is not asked.
fn probe(text: &str, limit: Duration) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let Ok(url) = url::Url::parse(text) else {
        return Ok(());
    };
    let endpoint = match url.scheme() {
        "s3" => match url.query_pairs().find(|(name, _)| name == "endpoint") {
            Some((_, endpoint)) => match url::Url::parse(&endpoint) {
                Ok(endpoint) => endpoint,
                Err(_) => return Ok(()),
            },
            None => return Ok(()),
        },
        _ => url,
    };
    let Some(host) = endpoint.host_str() else {
        return Ok(());
    };
    let port = endpoint.port().unwrap_or(match endpoint.scheme() {
        "redis" | "rediss" => 6379,
        "http" | "webdav+http" => 80,
        _ => 443,
    });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}:{port} ({e})"))?;
    let limit = limit.min(Duration::from_secs(2));
    let mut last = None;
    for address in addresses {
        match std::net::TcpStream::connect_timeout(&address, limit) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => format!("cannot connect to {host}:{port} ({e})"),
        None => format!("{host} has no address"),
    })
}

/// A percent-decoded URL part.
fn decode(part: &str) -> String {
    url::form_urlencoded::parse(format!("x={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_storage_or_say_what_is_wrong() {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let _entered = runtime.enter();
        for good in [
            "redis://127.0.0.1:6379/0",
            "redis://:p%40ss@127.0.0.1:6379",
            "webdav+http://127.0.0.1:8080/cache",
            "s3://bucket/prefix?region=eu-west-1",
        ] {
            assert!(operator(good).is_ok(), "{good}: {:?}", operator(good).err());
        }
        let refused = |url: &str| operator(url).expect_err(url);
        assert!(refused("ftp://host/x").contains("unsupported URL scheme `ftp`"));
        assert!(refused("redis://host/zero").contains("database `zero`"));
        assert!(refused("not a url").contains("is not a URL"));
        assert!(refused("s3://b/p?color=red").contains("unknown s3 URL parameter `color`"));
    }
}
