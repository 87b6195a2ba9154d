//! What the two validators share: the async runtime inside a synchronous validator, one browser
//! per process (started by the first request that has a page to render, never by a warm run
//! answered from the cache), the test server, the tab limit, and where baselines and artifacts
//! go.

use crate::browser::{self, Browser, BrowserError, Located};
use crate::page::Origin;
use crate::serve::Server;
use futures::StreamExt;
use protocol::sdk::{Error, Reporter};
use protocol::FileResult;
use protocol::{Artifact, Validate};
use std::path::{Path, PathBuf};
use validators::settings::Settings;

/// The keys both validators understand.
pub const COMMON_KEYS: [&str; 6] = [
    "browser",
    "serve",
    "ready",
    "serve_root",
    "tabs",
    "baselines",
];

/// Tabs open at once when `tabs` does not say.
const DEFAULT_TABS: u64 = 4;

/// The settings both validators read.
#[derive(Debug, Clone)]
pub struct Common {
    pub browser: Option<String>,
    pub serve: Option<String>,
    pub ready: String,
    pub serve_root: PathBuf,
    pub tabs: usize,
    /// Where baselines live, relative to the root.
    pub baselines: PathBuf,
}

impl Common {
    /// Reads the shared keys; `kind` names the default baselines directory.
    pub fn read(settings: &Settings, kind: &str) -> Result<Common, Error> {
        let tabs = settings.count("tabs")?.unwrap_or(DEFAULT_TABS);
        if tabs == 0 {
            return Err(Error::config(format!(
                "validators.{kind}.tabs must be at least 1"
            )));
        }
        Ok(Common {
            browser: settings.string("browser")?,
            serve: settings.string("serve")?,
            ready: settings.string("ready")?.unwrap_or_else(|| "/".into()),
            serve_root: PathBuf::from(settings.string("serve_root")?.unwrap_or_else(|| ".".into())),
            tabs: usize::try_from(tabs).unwrap_or(usize::MAX),
            baselines: PathBuf::from(
                settings
                    .string("baselines")?
                    .unwrap_or_else(|| format!(".orchestrator/baselines/{kind}")),
            ),
        })
    }
}

/// Reads a request's table (the shared keys and the validator's own), refusing unknown keys;
/// gives the table, the shared settings, and where files go.
pub fn configure(
    request: &Validate,
    kind: &'static str,
    own_keys: &[&str],
) -> Result<(Settings, Common, Places), Error> {
    let known: Vec<&str> = COMMON_KEYS.iter().chain(own_keys).copied().collect();
    let settings = Settings::parse(&request.config_json, kind, &known)?;
    let common = Common::read(&settings, kind)?;
    let places = Places::new(request, &common, kind);
    Ok((settings, common, places))
}

/// The tool version a manifest announces: the browser found without configuration
/// (`ORCHESTRATOR_BROWSER`, then `PATH`), or `not found`.
pub fn announced_version() -> String {
    browser::locate(None).map_or_else(|_| "not found".into(), |l| l.version)
}

/// One validator process's browser and runtime.
#[derive(Debug)]
pub struct Engine {
    runtime: tokio::runtime::Runtime,
    browser: Option<(Located, Browser)>,
}

impl Default for Engine {
    fn default() -> Engine {
        Engine {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime can be built"),
            browser: None,
        }
    }
}

impl Engine {
    /// Starts the browser (or starts it again, if the last one died or another is configured)
    /// unless it runs; [`Engine::current`] then gives it.
    fn browser(&mut self, configured: Option<&str>) -> Result<(), Error> {
        let located = browser::locate(configured).map_err(|e| match e {
            BrowserError::NotInstalled(m) => Error::NotInstalled(m),
            other => Error::failed(other.to_string()),
        })?;
        let reusable = self
            .browser
            .as_ref()
            .is_some_and(|(l, b)| *l == located && b.is_alive());
        if !reusable {
            if let Some((_, old)) = self.browser.take() {
                self.runtime.block_on(old.close());
            }
            let started = self
                .runtime
                .block_on(Browser::launch(&located))
                .map_err(|e| Error::failed(e.to_string()))?;
            self.browser = Some((located, started));
        }
        Ok(())
    }

    /// The browser [`Engine::browser`] made sure of.
    fn current(&self) -> (&Located, &Browser) {
        let (l, b) = self
            .browser
            .as_ref()
            .expect("Engine::browser is called before Engine::current");
        (l, b)
    }

