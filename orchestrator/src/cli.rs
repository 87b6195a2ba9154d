//! The command line: clap types, and the step from them to a plan and a report.
//!
//! Nothing past [`crate::plan`] sees a clap type.

use crate::cache::{self, Cache};
use crate::history::{self, commands::Format as HistoryFormat};
use crate::hold::{self, Baseline, ChangedLines};
use crate::interrupt::Interrupt;
use crate::plan::{self, PlanError};
use crate::report::{github, Format, Report};
use crate::select::{SelectError, Selection};
use crate::shard::{self, Shard};
use crate::staged::Snapshot;
use crate::{dispatcher, list, process, rendered, tools};
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use protocol::exit;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Runs code validators and reports what they find.
#[derive(Debug, Parser)]
#[command(name = "orchestrator", version, about)]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub directory: Option<PathBuf>,
    /// Where results are cached (default: ORCHESTRATOR_CACHE_DIR, else the per-user cache).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Log more (-v: decisions, -vv: everything); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run validators on files and report findings.
    Run(Box<RunArgs>),
    /// Show every discovered validator and its manifest.
    List(ListArgs),
    /// Install or show the tools the built-in validators wrap.
    #[command(subcommand)]
    Tools(ToolsCommand),
    /// Show, clear, trim or check the result cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Save today's findings, so that `run --baseline` reports only new ones.
    #[command(subcommand)]
    Baseline(BaselineCommand),
    /// Write a commented orchestrator.toml for what the tree holds.
    Init {
        /// Replace an existing orchestrator.toml.
        #[arg(long)]
        force: bool,
    },
    /// Check the tools, the browser, the cache, the configuration, git and the validators,
    /// and say how to fix each problem (exit 1 when something is broken).
    Doctor,
    /// Install or remove the git pre-commit hook that runs `run --staged`.
    #[command(subcommand)]
    Hook(HookCommand),
    /// Print the shell completion script: `orchestrator completions bash > ...`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `orchestrator man > orchestrator.1`.
    Man,
    /// Show the validators' circuit breakers, or close them.
    Breakers {
        #[command(subcommand)]
        command: Option<BreakersCommand>,
    },
    /// List the runs recorded in the history, newest first, or verify its chain.
    History {
        #[command(subcommand)]
        command: Option<HistoryCommand>,
        /// How many runs to list.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
        limit: u32,
        #[arg(long, value_enum, default_value_t = HistoryFormat::Human)]
        format: HistoryFormat,
    },
    /// Per validator, over recent runs: p50, p95 and max duration, timeout and crash rates,
    /// cache hit rate.
    Stats {
        /// The last N runs (default 100).
        #[arg(long, conflicts_with = "days", value_parser = clap::value_parser!(u32).range(1..))]
        runs: Option<u32>,
        /// The runs of the last N days.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        days: Option<u32>,
        /// `openmetrics` prints the OpenMetrics text Prometheus reads.
        #[arg(long, value_enum, default_value_t = HistoryFormat::Human)]
        format: HistoryFormat,
    },
    /// Merge the JSON reports of a run's shards (`run --shard K/N`) into the report one
    /// unsharded run gives, in any format; a missing shard makes it incomplete (exit 3).
    MergeReports(MergeArgs),
}

