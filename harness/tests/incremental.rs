//! pyright per file, through the import graph, on real code: after an edit to a leaf module and
//! to a hub, the results assembled from a warm cache and the files that missed equal a fresh
//! whole-project pyright run finding for finding; a leaf edit re-checks the leaf alone, a hub
//! edit re-checks what imports it; and `--changed` checks a changed module's dependents too.
//!
//! The projects are the requests sdist (with its tests added to pyright's `include`, so that a
//! module of the package has dependents) and Django's `django/utils`, pinned and downloaded by
//! `scripts/corpora`.

use harness::findings::{self, direct, ours};
use harness::{Outcome, Repo};
use std::collections::BTreeSet;
use std::path::Path;

/// A project under git, its cache warm from a first run that already equals pyright's own.
fn warm(repo: &Repo) {
    repo.git(&["init", "-q"])
        .git(&["add", "-A"])
        .git(&["commit", "-qm", "corpus"]);
    let cold = repo.check_finding("pyright");
    assert_eq!(ours(&cold, "pyright"), whole_project(repo));
    assert_eq!(cached(&cold), 0);
}

fn whole_project(repo: &Repo) -> BTreeSet<findings::Key> {
    findings::pyright(
        repo.root(),
        &direct(repo.root(), "pyright", &["--outputjson"]),
    )
}

/// The pyright check's arguments.
const CHECK: [&str; 6] = [
    "run",
    "--all",
    "--format",
    "json",
    "--validators",
    "pyright",
];

/// The pyright check, with `-v`: the validator's info lines go to stderr.
fn verbose_check(repo: &Repo) -> Outcome {
    repo.run(&[&["-v"], &CHECK[..]].concat())
}

fn cached(out: &Outcome) -> u64 {
    out.validator("pyright")["cached_files"]
        .as_u64()
        .expect("cached_files")
}

fn files(out: &Outcome) -> u64 {
    out.validator("pyright")["files"].as_u64().expect("files")
}

fn append(repo: &Repo, path: &str, text: &str) {
    let full = repo.root().join(path);
    let mut contents = std::fs::read_to_string(&full).expect("the module exists");
    contents.push_str(text);
    std::fs::write(full, contents).expect("written");
}

fn replace(repo: &Repo, path: &str, from: &str, to: &str) {
    let full = repo.root().join(path);
    let contents = std::fs::read_to_string(&full).expect("the module exists");
    assert!(contents.contains(from), "{path} has `{from}`");
    std::fs::write(full, contents.replacen(from, to, 1)).expect("written");
}

/// A leaf edit re-checks one file; a hub edit re-checks its dependents, and more than one;
/// both equal the whole-project run. Returns the whole-project run's findings after the hub
/// edit, for the caller's own checks.
fn leaf_then_hub(
    repo: &Repo,
    leaf: &str,
    hub: &str,
    hub_from: &str,
    hub_to: &str,
) -> BTreeSet<findings::Key> {
    warm(repo);
    append(repo, leaf, "\nleaf_edit: int = \"not an int\"\n");
    let leaf_run = repo.check_finding("pyright");
    assert_eq!(
        cached(&leaf_run),
        files(&leaf_run) - 1,
        "a leaf edit re-checks the leaf alone"
    );
    let after_leaf = ours(&leaf_run, "pyright");
    assert!(after_leaf
        .iter()
        .any(|k| k.0 == leaf && k.4.contains("not an int")));
    assert_eq!(after_leaf, whole_project(repo));

    replace(repo, hub, hub_from, hub_to);
    let hub_run = repo.check_finding("pyright");
    let rechecked = files(&hub_run) - cached(&hub_run);
    assert!(
        rechecked > 1 && cached(&hub_run) > 0,
        "a hub edit re-checks its dependents and only them: {rechecked} re-checked, {} cached",
        cached(&hub_run)
    );
    let after_hub = ours(&hub_run, "pyright");
    assert_eq!(after_hub, whole_project(repo));
    assert!(
        after_hub
            .difference(&after_leaf)
            .any(|k| k.0 != hub && k.0 != leaf),
        "the hub edit changed findings in modules that import it"
    );
    after_hub
}

