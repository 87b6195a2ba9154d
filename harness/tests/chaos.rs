//! Chaos at scale: many validators, many runs on one cache, a cache that disappears or fills
//! its disk, validators that fork a thousand children, trickle their frames or flood logs, a
//! 1 GiB file, and a coordinator killed with SIGKILL. Each run must end within a bound, with
//! bounded memory, every result that could be had, and no process left behind.

use harness::{Outcome, Repo};
use std::time::Duration;

fn repo(n: usize, names: &[&str], config: &str) -> Repo {
    Repo::with_fakes(n, names, config)
}

/// Checks the bounds every chaos run must keep: time, the coordinator's memory, no leftovers.
fn bounded(out: &Outcome, time: Duration, rss_mib: i64) {
    assert!(
        out.elapsed < time,
        "took {:?} (bound {time:?})\n{}",
        out.elapsed,
        out.stderr
    );
    assert!(
        out.max_rss_kib < rss_mib * 1024,
        "peak memory {} KiB (bound {rss_mib} MiB)",
        out.max_rss_kib
    );
    assert!(out.leftovers.is_empty(), "left behind: {:?}", out.leftovers);
}

/// `orchestrator cache check` on the repository's cache: SQLite's integrity check.
fn assert_cache_intact(repo: &Repo) {
    let out = repo.run(&["cache", "check"]);
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
}

#[test]
fn fifty_validators_at_once() {
    let names: Vec<String> = (0..50).map(|i| format!("v{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let repo = repo(4, &refs, "");
    for name in &names {
        let table = format!("[validators.{name}]\nfindings = 1\n");
        let config = std::fs::read_to_string(repo.root().join("orchestrator.toml")).expect("c");
        repo.config(&format!("{config}{table}"));
    }
    let out = repo.check(&names.join(","));
    bounded(&out, Duration::from_secs(30), 100);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    let json = out.json();
    assert_eq!(json["findings"].as_array().map(Vec::len), Some(200));
    assert!(json["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .all(|v| v["status"] == "failed"));
}

#[test]
fn ten_concurrent_runs_share_one_cache() {
    let repo = repo(
        20,
        &["lint", "types"],
        "[validators.lint]\nfindings = 2\n[validators.types]\nfindings = 1\nscope = \"project\"\n",
    );
    let outs: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| s.spawn(|| repo.check("lint,types")))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("run"))
            .collect()
    });
    let first = outs[0].json()["findings"].clone();
    assert_eq!(first.as_array().map(Vec::len), Some(60));
    for out in &outs {
        bounded(out, Duration::from_secs(40), 100);
        assert_eq!(out.code, Some(1), "{}", out.stderr);
        assert_eq!(out.json()["status"], "failed");
        assert_eq!(out.json()["findings"], first, "every run reports the same");
    }
    assert_cache_intact(&repo);
    let warm = repo.check("lint,types");
    assert_eq!(warm.json()["findings"], first);
    assert_eq!(warm.validator("lint")["cached_files"], 20);
}

#[test]
fn the_cache_directory_deleted_mid_run_costs_nothing_but_the_cache() {
    let repo = repo(
        6,
        &["slow"],
        "[validators.slow]\nfindings = 1\nsleep = \"200ms\"\nbatch_size = 1\n",
    );
    let cache = repo.cache_dir().to_owned();
    let out = std::thread::scope(|s| {
        let run = s.spawn(|| {
            repo.run(&[
                "run",
                "--all",
                "--jobs",
                "1",
                "--format",
                "json",
                "--validators",
                "slow",
            ])
        });
        std::thread::sleep(Duration::from_millis(500));
        std::fs::remove_dir_all(&cache).expect("the cache directory can be removed");
        run.join().expect("run")
    });
    bounded(&out, Duration::from_secs(20), 100);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.json()["findings"].as_array().map(Vec::len), Some(6));
    // The next run makes a new cache and is as right.
    let again = repo.check("slow");
    assert_eq!(again.json()["findings"].as_array().map(Vec::len), Some(6));
    assert_cache_intact(&repo);
}

#[test]
fn a_cache_on_a_full_filesystem_gives_an_uncached_run_with_every_result() {
    // SAFETY: geteuid has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a tiny tmpfs needs root (CI runs as root)");
        return;
    }
    let repo = repo(200, &["lint"], "[validators.lint]\nfindings = 3\n");
    let mount = tempfile::tempdir().expect("tempdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: this machine does not allow mounting a tmpfs");
        return;
    }
    let cache = mount.path().join("cache");
    let out = repo.run_with_env(
        &["run", "--all", "--format", "json", "--validators", "lint"],
        &[("ORCHESTRATOR_CACHE_DIR", cache.to_str().expect("utf-8"))],
    );
    let _ = std::process::Command::new("umount")
        .arg(mount.path())
        .status();
    bounded(&out, Duration::from_secs(30), 100);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.json()["findings"].as_array().map(Vec::len), Some(600));
    assert!(
        out.stderr
            .contains("warning: the result cache cannot be used"),
        "one warning line names the problem: {}",
        out.stderr
    );
}

