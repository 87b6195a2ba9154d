//! `run --shard K/N` and `merge-reports`: the shards of a run, merged, give the report of one
//! unsharded run, and a merge says when a shard is missing, incomplete, or from another run.

use harness::{Outcome, Repo};
use serde_json::Value;

/// The requests sdist with ruff, bandit and pyright, a per-file fake and a project fake, all
/// with findings.
fn project() -> Repo {
    let repo = Repo::new();
    repo.corpus("requests-2.34.2.tar.gz", &[]);
    repo.fake("lint").fake("whole").config(
        "[validators.lint]\nfindings = 1\n\
         [validators.whole]\nfindings = 1\nscope = \"project\"\n",
    );
    repo
}

const VALIDATORS: &str = "ruff,bandit,pyright,lint,whole";

/// The validators of the tests about merging rather than about results: fast ones.
const FAST: &str = "ruff,lint,whole";

/// A JSON run of `validators`, uncached so that every run checks everything; `extra` adds
/// arguments.
fn run(repo: &Repo, validators: &str, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "run",
        "--all",
        "--no-cache",
        "--format",
        "json",
        "--validators",
        validators,
    ];
    args.extend_from_slice(extra);
    let out = repo.run(&args);
    assert!(
        matches!(out.code, Some(0 | 1 | 3)),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

/// Shard `k` of `n` of run `id`; the path of its report, in a directory of the test's own.
fn shard(repo: &Repo, validators: &str, k: u32, n: u32, id: &str) -> String {
    let file = repo.cache_dir().join(format!("shard-{k}-{n}-{id}.json"));
    let (spec, file) = (format!("{k}/{n}"), file.display().to_string());
    run(
        repo,
        validators,
        &["--shard", &spec, "--run-id", id, "--output", &file],
    );
    file
}

fn merge(repo: &Repo, files: &[String], extra: &[&str]) -> Outcome {
    let mut args = vec!["merge-reports"];
    args.extend(files.iter().map(String::as_str));
    args.extend_from_slice(extra);
    repo.run(&args)
}

/// A report without what differs between any two runs: durations, and the critical path
/// they decide.
fn comparable(mut report: Value) -> Value {
    let top = report.as_object_mut().expect("object");
    top.remove("duration_ms");
    top.remove("critical_path");
    for v in top["validators"].as_array_mut().expect("validators") {
        let v = v.as_object_mut().expect("validator");
        v.remove("duration_ms");
        for a in v["attempts"].as_array_mut().expect("attempts") {
            a.as_object_mut().expect("attempt").remove("duration_ms");
        }
    }
    report
}

#[test]
fn merged_shards_give_the_report_of_one_unsharded_run() {
    let repo = project();
    let whole = run(&repo, VALIDATORS, &[]);
    assert_eq!(whole.code, Some(1));
    let files: Vec<String> = (1..=3)
        .map(|k| shard(&repo, VALIDATORS, k, 3, "r1"))
        .collect();
    // Every shard checked part of the per-file work; the project fake ran on one shard only.
    let mut ran_whole = 0;
    for file in &files {
        let part: Value =
            serde_json::from_str(&std::fs::read_to_string(file).expect("report")).expect("JSON");
        assert_eq!(part["shard"]["count"], 3);
        assert_eq!(part["shard"]["run_id"], "r1");
        let lint = part["validators"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == "lint"))
            .expect("lint");
        let files = lint["files"].as_u64().expect("files");
        assert!(files > 0, "{file}: no files for lint");
        let whole = part["validators"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"] == "whole"))
            .expect("whole");
        if whole["status"] == "failed" {
            ran_whole += 1;
        } else {
            assert_eq!(whole["skip_reason"], "other_shard");
        }
    }
    assert_eq!(ran_whole, 1);
    let merged = merge(&repo, &files, &["--format", "json"]);
    assert_eq!(merged.code, Some(1), "{}", merged.stderr);
    let mut merged = comparable(merged.json());
    let mut whole = comparable(whole.json());
    // The shard reports list their checked files; merged, they are every file.
    for (m, w) in merged["validators"]
        .as_array_mut()
        .expect("validators")
        .iter_mut()
        .zip(whole["validators"].as_array_mut().expect("validators"))
    {
        let checked = m.as_object_mut().and_then(|m| m.remove("checked"));
        assert_eq!(checked, None, "a merged report is not a shard's");
        assert_eq!(m["name"], w["name"]);
    }
    merged.as_object_mut().expect("object").remove("shard");
    whole.as_object_mut().expect("object").remove("shard");
    assert_eq!(merged, whole);
    // The other formats come from the same report: SARIF's results are the unsharded run's.
    let sarif = |out: Outcome| {
        let log: Value = serde_json::from_str(&out.stdout).expect("SARIF");
        log["runs"][0]["results"].as_array().map(Vec::len)
    };
    assert_eq!(
        sarif(merge(&repo, &files, &["--format", "sarif"])),
        sarif(repo.run(&[
            "run",
            "--all",
            "--no-cache",
            "--format",
            "sarif",
            "--validators",
            VALIDATORS
        ])),
    );
}

#[test]
fn a_missing_or_incomplete_shard_makes_the_merge_incomplete() {
    let repo = project();
    let files: Vec<String> = (1..=3).map(|k| shard(&repo, FAST, k, 3, "r1")).collect();
    let merged = merge(&repo, &files[..2], &["--format", "json"]);
    assert_eq!(merged.code, Some(3), "{}", merged.stderr);
    let json = merged.json();
    assert_eq!(json["status"], "incomplete");
    assert_eq!(json["missing_shards"], serde_json::json!([3]));
    assert!(json["warnings"][0]
        .as_str()
        .is_some_and(|w| w.starts_with("shard 3 of 3 is missing")));
    let human = merge(&repo, &files[..2], &[]);
    assert!(
        human.stdout.contains("shard 3 missing; incomplete"),
        "{}",
        human.stdout
    );
    // A shard whose per-file fake crashes: the merge is incomplete and says which validator.
    repo.config(
        "[validators.lint]\nfindings = 1\ncrash_after = 1\n\
         [validators.whole]\nfindings = 1\nscope = \"project\"\n",
    );
    let crashed = shard(&repo, FAST, 2, 3, "r1");
    let files = [files[0].clone(), crashed, files[2].clone()];
    let merged = merge(&repo, &files, &["--format", "json"]);
    assert_eq!(merged.code, Some(3));
    let lint = merged.json()["validators"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["name"] == "lint").cloned())
        .expect("lint");
    assert_eq!(lint["status"], "crashed");
}

#[test]
fn shards_of_other_runs_or_twice_the_same_shard_are_refused() {
    let repo = project();
    let one = shard(&repo, FAST, 1, 2, "r1");
    let other = shard(&repo, FAST, 2, 2, "r2");
    let out = merge(&repo, &[one.clone(), other], &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("run id `r2`, but"), "{}", out.stderr);
    let out = merge(&repo, &[one.clone(), one.clone()], &[]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("shard 1 again"), "{}", out.stderr);
    let three = shard(&repo, FAST, 3, 3, "r1");
    let out = merge(&repo, &[one, three], &[]);
    assert!(out.stderr.contains("is a shard of 2"), "{}", out.stderr);
    let out = repo.run(&["run", "--all", "--shard", "5/4"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("--shard `5/4` must be K/N"),
        "{}",
        out.stderr
    );
}