/// `--changed` after a hub edit checks the modules importing it, and finds what the edit broke
/// there, which checking the changed file alone (pre-commit's way) would miss. `before` is the
/// whole-project run's findings on the tree as it is.
fn changed_finds_what_the_edit_broke_in_dependents(
    repo: &Repo,
    before: BTreeSet<findings::Key>,
    hub: &str,
    from: &str,
    to: &str,
) {
    repo.git(&["commit", "-qam", "edits"]);
    replace(repo, hub, from, to);
    let out = repo.run(&[
        "run",
        "--changed",
        "--format",
        "json",
        "--validators",
        "pyright",
    ]);
    let dependents = out.validator("pyright")["dependents"]
        .as_u64()
        .unwrap_or_else(|| panic!("dependents are reported: {}", out.stdout));
    assert!(dependents > 0, "{}", out.stdout);
    let now = whole_project(repo);
    let reported = ours(&out, "pyright");
    assert!(reported.is_subset(&now));
    let broken: BTreeSet<_> = now.difference(&before).filter(|k| k.0 != hub).collect();
    assert!(!broken.is_empty(), "the edit breaks something elsewhere");
    assert!(
        broken.iter().all(|k| reported.contains(*k)),
        "--changed reports what the edit broke in its dependents: {broken:?}"
    );
}

#[test]
fn requests_per_file_results_equal_the_whole_project_after_leaf_and_hub_edits() {
    let repo = Repo::new();
    repo.corpus("requests-2.34.2.tar.gz", &[]);
    replace(
        &repo,
        "pyproject.toml",
        "include = [\"src/requests\"]",
        "include = [\"src/requests\", \"tests\"]",
    );
    let hub = "src/requests/compat.py";
    let before = leaf_then_hub(
        &repo,
        "tests/test_hooks.py",
        hub,
        "builtin_str = str",
        "builtin_str = bytes",
    );
    changed_finds_what_the_edit_broke_in_dependents(
        &repo,
        before,
        hub,
        "builtin_str = bytes",
        "builtin_str = int",
    );
}

#[test]
fn django_utils_per_file_results_equal_the_whole_project_after_leaf_and_hub_edits() {
    let repo = Repo::new();
    repo.corpus(
        "Django-5.2.8.tar.gz",
        &[
            "django-5.2.8/django/__init__.py",
            "django-5.2.8/django/utils",
        ],
    );
    let hub = "django/utils/functional.py";
    let before = leaf_then_hub(
        &repo,
        "django/utils/archive.py",
        hub,
        "class cached_property:",
        "cached_property = 1\n\n\nclass _cached_property:",
    );
    changed_finds_what_the_edit_broke_in_dependents(
        &repo,
        before,
        hub,
        "def lazy(func, *resultclasses):",
        "def lazy(func):",
    );
}

/// Django's `django/utils` under git, its pyright checked in runs of at most 40 modules, with
/// `more` in the same `[validators.pyright]`.
fn django_utils_in_runs_of_40(more: &str) -> Repo {
    let repo = Repo::new();
    repo.corpus(
        "Django-5.2.8.tar.gz",
        &[
            "django-5.2.8/django/__init__.py",
            "django-5.2.8/django/utils",
        ],
    );
    repo.config(&format!("[validators.pyright]\nmodulesPerRun = 40\n{more}"))
        .git(&["init", "-q"])
        .git(&["add", "-A"])
        .git(&["commit", "-qm", "corpus"]);
    repo
}

