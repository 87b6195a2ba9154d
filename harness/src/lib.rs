//! Test support for whole runs: temporary repositories, validators linked onto a private
//! `PATH`, and a runner for the real `orchestrator` binary that bounds its time, measures its
//! memory, and finds any process it left behind.
//!
//! Binaries are found beside the test executable's directory (`target/debug`), where cargo puts
//! every binary of the workspace that has tests; `cargo nextest run --workspace` builds them all.

pub mod findings;
pub mod servers;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long any one orchestrator run may take in a test before it is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A built binary of the workspace, by name.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its executable");
    let mut dir = exe.parent().expect("in a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run the tests with `cargo nextest run --workspace`",
        path.display()
    );
    path
}

/// The Python validator written from the protocol document.
pub fn python_validator() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("python/validator-pyspaces")
}

/// A validator process spoken to frame by frame, as the coordinator would.
#[derive(Debug)]
pub struct Exchange {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Exchange {
    /// Starts `program` in `dir`.
    pub fn start(program: &Path, dir: &Path) -> Exchange {
        Exchange::start_with_args(program, &[], dir)
    }

    /// Starts `program` with `args` in `dir`.
    pub fn start_with_args(program: &Path, args: &[&str], dir: &Path) -> Exchange {
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("validator starts");
        let stdin = child.stdin.take().expect("piped");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        Exchange {
            child,
            stdin,
            stdout,
        }
    }

    pub fn send(&mut self, request: &protocol::Request) {
        protocol::frame::write_frame(&mut self.stdin, request, protocol::DEFAULT_MAX_FRAME_SIZE)
            .expect("request sent");
    }

    /// The next response; panics on end of stream or a protocol error.
    pub fn receive(&mut self) -> protocol::Response {
        protocol::frame::read_frame(&mut self.stdout, protocol::DEFAULT_MAX_FRAME_SIZE)
            .expect("a well-formed frame")
            .expect("a response before the end of the stream")
    }

