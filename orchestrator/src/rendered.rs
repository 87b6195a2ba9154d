//! The findings of a root's last JSON report, as written, kept so that the next run with the
//! same findings copies them instead of reading, sorting and writing them again.
//!
//! On a warm Django run the findings are 38,081, 15 MB of JSON. Reading their records, sorting
//! them and writing them was most of the run's time, nearly all of it spent touching memory for
//! the first time, which costs 5 to 14 µs a page on the virtual machines this was measured on.
//!
//! What decides a report's findings is each validator's results. When every validator that
//! found something had, as its results, exactly those of its run record, the digests of those
//! records' bodies ([`crate::cache::RecordHead::body`]) and the validators' names say what the
//! findings are: these are the report's [`Makings`]. The findings are kept under them, with
//! the coordinator's own identity (another build may render them otherwise) and the root they
//! are relative to. A later run whose validators answer from those records leaves the
//! records' bodies unread ([`crate::event::Unread`]), and if what it ends with is made the same
//! way, its report copies the kept findings; otherwise the unread results are read after all.
//!
//! A report whose validators answered most files from those records, but not all (a file was
//! changed), splices: each path's findings are kept with where they are and which validators
//! found them ([`PathSpan`]), so the findings of paths every such validator answered from the
//! same record are copied as they are, and only the others are written again ([`Reuse`]).
//! Without that, one changed file in ten copies of Django had the report read, sort and write
//! 378,441 findings (160 MB) after pyright ended.
//!
//! One file per root in the cache directory, `rendered/<digest of the root>` ([`crate::kept`]).
//! When the JSON report is a file on the same filesystem, the findings are not copied there:
//! the report itself is linked beside it (`<digest>.json`, a hard link made before the report
//! takes its place), and the kept file says where in it the array is, with the report's
//! stamp; a report changed or replaced since is not read. On ten copies of Django that is
//! 160 MB less to write after every change. A report with those same findings, to that same
//! file, is not written again at all: only its two ends around the findings are
//! ([`Rendered::write_around`]).
//!
//! Layout: the 8 bytes `orchfnd4`, the 32-byte id, the 32-byte digest of the findings
//! ([`crate::history::findings_hash`]), how many findings there are of each severity (u32,
//! little-endian, in the order of [`Severity::ALL`]), the number of makings (u32), each as
//! its name's length (u32), the name and the 32-byte body digest; then the findings array as
//! the JSON report writes it, unless it is in the linked report; then the spans (their number
//! as a u32, each as its path's length (u32), the path, its start and end in the array and
//! the bits of the makings that found something there (u64 each)); then, for a linked
//! report, where the array starts in it (u64) and its stamp ([`kept::Stamp`]); and last the
//! lengths of the array, of the spans (0 when there are none) and of the link (0 when there
//! is none), u64 each, by which a file cut short is known.

use crate::digest::Hash;
use crate::kept::{self, Kind};
use protocol::Severity;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"orchfnd4";
/// The lengths that end a kept file.
const TRAILER: u64 = 24;
/// The smallest page a kernel writes whole ([`Rendered::write_around`]); larger pages are
/// multiples of it.
const PAGE: u64 = 4096;
/// The longest end of a report read back to be written around its findings: beyond a page it
/// cannot be written in one anyway, unless little of it changed.
const MOST_AROUND: u64 = 1 << 20;

/// What a report's findings were made of: each validator that found something, with the
/// digest of the record body its results all came from; sorted by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Makings(Vec<(String, Hash)>);

