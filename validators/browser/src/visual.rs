//! `validator-visual`: each configured page rendered at each viewport and compared with its
//! baseline screenshot.
//!
//! Which files are pages is configuration only (`files = ["site/**/*.html"]`); the manifest
//! has no globs, so nothing is rendered by accident. A page that differs from its baseline is
//! one error finding on line 1 with the count, the ratio, the viewport and the allowance; the
//! expected, actual and diff images are written as artifacts. A page's result lists as inputs
//! every file it loaded and its baselines.

use crate::browser::Browser;
use crate::compare::{compare, Tolerance, Verdict};
use crate::engine::{self, Engine, Pages, Places};
use crate::image::Image;
use crate::page::{Origin, Viewport, Visit, WaitFor};
use protocol::sdk::{Error, Reporter, Validator};
use protocol::{Dimension, FileInput, FileResult, Finding, Manifest, Scope, Severity, Validate};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use validators::settings::Settings;

const KEYS: [&str; 8] = [
    "viewports",
    "full_page",
    "wait_for",
    "wait_timeout",
    "mask",
    "threshold",
    "max_diff_pixels",
    "max_diff_pixel_ratio",
];

/// The viewport when `viewports` does not say.
const DEFAULT_VIEWPORT: &str = "1280x720";
/// How long `wait_for = SELECTOR` waits when `wait_timeout` does not say.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// The visual validator; one browser per process.
#[derive(Debug, Default)]
pub struct Visual {
    engine: Engine,
}

/// The visual settings of one request.
#[derive(Debug, Clone)]
struct Shot {
    viewports: Vec<Viewport>,
    full_page: bool,
    wait_for: WaitFor,
    wait_timeout: Duration,
    mask: Vec<String>,
    tolerance: Tolerance,
}

impl Shot {
    fn read(settings: &Settings) -> Result<Shot, Error> {
        let mut viewports = Vec::new();
        let mut named = settings.strings("viewports")?;
        if named.is_empty() {
            named.push(DEFAULT_VIEWPORT.into());
        }
        for text in named {
            viewports.push(Viewport::parse(&text).ok_or_else(|| {
                Error::config(format!(
                    "validators.visual.viewports has {text:?}; write WIDTHxHEIGHT, e.g. \"1280x720\""
                ))
            })?);
        }
        let wait_timeout = match settings.string("wait_timeout")? {
            None => DEFAULT_WAIT,
            Some(text) => validators::settings::parse_duration(&text).ok_or_else(|| {
                Error::config(format!(
                    "validators.visual.wait_timeout is {text:?}; write a duration: \"500ms\", \"10s\""
                ))
            })?,
        };
        let threshold = settings
            .number("threshold")?
            .unwrap_or(crate::compare::DEFAULT_THRESHOLD);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::config(format!(
                "validators.visual.threshold is {threshold}; it must be between 0 and 1"
            )));
        }
        let ratio = settings.number("max_diff_pixel_ratio")?;
        if ratio.is_some_and(|r| !(0.0..=1.0).contains(&r)) {
            return Err(Error::config(
                "validators.visual.max_diff_pixel_ratio must be between 0 and 1",
            ));
        }
        Ok(Shot {
            viewports,
            full_page: settings.flag("full_page")?.unwrap_or(false),
            wait_for: WaitFor::parse(
                &settings
                    .string("wait_for")?
                    .unwrap_or_else(|| "load".into()),
            ),
            wait_timeout,
            mask: settings.strings("mask")?,
            tolerance: Tolerance {
                threshold,
                max_diff_pixels: settings.count("max_diff_pixels")?,
                max_diff_pixel_ratio: ratio,
            },
        })
    }
}

impl Validator for Visual {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "visual",
            env!("CARGO_PKG_VERSION"),
            Dimension::Visual,
            Scope::PerFile,
        )
        .with_tool("chromium", engine::announced_version())
    }

    fn validate(&mut self, request: &Validate, out: &mut Reporter<'_>) -> Result<(), Error> {
        let (settings, common, places) = engine::configure(request, "visual", &KEYS)?;
        let shot = Shot::read(&settings)?;
        let shot = &shot;
        self.engine
            .each(&common, &places, &request.files, out, |file, p| {
                page(file, shot, p)
            })
    }
}

