//! A validator that misbehaves on purpose, predictably.
//!
//! Linked into a test's `PATH` as `validator-NAME`, it takes its name from `argv[0]` and its
//! behaviour from the `[validators.NAME]` table of `./orchestrator.toml` (it runs in the root),
//! read before the handshake so that even handshake misbehaviour is configurable. Keys:
//!
//! | key | effect |
//! | --- | --- |
//! | `findings = N` | N error findings per file (default 0) |
//! | `severity = "warning"` | severity of those findings |
//! | `dimension`, `scope`, `globs`, `batch_size` | manifest fields (`code_quality`, `per_file`, `["**/*.py"]`) |
//! | `sleep = "500ms"` | wait before answering each request |
//! | `hang = "before_handshake" \| "after_handshake" \| "after_first_file"` | stop answering |
//! | `ignore_sigterm = true` | SIGTERM does nothing |
//! | `spawn = "child" \| "grandchild" \| "setsid"` | leave a `sleep` process behind holding stdout |
//! | `crash_after = N` | abort (SIGABRT) after N file results |
//! | `exit_after = N` | exit 0 without `Done` after N file results |
//! | `garbage = true` | answer Hello with bytes that are not a frame |
//! | `oversized = true` | answer Hello with a frame length of 4 GiB |
//! | `flood_stderr = N` | write N MiB to stderr before answering Hello |
//! | `close_stdout = true` | close stdout after the handshake and keep running |
//! | `fail = "message"` | answer each request with `Failed` |
//! | `not_installed = true` | answer each request with `Failed`, kind not installed |
//! | `wrong_version = true` | claim protocol version 999 in the manifest |
//! | `refuse_hello = "message"` | answer Hello with `Failed` and exit 4, as for a foreign version |
//! | `record = "file"` | append each request's paths and config, one line each |
//! | `config_files = [..]` | the manifest's declared configuration files |
//! | `fixes = "TEXT"` | can fix: a finding per line holding TEXT; a fix request replaces its first occurrence per file |
//! | `manifest_name = "x"` | name itself `x` in the manifest, whatever the executable's name |
//! | `suggested_timeout = "500ms"` | the manifest's `suggested_timeout_ms` |
//! | `work = "2000ms"`, `progress_every = "100ms"` | before answering each request, work that long, sending `Progress` at that interval |
//! | `config_error = "message"` | answer each request with `Failed`, kind config |
//! | `log = ["warn: text", "info: text"]` | send these `Log` lines (level, then text) before answering each request |
//! | `inputs = ["style.css"]` | every file result lists these files as inputs; `{file}` in one stands for the result's own path |
//! | `inputs_as = "numbers" \| "unsent"` | send those inputs as numbers (`InputPaths`, then `NumberedResult`), or as numbers no `InputPaths` sent |
//! | `children = N` | before its handshake, start N `sleep` processes that outlive it (every tenth with `setsid`) |
//! | `trickle = true` | write every frame after the handshake one byte at a time |
//! | `log_flood = N` | send N `Log` lines (debug) before answering each request |
//! | `flaky = N`, `flaky_how = "transient" \| "killed" \| "abort"`, `flaky_after = 1` | the first N processes (counted in `.fake-NAME-starts`) fail after that many file results: `Failed` of kind transient, SIGKILL from itself, or SIGABRT |
//!
//! `FAKE_VALIDATOR_VERSION` and `FAKE_TOOL_VERSION` in the environment set the manifest's
//! versions (default `0.0.1` and no tool), so tests can change them without changing the table.

