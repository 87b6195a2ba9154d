//! The dispatcher: the one loop that owns a run's state.
//!
//! It starts an executor per validator, then folds their [`Event`]s into the [`Report`] as they
//! arrive, so the report always holds every result received so far, whatever happens to the
//! executors. When the last executor has finished, the process tree is swept: nothing a
//! validator started outlives the run.

use crate::executor::{self, Context, Event, Outcome};
use crate::hashing::FileHashes;
use crate::plan::Plan;
use crate::report::{Report, ReportFinding, Status, ValidatorReport};
use protocol::Severity;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};

/// How long the final sweep may spend killing leftover processes.
const SWEEP_LIMIT: Duration = Duration::from_secs(5);

/// Runs a plan to its end.
pub async fn run(plan: Plan) -> Report {
    let (events, mut inbox) = mpsc::channel(256);
    let ctx = Context {
        root: Arc::new(plan.root.clone()),
        files: plan.files.clone(),
        config: plan.config.clone(),
        hashes: FileHashes::new(&plan.root),
        permits: Arc::new(Semaphore::new(plan.jobs)),
        events,
        fix: plan.fix,
    };
    let mut report = Report {
        validators: plan
            .validators
            .iter()
            .map(|v| ValidatorReport::new(&v.name))
            .collect(),
        findings: Vec::new(),
        warnings: plan.warnings.clone(),
    };
    for (index, validator) in plan.validators.into_iter().enumerate() {
        tokio::spawn(executor::execute(index, validator, ctx.clone()));
    }
    drop(ctx);
    let mut unfinished = report.validators.len();
    while unfinished > 0 {
        let Some(event) = inbox.recv().await else {
            break;
        };
        if matches!(event, Event::Finished { .. }) {
            unfinished -= 1;
        }
        apply(&mut report, event);
    }
    let killed = tokio::task::spawn_blocking(|| crate::process::sweep_descendants(SWEEP_LIMIT))
        .await
        .unwrap_or(0);
    if killed > 0 {
        tracing::info!(killed, "killed processes left behind by validators");
    }
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
        Event::FileResult { index, result } => {
            let v = &mut report.validators[index];
            v.files_done += 1;
            v.findings += u32::try_from(result.findings.len()).unwrap_or(u32::MAX);
            let name = v.name.clone();
            report
                .findings
                .extend(result.findings.into_iter().map(|finding| ReportFinding {
                    validator: name.clone(),
                    finding,
                }));
        }
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
    if !v.status.completed() {
        v.partial = v.files_done > 0;
        v.stderr_tail = outcome.stderr_tail.filter(|t| !t.is_empty());
    }
}