impl Makings {
    pub fn new(mut parts: Vec<(String, Hash)>) -> Makings {
        parts.sort();
        Makings(parts)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The id findings made this way are kept under, for this coordinator and root.
    fn id(&self, root: &Path) -> Option<Hash> {
        let me = std::env::current_exe().ok()?;
        let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 rendered findings");
        h.update(validators::tools::fingerprint(&me)?.as_bytes());
        field(&mut h, root.as_os_str().as_encoded_bytes());
        for (name, body) in &self.0 {
            field(&mut h, name.as_bytes());
            h.update(body);
        }
        Some(*h.finalize().as_bytes())
    }
}

fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Kept findings, open.
#[derive(Debug)]
pub struct Rendered {
    /// The file the findings array is in: the kept file, or the report linked beside it.
    file: File,
    /// Where the findings start and end there.
    start: u64,
    end: u64,
    /// The kept file, and where the spans are in it and how long they are (0: none).
    kept: File,
    spans_at: u64,
    spans: u64,
    /// The kept file's path, and when the findings are in a linked report, that report's
    /// place in it.
    path: PathBuf,
    link: Option<Link>,
    makings: Makings,
    /// Their [`crate::history::findings_hash`].
    pub findings_hash: Hash,
    /// How many there are of each severity, in the order of [`Severity::ALL`].
    counts: [u32; 3],
}

/// Two are equal when they hold the same findings made the same way.
impl PartialEq for Rendered {
    fn eq(&self, other: &Rendered) -> bool {
        self.makings == other.makings && self.findings_hash == other.findings_hash
    }
}

impl Rendered {
    /// The findings kept for `root` in the cache directory `dir`, if any were kept by this
    /// coordinator; anything unreadable or damaged is as good as none.
    pub fn open(dir: &Path, root: &Path) -> Option<Rendered> {
        let path = kept::file_for(dir, Kind::Rendered, root);
        let mut file = File::open(&path).ok()?;
        // The head is small; a file too short for its head is damaged.
        let mut head = vec![0; 64 * 1024];
        let len = read_up_to(&mut file, &mut head).ok()?;
        let mut r = &head[..len];
        let mut take = |n: usize| -> Option<&[u8]> {
            let (taken, rest) = r.split_at_checked(n)?;
            r = rest;
            Some(taken)
        };
        if take(8)? != MAGIC {
            return None;
        }
        let id: Hash = take(32)?.try_into().ok()?;
        let findings_hash: Hash = take(32)?.try_into().ok()?;
        let mut counts = [0; 3];
        for count in &mut counts {
            *count = u32::from_le_bytes(take(4)?.try_into().ok()?);
        }
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?);
        let mut parts = Vec::new();
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let name = std::str::from_utf8(take(n)?).ok()?.to_owned();
            parts.push((name, take(32)?.try_into().ok()?));
        }
        let after_head = (len - r.len()) as u64;
        let makings = Makings(parts);
        if makings.id(root)? != id {
            return None;
        }
        let trailer_at = file.metadata().ok()?.len().checked_sub(TRAILER)?;
        let mut trailer = [0; TRAILER as usize];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut trailer, trailer_at).ok()?;
        let [findings, spans, link] = [0, 8, 16]
            .map(|at| u64::from_le_bytes(trailer[at..at + 8].try_into().expect("8 bytes")));
        let (array, start, spans_at, linked_at) = match link {
            0 => (
                file.try_clone().ok()?,
                after_head,
                after_head.checked_add(findings)?,
                None,
            ),
            _ => {
                let at = after_head.checked_add(spans)?;
                let mut bytes = vec![0; usize::try_from(link).ok()?];
                std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes, at).ok()?;
                let (start, stamp) = bytes.split_at_checked(8)?;
                let mut r = kept::Reader::new(stamp);
                let stamp = kept::Stamp::take(&mut r)??;
                let report = File::open(linked(&path)).ok()?;
                let now = kept::Stamp::of_file(&report);
                if !r.is_empty() || !now.is_some_and(|now| now.same_contents(&stamp)) {
                    return None;
                }
                let start = u64::from_le_bytes(start.try_into().ok()?);
                let link = Link { at, stamp };
                (report, start, after_head, Some(link))
            }
        };
        let end = start.checked_add(findings)?;
        let size = array.metadata().ok()?.len();
        if spans_at.checked_add(spans)?.checked_add(link) != Some(trailer_at) || end > size {
            return None;
        }
        Some(Rendered {
            file: array,
            start,
            end,
            kept: file,
            spans_at,
            spans,
            path,
            link: linked_at,
            makings,
            findings_hash,
            counts,
        })
    }

    /// Puts `head` and `tail` around these findings in the report they are linked in, when
    /// `target` is that report, unchanged since: the findings stay where they are, and only
    /// the bytes of the report's two ends that differ are written, each end padded at the end
    /// of its last line with the spaces it came out shorter by (JSON ignores them). On Django
    /// that is a few bytes written instead of a 16 MB copy and the removal of the old one, a
    /// tenth of a warm run.
    ///
    /// `Ok(false)`: it cannot be done, and the report is to be written whole. The findings are
    /// linked in another file, or none; `target` is another file or was changed; `head` is
    /// longer than the one there; or either write would cross a page.
    ///
    /// A report written whole is renamed into place, so a killed run leaves the old one or the
    /// new one. Here the tail is written first, then the head, each in one write within one
    /// page, which the kernel does whole or not at all (a fatal signal stops a write only
    /// between pages): a run killed at any point leaves a whole report, at worst with the new
    /// tail and the old head.
    pub fn write_around(&self, target: &Path, head: &[u8], tail: &[u8]) -> std::io::Result<bool> {
        use std::os::unix::fs::FileExt;
        let Some(link) = &self.link else {
            return Ok(false);
        };
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(target);
        let Ok(report) = opened else {
            return Ok(false);
        };
        let meta = report.metadata()?;
        let there = kept::Stamp::of_file(&report);
        let fits = head.len() as u64 <= self.start && self.start <= MOST_AROUND;
        let old_tail = meta.len().saturating_sub(self.end);
        if !meta.is_file()
            || !there.is_some_and(|s| s.same_contents(&link.stamp))
            || !fits
            || old_tail > MOST_AROUND
        {
            return Ok(false);
        }
        let read = |at: u64, len: u64| -> std::io::Result<Vec<u8>> {
            let mut bytes = vec![0; usize::try_from(len).unwrap_or(0)];
            report.read_exact_at(&mut bytes, at)?;
            Ok(bytes)
        };
        let (old_head, old_tail) = (read(0, self.start)?, read(self.end, old_tail)?);
        let tail = padded(tail, old_tail.len());
        let head = padded(head, old_head.len());
        let writes = [
            changed(&old_tail, &tail).map(|(at, bytes)| (self.end + at, bytes)),
            changed(&old_head, &head),
        ];
        let one_page =
            |&(at, bytes): &(u64, &[u8])| at / PAGE == (at + bytes.len() as u64 - 1) / PAGE;
        if !writes.iter().flatten().all(one_page) {
            return Ok(false);
        }
        for (at, bytes) in writes.into_iter().flatten() {
            report.write_all_at(bytes, at)?;
        }
        let stamp = kept::Stamp::of_file(&report).ok_or_else(|| std::io::Error::other("gone"))?;
        self.restamp(link.at, self.start, &stamp)?;
        Ok(true)
    }

    /// Makes `written`, a report whose findings array starts at `start` and holds these
    /// findings, the report they are linked in, so that the next run can write around them
    /// ([`Rendered::write_around`]). Called for a report written whole from these findings
    /// before it takes its place; does nothing when they are not kept linked.
    pub fn relink(&self, written: &Path, start: u64) -> std::io::Result<()> {
        let Some(link) = &self.link else {
            return Ok(());
        };
        let (temporary, stamp) = link_beside(&self.path, written)?;
        std::fs::rename(&temporary, linked(&self.path))?;
        self.restamp(link.at, start, &stamp)
    }

    /// Writes where the findings start in the linked report, and its stamp, over those in the
    /// kept file: the two have fixed lengths, so nothing else there moves.
    fn restamp(&self, at: u64, start: u64, stamp: &kept::Stamp) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut bytes = start.to_le_bytes().to_vec();
        kept::Stamp::put(Some(stamp), &mut bytes);
        let kept = std::fs::OpenOptions::new().write(true).open(&self.path)?;
        kept.write_all_at(&bytes, at)
    }

    /// How many findings there are of each severity, in the order of [`Severity::ALL`].
    pub fn counts(&self) -> [u32; 3] {
        self.counts
    }

    /// Whether `name`'s results with this record body are among what the findings were made
    /// of.
    pub fn lists(&self, name: &str, body: &Hash) -> bool {
        self.makings.0.iter().any(|(n, b)| n == name && b == body)
    }

    /// Whether these are the findings of a report made this way.
    pub fn answers(&self, makings: &Makings) -> bool {
        self.makings == *makings
    }

    /// Writes the findings array into `out`.
    pub fn copy_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        self.copy_range(0, self.end - self.start, out)
    }

    /// Writes the bytes from `start` to `end` of the findings array into `out`, in blocks of a
    /// quarter of a megabyte: few writes, and little memory touched.
    pub fn copy_range(&self, start: u64, end: u64, out: &mut dyn Write) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let (mut at, end) = (self.start + start, self.start + end);
        if end > self.end || at > end {
            return Err(std::io::Error::other("a span past the kept findings"));
        }
        let mut block = vec![0; (256 * 1024).min(usize::try_from(end - at).unwrap_or(0))];
        while at < end {
            let want = block
                .len()
                .min(usize::try_from(end - at).unwrap_or(usize::MAX));
            match self.file.read_at(&mut block[..want], at)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => {
                    out.write_all(&block[..n])?;
                    at += n as u64;
                }
            }
        }
        Ok(())
    }

    /// The body of `name`'s record the findings were made of, when it found something.
    pub fn body_of(&self, name: &str) -> Option<&Hash> {
        self.makings
            .0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b)
    }

    /// The name of the validator a [`PathSpan::found_by`] bit stands for.
    pub fn named_by_bit(&self, bit: u32) -> Option<&str> {
        self.makings.0.get(bit as usize).map(|(n, _)| n.as_str())
    }

    /// Where each path's findings are, in order; `None` when they were not kept or are
    /// damaged.
    pub fn spans(&self) -> Option<Vec<PathSpan>> {
        use std::os::unix::fs::FileExt;
        if self.spans == 0 {
            return None;
        }
        let mut bytes = vec![0; usize::try_from(self.spans).ok()?];
        self.kept.read_exact_at(&mut bytes, self.spans_at).ok()?;
        let mut r = &bytes[..];
        let mut take = |n: usize| -> Option<&[u8]> {
            let (taken, rest) = r.split_at_checked(n)?;
            r = rest;
            Some(taken)
        };
        let u64_at = |b: &[u8]| b.try_into().ok().map(u64::from_le_bytes);
        let count = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
        let mut spans = Vec::with_capacity(count.min(bytes.len() / 28));
        let length = self.end - self.start;
        for _ in 0..count {
            let n = u32::from_le_bytes(take(4)?.try_into().ok()?) as usize;
            let path = std::str::from_utf8(take(n)?).ok()?.to_owned();
            let (start, end) = (u64_at(take(8)?)?, u64_at(take(8)?)?);
            let found_by = u64_at(take(8)?)?;
            let after = spans
                .last()
                .is_none_or(|last: &PathSpan| last.path < path && last.end < start);
            if !after || start >= end || end > length {
                return None;
            }
            spans.push(PathSpan {
                path,
                start,
                end,
                found_by,
            });
        }
        r.is_empty().then_some(spans)
    }
}