use protocol::frame::{read_frame, write_frame};
use protocol::{
    Dimension, Failed, FailureKind, FileResult, Finding, Manifest, Request, Response, Scope,
    Severity, DEFAULT_MAX_FRAME_SIZE,
};
use std::io::{BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;
use toml::{Table, Value};

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let file_name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = file_name
        .strip_prefix("validator-")
        .unwrap_or("fake")
        .to_owned();
    let behaviour = read_behaviour(&name);
    let b = Behaviour(&behaviour);
    if b.flag("ignore_sigterm") {
        // SAFETY: setting a signal disposition to SIG_IGN touches no Rust state.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
    }
    if let Some(how) = b.text("spawn") {
        spawn_leftover(how);
    }
    for i in 0..b.int("children").unwrap_or(0) {
        spawn_leftover(if i % 10 == 9 { "setsid" } else { "child" });
    }
    if b.text("hang") == Some("before_handshake") {
        hang();
    }
    let mut stdin = BufReader::new(std::io::stdin().lock());
    let mut stdout = Trickle {
        out: std::io::stdout().lock(),
        bytewise: false,
    };
    let max = DEFAULT_MAX_FRAME_SIZE;
    match read_frame::<_, Request>(&mut stdin, max) {
        Ok(Some(Request::Hello(_))) => {}
        other => {
            eprintln!("fake: expected Hello, got {other:?}");
            return ExitCode::from(4);
        }
    }
    if let Some(message) = b.text("refuse_hello") {
        let refusal = Response::Failed(Failed {
            kind: FailureKind::Error,
            message: message.to_owned(),
        });
        write_frame(&mut stdout, &refusal, max).expect("stdout open");
        return ExitCode::from(4);
    }
    if let Some(mib) = b.int("flood_stderr") {
        let chunk = vec![b'e'; 1 << 20];
        let mut stderr = std::io::stderr().lock();
        for _ in 0..mib {
            let _ = stderr.write_all(&chunk);
        }
    }
    if b.flag("garbage") {
        let _ = stdout.write_all(b"\x05\x00\x00\x00\xff\xff\xff\xff\xff");
        let _ = stdout.flush();
        hang();
    }
    if b.flag("oversized") {
        let _ = stdout.write_all(&u32::MAX.to_le_bytes());
        let _ = stdout.flush();
        hang();
    }
    let version = std::env::var("FAKE_VALIDATOR_VERSION").unwrap_or_else(|_| "0.0.1".into());
    let mut manifest = Manifest::new(
        &name,
        &version,
        Dimension::from_name(b.text("dimension").unwrap_or("code_quality")),
        if b.text("scope") == Some("project") {
            Scope::Project
        } else {
            Scope::PerFile
        },
    )
    .with_globs(
        b.list("globs")
            .unwrap_or_else(|| vec!["**/*.py".to_owned()]),
    );
    manifest.batch_size = b.int("batch_size").map(|n| n as u32);
    manifest.config_files = b.list("config_files").unwrap_or_default();
    manifest.can_fix = b.text("fixes").is_some();
    if let Ok(tool) = std::env::var("FAKE_TOOL_VERSION") {
        manifest = manifest.with_tool("faketool", &tool);
    }
    if b.flag("wrong_version") {
        manifest.protocol_version = 999;
    }
    if let Some(other) = b.text("manifest_name") {
        manifest.name = other.to_owned();
    }
    manifest.suggested_timeout_ms = b
        .text("suggested_timeout")
        .map(|t| parse_ms(t).as_millis() as u64);
    write_frame(&mut stdout, &Response::Manifest(manifest), max).expect("stdout open");
    stdout.bytewise = b.flag("trickle");
    if b.text("hang") == Some("after_handshake") {
        hang();
    }
    if b.flag("close_stdout") {
        drop(stdout);
        // SAFETY: closing fd 1 after the last use of stdout.
        unsafe { libc::close(1) };
        hang();
    }
    let flaky = b.int("flaky").is_some_and(|n| count_start(&name) <= n);
    let mut sent = 0i64;
    loop {
        let request = match read_frame::<_, Request>(&mut stdin, max) {
            Ok(Some(Request::Validate(v))) => v,
            Ok(Some(Request::Shutdown)) | Ok(None) => return ExitCode::SUCCESS,
            other => {
                eprintln!("fake: unexpected {other:?}");
                return ExitCode::from(4);
            }
        };
        if let Some(file) = b.text("record") {
            let paths: Vec<&str> = request.files.iter().map(|f| f.path.as_str()).collect();
            let line = format!("{} {}\n", paths.join(","), request.config_json);
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .expect("record file");
            f.write_all(line.as_bytes()).expect("record");
        }
        if let Some(pause) = b.text("sleep") {
            std::thread::sleep(parse_ms(pause));
        }
        for i in 0..b.int("log_flood").unwrap_or(0) {
            let log = protocol::Log {
                level: protocol::LogLevel::Debug,
                message: format!("log line {i}"),
            };
            write_frame(&mut stdout, &Response::Log(log), max).expect("stdout open");
        }
        for line in b.list("log").unwrap_or_default() {
            let (level, message) = line.split_once(": ").expect("log lines are LEVEL: TEXT");
            let level = match level {
                "error" => protocol::LogLevel::Error,
                "warn" => protocol::LogLevel::Warn,
                "info" => protocol::LogLevel::Info,
                _ => protocol::LogLevel::Debug,
            };
            let log = protocol::Log {
                level,
                message: message.to_owned(),
            };
            write_frame(&mut stdout, &Response::Log(log), max).expect("stdout open");
        }
        if let Some(work) = b.text("work") {
            let every = parse_ms(b.text("progress_every").unwrap_or("100ms"));
            let until = std::time::Instant::now() + parse_ms(work);
            let total = request.files.len() as u32;
            while std::time::Instant::now() < until {
                std::thread::sleep(every);
                let progress = protocol::Progress {
                    files_done: 0,
                    files_total: total,
                    message: "working".into(),
                };
                write_frame(&mut stdout, &Response::Progress(progress), max).expect("stdout open");
            }
        }
        let refusal = if b.flag("not_installed") {
            Some((
                FailureKind::NotInstalled,
                "faketool is not installed; run `install faketool`".to_owned(),
            ))
        } else if let Some(message) = b.text("config_error") {
            Some((FailureKind::Config, message.to_owned()))
        } else {
            b.text("fail").map(|m| (FailureKind::Error, m.to_owned()))
        };
        if let Some((kind, message)) = refusal {
            write_frame(
                &mut stdout,
                &Response::Failed(Failed { kind, message }),
                max,
            )
            .expect("stdout open");
            continue;
        }
        let severity = match b.text("severity") {
            Some("warning") => Severity::Warning,
            Some("info") => Severity::Info,
            _ => Severity::Error,
        };
        let mut refused = false;
        let mut numbering = protocol::numbered::Numbering::default();
        for file in &request.files {
            if let Some(text) = b.text("fixes") {
                let result = fix_marker(&request.root, &file.path, text, request.fix);
                write_frame(&mut stdout, &Response::FileResult(result), max).expect("stdout open");
                continue;
            }
            let findings = (0..b.int("findings").unwrap_or(0))
                .map(|i| {
                    let line = u32::try_from(i + 1).expect("small");
                    Finding::new(
                        &file.path,
                        line,
                        1,
                        "FAKE1",
                        severity,
                        format!("finding {i} from {name}"),
                    )
                })
                .collect();
            let result = FileResult {
                inputs: (b.list("inputs").unwrap_or_default().into_iter())
                    .map(|input| input.replace("{file}", &file.path))
                    .collect(),
                ..FileResult::new(&file.path, findings)
            };
            if flaky && sent >= b.int("flaky_after").unwrap_or(1) {
                match b.text("flaky_how").unwrap_or("transient") {
                    // SAFETY: raise only takes an integer.
                    "killed" => unsafe {
                        libc::raise(libc::SIGKILL);
                    },
                    "abort" => std::process::abort(),
                    _ => {
                        let failed = Failed {
                            kind: FailureKind::Transient,
                            message: "the service went away".into(),
                        };
                        write_frame(&mut stdout, &Response::Failed(failed), max)
                            .expect("stdout open");
                        refused = true;
                        break;
                    }
                }
            }
            let inputs_as = b.text("inputs_as");
            for response in as_sent(result, inputs_as, &mut numbering, max) {
                write_frame(&mut stdout, &response, max).expect("stdout open");
            }
            sent += 1;
            if b.int("crash_after") == Some(sent) {
                eprintln!("fake: crashing on purpose after {sent} files");
                std::process::abort();
            }
            if b.int("exit_after") == Some(sent) {
                return ExitCode::SUCCESS;
            }
            if b.text("hang") == Some("after_first_file") {
                hang();
            }
        }
        if !refused {
            write_frame(&mut stdout, &Response::Done, max).expect("stdout open");
        }
    }
}

