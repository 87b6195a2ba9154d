//! The remote cache level against real storage servers started on loopback ports: Redis and
//! nginx's WebDAV (see `harness::servers`). Each "machine" is a repository of its own with a
//! local cache of its own; only the remote joins them.
//!
//! The fake validator's `record` behaviour logs every request, so "did this machine check the
//! files again?" is read from its log.

use harness::servers::{Dav, Redis};
use harness::{Outcome, Repo};
use std::time::{Duration, Instant};

const SECRET: &str = "a secret the team's CI machines share";

/// A "machine": the same three files and a fake validator with findings, under `config`.
fn machine(config: &str) -> Repo {
    let repo = Repo::new();
    repo.write("a.py", "a = 1\n")
        .write("pkg/b.py", "b = 2\n")
        .write("pkg/c.py", "c = 3\n");
    repo.fake("lint").config(&format!(
        "[validators.lint]\nfindings = 1\nrecord = \"requests.log\"\n{config}"
    ));
    repo
}

/// A run of the fake against `url` with `secret`; it must end with findings (exit 1).
fn run(repo: &Repo, url: &str, secret: Option<&str>) -> Outcome {
    let mut env = vec![("ORCHESTRATOR_REMOTE_CACHE", url)];
    env.extend(secret.map(|s| ("ORCHESTRATOR_CACHE_SECRET", s)));
    let out = repo.run_with_env(
        &["run", "--all", "--format", "json", "--validators", "lint"],
        &env,
    );
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    assert_eq!(
        out.validator("lint")["status"],
        "failed",
        "complete, with findings"
    );
    out
}

/// How many requests the fake was sent on this machine.
fn requests(repo: &Repo) -> usize {
    std::fs::read_to_string(repo.root().join("requests.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn warnings(out: &Outcome) -> Vec<String> {
    out.json()["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().expect("text").to_owned())
        .collect()
}

/// `orchestrator cache stats` of a machine.
fn stats(repo: &Repo) -> String {
    let out = repo.run(&["cache", "stats"]);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    out.stdout
}

/// The server, or the reason the test does not run.
macro_rules! server {
    ($start:expr) => {
        match $start {
            Ok(server) => server,
            Err(why) => {
                eprintln!("skipped: {why}");
                return;
            }
        }
    };
}

/// The second machine is answered from the first one's results: nothing is checked again and
/// the report is the same.
fn shared_between_two_machines(url: &str) {
    let (first, second) = (machine(""), machine(""));
    let cold = run(&first, url, Some(SECRET));
    assert_eq!(requests(&first), 1);
    assert!(
        stats(&first).contains("remote writes 3 written"),
        "{}",
        stats(&first)
    );
    let warm = run(&second, url, Some(SECRET));
    assert_eq!(requests(&second), 0, "the second machine checked nothing");
    assert_eq!(warm.json()["findings"], cold.json()["findings"]);
    assert_eq!(warm.validator("lint")["cached_files"], 3);
    assert_eq!(warnings(&warm), Vec::<String>::new());
    let seen = stats(&second);
    assert!(
        seen.contains("remote        3 hits, 0 misses, 0 errors, 0 rejected"),
        "{seen}"
    );
    // The remote's hits filled the local cache: without the remote, still nothing to check.
    run(&second, "off", None);
    assert_eq!(requests(&second), 0);
}

#[test]
fn two_machines_share_results_through_redis() {
    let redis = server!(Redis::start(&[]));
    shared_between_two_machines(&redis.url());
    assert_eq!(redis.keys().len(), 3);
    assert!(redis
        .keys()
        .iter()
        .all(|k| k.starts_with("orchestrator/v1/")));
}

#[test]
fn two_machines_share_results_through_webdav() {
    let dav = server!(Dav::start());
    shared_between_two_machines(&dav.url());
    let objects = std::fs::read_dir(dav.files().join("cache/orchestrator/v1"))
        .expect("objects written under the collection")
        .count();
    assert_eq!(objects, 3);
}

#[test]
fn a_tampered_entry_or_another_secret_is_never_served() {
    let redis = server!(Redis::start(&[]));
    let url = redis.url();
    let cold = run(&machine(""), &url, Some(SECRET));
    let elsewhere = machine("");
    let other = run(&elsewhere, &url, Some("another secret"));
    assert_eq!(
        requests(&elsewhere),
        1,
        "nothing written with another secret is trusted"
    );
    assert!(
        warnings(&other).is_empty(),
        "unknown names are plain misses"
    );
    // Alter one byte of each stored value, past the 4-byte header and the 32-byte tag.
    for key in redis.keys() {
        redis.cli(&["SETRANGE", &key, "40", "X"]);
    }
    let victim = machine("");
    let served = run(&victim, &url, Some(SECRET));
    assert_eq!(requests(&victim), 1, "every file was checked again");
    assert_eq!(served.json()["findings"], cold.json()["findings"]);
    let said = warnings(&served);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("3 objects were not served"), "{}", said[0]);
    assert!(stats(&victim).contains("0 hits, 0 misses, 0 errors, 3 rejected"));
}

#[test]
fn the_remote_going_down_mid_run_costs_one_warning_and_no_result() {
    let mut redis = server!(Redis::start(&[]));
    let url = redis.url();
    // The fake answers after 1.5 s; the remote dies before its results are written. A write
    // to a server that went away fails only when its time limit is over.
    let repo = machine("sleep = \"1500ms\"\n[cache.remote]\ntimeout = \"2s\"\n");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        redis.kill();
    });
    let out = run(&repo, &url, Some(SECRET));
    killer.join().expect("killer thread");
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("skipped for the rest of the run after 3 failed"),
        "{}",
        said[0]
    );
    assert_eq!(out.json()["findings"].as_array().map(Vec::len), Some(3));
    // The local cache kept everything.
    run(&repo, "off", None);
    assert_eq!(requests(&repo), 1);
    // A remote that is down from the start: the same one warning, at once.
    let down = machine("");
    let out = run(&down, &url, Some(SECRET));
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("is not used: cannot connect to 127.0.0.1"),
        "{}",
        said[0]
    );
}

