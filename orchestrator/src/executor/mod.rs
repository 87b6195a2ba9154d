//! One validator's run, from its first process to its [`Outcome`].
//!
//! An executor starts the validator, learns its manifest, chooses its files (`files`), lets
//! the cache answer what it can (`cached`), and hands the rest, once it has a `--jobs`
//! permit, to `worker`s: one request, or for a `per_file` validator with a batch size, batches
//! pulled from a shared queue by as many parallel processes as permits allow. Its last event is
//! always [`Event::Finished`]; if its task dies before sending it (a panic in our code), the
//! dispatcher reports the validator as crashed.
//!
//! A run that fails in a way its retry policy covers ([`crate::retry`]) gets another attempt
//! after a backoff delay, in new processes, for the files without a result only; results that
//! arrived are kept. Every attempt fits in the validator's own time limit.
//!
//! Time limits ([`Clock`]): until the manifest names the dimension, the validator's own
//! configured timeout or the default covers the handshake; then the limits of its dimension
//! apply (see [`crate::config::Config::limits_for`]).

mod cached;
mod files;
mod inputs;
mod worker;

use crate::breaker::{self, Gate, Looking, ToolConfig};
use crate::cache::Cache;
use crate::config::{Config, Limits};
use crate::event::Event;
use crate::hashing::FileHashes;
use crate::plan::PlannedValidator;
use crate::report::{Attempt, Skip, Status};
use crate::selected::Finding;
use crate::session::{Deadline, Session};
use crate::verdict::{Closed, Failure, Limit, Outcome};
use cached::ResultKeys;
use protocol::{
    FileInput, Hello, Manifest, ProtocolError, Scope, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VERSION,
};
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use worker::Worker;

/// What every executor of a run shares.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: Arc<PathBuf>,
    /// The run's files, which a `--all` run may still be finding as validators start.
    pub files: Finding,
    pub config: Arc<Config>,
    pub hashes: FileHashes,
    pub cache: Cache,
    pub permits: Arc<Semaphore>,
    /// Validators waiting for a permit for their first process: helper processes of batched
    /// validators give theirs up between batches while any wait.
    pub wanting: Arc<AtomicUsize>,
    pub events: mpsc::Sender<Event>,
    /// A fixing round: validators that cannot fix stop after their handshake.
    pub fix: bool,
    /// `--update-baselines` (never in a fixing round).
    pub update_baselines: bool,
    /// Where validators write the artifacts of their findings; absolute.
    pub artifacts_dir: Arc<PathBuf>,
    /// `--shard K/N`: only this shard's files, and `project` validators only on their shard.
    pub shard: Option<Arc<crate::shard::Shard>>,
    /// Which validators give way to the one expected to take longest.
    pub priorities: Arc<crate::priority::Priorities>,
    /// The configuration files found so far, for every validator's keys.
    pub probes: Arc<crate::cache::Probes>,
    /// Findings already rendered, which results need not be read for ([`crate::rendered`]).
    pub rendered: Option<Arc<crate::rendered::Rendered>>,
    /// [`crate::kept::settled_before`] the round's start: what a record made in this round
    /// says of when its inputs' states were read ([`crate::cache::RecordHead::settled`]).
    pub settled: i64,
}

impl Context {
    /// Sends an event; the dispatcher outlives every executor, so a closed channel only means
    /// the run was abandoned and there is no one left to tell.
    async fn tell(&self, event: Event) {
        let _ = self.events.send(event).await;
    }
}

/// The time limits of one validator's run, shared by its processes.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    started: Instant,
    limits: Limits,
}

impl Clock {
    /// When the current wait gives up: at the silence limit from now, or at the total limit,
    /// whichever is sooner. Waits start as soon as the previous message arrived, so the silence
    /// limit measures the time since the validator last said anything.
    pub fn deadline(&self) -> Deadline {
        let total = Deadline {
            at: self.started + self.limits.total,
            limit: Limit::Total(self.limits.total),
        };
        match self.limits.silence {
            Some(silence) if Instant::now() + silence < total.at => Deadline {
                at: Instant::now() + silence,
                limit: Limit::Silence(silence),
            },
            _ => total,
        }
    }
}

/// Runs one validator to its end and reports it; never fails.
pub async fn execute(index: usize, validator: PlannedValidator, ctx: Context) {
    let outcome = if validator.disabled {
        Outcome::plain(
            Status::Skipped(Skip::Disabled),
            "disabled in orchestrator.toml",
            Duration::ZERO,
        )
    } else {
        guarded(index, &validator, &ctx).await
    };
    ctx.tell(Event::Finished { index, outcome }).await;
}

