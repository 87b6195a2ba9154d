//! The dispatcher: the one loop that owns a run's state.
//!
//! A round starts an executor per validator, then folds their [`Event`]s into the [`Report`] as
//! they arrive, so the report always holds every result received so far, whatever happens to
//! the executors. When the last executor has finished, the process tree is swept: nothing a
//! validator started outlives the round.
//!
//! Every executor task is awaited: one that died without finishing (a panic in our own code)
//! leaves its validator `crashed` with "internal error" and the panic's message, so a run can
//! never pass a validator that did not run.
//!
//! The files of a `--all` run are still being found when the round starts
//! ([`crate::selected`]): selection's warnings join the report when they arrive, and a tree that
//! cannot be listed ends the round at once, its executors stopped, as an error of the whole run.
//!
//! A signal ([`Interrupt`]) ends a round early: every executor still running is aborted, which
//! kills its validators' process groups, the tree is swept as always, and the validators that
//! had not finished are reported `interrupted`, with the results they had sent.
//!
//! `run --fix` is rounds of fixing (only validators that can fix take part, and the cache is
//! not used) until a round changes nothing or `max_fix_rounds` is reached, then one ordinary
//! round whose report is the answer: every finding in it is about the files as they now are.

use crate::cache::{Cache, Probes, RecordHead};
use crate::digest::Hash;
use crate::event::{Event, Origin, Unread};
use crate::executor::{self, Context};
use crate::hashing::FileHashes;
use crate::interrupt::Interrupt;
use crate::plan::{Plan, PlannedValidator};
use crate::priority::Priorities;
use crate::progress::Progress;
use crate::rendered::{Makings, Rendered, Reuse};
use crate::report::Skip;
use crate::report::{Report, ReportFinding, Status, ValidatorReport};
use crate::schedule::{Next, Schedule};
use crate::select::SelectError;
use crate::selected::{Finding, Found};
use crate::splice::{splice, Held};
use crate::verdict::{Closed, Failure, Outcome};
use protocol::{FileResult, Severity};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the final sweep may spend killing leftover processes.
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// Runs a plan to its end, or until `interrupt` fires; fails only when the files of a `--all`
/// run cannot be listed ([`crate::selected`]), after stopping what had started.
pub async fn run(plan: Plan, cache: Cache, interrupt: Interrupt) -> Result<Report, SelectError> {
    let files = plan.files.start();
    if !plan.fix {
        return round(&plan, &files, false, cache, interrupt).await;
    }
    let mut fixed = BTreeSet::new();
    let mut notes = Vec::new();
    let rounds = plan.config.max_fix_rounds;
    for number in 1..=rounds {
        let mut fixing = round(&plan, &files, true, Cache::off(), interrupt.clone()).await?;
        if fixing.interrupted.is_some() {
            fixing.fixed_files.sort();
            return Ok(fixing);
        }
        for v in fixing.validators.iter().filter(|v| !v.status.completed()) {
            notes.push(format!(
                "fix round {number}: {} did not complete ({}: {}); its fixes may be partial",
                v.name,
                v.status.as_str(),
                v.message
            ));
        }
        let incomplete = fixing.status() == crate::report::RunStatus::Incomplete;
        let changed = fixing.fixed_files.len();
        fixed.extend(fixing.fixed_files);
        if changed == 0 || incomplete {
            break;
        }
        if number == rounds {
            notes.push(format!(
                "fixes were still changing files after {rounds} round{} (max_fix_rounds); \
                 run again or raise max_fix_rounds in orchestrator.toml",
                if rounds == 1 { "" } else { "s" }
            ));
        }
    }
    let mut report = round(&plan, &files, false, cache, interrupt).await?;
    report.warnings.extend(notes);
    report.fixed_files = fixed.into_iter().collect();
    Ok(report)
}

/// Runs every validator of the plan once, on `files`; `fix` makes it a fixing round.
async fn round(
    plan: &Plan,
    files: &Finding,
    fix: bool,
    cache: Cache,
    interrupt: Interrupt,
) -> Result<Report, SelectError> {
    round_with(plan, files, fix, cache, interrupt, executor::execute).await
}

