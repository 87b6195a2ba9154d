//! A Python project's import graph, and the files a module's type-checking depends on.
//!
//! The graph comes from `ruff analyze graph` (the managed, pinned ruff; the command is marked
//! experimental, which is why its version is part of pyright's cache key). It is run with
//! `--isolated`, so that a project's `[tool.ruff] exclude` cannot hide a module from the graph,
//! and ruff's default source roots, the project root and `src/`, which are pyright's too. It
//! resolves relative imports, `from package import module`, and imports under
//! `if TYPE_CHECKING:` (which pyright follows as well); it sees no dynamic imports, and neither
//! does pyright.
//!
//! A module's diagnostics depend on what it imports, transitively. On top of the files ruff
//! resolved, [`Graph::inputs_of`] adds what pyright may read instead or as well: the
//! `__init__.py` and `__init__.pyi` of every package on the way to an imported module (pyright
//! loads them, and a name can come from them), and the stub beside each module (`.pyi` wins
//! over `.py`), and the `__builtins__.pyi` of every directory above each module
//! ([`builtins_of`]). Files that do not exist are listed too: the coordinator records them as
//! absent, so creating one re-checks the modules it could change.

mod numbered;
mod resolve;
mod shadowing;
mod statements;

use crate::wrapper::{Priority, Running};
use numbered::Numbered;
use protocol::sdk::{Error, Reporter};
use resolve::{join, Kind, Tree};
pub use resolve::{parent, Places};
pub use shadowing::{describe as shadowing, module_names};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

/// How many times ruff is asked again for modules the first walk did not cover (ruff's default
/// excludes, such as `build/`, skip directories that a module can still import from).
const FOLLOW_UPS: usize = 8;

/// How many rounds [`Graph::around`] asks ruff for the modules it has not seen yet before it
/// reads the whole tree instead (each round is one level deeper in the import chains).
const ROUNDS: usize = 32;

/// How ruff is asked about a project's imports: which ruff, in which root, at which priority
/// (below pyright's while pyright runs); and where pyright finds imports that ruff does not
/// look in ([`Places`]).
#[derive(Debug, Clone, Copy)]
pub struct Ruff<'a> {
    pub executable: &'a Path,
    pub root: &'a Path,
    pub priority: Priority,
    pub places: Places<'a>,
}

/// Which way of finding a module's inputs made a result: part of pyright's tool version, and
/// so of every cache key, so that results whose inputs an earlier way missed are not served.
/// Bump it whenever the same tree would list other inputs.
pub const INPUTS: u32 = 6;

/// Each module's direct, first-party imports; paths relative to the root, `/`-separated.
#[derive(Debug, Default)]
pub struct Graph {
    imports: HashMap<String, Vec<String>>,
    /// The graph numbered ([`Graph::numbered`]); emptied whenever the graph grows.
    numbered: OnceLock<Numbered>,
}

impl Graph {
    /// Runs `ruff analyze graph` in `root` and follows every imported module to its own imports.
    pub fn build(ruff: Ruff<'_>, out: &mut Reporter<'_>) -> Result<Graph, Error> {
        let mut graph = Graph::default();
        graph.add(ruff, &[".".to_owned()], out)?;
        let imported = |g: &Graph| g.imports.values().flatten().cloned().collect();
        let next = graph.unseen(ruff.root, imported(&graph));
        graph.follow(ruff, next, FOLLOW_UPS, imported, out)?;
        Ok(graph)
    }

