//! What the three tool wrappers share: finding the tool, running it, and turning its findings
//! into one `FileResult` per requested file.

use crate::tools::{self, ToolSpec};
use protocol::sdk::{Error, Reporter};
use protocol::{FileInput, FileResult, Finding, Manifest, Validate};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// A wrapped tool as found at start-up.
#[derive(Debug, Clone)]
pub struct Located {
    pub spec: ToolSpec,
    /// The executable and its exact version, or why there is none.
    found: Result<(PathBuf, String), Missing>,
}

#[derive(Debug, Clone)]
enum Missing {
    NotInstalled,
    Broken(String),
}

impl Located {
    /// Looks for the tool named `name` (one of [`tools::TOOLS`]).
    pub fn find(name: &str) -> Located {
        let spec = tools::spec(name).expect("wrappers only wrap managed tools");
        let found = match spec.locate() {
            None => Err(Missing::NotInstalled),
            Some(path) => match spec.version_of(&path) {
                Ok(version) => Ok((path, version)),
                Err(why) => Err(Missing::Broken(why)),
            },
        };
        Located { spec, found }
    }

    /// Adds the tool and its version to a manifest, when it was found.
    pub fn describe(&self, manifest: Manifest) -> Manifest {
        match &self.found {
            Ok((_, version)) => manifest.with_tool(self.spec.name, version),
            Err(_) => manifest,
        }
    }

    /// The tool's exact version, when it was found.
    pub fn version(&self) -> Option<&str> {
        self.found
            .as_ref()
            .ok()
            .map(|(_, version)| version.as_str())
    }

    /// The executable, or the failure that explains its absence.
    pub fn executable(&self) -> Result<&Path, Error> {
        match &self.found {
            Ok((path, _)) => Ok(path),
            Err(Missing::NotInstalled) => {
                Err(Error::NotInstalled(self.spec.not_installed_message()))
            }
            Err(Missing::Broken(why)) => Err(Error::failed(why.clone())),
        }
    }
}

/// How often a running tool is reported alive. The coordinator takes a validator that says
/// nothing for its dimension's timeout (30 s at the least) to be hung; a large project can keep
/// a tool busy for minutes, and these heartbeats tell the coordinator it is working.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Runs a tool in `root`, with `env` added to its environment, and collects its output,
/// sending a [`Progress`](protocol::Progress) heartbeat through `out` every [`HEARTBEAT`] while
/// it runs.
pub fn run(
    executable: &Path,
    args: &[String],
    env: &[(&str, String)],
    root: &str,
    files: usize,
    out: &mut Reporter<'_>,
) -> Result<Output, Error> {
    Running::start(executable, args, env, root)?.finish(0, files, out)
}

/// A tool started and not yet waited for, so that the wrapper can work out something else
/// meanwhile. Its output is read from the start, so it never blocks on a full pipe; dropped
/// unfinished (the wrapper failed meanwhile), it is killed.
#[derive(Debug)]
pub struct Running {
    executable: PathBuf,
    child: Option<std::process::Child>,
    stdout: Option<thread::JoinHandle<Vec<u8>>>,
    stderr: Option<thread::JoinHandle<Vec<u8>>>,
    started: Instant,
}

/// The scheduling priority a tool runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// This process's own.
    Own,
    /// [`BESIDE`] nice levels below it, for work done beside the main tool (pyright's import
    /// graph, read while pyright runs): the scheduler gives it what the main tool leaves of
    /// the cores, so it never slows the tool the run waits for.
    Beside,
}

/// How many nice levels below this process a tool run [`Priority::Beside`] is.
const BESIDE: i32 = 10;

impl Running {
    /// Starts a tool in `root`, with `env` added to its environment.
    pub fn start(
        executable: &Path,
        args: &[String],
        env: &[(&str, String)],
        root: &str,
    ) -> Result<Running, Error> {
        Running::start_at(executable, args, env, root, Priority::Own)
    }

