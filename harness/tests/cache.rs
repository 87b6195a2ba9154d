//! The result cache through whole runs: what hits, what misses, and that a damaged or busy
//! cache costs speed, never results.
//!
//! The fake validator's `record` behaviour appends one line per request naming the files it
//! was sent, so "was this file checked again?" is read from that file.

use harness::{Outcome, Repo};
use std::path::Path;
use std::process::Command;

const LINT: &str = "[validators.lint]\nfindings = 1\nrecord = \"requests.log\"\n";

fn repo(config: &str) -> Repo {
    let repo = Repo::new();
    repo.write("a.py", "a = 1\n")
        .write("pkg/b.py", "b = 2\n")
        .write("pkg/c.py", "c = 3\n");
    repo.fake("lint").config(config);
    repo
}

fn run(repo: &Repo, extra: &[&str]) -> Outcome {
    run_env(repo, extra, &[])
}

fn run_env(repo: &Repo, extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut args = vec!["run", "--all", "--format", "json", "--validators", "lint"];
    args.extend_from_slice(extra);
    let out = repo.run_with_env(&args, env);
    assert!(
        matches!(out.code, Some(0 | 1)),
        "exit {:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    out
}

/// The files each request of the run sent to the fake, one entry per request, sorted.
fn requests(repo: &Repo) -> Vec<String> {
    std::fs::read_to_string(repo.root().join("requests.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let files = line.split(' ').next().unwrap_or_default();
            let mut files: Vec<&str> = files.split(',').collect();
            files.sort_unstable();
            files.join(",")
        })
        .collect()
}

/// Forgets the requests recorded so far.
fn reset(repo: &Repo) {
    let _ = std::fs::remove_file(repo.root().join("requests.log"));
}

/// The findings of a report, without what legitimately differs between runs.
/// Waits until what was just written is older than the two seconds within which a kept
/// listing or tracked list vouches for nothing.
fn age_past_settling() {
    std::thread::sleep(std::time::Duration::from_millis(2500));
}

/// How many files the fake `lint` validator checked.
fn lint_files(out: &Outcome) -> serde_json::Value {
    out.validator("lint")["files"].clone()
}

fn findings(out: &Outcome) -> serde_json::Value {
    out.json()["findings"].clone()
}

#[test]
fn an_unchanged_tree_is_answered_from_the_cache_with_the_same_report() {
    let repo = repo(LINT);
    let first = run(&repo, &[]);
    assert_eq!(requests(&repo), ["a.py,pkg/b.py,pkg/c.py"]);
    assert_eq!(first.validator("lint")["cached_files"], 0);
    reset(&repo);
    let second = run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        Vec::<String>::new(),
        "nothing was sent again"
    );
    let v = second.validator("lint");
    assert_eq!(v["cached_files"], 3);
    assert_eq!(v["files"], 3);
    assert_eq!(v["status"], "failed");
    assert_eq!(second.code, first.code);
    assert_eq!(findings(&second), findings(&first));
}

#[test]
fn a_complete_run_is_read_back_whole_until_anything_changes() {
    // The record of a complete run answers an unchanged tree in one read; after a change it
    // answers the files whose keys and inputs did not change, the others take the per-file
    // path, and the complete run writes the record again.
    let whole = |out: &Outcome| out.stderr.contains("3 results from the record");
    let repo = repo(&format!("{LINT}inputs = [\"style.css\"]\n"));
    repo.write("style.css", "a {}\n");
    let first = run(&repo, &[]);
    assert!(!whole(&first), "{}", first.stderr);
    let second = run(&repo, &["-vv"]);
    assert!(whole(&second), "{}", second.stderr);
    assert_eq!(findings(&second), findings(&first));
    assert_eq!(second.validator("lint")["cached_files"], 3);
    repo.write("pkg/b.py", "b = 20\n");
    reset(&repo);
    let changed = run(&repo, &["-vv"]);
    assert!(!whole(&changed), "{}", changed.stderr);
    // The other two files are still answered by the record, which no longer answers whole.
    let part = "2 results from the record of its last complete run, 1 looked up one by one";
    assert!(changed.stderr.contains(part), "{}", changed.stderr);
    assert_eq!(requests(&repo), ["pkg/b.py"]);
    let again = run(&repo, &["-vv"]);
    assert!(whole(&again), "{}", again.stderr);
    assert_eq!(findings(&again), findings(&changed));
    // `--changed` runs keep their record apart: the whole tree's is still there after one.
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(repo.root())
            .status()
            .expect("git");
        assert!(status.success());
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-qm",
        "t",
    ]);
    repo.write("a.py", "a = 10\n");
    let hook = repo.run(&["run", "--changed", "--validators", "lint"]);
    assert!(matches!(hook.code, Some(0 | 1)), "{}", hook.stderr);
    repo.write("a.py", "a = 1\n");
    let whole_again = run(&repo, &["-vv"]);
    assert!(whole(&whole_again), "{}", whole_again.stderr);
}

