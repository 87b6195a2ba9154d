//! The order validators run in: `after` and `requires` edges between them.
//!
//! `after = ["ruff"]` starts a validator only once ruff has finished; `requires = ["ruff"]`
//! also skips it when ruff did not pass (a type check is worth little when the code does not
//! parse). Validators without such edges start at once and run in parallel up to `--jobs`.
//! Edges to validators that are not part of this run are ignored: `--validators pyright` runs
//! pyright alone. The graph is checked when the plan is made: an edge to an unknown validator
//! or a cycle is a configuration error, before anything runs.

use crate::config::Config;
use std::collections::BTreeMap;
use std::time::Duration;

/// How one validator depends on another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Edge {
    After,
    Requires,
}

/// What the dispatcher is to do next with a validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Start(usize),
    /// Skip it: a validator it requires did not pass (the message says which).
    Skip(usize, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Started,
    Ended { passed: bool },
}

/// The dependency state of one run's validators, by their index in the plan.
#[derive(Debug, Clone)]
pub struct Schedule {
    names: Vec<String>,
    /// For each validator, the validators it waits for.
    deps: Vec<Vec<(usize, Edge)>>,
    slots: Vec<Slot>,
}

impl Schedule {
    /// The schedule of validators `names` under `config`'s edges.
    pub fn new(names: &[String], config: &Config) -> Schedule {
        let index: BTreeMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let deps = names
            .iter()
            .map(|name| {
                edges(config, name)
                    .filter_map(|(dep, edge)| index.get(dep).map(|&i| (i, edge)))
                    .collect()
            })
            .collect();
        Schedule {
            names: names.to_vec(),
            deps,
            slots: vec![Slot::Waiting; names.len()],
        }
    }

    /// The validators that can start now (nothing to wait for), marked started.
    pub fn begin(&mut self) -> Vec<Next> {
        self.advance()
    }

    /// Records that validator `index` ended (`passed`: it passed, or had nothing to check);
    /// returns what that lets start, or skips.
    pub fn ended(&mut self, index: usize, passed: bool) -> Vec<Next> {
        self.slots[index] = Slot::Ended { passed };
        self.advance()
    }

    /// Marks every validator not started yet as ended (for `--fail-fast`); returns them.
    pub fn abandon(&mut self) -> Vec<usize> {
        let waiting: Vec<usize> = (0..self.slots.len())
            .filter(|i| self.slots[*i] == Slot::Waiting)
            .collect();
        for i in &waiting {
            self.slots[*i] = Slot::Ended { passed: false };
        }
        waiting
    }

    fn advance(&mut self) -> Vec<Next> {
        let mut next = Vec::new();
        // A skip ends a validator, which may decide others: repeat until nothing changes.
        loop {
            let mut changed = false;
            for i in 0..self.slots.len() {
                if self.slots[i] != Slot::Waiting {
                    continue;
                }
                let mut ready = true;
                let mut failed = Vec::new();
                for &(dep, edge) in &self.deps[i] {
                    match self.slots[dep] {
                        Slot::Ended { passed } => {
                            if !passed && edge == Edge::Requires {
                                failed.push(self.names[dep].as_str());
                            }
                        }
                        _ => ready = false,
                    }
                }
                if !failed.is_empty() {
                    let reason = format!("requires {}, which did not pass", failed.join(" and "));
                    self.slots[i] = Slot::Ended { passed: false };
                    next.push(Next::Skip(i, reason));
                    changed = true;
                } else if ready {
                    self.slots[i] = Slot::Started;
                    next.push(Next::Start(i));
                    changed = true;
                }
            }
            if !changed {
                return next;
            }
        }
    }

    /// The chain of validators that decided the run's duration: the one that ended last, then
    /// whichever of those it waited for ended last, and so on. `ends` is when each ended,
    /// from the run's start (`None`: it never ran).
    pub fn critical_path(&self, ends: &[Option<Duration>]) -> Vec<usize> {
        let Some(mut at) = (0..ends.len())
            .filter(|i| ends[*i].is_some())
            .max_by_key(|i| ends[*i])
        else {
            return Vec::new();
        };
        let mut path = vec![at];
        while let Some(&(dep, _)) = self.deps[at]
            .iter()
            .filter(|(d, _)| ends[*d].is_some())
            .max_by_key(|(d, _)| ends[*d])
        {
            if path.contains(&dep) {
                break;
            }
            path.push(dep);
            at = dep;
        }
        path.reverse();
        path
    }
}

/// Every edge from validator `name` in the configuration.
fn edges<'a>(config: &'a Config, name: &str) -> impl Iterator<Item = (&'a str, Edge)> {
    config.validators.get(name).into_iter().flat_map(|v| {
        v.after
            .iter()
            .map(|d| (d.as_str(), Edge::After))
            .chain(v.requires.iter().map(|d| (d.as_str(), Edge::Requires)))
    })
}

