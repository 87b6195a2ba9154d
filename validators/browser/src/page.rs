//! One page in a tab: opened at a viewport, navigated, waited for, and watched.
//!
//! While a page is open every request it makes, every request that fails, every uncaught
//! exception and every `console.error` is recorded. The requests of `file://` URLs under the
//! root (and of server URLs, mapped to the files the server serves) become the result's inputs,
//! so a cached result is served only while the page, its stylesheets, scripts, images and
//! fonts are unchanged.

use crate::browser::Browser;
use chromiumoxide::cdp::browser_protocol::emulation::{
    SetDeviceMetricsOverrideParams, SetTimezoneOverrideParams,
};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
};
use chromiumoxide::cdp::browser_protocol::page::{
    CaptureScreenshotFormat, CaptureScreenshotParams, Viewport as Clip,
};
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::Page;
use futures::{FutureExt, StreamExt};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the network must be quiet for `wait_for = "networkidle"` (Playwright's rule).
const NETWORK_IDLE: Duration = Duration::from_millis(500);
/// How long a script waits for a navigating page's new context.
const NAVIGATION_SETTLE: Duration = Duration::from_secs(10);
/// How often a condition is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
/// How many screenshots a page gets to show the same picture twice in a row.
const STILL_TRIES: usize = 4;

/// A viewport size in CSS pixels: `1280x720`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewport {
    pub width: u32,
    pub height: u32,
}

impl Viewport {
    pub fn parse(text: &str) -> Option<Viewport> {
        let (w, h) = text.split_once('x')?;
        let viewport = Viewport {
            width: w.trim().parse().ok()?,
            height: h.trim().parse().ok()?,
        };
        (viewport.width > 0
            && viewport.height > 0
            && viewport.width <= 16384
            && viewport.height <= 16384)
            .then_some(viewport)
    }
}

impl std::fmt::Display for Viewport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// What the page is waited for after it loads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    Load,
    NetworkIdle,
    Selector(String),
}

impl WaitFor {
    pub fn parse(text: &str) -> WaitFor {
        match text {
            "load" => WaitFor::Load,
            "networkidle" => WaitFor::NetworkIdle,
            selector => WaitFor::Selector(selector.to_owned()),
        }
    }
}

/// Where the page's files come from: the root as `file://` URLs, or a server on loopback that
/// serves the files under `served_dir`.
#[derive(Debug, Clone)]
pub struct Origin {
    pub root: PathBuf,
    /// `http://127.0.0.1:PORT` when a server is configured.
    pub server: Option<String>,
    /// The directory (under the root) the server serves.
    pub served_dir: PathBuf,
}

impl Origin {
    /// The URL of a file under the root, or of an absolute server URL as given.
    pub fn url_of(&self, page: &str) -> String {
        if page.starts_with("http://") || page.starts_with("https://") {
            return page.to_owned();
        }
        match &self.server {
            Some(server) => {
                let path = self.root.join(page);
                let served = path
                    .strip_prefix(self.root.join(&self.served_dir))
                    .unwrap_or(Path::new(page));
                format!("{server}/{}", served.to_string_lossy())
            }
            None => format!("file://{}", self.root.join(page).display()),
        }
    }

    /// The file under the root that a URL loaded, relative to the root, if there is one.
    pub fn file_of(&self, url: &str) -> Option<String> {
        let url = url.split(['#', '?']).next()?;
        let path = if let Some(path) = url.strip_prefix("file://") {
            PathBuf::from(percent_decode(path))
        } else {
            let server = self.server.as_deref()?;
            let rest = url.strip_prefix(server)?;
            let rest = percent_decode(rest.trim_start_matches('/'));
            let mut path = self.root.join(&self.served_dir).join(rest);
            if path.is_dir() {
                path.push("index.html");
            }
            path
        };
        relative_inside(&self.root, &path)
    }
}

/// A path relative to `root` as the protocol writes it, or `None` when it is not under the
/// root (or is the root, or is spelled with `.` or `..`).
pub fn relative_inside(root: &Path, path: &Path) -> Option<String> {
    let text = path.strip_prefix(root).ok()?.to_str()?;
    let clean = !text.is_empty()
        && text
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    clean.then(|| text.to_owned())
}