    /// [`Running::start`] at `priority`.
    pub fn start_at(
        executable: &Path,
        args: &[String],
        env: &[(&str, String)],
        root: &str,
        priority: Priority,
    ) -> Result<Running, Error> {
        let mut child = Command::new(executable)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| cannot_run(executable, e))?;
        if priority == Priority::Beside {
            lower(&child);
        }
        // Both pipes are drained by threads of their own, so a tool that fills one while we
        // wait on the other can never block.
        Ok(Running {
            executable: executable.to_owned(),
            stdout: Some(drain(child.stdout.take())),
            stderr: Some(drain(child.stderr.take())),
            child: Some(child),
            started: Instant::now(),
        })
    }

    /// Waits for the tool and collects its output, sending a heartbeat through `out` every
    /// [`HEARTBEAT`] (`done` of the request's `files` being finished before this tool's run).
    pub fn finish(
        self,
        done: usize,
        files: usize,
        out: &mut Reporter<'_>,
    ) -> Result<Output, Error> {
        self.finish_beating(done, files, out, HEARTBEAT)
    }

    fn finish_beating(
        mut self,
        done: usize,
        files: usize,
        out: &mut Reporter<'_>,
        heartbeat: Duration,
    ) -> Result<Output, Error> {
        let mut child = self.child.take().expect("a tool is waited for once");
        // The child is waited for on a thread of its own, so that this thread can send
        // heartbeats without polling.
        let (exited, exit) = mpsc::channel();
        thread::spawn(move || {
            let _ = exited.send(child.wait());
        });
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let (done, total) = (count(done), count(files));
        let status = loop {
            match exit.recv_timeout(heartbeat) {
                Ok(status) => break status.map_err(|e| cannot_run(&self.executable, e))?,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let running = self.started.elapsed().as_secs();
                    out.progress(done, total, format!("running for {running} s"))?;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::failed("lost track of the tool's process"))
                }
            }
        };
        let joined = |t: Option<thread::JoinHandle<Vec<u8>>>| {
            t.and_then(|t| t.join().ok()).unwrap_or_default()
        };
        Ok(Output {
            status,
            stdout: joined(self.stdout.take()),
            stderr: joined(self.stderr.take()),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Puts a child [`BESIDE`] nice levels below this process; one that has already ended is no
/// matter, and one that cannot be lowered runs at this process's priority.
fn lower(child: &std::process::Child) {
    let pid: libc::id_t = child.id();
    // SAFETY: getpriority and setpriority only read their arguments; failures are returns.
    unsafe {
        let own = libc::getpriority(libc::PRIO_PROCESS, 0);
        let _ = libc::setpriority(libc::PRIO_PROCESS, pid, (own + BESIDE).min(19));
    }
}

fn cannot_run(executable: &Path, e: std::io::Error) -> Error {
    Error::failed(format!("cannot run {}: {e}", executable.display()))
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// A tool failure with the tool's own words (its stderr, else its stdout), in one line
/// ([`said`]).
pub fn tool_failed(tool: &str, output: &Output, what: &str) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let said = said(&words);
    Error::failed(format!(
        "{tool} {what} ({}): {}",
        output.status,
        if said.is_empty() { "no output" } else { &said }
    ))
}

/// Up to how many lines of a tool's words [`said`] keeps.
const SAID_LINES: usize = 6;

/// What a failed tool said, as one line: its lines joined by ` | `, without what only
/// illustrates them (the excerpts of a file that ruff draws under a TOML error, `1 | [tool]`
/// and `  | ^`; the frames of a Python traceback), and, when more is left, the first two and
/// the last three. A tool names the file at fault near the start (ruff's `Cause:` chain) and
/// the fault itself at the end (the exception, the TOML error), so both ends are kept.
fn said(words: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    let mut frames = false;
    for line in words.lines() {
        let text = line.trim();
        if line.starts_with("Traceback (most recent call last)") {
            frames = true;
            continue;
        }
        // A traceback's frames are indented; the exception that ends it is not.
        frames &= line.starts_with(' ');
        let excerpt = text
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start()
            .starts_with('|');
        if !(frames || excerpt || text.is_empty()) {
            lines.push(text);
        }
    }
    if lines.len() > SAID_LINES {
        let end = lines.split_off(lines.len() - 3);
        lines.truncate(2);
        lines.push("…");
        lines.extend(end);
    }
    lines.join(" | ")
}

/// The requested files that still exist (a file can be deleted between selection and run;
/// some tools treat a missing path as a fatal error).
pub fn existing(request: &Validate) -> Vec<&FileInput> {
    request
        .files
        .iter()
        .filter(|f| request.path_of(f).is_file())
        .collect()
}

/// A path a tool printed, relative to the root and `/`-separated; `None` when outside it.
pub fn relative(root: &str, printed: &str) -> Option<String> {
    let path = Path::new(printed);
    let relative = if path.is_absolute() {
        let root = Path::new(root);
        path.strip_prefix(root)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                let canonical = root.canonicalize().ok()?;
                path.strip_prefix(canonical).ok().map(Path::to_path_buf)
            })?
    } else {
        // `Path` drops inner `.` components, so bandit's `././a.py` loses both here.
        path.strip_prefix("./").unwrap_or(path).to_path_buf()
    };
    relative.to_str().map(|s| s.replace('\\', "/"))
}

