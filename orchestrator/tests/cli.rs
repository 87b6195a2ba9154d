//! Mistakes on the command line and in `orchestrator.toml`: one line naming the thing and the
//! fix, exit code 2, before any validator runs.

use std::process::Command;

fn orchestrator(dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(args)
        .current_dir(dir)
        .env("PATH", "/usr/bin:/bin")
        .env_remove("ORCHESTRATOR_PROFILE")
        .output()
        .expect("orchestrator runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with_config(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("orchestrator.toml"), text).expect("write");
    dir
}

fn assert_one_line_error(stderr: &str, expected: &str) {
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains(expected),
        "{stderr:?} should contain {expected:?}"
    );
}

#[test]
fn an_unknown_top_level_key_is_a_usage_error() {
    let dir = with_config("colour = true\n");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &stderr,
        "orchestrator.toml: unknown key `colour`; the known keys are",
    );
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    let dir = with_config("[timeouts]\nsecurity = \"90\"\n");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &stderr,
        "`timeouts.security`: invalid duration \"90\"; write a number with a unit",
    );
}

#[test]
fn an_unknown_validator_is_a_usage_error_that_lists_the_known_ones() {
    let dir = with_config("");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all", "--validators", "nope"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(
        &stderr,
        "unknown validator `nope` in --validators; the available ones are:",
    );
}

#[test]
fn an_unknown_profile_is_a_usage_error() {
    let dir = with_config("");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all", "--profile", "ci"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&stderr, "unknown profile `ci`");
}

#[test]
fn an_unreadable_config_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("orchestrator.toml"), b"\xff\xfe").expect("write");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&stderr, "orchestrator.toml: cannot read the file (");
}

#[test]
fn zero_jobs_and_unknown_flags_are_usage_errors() {
    let dir = with_config("");
    let (code, stderr) = orchestrator(dir.path(), &["run", "--all", "--jobs", "0"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&stderr, "--jobs must be at least 1");
    let (code, _) = orchestrator(dir.path(), &["run", "--everything"]);
    assert_eq!(code, Some(2));
}

#[test]
fn a_path_outside_the_root_is_a_usage_error() {
    let dir = with_config("");
    let (code, stderr) = orchestrator(dir.path(), &["run", "/etc/hostname"]);
    assert_eq!(code, Some(2));
    assert_one_line_error(&stderr, "is outside the root");
}

#[test]
fn a_missing_path_is_named_once() {
    let dir = with_config("");
    let (code, stderr) = orchestrator(dir.path(), &["run", "gone.py"]);
    assert_eq!(code, Some(2));
    assert_eq!(stderr, "error: gone.py: no such file or directory\n");
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = with_config("");
    // -vv logs plenty (discovery, selection); stderr here is a pipe.
    let (code, stderr) = orchestrator(dir.path(), &["-vv", "run", "--all"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stderr.is_empty(), "something was logged");
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in {stderr:?}");
}