/// A mistake in the edges of the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error(
        "[validators.{validator}] {key} names `{dependency}`, which is not a validator here; \
         the validators are: {known}"
    )]
    Unknown {
        validator: String,
        key: &'static str,
        dependency: String,
        known: String,
    },
    #[error(
        "`after` and `requires` form a cycle: {0}; remove one of these edges from \
         orchestrator.toml"
    )]
    Cycle(String),
}

/// Checks that every edge names a known validator and that there is no cycle.
pub fn check(config: &Config, known: &[String]) -> Result<(), OrderError> {
    for (name, v) in &config.validators {
        for (key, list) in [("after", &v.after), ("requires", &v.requires)] {
            if let Some(unknown) = list.iter().find(|d| !known.contains(d)) {
                return Err(OrderError::Unknown {
                    validator: name.clone(),
                    key,
                    dependency: unknown.clone(),
                    known: known.join(", "),
                });
            }
        }
    }
    // Depth-first search over the configured validators; a node seen again while still on
    // the stack closes a cycle.
    let names: Vec<&String> = config.validators.keys().collect();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1: on the stack, 2: done
    for start in names {
        let mut stack: Vec<(&str, Vec<&str>)> = vec![(start, deps_of(config, start))];
        if state.contains_key(start.as_str()) {
            continue;
        }
        state.insert(start, 1);
        while let Some((node, pending)) = stack.last_mut() {
            let node = *node;
            match pending.pop() {
                None => {
                    state.insert(node, 2);
                    stack.pop();
                }
                Some(dep) => match state.get(dep) {
                    Some(2) => {}
                    Some(_) => {
                        let from = stack.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                        let mut cycle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        cycle.push(dep);
                        return Err(OrderError::Cycle(cycle.join(" → ")));
                    }
                    None => {
                        state.insert(dep, 1);
                        stack.push((dep, deps_of(config, dep)));
                    }
                },
            }
        }
    }
    Ok(())
}

fn deps_of<'a>(config: &'a Config, name: &str) -> Vec<&'a str> {
    let mut deps: Vec<&str> = edges(config, name).map(|(d, _)| d).collect();
    deps.sort_unstable();
    deps.dedup();
    // Popped from the end: reversed, the search follows the written order.
    deps.reverse();
    deps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, None, None).expect("valid")
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn after_waits_and_requires_skips_in_cascade() {
        let c = config(
            "[validators.pyright]\nrequires = [\"ruff\"]\n\
             [validators.visual]\nrequires = [\"pyright\"]\n\
             [validators.bandit]\nafter = [\"ruff\"]\n",
        );
        let mut s = Schedule::new(&names(&["bandit", "pyright", "ruff", "visual"]), &c);
        assert_eq!(s.begin(), [Next::Start(2)]);
        assert_eq!(
            s.ended(2, false),
            [
                Next::Start(0),
                Next::Skip(1, "requires ruff, which did not pass".into()),
                Next::Skip(3, "requires pyright, which did not pass".into()),
            ]
        );
    }

    #[test]
    fn edges_to_validators_outside_the_run_are_ignored() {
        let c = config("[validators.pyright]\nrequires = [\"ruff\"]\n");
        let mut s = Schedule::new(&names(&["pyright"]), &c);
        assert_eq!(s.begin(), [Next::Start(0)]);
    }

    #[test]
    fn cycles_and_unknown_names_are_configuration_errors() {
        let known = names(&["a", "b", "c"]);
        let c = config(
            "[validators.a]\nafter = [\"b\"]\n[validators.b]\nrequires = [\"c\"]\n\
             [validators.c]\nafter = [\"a\"]\n",
        );
        assert_eq!(
            check(&c, &known),
            Err(OrderError::Cycle("a → b → c → a".into()))
        );
        let c = config("[validators.a]\nafter = [\"a\"]\n");
        assert_eq!(check(&c, &known), Err(OrderError::Cycle("a → a".into())));
        let c = config("[validators.a]\nrequires = [\"rufff\"]\n");
        let err = check(&c, &known).expect_err("unknown").to_string();
        assert_eq!(
            err,
            "[validators.a] requires names `rufff`, which is not a validator here; the \
             validators are: a, b, c"
        );
        let diamond =
            config("[validators.a]\nafter = [\"b\", \"c\"]\n[validators.b]\nafter = [\"c\"]\n");
        assert_eq!(check(&diamond, &known), Ok(()));
    }

    #[test]
    fn the_critical_path_follows_the_latest_ending_dependency() {
        let c = config("[validators.c]\nafter = [\"a\", \"b\"]\n");
        let s = Schedule::new(&names(&["a", "b", "c", "d"]), &c);
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(
            s.critical_path(&[ms(100), ms(300), ms(900), ms(500)]),
            [1, 2]
        );
        assert_eq!(s.critical_path(&[ms(100), None, ms(200), None]), [0, 2]);
        assert_eq!(s.critical_path(&[None; 4]), Vec::<usize>::new());
    }
}
