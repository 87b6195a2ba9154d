//! Creating a validator inside the validators' cgroup with `clone3` (`CLONE_INTO_CGROUP`,
//! Linux 5.7), and waiting for it through the pidfd the same call returns.
//!
//! `clone3` without `CLONE_VM` is a fork: the child has a copy of our memory and runs on from
//! the call, so between the call and exec it may only use what is async-signal-safe, on data
//! prepared beforehand ([`Exec`]). A failed step there is reported to us as its errno through a
//! close-on-exec pipe, which an exec that succeeds closes empty.

use super::{die_with, Child, Started};
use crate::process::{self, reap, Pid};
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::unix::pipe;

/// Cleared when the kernel (or a seccomp filter) refuses `clone3` itself, so that later
/// validators go straight to fork.
static SUPPORTED: AtomicBool = AtomicBool::new(true);

/// `CLONE_INTO_CGROUP` of `linux/sched.h`; the `libc` crate declares it as a `c_int`, too
/// narrow for its value.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args` of `linux/sched.h` up to `cgroup` (`CLONE_ARGS_SIZE_VER2`): the size
/// the kernel is given tells it which fields there are.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Why a validator was not created this way.
#[derive(Debug)]
pub enum Error {
    /// `clone3` itself failed (unsupported, refused, out of processes): forking may still work.
    Clone(io::Error),
    /// The process was made but could not become the validator (no such program, not
    /// executable, `root` gone): the same would happen forked.
    Exec(io::Error),
}

/// A validator created by `clone3`.
#[derive(Debug)]
pub struct Cloned {
    pid: Pid,
    /// Readable once the process has ended.
    pidfd: AsyncFd<OwnedFd>,
    /// Set once reaped.
    status: Option<ExitStatus>,
}

impl Cloned {
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Waits until the pidfd says the process ended, then reaps it. Only a reap that found the
    /// process gone changes anything, so dropping this future early loses nothing.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.status {
                return Ok(status);
            }
            let mut ready = self.pidfd.readable().await?;
            match reap(self.pid, libc::WNOHANG)? {
                Some(status) => self.status = Some(status),
                None => ready.clear_ready(),
            }
        }
    }
}

impl Drop for Cloned {
    /// A validator dropped before its end is killed, like tokio's `kill_on_drop`, and reaped
    /// without blocking the caller (the final sweep reaps it if this cannot).
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // SAFETY: kill only takes integers; the pid is ours until reaped.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        if !matches!(reap(self.pid, libc::WNOHANG), Ok(Some(_))) {
            let pid = self.pid;
            let _ = std::thread::Builder::new().spawn(move || reap(pid, 0));
        }
    }
}

/// Everything the child needs between `clone3` and exec, made beforehand: it must not
/// allocate.
struct Exec {
    program: CString,
    /// The arguments' pointers, then null; they point into `_args`.
    argv: Vec<*const libc::c_char>,
    _args: Vec<CString>,
    /// `KEY=VALUE` pointers, then null; they point into `_env`.
    envp: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    root: CString,
    /// The empty signal mask the validator starts with.
    no_signals: libc::sigset_t,
}

impl Exec {
    fn new(program: &Path, args: &[OsString], root: &Path) -> io::Result<Exec> {
        let program = c_string(program.as_os_str())?;
        let mut all_args = vec![program.clone()];
        for arg in args {
            all_args.push(c_string(arg)?);
        }
        let mut env = Vec::new();
        for (key, value) in std::env::vars_os() {
            let mut pair = key;
            pair.push("=");
            pair.push(value);
            env.push(c_string(&pair)?);
        }
        // SAFETY: sigemptyset initialises the set it is given; zeroed memory is a valid start.
        let no_signals = unsafe {
            let mut set = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            set
        };
        Ok(Exec {
            program,
            argv: null_terminated(&all_args),
            _args: all_args,
            envp: null_terminated(&env),
            _env: env,
            root: c_string(root.as_os_str())?,
            no_signals,
        })
    }

    /// In the child: become the validator, or report why not and exit. `stdio` are the ends
    /// of its stdin, stdout and stderr pipes, none of them 0, 1 or 2.
    ///
    /// # Safety
    /// Call it only in the child of a fork, where it is the only thread.
    unsafe fn become_validator(&self, stdio: [RawFd; 3], report: RawFd, parent: Pid) -> ! {
        // SAFETY: every call is async-signal-safe and takes integers or data made before the
        // fork, which nothing else can touch in this process.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.no_signals, std::ptr::null_mut());
            // Rust ignores SIGPIPE, and an ignored signal stays ignored across exec.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            if libc::setpgid(0, 0) != 0 {
                fail(report);
            }
            die_with(parent);
            for (fd, target) in stdio.into_iter().zip(0..) {
                if libc::dup2(fd, target) < 0 {
                    fail(report);
                }
            }
            if libc::chdir(self.root.as_ptr()) != 0 {
                fail(report);
            }
            libc::execve(
                self.program.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
            );
            fail(report)
        }
    }
}

/// In the child: writes errno to `report` and exits.
///
/// # Safety
/// As for [`Exec::become_validator`].
unsafe fn fail(report: RawFd) -> ! {
    // SAFETY: errno is this thread's; write and _exit are async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(report, (&raw const errno).cast(), size_of_val(&errno));
        libc::_exit(127)
    }
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} contains a NUL byte", s.to_string_lossy()),
        )
    })
}

fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    let pointers = strings.iter().map(|s| s.as_ptr());
    pointers.chain([std::ptr::null()]).collect()
}

/// `fd`, moved above 2 if it is one of the standard descriptors (which happens only when
/// ours were closed): the child's `dup2` onto 0, 1 and 2 must not overwrite one of its
/// sources.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl duplicates a descriptor we own; the copy is owned once.
    match unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: the descriptor was just made and is owned once.
        copy => Ok(unsafe { OwnedFd::from_raw_fd(copy) }),
    }
}

/// Creates the validator `program` with `args` in `root`, inside the cgroup whose directory
/// `cgroup` is open on, as [`super::start`] describes.
pub fn start(
    program: &Path,
    args: &[OsString],
    root: &Path,
    cgroup: RawFd,
) -> Result<Started, Error> {
    if !SUPPORTED.load(Ordering::Relaxed) {
        return Err(Error::Clone(io::ErrorKind::Unsupported.into()));
    }
    let exec = Exec::new(program, args, root).map_err(Error::Exec)?;
    let (stdin_read, stdin) = process::pipe().map_err(Error::Clone)?;
    let (stdout, stdout_write) = process::pipe().map_err(Error::Clone)?;
    let (stderr, stderr_write) = process::pipe().map_err(Error::Clone)?;
    let (report_read, report_write) = process::pipe().map_err(Error::Clone)?;
    let stdin_read = above_stdio(stdin_read).map_err(Error::Clone)?;
    let stdout_write = above_stdio(stdout_write).map_err(Error::Clone)?;
    let stderr_write = above_stdio(stderr_write).map_err(Error::Clone)?;
    let bad_cgroup = || Error::Clone(io::Error::from_raw_os_error(libc::EBADF));
    let cgroup = u64::try_from(cgroup).map_err(|_| bad_cgroup())?;
    let parent = std::process::id() as Pid;
    let mut pidfd: RawFd = -1;
    let args = CloneArgs {
        flags: libc::CLONE_PIDFD as u64 | CLONE_INTO_CGROUP,
        pidfd: (&raw mut pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        cgroup,
        ..CloneArgs::default()
    };
    // SAFETY: clone3 reads `args` (which lives for the call) and writes the pidfd into
    // `pidfd`; without CLONE_VM the child gets its own copy of our memory, as after fork.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &raw const args, size_of::<CloneArgs>()) };
    if pid == 0 {
        let stdio = [&stdin_read, &stdout_write, &stderr_write].map(AsRawFd::as_raw_fd);
        // SAFETY: this is the child of the clone, alone in its copy of our memory.
        unsafe { exec.become_validator(stdio, report_write.as_raw_fd(), parent) }
    }
    if pid < 0 {
        let e = io::Error::last_os_error();
        let refused = [libc::ENOSYS, libc::EPERM, libc::EINVAL, libc::E2BIG];
        if e.raw_os_error()
            .is_some_and(|errno| refused.contains(&errno))
        {
            SUPPORTED.store(false, Ordering::Relaxed);
        }
        return Err(Error::Clone(e));
    }
    let pid = Pid::try_from(pid).expect("pids fit in pid_t");
    drop((stdin_read, stdout_write, stderr_write, report_write));
    // SAFETY: with CLONE_PIDFD, a successful clone3 stored a new descriptor, owned once.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    if let Some(errno) = read_report(&report_read) {
        let _ = reap(pid, 0);
        return Err(Error::Exec(io::Error::from_raw_os_error(errno)));
    }
    // SAFETY: an OwnedFd stays open, and names the same descriptor, until it is dropped.
    let pidfd = match unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) } {
        Ok(pidfd) => pidfd,
        Err(e) => {
            let e = io::Error::from(e);
            // SAFETY: kill only takes integers; the pid is ours until reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = reap(pid, 0);
            return Err(Error::Exec(e));
        }
    };
    let child = Cloned {
        pid,
        pidfd,
        status: None,
    };
    // From here a failure drops `child`, which kills and reaps it.
    let pipes = || -> io::Result<_> {
        Ok((
            pipe::Sender::from_owned_fd(stdin)?,
            pipe::Receiver::from_owned_fd(stdout)?,
            pipe::Receiver::from_owned_fd(stderr)?,
        ))
    };
    let (stdin, stdout, stderr) = pipes().map_err(Error::Exec)?;
    Ok(Started {
        child: Child::Cloned(child),
        stdin,
        stdout,
        stderr,
    })
}

/// The errno the child reported, or `None` once exec closed the pipe without a word.
fn read_report(report: &OwnedFd) -> Option<i32> {
    let mut errno = [0u8; 4];
    loop {
        // SAFETY: read writes at most four bytes into `errno`, which lives for the call.
        let n = unsafe { libc::read(report.as_raw_fd(), errno.as_mut_ptr().cast(), errno.len()) };
        match n {
            4 => return Some(i32::from_ne_bytes(errno)),
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            // End of file: exec succeeded. A short report cannot happen for four bytes on a
            // pipe; it is taken as success, and the validator's exit tells the rest.
            _ => return None,
        }
    }
}