#[derive(Debug, Subcommand)]
pub enum HistoryCommand {
    /// Check that no recorded run was edited, removed or reordered (exit 1 when one was).
    Verify {
        /// A newest hash printed by an earlier `history verify` (and kept elsewhere): check
        /// that the history still holds it, so that nothing up to it was rewritten.
        #[arg(long, value_name = "HASH")]
        pinned: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HookCommand {
    /// Write .git/hooks/pre-commit (where git looks for hooks).
    Install {
        /// Replace a hook orchestrator did not write (kept as pre-commit.orig).
        #[arg(long)]
        force: bool,
    },
    /// Remove the hook if orchestrator wrote it.
    Uninstall,
}

#[derive(Debug, Subcommand)]
pub enum BaselineCommand {
    /// Run every validator on every file and save the findings to FILE.
    Save(BaselineSave),
}

#[derive(Debug, Args)]
pub struct BaselineSave {
    /// Where to save (default: `baseline` in the configuration, else
    /// .orchestrator/baseline.json under the root).
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub choice: Choice,
}

/// Which validators run, how many at once, with which profile: `run` and `baseline save`.
#[derive(Debug, Args)]
pub struct Choice {
    /// Run only these validators.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    pub validators: Option<Vec<String>>,
    /// Validator processes at once (default: number of cores).
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// The configuration profile to overlay.
    #[arg(long, env = "ORCHESTRATOR_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum BreakersCommand {
    /// Close the breaker of one validator, or all of them.
    Reset {
        /// The validator (default: all).
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, size on disk, and the hits and misses of the last run.
    Stats,
    /// Remove every cached result.
    Clear,
    /// Remove results not hit recently, then the least recently hit beyond a size.
    Gc {
        /// Keep at most this much (500MB, 2GiB).
        #[arg(long, value_name = "SIZE", value_parser = size_arg)]
        max_size: Option<u64>,
        /// Remove results not hit for this long (30d, 12h).
        #[arg(long, value_name = "AGE", value_parser = age_arg)]
        max_age: Option<std::time::Duration>,
    },
    /// Check the database for damage (SQLite's integrity check); exit 1 if damaged.
    Check,
}

fn size_arg(text: &str) -> Result<u64, String> {
    cache::commands::parse_size(text)
        .ok_or_else(|| format!("invalid size {text:?}; write a number with a unit: 500MB, 2GiB"))
}

fn age_arg(text: &str) -> Result<std::time::Duration, String> {
    validators::settings::parse_duration(text)
        .ok_or_else(|| format!("invalid age {text:?}; write a number with a unit: 12h, 30d"))
}

#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// Install the pinned versions into the managed tools directory.
    Install {
        /// Only these tools (default: all).
        names: Vec<String>,
    },
    /// Show each tool's pin, managed install, and what runs.
    List,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Check every file that is not ignored.
    #[arg(long, conflicts_with_all = ["changed", "paths"])]
    pub all: bool,
    /// Check files changed against --base, plus staged, unstaged and untracked ones.
    #[arg(long, conflicts_with = "paths")]
    pub changed: bool,
    /// Check what is staged for commit, as staged (not the working tree, which is never
    /// modified).
    #[arg(long, conflicts_with_all = ["all", "changed", "paths", "fix", "update_baselines"])]
    pub staged: bool,
    /// Report only findings not in this baseline (see `orchestrator baseline save`); also
    /// `baseline` in the configuration.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Report only findings on lines changed since REV (and in new files).
    #[arg(long, value_name = "REV")]
    pub new_since: Option<String>,
    /// The revision --changed compares with.
    #[arg(long, value_name = "REV", requires = "changed", default_value = "HEAD")]
    pub base: String,
    /// Files and directories to check.
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub choice: Choice,
    /// Let validators that can fix apply their fixes, then check again (max_fix_rounds).
    #[arg(long)]
    pub fix: bool,
    /// Let validators that keep baselines (visual, behavioral) write them, new and changed,
    /// instead of reporting differences.
    #[arg(long)]
    pub update_baselines: bool,
    /// Where validators write the artifacts of findings: expected, actual and diff images
    /// (default: .orchestrator/artifacts under the root).
    #[arg(long, value_name = "DIR")]
    pub artifacts_dir: Option<PathBuf>,
    /// Neither use nor keep cached results (also ORCHESTRATOR_CACHE=off); circuit breakers,
    /// kept with the cache, are neither consulted nor updated either.
    #[arg(long)]
    pub no_cache: bool,
    /// Stop at the first validator that fails or does not complete: stop those running and
    /// start no more (they are reported skipped).
    #[arg(long)]
    pub fail_fast: bool,
    /// Close every circuit breaker before the run, so that every validator is tried.
    #[arg(long)]
    pub reset_breakers: bool,
    /// Exit 1 when an `[alerts]` threshold is crossed, even if the run is otherwise clean.
    #[arg(long)]
    pub alerts_fail: bool,
    /// Run only part K of N of the work (1 <= K <= N), for N CI machines; put the JSON reports
    /// back together with `orchestrator merge-reports`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// What the shards of one run share (default: the commit checked out), so that reports of
    /// different runs are not merged.
    #[arg(long, value_name = "ID", env = "ORCHESTRATOR_RUN_ID")]
    pub run_id: Option<String>,
    #[command(flatten)]
    pub out: Outputs,
}

/// Where a report goes, and in which formats.
#[derive(Debug, Args)]
pub struct Outputs {
    /// The report's format on stdout (or in --output).
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the report to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write the report in FORMAT to FILE (repeatable): --report sarif=out.sarif.
    #[arg(long, value_name = "FORMAT=FILE", value_parser = report_arg)]
    pub report: Vec<(Format, PathBuf)>,
}

impl Outputs {
    /// Each report asked for: its format, and its file (`None`: stdout).
    fn all(&self) -> impl Iterator<Item = (Format, Option<&std::path::Path>)> {
        let main = std::iter::once((self.format, self.output.as_deref()));
        main.chain(
            self.report
                .iter()
                .map(|(f, path)| (*f, Some(path.as_path()))),
        )
    }

    /// The file the first JSON report goes to, which the kept findings are written beside
    /// ([`emit`]); `None` when it goes to stdout or there is none.
    fn kept_json(&self) -> Option<&std::path::Path> {
        self.all().find(|(f, _)| *f == Format::Json)?.1
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The JSON reports of `run --shard K/N --format json`, one per shard.
    #[arg(required = true, value_name = "REPORT")]
    pub reports: Vec<PathBuf>,
    #[command(flatten)]
    pub out: Outputs,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value_t = ListFormat::Human)]
    pub format: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Human,
    Json,
}

fn report_arg(text: &str) -> Result<(Format, PathBuf), String> {
    let (format, file) = text
        .split_once('=')
        .filter(|(_, file)| !file.is_empty())
        .ok_or_else(|| format!("invalid report {text:?}; write FORMAT=FILE: sarif=out.sarif"))?;
    let format = Format::from_str(format, true).map_err(|_| {
        let known: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect();
        format!(
            "unknown report format {format:?}; use one of {}",
            known.join(", ")
        )
    })?;
    Ok((format, PathBuf::from(file)))
}

/// The whole program after argument parsing; returns the exit code.
pub fn main() -> ExitCode {
    let mut args = std::env::args();
    if args.nth(1).as_deref() == Some(crate::discovery::BUILTIN_ARG) {
        let name = args.next().unwrap_or_default();
        return validators::run_builtin(&name, args.collect()).unwrap_or_else(|| {
            eprintln!("orchestrator: there is no built-in validator `{name}`");
            ExitCode::from(exit::USAGE)
        });
    }
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let code = match cli.command {
        Command::Run(args) => run(cli.directory, cli.cache_dir, *args),
        Command::MergeReports(args) => merge_reports(cli.directory, &args),
        Command::History {
            command,
            limit,
            format,
        } => {
            let dir = cache::directory(cli.cache_dir);
            match command {
                Some(HistoryCommand::Verify { pinned }) => {
                    history::commands::verify(&dir, pinned.as_deref())
                }
                None => history::commands::list(&dir, limit, format),
            }
        }
        Command::Stats { runs, days, format } => {
            let window = match days {
                Some(days) => history::Window::Days(days),
                None => history::Window::Runs(runs.unwrap_or(100)),
            };
            history::commands::stats(&cache::directory(cli.cache_dir), window, format)
        }
        Command::Init { force } => match plan::Workspace::locate(cli.directory.as_deref(), None) {
            Err(e) => usage_error(&e),
            Ok(w) => crate::init::run(&w.root, force),
        },
        Command::Doctor => crate::doctor::run(
            cli.directory.as_deref(),
            &cache::Setting::from_args(false, cli.cache_dir),
        ),
        Command::Hook(command) => match plan::Workspace::locate(cli.directory.as_deref(), None) {
            Err(e) => usage_error(&e),
            Ok(w) => match command {
                HookCommand::Install { force } => crate::hook::install(&w.root, force),
                HookCommand::Uninstall => crate::hook::uninstall(&w.root),
            },
        },
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "orchestrator", &mut out);
            print(&String::from_utf8_lossy(&out), exit::CLEAN)
        }
        Command::Man => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut out) {
                Ok(()) => print(&String::from_utf8_lossy(&out), exit::CLEAN),
                Err(e) => {
                    eprintln!("error: cannot render the man page: {e}");
                    exit::USAGE
                }
            }
        }
        Command::Baseline(BaselineCommand::Save(args)) => {
            save_baseline(cli.directory, cli.cache_dir, args)
        }
        Command::Cache(command) => {
            let setting = cache::Setting::from_args(false, cli.cache_dir);
            match command {
                CacheCommand::Stats => cache::commands::stats(&setting),
                CacheCommand::Clear => cache::commands::clear(&setting),
                CacheCommand::Gc { max_size, max_age } => {
                    cache::commands::gc(&setting, max_size, max_age)
                }
                CacheCommand::Check => cache::commands::check(&setting),
            }
        }
        Command::Breakers { command } => {
            let setting = cache::Setting::from_args(false, cli.cache_dir);
            match command {
                Some(BreakersCommand::Reset { name }) => {
                    cache::commands::reset_breakers(&setting, name.as_deref())
                }
                None => match plan::Workspace::locate(cli.directory.as_deref(), None) {
                    Err(e) => usage_error(&e),
                    Ok(w) => cache::commands::breakers(&setting, w.config.breakers),
                },
            }
        }
        Command::List(args) => match plan::Workspace::locate(cli.directory.as_deref(), None) {
            Err(e) => usage_error(&e),
            Ok(workspace) => {
                let entries = list::collect(&workspace.root);
                let text = match args.format {
                    ListFormat::Json => list::render_json(&entries),
                    ListFormat::Human => list::render(&entries),
                };
                print(&text, list::exit_code(&entries))
            }
        },
        Command::Tools(command) => match plan::Workspace::locate(cli.directory.as_deref(), None) {
            Err(e) => usage_error(&e),
            Ok(workspace) => match command {
                ToolsCommand::Install { names } => tools::install(&workspace.config, &names),
                ToolsCommand::List => print(&tools::list(&workspace.config), exit::CLEAN),
            },
        },
    };
    ExitCode::from(code)
}

