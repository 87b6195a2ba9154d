//! `orchestrator init`: a commented `orchestrator.toml` for what the tree holds.
//!
//! Python files turn on ruff, pyright and bandit; HTML pages get the visual and behavioral
//! validators written out commented (they need a browser and baselines, a deliberate step).
//! The artifacts directory, which runs write into, is added to `.gitignore`.

use crate::config;
use crate::plan::DEFAULT_ARTIFACTS_DIR;
use crate::select::{self, Selection};
use protocol::exit;
use std::fmt::Write;
use std::path::Path;

/// Writes the configuration in `root`; refuses to replace one unless `force`.
pub fn run(root: &Path, force: bool) -> u8 {
    let file = root.join(config::FILE_NAME);
    if file.exists() && !force {
        eprintln!(
            "error: {} already exists; edit it, or pass --force to replace it",
            file.display()
        );
        return exit::USAGE;
    }
    let files = match select::select(root, root, &Selection::All, None) {
        Ok(selected) => selected.files,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let count = |extensions: &[&str]| {
        files
            .iter()
            .filter(|f| {
                Path::new(f)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| extensions.contains(&e))
            })
            .count()
    };
    let text = render(count(&["py", "pyi"]), count(&["html", "htm"]));
    if let Err(e) = crate::cli::write_atomically(&file, &text) {
        eprintln!("error: cannot write {}: {e}", file.display());
        return exit::USAGE;
    }
    println!("wrote {}", file.display());
    match ignore_artifacts(root) {
        Ok(true) => println!("added {DEFAULT_ARTIFACTS_DIR}/ to .gitignore"),
        Ok(false) => {}
        Err(e) => eprintln!("warning: cannot update .gitignore: {e}"),
    }
    println!("next: `orchestrator doctor` checks the tools, `orchestrator run --all` runs them");
    exit::CLEAN
}

/// The configuration for a tree with `python` Python files and `html` HTML pages.
fn render(python: usize, html: usize) -> String {
    let mut out = String::from(
        "# orchestrator configuration: see docs/configuration.md for every key.\n\
         # Written by `orchestrator init`.\n\n\
         # Time between SIGTERM and SIGKILL when a validator is stopped.\n\
         # grace_period = \"2s\"\n\n\
         # Report only findings not in this file (`orchestrator baseline save` writes it).\n\
         # baseline = \".orchestrator/baseline.json\"\n\n\
         # Hard time limits per dimension; a validator that keeps talking gets more.\n\
         # [timeouts]\n# type_safety = \"120s\"\n",
    );
    if python > 0 {
        let _ = write!(
            out,
            "\n# {python} Python file{} found.\n\n\
             [validators.ruff]\n\
             # select = [\"E\", \"F\"]      # ruff's own settings also come from ruff.toml / pyproject.toml\n\n\
             [validators.pyright]\n\
             # after = [\"ruff\"]           # type-check once linting is done\n\n\
             [validators.bandit]\n\
             # exclude = [\"tests/**\"]\n",
            if python == 1 { "" } else { "s" }
        );
    } else {
        out.push_str(
            "\n# No Python file found: ruff, pyright and bandit have nothing to check.\n\
             # [validators.ruff]\n",
        );
    }
    let _ = write!(
        out,
        "\n# {html} HTML page{} found. The browser validators need Chromium\n\
         # (`orchestrator doctor` says how to install it) and baselines\n\
         # (`orchestrator run --update-baselines` writes them for review).\n\
         # [validators.visual]\n\
         # files = [\"site/**/*.html\"]\n\
         # viewports = [\"1280x800\", \"390x844\"]\n\
         # [validators.behavioral]\n\
         # console_errors = \"error\"\n",
        if html == 1 { "" } else { "s" }
    );
    out
}

/// Adds the artifacts directory to the root's `.gitignore` when nothing there names it yet;
/// whether it did.
fn ignore_artifacts(root: &Path) -> std::io::Result<bool> {
    let path = root.join(".gitignore");
    let existing = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let entry = format!("/{DEFAULT_ARTIFACTS_DIR}/");
    let named = existing.lines().any(|l| {
        let l = l.trim().trim_start_matches('/').trim_end_matches('/');
        l == DEFAULT_ARTIFACTS_DIR || l == ".orchestrator"
    });
    if named {
        return Ok(false);
    }
    let mut text = existing;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let _ = writeln!(
        text,
        "# orchestrator: images and snapshots of findings\n{entry}"
    );
    std::fs::write(&path, text)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_configuration_loads_and_turns_on_the_python_validators() {
        let text = render(3, 1);
        let config = config::Config::parse(&text, None, None).expect("it loads");
        let names: Vec<&String> = config.validators.keys().collect();
        assert_eq!(names, ["bandit", "pyright", "ruff"]);
        let config = config::Config::parse(&render(0, 0), None, None).expect("it loads");
        assert!(config.validators.is_empty());
    }

    #[test]
    fn the_artifacts_directory_is_ignored_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join(".gitignore"), "target").expect("written");
        assert!(ignore_artifacts(dir.path()).expect("updated"));
        assert!(!ignore_artifacts(dir.path()).expect("read"));
        let text = std::fs::read_to_string(dir.path().join(".gitignore")).expect("read");
        assert!(text.starts_with("target\n# orchestrator"), "{text}");
        assert_eq!(text.matches(".orchestrator/artifacts").count(), 1);
    }
}
