//! From command line to plan: the one step that resolves the root, the configuration file and
//! profile, validator discovery and file selection into a validated [`Plan`].
//!
//! Everything a user can get wrong is caught here, before any validator starts, and reported
//! as one [`PlanError`] line; only the walk of a `--all` run happens later, beside the
//! validators' starts ([`crate::selected`]). The dispatcher and executors only ever see a
//! `Plan`.

use crate::config::{self, Config, ConfigError, ValidatorConfig};
use crate::discovery::{self, Discovered};
use crate::select::{self, SelectError, Selection};
use crate::selected::{Files, Found};
use crate::session::Launch;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the user asked for, free of clap types.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `-C DIR`: where to start instead of the working directory.
    pub directory: Option<PathBuf>,
    pub selection: Option<Selection>,
    /// `--validators a,b`.
    pub only: Option<Vec<String>>,
    /// `--jobs N`.
    pub jobs: Option<usize>,
    /// `--profile NAME` or `ORCHESTRATOR_PROFILE`.
    pub profile: Option<String>,
    pub fix: bool,
    /// `--update-baselines`.
    pub update_baselines: bool,
    /// `--artifacts-dir DIR`, relative to the working directory.
    pub artifacts_dir: Option<PathBuf>,
    /// `--fail-fast`.
    pub fail_fast: bool,
    /// `--shard K/N`.
    pub shard: Option<crate::shard::Shard>,
    /// The cache directory, where the whole tree's listing ([`crate::listing`]) and where the
    /// configuration files are not ([`crate::cache::Probes`]) are kept and reused; `None` with
    /// `--no-cache`.
    pub listing: Option<PathBuf>,
}

/// A validated run: where, with which configuration, which validators, which files.
#[derive(Debug, Clone)]
pub struct Plan {
    pub root: PathBuf,
    pub config: Arc<Config>,
    /// Selected files, or (`--all`) the walk that finds them when the run starts.
    pub files: Files,
    /// Sorted by name.
    pub validators: Vec<PlannedValidator>,
    /// Validator processes allowed at once.
    pub jobs: usize,
    pub fix: bool,
    /// Validators that keep baselines write them instead of reporting differences.
    pub update_baselines: bool,
    /// Where validators write the artifacts of their findings; absolute.
    pub artifacts_dir: PathBuf,
    /// `--fail-fast`: stop at the first validator that fails or does not complete.
    pub fail_fast: bool,
    /// `--shard K/N`: only this shard's part of the work.
    pub shard: Option<crate::shard::Shard>,
    /// The cache directory whose run history estimates how long each validator takes
    /// ([`crate::priority`]); `None`: no estimates.
    pub history: Option<PathBuf>,
    /// The findings kept from this root's last JSON report, when this run's report may copy
    /// them ([`crate::rendered`]); `None`: every result is read.
    pub rendered: Option<Arc<crate::rendered::Rendered>>,
    /// The cache directory, where each round finds the configuration-file looks kept by the
    /// last and keeps its own ([`crate::cache::Probes`]); `None`: not kept.
    pub kept: Option<PathBuf>,
}

/// Where artifacts go when `--artifacts-dir` does not say, relative to the root.
pub const DEFAULT_ARTIFACTS_DIR: &str = ".orchestrator/artifacts";

/// One validator of a plan.
#[derive(Debug, Clone)]
pub struct PlannedValidator {
    pub name: String,
    pub launch: Launch,
    pub settings: ValidatorConfig,
    /// `enabled = false` in the configuration: reported as skipped, never started.
    pub disabled: bool,
}

/// A mistake in the request, reported in one line before anything runs.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("unknown validator `{name}` in --validators; the available ones are: {known} (see `orchestrator list`)")]
    UnknownValidator { name: String, known: String },
    #[error("{path}: {source}")]
    Order {
        path: String,
        #[source]
        source: crate::schedule::OrderError,
    },
    #[error("--jobs must be at least 1")]
    NoJobs,
    #[error("cannot use {path} as the directory: {source}")]
    Directory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Where a run takes place and the configuration that applies there.
#[derive(Debug, Clone)]
pub struct Workspace {
    /// `-C DIR` or the working directory, absolute.
    pub start: PathBuf,
    pub root: PathBuf,
    pub config: Config,
}

