//! One validator process and the protocol exchange with it.
//!
//! A [`Session`] owns the child process and three helper tasks: one writes request frames to
//! its stdin, one reads response frames from its stdout, one drains its stderr into a bounded
//! [`stderr::Tail`]. Separate tasks keep every pipe moving whatever the others do (a validator
//! that writes while we write must not deadlock us), and make waiting cancel-safe: the session
//! only ever waits on channels, the child's exit, and a deadline. Nothing here waits for
//! end-of-file without a bound, because a descendant that left the process group can hold the
//! pipes open long after the validator is gone.

pub mod child;
pub mod stderr;

use crate::process::{signal_group, Pid};
use crate::verdict::{Closed, Failure, Limit, Stopped};
use protocol::frame;
use protocol::{Manifest, ProtocolError, Request, Response};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, timeout_at, Instant};

/// After the validator exits, frames already in the pipe are still read for this long.
const DRAIN: Duration = Duration::from_millis(500);

/// After the validator is reaped, its stderr is still read for this long (unless it reaches its
/// end first), so that the last words of a crash make it into the report.
const STDERR_DRAIN: Duration = Duration::from_millis(200);

/// How to start a validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// When a wait gives up, and which limit that is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: Instant,
    pub limit: Limit,
}

/// A running validator process.
#[derive(Debug)]
pub struct Session {
    child: child::Child,
    pgid: Pid,
    requests: Option<mpsc::Sender<Vec<u8>>>,
    responses: mpsc::Receiver<Result<Response, ProtocolError>>,
    responses_closed: bool,
    exit: Option<ExitStatus>,
    tasks: Vec<JoinHandle<()>>,
    stderr_task: Option<JoinHandle<()>>,
    stderr: stderr::SharedTail,
    max_frame_size: u32,
}

impl Session {
    /// The process group of the validator and everything it starts.
    pub fn pgid(&self) -> Pid {
        self.pgid
    }

    /// Starts the validator in `root`, as the leader of a new process group, set to die with
    /// the coordinator, in the validators' cgroup (see [`child::start`]).
    pub fn spawn(launch: &Launch, root: &Path, max_frame_size: u32) -> io::Result<Session> {
        let child::Started {
            child,
            stdin,
            stdout,
            stderr: stderr_pipe,
        } = child::start(launch, root)?;
        let pgid = child.pid();
        crate::watchdog::track(pgid, true);
        tracing::debug!(program = %launch.program.display(), pid = pgid, "spawned validator");
        let (request_tx, request_rx) = mpsc::channel(4);
        let (response_tx, response_rx) = mpsc::channel(16);
        let tail = stderr::SharedTail::default();
        let tasks = vec![
            tokio::spawn(write_requests(stdin, request_rx)),
            tokio::spawn(read_responses(stdout, max_frame_size, response_tx)),
        ];
        let stderr_task = Some(tokio::spawn(stderr::drain(stderr_pipe, tail.clone())));
        Ok(Session {
            child,
            pgid,
            requests: Some(request_tx),
            responses: response_rx,
            responses_closed: false,
            exit: None,
            tasks,
            stderr_task,
            stderr: tail,
            max_frame_size,
        })
    }

    /// Sends `Hello` and waits for the manifest. A manifest of another protocol version never
    /// gets here: the frame reader reports it as a version mismatch. A `Failed` answer (the
    /// validator refusing our version) is a protocol error with the validator's words.
    pub async fn handshake(
        &mut self,
        hello: protocol::Hello,
        deadline: Deadline,
    ) -> Result<Manifest, Failure> {
        self.send(&Request::Hello(hello), deadline).await?;
        match self.next(deadline).await? {
            Response::Manifest(m) => Ok(m),
            Response::Failed(f) => Err(Failure::Protocol(ProtocolError::Refused(f.message))),
            other => Err(Failure::Protocol(ProtocolError::Unexpected {
                expected: "Manifest",
                got: other.kind(),
            })),
        }
    }

    /// Queues a request for the validator's stdin, waiting at most until `deadline` for room.
    /// A validator that has stopped reading is noticed by the next [`Session::next`].
    pub async fn send(&mut self, request: &Request, deadline: Deadline) -> Result<(), Failure> {
        let frame = frame::encode_frame(request, self.max_frame_size).map_err(Failure::Protocol)?;
        let Some(requests) = &self.requests else {
            return Ok(());
        };
        match timeout_at(deadline.at, requests.send(frame)).await {
            Err(_) => Err(Failure::TimedOut(deadline.limit)),
            // The writer stopped (stdin closed): the child is gone or going.
            Ok(Err(_)) | Ok(Ok(())) => Ok(()),
        }
    }