/// [`run`] behind the validator's circuit breaker ([`crate::breaker`]), when the cache that
/// keeps breakers is in use.
async fn guarded(index: usize, validator: &PlannedValidator, ctx: &Context) -> Outcome {
    let settings = ctx.config.breakers;
    if !settings.enabled || !ctx.cache.enabled() {
        return run(index, validator, ctx).await.0;
    }
    let own = breaker::of_validator(validator, &ctx.config);
    let (cache, name) = (ctx.cache.clone(), validator.name.clone());
    let row = tokio::task::spawn_blocking(move || cache.breakers(Some(&name)).into_iter().next())
        .await
        .ok()
        .flatten();
    let looking = Looking {
        root: ctx.root.clone(),
        probes: ctx.probes.clone(),
    };
    if let Some(row) = row {
        // Failures counted with the tool's configuration files count only while those files
        // are unchanged: a fixed `ruff.toml` is tried at once.
        let (cache, looking) = (ctx.cache.clone(), looking.clone());
        let gate = tokio::task::spawn_blocking(move || {
            let same = breaker::same(&row, &own, &looking);
            breaker::admit(&cache, settings, &row, same)
        })
        .await
        .unwrap_or(Gate::Closed);
        if let Gate::Open(reason) = gate {
            let skipped = Status::Skipped(Skip::CircuitOpen);
            return Outcome::plain(skipped, reason, Duration::ZERO);
        }
    }
    let (outcome, declared) = run(index, validator, ctx).await;
    let files = match declared {
        Some(names) if breaker::counts(outcome.status) => {
            ctx.files.files().await.map(|found| (names, found))
        }
        _ => None,
    };
    let (cache, name, kept) = (ctx.cache.clone(), validator.name.clone(), outcome.clone());
    let _ = tokio::task::spawn_blocking(move || {
        // A `--all` or `--changed` run looks from every directory of the tree.
        let tool = files.map(|(names, found)| {
            let files = found.universe.as_ref().unwrap_or(&found.files);
            ToolConfig::read(&names, files, &looking)
        });
        breaker::record(&cache, settings, (&name, &own), tool, &looking, &kept);
    })
    .await;
    outcome
}

/// Runs the validator, retrying as its policy allows; with the outcome, the configuration files
/// its manifest declares, once it has told them.
async fn run(
    index: usize,
    validator: &PlannedValidator,
    ctx: &Context,
) -> (Outcome, Option<Vec<String>>) {
    let started = Instant::now();
    let grace = ctx.config.grace_period;
    let policy = &validator.settings.retry;
    let mut delays = policy.delays();
    let mut attempts = Vec::new();
    let mut work = None;
    loop {
        let attempt_started = Instant::now();
        let failures = match attempt(index, validator, ctx, started, &mut work).await {
            Ok(mut outcome) => {
                outcome.duration = started.elapsed();
                attempts.push(Attempt {
                    duration: attempt_started.elapsed(),
                    ..outcome.attempt()
                });
                outcome.attempts = attempts;
                return (outcome, work.map(|w| w.config_files));
            }
            Err(failures) => failures,
        };
        // A retry is for the files without a result; when every file has one, there is none.
        let retryable = policy.covers(failures.iter().map(|(f, _)| f))
            && work.as_ref().is_none_or(|w: &Work| !w.inputs.is_empty());
        let limit = work.as_ref().map_or_else(
            || ctx.config.handshake_limits(&validator.name).total,
            |w| w.clock.limits.total,
        );
        let mut outcome = Outcome::judge(failures, grace, started.elapsed());
        attempts.push(Attempt {
            duration: attempt_started.elapsed(),
            ..outcome.attempt()
        });
        // A retry must fit in the validator's own time limit, its wait included.
        let delay = delays
            .next()
            .filter(|delay| retryable && started.elapsed() + *delay < limit);
        match delay {
            Some(delay) => {
                tracing::info!(
                    validator = %validator.name,
                    attempt = attempts.len(),
                    ?delay,
                    "retrying after {}: {}",
                    outcome.status.as_str(),
                    outcome.message
                );
                tokio::time::sleep(delay).await;
            }
            None => {
                // The results the record answers reach the report before the outcome does.
                if let Some(keys) = work.as_ref().and_then(|w| w.keys.as_ref()) {
                    keys.settle().await;
                }
                outcome.attempts = attempts;
                return (outcome, work.map(|w| w.config_files));
            }
        }
    }
}

