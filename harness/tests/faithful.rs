//! Each wrapper checks exactly the files its tool checks when run on the project root with the
//! project's own configuration (pyright's `include`, bandit's `exclude_dirs` and `.bandit`,
//! ruff's `extend-exclude`), and reports exactly what that direct run reports. The fixture has
//! findings for every tool in every directory, so a wrapper that passes the selected files
//! past the tool's own selection reports findings that the direct run does not.

use harness::findings::{self, direct, ours};
use harness::Repo;
use std::collections::BTreeSet;

fn project() -> Repo {
    let repo = Repo::new();
    repo.fixture("python-excludes");
    repo
}

fn directories(keys: &BTreeSet<findings::Key>) -> BTreeSet<String> {
    keys.iter()
        .map(|k| k.0.split('/').next().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn pyright_checks_only_what_its_include_names() {
    let repo = project();
    let out = repo.check_finding("pyright");
    let direct = findings::pyright(
        repo.root(),
        &direct(repo.root(), "pyright", &["--outputjson"]),
    );
    assert_eq!(directories(&direct), BTreeSet::from(["src".to_owned()]));
    assert_eq!(ours(&out, "pyright"), direct);
}

#[test]
fn bandit_skips_its_exclude_dirs() {
    let repo = project();
    let out = repo.check_finding("bandit");
    let args = ["-c", "pyproject.toml", "-r", ".", "-f", "json", "-q"];
    let direct = findings::bandit(repo.root(), &direct(repo.root(), "bandit", &args));
    assert_eq!(
        directories(&direct),
        BTreeSet::from(["generated".into(), "src".into()])
    );
    assert_eq!(ours(&out, "bandit"), direct);
}

#[test]
fn bandit_skips_what_a_dot_bandit_file_excludes() {
    let repo = project();
    // bandit matches `.bandit` excludes against paths as `bandit -r .` spells them (`./x/y.py`).
    repo.write(
        "pyproject.toml",
        "[project]\nname = \"shop\"\nversion = \"0.1.0\"\n",
    )
    .write(".bandit", "[bandit]\nexclude = ./generated\n");
    let out = repo.check_finding("bandit");
    let args = ["-r", ".", "-f", "json", "-q"];
    let direct = findings::bandit(repo.root(), &direct(repo.root(), "bandit", &args));
    assert_eq!(
        directories(&direct),
        BTreeSet::from(["src".into(), "tests".into()])
    );
    assert_eq!(ours(&out, "bandit"), direct);
}

#[test]
fn ruff_skips_its_extend_exclude() {
    let repo = project();
    let out = repo.check_finding("ruff");
    let args = ["check", "--output-format", "json", "--no-cache", "."];
    let direct = findings::ruff(repo.root(), &direct(repo.root(), "ruff", &args));
    assert_eq!(
        directories(&direct),
        BTreeSet::from(["src".into(), "tests".into()])
    );
    assert_eq!(ours(&out, "ruff"), direct);
}

#[test]
fn a_subset_of_files_gets_the_findings_a_project_run_gives_them() {
    let repo = project();
    let out = repo.run(&[
        "run",
        "src/shop/cart.py",
        "tests/test_cart.py",
        "--format",
        "json",
        "--validators",
        "pyright",
    ]);
    let direct = findings::pyright(
        repo.root(),
        &direct(repo.root(), "pyright", &["--outputjson"]),
    );
    assert_eq!(ours(&out, "pyright"), direct, "{}", out.stderr);
    assert_eq!(out.validator("pyright")["files"], 2);
}