#[test]
fn a_changed_file_misses_alone() {
    let repo = repo(LINT);
    run(&repo, &[]);
    reset(&repo);
    repo.write("pkg/b.py", "b = 20\n");
    let out = run(&repo, &[]);
    assert_eq!(requests(&repo), ["pkg/b.py"]);
    assert_eq!(out.validator("lint")["cached_files"], 2);
}

#[test]
fn a_renamed_file_misses_alone() {
    let repo = repo(LINT);
    run(&repo, &[]);
    reset(&repo);
    std::fs::rename(repo.root().join("pkg/c.py"), repo.root().join("pkg/d.py")).expect("rename");
    let out = run(&repo, &[]);
    assert_eq!(requests(&repo), ["pkg/d.py"]);
    assert!(out.finding_paths().contains(&"pkg/d.py".to_owned()));
    assert!(!out.finding_paths().contains(&"pkg/c.py".to_owned()));
}

#[test]
fn touching_a_file_without_changing_it_still_hits() {
    let repo = repo(LINT);
    run(&repo, &[]);
    reset(&repo);
    let file = std::fs::File::options()
        .write(true)
        .open(repo.root().join("a.py"))
        .expect("open");
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(60))
        .expect("touch");
    let out = run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new());
    assert_eq!(out.validator("lint")["cached_files"], 3);
}

#[test]
fn a_new_validator_or_tool_version_misses() {
    let repo = repo(LINT);
    run(&repo, &[]);
    for (var, value) in [
        ("FAKE_VALIDATOR_VERSION", "0.0.2"),
        ("FAKE_TOOL_VERSION", "9.9"),
    ] {
        reset(&repo);
        run_env(&repo, &[], &[(var, value)]);
        assert_eq!(requests(&repo), ["a.py,pkg/b.py,pkg/c.py"], "{var}");
    }
}

#[test]
fn the_config_table_and_declared_config_files_are_part_of_the_key() {
    let repo = repo(&format!("{LINT}config_files = [\"lint.cfg\"]\n"));
    run(&repo, &[]);
    reset(&repo);
    repo.write("setup.cfg", "[anything]\n");
    run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new(), "an undeclared file");
    repo.write("pkg/lint.cfg", "strict = true\n");
    run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["pkg/b.py,pkg/c.py"],
        "a declared file applies below it"
    );
    reset(&repo);
    repo.config(&format!("{LINT}config_files = [\"lint.cfg\"]\nlevel = 2\n"));
    run(&repo, &[]);
    assert_eq!(requests(&repo), ["a.py,pkg/b.py,pkg/c.py"], "the table");
    reset(&repo);
    // The same table with its keys in another order is the same configuration.
    repo.config(
        "[validators.lint]\nlevel = 2\nconfig_files = [\"lint.cfg\"]\n\
         record = \"requests.log\"\nfindings = 1\n",
    );
    run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new(), "key order");
}

#[test]
fn where_declared_config_files_are_not_is_kept_and_what_comes_later_is_seen() {
    // Absence is kept only under a directory stamp two seconds older than the run.
    let looked = |out: &Outcome| -> usize {
        let line = out.stderr.lines().find(|l| l.contains("names looked up"));
        let words = line.map(|l| l.split(' ').collect::<Vec<_>>());
        let at = words
            .as_ref()
            .and_then(|w| w.iter().position(|&x| x == "names"));
        match (&words, at) {
            (Some(words), Some(at)) => words[at - 1].parse().expect("a count"),
            _ => panic!("no count of looks:\n{}", out.stderr),
        }
    };
    let repo = repo(&format!(
        "{LINT}config_files = [\"lint.cfg\", \"lint.toml\"]\n"
    ));
    age_past_settling();
    let first = run(&repo, &["-vv"]);
    assert!(
        first
            .stderr
            .contains("kept the configuration files' absence"),
        "{}",
        first.stderr
    );
    reset(&repo);
    let second = run(&repo, &["-vv"]);
    assert_eq!(requests(&repo), Vec::<String>::new());
    assert!(
        looked(&second) + 2 <= looked(&first),
        "pkg's two names are not looked up again\n{}",
        second.stderr
    );
    // A declared file created where its absence was kept changes pkg's stamp.
    repo.write("pkg/lint.toml", "strict = true\n");
    run(&repo, &[]);
    assert_eq!(requests(&repo), ["pkg/b.py,pkg/c.py"], "a file added");
    reset(&repo);
    age_past_settling();
    run(&repo, &[]);
    reset(&repo);
    // Rewritten in place, with pkg's stamp unchanged and kept: found files are read again.
    repo.write("pkg/lint.toml", "strict = false\n");
    run(&repo, &[]);
    assert_eq!(requests(&repo), ["pkg/b.py,pkg/c.py"], "a file rewritten");
    let cleared = repo.run(&["cache", "clear"]);
    assert_eq!(cleared.code, Some(0), "{}", cleared.stderr);
    assert!(!repo.cache_dir().join("probes").exists());
}