/// `%20` → space, as URLs spell file names.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What happened on a page while it was open.
#[derive(Debug, Default)]
pub struct Observed {
    /// Every URL requested.
    pub requested: BTreeSet<String>,
    /// `URL: reason` of requests that failed or answered 4xx/5xx.
    pub failed_requests: Vec<String>,
    pub console_errors: Vec<String>,
    pub exceptions: Vec<String>,
    /// Requests started and not yet ended. Each event kind arrives on its own stream, so a
    /// request's end may be seen before its start: such ends wait in `ended_early`.
    inflight: HashSet<String>,
    ended_early: HashSet<String>,
    /// URL of each request id, to name a failed request.
    urls: HashMap<String, String>,
    last_activity: Option<Instant>,
    /// The last marker of [`Visit::catch_up`] seen, with everything before it.
    settled: u64,
}

impl Observed {
    fn started(&mut self, id: &str) {
        if !self.ended_early.remove(id) {
            self.inflight.insert(id.to_owned());
        }
    }

    fn ended(&mut self, id: &str) {
        if !self.inflight.remove(id) {
            self.ended_early.insert(id.to_owned());
        }
    }
}

/// An open tab.
#[derive(Debug)]
pub struct Visit {
    pub page: Page,
    observed: Arc<Mutex<Observed>>,
    watcher: tokio::task::JoinHandle<()>,
    /// The last marker [`Visit::catch_up`] logged.
    markers: AtomicU64,
}

/// What a page sent, of the kinds watched.
enum Seen {
    Request(Arc<EventRequestWillBeSent>),
    Finished(Arc<EventLoadingFinished>),
    Failed(Arc<EventLoadingFailed>),
    Response(Arc<EventResponseReceived>),
    Console(Arc<EventConsoleApiCalled>),
    Exception(Arc<EventExceptionThrown>),
}

/// The text of the markers [`Visit::catch_up`] logs, before their number.
const MARKER: &str = "orchestrator caught up ";
/// How long [`Visit::catch_up`] waits for its marker.
const CATCH_UP: Duration = Duration::from_secs(2);

/// The page's events of one kind, as [`Seen`].
async fn listen<E>(
    page: &Page,
    seen: fn(Arc<E>) -> Seen,
) -> Result<futures::stream::BoxStream<'static, Seen>, PageError>
where
    E: chromiumoxide::cdp::IntoEventKind + Unpin + Send + Sync + 'static,
{
    let stream = page
        .event_listener::<E>()
        .await
        .map_err(cdp("cannot watch the page"))?;
    Ok(stream.map(seen).boxed())
}

impl Seen {
    /// Records this in `observed`; the number of a marker [`Visit::catch_up`] logged.
    fn note(self, observed: &Mutex<Observed>) -> Option<u64> {
        let mut o = lock(observed);
        o.last_activity = Some(Instant::now());
        match self {
            Seen::Request(e) => {
                o.requested.insert(e.request.url.clone());
                o.started(e.request_id.inner());
                o.urls
                    .insert(e.request_id.inner().clone(), e.request.url.clone());
            }
            Seen::Finished(e) => o.ended(e.request_id.inner()),
            Seen::Failed(e) => {
                o.ended(e.request_id.inner());
                if e.canceled != Some(true) {
                    let url = (o.urls.get(e.request_id.inner()).cloned()).unwrap_or_default();
                    o.failed_requests.push(format!("{url}: {}", e.error_text));
                }
            }
            Seen::Response(e) => {
                let status = e.response.status;
                if status >= 400 && !e.response.url.ends_with("/favicon.ico") {
                    o.failed_requests
                        .push(format!("{}: HTTP {status}", e.response.url));
                }
            }
            Seen::Console(e) => {
                let text: Vec<String> = e
                    .args
                    .iter()
                    .map(|a| match &a.value {
                        Some(serde_json::Value::String(s)) => s.clone(),
                        Some(v) => v.to_string(),
                        None => a.description.clone().unwrap_or_default(),
                    })
                    .collect();
                match e.r#type {
                    ConsoleApiCalledType::Error => o.console_errors.push(text.join(" ")),
                    ConsoleApiCalledType::Debug => {
                        let marker = text.first().and_then(|t| t.strip_prefix(MARKER));
                        return marker.and_then(|n| n.parse().ok());
                    }
                    _ => {}
                }
            }
            Seen::Exception(e) => {
                let d = &e.exception_details;
                let text = (d.exception.as_ref())
                    .and_then(|x| x.description.clone())
                    .unwrap_or_else(|| d.text.clone());
                o.exceptions
                    .push(text.lines().next().unwrap_or_default().to_owned());
            }
        }
        None
    }
}

fn lock(observed: &Mutex<Observed>) -> std::sync::MutexGuard<'_, Observed> {
    observed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A failure of the browser while working on a page.
pub type PageError = String;

