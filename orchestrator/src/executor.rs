//! One validator's run: its processes, its deadline, its batches.
//!
//! An executor starts the validator (waiting for a `--jobs` permit), learns its manifest,
//! chooses its files, and feeds them in one request or, for a `per_file` validator with a batch
//! size, in batches pulled from a shared queue by as many parallel processes as permits allow.
//! Every response is checked against the protocol's rules and forwarded to the dispatcher as an
//! [`Event`]; the executor's last event is always [`Event::Finished`], whatever happened.
//!
//! One deadline covers the handshake and all the work. Until the manifest tells the dimension,
//! it is the validator's configured timeout or the default; then it becomes the dimension's.
//!
//! Between the handshake and the first request, the cache answers what it can (see
//! [`crate::cache::key`]); only the rest is sent. A `per_file` validator's results are kept as
//! they arrive, so files finished before a crash are not checked again; a `project`
//! validator's only when its run completed, since a partial project answer may be wrong.

use crate::cache::{self, Cache, ConfigFiles, Key, KeyInputs, Subject};
use crate::config::Config;
use crate::hashing::FileHashes;
use crate::plan::PlannedValidator;
use crate::report::Status;
use crate::session::{Closed, Ended, Session, Stopped};
use globset::{GlobBuilder, GlobSetBuilder};
use protocol::{
    FailureKind, FileInput, FileResult, Hello, Manifest, ProtocolError, Request, Response, Scope,
    Validate, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VERSION,
};
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What an executor tells the dispatcher.
#[derive(Debug)]
pub enum Event {
    /// The validator answered its handshake and will check `files` files.
    Started {
        index: usize,
        manifest: Manifest,
        files: u32,
    },
    /// A file's findings arrived, from the validator or from the cache.
    FileResult {
        index: usize,
        result: FileResult,
        cached: bool,
    },
    /// The validator's own count of files done (a `project` validator sends no results until
    /// the end, so this is how its progress shows).
    Progress { index: usize, done: u32, total: u32 },
    /// Files that could not be read and were not sent.
    Unreadable { index: usize, warnings: Vec<String> },
    /// The validator's run is over.
    Finished { index: usize, outcome: Outcome },
}

/// How a validator's run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Passed` stands for "completed"; the dispatcher turns it into `Failed` if errors came.
    pub status: Status,
    pub message: String,
    pub duration: Duration,
    pub stderr_tail: Option<String>,
}

impl Outcome {
    /// An outcome decided before any request: no failure, so no stderr worth showing.
    fn early(status: Status, message: String, started: Instant) -> Outcome {
        Outcome {
            status,
            message,
            duration: started.elapsed(),
            stderr_tail: None,
        }
    }
}

/// What every executor of a run shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: Arc<PathBuf>,
    pub files: Arc<Vec<String>>,
    pub config: Arc<Config>,
    pub hashes: FileHashes,
    pub cache: Cache,
    pub permits: Arc<Semaphore>,
    pub events: mpsc::Sender<Event>,
    /// A fixing round: validators that cannot fix stop after their handshake.
    pub fix: bool,
}

/// Where the results of the files sent to a validator are to be kept.
#[derive(Debug)]
struct ResultKeys {
    by_path: HashMap<String, Key>,
    /// `project` scope: keep results only once the whole run is done.
    all_or_nothing: bool,
}

/// Results gathered before they are written to the cache in one transaction.
const WRITE_BATCH: usize = 64;

/// Why one process of a validator stopped early.
#[derive(Debug)]
enum Failure {
    Spawn(std::io::Error),
    Ended(Ended),
    Refused(protocol::Failed),
    Protocol(ProtocolError),
}

/// The deadline of a validator, shared by its processes.
#[derive(Debug, Clone, Copy)]
struct Clock {
    deadline: Instant,
    timeout: Duration,
}

/// Runs one validator to its end and reports it; never fails.
pub async fn execute(index: usize, validator: PlannedValidator, ctx: Context) {
    let outcome = if validator.disabled {
        Outcome {
            status: Status::Skipped,
            message: "disabled in orchestrator.toml".into(),
            duration: Duration::ZERO,
            stderr_tail: None,
        }
    } else {
        run(index, &validator, &ctx).await
    };
    // The dispatcher outlives every executor; a closed channel means the run was abandoned.
    let _ = ctx.events.send(Event::Finished { index, outcome }).await;
}