#[test]
fn a_validator_that_starts_a_thousand_children_leaves_none() {
    let repo = repo(2, &["forky"], "[validators.forky]\nchildren = 1000\n");
    let out = repo.check("forky");
    bounded(&out, Duration::from_secs(40), 100);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
}

#[test]
fn frames_a_byte_at_a_time_and_a_flood_of_logs_arrive_whole() {
    let repo = repo(
        50,
        &["trickle", "chatty"],
        "[validators.trickle]\ntrickle = true\nfindings = 2\n\
         [validators.chatty]\nlog_flood = 100000\nfindings = 1\n",
    );
    let out = repo.check("chatty,trickle");
    bounded(&out, Duration::from_secs(40), 100);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.validator("trickle")["findings"], 100);
    assert_eq!(out.validator("chatty")["findings"], 50);
    assert_eq!(out.validator("chatty")["status"], "failed");
}

#[test]
fn a_one_gib_file_is_hashed_in_bounded_memory() {
    let repo = repo(1, &["lint"], "[validators.lint]\nfindings = 1\n");
    let big = std::fs::File::create(repo.root().join("src/big.py")).expect("create");
    big.set_len(1 << 30).expect("a sparse 1 GiB file");
    let out = repo.check("lint");
    bounded(&out, Duration::from_secs(40), 100);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert_eq!(out.validator("lint")["files"], 2);
}

/// Whether this machine lets a process make a child cgroup of its own (cgroup v2).
fn cgroups_writable() -> bool {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(relative) = own.lines().find_map(|l| l.strip_prefix("0::")) else {
        return false;
    };
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let Some(mount) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2").then(|| left.split_whitespace().nth(4))?
    }) else {
        return false;
    };
    let probe = std::path::Path::new(mount)
        .join(relative.trim_start_matches('/'))
        .join(format!("harness-probe-{}", std::process::id()));
    let made = std::fs::create_dir(&probe).is_ok();
    let _ = std::fs::remove_dir(&probe);
    made
}

#[test]
fn a_coordinator_killed_with_sigkill_leaves_no_validator_and_no_half_report() {
    let setsid = cgroups_writable();
    if !setsid {
        eprintln!(
            "no writable cgroup here: checking direct children and their groups only \
             (a setsid escapee may survive a SIGKILLed coordinator without one)"
        );
    }
    let repo = repo(
        4,
        &["stuck", "nested", "steady"],
        &format!(
            "[validators.stuck]\nhang = \"after_handshake\"\nspawn = \"{}\"\n\
             [validators.nested]\nhang = \"after_first_file\"\nspawn = \"grandchild\"\n\
             [validators.steady]\nfindings = 1\n",
            if setsid { "setsid" } else { "child" }
        ),
    );
    std::fs::write(repo.root().join("report.json"), "old report\n").expect("write");
    let out = repo.run_signalled(
        &[
            "run",
            "--all",
            "--format",
            "json",
            "--output",
            "report.json",
            "--validators",
            "nested,steady,stuck",
        ],
        Duration::from_millis(1500),
        libc::SIGKILL,
    );
    assert_eq!(out.code, None, "killed by a signal");
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    assert!(out.max_rss_kib < 100 * 1024, "{} KiB", out.max_rss_kib);
    let left = out.leftovers_within(Duration::from_secs(5));
    assert!(left.is_empty(), "outlived the coordinator: {left:?}");
    let report = std::fs::read_to_string(repo.root().join("report.json")).expect("read");
    assert_eq!(report, "old report\n", "never half a report");
    let stray: Vec<_> = std::fs::read_dir(repo.root())
        .expect("list")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
    assert_cache_intact(&repo);
    // The next run is correct: the steady validator's results, whatever the cache kept.
    let config = std::fs::read_to_string(repo.root().join("orchestrator.toml")).expect("c");
    repo.config(&config.replace("hang = ", "slept = "));
    let next = repo.check("nested,steady,stuck");
    assert_eq!(next.code, Some(1), "{}", next.stderr);
    assert_eq!(next.validator("steady")["findings"], 4);
    assert!(next.leftovers.is_empty(), "{:?}", next.leftovers);
}
