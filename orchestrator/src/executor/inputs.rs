//! The input paths a request's results name, each numbered once.
//!
//! A whole-project pyright run's results list two and a half million inputs between them, six
//! thousand distinct paths. Taken path by path, each was checked, hashed into three maps and
//! digested on its own: two seconds of the coordinator's time after pyright ended. Numbered on
//! arrival, each distinct path is checked and looked up once a request, and everything after
//! (its state, its place in the run record) is found by number.
//!
//! Validators name inputs either way: as paths in a `FileResult`, numbered here, or as
//! numbers of the paths they sent in `InputPaths` (`protocol::numbered`), translated here.

use crate::cache::Key;
use crate::digest::Hash;
use protocol::numbered::check_numbered;
use protocol::{FileResult, NumberedResult, ProtocolError};
use std::collections::HashMap;
use std::sync::Arc;

/// The paths of one request, by number.
#[derive(Debug, Default)]
pub struct Table {
    paths: Vec<Arc<str>>,
    numbers: HashMap<Arc<str>, u32>,
    /// This table's number for each path the validator sent in `InputPaths`, in its order.
    sent: Vec<u32>,
    /// The paths as last handed out; made again only when paths were added since.
    shared: Option<Arc<[Arc<str>]>>,
}

impl Table {
    /// Numbers the paths of an `InputPaths`, after those the validator sent before.
    pub fn sent(&mut self, paths: Vec<String>) -> Result<(), ProtocolError> {
        for path in paths {
            let number = self.number(&path, "an InputPaths")?;
            self.sent.push(number);
        }
        Ok(())
    }

    /// The numbers of a `FileResult`'s inputs, given as paths.
    pub fn listed(&mut self, result: &str, paths: &[String]) -> Result<Vec<u32>, ProtocolError> {
        if paths.is_empty() {
            // Most results list nothing; their error context is not worth making.
            return Ok(Vec::new());
        }
        let whose = format!("FileResult for `{result}`");
        paths.iter().map(|path| self.number(path, &whose)).collect()
    }

    /// The numbers of a `NumberedResult`'s inputs, given as the validator's numbers; an error
    /// for a number it did not send, or for inputs given as paths too.
    pub fn numbered(&self, numbered: &NumberedResult) -> Result<Vec<u32>, ProtocolError> {
        check_numbered(numbered, self.sent.len())?;
        let sent = |n: &u32| self.sent.get(*n as usize).copied();
        Ok(numbered.inputs.iter().filter_map(sent).collect())
    }

    /// Every path numbered so far, by number.
    pub fn paths(&mut self) -> Arc<[Arc<str>]> {
        if self
            .shared
            .as_ref()
            .is_none_or(|s| s.len() != self.paths.len())
        {
            self.shared = Some(self.paths.iter().cloned().collect());
        }
        self.shared.clone().unwrap_or_default()
    }

    /// The number of `path`, given it if new; an error, naming `whose` list it is, for a path
    /// that is not relative to the root.
    fn number(&mut self, path: &str, whose: &str) -> Result<u32, ProtocolError> {
        if let Some(&number) = self.numbers.get(path) {
            return Ok(number);
        }
        if !inside_root(path) {
            return Err(ProtocolError::Malformed(format!(
                "{whose} lists the input `{path}`, which is not a relative path inside the root"
            )));
        }
        let number = u32::try_from(self.paths.len()).map_err(|_| {
            ProtocolError::Malformed(format!("{whose} brings the request past 2^32 inputs"))
        })?;
        let path: Arc<str> = path.into();
        self.numbers.insert(path.clone(), number);
        self.paths.push(path);
        Ok(number)
    }
}

/// A result to keep, its inputs by number in its request's [`Table`].
#[derive(Debug)]
pub struct Fresh {
    pub key: Key,
    /// The result, its `inputs` left empty.
    pub result: FileResult,
    pub inputs: Vec<u32>,
}

/// The paths of a [`Table`] and the state of those the request's results listed, each found
/// once a request: its batches of results name the same files again and again (each module's
/// closure holds most of the project), and each input is stated only the first time. A file
/// the validator writes after that (a baseline) is kept in the state it had then, so the
/// result is checked again next run, never served stale.
#[derive(Debug, Default)]
pub struct Stated {
    paths: Arc<[Arc<str>]>,
    /// By number; `None` for a path no result listed yet, `Some(None)` for an absent file.
    states: Vec<Option<Option<Hash>>>,
}

