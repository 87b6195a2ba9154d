//! Snapshots of every report format of one mixed run: passing, failing, crashed, timed-out,
//! not installed and disabled validators side by side. Durations are redacted; every other
//! byte of the report is pinned, so output never changes by accident. SARIF is also checked
//! against the official OASIS schema, on this run and on the real tools' findings.

use harness::{python_validator, Outcome, Repo};

fn mixed_run(format: &str) -> Outcome {
    mixed_run_with(format, &[], &[]).1
}

fn mixed_run_with(format: &str, more: &[&str], env: &[(&str, &str)]) -> (Repo, Outcome) {
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
    let mut args = vec![
        "run",
        "--all",
        "--format",
        format,
        "--validators",
        "absent,crashy,lint,pyspaces,slow",
    ];
    args.extend(more);
    let out = repo.run_with_env(&args, env);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    (repo, out)
}

/// The schema violations of a SARIF log, as lines.
fn sarif_violations(text: &str) -> Vec<String> {
    // Two `language` patterns of the schema have a stray `]`, which ECMAScript reads as a
    // literal but the meta-schema's strict `regex` format rejects: escaped here, same meaning.
    let published = include_str!("data/sarif-schema-2.1.0.json");
    let stray = r"{2}]?$";
    assert_eq!(published.matches(stray).count(), 2);
    let schema: serde_json::Value = serde_json::from_str(&published.replace(stray, r"{2}\\]?$"))
        .expect("the vendored schema is JSON");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the vendored schema compiles");
    let log: serde_json::Value = serde_json::from_str(text).expect("SARIF is JSON");
    validator
        .iter_errors(&log)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn sarif_report_of_a_mixed_run() {
    let out = mixed_run("sarif");
    assert_eq!(sarif_violations(&out.stdout), Vec::<String>::new());
    let log: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let slow = &log["runs"].as_array().expect("runs")[4];
    assert_eq!(slow["tool"]["driver"]["name"], "slow");
    assert_eq!(slow["invocations"][0]["executionSuccessful"], false);
    // The check can fail: a level SARIF does not know is caught.
    let mut broken = log.clone();
    broken["runs"][2]["results"][0]["level"] = "fatal".into();
    assert_eq!(sarif_violations(&broken.to_string()).len(), 1);
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn sarif_report_of_the_real_tools_is_valid() {
    let repo = Repo::new();
    repo.fixture("python-sample");
    let out = repo.run(&[
        "run",
        "--all",
        "--format",
        "sarif",
        "--validators",
        "bandit,pyright,ruff",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(sarif_violations(&out.stdout), Vec::<String>::new());
    let log: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON");
    let runs = log["runs"].as_array().expect("runs");
    let names: Vec<&str> = runs
        .iter()
        .filter_map(|r| r["tool"]["driver"]["name"].as_str())
        .collect();
    assert_eq!(names, ["bandit", "pyright", "ruff"]);
    for run in runs {
        assert!(run["tool"]["driver"]["version"].is_string(), "{run}");
        let results = run["results"].as_array().expect("results");
        assert!(!results.is_empty(), "{run}");
        for r in results {
            let uri = r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                .as_str()
                .expect("uri");
            assert!(uri.starts_with("inventory/"), "{uri}");
            assert!(r["partialFingerprints"]["primaryLocationLineHash"].is_string());
        }
    }
    let bandit_rules = runs[0]["tool"]["driver"]["rules"]
        .as_array()
        .expect("rules");
    assert!(bandit_rules
        .iter()
        .all(|r| r["properties"]["security-severity"].is_string()));
}

#[test]
fn junit_report_of_a_mixed_run() {
    let out = mixed_run("junit");
    insta::with_settings!({filters => vec![(r#"time="[0-9.]+""#, r#"time="[t]""#)]}, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn github_annotations_of_a_mixed_run_and_the_step_summary() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "before\n").expect("written");
    let summary_var = summary.to_str().expect("UTF-8");
    let (_, out) = mixed_run_with("github", &[], &[("GITHUB_STEP_SUMMARY", summary_var)]);
    let first = out.stdout.lines().next().expect("a line");
    assert!(
        first.starts_with("::error title=absent not installed::"),
        "{first}"
    );
    insta::assert_snapshot!(out.stdout);
    let summary = std::fs::read_to_string(&summary).expect("the summary");
    assert!(
        summary.starts_with("before\n### orchestrator: incomplete\n"),
        "{summary}"
    );
    assert!(summary.contains("| slow | timed out | 2 |"), "{summary}");
}

#[test]
fn gitlab_code_quality_of_a_mixed_run() {
    let out = mixed_run("gitlab");
    insta::assert_snapshot!(out.stdout);
}

#[test]
fn html_report_of_a_mixed_run() {
    let out = mixed_run("html");
    insta::with_settings!({filters => vec![(r"\d+\.\d\ds", "[t]s")]}, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn more_reports_from_the_same_run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let sarif = dir.path().join("out.sarif");
    let junit = dir.path().join("junit.xml");
    let (_, out) = mixed_run_with(
        "json",
        &[
            "--report",
            &format!("sarif={}", sarif.display()),
            "--report",
            &format!("junit={}", junit.display()),
        ],
        &[],
    );
    let json = out.json();
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("SARIF written"))
            .expect("JSON");
    let results: usize = sarif["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["results"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(
        results,
        json["findings"].as_array().expect("findings").len()
    );
    let xml = std::fs::read_to_string(&junit).expect("JUnit written");
    assert!(xml.contains("<testsuite name=\"lint\""), "{xml}");
}

#[test]
fn a_bad_report_argument_is_one_clear_line() {
    let repo = Repo::new();
    let out = repo.run(&["run", "--all", "--report", "pdf=out.pdf"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .contains("unknown report format \"pdf\"; use one of human, json, sarif"),
        "{}",
        out.stderr
    );
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
