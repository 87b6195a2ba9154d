//! `orchestrator list`: every discovered validator, what it says about itself, and which
//! executables are shadowed by others of the same name.

use crate::discovery::{self, Discovered};
use crate::plan::Workspace;
use crate::session::{Launch, Session};
use protocol::{exit, Hello, Manifest, DEFAULT_MAX_FRAME_SIZE, PROTOCOL_VERSION};
use serde::Serialize;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// How long a validator may take to answer its handshake here.
const MANIFEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize)]
struct Entry {
    name: String,
    path: String,
    shadowed: Vec<String>,
    manifest: Option<Manifest>,
    error: Option<String>,
}

/// Lists validators; returns the exit code.
pub fn run(directory: Option<&Path>, as_json: bool) -> u8 {
    let workspace = match Workspace::locate(directory, None) {
        Ok(w) => w,
        Err(e) => return crate::cli::usage_error(&e),
    };
    let found = discovery::discover_all();
    crate::process::become_subreaper();
    let entries = crate::cli::runtime().block_on(async {
        let mut tasks = Vec::new();
        for d in found {
            let root = workspace.root.clone();
            tasks.push(tokio::spawn(async move { entry(d, &root).await }));
        }
        let mut entries = Vec::new();
        for t in tasks {
            if let Ok(e) = t.await {
                entries.push(e);
            }
        }
        entries
    });
    crate::process::sweep_descendants(Duration::from_secs(5));
    let text = if as_json {
        serde_json::to_string_pretty(&entries).expect("entries serialise") + "\n"
    } else {
        render(&entries)
    };
    match crate::cli::write_stdout(&text) {
        Ok(()) => exit::CLEAN,
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

async fn entry(d: Discovered, root: &Path) -> Entry {
    let launch = Launch {
        program: d.path.clone(),
        args: d.args.clone(),
    };
    let (manifest, error) = match manifest(&launch, root).await {
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

async fn manifest(launch: &Launch, root: &Path) -> Result<Manifest, String> {
    let mut session = Session::spawn(launch, root, DEFAULT_MAX_FRAME_SIZE)
        .map_err(|e| format!("could not be started: {e}"))?;
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        coordinator_version: env!("CARGO_PKG_VERSION").to_owned(),
        max_frame_size: DEFAULT_MAX_FRAME_SIZE,
    };
    let deadline = tokio::time::Instant::now() + MANIFEST_TIMEOUT;
    let result = session.handshake(hello, deadline).await;
    session.finish(Duration::from_secs(1)).await;
    result.map_err(|e| {
        format!(
            "did not answer its handshake: {}",
            protocol::sdk::error_chain(&e)
        )
    })
}

fn render(entries: &[Entry]) -> String {
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
