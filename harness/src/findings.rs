//! Findings compared between a direct run of a wrapped tool and a run through the coordinator:
//! both turned into the same [`Key`]s, so a test can assert they are equal, finding for finding.

use crate::Outcome;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `(path, line, column, rule, message)`: what must agree between a direct run and ours.
pub type Key = (String, u64, u64, String, String);

/// The installed tool `name` (`orchestrator tools install`, which `scripts/test` runs).
pub fn tool(name: &str) -> PathBuf {
    validators::tools::spec(name)
        .and_then(|s| s.locate())
        .unwrap_or_else(|| panic!("{name} is not installed; run scripts/test, which installs it"))
}

/// Runs a tool in `root` as a user would and parses its JSON output.
pub fn direct(root: &Path, name: &str, args: &[&str]) -> Value {
    direct_with_env(root, name, args, &[])
}

/// [`direct`] with extra environment variables.
pub fn direct_with_env(root: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = Command::new(tool(name))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root)
        .output()
        .expect("tool runs");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// The findings of one validator in a JSON report of ours.
pub fn ours(out: &Outcome, validator: &str) -> BTreeSet<Key> {
    out.json()["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["validator"] == validator)
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_owned(),
                f["line"].as_u64().expect("line"),
                f["column"].as_u64().expect("column"),
                f["rule"].as_str().expect("rule").to_owned(),
                f["message"].as_str().expect("message").to_owned(),
            )
        })
        .collect()
}

/// `ruff check --output-format json` output as keys; a finding in a notebook names its cell
/// before the message, as the wrapper does.
pub fn ruff(root: &Path, report: &Value) -> BTreeSet<Key> {
    list(report)
        .map(|d| {
            (
                relative(root, str_at(d, &["filename"])),
                u64_at(d, &["location", "row"]),
                u64_at(d, &["location", "column"]),
                str_at(d, &["code"]).to_owned(),
                match d["cell"].as_u64() {
                    Some(cell) => format!("cell {cell}: {}", str_at(d, &["message"])),
                    None => str_at(d, &["message"]).to_owned(),
                },
            )
        })
        .collect()
}

/// `pyright --outputjson` output as keys (0-based positions made 1-based; a diagnostic without
/// a range, such as an import cycle, at line 1, column 1, as the wrapper reports it).
pub fn pyright(root: &Path, report: &Value) -> BTreeSet<Key> {
    list(&report["generalDiagnostics"])
        .map(|d| {
            let position = |field| match d.get("range") {
                Some(_) => u64_at(d, &["range", "start", field]) + 1,
                None => 1,
            };
            (
                relative(root, str_at(d, &["file"])),
                position("line"),
                position("character"),
                d["rule"].as_str().unwrap_or("pyright").to_owned(),
                str_at(d, &["message"]).to_owned(),
            )
        })
        .collect()
}

/// `bandit -f json` output as keys (0-based columns made 1-based).
pub fn bandit(root: &Path, report: &Value) -> BTreeSet<Key> {
    list(&report["results"])
        .map(|r| {
            (
                relative(root, str_at(r, &["filename"])),
                u64_at(r, &["line_number"]),
                u64_at(r, &["col_offset"]) + 1,
                str_at(r, &["test_id"]).to_owned(),
                str_at(r, &["issue_text"]).to_owned(),
            )
        })
        .collect()
}

fn list(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().expect("a list").iter()
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |v, key| &v[*key])
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path:?} is not a string in {value}"))
}

fn u64_at(value: &Value, path: &[&str]) -> u64 {
    at(value, path)
        .as_u64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {value}"))
}

/// A path a tool printed, relative to the root (it may print it absolute or as `./`).
fn relative(root: &Path, printed: &str) -> String {
    let root = root.canonicalize().expect("root");
    let p = Path::new(printed);
    let p = p.strip_prefix(&root).unwrap_or(p);
    p.strip_prefix("./").unwrap_or(p).display().to_string()
}
