//! The validator SDK: implement [`Validator`], call [`run`] from `main`.
//!
//! The SDK owns everything that is the same in every validator: the command line
//! (`--manifest`, `--help`, `--version`), framing, the handshake and its version check, turning
//! errors into [`Response::Failed`], and diagnostics on stderr. A validator only says what it is
//! and how it checks files. `docs/writing-a-validator.md` has a complete example.

use crate::codec;
use crate::error::ProtocolError;
use crate::frame::{read_frame, write_frame};
use crate::numbered::Numbering;
use crate::{
    FailureKind, FileResult, Finding, Hello, Log, LogLevel, Manifest, NumberedResult, Progress,
    Request, Response, Severity, Validate, DEFAULT_MAX_FRAME_SIZE, HARD_MAX_FRAME_SIZE,
};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::process::ExitCode;

/// The rule of the finding that stands for findings cut off by the frame size limit.
pub const TRUNCATED_RULE: &str = "orchestrator-truncated";

/// A validator: what it is, and how it checks files.
pub trait Validator {
    /// Describes the validator. Called once per process (and for `--manifest`).
    fn manifest(&self) -> Manifest;

    /// Checks the requested files, sending each file's findings through `out` as soon as the
    /// file is finished. Returning `Ok` sends [`Response::Done`]; returning
    /// [`Error::Failed`] sends [`Response::Failed`] with its message.
    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error>;
}

/// Why [`Validator::validate`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request cannot be completed; the message tells the user why.
    #[error("{0}")]
    Failed(String),
    /// The wrapped tool is missing; the message tells the user how to install it.
    #[error("{0}")]
    NotInstalled(String),
    /// The validator's configuration is wrong; the message names the key and the fix.
    #[error("{0}")]
    Config(String),
    /// The request failed for a reason that may pass if tried again (a browser that crashed).
    #[error("{0}")]
    Transient(String),
    /// The coordinator cannot be reached any more: the session is over.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
}

impl Error {
    /// A failure of the request, with a message for the user.
    pub fn failed(message: impl Into<String>) -> Error {
        Error::Failed(message.into())
    }

    /// A mistake in the validator's configuration, naming the key and the fix.
    pub fn config(message: impl Into<String>) -> Error {
        Error::Config(message.into())
    }
}

impl From<io::Error> for Error {
    /// An I/O error of the validator's own work (reading a file, running its tool) fails the
    /// request; pipe errors come through [`Reporter`] as [`Error::Protocol`] instead.
    fn from(e: io::Error) -> Error {
        Error::Failed(e.to_string())
    }
}

/// Sends results of the current request to the coordinator.
pub struct Reporter<'a> {
    output: &'a mut dyn Write,
    max_frame_size: u32,
    /// The input paths this request's results named so far.
    numbering: Numbering,
}

impl std::fmt::Debug for Reporter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reporter")
            .field("max_frame_size", &self.max_frame_size)
            .finish_non_exhaustive()
    }
}

