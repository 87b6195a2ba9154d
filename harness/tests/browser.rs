//! The visual and behavioral validators through the real coordinator, on `fixtures/web-sample`,
//! with the real headless Chromium (`chromium-headless-shell`, installed by `scripts/test`).

use harness::{Outcome, Repo};
use serde_json::Value;
use std::path::Path;

const BOTH: &str = "visual,behavioral";

fn sample() -> Repo {
    let repo = Repo::new();
    repo.fixture("web-sample");
    repo
}

/// A JSON run of the browser validators; the run must end with one of `codes`.
fn run(repo: &Repo, extra: &[&str], codes: &[i32]) -> Outcome {
    run_env(repo, extra, &[], codes)
}

fn run_env(repo: &Repo, extra: &[&str], env: &[(&str, &str)], codes: &[i32]) -> Outcome {
    let mut args = vec!["run", "--all", "--format", "json", "--validators", BOTH];
    args.extend_from_slice(extra);
    let out = repo.run_with_env(&args, env);
    assert!(
        out.code.is_some_and(|c| codes.contains(&c)),
        "exit {:?}\n{}\n{}",
        out.code,
        out.stdout,
        out.stderr
    );
    assert_eq!(out.leftovers, Vec::<String>::new(), "processes left behind");
    out
}

/// `(path, line, rule)` of every finding.
fn findings(out: &Outcome) -> Vec<(String, u64, String)> {
    out.json()["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["line"].as_u64().expect("line"),
                f["rule"].as_str().expect("rule").to_owned(),
            )
        })
        .collect()
}