async fn run(index: usize, validator: &PlannedValidator, ctx: &Context) -> Outcome {
    let permit = ctx
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("the run's semaphore is never closed");
    let started = Instant::now();
    let provisional = validator
        .settings
        .timeout
        .unwrap_or(crate::config::DEFAULT_TIMEOUT);
    let mut clock = Clock {
        deadline: started + provisional,
        timeout: provisional,
    };
    let grace = ctx.config.grace_period;
    let (session, manifest) = match start(validator, ctx, clock).await {
        Ok(started) => started,
        Err((failure, session)) => {
            return finish_failed(failure, session, clock, grace, started).await;
        }
    };
    if manifest.name != validator.name {
        let failure = Failure::Protocol(ProtocolError::Malformed(format!(
            "its manifest names it `{}`; a validator must be named `validator-{}`",
            manifest.name, manifest.name
        )));
        return finish_failed(failure, Some(session), clock, grace, started).await;
    }
    if ctx.fix && !manifest.can_fix {
        session.finish(grace).await;
        return Outcome::early(Status::Skipped, "cannot fix".into(), started);
    }
    let timeout = ctx.config.timeout_for(
        &validator.name,
        manifest.dimension.as_str(),
        manifest.suggested_timeout_ms.map(Duration::from_millis),
    );
    clock = Clock {
        deadline: started + timeout,
        timeout,
    };
    let files = match matching_files(validator, &manifest, &ctx.files) {
        Ok(files) => files,
        Err(message) => {
            session.finish(grace).await;
            return Outcome {
                status: Status::Crashed,
                message,
                duration: started.elapsed(),
                stderr_tail: None,
            };
        }
    };
    let (inputs, unreadable) = read_inputs(&ctx.hashes, files).await;
    let _ = ctx
        .events
        .send(Event::Started {
            index,
            manifest: manifest.clone(),
            files: u32::try_from(inputs.len()).unwrap_or(u32::MAX),
        })
        .await;
    if !unreadable.is_empty() {
        let _ = ctx
            .events
            .send(Event::Unreadable {
                index,
                warnings: unreadable,
            })
            .await;
    }
    if inputs.is_empty() {
        session.finish(grace).await;
        return Outcome::early(
            Status::Skipped,
            "no selected file matches its globs".into(),
            started,
        );
    }
    let (inputs, keys) = serve_cached(index, validator, &manifest, inputs, ctx).await;
    if inputs.is_empty() {
        session.finish(grace).await;
        return Outcome::early(Status::Passed, String::new(), started);
    }
    let batch_size = match manifest.scope {
        Scope::PerFile => validator.settings.batch_size.or(manifest.batch_size),
        _ => None,
    };
    let queue = Arc::new(Mutex::new(batches(inputs, batch_size)));
    let worker = Worker {
        index,
        validator: Arc::new(validator.clone()),
        ctx: ctx.clone(),
        queue,
        clock,
        keys,
    };
    let mut helpers = JoinSet::new();
    let waiting = worker.queue_len().saturating_sub(1);
    for _ in 0..waiting {
        let Ok(extra) = ctx.permits.clone().try_acquire_owned() else {
            break;
        };
        let helper = worker.clone();
        helpers.spawn(async move { helper.run_new_process(extra).await });
    }
    let mut results = vec![worker.drain_queue(session, permit).await];
    while let Some(joined) = helpers.join_next().await {
        results.push(joined.unwrap_or_else(|e| {
            let failure = Failure::Protocol(ProtocolError::Malformed(format!(
                "a worker task failed: {e}"
            )));
            (Some(failure), close_nothing())
        }));
    }
    summarize(results, clock, grace, started)
}

