//! What keeps validators from outliving a coordinator that is itself killed (`kill -9`, the
//! OOM killer), when no code of ours runs any more to stop them.
//!
//! Three layers, from the strongest guarantee to the weakest:
//!
//! 1. **A cgroup** (Linux, cgroup v2, where our own cgroup lets us make a child): every
//!    validator is created in (or, where the kernel cannot, moved into) a child cgroup of the
//!    coordinator's own before it runs its first instruction ([`crate::session::child`]), and
//!    so is everything it starts, `setsid` or not. The watchdog kills the
//!    whole cgroup (`cgroup.kill`) when the coordinator dies.
//! 2. **The watchdog's process groups**: the coordinator tells a small helper process (a fork
//!    of itself, made while it is still single-threaded: no exec, so it costs a fraction of a
//!    millisecond on the warm run) each validator's process group as it starts and ends; when
//!    the coordinator's end of the pipe closes without a goodbye, the helper kills the groups
//!    still alive. This covers a validator's helpers that stayed in its group.
//! 3. **`PR_SET_PDEATHSIG`** on each validator (set in [`crate::session`]): the kernel sends
//!    it SIGKILL when the coordinator dies, even if the watchdog could not be started.
//!
//! Without a writable cgroup, a descendant that left its process group with `setsid` may
//! survive the coordinator's death (`docs/reliability.md`). While the coordinator lives, the
//! final sweep ([`crate::process::sweep_descendants`]) finds such processes anyway.

use crate::process::{self, Pid};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long the watchdog tries to empty the cgroup, and the coordinator waits for it to exit.
const KILL_LIMIT: Duration = Duration::from_secs(5);

/// The running watchdog of this process, once [`start`] made it.
static WATCHDOG: OnceLock<Option<Watchdog>> = OnceLock::new();

#[derive(Debug)]
struct Watchdog {
    pid: Pid,
    /// The write end of its stdin; `None` once the goodbye was said.
    pipe: Mutex<Option<std::fs::File>>,
    /// The validators' cgroup, if there is one.
    cgroup: Option<Opened>,
}

/// The validators' cgroup, held open for the run.
#[derive(Debug)]
struct Opened {
    /// Its directory, which `clone3` creates a validator in.
    dir: std::fs::File,
    /// Its `cgroup.procs`, open for writing: a validator that could not be created inside
    /// writes `0` to it to move itself in.
    procs: std::fs::File,
}

/// The validators' cgroup, as the descriptors a new validator joins it through.
#[derive(Debug, Clone, Copy)]
pub struct Cgroup {
    pub dir: RawFd,
    pub procs: RawFd,
}

