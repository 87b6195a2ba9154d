//! Every type that crosses the pipe between coordinator and validator.
//!
//! These are dedicated wire types: fixed-width integers only (no `usize`, no `char`), no hash
//! maps, no serde attributes that would change the layout. Field order is the byte order on the
//! wire, so reordering fields is a protocol change (bump [`crate::PROTOCOL_VERSION`]).
//! `docs/protocol.md` documents each type byte by byte; its test vectors are checked against
//! this file.

use bincode::{Decode, Encode};
use serde::Serialize;
use std::fmt;

/// A message from the coordinator to a validator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[non_exhaustive]
pub enum Request {
    /// First message of every session. The validator answers with [`Response::Manifest`].
    Hello(Hello),
    /// Check these files. Answered by a stream ending in [`Response::Done`] or
    /// [`Response::Failed`].
    Validate(Validate),
    /// End of the session. The validator exits with status 0 without answering.
    Shutdown,
}

impl Request {
    /// The message's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello(_) => "Hello",
            Request::Validate(_) => "Validate",
            Request::Shutdown => "Shutdown",
        }
    }
}

/// A message from a validator to the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
#[non_exhaustive]
pub enum Response {
    /// Answer to [`Request::Hello`]: who the validator is and what it checks.
    Manifest(Manifest),
    /// How far the current request has got; informational.
    Progress(Progress),
    /// Every finding of one file. A file is finished once its result is sent, so it survives a
    /// later crash or kill of the validator.
    FileResult(FileResult),
    /// A line for the coordinator's log.
    Log(Log),
    /// The current request completed; files without a [`FileResult`] have no findings.
    Done,
    /// The current request could not be completed (the wrapped tool crashed, say), or the
    /// handshake was refused. The validator may still accept another request.
    Failed(Failed),
    /// Input paths that later [`Response::NumberedResult`]s of the current request name by
    /// number: numbered from 0 in the order sent, over every `InputPaths` of the request.
    InputPaths(Vec<String>),
    /// A [`Response::FileResult`] whose inputs are numbers of paths sent before in
    /// [`Response::InputPaths`]: a module's result lists a thousand of them, most shared
    /// with the results before it, so each path crosses the pipe once a request.
    NumberedResult(NumberedResult),
}

impl Response {
    /// The message's name, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Response::Manifest(_) => "Manifest",
            Response::Progress(_) => "Progress",
            Response::FileResult(_) => "FileResult",
            Response::Log(_) => "Log",
            Response::Done => "Done",
            Response::Failed(_) => "Failed",
            Response::InputPaths(_) => "InputPaths",
            Response::NumberedResult(_) => "NumberedResult",
        }
    }
}

/// Opens a session.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Hello {
    /// The coordinator's [`crate::PROTOCOL_VERSION`].
    pub protocol_version: u32,
    /// The coordinator's own version, for the validator's logs.
    pub coordinator_version: String,
    /// Largest frame payload, in bytes, that either side may send in this session.
    pub max_frame_size: u32,
}

/// What a validator is and how to run it.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct Manifest {
    /// The validator's [`crate::PROTOCOL_VERSION`]; must equal the coordinator's.
    pub protocol_version: u32,
    /// Short name; the executable is `validator-NAME`.
    pub name: String,
    /// The validator's own version. Part of every cache key.
    pub version: String,
    /// Which timeout and report section applies.
    pub dimension: Dimension,
    /// The wrapped tool, if any, with its exact version. Part of every cache key.
    pub tool: Option<Tool>,
    /// Whether a file's result depends on that file alone.
    pub scope: Scope,
    /// Files checked by default, as globs relative to the root (`**/*.py`).
    pub globs: Vec<String>,
    /// Files whose contents change results (`pyproject.toml`), relative to the root.
    pub config_files: Vec<String>,
    /// Whether the validator can apply fixes when asked.
    pub can_fix: bool,
    /// How long a run may take before the coordinator should give up, in milliseconds.
    pub suggested_timeout_ms: Option<u64>,
    /// For `per_file` validators whose tool is single-threaded: split work into requests of at
    /// most this many files, run in parallel processes.
    pub batch_size: Option<u32>,
}

