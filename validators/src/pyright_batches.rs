//! Splitting a large pyright check into runs that each fit node's heap.
//!
//! Pyright keeps every module it loads: the files it checks and, transitively, what they
//! import. When its heap passes 90 % of node's limit it empties its caches and evaluates again
//! from the start, which on a tree that does not fit happens over and over: on ten copies of
//! Django (28,180 modules) with a 12 GB heap, one run went on for 86 minutes without finishing,
//! where one copy takes under three. So the files to check are split into runs whose files and
//! import closures together stay within a budget of modules drawn from the heap limit, taken in
//! an order that keeps together the files that import one another (the caller's), so that few
//! modules are loaded by more than one run. A file's diagnostics
//! depend only on the modules it imports, which its run loads whatever else it checks, so the
//! split changes no finding; the modules that several runs import are loaded by each of them.

use std::collections::HashSet;

/// Pyright's heap per module it loads, in MiB, rounded up: on Django (2,816 modules and their
/// standard-library stubs) its used heap peaked near 2.4 GB.
const MIB_PER_MODULE: u64 = 1;

/// The share of the heap the budget plans for, below the 90 % at which pyright empties its
/// caches, leaving room for garbage not yet collected.
const PLANNED_PERCENT: u64 = 75;

/// How many modules one pyright run may load on a heap of `limit_mib`.
pub fn budget(limit_mib: u64) -> usize {
    let modules = limit_mib * PLANNED_PERCENT / 100 / MIB_PER_MODULE;
    usize::try_from(modules).unwrap_or(usize::MAX).max(1)
}

/// The run that begins with `files[start]`: it and the files after it,
/// in order, while their files and inputs (`inputs_of` each file, counted where `is_module` says
/// a module exists) together number at most `budget`; a file whose closure alone exceeds the
/// budget gets a run of its own. Returns the inputs of each file of the run, which is as long.
pub fn next_run(
    files: &[&str],
    start: usize,
    inputs_of: impl Fn(&str) -> Vec<String>,
    is_module: impl Fn(&str) -> bool,
    budget: usize,
) -> Vec<Vec<String>> {
    let mut loaded: HashSet<String> = HashSet::new();
    let mut run = Vec::new();
    for file in &files[start..] {
        let inputs = inputs_of(file);
        let needs = || {
            std::iter::once(*file)
                .chain(inputs.iter().map(String::as_str))
                .filter(|m| *m == *file || is_module(m))
        };
        let new: HashSet<&str> = needs().filter(|m| !loaded.contains(*m)).collect();
        if !run.is_empty() && loaded.len() + new.len() > budget {
            break;
        }
        loaded.extend(new.into_iter().map(str::to_owned));
        run.push(inputs);
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// How many files each run of `files` takes, one run after another.
    fn split(
        files: &[&str],
        inputs: &HashMap<String, Vec<String>>,
        is_module: impl Fn(&str) -> bool + Copy,
        budget: usize,
    ) -> Vec<usize> {
        let inputs_of = |f: &str| inputs.get(f).cloned().unwrap_or_default();
        let mut runs = Vec::new();
        let mut start = 0;
        while start < files.len() {
            let run = next_run(files, start, inputs_of, is_module, budget);
            for (file, got) in files[start..].iter().zip(&run) {
                assert_eq!(*got, inputs_of(file), "each file's inputs come with it");
            }
            runs.push(run.len());
            start += run.len();
        }
        runs
    }

    fn closures(edges: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        edges
            .iter()
            .map(|(f, i)| ((*f).to_owned(), i.iter().map(|s| (*s).to_owned()).collect()))
            .collect()
    }

    #[test]
    fn the_budget_plans_for_three_quarters_of_the_heap() {
        assert_eq!(budget(4096), 3072);
        assert_eq!(budget(12_052), 9039);
        assert_eq!(budget(0), 1);
    }

    #[test]
    fn runs_take_files_in_order_until_their_closures_fill_the_budget() {
        // Two copies of a package: each file imports its copy's core.
        let inputs = closures(&[
            ("a/core.py", &[]),
            ("a/x.py", &["a/core.py", "a/__init__.pyi"]),
            ("a/y.py", &["a/core.py"]),
            ("b/core.py", &[]),
            ("b/x.py", &["b/core.py"]),
            ("b/y.py", &["b/core.py"]),
        ]);
        let files = [
            "a/core.py",
            "a/x.py",
            "a/y.py",
            "b/core.py",
            "b/x.py",
            "b/y.py",
        ];
        // `a/__init__.pyi` does not exist: it is not counted.
        let exists = |m: &str| !m.ends_with(".pyi");
        assert_eq!(split(&files, &inputs, exists, 3), [3, 3]);
        assert_eq!(split(&files, &inputs, exists, 6), [6]);
        assert_eq!(split(&files, &inputs, exists, 100), [6]);
        // A budget smaller than one file's closure still checks every file, one run each.
        assert_eq!(split(&files, &inputs, exists, 1), [1, 1, 1, 1, 1, 1]);
        assert!(split(&[], &inputs, exists, 3).is_empty());
    }

    #[test]
    fn a_file_starting_a_run_counts_its_whole_closure() {
        let inputs = closures(&[("a.py", &[]), ("b.py", &["c.py", "d.py"]), ("f.py", &[])]);
        // `b.py` does not fit beside `a.py`, and opens a run already full with its imports.
        assert_eq!(
            split(&["a.py", "b.py", "f.py"], &inputs, |_| true, 3),
            [1, 1, 1]
        );
        assert_eq!(
            split(&["a.py", "b.py", "f.py"], &inputs, |_| true, 4),
            [2, 1]
        );
    }
}