impl Workspace {
    /// Finds the root (the configuration file's directory, else the git top level, else the
    /// start directory) and loads the configuration.
    pub fn locate(directory: Option<&Path>, profile: Option<&str>) -> Result<Workspace, PlanError> {
        let cwd = std::env::current_dir().map_err(|source| PlanError::Directory {
            path: PathBuf::from("."),
            source,
        })?;
        let start = match directory {
            Some(dir) => cwd
                .join(dir)
                .canonicalize()
                .map_err(|source| PlanError::Directory {
                    path: dir.to_owned(),
                    source,
                })?,
            None => cwd,
        };
        let (root, config) = match config::find(&start) {
            Some(path) => {
                let root = path
                    .parent()
                    .expect("a found file has a directory")
                    .to_owned();
                (root, Config::load(&path, profile)?)
            }
            None => {
                let root = crate::worktree::toplevel(&start).unwrap_or_else(|| start.clone());
                let config = match profile {
                    // A profile without a file to define it is a mistake worth reporting.
                    Some(_) => Config::parse("", None, profile).map_err(|kind| ConfigError {
                        path: root.join(config::FILE_NAME).display().to_string(),
                        kind,
                    })?,
                    None => Config::defaults(),
                };
                (root, config)
            }
        };
        Ok(Workspace {
            start,
            root,
            config,
        })
    }
}

/// Resolves a request into a plan.
pub fn resolve(request: &Request) -> Result<Plan, PlanError> {
    let workspace = Workspace::locate(request.directory.as_deref(), request.profile.as_deref())?;
    resolve_in(workspace, request)
}

/// Resolves a request into a plan in a workspace already located (from the request's
/// directory and profile), so that a command needing the workspace itself reads the
/// configuration once.
pub fn resolve_in(workspace: Workspace, request: &Request) -> Result<Plan, PlanError> {
    let discovered = discovery::discover_all();
    let known: Vec<String> = discovered.iter().map(|d| d.name.clone()).collect();
    crate::schedule::check(&workspace.config, &known).map_err(|source| PlanError::Order {
        path: workspace
            .config
            .path
            .as_ref()
            .map_or_else(|| config::FILE_NAME.to_owned(), |p| p.display().to_string()),
        source,
    })?;
    let validators = choose(&discovered, request.only.as_deref(), &workspace.config)?;
    let jobs = match request.jobs {
        Some(0) => return Err(PlanError::NoJobs),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    };
    let selection = request.selection.clone().unwrap_or(Selection::All);
    let files = match selection {
        Selection::All => Files::Everything {
            root: workspace.root.clone(),
            cwd: workspace.start.clone(),
            kept: request.listing.clone(),
        },
        selection => {
            let (root, start) = (&workspace.root, &workspace.start);
            // With `--changed`, what changed and the whole tree are listed at once.
            let (selected, universe) = std::thread::scope(|scope| {
                let universe = matches!(selection, Selection::Changed { .. }).then(|| {
                    let kept = request.listing.as_deref();
                    scope.spawn(move || select::select(root, start, &Selection::All, kept))
                });
                let selected = select::select(root, start, &selection, None);
                let universe =
                    universe.map(|u| u.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                (selected, universe)
            });
            let selected = selected?;
            let universe = universe.transpose()?.map(|all| all.files);
            Files::Found(Arc::new(Found {
                files: selected.files,
                universe,
                warnings: selected.warnings,
            }))
        }
    };
    let artifacts_dir = match &request.artifacts_dir {
        Some(dir) => std::path::absolute(dir).map_err(|source| PlanError::Directory {
            path: dir.clone(),
            source,
        })?,
        None => workspace.root.join(DEFAULT_ARTIFACTS_DIR),
    };
    Ok(Plan {
        update_baselines: request.update_baselines,
        artifacts_dir,
        root: workspace.root,
        config: Arc::new(workspace.config),
        files,
        validators,
        jobs,
        fix: request.fix,
        fail_fast: request.fail_fast,
        shard: request.shard.clone(),
        history: None,
        rendered: None,
        kept: request.listing.clone(),
    })
}

/// The validators to run: those named by `--validators`, or every discovered one.
fn choose(
    discovered: &[Discovered],
    only: Option<&[String]>,
    config: &Config,
) -> Result<Vec<PlannedValidator>, PlanError> {
    if let Some(names) = only {
        if let Some(unknown) = names
            .iter()
            .find(|n| !discovered.iter().any(|d| &d.name == *n))
        {
            let known: Vec<&str> = discovered.iter().map(|d| d.name.as_str()).collect();
            return Err(PlanError::UnknownValidator {
                name: unknown.clone(),
                known: if known.is_empty() {
                    "none (no validator-* executable beside orchestrator or on PATH)".to_owned()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    Ok(discovered
        .iter()
        .filter(|d| only.is_none_or(|names| names.contains(&d.name)))
        .map(|d| {
            let settings = config.validators.get(&d.name).cloned().unwrap_or_default();
            PlannedValidator {
                name: d.name.clone(),
                launch: Launch {
                    program: d.path.clone(),
                    args: d.args.clone(),
                },
                // Naming a validator explicitly runs it even if the file disables it.
                disabled: only.is_none() && settings.enabled == Some(false),
                settings,
            }
        })
        .collect())
}
