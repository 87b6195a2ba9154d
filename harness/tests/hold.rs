//! Only new findings: a saved baseline, `--new-since REV`, and `run --staged`, which checks
//! the index without touching the working tree, even when killed. ruff (installed by
//! `scripts/test`) makes the findings: F401 for each unused import, of severity error.

use harness::{Outcome, Repo};
use std::time::Duration;

fn ruff(repo: &Repo, more: &[&str]) -> Outcome {
    let mut args = vec!["run", "--all", "--format", "json", "--validators", "ruff"];
    args.extend(more);
    repo.run(&args)
}

fn lines(out: &Outcome) -> Vec<u64> {
    out.json()["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["line"].as_u64().expect("a line"))
        .collect()
}

fn suppressed(out: &Outcome) -> u64 {
    out.json()["suppressed"][0]["count"]
        .as_u64()
        .expect("a suppressed count")
}

const OLD: &str = "import os\n\nimport sys\n\nx = 1\n";

/// A repository where ruff checks only the F rules (so that import order is no finding).
fn pyflakes() -> Repo {
    let repo = Repo::new();
    repo.write("ruff.toml", "[lint]\nselect = [\"F\"]\n");
    repo
}

fn with_baseline() -> Repo {
    let repo = pyflakes();
    repo.write("app.py", OLD);
    let out = repo.run(&["baseline", "save", "--validators", "ruff"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("saved 2 findings"), "{}", out.stdout);
    assert!(repo.root().join(".orchestrator/baseline.json").is_file());
    repo
}

#[test]
fn baselined_findings_stay_hidden_when_code_moves_and_other_lines_change() {
    let repo = with_baseline();
    let base = ["--baseline", ".orchestrator/baseline.json"];
    repo.write(
        "app.py",
        "\"\"\"A module.\"\"\"\n\n\nimport os\n\nimport sys\n\nx = 2\ny = 3\n",
    );
    let out = ruff(&repo, &base);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(lines(&out), Vec::<u64>::new());
    assert_eq!(suppressed(&out), 2);
    assert_eq!(out.json()["validators"][0]["status"], "passed");
    let human = repo.run(&[
        "run",
        "--all",
        "--validators",
        "ruff",
        "--baseline",
        base[1],
    ]);
    assert!(
        human
            .stdout
            .contains("left out 2 findings not new (baseline .orchestrator/baseline.json)"),
        "{}",
        human.stdout
    );
}

#[test]
fn a_fixed_baselined_finding_is_gone_and_a_new_one_fails_the_run() {
    let repo = with_baseline();
    let base = ["--baseline", ".orchestrator/baseline.json"];
    repo.write("app.py", "import os\n\n\nx = 1\n");
    let out = ruff(&repo, &base);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(suppressed(&out), 1);
    repo.write("app.py", "import os\n\n\nx = 1\n\nimport json\n");
    let out = ruff(&repo, &base);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(lines(&out), [6]);
    assert_eq!(suppressed(&out), 1);
}

#[test]
fn the_configured_baseline_applies_and_a_missing_one_is_one_clear_line() {
    let repo = with_baseline();
    repo.config("baseline = \".orchestrator/baseline.json\"\n");
    let out = ruff(&repo, &[]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(suppressed(&out), 2);
    let out = ruff(&repo, &["--baseline", "nowhere.json"]);
    assert_eq!(out.code, Some(2));
    assert_eq!(
        out.stderr.trim(),
        "error: baseline nowhere.json: no such file; create it with `orchestrator baseline save nowhere.json`"
    );
    std::fs::write(repo.root().join("bad.json"), "{").expect("written");
    let out = ruff(&repo, &["--baseline", "bad.json"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr
            .starts_with("error: baseline bad.json: not a baseline file"),
        "{}",
        out.stderr
    );
}

#[test]
fn new_since_reports_only_findings_on_changed_lines_and_new_files() {
    let repo = pyflakes();
    repo.git(&["init", "-q"]);
    repo.write("app.py", OLD);
    repo.git(&["add", "."]).git(&["commit", "-qm", "old"]);
    repo.write("app.py", "import os\n\nimport sys\nimport json\n\nx = 1\n");
    repo.write("new.py", "import re\n");
    let out = ruff(&repo, &["--new-since", "HEAD"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let paths = out.finding_paths();
    assert_eq!(paths, ["app.py", "new.py"]);
    assert_eq!(lines(&out), [4, 1]);
    assert_eq!(suppressed(&out), 2);
    let out = ruff(&repo, &["--new-since", "no-such-rev"]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("no-such-rev"), "{}", out.stderr);
}

/// `git status`, the index's and the working tree's diffs, and every file's bytes: what a
/// staged run must leave exactly as it found it.
fn state(repo: &Repo) -> String {
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .current_dir(repo.root())
            .args(args)
            .output()
            .expect("git runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut state = git(&["status", "--porcelain", "--untracked-files=all"]);
    state += &git(&["diff"]);
    state += &git(&["diff", "--cached"]);
    state += &git(&["ls-files", "--stage"]);
    for file in ["app.py", "other.py"] {
        state += &std::fs::read_to_string(repo.root().join(file)).unwrap_or_default();
    }
    state
}

fn staged_repo() -> Repo {
    let repo = pyflakes();
    repo.git(&["init", "-q"]);
    repo.write("app.py", "x = 1\n").write("other.py", "y = 2\n");
    repo.git(&["add", "."]).git(&["commit", "-qm", "clean"]);
    // Staged: an unused import. Not staged: its removal, still being worked on.
    repo.write("app.py", "import os\nx = 1\n");
    repo.git(&["add", "app.py"]);
    repo.write("app.py", "x = 1\n# work in progress\n");
    repo
}

#[test]
fn staged_checks_the_index_not_the_working_tree_and_changes_neither() {
    let repo = staged_repo();
    let before = state(&repo);
    let out = repo.run(&[
        "run",
        "--staged",
        "--format",
        "json",
        "--validators",
        "ruff",
    ]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(
        out.finding_paths(),
        ["app.py"],
        "only the staged file, as staged"
    );
    assert_eq!(lines(&out), [1]);
    assert_eq!(state(&repo), before);
    let tree = ruff(&repo, &[]);
    assert_eq!(tree.code, Some(0), "the working tree itself is clean");
    repo.git(&["commit", "-qm", "staged"]);
    let out = repo.run(&["run", "--staged", "--validators", "ruff"]);
    assert_eq!(out.code, Some(0));
    assert!(out.stderr.contains("nothing is staged"), "{}", out.stderr);
}

#[test]
fn a_staged_run_killed_midway_loses_nothing() {
    let repo = staged_repo();
    repo.fake("slow");
    repo.config(
        "[validators.slow]\nhang = \"after_handshake\"\ntimeout = \"60s\"\nfiles = [\"**/*.py\"]\n",
    );
    let before = state(&repo);
    let out = repo.run_signalled(
        &["run", "--staged", "--validators", "slow"],
        Duration::from_millis(1500),
        libc::SIGKILL,
    );
    assert_eq!(out.code, None, "killed: {}", out.stderr);
    assert!(out.leftovers_within(Duration::from_secs(5)).is_empty());
    assert_eq!(state(&repo), before);
    // The copy the killed run left is removed by the next staged run.
    let out = repo.run(&["run", "--staged", "--validators", "ruff"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let stale: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .expect("the temporary directory")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let pid = name
                .strip_prefix("orchestrator-staged-")?
                .parse::<u32>()
                .ok()?;
            (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(name)
        })
        .collect();
    assert!(stale.is_empty(), "{stale:?}");
}
