//! Scenario files (`*.scenario.toml`): a page, a viewport and steps, each step knowing the line
//! it is written on so that a failing step is reported there.

use crate::page::Viewport;
use std::time::Duration;
use validators::settings::parse_duration;

/// How long a step waits for its element or its expectation when neither the step nor the
/// scenario says (Playwright's expect timeout).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Scenario {
    pub page: String,
    pub viewport: Viewport,
    pub steps: Vec<Step>,
}

/// One step and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub line: u32,
    pub action: Action,
    pub timeout: Duration,
}

/// How a text is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Equals(String),
    Contains(String),
    /// A JavaScript regular expression, matched in the page.
    Matches(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Goto(String),
    Click(String),
    Fill {
        selector: String,
        text: String,
    },
    Press {
        key: String,
        selector: Option<String>,
    },
    Select {
        selector: String,
        value: String,
    },
    WaitFor(String),
    ExpectVisible(String),
    ExpectHidden(String),
    ExpectText {
        selector: String,
        expected: Match,
    },
    ExpectCount {
        selector: String,
        count: u64,
    },
    ExpectUrl(Match),
    Snapshot {
        selector: String,
        name: String,
    },
}

/// A mistake in a scenario file, at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub line: u32,
    pub message: String,
}

/// The keys that name a step's action.
const ACTIONS: [&str; 12] = [
    "goto",
    "click",
    "fill",
    "press",
    "select",
    "wait_for",
    "expect_visible",
    "expect_hidden",
    "expect_text",
    "expect_count",
    "expect_url",
    "snapshot",
];

/// Parses a scenario; `default_viewport` applies when it names none.
pub fn parse(text: &str, default_viewport: Viewport) -> Result<Scenario, ScenarioError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| ScenarioError {
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: format!("not valid TOML: {}", e.message()),
    })?;
    let at = |line: u32, message: String| ScenarioError { line, message };
    let key_line = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(key))
            .map_or(1, |i| i as u32 + 1)
    };
    for key in table.keys() {
        if !["page", "viewport", "timeout", "steps"].contains(&key.as_str()) {
            return Err(at(
                key_line(key),
                format!(
                    "unknown key `{key}`; a scenario has page, viewport, timeout and [[steps]]"
                ),
            ));
        }
    }
    let page = match table.get("page") {
        Some(toml::Value::String(p)) => p.clone(),
        Some(_) => return Err(at(key_line("page"), "`page` must be a string".into())),
        None => {
            return Err(at(
                1,
                "no `page`: name the page the scenario starts on".into(),
            ))
        }
    };
    let viewport = match table.get("viewport") {
        None => default_viewport,
        Some(toml::Value::String(v)) => Viewport::parse(v).ok_or_else(|| {
            at(
                key_line("viewport"),
                format!("viewport {v:?}: write WIDTHxHEIGHT, e.g. \"1280x720\""),
            )
        })?,
        Some(_) => {
            return Err(at(
                key_line("viewport"),
                "`viewport` must be a string".into(),
            ))
        }
    };
    let scenario_timeout = match table.get("timeout") {
        None => DEFAULT_STEP_TIMEOUT,
        Some(v) => parse_timeout(v).ok_or_else(|| at(key_line("timeout"), TIMEOUT_HELP.into()))?,
    };
    let steps = match table.get("steps") {
        None => Vec::new(),
        Some(toml::Value::Array(steps)) => steps.clone(),
        Some(_) => {
            return Err(at(
                key_line("steps"),
                "`steps` must be [[steps]] tables".into(),
            ))
        }
    };
    let lines = step_lines(text, steps.len());
    let steps = steps
        .iter()
        .zip(lines)
        .map(|(step, line)| parse_step(step, line, scenario_timeout))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Scenario {
        page,
        viewport,
        steps,
    })
}

const TIMEOUT_HELP: &str = "a timeout is milliseconds (2000) or a duration (\"2s\", \"500ms\")";

fn parse_timeout(value: &toml::Value) -> Option<Duration> {
    match value {
        toml::Value::Integer(ms) => u64::try_from(*ms).ok().map(Duration::from_millis),
        toml::Value::String(text) => parse_duration(text),
        _ => None,
    }
}

/// The line of each `[[steps]]` header, in order; a step written another way (an inline
/// array) gets the line of `steps`.
fn step_lines(text: &str, count: usize) -> Vec<u32> {
    let headers: Vec<u32> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[steps]]"))
        .map(|(i, _)| i as u32 + 1)
        .collect();
    if headers.len() == count {
        return headers;
    }
    let fallback = text
        .lines()
        .position(|l| l.trim_start().starts_with("steps"))
        .map_or(1, |i| i as u32 + 1);
    vec![fallback; count]
}

fn line_of(text: &str, offset: usize) -> u32 {
    text[..offset.min(text.len())].matches('\n').count() as u32 + 1
}