#[test]
fn a_project_validator_hits_only_when_no_input_changed() {
    let repo = repo(&format!("{LINT}scope = \"project\"\n"));
    run(&repo, &[]);
    reset(&repo);
    let again = run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new());
    assert_eq!(again.validator("lint")["cached_files"], 3);
    repo.write("a.py", "a = 10\n");
    let changed = run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["a.py,pkg/b.py,pkg/c.py"],
        "one change rechecks all"
    );
    assert_eq!(changed.validator("lint")["cached_files"], 0);
}

#[test]
fn results_of_a_run_that_did_not_complete_are_kept_only_per_finished_file() {
    // A per-file validator that crashes after its first result: that file is kept.
    let repo = repo(&format!("{LINT}crash_after = 1\n"));
    let crashed = repo.check("lint");
    assert_eq!(crashed.code, Some(3));
    reset(&repo);
    let out = repo.check("lint");
    assert_eq!(out.validator("lint")["cached_files"], 1);
    assert_eq!(requests(&repo).len(), 1);
    assert_eq!(
        requests(&repo)[0].split(',').count(),
        2,
        "the other two files"
    );

    // A project validator that crashes keeps nothing.
    let repo = repo_project_crash();
    repo.run(&["run", "--all", "--validators", "lint"]);
    reset(&repo);
    let out = repo.check("lint");
    assert_eq!(out.validator("lint")["cached_files"], 0);
    assert_eq!(requests(&repo), ["a.py,pkg/b.py,pkg/c.py"]);
}

#[test]
fn results_written_to_the_cache_while_later_ones_arrive_are_all_kept_when_the_validator_crashes() {
    // The coordinator writes each batch of 64 results to the cache while it reads the next:
    // a crash after 100 results finds one batch being written and 36 results staged.
    let config = "[validators.lint]\nrecord = \"requests.log\"\ncrash_after = 100\n";
    let repo = Repo::with_fakes(150, &["lint"], config);
    let crashed = repo.check("lint");
    assert_eq!(crashed.code, Some(3), "{}", crashed.stderr);
    reset(&repo);
    let out = repo.check("lint");
    assert_eq!(out.validator("lint")["cached_files"], 100, "{}", out.stderr);
    let asked = requests(&repo);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        asked[0].split(',').count(),
        50,
        "only the files without a result"
    );
}

fn repo_project_crash() -> Repo {
    repo(&format!("{LINT}scope = \"project\"\ncrash_after = 2\n"))
}

#[test]
fn no_cache_and_cache_off_check_everything() {
    let repo = repo(LINT);
    run(&repo, &[]);
    reset(&repo);
    run(&repo, &["--no-cache"]);
    run_env(&repo, &[], &[("ORCHESTRATOR_CACHE", "off")]);
    assert_eq!(requests(&repo).len(), 2);
}

#[test]
fn a_corrupt_cache_warns_once_and_the_run_is_complete() {
    let repo = repo(LINT);
    std::fs::write(repo.cache_dir().join("cache.sqlite3"), vec![0x42; 4096]).expect("write");
    let out = run(&repo, &[]);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.validator("lint")["findings"], 3);
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("warning"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", out.stderr);
    assert!(warnings[0].contains("cache.sqlite3"), "{}", warnings[0]);
    assert!(
        warnings[0].contains("orchestrator cache clear"),
        "{}",
        warnings[0]
    );
    let cleared = repo.run(&["cache", "clear"]);
    assert_eq!(cleared.code, Some(0), "{}", cleared.stderr);
    let out = run(&repo, &[]);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
}

#[test]
fn an_unusable_cache_directory_gives_an_uncached_run() {
    let repo = repo(LINT);
    let blocker = repo.root().join("not-a-dir");
    std::fs::write(&blocker, "x").expect("write");
    let dir = blocker.join("cache");
    let out = run_env(
        &repo,
        &[],
        &[("ORCHESTRATOR_CACHE_DIR", dir.to_str().expect("utf-8"))],
    );
    assert_eq!(out.validator("lint")["findings"], 3);
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains("warning")).count(),
        1
    );
}

#[test]
fn a_cache_locked_for_too_long_gives_an_uncached_run() {
    let repo = repo(LINT);
    run(&repo, &[]);
    reset(&repo);
    // Another process holds the write lock for longer than the busy timeout.
    let db = repo.cache_dir().join("cache.sqlite3");
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys,time\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(12)",
            db.to_str().expect("utf-8"),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.as_mut().expect("piped")),
        &mut line,
    )
    .expect("read");
    assert_eq!(line.trim(), "locked");
    let out = run(&repo, &[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.validator("lint")["findings"], 3);
    assert_eq!(
        out.stderr.lines().filter(|l| l.contains("warning")).count(),
        1,
        "{}",
        out.stderr
    );
    assert!(
        out.elapsed < std::time::Duration::from_secs(11),
        "gave up in time"
    );
}

