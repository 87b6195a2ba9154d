//! The run history through whole runs: every run recorded and listed, figures per validator,
//! alerts, and a ledger that names the first tampered entry.

use harness::{Outcome, Repo};
use std::path::{Path, PathBuf};

fn repo(behaviour: &str) -> Repo {
    let repo = Repo::new();
    repo.write("a.py", "a = 1\n").write("b.py", "b = 2\n");
    repo.fake("lint")
        .config(&format!("[validators.lint]\n{behaviour}"));
    repo
}

fn lint(repo: &Repo, extra: &[&str]) -> Outcome {
    let mut args = vec!["run", "--all", "--format", "json", "--validators", "lint"];
    args.extend_from_slice(extra);
    repo.run(&args)
}

fn database(repo: &Repo) -> PathBuf {
    repo.cache_dir().join("history.sqlite3")
}

/// Runs SQL on a database with Python's sqlite3, as someone editing the file would.
fn sql(db: &Path, statement: &str) {
    let status = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()"])
        .arg(db)
        .arg(statement)
        .status()
        .expect("python3");
    assert!(status.success(), "{statement}");
}

#[test]
fn every_run_is_recorded_and_listed_newest_first() {
    let repo = repo("findings = 1\n");
    lint(&repo, &[]);
    lint(&repo, &[]);
    lint(&repo, &["--no-cache"]);
    let out = repo.run(&["history", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let runs = runs.as_array().expect("a list");
    let ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    assert_eq!(ids, [3, 2, 1]);
    let lint_of = |i: usize| runs[i]["validators"][0].clone();
    assert_eq!(lint_of(0)["name"], "lint");
    assert_eq!(lint_of(0)["cached_files"], 0, "the --no-cache run");
    assert_eq!(lint_of(1)["cached_files"], 2);
    assert_eq!(lint_of(1)["findings"], 2);
    assert_eq!(runs[0]["status"], "failed");
    assert_eq!(
        runs[0]["report"], runs[2]["report"],
        "the same findings, the same hash"
    );
    assert_ne!(runs[0]["hash"], runs[1]["hash"]);
    let human = repo.run(&["history", "--limit", "1"]);
    assert_eq!(human.code, Some(0), "{}", human.stderr);
    assert_eq!(human.stdout.lines().count(), 2, "{}", human.stdout);
    assert!(human.stdout.contains("    3  "), "{}", human.stdout);
    assert!(human.stdout.contains("lint failed"), "{}", human.stdout);
}

#[test]
fn stats_count_timeouts_and_crashes_and_export_openmetrics() {
    let repo = repo("");
    lint(&repo, &[]);
    lint(&repo, &[]);
    repo.config("[validators.lint]\ncrash_after = 1\n");
    lint(&repo, &["--no-cache"]);
    repo.config("[validators.lint]\nhang = \"after_handshake\"\ntimeout = \"500ms\"\n");
    lint(&repo, &["--no-cache"]);
    let out = repo.run(&["stats", "--format", "json"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let stats: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    let lint = &stats[0];
    assert_eq!(lint["name"], "lint");
    assert_eq!(lint["runs"], 4);
    assert_eq!(lint["timeout_rate"], 0.25);
    assert_eq!(lint["crash_rate"], 0.25);
    assert_eq!(
        lint["cache_hit_rate"], 0.25,
        "2 of 8 files, in the second run"
    );
    assert!(
        lint["max_ms"].as_u64().expect("max") >= 500,
        "the timed-out run: {lint}"
    );
    let last = repo.run(&["stats", "--runs", "1", "--format", "json"]);
    let last: serde_json::Value = serde_json::from_str(&last.stdout).expect("json");
    assert_eq!(last[0]["runs"], 1);
    assert_eq!(last[0]["timeout_rate"], 1.0);
    let metrics = repo.run(&["stats", "--format", "openmetrics"]);
    assert_eq!(metrics.code, Some(0), "{}", metrics.stderr);
    for line in [
        "# TYPE orchestrator_validator_duration_seconds summary",
        "orchestrator_validator_duration_seconds_count{validator=\"lint\"} 4",
        "orchestrator_validator_timeout_ratio{validator=\"lint\"} 0.25",
        "orchestrator_validator_crash_ratio{validator=\"lint\"} 0.25",
        "orchestrator_validator_cache_hit_ratio{validator=\"lint\"} 0.25",
    ] {
        assert!(metrics.stdout.contains(line), "{line}\n{}", metrics.stdout);
    }
    assert!(metrics.stdout.ends_with("# EOF\n"));
    let human = repo.run(&["stats"]);
    assert!(human.stdout.contains("over 4 runs"), "{}", human.stdout);
    assert!(human.stdout.contains("25.0%"), "{}", human.stdout);
}

#[test]
fn alerts_are_warnings_that_fail_the_run_only_when_asked() {
    let repo = repo("");
    repo.config("[validators.lint]\n\n[alerts]\nhit_rate_below = 0.5\n");
    let alert = "alert: the cache answered 0% of lint's 2 files (below 50%)";
    let cold = lint(&repo, &[]);
    assert_eq!(cold.code, Some(0), "{}", cold.stderr);
    assert_eq!(cold.json()["warnings"][0], alert);
    let warm = lint(&repo, &[]);
    assert_eq!(warm.json()["warnings"], serde_json::json!([]));
    let failing = lint(&repo, &["--no-cache", "--alerts-fail"]);
    assert_eq!(failing.code, Some(1), "{}", failing.stderr);
    assert_eq!(failing.json()["status"], "passed", "the run itself passed");
    assert_eq!(failing.json()["warnings"][0], alert);
}

#[test]
fn verify_names_the_first_tampered_entry_and_a_pinned_hash_catches_truncation() {
    let repo = repo("findings = 1\n");
    for _ in 0..4 {
        lint(&repo, &["--no-cache"]);
    }
    let intact = repo.run(&["history", "verify"]);
    assert_eq!(intact.code, Some(0), "{}", intact.stderr);
    assert!(
        intact
            .stdout
            .starts_with("4 runs, chain intact; newest hash "),
        "{}",
        intact.stdout
    );
    let head = intact.stdout["4 runs, chain intact; newest hash ".len()..][..64].to_owned();
    let pinned = repo.run(&["history", "verify", "--pinned", &head]);
    assert_eq!(pinned.code, Some(0), "{}", pinned.stderr);
    assert!(
        pinned.stdout.contains("the pinned hash is entry 4's"),
        "{}",
        pinned.stdout
    );

    let db = database(&repo);
    // The last runs sit in SQLite's write-ahead log until a checkpoint copies them into the
    // file saved here.
    sql(&db, "PRAGMA wal_checkpoint(TRUNCATE)");
    let original = std::fs::read(&db).expect("history");
    let cases = [
        (
            "UPDATE runs SET summary = CAST(replace(CAST(summary AS TEXT), 'failed', 'passed') AS BLOB) WHERE id = 2",
            "entry 2 was changed after it was recorded",
        ),
        ("DELETE FROM runs WHERE id = 3", "entry 4 does not follow entry 2"),
        (
            "UPDATE runs SET id = 10 WHERE id = 2; UPDATE runs SET id = 2 WHERE id = 3; \
             UPDATE runs SET id = 3 WHERE id = 10",
            "entry 2 does not follow entry 1",
        ),
        ("DELETE FROM runs WHERE id = 1", "entry 2 is not the first entry"),
    ];
    for (statement, expected) in cases {
        std::fs::write(&db, &original).expect("restore");
        sql(&db, statement);
        let out = repo.run(&["history", "verify"]);
        assert_eq!(out.code, Some(1), "{statement}: {}", out.stdout);
        assert!(out.stderr.contains(expected), "{statement}: {}", out.stderr);
    }
    // Dropping the newest entry leaves a whole chain; only the pinned hash tells.
    std::fs::write(&db, &original).expect("restore");
    sql(&db, "DELETE FROM runs WHERE id = 4");
    assert_eq!(repo.run(&["history", "verify"]).code, Some(0));
    let truncated = repo.run(&["history", "verify", "--pinned", &head]);
    assert_eq!(truncated.code, Some(1));
    assert!(
        truncated.stderr.contains("does not hold the pinned hash"),
        "{}",
        truncated.stderr
    );
}
