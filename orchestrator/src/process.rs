//! Process-tree control on Unix: process groups, signals, the child subreaper, and the final
//! sweep that leaves no descendant alive.
//!
//! Each validator leads its own process group, so one `killpg` reaches the validator and every
//! helper it started. A descendant can still leave the group (`setsid`); because the coordinator
//! is a child subreaper, such a process is re-parented to us when its parent dies instead of to
//! init, and [`sweep_descendants`] finds it through `/proc` and kills it before the run returns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

/// A process id, as the kernel gives it.
pub type Pid = libc::pid_t;

/// Makes this process a child subreaper (Linux): orphaned descendants are re-parented to it.
/// Returns whether that worked; elsewhere it is a no-op and the sweep finds less.
pub fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and touches no memory.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// A descendant the sweep leaves alone: the watchdog ([`crate::watchdog`]), which must outlive
/// every validator. 0: none.
static SPARED: AtomicI32 = AtomicI32::new(0);

/// Exempts `pid` from [`sweep_descendants`].
pub fn spare(pid: Pid) {
    SPARED.store(pid, Ordering::Relaxed);
}

/// Sends `signal` to every process of group `pgid`. A group that no longer exists is fine.
pub fn signal_group(pgid: Pid, signal: libc::c_int) {
    if pgid <= 1 {
        // killpg(0) or killpg(1) would hit our own group or init's.
        return;
    }
    // SAFETY: killpg only takes integers.
    let rc = unsafe { libc::killpg(pgid, signal) };
    if rc != 0 {
        tracing::trace!(pgid, signal, error = %std::io::Error::last_os_error(), "killpg");
    } else {
        tracing::debug!(pgid, signal, "signalled process group");
    }
}

/// Kills every descendant of this process and reaps those that were re-parented to it, until
/// none is left or `limit` has passed. Returns how many processes were killed.
///
/// Call it only when no validator should be running any more: it does not spare anyone.
pub fn sweep_descendants(limit: Duration) -> usize {
    // Every living descendant has a child of ours (living or a zombie) at the top of its
    // chain, so no children means nothing to sweep: the common case, without a /proc scan.
    if has_children() == Some(false) {
        return 0;
    }
    let me = std::process::id() as Pid;
    let spared = SPARED.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut killed = 0;
    loop {
        let mut descendants = descendants_of(me);
        descendants.retain(|d| d.pid != spared);
        if descendants.is_empty() || started.elapsed() > limit {
            if !descendants.is_empty() {
                tracing::warn!(count = descendants.len(), "descendants survived the sweep");
            }
            return killed;
        }
        for d in &descendants {
            // SAFETY: kill only takes integers.
            if !d.zombie && unsafe { libc::kill(d.pid, libc::SIGKILL) } == 0 {
                killed += 1;
                tracing::debug!(pid = d.pid, "killed leftover descendant");
            }
            if d.parent == me {
                let _ = reap(d.pid, libc::WNOHANG);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether any thread of this process has a child other than the spared one, from
/// `/proc/self/task/*/children`; `None` where the kernel does not provide those files.
fn has_children() -> Option<bool> {
    let spared = SPARED.load(Ordering::Relaxed);
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let children = std::fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        if children
            .split_whitespace()
            .any(|pid| pid.parse::<Pid>().ok() != Some(spared))
        {
            return Some(true);
        }
    }
    Some(false)
}

/// Collects the status of our child `pid` (a validator, or an adopted orphan's zombie): `None`
/// with `WNOHANG` while it still runs.
pub fn reap(pid: Pid, flags: libc::c_int) -> std::io::Result<Option<std::process::ExitStatus>> {
    use std::os::unix::process::ExitStatusExt;
    let mut status = 0;
    loop {
        // SAFETY: waitpid writes only to `status`, which lives for the call.
        match unsafe { libc::waitpid(pid, &mut status, flags) } {
            0 => return Ok(None),
            -1 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            _ => return Ok(Some(std::process::ExitStatus::from_raw(status))),
        }
    }
}

/// A pipe as (read end, write end), both close-on-exec.
pub fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which lives for the call.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: each descriptor was just made and is owned once.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A process below us in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Descendant {
    pid: Pid,
    parent: Pid,
    zombie: bool,
}

/// Every descendant of `root`, from `/proc`, zombies included so they get reaped.
fn descendants_of(root: Pid) -> Vec<Descendant> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut stats: HashMap<Pid, (Pid, bool)> = HashMap::new();
    for entry in entries.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<Pid>().ok())
        else {
            continue;
        };
        if let Some(stat) = read_stat(pid) {
            stats.insert(pid, stat);
        }
    }
    let mut found = Vec::new();
    for (&pid, &(parent, zombie)) in &stats {
        let mut ancestor = parent;
        // Bounded walk: pid cycles cannot happen, but a racing /proc read could mislead us.
        for _ in 0..64 {
            if ancestor == root {
                found.push(Descendant {
                    pid,
                    parent,
                    zombie,
                });
                break;
            }
            match stats.get(&ancestor) {
                Some(&(next, _)) if next != ancestor => ancestor = next,
                _ => break,
            }
        }
    }
    found
}

/// The parent pid and whether the process is a zombie, from `/proc/PID/stat`. The command
/// name in parentheses may itself contain spaces and parentheses, so fields are counted from
/// the last `)`.
fn read_stat(pid: Pid) -> Option<(Pid, bool)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    let zombie = fields.next()? == "Z";
    Some((fields.next()?.parse().ok()?, zombie))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_a_command_name_with_spaces_and_parens() {
        // Our own stat line is always readable; its parent is the test runner.
        let me = std::process::id() as Pid;
        // SAFETY: getppid has no arguments.
        let parent = unsafe { libc::getppid() };
        assert_eq!(read_stat(me), Some((parent, false)));
    }

    #[test]
    fn a_living_child_is_seen_without_a_scan() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        assert_eq!(has_children(), Some(true));
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn a_spawned_child_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("sleep runs");
        let me = std::process::id() as Pid;
        let found = descendants_of(me);
        assert!(
            found.iter().any(|d| d.pid == child.id() as Pid),
            "{found:?}"
        );
        child.kill().expect("kill");
        child.wait().expect("reap");
    }
}