/// Starts a process and completes its handshake.
async fn start(
    validator: &PlannedValidator,
    ctx: &Context,
    clock: Clock,
) -> Result<(Session, Manifest), (Failure, Option<Session>)> {
    let mut session = Session::spawn(&validator.launch, &ctx.root, DEFAULT_MAX_FRAME_SIZE)
        .map_err(|e| (Failure::Spawn(e), None))?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        coordinator_version: env!("CARGO_PKG_VERSION").to_owned(),
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
    };
    match session.handshake(hello, clock.deadline).await {
        Ok(manifest) => {
            tracing::debug!(validator = %validator.name, version = %manifest.version, "handshake done");
            Ok((session, manifest))
        }
        Err(e) => Err((Failure::Ended(e), Some(session))),
    }
}

/// Works through the batch queue of one validator.
#[derive(Debug, Clone)]
struct Worker {
    index: usize,
    validator: Arc<PlannedValidator>,
    ctx: Context,
    queue: Arc<Mutex<VecDeque<Vec<FileInput>>>>,
    clock: Clock,
    /// `None` when results are not to be cached (no cache, or a fixing round).
    keys: Option<Arc<ResultKeys>>,
}

/// How one worker ended: its failure if any, and how its process was closed.
type WorkerEnd = (Option<Failure>, Closed);

