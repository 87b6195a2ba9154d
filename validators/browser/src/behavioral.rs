//! `validator-behavioral`: scenario files (`**/*.scenario.toml`) run step by step in a page.
//!
//! A failing step is an error finding on that step's line, saying what was expected and what
//! was found; the steps after it do not run. Uncaught exceptions, `console.error` calls and
//! failed requests are findings too, at the severity `console_errors` sets. A `snapshot` step
//! compares a readable text form of an element's subtree (see `SNAPSHOT`) with its baseline and
//! reports a difference as a unified diff.

use crate::engine::{self, Engine, Pages, Places};
use crate::page::{js_string, poll, visible, Origin, Viewport, Visit};
use crate::scenario::{self, Action, Match, Scenario, Step};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, FileInput, FileResult, Finding, Manifest, Scope, Severity, Validate};
use std::collections::BTreeSet;
use std::time::Duration;
use validators::settings::Settings;

const KEYS: [&str; 3] = ["console_errors", "viewport", "snapshot_attributes"];

/// Attributes a snapshot keeps when `snapshot_attributes` does not say. Never `id`: ids are
/// often generated.
const DEFAULT_ATTRIBUTES: [&str; 16] = [
    "class",
    "href",
    "src",
    "alt",
    "title",
    "name",
    "type",
    "value",
    "role",
    "aria-label",
    "placeholder",
    "for",
    "disabled",
    "checked",
    "selected",
    "hidden",
];

/// The behavioral validator; one browser per process.
#[derive(Debug, Default)]
pub struct Behavioral {
    engine: Engine,
}

/// The behavioral settings of one request.
#[derive(Debug, Clone)]
struct Rules {
    /// `None`: page errors are not reported.
    page_errors: Option<Severity>,
    viewport: Viewport,
    attributes: Vec<String>,
}

impl Rules {
    fn read(settings: &Settings) -> Result<Rules, Error> {
        let page_errors = match settings
            .choice("console_errors", &["error", "warning", "off"])?
            .as_deref()
        {
            None | Some("error") => Some(Severity::Error),
            Some("warning") => Some(Severity::Warning),
            _ => None,
        };
        let viewport = match settings.string("viewport")? {
            None => Viewport {
                width: 1280,
                height: 720,
            },
            Some(text) => Viewport::parse(&text).ok_or_else(|| {
                Error::config(format!(
                    "validators.behavioral.viewport is {text:?}; write WIDTHxHEIGHT, e.g. \"1280x720\""
                ))
            })?,
        };
        let attributes = if settings.has("snapshot_attributes") {
            settings.strings("snapshot_attributes")?
        } else {
            DEFAULT_ATTRIBUTES.map(str::to_owned).to_vec()
        };
        Ok(Rules {
            page_errors,
            viewport,
            attributes,
        })
    }
}

impl Validator for Behavioral {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "behavioral",
            env!("CARGO_PKG_VERSION"),
            Dimension::Behavioral,
            Scope::PerFile,
        )
        .with_globs(["**/*.scenario.toml"])
        .with_tool("chromium", engine::announced_version())
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let (settings, common, places) = engine::configure(request, "behavioral", &KEYS)?;
        let rules = Rules::read(&settings)?;
        // Scenarios that do not parse are findings that need no browser.
        let mut runnable = Vec::new();
        for file in &request.files {
            let text = std::fs::read_to_string(request.path_of(file)).unwrap_or_default();
            match scenario::parse(&text, rules.viewport) {
                Ok(s) => runnable.push((file, s)),
                Err(e) => out.file(FileResult::new(
                    &file.path,
                    vec![Finding::new(
                        &file.path,
                        e.line,
                        1,
                        "behavioral-scenario",
                        Severity::Error,
                        e.message,
                    )],
                ))?,
            }
        }
        if runnable.is_empty() {
            return Ok(());
        }
        let rules = &rules;
        self.engine
            .each(&common, &places, &runnable, out, |(file, s), p| {
                run(file, s, rules, p)
            })
    }
}

