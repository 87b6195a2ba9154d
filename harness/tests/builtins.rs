//! The built-in ruff, pyright and bandit validators against the real tools (installed by
//! `orchestrator tools install`, which `scripts/test` runs): every finding the tool reports
//! when run directly is reported through the coordinator, finding for finding, and a broken or
//! missing tool is never a pass.

use harness::findings::{self, direct, ours};
use harness::Repo;
use std::collections::BTreeSet;

fn sample() -> Repo {
    let repo = Repo::new();
    repo.fixture("python-sample");
    repo
}

const SAMPLE_FILES: [&str; 4] = [
    "inventory/__init__.py",
    "inventory/models.py",
    "inventory/report.py",
    "inventory/store.py",
];

fn run_sample(repo: &Repo) -> harness::Outcome {
    repo.check_finding("bandit,pyright,ruff")
}

#[test]
fn ruff_findings_equal_a_direct_run() {
    let repo = sample();
    let out = run_sample(&repo);
    let args = [
        "check",
        "--output-format",
        "json",
        "--no-cache",
        "--select",
        "E,F,B,UP",
        "--",
    ];
    let args: Vec<&str> = args.into_iter().chain(SAMPLE_FILES).collect();
    let direct = findings::ruff(repo.root(), &direct(repo.root(), "ruff", &args));
    assert_eq!(direct.len(), 4, "the sample has four ruff findings");
    assert_eq!(ours(&out, "ruff"), direct);
}

/// `ruff check .` run directly in the repository, with its own configuration.
fn ruff_directly(repo: &Repo) -> BTreeSet<findings::Key> {
    let args = ["check", "--output-format", "json", "--no-cache", "."];
    findings::ruff(repo.root(), &direct(repo.root(), "ruff", &args))
}

/// A notebook with an unused import in its second cell, after a markdown one.
const NOTEBOOK: &str = r##"{"cells": [
 {"cell_type": "markdown", "metadata": {}, "source": ["# Notes"]},
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": ["import os\n"]},
 {"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": ["y = 2\n"]}
], "metadata": {"language_info": {"name": "python"}}, "nbformat": 4, "nbformat_minor": 5}
"##;

/// Ruff checks what `ruff check .` checks: notebooks and `pyproject.toml` too, and only what
/// its `include` takes, which ruff applies to what it finds under a directory but not to a
/// file given by name.
#[test]
fn ruff_checks_notebooks_and_only_what_its_include_takes() {
    let repo = Repo::new();
    repo.write("ruff.toml", "include = [\"src/**/*.py\", \"*.ipynb\"]\n")
        .write("pyproject.toml", "[project]\nname = 1\n")
        .write("src/app.py", "import sys\n")
        .write("scripts/other.py", "import json\n")
        .write("notes.ipynb", NOTEBOOK);
    let direct_run = || ruff_directly(&repo);
    let paths = |keys: &BTreeSet<findings::Key>| -> Vec<String> {
        keys.iter().map(|k| k.0.clone()).collect()
    };
    let included = direct_run();
    assert_eq!(paths(&included), ["notes.ipynb", "src/app.py"]);
    let in_notebook = included.iter().find(|k| k.0 == "notes.ipynb");
    assert_eq!(
        in_notebook.map(|k| (k.1, k.4.as_str())),
        Some((1, "cell 2: `os` imported but unused")),
        "the line is the cell's"
    );
    assert_eq!(ours(&repo.check("ruff"), "ruff"), included);
    // Without `include`, ruff's own applies: Python files, notebooks and `pyproject.toml`,
    // whose metadata ruff cannot read (`RUF200`).
    repo.write("ruff.toml", "[lint]\nextend-select = [\"RUF200\"]\n");
    let everything = direct_run();
    assert_eq!(
        paths(&everything),
        [
            "notes.ipynb",
            "pyproject.toml",
            "scripts/other.py",
            "src/app.py"
        ]
    );
    assert_eq!(ours(&repo.check("ruff"), "ruff"), everything);
}