/// Sends one `FileResult` per requested file, in request order, with the findings that belong
/// to it (files without findings get an empty result, which marks them finished). Findings for
/// paths that were not requested (a project run covers more) are left out, with one log line.
/// In fix mode, a file whose contents no longer match the request's hash is reported as
/// modified.
pub fn report(
    request: &Validate,
    findings: Vec<Finding>,
    out: &mut Reporter<'_>,
) -> Result<(), Error> {
    report_with_inputs(request, findings, out, |_| Vec::new())
}

/// The files one result depended on.
#[derive(Debug)]
pub enum Listed {
    Paths(Vec<String>),
    /// Numbers of paths sent with [`Reporter::input_paths`].
    Numbers(Vec<u32>),
}

impl From<Vec<String>> for Listed {
    fn from(paths: Vec<String>) -> Listed {
        Listed::Paths(paths)
    }
}

/// [`report`], with each file's result listing the files `inputs_of` says it depended on.
pub fn report_with_inputs<L: Into<Listed>>(
    request: &Validate,
    findings: Vec<Finding>,
    out: &mut Reporter<'_>,
    inputs_of: impl FnMut(&str) -> L,
) -> Result<(), Error> {
    report_files(request, &request.files, findings, out, inputs_of)
}

/// [`report_with_inputs`] for some of the requested files (`files`, in the order given): a
/// request answered in parts.
pub fn report_files<'f, L: Into<Listed>>(
    request: &Validate,
    files: impl IntoIterator<Item = &'f FileInput>,
    findings: Vec<Finding>,
    out: &mut Reporter<'_>,
    mut inputs_of: impl FnMut(&str) -> L,
) -> Result<(), Error> {
    let mut by_path: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for finding in findings {
        by_path
            .entry(finding.path.clone())
            .or_default()
            .push(finding);
    }
    for file in files {
        let mut findings = by_path.remove(&file.path).unwrap_or_default();
        findings.sort_by(|a, b| (a.line, a.column, &a.rule).cmp(&(b.line, b.column, &b.rule)));
        let result = FileResult {
            modified: request.fix && changed(request, file),
            ..FileResult::new(&file.path, findings)
        };
        match inputs_of(&file.path).into() {
            Listed::Numbers(inputs) if !inputs.is_empty() => out.numbered(result, inputs)?,
            Listed::Numbers(_) => out.file(result)?,
            Listed::Paths(inputs) => out.file(FileResult { inputs, ..result })?,
        }
    }
    if let Some(first) = by_path.keys().next() {
        out.log(
            protocol::LogLevel::Debug,
            format!(
                "left out findings of {} files that were not requested ({first}, ...)",
                by_path.len()
            ),
        )?;
    }
    Ok(())
}