    /// The part of the graph that [`Graph::inputs_of`] reads for `files`: ruff is asked about
    /// them, then about each input they turn out to have that it has not seen, until nothing
    /// new turns up. For a few changed files that is their import closures rather than the
    /// whole tree (on Django, a module nothing imports: about a tenth of the whole walk's
    /// time). Chains of imports too deep to follow this way read the whole tree instead.
    pub fn around(
        ruff: Ruff<'_>,
        files: &[String],
        out: &mut Reporter<'_>,
    ) -> Result<Graph, Error> {
        let mut graph = Graph::default();
        // One walk from all of them: a closure per file asked again each round, each of its
        // modules then looked for on disk, took three minutes for 7,995 files of ten copies of
        // Django, against eight seconds for the whole tree.
        let closures = |g: &Graph| {
            let numbered = g.numbered();
            numbered.paths_of(numbered.closure(files.iter().flat_map(|f| numbered.imports_of(f))))
        };
        match graph.follow(ruff, files.to_vec(), ROUNDS, closures, out)? {
            true => Ok(graph),
            false => Graph::build(ruff, out),
        }
    }

    /// Asks ruff about `next`, then, round by round, about the existing files `wanted` names
    /// that it has not been asked about, for at most `rounds` rounds; returns whether nothing
    /// was left to ask.
    fn follow(
        &mut self,
        ruff: Ruff<'_>,
        mut next: Vec<String>,
        rounds: usize,
        wanted: impl Fn(&Graph) -> Vec<String>,
        out: &mut Reporter<'_>,
    ) -> Result<bool, Error> {
        for _ in 0..rounds {
            if next.is_empty() {
                break;
            }
            self.add(ruff, &next, out)?;
            for module in next {
                self.imports.entry(module).or_default();
            }
            next = self.unseen(ruff.root, wanted(self));
        }
        Ok(next.is_empty())
    }

    /// Of `modules`, the files that exist and that ruff was not asked about, sorted, once each.
    fn unseen(&self, root: &Path, modules: Vec<String>) -> Vec<String> {
        let unseen: BTreeSet<String> = modules
            .into_iter()
            .filter(|m| !self.imports.contains_key(m) && root.join(m).is_file())
            .collect();
        unseen.into_iter().collect()
    }

    fn add(
        &mut self,
        ruff: Ruff<'_>,
        paths: &[String],
        out: &mut Reporter<'_>,
    ) -> Result<(), Error> {
        // A graph that grows is numbered again when next asked.
        self.numbered = OnceLock::new();
        let mut args: Vec<String> = ["analyze", "graph", "--isolated", "--type-checking-imports"]
            .map(str::to_owned)
            .to_vec();
        args.extend(paths.iter().cloned());
        let root_text = ruff.root.to_string_lossy();
        let output = Running::start_at(ruff.executable, &args, &[], &root_text, ruff.priority)?
            .finish(0, 0, out)?;
        if !output.status.success() {
            return Err(crate::wrapper::tool_failed(
                "ruff analyze graph",
                &output,
                "failed",
            ));
        }
        let map: HashMap<String, Vec<String>> =
            serde_json::from_slice(&output.stdout).map_err(|_| {
                crate::wrapper::tool_failed(
                    "ruff analyze graph",
                    &output,
                    "printed something that is not its JSON map",
                )
            })?;
        let mut packages = Packages::new(ruff.root, ruff.places);
        for (module, imports) in map {
            let Some(module) = crate::wrapper::relative(&root_text, &module) else {
                continue;
            };
            let mut resolved: Vec<String> = imports
                .iter()
                .filter_map(|i| crate::wrapper::relative(&root_text, i))
                .collect();
            let home = packages.root_of(&module).to_owned();
            let twins: Vec<String> = resolved
                .iter()
                .filter_map(|import| packages.twin(&home, import))
                .collect();
            resolved.extend(twins);
            // What ruff did not resolve, read from the module's own statements.
            if let Ok(text) = std::fs::read(ruff.root.join(&module)) {
                let statements = statements::scan(&String::from_utf8_lossy(&text));
                resolved.extend(packages.tree.resolve(&module, &statements));
            }
            resolved.sort();
            resolved.dedup();
            self.imports.insert(module, resolved);
        }
        Ok(())
    }