/// What the first attempt learnt, which later attempts reuse: the time limits, the files still
/// without a result, and the keys their results are kept under.
#[derive(Debug)]
struct Work {
    clock: Clock,
    inputs: Vec<FileInput>,
    keys: Option<Arc<ResultKeys>>,
    batch_size: Option<u32>,
    /// Until its first process has a slot, the validator is about to take one
    /// ([`crate::priority`]).
    taking: Option<crate::priority::Taking>,
    /// The tool's configuration files its manifest declares, which its circuit breaker counts
    /// failures against.
    config_files: Vec<String>,
}

/// One attempt: a process (or a batch's worth) working through the files without a result.
/// `Ok` when the validator's run is decided without a failure (completed, or nothing to do);
/// `Err` with the failures of its processes otherwise.
async fn attempt(
    index: usize,
    validator: &PlannedValidator,
    ctx: &Context,
    started: Instant,
    work: &mut Option<Work>,
) -> Result<Outcome, Vec<(Failure, Closed)>> {
    let grace = ctx.config.grace_period;
    loop {
        let clock = work.as_ref().map_or_else(
            || Clock {
                started,
                limits: ctx.config.handshake_limits(&validator.name),
            },
            |w| w.clock,
        );
        let (session, manifest) = match start(index, validator, ctx, clock).await {
            Ok(started) => started,
            Err((failure, session)) => return Err(vec![(failure, close(session, grace).await)]),
        };
        if manifest.name != validator.name {
            let failure = Failure::Protocol(ProtocolError::NameMismatch {
                manifest: manifest.name.clone(),
                executable: validator.name.clone(),
            });
            return Err(vec![(failure, session.stop(grace).await)]);
        }
        let work = match work {
            Some(work) => work,
            None => match prepare(index, validator, ctx, started, &manifest).await {
                Ok(prepared) => work.insert(prepared),
                Err(Prepared::Decided(outcome)) => {
                    session.finish(grace).await;
                    return Ok(outcome);
                }
                Err(Prepared::Failed(failure)) => {
                    return Err(vec![(failure, session.stop(grace).await)]);
                }
            },
        };
        // A permit stands for a process at work: the handshake and the cache's answer are
        // cheap and need none, so a warm run looks up every validator's results at once.
        if let Some(taking) = &work.taking {
            ctx.priorities.give_way(taking, &ctx.permits).await;
        }
        let permit = match ctx.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let _wanting = Wanting::new(&ctx.wanting);
                ctx.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the run's semaphore is never closed")
            }
        };
        work.taking = None;
        let worker = Worker::new(
            index,
            validator,
            ctx,
            work.clock,
            work.keys.clone(),
            work.inputs.clone(),
            work.batch_size,
        );
        let ran = worker.run_all(session, permit).await;
        if !ran.failures.is_empty() {
            work.inputs
                .retain(|input| !ran.delivered.contains(&input.path));
            return Err(ran.failures);
        }
        if let Some(keys) = &work.keys {
            // Files the record was to answer and did not (another run replaced it
            // meanwhile) are checked by another process.
            let left = keys.settle().await;
            if !left.is_empty() {
                work.inputs = left;
                continue;
            }
            keys.finish(ctx).await;
        }
        return Ok(Outcome::plain(Status::Passed, "", Duration::ZERO));
    }
}

/// A validator counted in [`Context::wanting`] while it waits, however the wait ends (an
/// aborted run drops it too).
struct Wanting<'a>(&'a AtomicUsize);

impl<'a> Wanting<'a> {
    fn new(count: &'a AtomicUsize) -> Wanting<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Wanting(count)
    }
}

impl Drop for Wanting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why the first attempt ends before any file is sent.
#[derive(Debug)]
enum Prepared {
    /// Nothing to do: skipped, or every result came from the cache.
    Decided(Outcome),
    Failed(Failure),
}