impl Stated {
    /// Takes in the table's paths as they are now, and finds the state of each of `numbers`
    /// not found before with `hash` (`None` for a file that is absent or unreadable).
    pub fn add(
        &mut self,
        paths: Arc<[Arc<str>]>,
        numbers: impl Iterator<Item = u32>,
        hash: impl Fn(&str) -> Option<Hash>,
    ) {
        self.states.resize(paths.len(), None);
        self.paths = paths;
        for number in numbers {
            let at = number as usize;
            if let (Some(slot @ None), Some(path)) = (self.states.get_mut(at), self.paths.get(at)) {
                *slot = Some(hash(path));
            }
        }
    }

    /// How many paths there are.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The path numbered `number`, with its state.
    pub fn input(&self, number: u32) -> (&str, Option<&Hash>) {
        let at = number as usize;
        let path = self.paths.get(at).map_or("", |p| &**p);
        (path, self.states.get(at).and_then(|s| s.as_ref()?.as_ref()))
    }

    /// A list's paths with their states, in its order.
    pub fn list<'s>(
        &'s self,
        numbers: &'s [u32],
    ) -> impl Iterator<Item = (&'s str, Option<&'s Hash>)> + Clone + 's {
        numbers.iter().map(|&n| self.input(n))
    }
}

/// Whether a path is relative, `/`-separated and stays under the root (no `..`, no empty or
/// `.` components that would make two spellings of one file).
fn inside_root(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    fn numbered(inputs: &[u32]) -> NumberedResult {
        NumberedResult {
            result: FileResult::new("n.py", Vec::new()),
            inputs: inputs.to_vec(),
        }
    }

    #[test]
    fn paths_listed_either_way_share_one_numbering() {
        let mut table = Table::default();
        assert_eq!(
            table
                .listed("m.py", &strings(&["a.py", "b.py"]))
                .expect("inside the root"),
            [0, 1]
        );
        // The validator's numbers are its own: its 0 is b.py, its 1 a new c.py.
        table
            .sent(strings(&["b.py", "c.py"]))
            .expect("inside the root");
        assert_eq!(
            table
                .numbered(&numbered(&[1, 0, 1]))
                .expect("inside the root"),
            [2, 1, 2]
        );
        let paths = table.paths();
        assert_eq!(
            paths.iter().map(|p| &**p).collect::<Vec<_>>(),
            ["a.py", "b.py", "c.py"]
        );
        assert!(
            Arc::ptr_eq(&paths, &table.paths()),
            "unchanged, not made again"
        );
    }

    #[test]
    fn each_input_is_stated_once_a_request_in_the_state_it_had_then() {
        let mut table = Table::default();
        table
            .listed("m.py", &strings(&["a.py", "gone.py"]))
            .expect("inside the root");
        let asked = std::cell::RefCell::new(Vec::new());
        let hash = |path: &str| {
            asked.borrow_mut().push(path.to_owned());
            (path != "gone.py").then_some([asked.borrow().len() as u8; 32])
        };
        let mut stated = Stated::default();
        stated.add(table.paths(), [0, 1].into_iter(), hash);
        table
            .listed("n.py", &strings(&["b.py", "a.py"]))
            .expect("inside the root");
        stated.add(table.paths(), [2, 0].into_iter(), hash);
        assert_eq!(*asked.borrow(), ["a.py", "gone.py", "b.py"]);
        let list: Vec<_> = stated.list(&[0, 1, 2]).collect();
        assert_eq!(
            list,
            [
                ("a.py", Some(&[1; 32])),
                ("gone.py", None),
                ("b.py", Some(&[3; 32]))
            ]
        );
    }

    #[test]
    fn paths_outside_the_root_and_numbers_not_sent_are_refused() {
        let mut table = Table::default();
        for bad in [
            "/etc/passwd",
            "../x.css",
            "a/../../x",
            "",
            "a//b",
            "./a",
            "a\\b",
        ] {
            let error = table.listed("m.py", &strings(&[bad])).expect_err(bad);
            assert!(error.to_string().contains("not a relative path"), "{error}");
            let error = table.sent(strings(&[bad])).expect_err(bad).to_string();
            assert!(error.contains("an InputPaths lists the input"), "{error}");
        }
        table.sent(strings(&["a.py"])).expect("inside the root");
        let error = table
            .numbered(&numbered(&[0, 1]))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("input number 1") && error.contains("only 1"),
            "{error}"
        );
    }
}