fn run(directory: Option<PathBuf>, cache_dir: Option<PathBuf>, args: RunArgs) -> u8 {
    let workspace =
        match plan::Workspace::locate(directory.as_deref(), args.choice.profile.as_deref()) {
            Ok(workspace) => workspace,
            Err(e) => return usage_error(&e),
        };
    // `--staged`: the run happens in a copy of the index, which lives until the reports that
    // read its files (fingerprints, the HTML report's artifacts) are written.
    let snapshot = match args.staged {
        false => None,
        true => match Snapshot::take(&workspace.root, workspace.config.path.as_deref()) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => return usage_error(&e.into()),
        },
    };
    let selection = if let Some(snapshot) = &snapshot {
        if snapshot.files.is_empty() {
            eprintln!("orchestrator: nothing is staged; nothing to check");
            return exit::CLEAN;
        }
        Selection::Paths(snapshot.files.iter().map(PathBuf::from).collect())
    } else if args.changed {
        Selection::Changed {
            base: args.base.clone(),
        }
    } else if !args.paths.is_empty() {
        Selection::Paths(args.paths.clone())
    } else {
        Selection::All
    };
    let shard = match &args.shard {
        None => None,
        Some(text) => match Shard::parse(text, shard::run_id(args.run_id.clone(), &workspace.root))
        {
            Ok(shard) => Some(shard),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        },
    };
    let request = plan::Request {
        shard,
        directory: match &snapshot {
            Some(snapshot) => Some(snapshot.root.clone()),
            None => directory,
        },
        selection: Some(selection),
        only: args.choice.validators.clone(),
        jobs: args.choice.jobs,
        profile: args.choice.profile.clone(),
        fix: args.fix,
        update_baselines: args.update_baselines,
        // Artifacts go to the real tree, where people look for them, not into the copy.
        artifacts_dir: match (&snapshot, &args.artifacts_dir) {
            (Some(_), None) => Some(workspace.root.join(plan::DEFAULT_ARTIFACTS_DIR)),
            _ => args.artifacts_dir.clone(),
        },
        fail_fast: args.fail_fast,
        // The listing is a cache like any other: `--no-cache` walks the tree.
        listing: (!args.no_cache).then(|| cache::directory(cache_dir.clone())),
    };
    let root = workspace.root.clone();
    let baseline = hold::baseline_file(
        &root,
        args.baseline.as_deref(),
        workspace.config.baseline.as_deref(),
    );
    let alert_settings = workspace.config.alerts;
    // A staged run's workspace is the copy; any other is the one located above.
    let plan = match &snapshot {
        Some(_) => plan::resolve(&request),
        None => plan::resolve_in(workspace, &request),
    };
    let history_dir = cache::directory(cache_dir.clone());
    // A report rendered only as JSON, with its findings as the validators gave them, may copy
    // the findings kept from the last one ([`rendered`]). Not a `--staged` run's, whose root is
    // a new copy each time.
    let reuse = std::iter::once(args.out.format)
        .chain(args.out.report.iter().map(|(f, _)| *f))
        .all(|f| f == Format::Json)
        && baseline.is_none()
        && args.new_since.is_none()
        && !args.fix
        && !args.update_baselines
        && !args.staged
        && args.shard.is_none();
    let ran = plan.map(|plan| {
        let rendered = reuse
            .then(|| rendered::Rendered::open(&history_dir, &plan.root))
            .flatten();
        let plan = plan::Plan {
            rendered: rendered.map(Arc::new),
            ..plan
        };
        execute(plan, cache_dir, args.no_cache, args.reset_breakers)
    });
    // The run's records are written while its report is; `_writes` waits for them at the end.
    let (mut report, _writes) = match ran {
        Ok(Ok(ran)) => ran,
        Ok(Err(e)) => return usage_error(&e.into()),
        Err(e) => return usage_error(&e),
    };
    if let Some(file) = baseline {
        match Baseline::load(&file) {
            Ok(baseline) => baseline.apply(&mut report, &file.display().to_string()),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::USAGE;
            }
        }
    }
    if let Some(rev) = &args.new_since {
        match ChangedLines::since(&root, rev, args.staged) {
            Ok(changed) => changed.apply(&mut report, rev),
            Err(e) => return usage_error(&e.into()),
        }
    }
    let alerts = history::commands::alerts(&history_dir, &report, &alert_settings);
    let alerted = !alerts.is_empty();
    report.warnings.extend(alerts);
    let code = match report.interrupted {
        Some(signal) => signal.exit_code(),
        None if alerted && args.alerts_fail => report.status().exit_code().max(exit::FINDINGS),
        None => report.status().exit_code(),
    };
    // Findings made of run records are kept for the next run made the same way.
    let whole = report.reused.as_ref().is_some_and(|r| r.intact.is_none());
    let mut keeping = match &report.makings {
        Some(makings) if reuse && !whole && !makings.is_empty() => {
            let counts = protocol::Severity::ALL.map(|s| report.count(s));
            let hash = report.findings_hash();
            let json = args.out.kept_json();
            rendered::Keeping::start(&history_dir, &report.root, makings, &hash, counts, json).ok()
        }
        _ => None,
    };
    // The history is written while the report is; both are done before the process ends.
    let emitted = std::thread::scope(|scope| {
        scope.spawn(|| history::commands::record(&history_dir, &report));
        emit(&report, &args.out, &mut keeping)
    });
    if let (Ok(()), Some(keeping)) = (&emitted, keeping) {
        if let Err(e) = keeping.keep() {
            tracing::debug!("the report's findings were not kept for the next run: {e}");
        }
    }
    // Tens of thousands of findings are freed faster by the exit than one by one.
    std::mem::forget(report);
    match emitted {
        Ok(()) => code,
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// The findings a report copies whole from the last one's, if it does.
fn kept_whole(report: &Report) -> Option<&rendered::Rendered> {
    match &report.reused {
        Some(rendered::Reuse {
            kept, intact: None, ..
        }) => Some(kept),
        _ => None,
    }
}

/// The first JSON report, to the file `path`, when its findings are the kept ones: written
/// around them where `path` is the report they are linked in ([`rendered::Rendered::write_around`]);
/// else written whole and linked in their place for the next run, with room before them for a
/// later head to grow into ([`rendered::with_room`]: without it, a duration one digit longer has
/// every later report written whole). Reports elsewhere (stdout, a second JSON file) are written
/// as any other, byte for byte.
fn json_from_kept(
    report: &Report,
    kept: &rendered::Rendered,
    path: &std::path::Path,
) -> std::io::Result<()> {
    let (head, tail) = crate::report::json::around(report)?;
    match kept.write_around(path, &head, &tail) {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        Err(e) => tracing::debug!("the report was not written around its findings: {e}"),
    }
    let head = rendered::with_room(&head);
    let (staged, ()) = Staged::write(path, |out| {
        out.write_all(&head)?;
        kept.copy_to(out)?;
        out.write_all(&tail)
    })?;
    // Linked before it takes its place: the link is to these bytes.
    if let Some(Err(e)) = staged
        .written()
        .map(|at| kept.relink(at, head.len() as u64))
    {
        tracing::debug!("the report was not linked for the next run: {e}");
    }
    staged.place()
}

/// Runs a plan under the watchdog, and returns its report with the writes of its run records
/// still going on (to be waited for once the report is written), or why its files could not
/// be listed.
fn execute(
    mut plan: plan::Plan,
    cache_dir: Option<PathBuf>,
    no_cache: bool,
    reset_breakers: bool,
) -> Result<(Report, cache::Writes), SelectError> {
    if !process::become_subreaper() {
        tracing::debug!("not a child subreaper; escaped descendants may survive");
    }
    crate::watchdog::start();
    plan.history = Some(cache::directory(cache_dir.clone()));
    let cache = Cache::open(
        &cache::Setting::from_args(no_cache, cache_dir),
        plan.config.cache_max_age,
        &plan.config.cache_remote,
    );
    if reset_breakers {
        let closed = cache.reset_breakers(None);
        tracing::debug!(closed, "closed the circuit breakers (--reset-breakers)");
    }
    let runtime = crate::runtime();
    let report = runtime.block_on(async {
        let interrupt = Interrupt::listen();
        dispatcher::run(plan, cache.clone(), interrupt).await
    });
    // Every task has ended: the idle threads need not be waited for one by one.
    runtime.shutdown_background();
    crate::watchdog::finish();
    report.map(|report| (report, cache.write_behind()))
}

/// `baseline save`: runs every validator on every file and records what they find.
fn save_baseline(directory: Option<PathBuf>, cache_dir: Option<PathBuf>, args: BaselineSave) -> u8 {
    let workspace =
        match plan::Workspace::locate(directory.as_deref(), args.choice.profile.as_deref()) {
            Ok(workspace) => workspace,
            Err(e) => return usage_error(&e),
        };
    let file = args
        .file
        .or_else(|| {
            workspace
                .config
                .baseline
                .as_ref()
                .map(|b| workspace.root.join(b))
        })
        .unwrap_or_else(|| workspace.root.join(hold::DEFAULT_BASELINE));
    let start = workspace.start.clone();
    let request = plan::Request {
        directory,
        selection: Some(Selection::All),
        only: args.choice.validators,
        jobs: args.choice.jobs,
        profile: args.choice.profile,
        listing: Some(cache::directory(cache_dir.clone())),
        ..plan::Request::default()
    };
    let ran =
        plan::resolve_in(workspace, &request).map(|plan| execute(plan, cache_dir, false, false));
    let (report, _writes) = match ran {
        Ok(Ok(ran)) => ran,
        Ok(Err(e)) => return usage_error(&e.into()),
        Err(e) => return usage_error(&e),
    };
    let incomplete = report.incomplete();
    if !incomplete.is_empty() {
        eprintln!(
            "error: not saved: {} did not complete, so the baseline would miss their findings; \
             see `orchestrator run --all`",
            incomplete.join(", ")
        );
        return exit::INCOMPLETE;
    }
    let baseline = Baseline::of(&report);
    let shown = file.strip_prefix(&start).unwrap_or(&file).display();
    match baseline.save(&file) {
        Ok(()) => {
            println!(
                "saved {} findings to {shown}; `orchestrator run --baseline {shown}` reports only \
                 new ones",
                baseline.findings.len(),
            );
            exit::CLEAN
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// `merge-reports`: the merged report, written as `run` writes one, and its exit status.
fn merge_reports(directory: Option<PathBuf>, args: &MergeArgs) -> u8 {
    let root = match directory {
        Some(dir) => dir,
        None => std::env::current_dir().unwrap_or_default(),
    };
    let report = match crate::report::merge::merge_files(&args.reports, root) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    match emit(&report, &args.out, &mut None) {
        Ok(()) => report.status().exit_code(),
        Err(message) => {
            eprintln!("error: {message}");
            exit::USAGE
        }
    }
}

/// Writes the report where it was asked for: stdout or `--output`, and each `--report`. A
/// closed stdout is the reader's choice, not an error (`orchestrator run | head`), but the
/// findings it cut short are not kept. Every file is attempted even when one cannot be
/// written. The first JSON report also writes its findings into `keep`.
fn emit(
    report: &Report,
    args: &Outputs,
    keep: &mut Option<rendered::Keeping>,
) -> Result<(), String> {
    let colour = args.output.is_none() && colour_on(std::io::stdout().is_terminal());
    let mut failures = Vec::new();
    let mut json_written = false;
    for (format, output) in args.all() {
        let colour = colour && output.is_none();
        let mut none = None;
        let first_json = format == Format::Json && !json_written;
        let keep = match first_json {
            true => &mut *keep,
            false => &mut none,
        };
        json_written |= format == Format::Json;
        let written = match (output, kept_whole(report).filter(|_| first_json)) {
            (Some(path), Some(kept)) => json_from_kept(report, kept, path)
                .map(|()| Vec::new())
                .map_err(|e| format!("cannot write the report to {}: {e}", path.display())),
            (Some(path), None) => {
                Staged::write(path, |out| format.write(report, colour, out, keep))
                    .and_then(|(staged, warnings)| {
                        // Linked before it takes its place: the link is to these bytes.
                        let linked = staged
                            .written()
                            .and_then(|at| keep.as_mut().map(|k| k.link(at)));
                        if let Some(Err(e)) = linked {
                            tracing::debug!("the report was not linked for the next run: {e}");
                            *keep = None;
                        }
                        staged.place().map(|()| warnings)
                    })
                    .map_err(|e| format!("cannot write the report to {}: {e}", path.display()))
            }
            (None, _) => {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                match format
                    .write(report, colour, &mut out, keep)
                    .and_then(|warnings| out.flush().map(|()| warnings))
                {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        // Findings cut short are not kept.
                        *keep = None;
                        Ok(Vec::new())
                    }
                    other => other.map_err(|e| format!("cannot write to stdout: {e}")),
                }
            }
        };
        match written {
            Ok(warnings) => warnings
                .iter()
                .for_each(|warning| eprintln!("warning: {warning}")),
            Err(e) => failures.push(e),
        }
    }
    let github = std::iter::once(args.format)
        .chain(args.report.iter().map(|(f, _)| *f))
        .any(|f| f == Format::Github);
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|_| github) {
        append(std::path::Path::new(&path), &github::step_summary(report)).unwrap_or_else(|e| {
            failures.push(format!("cannot append to GITHUB_STEP_SUMMARY: {e}"))
        });
    }
    match failures.is_empty() {
        true => Ok(()),
        false => Err(failures.join("; ")),
    }
}

fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)?
        .write_all(text.as_bytes())
}