impl<'a> Reporter<'a> {
    /// A reporter writing frames of at most `max_frame_size` bytes to `output`; [`serve`]
    /// makes one per request, and a validator's own tests can make one over a `Vec<u8>`.
    pub fn new(output: &'a mut dyn Write, max_frame_size: u32) -> Reporter<'a> {
        Reporter {
            output,
            max_frame_size,
            numbering: Numbering::default(),
        }
    }

    /// Sends every finding of one finished file.
    ///
    /// Its inputs go as numbers ([`Response::NumberedResult`]), each path sent once a request
    /// in an [`Response::InputPaths`] before the first result that names it.
    ///
    /// A result too large for one frame keeps its first findings (in the order given) and ends
    /// with one finding, rule [`TRUNCATED_RULE`], that counts the rest and carries the highest
    /// severity among them, so a run never passes because errors were cut off.
    pub fn file(&mut self, mut result: FileResult) -> Result<(), Error> {
        let inputs = std::mem::take(&mut result.inputs);
        if inputs.is_empty() {
            return self.send_result(Response::FileResult(result));
        }
        let (inputs, new) = self.numbering.number(inputs);
        self.send_paths(new)?;
        self.send_result(Response::NumberedResult(NumberedResult { result, inputs }))
    }

    /// Sends `paths` as input paths of this request, numbered in order, and gives the first
    /// one's number: a validator that numbers its inputs itself (an import graph's modules)
    /// then names them in [`Reporter::numbered`] by that number plus its own, with no lookup
    /// per input.
    pub fn input_paths(&mut self, paths: Vec<String>) -> Result<u32, Error> {
        let first = self.numbering.reserve(paths.len());
        self.send_paths(paths)?;
        Ok(first)
    }

    /// Sends every finding of one finished file, as [`Reporter::file`] does, its inputs given
    /// as numbers of paths sent in this request (by [`Reporter::input_paths`], or for an
    /// earlier [`Reporter::file`]); a number not sent fails the request.
    pub fn numbered(&mut self, result: FileResult, inputs: Vec<u32>) -> Result<(), Error> {
        let numbered = NumberedResult { result, inputs };
        crate::numbered::check_numbered(&numbered, self.numbering.sent())
            .map_err(|e| Error::failed(e.to_string()))?;
        self.send_result(Response::NumberedResult(numbered))
    }

    fn send_paths(&mut self, paths: Vec<String>) -> Result<(), Error> {
        for message in crate::numbered::input_paths(paths, self.max_frame_size) {
            self.send(&message)?;
        }
        Ok(())
    }

    /// Sends a `FileResult` or `NumberedResult`, cut to fit the frame if it must be.
    fn send_result(&mut self, response: Response) -> Result<(), Error> {
        let outcome = self.send(&response);
        let Err(Error::Protocol(ProtocolError::Oversized { .. })) = outcome else {
            return outcome;
        };
        let fitted = match response {
            Response::FileResult(result) => self.fit(result, &Response::FileResult)?,
            Response::NumberedResult(NumberedResult { result, inputs }) => {
                let wrap = |result| {
                    let inputs = inputs.clone();
                    Response::NumberedResult(NumberedResult { result, inputs })
                };
                self.fit(result, &wrap)?
            }
            _ => return outcome,
        };
        self.send(&fitted)
    }

    /// The longest prefix of the findings that fits in a frame with the truncation note, as
    /// `wrap` sends it.
    fn fit(
        &self,
        result: FileResult,
        wrap: &impl Fn(FileResult) -> Response,
    ) -> Result<Response, Error> {
        let total = result.findings.len();
        let with = |kept: usize| {
            let dropped = &result.findings[kept..];
            let severity = dropped
                .iter()
                .map(|f| f.severity)
                .min()
                .unwrap_or(Severity::Info);
            let mut findings = result.findings[..kept].to_vec();
            findings.push(Finding::new(
                &result.path,
                1,
                1,
                TRUNCATED_RULE,
                severity,
                format!(
                    "{} more findings did not fit in one protocol frame ({} bytes at most); \
                     run the tool directly to see them all",
                    dropped.len(),
                    self.max_frame_size
                ),
            ));
            wrap(FileResult {
                findings,
                ..result.clone()
            })
        };
        let fits = |kept: usize| {
            let size = codec::encode(&with(kept)).len();
            u32::try_from(size).is_ok_and(|size| size <= self.max_frame_size)
        };
        // Binary search for the largest prefix that fits.
        let (mut low, mut high) = (0, total);
        if !fits(0) {
            return Err(Error::failed(format!(
                "the result of {} does not fit in one frame even without findings",
                result.path
            )));
        }
        while low < high {
            let mid = (low + high).div_ceil(2);
            if fits(mid) {
                low = mid;
            } else {
                high = mid - 1;
            }
        }
        Ok(with(low))
    }

    /// Tells how far the request has got.
    pub fn progress(
        &mut self,
        files_done: u32,
        files_total: u32,
        message: impl Into<String>,
    ) -> Result<(), Error> {
        self.send(&Response::Progress(Progress {
            files_done,
            files_total,
            message: message.into(),
        }))
    }

    /// Sends a line for the coordinator's log.
    pub fn log(&mut self, level: LogLevel, message: impl Into<String>) -> Result<(), Error> {
        self.send(&Response::Log(Log {
            level,
            message: message.into(),
        }))
    }

    fn send(&mut self, response: &Response) -> Result<(), Error> {
        Ok(write_frame(self.output, response, self.max_frame_size)?)
    }
}

/// The whole life of a validator process; call it from `main`.
///
/// With no arguments it serves one session on stdin/stdout. `--manifest` prints the manifest as
/// JSON, `--version` the version, `--help` a usage line.
pub fn run<V: Validator>(validator: V) -> ExitCode {
    run_with_args(validator, std::env::args().skip(1).collect())
}

/// [`run`] with the arguments given instead of the process's own (for a validator embedded in
/// another executable).
pub fn run_with_args<V: Validator>(mut validator: V, args: Vec<String>) -> ExitCode {
    let manifest = validator.manifest();
    let program = format!("validator-{}", manifest.name);
    match args.first().map(String::as_str) {
        None => {}
        Some("--manifest") if args.len() == 1 => {
            let json = serde_json::to_string_pretty(&manifest)
                .expect("a manifest has only strings, numbers and lists");
            return print_stdout(&json);
        }
        Some("--version") if args.len() == 1 => {
            return print_stdout(&format!("{program} {}", manifest.version));
        }
        Some("--help") if args.len() == 1 => {
            return print_stdout(&format!(
                "{program}: an orchestrator validator; it speaks the orchestrator protocol on \
                 stdin/stdout\nusage: {program} [--manifest | --version | --help]"
            ));
        }
        Some(_) => {
            eprintln!(
                "{program}: unexpected argument(s) {args:?}; run it without arguments (the \
                 coordinator does) or with --manifest, --version or --help"
            );
            return ExitCode::from(crate::exit::USAGE);
        }
    }
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    match serve(
        &mut validator,
        BufReader::new(stdin),
        BufWriter::new(stdout),
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{program}: {}", error_chain(&e));
            ExitCode::from(crate::exit::VALIDATOR_PROTOCOL_FAILURE)
        }
    }
}