/// Where a report the findings are linked in is described in the kept file: its place
/// there, and the stamp it had when the findings were kept.
#[derive(Debug)]
struct Link {
    at: u64,
    stamp: kept::Stamp,
}

/// How many spaces a report file the kept findings are linked in carries before them, at the
/// end of the line before `"findings"`: room for the head of a later run (longer durations,
/// say) to be written in place ([`Rendered::write_around`]) rather than the report whole again.
const ROOM: usize = 64;

/// `head` with 64 spaces of room to grow: what a report file the kept findings are to be
/// linked in starts with.
pub fn with_room(head: &[u8]) -> Vec<u8> {
    padded(head, head.len() + ROOM).into_owned()
}

/// The bytes of `new` from the first that differs from `old` to the last, with where they
/// start; `None` when the two are the same. A `new` longer than `old` differs to its end.
fn changed<'a>(old: &[u8], new: &'a [u8]) -> Option<(u64, &'a [u8])> {
    let first = old.iter().zip(new).position(|(a, b)| a != b);
    let first = first.unwrap_or(old.len().min(new.len()));
    let last = match new.len() > old.len() {
        true => new.len(),
        false => new.iter().zip(old).rposition(|(a, b)| a != b)? + 1,
    };
    (first < last).then(|| (first as u64, &new[first..last]))
}