/// [`round`] with the function that runs one validator given (tests give one that fails).
async fn round_with<F, Fut>(
    plan: &Plan,
    files: &Finding,
    fix: bool,
    cache: Cache,
    mut interrupt: Interrupt,
    execute: F,
) -> Result<Report, SelectError>
where
    F: Fn(usize, PlannedValidator, Context) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (events, mut inbox) = mpsc::channel(256);
    let settled = crate::kept::settled_before(std::time::SystemTime::now());
    let ctx = Context {
        root: Arc::new(plan.root.clone()),
        files: files.clone(),
        config: plan.config.clone(),
        hashes: FileHashes::new(&plan.root, cache.clone()),
        cache: cache.clone(),
        permits: Arc::new(Semaphore::new(plan.jobs)),
        wanting: Arc::default(),
        events,
        fix,
        update_baselines: plan.update_baselines && !fix,
        artifacts_dir: Arc::new(plan.artifacts_dir.clone()),
        shard: plan.shard.clone().map(Arc::new),
        probes: Arc::new(match &plan.kept {
            Some(dir) => Probes::kept(dir, &plan.root),
            None => Probes::default(),
        }),
        rendered: plan.rendered.clone(),
        settled,
        priorities: Arc::new(match &plan.history {
            Some(dir) => Priorities::from_history(dir.clone()),
            None => Priorities::none(),
        }),
    };
    let names: Vec<String> = plan.validators.iter().map(|v| v.name.clone()).collect();
    let mut state = State {
        report: Report::new(plan.root.clone(), &names, Vec::new()).for_shard(plan.shard.clone()),
        progress: Progress::new(names.iter().map(String::as_str)),
        schedule: Schedule::new(&names, &plan.config),
        finished: vec![false; names.len()],
        ends: vec![None; names.len()],
        started: Instant::now(),
        stopped_by: None,
        fail_fast: plan.fail_fast,
        pending: Vec::new(),
        recorded: vec![None; names.len()],
        unread: Vec::new(),
        held: Vec::new(),
    };
    state.pending = state.schedule.begin();
    let mut running: JoinSet<()> = JoinSet::new();
    let mut tasks: HashMap<tokio::task::Id, usize> = HashMap::new();
    let mut deaths = Vec::new();
    // Known once the files are found; an error ends the round.
    let mut selected = false;
    let mut unselectable = None;
    // The events channel does not close while `ctx` can still start validators: the round
    // ends when every validator has finished, or on a signal.
    loop {
        for next in std::mem::take(&mut state.pending) {
            match next {
                Next::Start(index) if state.stopped_by.is_none() => {
                    let validator = plan.validators[index].clone();
                    let task = running.spawn(execute(index, validator, ctx.clone()));
                    tasks.insert(task.id(), index);
                }
                Next::Start(index) => state.skip(index, Skip::FailFast, "not started"),
                Next::Skip(index, reason) => state.skip(index, Skip::Requires, &reason),
            }
        }
        if state.finished.iter().all(|f| *f) && state.pending.is_empty() {
            break;
        }
        tokio::select! {
            event = inbox.recv() => match event {
                Some(event) => {
                    if state.fold(event) {
                        running.abort_all();
                    }
                }
                None => break,
            },
            Some(joined) = running.join_next_with_id() => match joined {
                Err(e) if e.is_cancelled() => {
                    // Stopped by --fail-fast; what it sent before is kept.
                    let index = tasks[&e.id()];
                    while let Ok(event) = inbox.try_recv() {
                        state.fold(event);
                    }
                    if !state.finished[index] {
                        state.skip(index, Skip::FailFast, "stopped");
                    }
                }
                Err(e) => deaths.push((tasks[&e.id()], Failure::from_join(e))),
                Ok(_) => {}
            },
            found = files.result(), if !selected => {
                selected = true;
                unselectable = take_found(&mut state.report, found);
                if unselectable.is_some() {
                    running.abort_all();
                    break;
                }
            },
            signal = interrupt.fired() => {
                state.report.interrupted = Some(signal);
                // Dropping a session kills its process group.
                running.abort_all();
                break;
            }
        }
        // A task that died (a panic in our code) never sends its end: judge it once every
        // event it sent before is in.
        if !deaths.is_empty() {
            while let Ok(event) = inbox.try_recv() {
                state.fold(event);
            }
            for (index, failure) in std::mem::take(&mut deaths) {
                if !state.finished[index] {
                    tracing::error!(validator = %names[index], "{failure}");
                    let failures = [(failure, Closed::nothing())];
                    let outcome = Outcome::judge(failures, Duration::ZERO, Duration::ZERO);
                    state.fold(Event::Finished { index, outcome });
                }
            }
        }
    }
    // Validators that all ended before their files were needed (disabled, say) still owe the
    // report selection's warnings, or its error.
    if !selected && state.report.interrupted.is_none() {
        unselectable = take_found(&mut state.report, files.result().await);
    }
    while running.join_next().await.is_some() {}
    let (hashes, probes) = (ctx.hashes.clone(), ctx.probes.clone());
    drop(ctx);
    // Results sent before an abort are kept like any other.
    while let Ok(event) = inbox.try_recv() {
        state.fold(event);
    }
    let State {
        mut report,
        progress,
        schedule,
        finished,
        ends,
        started,
        recorded,
        unread,
        held,
        ..
    } = state;
    settle(
        &mut report,
        &recorded,
        Aside { unread, held },
        plan.rendered.as_ref(),
        &cache,
    )
    .await;
    if let Some(signal) = report.interrupted {
        for (v, done) in report.validators.iter_mut().zip(&finished) {
            if !done {
                v.status = Status::Interrupted;
                v.message = format!("interrupted by {}", signal.name);
                v.partial = !v.checked.is_empty();
            }
        }
    }
    report.elapsed = started.elapsed();
    report.critical_path = schedule
        .critical_path(&ends)
        .into_iter()
        .map(|i| names[i].clone())
        .collect();
    progress.clear();
    let killed = tokio::task::spawn_blocking(|| crate::process::sweep_descendants(SWEEP_LIMIT))
        .await
        .unwrap_or(0);
    if killed > 0 {
        tracing::info!(killed, "killed processes left behind by validators");
    }
    hashes.persist().await;
    let _ = tokio::task::spawn_blocking(move || probes.keep()).await;
    let notes = tokio::task::spawn_blocking(move || cache.finish_run()).await;
    report.warnings.extend(notes.unwrap_or_default());
    let dimensions = report
        .validators
        .iter()
        .filter_map(|v| v.dimension.as_deref());
    let unused = plan.config.unused_timeouts(dimensions);
    report.warnings.extend(unused);
    if let Some(e) = unselectable {
        return Err(e);
    }
    report.sort();
    Ok(report)
}