impl Worker {
    fn queue_len(&self) -> usize {
        self.lock_queue().len()
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<FileInput>>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A helper process for a batched validator: start it, then share the queue.
    async fn run_new_process(self, permit: OwnedSemaphorePermit) -> WorkerEnd {
        match start(&self.validator, &self.ctx, self.clock).await {
            Ok((session, _)) => self.drain_queue(session, permit).await,
            Err((failure, session)) => (
                Some(failure),
                close(session, self.ctx.config.grace_period).await,
            ),
        }
    }

    /// Sends batches until the queue is empty or something goes wrong, then ends the process.
    async fn drain_queue(&self, mut session: Session, permit: OwnedSemaphorePermit) -> WorkerEnd {
        let mut failure = None;
        loop {
            let batch = self.lock_queue().pop_front();
            let Some(batch) = batch else { break };
            if let Err(f) = self.request(&mut session, batch).await {
                failure = Some(f);
                break;
            }
        }
        let grace = self.ctx.config.grace_period;
        let closed = match failure {
            None => session.finish(grace).await,
            Some(_) => session.stop(grace).await,
        };
        drop(permit);
        (failure, closed)
    }

    /// One `Validate` request and its responses; the results are kept in the cache as
    /// [`ResultKeys`] says.
    async fn request(&self, session: &mut Session, batch: Vec<FileInput>) -> Result<(), Failure> {
        let mut staged = Vec::new();
        let outcome = self.exchange(session, batch, &mut staged).await;
        if let Some(keys) = &self.keys {
            if outcome.is_ok() || !keys.all_or_nothing {
                self.keep(&mut staged).await;
            }
        }
        outcome
    }

    /// Writes staged results to the cache.
    async fn keep(&self, staged: &mut Vec<(Key, FileResult)>) {
        let entries = std::mem::take(staged);
        let cache = self.ctx.cache.clone();
        let _ = tokio::task::spawn_blocking(move || cache.put(&entries)).await;
    }

    async fn exchange(
        &self,
        session: &mut Session,
        batch: Vec<FileInput>,
        staged: &mut Vec<(Key, FileResult)>,
    ) -> Result<(), Failure> {
        let deadline = self.clock.deadline;
        let mut pending: HashSet<String> = batch.iter().map(|f| f.path.clone()).collect();
        let request = Request::Validate(Validate {
            root: self.ctx.root.to_string_lossy().into_owned(),
            files: batch,
            config_json: self.validator.settings.settings_json(),
            fix: self.ctx.fix,
        });
        session
            .send(&request, deadline)
            .await
            .map_err(Failure::Ended)?;
        loop {
            match session.next(deadline).await.map_err(Failure::Ended)? {
                Response::FileResult(result) => {
                    check_file_result(&result, &mut pending).map_err(Failure::Protocol)?;
                    if result.modified && !self.ctx.fix {
                        return Err(Failure::Protocol(ProtocolError::Malformed(format!(
                            "it reports modifying `{}` although fixing was not asked for",
                            result.path
                        ))));
                    }
                    if let Some(keys) = &self.keys {
                        if let Some(key) = keys.by_path.get(&result.path) {
                            staged.push((*key, result.clone()));
                        }
                        if !keys.all_or_nothing && staged.len() >= WRITE_BATCH {
                            self.keep(staged).await;
                        }
                    }
                    let event = Event::FileResult {
                        index: self.index,
                        result,
                        cached: false,
                    };
                    let _ = self.ctx.events.send(event).await;
                }
                Response::Progress(p) => {
                    tracing::trace!(validator = %self.validator.name, done = p.files_done, total = p.files_total, "progress");
                    let event = Event::Progress {
                        index: self.index,
                        done: p.files_done,
                        total: p.files_total,
                    };
                    let _ = self.ctx.events.send(event).await;
                }
                Response::Log(log) => {
                    tracing::info!(validator = %self.validator.name, level = ?log.level, "{}", log.message);
                }
                Response::Done => return Ok(()),
                Response::Failed(failed) => return Err(Failure::Refused(failed)),
                other => {
                    return Err(Failure::Protocol(ProtocolError::Unexpected {
                        expected: "FileResult, Progress, Log, Done or Failed",
                        got: other.kind(),
                    }))
                }
            }
        }
    }
}

/// A `FileResult` must be for a requested file not reported yet, and carry only its findings.
fn check_file_result(
    result: &FileResult,
    pending: &mut HashSet<String>,
) -> Result<(), ProtocolError> {
    if !pending.remove(&result.path) {
        return Err(ProtocolError::Malformed(format!(
            "FileResult for `{}`, which was not requested or was already reported",
            result.path
        )));
    }
    if let Some(stray) = result.findings.iter().find(|f| f.path != result.path) {
        return Err(ProtocolError::Malformed(format!(
            "FileResult for `{}` has a finding for `{}`",
            result.path, stray.path
        )));
    }
    if let Some(bad) = result
        .findings
        .iter()
        .find(|f| f.line == 0 || f.column == 0)
    {
        return Err(ProtocolError::Malformed(format!(
            "finding {} in `{}` has line {} column {}; both are 1-based",
            bad.rule, bad.path, bad.line, bad.column
        )));
    }
    Ok(())
}

/// The selected files this validator checks: its configured or declared globs, minus excludes.
fn matching_files(
    validator: &PlannedValidator,
    manifest: &Manifest,
    files: &[String],
) -> Result<Vec<String>, String> {
    let globs = validator.settings.files.as_ref().unwrap_or(&manifest.globs);
    let build = |patterns: &[String], key: &str| {
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| {
                    format!(
                        "invalid glob {pattern:?} in {key} of validator `{}`: {e}",
                        validator.name
                    )
                })?;
            set.add(glob);
        }
        set.build().map_err(|e| e.to_string())
    };
    let include = build(globs, "files")?;
    let exclude = build(&validator.settings.exclude, "exclude")?;
    Ok(files
        .iter()
        .filter(|f| include.is_match(f.as_str()) && !exclude.is_match(f.as_str()))
        .cloned()
        .collect())
}

/// Hashes the files; those that cannot be read are left out with a warning.
async fn read_inputs(hashes: &FileHashes, files: Vec<String>) -> (Vec<FileInput>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut unreadable = Vec::new();
    for (path, hash) in hashes.of(files).await {
        match hash {
            Ok(content_hash) => inputs.push(FileInput { path, content_hash }),
            Err(reason) => unreadable.push(format!("{path}: cannot be read ({reason}); skipped")),
        }
    }
    (inputs, unreadable)
}