    /// Builds a graph from known imports (for tests).
    #[cfg(test)]
    fn of(edges: &[(&str, &[&str])]) -> Graph {
        Graph {
            imports: edges
                .iter()
                .map(|(m, i)| ((*m).to_owned(), i.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
            numbered: OnceLock::new(),
        }
    }

    /// Every file whose contents can change `module`'s diagnostics, other than itself, sorted:
    /// its imports, transitively, with the packages and stubs around them (see the module
    /// documentation).
    pub fn inputs_of(&self, module: &str) -> Vec<String> {
        self.numbered().paths_of(self.input_numbers(module))
    }

    /// [`Graph::inputs_of`] by number: each an index into [`Graph::paths`].
    pub fn input_numbers(&self, module: &str) -> Vec<u32> {
        let numbered = self.numbered();
        let builtins = builtins_of(module);
        let starts = numbered.imports_of(module);
        let mut inputs = numbered.closure(starts.chain(builtins.iter().map(String::as_str)));
        if let Some(own) = numbered.id(module) {
            inputs.retain(|&n| n != own);
        }
        inputs
    }

    /// Every path [`Graph::input_numbers`] may name, by number.
    pub fn paths(&self) -> &[String] {
        self.numbered().paths()
    }

    /// The graph numbered, made when first asked for since it last grew: the last round of
    /// [`Graph::follow`] and every [`Graph::inputs_of`] after it share one.
    fn numbered(&self) -> &Numbered {
        self.numbered.get_or_init(|| {
            Numbered::of(&self.imports, |path| {
                let mut around: Vec<String> = stub_twin(path).into_iter().collect();
                // A builtins stub is read for what it declares, not imported as a module.
                if !is_builtins(path) {
                    around.extend(packages_of(path));
                    around.extend(builtins_of(path));
                }
                around
            })
        })
    }

    /// How many modules the graph knows.
    pub fn modules(&self) -> usize {
        self.imports.len()
    }

    /// Whether `path` is a module the graph knows (one that exists: ruff read it).
    pub fn knows(&self, path: &str) -> bool {
        self.imports.contains_key(path)
    }

    /// The modules that import one another, directly or not, in either direction, grouped:
    /// for each module, the first path (in sorted order) of its group. Modules of two groups
    /// never load each other.
    pub fn groups(&self) -> HashMap<&str, &str> {
        // Union-find over the modules and what they import, each set led by its least path.
        let mut leader: HashMap<&str, &str> = HashMap::new();
        fn find<'g>(leader: &mut HashMap<&'g str, &'g str>, module: &'g str) -> &'g str {
            let mut root = module;
            while let Some(&up) = leader.get(root).filter(|up| **up != root) {
                root = up;
            }
            // Path halving would do; pointing every module on the way at the root is as short.
            let mut at = module;
            while at != root {
                let up = leader.insert(at, root).unwrap_or(root);
                at = up;
            }
            root
        }
        for (module, imports) in &self.imports {
            leader.entry(module).or_insert(module);
            for import in imports {
                leader.entry(import).or_insert(import);
                let (a, b) = (find(&mut leader, module), find(&mut leader, import));
                if a != b {
                    let (least, other) = if a < b { (a, b) } else { (b, a) };
                    leader.insert(other, least);
                }
            }
        }
        let modules: Vec<&str> = leader.keys().copied().collect();
        modules
            .into_iter()
            .map(|m| (m, find(&mut leader, m)))
            .collect()
    }
}

/// Which directories of a project are packages (hold an `__init__.py` or `__init__.pyi`),
/// looked up once each.
///
/// Ruff resolves a relative import by its absolute name, and where several directories of a
/// project hold a package of that name (`svc_a/app` and `svc_b/app`, each service with its own
/// `app`; copies of a tree side by side), it picks the first: `from ..utils import f` in
/// `svc_b/app/api/x.py` comes back as `svc_a/app/utils.py`. Pyright, like Python, reads
/// `svc_b/app/utils.py`, so a result listing only ruff's answer would outlive an edit to the
/// module it really depends on. So each import resolved into another package root is listed
/// with its twin: the same module under the importing module's own root, where that exists.
/// Listing both costs a result an input it may not have; missing one would serve stale
/// diagnostics.
struct Packages<'r> {
    tree: Tree<'r>,
}

