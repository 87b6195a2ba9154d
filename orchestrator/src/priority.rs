//! Which validator gets the processor first when validators run side by side.
//!
//! A cold run lasts as long as its longest validator (pyright on a large tree: minutes), and
//! the others compete with it for the same cores while they run: on Django, on 2 cores,
//! pyright took 108.7 s beside bandit and 101 s beside bandit at nice 19 (docs/benchmarks.md).
//! So once a validator knows how many files it must check, its duration is estimated from the
//! run history, and the processes of every validator except the one expected to take longest
//! are lowered to nice [`LOWERED`]: they still use whatever the longest one leaves idle, but
//! give way to it. Raising a priority back needs privileges, so a lowered validator stays
//! lowered for the rest of its run. Without a history to go by, nothing is lowered.
//!
//! The same estimates decide who gets a process slot (`--jobs`) first. A validator learns how
//! many files it must check once the cache has answered what it can, and that takes longest
//! for the validator with the largest record: after a one-file change on four copies of
//! Django, ruff and bandit knew first, took both slots of a 2-core machine for their one file,
//! and pyright, whose run decides the whole run's, waited 40 to 90 ms for ruff to end. So a
//! validator about to take a slot first gives way ([`Priorities::give_way`]) to those still
//! consulting the cache that could take longer than it will: it leaves them as many slots as
//! they are, until they know. For the same reason, the results a validator's record still
//! answers, which are wanted only when the run ends, are read once no validator is consulting
//! the cache ([`Priorities::all_served`]): after a leaf change on ten copies of Django, ruff
//! and bandit read theirs while pyright's validator still worked out its own misses.

use crate::history::{History, Window};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

/// The niceness of the validators that give way.
pub const LOWERED: i32 = 10;

/// Recent runs the estimates are drawn from.
const RUNS: u32 = 50;

/// The priorities of one run's validators.
#[derive(Debug)]
pub struct Priorities {
    /// The cache directory, whose history the estimates come from; `None`: no estimates.
    history: Option<PathBuf>,
    /// (files checked, duration) of recent complete runs, by validator; read when first needed,
    /// which a run answered wholly from the cache never does.
    samples: OnceLock<HashMap<String, Vec<(u32, Duration)>>>,
    state: Mutex<State>,
    /// Told whenever a validator stops consulting the cache or has taken its slot.
    changed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Validators consulting the cache, with the number of files they might check.
    serving: HashMap<usize, (String, usize)>,
    /// Validators about to take a slot, with their expected duration.
    taking: HashMap<usize, Duration>,
    /// The expected duration of each validator with files to check, by index.
    expected: HashMap<usize, Duration>,
    lowered: HashSet<usize>,
    /// The process groups each validator has started.
    groups: HashMap<usize, Vec<i32>>,
}

impl Priorities {
    /// Priorities from the history in the cache directory `dir`.
    pub fn from_history(dir: PathBuf) -> Priorities {
        Priorities {
            history: Some(dir),
            samples: OnceLock::new(),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// No estimates: nothing is lowered.
    pub fn none() -> Priorities {
        Priorities {
            history: None,
            samples: OnceLock::new(),
            state: Mutex::default(),
            changed: Notify::new(),
        }
    }

    /// Validator `index` (`name`) consults the cache about `files` files, until the returned
    /// guard is dropped or says what is left ([`Serving::known`]).
    pub fn serving(self: &Arc<Self>, index: usize, name: &str, files: usize) -> Serving {
        self.lock().serving.insert(index, (name.to_owned(), files));
        Serving {
            priorities: self.clone(),
            index,
            name: name.to_owned(),
        }
    }

    /// Waits, before the validator `taking` takes one of `slots`, while those left would be
    /// too few for the validators that could take longer than it is expected to: those still
    /// consulting the cache, and those about to take a slot themselves. Each of those ends its
    /// wait in time: consulting the cache waits for nothing, and of two about to take a slot,
    /// one never waits for the other. Without an estimate, never waits.
    pub async fn give_way(&self, taking: &Taking, slots: &Semaphore) {
        let Some((index, expected)) = taking.expected else {
            return;
        };
        // With nobody longer left, the slots are taken in turn as they free.
        self.wait_until(|| {
            let longer = self.longer(index, expected);
            longer == 0 || longer < slots.available_permits()
        })
        .await;
    }

    /// Waits until no validator is consulting the cache: what a validator reads from the cache
    /// for the run's end is read then, not while the others still find out what they must
    /// check.
    pub async fn all_served(&self) {
        self.wait_until(|| self.lock().serving.is_empty()).await;
    }

    /// Waits until `done` holds, looking again whenever a validator stops consulting the cache
    /// or has taken its slot.
    async fn wait_until(&self, done: impl Fn() -> bool) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before looking, so that a change meanwhile is not missed.
            changed.as_mut().enable();
            if done() {
                return;
            }
            changed.await;
        }
    }