    /// Works through `items` in up to `tabs` tabs at once, with the browser and the configured
    /// server running: sends each result as soon as it is done (with progress), then records
    /// the browser and fonts beside the baselines if they were being updated. `work` fails only
    /// when the browser itself is gone, which ends the request.
    pub fn each<'b, T, F, Fut>(
        &'b mut self,
        common: &Common,
        places: &Places,
        items: &'b [T],
        out: &mut Reporter<'_>,
        work: F,
    ) -> Result<(), Error>
    where
        F: Fn(&'b T, Pages<'b>) -> Fut,
        Fut: std::future::Future<Output = Result<FileResult, Error>> + 'b,
    {
        self.browser(common.browser.as_deref())?;
        let this: &'b Engine = self;
        let (origin, server) = this.origin(common, &places.root)?;
        let (located, browser) = this.current();
        let pages = Pages {
            located: located.clone(),
            browser,
            origin,
            places: places.clone(),
        };
        let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
        let outcome = this.runtime.block_on(async {
            let mut results = futures::stream::iter(items)
                .map(|item| work(item, pages.clone()))
                .buffer_unordered(common.tabs);
            let mut done = 0;
            while let Some(result) = results.next().await {
                out.file(result?)?;
                done += 1;
                out.progress(done, total, "")?;
            }
            if places.update && done > 0 {
                places.record_environment(&located.version)?;
            }
            Ok::<(), Error>(())
        });
        if let Some(server) = server {
            this.runtime.block_on(server.stop());
        }
        outcome
    }

    /// Starts the configured server, if any, and says where pages come from.
    fn origin(&self, common: &Common, root: &Path) -> Result<(Origin, Option<Server>), Error> {
        let server = match &common.serve {
            Some(command) => Some(
                self.runtime
                    .block_on(Server::start(
                        command,
                        &common.ready,
                        &root.join(&common.serve_root),
                    ))
                    .map_err(Error::failed)?,
            ),
            None => None,
        };
        let origin = Origin {
            root: root.to_owned(),
            server: server.as_ref().map(|s| s.base.clone()),
            served_dir: common.serve_root.clone(),
        };
        Ok((origin, server))
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some((_, browser)) = self.browser.take() {
            self.runtime.block_on(browser.close());
        }
    }
}

/// What the work on one page needs: the browser, where pages come from and where files go.
#[derive(Debug, Clone)]
pub struct Pages<'b> {
    pub located: Located,
    pub browser: &'b Browser,
    pub origin: Origin,
    pub places: Places,
}

impl Pages<'_> {
    /// The error that ends a request whose browser died while working on `path`.
    /// A browser that died may well start again: the failure is transient, so the coordinator
    /// can retry the files without a result.
    pub fn browser_gone(&self, path: &str, detail: &str) -> Error {
        Error::Transient(format!(
            "the browser ({}) exited while working on {path}: {detail}",
            self.located.version
        ))
    }
}

/// Where a request's files go: baselines (under the root) and artifacts.
#[derive(Debug, Clone)]
pub struct Places {
    pub root: PathBuf,
    pub baselines: PathBuf,
    pub artifacts: PathBuf,
    pub update: bool,
}

impl Places {
    pub fn new(request: &Validate, common: &Common, kind: &str) -> Places {
        let root = PathBuf::from(&request.root);
        let artifacts = if request.artifacts_dir.is_empty() {
            root.join(".orchestrator/artifacts")
        } else {
            PathBuf::from(&request.artifacts_dir)
        };
        Places {
            baselines: root.join(&common.baselines),
            artifacts: artifacts.join(kind),
            root,
            update: request.update_baselines,
        }
    }

    /// A path as the protocol carries it: relative to the root when under it.
    pub fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// A file as a result's input: its path relative to the root, or `None` outside the root
    /// (the coordinator tracks only files under the root).
    pub fn input(&self, path: &Path) -> Option<String> {
        crate::page::relative_inside(&self.root, path)
    }

    /// An artifact entry for a written file.
    pub fn artifact(&self, kind: &str, path: &Path) -> Artifact {
        Artifact {
            kind: kind.into(),
            path: self.relative(path),
        }
    }

    /// Records, beside the baselines, the browser and fonts they were made with: baselines
    /// are only valid for those.
    pub fn record_environment(&self, browser_version: &str) -> Result<(), Error> {
        let fonts = installed_fonts();
        let text = format!(
            "# Baselines in this directory were made with this browser and these fonts; \
             screenshots from others may differ.\nbrowser = {}\nfonts = [\n{}]\n",
            crate::page::js_string(browser_version),
            fonts
                .iter()
                .map(|f| format!("  {},\n", crate::page::js_string(f)))
                .collect::<String>()
        );
        let path = self.baselines.join("ENVIRONMENT.toml");
        std::fs::create_dir_all(&self.baselines)
            .and_then(|()| std::fs::write(&path, text))
            .map_err(|e| Error::failed(format!("{}: cannot be written ({e})", path.display())))
    }
}

/// The font families and styles fontconfig knows, sorted; empty without `fc-list`.
fn installed_fonts() -> Vec<String> {
    let Ok(out) = std::process::Command::new("fc-list")
        .args(["--format", "%{family[0]} %{style[0]} %{fontversion}\\n"])
        .output()
    else {
        return Vec::new();
    };
    let mut fonts: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    fonts.sort();
    fonts.dedup();
    fonts
}
