//! How a validator's run ended: the one type for everything that can stop it early
//! ([`Failure`]), how its processes were stopped ([`Closed`]), and the one [`Outcome`] the
//! report receives, decided by a ranking written once (`rank`).
//!
//! A validator may run several processes (batches); each can fail in its own way. The run's
//! outcome is the worst of them, because the report has room for one status per validator and
//! the worst is the one the user must act on.

use crate::report::{Attempt, Status};
use protocol::{Failed, FailureKind, ProtocolError};
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a validator's work stopped before it was done.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The executable could not be started.
    #[error("could not be started: {0}")]
    Spawn(#[source] io::Error),
    /// A time limit passed.
    #[error("{0}")]
    TimedOut(Limit),
    /// The process ended before it finished its work.
    #[error("{} before finishing", describe_exit(*.0))]
    Exited(ExitStatus),
    /// It closed its stdout but kept running.
    #[error("broke the protocol: closed its stdout while still running")]
    ClosedStdout,
    /// It sent something the protocol does not allow.
    #[error("broke the protocol: {0}")]
    Protocol(ProtocolError),
    /// Waiting for the process failed.
    #[error("waiting for the process failed: {0}")]
    Wait(#[source] io::Error),
    /// It answered a request with `Failed`.
    #[error("{}", .0.message)]
    Refused(Failed),
    /// The coordinator's own code failed (a panic) while running it.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Which time limit a validator overran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The whole run's limit: an explicit `timeout` in the configuration, or the ceiling.
    Total(Duration),
    /// The longest silence allowed: a validator that sends nothing for this long is hung.
    Silence(Duration),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::Total(d) => write!(f, "did not finish within {}", crate::fmt_duration(*d)),
            Limit::Silence(d) => write!(
                f,
                "sent nothing for {} and is taken to be hung",
                crate::fmt_duration(*d)
            ),
        }
    }
}

impl Failure {
    /// The report status this failure stands for.
    pub fn status(&self) -> Status {
        match self {
            Failure::TimedOut(_) => Status::TimedOut,
            Failure::ClosedStdout | Failure::Protocol(_) => Status::ProtocolError,
            Failure::Refused(f) if f.kind == FailureKind::NotInstalled => Status::NotInstalled,
            Failure::Refused(f) if f.kind == FailureKind::Config => Status::ConfigError,
            Failure::Spawn(_)
            | Failure::Exited(_)
            | Failure::Wait(_)
            | Failure::Refused(_)
            | Failure::Internal(_) => Status::Crashed,
        }
    }
}

impl Failure {
    /// A task of ours that died instead of finishing: an internal error, with the panic's
    /// message, so that the validator is reported as not having completed.
    pub fn from_join(e: tokio::task::JoinError) -> Failure {
        Failure::Internal(match e.try_into_panic() {
            Ok(payload) => panic_message(payload.as_ref()),
            Err(e) => e.to_string(),
        })
    }
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// How a process ended when it was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It had already exited, or exited when asked to.
    Exited,
    /// It exited after SIGTERM.
    Terminated,
    /// It ignored SIGTERM for the grace period and was killed.
    Killed,
}

/// A process after it was stopped and reaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub stopped: Stopped,
    /// The last of what it wrote to stderr.
    pub stderr_tail: String,
}

impl Closed {
    /// What closing a process that never started looks like.
    pub fn nothing() -> Closed {
        Closed {
            stopped: Stopped::Exited,
            stderr_tail: String::new(),
        }
    }
}

/// How a validator's run ended, as the report needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// `Passed` stands for "completed"; the dispatcher turns it into `Failed` if errors came.
    pub status: Status,
    pub message: String,
    pub duration: Duration,
    pub stderr_tail: Option<String>,
    /// Every attempt to run it, the last one included; empty when no process was started.
    pub attempts: Vec<Attempt>,
}

impl Outcome {
    /// An outcome without a failure: completed, or not run for `message`'s reason.
    pub fn plain(status: Status, message: impl Into<String>, duration: Duration) -> Outcome {
        Outcome {
            status,
            message: message.into(),
            duration,
            stderr_tail: None,
            attempts: Vec::new(),
        }
    }

