//! The JSON report, version [`SCHEMA_VERSION`], documented in `docs/report-schema.md`.
//!
//! Dedicated serialisable types keep the schema explicit: renaming a field of the report's
//! internal types cannot silently change what scripts read.

use super::{Report, ReportFinding, Status, ValidatorReport};
use crate::rendered::{Keeping, Reuse, Spans};
use serde::Serialize;
use std::io::Write;

/// Bumped on any change that could break a reader: a field removed, renamed or retyped.
/// Adding a field is not a breaking change.
pub const SCHEMA_VERSION: u32 = 2;

/// The report; its `findings` are the finding list in a test and an empty array otherwise,
/// for [`write()`] to put them in its place.
#[derive(Serialize)]
struct JsonReport<'a, F> {
    schema_version: u32,
    status: &'static str,
    validators: Vec<JsonValidator<'a>>,
    findings: F,
    warnings: &'a [String],
    fixed_files: &'a [String],
    baselines_written: &'a [String],
    interrupted: Option<&'static str>,
    duration_ms: u64,
    critical_path: &'a [String],
    suppressed: Vec<JsonSuppressed<'a>>,
    /// Only in a sharded run's report.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<JsonShard<'a>>,
    /// Only in a merged report with shards missing.
    #[serde(skip_serializing_if = "<[u32]>::is_empty")]
    missing_shards: &'a [u32],
}

#[derive(Serialize)]
struct JsonShard<'a> {
    index: u32,
    count: u32,
    run_id: &'a str,
}

#[derive(Serialize)]
struct JsonSuppressed<'a> {
    by: &'a str,
    count: usize,
}

#[derive(Serialize)]
struct JsonValidator<'a> {
    name: &'a str,
    dimension: Option<&'a str>,
    version: Option<&'a str>,
    tool: Option<&'a str>,
    status: &'static str,
    skip_reason: Option<&'static str>,
    duration_ms: u64,
    files: u32,
    files_done: u32,
    cached_files: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    dependents: Option<u32>,
    findings: u32,
    partial: bool,
    message: &'a str,
    stderr_tail: Option<&'a str>,
    attempts: Vec<JsonAttempt<'a>>,
    /// Only in a sharded run's report: the files whose results arrived, which a merged
    /// report's JUnit cases need.
    #[serde(skip_serializing_if = "Option::is_none")]
    checked: Option<&'a [String]>,
}

#[derive(Serialize)]
struct JsonAttempt<'a> {
    status: &'static str,
    message: &'a str,
    duration_ms: u64,
}

/// A finding as the report shows it: what [`write_findings`] writes, which a test holds equal.
#[cfg(test)]
#[derive(Serialize)]
struct JsonFinding<'a> {
    validator: &'a str,
    path: &'a str,
    line: u32,
    column: u32,
    end_line: Option<u32>,
    end_column: Option<u32>,
    rule: &'a str,
    severity: &'static str,
    message: &'a str,
    help_url: Option<&'a str>,
    artifacts: Vec<JsonArtifact<'a>>,
}

#[cfg(test)]
#[derive(Serialize)]
struct JsonArtifact<'a> {
    kind: &'a str,
    path: &'a str,
}

/// The report as pretty-printed JSON, ending in a newline.
pub fn render(report: &Report) -> String {
    let mut text = Vec::new();
    write(report, &mut text, &mut None).expect("writing to memory never fails");
    String::from_utf8(text).expect("serde_json writes UTF-8")
}

