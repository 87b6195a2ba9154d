//! `run --fix`: fixing rounds until nothing changes, then a checking round whose findings are
//! about the files as they now are. The fake's `fixes` behaviour fixes one marker per file per
//! round, so rounds can be counted.

use harness::Repo;

fn repo(markers: usize, extra_config: &str) -> Repo {
    let repo = Repo::new();
    repo.write("a.py", &"x = 1  # BAD\n".repeat(markers))
        .write("clean.py", "y = 2\n");
    repo.fake("fixer").fake("other").config(&format!(
        "{extra_config}\n[validators.fixer]\nfixes = \"BAD\"\n\
         [validators.other]\nrecord = \"other.log\"\n"
    ));
    repo
}

fn read(repo: &Repo, path: &str) -> String {
    std::fs::read_to_string(repo.root().join(path)).expect("readable")
}

/// `run --fix` with JSON output, on the fakes only.
fn fix_json(repo: &Repo) -> harness::Outcome {
    repo.run(&[
        "run",
        "--all",
        "--validators",
        "fixer,other",
        "--fix",
        "--format",
        "json",
    ])
}

#[test]
fn fixing_repeats_until_clean_and_lists_the_changed_files() {
    let repo = repo(2, "");
    let out = fix_json(&repo);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let json = out.json();
    assert_eq!(json["fixed_files"], serde_json::json!(["a.py"]));
    assert_eq!(json["findings"], serde_json::json!([]));
    assert!(!read(&repo, "a.py").contains("BAD"));
    assert_eq!(read(&repo, "clean.py"), "y = 2\n");
    // Validators that cannot fix only take part in the final, checking round.
    assert_eq!(read(&repo, "other.log").lines().count(), 1);
}

#[test]
fn the_round_limit_is_reported_with_what_remains() {
    let repo = repo(5, "max_fix_rounds = 2");
    let out = fix_json(&repo);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["findings"].as_array().expect("list").len(), 3);
    assert_eq!(json["fixed_files"], serde_json::json!(["a.py"]));
    let warnings = json["warnings"].to_string();
    assert!(
        warnings.contains("after 2 rounds (max_fix_rounds)"),
        "{warnings}"
    );
    let human = repo.run(&["run", "--all", "--validators", "fixer,other", "--fix"]);
    assert!(
        human.stdout.contains("fixed 1 file:\n  a.py"),
        "{}",
        human.stdout
    );
}

#[test]
fn without_fix_no_file_is_modified() {
    let repo = repo(2, "");
    let out = repo.run(&[
        "run",
        "--all",
        "--validators",
        "fixer,other",
        "--format",
        "json",
    ]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.json()["fixed_files"], serde_json::json!([]));
    assert_eq!(out.json()["findings"].as_array().expect("list").len(), 2);
    assert_eq!(read(&repo, "a.py"), "x = 1  # BAD\n".repeat(2));
}