/// Serves one session: handshake, requests, shutdown. Returns `Ok` on [`Request::Shutdown`] or
/// when the coordinator closes the pipe at a frame boundary.
pub fn serve<V: Validator, R: Read, W: Write>(
    validator: &mut V,
    mut input: R,
    mut output: W,
) -> Result<(), ProtocolError> {
    // A `Hello` of another version is refused on its version alone (see `codec::decode`).
    let hello: Hello = match read_frame(&mut input, DEFAULT_MAX_FRAME_SIZE) {
        Ok(None) => return Ok(()),
        Ok(Some(Request::Hello(hello))) => hello,
        Ok(Some(other)) => {
            return Err(ProtocolError::Unexpected {
                expected: "Hello",
                got: other.kind(),
            })
        }
        Err(error @ ProtocolError::VersionMismatch { .. }) => {
            let refusal = Response::Failed(crate::Failed {
                kind: FailureKind::Error,
                message: error.to_string(),
            });
            write_frame(&mut output, &refusal, DEFAULT_MAX_FRAME_SIZE)?;
            return Err(error);
        }
        Err(e) => return Err(e),
    };
    let max = hello.max_frame_size.min(HARD_MAX_FRAME_SIZE);
    write_frame(&mut output, &Response::Manifest(validator.manifest()), max)?;
    loop {
        match read_frame(&mut input, max)? {
            None | Some(Request::Shutdown) => return Ok(()),
            Some(Request::Validate(request)) => {
                let mut reporter = Reporter::new(&mut output, max);
                let outcome = match validator.validate(&request, &mut reporter) {
                    Ok(()) => Response::Done,
                    Err(Error::Failed(message)) => Response::Failed(crate::Failed {
                        kind: FailureKind::Error,
                        message,
                    }),
                    Err(Error::NotInstalled(message)) => Response::Failed(crate::Failed {
                        kind: FailureKind::NotInstalled,
                        message,
                    }),
                    Err(Error::Config(message)) => Response::Failed(crate::Failed {
                        kind: FailureKind::Config,
                        message,
                    }),
                    Err(Error::Transient(message)) => Response::Failed(crate::Failed {
                        kind: FailureKind::Transient,
                        message,
                    }),
                    Err(Error::Protocol(e)) => return Err(e),
                };
                write_frame(&mut output, &outcome, max)?;
            }
            Some(other) => {
                return Err(ProtocolError::Unexpected {
                    expected: "Validate or Shutdown",
                    got: other.kind(),
                })
            }
        }
    }
}

fn print_stdout(text: &str) -> ExitCode {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}") {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`validator-x --manifest | head -0`) is the reader's choice.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}