#[test]
fn a_full_remote_fails_its_writes_and_not_the_run() {
    // Every write refused with an out-of-memory error.
    let redis = server!(Redis::start(&[
        "maxmemory 1",
        "maxmemory-policy noeviction"
    ]));
    let repo = machine("");
    let out = run(&repo, &redis.url(), Some(SECRET));
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("OOM"),
        "the first error is named: {}",
        said[0]
    );
    assert!(stats(&repo).contains("remote writes 0 written (0 B), 3 not written"));
    assert_eq!(redis.keys(), Vec::<String>::new());
}

#[test]
fn a_slow_remote_is_waited_for_no_longer_than_the_write_budget() {
    let redis = server!(Redis::start(&[]));
    // Writes hang for a minute; reads go on.
    redis.cli(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    let repo = machine("");
    repo.config(
        "[validators.lint]\nfindings = 1\nrecord = \"requests.log\"\n\
         [cache.remote]\nwrite_budget = \"1s\"\ntimeout = \"30s\"\n",
    );
    let started = Instant::now();
    let out = run(&repo, &redis.url(), Some(SECRET));
    let took = started.elapsed();
    // A bound on waiting, not a speed target: the pause lasts a minute.
    assert!(took < Duration::from_secs(20), "the run waited {took:?}");
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("write budget of 1s"), "{}", said[0]);
    redis.cli(&["CLIENT", "UNPAUSE"]);
}

#[test]
fn read_only_and_secretless_machines_write_nothing() {
    let redis = server!(Redis::start(&[]));
    let url = redis.url();
    let fork = machine("[cache.remote]\nread_only = true\n");
    run(&fork, &url, Some(SECRET));
    assert_eq!(redis.keys(), Vec::<String>::new(), "read-only");
    let secretless = machine("");
    let out = run(&secretless, &url, None);
    let said = warnings(&out);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("ORCHESTRATOR_CACHE_SECRET is not set"),
        "{}",
        said[0]
    );
    assert_eq!(redis.keys(), Vec::<String>::new(), "without the secret");
    // What a trusted machine wrote, a read-only one is served.
    run(&machine(""), &url, Some(SECRET));
    let reader = machine("[cache.remote]\nread_only = true\n");
    run(&reader, &url, Some(SECRET));
    assert_eq!(requests(&reader), 0);
}

#[test]
fn doctor_says_whether_a_run_would_use_the_remote() {
    let mut redis = server!(Redis::start(&[]));
    let url = redis.url();
    let repo = machine("");
    let line = |env: &[(&str, &str)]| {
        let out = repo.run_with_env(&["doctor"], env);
        out.stdout
            .lines()
            .find(|l| l.contains("remote cache"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no remote cache line:\n{}", out.stdout))
    };
    let with_secret = [
        ("ORCHESTRATOR_REMOTE_CACHE", url.as_str()),
        ("ORCHESTRATOR_CACHE_SECRET", SECRET),
    ];
    let ok = line(&with_secret);
    assert!(
        ok.starts_with("ok") && ok.contains("accepts connections (read and write)"),
        "{ok}"
    );
    let secretless = line(&[("ORCHESTRATOR_REMOTE_CACHE", url.as_str())]);
    assert!(
        secretless.starts_with("warn") && secretless.contains("is not set"),
        "{secretless}"
    );
    redis.kill();
    let down = line(&with_secret);
    assert!(
        down.starts_with("warn") && down.contains("cannot connect"),
        "{down}"
    );
    let none = repo.run(&["doctor"]);
    assert!(
        !none.stdout.contains("remote cache"),
        "not configured, not listed"
    );
}