/// `bytes` made `len` long, when shorter, with spaces before its last newline: trailing
/// spaces on a line of JSON. Bytes without a newline get them at the end.
fn padded(bytes: &[u8], len: usize) -> std::borrow::Cow<'_, [u8]> {
    if bytes.len() >= len {
        return bytes.into();
    }
    let at = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap_or(bytes.len());
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&bytes[..at]);
    out.resize(at + len - bytes.len(), b' ');
    out.extend_from_slice(&bytes[at..]);
    out.into()
}

/// Where one path's findings are in a kept findings array, from the first byte of its first
/// element (after the `[` or `,` before it) to the last of its last; and which validators found
/// something there, as bits of their places in the [`Makings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathSpan {
    pub path: String,
    pub start: u64,
    pub end: u64,
    pub found_by: u64,
}

/// How a report reuses the findings kept from the last one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reuse {
    pub kept: std::sync::Arc<Rendered>,
    /// `None`: every kept finding, as it is, and no other. Else the paths whose kept findings
    /// are copied as they are, in order; the report's own findings go between them.
    pub intact: Option<Vec<PathSpan>>,
    /// How many findings the report has of each severity, in the order of [`Severity::ALL`].
    pub counts: [u32; 3],
    pub findings_hash: Hash,
}

impl Reuse {
    /// Every kept finding, and no other.
    pub fn whole(kept: std::sync::Arc<Rendered>) -> Reuse {
        Reuse {
            counts: kept.counts,
            findings_hash: kept.findings_hash,
            kept,
            intact: None,
        }
    }

    /// How many of the report's findings are of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        let at = Severity::ALL.iter().position(|s| *s == severity);
        at.map_or(0, |at| self.counts[at] as usize)
    }
}

/// The spans of findings as they are written, for the findings kept with them.
#[derive(Debug)]
pub struct Spans {
    /// The validators' names in the order of their bits.
    names: Vec<String>,
    spans: Vec<PathSpan>,
    /// A validator without a bit (more than 64 found something) leaves no spans.
    whole: bool,
}

impl Spans {
    /// Notes a finding of `validator` on `path` written from `start` to `end` of the array.
    pub fn note(&mut self, path: &str, validator: &str, start: u64, end: u64) {
        let bit = match self.names.iter().position(|n| n == validator) {
            Some(at) if at < 64 => 1 << at,
            _ => {
                self.whole = false;
                return;
            }
        };
        match self.spans.last_mut() {
            Some(last) if last.path == path => {
                last.end = end;
                last.found_by |= bit;
            }
            _ => self.spans.push(PathSpan {
                path: path.to_owned(),
                start,
                end,
                found_by: bit,
            }),
        }
    }

    /// Notes a span copied from `kept`, now at `start`, its validators' bits given again in
    /// this order.
    pub fn copied(&mut self, kept: &Rendered, span: &PathSpan, start: u64) {
        let mut found_by = 0;
        for bit in (0..64).filter(|b| span.found_by & (1 << b) != 0) {
            match kept
                .named_by_bit(bit)
                .and_then(|name| self.names.iter().position(|n| n == name))
            {
                Some(at) if at < 64 => found_by |= 1 << at,
                _ => self.whole = false,
            }
        }
        self.spans.push(PathSpan {
            path: span.path.clone(),
            start,
            end: start + (span.end - span.start),
            found_by,
        });
    }
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    Ok(len)
}

/// Findings being kept: written as the report writes them, and put in place once the report
/// is complete. Those kept before are removed as soon as this starts: a run that ends without
/// keeping its findings leaves none, and the next run reads its results.
#[derive(Debug)]
pub struct Keeping {
    file: std::io::BufWriter<File>,
    /// Bytes of findings written, or, when they are the report's, counted.
    written: u64,
    /// Where each path's findings are, once told ([`Keeping::spans`]).
    spans: Option<Spans>,
    names: Vec<String>,
    temporary: PathBuf,
    target: PathBuf,
    /// The report the findings are in, when it is linked rather than copied.
    report: Option<Linking>,
    /// Removing the findings kept before, while these are written: replacing a file frees its
    /// pages on the spot (and ext4 writes the new one out first), which took 42 ms after the
    /// report on four copies of Django, where the findings are 64 MB.
    clearing: Option<std::thread::JoinHandle<()>>,
}

