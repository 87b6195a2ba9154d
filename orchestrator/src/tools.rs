//! `orchestrator tools`: install the pinned versions of the wrapped tools into the managed
//! directory, and show what is installed where.
//!
//! Python tools go into one venv made with the `python3` on `PATH`, pyright into one npm prefix;
//! both from their registries, nothing else is downloaded. Pins come from `[tools]` in
//! `orchestrator.toml`, else the defaults compiled into the validators.

use crate::config::Config;
use protocol::exit;
use std::path::Path;
use std::process::Command;
use validators::tools::{tools_dir, Source, ToolSpec, TOOLS};

/// The version to install of `spec`.
fn pin<'a>(config: &'a Config, spec: &'a ToolSpec) -> &'a str {
    config
        .tools
        .get(spec.name)
        .map_or(spec.default_version, String::as_str)
}

/// Installs `names` (every tool when empty); returns the exit code.
pub fn install(config: &Config, names: &[String]) -> u8 {
    if let Some(unknown) = names.iter().find(|n| validators::tools::spec(n).is_none()) {
        let known: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
        eprintln!(
            "error: unknown tool `{unknown}`; the managed tools are {}",
            known.join(", ")
        );
        return exit::USAGE;
    }
    let chosen: Vec<&ToolSpec> = TOOLS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .collect();
    let dir = tools_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!(
            "error: cannot create the tools directory {}: {e}",
            dir.display()
        );
        return exit::USAGE;
    }
    let pip: Vec<String> = chosen
        .iter()
        .filter(|t| t.source == Source::Pip)
        .map(|t| format!("{}=={}", t.name, pin(config, t)))
        .collect();
    let npm: Vec<String> = chosen
        .iter()
        .filter(|t| t.source == Source::Npm)
        .map(|t| format!("{}@{}", t.name, pin(config, t)))
        .collect();
    let venv = dir.join("venv");
    let mut steps: Vec<(String, Command)> = Vec::new();
    if !pip.is_empty() {
        if !venv.join("bin/pip").is_file() {
            let mut c = Command::new("python3");
            c.args(["-m", "venv"]).arg(&venv);
            steps.push(("create the Python venv (needs python3 with venv)".into(), c));
        }
        let mut c = Command::new(venv.join("bin/pip"));
        c.args(["install", "--disable-pip-version-check", "--quiet"])
            .args(&pip);
        steps.push((format!("pip install {}", pip.join(" ")), c));
    }
    if !npm.is_empty() {
        let mut c = Command::new("npm");
        c.args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(dir.join("npm"))
            .args(&npm);
        steps.push((
            format!("npm install {} (needs node and npm)", npm.join(" ")),
            c,
        ));
    }
    for (what, mut command) in steps {
        eprintln!("orchestrator: {what}");
        match command.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("error: could not {what}: {status}");
                return exit::INCOMPLETE;
            }
            Err(e) => {
                eprintln!("error: could not {what}: {e}");
                return exit::INCOMPLETE;
            }
        }
    }
    print!("{}", describe(config, &dir));
    exit::CLEAN
}

/// Every tool: its pin, the managed install, and what would run.
pub fn list(config: &Config) -> String {
    describe(config, &tools_dir())
}

fn describe(config: &Config, dir: &Path) -> String {
    let mut out = format!("managed tools directory: {}\n", dir.display());
    out.push_str(&format!(
        "{:<8} {:<10} {:<28} {}\n",
        "tool", "pinned", "installed", "runs"
    ));
    for spec in &TOOLS {
        let managed = spec.managed_path(dir);
        let installed = if managed.is_file() {
            spec.version_of(&managed)
                .unwrap_or_else(|e| format!("broken: {e}"))
        } else {
            "not installed".to_owned()
        };
        let runs = match spec.locate() {
            Some(path) => {
                let version = spec.version_of(&path).unwrap_or_else(|_| "?".into());
                format!("{} ({version})", path.display())
            }
            None => "nothing: run `orchestrator tools install`".to_owned(),
        };
        out.push_str(&format!(
            "{:<8} {:<10} {:<28} {runs}\n",
            spec.name,
            pin(config, spec),
            installed
        ));
    }
    out
}
