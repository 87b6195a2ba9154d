//! Ctrl-C, SIGTERM and SIGHUP during a run.
//!
//! Validators lead process groups of their own, so the terminal's Ctrl-C never reaches them:
//! if the coordinator simply died, they would run on, orphaned. Instead the signal is caught,
//! the run stops (every validator's group is killed, the tree is swept), and the report of what
//! arrived so far is printed with exit status 128 + the signal's number, as shells expect.

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// A signal that asks the run to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal {
    pub name: &'static str,
    pub number: i32,
}

/// The signals a run stops for.
const STOPPING: [Signal; 3] = [
    Signal {
        name: "SIGINT",
        number: libc::SIGINT,
    },
    Signal {
        name: "SIGTERM",
        number: libc::SIGTERM,
    },
    Signal {
        name: "SIGHUP",
        number: libc::SIGHUP,
    },
];

impl Signal {
    /// The signal a report names (`SIGINT`), if a run stops for it.
    pub fn named(name: &str) -> Option<Signal> {
        STOPPING.into_iter().find(|s| s.name == name)
    }

    /// The conventional exit status of a process stopped by this signal.
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.number).unwrap_or(u8::MAX)
    }
}

/// Whether, and by which signal, the run was asked to stop; cheap to clone.
#[derive(Debug, Clone)]
pub struct Interrupt(watch::Receiver<Option<Signal>>);

impl Interrupt {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP; call inside the runtime. Signals that
    /// cannot be listened for are simply not caught.
    pub fn listen() -> Interrupt {
        let (tx, rx) = watch::channel(None);
        for stopping in STOPPING {
            let Ok(mut stream) = signal(SignalKind::from_raw(stopping.number)) else {
                continue;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                if stream.recv().await.is_some() {
                    tracing::debug!(signal = stopping.name, "asked to stop");
                    let _ = tx.send(Some(stopping));
                }
            });
        }
        Interrupt(rx)
    }

    /// An interrupt that never fires, for runs driven by code rather than a terminal.
    pub fn never() -> Interrupt {
        // With its sender gone, `fired` waits forever.
        Interrupt(watch::channel(None).1)
    }

    /// The signal, if one came.
    pub fn signal(&self) -> Option<Signal> {
        *self.0.borrow()
    }

    /// Waits for a signal.
    pub async fn fired(&mut self) -> Signal {
        loop {
            if let Some(signal) = *self.0.borrow_and_update() {
                return signal;
            }
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
