//! `orchestrator doctor`: is everything a run needs in place, and if not, what fixes it.
//!
//! Each check gives one line: `ok`, `warn` (works, with a limit worth knowing) or `FAIL`
//! with the command or edit that fixes it. Any FAIL makes the exit status 1, so that the
//! command can gate a CI set-up step.

use crate::cache::{self, commands};
use crate::plan::Workspace;
use crate::select;
use protocol::exit;
use std::fmt::Write;
use std::path::Path;
use validators::tools::{self, TOOLS};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug)]
struct Check {
    level: Level,
    what: String,
    detail: String,
}

fn check(level: Level, what: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        level,
        what: what.into(),
        detail: detail.into(),
    }
}

/// Runs every check in `directory`, prints one line each, and returns the exit status.
pub fn run(directory: Option<&Path>, cache: &cache::Setting) -> u8 {
    let mut checks = Vec::new();
    let workspace = match Workspace::locate(directory, None) {
        Ok(w) => {
            let detail = match &w.config.path {
                Some(path) => format!("{} loads", path.display()),
                None => "no orchestrator.toml; defaults apply (`orchestrator init` writes one)"
                    .to_owned(),
            };
            checks.push(check(Level::Ok, "configuration", detail));
            Some(w)
        }
        Err(e) => {
            checks.push(check(
                Level::Fail,
                "configuration",
                protocol::sdk::error_chain(&e),
            ));
            None
        }
    };
    for spec in &TOOLS {
        let what = format!("tool {}", spec.name);
        checks.push(match spec.locate() {
            None => check(Level::Fail, what, spec.not_installed_message()),
            Some(path) => match spec.version_of(&path) {
                Ok(version) => check(Level::Ok, what, format!("{version} at {}", path.display())),
                Err(e) => check(
                    Level::Fail,
                    what,
                    format!(
                        "{} does not run ({e}); reinstall it: orchestrator tools install {}",
                        path.display(),
                        spec.name
                    ),
                ),
            },
        });
    }
    checks.push(match tools::browser_on_path() {
        Some(path) => check(Level::Ok, "browser", path.display().to_string()),
        None => check(
            Level::Warn,
            "browser",
            format!(
                "none of {} on PATH: the visual and behavioral validators cannot run; install \
                 one: {}",
                tools::BROWSERS.join(", "),
                tools::BROWSER_INSTALL
            ),
        ),
    });
    checks.push(match commands::health(cache) {
        Ok(state) => check(Level::Ok, "cache", state),
        Err(problem) => check(Level::Fail, "cache", problem),
    });
    let remote = workspace
        .as_ref()
        .map(|w| w.config.cache_remote.clone())
        .unwrap_or_default();
    checks.extend(remote_cache(&remote));
    if let Some(w) = &workspace {
        checks.push(git(&w.root));
        validators(&w.root, &mut checks);
    }
    print(&checks)
}

/// The remote cache, when one is configured: whether a run would use it. Its failures only
/// warn, as they cost a run speed, never results.
fn remote_cache(settings: &cache::remote::Settings) -> Option<Check> {
    let what = "remote cache";
    let resolved = match settings.resolve() {
        Ok(None) => return None,
        Ok(Some(resolved)) => resolved,
        Err(warning) => return Some(check(Level::Warn, what, warning)),
    };
    let shown = cache::remote::redact(&resolved.url);
    let read_only = resolved.read_only;
    Some(match cache::remote::Remote::open(resolved) {
        Ok(_) => {
            let mode = if read_only {
                "read-only"
            } else {
                "read and write"
            };
            check(
                Level::Ok,
                what,
                format!("{shown} accepts connections ({mode})"),
            )
        }
        Err(warning) => check(Level::Warn, what, warning),
    })
}

fn git(root: &Path) -> Check {
    match select::git(root, &["--version"]) {
        Err(_) => check(
            Level::Warn,
            "git",
            "not installed: --changed, --staged, --new-since and `hook install` need it",
        ),
        Ok(version) => match crate::worktree::toplevel(root) {
            Some(top) => check(
                Level::Ok,
                "git",
                format!(
                    "{} (work tree {})",
                    String::from_utf8_lossy(&version).trim(),
                    top.display()
                ),
            ),
            None => check(
                Level::Warn,
                "git",
                format!(
                    "{} is not in a git work tree: --changed, --staged and --new-since need one",
                    root.display()
                ),
            ),
        },
    }
}

/// Every discovered validator must answer its handshake.
fn validators(root: &Path, checks: &mut Vec<Check>) {
    for entry in crate::list::collect(root) {
        let what = format!("validator {}", entry.name());
        checks.push(match entry.error() {
            None => check(Level::Ok, what, entry.path()),
            Some(e) => check(
                Level::Fail,
                what,
                format!(
                    "{}: {e}; fix or remove it (see `orchestrator list`)",
                    entry.path()
                ),
            ),
        });
    }
}

fn print(checks: &[Check]) -> u8 {
    let mut out = String::new();
    for c in checks {
        let level = match c.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        let _ = writeln!(out, "{level:<5} {:<22} {}", c.what, c.detail);
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    let _ = match failed {
        0 => writeln!(out, "\neverything needed is in place"),
        n => writeln!(out, "\n{n} problem{} to fix", if n == 1 { "" } else { "s" }),
    };
    match crate::cli::write_stdout(&out) {
        Ok(()) if failed == 0 => exit::CLEAN,
        Ok(()) => exit::FINDINGS,
        Err(_) => exit::USAGE,
    }
}
