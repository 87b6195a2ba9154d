//! Whole protocol exchanges, Hello to Shutdown, between the Rust side and validators that are
//! not the coordinator's own code: the Python one written from the document alone, and the
//! SDK example from `docs/writing-a-validator.md`.

use harness::{binary, python_validator, Exchange, Repo};
use protocol::{
    Dimension, FailureKind, FileInput, FileResult, Hello, Request, Response, Scope, Severity,
    Validate, PROTOCOL_VERSION,
};

fn hello(version: u32) -> Request {
    Request::Hello(Hello {
        protocol_version: version,
        coordinator_version: "test".into(),
        max_frame_size: protocol::DEFAULT_MAX_FRAME_SIZE,
    })
}

fn validate(repo: &Repo, files: &[&str]) -> Request {
    Request::Validate(Validate {
        root: repo.root().display().to_string(),
        files: files
            .iter()
            .map(|f| FileInput {
                path: (*f).into(),
                content_hash: [7; 32],
            })
            .collect(),
        config_json: "{}".into(),
        fix: false,
        update_baselines: false,
        artifacts_dir: repo.root().join("artifacts").display().to_string(),
    })
}

/// Runs Hello, one Validate and Shutdown; returns the manifest name, the file results and the
/// exit code.
fn whole_exchange(
    program: &std::path::Path,
    repo: &Repo,
    files: &[&str],
) -> (protocol::Manifest, Vec<FileResult>, Option<i32>) {
    let mut x = Exchange::start(program, repo.root());
    x.send(&hello(PROTOCOL_VERSION));
    let Response::Manifest(manifest) = x.receive() else {
        panic!("a manifest answers Hello");
    };
    x.send(&validate(repo, files));
    let results = x.results();
    x.send(&Request::Shutdown);
    (manifest, results, x.wait())
}

#[test]
fn the_python_validator_completes_a_whole_exchange() {
    let repo = Repo::new();
    repo.write("a.py", "x = 1   \n\ty = 2\n")
        .write("b.py", "clean\n");
    let (manifest, results, code) = whole_exchange(&python_validator(), &repo, &["a.py", "b.py"]);
    assert_eq!(manifest.name, "pyspaces");
    assert_eq!(manifest.dimension, Dimension::CodeQuality);
    assert_eq!(manifest.scope, Scope::PerFile);
    assert_eq!(code, Some(0));
    assert_eq!(results.len(), 2);
    let a = &results[0].findings;
    assert_eq!(a.len(), 2);
    assert_eq!((a[0].line, a[0].column, a[0].end_column), (1, 6, Some(9)));
    assert_eq!(a[0].rule, "trailing-whitespace");
    assert_eq!(a[0].severity, Severity::Warning);
    assert_eq!((a[1].line, a[1].rule.as_str()), (2, "tab-indent"));
    assert!(results[1].findings.is_empty());
}

#[test]
fn the_python_validator_refuses_another_protocol_version_naming_both() {
    let repo = Repo::new();
    let mut x = Exchange::start(&python_validator(), repo.root());
    x.send(&hello(PROTOCOL_VERSION + 1));
    let Response::Failed(failed) = x.receive() else {
        panic!("a version mismatch is refused");
    };
    assert_eq!(failed.kind, FailureKind::Error);
    assert_eq!(
        failed.message,
        format!(
            "protocol version mismatch: coordinator speaks version {}, validator speaks version \
             {PROTOCOL_VERSION}; upgrade the older side",
            PROTOCOL_VERSION + 1
        )
    );
    assert_eq!(x.wait(), Some(4));
}

#[test]
fn the_sdk_example_completes_a_whole_exchange() {
    let repo = Repo::new();
    repo.write("a.py", "# TODO: later\nx = 1  # TODO\n");
    let (manifest, results, code) = whole_exchange(&binary("example-todo"), &repo, &["a.py"]);
    assert_eq!(manifest.name, "todo");
    assert_eq!(code, Some(0));
    let positions: Vec<(u32, u32)> = results[0]
        .findings
        .iter()
        .map(|f| (f.line, f.column))
        .collect();
    assert_eq!(positions, [(1, 3), (2, 10)]);
}

#[test]
fn the_python_validator_is_a_drop_in_on_path() {
    let repo = Repo::new();
    repo.write("a.py", "x = 1 \n").write("notes.txt", "fine\n");
    repo.validator("pyspaces", &python_validator());
    let out = repo.check("pyspaces");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let v = out.validator("pyspaces");
    assert_eq!(v["status"], "passed");
    assert_eq!(v["files"], 2);
    assert_eq!(out.finding_paths(), ["a.py"]);
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
}

#[test]
fn config_tables_reach_the_python_validator() {
    let repo = Repo::new();
    repo.write("a.py", "\tx = 1\n")
        .config("[validators.pyspaces]\nallow_tabs = true\n");
    repo.validator("pyspaces", &python_validator());
    let out = repo.check("pyspaces");
    assert_eq!(out.validator("pyspaces")["findings"], 0, "{}", out.stdout);
}

#[test]
fn the_manifest_is_printed_as_json_for_people() {
    let out = std::process::Command::new(binary("example-todo"))
        .arg("--manifest")
        .output()
        .expect("runs");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(json["name"], "todo");
    assert_eq!(json["dimension"], "code_quality");
    assert_eq!(json["scope"], "per_file");
    assert_eq!(json["globs"], serde_json::json!(["**/*.py", "**/*.rs"]));
    let bad = std::process::Command::new(binary("example-todo"))
        .arg("--bogus")
        .output()
        .expect("runs");
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn list_shows_manifests_shadowing_and_broken_validators() {
    let repo = Repo::new();
    repo.validator("pyspaces", &python_validator());
    repo.later_validator("pyspaces", &binary("example-todo"));
    repo.fake("noisy");
    repo.config("[validators.noisy]\ngarbage = true\n");
    let out = repo.run(&["list"]);
    assert_eq!(
        out.code,
        Some(1),
        "a FAILED row fails the command\n{}",
        out.stderr
    );
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} listed in\n{}", out.stdout))
            .to_owned()
    };
    let py = line("pyspaces");
    assert!(
        py.contains("1.0.0") && py.contains("code_quality") && py.contains("per_file"),
        "{py}"
    );
    assert!(
        line("noisy").contains("FAILED: did not answer its handshake"),
        "{}",
        out.stdout
    );
    let after_py = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("pyspaces "))
        .nth(1)
        .expect("a line after pyspaces");
    assert!(
        after_py.trim_start().starts_with("shadowed: "),
        "{}",
        out.stdout
    );
    assert!(after_py.ends_with("validator-pyspaces"), "{after_py}");
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
}

#[test]
fn the_documented_example_is_the_tested_one_and_under_40_lines() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("src/bin/example_todo.rs")).expect("example");
    let doc = std::fs::read_to_string(root.join("../docs/writing-a-validator.md")).expect("doc");
    assert!(
        doc.contains(&format!("```rust\n{example}```")),
        "docs/writing-a-validator.md shows harness/src/bin/example_todo.rs verbatim"
    );
    assert!(
        example.lines().count() < 40,
        "the example stays under 40 lines"
    );
}