#[test]
fn two_runs_at_once_on_one_cache_both_finish_correctly() {
    let shared = tempfile::tempdir().expect("tempdir");
    let dir = shared.path().to_str().expect("utf-8").to_owned();
    let repos: Vec<Repo> = (0..2).map(|_| repo(LINT)).collect();
    for _ in 0..3 {
        let outs: Vec<Outcome> = std::thread::scope(|s| {
            let handles: Vec<_> = repos
                .iter()
                .map(|r| {
                    let dir = dir.clone();
                    s.spawn(move || run_env(r, &[], &[("ORCHESTRATOR_CACHE_DIR", dir.as_str())]))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("run"))
                .collect()
        });
        for out in outs {
            assert_eq!(out.code, Some(1));
            assert_eq!(out.validator("lint")["findings"], 3);
            assert!(!out.stderr.contains("warning"), "{}", out.stderr);
        }
    }
}

#[test]
fn cache_commands_show_clear_and_trim() {
    let repo = repo(LINT);
    run(&repo, &[]);
    run(&repo, &[]);
    let stats = repo.run(&["cache", "stats"]);
    assert_eq!(stats.code, Some(0), "{}", stats.stderr);
    // Three results, and the record of the complete run: its head, its body's list of
    // chunks and one chunk, and its index's.
    assert!(stats.stdout.contains("entries       8"), "{}", stats.stdout);
    assert!(
        stats.stdout.contains("3 hits, 0 misses"),
        "{}",
        stats.stdout
    );
    let gc = repo.run(&["cache", "gc", "--max-size", "0"]);
    assert_eq!(gc.code, Some(0), "{}", gc.stderr);
    assert!(
        gc.stdout.contains("removed 8 of 8 entries"),
        "{}",
        gc.stdout
    );
    let bad = repo.run(&["cache", "gc", "--max-size", "lots"]);
    assert_eq!(bad.code, Some(2));
    assert!(
        bad.stderr.contains("invalid size \"lots\""),
        "{}",
        bad.stderr
    );
    let kept = repo.cache_dir().join("rendered");
    assert!(kept.is_dir(), "the report's findings were kept");
    let cleared = repo.run(&["cache", "clear"]);
    assert!(cleared.stdout.contains("cleared"), "{}", cleared.stdout);
    assert!(!kept.exists(), "cache clear removes the kept findings");
    let stats = repo.run(&["cache", "stats"]);
    assert!(stats.stdout.contains("no cache"), "{}", stats.stdout);
}

#[test]
fn a_result_is_served_only_while_the_inputs_it_listed_are_unchanged() {
    served_while_inputs_are_unchanged("");
}

#[test]
fn inputs_sent_as_numbers_are_followed_as_inputs_sent_as_paths() {
    served_while_inputs_are_unchanged("inputs_as = \"numbers\"\n");
}

#[test]
fn input_numbers_start_again_with_every_request() {
    // One file a request, each result listing its own input as number 0: a coordinator that
    // kept one request's numbers for the next would key `pkg/b.py` on `a.py.dep`.
    let repo = repo(&format!(
        "{LINT}batch_size = 1\ninputs = [\"{{file}}.dep\"]\ninputs_as = \"numbers\"\n"
    ));
    let files = ["a.py", "pkg/b.py", "pkg/c.py"];
    for file in files {
        repo.write(&format!("{file}.dep"), "first\n");
    }
    run(&repo, &[]);
    for file in files {
        reset(&repo);
        repo.write(&format!("{file}.dep"), "second\n");
        run(&repo, &[]);
        assert_eq!(requests(&repo), [file], "only {file}'s own input changed");
    }
}

/// Every result lists `style.css` (present) and `theme.css` (absent) as inputs, `inputs_as`
/// says how: files the run never selects (the fake checks only Python files).
fn served_while_inputs_are_unchanged(inputs_as: &str) {
    let repo = repo(&format!(
        "{LINT}inputs = [\"style.css\", \"theme.css\"]\n{inputs_as}"
    ));
    repo.write("style.css", "a { color: red }\n");
    run(&repo, &[]);
    reset(&repo);
    run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        Vec::<String>::new(),
        "unchanged inputs hit"
    );
    repo.write("style.css", "a { color: blue }\n");
    run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["a.py,pkg/b.py,pkg/c.py"],
        "a changed input"
    );
    reset(&repo);
    repo.write("theme.css", "b {}\n");
    run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["a.py,pkg/b.py,pkg/c.py"],
        "an input that was absent appeared"
    );
    reset(&repo);
    std::fs::remove_file(repo.root().join("style.css")).expect("remove");
    let out = run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["a.py,pkg/b.py,pkg/c.py"],
        "an input vanished"
    );
    assert_eq!(out.validator("lint")["cached_files"], 0);
    reset(&repo);
    let out = run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new());
    assert_eq!(out.validator("lint")["cached_files"], 3);
}