/// The report the kept findings are in: where its array starts, and the report linked under a
/// temporary name with its stamp, once both are known.
#[derive(Debug, Default)]
struct Linking {
    start: Option<u64>,
    linked: Option<(PathBuf, kept::Stamp)>,
}

/// Where the report the findings kept at `target` are in is linked.
fn linked(target: &Path) -> PathBuf {
    target.with_extension("json")
}

/// Links the report `written` under this process's temporary name for the link beside the
/// findings kept at `target`, to be renamed into place once they are; returns that name and
/// the report's stamp.
fn link_beside(target: &Path, written: &Path) -> std::io::Result<(PathBuf, kept::Stamp)> {
    let temporary = kept::temporary_for(&linked(target))?;
    let _ = std::fs::remove_file(&temporary);
    std::fs::hard_link(written, &temporary)?;
    let stamp = kept::Stamp::of(&temporary).ok_or_else(|| std::io::Error::other("gone"))?;
    Ok((temporary, stamp))
}

impl Keeping {
    /// Starts keeping findings made `makings`'s way, with their `findings_hash` and `counts`
    /// by severity, for `root` in the cache directory `dir`. With `report`, the file the JSON
    /// report is to replace ([`crate::cli::Staged`]): when it is on the same filesystem, the
    /// findings are not copied but the report is linked ([`Keeping::link`]).
    pub fn start(
        dir: &Path,
        root: &Path,
        makings: &Makings,
        findings_hash: &Hash,
        counts: [usize; 3],
        report: Option<&Path>,
    ) -> std::io::Result<Keeping> {
        let id = makings
            .id(root)
            .ok_or_else(|| std::io::Error::other("the coordinator cannot name itself"))?;
        let target = kept::file_for(dir, Kind::Rendered, root);
        let temporary = kept::temporary_for(&target)?;
        let created = File::create(&temporary)?;
        let report = report
            .filter(|report| same_filesystem(report, &created))
            .map(|_| Linking::default());
        let mut file = std::io::BufWriter::with_capacity(1 << 16, created);
        file.write_all(MAGIC)?;
        file.write_all(&id)?;
        file.write_all(findings_hash)?;
        for count in counts {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            file.write_all(&count.to_le_bytes())?;
        }
        file.write_all(&(makings.0.len() as u32).to_le_bytes())?;
        for (name, body) in &makings.0 {
            file.write_all(&(name.len() as u32).to_le_bytes())?;
            file.write_all(name.as_bytes())?;
            file.write_all(body)?;
        }
        let old = [target.clone(), linked(&target)];
        let clearing = std::thread::spawn(move || {
            old.iter().for_each(|old| drop(std::fs::remove_file(old)));
        });
        Ok(Keeping {
            file,
            written: 0,
            spans: None,
            names: makings.0.iter().map(|(n, _)| n.clone()).collect(),
            temporary,
            target,
            report,
            clearing: Some(clearing),
        })
    }

    /// Whether the findings are the report's own bytes, to be linked, not written here.
    #[cfg(test)]
    fn links(&self) -> bool {
        self.report.is_some()
    }

    /// Whether the findings are the report's own, linked rather than copied: its head then
    /// gets room to grow ([`with_room`]).
    pub fn links_report(&self) -> bool {
        self.report.is_some()
    }

    /// Where the findings array starts in the report.
    pub fn starts_at(&mut self, start: u64) {
        if let Some(report) = &mut self.report {
            report.start = Some(start);
        }
    }

    /// Links the report, written at `written` and about to take its place, beside the kept
    /// findings: before it takes its place, so that the link is to these bytes, whatever
    /// replaces the report later.
    pub fn link(&mut self, written: &Path) -> std::io::Result<()> {
        let Some(report) = &mut self.report else {
            return Ok(());
        };
        report.linked = Some(link_beside(&self.target, written)?);
        Ok(())
    }

    /// Spans to note the findings' paths in as they are written, to be given back
    /// ([`Keeping::spans`]).
    pub fn new_spans(&self) -> Spans {
        Spans {
            names: self.names.clone(),
            spans: Vec::new(),
            whole: true,
        }
    }

    /// Where each path's findings are in those written; without them, or with spans that miss
    /// a validator, the next report cannot splice.
    pub fn spans(&mut self, spans: Spans) {
        self.spans = Some(spans).filter(|s| s.whole);
    }