/// Results whose findings are not in the report yet: the kept findings may hold them.
#[derive(Debug, Default)]
struct Aside {
    unread: Vec<(usize, Box<Unread>)>,
    held: Vec<Held>,
}

/// Says what the report's findings were made of, and how much of the kept findings are them:
/// all, some ([`crate::splice`]) or none; the results left unread or held aside that they do
/// not hold are read into the report now.
async fn settle(
    report: &mut Report,
    recorded: &[Option<Hash>],
    aside: Aside,
    rendered: Option<&Arc<Rendered>>,
    cache: &Cache,
) {
    let makings = report
        .validators
        .iter()
        .zip(recorded)
        .filter(|(v, _)| v.findings > 0)
        .map(|(v, body)| body.map(|body| (v.name.clone(), body)))
        .collect::<Option<Vec<_>>>()
        .map(Makings::new);
    let Aside { unread, held } = aside;
    let unread: Vec<_> = unread
        .into_iter()
        .filter(|(_, u)| u.head.findings > 0)
        .collect();
    let mut complete = true;
    let kept = rendered.zip(makings.as_ref().filter(|m| !m.is_empty()));
    let left = match kept {
        // Every finding is unread, and the kept ones were made the same way.
        Some((kept, makings))
            if report.findings.is_empty() && held.is_empty() && kept.answers(makings) =>
        {
            report.reused = Some(Reuse::whole(kept.clone()));
            None
        }
        Some((kept, _)) => match splice(report, held, &unread, kept) {
            Ok(reuse) => {
                report.reused = Some(reuse);
                None
            }
            Err(held) => Some(held),
        },
        None => Some(held),
    };
    if let Some(held) = left {
        complete &= add_held(report, held).await;
        if !unread.is_empty() {
            complete = read_unread(report, unread, cache).await;
        }
    }
    // Findings missing a validator's are not what the records make, and are not kept.
    report.makings = makings.filter(|_| complete);
}