fn changed(request: &Validate, file: &FileInput) -> bool {
    let Ok(mut f) = std::fs::File::open(request.path_of(file)) else {
        return true;
    };
    let mut hasher = blake3::Hasher::new();
    match hasher.update_reader(&mut f) {
        Ok(_) => *hasher.finalize().as_bytes() != file.content_hash,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tools_words_keep_what_names_the_fault_and_leave_out_excerpts_and_frames() {
        let ruff = "ruff failed\n  Cause: Failed to load configuration `/r/b/ruff.toml`\n  \
                    Cause: Failed to parse /r/b/ruff.toml\n  Cause: TOML parse error at line 1, \
                    column 1\n  |\n1 | [tool.ruff.lint]\n  | ^\nunknown field `tool`\n";
        assert_eq!(
            said(ruff),
            "ruff failed | Cause: Failed to load configuration `/r/b/ruff.toml` | Cause: Failed \
             to parse /r/b/ruff.toml | Cause: TOML parse error at line 1, column 1 | unknown \
             field `tool`"
        );
        let python = "[main] INFO profile include tests: None\nTraceback (most recent call \
                      last):\n  File \"/v/bandit/cli.py\", line 3, in main\n    run()\n\
                      ValueError: bad value\n";
        assert_eq!(
            said(python),
            "[main] INFO profile include tests: None | ValueError: bad value"
        );
        let long: String = (1..=9).map(|n| format!("line {n}\n")).collect();
        assert_eq!(
            said(&long),
            "line 1 | line 2 | … | line 7 | line 8 | line 9"
        );
        assert_eq!(said("\n  \n"), "");
    }

    #[test]
    fn the_tool_gets_the_environment_it_is_given() {
        let mut frames = Vec::new();
        let mut out = Reporter::new(&mut frames, protocol::DEFAULT_MAX_FRAME_SIZE);
        let args = ["-c".to_owned(), "echo \"$NODE_OPTIONS\"".to_owned()];
        let env = [("NODE_OPTIONS", "--max-old-space-size=12288".to_owned())];
        let output = run(Path::new("/bin/sh"), &args, &env, "/", 1, &mut out).expect("sh runs");
        assert_eq!(output.stdout, b"--max-old-space-size=12288\n");
    }

    #[test]
    fn a_tool_dropped_unfinished_is_killed() {
        let args = ["-c".to_owned(), "sleep 30".to_owned()];
        let running = Running::start(Path::new("/bin/sh"), &args, &[], "/").expect("sh runs");
        let pid = running.child.as_ref().expect("running").id();
        let started = Instant::now();
        drop(running);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not waited for to its end"
        );
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "killed and reaped"
        );
    }

    #[test]
    fn a_tool_run_beside_the_main_one_runs_at_a_lower_priority() {
        let args = ["-c".to_owned(), "sleep 30".to_owned()];
        let priority_of = |priority| {
            let running = Running::start_at(Path::new("/bin/sh"), &args, &[], "/", priority)
                .expect("sh runs");
            let pid = running.child.as_ref().expect("running").id();
            // SAFETY: getpriority only reads its arguments.
            unsafe { libc::getpriority(libc::PRIO_PROCESS, pid) }
        };
        // SAFETY: as above.
        let own = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
        assert_eq!(priority_of(Priority::Own), own);
        assert_eq!(priority_of(Priority::Beside), (own + BESIDE).min(19));
    }

    #[test]
    fn a_running_tool_is_reported_alive_and_its_output_kept() {
        let mut frames = Vec::new();
        let mut out = Reporter::new(&mut frames, protocol::DEFAULT_MAX_FRAME_SIZE);
        let args = ["-c".to_owned(), "sleep 0.5; echo done".to_owned()];
        let output = Running::start(Path::new("/bin/sh"), &args, &[], "/")
            .expect("sh runs")
            .finish_beating(1, 3, &mut out, Duration::from_millis(100))
            .expect("sh runs");
        assert_eq!(output.stdout, b"done\n");
        let mut reader = &frames[..];
        let mut beats = 0;
        while let Some(response) =
            protocol::frame::read_frame(&mut reader, protocol::DEFAULT_MAX_FRAME_SIZE)
                .expect("frames")
        {
            match response {
                protocol::Response::Progress(p) if (p.files_done, p.files_total) == (1, 3) => {
                    beats += 1
                }
                other => panic!("only progress is sent: {other:?}"),
            }
        }
        assert!(beats >= 2, "{beats} heartbeats in 0.5s at 100ms");
    }

    #[test]
    fn printed_paths_become_root_relative() {
        assert_eq!(relative("/r", "/r/src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "./src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "././src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "/elsewhere/a.py"), None);
    }
}
