//! Files the coordinator keeps per root in its cache directory, beside the result store: the
//! findings of the last JSON report ([`crate::rendered`]), the tree's listing
//! ([`crate::listing`]), the files git tracks there ([`crate::tracked`]) and where its
//! validators' configuration files are not ([`crate::cache::Probes`]).
//!
//! One file per root and kind, `<kind>/<digest of the root>`, replaced by a rename: a run
//! holding one open keeps reading the file it opened, whatever another run writes meanwhile.
//! Each is a copy of what can be worked out again, so `cache clear` removes them all.
//!
//! What a listing and a tracked list share is here too: the stamps that say a directory or a
//! file is unchanged, and their binary layout (integers little-endian, byte strings after
//! their length as a u32, and last the BLAKE3 digest of all before it, by which a file cut
//! short or damaged is known).

use crate::below::{Below, FileType, Links, Status};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How much older than the reading it vouches for a stamp must be to be kept: a stamp taken
/// after a reading vouches for it only if nothing changed in between, and clocks that stamp
/// coarsely (two seconds on FAT, the kernel's coarse clock) can leave a change within the
/// same stamp. Git's racy-timestamp rule.
pub const SETTLED: Duration = Duration::from_secs(2);

/// What a kept file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rendered,
    Listing,
    Tracked,
    Probes,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Rendered, Kind::Listing, Kind::Tracked, Kind::Probes];

    fn directory(self) -> &'static str {
        match self {
            Kind::Rendered => "rendered",
            Kind::Listing => "listing",
            Kind::Tracked => "tracked",
            Kind::Probes => "probes",
        }
    }
}

/// Where the file of this kind for `root` is kept in the cache directory `dir`.
pub fn file_for(dir: &Path, kind: Kind, root: &Path) -> PathBuf {
    let digest = blake3::hash(root.as_os_str().as_encoded_bytes());
    dir.join(kind.directory()).join(&digest.to_hex()[..32])
}

/// Where this process writes `target`'s next version before renaming it into place; its
/// directory is created.
pub fn temporary_for(target: &Path) -> std::io::Result<PathBuf> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut name = target.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    Ok(target.with_file_name(name))
}

/// The earliest time, in nanoseconds since the epoch, that a stamp may show and still vouch
/// for a reading that started at `started`. A clock before 1970 settles nothing.
pub fn settled_before(started: SystemTime) -> i64 {
    started
        .checked_sub(SETTLED)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|t| i64::try_from(t.as_nanos()).ok())
        .unwrap_or(i64::MIN)
}

/// Appends the digest of everything in `out` so far.
pub fn seal(out: &mut Vec<u8>) {
    let digest = blake3::hash(out);
    out.extend_from_slice(digest.as_bytes());
}

/// What `bytes` hold before their digest, if the digest is right.
fn unseal(bytes: &[u8]) -> Option<&[u8]> {
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    (blake3::hash(body).as_bytes() == digest).then_some(body)
}

/// Puts `bytes` in place of `target` by writing a temporary file and renaming it.
pub fn replace(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_for(target)?;
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

/// Removes every kept file of every root from the cache directory `dir` (`cache clear`);
/// returns whether there were any.
pub fn clear(dir: &Path) -> Result<bool, String> {
    let mut any = false;
    for kind in Kind::ALL {
        let kept = dir.join(kind.directory());
        match std::fs::remove_dir_all(&kept) {
            Ok(()) => any = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot remove {}: {e}", kept.display())),
        }
    }
    Ok(any)
}

/// What a path was when stamped: enough to know that a directory's entries or a file's
/// contents have not changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    /// Modification and change times, in nanoseconds since the epoch.
    modified: i64,
    changed: i64,
}

impl Stamp {
    const LEN: usize = 40;

    /// The stamp of `path`, following links; `None` when it does not exist (which is a stamp
    /// too: an ignore file created later must be seen).
    pub fn of(path: &Path) -> Option<Stamp> {
        std::fs::metadata(path).ok().as_ref().map(Stamp::from)
    }

    /// [`Stamp::of`] the path `name` below `below`.
    pub fn below(below: &Below, name: &[u8]) -> Option<Stamp> {
        below.status(name, Links::Follow).ok().map(Stamp::of_status)
    }

    /// The stamp of a file open.
    pub fn of_file(file: &std::fs::File) -> Option<Stamp> {
        file.metadata().ok().as_ref().map(Stamp::from)
    }

