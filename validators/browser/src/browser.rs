//! The browser: found on this machine (never downloaded), launched deterministic and sealed,
//! driven over the DevTools protocol by chromiumoxide.
//!
//! Deterministic: one device pixel per CSS pixel, no scrollbars, no LCD text or font hinting,
//! the sRGB colour profile, no GPU, UTC and en-US, and (see [`crate::page`]) animations and the
//! caret stopped before anything is captured. Sealed: a fresh profile directory per process,
//! no background networking, and a host resolver that resolves nothing but 127.0.0.1 and
//! localhost, so a page reaches only loopback servers and files.

use chromiumoxide::browser::{Browser as Driver, BrowserConfig};
use futures::StreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use validators::tools::{BROWSERS as CANDIDATES, BROWSER_INSTALL as INSTALL_COMMAND};

/// How long the browser may take to start and print its DevTools address.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the browser is, and its exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub executable: PathBuf,
    /// `156.0.8078.79`: part of every cache key and recorded with every baseline.
    pub version: String,
}

/// Why no browser can be used.
#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("{0}")]
    NotInstalled(String),
    #[error("the browser failed: {0}")]
    Failed(String),
}

/// Finds the browser: `configured` (the `browser` key), then `ORCHESTRATOR_BROWSER`, then the
/// usual names on `PATH`.
pub fn locate(configured: Option<&str>) -> Result<Located, BrowserError> {
    let explicit = configured
        .map(|p| (p.to_owned(), "validators.*.browser"))
        .or_else(|| {
            std::env::var("ORCHESTRATOR_BROWSER")
                .ok()
                .filter(|p| !p.is_empty())
                .map(|p| (p, "ORCHESTRATOR_BROWSER"))
        });
    let executable = match explicit {
        Some((path, source)) => {
            let path = PathBuf::from(path);
            if !validators::tools::is_executable(&path) {
                return Err(BrowserError::NotInstalled(format!(
                    "the browser {} named by {source} is not an executable file; fix the path, \
                     or install one: {INSTALL_COMMAND}",
                    path.display()
                )));
            }
            path
        }
        None => validators::tools::browser_on_path().ok_or_else(|| {
            BrowserError::NotInstalled(format!(
                "no browser found ({} on PATH, or ORCHESTRATOR_BROWSER); install one: \
                 {INSTALL_COMMAND}",
                CANDIDATES.join(", ")
            ))
        })?,
    };
    let version = validators::tools::remembered_version(&executable, ask_version)
        .map_err(BrowserError::Failed)?;
    Ok(Located {
        executable,
        version,
    })
}

/// The version the browser reports (`Chromium 156.0.8078.79` → `156.0.8078.79`).
fn ask_version(executable: &Path) -> Result<String, String> {
    let out = Command::new(executable)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "the browser {} cannot be run ({e}); install one: {INSTALL_COMMAND}",
                executable.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .find(|word| word.chars().next().is_some_and(|c| c.is_ascii_digit()) && word.contains('.'))
        .map(str::to_owned)
        .ok_or_else(|| {
            format!(
                "{} --version printed no version ({:?})",
                executable.display(),
                text.trim()
            )
        })
}

/// A running browser, with its own profile directory, stopped when dropped.
#[derive(Debug)]
pub struct Browser {
    driver: Driver,
    alive: Arc<AtomicBool>,
    _profile: tempfile::TempDir,
}

/// The command-line switches that make rendering deterministic and the browser quiet and
/// sealed; see the module documentation.
/// (`--no-sandbox`, which running as root needs, and the profile directory are added by the
/// driver's own settings.)
fn switches() -> Vec<String> {
    [
        "--headless",
        "--disable-gpu",
        "--force-device-scale-factor=1",
        "--hide-scrollbars",
        "--font-render-hinting=none",
        "--disable-lcd-text",
        "--force-color-profile=srgb",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        "--disable-breakpad",
        "--disable-dev-shm-usage",
        "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication",
        "--lang=en-US",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        "--remote-debugging-port=0",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

impl Browser {
    /// Starts the browser with a fresh profile.
    pub async fn launch(located: &Located) -> Result<Browser, BrowserError> {
        let profile = tempfile::Builder::new()
            .prefix("orchestrator-browser-")
            .tempdir()
            .map_err(|e| BrowserError::Failed(format!("cannot make a profile directory: {e}")))?;
        let config = BrowserConfig::builder()
            .chrome_executable(&located.executable)
            .disable_default_args()
            .with_head()
            .no_sandbox()
            .user_data_dir(profile.path())
            .viewport(None)
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(Duration::from_secs(3600))
            .args(switches())
            .build()
            .map_err(BrowserError::Failed)?;
        let (driver, mut handler) = Driver::launch(config)
            .await
            .map_err(|e| BrowserError::Failed(format!("it did not start: {e}")))?;
        let alive = Arc::new(AtomicBool::new(true));
        let flag = alive.clone();
        tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                // A closed connection is the browser gone; other errors are one bad message.
                if let Err(chromiumoxide::error::CdpError::Ws(_)) = event {
                    break;
                }
            }
            flag.store(false, Ordering::SeqCst);
        });
        Ok(Browser {
            driver,
            alive,
            _profile: profile,
        })
    }

    /// The DevTools connection, for opening pages.
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// Whether the connection to the browser still stands.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Closes the browser and waits for its process.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), self.driver.close()).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.driver.wait()).await;
        let _ = self.driver.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_browser_that_is_missing_says_how_to_install_one() {
        let err = locate(Some("/nonexistent/chromium")).expect_err("missing");
        let text = err.to_string();
        assert!(matches!(err, BrowserError::NotInstalled(_)));
        assert!(text.contains("/nonexistent/chromium"), "{text}");
        assert!(text.contains(INSTALL_COMMAND), "{text}");
    }

    #[test]
    fn switches_seal_and_fix_the_rendering() {
        let s = switches();
        for wanted in [
            "--force-device-scale-factor=1",
            "--hide-scrollbars",
            "--font-render-hinting=none",
            "--disable-lcd-text",
            "--force-color-profile=srgb",
        ] {
            assert!(s.iter().any(|a| a == wanted), "{wanted}");
        }
        assert!(s
            .iter()
            .any(|a| a.starts_with("--host-resolver-rules=MAP * ~NOTFOUND")));
    }
}