fn cdp(what: &str) -> impl FnOnce(chromiumoxide::error::CdpError) -> PageError + '_ {
    move |e| format!("{what}: {e}")
}

impl Visit {
    /// Opens a blank tab at a viewport, watching everything it does from the start.
    pub async fn open(browser: &Browser, viewport: Viewport) -> Result<Visit, PageError> {
        let page = browser
            .driver()
            .new_page("about:blank")
            .await
            .map_err(cdp("cannot open a tab"))?;
        page.execute(
            SetDeviceMetricsOverrideParams::builder()
                .width(i64::from(viewport.width))
                .height(i64::from(viewport.height))
                .device_scale_factor(1.0)
                .mobile(false)
                .build()
                .map_err(|e| format!("viewport: {e}"))?,
        )
        .await
        .map_err(cdp("cannot set the viewport"))?;
        page.execute(SetTimezoneOverrideParams::new("UTC"))
            .await
            .map_err(cdp("cannot set the time zone"))?;
        // Every kind of event on one stream and one task: a marker logged by `catch_up` comes
        // back behind everything the page did before it (`Seen::note`).
        let mut events = futures::stream::select_all([
            listen(&page, Seen::Request).await?,
            listen(&page, Seen::Finished).await?,
            listen(&page, Seen::Failed).await?,
            listen(&page, Seen::Response).await?,
            listen(&page, Seen::Console).await?,
            listen(&page, Seen::Exception).await?,
        ]);
        let observed: Arc<Mutex<Observed>> = Arc::default();
        let watched = observed.clone();
        let watcher = tokio::spawn(async move {
            while let Some(seen) = events.next().await {
                let Some(marker) = seen.note(&watched) else {
                    continue;
                };
                // The browser sent every earlier event before the marker, so each is in its
                // stream by now, whichever stream select_all would have polled next.
                while let Some(Some(seen)) = events.next().now_or_never() {
                    seen.note(&watched);
                }
                lock(&watched).settled = marker;
            }
        });
        Ok(Visit {
            page,
            observed,
            watcher,
            markers: AtomicU64::new(0),
        })
    }

    /// Returns once everything the page did so far is recorded: a marker logged through the
    /// console comes back after every event the page sent before it. Without that, a
    /// `console.error` from the page's load could still be on its way when the findings are
    /// read (seen under load). A page that replaces `console.debug` gets `CATCH_UP` to finish.
    pub async fn catch_up(&self) {
        let marker = self.markers.fetch_add(1, Ordering::Relaxed) + 1;
        let script = format!("console.debug({})", js_string(&format!("{MARKER}{marker}")));
        if self.page.evaluate(script).await.is_err() {
            return;
        }
        let _ = poll(CATCH_UP, async || Ok(self.lock().settled >= marker)).await;
    }

    /// Navigates and waits for the load event.
    pub async fn goto(&self, url: &str) -> Result<(), PageError> {
        self.page
            .goto(url)
            .await
            .map_err(|e| format!("cannot load {url}: {e}"))?;
        Ok(())
    }

    /// Waits for a condition after load, giving up after `timeout`.
    pub async fn wait(&self, wait_for: &WaitFor, timeout: Duration) -> Result<(), PageError> {
        let (held, what) = match wait_for {
            WaitFor::Load => return Ok(()),
            WaitFor::NetworkIdle => {
                let quiet = async || {
                    let o = self.lock();
                    Ok(o.inflight.is_empty()
                        && o.last_activity.is_none_or(|t| t.elapsed() >= NETWORK_IDLE))
                };
                let what = format!(
                    "the network was not idle for {} ms",
                    NETWORK_IDLE.as_millis()
                );
                (poll(timeout, quiet).await?, what)
            }
            WaitFor::Selector(selector) => {
                let script = visible(selector);
                let shown = async || self.eval::<bool>(&script).await;
                (
                    poll(timeout, shown).await?,
                    format!("`{selector}` did not appear"),
                )
            }
        };
        if held {
            return Ok(());
        }
        Err(format!("{what} within {} ms", timeout.as_millis()))
    }

    /// Stops what moves: animations finished (or cancelled when infinite), transitions and
    /// the caret off; then waits for web fonts.
    pub async fn settle(&self) -> Result<(), PageError> {
        self.eval::<bool>(SETTLE).await.map(|_| ())
    }