/// Decodes the results held aside into the report; returns whether all were decoded. Bytes
/// whose digest holds but that do not decode are a cache another build wrote: what they held
/// is said, not silently lost.
async fn add_held(report: &mut Report, held: Vec<Held>) -> bool {
    let decoding = tokio::task::spawn_blocking(move || {
        held.into_iter()
            .map(|h| (h.index, crate::cache::decode_all(h.results)))
            .collect::<Vec<_>>()
    });
    let decoded = match decoding.await {
        Ok(decoded) => decoded,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => return false,
    };
    let mut complete = true;
    for (index, results) in decoded {
        match results {
            Some(results) => {
                for result in results {
                    add_findings(report, index, result.findings);
                }
            }
            None => {
                complete = false;
                let name = &report.validators[index].name;
                report.warnings.push(format!(
                    "{name}: the cached results of its last run could not be read, and their                      findings are missing from this report (fix: `orchestrator cache clear`)"
                ));
            }
        }
    }
    complete
}

/// Reads the results left unread into the report; returns whether all were read. A validator
/// whose record another run replaced meanwhile has no findings to give: it did not complete.
async fn read_unread(
    report: &mut Report,
    unread: Vec<(usize, Box<Unread>)>,
    cache: &Cache,
) -> bool {
    let indexes: Vec<usize> = unread.iter().map(|(i, _)| *i).collect();
    let cache = cache.clone();
    let read = tokio::task::spawn_blocking(move || {
        unread
            .into_iter()
            .map(|(_, u)| cache.run_results(&u.slot, &u.head.body, u.head.paths.len()))
            .collect()
    })
    .await
    .unwrap_or_else(|_| vec![None; indexes.len()]);
    let mut complete = true;
    for (index, results) in indexes.into_iter().zip(read) {
        complete &= results.is_some();
        match results {
            Some(results) => {
                for result in results {
                    add_findings(report, index, result.findings);
                }
            }
            None => {
                let v = &mut report.validators[index];
                v.status = Status::Crashed;
                v.message = "its results were in the cache when the run began and were replaced \
                             by another run before the report read them; run again"
                    .to_owned();
                v.findings = 0;
                v.cached_files = 0;
                v.checked.clear();
                if let Some(last) = v.attempts.last_mut() {
                    last.status = Status::Crashed;
                }
            }
        }
    }
    complete
}

/// Puts selection's warnings at the head of the report, as when selection came before the run;
/// returns its error instead when it failed.
fn take_found(report: &mut Report, found: Result<Arc<Found>, SelectError>) -> Option<SelectError> {
    match found {
        Ok(found) => {
            report.warnings.splice(0..0, found.warnings.iter().cloned());
            None
        }
        Err(e) => Some(e),
    }
}

/// What a round knows while it runs.
#[derive(Debug)]
struct State {
    report: Report,
    progress: Progress,
    schedule: Schedule,
    finished: Vec<bool>,
    /// When each validator that ran ended, from the round's start.
    ends: Vec<Option<Duration>>,
    started: Instant,
    /// `--fail-fast` fired: "ruff failed".
    stopped_by: Option<String>,
    fail_fast: bool,
    /// What the schedule said to do and was not done yet.
    pending: Vec<Next>,
    /// Per validator, the record body its results all came from, when they did.
    recorded: Vec<Option<Hash>>,
    /// Results left unread, by validator.
    unread: Vec<(usize, Box<Unread>)>,
    /// Results of run records held aside ([`Held`]): only when findings were kept.
    held: Vec<Held>,
}