/// Sends what the cache holds for these inputs as results; returns the inputs still to check
/// and the keys their results are to be kept under.
async fn serve_cached(
    index: usize,
    validator: &PlannedValidator,
    manifest: &Manifest,
    inputs: Vec<FileInput>,
    ctx: &Context,
) -> (Vec<FileInput>, Option<Arc<ResultKeys>>) {
    if ctx.fix || !ctx.cache.enabled() {
        return (inputs, None);
    }
    let base = KeyInputs::new(manifest, &validator.settings.settings_json());
    let declared = manifest.config_files.clone();
    let all_or_nothing = manifest.scope != Scope::PerFile;
    let root = ctx.root.clone();
    let cache = ctx.cache.clone();
    let unserved = inputs.clone();
    let lookup = tokio::task::spawn_blocking(move || {
        let mut config_files = ConfigFiles::new(&declared);
        let keys: Vec<Key> = if all_or_nothing {
            let all = cache::key::project_inputs(&inputs);
            let config = config_files.for_project(&root, inputs.iter().map(|f| f.path.as_str()));
            inputs
                .iter()
                .map(|f| {
                    let subject = Subject::ProjectFile {
                        inputs: &all,
                        path: &f.path,
                    };
                    cache::key::key(&base, &config, subject)
                })
                .collect()
        } else {
            inputs
                .iter()
                .map(|f| {
                    let config = config_files.for_file(&root, &f.path);
                    let subject = Subject::File {
                        path: &f.path,
                        content: &f.content_hash,
                    };
                    cache::key::key(&base, &config, subject)
                })
                .collect()
        };
        let mut found = cache.get(&keys);
        if all_or_nothing && found.iter().any(Option::is_none) {
            found = vec![None; keys.len()];
        }
        let mut hits = Vec::new();
        let mut misses = Vec::new();
        let mut by_path = HashMap::new();
        for ((input, key), result) in inputs.into_iter().zip(keys).zip(found) {
            match result {
                Some(result) => hits.push(result),
                None => {
                    by_path.insert(input.path.clone(), key);
                    misses.push(input);
                }
            }
        }
        (hits, misses, by_path)
    });
    let Ok((hits, misses, by_path)) = lookup.await else {
        return (unserved, None);
    };
    for result in hits {
        let event = Event::FileResult {
            index,
            result,
            cached: true,
        };
        let _ = ctx.events.send(event).await;
    }
    let keys = ResultKeys {
        by_path,
        all_or_nothing,
    };
    (misses, Some(Arc::new(keys)))
}

/// Splits inputs into batches of at most `size` files (one batch without a size).
fn batches(inputs: Vec<FileInput>, size: Option<u32>) -> VecDeque<Vec<FileInput>> {
    match size {
        Some(size) if (size as usize) < inputs.len() => inputs
            .chunks(size as usize)
            .map(<[FileInput]>::to_vec)
            .collect(),
        _ => VecDeque::from([inputs]),
    }
}

async fn finish_failed(
    failure: Failure,
    session: Option<Session>,
    clock: Clock,
    grace: Duration,
    started: Instant,
) -> Outcome {
    let closed = close(session, grace).await;
    summarize(vec![(Some(failure), closed)], clock, grace, started)
}

/// Stops a session if there is one.
async fn close(session: Option<Session>, grace: Duration) -> Closed {
    match session {
        Some(s) => s.stop(grace).await,
        None => close_nothing(),
    }
}

/// What closing a process that never started looks like.
fn close_nothing() -> Closed {
    Closed {
        stopped: Stopped::Exited,
        stderr_tail: String::new(),
    }
}

/// One outcome from the ends of all of a validator's processes: the worst failure decides.
fn summarize(results: Vec<WorkerEnd>, clock: Clock, grace: Duration, started: Instant) -> Outcome {
    let duration = started.elapsed();
    let mut worst: Option<(Status, String, String)> = None;
    for (failure, closed) in results {
        let Some(failure) = failure else { continue };
        let (status, message) = describe(failure, closed.stopped, clock.timeout, grace);
        let tail = closed.stderr_tail;
        let rank = |s: Status| match s {
            Status::TimedOut => 0,
            Status::ProtocolError => 1,
            Status::Crashed => 2,
            _ => 3,
        };
        if worst
            .as_ref()
            .is_none_or(|(w, _, _)| rank(status) < rank(*w))
        {
            worst = Some((status, message, tail));
        }
    }
    match worst {
        None => Outcome {
            status: Status::Passed,
            message: String::new(),
            duration,
            stderr_tail: None,
        },
        Some((status, message, tail)) => Outcome {
            status,
            message,
            duration,
            stderr_tail: Some(tail),
        },
    }
}

