//! Where the imports a module's text names are in the project, found as pyright finds them:
//! the files that exist, and, for an import nothing answers yet, the files that would answer
//! it once created.
//!
//! Ruff misses two kinds of import that pyright resolves, and a result that does not list what
//! it rests on is served stale:
//! - a relative import in a directory that has no `__init__.py` (a namespace package, or a
//!   project's top-level script): ruff resolves relative imports through the importing
//!   module's dotted name, which it has none of there; pyright, like Python's loader, from the
//!   importing file's directory. So `from .b import f` in `pkg/a.py` is `pkg/b.py` here,
//!   whatever `pkg` holds;
//! - an import of a module that does not exist yet: pyright reports it unresolved, and the
//!   module's creation must check the importer again. Such a result lists the files that
//!   would answer the import (`app/helpers.py`, `app/helpers/__init__.py`) as absent inputs.
//!
//! An absolute import is looked for where pyright looks for it: the project's root, its `src`,
//! the roots its configuration adds (`extraPaths`, `stubPath`…; see
//! [`crate::pyright_config::Config::roots`]), and the importing file's directory and each
//! above it, which pyright tries last. It rests on the files that answer it under each place
//! that holds its first name. A first name that no place holds, and that the Python
//! environment does not answer either ([`Places::environment`]), rests on the files that would
//! answer it once created: at the root, in `src`, in the configured roots, and in each of the
//! importing file's directories that is not a package (a script's). So `import os` lists
//! nothing, and `import helpers` before any `helpers.py` exists lists `helpers.py` and
//! `helpers/__init__.py` at the root, among others. A first name that only the importing
//! file's directories hold rests on the same files, since a module created at the root, in
//! `src` or in a configured root answers it before them. A name taken `from` a package may be
//! a submodule, so it is one too: `from . import views` depends on `views.py` or
//! `views/__init__.py`, there or not.
//!
//! A module created in a configured place that shadows the same name held in another one (a
//! stub for a project package in the stub path, say), or one created there under the name of
//! an installed or standard module, is not listed: every import would rest on such files
//! everywhere. Pyright's version says instead which names the configured places hold twice
//! or share with the environment ([`mod@super::shadowing`]), so creating one checks every file.
//!
//! Under a place that holds a stub package for the first name (`foo-stubs/` for `foo`), the
//! import also rests on the files that answer it there, which pyright reads first.
//!
//! Every module also imports `__builtins__` without saying so: a `__builtins__.pyi` at the
//! root, in `src` or in a configured root (the stub path) adds to the builtins of every module.
//! Pyright also finds one in the importing file's directory or any above it; those are listed
//! with the module's packages ([`super::builtins_of`]).

use super::statements::Import;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Where pyright looks for an absolute import besides the root, `src` and the importing file's
/// directories, and what the Python environment answers.
#[derive(Debug, Clone, Copy)]
pub struct Places<'a> {
    /// The configuration's roots ([`crate::pyright_config::Config::roots`]).
    pub roots: &'a [String],
    /// The first names of the modules the Python environment holds (the standard library, the
    /// installed packages; [`crate::environment::names`]). An import of one lists nothing: a
    /// module created in a configured place under its name changes pyright's version instead
    /// ([`mod@super::shadowing`]).
    pub environment: &'a HashSet<String>,
}

impl<'a> Places<'a> {
    /// The places pyright looks in before the environment: the root (`""`), `src` and the
    /// configuration's roots, in that order, each as often as it is named.
    pub fn configured(&self) -> impl Iterator<Item = &'a str> {
        ["", "src"]
            .into_iter()
            .chain(self.roots.iter().map(String::as_str))
    }
}

/// What a path of the project is, looked up once each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Missing,
    File,
    Dir,
}

/// The project's files and directories as they are looked up, with `/`-separated paths
/// relative to its root. Each directory is read once, and what it holds answers every look
/// into it: resolving a tree's imports looks up each name imported in every directory from
/// the importing file's up to the root.
pub struct Tree<'r> {
    root: &'r Path,
    places: Places<'r>,
    /// Each directory read: its entries, each with whether it is a directory (links
    /// followed); `None` where there is no directory to read.
    dirs: HashMap<String, Option<HashMap<String, bool>>>,
}