/// Runs one scenario. `Err` only when the browser itself is gone.
async fn run(
    file: &FileInput,
    scenario: &Scenario,
    rules: &Rules,
    pages: Pages<'_>,
) -> Result<FileResult, Error> {
    let (browser, origin, places) = (pages.browser, &pages.origin, &pages.places);
    let mut result = FileResult::new(&file.path, Vec::new());
    let mut inputs = BTreeSet::new();
    let visit = match Visit::open(browser, scenario.viewport).await {
        Ok(visit) => visit,
        Err(message) if !browser.is_alive() => return Err(pages.browser_gone(&file.path, &message)),
        Err(message) => {
            result.findings.push(step_finding(&file.path, 1, message));
            return Ok(result);
        }
    };
    let runner = Runner {
        visit: &visit,
        origin,
        places,
        rules,
        scenario_path: &file.path,
    };
    let mut failure = match visit.goto(&origin.url_of(&scenario.page)).await {
        Ok(()) => None,
        Err(message) => Some((1, StepFailure::from(message))),
    };
    if failure.is_none() {
        for step in &scenario.steps {
            match runner.step(step, &mut result, &mut inputs).await {
                Ok(()) => {}
                Err(message) => {
                    failure = Some((step.line, message));
                    break;
                }
            }
        }
    }
    visit.catch_up().await;
    inputs.extend(visit.loaded_files(origin));
    let mut problems = visit.problems();
    problems.failed_requests.extend(visit.outside_root(origin).into_iter().map(|url| {
        format!("{url}: outside the root (pages may load only files under the root and loopback servers)")
    }));
    visit.close().await;
    if let Some((line, failure)) = failure {
        if !browser.is_alive() {
            return Err(pages.browser_gone(&file.path, &failure.message));
        }
        let mut finding = step_finding(&file.path, line, failure.message);
        finding.artifacts = failure.artifacts;
        result.findings.push(finding);
    }
    if let Some(severity) = rules.page_errors {
        let groups = [
            (
                "behavioral-exception",
                "uncaught exception",
                problems.exceptions,
            ),
            (
                "behavioral-console-error",
                "console.error",
                problems.console_errors,
            ),
            (
                "behavioral-request-failed",
                "failed request",
                problems.failed_requests,
            ),
        ];
        for (rule, what, lines) in groups {
            for line in lines {
                result.findings.push(Finding::new(
                    &file.path,
                    1,
                    1,
                    rule,
                    severity,
                    format!("{what}: {line}"),
                ));
            }
        }
    }
    inputs.remove(&file.path);
    result.inputs = inputs.into_iter().collect();
    Ok(result)
}

fn step_finding(path: &str, line: u32, message: String) -> Finding {
    Finding::new(path, line, 1, "behavioral-step", Severity::Error, message)
}

/// Why a step failed, with the files written to show it.
#[derive(Debug)]
struct StepFailure {
    message: String,
    artifacts: Vec<protocol::Artifact>,
}

impl From<String> for StepFailure {
    fn from(message: String) -> StepFailure {
        StepFailure {
            message,
            artifacts: Vec::new(),
        }
    }
}

/// What the steps of one scenario share.
struct Runner<'a> {
    visit: &'a Visit,
    origin: &'a Origin,
    places: &'a Places,
    rules: &'a Rules,
    scenario_path: &'a str,
}

