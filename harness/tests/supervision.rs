//! Whole runs of the real `orchestrator` against validators that misbehave on purpose: every
//! run must end on time, keep every result that could be had, say what did not complete, and
//! leave no process behind.

use harness::{Outcome, Repo};
use std::time::Duration;

fn repo(n: usize, names: &[&str], config: &str) -> Repo {
    Repo::with_fakes(n, names, config)
}

fn run(repo: &Repo, validators: &str) -> Outcome {
    repo.check_clean(validators)
}

/// The report of validator `name`, after checking the run's exit code and its status.
fn ended(out: &Outcome, code: i32, name: &str, status: &str) -> serde_json::Value {
    assert_eq!(out.code, Some(code), "{}\n{}", out.stdout, out.stderr);
    let v = out.validator(name);
    assert_eq!(v["status"], status, "{v}");
    v
}

fn assert_within(out: &Outcome, limit: Duration) {
    assert!(
        out.elapsed < limit,
        "took {:?}, more than {limit:?}\n{}",
        out.elapsed,
        out.stderr
    );
}

#[test]
fn findings_fail_the_run_and_every_file_is_checked() {
    let repo = repo(3, &["lint"], "[validators.lint]\nfindings = 2\n");
    let out = run(&repo, "lint");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let v = out.validator("lint");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["files"], 3);
    assert_eq!(v["findings"], 6);
    let json = out.json();
    assert_eq!(json["status"], "failed");
    assert_eq!(json["findings"][0]["path"], "src/m0.py");
    assert_eq!(json["findings"][0]["rule"], "FAKE1");
}

#[test]
fn a_clean_run_exits_zero() {
    let repo = repo(
        2,
        &["lint"],
        "[validators.lint]\nseverity = \"warning\"\nfindings = 1\n",
    );
    let out = run(&repo, "lint");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.validator("lint")["status"], "passed");
}

#[test]
fn a_validator_that_hangs_before_its_handshake_times_out() {
    let repo = repo(
        1,
        &["slow"],
        "[validators.slow]\nhang = \"before_handshake\"\ntimeout = \"1s\"\n",
    );
    let out = run(&repo, "slow");
    let v = ended(&out, 3, "slow", "timed_out");
    assert_eq!(
        v["message"],
        "did not finish within 1s; stopped with SIGTERM"
    );
    assert_within(&out, Duration::from_secs(4));
}