/// After the first handshake: the time limits of the validator's dimension, its files, and
/// what the cache answers of them.
async fn prepare(
    index: usize,
    validator: &PlannedValidator,
    ctx: &Context,
    started: Instant,
    manifest: &Manifest,
) -> Result<Work, Prepared> {
    if ctx.fix && !manifest.can_fix {
        let skipped = Status::Skipped(Skip::CannotFix);
        return Err(Prepared::Decided(Outcome::plain(
            skipped,
            "cannot fix",
            Duration::ZERO,
        )));
    }
    let clock = Clock {
        started,
        limits: ctx.config.limits_for(
            &validator.name,
            manifest.dimension.as_str(),
            manifest.suggested_timeout_ms.map(Duration::from_millis),
        ),
    };
    // Begun before the files are found, which a warm run spends most of its time on.
    let lookup = cached::Lookup::start(validator, manifest, ctx.files.changed(), ctx);
    // Selection failing ends the run (the dispatcher reports it): this outcome is not kept.
    let Some(found) = ctx.files.files().await else {
        let skipped = Status::Skipped(Skip::NoFiles);
        let why = "the files could not be listed";
        return Err(Prepared::Decided(Outcome::plain(
            skipped,
            why,
            Duration::ZERO,
        )));
    };
    let mut chosen = files::choose(validator, manifest, &found.files).map_err(|e| {
        Prepared::Failed(Failure::Protocol(ProtocolError::Malformed(format!(
            "its manifest has an {e}"
        ))))
    })?;
    if let Some(shard) = &ctx.shard {
        if manifest.scope == Scope::PerFile {
            chosen.retain(|f| shard.owns_file(f));
        } else if !shard.owns_validator(&validator.name) {
            let why = format!(
                "it checks the whole project, on another shard of {}",
                shard.count
            );
            let skipped = Status::Skipped(Skip::OtherShard);
            return Err(Prepared::Decided(Outcome::plain(
                skipped,
                why,
                Duration::ZERO,
            )));
        }
    }
    let dependents = match &found.universe {
        Some(universe) if manifest.scope == Scope::PerFile => {
            let chosen: HashSet<&String> = chosen.iter().collect();
            let others = files::choose(validator, manifest, universe)
                .unwrap_or_default()
                .into_iter()
                .filter(|f| !chosen.contains(f))
                .filter(|f| ctx.shard.as_ref().is_none_or(|s| s.owns_file(f)))
                .collect();
            let (others, _) = files::read(&ctx.hashes, others).await;
            Some(cached::dependents(validator, manifest, others, ctx).await)
        }
        _ => None,
    };
    let (mut inputs, unreadable) = files::read(&ctx.hashes, chosen).await;
    let count = dependents
        .as_ref()
        .map(|d| u32::try_from(d.len()).unwrap_or(u32::MAX));
    inputs.extend(dependents.into_iter().flatten());
    ctx.tell(Event::Started {
        index,
        manifest: manifest.clone(),
        files: u32::try_from(inputs.len()).unwrap_or(u32::MAX),
        dependents: count,
    })
    .await;
    if !unreadable.is_empty() {
        let warnings = unreadable;
        ctx.tell(Event::Unreadable { index, warnings }).await;
    }
    if inputs.is_empty() {
        let why = "no selected file matches its globs";
        let skipped = Status::Skipped(Skip::NoFiles);
        return Err(Prepared::Decided(Outcome::plain(
            skipped,
            why,
            Duration::ZERO,
        )));
    }
    let serving = ctx.priorities.serving(index, &validator.name, inputs.len());
    let (inputs, keys) = cached::serve(index, validator, manifest, inputs, lookup, ctx).await;
    if inputs.is_empty() {
        return Err(Prepared::Decided(Outcome::plain(
            Status::Passed,
            "",
            Duration::ZERO,
        )));
    }
    let taking = Some(serving.known(inputs.len()));
    let batch_size = match manifest.scope {
        Scope::PerFile => validator.settings.batch_size.or(manifest.batch_size),
        _ => None,
    };
    Ok(Work {
        clock,
        inputs,
        keys,
        batch_size,
        taking,
        config_files: manifest.config_files.clone(),
    })
}

/// Starts a process and completes its handshake.
async fn start(
    index: usize,
    validator: &PlannedValidator,
    ctx: &Context,
    clock: Clock,
) -> Result<(Session, Manifest), (Failure, Option<Session>)> {
    let mut session = Session::spawn(&validator.launch, &ctx.root, DEFAULT_MAX_FRAME_SIZE)
        .map_err(|e| (Failure::Spawn(e), None))?;
    ctx.priorities.started(index, session.pgid());
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        coordinator_version: env!("CARGO_PKG_VERSION").to_owned(),
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
    };
    match session.handshake(hello, clock.deadline()).await {
        Ok(manifest) => {
            let tool = manifest
                .tool
                .as_ref()
                .map(|t| format!("{} {}", t.name, t.version));
            tracing::debug!(
                validator = %validator.name,
                version = %manifest.version,
                tool = tool.as_deref().unwrap_or("none"),
                "handshake done"
            );
            Ok((session, manifest))
        }
        Err(e) => Err((e, Some(session))),
    }
}

/// Stops a session if there is one.
async fn close(session: Option<Session>, grace: Duration) -> Closed {
    match session {
        Some(s) => s.stop(grace).await,
        None => Closed::nothing(),
    }
}