/// What a directory of the project is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Missing,
    Plain,
    Package,
}

impl<'r> Packages<'r> {
    fn new(root: &'r Path, places: Places<'r>) -> Packages<'r> {
        Packages {
            tree: Tree::new(root, places),
        }
    }

    fn dir(&mut self, dir: &str) -> Dir {
        if self.tree.kind(dir) != Kind::Dir {
            Dir::Missing
        } else if ["__init__.py", "__init__.pyi"]
            .iter()
            .any(|init| self.tree.kind(&join(dir, init)) == Kind::File)
        {
            Dir::Package
        } else {
            Dir::Plain
        }
    }

    /// The directory that holds the outermost package around `module` (`""`: the project's
    /// root), where its absolute name starts.
    fn root_of<'m>(&mut self, module: &'m str) -> &'m str {
        let mut dir = parent(module);
        while !dir.is_empty() && self.dir(dir) == Dir::Package {
            dir = parent(dir);
        }
        dir
    }

    /// `import` re-rooted under `home`, the package root of the module importing it, if the
    /// import's root is another and that file exists: the module a relative import names.
    /// Most imports across roots (tests importing the package they test) have no twin, whose
    /// directory is then missing: one look per directory answers them.
    fn twin(&mut self, home: &str, import: &str) -> Option<String> {
        let away = self.root_of(import);
        if home == away {
            return None;
        }
        let name = match away {
            "" => import,
            away => import.strip_prefix(away)?.strip_prefix('/')?,
        };
        let twin = match home {
            "" => name.to_owned(),
            home => format!("{home}/{name}"),
        };
        let present = self.dir(parent(&twin)) != Dir::Missing;
        (present && self.tree.kind(&twin) == Kind::File).then_some(twin)
    }
}

/// The `__init__.py` and `__init__.pyi` of each directory above `module`, up to the root.
pub fn packages_of(module: &str) -> Vec<String> {
    Path::new(module)
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .flat_map(|d| {
            let d = d.to_string_lossy();
            [format!("{d}/__init__.py"), format!("{d}/__init__.pyi")]
        })
        .collect()
}

/// The `__builtins__.pyi` of each directory above `module`, short of the root (whose own
/// [`resolve`] lists with the other configured places'): pyright adds what one declares to the
/// builtins of every module below it, packages included (1.1.414: `pkg/__builtins__.pyi`
/// defines names for `pkg/sub/a.py`), which it does not document. A module rests on those of
/// its own directories, and, as the types it takes from its imports may come from theirs, on
/// those of every module of its closure: a few dozen absent files a result on Django, two for
/// each directory its closure spans, as each comes with its `.py` twin (pyright looks the
/// name up as it does an import's), but not with the packages above it, which would bring
/// their closures into every result (56 % more inputs on Django).
fn builtins_of(module: &str) -> Vec<String> {
    Path::new(module)
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| format!("{}/__builtins__.pyi", d.to_string_lossy()))
        .collect()
}

/// Whether `path` is a builtins stub ([`builtins_of`]) or its `.py` twin.
fn is_builtins(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name == "__builtins__.pyi" || name == "__builtins__.py"
}

