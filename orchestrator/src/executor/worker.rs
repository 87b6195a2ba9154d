//! The processes of one validator working through its files: a queue of batches, one worker
//! per process, each sending `Validate` requests and checking every answer against the
//! protocol's rules before it reaches the dispatcher or the cache.

use super::cached::ResultKeys;
use super::inputs::{Fresh, Stated, Table};
use super::{close, start, Clock, Context};
use crate::cache::{Entry, Inputs, Key};
use crate::event::{Event, Origin};
use crate::hashing::Rehash;
use crate::plan::PlannedValidator;
use crate::session::Session;
use crate::verdict::{Closed, Failure};
use protocol::{FileInput, FileResult, ProtocolError, Request, Response, Validate};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinSet;

/// Results gathered before they are written to the cache in one transaction.
const WRITE_BATCH: usize = 64;

type Queue = Arc<Mutex<VecDeque<Vec<FileInput>>>>;

/// Works through the batch queue of one validator, in one process.
#[derive(Debug, Clone)]
pub struct Worker {
    index: usize,
    validator: Arc<PlannedValidator>,
    ctx: Context,
    queue: Queue,
    clock: Clock,
    /// `None` when results are not to be cached (no cache, or a fixing round).
    keys: Option<Arc<ResultKeys>>,
    /// The files whose results arrived, so that a retry sends only the others.
    delivered: Arc<Mutex<HashSet<String>>>,
    /// Hashes of the inputs results listed, shared by the batches.
    inputs: Arc<Rehash>,
}

/// What the processes of one attempt did.
#[derive(Debug)]
pub struct Ran {
    /// Each failed process's failure; empty when the attempt completed.
    pub failures: Vec<(Failure, Closed)>,
    /// The files whose results arrived.
    pub delivered: HashSet<String>,
}

impl Worker {
    pub fn new(
        index: usize,
        validator: &PlannedValidator,
        ctx: &Context,
        clock: Clock,
        keys: Option<Arc<ResultKeys>>,
        inputs: Vec<FileInput>,
        batch_size: Option<u32>,
    ) -> Worker {
        Worker {
            index,
            validator: Arc::new(validator.clone()),
            ctx: ctx.clone(),
            queue: Arc::new(Mutex::new(batches(inputs, batch_size))),
            clock,
            keys,
            delivered: Arc::default(),
            inputs: Arc::default(),
        }
    }

