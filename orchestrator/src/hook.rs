//! `orchestrator hook install|uninstall`: the git pre-commit hook that runs `run --staged`.
//!
//! The hook is found where git looks for it (`git rev-parse --git-path hooks`, which honours
//! `core.hooksPath`). A hook someone else wrote is never replaced silently: `--force` replaces
//! it and keeps it beside as `pre-commit.orig`.

use crate::select;
use protocol::exit;
use std::path::{Path, PathBuf};

/// The line that marks a hook as ours.
const MARKER: &str = "# installed by `orchestrator hook install`";

/// The hook script: `orchestrator` from PATH when there is one, else the binary that wrote it.
fn script(fallback: &Path) -> String {
    let fallback = fallback.display().to_string().replace('\'', "'\\''");
    format!(
        "#!/bin/sh\n{MARKER}; `orchestrator hook uninstall` removes it.\n\
         # Checks what is staged, as staged; the working tree is never touched.\n\
         if command -v orchestrator >/dev/null 2>&1; then\n  \
         exec orchestrator run --staged \"$@\"\nfi\nexec '{fallback}' run --staged \"$@\"\n"
    )
}

fn hook_path(root: &Path) -> Result<PathBuf, String> {
    if crate::worktree::toplevel(root).is_none() {
        return Err(format!(
            "{} is not in a git work tree; run `git init` first",
            root.display()
        ));
    }
    let out =
        select::git(root, &["rev-parse", "--git-path", "hooks"]).map_err(|e| e.to_string())?;
    let hooks = String::from_utf8_lossy(&out).trim_end().to_owned();
    Ok(root.join(hooks).join("pre-commit"))
}

fn ours(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text.contains(MARKER))
}

/// Writes the hook; a foreign one is kept as `pre-commit.orig` with `force`, else refused.
pub fn install(root: &Path, force: bool) -> u8 {
    let result = hook_path(root).and_then(|path| {
        if path.exists() && !ours(&path) {
            if !force {
                return Err(format!(
                    "{} exists and was not written by orchestrator; add `orchestrator run \
                     --staged` to it, or pass --force to replace it (it is kept as \
                     pre-commit.orig)",
                    path.display()
                ));
            }
            std::fs::rename(&path, path.with_extension("orig"))
                .map_err(|e| format!("cannot keep {}: {e}", path.display()))?;
        }
        let me = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("orchestrator"));
        write_executable(&path, &script(&me))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    });
    match result {
        Ok(path) => {
            println!(
                "installed {}: each commit runs `orchestrator run --staged`",
                path.display()
            );
            exit::CLEAN
        }
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// Removes the hook if it is ours, putting back a kept `pre-commit.orig`.
pub fn uninstall(root: &Path) -> u8 {
    let path = match hook_path(root) {
        Ok(path) => path,
        Err(message) => {
            eprintln!("error: {message}");
            return exit::USAGE;
        }
    };
    if !path.exists() {
        println!("no pre-commit hook at {}", path.display());
        return exit::CLEAN;
    }
    if !ours(&path) {
        eprintln!(
            "error: {} was not written by orchestrator; left as it is",
            path.display()
        );
        return exit::USAGE;
    }
    let kept = path.with_extension("orig");
    let removed = std::fs::remove_file(&path).and_then(|()| match kept.exists() {
        true => std::fs::rename(&kept, &path),
        false => Ok(()),
    });
    match removed {
        Ok(()) => {
            println!("removed {}", path.display());
            exit::CLEAN
        }
        Err(e) => {
            eprintln!("error: cannot remove {}: {e}", path.display());
            exit::USAGE
        }
    }
}

fn write_executable(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::cli::write_atomically(path, text)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}
