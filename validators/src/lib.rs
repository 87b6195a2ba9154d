//! The built-in validators: wrappers around ruff, pyright and bandit that map every result of
//! the tool, faithfully, to protocol findings; and the managed installs of those tools.
//!
//! Each wrapper is a [`protocol::sdk::Validator`]; `src/bin/` makes each one an executable,
//! and the coordinator also carries them inside its own binary (see [`run_builtin`]), so a
//! freshly built `orchestrator` finds them without any installation step.

pub mod bandit;
mod environment;
mod extended;
mod imports;
mod named;
mod node_heap;
mod outside;
mod overlay;
pub mod pyright;
mod pyright_batches;
mod pyright_config;
pub mod ruff;
mod ruff_config;
pub mod settings;
pub mod tools;
mod wrapper;

use std::process::ExitCode;

/// Names of the built-in validators.
pub const BUILTIN: [&str; 3] = ["bandit", "pyright", "ruff"];

/// Runs the built-in validator `name` with `args` as its command line (none: serve a session
/// on stdin/stdout); `None` if there is no such built-in.
pub fn run_builtin(name: &str, args: Vec<String>) -> Option<ExitCode> {
    use protocol::sdk::run_with_args;
    Some(match name {
        "bandit" => run_with_args(bandit::Bandit::default(), args),
        "pyright" => run_with_args(pyright::Pyright::default(), args),
        "ruff" => run_with_args(ruff::Ruff::default(), args),
        _ => return None,
    })
}

/// Test support: a temporary directory holding `files` (paths relative to it), each with
/// `contents`.
#[cfg(test)]
fn tree(files: &[&str], contents: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for file in files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, contents).expect("write");
    }
    dir
}
