//! Retries, circuit breakers, ordering and fail-fast, through whole runs of the real
//! `orchestrator` with fake validators that fail on purpose.

use harness::{Outcome, Repo};

fn repo(n: usize, names: &[&str], config: &str) -> Repo {
    Repo::with_fakes(n, names, config)
}

fn check(repo: &Repo, validators: &str) -> Outcome {
    repo.check_clean(validators)
}

fn statuses(v: &serde_json::Value) -> Vec<String> {
    v["attempts"]
        .as_array()
        .expect("attempts is a list")
        .iter()
        .map(|a| a["status"].as_str().expect("status").to_owned())
        .collect()
}

/// The files of each request the fake recorded, one list per request.
fn requests(repo: &Repo) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(repo.root().join("requests.log")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let files = l.split(' ').next().unwrap_or_default();
            files.split(',').map(str::to_owned).collect()
        })
        .collect()
}

#[test]
fn a_transient_failure_is_retried_for_the_files_without_a_result_only() {
    let repo = repo(
        3,
        &["flaky"],
        "[validators.flaky]\nflaky = 1\nfindings = 1\nrecord = \"requests.log\"\n",
    );
    let out = check(&repo, "flaky");
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let v = out.validator("flaky");
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(statuses(&v), ["crashed", "failed"], "{v}");
    assert_eq!(v["attempts"][0]["message"], "the service went away");
    assert_eq!(v["findings"], 3, "the first file's result was kept: {v}");
    let sent = requests(&repo);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_eq!(sent[0], ["src/m0.py", "src/m1.py", "src/m2.py"]);
    assert_eq!(
        sent[1],
        ["src/m1.py", "src/m2.py"],
        "only the files without a result"
    );
    let human = repo.run(&["run", "--all", "--validators", "flaky"]);
    // The second run is answered by the cache: no retry to tell.
    assert!(!human.stdout.contains("retried"), "{}", human.stdout);
}

#[test]
fn a_validator_killed_from_outside_is_retried_and_the_human_report_says_so() {
    let repo = repo(
        2,
        &["oom"],
        "[validators.oom]\nflaky = 1\nflaky_how = \"killed\"\n",
    );
    let out = repo.run(&["run", "--all", "--no-cache", "--validators", "oom"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("retried oom: passed after 1 retry"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("attempt 1: crashed after")
            && out
                .stdout
                .contains("killed by signal 9 (SIGKILL) before finishing"),
        "{}",
        out.stdout
    );
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
}

#[test]
fn a_crash_is_not_retried_unless_retry_on_names_it() {
    let config = "[validators.crashy]\nflaky = 1\nflaky_how = \"abort\"\n";
    let repo = repo(2, &["crashy"], config);
    let out = check(&repo, "crashy");
    assert_eq!(out.code, Some(3), "{}\n{}", out.stdout, out.stderr);
    let v = out.validator("crashy");
    assert_eq!(statuses(&v), ["crashed"], "{v}");
    assert_eq!(v["partial"], true);

    let repo = self::repo(
        2,
        &["crashy"],
        &format!("{config}retry_on = [\"transient\", \"crashed\"]\n"),
    );
    let out = check(&repo, "crashy");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(statuses(&out.validator("crashy")), ["crashed", "passed"]);
}

#[test]
fn retries_stop_at_the_configured_number_and_zero_turns_them_off() {
    let repo = repo(
        1,
        &["broken"],
        "[validators.broken]\nflaky = 100\nflaky_after = 0\nretries = 3\n",
    );
    let out = check(&repo, "broken");
    assert_eq!(out.code, Some(3), "{}\n{}", out.stdout, out.stderr);
    let v = out.validator("broken");
    assert_eq!(statuses(&v), ["crashed"; 4], "{v}");
    assert_eq!(v["message"], "the service went away");

    let repo = self::repo(
        1,
        &["broken"],
        "[validators.broken]\nflaky = 100\nflaky_after = 0\nretries = 0\n",
    );
    let out = check(&repo, "broken");
    assert_eq!(statuses(&out.validator("broken")), ["crashed"]);
}

#[test]
fn a_timeout_is_not_retried_by_default() {
    let repo = repo(
        1,
        &["slow"],
        "[validators.slow]\ntimeout = \"1000ms\"\nhang = \"after_handshake\"\n",
    );
    let out = check(&repo, "slow");
    assert_eq!(out.code, Some(3), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(statuses(&out.validator("slow")), ["timed_out"]);
}

#[test]
fn retry_settings_are_checked() {
    let repo = repo(1, &["v"], "[validators.v]\nretry_on = [\"sometimes\"]\n");
    let out = repo.check("v");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "`validators.v.retry_on`: unknown value `sometimes`; the known values are \
             transient, crashed, timed_out"
        ),
        "{}",
        out.stderr
    );
    let repo = self::repo(1, &["v"], "[validators.v]\nretries = -1\n");
    let out = repo.check("v");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`validators.v.retries` must be a whole number from 0 to 10"),
        "{}",
        out.stderr
    );
}