#[test]
fn inputs_changed_and_changed_back_are_answered_from_the_cache() {
    // A change undone, or a branch checked out again: the results made with the inputs as they
    // were are still kept, though checking with the changed inputs replaced them.
    let repo = repo(&format!("{LINT}inputs = [\"style.css\"]\n"));
    repo.write("style.css", "a { color: red }\n");
    let first = run(&repo, &[]);
    repo.write("style.css", "a { color: blue }\n");
    reset(&repo);
    run(&repo, &[]);
    assert_eq!(
        requests(&repo),
        ["a.py,pkg/b.py,pkg/c.py"],
        "a changed input"
    );
    repo.write("style.css", "a { color: red }\n");
    reset(&repo);
    let back = run(&repo, &[]);
    assert_eq!(requests(&repo), Vec::<String>::new(), "the input as it was");
    assert_eq!(back.validator("lint")["cached_files"], 3);
    assert_eq!(findings(&back), findings(&first));
}

/// A JSON report of the fakes `lint` and `style`, which find something (exit 0 or 1).
fn run_lint_and_style(repo: &Repo, extra: &[&str]) -> Outcome {
    let mut args = vec![
        "run",
        "--all",
        "--format",
        "json",
        "--validators",
        "lint,style",
    ];
    args.extend_from_slice(extra);
    let out = repo.run(&args);
    assert!(
        matches!(out.code, Some(0 | 1)),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

#[test]
fn the_last_reports_findings_are_copied_while_their_records_answer_and_read_when_not() {
    let repo = Repo::new();
    repo.write("a.py", "a = 1\n").write("pkg/b.py", "b = 2\n");
    repo.fake("lint").fake("style");
    let config = |style: u32| {
        format!(
            "[validators.lint]\nfindings = 1\n\n[validators.style]\nfindings = {style}\n\
             severity = \"warning\"\n"
        )
    };
    repo.config(&config(1));
    let run = |extra: &[&str]| {
        let out = run_lint_and_style(&repo, extra);
        assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
        out
    };
    let unread = |out: &Outcome, name: &str| {
        out.stderr.lines().any(|line| {
            line.contains("results from the record")
                && line.contains(&format!("validator={name}"))
                && line.contains("unread=true")
        })
    };
    let fresh = |out: &Outcome| {
        let uncached = run(&["--no-cache"]);
        assert_eq!(findings(out), findings(&uncached), "{}", out.stderr);
        for name in ["lint", "style"] {
            for field in ["status", "findings", "files_done"] {
                assert_eq!(out.validator(name)[field], uncached.validator(name)[field]);
            }
        }
    };
    let cold = run(&["-vv"]);
    assert!(!unread(&cold, "lint"), "{}", cold.stderr);
    // Nothing changed: both validators' findings are those kept, and are not read.
    let warm = run(&["-vv"]);
    assert!(
        unread(&warm, "lint") && unread(&warm, "style"),
        "{}",
        warm.stderr
    );
    assert_eq!(findings(&warm).as_array().map(Vec::len), Some(4));
    assert_eq!(warm.validator("lint")["status"], "failed");
    assert_eq!(warm.validator("style")["status"], "passed");
    assert_eq!(warm.validator("style")["cached_files"], 2);
    fresh(&warm);
    // style's configuration changed: lint's record still answers and is left unread at first,
    // but the findings are no longer those kept, so it is read before the report is written.
    repo.config(&config(2));
    let mixed = run(&["-vv"]);
    assert!(unread(&mixed, "lint"), "{}", mixed.stderr);
    assert!(!unread(&mixed, "style"), "{}", mixed.stderr);
    assert_eq!(findings(&mixed).as_array().map(Vec::len), Some(6));
    fresh(&mixed);
    // That run kept its findings in turn.
    let again = run(&["-vv"]);
    assert!(
        unread(&again, "lint") && unread(&again, "style"),
        "{}",
        again.stderr
    );
    assert_eq!(findings(&again), findings(&mixed));
    // A report in another format needs every finding: nothing is left unread.
    let sarif = repo.root().join("report.sarif");
    let sarif_arg = format!("sarif={}", sarif.display());
    let both = run(&["-vv", "--report", &sarif_arg]);
    assert!(!unread(&both, "lint"), "{}", both.stderr);
    assert_eq!(findings(&both), findings(&mixed));
    let log: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).expect("sarif")).expect("json");
    assert_eq!(
        log["runs"].as_array().map(|runs| runs
            .iter()
            .map(|r| r["results"].as_array().map_or(0, Vec::len))
            .sum::<usize>()),
        Some(6)
    );
}

#[test]
fn findings_a_closed_stdout_cut_short_are_not_kept() {
    // Enough findings that the report outgrows the output buffer, so the write that fails is
    // one of the findings'.
    let repo = repo(LINT);
    for i in 0..60 {
        repo.write(&format!("more/m{i}.py"), "m = 1\n");
    }
    let args = ["run", "--all", "--format", "json", "--validators", "lint"];
    let cut = repo.run_with_stdout_closed(&args);
    assert_eq!(
        cut.code,
        Some(1),
        "a closed stdout is not an error: {}",
        cut.stderr
    );
    // The next run reads its findings, whole, instead of copying what the cut run wrote.
    let warm = run(&repo, &["-vv"]);
    assert!(!warm.stderr.contains("unread=true"), "{}", warm.stderr);
    assert_eq!(findings(&warm).as_array().map(Vec::len), Some(63));
    assert_eq!(findings(&warm), findings(&run(&repo, &["--no-cache"])));
}