impl<'r> Tree<'r> {
    pub fn new(root: &'r Path, places: Places<'r>) -> Tree<'r> {
        Tree {
            root,
            places,
            dirs: HashMap::new(),
        }
    }

    pub fn kind(&mut self, path: &str) -> Kind {
        if path.is_empty() {
            return Kind::Dir;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        match self.entries(dir).and_then(|entries| entries.get(name)) {
            Some(true) => Kind::Dir,
            Some(false) => Kind::File,
            None => Kind::Missing,
        }
    }

    fn entries(&mut self, dir: &str) -> Option<&HashMap<String, bool>> {
        if !self.dirs.contains_key(dir) {
            let read = std::fs::read_dir(self.root.join(dir)).ok().map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|entry| {
                        let is_dir = match entry.file_type() {
                            Ok(t) if t.is_symlink() => entry.path().is_dir(),
                            Ok(t) => t.is_dir(),
                            Err(_) => false,
                        };
                        Some((entry.file_name().into_string().ok()?, is_dir))
                    })
                    .collect()
            });
            self.dirs.insert(dir.to_owned(), read);
        }
        self.dirs.get(dir).and_then(Option::as_ref)
    }

    fn is_file(&mut self, path: &str) -> bool {
        self.kind(path) == Kind::File
    }

    /// Whether `dir` is a package: it has an `__init__.py` or `__init__.pyi`.
    fn is_package(&mut self, dir: &str) -> bool {
        ["__init__.py", "__init__.pyi"]
            .iter()
            .any(|init| self.is_file(&join(dir, init)))
    }

    /// Whether a module whose dotted name starts with `first` could be under `base`.
    fn holds(&mut self, base: &str, first: &str) -> bool {
        let at = join(base, first);
        self.kind(&at) == Kind::Dir
            || self.kind(&format!("{at}-stubs")) == Kind::Dir
            || self.is_file(&format!("{at}.py"))
            || self.is_file(&format!("{at}.pyi"))
    }

    /// The files `imports`, made by `module`, rest on, found or to be created; unsorted, and
    /// without the packages around them and the stubs beside them, which the graph adds.
    pub fn resolve(&mut self, module: &str, imports: &[Import]) -> Vec<String> {
        let home = parent(module);
        let mut found = Vec::new();
        for import in imports {
            let bases: Vec<String> = match import.level {
                0 => match import.module.first() {
                    Some(first) => self.bases(home, first),
                    None => continue,
                },
                level => climb(home, level - 1)
                    .map(str::to_owned)
                    .into_iter()
                    .collect(),
            };
            for base in bases {
                self.resolve_under(&base, import, &mut found);
            }
        }
        // Pyright documents a builtins stub at the root, `src` or the stub path only.
        let builtins = Import {
            level: 0,
            module: vec!["__builtins__".to_owned()],
            names: Vec::new(),
        };
        for base in self.bases("", "__builtins__") {
            self.resolve_under(&base, &builtins, &mut found);
        }
        found
    }

    /// Where an absolute import whose first name is `first`, made in the directory `home`, is
    /// looked for (see the module documentation); `home` is `""` where only the configured
    /// places count.
    fn bases(&mut self, home: &str, first: &str) -> Vec<String> {
        let configured = (self.places.configured()).map(|base| (base.to_owned(), true));
        let around = std::iter::successors(Some(home), |d| (!d.is_empty()).then(|| parent(d)))
            .map(|base| (base.to_owned(), false));
        let places: Vec<(String, bool, bool)> = configured
            .chain(around)
            .map(|(base, configured)| {
                let holds = self.holds(&base, first);
                (base, configured, holds)
            })
            .collect();
        let held = places.iter().any(|(_, _, holds)| *holds);
        if !held && self.places.environment.contains(first) {
            return Vec::new();
        }
        // Answered by no configured place: where a module created would answer it, first,
        // leaving out the packages around the importer (an import there names its package).
        // Where only the importer's directories answer it, that is a module created at the
        // root, in `src` or in a configured root, which pyright tries before them.
        let open = !places
            .iter()
            .any(|(_, configured, holds)| *configured && *holds);
        let mut bases: Vec<String> = Vec::new();
        for (base, configured, holds) in places {
            let candidate = open && (configured || !self.is_package(&base));
            if !bases.contains(&base) && (candidate || holds) {
                bases.push(base);
            }
        }
        bases
    }

    /// The files `import` rests on when its module is looked for under `base`; an absolute
    /// one also under a stub package of its first name (`foo-stubs` for `foo`) there, which
    /// answers it first.
    fn resolve_under(&mut self, base: &str, import: &Import, found: &mut Vec<String>) {
        if let (0, Some(first)) = (import.level, import.module.first()) {
            let stubs = format!("{first}-stubs");
            if self.kind(&join(base, &stubs)) == Kind::Dir {
                let mut module = import.module.clone();
                module[0] = stubs;
                self.resolve_from(base.to_owned(), &module, &import.names, found);
            }
        }
        self.resolve_from(base.to_owned(), &import.module, &import.names, found);
    }

    /// The files that answer the dotted `module` under `dir`, and the `names` taken from it.
    fn resolve_from(
        &mut self,
        mut dir: String,
        module: &[String],
        names: &[String],
        found: &mut Vec<String>,
    ) {
        for name in module {
            let at = join(&dir, name);
            if !self.module_at(&at, found) {
                // A module, found or not, has no submodules to take names from.
                return;
            }
            dir = at;
        }
        for name in names.iter().filter(|n| *n != "*") {
            self.module_at(&join(&dir, name), found);
        }
    }

    /// Lists the files that answer the module at `at` (a path without its extension): its
    /// `__init__.py` where it is a directory, its `.py` where that or its stub exists, both
    /// where both do (a module beats a directory without `__init__`, and loses to one with
    /// it) and where neither does (either, once created, answers it). Returns whether it is a
    /// directory, which submodules can be in.
    fn module_at(&mut self, at: &str, found: &mut Vec<String>) -> bool {
        let dir = self.kind(at) == Kind::Dir;
        let file = format!("{at}.py");
        let module = self.is_file(&file) || self.is_file(&format!("{at}.pyi"));
        if dir || !module {
            found.push(format!("{at}/__init__.py"));
        }
        if module || !dir {
            found.push(file);
        }
        dir
    }
}