    /// Drains the queue with the first process and as many helper processes as there are
    /// batches waiting and permits free. A helper gives its permit up, between batches, to any
    /// validator still waiting to start its first process: otherwise the helpers of a
    /// validator that started first hold every core until its queue is empty, and a longer
    /// validator waits for them.
    pub async fn run_all(self, session: Session, permit: OwnedSemaphorePermit) -> Ran {
        let mut helpers = JoinSet::new();
        for _ in 0..self.lock_queue().len().saturating_sub(1) {
            if self.others_wait() {
                break;
            }
            let Ok(extra) = self.ctx.permits.clone().try_acquire_owned() else {
                break;
            };
            let helper = self.clone();
            helpers.spawn(async move { helper.run_new_process(extra).await });
        }
        let mut failures: Vec<(Failure, Closed)> = self
            .drain_queue(session, permit, false)
            .await
            .into_iter()
            .collect();
        while let Some(joined) = helpers.join_next().await {
            match joined {
                Ok(end) => failures.extend(end),
                Err(e) => failures.push((Failure::from_join(e), Closed::nothing())),
            }
        }
        let delivered = std::mem::take(&mut *crate::locks::lock(&self.delivered));
        Ran {
            failures,
            delivered,
        }
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<FileInput>>> {
        crate::locks::lock(&self.queue)
    }

    /// A helper process for a batched validator: start it, then share the queue.
    async fn run_new_process(self, permit: OwnedSemaphorePermit) -> Option<(Failure, Closed)> {
        match start(self.index, &self.validator, &self.ctx, self.clock).await {
            Ok((session, _)) => self.drain_queue(session, permit, true).await,
            Err((failure, session)) => {
                Some((failure, close(session, self.ctx.config.grace_period).await))
            }
        }
    }

    /// Whether another validator waits for a permit for its first process.
    fn others_wait(&self) -> bool {
        self.ctx.wanting.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Sends batches until the queue is empty or something goes wrong, then ends the process;
    /// a `helper` also ends when another validator waits for its first process.
    async fn drain_queue(
        &self,
        mut session: Session,
        permit: OwnedSemaphorePermit,
        helper: bool,
    ) -> Option<(Failure, Closed)> {
        let mut failure = None;
        loop {
            if helper && self.others_wait() {
                tracing::debug!(validator = %self.validator.name, "a helper process gives way to a validator waiting to start");
                break;
            }
            let batch = self.lock_queue().pop_front();
            let Some(batch) = batch else { break };
            if let Err(f) = self.request(&mut session, batch).await {
                failure = Some(f);
                break;
            }
        }
        let grace = self.ctx.config.grace_period;
        let end = match failure {
            None => {
                session.finish(grace).await;
                None
            }
            Some(failure) => Some((failure, session.stop(grace).await)),
        };
        drop(permit);
        end
    }

    /// One `Validate` request and its responses; the results are kept in the cache as
    /// [`ResultKeys`] says.
    async fn request(&self, session: &mut Session, batch: Vec<FileInput>) -> Result<(), Failure> {
        let mut received = Received::default();
        let outcome = self.exchange(session, batch, &mut received).await;
        if let Some(kept) = received.keeping.take() {
            let _ = kept.await;
        }
        if let Some(keys) = &self.keys {
            if (outcome.is_ok() || !keys.all_or_nothing) && !received.staged.is_empty() {
                let staged = std::mem::take(&mut received.staged);
                let _ = self.keep(staged, received.paths()).await;
            }
        }
        outcome
    }

    /// Writes results to the cache, each with the hashes its inputs had when this request's
    /// results first listed them ([`Stated`]), on a blocking thread whose end the handle tells.
    fn keep(&self, results: Vec<Fresh>, (paths, stated): Paths) -> tokio::task::JoinHandle<()> {
        let cache = self.ctx.cache.clone();
        let root = self.ctx.root.clone();
        let keys = self.keys.clone();
        let rehash = self.inputs.clone();
        tokio::task::spawn_blocking(move || {
            // Batches are kept one at a time, so this waits for nothing.
            let mut stated = crate::locks::lock(&stated);
            let numbers = results.iter().flat_map(|f| &f.inputs).copied();
            stated.add(paths, numbers, |path| rehash.hash(&root.join(path)));
            let stated = &*stated;
            if let Some(keys) = keys {
                keys.record(&results, stated);
            }
            // Results of one package often list the same inputs: one list and digest each.
            let mut made: HashMap<&[u32], Option<Inputs>> = HashMap::new();
            let inputs: Vec<Option<Inputs>> = (results.iter())
                .map(|fresh| {
                    let list = &fresh.inputs;
                    let inputs = made
                        .entry(list)
                        .or_insert_with(|| Inputs::of(stated.list(list)));
                    inputs.clone()
                })
                .collect();
            drop(made);
            let entries: Vec<(Key, Entry)> = (results.into_iter().zip(inputs))
                .map(|(fresh, inputs)| {
                    let result = fresh.result;
                    (fresh.key, Entry { result, inputs })
                })
                .collect();
            cache.put(&entries);
        })
    }

    /// Sends the request and takes its responses. Results are staged, and every
    /// [`WRITE_BATCH`] of them kept while the next ones are read: on Django, the 2,037
    /// results a hub change gives pyright's validator, each listing some thousand inputs,
    /// arrive at once when pyright ends, and reading them waited for each batch's keeping.
    async fn exchange(
        &self,
        session: &mut Session,
        batch: Vec<FileInput>,
        received: &mut Received,
    ) -> Result<(), Failure> {
        let mut pending: HashSet<String> = batch.iter().map(|f| f.path.clone()).collect();
        let request = Request::Validate(Validate {
            root: self.ctx.root.to_string_lossy().into_owned(),
            files: batch,
            config_json: self.validator.settings.settings_json(),
            fix: self.ctx.fix,
            update_baselines: self.ctx.update_baselines,
            artifacts_dir: self.ctx.artifacts_dir.to_string_lossy().into_owned(),
        });
        session.send(&request, self.clock.deadline()).await?;
        let name = &self.validator.name;
        loop {
            let (result, inputs) = match session.next(self.clock.deadline()).await? {
                Response::FileResult(mut result) => {
                    let inputs = std::mem::take(&mut result.inputs);
                    let numbers = received.table.listed(&result.path, &inputs);
                    (result, numbers.map_err(Failure::Protocol)?)
                }
                Response::NumberedResult(numbered) => {
                    let numbers = received.table.numbered(&numbered);
                    (numbered.result, numbers.map_err(Failure::Protocol)?)
                }
                Response::InputPaths(paths) => {
                    received.table.sent(paths).map_err(Failure::Protocol)?;
                    continue;
                }
                Response::Progress(p) => {
                    tracing::trace!(validator = %name, done = p.files_done, total = p.files_total, "progress: {}", p.message);
                    let (index, done, total) = (self.index, p.files_done, p.files_total);
                    self.ctx.tell(Event::Progress { index, done, total }).await;
                    continue;
                }
                Response::Log(log) => {
                    log_line(name, &log);
                    continue;
                }
                Response::Done => return Ok(()),
                Response::Failed(failed) => return Err(Failure::Refused(failed)),
                other => {
                    return Err(Failure::Protocol(ProtocolError::Unexpected {
                        expected: "FileResult, NumberedResult, InputPaths, Progress, Log, Done \
                                   or Failed",
                        got: other.kind(),
                    }))
                }
            };
            check_file_result(&result, &mut pending, Asked::of(&self.ctx))
                .map_err(Failure::Protocol)?;
            crate::locks::lock(&self.delivered).insert(result.path.clone());
            if let Some(keys) = &self.keys {
                // The report wants the findings; only the cache wants the inputs, which can be
                // a thousand paths a result (a module's import closure).
                if let Some(key) = keys.key_of(&result.path) {
                    received.staged.push(Fresh {
                        key,
                        result: result.clone(),
                        inputs,
                    });
                }
                if !keys.all_or_nothing && received.staged.len() >= WRITE_BATCH {
                    // One batch kept at a time, in order.
                    if let Some(kept) = received.keeping.take() {
                        let _ = kept.await;
                    }
                    let staged = std::mem::take(&mut received.staged);
                    received.keeping = Some(self.keep(staged, received.paths()));
                }
            }
            let index = self.index;
            self.ctx
                .tell(Event::Results {
                    index,
                    results: vec![result],
                    origin: Origin::Validator,
                })
                .await;
        }
    }
}

/// The paths of a request's table, and the states of those its kept batches listed.
type Paths = (Arc<[Arc<str>]>, Arc<Mutex<Stated>>);

/// What a request has received so far.
#[derive(Debug, Default)]
struct Received {
    /// The input paths its results named.
    table: Table,
    /// The states of those that results handed to [`Worker::keep`] listed.
    stated: Arc<Mutex<Stated>>,
    /// Results not yet handed to [`Worker::keep`].
    staged: Vec<Fresh>,
    /// The last batch handed to it, while it is being kept.
    keeping: Option<tokio::task::JoinHandle<()>>,
}

impl Received {
    /// What [`Worker::keep`] finds its batch's inputs in.
    fn paths(&mut self) -> Paths {
        (self.table.paths(), self.stated.clone())
    }
}

/// A validator's `Log` line, at the level it asked for: errors and warnings are shown by
/// default, `info` with `-v`, `debug` with `-vv`.
fn log_line(validator: &str, log: &protocol::Log) {
    use protocol::LogLevel;
    let message = &log.message;
    match log.level {
        LogLevel::Error => tracing::error!(validator, "{message}"),
        LogLevel::Warn => tracing::warn!(validator, "{message}"),
        LogLevel::Info => tracing::info!(validator, "{message}"),
        _ => tracing::debug!(validator, "{message}"),
    }
}

/// What a request allowed a validator to change.
#[derive(Debug, Clone, Copy, Default)]
struct Asked {
    fix: bool,
    update_baselines: bool,
}

impl Asked {
    fn of(ctx: &Context) -> Asked {
        Asked {
            fix: ctx.fix,
            update_baselines: ctx.update_baselines,
        }
    }
}

/// A `FileResult` must be for a requested file not reported yet, carry only its findings at
/// 1-based positions, and claim a modification or a written baseline only when fixing or
/// updating baselines was asked for. (Its inputs are checked as they are numbered: [`Table`].)
fn check_file_result(
    result: &FileResult,
    pending: &mut HashSet<String>,
    asked: Asked,
) -> Result<(), ProtocolError> {
    let fix = asked.fix;
    if !asked.update_baselines && !result.baselines_written.is_empty() {
        return Err(ProtocolError::Malformed(format!(
            "it reports writing baselines for `{}` although updating them was not asked for",
            result.path
        )));
    }
    if !pending.remove(&result.path) {
        return Err(ProtocolError::Malformed(format!(
            "FileResult for `{}`, which was not requested or was already reported",
            result.path
        )));
    }
    if result.modified && !fix {
        return Err(ProtocolError::Malformed(format!(
            "it reports modifying `{}` although fixing was not asked for",
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

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Finding, Severity};

    const FIX: Asked = Asked {
        fix: true,
        update_baselines: false,
    };

    #[test]
    fn baselines_written_must_be_asked_for() {
        let pending: HashSet<String> = ["a".to_owned()].into();
        let written = FileResult {
            baselines_written: vec!["b.png".into()],
            ..result(vec![], false)
        };
        assert!(check_file_result(&written, &mut pending.clone(), Asked::default()).is_err());
        let asked = Asked {
            fix: false,
            update_baselines: true,
        };
        assert!(check_file_result(&written, &mut pending.clone(), asked).is_ok());
    }

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

    fn result(findings: Vec<Finding>, modified: bool) -> FileResult {
        FileResult {
            modified,
            ..FileResult::new("a", findings)
        }
    }

    #[test]
    fn a_file_result_must_be_requested_once_and_hold_only_its_findings() {
        let mut pending: HashSet<String> = ["a".to_owned()].into();
        let stray = vec![Finding::new("b", 1, 1, "R", Severity::Error, "m")];
        let err = check_file_result(
            &result(stray, false),
            &mut pending.clone(),
            Asked::default(),
        )
        .expect_err("stray");
        assert!(err.to_string().contains("has a finding for `b`"), "{err}");
        check_file_result(&result(vec![], false), &mut pending, Asked::default())
            .expect("requested");
        let err = check_file_result(&result(vec![], false), &mut pending, Asked::default())
            .expect_err("twice");
        assert!(err.to_string().contains("already reported"), "{err}");
    }

    #[test]
    fn a_zero_position_or_an_unasked_fix_is_a_protocol_error() {
        let pending: HashSet<String> = ["a".to_owned()].into();
        let zero = vec![Finding::new("a", 0, 1, "R", Severity::Error, "m")];
        assert!(
            check_file_result(&result(zero, false), &mut pending.clone(), Asked::default())
                .is_err()
        );
        assert!(check_file_result(
            &result(vec![], true),
            &mut pending.clone(),
            Asked::default()
        )
        .is_err());
        assert!(check_file_result(&result(vec![], true), &mut pending.clone(), FIX).is_ok());
    }
}
