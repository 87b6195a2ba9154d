//! Which of the findings kept from the last JSON report ([`crate::rendered`]) a report made
//! mostly of the same run records takes as they are.
//!
//! After a one-file change each validator answers every other file from the record of its
//! last complete run. The findings of a path are the same as those kept when every validator
//! that found something there answered the path from the record the kept findings were made
//! of, and no validator has a new result with findings there. Those paths' findings are copied
//! from the kept array; the other kept paths' findings are read back, and of them only those a
//! validator answered that way stay, beside the new ones. The counts by severity and the
//! findings' hash ([`crate::history::FindingsSum`]) change by what left and what came. A
//! report whose kept paths mostly changed (a validator's configuration changed, a `--changed`
//! run answers few files) writes its findings whole instead: reading most of the kept findings
//! back costs more.

use crate::cache::{decode_all, KeptResult};
use crate::event::Unread;
use crate::history::{FindingFields, FindingsSum};
use crate::rendered::{PathSpan, Rendered, Reuse};
use crate::report::{Report, ReportFinding};
use protocol::{FileResult, Severity};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Results a run record answered, whose findings are held aside, not decoded: the kept
/// findings may hold them already.
#[derive(Debug)]
pub struct Held {
    pub index: usize,
    /// The digest of the record's body.
    pub body: crate::digest::Hash,
    pub results: Vec<KeptResult>,
}

/// The reuse of `kept` by `report`, whose `findings` are those of every result but the
/// `held` and `unread` ones; `Err` with `held` as it was when it cannot reuse them (the spans
/// were not kept, an unread result is of another record) or none of the results are of the
/// kept findings' records. Else the held results' findings that the kept ones do not hold are
/// added to the report's, with the kept findings of changed paths that stay.
pub fn splice(
    report: &mut Report,
    held: Vec<Held>,
    unread: &[(usize, Box<Unread>)],
    kept: &Arc<Rendered>,
) -> Result<Reuse, Vec<Held>> {
    let names: Vec<String> = report.validators.iter().map(|v| v.name.clone()).collect();
    let of_kept =
        |index: usize, body: &crate::digest::Hash| kept.body_of(&names[index]) == Some(body);
    if unread.iter().any(|(i, u)| !of_kept(*i, &u.head.body))
        || (unread.is_empty() && !held.iter().any(|h| of_kept(h.index, &h.body)))
    {
        return Err(held);
    }
    let Some(spans) = kept.spans() else {
        return Err(held);
    };
    let (ours, theirs_held): (Vec<Held>, Vec<Held>) =
        held.into_iter().partition(|h| of_kept(h.index, &h.body));
    // The kept findings do not hold those of another record's results, which are decoded.
    let theirs: Option<Vec<(usize, Vec<FileResult>)>> = theirs_held
        .iter()
        .map(|h| Some((h.index, decode_all(h.results.clone())?)))
        .collect();
    let Some(theirs) = theirs else {
        return Err(ours.into_iter().chain(theirs_held).collect());
    };
    let mut counts = Tally {
        counts: kept.counts(),
        sum: FindingsSum::of_digest(&kept.findings_hash),
    };
    let mut staying = Vec::new();
    let intact;
    {
        // Each validator's paths answered by the record the kept findings were made of.
        let mut answered: HashMap<&str, HashSet<&str>> = HashMap::new();
        for (index, u) in unread {
            let paths = answered.entry(&names[*index]).or_default();
            paths.extend(u.head.paths.iter().map(String::as_str));
        }
        for h in &ours {
            let paths = answered.entry(&names[h.index]).or_default();
            paths.extend(h.results.iter().map(|r| r.path.as_str()));
        }
        let answers = |validator: &str, path: &str| {
            answered
                .get(validator)
                .is_some_and(|paths| paths.contains(path))
        };
        let others = theirs.iter().flat_map(|(index, results)| {
            let validator = names[*index].as_str();
            results
                .iter()
                .flat_map(move |r| r.findings.iter().map(move |f| (validator, f)))
        });
        let mut new_paths: HashSet<&str> = HashSet::new();
        for f in &report.findings {
            counts.add(&FindingFields::of(f), f.finding.severity);
            new_paths.insert(&f.finding.path);
        }
        for (validator, f) in others {
            counts.add(&FindingFields::from(validator, f), f.severity);
            new_paths.insert(&f.path);
        }
        let (whole, touched): (Vec<PathSpan>, Vec<PathSpan>) =
            spans.into_iter().partition(|span| {
                !new_paths.contains(span.path.as_str())
                    && (0..64)
                        .filter(|bit| span.found_by & (1 << bit) != 0)
                        .all(|bit| {
                            kept.named_by_bit(bit)
                                .is_some_and(|v| answers(v, &span.path))
                        })
            });
        // Kept findings mostly changed are read back slower than the report writes them all.
        if touched.len() > whole.len() {
            return Err(ours.into_iter().chain(theirs_held).collect());
        }
        intact = whole;
        for span in touched {
            let mut array = b"[".to_vec();
            let read = kept.copy_range(span.start, span.end, &mut array).ok();
            array.push(b']');
            let Some(findings) = read.and_then(|()| crate::report::merge::findings_array(&array))
            else {
                return Err(ours.into_iter().chain(theirs_held).collect());
            };
            for f in findings {
                match f.finding.path == span.path && answers(&f.validator, &f.finding.path) {
                    true => staying.push(f),
                    false => counts.remove(&FindingFields::of(&f), f.finding.severity),
                }
            }
        }
    }
    for (index, results) in theirs {
        let validator = &names[index];
        for result in results {
            let findings = result.findings.into_iter().map(|finding| ReportFinding {
                validator: validator.clone(),
                finding,
            });
            report.findings.extend(findings);
        }
    }
    report.findings.extend(staying);
    tracing::debug!(
        "the report copies the kept findings of {} paths, and writes {} findings",
        intact.len(),
        report.findings.len()
    );
    Ok(Reuse {
        kept: kept.clone(),
        intact: Some(intact),
        counts: counts.counts,
        findings_hash: counts.sum.digest(),
    })
}