/// Counts this process's start in `.fake-NAME-starts` in the working directory; returns the
/// count, this start included.
fn count_start(name: &str) -> i64 {
    let file = format!(".fake-{name}-starts");
    let count = std::fs::read_to_string(&file)
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    std::fs::write(&file, count.to_string()).expect("the fake can write its start count");
    count
}

/// The `fixes` behaviour: fixes the first `marker` when asked, then reports every line that
/// still holds one.
/// A result as `inputs_as` says its inputs go: as paths (`None`), as numbers after the paths
/// they number (`numbers`), or as numbers of paths never sent (`unsent`).
fn as_sent(
    mut result: FileResult,
    inputs_as: Option<&str>,
    numbering: &mut protocol::numbered::Numbering,
    max: u32,
) -> Vec<Response> {
    let inputs = std::mem::take(&mut result.inputs);
    let (inputs, new) = match inputs_as {
        Some("numbers") => numbering.number(inputs),
        Some("unsent") => (vec![7_000], Vec::new()),
        _ => {
            result.inputs = inputs;
            return vec![Response::FileResult(result)];
        }
    };
    let mut responses = protocol::numbered::input_paths(new, max);
    responses.push(Response::NumberedResult(protocol::NumberedResult {
        result,
        inputs,
    }));
    responses
}