/// A ruff configuration that says `fix = true` makes every `ruff check` edit the files it
/// checks; a run not asked to fix reports the findings and leaves the files as they were.
#[test]
fn a_configuration_that_fixes_does_not_make_a_check_edit_files() {
    let repo = Repo::new();
    let source = "import os\nimport sys\n\nprint(sys)\n";
    repo.write("pyproject.toml", "[tool.ruff]\nfix = true\n")
        .write("app.py", source);
    let found = ours(&repo.check_finding("ruff"), "ruff");
    assert_eq!(found.len(), 1, "F401 for os: {found:?}");
    let after = std::fs::read_to_string(repo.root().join("app.py")).expect("read");
    assert_eq!(after, source, "a check edits nothing");
}

/// A broken `ruff.toml` makes every run of ruff fail, naming the file, and after three such
/// runs ruff's circuit breaker opens, though each ran on other files, as a hook's runs do.
/// The failures were counted with the tool's configuration files as well, so fixing the file
/// lets ruff run at once, open breaker or not.
#[test]
fn fixing_a_broken_tool_configuration_lets_an_open_breaker_try_at_once() {
    let repo = Repo::new();
    repo.write("sub/ruff.toml", "[tool.ruff.lint]\nselect = [\"F\"]\n")
        .write("sub/app.py", "import os\n")
        .write("top.py", "x = 1\n")
        .write("other/more.py", "y = 2\n");
    for path in ["sub/app.py", "top.py", "other/more.py"] {
        let out = repo.run(&["run", "--format", "json", "--validators", "ruff", path]);
        let v = out.validator("ruff");
        assert_eq!(v["status"], "crashed", "{path}: {v}");
        let message = v["message"].as_str().expect("message");
        assert!(
            message.contains("sub/ruff.toml") && message.ends_with("unknown field `tool`"),
            "{message}"
        );
    }
    let open = repo.check("ruff");
    assert_eq!(open.validator("ruff")["skip_reason"], "circuit_open");
    repo.write("sub/ruff.toml", "[lint]\nselect = [\"F\"]\n");
    let fixed = repo.check_finding("ruff");
    let found = ours(&fixed, "ruff");
    assert_eq!(found.len(), 1, "F401 in sub/app.py: {found:?}");
}

/// Ruff's findings for a file rest on the packages around it (`INP001`) and on which names the
/// project holds (isort's first-party section): a cached result follows both, so each run
/// equals ruff run directly.
#[test]
fn ruff_results_from_the_cache_follow_the_packages_and_the_projects_names() {
    let repo = Repo::new();
    repo.write(
        "pyproject.toml",
        "[tool.ruff.lint]\nselect = [\"I\", \"INP\"]\n",
    )
    .write(
        "app.py",
        "import os\n\nimport helpers\nimport requests\n\nprint(os, helpers, requests)\n",
    )
    .write("pkg/mod.py", "x = 1\n")
    .write("pkg/sub/deep.py", "y = 1\n");
    let direct_run = || ruff_directly(&repo);
    let check = || ours(&repo.check("ruff"), "ruff");
    let first = check();
    assert_eq!(first, direct_run());
    assert_eq!(first.len(), 2, "INP001 twice: {first:?}");
    repo.write("pkg/__init__.py", "");
    assert_eq!(check(), direct_run(), "pkg/ became a package");
    repo.write("helpers.py", "");
    let sorted = check();
    assert!(
        sorted.iter().any(|k| k.0 == "app.py" && k.3 == "I001"),
        "helpers is the project's now: {sorted:?}"
    );
    assert_eq!(sorted, direct_run());
}