    fn from(m: &std::fs::Metadata) -> Stamp {
        Stamp::of_status(Status::of(m))
    }

    fn of_status(s: Status) -> Stamp {
        Stamp {
            dev: s.dev,
            ino: s.ino,
            size: s.size,
            modified: s.modified,
            changed: s.changed,
        }
    }

    /// Whether a file with this stamp holds what one with `then` held: the same file, size and
    /// modification time. Its change time moves with every rename or link, which leaves the
    /// contents as they were.
    pub fn same_contents(&self, then: &Stamp) -> bool {
        (self.dev, self.ino, self.size, self.modified)
            == (then.dev, then.ino, then.size, then.modified)
    }

    /// The stamp of `path` if it is older than `settled` (or the path does not exist): a
    /// stamp that can vouch for what was read before it was taken.
    pub fn settled(path: &Path, settled: i64) -> Result<Option<Stamp>, String> {
        match Stamp::of(path) {
            Some(s) if !s.before(settled) => {
                Err(format!("{} changed during the walk", path.display()))
            }
            s => Ok(s),
        }
    }

    /// Whether the path last changed before `settled`, so that the stamp vouches for what was
    /// read after it.
    pub fn before(&self, settled: i64) -> bool {
        self.modified < settled && self.changed < settled
    }

    /// How the directory `name` below `below` stands since `settled`, by its own entry (a
    /// link is not followed): see [`Since`].
    pub fn dir_since(below: &Below, name: &[u8], settled: i64) -> Since {
        match below.status(name, Links::Stop) {
            Ok(s) => match s.kind == FileType::Dir && Stamp::of_status(s).before(settled) {
                true => Since::Unchanged,
                false => Since::Changed,
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Since::Missing,
            Err(_) => Since::Changed,
        }
    }

    pub fn put(stamp: Option<&Stamp>, out: &mut Vec<u8>) {
        match stamp {
            Some(s) => {
                out.push(1);
                for n in [s.dev, s.ino, s.size] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
                for n in [s.modified, s.changed] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            None => out.push(0),
        }
    }

    pub fn take(r: &mut Reader) -> Option<Option<Stamp>> {
        if r.take(1)?[0] == 0 {
            return Some(None);
        }
        let b = r.take(Stamp::LEN)?;
        let u = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let i = |at: usize| i64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        Some(Some(Stamp {
            dev: u(0),
            ino: u(8),
            size: u(16),
            modified: i(24),
            changed: i(32),
        }))
    }
}

pub fn put_count(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

pub fn put_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    put_count(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Reads a kept file front to back; `None` when it ends too soon.
/// What a directory's stamp says of the paths below it since a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// Nothing is there: no path below it exists.
    Missing,
    /// A directory, not a link to one, whose stamp is older: no entry was added to it, removed
    /// from it or renamed in it since, and it was not itself moved to where it is (a move
    /// stamps what is moved). So each entry names what it named then; a path below it is the
    /// same only if every directory on the way is unchanged too.
    Unchanged,
    /// Changed since, a link (which can be pointed elsewhere without a new stamp on either
    /// side), or not a directory.
    Changed,
}

#[derive(Debug)]
pub struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    /// Reads what `bytes` hold before their digest, if the digest is right.
    pub fn unsealed(bytes: &'a [u8]) -> Option<Reader<'a>> {
        unseal(bytes).map(Reader)
    }

    /// Reads `bytes`, which carry no digest of their own.
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader(bytes)
    }

    /// Whether everything was read: a file with more is not one this reader knows.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    pub fn count(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_missing_path_or_a_real_directory_stamped_before_the_time_is_unchanged() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).expect("a directory");
        std::fs::write(dir.path().join("file"), "").expect("written");
        std::os::unix::fs::symlink(&sub, dir.path().join("link")).expect("a link");
        let later = i64::MAX;
        let below = Below::new(dir.path());
        let since = |name: &str, at: i64| Stamp::dir_since(&below, name.as_bytes(), at);
        assert_eq!(since("sub", later), Since::Unchanged);
        assert_eq!(since("missing", later), Since::Missing);
        assert_eq!(since("link", later), Since::Changed, "a link");
        assert_eq!(since("file", later), Since::Changed, "a file");
        let now = settled_before(SystemTime::now());
        assert_eq!(since("sub", now), Since::Changed, "changed since");
    }
}