/// [`render`] straight into `out`, for reports of tens of megabytes: the findings are written
/// as they are serialised, never held whole. The findings array is also written into `keep`,
/// if given, with where each path's findings are, and `keep` is dropped should writing there
/// fail. A report that reuses kept findings ([`Report::reused`]) copies them: all of them, or
/// the intact paths' with its own findings written between. A report file the kept findings
/// are linked in gets room before them ([`crate::rendered::with_room`]), so that the next run
/// can write around them even when its head comes out longer (a warm run slower than this
/// one by a digit of milliseconds).
pub fn write(
    report: &Report,
    out: &mut dyn Write,
    keep: &mut Option<Keeping>,
) -> std::io::Result<()> {
    let (mut head, tail) = around(report)?;
    if keep.as_ref().is_some_and(Keeping::links_report) {
        head = crate::rendered::with_room(&head);
    }
    let mut blocks = Blocks::new(out);
    blocks.write_all(&head)?;
    blocks.hand_on()?;
    if let Some(keep) = keep.as_mut() {
        keep.starts_at(head.len() as u64);
    }
    match &report.reused {
        Some(Reuse {
            kept, intact: None, ..
        }) => kept.copy_to(blocks.sink)?,
        Some(reuse) => write_spliced(blocks.sink, &report.findings, reuse, keep)?,
        None => write_findings_beside(blocks.sink, &report.findings, keep)?,
    }
    blocks.write_all(&tail)?;
    blocks.flush()
}

/// The report without its findings: what comes before the array (up to its `[`), and what
/// comes after it (from the `,` after its `]`, with the final newline). The rest of the report
/// is small; the findings go where it has an empty array.
pub fn around(report: &Report) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    let mut head =
        serde_json::to_vec_pretty(&document(report, [(); 0])).map_err(std::io::Error::from)?;
    let at = head
        .windows(FINDINGS.len())
        .position(|w| w == FINDINGS)
        .ok_or_else(|| std::io::Error::other("the report has no findings array"))?;
    let mut tail = head.split_off(at + FINDINGS.len());
    tail.push(b'\n');
    head.truncate(at + FINDINGS.len() - 2);
    Ok((head, tail))
}

/// Blocks of the findings waiting to be written, at most: the memory a report takes beyond its
/// findings stays about a megabyte, however many there are.
const QUEUED: usize = 4;

/// [`write_findings`] into `out`, serialised on a thread of its own while the blocks before are
/// written: on a 16 MB report each half of the work took about as long as the other. Written
/// blocks go back to the serialising thread to be filled again.
fn write_findings_beside(
    out: &mut dyn Write,
    findings: &[ReportFinding],
    keep: &mut Option<Keeping>,
) -> std::io::Result<()> {
    let (full, filled) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED);
    let (empty, emptied) = std::sync::mpsc::sync_channel::<Vec<u8>>(QUEUED);
    let mut spans = keep.as_ref().map(Keeping::new_spans);
    std::thread::scope(|scope| {
        let spans = &mut spans;
        let serialising = scope.spawn(move || {
            let mut blocks = Counted::new(Blocks::new(Handing { full, emptied }));
            write_findings(&mut blocks, findings, spans.as_mut())?;
            blocks.out.hand_on()
        });
        let mut written = Ok(());
        let mut to = Both {
            out: &mut *out,
            keep: &mut *keep,
        };
        for mut block in filled.iter() {
            written = to.write_all(&block);
            if written.is_err() {
                break;
            }
            block.clear();
            // The serialising thread may have finished: a block it no longer wants is freed.
            let _ = empty.try_send(block);
        }
        // Dropping the receiver stops a thread still serialising after a failed write.
        drop(filled);
        let serialised = serialising
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        written.and(serialised)
    })?;
    if let (Some(keep), Some(spans)) = (keep.as_mut(), spans) {
        keep.spans(spans);
    }
    Ok(())
}