/// A project with more modules than one pyright run may load (`modulesPerRun`; by default as
/// many as node's heap holds) is checked in several runs, each answering its files as it ends:
/// the findings still equal pyright's own whole-project run, cold and after edits to modules
/// with a few dependents and to a hub.
#[test]
fn django_utils_checked_in_runs_that_fit_a_budget_equals_the_whole_project() {
    let repo = django_utils_in_runs_of_40("");
    // The run, and how many pyright runs checked the files that missed.
    let checked_in_runs = || {
        let out = verbose_check(&repo);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains("at most 40 modules a run"),
            "{}",
            out.stderr
        );
        let runs = out.stderr.matches("pyright run ").count();
        (out, runs)
    };
    let (cold, runs) = checked_in_runs();
    assert!(
        runs > 1,
        "46 modules, checked in runs of 40 modules: {runs}"
    );
    assert_eq!(cached(&cold), 0);
    assert_eq!(ours(&cold, "pyright"), whole_project(&repo));

    // Two modules with fewer dependents: more files than an edit's worth (16), but under half
    // the project, so the graph read before the runs holds only what they import.
    for module in ["django/utils/encoding.py", "django/utils/safestring.py"] {
        append(&repo, module, "\nedited: int = \"not an int\"\n");
    }
    let (part, _) = checked_in_runs();
    let rechecked = files(&part) - cached(&part);
    assert!(
        rechecked > 16 && rechecked * 2 < files(&part),
        "{rechecked} of {} re-checked",
        files(&part)
    );
    assert_eq!(ours(&part, "pyright"), whole_project(&repo));

    replace(
        &repo,
        "django/utils/functional.py",
        "class cached_property:",
        "cached_property = 1\n\n\nclass _cached_property:",
    );
    let (hub, _) = checked_in_runs();
    assert!(
        cached(&hub) > 0,
        "the modules the hub edit cannot change are served"
    );
    assert_eq!(ours(&hub, "pyright"), whole_project(&repo));
}

