//! Input paths named by number, both sides of it.
//!
//! A type-checked module's result lists its import closure: on Django about a thousand paths
//! for each of 2,818 modules, two and a half million in all, though only some six thousand
//! distinct ones. Sent as strings, they were 100 MB through the pipe, each decoded, checked and
//! hashed on its own by the coordinator: two seconds after the tool's end. Sent as numbers,
//! each path crosses once per request ([`Response::InputPaths`]) and a result's list is four
//! bytes an input ([`Response::NumberedResult`]).

use crate::{FileResult, NumberedResult, ProtocolError, Response};
use std::collections::HashMap;

/// The sender's side: each distinct input path gets the next number the first time a result
/// of the request names it; paths a validator numbers itself take numbers in between.
#[derive(Debug, Default)]
pub struct Numbering {
    numbers: HashMap<String, u32>,
    /// How many numbers the request has given.
    sent: u32,
}

impl Numbering {
    /// The numbers of `paths`, in their order, and the paths numbered for the first time, in
    /// the order of their numbers: what an [`Response::InputPaths`] sent before the result must
    /// carry.
    pub fn number(&mut self, paths: Vec<String>) -> (Vec<u32>, Vec<String>) {
        let mut new = Vec::new();
        let numbers = paths
            .into_iter()
            .map(|path| {
                if let Some(&number) = self.numbers.get(&path) {
                    return number;
                }
                let number = self.reserve(1);
                self.numbers.insert(path.clone(), number);
                new.push(path);
                number
            })
            .collect();
        (numbers, new)
    }

    /// Numbers `count` paths sent as they are, in order: the first one's number.
    pub fn reserve(&mut self, count: usize) -> u32 {
        let first = self.sent;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.sent = self.sent.saturating_add(count);
        first
    }

    /// How many paths the request has numbered.
    pub fn sent(&self) -> usize {
        self.sent as usize
    }
}

/// The receiver's side: the paths a request has numbered so far.
#[derive(Debug, Default)]
pub struct InputTable {
    paths: Vec<String>,
}

impl InputTable {
    /// Numbers `paths` after those already sent.
    pub fn add(&mut self, paths: Vec<String>) {
        self.paths.extend(paths);
    }

    /// The path numbered `number`, if one was sent.
    pub fn path(&self, number: u32) -> Option<&str> {
        self.paths.get(number as usize).map(String::as_str)
    }

    /// The result with its inputs as paths, as a [`Response::FileResult`] would have listed
    /// them; an error for a number not sent, or inputs given both ways.
    pub fn resolve(&self, numbered: NumberedResult) -> Result<FileResult, ProtocolError> {
        check_numbered(&numbered, self.paths.len())?;
        let NumberedResult { mut result, inputs } = numbered;
        result.inputs = inputs
            .iter()
            .filter_map(|&n| self.path(n).map(str::to_owned))
            .collect();
        Ok(result)
    }
}

/// A [`NumberedResult`] names only numbers below `sent` (the paths numbered so far in its
/// request) and leaves its result's own `inputs` empty.
pub fn check_numbered(numbered: &NumberedResult, sent: usize) -> Result<(), ProtocolError> {
    let path = &numbered.result.path;
    if !numbered.result.inputs.is_empty() {
        return Err(ProtocolError::Malformed(format!(
            "NumberedResult for `{path}` also lists inputs by path; send them as numbers only"
        )));
    }
    match numbered.inputs.iter().find(|&&n| n as usize >= sent) {
        Some(n) => Err(ProtocolError::Malformed(format!(
            "NumberedResult for `{path}` names input number {n}, but only {sent} input paths \
             were sent in this request (InputPaths comes before the results that use it)"
        ))),
        None => Ok(()),
    }
}

/// `paths` cut into [`Response::InputPaths`] messages of at most `max` encoded bytes each; a
/// path longer than a frame on its own is sent alone (and refused by the frame limit).
pub fn input_paths(paths: Vec<String>, max: u32) -> Vec<Response> {
    // A tag and a list length, then a length and the bytes per path.
    const HEAD: usize = 4 + 8;
    let max = max as usize;
    let mut messages = Vec::new();
    let mut part: Vec<String> = Vec::new();
    let mut size = HEAD;
    for path in paths {
        let more = 8 + path.len();
        if !part.is_empty() && size + more > max {
            messages.push(Response::InputPaths(std::mem::take(&mut part)));
            size = HEAD;
        }
        size += more;
        part.push(path);
    }
    if !part.is_empty() {
        messages.push(Response::InputPaths(part));
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    fn strings(paths: &[&str]) -> Vec<String> {
        paths.iter().map(|p| (*p).to_owned()).collect()
    }

    #[test]
    fn each_path_is_numbered_once_and_sent_the_first_time() {
        let mut numbering = Numbering::default();
        let (first, new) = numbering.number(strings(&["a.py", "b.py"]));
        assert_eq!((first, new), (vec![0, 1], strings(&["a.py", "b.py"])));
        let (second, new) = numbering.number(strings(&["c.py", "a.py", "c.py"]));
        assert_eq!((second, new), (vec![2, 0, 2], strings(&["c.py"])));
        assert_eq!(numbering.reserve(3), 3, "three sent as they are");
        let (third, new) = numbering.number(strings(&["a.py", "d.py"]));
        assert_eq!((third, new), (vec![0, 6], strings(&["d.py"])));
        assert_eq!(numbering.sent(), 7);
    }

    #[test]
    fn a_table_gives_back_the_paths_and_refuses_numbers_not_sent() {
        let mut table = InputTable::default();
        table.add(strings(&["a.py", "b.py"]));
        let numbered = |inputs: Vec<u32>| NumberedResult {
            result: FileResult::new("m.py", Vec::new()),
            inputs,
        };
        let result = table.resolve(numbered(vec![1, 0])).expect("numbers sent");
        assert_eq!(result.inputs, strings(&["b.py", "a.py"]));
        let error = table.resolve(numbered(vec![0, 2])).expect_err("2 not sent");
        let error = error.to_string();
        assert!(
            error.contains("input number 2") && error.contains("only 2"),
            "{error}"
        );
        let both = NumberedResult {
            result: FileResult {
                inputs: strings(&["a.py"]),
                ..FileResult::new("m.py", Vec::new())
            },
            inputs: vec![0],
        };
        assert!(table.resolve(both).is_err());
    }

    #[test]
    fn paths_are_cut_into_messages_that_fit_a_frame() {
        let paths: Vec<String> = (0..100).map(|i| format!("pkg/module_{i:03}.py")).collect();
        let max = 300;
        let messages = input_paths(paths.clone(), max);
        assert!(messages.len() > 1);
        let mut back = Vec::new();
        for message in messages {
            assert!(codec::encode(&message).len() <= max as usize);
            let Response::InputPaths(part) = message else {
                panic!("not InputPaths")
            };
            back.extend(part);
        }
        assert_eq!(back, paths);
        assert!(input_paths(Vec::new(), max).is_empty());
    }
}
