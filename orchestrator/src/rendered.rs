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
//! One file per root in the cache directory, `rendered/<digest of the root>` ([`crate::kept`]).
//!
//! Layout: the 8 bytes `orchfnd2`, the 32-byte id, the 32-byte digest of the findings
//! ([`crate::history::findings_hash`]), how many findings there are of each severity (u32,
//! little-endian, in the order of [`Severity::ALL`]), the number of makings (u32), each as
//! its name's length (u32), the name and the 32-byte body digest, then the findings array as
//! the JSON report writes it, and last its length (u64), by which a file cut short is known.

use crate::digest::Hash;
use crate::kept::{self, Kind};
use protocol::Severity;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"orchfnd2";

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
    file: File,
    /// Where the findings start and end.
    start: u64,
    end: u64,
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
        let mut file = File::open(kept::file_for(dir, Kind::Rendered, root)).ok()?;
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
        let start = (len - r.len()) as u64;
        let end = file.metadata().ok()?.len().checked_sub(8)?;
        let mut trailer = [0; 8];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut trailer, end).ok()?;
        if start.checked_add(u64::from_le_bytes(trailer)) != Some(end) {
            return None;
        }
        let makings = Makings(parts);
        (makings.id(root)? == id).then_some(Rendered {
            file,
            start,
            end,
            makings,
            findings_hash,
            counts,
        })
    }

    /// How many of the findings are of `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        let at = Severity::ALL.iter().position(|s| *s == severity);
        at.map_or(0, |at| self.counts[at] as usize)
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

    /// Writes the findings array into `out`, in blocks of a quarter of a megabyte: few
    /// writes, and little memory touched.
    pub fn copy_to(&self, out: &mut dyn Write) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut block = vec![0; 256 * 1024];
        let mut at = self.start;
        while at < self.end {
            let want = block
                .len()
                .min(usize::try_from(self.end - at).unwrap_or(usize::MAX));
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
    /// Bytes of findings written.
    written: u64,
    temporary: PathBuf,
    target: PathBuf,
    /// Removing the findings kept before, while these are written: replacing a file frees its
    /// pages on the spot (and ext4 writes the new one out first), which took 42 ms after the
    /// report on four copies of Django, where the findings are 64 MB.
    clearing: Option<std::thread::JoinHandle<()>>,
}

impl Keeping {
    /// Starts keeping findings made `makings`'s way, with their `findings_hash` and `counts`
    /// by severity, for `root` in the cache directory `dir`.
    pub fn start(
        dir: &Path,
        root: &Path,
        makings: &Makings,
        findings_hash: &Hash,
        counts: [usize; 3],
    ) -> std::io::Result<Keeping> {
        let id = makings
            .id(root)
            .ok_or_else(|| std::io::Error::other("the coordinator cannot name itself"))?;
        let target = kept::file_for(dir, Kind::Rendered, root);
        let temporary = kept::temporary_for(&target)?;
        let mut file = std::io::BufWriter::with_capacity(1 << 16, File::create(&temporary)?);
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
        let old = target.clone();
        let clearing = std::thread::spawn(move || {
            let _ = std::fs::remove_file(old);
        });
        Ok(Keeping {
            file,
            written: 0,
            temporary,
            target,
            clearing: Some(clearing),
        })
    }

    /// Puts the findings written in place of those kept before.
    pub fn keep(mut self) -> std::io::Result<()> {
        let written = self.written.to_le_bytes();
        self.file.write_all(&written)?;
        self.file.flush()?;
        if let Some(clearing) = self.clearing.take() {
            let _ = clearing.join();
        }
        std::fs::rename(&self.temporary, &self.target)
    }
}

impl Write for Keeping {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
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
        if let Some(clearing) = self.clearing.take() {
            let _ = clearing.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(dir: &Path, root: &Path, makings: &Makings, findings: &[u8]) {
        let mut keeping = Keeping::start(dir, root, makings, &[7; 32], [1, 0, 2]).expect("start");
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
        assert_eq!(kept.count(Severity::Error), 1);
        assert_eq!(kept.count(Severity::Info), 2);
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
        drop(Keeping::start(dir.path(), root, &again, &[7; 32], [0; 3]).expect("start"));
        assert!(Rendered::open(dir.path(), root).is_none());
    }

    #[test]
    fn damaged_or_abandoned_findings_are_none() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = Path::new("/src/project");
        let makings = Makings::new(vec![("ruff".into(), [2; 32])]);
        let mut abandoned =
            Keeping::start(dir.path(), root, &makings, &[7; 32], [0; 3]).expect("start");
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
}
