//! What the three tool wrappers share: finding the tool, running it, and turning its findings
//! into one `FileResult` per requested file.

use crate::tools::{self, ToolSpec};
use protocol::sdk::{Error, Reporter};
use protocol::{FileInput, FileResult, Finding, Manifest, Validate};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A wrapped tool as found at start-up.
#[derive(Debug, Clone)]
pub struct Located {
    pub spec: ToolSpec,
    /// The executable and its exact version, or why there is none.
    found: Result<(PathBuf, String), Missing>,
}

#[derive(Debug, Clone)]
enum Missing {
    NotInstalled,
    Broken(String),
}

impl Located {
    /// Looks for the tool named `name` (one of [`tools::TOOLS`]).
    pub fn find(name: &str) -> Located {
        let spec = tools::spec(name).expect("wrappers only wrap managed tools");
        let found = match spec.locate() {
            None => Err(Missing::NotInstalled),
            Some(path) => match spec.version_of(&path) {
                Ok(version) => Ok((path, version)),
                Err(why) => Err(Missing::Broken(why)),
            },
        };
        Located { spec, found }
    }

    /// Adds the tool and its version to a manifest, when it was found.
    pub fn describe(&self, manifest: Manifest) -> Manifest {
        match &self.found {
            Ok((_, version)) => manifest.with_tool(self.spec.name, version),
            Err(_) => manifest,
        }
    }

    /// The executable, or the failure that explains its absence.
    pub fn executable(&self) -> Result<&Path, Error> {
        match &self.found {
            Ok((path, _)) => Ok(path),
            Err(Missing::NotInstalled) => {
                Err(Error::NotInstalled(self.spec.not_installed_message()))
            }
            Err(Missing::Broken(why)) => Err(Error::failed(why.clone())),
        }
    }
}

/// Runs a tool in `root` and collects its output.
pub fn run(executable: &Path, args: &[String], root: &str) -> Result<Output, Error> {
    Command::new(executable)
        .args(args)
        .current_dir(root)
        .output()
        .map_err(|e| Error::failed(format!("cannot run {}: {e}", executable.display())))
}

/// A tool failure with the tool's own words: the last lines of its stderr (or stdout).
pub fn tool_failed(tool: &str, output: &Output, what: &str) -> Error {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let words = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let tail: Vec<&str> = words.trim().lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Error::failed(format!(
        "{tool} {what} ({}): {}",
        output.status,
        if tail.is_empty() {
            "no output".to_owned()
        } else {
            tail.join(" | ")
        }
    ))
}

/// The requested files that still exist (a file can be deleted between selection and run;
/// some tools treat a missing path as a fatal error).
pub fn existing(request: &Validate) -> Vec<&FileInput> {
    request
        .files
        .iter()
        .filter(|f| request.path_of(f).is_file())
        .collect()
}

/// A path a tool printed, relative to the root and `/`-separated; `None` when outside it.
pub fn relative(root: &str, printed: &str) -> Option<String> {
    let path = Path::new(printed);
    let relative = if path.is_absolute() {
        let root = Path::new(root);
        path.strip_prefix(root)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                let canonical = root.canonicalize().ok()?;
                path.strip_prefix(canonical).ok().map(Path::to_path_buf)
            })?
    } else {
        path.strip_prefix("./").unwrap_or(path).to_path_buf()
    };
    relative.to_str().map(|s| s.replace('\\', "/"))
}

/// Sends one `FileResult` per requested file, in request order, with the findings that belong
/// to it (files without findings get an empty result, which marks them finished). Findings for
/// paths that were not requested are dropped with a log line. In fix mode, a file whose
/// contents no longer match the request's hash is reported as modified.
pub fn report(
    request: &Validate,
    findings: Vec<Finding>,
    out: &mut Reporter<'_>,
) -> Result<(), Error> {
    let mut by_path: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
    for finding in findings {
        by_path
            .entry(finding.path.clone())
            .or_default()
            .push(finding);
    }
    for file in &request.files {
        let mut findings = by_path.remove(&file.path).unwrap_or_default();
        findings.sort_by(|a, b| (a.line, a.column, &a.rule).cmp(&(b.line, b.column, &b.rule)));
        let modified = request.fix && changed(request, file);
        out.file(FileResult {
            path: file.path.clone(),
            findings,
            modified,
        })?;
    }
    for path in by_path.keys() {
        out.log(
            protocol::LogLevel::Debug,
            format!("dropped findings for unrequested file {path}"),
        )?;
    }
    Ok(())
}

fn changed(request: &Validate, file: &FileInput) -> bool {
    let Ok(mut f) = std::fs::File::open(request.path_of(file)) else {
        return true;
    };
    let mut hasher = blake3::Hasher::new();
    match hasher.update_reader(&mut f) {
        Ok(_) => *hasher.finalize().as_bytes() != file.content_hash,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_paths_become_root_relative() {
        assert_eq!(relative("/r", "/r/src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "./src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "src/a.py").as_deref(), Some("src/a.py"));
        assert_eq!(relative("/r", "/elsewhere/a.py"), None);
    }
}
