//! Snapshots of the human and JSON reports of one mixed run: passing, failing, crashed,
//! timed-out, not installed and disabled validators side by side. Durations are redacted; every
//! other byte of the report is pinned, so output never changes by accident.

use harness::{python_validator, Outcome, Repo};

fn mixed_run(format: &str) -> Outcome {
    let repo = Repo::new();
    repo.write("src/app.py", "import os   \nx = 1\n")
        .write("src/util.py", "y = 2\n")
        .write("README.md", "# sample\n");
    for name in ["lint", "crashy", "slow", "absent", "off"] {
        repo.fake(name);
    }
    repo.validator("pyspaces", &python_validator());
    repo.config(
        "grace_period = \"200ms\"\n\
         [validators.lint]\nfindings = 2\n\
         [validators.crashy]\ncrash_after = 1\nfindings = 1\nseverity = \"warning\"\n\
         [validators.slow]\nhang = \"after_handshake\"\ntimeout = \"500ms\"\ndimension = \"type_safety\"\n\
         [validators.absent]\nnot_installed = true\ndimension = \"security\"\n\
         [validators.off]\nenabled = false\n",
    );
    let out = repo.run(&[
        "run",
        "--all",
        "--format",
        format,
        "--validators",
        "absent,crashy,lint,pyspaces,slow",
    ]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    out
}

#[test]
fn json_report_of_a_mixed_run() {
    let out = mixed_run("json");
    // Which validator ends last (the critical path) depends on timing, as durations do.
    insta::with_settings!({filters => vec![
        (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
        (r#""critical_path": \[[^\]]*\]"#, r#""critical_path": "[path]""#),
    ]}, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn human_report_of_a_mixed_run() {
    let out = mixed_run("human");
    insta::with_settings!({filters => vec![(r"\d+\.\d\ds", "[t]s")]}, {
        insta::assert_snapshot!(out.stdout);
    });
}