/// The findings array of a report that reuses kept findings in part: the spans of paths kept
/// intact copied from the kept array, and `findings` (sorted, on other paths) written between
/// them, in path order. Into `keep` too, with the spans of what was written.
fn write_spliced(
    out: &mut dyn Write,
    findings: &[ReportFinding],
    reuse: &Reuse,
    keep: &mut Option<Keeping>,
) -> std::io::Result<()> {
    let intact = reuse.intact.as_deref().unwrap_or_default();
    let mut spans = keep.as_ref().map(Keeping::new_spans);
    let mut to = Counted::new(Both { out, keep });
    to.write_all(b"[")?;
    let (mut i, mut j) = (0, 0);
    while i < intact.len() || j < findings.len() {
        if to.written > 1 {
            to.write_all(b",")?;
        }
        let kept_first = match (intact.get(i), findings.get(j)) {
            (Some(span), Some(f)) => span.path.as_str() < f.finding.path.as_str(),
            (kept, _) => kept.is_some(),
        };
        if kept_first {
            // Spans side by side in the kept array, with no new path between, are one copy.
            let first = i;
            i += 1;
            while intact.get(i).is_some_and(|span| {
                span.start == intact[i - 1].end + 1
                    && findings
                        .get(j)
                        .is_none_or(|f| span.path.as_str() < f.finding.path.as_str())
            }) {
                i += 1;
            }
            let (from, at) = (intact[first].start, to.written);
            reuse.kept.copy_range(from, intact[i - 1].end, &mut to)?;
            if let Some(spans) = spans.as_mut() {
                for span in &intact[first..i] {
                    spans.copied(&reuse.kept, span, at + (span.start - from));
                }
            }
        } else {
            let path = findings[j].finding.path.as_str();
            let end = j + findings[j..].partition_point(|f| f.finding.path == path);
            write_elements(&mut to, &findings[j..end], spans.as_mut())?;
            j = end;
        }
    }
    to.write_all(if to.written > 1 { b"\n  ]" } else { b"]" })?;
    if let (Some(keep), Some(spans)) = (to.out.keep.as_mut(), spans) {
        keep.spans(spans);
    }
    Ok(())
}

/// Writes to the report and to the findings being kept, which are dropped should writing
/// there fail.
struct Both<'a> {
    out: &'a mut dyn Write,
    keep: &'a mut Option<Keeping>,
}

impl Write for Both<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write_all(buf)?;
        if self
            .keep
            .as_mut()
            .is_some_and(|k| k.write_all(buf).is_err())
        {
            *self.keep = None;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A writer that counts the bytes written through it.
struct Counted<W> {
    out: W,
    written: u64,
}

impl<W: Write> Counted<W> {
    fn new(out: W) -> Counted<W> {
        Counted { out, written: 0 }
    }
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The empty findings array in the pretty-printed report: a key at the top level is the only
/// one indented by exactly two spaces, and a string never holds a raw newline.
const FINDINGS: &[u8] = b"\n  \"findings\": []";

/// The findings array, written by hand as serde writes a test's `JsonFinding`s at that depth.
/// It is nearly all of a large report, and serde's work per field (a key, its indent, a
/// separator) was most of the time a warm run spent writing one. Strings and numbers are still written by
/// serde_json, so escaping cannot differ. Each finding's place is noted in `spans`.
fn write_findings<W: Write>(
    out: &mut Counted<W>,
    findings: &[ReportFinding],
    spans: Option<&mut Spans>,
) -> std::io::Result<()> {
    if findings.is_empty() {
        return out.write_all(b"[]");
    }
    out.write_all(b"[")?;
    write_elements(out, findings, spans)?;
    out.write_all(b"\n  ]")
}

/// The findings as elements of the findings array, separated by commas; each one's place is
/// noted in `spans`.
fn write_elements<W: Write>(
    out: &mut Counted<W>,
    findings: &[ReportFinding],
    mut spans: Option<&mut Spans>,
) -> std::io::Result<()> {
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let start = out.written;
        write_element(out, f)?;
        if let Some(spans) = spans.as_mut() {
            spans.note(&f.finding.path, &f.validator, start, out.written);
        }
    }
    Ok(())
}

fn write_element(out: &mut impl Write, f: &ReportFinding) -> std::io::Result<()> {
    let finding = &f.finding;
    out.write_all(b"\n    {")?;
    out.write_all(b"\n      \"validator\": ")?;
    scalar(out, f.validator.as_str())?;
    out.write_all(b",\n      \"path\": ")?;
    scalar(out, finding.path.as_str())?;
    out.write_all(b",\n      \"line\": ")?;
    scalar(out, finding.line)?;
    out.write_all(b",\n      \"column\": ")?;
    scalar(out, finding.column)?;
    out.write_all(b",\n      \"end_line\": ")?;
    scalar(out, finding.end_line)?;
    out.write_all(b",\n      \"end_column\": ")?;
    scalar(out, finding.end_column)?;
    out.write_all(b",\n      \"rule\": ")?;
    scalar(out, finding.rule.as_str())?;
    out.write_all(b",\n      \"severity\": ")?;
    scalar(out, finding.severity.as_str())?;
    out.write_all(b",\n      \"message\": ")?;
    scalar(out, finding.message.as_str())?;
    out.write_all(b",\n      \"help_url\": ")?;
    scalar(out, finding.help_url.as_deref())?;
    out.write_all(b",\n      \"artifacts\": ")?;
    if finding.artifacts.is_empty() {
        out.write_all(b"[]")?;
    } else {
        for (j, a) in finding.artifacts.iter().enumerate() {
            out.write_all(if j == 0 {
                b"[\n        {"
            } else {
                b",\n        {"
            })?;
            out.write_all(b"\n          \"kind\": ")?;
            scalar(out, a.kind.as_str())?;
            out.write_all(b",\n          \"path\": ")?;
            scalar(out, a.path.as_str())?;
            out.write_all(b"\n        }")?;
        }
        out.write_all(b"\n      ]")?;
    }
    out.write_all(b"\n    }")
}

/// A string, number or `null`, as serde_json writes it.
fn scalar(out: &mut impl Write, value: impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer(out, &value).map_err(std::io::Error::from)
}

fn document<F>(report: &Report, findings: F) -> JsonReport<'_, F> {
    JsonReport {
        schema_version: SCHEMA_VERSION,
        status: report.status().as_str(),
        validators: report
            .validators
            .iter()
            .map(|v| validator(v, report.shard.is_some()))
            .collect(),
        findings,
        warnings: &report.warnings,
        fixed_files: &report.fixed_files,
        baselines_written: &report.baselines_written,
        interrupted: report.interrupted.map(|s| s.name),
        duration_ms: millis(report.elapsed),
        critical_path: &report.critical_path,
        suppressed: report
            .suppressed
            .iter()
            .map(|s| JsonSuppressed {
                by: &s.by,
                count: s.count,
            })
            .collect(),
        missing_shards: &report.missing_shards,
        shard: report.shard.as_ref().map(|s| JsonShard {
            index: s.index,
            count: s.count,
            run_id: &s.run_id,
        }),
    }
}