    /// Paints every element matching a selector over in magenta, as Playwright's `mask` does.
    pub async fn mask(&self, selectors: &[String]) -> Result<(), PageError> {
        if selectors.is_empty() {
            return Ok(());
        }
        let list = serde_json::to_string(selectors).expect("strings serialise");
        self.eval::<bool>(&MASK.replace("SELECTORS", &list))
            .await
            .map(|_| ())
    }

    /// A PNG of the viewport, or of the whole page, once the page holds still: a capture can
    /// catch a frame still being painted (a flake seen in CI: 657 pixels of a static page), so
    /// screenshots are taken until two in a row are the same, as Playwright's screenshot
    /// assertions do, at most `STILL_TRIES` times; the last is returned either way.
    pub async fn still_screenshot(&self, full_page: bool) -> Result<Vec<u8>, PageError> {
        let mut last = self.screenshot(full_page).await?;
        for _ in 1..STILL_TRIES {
            let next = self.screenshot(full_page).await?;
            if next == last {
                return Ok(next);
            }
            last = next;
        }
        Ok(last)
    }

    /// A PNG of the viewport, or of the whole page.
    async fn screenshot(&self, full_page: bool) -> Result<Vec<u8>, PageError> {
        let mut params = CaptureScreenshotParams::builder()
            .format(CaptureScreenshotFormat::Png)
            .from_surface(true);
        if full_page {
            let size: (f64, f64) = self
                .eval(
                    "[Math.max(document.documentElement.scrollWidth, document.body ? \
                     document.body.scrollWidth : 0, window.innerWidth), \
                     Math.max(document.documentElement.scrollHeight, document.body ? \
                     document.body.scrollHeight : 0, window.innerHeight)]",
                )
                .await?;
            params = params
                .clip(Clip {
                    x: 0.0,
                    y: 0.0,
                    width: size.0.ceil(),
                    height: size.1.ceil(),
                    scale: 1.0,
                })
                .capture_beyond_viewport(true);
        }
        let shot = self
            .page
            .execute(params.build())
            .await
            .map_err(cdp("cannot take a screenshot"))?;
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&shot.result.data)
            .map_err(|e| format!("the screenshot is not base64: {e}"))
    }

    /// Evaluates a script (awaiting a promise it returns) and reads its value. While the page
    /// navigates its old context disappears before the new one exists: that is retried.
    pub async fn eval<T: serde::de::DeserializeOwned>(&self, script: &str) -> Result<T, PageError> {
        let started = Instant::now();
        let result = loop {
            match self.page.evaluate(script).await {
                Ok(result) => break result,
                Err(e) => {
                    let text = e.to_string();
                    let navigating = text.contains("Cannot find context")
                        || text.contains("Execution context was destroyed")
                        || text.contains("No frame");
                    if !navigating || started.elapsed() >= NAVIGATION_SETTLE {
                        return Err(format!("a script failed in the page: {text}"));
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
        };
        result
            .into_value()
            .map_err(|e| format!("a script gave an unexpected value: {e}"))
    }

    /// The files under the root the page loaded, sorted, relative to the root.
    pub fn loaded_files(&self, origin: &Origin) -> Vec<String> {
        let o = self.lock();
        let files: BTreeSet<String> = o
            .requested
            .iter()
            .filter_map(|url| origin.file_of(url))
            .collect();
        files.into_iter().collect()
    }

    /// The `file://` URLs the page loaded from outside the root: results cannot depend on
    /// such files (they are not tracked), so they are reported.
    pub fn outside_root(&self, origin: &Origin) -> Vec<String> {
        let o = self.lock();
        o.requested
            .iter()
            .filter(|url| url.starts_with("file://") && origin.file_of(url).is_none())
            .cloned()
            .collect()
    }

    /// What the page did wrong so far: failed requests, `console.error` calls and uncaught
    /// exceptions, each as one line.
    pub fn problems(&self) -> Problems {
        let o = self.lock();
        Problems {
            failed_requests: o.failed_requests.clone(),
            console_errors: o.console_errors.clone(),
            exceptions: o.exceptions.clone(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Observed> {
        lock(&self.observed)
    }

    /// Closes the tab.
    pub async fn close(self) {
        self.watcher.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.page.close()).await;
    }
}

/// A page's misbehaviour, as lines for findings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems {
    pub failed_requests: Vec<String>,
    pub console_errors: Vec<String>,
    pub exceptions: Vec<String>,
}

/// Asks `check` every poll interval until it holds (`true`) or `timeout` has passed (`false`).
pub async fn poll(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Result<bool, PageError>,
) -> Result<bool, PageError> {
    let started = Instant::now();
    loop {
        if check().await? {
            return Ok(true);
        }
        if started.elapsed() >= timeout {
            return Ok(false);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A script that is true when an element matches the selector and is visible: rendered, with
/// a box, not `visibility: hidden`.
pub fn visible(selector: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); if (!e) return false; \
         const s = getComputedStyle(e); if (s.visibility === 'hidden' || s.display === 'none') return false; \
         return !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length); }})()",
        js_string(selector)
    )
}

