//! When a validator that did not complete gets another try, and how long it waits first.
//!
//! Only failures that may pass are retried by default ([`Cause::Transient`]): a spawn refused
//! for want of a resource, a process killed by a signal the coordinator did not send (the OOM
//! killer), a validator answering `Failed` with kind `transient`. A timeout, a broken protocol,
//! a crash with an exit status or findings would most likely come back, and a retry would only
//! double their cost, so they are retried only when `retry_on` asks for it (never, for a broken
//! protocol: that is the validator's bug). Every retry fits in the validator's own time limit.

use crate::verdict::Failure;
use backon::BackoffBuilder;
use std::time::Duration;

/// Retries a validator gets when its configuration does not say.
pub const DEFAULT_RETRIES: u32 = 2;

/// The first delay before a retry; each next one doubles, with jitter.
const FIRST_DELAY: Duration = Duration::from_millis(200);

/// No delay is longer than this, jitter included.
const MAX_DELAY: Duration = Duration::from_secs(5);

/// A kind of failure that `retry_on` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cause {
    /// May pass on another try: see the module's documentation.
    Transient,
    /// The process exited with a status, or died of its own fault (SIGSEGV, SIGABRT), or
    /// answered `Failed` with kind `error`.
    Crashed,
    /// It overran a time limit (retried only while the validator's total limit leaves room).
    TimedOut,
}

impl Cause {
    /// Every cause, in the spelling of `retry_on`.
    pub const ALL: [(&'static str, Cause); 3] = [
        ("transient", Cause::Transient),
        ("crashed", Cause::Crashed),
        ("timed_out", Cause::TimedOut),
    ];

    /// The cause of a failure, or `None` for one that is never retried (a broken protocol, a
    /// missing tool, a refused configuration, a spawn that can never work, our own bug).
    pub fn of(failure: &Failure) -> Option<Cause> {
        use protocol::FailureKind;
        use std::os::unix::process::ExitStatusExt;
        match failure {
            Failure::Spawn(e) => match e.raw_os_error() {
                Some(libc::EAGAIN | libc::ENOMEM | libc::ETXTBSY) => Some(Cause::Transient),
                _ => None,
            },
            Failure::Exited(status) => match status.signal() {
                Some(libc::SIGKILL | libc::SIGTERM | libc::SIGHUP | libc::SIGINT) => {
                    Some(Cause::Transient)
                }
                _ => Some(Cause::Crashed),
            },
            Failure::Refused(f) => match f.kind {
                FailureKind::Transient => Some(Cause::Transient),
                FailureKind::Error => Some(Cause::Crashed),
                _ => None,
            },
            Failure::Wait(_) => Some(Cause::Crashed),
            Failure::TimedOut(_) => Some(Cause::TimedOut),
            Failure::ClosedStdout | Failure::Protocol(_) | Failure::Internal(_) => None,
        }
    }
}

/// A validator's retry settings: `retries` and `retry_on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub retries: u32,
    pub retry_on: Vec<Cause>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            retries: DEFAULT_RETRIES,
            retry_on: vec![Cause::Transient],
        }
    }
}

impl Policy {
    /// Whether an attempt that ended with these failures may be retried: each of them must be
    /// of a cause the policy names (one failure that is not would come back anyway).
    pub fn covers<'a>(&self, failures: impl IntoIterator<Item = &'a Failure>) -> bool {
        let mut any = false;
        for failure in failures {
            any = true;
            if !Cause::of(failure).is_some_and(|c| self.retry_on.contains(&c)) {
                return false;
            }
        }
        any
    }

    /// The delays before each retry: exponential from 200 ms, with jitter, at most 5 s each.
    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        backon::ExponentialBuilder::default()
            .with_min_delay(FIRST_DELAY)
            .with_max_delay(MAX_DELAY)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.retries as usize)
            .build()
            // backon's jitter adds up to one more delay on top; the cap holds for the sum.
            .map(|delay| delay.min(MAX_DELAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Limit;
    use protocol::{Failed, FailureKind};
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    fn refused(kind: FailureKind) -> Failure {
        Failure::Refused(Failed {
            kind,
            message: String::new(),
        })
    }

    #[test]
    fn only_failures_that_may_pass_are_transient() {
        let spawn = |errno| Failure::Spawn(std::io::Error::from_raw_os_error(errno));
        assert_eq!(Cause::of(&spawn(libc::EAGAIN)), Some(Cause::Transient));
        assert_eq!(Cause::of(&spawn(libc::ETXTBSY)), Some(Cause::Transient));
        assert_eq!(Cause::of(&spawn(libc::ENOENT)), None);
        // Killed from outside (wait status: the signal number) against dying of its own fault.
        let killed = Failure::Exited(ExitStatus::from_raw(libc::SIGKILL));
        assert_eq!(Cause::of(&killed), Some(Cause::Transient));
        let segv = Failure::Exited(ExitStatus::from_raw(libc::SIGSEGV));
        assert_eq!(Cause::of(&segv), Some(Cause::Crashed));
        let status_3 = Failure::Exited(ExitStatus::from_raw(3 << 8));
        assert_eq!(Cause::of(&status_3), Some(Cause::Crashed));
        assert_eq!(
            Cause::of(&refused(FailureKind::Transient)),
            Some(Cause::Transient)
        );
        assert_eq!(Cause::of(&refused(FailureKind::Config)), None);
        assert_eq!(Cause::of(&Failure::ClosedStdout), None);
        let timed_out = Failure::TimedOut(Limit::Total(Duration::from_secs(1)));
        assert_eq!(Cause::of(&timed_out), Some(Cause::TimedOut));
    }

    #[test]
    fn the_default_policy_retries_transient_failures_only_and_all_must_be() {
        let policy = Policy::default();
        let transient = refused(FailureKind::Transient);
        let crash = refused(FailureKind::Error);
        assert!(policy.covers([&transient]));
        assert!(!policy.covers([&crash]));
        assert!(!policy.covers([&transient, &crash]));
        assert!(!policy.covers([]));
        let wider = Policy {
            retry_on: vec![Cause::Transient, Cause::Crashed],
            ..Policy::default()
        };
        assert!(wider.covers([&transient, &crash]));
    }

    #[test]
    fn delays_grow_from_200ms_stay_under_5s_and_stop_after_the_retries() {
        let policy = Policy {
            retries: 8,
            ..Policy::default()
        };
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 8);
        assert!(
            delays[0] >= FIRST_DELAY && delays[0] < 2 * FIRST_DELAY,
            "{delays:?}"
        );
        assert!(delays.iter().all(|d| *d <= MAX_DELAY), "{delays:?}");
        assert_eq!(delays[7], MAX_DELAY, "{delays:?}");
        let none = Policy {
            retries: 0,
            ..Policy::default()
        };
        assert_eq!(none.delays().count(), 0);
    }
}