#[test]
fn the_trees_listing_is_reused_and_changed_directories_alone_read_again() {
    // A listing is kept only when every directory and ignore file is older than the walk by
    // two seconds, so the tree is left to age. The fake records nothing: a file it wrote into
    // the root would change the root.
    let repo = repo("[validators.lint]\nfindings = 1\n");
    repo.write(".gitignore", "*.log\n")
        .write("pkg/old.log", "x\n");
    let walked = |out: &Outcome| !out.stderr.contains("not walked");
    age_past_settling();
    let first = run(&repo, &["-vv"]);
    assert!(walked(&first), "{}", first.stderr);
    assert!(
        first.stderr.contains("kept the tree's listing"),
        "{}",
        first.stderr
    );
    assert_eq!(lint_files(&first), 3, "{}", first.stdout);
    let second = run(&repo, &["-vv"]);
    assert!(!walked(&second), "{}", second.stderr);
    assert_eq!(findings(&second), findings(&first));
    // A new file in a directory below the root: that directory alone is read again.
    repo.write("pkg/new.py", "n = 1\n");
    let added = run(&repo, &["-vv"]);
    assert!(
        added.stderr.contains("1 changed directories read again"),
        "{}",
        added.stderr
    );
    assert_eq!(lint_files(&added), 4, "{}", added.stdout);
    // A report written into the tree changes the root, which is read again (with `pkg`,
    // too recent to have been kept).
    let out = repo.root().join("report.json");
    let out = out.to_str().expect("utf-8");
    run(&repo, &["--output", out]);
    let again = run(&repo, &["-vv", "--output", out]);
    assert!(
        again.stderr.contains("2 changed directories read again"),
        "{}",
        again.stderr
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out).expect("report")).expect("json");
    assert_eq!(report["validators"][0]["files"], 4, "{report:#}");
    // An ignore file edited in place: no directory changes, the rule does.
    age_past_settling();
    let kept = run(&repo, &["-vv"]);
    assert!(
        kept.stderr.contains("kept the tree's listing"),
        "{}",
        kept.stderr
    );
    repo.write(".gitignore", "*.log\npkg/new.py\n");
    let ignored = run(&repo, &["-vv"]);
    assert!(walked(&ignored), "{}", ignored.stderr);
    assert_eq!(lint_files(&ignored), 3, "{}", ignored.stdout);
    // `--changed` lists the whole tree beside the changes from the same listing.
    repo.git(&["init", "-q"])
        .git(&["add", "-A"])
        .git(&["commit", "-qm", "t"]);
    age_past_settling();
    run(&repo, &[]);
    repo.write("a.py", "a = 10\n");
    let changed = repo.run(&["run", "--changed", "--validators", "lint", "-vv"]);
    assert!(matches!(changed.code, Some(0 | 1)), "{}", changed.stderr);
    assert!(changed.stderr.contains("not walked"), "{}", changed.stderr);
    // `--no-cache` walks and keeps nothing.
    age_past_settling();
    let uncached = run(&repo, &["-vv", "--no-cache"]);
    assert!(walked(&uncached), "{}", uncached.stderr);
    assert!(
        !uncached.stderr.contains("kept the tree's listing"),
        "{}",
        uncached.stderr
    );
    let cleared = repo.run(&["cache", "clear"]);
    assert_eq!(cleared.code, Some(0), "{}", cleared.stderr);
    assert!(
        !repo.cache_dir().join("listing").exists(),
        "cache clear removes the listing"
    );
}

