//! A complete validator: reports every `TODO` left in Python and Rust files.
use protocol::sdk::{self, Error, Reporter, Validator};
use protocol::{Dimension, FileResult, Finding, Manifest, Scope, Severity, Validate};
use std::process::ExitCode;

struct Todo;

impl Validator for Todo {
    fn manifest(&self) -> Manifest {
        Manifest::new("todo", "1.0.0", Dimension::CodeQuality, Scope::PerFile)
            .with_globs(["**/*.py", "**/*.rs"])
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        for file in &request.files {
            let bytes = std::fs::read(request.path_of(file))?;
            let text = String::from_utf8_lossy(&bytes);
            let findings = (1..)
                .zip(text.lines())
                .filter_map(|(line, content)| {
                    let column = content.find("TODO")?;
                    let column = content[..column].chars().count() as u32 + 1;
                    let message = "unfinished work";
                    Some(Finding::new(
                        &file.path,
                        line,
                        column,
                        "todo",
                        Severity::Warning,
                        message,
                    ))
                })
                .collect();
            let result = FileResult {
                path: file.path.clone(),
                findings,
                modified: false,
            };
            out.file(result)?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    sdk::run(Todo)
}
