//! A validator's process: how it is started, and how its end is awaited.
//!
//! Every validator must be in the run's cgroup ([`crate::watchdog`]) before it runs its first
//! instruction. Moving a process there by writing `cgroup.procs` makes the kernel wait for an
//! RCU grace period (8 ms on an idle machine), and the new validator waits with it: on a warm
//! run, where the validators answer from the cache in a few milliseconds, that wait was the
//! largest single cost. Where the kernel has `clone3` with `CLONE_INTO_CGROUP` (Linux 5.7),
//! the validator is instead created inside the cgroup, which waits for nothing.
//!
//! Elsewhere (no cgroup, another Unix, an older kernel, or a container whose seccomp profile
//! refuses `clone3`) tokio's `Command` starts it, and the child writes `cgroup.procs` itself
//! before exec. Both ways give the same [`Started`]: a [`Child`] to wait for, and its three
//! pipes.

use crate::process::Pid;
use crate::session::Launch;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use tokio::net::unix::pipe;

/// A validator just started, with the coordinator's ends of its stdin, stdout and stderr.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    pub stdin: pipe::Sender,
    pub stdout: pipe::Receiver,
    pub stderr: pipe::Receiver,
}

/// The validator's process, as whichever way started it knows it.
#[derive(Debug)]
pub enum Child {
    /// Started by tokio's `Command`, which reaps it (and kills it on drop).
    Forked(tokio::process::Child),
    /// Created by `clone3`, waited for through its pidfd.
    #[cfg(target_os = "linux")]
    Cloned(clone::Cloned),
}

impl Child {
    /// The process id, which is also its process group's id.
    pub fn pid(&self) -> Pid {
        match self {
            Child::Forked(child) => {
                let pid = child
                    .id()
                    .expect("a child is not reaped before its session ends");
                Pid::try_from(pid).expect("pids fit in pid_t")
            }
            #[cfg(target_os = "linux")]
            Child::Cloned(child) => child.pid(),
        }
    }

    /// Waits for the process to end and reaps it; after that, returns the same status again.
    /// Cancel-safe: a wait given up before the end loses nothing.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        match self {
            Child::Forked(child) => child.wait().await,
            #[cfg(target_os = "linux")]
            Child::Cloned(child) => child.wait().await,
        }
    }
}

/// Starts the validator in `root`, as the leader of a new process group, set to die with the
/// coordinator, inside the validators' cgroup if there is one. Call it within the runtime: the
/// pipes register with its reactor.
pub fn start(launch: &Launch, root: &Path) -> io::Result<Started> {
    start_in(launch, root, crate::watchdog::cgroup())
}

/// [`start`], in `cgroup`: created there by `clone3`, or forked when `clone3` fails to.
fn start_in(
    launch: &Launch,
    root: &Path,
    cgroup: Option<crate::watchdog::Cgroup>,
) -> io::Result<Started> {
    // The validator runs in `root`; a program named relative to our own directory must still
    // be found after it changes there.
    let program = std::path::absolute(&launch.program)?;
    #[cfg(target_os = "linux")]
    if let Some(cgroup) = &cgroup {
        match clone::start(&program, &launch.args, root, cgroup.dir) {
            Ok(started) => return Ok(started),
            Err(clone::Error::Exec(e)) => return Err(e),
            Err(clone::Error::Clone(e)) => {
                tracing::debug!(error = %e, "clone3 into the cgroup failed; forking instead");
            }
        }
    }
    forked(&program, launch, root, cgroup.map(|c| c.procs))
}