#[test]
fn git_is_not_asked_for_the_tracked_files_while_its_index_is_unchanged() {
    // The list is kept only when the index is two seconds older than the run, so it is left
    // to age after each change to it.
    let repo = repo("[validators.lint]\nfindings = 1\n");
    repo.write(".gitignore", "forced.py\nother.py\n")
        .write("forced.py", "x = 1\n")
        .git(&["init", "-q"])
        .git(&["add", "-A"])
        .git(&["add", "-f", "forced.py"])
        .git(&["commit", "-qm", "t"]);
    let git_run = |out: &Outcome| !out.stderr.contains("git not run");
    age_past_settling();
    let first = run(&repo, &["-vv"]);
    assert!(git_run(&first), "{}", first.stderr);
    assert!(
        first.stderr.contains("kept the ") && first.stderr.contains(" files git tracks"),
        "{}",
        first.stderr
    );
    // a.py, pkg/b.py, pkg/c.py, and forced.py though ignored.
    assert_eq!(lint_files(&first), 4, "{}", first.stdout);
    let second = run(&repo, &["-vv"]);
    assert!(!git_run(&second), "{}", second.stderr);
    assert_eq!(lint_files(&second), 4, "{}", second.stdout);
    // Another ignored file tracked: the index changed, git lists it, and the list is not kept
    // until the index has aged.
    repo.write("other.py", "y = 1\n")
        .git(&["add", "-f", "other.py"]);
    let added = run(&repo, &["-vv"]);
    assert!(git_run(&added), "{}", added.stderr);
    assert!(
        added.stderr.contains("the tracked files were not kept"),
        "{}",
        added.stderr
    );
    assert_eq!(lint_files(&added), 5, "{}", added.stdout);
    age_past_settling();
    run(&repo, &[]);
    let kept = run(&repo, &["-vv"]);
    assert!(!git_run(&kept), "{}", kept.stderr);
    assert_eq!(lint_files(&kept), 5, "{}", kept.stdout);
    // Untracked again: gone from the run, as git says.
    repo.git(&["rm", "-q", "--cached", "other.py"]);
    let removed = run(&repo, &["-vv"]);
    assert!(git_run(&removed), "{}", removed.stderr);
    assert_eq!(lint_files(&removed), 4, "{}", removed.stdout);
    let cleared = repo.run(&["cache", "clear"]);
    assert_eq!(cleared.code, Some(0), "{}", cleared.stderr);
    assert!(
        !repo.cache_dir().join("tracked").exists(),
        "cache clear removes the tracked files"
    );
}

#[test]
fn after_a_change_the_report_splices_the_kept_findings_with_the_changed_files_own() {
    splices_the_kept_findings(None);
}

/// The same, with the report written to a file: the kept findings are that file, linked in the
/// cache, not a copy of it.
#[test]
fn a_report_written_to_a_file_is_spliced_from_the_last_one_linked_in_the_cache() {
    use std::os::unix::fs::MetadataExt;
    let reports = tempfile::tempdir().expect("tempdir");
    let report = reports.path().join("report.json");
    let repo = splices_the_kept_findings(Some(&report));
    let names = |dir: &Path| -> Vec<String> {
        let entries = std::fs::read_dir(dir).expect("dir");
        let mut names: Vec<String> = entries
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(reports.path()),
        ["report.json"],
        "no temporary file is left"
    );
    let kept = repo.cache_dir().join("rendered");
    let linked: Vec<String> = names(&kept)
        .into_iter()
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(linked.len(), 1, "{:?}", names(&kept));
    let link = std::fs::metadata(kept.join(&linked[0])).expect("the link");
    assert_eq!(link.nlink(), 1, "the report it was is replaced since");
    let own = kept.join(linked[0].trim_end_matches(".json"));
    let own = std::fs::metadata(own).expect("the kept file");
    assert!(
        own.len() < link.len() / 2,
        "the findings are the report's, not copied"
    );
}

/// A warm run whose findings are those of the report already in its output file writes only
/// the two ends of that report, around them: the file stays the one linked in the cache. A
/// report changed by hand is written whole, and linked again; so is a report to another file.
/// Every report file the findings are linked in has room for a longer head before them. On
/// stdout they come as always.
#[test]
fn a_warm_report_to_the_same_file_is_written_around_the_findings_already_there() {
    use std::io::Write;
    use std::os::unix::fs::MetadataExt;
    let repo = Repo::new();
    repo.write("a.py", "flagged\n").write("b.py", "b = 2\n");
    repo.fake("lint").fake("style");
    repo.config(
        "[validators.lint]\nfixes = \"flagged\"\n\n[validators.style]\nfindings = 2\n\
         severity = \"warning\"\n",
    );
    let reports = tempfile::tempdir().expect("tempdir");
    let report = reports.path().join("report.json");
    let output = report.to_str().expect("a UTF-8 path");
    let run = || {
        let out = run_lint_and_style(&repo, &["-vv", "--output", output]);
        let text = std::fs::read_to_string(&report).expect("the report");
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let inode = std::fs::metadata(&report).expect("the report").ino();
        (out, json, inode)
    };
    let (_, cold, inode) = run();
    // Room before the findings the cache links, for a later head that comes out longer (a
    // warm run slower than this one by a digit of milliseconds).
    let room = format!(",{}\n  \"findings\": [", " ".repeat(64));
    let text = std::fs::read_to_string(&report).expect("the report");
    assert!(text.contains(&room), "room for a longer head: {text}");
    let (warm, again, around) = run();
    assert!(warm.stderr.contains("unread=true"), "{}", warm.stderr);
    assert_eq!(around, inode, "the report is written around its findings");
    let (_, json, around) = run();
    assert_eq!(around, inode);
    assert_eq!(std::fs::metadata(&report).expect("report").nlink(), 2);
    for json in [&again, &json] {
        assert_eq!(json["findings"], cold["findings"]);
        assert_eq!(json["findings"].as_array().map(Vec::len), Some(5));
        assert_eq!(json["validators"][0]["cached_files"], 2);
        assert_eq!(json["status"], cold["status"]);
    }
    // Changed by hand, in place: written whole, and around its findings the time after.
    std::fs::OpenOptions::new()
        .append(true)
        .open(&report)
        .and_then(|mut f| f.write_all(b"\n"))
        .expect("append");
    let (_, json, whole) = run();
    assert_ne!(whole, inode);
    assert_eq!(json["findings"], cold["findings"]);
    let (_, json, around) = run();
    assert_eq!((around, &json["findings"]), (whole, &cold["findings"]));
    // To another file, the kept findings are copied, with room for a longer head, and that
    // file is the one they are linked in from then on.
    let other = reports.path().join("other.json");
    let other_arg = other.to_str().expect("a UTF-8 path");
    let to_other = || {
        run_lint_and_style(&repo, &["-vv", "--output", other_arg]);
        let inode = std::fs::metadata(&other).expect("the report").ino();
        (std::fs::read_to_string(&other).expect("the report"), inode)
    };
    let (text, copied) = to_other();
    assert!(text.contains(&room), "room for a longer head: {text}");
    let (again, around) = to_other();
    assert_eq!(around, copied, "written around the findings");
    let parsed = |text: &str| -> serde_json::Value { serde_json::from_str(text).expect("JSON") };
    assert_eq!(parsed(&again)["findings"], cold["findings"]);
    // On stdout, the same findings copied come without room, as any run writes them.
    let stdout = run_lint_and_style(&repo, &["-vv"]);
    assert!(stdout.stderr.contains("unread=true"), "{}", stdout.stderr);
    assert!(
        stdout.stdout.contains("],\n  \"findings\": [\n"),
        "{}",
        stdout.stdout
    );
}