fn fix_marker(root: &str, path: &str, marker: &str, fix: bool) -> FileResult {
    let full = std::path::Path::new(root).join(path);
    let mut text = std::fs::read_to_string(&full).unwrap_or_default();
    let modified = fix && text.contains(marker);
    if modified {
        text = text.replacen(marker, "fixed", 1);
        std::fs::write(&full, &text).expect("the fake fixes files it was given");
    }
    let findings = text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.contains(marker))
        .map(|(i, _)| {
            let line = u32::try_from(i + 1).expect("small");
            Finding::new(
                path,
                line,
                1,
                "FAKE-FIX",
                Severity::Error,
                format!("{marker} here"),
            )
        })
        .collect();
    FileResult {
        modified,
        ..FileResult::new(path, findings)
    }
}

/// stdout, written one byte per `write` (and flushed) when `bytewise`.
struct Trickle<W> {
    out: W,
    bytewise: bool,
}

impl<W: Write> Write for Trickle<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !self.bytewise || buf.is_empty() {
            return self.out.write(buf);
        }
        let n = self.out.write(&buf[..1])?;
        self.out.flush()?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Typed access to the behaviour table.
struct Behaviour<'a>(&'a Table);

impl Behaviour<'_> {
    fn flag(&self, key: &str) -> bool {
        self.0.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
    fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
    fn int(&self, key: &str) -> Option<i64> {
        self.0.get(key).and_then(Value::as_integer)
    }
    fn list(&self, key: &str) -> Option<Vec<String>> {
        let list = self.0.get(key)?.as_array()?;
        Some(
            list.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

fn read_behaviour(name: &str) -> Table {
    let Ok(text) = std::fs::read_to_string("orchestrator.toml") else {
        return Table::new();
    };
    let table: Table = text.parse().expect("test configs are valid TOML");
    table
        .get("validators")
        .and_then(|v| v.get(name))
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default()
}

/// Starts a `sleep` that inherits stdout, so the pipe stays open after this process dies.
/// Never waited for: leaving it behind is the point.
#[allow(clippy::zombie_processes)]
fn spawn_leftover(how: &str) {
    let script = match how {
        "child" => "exec sleep 300",
        "grandchild" => "sleep 300 & wait",
        _ => "exec setsid sleep 300",
    };
    Command::new("sh")
        .args(["-c", script])
        .stdin(Stdio::null())
        .spawn()
        .expect("sh runs");
}

fn hang() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn parse_ms(text: &str) -> Duration {
    let ms = text
        .trim_end_matches("ms")
        .parse()
        .expect("sleep is written as NNNms");
    Duration::from_millis(ms)
}