#[test]
fn a_validator_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let repo = repo(
        1,
        &["stubborn"],
        "[validators.stubborn]\nhang = \"after_handshake\"\nignore_sigterm = true\ntimeout = \"1s\"\n",
    );
    let out = run(&repo, "stubborn");
    let v = ended(&out, 3, "stubborn", "timed_out");
    assert_eq!(
        v["message"],
        "did not finish within 1s; killed with SIGKILL after ignoring SIGTERM for 300ms"
    );
    assert!(
        out.elapsed >= Duration::from_millis(1300),
        "{:?}",
        out.elapsed
    );
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn an_escaped_descendant_holding_stdout_does_not_hold_up_the_run_and_is_killed() {
    let repo = repo(
        1,
        &["escape"],
        "[validators.escape]\nspawn = \"setsid\"\nhang = \"after_handshake\"\nignore_sigterm = true\ntimeout = \"1s\"\n",
    );
    let out = run(&repo, "escape");
    assert_eq!(out.validator("escape")["status"], "timed_out");
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn a_finished_validator_is_not_waited_for_while_a_grandchild_holds_its_pipes() {
    let repo = repo(
        2,
        &["leaky"],
        "[validators.leaky]\nspawn = \"grandchild\"\nfindings = 1\n",
    );
    let out = run(&repo, "leaky");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.validator("leaky")["status"], "failed");
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn a_crash_mid_stream_keeps_the_finished_files_marked_partial() {
    let repo = repo(
        5,
        &["crashy"],
        "[validators.crashy]\ncrash_after = 2\nfindings = 1\n",
    );
    let out = run(&repo, "crashy");
    let v = ended(&out, 3, "crashy", "crashed");
    assert_eq!(v["partial"], true);
    assert_eq!(v["files"], 5);
    assert_eq!(v["files_done"], 2);
    assert_eq!(
        v["message"],
        "killed by signal 6 (SIGABRT) before finishing"
    );
    let tail = v["stderr_tail"].as_str().expect("a stderr tail");
    assert!(tail.contains("crashing on purpose after 2 files"), "{tail}");
    assert_eq!(out.finding_paths(), ["src/m0.py", "src/m1.py"]);
}

#[test]
fn an_exit_without_done_is_a_crash() {
    let repo = repo(3, &["quitter"], "[validators.quitter]\nexit_after = 1\n");
    let out = run(&repo, "quitter");
    let v = ended(&out, 3, "quitter", "crashed");
    assert_eq!(v["message"], "exited with status 0 before finishing");
    assert_eq!(v["files_done"], 1);
}

#[test]
fn garbage_on_stdout_is_a_protocol_error() {
    let repo = repo(1, &["noisy"], "[validators.noisy]\ngarbage = true\n");
    let out = run(&repo, "noisy");
    let v = ended(&out, 3, "noisy", "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: unknown tag 4294967295 for Response"
    );
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn an_input_number_never_sent_is_a_protocol_error_and_costs_only_its_validator() {
    let repo = repo(
        2,
        &["numbers", "lint"],
        "[validators.numbers]\ninputs = [\"style.css\"]\ninputs_as = \"unsent\"\n\
         [validators.lint]\nfindings = 1\n",
    );
    let out = run(&repo, "numbers,lint");
    let v = ended(&out, 3, "numbers", "protocol_error");
    let message = v["message"].as_str().expect("a message");
    assert!(
        message.contains("names input number 7000, but only 0 input paths were sent"),
        "{message}"
    );
    assert_eq!(
        out.validator("lint")["findings"],
        2,
        "the other validator's results"
    );
}

#[test]
fn an_oversized_frame_is_refused_without_reading_it() {
    let repo = repo(1, &["huge"], "[validators.huge]\noversized = true\n");
    let out = run(&repo, "huge");
    let v = out.validator("huge");
    assert_eq!(v["status"], "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: frame of 4294967295 bytes exceeds the maximum of 16777216 bytes"
    );
    assert!(
        out.max_rss_kib < 200 * 1024,
        "max rss {} KiB",
        out.max_rss_kib
    );
}

#[test]
fn a_stderr_flood_neither_blocks_nor_bloats_the_coordinator() {
    let repo = repo(2, &["flood"], "[validators.flood]\nflood_stderr = 200\n");
    let out = run(&repo, "flood");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(out.validator("flood")["status"], "passed");
    assert!(
        out.max_rss_kib < 200 * 1024,
        "max rss {} KiB",
        out.max_rss_kib
    );
}

#[test]
fn a_validator_that_closes_stdout_is_a_protocol_error_before_its_timeout() {
    let repo = repo(
        1,
        &["mute"],
        "[validators.mute]\nclose_stdout = true\ntimeout = \"30s\"\n",
    );
    let out = run(&repo, "mute");
    let v = out.validator("mute");
    assert_eq!(v["status"], "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: closed its stdout while still running"
    );
    assert_within(&out, Duration::from_secs(10));
}

#[test]
fn a_failed_request_is_a_crash_with_the_validators_message() {
    let repo = repo(
        1,
        &["broken"],
        "[validators.broken]\nfail = \"tool said: internal error\"\n",
    );
    let out = run(&repo, "broken");
    let v = out.validator("broken");
    assert_eq!(v["status"], "crashed");
    assert_eq!(v["message"], "tool said: internal error");
}

#[test]
fn a_missing_tool_is_not_installed_with_the_fix() {
    let repo = repo(
        1,
        &["absent"],
        "[validators.absent]\nnot_installed = true\n",
    );
    let out = run(&repo, "absent");
    let v = ended(&out, 3, "absent", "not_installed");
    assert_eq!(
        v["message"],
        "faketool is not installed; run `install faketool`"
    );
}

#[test]
fn a_protocol_version_mismatch_names_both_versions() {
    let repo = repo(
        1,
        &["future"],
        "[validators.future]\nwrong_version = true\n",
    );
    let out = run(&repo, "future");
    let v = out.validator("future");
    assert_eq!(v["status"], "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: protocol version mismatch: coordinator speaks version 2, validator \
         speaks version 999; upgrade the older side"
    );
}

#[test]
fn a_refused_handshake_is_a_protocol_error_in_the_validators_words() {
    let repo = repo(
        1,
        &["old"],
        "[validators.old]
refuse_hello = \"protocol version mismatch: coordinator speaks version 1, \
         validator speaks version 0; upgrade the older side\"\n",
    );
    let out = run(&repo, "old");
    let v = ended(&out, 3, "old", "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: refused the handshake: protocol version mismatch: coordinator \
         speaks version 1, validator speaks version 0; upgrade the older side"
    );
}

#[test]
fn one_broken_validator_costs_only_its_own_result() {
    let repo = repo(
        2,
        &["good", "crashy", "slow"],
        "[validators.good]\nfindings = 1\n\
         [validators.crashy]\ncrash_after = 1\n\
         [validators.slow]\nhang = \"after_handshake\"\ntimeout = \"1s\"\n",
    );
    let out = run(&repo, "good,crashy,slow");
    assert_eq!(out.code, Some(3));
    assert_eq!(out.validator("good")["status"], "failed");
    assert_eq!(out.validator("good")["findings"], 2);
    assert_eq!(out.validator("crashy")["status"], "crashed");
    assert_eq!(out.validator("slow")["status"], "timed_out");
    assert_eq!(out.json()["status"], "incomplete");
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn batching_splits_requests_but_not_the_report() {
    let config = |batch: &str| {
        format!(
            "[validators.lint]\nfindings = 1\nrecord = \"requests.log\"\nselect = [\"E\"]\n{batch}"
        )
    };
    let plain = repo(5, &["lint"], &config(""));
    let batched = repo(5, &["lint"], &config("batch_size = 2\n"));
    let a = run(&plain, "lint");
    let b = run(&batched, "lint");
    assert_eq!(a.json()["findings"], b.json()["findings"]);
    assert_eq!(a.validator("lint")["files"], b.validator("lint")["files"]);
    let log = std::fs::read_to_string(batched.root().join("requests.log")).expect("recorded");
    let mut requests: Vec<&str> = log.lines().collect();
    requests.sort();
    assert_eq!(
        requests,
        [
            r#"src/m0.py,src/m1.py {"findings":1,"record":"requests.log","select":["E"]}"#,
            r#"src/m2.py,src/m3.py {"findings":1,"record":"requests.log","select":["E"]}"#,
            r#"src/m4.py {"findings":1,"record":"requests.log","select":["E"]}"#,
        ]
    );
}

#[test]
fn jobs_bound_how_many_validators_run_at_once() {
    let repo = repo(
        1,
        &["a", "b"],
        "[validators.a]\nsleep = \"400ms\"\n[validators.b]\nsleep = \"400ms\"\n",
    );
    let out = repo.run(&["run", "--all", "--jobs", "1", "--validators", "a,b"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.elapsed >= Duration::from_millis(800),
        "{:?}",
        out.elapsed
    );
}

#[test]
fn a_disabled_validator_is_skipped_unless_named() {
    let repo = repo(
        1,
        &["off", "on"],
        "[validators.off]\nenabled = false\nfindings = 1\n",
    );
    let out = repo.run(&["run", "--all", "--format", "json"]);
    // Built-in validators beside the binary may run too; only these two matter here.
    let off = out.validator("off");
    assert_eq!(off["status"], "skipped");
    assert_eq!(off["message"], "disabled in orchestrator.toml");
    assert_eq!(out.validator("on")["status"], "passed");
    let named = run(&repo, "off");
    assert_eq!(named.validator("off")["status"], "failed");
}

#[test]
fn a_validator_whose_globs_match_nothing_is_skipped() {
    let repo = repo(1, &["css"], "[validators.css]\nglobs = [\"**/*.css\"]\n");
    let out = run(&repo, "css");
    let v = ended(&out, 0, "css", "skipped");
    assert_eq!(v["message"], "no selected file matches its globs");
}

#[test]
fn files_and_exclude_override_the_manifest_globs() {
    let repo = repo(
        3,
        &["lint"],
        "[validators.lint]\nfindings = 1\nfiles = [\"src/*.py\"]\nexclude = [\"src/m1.py\"]\n",
    );
    repo.write("other.py", "x\n");
    let out = run(&repo, "lint");
    assert_eq!(out.finding_paths(), ["src/m0.py", "src/m2.py"]);
}

#[test]
fn ctrl_c_stops_every_validator_and_prints_what_arrived() {
    let repo = repo(
        3,
        &["lint", "stuck"],
        "[validators.lint]\nfindings = 1\n\
         [validators.stuck]\nhang = \"after_first_file\"\nfindings = 1\nspawn = \"setsid\"\n\
         timeout = \"60s\"\n",
    );
    let out = repo.run_signalled(
        &[
            "run",
            "--all",
            "--format",
            "json",
            "--validators",
            "lint,stuck",
        ],
        Duration::from_millis(1500),
        libc::SIGINT,
    );
    assert!(out.leftovers.is_empty(), "left behind: {:?}", out.leftovers);
    assert_eq!(out.code, Some(130), "{}", out.stderr);
    assert_within(&out, Duration::from_secs(6));
    let json = out.json();
    assert_eq!(json["interrupted"], "SIGINT");
    assert_eq!(json["status"], "incomplete");
    assert_eq!(out.validator("lint")["status"], "failed", "it had finished");
    let stuck = out.validator("stuck");
    assert_eq!(stuck["status"], "interrupted");
    assert_eq!(stuck["partial"], true);
    assert_eq!(stuck["files_done"], 1);
}

#[test]
fn a_slow_validator_that_keeps_reporting_progress_is_not_cut_short() {
    // A silence limit of 400ms (the validator's own suggestion: no configured timeout) and
    // 1.5s of work with progress every 100ms: busy, not hung.
    let repo = repo(
        2,
        &["slow"],
        "[validators.slow]\nsuggested_timeout = \"400ms\"\nwork = \"1500ms\"\n\
         progress_every = \"100ms\"\nfindings = 1\n",
    );
    let out = run(&repo, "slow");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let v = out.validator("slow");
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["files_done"], 2);
}

#[test]
fn a_silent_validator_is_hung_after_its_dimensions_timeout() {
    let repo = repo(
        1,
        &["stuck"],
        "[validators.stuck]\nsuggested_timeout = \"400ms\"\nhang = \"after_handshake\"\n",
    );
    let out = run(&repo, "stuck");
    let v = ended(&out, 3, "stuck", "timed_out");
    assert_eq!(
        v["message"],
        "sent nothing for 400ms and is taken to be hung; stopped with SIGTERM"
    );
    assert_within(&out, Duration::from_secs(4));
}

#[test]
fn an_explicit_timeout_is_a_hard_limit_even_for_a_busy_validator() {
    let repo = repo(
        1,
        &["slow"],
        "[validators.slow]\ntimeout = \"600ms\"\nwork = \"3000ms\"\nprogress_every = \"100ms\"\n",
    );
    let out = run(&repo, "slow");
    let v = ended(&out, 3, "slow", "timed_out");
    assert_eq!(
        v["message"],
        "did not finish within 600ms; stopped with SIGTERM"
    );
}

#[test]
fn a_manifest_with_another_name_is_its_own_protocol_error() {
    let repo = repo(
        1,
        &["named"],
        "[validators.named]\nmanifest_name = \"other\"\n",
    );
    let out = run(&repo, "named");
    let v = ended(&out, 3, "named", "protocol_error");
    assert_eq!(
        v["message"],
        "broke the protocol: its manifest names it `other`, but it was started as \
         `validator-named`; rename the executable to `validator-other` or fix the manifest's name"
    );
}

#[test]
fn a_refused_configuration_is_a_config_error_and_a_usage_exit() {
    let repo = repo(
        1,
        &["picky", "lint"],
        "[validators.picky]\nconfig_error = \"[validators.picky] has an unknown key `colour`\"\n\
         [validators.lint]\nhang = \"after_handshake\"\ntimeout = \"300ms\"\n",
    );
    let out = run(&repo, "picky,lint");
    assert_eq!(
        out.code,
        Some(2),
        "a configuration error wins\n{}",
        out.stdout
    );
    let v = out.validator("picky");
    assert_eq!(v["status"], "config_error");
    assert_eq!(
        v["message"],
        "[validators.picky] has an unknown key `colour`"
    );
    assert_eq!(out.validator("lint")["status"], "timed_out");
}

#[test]
fn an_invalid_glob_is_a_usage_error_before_anything_runs() {
    let repo = repo(
        1,
        &["lint"],
        "[validators.lint]\nexclude = [\"src/[a.py\"]\nrecord = \"requests.log\"\n",
    );
    let out = repo.run(&["run", "--all", "--validators", "lint"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.starts_with("error: ")
            && out
                .stderr
                .contains("`validators.lint.exclude`: invalid glob \"src/[a.py\""),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        !repo.root().join("requests.log").exists(),
        "nothing was started"
    );
}

#[test]
fn a_timeout_for_an_unknown_dimension_is_warned_about() {
    let repo = repo(1, &["lint"], "[timeouts]\ntype_saftey = \"10s\"\n");
    let out = run(&repo, "lint");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let warnings = out.json()["warnings"].to_string();
    assert!(
        warnings.contains("[timeouts] type_saftey: no validator of this run has that dimension"),
        "{warnings}"
    );
}

#[test]
fn a_validators_log_lines_show_at_their_level() {
    let repo = repo(
        1,
        &["chatty"],
        "[validators.chatty]\nlog = [\"warn: the cache of my tool is stale\", \"info: 3 rules loaded\"]\n",
    );
    let out = run(&repo, "chatty");
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert!(
        out.stderr.contains("the cache of my tool is stale"),
        "a warning shows by default: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("chatty"),
        "it names the validator: {}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("3 rules loaded"),
        "info waits for -v: {}",
        out.stderr
    );
    let verbose = repo.run(&["-v", "run", "--all", "--no-cache", "--validators", "chatty"]);
    assert!(
        verbose.stderr.contains("3 rules loaded"),
        "{}",
        verbose.stderr
    );
}

#[test]
fn a_batched_validators_helper_gives_its_slot_to_a_validator_waiting_to_start() {
    // `busy` checks 12 files one at a time with two processes (both `--jobs` slots); `late`
    // finishes its handshake a second later and must not wait for `busy`'s whole queue.
    let repo = Repo::new();
    for i in 0..12 {
        repo.write(&format!("m{i}.py"), "x = 1\n");
    }
    repo.fake("busy");
    let late = repo.root().join("late.sh");
    std::fs::write(
        &late,
        format!(
            "#!/bin/bash\nsleep 1\nexec -a validator-late {} \"$@\"\n",
            harness::binary("fake-validator").display()
        ),
    )
    .expect("write");
    std::fs::set_permissions(&late, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    repo.validator("late", &late)
        .config("[validators.busy]\nbatch_size = 1\nsleep = \"400ms\"\n[validators.late]\n");
    let out = repo.run(&[
        "run",
        "--all",
        "--jobs",
        "2",
        "--format",
        "json",
        "--validators",
        "busy,late",
        "-vv",
    ]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("a helper process gives way to a validator waiting to start"),
        "{}",
        out.stderr
    );
    assert_eq!(out.validator("busy")["files_done"], 12);
    assert_eq!(out.validator("late")["files_done"], 12);
}

/// A `--all` run walks the tree while its validators start (`selected.rs`): when git cannot
/// list the tree, the validators already started are stopped and the run ends as a usage
/// error would, with one line naming the problem, no report and no process left.
#[test]
fn a_tree_git_cannot_list_stops_the_started_validators_and_says_why() {
    let repo = repo(
        2,
        &["lint", "stuck"],
        "[validators.stuck]\nspawn = \"setsid\"\nsleep = \"5s\"\n",
    );
    repo.git(&["init", "-q"]);
    std::fs::write(repo.root().join(".git/index"), "garbage").expect("write");
    let out = run(&repo, "lint,stuck");
    assert_eq!(out.code, Some(2), "{}\n{}", out.stdout, out.stderr);
    assert_within(&out, Duration::from_secs(4));
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(
        lines[0].starts_with("error: `git ls-files")
            && lines[0].contains("index file smaller than expected"),
        "{}",
        lines[0]
    );
    assert!(out.stdout.is_empty(), "no report: {}", out.stdout);
}

/// Selection's warnings reach the report of a `--all` run, whose walk ends while validators
/// start, at its head as before; also when the only validator ended before it needed the files
/// (its handshake broken).
#[test]
fn what_the_walk_leaves_out_is_said_in_the_report_of_a_run_that_walked_beside_it() {
    let repo = repo(
        2,
        &["lint", "broken"],
        "[validators.lint]\nfindings = 1\n[validators.broken]\ngarbage = true\n",
    );
    std::os::unix::fs::symlink("missing.py", repo.root().join("src/broken.py")).expect("link");
    let skipped = "src/broken.py: a symbolic link to missing.py, which does not exist; skipped";
    let out = run(&repo, "lint");
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.json()["warnings"][0], skipped);
    assert_eq!(out.validator("lint")["files"], 2);
    let out = run(&repo, "broken");
    assert_eq!(out.validator("broken")["status"], "protocol_error");
    assert_eq!(out.json()["warnings"][0], skipped);
}