/// A ruff configuration can `extend` a file of any name, anywhere: the root's, one below it
/// and the user's own. An edit to the file extended checks the files it applies to again, so
/// each run equals ruff run directly.
#[test]
fn ruff_results_from_the_cache_follow_the_files_a_configuration_extends() {
    let user = tempfile::tempdir().expect("a temporary directory");
    let user_config = user.path().join("ruff/ruff.toml");
    std::fs::create_dir_all(user_config.parent().expect("a parent")).expect("made");
    let env = [("XDG_CONFIG_HOME", user.path().to_str().expect("UTF-8"))];
    let long = format!("x = \"{}\"\n", "a".repeat(80));
    let lines = |length: u32| format!("line-length = {length}\n[lint]\nselect = [\"E501\"]\n");
    let repo = Repo::new();
    repo.write("ruff.toml", "extend = \"lint/base.toml\"\n")
        .write("lint/base.toml", &lines(100))
        .write("pkg/ruff.toml", "extend = \"../lint/pkg.toml\"\n")
        .write("lint/pkg.toml", &lines(100))
        .write("app.py", &long)
        .write("pkg/mod.py", &long);
    let direct_run = || {
        let args = ["check", "--output-format", "json", "--no-cache", "."];
        findings::ruff(
            repo.root(),
            &findings::direct_with_env(repo.root(), "ruff", &args, &env),
        )
    };
    let check = || {
        let args = ["run", "--all", "--format", "json", "--validators", "ruff"];
        ours(&repo.run_with_env(&args, &env), "ruff")
    };
    let paths = |found: &BTreeSet<findings::Key>| -> Vec<String> {
        found.iter().map(|k| k.0.clone()).collect()
    };
    assert_eq!(check(), BTreeSet::new());
    repo.write("lint/base.toml", &lines(80));
    let root_edited = check();
    assert_eq!(paths(&root_edited), ["app.py"]);
    assert_eq!(root_edited, direct_run());
    repo.write("lint/pkg.toml", &lines(80));
    let nested_edited = check();
    assert_eq!(paths(&nested_edited), ["app.py", "pkg/mod.py"]);
    assert_eq!(nested_edited, direct_run());
    // Without a configuration in the project, ruff takes the user's.
    for file in ["ruff.toml", "pkg/ruff.toml"] {
        std::fs::remove_file(repo.root().join(file)).expect("removed");
    }
    std::fs::write(&user_config, lines(100)).expect("written");
    assert_eq!(check(), BTreeSet::new());
    std::fs::write(&user_config, lines(80)).expect("written");
    let user_edited = check();
    assert_eq!(paths(&user_edited), ["app.py", "pkg/mod.py"]);
    assert_eq!(user_edited, direct_run());
}

/// A file named in a validator's `args` (bandit's `-c bandit.yaml`, ruff's `--config`) is read
/// by the tool, not by the coordinator: an edit to it, or to what it extends, checks the files
/// again, so each run equals the tool run directly with the same arguments.
#[test]
fn results_from_the_cache_follow_the_files_the_args_name() {
    let repo = Repo::new();
    repo.config(
        "[validators.bandit]\nargs = [\"-c\", \"bandit.yaml\"]\n\n\
         [validators.ruff]\nargs = [\"--config\", \"ci/ruff.toml\"]\n",
    )
    .write("bandit.yaml", "skips: [\"B101\"]\n")
    .write("ci/ruff.toml", "extend = \"base.toml\"\n")
    .write("ci/base.toml", "[lint]\nselect = [\"F401\"]\n")
    .write("app.py", "import os\n\nassert True\n");
    let direct_bandit = || {
        let args = ["-f", "json", "-q", "-c", "bandit.yaml", "-r", "app.py"];
        findings::bandit(repo.root(), &direct(repo.root(), "bandit", &args))
    };
    let direct_ruff = || {
        let args = ["check", "--output-format", "json", "--no-cache"];
        let args = [&args[..], &["--config", "ci/ruff.toml", "app.py"]].concat();
        findings::ruff(repo.root(), &direct(repo.root(), "ruff", &args))
    };
    let rules = |found: &BTreeSet<findings::Key>| -> Vec<String> {
        found.iter().map(|k| k.3.clone()).collect()
    };
    let first = repo.check_finding("bandit,ruff");
    assert_eq!(ours(&first, "bandit"), BTreeSet::new());
    assert_eq!(rules(&ours(&first, "ruff")), ["F401"]);
    repo.write("bandit.yaml", "skips: []\n")
        .write("ci/base.toml", "[lint]\nselect = [\"E\"]\n");
    // Bandit's B101 is a warning, so the run passes.
    let edited = repo.check("bandit,ruff");
    assert_eq!(rules(&ours(&edited, "bandit")), ["B101"]);
    assert_eq!(ours(&edited, "bandit"), direct_bandit());
    assert_eq!(ours(&edited, "ruff"), direct_ruff());
    assert_eq!(rules(&ours(&edited, "ruff")), Vec::<String>::new());
}