    /// The file results of the request just sent, their inputs as paths whichever way they
    /// came, up to its `Done`; panics on anything but results, paths, progress and log lines.
    pub fn results(&mut self) -> Vec<protocol::FileResult> {
        use protocol::Response;
        let mut table = protocol::numbered::InputTable::default();
        let mut results = Vec::new();
        loop {
            match self.receive() {
                Response::FileResult(r) => results.push(r),
                Response::InputPaths(paths) => table.add(paths),
                Response::NumberedResult(n) => {
                    results.push(table.resolve(n).expect("numbers of paths sent"));
                }
                Response::Done => return results,
                Response::Progress(_) | Response::Log(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Closes stdin and waits (bounded) for the exit code.
    pub fn wait(mut self) -> Option<i32> {
        drop(self.stdin);
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                panic!("validator did not exit within 10s of Shutdown");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A temporary repository with a private directory of validators.
#[derive(Debug)]
pub struct Repo {
    dir: tempfile::TempDir,
    bin: tempfile::TempDir,
    /// A second PATH directory, after `bin`, for shadowed validators.
    later_bin: tempfile::TempDir,
    /// The repository's own result cache, so that tests never share results.
    cache: tempfile::TempDir,
}

impl Default for Repo {
    fn default() -> Self {
        Repo::new()
    }
}

impl Repo {
    pub fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().expect("tempdir"),
            bin: tempfile::tempdir().expect("tempdir"),
            later_bin: tempfile::tempdir().expect("tempdir"),
            cache: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The result cache every run of this repository uses.
    pub fn cache_dir(&self) -> &Path {
        self.cache.path()
    }

    /// A repository with `n` Python files (`src/m0.py`, …), the fake validators `names` on
    /// PATH, and `config` after a short grace period: the set-up of most whole-run tests.
    pub fn with_fakes(n: usize, names: &[&str], config: &str) -> Repo {
        let repo = Repo::new();
        for i in 0..n {
            repo.write(&format!("src/m{i}.py"), "x = 1\n");
        }
        for name in names {
            repo.fake(name);
        }
        repo.config(&format!("grace_period = \"300ms\"\n{config}"));
        repo
    }

    /// [`Repo::check`], asserting that the run left no process behind.
    pub fn check_clean(&self, validators: &str) -> Outcome {
        let out = self.check(validators);
        assert!(
            out.leftovers.is_empty(),
            "processes left behind: {:?}\nstderr: {}",
            out.leftovers,
            out.stderr
        );
        out
    }

    /// Writes a file, creating its directories.
    pub fn write(&self, path: &str, contents: &str) -> &Repo {
        let full = self.root().join(path);
        std::fs::create_dir_all(full.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(full, contents).expect("write");
        self
    }

    /// Copies a directory of `fixtures/` into the repository.
    pub fn fixture(&self, name: &str) -> &Repo {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures")
            .join(name);
        copy_tree(&source, self.root());
        self
    }

    /// Unpacks `members` (paths inside the archive, its top directory included) of a pinned
    /// source distribution that `scripts/corpora` downloaded, without the top directory.
    pub fn corpus(&self, archive: &str, members: &[&str]) -> &Repo {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/corpora")
            .join(archive);
        assert!(
            path.is_file(),
            "{} is missing; run scripts/corpora (scripts/test does)",
            path.display()
        );
        let status = Command::new("tar")
            .arg("-xzf")
            .arg(&path)
            .arg("--strip-components=1")
            .arg("-C")
            .arg(self.root())
            .args(members)
            .status()
            .expect("tar runs");
        assert!(status.success(), "tar could not unpack {}", path.display());
        self
    }

    /// Writes `orchestrator.toml`.
    pub fn config(&self, text: &str) -> &Repo {
        self.write("orchestrator.toml", text)
    }

    /// Puts `target` on the private PATH as `validator-NAME`.
    pub fn validator(&self, name: &str, target: &Path) -> &Repo {
        std::os::unix::fs::symlink(target, self.bin.path().join(format!("validator-{name}")))
            .expect("symlink");
        self
    }

    /// Puts `target` as `validator-NAME` in a PATH directory searched after the first one.
    pub fn later_validator(&self, name: &str, target: &Path) -> &Repo {
        let link = self.later_bin.path().join(format!("validator-{name}"));
        std::os::unix::fs::symlink(target, link).expect("symlink");
        self
    }

    /// Puts the fake validator on the private PATH as `validator-NAME`.
    pub fn fake(&self, name: &str) -> &Repo {
        self.validator(name, &binary("fake-validator"))
    }

    /// Runs git in the repository.
    pub fn git(&self, args: &[&str]) -> &Repo {
        let out = self.git_output(args, &[]);
        assert!(out.status.success(), "git {args:?} failed");
        self
    }

    /// Runs git in the repository as a test user, with `env`, and returns what it did.
    pub fn git_output(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        Command::new("git")
            .current_dir(self.root())
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("git runs")
    }

    /// Runs the real `orchestrator` in the repository with the private PATH first.
    pub fn run(&self, args: &[&str]) -> Outcome {
        self.run_with_env(args, &[])
    }

    /// `orchestrator run --all --format json --validators VALIDATORS`: the whole-run check most
    /// tests make.
    pub fn check(&self, validators: &str) -> Outcome {
        self.run(&[
            "run",
            "--all",
            "--format",
            "json",
            "--validators",
            validators,
        ])
    }

    /// [`Repo::check`] of validators that must find something: exit status 1.
    pub fn check_finding(&self, validators: &str) -> Outcome {
        let out = self.check(validators);
        assert_eq!(
            out.code,
            Some(1),
            "findings expected\n{}\n{}",
            out.stdout,
            out.stderr
        );
        out
    }

    /// [`Repo::run`] with extra environment variables.
    pub fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        self.run_full(args, env, None, false)
    }

    /// [`Repo::run`], sending `signal` to the coordinator `after` it started.
    pub fn run_signalled(&self, args: &[&str], after: Duration, signal: i32) -> Outcome {
        self.run_full(args, &[], Some((after, signal)), false)
    }

    /// [`Repo::run`] with its stdout a pipe nobody reads, closed from the start (`| true`);
    /// the outcome's stdout is empty.
    pub fn run_with_stdout_closed(&self, args: &[&str]) -> Outcome {
        self.run_full(args, &[], None, true)
    }

    fn run_full(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        signal: Option<(Duration, i32)>,
        stdout_closed: bool,
    ) -> Outcome {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let marker = format!(
            "{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        // The private directory comes first; the rest is the test's own PATH, so interpreters
        // such as python3 are found as they would be for a user.
        let inherited = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let path = format!(
            "{}:{}:{inherited}",
            self.bin.path().display(),
            self.later_bin.path().display()
        );
        let mut command = Command::new(binary("orchestrator"));
        command
            .args(args)
            .current_dir(self.root())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("ORCHESTRATOR_PROFILE")
            .env_remove("ORCHESTRATOR_CACHE")
            .env_remove("ORCHESTRATOR_REMOTE_CACHE")
            .env_remove("ORCHESTRATOR_REMOTE_CACHE_READ_ONLY")
            .env_remove("ORCHESTRATOR_CACHE_SECRET")
            .env("ORCHESTRATOR_CACHE_DIR", self.cache_dir())
            .env(MARKER, &marker)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("orchestrator starts");
        let stdout = child.stdout.take().expect("piped");
        let stdout = (!stdout_closed).then(|| read_in_background(stdout));
        let stderr = read_in_background(child.stderr.take().expect("piped"));
        let mut signal = signal;
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break status;
            }
            if let Some((after, number)) = signal {
                if started.elapsed() >= after {
                    let pid = i32::try_from(child.id()).expect("a pid fits");
                    // SAFETY: kill only takes integers.
                    unsafe { libc::kill(pid, number) };
                    signal = None;
                }
            }
            if started.elapsed() > RUN_LIMIT {
                let _ = child.kill();
                panic!("orchestrator {args:?} ran for more than {RUN_LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let elapsed = started.elapsed();
        Outcome {
            code: status.code(),
            stdout: stdout.map_or_else(String::new, |s| s.join().expect("reader")),
            stderr: stderr.join().expect("reader"),
            elapsed,
            max_rss_kib: children_max_rss_kib(),
            leftovers: processes_with_marker(&marker),
            marker,
        }
    }
}

/// The environment variable that marks every process a run started, directly or not.
const MARKER: &str = "HARNESS_RUN_MARKER";

/// What a run did.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
    /// Largest resident set of any waited-for descendant of the test process so far.
    pub max_rss_kib: i64,
    /// `pid command` of processes of this run still alive after it returned.
    pub leftovers: Vec<String>,
    /// What marks this run's processes.
    marker: String,
}

impl Outcome {
    /// The processes of this run still alive after waiting up to `limit` for them to go (a
    /// coordinator killed with SIGKILL leaves the cleaning to others, which takes a moment).
    pub fn leftovers_within(&self, limit: Duration) -> Vec<String> {
        let started = Instant::now();
        loop {
            let left = processes_with_marker(&self.marker);
            if left.is_empty() || started.elapsed() > limit {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// stdout parsed as JSON (for `--format json`).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// The paths of the JSON report's findings, in report order.
    pub fn finding_paths(&self) -> Vec<String> {
        let json = self.json();
        json["findings"]
            .as_array()
            .expect("findings is a list")
            .iter()
            .map(|f| f["path"].as_str().expect("path is a string").to_owned())
            .collect()
    }

    /// The JSON report's entry of one validator.
    pub fn validator(&self, name: &str) -> serde_json::Value {
        let json = self.json();
        json["validators"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no validator {name} in {json:#}"))
    }
}

fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).expect("fixture exists") {
        let entry = entry.expect("readable");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            std::fs::create_dir_all(&target).expect("mkdir");
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

fn read_in_background<R: Read + Send + 'static>(mut pipe: R) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage writes into the struct we pass, which lives for the call.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

/// Live processes whose environment carries `MARKER=marker`.
fn processes_with_marker(marker: &str) -> Vec<String> {
    let needle = format!("{MARKER}={marker}");
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // A zombie is dead; only its parent's bookkeeping is left.
        if stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z'))
        {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        found.push(format!("{pid} {}", cmdline.trim()));
    }
    found
}