/// Each of pyright's runs answers its files as it ends: when a later run dies (here a pyright
/// that fails from its second start on, as one past its heap limit does), the first run's
/// results are kept, and the next `orchestrator run` checks only the rest.
#[test]
fn the_results_of_pyright_runs_that_ended_are_kept_when_a_later_one_fails() {
    let repo = django_utils_in_runs_of_40("retries = 0\n");
    // A tools directory whose pyright runs the real one once, then fails as a crash would.
    let tools = tempfile::tempdir().expect("tempdir");
    let bin = tools.path().join("npm/node_modules/.bin");
    let venv = tools.path().join("venv/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::create_dir_all(&venv).expect("mkdir");
    std::os::unix::fs::symlink(findings::tool("ruff"), venv.join("ruff")).expect("symlink");
    let started = tools.path().join("started");
    let script = format!(
        "#!/bin/sh\n\
         [ \"$1\" = --version ] && exec '{real}' --version\n\
         [ -e '{started}' ] && {{ echo 'FATAL ERROR: JavaScript heap out of memory' >&2; exit 2; }}\n\
         touch '{started}'\n\
         exec '{real}' \"$@\"\n",
        real = findings::tool("pyright").display(),
        started = started.display(),
    );
    let fake = bin.join("pyright");
    std::fs::write(&fake, script).expect("written");
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let failing = repo.run_with_env(
        &CHECK,
        &[(
            "ORCHESTRATOR_TOOLS_DIR",
            tools.path().to_str().expect("utf-8"),
        )],
    );
    let v = failing.validator("pyright");
    assert_eq!(v["status"], "crashed", "{}", failing.stdout);
    assert!(
        v["message"]
            .as_str()
            .expect("message")
            .contains("heap out of memory"),
        "{v}"
    );

    let after = repo.check_finding("pyright");
    let kept = cached(&after);
    assert!(
        kept > 0 && kept < files(&after),
        "the first run's files are served, the rest checked: {kept} of {}",
        files(&after)
    );
    assert_eq!(ours(&after, "pyright"), whole_project(&repo));
}

/// Two services side by side, each with its own `app` package: ruff resolves
/// `from ..utils import f` in the second to the first one's `app/utils.py`, while pyright reads
/// the second's. An edit to the second's `utils.py` still re-checks the module importing it.
/// Makes `f() -> int` in `module` return a `str`, which breaks `importer`'s `y: int = f()`:
/// the next run finds that, as pyright on the whole project does.
fn f_returns_str_and_breaks(repo: &Repo, module: &str, importer: &str) {
    replace(
        repo,
        module,
        "def f() -> int:\n    return 1",
        "def f() -> str:\n    return \"1\"",
    );
    let found = ours(&repo.check_finding("pyright"), "pyright");
    assert!(
        found.iter().any(|k| k.0 == importer),
        "the edit breaks {importer}: {found:?}"
    );
    assert_eq!(found, whole_project(repo));
}

#[test]
fn a_relative_import_in_one_of_two_same_named_packages_depends_on_its_own_module() {
    let repo = Repo::new();
    for service in ["svc_a", "svc_b"] {
        repo.write(&format!("{service}/app/__init__.py"), "")
            .write(
                &format!("{service}/app/utils.py"),
                "def f() -> int:\n    return 1\n",
            )
            .write(&format!("{service}/app/api/__init__.py"), "")
            .write(
                &format!("{service}/app/api/x.py"),
                "from ..utils import f\n\ny: int = f()\n",
            );
    }
    repo.write("svc_a/app/bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    f_returns_str_and_breaks(&repo, "svc_b/app/utils.py", "svc_b/app/api/x.py");
    // And undoing it mends x.py, rather than serving its error from the cache.
    repo.git(&["checkout", "--", "svc_b/app/utils.py"]);
    let out = repo.check_finding("pyright");
    let found = ours(&out, "pyright");
    assert!(
        !found.iter().any(|k| k.0 == "svc_b/app/api/x.py"),
        "{found:?}"
    );
    assert_eq!(found, whole_project(&repo));
}

/// Import cycles are found by walking every checked file's imports: a configuration that
/// reports them is checked as a whole project, `-v` says why, and the findings still equal
/// pyright's own after an edit, each file still cached on its own.
#[test]
fn a_configuration_that_reports_import_cycles_checks_the_whole_project_and_says_so() {
    let repo = Repo::new();
    repo.write(
        "pyrightconfig.json",
        "{\"reportImportCycles\": \"error\"}\n",
    )
    .write("pkg/__init__.py", "")
    .write(
        "pkg/a.py",
        "from pkg import b\n\n\ndef f() -> int:\n    return b.g()\n",
    )
    .write(
        "pkg/b.py",
        "from pkg import a\n\n\ndef g() -> int:\n    return a.f()\n",
    )
    .write("pkg/c.py", "x: int = 1\n");
    warm(&repo);
    assert!(
        whole_project(&repo)
            .iter()
            .any(|k| k.3 == "reportImportCycles"),
        "the project has a cycle pyright reports"
    );
    append(&repo, "pkg/c.py", "y: str = 2\n");
    let out = verbose_check(&repo);
    assert!(
        out.stderr
            .contains("checking the whole project: pyrightconfig.json turns on reportImportCycles"),
        "{}",
        out.stderr
    );
    assert_eq!(cached(&out), files(&out) - 1);
    assert_eq!(ours(&out, "pyright"), whole_project(&repo));
}

/// A virtual environment without pip, and `PATH` with its `bin` first, as activating it
/// sets it; its `site-packages`.
fn environment() -> (tempfile::TempDir, String, std::path::PathBuf) {
    let venv = tempfile::tempdir().expect("a temporary directory");
    let made = std::process::Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(venv.path())
        .status()
        .expect("python3 runs");
    assert!(made.success(), "a virtual environment is made");
    let path = format!(
        "{}:{}",
        venv.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let python = std::fs::read_dir(venv.path().join("lib"))
        .expect("lib/")
        .flatten()
        .next()
        .expect("lib/pythonX.Y");
    let site = python.path().join("site-packages");
    (venv, path, site)
}

/// The pyright check with `PATH` set to `path`.
fn check_with_path(repo: &Repo, path: &str) -> Outcome {
    repo.run_with_env(&CHECK, &[("PATH", path)])
}

/// Installing a package into the environment pyright resolves imports from changes pyright's
/// cache key: the next run checks again instead of serving diagnostics made without it.
/// `check` runs the check the way that finds the environment.
fn a_package_installed_checks_again(repo: &Repo, site: &Path, check: impl Fn() -> Outcome) {
    assert_eq!(cached(&check()), 0);
    assert_eq!(
        cached(&check()),
        1,
        "nothing changed: served from the cache"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::create_dir(site.join("newpkg-1.0.dist-info")).expect("an installed package");
    assert_eq!(cached(&check()), 0, "a new package: checked again");
    assert_eq!(ours(&check(), "pyright"), whole_project(repo));
}

#[test]
fn a_package_installed_into_the_environment_on_the_path_makes_pyright_check_again() {
    let repo = Repo::new();
    repo.write("app.py", "import json\n\nx: int = json.dumps(1)\n");
    let (_venv, path, site) = environment();
    a_package_installed_checks_again(&repo, &site, || check_with_path(&repo, &path));
}

#[test]
fn a_package_installed_into_the_environment_the_configuration_names_makes_pyright_check_again() {
    let repo = Repo::new();
    let (venv, _, site) = environment();
    let (parent, name) = (venv.path().parent(), venv.path().file_name());
    let config =
        serde_json::json!({ "venvPath": parent, "venv": name.map(|n| n.to_string_lossy()) });
    repo.write("pyrightconfig.json", &config.to_string())
        .write("app.py", "import json\n\nx: int = json.dumps(1)\n");
    a_package_installed_checks_again(&repo, &site, || repo.check("pyright"));
}

/// A sibling project installed editable (a `.pth` file naming its source directory, outside
/// the root) after a first run: an edit to one of its modules checks their importers again.
#[test]
fn an_edit_to_an_editable_install_outside_the_root_checks_its_importers_again() {
    let repo = Repo::new();
    repo.write("app.py", "from shared.util import g\n\nw: int = g()\n");
    let sibling = tempfile::tempdir().expect("a temporary directory");
    let util = sibling.path().join("shared/util.py");
    std::fs::create_dir_all(util.parent().expect("shared/")).expect("a directory");
    std::fs::write(&util, "def g() -> int:\n    return 1\n").expect("written");
    let (_venv, path, site) = environment();
    // Older than a second, the environment's directories let the first run remember what the
    // interpreter said, and the `.pth` file installed later must undo that.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let findings = |out: &Outcome| ours(out, "pyright");
    let unresolved = findings(&check_with_path(&repo, &path));
    assert!(
        unresolved.iter().any(|k| k.0 == "app.py" && k.1 == 1),
        "not installed yet: {unresolved:?}"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let pth = format!("{}\n", sibling.path().display());
    std::fs::write(site.join("_shared.pth"), pth).expect("an editable install");
    assert_eq!(findings(&check_with_path(&repo, &path)), BTreeSet::new());
    std::fs::write(&util, "def g() -> str:\n    return \"1\"\n").expect("edited");
    let broken = findings(&check_with_path(&repo, &path));
    assert!(
        broken.iter().any(|k| k.0 == "app.py" && k.1 == 3),
        "the edit breaks app.py: {broken:?}"
    );
}

/// Pyright resolves a relative import from the importing file's directory, `__init__.py` or
/// not; so must the inputs a result lists, or an edit to the imported module is not seen,
/// including an import written on the line of a `try:`.
#[test]
fn a_relative_import_in_a_directory_without_init_depends_on_the_module_it_names() {
    let repo = Repo::new();
    repo.write("pkg/b.py", "def f() -> int:\n    return 1\n")
        .write("pkg/a.py", "from .b import f\n\ny: int = f()\n")
        .write(
            "pkg/c.py",
            "try: from .b import f\nexcept ImportError: raise\n\nw: int = f()\n",
        )
        .write("bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    f_returns_str_and_breaks(&repo, "pkg/b.py", "pkg/a.py");
}

/// An import of a module that does not exist yet is reported unresolved; creating the module
/// checks the importer again instead of serving that error from the cache, whether the
/// import is absolute (under a package that exists, or of a name nothing holds yet), relative,
/// or takes the module from its package by name. So does a builtins stub created at the root,
/// which every module imports without saying so.
#[test]
fn creating_a_module_an_import_names_checks_the_importer_again() {
    let repo = Repo::new();
    repo.write("app/__init__.py", "")
        .write(
            "app/main.py",
            "from app.helpers import f\nfrom . import views\nfrom .forms import Form\n\
             import toolkit\n\ny: int = f()\nviews.show()\nForm()\ntoolkit.go()\nextra()\n",
        )
        .write("app/bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    let unresolved = ours(&repo.check_finding("pyright"), "pyright");
    for line in 1..=4 {
        assert!(
            unresolved
                .iter()
                .any(|k| k.0 == "app/main.py" && k.1 == line),
            "the import on line {line} is unresolved at first: {unresolved:?}"
        );
    }
    for (module, text) in [
        ("app/helpers.py", "def f() -> int:\n    return 1\n"),
        ("app/views.py", "def show() -> None:\n    pass\n"),
        ("app/forms.py", "class Form:\n    pass\n"),
        ("toolkit.py", "def go() -> None:\n    pass\n"),
        ("__builtins__.pyi", "def extra() -> None: ...\n"),
    ] {
        repo.write(module, text);
        let found = ours(&repo.check_finding("pyright"), "pyright");
        assert_eq!(found, whole_project(&repo), "after creating {module}");
    }
    let found = ours(&repo.check_finding("pyright"), "pyright");
    assert!(
        !found.iter().any(|k| k.0 == "app/main.py"),
        "every import and `extra` resolve once the modules exist: {found:?}"
    );
}

/// A module created where pyright looks before the place that answered an import checks the
/// importer again, as pyright run afresh reads it instead: at the root, before the importing
/// file's own directory; at the root, before an installed package; in the stub path, before
/// the standard library.
#[test]
fn a_module_created_where_pyright_looks_first_checks_the_importers_again() {
    let repo = Repo::new();
    let (venv, _, site) = environment();
    std::fs::create_dir_all(site.join("extlib")).expect("a package directory");
    std::fs::write(site.join("extlib/__init__.py"), "value = \"text\"\n").expect("installed");
    let (parent, name) = (venv.path().parent(), venv.path().file_name());
    let config =
        serde_json::json!({ "venvPath": parent, "venv": name.map(|n| n.to_string_lossy()) });
    repo.write("pyrightconfig.json", &config.to_string())
        .write(
            "app/main.py",
            "import extlib\nimport helpers\nimport json\n\n\
             x: int = extlib.value\ny: int = helpers.value\nz: int = json.dumps(1)\n",
        )
        .write("app/helpers.py", "value = \"text\"\n")
        .write("app/bad.py", "w: int = \"not an int\"\n");
    warm(&repo);
    let found = ours(&repo.check_finding("pyright"), "pyright");
    for line in 5..=7 {
        assert!(
            found.iter().any(|k| k.0 == "app/main.py" && k.1 == line),
            "line {line} assigns a str at first: {found:?}"
        );
    }
    for (module, text) in [
        ("helpers.py", "value = 1\n"),
        ("extlib.py", "value = 1\n"),
        ("typings/json.pyi", "def dumps(obj: object) -> int: ...\n"),
    ] {
        repo.write(module, text);
        let found = ours(&repo.check_finding("pyright"), "pyright");
        assert_eq!(found, whole_project(&repo), "after creating {module}");
    }
    // (A stub without its module is a warning of its own, on line 3.)
    let found = ours(&repo.check_finding("pyright"), "pyright");
    assert!(
        !found.iter().any(|k| k.0 == "app/main.py" && k.1 >= 5),
        "each import reads the module created: {found:?}"
    );
}

/// A `__builtins__.pyi` created in a package adds to the builtins of every module below it:
/// those modules are checked again, and so are the modules importing them, whose types may come
/// from it, as pyright run afresh reads them.
#[test]
fn a_builtins_stub_created_in_a_package_checks_the_modules_below_it_and_their_importers() {
    let repo = Repo::new();
    repo.write("pkg/__init__.py", "")
        .write("pkg/sub/__init__.py", "")
        .write("pkg/sub/greeting.py", "value = GREETING\n")
        .write(
            "main.py",
            "from pkg.sub.greeting import value\n\nx: int = value\n",
        )
        .write("bad.py", "w: int = \"not an int\"\n");
    warm(&repo);
    let at = |found: &BTreeSet<findings::Key>, path: &str| found.iter().any(|k| k.0 == path);
    let found = ours(&repo.check_finding("pyright"), "pyright");
    assert!(
        at(&found, "pkg/sub/greeting.py"),
        "GREETING is undefined: {found:?}"
    );
    assert!(!at(&found, "main.py"), "{found:?}");
    repo.write("pkg/__builtins__.pyi", "GREETING: str\n");
    let found = ours(&repo.check_finding("pyright"), "pyright");
    assert_eq!(found, whole_project(&repo));
    assert!(
        !at(&found, "pkg/sub/greeting.py"),
        "GREETING is a builtin: {found:?}"
    );
    assert!(at(&found, "main.py"), "value is a str now: {found:?}");
}

/// A module found through the configuration's `extraPaths`, which ruff does not know of, is an
/// input of the modules importing it all the same.
#[test]
fn an_import_found_through_extra_paths_depends_on_the_module_there() {
    let repo = Repo::new();
    repo.write("pyrightconfig.json", "{\"extraPaths\": [\"lib\"]}\n")
        .write("lib/utils.py", "def f() -> int:\n    return 1\n")
        .write("app/main.py", "from utils import f\n\ny: int = f()\n")
        .write("bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    f_returns_str_and_breaks(&repo, "lib/utils.py", "app/main.py");
}

/// A module found through `extraPaths` outside the root cannot be an input, as inputs are
/// paths under the root; an edit to it checks its importers again all the same.
#[test]
fn an_import_found_through_extra_paths_outside_the_root_is_followed_too() {
    let shared = tempfile::tempdir().expect("a temporary directory");
    let utils = shared.path().join("utils.py");
    std::fs::write(&utils, "def f() -> int:\n    return 1\n").expect("written");
    let config = serde_json::json!({ "extraPaths": [shared.path()] });
    let repo = Repo::new();
    repo.write("pyrightconfig.json", &config.to_string())
        .write("app/main.py", "from utils import f\n\ny: int = f()\n")
        .write("bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    f_returns_str_and_breaks(&repo, utils.to_str().expect("UTF-8"), "app/main.py");
}

/// A stub package (`foo-stubs`) in the stub path answers `import foo` before anything else:
/// an edit to it checks the importer again.
#[test]
fn an_edit_to_a_stub_package_checks_its_importers_again() {
    let repo = Repo::new();
    repo.write(
        "typings/foo-stubs/__init__.pyi",
        "def f() -> int:\n    return 1\n",
    )
    .write("app/main.py", "from foo import f\n\ny: int = f()\n")
    .write("bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    f_returns_str_and_breaks(&repo, "typings/foo-stubs/__init__.pyi", "app/main.py");
}

/// A configuration can `extends` another file, of any name, that the coordinator does not key
/// on by name: an edit there checks every file again, and each run equals pyright's own.
#[test]
fn an_edit_to_a_configuration_the_project_extends_checks_again() {
    let repo = Repo::new();
    repo.write(
        "pyrightconfig.json",
        "{\"extends\": \"configs/base.json\"}\n",
    )
    .write(
        "configs/base.json",
        "{\"reportAttributeAccessIssue\": \"none\"}\n",
    )
    .write("app/main.py", "import os\n\nos.not_there()\n")
    .write("bad.py", "z: int = \"not an int\"\n");
    warm(&repo);
    let before = ours(&repo.check_finding("pyright"), "pyright");
    assert!(before.iter().all(|k| k.0 == "bad.py"), "{before:?}");
    repo.write("configs/base.json", "{}\n");
    let after = ours(&repo.check_finding("pyright"), "pyright");
    assert!(after.iter().any(|k| k.0 == "app/main.py"), "{after:?}");
    assert_eq!(after, whole_project(&repo));
}