/// What the cache cannot key on is said in the run, not left silent: a file outside the root
/// that `args` name, and a Python environment pyright's `args` pick.
#[test]
fn what_args_point_at_beyond_the_cache_is_warned_of() {
    let outside = tempfile::tempdir().expect("a temporary directory");
    let config = outside.path().join("bandit.yaml");
    std::fs::write(&config, "skips: []\n").expect("written");
    let repo = Repo::new();
    repo.config(&format!(
        "[validators.bandit]\nargs = [\"-c\", \"{}\"]\n\n\
         [validators.pyright]\nargs = [\"--pythonpath\", \"python3\"]\n",
        config.display()
    ))
    .write("app.py", "x: int = 1\n");
    let out = repo.check("bandit,pyright");
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "bandit reads {}, outside the root",
            config.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("`args` name --pythonpath"),
        "{}",
        out.stderr
    );
}

#[test]
fn pyright_findings_equal_a_direct_run() {
    let repo = sample();
    let out = run_sample(&repo);
    // The sample's orchestrator.toml sets typeCheckingMode = "standard", as the project's own
    // configuration file does not; everything else is pyright run on the project.
    repo.write(
        "pyrightconfig.json",
        r#"{"pythonVersion": "3.11", "reportMissingImports": "error", "typeCheckingMode": "standard"}"#,
    );
    let report = direct(repo.root(), "pyright", &["--outputjson"]);
    let direct = findings::pyright(repo.root(), &report);
    assert_eq!(direct.len(), 2, "the sample has two pyright findings");
    assert_eq!(ours(&out, "pyright"), direct);
    let leftovers: Vec<_> = std::fs::read_dir(repo.root())
        .expect("root")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".orchestrator-pyright")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "the typeCheckingMode overlay is removed"
    );
}

#[test]
fn bandit_findings_equal_a_direct_run() {
    let repo = sample();
    let out = run_sample(&repo);
    let args = [
        "-f",
        "json",
        "-q",
        "--ini",
        ".bandit",
        "--severity-level",
        "low",
        "-r",
        ".",
    ];
    let direct = findings::bandit(repo.root(), &direct(repo.root(), "bandit", &args));
    assert_eq!(direct.len(), 4, "the sample has four bandit findings");
    assert_eq!(ours(&out, "bandit"), direct);
}

#[test]
fn the_sample_report_is_stable() {
    let repo = sample();
    let out = run_sample(&repo);
    // Which validator ends last (the critical path) depends on timing, as durations do.
    insta::with_settings!({filters => vec![
        (r#""duration_ms": \d+"#, r#""duration_ms": "[ms]""#),
        (r#""critical_path": \[[^\]]*\]"#, r#""critical_path": "[path]""#),
    ]}, {
        insta::assert_snapshot!(out.stdout);
    });
}

#[test]
fn unparsable_and_undecodable_files_are_findings_not_crashes() {
    let repo = Repo::new();
    repo.write("bad.py", "def (:\n");
    std::fs::write(repo.root().join("latin.py"), b"\xff\xfe x = 1\n").expect("write");
    let out = repo.check("bandit,pyright,ruff");
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    for name in ["bandit", "pyright", "ruff"] {
        let v = out.validator(name);
        assert_eq!(v["status"], "failed", "{name}: {v}");
    }
    let rules: BTreeSet<(String, String, String)> = out.json()["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().expect("string").to_owned();
            (s("validator"), s("path"), s("rule"))
        })
        .collect();
    for expected in [
        ("ruff", "bad.py", "invalid-syntax"),
        ("ruff", "latin.py", "E902"),
        ("bandit", "bad.py", "syntax-error"),
        ("bandit", "latin.py", "syntax-error"),
        ("pyright", "bad.py", "pyright"),
    ] {
        let key = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
        );
        assert!(rules.contains(&key), "{expected:?} in {rules:?}");
    }
}