    /// This outcome as the one attempt it was.
    pub fn attempt(&self) -> Attempt {
        Attempt {
            status: self.status,
            message: self.message.clone(),
            duration: self.duration,
        }
    }

    /// The outcome of a validator whose processes ended with these failures (none: it
    /// completed). The worst failure decides the status and the message.
    pub fn judge(
        failures: impl IntoIterator<Item = (Failure, Closed)>,
        grace: Duration,
        duration: Duration,
    ) -> Outcome {
        let worst = failures
            .into_iter()
            .min_by_key(|(failure, _)| rank(failure.status()));
        match worst {
            None => Outcome::plain(Status::Passed, "", duration),
            Some((failure, closed)) => Outcome {
                status: failure.status(),
                message: describe(&failure, closed.stopped, grace),
                duration,
                stderr_tail: Some(closed.stderr_tail),
                attempts: Vec::new(),
            },
        }
    }
}

/// Which failure a validator's status shows when its processes failed in several ways: lower
/// is worse. A timeout first (the user waited for it), then a broken protocol (the validator's
/// bug), then a crash, then a configuration mistake, then a missing tool.
fn rank(status: Status) -> u8 {
    match status {
        Status::TimedOut => 0,
        Status::ProtocolError => 1,
        Status::Crashed => 2,
        Status::ConfigError => 3,
        Status::NotInstalled => 4,
        _ => 5,
    }
}

/// The one-line message of a failure, with how the process was stopped where that matters.
fn describe(failure: &Failure, stopped: Stopped, grace: Duration) -> String {
    match failure {
        Failure::TimedOut(limit) => {
            let how = match stopped {
                Stopped::Killed => format!(
                    "killed with SIGKILL after ignoring SIGTERM for {}",
                    crate::fmt_duration(grace)
                ),
                _ => "stopped with SIGTERM".into(),
            };
            format!("{limit}; {how}")
        }
        other => other.to_string(),
    }
}

/// "exited with status 3", "killed by signal 11 (SIGSEGV)".
fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal} ({})", signal_name(signal)),
        (None, None) => format!("ended: {status}"),
    }
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(stopped: Stopped) -> Closed {
        Closed {
            stopped,
            stderr_tail: "tail".into(),
        }
    }

    #[test]
    fn the_worst_failure_decides() {
        let refused = |kind| {
            Failure::Refused(Failed {
                kind,
                message: "m".into(),
            })
        };
        let outcome = Outcome::judge(
            [
                (refused(FailureKind::NotInstalled), closed(Stopped::Exited)),
                (Failure::Internal("boom".into()), closed(Stopped::Exited)),
                (refused(FailureKind::Config), closed(Stopped::Exited)),
            ],
            Duration::from_secs(2),
            Duration::ZERO,
        );
        assert_eq!(outcome.status, Status::Crashed);
        assert_eq!(outcome.message, "internal error: boom");
        assert_eq!(outcome.stderr_tail.as_deref(), Some("tail"));
        let timed_out = Failure::TimedOut(Limit::Silence(Duration::from_secs(120)));
        let outcome = Outcome::judge(
            [
                (refused(FailureKind::Error), closed(Stopped::Exited)),
                (timed_out, closed(Stopped::Killed)),
            ],
            Duration::from_secs(2),
            Duration::ZERO,
        );
        assert_eq!(outcome.status, Status::TimedOut);
        assert_eq!(
            outcome.message,
            "sent nothing for 120s and is taken to be hung; killed with SIGKILL after \
             ignoring SIGTERM for 2s"
        );
    }

    #[test]
    fn no_failure_is_a_completed_run() {
        let outcome = Outcome::judge([], Duration::ZERO, Duration::from_secs(1));
        assert_eq!(outcome.status, Status::Passed);
        assert!(outcome.stderr_tail.is_none());
    }

    #[test]
    fn refusals_map_by_kind() {
        let status = |kind| {
            Failure::Refused(Failed {
                kind,
                message: String::new(),
            })
            .status()
        };
        assert_eq!(status(FailureKind::Error), Status::Crashed);
        assert_eq!(status(FailureKind::NotInstalled), Status::NotInstalled);
        assert_eq!(status(FailureKind::Config), Status::ConfigError);
    }
}
