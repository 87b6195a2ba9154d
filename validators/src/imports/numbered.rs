//! The import graph with every file numbered, for working out thousands of import closures.
//!
//! Each result of a whole-project pyright run lists its module's import closure: on Django
//! about a thousand files for each of 2,818 modules, a million paths in all. Walked with the
//! paths as strings, each step cloned a path and made the packages and stub around it anew:
//! 1.8 s for Django's closures (ruff's graph alone), the largest part of the pyright
//! validator's own processor time in a cold run. Numbered once, a closure is a walk over
//! integers and only its result is made of paths: 0.3 s.

use std::collections::{HashMap, HashSet};

/// Every module of a graph and every file around one (its packages' `__init__` files, its
/// stub or module twin), numbered.
#[derive(Debug, Default)]
pub struct Numbered {
    ids: HashMap<String, u32>,
    /// Each file's path, by number.
    paths: Vec<String>,
    /// What each file imports.
    imports: Vec<Vec<u32>>,
    /// The files around each file, which a closure that reaches it reaches too.
    around: Vec<Vec<u32>>,
    /// Each file's place in the sorted order of the paths.
    rank: Vec<u32>,
}

impl Numbered {
    /// Numbers `imports` (each module's direct imports), with `around` giving the files
    /// around a path.
    pub fn of(
        imports: &HashMap<String, Vec<String>>,
        around: impl Fn(&str) -> Vec<String>,
    ) -> Numbered {
        let mut numbered = Numbered::default();
        for module in imports.keys() {
            numbered.number(module);
        }
        // Numbering a file's imports and surroundings numbers new files, which are then
        // taken in turn, until every numbered file has both lists.
        let mut next = 0;
        while next < numbered.paths.len() {
            let path = numbered.paths[next].clone();
            let imported: Vec<u32> = (imports.get(&path).into_iter().flatten())
                .map(|import| numbered.number(import))
                .collect();
            let around: Vec<u32> = around(&path).iter().map(|a| numbered.number(a)).collect();
            numbered.imports.push(imported);
            numbered.around.push(around);
            next += 1;
        }
        let mut order: Vec<u32> = (0..numbered.paths.len() as u32).collect();
        order
            .sort_unstable_by(|a, b| numbered.paths[*a as usize].cmp(&numbered.paths[*b as usize]));
        numbered.rank = vec![0; order.len()];
        for (rank, id) in order.into_iter().enumerate() {
            numbered.rank[id as usize] = rank as u32;
        }
        numbered
    }

    fn number(&mut self, path: &str) -> u32 {
        if let Some(id) = self.ids.get(path) {
            return *id;
        }
        let id = u32::try_from(self.paths.len()).expect("fewer than 4 billion files");
        self.ids.insert(path.to_owned(), id);
        self.paths.push(path.to_owned());
        id
    }

    /// What `module` imports directly, as paths (none for a file that is not numbered).
    pub fn imports_of(&self, module: &str) -> impl Iterator<Item = &str> {
        let ids = self
            .ids
            .get(module)
            .map(|id| self.imports[*id as usize].as_slice());
        ids.unwrap_or_default()
            .iter()
            .map(|id| self.paths[*id as usize].as_str())
    }

    /// The files `starts` name, with what they import, transitively, and the files around
    /// each; by number, sorted by path, once each. Paths that are not numbered are left out.
    pub fn closure<'a>(&self, starts: impl Iterator<Item = &'a str>) -> Vec<u32> {
        let mut seen: HashSet<u32> = HashSet::new();
        let mut todo: Vec<u32> = starts.filter_map(|s| self.ids.get(s).copied()).collect();
        while let Some(next) = todo.pop() {
            if !seen.insert(next) {
                continue;
            }
            let at = next as usize;
            let unseen = self.around[at].iter().chain(&self.imports[at]);
            todo.extend(unseen.filter(|id| !seen.contains(*id)));
        }
        let mut found: Vec<u32> = seen.into_iter().collect();
        found.sort_unstable_by_key(|id| self.rank[*id as usize]);
        found
    }

    /// The number of `path`, if it has one.
    pub fn id(&self, path: &str) -> Option<u32> {
        self.ids.get(path).copied()
    }

    /// Every numbered path, by number.
    pub fn paths(&self) -> &[String] {
        &self.paths
    }

    /// The paths of `ids`, in their order.
    pub fn paths_of(&self, ids: Vec<u32>) -> Vec<String> {
        let path = |id: u32| self.paths.get(id as usize).cloned();
        ids.into_iter().filter_map(path).collect()
    }
}