fn parse_step(
    value: &toml::Value,
    line: u32,
    default_timeout: Duration,
) -> Result<Step, ScenarioError> {
    let err = |message: String| ScenarioError { line, message };
    let toml::Value::Table(step) = value else {
        return Err(err("a step must be a table".into()));
    };
    let actions: Vec<&str> = ACTIONS
        .iter()
        .copied()
        .filter(|a| step.contains_key(*a))
        .collect();
    let action = match actions[..] {
        [one] => one,
        [] => {
            let keys: Vec<&String> = step.keys().collect();
            return Err(err(format!(
                "unknown step (keys {keys:?}); a step is one of {}",
                ACTIONS.join(", ")
            )));
        }
        _ => {
            return Err(err(format!(
                "one step, one action: this one has {}",
                actions.join(" and ")
            )))
        }
    };
    let string = |key: &str| -> Result<String, ScenarioError> {
        match step.get(key) {
            Some(toml::Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(err(format!("`{key}` must be a string"))),
            None => Err(err(format!("`{action}` needs `{key}`"))),
        }
    };
    let optional = |key: &str| {
        step.get(key)
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
    };
    let matcher = |table: &toml::Table, what: &str| -> Result<Match, ScenarioError> {
        let found: Vec<Match> = [
            ("equals", Match::Equals as fn(String) -> Match),
            ("contains", Match::Contains),
            ("matches", Match::Matches),
        ]
        .into_iter()
        .filter_map(|(k, make)| {
            table
                .get(k)
                .and_then(toml::Value::as_str)
                .map(|s| make(s.to_owned()))
        })
        .collect();
        match <[Match; 1]>::try_from(found) {
            Ok([m]) => Ok(m),
            Err(_) => Err(err(format!(
                "`{what}` needs one of equals, contains or matches"
            ))),
        }
    };
    let allowed: &[&str] = match action {
        "fill" => &["fill", "text"],
        "press" => &["press", "selector"],
        "select" => &["select", "value"],
        "expect_text" => &["expect_text", "equals", "contains", "matches"],
        "expect_count" => &["expect_count", "count"],
        "snapshot" => &["snapshot", "name"],
        other => std::slice::from_ref(ACTIONS.iter().find(|a| **a == other).expect("known")),
    };
    if let Some(extra) = step
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && k.as_str() != "timeout")
    {
        return Err(err(format!(
            "`{action}` does not take `{extra}` (it takes {})",
            allowed.join(", ")
        )));
    }
    let timeout = match step.get("timeout") {
        None => default_timeout,
        Some(v) => parse_timeout(v).ok_or_else(|| err(TIMEOUT_HELP.into()))?,
    };
    let action = match action {
        "goto" => Action::Goto(string("goto")?),
        "click" => Action::Click(string("click")?),
        "fill" => Action::Fill {
            selector: string("fill")?,
            text: string("text")?,
        },
        "press" => Action::Press {
            key: string("press")?,
            selector: optional("selector"),
        },
        "select" => Action::Select {
            selector: string("select")?,
            value: string("value")?,
        },
        "wait_for" => Action::WaitFor(string("wait_for")?),
        "expect_visible" => Action::ExpectVisible(string("expect_visible")?),
        "expect_hidden" => Action::ExpectHidden(string("expect_hidden")?),
        "expect_text" => Action::ExpectText {
            selector: string("expect_text")?,
            expected: matcher(step, "expect_text")?,
        },
        "expect_count" => Action::ExpectCount {
            selector: string("expect_count")?,
            count: step
                .get("count")
                .and_then(toml::Value::as_integer)
                .and_then(|c| u64::try_from(c).ok())
                .ok_or_else(|| err("`expect_count` needs `count`, a whole number".into()))?,
        },
        "expect_url" => Action::ExpectUrl(match step.get("expect_url") {
            Some(toml::Value::String(s)) => Match::Equals(s.clone()),
            Some(toml::Value::Table(t)) => matcher(t, "expect_url")?,
            _ => {
                return Err(err(
                    "`expect_url` is a string or { contains = … } / { matches = … }".into(),
                ))
            }
        }),
        "snapshot" => {
            let selector = string("snapshot")?;
            let name = optional("name").unwrap_or_else(|| file_name(&selector));
            Action::Snapshot { selector, name }
        }
        _ => unreachable!("every action is parsed"),
    };
    Ok(Step {
        line,
        action,
        timeout,
    })
}

/// A selector as a file name: letters, digits, `-` and `_` kept, anything else `_`.
fn file_name(selector: &str) -> String {
    let name: String = selector
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "snapshot".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VP: Viewport = Viewport {
        width: 1280,
        height: 720,
    };

    #[test]
    fn steps_know_their_lines() {
        let text = "page = \"site/login.html\"\nviewport = \"800x600\"\n\n[[steps]]\nfill = \"#user\"\ntext = \"ada\"\n\n[[steps]]\nclick = \"button\"\n\n[[steps]]\nexpect_text = \"#greeting\"\nequals = \"Hello, ada\"\ntimeout = \"2s\"\n";
        let s = parse(text, VP).expect("valid");
        assert_eq!(
            s.viewport,
            Viewport {
                width: 800,
                height: 600
            }
        );
        assert_eq!(
            s.steps.iter().map(|s| s.line).collect::<Vec<_>>(),
            [4, 8, 11]
        );
        assert_eq!(
            s.steps[2].action,
            Action::ExpectText {
                selector: "#greeting".into(),
                expected: Match::Equals("Hello, ada".into())
            }
        );
        assert_eq!(s.steps[2].timeout, Duration::from_secs(2));
        assert_eq!(s.steps[0].timeout, DEFAULT_STEP_TIMEOUT);
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        let unknown = "page = \"a.html\"\n[[steps]]\nclick = \"a\"\n[[steps]]\nhover = \"b\"\n";
        let e = parse(unknown, VP).expect_err("unknown step");
        assert_eq!(e.line, 4);
        assert!(e.message.contains("unknown step"), "{}", e.message);
        let bad = "page = \"a.html\"\n[[steps]]\nclick = \n";
        assert_eq!(parse(bad, VP).expect_err("bad toml").line, 3);
        let extra = "page = \"a.html\"\n[[steps]]\nclick = \"a\"\ntext = \"x\"\n";
        assert!(parse(extra, VP)
            .expect_err("extra key")
            .message
            .contains("does not take `text`"));
        assert_eq!(
            parse("viewport = \"1x1\"\n", VP).expect_err("no page").line,
            1
        );
    }
}