fn finding(out: &Outcome, rule: &str) -> Value {
    out.json()["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == rule)
        .cloned()
        .unwrap_or_else(|| panic!("no {rule} finding in {}", out.stdout))
}

fn assert_passed(out: &Outcome, validator: &str) {
    assert_eq!(
        out.validator(validator)["status"],
        "passed",
        "{}",
        out.stdout
    );
}

fn edit(repo: &Repo, path: &str, from: &str, to: &str) {
    let full = repo.root().join(path);
    let text = std::fs::read_to_string(&full).expect("read");
    assert!(text.contains(from), "{path} holds {from:?}");
    std::fs::write(full, text.replace(from, to)).expect("write");
}

/// The login button turns from green to red: a visual difference on the pages that show it.
fn recolour_button(repo: &Repo) {
    edit(
        repo,
        "site/style.css",
        "background: #1f883d",
        "background: #cf222e",
    );
}

/// The login form's first label changes: a difference in the login scenario's DOM snapshot.
fn relabel_name(repo: &Repo) {
    edit(
        repo,
        "site/login.html",
        "<label for=\"user\">Name</label>",
        "<label for=\"user\">Your name</label>",
    );
}

/// Every file under the baselines directory and its contents.
fn baselines(repo: &Repo) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![repo.root().join(".orchestrator/baselines")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(repo.root()).expect("under root");
                files.push((
                    rel.display().to_string(),
                    std::fs::read(&path).expect("read"),
                ));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn the_sample_passes_but_for_its_console_error() {
    let repo = sample();
    let out = run(&repo, &[], &[1]);
    assert_passed(&out, "visual");
    assert_eq!(out.validator("visual")["files"], 3);
    assert_eq!(out.validator("behavioral")["status"], "failed");
    assert_eq!(
        findings(&out),
        [(
            "scenarios/status.scenario.toml".to_owned(),
            1,
            "behavioral-console-error".to_owned()
        )]
    );
    let f = finding(&out, "behavioral-console-error");
    assert!(
        f["message"]
            .as_str()
            .expect("message")
            .contains("status feed unavailable"),
        "{f}"
    );
}

#[test]
fn a_changed_colour_is_a_visual_difference_with_its_images() {
    let repo = sample();
    let before = baselines(&repo);
    recolour_button(&repo);
    let out = run(&repo, &[], &[1]);
    let rules = findings(&out);
    assert!(
        rules.contains(&("site/login.html".into(), 1, "visual-diff".into())),
        "{rules:?}"
    );
    assert!(
        !rules
            .iter()
            .any(|(p, _, r)| p == "site/index.html" && r == "visual-diff"),
        "a page without the button is unchanged: {rules:?}"
    );
    let f = finding(&out, "visual-diff");
    let message = f["message"].as_str().expect("message");
    assert!(
        message.contains("pixels (") && message.contains("0 allowed"),
        "{message}"
    );
    let kinds: Vec<&str> = f["artifacts"]
        .as_array()
        .expect("artifacts")
        .iter()
        .map(|a| {
            let path = a["path"].as_str().expect("path");
            assert!(repo.root().join(path).is_file(), "{path} was written");
            assert!(
                path.starts_with(".orchestrator/artifacts/visual/site/login.html/"),
                "{path}"
            );
            a["kind"].as_str().expect("kind")
        })
        .collect();
    assert_eq!(kinds, ["expected", "actual", "diff"]);
    assert_eq!(
        baselines(&repo),
        before,
        "nothing under the baselines is modified"
    );
    // The finding is served from the cache while its images exist, and checked again (so
    // they are written again) once they are gone.
    let again = run(&repo, &["--validators", "visual"], &[1]);
    assert_eq!(again.validator("visual")["cached_files"], 3);
    assert_eq!(findings(&again), rules);
    std::fs::remove_dir_all(repo.root().join(".orchestrator/artifacts")).expect("remove");
    let again = run(&repo, &["--validators", "visual"], &[1]);
    assert_eq!(again.validator("visual")["cached_files"], 2);
    let diff = repo
        .root()
        .join(".orchestrator/artifacts/visual/site/login.html/800x600/diff.png");
    assert!(diff.is_file(), "the images are written again");
}

#[test]
fn update_baselines_writes_what_changed_and_the_next_run_passes() {
    let repo = sample();
    recolour_button(&repo);
    std::fs::remove_file(
        repo.root()
            .join(".orchestrator/baselines/visual/site/index.html/800x600.png"),
    )
    .expect("remove");
    // The differences are cached first: updating must check those pages again.
    run(&repo, &[], &[1]);
    let out = run(&repo, &["--update-baselines"], &[1]);
    let json = out.json();
    let written: Vec<&str> = json["baselines_written"]
        .as_array()
        .expect("listed")
        .iter()
        .map(|p| p.as_str().expect("path"))
        .collect();
    assert_eq!(
        written,
        [
            ".orchestrator/baselines/visual/site/index.html/800x600.png",
            ".orchestrator/baselines/visual/site/login.html/390x844.png",
            ".orchestrator/baselines/visual/site/login.html/800x600.png",
        ]
    );
    let environment = std::fs::read_to_string(
        repo.root()
            .join(".orchestrator/baselines/visual/ENVIRONMENT.toml"),
    )
    .expect("the browser and fonts are recorded");
    assert!(environment.contains("browser = \""), "{environment}");
    let out = run(&repo, &[], &[1]);
    assert_passed(&out, "visual");
}

#[test]
fn a_missing_baseline_says_how_to_make_one() {
    let repo = sample();
    std::fs::remove_file(
        repo.root()
            .join(".orchestrator/baselines/visual/site/status.html/390x844.png"),
    )
    .expect("remove");
    let out = run(&repo, &[], &[1]);
    let f = finding(&out, "visual-no-baseline");
    assert_eq!(f["path"], "site/status.html");
    let message = f["message"].as_str().expect("message");
    assert!(message.contains("--update-baselines"), "{message}");
    assert_eq!(f["artifacts"][0]["kind"], "actual");
}

#[test]
fn a_broken_step_is_a_finding_on_its_line_and_the_rest_do_not_run() {
    let repo = sample();
    edit(
        &repo,
        "scenarios/login.scenario.toml",
        "equals = \"Bonjour, ada\"",
        "equals = \"Bonjour, bob\"",
    );
    let out = run(&repo, &[], &[1]);
    let f = finding(&out, "behavioral-step");
    assert_eq!(f["path"], "scenarios/login.scenario.toml");
    // The `[[steps]]` line of the expect_text step.
    assert_eq!(f["line"], 23);
    assert_eq!(
        f["message"],
        "expected the text of `#greeting` to equal \"Bonjour, bob\"; found \"Bonjour, ada\""
    );
    let steps = findings(&out)
        .into_iter()
        .filter(|(_, _, r)| r == "behavioral-step")
        .count();
    assert_eq!(steps, 1, "the steps after the failure did not run");
}

#[test]
fn a_changed_dom_is_a_snapshot_diff_and_a_malformed_scenario_a_finding() {
    let repo = sample();
    relabel_name(&repo);
    repo.write(
        "scenarios/bad.scenario.toml",
        "page = \"site/index.html\"\n\n[[steps]]\nhover = \"a\"\n",
    );
    let out = run(&repo, &[], &[1]);
    let f = finding(&out, "behavioral-step");
    let message = f["message"].as_str().expect("message");
    assert!(
        message
            .starts_with("snapshot `main` differs from its baseline:\n--- baseline\n+++ actual\n"),
        "{message}"
    );
    assert!(
        message.contains("-      \"Name\"\n+      \"Your name\""),
        "{message}"
    );
    assert_eq!(f["artifacts"][0]["kind"], "actual");
    let bad = finding(&out, "behavioral-scenario");
    assert_eq!(bad["path"], "scenarios/bad.scenario.toml");
    assert_eq!(bad["line"], 3);
}

#[test]
fn an_unchanged_sample_is_answered_from_the_cache_without_a_browser() {
    let repo = sample();
    let log = repo.root().join("launches.log");
    let wrapper = repo.root().join("browser.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] || echo launch >> {}\nexec chromium-headless-shell \"$@\"\n",
            log.display()
        ),
    )
    .expect("write");
    make_executable(&wrapper);
    let env = [("ORCHESTRATOR_BROWSER", wrapper.to_str().expect("utf-8"))];
    run_env(&repo, &[], &env, &[1]);
    let launches = std::fs::read_to_string(&log).expect("the browser ran");
    assert_eq!(launches.lines().count(), 2, "one browser per validator");
    std::fs::remove_file(&log).expect("reset");
    let out = run_env(&repo, &[], &env, &[1]);
    assert_eq!(out.validator("visual")["cached_files"], 3);
    assert_eq!(out.validator("behavioral")["cached_files"], 2);
    assert!(!log.exists(), "no browser was started for a warm run");
    // A stylesheet is an input of every page that loads it.
    edit(
        &repo,
        "site/style.css",
        "margin-right: 16px",
        "margin-right: 17px",
    );
    let out = run_env(&repo, &[], &env, &[1]);
    assert_eq!(out.validator("visual")["cached_files"], 0);
}

#[test]
fn three_renders_of_a_page_are_byte_identical() {
    let repo = sample();
    let shot = repo
        .root()
        .join(".orchestrator/artifacts/visual/site/index.html/800x600/actual.png");
    let baseline = repo
        .root()
        .join(".orchestrator/baselines/visual/site/index.html/800x600.png");
    std::fs::remove_file(&baseline).expect("remove");
    let mut renders = Vec::new();
    for _ in 0..3 {
        run(&repo, &["--no-cache", "--validators", "visual"], &[1]);
        renders.push(std::fs::read(&shot).expect("rendered"));
    }
    assert!(renders[0].starts_with(b"\x89PNG"));
    assert!(renders.windows(2).all(|w| w[0] == w[1]), "renders differ");
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn a_page_that_loops_forever_times_out_and_leaves_nothing_behind() {
    let repo = sample();
    repo.write(
        "site/loop.html",
        "<!doctype html><p>spinning</p><script>while (true) {}</script>\n",
    );
    edit(
        &repo,
        "orchestrator.toml",
        "full_page = true",
        "full_page = true\ntimeout = \"8s\"",
    );
    let out = run(&repo, &["--validators", "visual"], &[3]);
    let v = out.validator("visual");
    assert_eq!(v["status"], "timed_out", "{}", out.stdout);
    // The other pages' results arrived before the limit.
    assert!(v["files_done"].as_u64().expect("done") >= 1, "{v}");
}

#[test]
fn a_server_that_never_becomes_ready_times_out() {
    let repo = sample();
    repo.config(
        "[validators.behavioral]\nserve = \"sleep 600\"\nready = \"/\"\ntimeout = \"3s\"\n\
         [validators.visual]\nenabled = false\n",
    );
    let out = run(&repo, &["--validators", "behavioral"], &[3]);
    assert_eq!(
        out.validator("behavioral")["status"],
        "timed_out",
        "{}",
        out.stdout
    );
}

#[test]
fn pages_can_come_from_a_test_server() {
    let repo = sample();
    edit(
        &repo,
        "orchestrator.toml",
        "[validators.behavioral]",
        "[validators.behavioral]\nserve = \"python3 -m http.server --bind 127.0.0.1 {port}\"\nserve_root = \"site\"",
    );
    let out = run(&repo, &[], &[1]);
    assert_eq!(
        findings(&out),
        [(
            "scenarios/status.scenario.toml".to_owned(),
            1,
            "behavioral-console-error".to_owned()
        )],
        "{}",
        out.stdout
    );
}

#[test]
fn a_browser_killed_from_outside_is_a_crash() {
    let repo = sample();
    // The browser is killed two seconds after it starts, while a step waits.
    let wrapper = repo.root().join("browser.sh");
    // Debian's chromium-headless-shell is a script around the real binary: kill the binary.
    let real = ["/usr/lib/chromium/chromium-headless-shell"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .unwrap_or("chromium-headless-shell");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\n[ \"$1\" = --version ] && exec {real} --version\n\
             {real} \"$@\" &\nb=$!\n(sleep 2; kill -9 $b) &\nwait $b\n"
        ),
    )
    .expect("write");
    make_executable(&wrapper);
    repo.write(
        "scenarios/slow.scenario.toml",
        "page = \"site/index.html\"\n[[steps]]\nwait_for = \"#never\"\ntimeout = \"20s\"\n",
    );
    let env = [("ORCHESTRATOR_BROWSER", wrapper.to_str().expect("utf-8"))];
    let out = run_env(&repo, &["--validators", "behavioral"], &env, &[3]);
    let v = out.validator("behavioral");
    assert_eq!(v["status"], "crashed", "{}", out.stdout);
    assert!(
        v["message"]
            .as_str()
            .expect("message")
            .contains("the browser"),
        "{v}"
    );
    // A dead browser is a transient failure: retried (twice by default), each new browser
    // killed again by the wrapper.
    let attempts = v["attempts"].as_array().expect("attempts");
    assert_eq!(attempts.len(), 3, "{v}");
    assert!(attempts.iter().all(|a| a["status"] == "crashed"), "{v}");
}

#[test]
fn a_page_that_loads_a_file_outside_the_root_is_reported() {
    let repo = sample();
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let css = elsewhere.path().join("x.css");
    std::fs::write(&css, "body { color: red }").expect("write");
    repo.write(
        "site/leak.html",
        &format!(
            "<!doctype html><link rel=\"stylesheet\" href=\"file://{}\"><p>leak</p>\n",
            css.display()
        ),
    );
    let out = run(&repo, &["--validators", "visual"], &[1]);
    let f = finding(&out, "visual-error");
    assert_eq!(f["path"], "site/leak.html");
    let message = f["message"].as_str().expect("message");
    assert!(message.contains("outside the root"), "{message}");
}

#[test]
fn page_errors_follow_console_errors_and_networkidle_waits_for_a_quiet_page() {
    let repo = sample();
    edit(
        &repo,
        "orchestrator.toml",
        "console_errors = \"error\"",
        "console_errors = \"warning\"",
    );
    edit(
        &repo,
        "orchestrator.toml",
        "full_page = true",
        "full_page = true\nwait_for = \"networkidle\"",
    );
    let out = run(&repo, &[], &[0]);
    assert_passed(&out, "visual");
    assert_passed(&out, "behavioral");
    let f = finding(&out, "behavioral-console-error");
    assert_eq!(f["severity"], "warning");
    edit(
        &repo,
        "orchestrator.toml",
        "console_errors = \"warning\"",
        "console_errors = \"off\"",
    );
    let out = run(&repo, &[], &[0]);
    assert_eq!(findings(&out), []);
}

/// Loads `page` in the real headless browser with `args`; its DOM after scripts ran, and its
/// log (console messages included).
fn browse(page: &Path, fragment: &str, args: &[&str]) -> (String, String) {
    let browser = validators::tools::browser_on_path().expect("a browser on PATH");
    let profile = tempfile::tempdir().expect("a temporary directory");
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--virtual-time-budget=3000", "--window-size=1200,1600"])
        .args(args)
        .arg(format!("file://{}{fragment}", page.display()))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the browser runs");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_html_report_shows_the_images_and_its_filters_work_in_the_browser() {
    let repo = sample();
    recolour_button(&repo);
    relabel_name(&repo);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let page = dir.path().join("report.html");
    let out = run(
        &repo,
        &["--report", &format!("html={}", page.display())],
        &[1],
    );
    let html = std::fs::read_to_string(&page).expect("the HTML report");
    let json = out.json();
    let all = json["findings"].as_array().expect("findings");
    let visual = all.iter().filter(|f| f["validator"] == "visual").count();
    let behavioral = all.len() - visual;
    assert!(visual > 0 && behavioral > 0, "{}", out.stdout);
    // Self-contained: the images are inside, nothing is loaded from elsewhere.
    assert!(html.matches("src=\"data:image/png;base64,").count() >= 3);
    for outside in ["src=\"http", "src=\"file", "<link", "@import", "url("] {
        assert!(!html.contains(outside), "{outside}");
    }
    assert!(html.contains("<span class=\"add\">+      &quot;Your name&quot;</span>"));

    let (dom, log) = browse(&page, "#hide=validator:behavioral", &["--dump-dom"]);
    assert!(!log.contains("Uncaught"), "{log}");
    assert!(!log.contains(":CONSOLE"), "console messages: {log}");
    assert!(
        dom.contains("<div id=\"filters\">"),
        "the filters show with JavaScript"
    );
    assert!(
        dom.contains(&format!("<span id=\"shown\">{visual}</span>")),
        "{dom}"
    );
    assert_eq!(
        dom.matches("data-validator=\"behavioral\" data-severity=\"error\" hidden=\"\"")
            .count()
            + dom
                .matches("data-validator=\"behavioral\" data-severity=\"warning\" hidden=\"\"")
                .count(),
        behavioral,
        "every behavioral finding is hidden"
    );
    assert!(
        !dom.contains("class=\"compare\" hidden"),
        "the slider shows"
    );
    let (dom, _) = browse(&page, "", &["--dump-dom"]);
    assert!(dom.contains(&format!("<span id=\"shown\">{}</span>", all.len())));

    let shot = dir.path().join("report.png");
    let (_, log) = browse(&page, "", &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).unwrap_or_else(|_| panic!("no screenshot: {log}"));
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