/// A JavaScript string literal.
pub fn js_string(text: &str) -> String {
    serde_json::to_string(text).expect("strings serialise")
}

const SETTLE: &str = r#"(async () => {
  const style = document.createElement('style');
  style.textContent = '*, *::before, *::after { animation-play-state: paused !important; transition: none !important; caret-color: transparent !important; scroll-behavior: auto !important; }';
  (document.head || document.documentElement).appendChild(style);
  for (const a of document.getAnimations()) {
    const timing = a.effect && a.effect.getComputedTiming ? a.effect.getComputedTiming() : {};
    if (timing.iterations === Infinity) a.cancel(); else a.finish();
  }
  if (document.fonts && document.fonts.ready) await document.fonts.ready;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
})()"#;

const MASK: &str = r#"(() => {
  for (const selector of SELECTORS) {
    for (const e of document.querySelectorAll(selector)) {
      const r = e.getBoundingClientRect();
      const m = document.createElement('div');
      m.style.cssText = 'position:absolute;z-index:2147483647;background:#FF00FF;pointer-events:none;margin:0;padding:0;border:0;';
      m.style.left = (r.left + window.scrollX) + 'px';
      m.style.top = (r.top + window.scrollY) + 'px';
      m.style.width = r.width + 'px';
      m.style.height = r.height + 'px';
      document.documentElement.appendChild(m);
    }
  }
  return true;
})()"#;

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Runtime.consoleAPICalled` event of `kind` whose one argument is `text`.
    fn console(kind: &str, text: &str) -> Seen {
        let event = serde_json::json!({
            "type": kind,
            "args": [{"type": "string", "value": text}],
            "executionContextId": 1,
            "timestamp": 0.0,
        });
        Seen::Console(Arc::new(serde_json::from_value(event).expect("an event")))
    }

    #[test]
    fn a_marker_is_told_apart_from_what_the_page_logs() {
        let observed = Mutex::new(Observed::default());
        assert_eq!(console("error", "feed down").note(&observed), None);
        assert_eq!(console("debug", "page debug").note(&observed), None);
        assert_eq!(
            console("debug", &format!("{MARKER}7")).note(&observed),
            Some(7)
        );
        assert_eq!(console("log", &format!("{MARKER}8")).note(&observed), None);
        assert_eq!(lock(&observed).console_errors, ["feed down"]);
    }

    #[test]
    fn a_request_seen_ending_before_starting_is_not_in_flight() {
        let mut o = Observed::default();
        o.ended("1");
        o.started("1");
        o.started("2");
        assert_eq!(o.inflight, HashSet::from(["2".to_owned()]));
        o.ended("2");
        assert!(o.inflight.is_empty() && o.ended_early.is_empty());
    }

    #[test]
    fn viewports_parse_and_refuse_nonsense() {
        assert_eq!(
            Viewport::parse("1280x720"),
            Some(Viewport {
                width: 1280,
                height: 720
            })
        );
        for bad in ["1280", "0x10", "ax3", "1280x720x2", "99999x1"] {
            assert_eq!(Viewport::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn loaded_urls_map_to_files_under_the_root_only() {
        let origin = Origin {
            root: PathBuf::from("/repo"),
            server: None,
            served_dir: PathBuf::from("."),
        };
        assert_eq!(
            origin.file_of("file:///repo/site/a%20b.css?v=1"),
            Some("site/a b.css".into())
        );
        assert_eq!(origin.file_of("file:///etc/passwd"), None);
        assert_eq!(origin.file_of("http://127.0.0.1:8000/a.css"), None);
        assert_eq!(
            origin.url_of("site/index.html"),
            "file:///repo/site/index.html"
        );
        let served = Origin {
            server: Some("http://127.0.0.1:8000".into()),
            served_dir: PathBuf::from("site"),
            ..origin
        };
        assert_eq!(
            served.url_of("site/index.html"),
            "http://127.0.0.1:8000/index.html"
        );
        assert_eq!(
            served.file_of("http://127.0.0.1:8000/css/a.css"),
            Some("site/css/a.css".into())
        );
        assert_eq!(served.file_of("http://127.0.0.1:8000/../x"), None);
    }
}