#[test]
fn a_large_file_is_checked() {
    let repo = Repo::new();
    let big: String = (0..30_000).map(|i| format!("value_{i} = {i}\n")).collect();
    repo.write("big.py", &big).write("small.py", "import os\n");
    let out = repo.check("ruff,bandit");
    assert_eq!(out.validator("ruff")["status"], "failed", "{}", out.stderr);
    assert_eq!(out.validator("ruff")["files"], 2);
    assert_eq!(out.validator("bandit")["status"], "passed");
}

/// A tools directory whose `ruff` is a script that says its version and, unless `lists` is
/// false, lists `a.py` as the file it checks (`check --show-files`), then runs `body`; and a
/// PATH with nothing else on it.
fn broken_ruff(lists: bool, body: &str) -> (Repo, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let tools = tempfile::tempdir().expect("tempdir");
    let bin = tools.path().join("venv/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    let ruff = bin.join("ruff");
    let listing = match lists {
        true => "if [ \"$2\" = --show-files ]; then echo \"$(pwd -P)/a.py\"; exit 0; fi\n",
        false => "",
    };
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'ruff 9.9.9'; exit 0; fi\n{listing}{body}"
    );
    std::fs::write(&ruff, script).expect("write");
    std::fs::set_permissions(&ruff, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let repo = Repo::new();
    repo.write("a.py", "x = 1\n");
    (repo, tools)
}

#[test]
fn a_crashing_tool_is_a_crash_with_its_own_message() {
    for (lists, message) in [
        (true, "ruff failed"),
        (false, "ruff could not list the files it checks"),
    ] {
        let (repo, tools) = broken_ruff(
            lists,
            "echo 'error: panicked at internal invariant' >&2; exit 2\n",
        );
        let dir = tools.path().display().to_string();
        let out = repo.run_with_env(
            &["run", "--all", "--format", "json", "--validators", "ruff"],
            &[("ORCHESTRATOR_TOOLS_DIR", &dir)],
        );
        assert_eq!(out.code, Some(3));
        let v = out.validator("ruff");
        assert_eq!(v["status"], "crashed");
        assert_eq!(v["tool"], "ruff 9.9.9");
        assert_eq!(
            v["message"],
            format!("{message} (exit status: 2): error: panicked at internal invariant")
        );
    }
}

#[test]
fn a_tool_that_prints_garbage_is_a_crash() {
    let (repo, tools) = broken_ruff(true, "echo 'not json'; exit 1\n");
    let dir = tools.path().display().to_string();
    let out = repo.run_with_env(
        &["run", "--all", "--format", "json", "--validators", "ruff"],
        &[("ORCHESTRATOR_TOOLS_DIR", &dir)],
    );
    let v = out.validator("ruff");
    assert_eq!(v["status"], "crashed");
    assert_eq!(
        v["message"],
        "ruff printed something that is not its JSON report (exit status: 1): not json"
    );
}

#[test]
fn a_missing_tool_is_not_installed_with_the_command_that_fixes_it() {
    let tools = tempfile::tempdir().expect("tempdir");
    let repo = Repo::new();
    repo.write("a.py", "x = 1\n");
    let dir = tools.path().display().to_string();
    let out = repo.run_with_env(
        &["run", "--all", "--format", "json", "--validators", "ruff"],
        &[("ORCHESTRATOR_TOOLS_DIR", &dir), ("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(out.code, Some(3));
    let v = out.validator("ruff");
    assert_eq!(v["status"], "not_installed");
    assert!(
        v["message"]
            .as_str()
            .expect("message")
            .ends_with("run `orchestrator tools install`"),
        "{v}"
    );
}

#[test]
fn an_unknown_config_key_is_a_configuration_error() {
    let repo = Repo::new();
    repo.write("a.py", "x = 1\n")
        .config("[validators.ruff]\nselct = [\"E\"]\n");
    let out = repo.check("ruff");
    assert_eq!(out.code, Some(2), "a usage error\n{}", out.stdout);
    assert_eq!(out.json()["status"], "config_error");
    let v = out.validator("ruff");
    assert_eq!(v["status"], "config_error");
    assert!(
        v["message"]
            .as_str()
            .expect("message")
            .starts_with("[validators.ruff] has an unknown key `selct`"),
        "{v}"
    );
}

#[test]
fn pyright_runs_of_no_modules_are_a_configuration_error_naming_the_fix() {
    let repo = Repo::new();
    repo.write("a.py", "x = 1\n")
        .config("[validators.pyright]\nmodulesPerRun = 0\n");
    let out = repo.check("pyright");
    assert_eq!(out.code, Some(2), "a usage error\n{}", out.stdout);
    let v = out.validator("pyright");
    assert_eq!(v["status"], "config_error");
    assert_eq!(
        v["message"],
        "validators.pyright.modulesPerRun must be 1 or more (or left out, to size pyright's runs \
         by node's heap limit)"
    );
}

#[test]
fn a_file_deleted_between_selection_and_run_is_reported_clean_not_fatal() {
    use protocol::{FileInput, Hello, Request, Response, Validate};
    let repo = Repo::new();
    repo.write("a.py", "import os\n");
    let orchestrator = harness::binary("orchestrator");
    for name in ["ruff", "pyright", "bandit"] {
        let mut x =
            harness::Exchange::start_with_args(&orchestrator, &["__validator", name], repo.root());
        x.send(&Request::Hello(Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            coordinator_version: "test".into(),
            max_frame_size: protocol::DEFAULT_MAX_FRAME_SIZE,
        }));
        assert!(matches!(x.receive(), Response::Manifest(_)));
        let files = ["a.py", "gone.py"]
            .map(|p| FileInput {
                path: p.into(),
                content_hash: [0; 32],
            })
            .to_vec();
        x.send(&Request::Validate(Validate {
            root: repo.root().display().to_string(),
            files,
            config_json: "{}".into(),
            fix: false,
            update_baselines: false,
            artifacts_dir: repo.root().join("artifacts").display().to_string(),
        }));
        let results = x.results();
        let gone = results
            .iter()
            .find(|r| r.path == "gone.py")
            .expect("a result for gone.py");
        assert!(gone.findings.is_empty(), "{name}: {gone:?}");
        x.send(&Request::Shutdown);
        assert_eq!(x.wait(), Some(0), "{name}");
    }
}

#[test]
fn fix_mode_applies_ruffs_fixes_then_reports_what_remains() {
    let repo = sample();
    let before = std::fs::read_to_string(repo.root().join("inventory/models.py")).expect("read");
    let out = repo.run(&[
        "run",
        "--all",
        "--fix",
        "--format",
        "json",
        "--validators",
        "ruff",
    ]);
    assert_eq!(out.code, Some(1), "E722 has no fix\n{}", out.stderr);
    let json = out.json();
    assert_eq!(
        json["fixed_files"],
        serde_json::json!(["inventory/report.py", "inventory/store.py"])
    );
    let remaining: Vec<&str> = json["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule"))
        .collect();
    assert_eq!(remaining, ["E722"]);
    let store = std::fs::read_to_string(repo.root().join("inventory/store.py")).expect("read");
    assert!(!store.contains("import os\n"), "F401 was fixed");
    let models = std::fs::read_to_string(repo.root().join("inventory/models.py")).expect("read");
    assert_eq!(models, before, "a file without fixes is untouched");
}

#[test]
fn a_repeated_run_of_the_sample_is_served_from_the_cache() {
    let repo = sample();
    let first = run_sample(&repo);
    let second = run_sample(&repo);
    for name in ["bandit", "pyright", "ruff"] {
        let v = second.validator(name);
        assert_eq!(v["cached_files"], v["files"], "{name}: {v}");
        assert_eq!(ours(&second, name), ours(&first, name), "{name}");
    }
    assert_eq!(first.json()["findings"], second.json()["findings"]);
}