impl Runner<'_> {
    /// Runs one step; `Err` says what was expected and what was found.
    async fn step(
        &self,
        step: &Step,
        result: &mut FileResult,
        inputs: &mut BTreeSet<String>,
    ) -> Result<(), StepFailure> {
        if let Action::Snapshot { selector, name } = &step.action {
            self.until_visible(selector, step.timeout, "snapshot")
                .await?;
            let actual: String = self
                .visit
                .eval(&SNAPSHOT.replace("SELECTOR", &js_string(selector)).replace(
                    "ATTRIBUTES",
                    &serde_json::to_string(&self.rules.attributes).expect("strings serialise"),
                ))
                .await?;
            return self.snapshot(name, &actual, result, inputs);
        }
        Ok(self.act(step).await?)
    }

    /// Runs a step other than a snapshot.
    async fn act(&self, step: &Step) -> Result<(), String> {
        let t = step.timeout;
        match &step.action {
            Action::Goto(page) => self.visit.goto(&self.origin.url_of(page)).await,
            Action::Click(selector) => {
                self.until_visible(selector, t, "click").await?;
                let point: (f64, f64) = self
                    .visit
                    .eval(&format!(
                        "(() => {{ const e = document.querySelector({}); e.scrollIntoView({{block: 'center', inline: 'center'}}); \
                         const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }})()",
                        js_string(selector)
                    ))
                    .await?;
                self.visit
                    .page
                    .click(chromiumoxide::layout::Point {
                        x: point.0,
                        y: point.1,
                    })
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("click on `{selector}` failed: {e}"))
            }
            Action::Fill { selector, text } => {
                self.until_visible(selector, t, "fill").await?;
                self.visit
                    .eval::<bool>(&format!(
                        "(() => {{ const e = document.querySelector({}); e.focus(); e.value = {}; \
                         e.dispatchEvent(new Event('input', {{bubbles: true}})); \
                         e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                        js_string(selector),
                        js_string(text)
                    ))
                    .await
                    .map(|_| ())
            }
            Action::Press { key, selector } => {
                let target = match selector {
                    Some(s) => {
                        self.until_visible(s, t, "press").await?;
                        s.clone()
                    }
                    None => "*:focus".into(),
                };
                let element = match self.visit.page.find_element(target.clone()).await {
                    Ok(e) => e,
                    Err(_) if selector.is_none() => self
                        .visit
                        .page
                        .find_element("body")
                        .await
                        .map_err(|e| format!("no element to press {key} on: {e}"))?,
                    Err(e) => return Err(format!("`{target}`: {e}")),
                };
                element
                    .press_key(key)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("pressing {key:?} failed: {e} (keys are named as in KeyboardEvent.key: Enter, Tab, a)"))
            }
            Action::Select { selector, value } => {
                self.until_visible(selector, t, "select").await?;
                let found: bool = self
                    .visit
                    .eval(&format!(
                        "(() => {{ const e = document.querySelector({}); const v = {}; \
                         if (![...e.options].some(o => o.value === v || o.label === v)) return false; \
                         const o = [...e.options].find(o => o.value === v || o.label === v); e.value = o.value; \
                         e.dispatchEvent(new Event('input', {{bubbles: true}})); \
                         e.dispatchEvent(new Event('change', {{bubbles: true}})); return true; }})()",
                        js_string(selector),
                        js_string(value)
                    ))
                    .await?;
                found
                    .then_some(())
                    .ok_or_else(|| format!("`{selector}` has no option {value:?}"))
            }
            Action::WaitFor(selector) => self.until_visible(selector, t, "wait_for").await,
            Action::ExpectVisible(selector) => {
                self.until_visible(selector, t, "expect_visible").await
            }
            Action::ExpectHidden(selector) => {
                let script = format!("!({})", visible(selector));
                self.until(&script, t, || {
                    format!("expected `{selector}` to be hidden; it is visible")
                })
                .await
            }
            Action::ExpectText { selector, expected } => {
                let text_script = format!(
                    "(() => {{ const e = document.querySelector({}); return e ? (e.innerText ?? e.textContent).replace(/\\s+/g, ' ').trim() : null; }})()",
                    js_string(selector)
                );
                self.expect_value(
                    &text_script,
                    expected,
                    t,
                    &format!("the text of `{selector}`"),
                )
                .await
            }
            Action::ExpectCount { selector, count } => {
                let script = format!("document.querySelectorAll({}).length", js_string(selector));
                let mut found = 0;
                let counted = async || {
                    found = self.visit.eval::<u64>(&script).await?;
                    Ok(found == *count)
                };
                if poll(t, counted).await? {
                    return Ok(());
                }
                Err(format!(
                    "expected {count} elements to match `{selector}`; found {found}"
                ))
            }
            Action::ExpectUrl(expected) => {
                let expected = match expected {
                    Match::Equals(url) if !url.contains("://") => {
                        Match::Equals(self.origin.url_of(url))
                    }
                    other => other.clone(),
                };
                self.expect_value("location.href", &expected, t, "the URL")
                    .await
            }
            Action::Snapshot { .. } => unreachable!("snapshots are taken by Runner::step"),
        }
    }

    /// Compares a snapshot with its baseline (or writes the baseline when asked to).
    fn snapshot(
        &self,
        name: &str,
        actual: &str,
        result: &mut FileResult,
        inputs: &mut BTreeSet<String>,
    ) -> Result<(), StepFailure> {
        let baseline = self
            .places
            .baselines
            .join(self.scenario_path)
            .join(format!("{name}.txt"));
        inputs.extend(self.places.input(&baseline));
        let expected = std::fs::read_to_string(&baseline).ok();
        if expected.as_deref() == Some(actual) {
            return Ok(());
        }
        if self.places.update {
            if let Some(dir) = baseline.parent() {
                std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            }
            std::fs::write(&baseline, actual)
                .map_err(|e| format!("{}: cannot be written ({e})", baseline.display()))?;
            result
                .baselines_written
                .push(self.places.relative(&baseline));
            return Ok(());
        }
        let artifact = self
            .places
            .artifacts
            .join(self.scenario_path)
            .join(format!("{name}.actual.txt"));
        let written = artifact
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&artifact, actual));
        let artifacts: Vec<protocol::Artifact> = written
            .ok()
            .map(|()| self.places.artifact("actual", &artifact))
            .into_iter()
            .collect();
        let message = match expected {
            None => format!(
                "snapshot `{name}` has no baseline at {}; review it, then create it with \
                 `orchestrator run --update-baselines`",
                self.places.relative(&baseline)
            ),
            Some(expected) => {
                let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
                    .unified_diff()
                    .context_radius(3)
                    .header("baseline", "actual")
                    .to_string();
                format!(
                    "snapshot `{name}` differs from its baseline:\n{}",
                    diff.trim_end()
                )
            }
        };
        Err(StepFailure { message, artifacts })
    }

    async fn until_visible(
        &self,
        selector: &str,
        timeout: Duration,
        step: &str,
    ) -> Result<(), String> {
        self.until(&visible(selector), timeout, || {
            format!(
                "{step}: `{selector}` did not become visible within {} ms",
                timeout.as_millis()
            )
        })
        .await
    }

    /// Polls a boolean script until it is true or the timeout passes.
    async fn until(
        &self,
        script: &str,
        timeout: Duration,
        failure: impl Fn() -> String,
    ) -> Result<(), String> {
        let held = poll(timeout, async || self.visit.eval::<bool>(script).await).await?;
        held.then_some(()).ok_or_else(failure)
    }

    /// Polls a string (or null) script until it meets the expectation or the timeout passes.
    async fn expect_value(
        &self,
        script: &str,
        expected: &Match,
        timeout: Duration,
        what: &str,
    ) -> Result<(), String> {
        let mut last: Option<String> = None;
        let met = async || {
            last = self.visit.eval(script).await?;
            let Some(v) = &last else { return Ok(false) };
            match expected {
                Match::Equals(e) => Ok(v == e),
                Match::Contains(e) => Ok(v.contains(e.as_str())),
                Match::Matches(pattern) => self
                    .visit
                    .eval(&format!(
                        "new RegExp({}).test({})",
                        js_string(pattern),
                        js_string(v)
                    ))
                    .await
                    .map_err(|e| format!("matches {pattern:?}: {e}")),
            }
        };
        if poll(timeout, met).await? {
            return Ok(());
        }
        let wanted = match expected {
            Match::Equals(e) => format!("to equal {e:?}"),
            Match::Contains(e) => format!("to contain {e:?}"),
            Match::Matches(e) => format!("to match /{e}/"),
        };
        Err(match last {
            Some(v) => format!("expected {what} {wanted}; found {v:?}"),
            None => format!("expected {what} {wanted}; no element matches"),
        })
    }
}