/// Writes a file through a temporary file beside it and a rename, so that a reader (or a run
/// killed while writing) never sees half a report: the old file or the new one.
///
/// Only a regular file (or a path that does not exist yet) is replaced that way. A symbolic
/// link is followed, so the link stays and its target gets the text. Anything else — `/dev/null`,
/// `/dev/stdout`, a named pipe, a shell's `>(…)` — is written in place: renaming over a device
/// would replace it, for every program on the machine, with a regular file.
pub fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    write_atomically_with(path, |out| out.write_all(text.as_bytes()))
}

/// [`write_atomically`] with the text written by `write`, buffered, as it is produced.
pub fn write_atomically_with<T>(
    path: &std::path::Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let (staged, value) = Staged::write(path, write)?;
    staged.place().map(|()| value)
}

/// A file written as [`write_atomically`] writes it, not yet in its place.
#[derive(Debug)]
pub struct Staged {
    /// The temporary file written and the target it is to replace; `None` when the target
    /// was written in place.
    replacing: Option<(PathBuf, PathBuf)>,
}

impl Staged {
    /// Writes `path`'s new text with `write`, buffered, as it is produced: into a temporary
    /// file beside it, or into `path` itself where it is not a regular file.
    pub fn write<T>(
        path: &std::path::Path,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<T>,
    ) -> std::io::Result<(Staged, T)> {
        let into = |file: std::fs::File| {
            let mut out = std::io::BufWriter::new(file);
            let value = write(&mut out)?;
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            Ok(value)
        };
        let target = match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                let value = into(std::fs::File::create(path)?)?;
                return Ok((Staged { replacing: None }, value));
            }
            Ok(_) => std::fs::canonicalize(path)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_owned(),
            Err(e) => return Err(e),
        };
        let name = target
            .file_name()
            .ok_or_else(|| std::io::Error::other("it is not a file name"))?;
        let mut temporary = name.to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = target.with_file_name(temporary);
        let staged = Staged {
            replacing: Some((temporary.clone(), target)),
        };
        // Dropped on an error, the staged file removes the temporary one.
        let value = std::fs::File::create(&temporary).and_then(into)?;
        Ok((staged, value))
    }

    /// The file holding the new text until it takes its place; `None` when it is in place.
    pub fn written(&self) -> Option<&std::path::Path> {
        self.replacing
            .as_ref()
            .map(|(temporary, _)| temporary.as_path())
    }

    /// Puts the new text in the target's place.
    pub fn place(mut self) -> std::io::Result<()> {
        match self.replacing.take() {
            Some((temporary, target)) => replace(&temporary, &target).inspect_err(|_| {
                let _ = std::fs::remove_file(&temporary);
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some((temporary, _)) = &self.replacing {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// Puts `temporary` in the place of `target` at once. Where the target exists the two are
/// exchanged, and the old file, now under the temporary name, removed: a rename over an
/// existing file makes ext4 start writing the new one out (`auto_da_alloc`), and the next run's
/// rename then waits for that write before it can free it, 15 ms of a warm run.
fn replace(temporary: &std::path::Path, target: &std::path::Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if exchange(temporary, target).is_ok() {
        let _ = std::fs::remove_file(temporary);
        return Ok(());
    }
    std::fs::rename(temporary, target)
}

/// Swaps two existing files' names (`renameat2` with `RENAME_EXCHANGE`); fails where either is
/// missing or the filesystem cannot.
#[cfg(target_os = "linux")]
fn exchange(a: &std::path::Path, b: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let a = std::ffi::CString::new(a.as_os_str().as_bytes())?;
    let b = std::ffi::CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are NUL-terminated strings that outlive the call.
    let swapped = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match swapped {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Prints a command's output and returns its exit code, or 2 if stdout cannot be written.
fn print(text: &str, code: u8) -> u8 {
    match write_stdout(text) {
        Ok(()) => code,
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// Writes to stdout, treating a closed pipe as success.
pub fn write_stdout(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write to stdout: {e}"))
        }
        _ => Ok(()),
    }
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).
fn colour_on(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Reports a mistake in the request; exit code 2.
pub fn usage_error(e: &PlanError) -> u8 {
    eprintln!("error: {}", protocol::sdk::error_chain(e));
    exit::USAGE
}

fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "warn,orchestrator=debug",
        _ => "trace",
    };
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour_on(std::io::stderr().is_terminal()))
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::write_atomically;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn a_regular_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let report = dir.path().join("report.json");
        std::fs::write(&report, "old, and longer than the new text").expect("written");
        write_atomically(&report, "new").expect("replaced");
        assert_eq!(std::fs::read_to_string(&report).expect("readable"), "new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("listable").count(), 1);
        // A file that is not there yet has nothing to be exchanged with.
        let fresh = dir.path().join("fresh.json");
        write_atomically(&fresh, "first").expect("created");
        assert_eq!(std::fs::read_to_string(&fresh).expect("readable"), "first");
        assert_eq!(std::fs::read_dir(dir.path()).expect("listable").count(), 2);
    }

    #[test]
    fn a_symbolic_link_stays_a_link_and_its_target_gets_the_text() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let target = dir.path().join("target.sarif");
        let link = dir.path().join("link.sarif");
        std::fs::write(&target, "old").expect("written");
        std::os::unix::fs::symlink(&target, &link).expect("linked");
        write_atomically(&link, "new").expect("written through the link");
        assert!(std::fs::symlink_metadata(&link)
            .expect("the link")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).expect("readable"), "new");
    }

    /// The regression: `--output /dev/null` renamed a regular file over the device, and every
    /// later reader of /dev/null on the machine (rustc's `-` among them) read old reports.
    #[test]
    fn a_named_pipe_is_written_in_place_and_stays_a_pipe() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).expect("the pipe reads"))
        };
        write_atomically(&fifo, "through the pipe").expect("written into the pipe");
        // Checked before joining: a renamed-over pipe would leave the reader waiting forever.
        assert!(std::fs::metadata(&fifo)
            .expect("the pipe")
            .file_type()
            .is_fifo());
        assert_eq!(reader.join().expect("the reader ends"), "through the pipe");
        assert_eq!(std::fs::read_dir(dir.path()).expect("listable").count(), 1);
    }
}
