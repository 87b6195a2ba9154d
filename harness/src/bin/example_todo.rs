//! A complete validator: reports every `TODO` left in Python and Rust files.
use protocol::sdk::{self, Error, Reporter, Validator};
use protocol::{Dimension, FileResult, Finding, Manifest, Scope, Severity::Warning, Validate};

struct Todo;

impl Validator for Todo {
    fn manifest(&self) -> Manifest {
        Manifest::new("todo", "1.0.0", Dimension::CodeQuality, Scope::PerFile)
            .with_globs(["**/*.py", "**/*.rs"])
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        for file in &request.files {
            let bytes = std::fs::read(request.path_of(file)).unwrap_or_default();
            let mut findings = Vec::new();
            for (line, text) in (1..).zip(String::from_utf8_lossy(&bytes).lines()) {
                if let Some(at) = text.find("TODO") {
                    let column = text[..at].chars().count() as u32 + 1;
                    let message = "unfinished work";
                    findings.push(Finding::new(
                        &file.path, line, column, "todo", Warning, message,
                    ));
                }
            }
            out.file(FileResult::new(&file.path, findings))?;
        }
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    sdk::run(Todo)
}
