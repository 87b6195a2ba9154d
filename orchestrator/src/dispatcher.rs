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
//! A signal ([`Interrupt`]) ends a round early: every executor still running is aborted, which
//! kills its validators' process groups, the tree is swept as always, and the validators that
//! had not finished are reported `interrupted`, with the results they had sent.
//!
//! `run --fix` is rounds of fixing (only validators that can fix take part, and the cache is
//! not used) until a round changes nothing or `max_fix_rounds` is reached, then one ordinary
//! round whose report is the answer: every finding in it is about the files as they now are.

use crate::cache::Cache;
use crate::event::Event;
use crate::executor::{self, Context};
use crate::hashing::FileHashes;
use crate::interrupt::Interrupt;
use crate::plan::{Plan, PlannedValidator};
use crate::progress::Progress;
use crate::report::{Report, ReportFinding, Status, ValidatorReport};
use crate::verdict::{Closed, Failure, Outcome};
use protocol::Severity;
use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

/// How long the final sweep may spend killing leftover processes.
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// Runs a plan to its end, or until `interrupt` fires.
pub async fn run(plan: Plan, cache: Cache, interrupt: Interrupt) -> Report {
    if !plan.fix {
        return round(&plan, false, cache, interrupt).await;
    }
    let mut fixed = BTreeSet::new();
    let mut notes = Vec::new();
    let rounds = plan.config.max_fix_rounds;
    for number in 1..=rounds {
        let mut fixing = round(&plan, true, Cache::off(), interrupt.clone()).await;
        if fixing.interrupted.is_some() {
            fixing.fixed_files.sort();
            return fixing;
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
    let mut report = round(&plan, false, cache, interrupt).await;
    report.warnings.extend(notes);
    report.fixed_files = fixed.into_iter().collect();
    report
}

/// Runs every validator of the plan once; `fix` makes it a fixing round.
async fn round(plan: &Plan, fix: bool, cache: Cache, interrupt: Interrupt) -> Report {
    round_with(plan, fix, cache, interrupt, executor::execute).await
}

/// [`round`] with the function that runs one validator given (tests give one that fails).
async fn round_with<F, Fut>(
    plan: &Plan,
    fix: bool,
    cache: Cache,
    mut interrupt: Interrupt,
    execute: F,
) -> Report
where
    F: Fn(usize, PlannedValidator, Context) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (events, mut inbox) = mpsc::channel(256);
    let ctx = Context {
        root: Arc::new(plan.root.clone()),
        files: plan.files.clone(),
        config: plan.config.clone(),
        hashes: FileHashes::new(&plan.root, cache.clone()),
        cache: cache.clone(),
        permits: Arc::new(Semaphore::new(plan.jobs)),
        events,
        fix,
        update_baselines: plan.update_baselines && !fix,
        artifacts_dir: Arc::new(plan.artifacts_dir.clone()),
    };
    let mut report = Report {
        validators: plan
            .validators
            .iter()
            .map(|v| ValidatorReport::new(&v.name))
            .collect(),
        findings: Vec::new(),
        warnings: plan.warnings.clone(),
        fixed_files: Vec::new(),
        baselines_written: Vec::new(),
        interrupted: None,
    };
    let executors: Vec<JoinHandle<()>> = plan
        .validators
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, validator)| tokio::spawn(execute(index, validator, ctx.clone())))
        .collect();
    let hashes = ctx.hashes.clone();
    drop(ctx);
    let mut progress = Progress::new(plan.validators.iter().map(|v| v.name.as_str()));
    let mut finished = vec![false; report.validators.len()];
    let mut fold = |report: &mut Report, finished: &mut [bool], event: Event| {
        if let Event::Finished { index, .. } = event {
            finished[index] = true;
        }
        progress.observe(&event);
        apply(report, event);
    };
    // The channel closes once every executor has ended, whether it finished or died.
    loop {
        tokio::select! {
            event = inbox.recv() => match event {
                Some(event) => fold(&mut report, &mut finished, event),
                None => break,
            },
            signal = interrupt.fired() => {
                report.interrupted = Some(signal);
                // Dropping a session kills its process group.
                for executor in &executors {
                    executor.abort();
                }
                break;
            }
        }
    }
    let mut deaths = Vec::new();
    for (index, executor) in executors.into_iter().enumerate() {
        if let Err(e) = executor.await {
            if !e.is_cancelled() {
                deaths.push((index, Failure::from_join(e)));
            }
        }
    }
    // Results sent before an abort are kept like any other.
    while let Ok(event) = inbox.try_recv() {
        fold(&mut report, &mut finished, event);
    }
    for (index, failure) in deaths {
        if !finished[index] {
            tracing::error!(validator = %report.validators[index].name, "{failure}");
            let failures = [(failure, Closed::nothing())];
            let outcome = Outcome::judge(failures, Duration::ZERO, Duration::ZERO);
            fold(
                &mut report,
                &mut finished,
                Event::Finished { index, outcome },
            );
        }
    }
    if let Some(signal) = report.interrupted {
        for (v, done) in report.validators.iter_mut().zip(&finished) {
            if !done {
                v.status = Status::Interrupted;
                v.message = format!("interrupted by {}", signal.name);
                v.partial = v.files_done > 0;
            }
        }
    }
    progress.clear();
    let killed = tokio::task::spawn_blocking(|| crate::process::sweep_descendants(SWEEP_LIMIT))
        .await
        .unwrap_or(0);
    if killed > 0 {
        tracing::info!(killed, "killed processes left behind by validators");
    }
    hashes.persist().await;
    let _ = tokio::task::spawn_blocking(move || cache.finish_run()).await;
    let dimensions = report
        .validators
        .iter()
        .filter_map(|v| v.dimension.as_deref());
    let unused = plan.config.unused_timeouts(dimensions);
    report.warnings.extend(unused);
    report.sort();
    report
}