/// The stub of a module, or the module of a stub.
fn stub_twin(module: &str) -> Option<String> {
    if let Some(stem) = module.strip_suffix(".pyi") {
        Some(format!("{stem}.py"))
    } else {
        module.strip_suffix(".py").map(|stem| format!("{stem}.pyi"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_that_import_one_another_are_grouped_under_their_least_path() {
        let graph = Graph::of(&[
            ("b/tests.py", &["b/core.py"]),
            ("b/core.py", &["b/util.py"]),
            ("a/tests.py", &["a/core.py", "shared.py"]),
            ("a/core.py", &[]),
            ("c/alone.py", &[]),
            ("d/x.py", &["shared.py"]),
        ]);
        let groups = graph.groups();
        for module in ["b/tests.py", "b/core.py", "b/util.py"] {
            assert_eq!(groups[module], "b/core.py", "{module}");
        }
        for module in ["a/tests.py", "a/core.py", "shared.py", "d/x.py"] {
            assert_eq!(groups[module], "a/core.py", "{module}");
        }
        assert_eq!(groups["c/alone.py"], "c/alone.py");
        assert_eq!(groups.len(), 8);
    }

    #[test]
    fn an_import_resolved_into_another_root_is_listed_with_its_twin_under_the_modules_own() {
        let dir = crate::tree(
            &[
                "svc_a/app/__init__.py",
                "svc_a/app/utils.py",
                "svc_b/app/__init__.py",
                "svc_b/app/utils.py",
                "svc_b/app/api/__init__.py",
                "svc_b/app/api/x.py",
                "lib/__init__.py",
                "lib/core.py",
                "top.py",
            ],
            "",
        );
        let environment = std::collections::HashSet::new();
        let places = Places {
            roots: &[],
            environment: &environment,
        };
        let mut packages = Packages::new(dir.path(), places);
        assert_eq!(packages.root_of("svc_b/app/api/x.py"), "svc_b");
        assert_eq!(packages.root_of("lib/core.py"), "");
        assert_eq!(packages.root_of("top.py"), "");
        // Ruff's `svc_a/app/utils.py` for `from ..utils import f` in `svc_b`: the twin is its own.
        assert_eq!(
            packages.twin("svc_b", "svc_a/app/utils.py").as_deref(),
            Some("svc_b/app/utils.py")
        );
        // Within one root, and where no twin exists, nothing is added.
        assert_eq!(packages.twin("svc_b", "svc_b/app/utils.py"), None);
        assert_eq!(packages.twin("svc_b", "lib/core.py"), None);
        assert_eq!(packages.twin("", "svc_a/app/utils.py"), None);
        assert_eq!(packages.dir("svc_b/lib"), Dir::Missing);
        assert_eq!(packages.dir("svc_b"), Dir::Plain);
    }

    #[test]
    fn inputs_are_the_transitive_imports_with_their_packages_stubs_and_builtins() {
        let graph = Graph::of(&[
            ("app/main.py", &["lib/a.py"]),
            ("lib/a.py", &["lib/b.py"]),
            ("lib/b.py", &[]),
            ("lib/__init__.py", &["lib/c.py"]),
            ("lib/c.py", &[]),
            ("other.py", &[]),
        ]);
        assert_eq!(
            graph.inputs_of("app/main.py"),
            [
                "app/__builtins__.py",
                "app/__builtins__.pyi",
                "lib/__builtins__.py",
                "lib/__builtins__.pyi",
                "lib/__init__.py",
                "lib/__init__.pyi",
                "lib/a.py",
                "lib/a.pyi",
                "lib/b.py",
                "lib/b.pyi",
                "lib/c.py",
                "lib/c.pyi",
            ]
        );
        assert!(graph.inputs_of("other.py").is_empty());
        assert_eq!(
            graph.inputs_of("lib/b.py"),
            ["lib/__builtins__.py", "lib/__builtins__.pyi"]
        );
        assert_eq!(
            builtins_of("x/y/z.py"),
            ["x/y/__builtins__.pyi", "x/__builtins__.pyi"]
        );
    }

    #[test]
    fn a_cycle_ends_and_the_module_is_not_its_own_input() {
        let graph = Graph::of(&[("a.py", &["b.py"]), ("b.py", &["a.py"])]);
        assert_eq!(graph.inputs_of("a.py"), ["a.pyi", "b.py", "b.pyi"]);
    }

    #[test]
    fn every_package_up_to_the_root_is_listed() {
        assert_eq!(
            packages_of("x/y/z.py"),
            [
                "x/y/__init__.py",
                "x/y/__init__.pyi",
                "x/__init__.py",
                "x/__init__.pyi"
            ]
        );
        assert!(packages_of("top.py").is_empty());
    }
}
