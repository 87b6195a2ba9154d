//! What keeps validators from outliving a coordinator that is itself killed (`kill -9`, the
//! OOM killer), when no code of ours runs any more to stop them.
//!
//! Three layers, from the strongest guarantee to the weakest:
//!
//! 1. **A cgroup** (Linux, cgroup v2, where our own cgroup lets us make a child): every
//!    validator is moved into a child cgroup of the coordinator's own before it runs its first
//!    instruction, and so is everything it starts, `setsid` or not. The watchdog kills the
//!    whole cgroup (`cgroup.kill`) when the coordinator dies.
//! 2. **The watchdog's process groups**: the coordinator tells a small helper process (this
//!    binary, `orchestrator __watchdog`) each validator's process group as it starts and
//!    ends; when the coordinator's end of the pipe closes without a goodbye, the helper kills
//!    the groups still alive. This covers a validator's helpers that stayed in its group.
//! 3. **`PR_SET_PDEATHSIG`** on each validator (set in [`crate::session`]): the kernel sends
//!    it SIGKILL when the coordinator dies, even if the watchdog could not be started.
//!
//! Without a writable cgroup, a descendant that left its process group with `setsid` may
//! survive the coordinator's death (`docs/reliability.md`). While the coordinator lives, the
//! final sweep ([`crate::process::sweep_descendants`]) finds such processes anyway.

use crate::process::{self, Pid};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The hidden first argument that makes the binary a watchdog.
pub const ARG: &str = "__watchdog";

/// How long the watchdog tries to empty the cgroup before giving up.
const KILL_LIMIT: Duration = Duration::from_secs(5);

/// The running watchdog of this process, once [`start`] made it.
static WATCHDOG: OnceLock<Watchdog> = OnceLock::new();

#[derive(Debug)]
struct Watchdog {
    child: Mutex<Option<Child>>,
    /// `cgroup.procs` of the validators' cgroup, open for writing, if there is one.
    procs: Option<std::fs::File>,
}

/// Starts the watchdog (once per process) and the validators' cgroup where possible. Without
/// it the layers it provides are missing, and that is logged, not fatal.
pub fn start() {
    WATCHDOG.get_or_init(|| {
        let cgroup = make_cgroup();
        let procs = cgroup.as_ref().and_then(|dir| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .ok()
        });
        let mut command = Command::new(std::env::current_exe().unwrap_or_else(|_| "orchestrator".into()));
        command
            .arg(ARG)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            // Its own process group: a Ctrl-C meant for the run must not take it first.
            .process_group(0);
        if let Some(dir) = &cgroup {
            command.arg(dir);
        }
        let child = match command.spawn() {
            Ok(child) => {
                process::spare(child.id() as Pid);
                Some(child)
            }
            Err(e) => {
                tracing::debug!(error = %e, "no watchdog; validators rely on PR_SET_PDEATHSIG alone");
                if let Some(dir) = &cgroup {
                    let _ = std::fs::remove_dir(dir);
                }
                None
            }
        };
        tracing::debug!(cgroup = ?cgroup, "watchdog started");
        Watchdog {
            procs: procs.filter(|_| child.is_some()),
            child: Mutex::new(child),
        }
    });
}

/// The file descriptor a new validator writes `0` to, to join the validators' cgroup.
pub fn cgroup_procs_fd() -> Option<i32> {
    use std::os::fd::AsRawFd;
    WATCHDOG.get()?.procs.as_ref().map(AsRawFd::as_raw_fd)
}

/// Tells the watchdog that a validator's process group started (`true`) or ended.
pub fn track(pgid: Pid, alive: bool) {
    tell(&format!("{}{pgid}", if alive { '+' } else { '-' }));
}

/// Ends the watchdog at a normal end of the run: nothing is left to kill but the cgroup's
/// stragglers; waits (briefly) for it to remove the cgroup and exit.
pub fn finish() {
    let Some(watchdog) = WATCHDOG.get() else {
        return;
    };
    tell("done");
    let mut guard = watchdog
        .child
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(mut child) = guard.take() {
        drop(child.stdin.take());
        let started = Instant::now();
        while started.elapsed() < KILL_LIMIT {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn tell(line: &str) {
    let Some(watchdog) = WATCHDOG.get() else {
        return;
    };
    let mut guard = watchdog
        .child
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(stdin) = guard.as_mut().and_then(|c| c.stdin.as_mut()) {
        let _ = writeln!(stdin, "{line}");
    }
}

/// A new child cgroup of ours for the validators, if cgroup v2 is mounted and ours is
/// writable.
fn make_cgroup() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    })?;
    let dir = Path::new(mount)
        .join(relative.trim_start_matches('/'))
        .join(format!("orchestrator-{}", std::process::id()));
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
pub fn run(cgroup: Option<&Path>) -> u8 {
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