/// Folds one event into the report.
fn apply(report: &mut Report, event: Event) {
    match event {
        Event::Started {
            index,
            manifest,
            files,
        } => {
            let v = &mut report.validators[index];
            v.dimension = Some(manifest.dimension.to_string());
            v.version = Some(manifest.version);
            v.tool = manifest.tool.map(|t| format!("{} {}", t.name, t.version));
            v.files = files;
        }
        Event::FileResult {
            index,
            result,
            cached,
        } => {
            let v = &mut report.validators[index];
            v.files_done += 1;
            v.cached_files += u32::from(cached);
            report.baselines_written.extend(result.baselines_written);
            if result.modified && !report.fixed_files.contains(&result.path) {
                report.fixed_files.push(result.path.clone());
            }
            v.findings += u32::try_from(result.findings.len()).unwrap_or(u32::MAX);
            let name = v.name.clone();
            report
                .findings
                .extend(result.findings.into_iter().map(|finding| ReportFinding {
                    validator: name.clone(),
                    finding,
                }));
        }
        Event::Progress { .. } => {}
        Event::Unreadable { warnings, .. } => {
            for w in warnings {
                if !report.warnings.contains(&w) {
                    report.warnings.push(w);
                }
            }
        }
        Event::Finished { index, outcome } => finish(report, index, outcome),
    }
}

fn finish(report: &mut Report, index: usize, outcome: Outcome) {
    let has_errors = {
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
        v.partial = v.files_done > 0;
        v.stderr_tail = outcome.stderr_tail.filter(|t| !t.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ValidatorConfig};
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

    #[tokio::test]
    async fn an_executor_that_panics_leaves_its_validator_crashed_and_the_run_incomplete() {
        let root = tempfile::tempdir().expect("tempdir");
        let plan = Plan {
            root: root.path().to_owned(),
            config: Arc::new(Config::defaults()),
            files: Arc::new(Vec::new()),
            warnings: Vec::new(),
            validators: vec![validator("a"), validator("b")],
            jobs: 1,
            fix: false,
            update_baselines: false,
            artifacts_dir: root.path().join("artifacts"),
        };
        let execute = |index: usize, v: PlannedValidator, ctx: Context| async move {
            if index == 0 {
                panic!("injected failure in {}", v.name);
            }
            executor::execute(index, v, ctx).await;
        };
        let report = round_with(&plan, false, Cache::off(), Interrupt::never(), execute).await;
        let a = &report.validators[0];
        assert_eq!(a.status, Status::Crashed);
        assert_eq!(a.message, "internal error: injected failure in a");
        assert_eq!(
            report.validators[1].status,
            Status::Skipped(crate::report::Skip::Disabled)
        );
        assert_eq!(report.status().exit_code(), protocol::exit::INCOMPLETE);
    }
}