/// The aspect of a change a validator judges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode, Serialize)]
#[serde(into = "String")]
#[non_exhaustive]
pub enum Dimension {
    CodeQuality,
    TypeSafety,
    Security,
    Visual,
    Behavioral,
    /// Any other dimension, by name.
    Other(String),
}

impl Dimension {
    /// The snake_case name used in configuration and reports.
    pub fn as_str(&self) -> &str {
        match self {
            Dimension::CodeQuality => "code_quality",
            Dimension::TypeSafety => "type_safety",
            Dimension::Security => "security",
            Dimension::Visual => "visual",
            Dimension::Behavioral => "behavioral",
            Dimension::Other(name) => name,
        }
    }

    /// Parses a name; names outside the known set become [`Dimension::Other`].
    pub fn from_name(name: &str) -> Dimension {
        match name {
            "code_quality" => Dimension::CodeQuality,
            "type_safety" => Dimension::TypeSafety,
            "security" => Dimension::Security,
            "visual" => Dimension::Visual,
            "behavioral" => Dimension::Behavioral,
            other => Dimension::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Dimension> for String {
    fn from(d: Dimension) -> String {
        d.as_str().to_owned()
    }
}

/// The tool a validator wraps.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode, Serialize)]
pub struct Tool {
    pub name: String,
    /// Exact version as the tool reports it.
    pub version: String,
}

/// What a file's result depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Scope {
    /// A file's result depends only on that file and the configuration: files may be checked in
    /// any grouping, and cached one by one.
    PerFile,
    /// Results depend on the whole input set: one request with every selected file.
    Project,
}

impl Scope {
    /// The snake_case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::PerFile => "per_file",
            Scope::Project => "project",
        }
    }
}

/// Check files.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Validate {
    /// Absolute path of the repository root; file paths are relative to it.
    pub root: String,
    /// The files to check.
    pub files: Vec<FileInput>,
    /// The validator's configuration table, as a JSON object (`{}` when empty).
    pub config_json: String,
    /// Whether the validator may modify files to fix findings.
    pub fix: bool,
    /// Whether validators that compare with baselines (screenshots, DOM snapshots) should
    /// write them, new and changed, instead of reporting differences. Without it a validator
    /// never modifies a baseline.
    pub update_baselines: bool,
    /// Absolute path of the directory where the validator may write artifacts of its findings
    /// (expected, actual and diff images, say); created by the validator when it needs it.
    pub artifacts_dir: String,
}

/// One file to check.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct FileInput {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// BLAKE3 hash of the file's contents as the coordinator read them.
    pub content_hash: [u8; 32],
}

/// How far a request has got.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Progress {
    pub files_done: u32,
    pub files_total: u32,
    /// What is happening now, for people; may be empty.
    pub message: String,
}

/// All findings of one file.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct FileResult {
    /// Relative to the root, `/`-separated; every finding carries the same path.
    pub path: String,
    pub findings: Vec<Finding>,
    /// Whether the validator changed the file (fix mode only).
    pub modified: bool,
    /// Other files (relative to the root, `/`-separated) whose contents this result depended
    /// on: the stylesheets and scripts a page loaded, its baseline, a module it imports. The
    /// coordinator serves the cached result only while each of them is unchanged (or still
    /// absent).
    pub inputs: Vec<String>,
    /// Baselines written for this file (relative to the root) when `update_baselines` was asked.
    pub baselines_written: Vec<String>,
}

/// Every finding of one file, its inputs named by number.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct NumberedResult {
    /// The result, its `inputs` empty.
    pub result: FileResult,
    /// The numbers, in the request's [`Response::InputPaths`], of the files the result
    /// depended on (what [`FileResult::inputs`] would list).
    pub inputs: Vec<u32>,
}

/// One problem found in one place.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Finding {
    /// Relative to the root, `/`-separated.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// 1-based, in characters.
    pub column: u32,
    pub end_line: Option<u32>,
    pub end_column: Option<u32>,
    /// The tool's own rule id (`F401`, `reportAttributeAccessIssue`, `B602`).
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    pub help_url: Option<String>,
    pub fix: Option<Fix>,
    /// Files written to explain the finding (expected, actual and diff images).
    pub artifacts: Vec<Artifact>,
}