    /// Puts the findings written in place of those kept before.
    pub fn keep(mut self) -> std::io::Result<()> {
        let written = self.written;
        let mut spans = Vec::new();
        if let Some(s) = self.spans.take() {
            spans.extend_from_slice(&(s.spans.len() as u32).to_le_bytes());
            for span in &s.spans {
                spans.extend_from_slice(&(span.path.len() as u32).to_le_bytes());
                spans.extend_from_slice(span.path.as_bytes());
                for n in [span.start, span.end, span.found_by] {
                    spans.extend_from_slice(&n.to_le_bytes());
                }
            }
        }
        let mut link = Vec::new();
        let mut linking = None;
        if let Some(report) = &self.report {
            let (Some(start), Some((temporary, stamp))) = (report.start, &report.linked) else {
                return Err(std::io::Error::other("the report was not linked"));
            };
            link.extend_from_slice(&start.to_le_bytes());
            kept::Stamp::put(Some(stamp), &mut link);
            linking = Some(temporary.clone());
        }
        self.file.write_all(&spans)?;
        self.file.write_all(&link)?;
        for n in [written, spans.len() as u64, link.len() as u64] {
            self.file.write_all(&n.to_le_bytes())?;
        }
        self.file.flush()?;
        if let Some(clearing) = self.clearing.take() {
            let _ = clearing.join();
        }
        if let Some(temporary) = linking {
            std::fs::rename(&temporary, linked(&self.target))?;
        }
        std::fs::rename(&self.temporary, &self.target)
    }
}

/// Whether `report` (the file to be replaced, or where it is to be created) is on the
/// filesystem `kept` is on, so that it can be linked there.
fn same_filesystem(report: &Path, kept: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    let on = match std::fs::metadata(report) {
        Ok(meta) => meta.is_file().then(|| meta.dev()),
        Err(_) => {
            let parent = report.parent().filter(|p| !p.as_os_str().is_empty());
            std::fs::metadata(parent.unwrap_or(Path::new(".")))
                .ok()
                .map(|m| m.dev())
        }
    };
    on.is_some() && kept.metadata().ok().map(|m| m.dev()) == on
}