    /// How many validators other than `index` could take longer than `expected`. Between two
    /// that take slots, the one expected to take longer goes first (the one first in the plan
    /// when equal), so no two wait for each other.
    fn longer(&self, index: usize, expected: Duration) -> usize {
        let (serving, taking) = {
            let state = self.lock();
            let serving: Vec<(String, usize)> = state
                .serving
                .iter()
                .filter(|(&i, _)| i != index)
                .map(|(_, s)| s.clone())
                .collect();
            let taking = state
                .taking
                .iter()
                .filter(|(&i, &e)| {
                    i != index && (e, usize::MAX - i) > (expected, usize::MAX - index)
                })
                .count();
            (serving, taking)
        };
        let serving = serving
            .iter()
            .filter(|(name, files)| self.estimate(name, *files).is_some_and(|e| e > expected))
            .count();
        serving + taking
    }

    /// Validator `index` (`name`) is about to check `files` files: estimates how long that
    /// takes, and lowers every validator expected to end before the longest one.
    pub fn expect(&self, index: usize, name: &str, files: usize) {
        let Some(expected) = self.estimate(name, files) else {
            return;
        };
        let mut state = self.lock();
        state.expected.insert(index, expected);
        let Some((&longest, _)) = state
            .expected
            .iter()
            .max_by_key(|(i, d)| (**d, usize::MAX - **i))
        else {
            return;
        };
        let lower: Vec<usize> = state
            .expected
            .keys()
            .copied()
            .filter(|&i| i != longest && !state.lowered.contains(&i))
            .collect();
        for i in lower {
            tracing::debug!(
                index = i,
                longest,
                "lowering the priority of a validator expected to end first"
            );
            state.lowered.insert(i);
            for &group in state.groups.get(&i).into_iter().flatten() {
                lower_group(group);
            }
        }
    }