/// An error and its causes on one line: `pipe i/o failed: Broken pipe`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// This process's cgroup (v2) directory, from `/proc/self/cgroup` and the mount table, and the
/// mount's root; `None` without cgroup v2. A wrapper finds the memory it may use there; the
/// coordinator makes its validators' cgroup under it.
pub fn cgroup_dir() -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let relative = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mount = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    })?;
    let mount = std::path::PathBuf::from(mount);
    Some((mount.join(relative.trim_start_matches('/')), mount))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encode_frame;
    use crate::{Dimension, FileInput, Scope, PROTOCOL_VERSION};

    /// Reports one finding per requested file, or fails the request when asked to.
    struct Echo;

    impl Validator for Echo {
        fn manifest(&self) -> Manifest {
            Manifest::new("echo", "1.0", Dimension::CodeQuality, Scope::PerFile)
        }

        fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
            if request.config_json.contains("fail") {
                return Err(Error::failed("told to fail"));
            }
            for file in &request.files {
                let finding = Finding::new(&file.path, 1, 1, "E1", Severity::Error, "echo");
                out.file(FileResult::new(&file.path, vec![finding]))?;
            }
            Ok(())
        }
    }

    fn session(requests: &[Request]) -> (Result<(), ProtocolError>, Vec<Response>) {
        let mut input = Vec::new();
        for r in requests {
            input.extend(encode_frame(r, DEFAULT_MAX_FRAME_SIZE).expect("small"));
        }
        let mut output = Vec::new();
        let result = serve(&mut Echo, &input[..], &mut output);
        let mut reader = &output[..];
        let mut responses = Vec::new();
        while let Some(r) = read_frame(&mut reader, DEFAULT_MAX_FRAME_SIZE).expect("valid") {
            responses.push(r);
        }
        (result, responses)
    }

    fn hello(version: u32) -> Request {
        Request::Hello(Hello {
            protocol_version: version,
            coordinator_version: "test".into(),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        })
    }

    fn validate(config_json: &str) -> Request {
        Request::Validate(Validate {
            root: "/r".into(),
            files: vec![FileInput {
                path: "a.py".into(),
                content_hash: [0; 32],
            }],
            config_json: config_json.into(),
            fix: false,
            update_baselines: false,
            artifacts_dir: String::new(),
        })
    }

    #[test]
    fn a_whole_session_answers_every_request_in_order() {
        let (result, responses) = session(&[
            hello(PROTOCOL_VERSION),
            validate("{}"),
            validate(r#"{"fail":true}"#),
            Request::Shutdown,
        ]);
        result.expect("clean session");
        let kinds: Vec<&str> = responses.iter().map(Response::kind).collect();
        assert_eq!(kinds, ["Manifest", "FileResult", "Done", "Failed"]);
        assert_eq!(
            responses[3],
            Response::Failed(crate::Failed {
                kind: FailureKind::Error,
                message: "told to fail".into()
            })
        );
    }

    #[test]
    fn a_version_mismatch_is_refused_naming_both_versions() {
        let (result, responses) = session(&[hello(PROTOCOL_VERSION + 1)]);
        let expected = format!(
            "protocol version mismatch: coordinator speaks version {}, validator speaks version \
             {PROTOCOL_VERSION}; upgrade the older side",
            PROTOCOL_VERSION + 1
        );
        assert_eq!(result.expect_err("mismatch").to_string(), expected);
        assert_eq!(
            responses,
            [Response::Failed(crate::Failed {
                kind: FailureKind::Error,
                message: expected
            })]
        );
    }

    #[test]
    fn a_foreign_hello_is_refused_on_its_version_alone() {
        // A Hello of the next version, whose remaining layout means nothing to this one.
        let mut payload = 0u32.to_le_bytes().to_vec();
        payload.extend((PROTOCOL_VERSION + 1).to_le_bytes());
        payload.extend([0xff; 7]);
        let mut input = (payload.len() as u32).to_le_bytes().to_vec();
        input.extend(payload);
        let mut output = Vec::new();
        let result = serve(&mut Echo, &input[..], &mut output);
        assert!(
            matches!(
                result,
                Err(ProtocolError::VersionMismatch { coordinator, validator })
                    if coordinator == PROTOCOL_VERSION + 1 && validator == PROTOCOL_VERSION
            ),
            "{result:?}"
        );
        let refusal: Response = read_frame(&mut &output[..], DEFAULT_MAX_FRAME_SIZE)
            .expect("valid")
            .expect("a refusal");
        assert!(
            matches!(refusal, Response::Failed(ref f) if f.kind == FailureKind::Error),
            "{refusal:?}"
        );
    }

    #[test]
    fn a_result_too_large_for_a_frame_keeps_what_fits_and_counts_the_rest() {
        let mut output = Vec::new();
        let mut reporter = Reporter::new(&mut output, 2_000);
        let mut findings: Vec<Finding> = (1..=100)
            .map(|line| Finding::new("a.py", line, 1, "W1", Severity::Warning, "a warning"))
            .collect();
        findings.push(Finding::new("a.py", 200, 1, "E1", Severity::Error, "last"));
        reporter
            .file(FileResult::new("a.py", findings))
            .expect("sent");
        let sent: Response = read_frame(&mut &output[..], 2_000)
            .expect("within the limit")
            .expect("one frame");
        let Response::FileResult(result) = sent else {
            panic!("not a FileResult: {sent:?}")
        };
        let note = result.findings.last().expect("a note");
        let kept = result.findings.len() - 1;
        assert!(kept > 0 && kept < 100, "{kept}");
        assert_eq!(note.rule, TRUNCATED_RULE);
        assert_eq!(note.severity, Severity::Error, "an error was cut off");
        assert!(
            note.message
                .starts_with(&format!("{} more findings", 101 - kept)),
            "{}",
            note.message
        );
    }

    #[test]
    fn inputs_go_as_numbers_each_path_sent_once_before_the_first_result_naming_it() {
        let mut output = Vec::new();
        let mut reporter = Reporter::new(&mut output, 2_000);
        let with_inputs = |path: &str, inputs: &[&str], findings: u32| FileResult {
            inputs: inputs.iter().map(|i| (*i).to_owned()).collect(),
            ..FileResult::new(
                path,
                (1..=findings)
                    .map(|line| Finding::new(path, line, 1, "E1", Severity::Error, "an error"))
                    .collect(),
            )
        };
        reporter
            .file(with_inputs("a.py", &["b.py", "c.py"], 1))
            .expect("sent");
        reporter.file(with_inputs("d.py", &[], 0)).expect("sent");
        // Too many findings for the frame: cut, with its numbers kept.
        reporter
            .file(with_inputs("e.py", &["c.py", "f.py"], 100))
            .expect("sent");
        // A validator's own numbering: its paths 0 and 1 are the request's 3 and 4.
        let first = (reporter.input_paths(vec!["g.py".into(), "h.py".into()])).expect("sent");
        assert_eq!(first, 3);
        (reporter.numbered(with_inputs("i.py", &[], 0), vec![first + 1, 0])).expect("sent");
        let unsent = reporter.numbered(with_inputs("j.py", &[], 0), vec![5]);
        assert!(matches!(unsent, Err(Error::Failed(_))), "{unsent:?}");
        let mut reader = &output[..];
        let mut responses = Vec::new();
        while let Some(response) = read_frame::<_, Response>(&mut reader, 2_000).expect("valid") {
            responses.push(response);
        }
        let mut table = crate::numbered::InputTable::default();
        let mut results = Vec::new();
        for response in responses {
            match response {
                Response::InputPaths(paths) => table.add(paths),
                Response::NumberedResult(n) => results.push(table.resolve(n).expect("sent")),
                Response::FileResult(r) => results.push(r),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(table.path(2), Some("f.py"));
        assert_eq!(table.path(5), None, "each path sent once");
        let inputs: Vec<(&str, Vec<&str>)> = (results.iter())
            .map(|r| {
                (
                    r.path.as_str(),
                    r.inputs.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            inputs,
            [
                ("a.py", vec!["b.py", "c.py"]),
                ("d.py", vec![]),
                ("e.py", vec!["c.py", "f.py"]),
                ("i.py", vec!["h.py", "b.py"])
            ]
        );
        let cut = &results[2].findings;
        assert!(cut.len() < 100 && cut.last().is_some_and(|f| f.rule == TRUNCATED_RULE));
    }

    #[test]
    fn a_request_before_hello_is_a_protocol_error() {
        let (result, responses) = session(&[validate("{}")]);
        assert_eq!(
            result.expect_err("out of order").to_string(),
            "unexpected Validate message while waiting for Hello"
        );
        assert!(responses.is_empty());
    }

    #[test]
    fn a_closed_stdin_ends_the_session_quietly() {
        let (result, responses) = session(&[hello(PROTOCOL_VERSION)]);
        result.expect("clean");
        assert_eq!(responses.len(), 1);
    }
}
