//! `orchestrator list`: every discovered validator, what it says about itself, and which
//! executables are shadowed by others of the same name.

use crate::discovery::{self, Discovered};
use crate::session::{Deadline, Launch, Session};
use crate::verdict::Limit;
use protocol::sdk::error_chain;
use protocol::{exit, Hello, Manifest, ProtocolError, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VERSION};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// How long a validator may take to answer its handshake here.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One discovered validator.
#[derive(Debug, Serialize)]
pub struct Entry {
    name: String,
    path: String,
    shadowed: Vec<String>,
    manifest: Option<Manifest>,
    error: Option<String>,
}

/// Every discovered validator, asked for its manifest in `root`.
pub fn collect(root: &Path) -> Vec<Entry> {
    let found = discovery::discover_all();
    crate::process::become_subreaper();
    let entries = crate::runtime().block_on(async {
        let tasks: Vec<_> = found
            .into_iter()
            .map(|d| {
                let root = root.to_owned();
                tokio::spawn(async move { entry(d, &root).await })
            })
            .collect();
        let mut entries = Vec::new();
        for t in tasks {
            if let Ok(e) = t.await {
                entries.push(e);
            }
        }
        entries
    });
    crate::process::sweep_descendants(Duration::from_secs(5));
    entries
}

impl Entry {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why its handshake failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// The exit status of `orchestrator list`: 1 when a validator did not answer its handshake,
/// as a check that every validator works.
pub fn exit_code(entries: &[Entry]) -> u8 {
    if entries.iter().any(|e| e.error.is_some()) {
        exit::FINDINGS
    } else {
        exit::CLEAN
    }
}

/// The entries as JSON.
pub fn render_json(entries: &[Entry]) -> String {
    serde_json::to_string_pretty(entries).expect("entries serialise") + "\n"
}

async fn entry(d: Discovered, root: &Path) -> Entry {
    let launch = Launch {
        program: d.path.clone(),
        args: d.args.clone(),
    };
    let (manifest, error) = match manifest(&launch, root, &d.name).await {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e)),
    };
    let path = if d.args.is_empty() {
        d.path.display().to_string()
    } else {
        format!("(built in) {}", d.path.display())
    };
    Entry {
        name: d.name,
        path,
        shadowed: d.shadowed.iter().map(|p| p.display().to_string()).collect(),
        manifest,
        error,
    }
}

async fn manifest(launch: &Launch, root: &Path, name: &str) -> Result<Manifest, String> {
    let mut session = Session::spawn(launch, root, DEFAULT_MAX_FRAME_SIZE)
        .map_err(|e| format!("could not be started: {e}"))?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        coordinator_version: env!("CARGO_PKG_VERSION").to_owned(),
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
    };
    let deadline = Deadline {
        at: tokio::time::Instant::now() + MANIFEST_TIMEOUT,
        limit: Limit::Total(MANIFEST_TIMEOUT),
    };
    let result = session.handshake(hello, deadline).await;
    session.finish(Duration::from_secs(1)).await;
    let manifest =
        result.map_err(|e| format!("did not answer its handshake: {}", error_chain(&e)))?;
    if manifest.name != name {
        let e = ProtocolError::NameMismatch {
            manifest: manifest.name,
            executable: name.to_owned(),
        };
        return Err(format!("broke the protocol: {e}"));
    }
    Ok(manifest)
}

/// The entries as a table for people.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    if entries.is_empty() {
        out.push_str(
            "no validators found: put validator-NAME executables beside orchestrator or on PATH\n",
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<14} {:<10} {:<20} {:<13} {:<9} path",
        "name", "version", "tool", "dimension", "scope"
    );
    for e in entries {
        match (&e.manifest, &e.error) {
            (Some(m), _) => {
                let tool = m
                    .tool
                    .as_ref()
                    .map_or_else(|| "-".to_owned(), |t| format!("{} {}", t.name, t.version));
                let _ = writeln!(
                    out,
                    "{:<14} {:<10} {:<20} {:<13} {:<9} {}",
                    e.name,
                    m.version,
                    tool,
                    m.dimension.as_str(),
                    m.scope.as_str(),
                    e.path
                );
            }
            (None, error) => {
                let _ = writeln!(
                    out,
                    "{:<14} FAILED: {} ({})",
                    e.name,
                    error.as_deref().unwrap_or("unknown error"),
                    e.path
                );
            }
        }
        for s in &e.shadowed {
            let _ = writeln!(out, "{:<14}   shadowed: {s}", "");
        }
    }
    out
}