#[test]
fn retries_fit_in_the_validators_own_time_limit() {
    let repo = repo(
        1,
        &["slowfail"],
        "[validators.slowfail]\nflaky = 100\nflaky_after = 0\nretries = 10\nsleep = \"250ms\"\n\
         timeout = \"1500ms\"\n",
    );
    let out = check(&repo, "slowfail");
    assert_eq!(out.code, Some(3), "{}\n{}", out.stdout, out.stderr);
    let v = out.validator("slowfail");
    let attempts = statuses(&v).len();
    assert!((2..11).contains(&attempts), "{v}");
    // The last attempt may be cut short by the limit (timed out), never run past it; the
    // grace period (300 ms) is the only slack.
    assert!(v["duration_ms"].as_u64().expect("ms") < 1800, "{v}");
    assert!(["crashed", "timed_out"].contains(&v["status"].as_str().expect("status")));
}

/// A fake that fails (crashes) in its first `n` processes, behind a breaker opening after two
/// incomplete runs for `cooldown`.
fn breaking(n: usize, cooldown: &str) -> Repo {
    repo(
        1,
        &["shaky"],
        &format!(
            "[breakers]\nfailures = 2\ncooldown = \"{cooldown}\"\n[validators.shaky]\n\
             flaky = {n}\nflaky_after = 0\nretries = 0\nrecord = \"requests.log\"\n"
        ),
    )
}

#[test]
fn a_breaker_opens_after_repeated_incomplete_runs_and_keeps_the_run_incomplete() {
    let repo = breaking(100, "10m");
    for _ in 0..2 {
        let out = check(&repo, "shaky");
        assert_eq!(out.validator("shaky")["status"], "crashed");
    }
    let out = check(&repo, "shaky");
    assert_eq!(
        out.code,
        Some(3),
        "an open breaker is never a pass: {}",
        out.stdout
    );
    let v = out.validator("shaky");
    assert_eq!(v["status"], "skipped", "{v}");
    assert_eq!(v["skip_reason"], "circuit_open", "{v}");
    let message = v["message"].as_str().expect("message");
    assert!(
        message.starts_with(
            "circuit open: crashed in the last 2 runs (the service went away); next attempt after "
        ) && message.ends_with(", or run with --reset-breakers"),
        "{message}"
    );
    assert_eq!(requests(&repo).len(), 2, "not started while open");
    let listed = repo.run(&["breakers"]);
    assert!(
        listed.stdout.contains("shaky") && listed.stdout.contains("open until"),
        "{}",
        listed.stdout
    );
    // --reset-breakers tries it again; `breakers reset NAME` closes it.
    let out = repo.run(&[
        "run",
        "--all",
        "--reset-breakers",
        "--validators",
        "shaky",
        "--format",
        "json",
    ]);
    assert_eq!(out.validator("shaky")["status"], "crashed");
    assert_eq!(requests(&repo).len(), 3);
    let out = repo.run(&["breakers", "reset", "shaky"]);
    assert_eq!(out.stdout, "closed 1 breaker of shaky\n");
    let listed = repo.run(&["breakers"]);
    assert!(
        listed.stdout.starts_with("every breaker is closed"),
        "{}",
        listed.stdout
    );
}

#[test]
fn a_breaker_counts_one_configuration_and_can_be_turned_off() {
    let repo = breaking(100, "10m");
    for _ in 0..2 {
        check(&repo, "shaky");
    }
    assert_eq!(
        check(&repo, "shaky").validator("shaky")["skip_reason"],
        "circuit_open"
    );
    // Another configuration of the validator is another breaker: it is tried at once.
    let config = std::fs::read_to_string(repo.root().join("orchestrator.toml")).expect("config");
    repo.config(&format!("{config}timeout = \"20s\"\n"));
    assert_eq!(
        check(&repo, "shaky").validator("shaky")["status"],
        "crashed"
    );
    let off = config.replace("[breakers]\n", "[breakers]\nenabled = false\n");
    repo.config(&off);
    for _ in 0..3 {
        assert_eq!(
            check(&repo, "shaky").validator("shaky")["status"],
            "crashed"
        );
    }
}