/// `dir/name`, or `name` at the root.
pub fn join(dir: &str, name: &str) -> String {
    match dir {
        "" => name.to_owned(),
        dir => format!("{dir}/{name}"),
    }
}

/// `path`'s directory, `""` at the top.
pub fn parent(path: &str) -> &str {
    path.rfind('/').map_or("", |i| &path[..i])
}

/// `levels` directories above `dir`, if that is still in the project.
fn climb(dir: &str, levels: usize) -> Option<&str> {
    let mut dir = dir;
    for _ in 0..levels {
        if dir.is_empty() {
            return None;
        }
        dir = parent(dir);
    }
    Some(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imports::statements::scan;

    fn resolved(tree: &Path, module: &str, source: &str) -> Vec<String> {
        resolved_with(tree, &[], module, source)
    }

    /// Every module's own `__builtins__` left out (see its own test), in an environment that
    /// answers `os` and `numpy`.
    fn resolved_with(tree: &Path, roots: &[String], module: &str, source: &str) -> Vec<String> {
        let mut found = every_file(tree, roots, module, source);
        found.retain(|path| !path.contains("__builtins__"));
        found
    }

    fn every_file(tree: &Path, roots: &[String], module: &str, source: &str) -> Vec<String> {
        let environment = HashSet::from(["os", "numpy"].map(str::to_owned));
        let places = Places {
            roots,
            environment: &environment,
        };
        let mut found = Tree::new(tree, places).resolve(module, &scan(source));
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn a_relative_import_is_found_from_the_importing_files_directory_with_or_without_a_package() {
        let dir = crate::tree(
            &[
                "ns/a.py",
                "ns/b.py",
                "ns/sub/c.py",
                "my-tools/x.py",
                "my-tools/y.py",
                "top.py",
                "script.py",
            ],
            "",
        );
        assert_eq!(
            resolved(
                dir.path(),
                "ns/a.py",
                "from .b import f\nfrom . import sub\nfrom .sub import c\n"
            ),
            ["ns/b.py", "ns/sub/__init__.py", "ns/sub/c.py",]
        );
        // A directory whose name is no Python name, and the project's root, are directories
        // all the same.
        assert_eq!(
            resolved(dir.path(), "my-tools/x.py", "from .y import g\n"),
            ["my-tools/y.py"]
        );
        assert_eq!(
            resolved(
                dir.path(),
                "script.py",
                "from . import top\nfrom .. import above\n"
            ),
            ["top.py"]
        );
    }

    #[test]
    fn what_does_not_exist_yet_is_listed_where_it_would_be_created() {
        let dir = crate::tree(&["app/__init__.py", "app/main.py", "app/views.py"], "");
        assert_eq!(
            resolved(
                dir.path(),
                "app/main.py",
                "from app.helpers import f\nfrom . import views, forms\nfrom .models import M\n\
                 import toolkit\n"
            ),
            [
                "app/__init__.py",
                "app/forms.py",
                "app/forms/__init__.py",
                "app/helpers.py",
                "app/helpers/__init__.py",
                "app/models.py",
                "app/models/__init__.py",
                "app/views.py",
                // Not in `app`, a package: `import toolkit` there names no module of `app`.
                "src/toolkit.py",
                "src/toolkit/__init__.py",
                "toolkit.py",
                "toolkit/__init__.py",
            ]
        );
    }

    #[test]
    fn an_absolute_import_is_looked_for_only_where_its_first_name_is() {
        let dir = crate::tree(
            &[
                "src/lib/__init__.py",
                "src/lib/core.py",
                "tools/run.py",
                "tools/helper.py",
                "tools/sub/deep.py",
            ],
            "",
        );
        assert_eq!(
            resolved(
                dir.path(),
                "tools/run.py",
                "import os\nimport numpy.linalg\nimport lib.core\nimport helper\n"
            ),
            // The environment answers `os` and `numpy`. `helper`, held only beside the
            // importer, which pyright tries last, rests on where a module created would come
            // first.
            [
                "helper.py",
                "helper/__init__.py",
                "src/helper.py",
                "src/helper/__init__.py",
                "src/lib/__init__.py",
                "src/lib/core.py",
                "tools/helper.py"
            ]
        );
        // From a directory above the importing file's, as pyright walks up to the root; a
        // module created in the importing file's own directory would come before it.
        assert_eq!(
            resolved(dir.path(), "tools/sub/deep.py", "import helper\n"),
            [
                "helper.py",
                "helper/__init__.py",
                "src/helper.py",
                "src/helper/__init__.py",
                "tools/helper.py",
                "tools/sub/helper.py",
                "tools/sub/helper/__init__.py"
            ]
        );
    }

    #[test]
    fn an_absolute_import_is_also_looked_for_under_the_configured_roots() {
        let dir = crate::tree(
            &["lib/foo.py", "typings/ext/__init__.pyi", "app/main.py"],
            "",
        );
        let roots = ["lib".to_owned(), "typings".to_owned()];
        assert_eq!(
            resolved_with(
                dir.path(),
                &roots,
                "app/main.py",
                "from foo import f\nimport ext.sub\nimport other\n"
            ),
            [
                // `other` is answered by nothing yet: it is looked for in every configured
                // place, and beside the importer, in a directory that is not a package.
                "app/other.py",
                "app/other/__init__.py",
                "lib/foo.py",
                "lib/other.py",
                "lib/other/__init__.py",
                "other.py",
                "other/__init__.py",
                "src/other.py",
                "src/other/__init__.py",
                "typings/ext/__init__.py",
                "typings/ext/sub.py",
                "typings/ext/sub/__init__.py",
                "typings/other.py",
                "typings/other/__init__.py"
            ]
        );
    }

    #[test]
    fn a_stub_package_beside_a_module_is_listed_with_it() {
        let dir = crate::tree(
            &[
                "typings/foo-stubs/__init__.pyi",
                "typings/foo-stubs/sub.pyi",
                "a.py",
            ],
            "",
        );
        let roots = ["typings".to_owned()];
        assert_eq!(
            resolved_with(dir.path(), &roots, "a.py", "import foo.sub\n"),
            [
                "typings/foo-stubs/__init__.py",
                "typings/foo-stubs/sub.py",
                "typings/foo.py",
                "typings/foo/__init__.py"
            ]
        );
    }

    #[test]
    fn every_module_rests_on_a_builtins_stub_at_the_root_in_src_or_a_configured_root() {
        let dir = crate::tree(&["typings/__builtins__.pyi", "pkg/sub/a.py"], "");
        let roots = ["typings".to_owned()];
        let builtins = every_file(dir.path(), &roots, "pkg/sub/a.py", "import os\n");
        assert_eq!(builtins, ["typings/__builtins__.py"], "where one is");
        std::fs::remove_file(dir.path().join("typings/__builtins__.pyi")).expect("removed");
        let builtins = every_file(dir.path(), &roots, "pkg/sub/a.py", "");
        let expected = [
            "__builtins__.py",
            "__builtins__/__init__.py",
            "src/__builtins__.py",
            "src/__builtins__/__init__.py",
            "typings/__builtins__.py",
            "typings/__builtins__/__init__.py",
        ];
        assert_eq!(
            builtins, expected,
            "where none is yet: not beside the importer"
        );
    }

    #[test]
    fn a_module_beside_a_directory_of_its_name_is_listed_with_the_directory() {
        let dir = crate::tree(
            &[
                "ns/a.py",
                "ns/b.py",
                "ns/b/c.py",
                "ns/pkg.py",
                "ns/pkg/__init__.py",
            ],
            "",
        );
        assert_eq!(
            resolved(
                dir.path(),
                "ns/a.py",
                "from . import b\nfrom .pkg import x\n"
            ),
            [
                "ns/b.py",
                "ns/b/__init__.py",
                "ns/pkg.py",
                "ns/pkg/__init__.py",
                "ns/pkg/x.py",
                "ns/pkg/x/__init__.py"
            ]
        );
    }
}
