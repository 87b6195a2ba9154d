//! The live progress line on a terminal: each validator's files done out of its files, and what
//! has finished, redrawn in place on stderr and erased before the report is printed.
//!
//! Drawn only when stderr is a terminal, so logs, pipes and CI output stay clean; the report
//! itself never depends on it.

use crate::event::Event;
use crate::report::Status;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// What one validator has done so far.
#[derive(Debug, Clone)]
struct Line {
    name: String,
    done: u32,
    total: Option<u32>,
    finished: Option<Status>,
}

/// The progress of one round.
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
    lines: Vec<Line>,
}

impl Progress {
    /// A progress line for these validators, drawn if stderr is a terminal.
    pub fn new<'a>(names: impl Iterator<Item = &'a str>) -> Progress {
        let lines = names
            .map(|name| Line {
                name: name.to_owned(),
                done: 0,
                total: None,
                finished: None,
            })
            .collect();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {elapsed:>3} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let progress = Progress { bar, lines };
        progress.draw();
        progress
    }

    /// Notes an event of the dispatcher.
    pub fn observe(&mut self, event: &Event) {
        if self.bar.is_none() {
            return;
        }
        match event {
            Event::Started { index, files, .. } => self.lines[*index].total = Some(*files),
            Event::Results { index, results, .. } => {
                self.lines[*index].done += u32::try_from(results.len()).unwrap_or(u32::MAX);
            }
            Event::Served { index, results, .. } => {
                self.lines[*index].done += u32::try_from(results.len()).unwrap_or(u32::MAX);
            }
            Event::Progress { index, done, total } => {
                let line = &mut self.lines[*index];
                line.done = line.done.max(*done);
                line.total = Some(*total);
            }
            Event::Recorded {
                index,
                unread: Some(unread),
                ..
            } => {
                let done = unread.head.paths.len();
                self.lines[*index].done += u32::try_from(done).unwrap_or(u32::MAX);
            }
            Event::Unreadable { .. } | Event::Recorded { .. } => return,
            Event::Finished { index, outcome } => {
                self.lines[*index].finished = Some(outcome.status);
            }
        }
        self.draw();
    }

    fn draw(&self) {
        let Some(bar) = &self.bar else { return };
        let finished = self.lines.iter().filter(|l| l.finished.is_some()).count();
        let mut text = format!("{finished}/{} done", self.lines.len());
        for line in self.lines.iter().filter(|l| l.finished.is_none()) {
            let count = match line.total {
                Some(total) => format!(" {}/{total}", line.done.min(total)),
                None => " starting".to_owned(),
            };
            text.push_str(&format!(" · {}{count}", line.name));
        }
        bar.set_message(text);
    }

    /// Erases the line, leaving the terminal as it was.
    pub fn clear(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