/// Findings counted by severity and summed.
struct Tally {
    counts: [u32; 3],
    sum: FindingsSum,
}

impl Tally {
    fn add(&mut self, f: &FindingFields, severity: Severity) {
        self.sum.add(f);
        let at = severity_at(severity);
        self.counts[at] = self.counts[at].wrapping_add(1);
    }

    fn remove(&mut self, f: &FindingFields, severity: Severity) {
        self.sum.remove(f);
        let at = severity_at(severity);
        self.counts[at] = self.counts[at].wrapping_sub(1);
    }
}

fn severity_at(severity: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|s| *s == severity)
        .expect("every severity is in ALL")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rendered::{Keeping, Makings};
    use protocol::Finding;
    use std::path::Path;

    const NAMES: [&str; 2] = ["lint", "types"];
    const LINT: [u8; 32] = [1; 32];
    const TYPES: [u8; 32] = [2; 32];

    fn found(validator: usize, path: &str, rule: &str, severity: Severity) -> ReportFinding {
        let mut finding = Finding::new(path, 3, 1, rule, severity, format!("{rule} \"said\""));
        finding.help_url = Some("https://x.test/r".into());
        ReportFinding {
            validator: NAMES[validator].to_owned(),
            finding,
        }
    }

    fn report(root: &Path, findings: Vec<ReportFinding>) -> Report {
        let names = NAMES.map(String::from);
        let mut report = Report::new(root.to_owned(), &names, Vec::new());
        report.findings = findings;
        report.sort();
        report
    }

    /// Writes `report` as JSON, keeping its findings as made of `bodies`; returns the JSON.
    fn write_keeping(dir: &Path, report: &Report, bodies: [[u8; 32]; 2]) -> String {
        let makings = Makings::new(NAMES.iter().map(|n| n.to_string()).zip(bodies).collect());
        let counts = Severity::ALL.map(|s| report.count(s));
        let hash = report.findings_hash();
        let keeping =
            Keeping::start(dir, &report.root, &makings, &hash, counts, None).expect("start");
        let mut keep = Some(keeping);
        let mut out = Vec::new();
        crate::report::json::write(report, &mut out, &mut keep).expect("write");
        keep.expect("kept").keep().expect("keep");
        String::from_utf8(out).expect("utf-8")
    }

    fn held(index: usize, body: [u8; 32], paths: &[&str], all: &[ReportFinding]) -> Held {
        let results = paths
            .iter()
            .map(|p| {
                let findings = all
                    .iter()
                    .filter(|f| f.validator == NAMES[index] && f.finding.path == *p)
                    .map(|f| f.finding.clone())
                    .collect();
                KeptResult::of(&FileResult::new(*p, findings))
            })
            .collect();
        Held {
            index,
            body,
            results,
        }
    }

    #[test]
    fn a_report_spliced_from_kept_findings_is_the_report_written_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        use Severity::{Error, Warning};
        let before = vec![
            found(0, "a.py", "L1", Error),
            found(1, "a.py", "T1", Warning),
            found(0, "b.py", "L2", Warning),
            found(1, "c.py", "T2", Error),
            found(0, "d.py", "L3", Error),
            found(1, "d.py", "T3", Error),
            found(1, "e.py", "T4", Warning),
            found(1, "f.py", "T5", Warning),
        ];
        write_keeping(dir.path(), &report(&root, before.clone()), [LINT, TYPES]);
        let kept = Arc::new(Rendered::open(dir.path(), &root).expect("kept"));

        // b.py changed: lint checked it again, finding L2 gone and L9 new, and types now has
        // a finding there, from the per-file cache. d.py was deleted. Everything else was
        // answered by the records the kept findings were made of.
        let checked = vec![
            found(0, "b.py", "L9", Error),
            found(1, "b.py", "T9", Warning),
        ];
        let mut spliced = report(&root, checked.clone());
        let aside = vec![
            held(0, LINT, &["a.py", "c.py", "e.py", "f.py"], &before),
            held(1, TYPES, &["a.py", "c.py", "e.py", "f.py"], &before),
        ];
        let reuse = splice(&mut spliced, aside, &[], &kept).expect("spliced");
        spliced.sort();
        let intact: Vec<&str> = reuse
            .intact
            .iter()
            .flatten()
            .map(|s| s.path.as_str())
            .collect();
        assert_eq!(intact, ["a.py", "c.py", "e.py", "f.py"]);
        spliced.reused = Some(reuse);

        let after: Vec<ReportFinding> = before
            .iter()
            .filter(|f| !["b.py", "d.py"].contains(&f.finding.path.as_str()))
            .cloned()
            .chain(checked)
            .collect();
        let whole = report(&root, after);
        let new_bodies = [[3; 32], TYPES];
        let kept_dir = dir.path().join("whole");
        let expected = write_keeping(&kept_dir, &whole, new_bodies);
        assert_eq!(write_keeping(dir.path(), &spliced, new_bodies), expected);
        assert_eq!(spliced.findings_hash(), whole.findings_hash());
        for s in Severity::ALL {
            assert_eq!(spliced.count(s), whole.count(s), "{s:?}");
        }
        // What the splice kept is what the whole report kept, spans and all.
        let again = Rendered::open(dir.path(), &root).expect("kept again");
        let once = Rendered::open(&kept_dir, &root).expect("kept whole");
        assert_eq!(again.spans(), once.spans());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        again.copy_to(&mut a).expect("copy");
        once.copy_to(&mut b).expect("copy");
        assert_eq!(a, b);

        // A validator whose results are another record's has its kept findings replaced.
        let mut other = report(&root, Vec::new());
        let aside = vec![held(1, [9; 32], &["a.py", "c.py"], &before)];
        let back = splice(&mut other, aside, &[], &kept).expect_err("nothing is of its records");
        assert_eq!(back.len(), 1, "given back as it was");
    }

    #[test]
    fn unread_results_of_another_record_are_not_spliced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        let before = vec![found(0, "a.py", "L1", Severity::Error)];
        write_keeping(dir.path(), &report(&root, before.clone()), [LINT, TYPES]);
        let kept = Arc::new(Rendered::open(dir.path(), &root).expect("kept"));
        let head = |body| crate::cache::RecordHead {
            keys: [0; 32],
            body,
            settled: i64::MIN,
            findings: 1,
            errors: 1,
            inputs: Vec::new(),
            paths: vec!["a.py".into()],
            artifacts: Vec::new(),
        };
        let unread = |body| {
            vec![(
                0,
                Box::new(Unread {
                    slot: [0; 32],
                    head: head(body),
                }),
            )]
        };
        let mut r = report(&root, Vec::new());
        assert!(splice(&mut r, Vec::new(), &unread([5; 32]), &kept).is_err());
        let reuse = splice(&mut r, Vec::new(), &unread(LINT), &kept).expect("spliced");
        assert_eq!(reuse.intact.map(|i| i.len()), Some(1));
        assert_eq!(reuse.counts, kept.counts());
    }
}