/// The snapshot form of an element's subtree: one node per line, indented by depth; elements
/// as `<tag attr="value">` with only the configured attributes (classes sorted, and the
/// current value of form fields); text collapsed and quoted; scripts, styles and comments left
/// out.
const SNAPSHOT: &str = r#"(() => {
  const root = document.querySelector(SELECTOR);
  const keep = ATTRIBUTES;
  const lines = [];
  const quote = s => JSON.stringify(s);
  const walk = (node, depth) => {
    const pad = '  '.repeat(depth);
    if (node.nodeType === Node.TEXT_NODE) {
      const text = node.textContent.replace(/\s+/g, ' ').trim();
      if (text) lines.push(pad + quote(text));
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const tag = node.tagName.toLowerCase();
    if (tag === 'script' || tag === 'style' || tag === 'template') return;
    const attrs = [];
    for (const name of [...keep].sort()) {
      let value = null;
      if (name === 'class') value = node.classList.length ? [...node.classList].sort().join(' ') : null;
      else if (name === 'value' && 'value' in node && (tag === 'input' || tag === 'textarea' || tag === 'select')) value = node.value;
      else if (name === 'checked' && 'checked' in node) value = node.checked ? '' : null;
      else if (name === 'selected' && 'selected' in node) value = node.selected ? '' : null;
      else if (node.hasAttribute(name)) value = node.getAttribute(name);
      if (value !== null) attrs.push(value === '' ? name : name + '=' + quote(value));
    }
    lines.push(pad + '<' + tag + (attrs.length ? ' ' + attrs.join(' ') : '') + '>');
    for (const child of node.childNodes) walk(child, depth + 1);
  };
  walk(root, 0);
  return lines.join('\n') + '\n';
})()"#;