    /// The next response, or why there will be none.
    pub async fn next(&mut self, deadline: Deadline) -> Result<Response, Failure> {
        let mut drain_until: Option<Instant> = None;
        loop {
            if let Some(status) = self.exit {
                if self.responses_closed {
                    return Err(Failure::Exited(status));
                }
            }
            let drain_at = drain_until.unwrap_or(deadline.at);
            tokio::select! {
                biased;
                response = self.responses.recv(), if !self.responses_closed => match response {
                    Some(Ok(r)) => return Ok(r),
                    Some(Err(e)) => return Err(Failure::Protocol(e)),
                    None => {
                        self.responses_closed = true;
                        drain_until.get_or_insert(Instant::now() + DRAIN);
                    }
                },
                status = self.child.wait(), if self.exit.is_none() => match status {
                    Ok(status) => {
                        tracing::debug!(pgid = self.pgid, %status, "validator exited");
                        self.exit = Some(status);
                        drain_until.get_or_insert(Instant::now() + DRAIN);
                    }
                    Err(e) => return Err(Failure::Wait(e)),
                },
                () = sleep_until(drain_at), if drain_until.is_some() => {
                    return Err(match self.exit {
                        Some(status) => Failure::Exited(status),
                        None => Failure::ClosedStdout,
                    });
                }
                () = sleep_until(deadline.at) => {
                    tracing::debug!(pgid = self.pgid, limit = ?deadline.limit, "deadline reached");
                    return Err(Failure::TimedOut(deadline.limit));
                }
            }
        }
    }

    /// Ends a session that went well: `Shutdown`, close stdin, wait up to `grace` for the
    /// exit, then stop it the hard way if needed.
    pub async fn finish(mut self, grace: Duration) -> Closed {
        let deadline = Deadline {
            at: Instant::now() + grace,
            limit: Limit::Total(grace),
        };
        // Best effort: a validator that already left does not need telling.
        let _ = self.send(&Request::Shutdown, deadline).await;
        self.requests = None;
        if self.exit.is_none() {
            if let Ok(Ok(status)) = timeout_at(deadline.at, self.child.wait()).await {
                self.exit = Some(status);
            }
        }
        self.stop(grace).await
    }

    /// Stops the validator's whole process group: SIGTERM, `grace`, SIGKILL, reap. Whatever
    /// else is left in the group is killed too.
    pub async fn stop(mut self, grace: Duration) -> Closed {
        self.requests = None;
        let mut stopped = Stopped::Exited;
        if self.exit.is_none() {
            signal_group(self.pgid, libc::SIGTERM);
            stopped = Stopped::Terminated;
            if timeout(grace, self.child.wait()).await.is_err() {
                tracing::debug!(pgid = self.pgid, ?grace, "ignored SIGTERM; killing");
                signal_group(self.pgid, libc::SIGKILL);
                stopped = Stopped::Killed;
                // SIGKILL cannot be ignored; the bound only guards against a stuck kernel.
                let _ = timeout(Duration::from_secs(5), self.child.wait()).await;
            }
        }
        signal_group(self.pgid, libc::SIGKILL);
        crate::watchdog::track(self.pgid, false);
        for task in &self.tasks {
            task.abort();
        }
        if let Some(mut task) = self.stderr_task.take() {
            // Ends at once unless a descendant still holds stderr open.
            if timeout(STDERR_DRAIN, &mut task).await.is_err() {
                task.abort();
            }
        }
        tracing::debug!(pgid = self.pgid, ?stopped, "reaped validator");
        let stderr_tail = crate::locks::lock(&self.stderr).text();
        Closed {
            stopped,
            stderr_tail,
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A session dropped without `stop` (a panic, a cancelled run) still takes its whole
        // group with it; `kill_on_drop` alone would only kill the leader.
        if self.exit.is_none() {
            signal_group(self.pgid, libc::SIGKILL);
        }
        crate::watchdog::track(self.pgid, false);
        for task in self.tasks.iter().chain(&self.stderr_task) {
            task.abort();
        }
    }
}

/// Writes queued frames to the child's stdin; closes it when the queue's sender is dropped.
async fn write_requests(mut stdin: pipe::Sender, mut frames: mpsc::Receiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if stdin.write_all(&frame).await.is_err() || stdin.flush().await.is_err() {
            return;
        }
    }
}

/// Reads frames from the child's stdout until it closes or breaks the protocol.
async fn read_responses(
    stdout: pipe::Receiver,
    max_frame_size: u32,
    responses: mpsc::Sender<Result<Response, ProtocolError>>,
) {
    let mut reader = BufReader::new(stdout);
    loop {
        let result = frame::read_frame_async(&mut reader, max_frame_size)
            .await
            .transpose();
        let Some(result) = result else { return };
        let failed = result.is_err();
        if responses.send(result).await.is_err() || failed {
            return;
        }
    }
}