/// Starts the validator with tokio's `Command`; the child joins the cgroup through
/// `cgroup_procs` (a descriptor of its `cgroup.procs`) before exec.
fn forked(
    program: &Path,
    launch: &Launch,
    root: &Path,
    cgroup_procs: Option<i32>,
) -> io::Result<Started> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(&launch.args)
        .current_dir(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let parent = std::process::id() as Pid;
    // SAFETY: the closure runs in the child between fork and exec, and calls only
    // async-signal-safe functions (prctl, getppid, write, _exit) on integers and a static
    // buffer.
    unsafe {
        command.pre_exec(move || {
            die_with(parent);
            if let Some(fd) = cgroup_procs {
                // "0" moves the writing process; a failure leaves it where it is, no worse off.
                libc::write(fd, b"0".as_ptr().cast(), 1);
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let stdin = child
        .stdin
        .take()
        .expect("stdin is piped")
        .into_owned_fd()?;
    let stdout = child
        .stdout
        .take()
        .expect("stdout is piped")
        .into_owned_fd()?;
    let stderr = child
        .stderr
        .take()
        .expect("stderr is piped")
        .into_owned_fd()?;
    Ok(Started {
        child: Child::Forked(child),
        stdin: pipe::Sender::from_owned_fd(stdin)?,
        stdout: pipe::Receiver::from_owned_fd(stdout)?,
        stderr: pipe::Receiver::from_owned_fd(stderr)?,
    })
}

/// In a new validator, before exec: die when the coordinator does. A coordinator that died
/// before `prctl` took effect is noticed by the parent pid having changed.
fn die_with(parent: Pid) {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl, getppid and _exit are async-signal-safe and take integers.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        if libc::getppid() != parent {
            libc::_exit(1);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = parent;
}

#[cfg(target_os = "linux")]
mod clone;

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn sh(script: &str) -> Launch {
        Launch {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
        }
    }

    /// Runs `cat` through `started`: what goes into stdin comes out of stdout, stderr gets its
    /// words, and the exit status is the script's.
    async fn exchange(mut started: Started) {
        started.stdin.write_all(b"frame").await.expect("write");
        drop(started.stdin);
        let mut out = String::new();
        started.stdout.read_to_string(&mut out).await.expect("read");
        let mut err = String::new();
        started.stderr.read_to_string(&mut err).await.expect("read");
        let status = started.child.wait().await.expect("wait");
        assert_eq!(
            (out.as_str(), err.trim(), status.code()),
            ("frame", "said", Some(3))
        );
        // A second wait answers from the status already reaped.
        assert_eq!(started.child.wait().await.expect("wait").code(), Some(3));
    }

    const CAT: &str = "cat; echo said >&2; exit 3";

    #[tokio::test]
    async fn a_forked_validator_talks_through_its_pipes_and_is_reaped() {
        let started = forked(Path::new("/bin/sh"), &sh(CAT), Path::new("/"), None).expect("sh");
        assert!(matches!(started.child, Child::Forked(_)));
        exchange(started).await;
    }

    #[tokio::test]
    async fn a_validator_leads_its_own_group_in_the_root_it_was_given() {
        let dir = tempfile::tempdir().expect("tempdir");
        let launch = sh("echo $(pwd) $(cut -d' ' -f5 /proc/$$/stat); cat");
        let mut started = start(&launch, dir.path()).expect("sh");
        let pid = started.child.pid();
        drop(started.stdin);
        let mut out = String::new();
        started.stdout.read_to_string(&mut out).await.expect("read");
        started.child.wait().await.expect("wait");
        let root = dir.path().canonicalize().expect("canonical");
        assert_eq!(out.trim(), format!("{} {pid}", root.display()));
    }

    /// `clone3` refusing the cgroup it is given (here a directory that is no cgroup: EBADF)
    /// leaves the fork, which joins the cgroup by writing to its `cgroup.procs` (here a file).
    #[tokio::test]
    async fn a_validator_clone3_cannot_start_is_forked_and_joins_the_cgroup_itself() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().expect("tempdir");
        let not_a_cgroup = std::fs::File::open(dir.path()).expect("open dir");
        let procs_path = dir.path().join("cgroup.procs");
        let procs = std::fs::File::create(&procs_path).expect("procs");
        let cgroup = crate::watchdog::Cgroup {
            dir: not_a_cgroup.as_raw_fd(),
            procs: procs.as_raw_fd(),
        };
        let started = start_in(&sh(CAT), Path::new("/"), Some(cgroup)).expect("sh");
        assert!(matches!(started.child, Child::Forked(_)));
        exchange(started).await;
        let joined = std::fs::read_to_string(&procs_path).expect("read procs");
        assert_eq!(joined, "0", "the forked child wrote itself into the cgroup");
    }

    #[tokio::test]
    async fn a_program_that_cannot_run_is_an_error_at_start() {
        let launch = Launch {
            program: "/nonexistent/validator-x".into(),
            args: vec![],
        };
        let err = start(&launch, Path::new("/")).expect_err("nothing to run");
        assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
    }

    /// A child cgroup of our own, made for one test, and its path as `/proc/PID/cgroup` shows
    /// it; removed on drop.
    #[cfg(target_os = "linux")]
    struct TestCgroup {
        dir: std::path::PathBuf,
        opened: std::fs::File,
        shown: String,
    }

    #[cfg(target_os = "linux")]
    impl TestCgroup {
        fn make(name: &str) -> Option<TestCgroup> {
            let Some((own, mount)) = protocol::sdk::cgroup_dir() else {
                eprintln!("no cgroup v2 here: clone3 into a cgroup is not tried");
                return None;
            };
            let dir = own.join(format!("{name}-{}", std::process::id()));
            if let Err(e) = std::fs::create_dir(&dir) {
                eprintln!("no cgroup of our own here ({e}): clone3 into a cgroup is not tried");
                return None;
            }
            let shown = format!("0::/{}", dir.strip_prefix(&mount).ok()?.display());
            let opened = std::fs::File::open(&dir).expect("the cgroup just made");
            Some(TestCgroup { dir, opened, shown })
        }

        fn start(&self, launch: &Launch) -> Result<Started, clone::Error> {
            use std::os::fd::AsRawFd;
            let root = Path::new("/");
            clone::start(&launch.program, &launch.args, root, self.opened.as_raw_fd())
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for TestCgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_cloned_validator_starts_in_the_cgroup_and_talks_through_its_pipes() {
        let Some(cgroup) = TestCgroup::make("cloned") else {
            return;
        };
        let started = cgroup.start(&sh(CAT)).expect("sh starts in the cgroup");
        assert!(matches!(started.child, Child::Cloned(_)));
        // `cat` waits for its stdin, so the process is still there to be looked at.
        let pid = started.child.pid();
        let joined = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup");
        exchange(started).await;
        assert!(joined.lines().any(|l| l == cgroup.shown), "{joined}");
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_program_that_cannot_run_is_an_error_at_clone() {
        let Some(cgroup) = TestCgroup::make("unrunnable") else {
            return;
        };
        let launch = Launch {
            program: "/nonexistent/validator-x".into(),
            args: vec![],
        };
        match cgroup.start(&launch) {
            Err(clone::Error::Exec(e)) => assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