impl Write for Keeping {
    /// The findings' bytes, kept; counted only when they are the report's.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = match self.report {
            Some(_) => buf.len(),
            None => self.file.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for Keeping {
    /// Findings not kept leave no temporary file behind (kept ones were renamed away), and
    /// those kept before are gone when this returns.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.temporary);
        if let Some((temporary, _)) = self.report.as_mut().and_then(|r| r.linked.take()) {
            let _ = std::fs::remove_file(temporary);
        }
        if let Some(clearing) = self.clearing.take() {
            let _ = clearing.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(dir: &Path, root: &Path, makings: &Makings, findings: &[u8]) {
        let mut keeping =
            Keeping::start(dir, root, makings, &[7; 32], [1, 0, 2], None).expect("start");
        keeping.write_all(findings).expect("write");
        keeping.keep().expect("keep");
    }

    #[test]
    fn kept_findings_answer_only_what_made_them_for_their_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("ruff".into(), [2; 32]), ("bandit".into(), [1; 32])]);
        keep(dir.path(), root, &makings, b"[\n    {}\n  ]");
        let kept = Rendered::open(dir.path(), root).expect("kept");
        assert!(kept.answers(&Makings::new(vec![
            ("bandit".into(), [1; 32]),
            ("ruff".into(), [2; 32])
        ])));
        assert!(kept.lists("ruff", &[2; 32]));
        assert!(!kept.lists("ruff", &[1; 32]), "another record of ruff");
        assert!(!kept.answers(&Makings::new(vec![("ruff".into(), [2; 32])])));
        assert_eq!(kept.findings_hash, [7; 32]);
        assert_eq!(kept.counts(), [1, 0, 2]);
        let mut out = Vec::new();
        kept.copy_to(&mut out).expect("copy");
        assert_eq!(out, b"[\n    {}\n  ]");
        assert!(Rendered::open(dir.path(), Path::new("/src/other")).is_none());
        let leftovers = std::fs::read_dir(dir.path().join("rendered"))
            .expect("dir")
            .count();
        assert_eq!(leftovers, 1, "no temporary file is left");
        // Kept again over them, and the old file removed beside the writing.
        let again = Makings::new(vec![("ruff".into(), [3; 32])]);
        keep(dir.path(), root, &again, b"[]");
        let kept = Rendered::open(dir.path(), root).expect("kept again");
        assert!(kept.answers(&again) && !kept.answers(&makings));
        // A keeping abandoned leaves none: the next run reads its results.
        drop(Keeping::start(dir.path(), root, &again, &[7; 32], [0; 3], None).expect("start"));
        assert!(Rendered::open(dir.path(), root).is_none());
    }

    #[test]
    fn damaged_or_abandoned_findings_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("ruff".into(), [2; 32])]);
        let mut abandoned =
            Keeping::start(dir.path(), root, &makings, &[7; 32], [0; 3], None).expect("start");
        abandoned.write_all(b"[]").expect("write");
        drop(abandoned);
        assert!(Rendered::open(dir.path(), root).is_none());
        assert_eq!(
            std::fs::read_dir(dir.path().join("rendered"))
                .expect("dir")
                .count(),
            0
        );
        keep(dir.path(), root, &makings, b"[]");
        let path = kept::file_for(dir.path(), Kind::Rendered, root);
        let bytes = std::fs::read(&path).expect("read");
        for cut in [0, 8, 40, 75, 80, 90, bytes.len() - 9, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).expect("write");
            assert!(Rendered::open(dir.path(), root).is_none(), "cut at {cut}");
        }
        let mut other_id = bytes.clone();
        other_id[8] ^= 1;
        std::fs::write(&path, &other_id).expect("write");
        assert!(
            Rendered::open(dir.path(), root).is_none(),
            "kept by another build"
        );
    }

    #[test]
    fn spans_are_read_back_as_kept_and_damaged_ones_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("lint".into(), [2; 32]), ("style".into(), [3; 32])]);
        let findings = b"[\n    {a},\n    {b},\n    {c}\n  ]";
        let mut keeping =
            Keeping::start(dir.path(), root, &makings, &[7; 32], [3, 0, 0], None).expect("start");
        keeping.write_all(findings).expect("write");
        let mut spans = keeping.new_spans();
        spans.note("a.py", "lint", 1, 9);
        spans.note("a.py", "style", 10, 18);
        spans.note("b.py", "style", 19, 27);
        keeping.spans(spans);
        keeping.keep().expect("keep");
        let kept = Rendered::open(dir.path(), root).expect("kept");
        let spans = kept.spans().expect("spans");
        let read: Vec<(&str, u64, u64, u64)> = spans
            .iter()
            .map(|s| (s.path.as_str(), s.start, s.end, s.found_by))
            .collect();
        assert_eq!(read, [("a.py", 1, 18, 0b11), ("b.py", 19, 27, 0b10)]);
        let mut b = Vec::new();
        kept.copy_range(19, 27, &mut b).expect("copy");
        assert_eq!(b, b"\n    {c}");
        assert!(
            kept.copy_range(19, 40, &mut b).is_err(),
            "past the findings"
        );
        assert_eq!(kept.named_by_bit(1), Some("style"));
        // A span past the findings, or out of order, leaves none.
        let path = kept::file_for(dir.path(), Kind::Rendered, root);
        let bytes = std::fs::read(&path).expect("read");
        let b_end = bytes.len() - TRAILER as usize - 8 - 8;
        for (at, value) in [(b_end, 99u64), (b_end - 8, 5)] {
            let mut damaged = bytes.clone();
            damaged[at..at + 8].copy_from_slice(&value.to_le_bytes());
            std::fs::write(&path, &damaged).expect("write");
            let kept = Rendered::open(dir.path(), root).expect("the findings still open");
            assert_eq!(kept.spans(), None, "at {at}");
        }
        // Spans that miss a validator are not kept: the next report is written whole.
        let mut keeping =
            Keeping::start(dir.path(), root, &makings, &[7; 32], [1, 0, 0], None).expect("start");
        keeping.write_all(b"[\n    {a}\n  ]").expect("write");
        let mut spans = keeping.new_spans();
        spans.note("a.py", "other", 1, 9);
        keeping.spans(spans);
        keeping.keep().expect("keep");
        let kept = Rendered::open(dir.path(), root).expect("kept");
        assert_eq!(kept.spans(), None);
    }

    /// Writes `head`, `findings` and `tail` as `dir/report.json`, and keeps the findings for
    /// `root` linked in it, made `makings`'s way, with `spans` (each path's start and end in
    /// the findings, found by `lint`).
    fn keep_linked(
        dir: &Path,
        root: &Path,
        makings: &Makings,
        [head, findings, tail]: [&[u8]; 3],
        spans: &[(&str, u64, u64)],
    ) -> PathBuf {
        let report = dir.join("report.json");
        let written = dir.join("report.json.tmp");
        std::fs::write(&written, [head, findings, tail].concat()).expect("write");
        let mut keeping =
            Keeping::start(dir, root, makings, &[7; 32], [2, 0, 0], Some(&report)).expect("start");
        assert!(
            keeping.links(),
            "a report on the cache's filesystem is linked"
        );
        keeping.write_all(findings).expect("counted");
        keeping.starts_at(head.len() as u64);
        let mut noted = keeping.new_spans();
        for (path, start, end) in spans {
            noted.note(path, "lint", *start, *end);
        }
        keeping.spans(noted);
        keeping.link(&written).expect("link");
        std::fs::rename(&written, &report).expect("in place");
        keeping.keep().expect("keep");
        report
    }

    #[test]
    fn a_report_is_written_around_its_findings_only_where_it_is_the_linked_one_unchanged() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("lint".into(), [2; 32])]);
        let findings = b"[\n    {\"a\": 1},\n    {\"b\": 2}\n  ]";
        let parts = [
            &b"{\n  \"took\": 100,\n  \"findings\": "[..],
            findings,
            b",\n  \"end\": 10\n}\n",
        ];
        let report = keep_linked(dir.path(), root, &makings, parts, &[]);
        let inode = std::fs::metadata(&report).expect("report").ino();
        let json = |path: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
        };
        let kept = Rendered::open(dir.path(), root).expect("kept");
        let head = b"{\n  \"took\": 7,\n  \"findings\": ";
        let tail = b",\n  \"end\": 3\n}\n";
        assert!(kept.write_around(&report, head, tail).expect("written"));
        assert_eq!(
            json(&report),
            serde_json::json!({"took": 7, "findings": [{"a": 1}, {"b": 2}], "end": 3})
        );
        let text = std::fs::read(&report).expect("read");
        assert!(
            text.starts_with(b"{\n  \"took\": 7,  \n  \"findings\": [\n"),
            "{text:?}"
        );
        assert_eq!(std::fs::metadata(&report).expect("report").ino(), inode);
        // The kept file has the report's new stamp: the findings are still read from it.
        let kept = Rendered::open(dir.path(), root).expect("restamped");
        let mut out = Vec::new();
        kept.copy_to(&mut out).expect("copy");
        assert_eq!(out, findings);
        // A head longer than the one there is not written; nor is any other file.
        let longer = b"{\n  \"took\": 100000,\n  \"findings\": ";
        assert!(!kept.write_around(&report, longer, tail).expect("refused"));
        assert_eq!(json(&report)["took"], 7);
        let other = dir.path().join("other.json");
        std::fs::copy(&report, &other).expect("copy");
        assert!(!kept.write_around(&other, head, tail).expect("refused"));
        // Written whole and relinked, the report is written around again, with its new head.
        let written = dir.path().join("whole.json");
        std::fs::write(&written, [&longer[..], findings, tail].concat()).expect("write");
        kept.relink(&written, longer.len() as u64).expect("relink");
        std::fs::rename(&written, &report).expect("in place");
        let kept = Rendered::open(dir.path(), root).expect("relinked");
        assert!(kept
            .write_around(&report, longer, b"\n}\n")
            .expect("written"));
        assert_eq!(json(&report)["findings"][1]["b"], 2);
        // The report changed since the findings were kept: it is not written around them.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&report)
            .expect("open");
        file.write_all(b" ").expect("append");
        assert!(!kept.write_around(&report, longer, tail).expect("refused"));
    }

    #[test]
    fn only_the_bytes_that_differ_are_written_and_never_across_a_page() {
        assert_eq!(changed(b"abcdef", b"abXdeY"), Some((2, &b"XdeY"[..])));
        assert_eq!(changed(b"abc", b"abc"), None);
        assert_eq!(changed(b"abc", b"abcde"), Some((3, &b"de"[..])));
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("lint".into(), [2; 32])]);
        let head = b"{\n  \"findings\": ";
        // The findings end 13 bytes before a page ends, so that the tail's `10` is `1` on one
        // page and `0` on the next.
        let mut findings = vec![b' '; PAGE as usize - 13 - head.len()];
        (findings[0], *findings.last_mut().expect("long")) = (b'[', b']');
        let tail: &[u8] = b",\n  \"took\": 10\n}\n";
        let report = keep_linked(dir.path(), root, &makings, [head, &findings, tail], &[]);
        let kept = Rendered::open(dir.path(), root).expect("kept");
        let before = std::fs::read(&report).expect("read");
        assert!(!kept
            .write_around(&report, head, b",\n  \"took\": 99\n}\n")
            .expect("refused"));
        assert_eq!(std::fs::read(&report).expect("read"), before);
        assert!(kept
            .write_around(&report, head, b",\n  \"took\": 20\n}\n")
            .expect("written"));
        let text = std::fs::read(&report).expect("read");
        assert_eq!(&text[text.len() - 7..], b": 20\n}\n");
    }

    #[test]
    fn findings_in_a_report_file_are_linked_not_copied_and_a_changed_report_is_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("lint".into(), [2; 32])]);
        let findings = b"[\n    {a},\n    {b}\n  ]";
        let parts = [&b"{\n  \"findings\": "[..], findings, b"\n}\n"];
        let spans = [("a.py", 1, 9), ("b.py", 10, 18)];
        let report = keep_linked(dir.path(), root, &makings, parts, &spans);
        let written = dir.path().join("report.json.tmp");
        let target = kept::file_for(dir.path(), Kind::Rendered, root);
        let bytes = std::fs::read(&target).expect("kept");
        assert!(
            !bytes.windows(findings.len()).any(|w| w == findings),
            "the findings are not copied"
        );
        let kept = Rendered::open(dir.path(), root).expect("kept");
        let mut out = Vec::new();
        kept.copy_to(&mut out).expect("copy");
        assert_eq!(out, findings);
        assert_eq!(kept.spans().map(|s| s.len()), Some(2));
        // The report replaced by another file: the linked one is still the kept findings.
        std::fs::write(&written, b"{}").expect("write");
        std::fs::rename(&written, &report).expect("replace");
        assert!(Rendered::open(dir.path(), root).is_some());
        // The linked report changed in place: it is not read.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(linked(&target))
            .expect("open");
        file.write_all(b" ").expect("append");
        assert!(Rendered::open(dir.path(), root).is_none());
        // A report never linked keeps nothing, and leaves no temporary file.
        let mut keeping =
            Keeping::start(dir.path(), root, &makings, &[7; 32], [0; 3], Some(&report))
                .expect("start");
        keeping.starts_at(16);
        assert!(keeping.keep().is_err());
        assert!(Rendered::open(dir.path(), root).is_none());
        let names: Vec<_> = std::fs::read_dir(dir.path().join("rendered"))
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(names.is_empty(), "{names:?}");
        // Where the report is not a file of its own, the findings are copied.
        let copying = Keeping::start(
            dir.path(),
            root,
            &makings,
            &[7; 32],
            [0; 3],
            Some(Path::new("/dev/null")),
        )
        .expect("start");
        assert!(!copying.links());
    }
}