/// Runs the changes of the splice tests, the report on stdout or in `file`.
fn splices_the_kept_findings(file: Option<&Path>) -> Repo {
    let repo = Repo::new();
    repo.write("a.py", "flagged\n")
        .write("b.py", "b = 2\n")
        .write("c.py", "flagged\nflagged\n")
        .write("d.py", "flagged\n");
    repo.fake("lint").fake("style");
    let config = |style: &str| {
        format!(
            "[validators.lint]\nfixes = \"flagged\"\n\n[validators.style]\nfindings = 1\n\
             severity = \"{style}\"\n"
        )
    };
    repo.config(&config("warning"));
    let run = |extra: &[&str]| {
        let mut args = extra.to_vec();
        let output = file.map(|f| f.to_str().expect("a UTF-8 path"));
        args.extend(output.iter().flat_map(|f| ["--output", f]));
        let mut out = run_lint_and_style(&repo, &args);
        if let Some(file) = file {
            out.stdout = std::fs::read_to_string(file).expect("the report");
        }
        out
    };
    let spliced = |out: &Outcome| {
        out.stderr
            .lines()
            .find(|line| line.contains("the report copies the kept findings of"))
            .map(str::to_owned)
    };
    // The whole report as an uncached run writes it, timings aside.
    let same_as_fresh = |out: &Outcome| {
        let fresh = run(&["--no-cache"]);
        assert_eq!(findings(out), findings(&fresh), "{}", out.stderr);
        assert_eq!(out.json()["status"], fresh.json()["status"]);
        assert_eq!(out.code, fresh.code);
        for name in ["lint", "style"] {
            for field in ["status", "findings", "files_done"] {
                assert_eq!(
                    out.validator(name)[field],
                    fresh.validator(name)[field],
                    "{name}"
                );
            }
        }
    };
    run(&[]);
    let warm = run(&["-vv"]);
    assert_eq!(spliced(&warm), None, "nothing changed: {}", warm.stderr);
    // b.py gains a finding, d.py is gone and e.py is new: their findings are written, the
    // others' copied.
    repo.write("b.py", "b = 2  # flagged\n")
        .write("e.py", "flagged\n");
    std::fs::remove_file(repo.root().join("d.py")).expect("remove");
    let changed = run(&["-vv"]);
    assert_eq!(
        spliced(&changed)
            .as_deref()
            .map(|l| l.split("findings of ").nth(1)),
        Some(Some("2 paths, and writes 4 findings")),
        "{}",
        changed.stderr
    );
    same_as_fresh(&changed);
    // What that run kept is copied whole by the next.
    let again = run(&["-vv"]);
    assert!(again.stderr.contains("unread=true"), "{}", again.stderr);
    assert_eq!(findings(&again), findings(&changed));
    // c.py loses one of its two findings.
    repo.write("c.py", "flagged\nc = 3\n");
    let one = run(&["-vv"]);
    assert!(spliced(&one).is_some(), "{}", one.stderr);
    same_as_fresh(&one);
    // style's findings become errors: style's record is another, so none of its kept findings
    // stay, every path changed, and the report is written whole.
    repo.config(&config("error"));
    let mixed = run(&["-vv"]);
    assert_eq!(spliced(&mixed), None, "{}", mixed.stderr);
    assert_eq!(mixed.validator("style")["status"], "failed");
    same_as_fresh(&mixed);
    repo
}