/// The size of the blocks [`Blocks`] hands on.
const BLOCK: usize = 256 * 1024;

/// Gathers serde_json's many small writes (a key, a colon, an indent) into blocks. Its own type
/// lets each write compile to an append; through `dyn Write` each was a call, and they were a
/// third of a large report's cost.
struct Blocks<S: Sink> {
    block: Vec<u8>,
    sink: S,
}

/// Where [`Blocks`] hands its full blocks.
trait Sink {
    /// Takes `block`'s bytes, leaving it empty to be filled again.
    fn take(&mut self, block: &mut Vec<u8>) -> std::io::Result<()>;

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink for &mut dyn Write {
    fn take(&mut self, block: &mut Vec<u8>) -> std::io::Result<()> {
        self.write_all(block)?;
        block.clear();
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Write::flush(*self)
    }
}

/// The thread writing the report ([`write_findings_beside`]), which gives written blocks back.
struct Handing {
    full: std::sync::mpsc::SyncSender<Vec<u8>>,
    emptied: std::sync::mpsc::Receiver<Vec<u8>>,
}

impl Sink for Handing {
    fn take(&mut self, block: &mut Vec<u8>) -> std::io::Result<()> {
        let next = self
            .emptied
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BLOCK));
        self.full
            .send(std::mem::replace(block, next))
            .map_err(|_| std::io::Error::other("the report's writer stopped"))
    }
}

impl<S: Sink> Blocks<S> {
    fn new(sink: S) -> Blocks<S> {
        Blocks {
            block: Vec::with_capacity(BLOCK),
            sink,
        }
    }

    fn hand_on(&mut self) -> std::io::Result<()> {
        self.sink.take(&mut self.block)
    }
}

impl<S: Sink> Write for Blocks<S> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if self.block.len() + buf.len() > BLOCK {
            self.hand_on()?;
        }
        self.block.extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.hand_on()?;
        self.sink.flush()
    }
}