#[test]
fn after_the_cooldown_one_trial_closes_the_breaker_or_opens_it_again() {
    // Fails twice (opens), then works: the trial closes it. The cooldown leaves runs under
    // load (a busy CI machine) seconds to spare before the trial.
    let repo = breaking(2, "3s");
    for _ in 0..2 {
        check(&repo, "shaky");
    }
    assert_eq!(
        check(&repo, "shaky").validator("shaky")["skip_reason"],
        "circuit_open"
    );
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let out = check(&repo, "shaky");
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(repo
        .run(&["breakers"])
        .stdout
        .starts_with("every breaker is closed"));

    // Fails three times: the trial fails and the breaker opens again at once.
    let repo = breaking(3, "3s");
    for _ in 0..2 {
        check(&repo, "shaky");
    }
    std::thread::sleep(std::time::Duration::from_millis(3100));
    assert_eq!(
        check(&repo, "shaky").validator("shaky")["status"],
        "crashed"
    );
    assert_eq!(
        check(&repo, "shaky").validator("shaky")["skip_reason"],
        "circuit_open"
    );
}

#[test]
fn after_orders_validators_and_requires_skips_those_whose_prerequisite_failed() {
    let repo = repo(
        2,
        &["parse", "types", "docs", "late"],
        "[validators.parse]\nfindings = 1\nsleep = \"300ms\"\n\
         [validators.types]\nrequires = [\"parse\"]\nrecord = \"types.log\"\n\
         [validators.docs]\nrequires = [\"types\"]\n\
         [validators.late]\nafter = [\"parse\"]\nrecord = \"late.log\"\n",
    );
    let out = check(&repo, "docs,late,parse,types");
    assert_eq!(
        out.code,
        Some(1),
        "the prerequisite's failure decides: {}",
        out.stdout
    );
    let types = out.validator("types");
    assert_eq!(types["status"], "skipped");
    assert_eq!(types["skip_reason"], "requires");
    assert_eq!(types["message"], "requires parse, which did not pass");
    assert_eq!(
        out.validator("docs")["message"],
        "requires types, which did not pass"
    );
    assert!(
        !repo.root().join("types.log").exists(),
        "types never started"
    );
    assert_eq!(out.validator("late")["status"], "passed");
    // `late` waited for `parse`: it started after parse's 300 ms request.
    let parse_ms = out.validator("parse")["duration_ms"].as_u64().expect("ms");
    assert!(parse_ms >= 300, "{parse_ms}");
    let json = out.json();
    assert_eq!(json["critical_path"], serde_json::json!(["parse", "late"]));

    // Once parse passes, the chain runs.
    let config = std::fs::read_to_string(repo.root().join("orchestrator.toml")).expect("config");
    repo.config(&config.replace("findings = 1\n", ""));
    let out = check(&repo, "docs,late,parse,types");
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(
        out.json()["critical_path"],
        serde_json::json!(["parse", "types", "docs"])
    );
}

#[test]
fn a_cycle_or_an_unknown_name_in_the_order_is_a_configuration_error() {
    let repo = repo(
        1,
        &["a", "b"],
        "[validators.a]\nafter = [\"b\"]\n[validators.b]\nrequires = [\"a\"]\n",
    );
    let out = repo.check("a,b");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("`after` and `requires` form a cycle: a → b → a"),
        "{}",
        out.stderr
    );
    let repo = self::repo(1, &["a"], "[validators.a]\nrequires = [\"rufff\"]\n");
    let out = repo.check("a");
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("[validators.a] requires names `rufff`, which is not a validator here"),
        "{}",
        out.stderr
    );
}

#[test]
fn fail_fast_stops_the_run_at_the_first_failure() {
    let repo = repo(
        3,
        &["quick", "long", "later"],
        "[validators.quick]\nfindings = 1\n\
         [validators.long]\nwork = \"20000ms\"\n\
         [validators.later]\nafter = [\"long\"]\nrecord = \"later.log\"\n",
    );
    let out = repo.run(&[
        "run",
        "--all",
        "--fail-fast",
        "--format",
        "json",
        "--validators",
        "later,long,quick",
    ]);
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.elapsed < std::time::Duration::from_secs(10),
        "{:?}",
        out.elapsed
    );
    assert!(out.leftovers.is_empty(), "{:?}", out.leftovers);
    let long = out.validator("long");
    assert_eq!(long["skip_reason"], "fail_fast", "{long}");
    assert_eq!(long["message"], "stopped: --fail-fast after quick failed");
    let later = out.validator("later");
    assert_eq!(
        later["message"],
        "not started: --fail-fast after quick failed"
    );
    assert!(!repo.root().join("later.log").exists());
    assert_eq!(out.json()["findings"].as_array().map(Vec::len), Some(3));
}