impl State {
    /// Folds one event into the report and the progress line. A validator's end is told to
    /// the schedule (what it lets start or skip goes to `pending`) and may fire `--fail-fast`;
    /// returns whether it did, so the caller stops what runs.
    fn fold(&mut self, event: Event) -> bool {
        self.progress.observe(&event);
        let ended = match event {
            Event::Finished { index, .. } => Some(index),
            _ => None,
        };
        match event {
            Event::Recorded {
                index,
                body,
                unread,
            } => {
                self.recorded[index] = Some(body);
                if let Some(unread) = unread {
                    count_unread(&mut self.report.validators[index], &unread.head);
                    self.unread.push((index, unread));
                }
            }
            Event::Served {
                index,
                body,
                results,
            } => {
                let v = &mut self.report.validators[index];
                for result in &results {
                    count_result(v, &result.path, result.findings(), true);
                }
                self.held.push(Held {
                    index,
                    body,
                    results,
                });
            }
            Event::Finished { index, outcome } => {
                let unread_errors = self
                    .unread
                    .iter()
                    .any(|(i, u)| *i == index && u.head.errors > 0);
                let held_errors = self
                    .held
                    .iter()
                    .filter(|h| h.index == index)
                    .flat_map(|h| &h.results)
                    .any(|r| r.errors() > 0);
                finish(
                    &mut self.report,
                    index,
                    outcome,
                    unread_errors || held_errors,
                );
            }
            event => apply(&mut self.report, event),
        }
        let Some(index) = ended else {
            return false;
        };
        self.finished[index] = true;
        let v = &self.report.validators[index];
        // Only a validator that ran can be on the critical path.
        if !v.attempts.is_empty() {
            self.ends[index] = Some(self.started.elapsed());
        }
        let ok = passed(v.status);
        let fire = self.fail_fast && self.stopped_by.is_none() && !ok;
        if fire {
            self.stopped_by = Some(format!("{} {}", v.name, v.status.as_str()));
            for waiting in self.schedule.abandon() {
                self.skip(waiting, Skip::FailFast, "not started");
            }
        }
        let next = self.schedule.ended(index, ok);
        self.pending.extend(next);
        fire
    }

    /// Reports a validator as skipped, as its end; under `--fail-fast`, `reason` says whether
    /// it was "stopped" or "not started".
    fn skip(&mut self, index: usize, skip: Skip, reason: &str) {
        let message = match (&self.stopped_by, skip) {
            (Some(first), Skip::FailFast) => format!("{reason}: --fail-fast after {first}"),
            _ => reason.to_owned(),
        };
        let outcome = Outcome::plain(Status::Skipped(skip), message, Duration::ZERO);
        self.fold(Event::Finished { index, outcome });
    }
}

/// Whether a validator's end lets those that require it run: it passed, or had nothing to
/// check.
fn passed(status: Status) -> bool {
    match status {
        Status::Passed => true,
        Status::Skipped(skip) => skip.harmless(),
        _ => false,
    }
}

/// Folds one event into the report.
fn apply(report: &mut Report, event: Event) {
    match event {
        Event::Started {
            index,
            manifest,
            files,
            dependents,
        } => {
            let v = &mut report.validators[index];
            v.dependents = dependents;
            v.dimension = Some(manifest.dimension.to_string());
            v.version = Some(manifest.version);
            // What follows the version after a `;` is for the cache key (protocol.md).
            v.tool = manifest.tool.map(|t| {
                let version = t.version.split(';').next().unwrap_or_default().trim_end();
                format!("{} {version}", t.name)
            });
            v.files = files;
        }
        Event::Results {
            index,
            results,
            origin,
        } => {
            let cached = origin != Origin::Validator;
            for result in results {
                add_result(report, index, result, cached);
            }
        }
        Event::Unreadable { warnings, .. } => {
            for w in warnings {
                if !report.warnings.contains(&w) {
                    report.warnings.push(w);
                }
            }
        }
        // Folded by the state, which keeps what they say beyond the report.
        Event::Progress { .. }
        | Event::Recorded { .. }
        | Event::Served { .. }
        | Event::Finished { .. } => {}
    }
}

/// Counts results left unread as [`add_result`] counts those read.
fn count_unread(v: &mut ValidatorReport, head: &RecordHead) {
    v.cached_files += u32::try_from(head.paths.len()).unwrap_or(u32::MAX);
    v.findings += head.findings;
    v.checked.extend(head.paths.iter().cloned());
}