/// A file written to explain a finding.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Artifact {
    /// What the file is: `expected`, `actual`, `diff`, or another short word.
    pub kind: String,
    /// Relative to the root when under it, else absolute.
    pub path: String,
}

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Error, Severity::Warning, Severity::Info];

    /// The severity a report names, by [`Severity::as_str`].
    pub fn named(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The lowercase name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// A suggested change that resolves a finding.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Fix {
    /// What the fix does, for people.
    pub description: String,
    pub edits: Vec<TextEdit>,
}

/// Replace the text between two positions (1-based, end exclusive) with `replacement`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct TextEdit {
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub end_column: u32,
    pub replacement: String,
}

/// A line for the coordinator's log.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Log {
    pub level: LogLevel,
    pub message: String,
}

/// Importance of a [`Log`] line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// Why a request or handshake could not be completed.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Failed {
    pub kind: FailureKind,
    /// One line for people, with the cause (the tool's own message where there is one) and,
    /// where there is one, the fix.
    pub message: String,
}

/// What kind of failure a [`Failed`] reports; the coordinator maps it to a report status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
#[non_exhaustive]
pub enum FailureKind {
    /// The validator or its tool broke (crashed, printed something unreadable).
    Error,
    /// The wrapped tool is not installed; the message says how to install it.
    NotInstalled,
    /// The validator's configuration (`Validate.config_json`) has a key it does not know or a
    /// value it cannot use; the message names the key and the fix. A user's mistake, not a
    /// crash: the coordinator reports `config_error` and the run exits with status 2.
    Config,
    /// The request failed for a reason that may pass: a browser that crashed, a service the
    /// validator needs that did not answer. The coordinator reports it as `crashed` and may run
    /// the files without a result again (`retries`).
    Transient,
}

impl Manifest {
    /// A manifest for this protocol version with no tool, globs or config files, no fixing and
    /// no suggested timeout; add those with the `with_*` methods.
    pub fn new(
        name: impl Into<String>,
        version: impl Into<String>,
        dimension: Dimension,
        scope: Scope,
    ) -> Manifest {
        Manifest {
            protocol_version: crate::PROTOCOL_VERSION,
            name: name.into(),
            version: version.into(),
            dimension,
            tool: None,
            scope,
            globs: Vec::new(),
            config_files: Vec::new(),
            can_fix: false,
            suggested_timeout_ms: None,
            batch_size: None,
        }
    }

    /// Sets the files checked by default.
    pub fn with_globs<S: Into<String>>(mut self, globs: impl IntoIterator<Item = S>) -> Self {
        self.globs = globs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the files whose contents change results.
    pub fn with_config_files<S: Into<String>>(
        mut self,
        files: impl IntoIterator<Item = S>,
    ) -> Self {
        self.config_files = files.into_iter().map(Into::into).collect();
        self
    }

    /// Names the wrapped tool and its exact version.
    pub fn with_tool(mut self, name: impl Into<String>, version: impl Into<String>) -> Self {
        self.tool = Some(Tool {
            name: name.into(),
            version: version.into(),
        });
        self
    }
}

impl Validate {
    /// Where a requested file is on disk.
    pub fn path_of(&self, file: &FileInput) -> std::path::PathBuf {
        std::path::Path::new(&self.root).join(&file.path)
    }
}

impl Finding {
    /// A finding at one position, without end position, help URL or fix.
    pub fn new(
        path: impl Into<String>,
        line: u32,
        column: u32,
        rule: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            path: path.into(),
            line,
            column,
            end_line: None,
            end_column: None,
            rule: rule.into(),
            severity,
            message: message.into(),
            help_url: None,
            fix: None,
            artifacts: Vec::new(),
        }
    }
}

impl FileResult {
    /// The result of a file with these findings, no inputs beyond the file itself, nothing
    /// modified and no baseline written.
    pub fn new(path: impl Into<String>, findings: Vec<Finding>) -> FileResult {
        FileResult {
            path: path.into(),
            findings,
            modified: false,
            inputs: Vec::new(),
            baselines_written: Vec::new(),
        }
    }
}