/// Starts the watchdog (once per process) and the validators' cgroup where possible. Call it
/// while the process has one thread: the watchdog is a fork that runs Rust code, which is only
/// sound without other threads. Without it the layers it provides are missing, and that is
/// logged, not fatal.
pub fn start() {
    WATCHDOG.get_or_init(|| {
        if threads() != Some(1) {
            tracing::debug!("no watchdog: the process already has threads");
            return None;
        }
        let cgroup = make_cgroup();
        let opened = cgroup.as_deref().and_then(|dir| {
            Some(Opened {
                dir: std::fs::File::open(dir).ok()?,
                procs: std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.join("cgroup.procs"))
                    .ok()?,
            })
        });
        let watchdog = fork(cgroup.as_deref()).map(|(pid, pipe)| {
            process::spare(pid);
            Watchdog {
                pid,
                pipe: Mutex::new(Some(pipe)),
                cgroup: opened,
            }
        });
        match &watchdog {
            Some(w) => tracing::debug!(pid = w.pid, ?cgroup, "watchdog started"),
            None => {
                tracing::debug!("no watchdog; validators rely on PR_SET_PDEATHSIG alone");
                if let Some(dir) = &cgroup {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        watchdog
    });
}

/// Forks the watchdog: its stdin is a pipe from us, its stdout `/dev/null`, and it leads its
/// own process group (a Ctrl-C meant for the run must not take it first). Returns its pid and
/// the pipe's write end.
fn fork(cgroup: Option<&Path>) -> Option<(Pid, std::fs::File)> {
    let (read, write) = process::pipe().ok()?;
    let null = std::fs::File::open("/dev/null").ok()?;
    // SAFETY: the process has a single thread (checked by the caller), so the child may run
    // any code: no lock can be held by a thread that does not exist in it.
    match unsafe { libc::fork() } {
        -1 => None,
        0 => {
            // SAFETY: dup2 and setpgid take integers; the child owns its copies of the fds.
            unsafe {
                libc::dup2(read.as_raw_fd(), 0);
                libc::dup2(null.as_raw_fd(), 1);
                libc::setpgid(0, 0);
            }
            drop((read, write, null));
            let code = run(cgroup);
            // SAFETY: _exit ends the child without running the parent's exit handlers twice.
            unsafe { libc::_exit(code) }
        }
        pid => Some((pid, std::fs::File::from(write))),
    }
}

/// This process's thread count, from `/proc/self/status`.
fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The validators' cgroup, if the watchdog made one.
pub fn cgroup() -> Option<Cgroup> {
    let opened = WATCHDOG.get()?.as_ref()?.cgroup.as_ref()?;
    Some(Cgroup {
        dir: opened.dir.as_raw_fd(),
        procs: opened.procs.as_raw_fd(),
    })
}

/// Tells the watchdog that a validator's process group started (`true`) or ended.
pub fn track(pgid: Pid, alive: bool) {
    tell(&format!("{}{pgid}", if alive { '+' } else { '-' }));
}

/// Ends the watchdog at a normal end of the run: nothing is left to kill but the cgroup's
/// stragglers; waits (briefly) for it to remove the cgroup and exit.
pub fn finish() {
    let Some(Some(watchdog)) = WATCHDOG.get() else {
        return;
    };
    tell("done");
    drop(watchdog.lock_pipe().take());
    let started = Instant::now();
    let mut status = 0;
    while started.elapsed() < KILL_LIMIT {
        // SAFETY: waitpid writes only to `status`, which lives for the call.
        if unsafe { libc::waitpid(watchdog.pid, &mut status, libc::WNOHANG) } != 0 {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    // SAFETY: kill and waitpid take integers and `status`, which lives for the call.
    unsafe {
        libc::kill(watchdog.pid, libc::SIGKILL);
        libc::waitpid(watchdog.pid, &mut status, 0);
    }
}

impl Watchdog {
    fn lock_pipe(&self) -> std::sync::MutexGuard<'_, Option<std::fs::File>> {
        crate::locks::lock(&self.pipe)
    }
}

fn tell(line: &str) {
    let Some(Some(watchdog)) = WATCHDOG.get() else {
        return;
    };
    if let Some(pipe) = watchdog.lock_pipe().as_mut() {
        let _ = writeln!(pipe, "{line}");
    }
}

/// A new child cgroup of ours for the validators, if cgroup v2 is mounted and ours is
/// writable.
fn make_cgroup() -> Option<PathBuf> {
    let (own, _) = protocol::sdk::cgroup_dir()?;
    let dir = own.join(format!("orchestrator-{}", std::process::id()));
    match std::fs::create_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "no cgroup for the validators");
            None
        }
    }
}

/// The watchdog process: reads the coordinator's lines until the pipe closes; then, unless it
/// said goodbye, kills every process group it was told about and still alive; in any case
/// kills what is left in the cgroup and removes it.
fn run(cgroup: Option<&Path>) -> i32 {
    let mut groups: Vec<Pid> = Vec::new();
    let mut goodbye = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if line == "done" {
            goodbye = true;
        } else if let Some(pgid) = line.strip_prefix('+').and_then(|p| p.parse().ok()) {
            groups.push(pgid);
        } else if let Some(pgid) = line.strip_prefix('-').and_then(|p| p.parse::<Pid>().ok()) {
            groups.retain(|g| *g != pgid);
        }
    }
    if !goodbye {
        for pgid in &groups {
            process::signal_group(*pgid, libc::SIGKILL);
        }
    }
    if let Some(dir) = cgroup {
        empty_cgroup(dir);
        let _ = std::fs::remove_dir(dir);
    }
    0
}

/// Kills every process in a cgroup and waits until it is empty (bounded).
fn empty_cgroup(dir: &Path) {
    let started = Instant::now();
    // `cgroup.kill` (Linux 5.14) kills atomically, forks in flight included.
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    while started.elapsed() < KILL_LIMIT {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            return;
        };
        let pids: Vec<Pid> = procs.lines().filter_map(|l| l.parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            // SAFETY: kill only takes integers.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