/// The status and one-line explanation of a failure.
fn describe(
    failure: Failure,
    stopped: Stopped,
    timeout: Duration,
    grace: Duration,
) -> (Status, String) {
    match failure {
        Failure::Spawn(e) => (Status::Crashed, format!("could not be started: {e}")),
        Failure::Refused(f) if f.kind == FailureKind::NotInstalled => {
            (Status::NotInstalled, f.message)
        }
        Failure::Refused(f) => (Status::Crashed, f.message),
        Failure::Protocol(e) | Failure::Ended(Ended::Protocol(e)) => {
            (Status::ProtocolError, format!("broke the protocol: {e}"))
        }
        Failure::Ended(Ended::ClosedStdout) => (
            Status::ProtocolError,
            "broke the protocol: closed its stdout while still running".into(),
        ),
        Failure::Ended(Ended::TimedOut) => {
            let how = match stopped {
                Stopped::Killed => format!(
                    "killed with SIGKILL after ignoring SIGTERM for {}",
                    crate::fmt_duration(grace)
                ),
                _ => "stopped with SIGTERM".into(),
            };
            (
                Status::TimedOut,
                format!(
                    "did not finish within {}; {how}",
                    crate::fmt_duration(timeout)
                ),
            )
        }
        Failure::Ended(e @ (Ended::Exited(_) | Ended::Wait(_))) => {
            (Status::Crashed, format!("{e} before finishing"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    fn input(path: &str) -> FileInput {
        FileInput {
            path: path.into(),
            content_hash: [0; 32],
        }
    }

    #[test]
    fn batches_cover_every_file_once() {
        let inputs: Vec<FileInput> = (0..5).map(|i| input(&i.to_string())).collect();
        let b = batches(inputs.clone(), Some(2));
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(b.into_iter().flatten().collect::<Vec<_>>(), inputs);
        assert_eq!(batches(inputs.clone(), None).len(), 1);
        assert_eq!(batches(inputs, Some(10)).len(), 1);
    }

    #[test]
    fn a_file_result_must_be_requested_once_and_hold_only_its_findings() {
        let mut pending: HashSet<String> = ["a".to_owned()].into();
        let mut result = FileResult {
            path: "a".into(),
            findings: vec![Finding::new("b", 1, 1, "R", Severity::Error, "m")],
            modified: false,
        };
        let err = check_file_result(&result, &mut pending.clone()).expect_err("stray");
        assert!(err.to_string().contains("has a finding for `b`"), "{err}");
        result.findings.clear();
        check_file_result(&result, &mut pending).expect("requested");
        let err = check_file_result(&result, &mut pending).expect_err("twice");
        assert!(err.to_string().contains("already reported"), "{err}");
    }

    #[test]
    fn globs_do_not_cross_directories_unless_asked_to() {
        let validator = PlannedValidator {
            name: "v".into(),
            launch: crate::session::Launch {
                program: "v".into(),
                args: vec![],
            },
            settings: crate::config::ValidatorConfig {
                exclude: vec!["**/skip_*.py".into()],
                ..Default::default()
            },
            disabled: false,
        };
        let manifest = Manifest::new("v", "1", protocol::Dimension::Security, Scope::PerFile)
            .with_globs(["*.py", "src/*.py"]);
        let files: Vec<String> = [
            "a.py",
            "src/b.py",
            "src/deep/c.py",
            "d/skip_e.py",
            "src/skip_f.py",
        ]
        .map(String::from)
        .into();
        let got = matching_files(&validator, &manifest, &files).expect("valid globs");
        assert_eq!(got, ["a.py", "src/b.py"]);
    }

    #[test]
    fn a_zero_position_is_a_protocol_error() {
        let mut pending: HashSet<String> = ["a".to_owned()].into();
        let result = FileResult {
            path: "a".into(),
            findings: vec![Finding::new("a", 0, 1, "R", Severity::Error, "m")],
            modified: false,
        };
        assert!(check_file_result(&result, &mut pending).is_err());
    }
}