fn add_result(report: &mut Report, index: usize, result: FileResult, cached: bool) {
    let findings = u32::try_from(result.findings.len()).unwrap_or(u32::MAX);
    count_result(
        &mut report.validators[index],
        &result.path,
        findings,
        cached,
    );
    report.baselines_written.extend(result.baselines_written);
    if result.modified && !report.fixed_files.contains(&result.path) {
        report.fixed_files.push(result.path);
    }
    add_findings(report, index, result.findings);
}

/// Counts a result in its validator's part of the report: a file done, and its findings.
fn count_result(v: &mut ValidatorReport, path: &str, findings: u32, cached: bool) {
    v.cached_files += u32::from(cached);
    v.findings += findings;
    v.checked.push(path.to_owned());
}

/// Adds a result's findings, sorted among themselves.
fn add_findings(report: &mut Report, index: usize, findings: Vec<protocol::Finding>) {
    let name = &report.validators[index].name;
    let from = report.findings.len();
    report
        .findings
        .extend(findings.into_iter().map(|finding| ReportFinding {
            validator: name.clone(),
            finding,
        }));
    crate::report::sort_findings(&mut report.findings[from..]);
}

/// `unread_errors`: results left unread hold error findings.
fn finish(report: &mut Report, index: usize, outcome: Outcome, unread_errors: bool) {
    let has_errors = unread_errors || {
        let name = &report.validators[index].name;
        report
            .findings
            .iter()
            .any(|f| &f.validator == name && f.finding.severity == Severity::Error)
    };
    let v = &mut report.validators[index];
    v.duration = outcome.duration;
    v.message = outcome.message;
    v.status = match outcome.status {
        Status::Passed if has_errors => Status::Failed,
        other => other,
    };
    v.attempts = outcome.attempts;
    if let Some(last) = v.attempts.last_mut() {
        last.status = v.status;
    }
    if !v.status.completed() {
        v.partial = !v.checked.is_empty();
        v.stderr_tail = outcome.stderr_tail.filter(|t| !t.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ValidatorConfig};
    use crate::selected::Files;
    use crate::session::Launch;

    fn validator(name: &str) -> PlannedValidator {
        PlannedValidator {
            name: name.into(),
            launch: Launch {
                program: "/nonexistent".into(),
                args: vec![],
            },
            settings: ValidatorConfig::default(),
            // Disabled: the real executor reports it without starting anything.
            disabled: true,
        }
    }

    /// The rules of a report's findings, in order.
    fn rules(report: &Report) -> Vec<&str> {
        let findings = report.findings.iter();
        findings.map(|f| f.finding.rule.as_str()).collect()
    }

    #[tokio::test]
    async fn results_left_unread_are_read_unless_kept_and_a_record_gone_meanwhile_is_said() {
        use crate::cache::{KeptResult, RunIndex, RunRecord, Setting, Uses};
        use protocol::Finding as Found;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::open(
            &Setting::At(dir.path().to_owned()),
            None,
            &Default::default(),
        );
        let error = |rule: &str| Found::new("a.py", 1, 1, rule, Severity::Error, "m");
        let record = |rule: &str| RunRecord {
            keys: [1; 32],
            settled: i64::MIN,
            inputs: Vec::new(),
            results: vec![KeptResult::of(&FileResult::new("a.py", vec![error(rule)]))],
        };
        let index = RunIndex {
            keys: [1; 32],
            results: vec![Uses::new(&[2; 32], &[])],
        };
        let (lint_slot, style_slot) = ([7; 32], [8; 32]);
        let lint_body = cache.put_run_record(&lint_slot, &record("L1"), &index);
        let style_body = cache.put_run_record(&style_slot, &record("S1"), &index);
        let head = |slot: &[u8; 32]| cache.run_record(slot).expect("a head");
        let unread = |report: &mut Report, heads: Vec<(usize, [u8; 32], RecordHead)>| {
            heads
                .into_iter()
                .map(|(i, slot, head)| {
                    count_unread(&mut report.validators[i], &head);
                    report.validators[i].status = Status::Failed;
                    (i, Box::new(Unread { slot, head }))
                })
                .collect::<Vec<_>>()
        };
        let names = ["lint".to_owned(), "style".to_owned()];
        let recorded = [lint_body, style_body];

        let mut read = Report::new(dir.path().to_owned(), &names, Vec::new());
        let parts = unread(
            &mut read,
            vec![
                (0, lint_slot, head(&lint_slot)),
                (1, style_slot, head(&style_slot)),
            ],
        );
        let aside = Aside {
            unread: parts,
            held: Vec::new(),
        };
        settle(&mut read, &recorded, aside, None, &cache).await;
        assert_eq!(
            rules(&read),
            ["L1", "S1"],
            "nothing was kept, so everything is read"
        );
        assert!(read.reused.is_none());
        assert!(read.makings.is_some());

        // style's record replaced by another run after its head was read.
        let mut gone = Report::new(dir.path().to_owned(), &names, Vec::new());
        let stale = head(&style_slot);
        cache.put_run_record(&style_slot, &record("S2"), &index);
        let parts = unread(
            &mut gone,
            vec![(0, lint_slot, head(&lint_slot)), (1, style_slot, stale)],
        );
        let aside = Aside {
            unread: parts,
            held: Vec::new(),
        };
        settle(&mut gone, &recorded, aside, None, &cache).await;
        assert_eq!(gone.findings.len(), 1);
        assert_eq!(gone.validators[1].status, Status::Crashed);
        assert_eq!(gone.validators[1].findings, 0);
        assert!(
            gone.makings.is_none(),
            "findings missing style's are not kept"
        );
    }

    #[tokio::test]
    async fn held_results_are_decoded_when_no_findings_were_kept_and_one_that_cannot_be_is_said() {
        use crate::cache::KeptResult;
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = Cache::off();
        let names = ["lint".to_owned(), "style".to_owned()];
        let found = protocol::Finding::new("a.py", 1, 1, "L1", Severity::Error, "m");
        let held = |index: usize, results: Vec<KeptResult>| Held {
            index,
            body: [index as u8; 32],
            results,
        };
        let mut report = Report::new(dir.path().to_owned(), &names, Vec::new());
        let aside = Aside {
            unread: Vec::new(),
            held: vec![
                held(
                    0,
                    vec![KeptResult::of(&FileResult::new("a.py", vec![found]))],
                ),
                held(1, vec![KeptResult::undecodable("b.py")]),
            ],
        };
        let recorded = [Some([0; 32]), Some([1; 32])];
        settle(&mut report, &recorded, aside, None, &cache).await;
        assert_eq!(rules(&report), ["L1"], "the decodable results' findings");
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert!(report.warnings[0].starts_with("style: the cached results"));
        assert!(
            report.makings.is_none(),
            "findings missing some are not kept"
        );
    }

    #[tokio::test]
    async fn an_executor_that_panics_leaves_its_validator_crashed_and_the_run_incomplete() {
        let root = tempfile::tempdir().expect("tempdir");
        let plan = Plan {
            root: root.path().to_owned(),
            config: Arc::new(Config::defaults()),
            files: Files::Found(Arc::default()),
            validators: vec![validator("a"), validator("b")],
            jobs: 1,
            fix: false,
            update_baselines: false,
            artifacts_dir: root.path().join("artifacts"),
            fail_fast: false,
            shard: None,
            history: None,
            rendered: None,
            kept: None,
        };
        let execute = |index: usize, v: PlannedValidator, ctx: Context| async move {
            if index == 0 {
                panic!("injected failure in {}", v.name);
            }
            executor::execute(index, v, ctx).await;
        };
        let files = plan.files.start();
        let report = round_with(
            &plan,
            &files,
            false,
            Cache::off(),
            Interrupt::never(),
            execute,
        )
        .await
        .expect("no files to find");
        let a = &report.validators[0];
        assert_eq!(a.status, Status::Crashed);
        assert_eq!(a.message, "internal error: injected failure in a");
        assert_eq!(report.validators[1].status, Status::Skipped(Skip::Disabled));
        assert_eq!(report.status().exit_code(), protocol::exit::INCOMPLETE);
    }
}