    /// Validator `index` started the process group `pgid`.
    pub fn started(&self, index: usize, pgid: i32) {
        let mut state = self.lock();
        if state.lowered.contains(&index) {
            lower_group(pgid);
        }
        state.groups.entry(index).or_default().push(pgid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }

    /// How long checking `files` files took the run of `name` whose number of files was
    /// nearest (in ratio), scaled to `files`. Durations do not grow in proportion with files
    /// (a tool's start-up, a type checker's shared imports), so the nearest run is the best
    /// guide.
    fn estimate(&self, name: &str, files: usize) -> Option<Duration> {
        if files == 0 {
            return None;
        }
        let samples = self.samples.get_or_init(|| self.read());
        let wanted = files as f64;
        let (checked, took) = samples.get(name)?.iter().min_by(|a, b| {
            let distance = |n: u32| (f64::from(n) / wanted).ln().abs();
            distance(a.0).total_cmp(&distance(b.0))
        })?;
        Some(took.mul_f64(wanted / f64::from(*checked)))
    }

    fn read(&self) -> HashMap<String, Vec<(u32, Duration)>> {
        let mut samples: HashMap<String, Vec<(u32, Duration)>> = HashMap::new();
        let Some(dir) = &self.history else {
            return samples;
        };
        // Without a history yet, there is nothing to go by; the run records one at its end.
        if !dir.join(crate::history::FILE_NAME).exists() {
            return samples;
        }
        let runs = History::open_to_read(dir)
            .and_then(|h| h.window(Window::Runs(RUNS), crate::history::now_secs()))
            .unwrap_or_default();
        for run in runs {
            for v in run.summary.validators {
                let checked = v.files.saturating_sub(v.cached_files);
                if checked > 0 && matches!(v.status.as_str(), "passed" | "failed") {
                    let took = Duration::from_millis(v.duration_ms);
                    samples.entry(v.name).or_default().push((checked, took));
                }
            }
        }
        samples
    }
}

/// A validator consulting the cache ([`Priorities::serving`]).
#[derive(Debug)]
pub struct Serving {
    priorities: Arc<Priorities>,
    index: usize,
    name: String,
}

impl Serving {
    /// The cache has answered, leaving `files` to check ([`Priorities::expect`]): from now on
    /// the validator is about to take a slot, until the guard returned is dropped.
    pub fn known(self, files: usize) -> Taking {
        let priorities = self.priorities.clone();
        priorities.expect(self.index, &self.name, files);
        let mut state = priorities.lock();
        state.serving.remove(&self.index);
        let expected = state.expected.get(&self.index).map(|&e| (self.index, e));
        if let Some((index, expected)) = expected {
            state.taking.insert(index, expected);
        }
        drop(state);
        Taking {
            priorities: priorities.clone(),
            expected,
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.priorities.lock().serving.remove(&self.index);
        self.priorities.changed.notify_waiters();
    }
}

/// A validator about to take a slot ([`Serving::known`]).
#[derive(Debug)]
pub struct Taking {
    priorities: Arc<Priorities>,
    /// Its index and expected duration; `None` without an estimate: it is not waited for.
    expected: Option<(usize, Duration)>,
}

impl Drop for Taking {
    fn drop(&mut self) {
        if let Some((index, _)) = self.expected {
            self.priorities.lock().taking.remove(&index);
            self.priorities.changed.notify_waiters();
        }
    }
}

/// Lowers every process of a group; a group that has already ended is no matter.
fn lower_group(pgid: i32) {
    let Ok(group) = libc::id_t::try_from(pgid) else {
        return;
    };
    // SAFETY: setpriority only reads its arguments; a bad group is an error return.
    let _ = unsafe { libc::setpriority(libc::PRIO_PGRP, group, LOWERED) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    fn with(samples: &[(&str, u32, u64)]) -> Priorities {
        let p = Priorities::none();
        let mut map: HashMap<String, Vec<(u32, Duration)>> = HashMap::new();
        for (name, files, ms) in samples {
            map.entry(name.to_string())
                .or_default()
                .push((*files, Duration::from_millis(*ms)));
        }
        p.samples.set(map).expect("unset");
        p
    }

    #[test]
    fn the_nearest_run_in_size_is_scaled_to_the_files_at_hand() {
        let p = with(&[("pyright", 1, 2_000), ("pyright", 2800, 100_000)]);
        assert_eq!(p.estimate("pyright", 2800), Some(Duration::from_secs(100)));
        assert_eq!(p.estimate("pyright", 1400), Some(Duration::from_secs(50)));
        assert_eq!(p.estimate("pyright", 2), Some(Duration::from_secs(4)));
        assert_eq!(p.estimate("ruff", 10), None, "no history");
        assert_eq!(p.estimate("pyright", 0), None);
    }

    #[test]
    fn all_but_the_longest_are_lowered_and_stay_lowered() {
        let p = with(&[
            ("pyright", 100, 90_000),
            ("bandit", 100, 20_000),
            ("ruff", 100, 1_000),
        ]);
        p.expect(0, "bandit", 100);
        assert!(p.lock().lowered.is_empty(), "alone, bandit is the longest");
        p.expect(1, "pyright", 100);
        p.expect(2, "ruff", 100);
        p.expect(3, "unknown", 100);
        let lowered = p.lock().lowered.clone();
        assert_eq!(lowered, HashSet::from([0, 2]));
    }

    #[tokio::test]
    async fn a_slot_is_left_to_a_longer_validator_until_it_knows_its_files() {
        let p = Arc::new(with(&[
            ("pyright", 1, 2_000),
            ("pyright", 2800, 100_000),
            ("ruff", 1, 100),
        ]));
        let wait = Duration::from_secs(5);
        let one = Semaphore::new(1);
        let pyright = p.serving(0, "pyright", 2800);
        let ruff = p.serving(1, "ruff", 2800).known(1);
        let ruff_waits = p.give_way(&ruff, &one);
        tokio::pin!(ruff_waits);
        let early = tokio::time::timeout(Duration::from_millis(50), ruff_waits.as_mut()).await;
        assert!(early.is_err(), "ruff must leave the one slot to pyright");
        // Pyright, about to take its slot, is still waited for; it waits for nobody.
        let pyright = pyright.known(1);
        tokio::time::timeout(wait, p.give_way(&pyright, &one))
            .await
            .expect("pyright takes the slot at once");
        let early = tokio::time::timeout(Duration::from_millis(50), ruff_waits.as_mut()).await;
        assert!(early.is_err(), "ruff waits until pyright has its slot");
        let _slot = one.try_acquire().expect("pyright's slot");
        drop(pyright);
        tokio::time::timeout(wait, ruff_waits)
            .await
            .expect("ruff goes once pyright has its slot, to wait for one in turn");
        // Two slots leave one for a longer validator.
        let _pyright = p.serving(0, "pyright", 2800);
        tokio::time::timeout(wait, p.give_way(&ruff, &Semaphore::new(2)))
            .await
            .expect("a slot is left");
        // Without estimates nothing waits.
        let none = Arc::new(Priorities::none());
        let _pyright = none.serving(0, "pyright", 2800);
        let ruff = none.serving(1, "ruff", 2800).known(1);
        tokio::time::timeout(wait, none.give_way(&ruff, &Semaphore::new(0)))
            .await
            .expect("no history, no waiting");
    }

    #[tokio::test]
    async fn all_served_waits_for_every_validator_consulting_the_cache() {
        let p = Arc::new(Priorities::none());
        let wait = Duration::from_secs(5);
        tokio::time::timeout(wait, p.all_served())
            .await
            .expect("nobody is serving");
        let pyright = p.serving(0, "pyright", 2800);
        let ruff = p.serving(1, "ruff", 2800);
        let served = p.all_served();
        tokio::pin!(served);
        let early = tokio::time::timeout(Duration::from_millis(50), served.as_mut()).await;
        assert!(early.is_err(), "two validators still consult the cache");
        let _ruff = ruff.known(1);
        let early = tokio::time::timeout(Duration::from_millis(50), served.as_mut()).await;
        assert!(early.is_err(), "pyright still consults the cache");
        // A validator whose preparation ends early drops its guard unanswered.
        drop(pyright);
        tokio::time::timeout(wait, served)
            .await
            .expect("the last one is done");
    }

    #[test]
    fn a_lowered_group_is_lowered_when_it_starts() {
        let p = with(&[("a", 10, 1_000), ("b", 10, 5_000)]);
        p.expect(0, "a", 10);
        p.expect(1, "b", 10);
        // A child in a group of its own, lowered by its group id.
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let pgid = i32::try_from(child.id()).expect("pid");
        p.started(0, pgid);
        // SAFETY: getpriority reads its arguments only.
        let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, child.id()) };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(nice, LOWERED);
    }
}