fn validator(v: &ValidatorReport, sharded: bool) -> JsonValidator<'_> {
    JsonValidator {
        name: &v.name,
        dimension: v.dimension.as_deref(),
        version: v.version.as_deref(),
        tool: v.tool.as_deref(),
        status: v.status.as_str(),
        skip_reason: match v.status {
            Status::Skipped(skip) => Some(skip.as_str()),
            _ => None,
        },
        duration_ms: millis(v.duration),
        files: v.files,
        files_done: v.files_done(),
        cached_files: v.cached_files,
        dependents: v.dependents,
        findings: v.findings,
        partial: v.partial,
        message: &v.message,
        stderr_tail: v.stderr_tail.as_deref(),
        attempts: v
            .attempts
            .iter()
            .map(|a| JsonAttempt {
                status: a.status.as_str(),
                message: &a.message,
                duration_ms: millis(a.duration),
            })
            .collect(),
        checked: sharded.then_some(v.checked.as_slice()),
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
fn finding(f: &ReportFinding) -> JsonFinding<'_> {
    JsonFinding {
        validator: &f.validator,
        path: &f.finding.path,
        line: f.finding.line,
        column: f.finding.column,
        end_line: f.finding.end_line,
        end_column: f.finding.end_column,
        rule: &f.finding.rule,
        severity: f.finding.severity.as_str(),
        message: &f.finding.message,
        help_url: f.finding.help_url.as_deref(),
        artifacts: f
            .finding
            .artifacts
            .iter()
            .map(|a| JsonArtifact {
                kind: &a.kind,
                path: &a.path,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::ReportFinding;
    use protocol::{Artifact, Finding, Severity};

    #[test]
    fn a_report_of_many_blocks_is_the_json_serde_writes() {
        let mut report = Report::new("/r".into(), &["lint".to_owned()], Vec::new());
        for i in 0..6000 {
            let message = format!("line {i}: a \"quoted\" message\twith\\escapes é");
            report.findings.push(ReportFinding {
                validator: "lint".into(),
                finding: Finding::new(
                    format!("pkg/m{}.py", i % 97),
                    i,
                    1,
                    "R1",
                    Severity::Error,
                    message,
                ),
            });
        }
        report.findings[7].finding.artifacts = vec![
            Artifact {
                kind: "diff".into(),
                path: "a/b.png".into(),
            },
            Artifact {
                kind: "actual".into(),
                path: "c \"d\".png".into(),
            },
        ];
        report.findings[8].finding.end_line = Some(9);
        report.findings[8].finding.end_column = Some(2);
        report.findings[8].finding.help_url = Some("https://x.test/r1".into());
        let written = render(&report);
        assert!(written.len() > 3 * BLOCK, "{} bytes", written.len());
        assert!(
            written == by_serde(&report),
            "the report differs from serde's"
        );
        report.findings.clear();
        assert!(
            render(&report) == by_serde(&report),
            "an empty report differs"
        );
    }

    /// A destination that takes `room` bytes, then fails as a full disk does.
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if buf.len() > self.room {
                return Err(std::io::Error::from_raw_os_error(libc::ENOSPC));
            }
            self.room -= buf.len();
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_that_fails_midway_ends_the_report_with_its_error() {
        let mut report = Report::new("/r".into(), &["lint".to_owned()], Vec::new());
        for i in 0..20_000 {
            report.findings.push(ReportFinding {
                validator: "lint".into(),
                finding: Finding::new("m.py", i, 1, "R1", Severity::Error, "a message"),
            });
        }
        for room in [10, 2 * BLOCK + 100] {
            let error =
                write(&report, &mut Full { room }, &mut None).expect_err("the disk is full");
            assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
        }
    }

    /// The report as serde writes it, its findings as [`JsonFinding`]s.
    fn by_serde(report: &Report) -> String {
        let findings: Vec<JsonFinding<'_>> = report.findings.iter().map(finding).collect();
        serde_json::to_string_pretty(&document(report, findings)).expect("serialises") + "\n"
    }
}
