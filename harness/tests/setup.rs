//! Getting started and staying healthy: `init`, `hook install` (tried with a real `git
//! commit`), `doctor`, shell completions and the man page.

use harness::Repo;

fn git_commit(repo: &Repo) -> std::process::Output {
    let cache = repo.cache_dir().to_str().expect("UTF-8");
    repo.git_output(
        &["commit", "-qm", "change"],
        &[("ORCHESTRATOR_CACHE_DIR", cache)],
    )
}

#[test]
fn init_writes_a_configuration_that_loads_and_ignores_the_artifacts() {
    let repo = Repo::new();
    repo.write("pkg/app.py", "x = 1\n")
        .write("site/index.html", "<p>hi</p>\n");
    let out = repo.run(&["init"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let text = std::fs::read_to_string(repo.root().join("orchestrator.toml")).expect("written");
    assert!(
        text.contains("# 1 Python file found.\n\n[validators.ruff]"),
        "{text}"
    );
    assert!(text.contains("# [validators.visual]"), "{text}");
    let ignore = std::fs::read_to_string(repo.root().join(".gitignore")).expect("written");
    assert!(ignore.contains("/.orchestrator/artifacts/"), "{ignore}");
    let run = repo.run(&["run", "--all", "--validators", "ruff"]);
    assert_eq!(run.code, Some(0), "the configuration loads: {}", run.stderr);
    let again = repo.run(&["init"]);
    assert_eq!(again.code, Some(2));
    assert!(
        again
            .stderr
            .contains("already exists; edit it, or pass --force"),
        "{}",
        again.stderr
    );
    assert_eq!(repo.run(&["init", "--force"]).code, Some(0));
}

fn hooked_repo() -> Repo {
    let repo = Repo::new();
    repo.git(&["init", "-q"]);
    repo.write("ruff.toml", "[lint]\nselect = [\"F\"]\n")
        .config("[validators.pyright]\nenabled = false\n[validators.bandit]\nenabled = false\n");
    repo.write("app.py", "x = 1\n");
    repo.git(&["add", "."]).git(&["commit", "-qm", "clean"]);
    repo
}

#[test]
fn the_installed_hook_stops_a_commit_with_a_finding_in_what_is_staged() {
    let repo = hooked_repo();
    let out = repo.run(&["hook", "install"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let hook = repo.root().join(".git/hooks/pre-commit");
    let text = std::fs::read_to_string(&hook).expect("the hook");
    assert!(text.contains("run --staged"), "{text}");
    // Staged: an unused import. The working tree has it fixed, unstaged: the hook must see
    // the staged version.
    repo.write("app.py", "import os\nx = 1\n");
    repo.git(&["add", "app.py"]);
    repo.write("app.py", "x = 2\n");
    let refused = git_commit(&repo);
    assert!(!refused.status.success(), "the commit went through");
    // git sends a hook's output to its stderr.
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("F401"), "{said}");
    assert_eq!(
        std::fs::read_to_string(repo.root().join("app.py")).expect("read"),
        "x = 2\n",
        "the unstaged edit is kept"
    );
    repo.git(&["add", "app.py"]);
    let accepted = git_commit(&repo);
    assert!(
        accepted.status.success(),
        "{}",
        String::from_utf8_lossy(&accepted.stdout)
    );
    // Installing again replaces our own hook without --force; uninstall removes it.
    assert_eq!(repo.run(&["hook", "install"]).code, Some(0));
    assert_eq!(repo.run(&["hook", "uninstall"]).code, Some(0));
    assert!(!hook.exists());
}

#[test]
fn a_foreign_hook_is_kept_unless_forced_and_then_restored_on_uninstall() {
    let repo = hooked_repo();
    let hook = repo.root().join(".git/hooks/pre-commit");
    std::fs::write(&hook, "#!/bin/sh\necho mine\n").expect("written");
    let out = repo.run(&["hook", "install"]);
    assert_eq!(out.code, Some(2));
    assert!(
        out.stderr.contains("was not written by orchestrator"),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&hook).expect("read"),
        "#!/bin/sh\necho mine\n"
    );
    assert_eq!(repo.run(&["hook", "install", "--force"]).code, Some(0));
    let kept = repo.root().join(".git/hooks/pre-commit.orig");
    assert_eq!(
        std::fs::read_to_string(&kept).expect("kept"),
        "#!/bin/sh\necho mine\n"
    );
    assert_eq!(repo.run(&["hook", "uninstall"]).code, Some(0));
    assert_eq!(
        std::fs::read_to_string(&hook).expect("restored"),
        "#!/bin/sh\necho mine\n"
    );
}

#[test]
fn doctor_says_what_is_fine_and_what_to_fix() {
    let repo = Repo::new();
    repo.git(&["init", "-q"]);
    let out = repo.run(&["doctor"]);
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    for line in [
        "ok    configuration",
        "ok    tool ruff",
        "ok    tool pyright",
        "ok    git",
    ] {
        assert!(out.stdout.contains(line), "{line}\n{}", out.stdout);
    }
    assert!(
        out.stdout.ends_with("everything needed is in place\n"),
        "{}",
        out.stdout
    );
    std::fs::create_dir_all(repo.cache_dir()).expect("created");
    std::fs::write(repo.cache_dir().join("cache.sqlite3"), vec![7u8; 8192]).expect("written");
    repo.config("[validators.ruff]\nbogus_top = 1\n[nope]\n");
    let out = repo.run(&["doctor"]);
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(out.stdout.contains("FAIL  configuration"), "{}", out.stdout);
    assert!(out.stdout.contains("unknown key `nope`"), "{}", out.stdout);
    assert!(out.stdout.contains("FAIL  cache"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("`orchestrator cache clear` starts afresh"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with("2 problems to fix\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definitions() {
    let repo = Repo::new();
    let bash = repo.run(&["completions", "bash"]);
    assert_eq!(bash.code, Some(0));
    assert!(bash.stdout.contains("--new-since"), "{}", bash.stdout);
    let fish = repo.run(&["completions", "fish"]);
    assert!(
        fish.stdout.contains("complete -c orchestrator"),
        "{}",
        fish.stdout
    );
    let man = repo.run(&["man"]);
    assert_eq!(man.code, Some(0));
    assert!(
        man.stdout.starts_with(".ie \\n(.g .ds Aq"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    assert!(man.stdout.contains(".TH orchestrator 1"), "{}", man.stdout);
    let bad = repo.run(&["completions", "tcsh"]);
    assert_eq!(bad.code, Some(2));
}
