//! One validator's run, from its first process to its [`Outcome`].
//!
//! An executor starts the validator (waiting for a `--jobs` permit), learns its manifest,
//! chooses its files (`files`), lets the cache answer what it can (`cached`), and hands the
//! rest to `worker`s: one request, or for a `per_file` validator with a batch size, batches
//! pulled from a shared queue by as many parallel processes as permits allow. Its last event is
//! always [`Event::Finished`]; if its task dies before sending it (a panic in our code), the
//! dispatcher reports the validator as crashed.
//!
//! Time limits ([`Clock`]): until the manifest names the dimension, the validator's own
//! configured timeout or the default covers the handshake; then the limits of its dimension
//! apply (see [`crate::config::Config::limits_for`]).

mod cached;
mod files;
mod worker;

use crate::cache::Cache;
use crate::config::{Config, Limits};
use crate::event::Event;
use crate::hashing::FileHashes;
use crate::plan::PlannedValidator;
use crate::report::Status;
use crate::session::{Deadline, Session};
use crate::verdict::{Closed, Failure, Limit, Outcome};
use protocol::{Hello, Manifest, ProtocolError, Scope, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VERSION};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use worker::Worker;

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
    /// `--update-baselines` (never in a fixing round).
    pub update_baselines: bool,
    /// Where validators write the artifacts of their findings; absolute.
    pub artifacts_dir: Arc<PathBuf>,
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
            Status::Skipped,
            "disabled in orchestrator.toml",
            Duration::ZERO,
        )
    } else {
        run(index, &validator, &ctx).await
    };
    ctx.tell(Event::Finished { index, outcome }).await;
}

async fn run(index: usize, validator: &PlannedValidator, ctx: &Context) -> Outcome {
    let permit = ctx
        .permits
        .clone()
        .acquire_owned()
        .await
        .expect("the run's semaphore is never closed");
    let started = Instant::now();
    let grace = ctx.config.grace_period;
    let failed = |failure: Failure, closed: Closed| {
        Outcome::judge([(failure, closed)], grace, started.elapsed())
    };
    let handshake = Clock {
        started,
        limits: ctx.config.handshake_limits(&validator.name),
    };
    let (session, manifest) = match start(validator, ctx, handshake).await {
        Ok(started) => started,
        Err((failure, session)) => return failed(failure, close(session, grace).await),
    };
    if manifest.name != validator.name {
        let failure = Failure::Protocol(ProtocolError::NameMismatch {
            manifest: manifest.name.clone(),
            executable: validator.name.clone(),
        });
        return failed(failure, session.stop(grace).await);
    }
    if ctx.fix && !manifest.can_fix {
        session.finish(grace).await;
        return Outcome::plain(Status::Skipped, "cannot fix", started.elapsed());
    }
    let clock = Clock {
        started,
        limits: ctx.config.limits_for(
            &validator.name,
            manifest.dimension.as_str(),
            manifest.suggested_timeout_ms.map(Duration::from_millis),
        ),
    };
    let chosen = match files::choose(validator, &manifest, &ctx.files) {
        Ok(chosen) => chosen,
        Err(e) => {
            let failure =
                Failure::Protocol(ProtocolError::Malformed(format!("its manifest has an {e}")));
            return failed(failure, session.stop(grace).await);
        }
    };
    let (inputs, unreadable) = files::read(&ctx.hashes, chosen).await;
    ctx.tell(Event::Started {
        index,
        manifest: manifest.clone(),
        files: u32::try_from(inputs.len()).unwrap_or(u32::MAX),
    })
    .await;
    if !unreadable.is_empty() {
        let warnings = unreadable;
        ctx.tell(Event::Unreadable { index, warnings }).await;
    }
    if inputs.is_empty() {
        session.finish(grace).await;
        let why = "no selected file matches its globs";
        return Outcome::plain(Status::Skipped, why, started.elapsed());
    }
    let (inputs, keys) = cached::serve(index, validator, &manifest, inputs, ctx).await;
    if inputs.is_empty() {
        session.finish(grace).await;
        return Outcome::plain(Status::Passed, "", started.elapsed());
    }
    let batch_size = match manifest.scope {
        Scope::PerFile => validator.settings.batch_size.or(manifest.batch_size),
        _ => None,
    };
    let worker = Worker::new(index, validator, ctx, clock, keys, inputs, batch_size);
    let failures = worker.run_all(session, permit).await;
    Outcome::judge(failures, grace, started.elapsed())
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
    match session.handshake(hello, clock.deadline()).await {
        Ok(manifest) => {
            tracing::debug!(validator = %validator.name, version = %manifest.version, "handshake done");
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