/// One page at every viewport. `Err` only when the browser itself is gone.
async fn page(file: &FileInput, shot: &Shot, pages: Pages<'_>) -> Result<FileResult, Error> {
    let (browser, origin, places) = (pages.browser, &pages.origin, &pages.places);
    let mut result = FileResult::new(&file.path, Vec::new());
    let mut inputs = BTreeSet::new();
    for viewport in &shot.viewports {
        let baseline = places
            .baselines
            .join(&file.path)
            .join(format!("{viewport}.png"));
        inputs.extend(places.input(&baseline));
        let png = match render(&file.path, *viewport, shot, browser, origin, &mut inputs).await {
            Ok(png) => png,
            Err(message) if browser.is_alive() => {
                result.findings.push(finding(
                    &file.path,
                    "visual-error",
                    format!("{viewport}: {message}"),
                ));
                continue;
            }
            Err(message) => return Err(pages.browser_gone(&file.path, &message)),
        };
        let actual = Image::decode(&png)
            .map_err(|e| Error::failed(format!("the browser's screenshot is not a PNG: {e}")))?;
        judge(
            &file.path,
            *viewport,
            &actual,
            &baseline,
            shot,
            places,
            &mut result,
        )?;
    }
    inputs.remove(&file.path);
    result.inputs = inputs.into_iter().collect();
    Ok(result)
}

/// Opens the page in a new tab at a viewport and takes its screenshot.
async fn render(
    path: &str,
    viewport: Viewport,
    shot: &Shot,
    browser: &Browser,
    origin: &Origin,
    inputs: &mut BTreeSet<String>,
) -> Result<Vec<u8>, String> {
    let visit = Visit::open(browser, viewport).await?;
    let outcome = async {
        visit.goto(&origin.url_of(path)).await?;
        visit.wait(&shot.wait_for, shot.wait_timeout).await?;
        visit.settle().await?;
        visit.mask(&shot.mask).await?;
        visit.still_screenshot(shot.full_page).await
    }
    .await;
    visit.catch_up().await;
    inputs.extend(visit.loaded_files(origin));
    let outside = visit.outside_root(origin);
    visit.close().await;
    match outside.first() {
        Some(url) if outcome.is_ok() => Err(format!(
            "the page loaded {url}, outside the root; pages may load only files under the root \
             and loopback servers"
        )),
        _ => outcome,
    }
}

/// Compares a screenshot with its baseline: a finding with its images when they differ (or the
/// baseline is missing or unreadable), nothing when they match; under `--update-baselines` the
/// baseline is written instead of a finding.
fn judge(
    path: &str,
    viewport: Viewport,
    actual: &Image,
    baseline: &Path,
    shot: &Shot,
    places: &Places,
    result: &mut FileResult,
) -> Result<(), Error> {
    let failed = |e: crate::image::ImageError| Error::failed(e.to_string());
    let expected = baseline.is_file().then(|| Image::read(baseline));
    let verdict = match &expected {
        Some(Ok(expected)) => compare(expected, actual, &shot.tolerance),
        _ => Verdict::Matches,
    };
    if let (Some(Ok(_)), Verdict::Matches) = (&expected, &verdict) {
        return Ok(());
    }
    if places.update {
        actual.write(baseline).map_err(failed)?;
        result.baselines_written.push(places.relative(baseline));
        return Ok(());
    }
    let at = places.relative(baseline);
    let (rule, message, diff) = match (&expected, verdict) {
        (None, _) => (
            "visual-no-baseline",
            format!(
                "no baseline at {at}; review the page, then create it with \
                 `orchestrator run --update-baselines`"
            ),
            None,
        ),
        (Some(Err(e)), _) => (
            "visual-error",
            format!("the baseline {e}; replace it with `orchestrator run --update-baselines`"),
            None,
        ),
        (
            Some(Ok(_)),
            Verdict::SizeDiffers {
                expected: e,
                actual: a,
            },
        ) => (
            "visual-size",
            format!(
                "the screenshot is {}x{} pixels, its baseline {}x{}",
                a.0, a.1, e.0, e.1
            ),
            None,
        ),
        (
            Some(Ok(_)),
            Verdict::Differs {
                diff_pixels,
                ratio,
                allowance,
                diff,
            },
        ) => (
            "visual-diff",
            format!(
                "{diff_pixels} pixels ({:.2}%) differ from the baseline; {allowance} allowed \
                 (threshold {})",
                ratio * 100.0,
                shot.tolerance.threshold
            ),
            Some(diff),
        ),
        (Some(Ok(_)), Verdict::Matches) => unreachable!("a match returned above"),
    };
    let mut f = finding(path, rule, format!("{viewport}: {message}"));
    let images = [
        ("expected", expected.as_ref().and_then(|e| e.as_ref().ok())),
        ("actual", Some(actual)),
        ("diff", diff.as_ref()),
    ];
    let dir = places.artifacts.join(path).join(viewport.to_string());
    for (kind, image) in images {
        if let Some(image) = image {
            let file = dir.join(format!("{kind}.png"));
            image.write(&file).map_err(failed)?;
            f.artifacts.push(places.artifact(kind, &file));
        }
    }
    result.findings.push(f);
    Ok(())
}

fn finding(path: &str, rule: &str, message: String) -> Finding {
    Finding::new(path, 1, 1, rule, Severity::Error, message)
}
