//! A tree's listing, kept so that the next walk of an unchanged tree reads one file instead of
//! every directory.
//!
//! Walking Django's 3,247 directories took 28–30 ms of a 90 ms warm run on two cores, against
//! 50 ms for all of `git status`. Like git's untracked cache, this trusts the kernel's
//! directory stamps: adding, removing or renaming an entry changes its directory's
//! modification and change times, and the change time cannot be set back. So a listing holds
//! the stamp (device, inode, size, modification and change times) of every directory the walk
//! read, and of every file whose contents decide what is ignored: each `.gitignore` in the
//! tree and above it, `.git/info/exclude`, git's global configuration and excludes file. When
//! every stamp is as it was, the listing is what a walk would find; when any differs, the tree
//! is walked and the listing kept again.
//!
//! A stamp taken after the walk can only vouch for what the walk read if nothing changed in
//! between: a listing is kept only when every stamp in it is older than the walk's start by
//! more than [`SETTLED`], which covers clocks that stamp coarsely. A change during the walk
//! leaves the tree walked again next time; a change after it gives a stamp that differs.
//! Whatever is not plainly safe is not kept: a walk that warned of anything, a repository
//! whose `.git` is a file (a linked work tree or a submodule, whose excludes live elsewhere).
//!
//! Layout: the 8 bytes `orchlst1`, the 32-byte id of what the listing depends on besides its
//! stamps ([`id`]), the stamped paths, the directories, the files and the nested repositories,
//! each a count (u32) of entries, and last the BLAKE3 digest of all that, by which a file cut
//! short or damaged is known. Integers are little-endian.

use crate::digest::Hash;
use crate::kept::{self, Kind};
use crate::select::{Listed, Walked};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC: &[u8; 8] = b"orchlst1";

/// How much older than the walk every stamp must be for the listing to be kept.
const SETTLED: Duration = Duration::from_secs(2);

/// What a path was when stamped: enough to know that a directory's entries or a file's
/// contents have not changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
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
    fn of(path: &Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            modified: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            changed: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
        })
    }

    fn older_than(&self, nanos: i64) -> bool {
        self.modified < nanos && self.changed < nanos
    }

    fn put(stamp: Option<&Stamp>, out: &mut Vec<u8>) {
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

    fn take(r: &mut Reader) -> Option<Option<Stamp>> {
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

/// The listing kept for `root` in the cache directory `dir`, when every stamp in it still
/// holds; anything missing, damaged or kept by another coordinator is as good as none.
pub(crate) fn reuse(dir: &Path, root: &Path) -> Option<Walked> {
    let bytes = std::fs::read(kept::file_for(dir, Kind::Listing, root)).ok()?;
    let (body, digest) = bytes.split_at_checked(bytes.len().checked_sub(32)?)?;
    if blake3::hash(body).as_bytes() != digest {
        return None;
    }
    let mut r = Reader(body);
    if r.take(8)? != MAGIC || r.take(32)? != id(root)? {
        return None;
    }
    let mut stamped = Vec::new();
    for _ in 0..r.count()? {
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(r.bytes()?));
        stamped.push((path, Stamp::take(&mut r)?));
    }
    for _ in 0..r.count()? {
        let name = r.bytes()?;
        let path = root.join(std::ffi::OsStr::from_bytes(name));
        stamped.push((path, Stamp::take(&mut r)?));
    }
    if !all_hold(&stamped) {
        return None;
    }
    let mut walked = Walked::default();
    for _ in 0..r.count()? {
        let name = r.bytes()?.to_vec();
        let regular = r.take(1)?[0] == 1;
        walked.files.push(Listed { name, regular });
    }
    for _ in 0..r.count()? {
        walked.repositories.push(r.bytes()?.to_vec());
    }
    r.0.is_empty().then_some(walked)
}

/// Whether every path is as stamped, checked on every core: on Django, 3,300 `stat` calls.
fn all_hold(stamped: &[(PathBuf, Option<Stamp>)]) -> bool {
    let holds = |part: &[(PathBuf, Option<Stamp>)]| {
        part.iter().all(|(path, stamp)| Stamp::of(path) == *stamp)
    };
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 || stamped.len() < 512 {
        return holds(stamped);
    }
    let size = stamped.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let others: Vec<_> = stamped[size..]
            .chunks(size)
            .map(|part| scope.spawn(move || holds(part)))
            .collect();
        let first = holds(&stamped[..size]);
        others
            .into_iter()
            .fold(first, |all, part| part.join().unwrap_or(false) && all)
    })
}

/// Keeps what a walk of `root` that started at `started` found, for [`reuse`], in the cache
/// directory `dir`, if it can be trusted; says why not at debug level.
pub(crate) fn keep(dir: &Path, root: &Path, started: SystemTime, walked: &Walked) {
    match encode(root, started, walked) {
        Ok(bytes) => {
            let target = kept::file_for(dir, Kind::Listing, root);
            let written = kept::temporary_for(&target).and_then(|temporary| {
                std::fs::write(&temporary, &bytes)?;
                std::fs::rename(&temporary, &target).inspect_err(|_| {
                    let _ = std::fs::remove_file(&temporary);
                })
            });
            match written {
                Ok(()) => tracing::debug!(
                    "kept the tree's listing: {} directories, {} files",
                    walked.dirs.len(),
                    walked.files.len()
                ),
                Err(e) => tracing::debug!(
                    "the listing was not kept: cannot write {}: {e}",
                    target.display()
                ),
            }
        }
        Err(why) => tracing::debug!("the listing was not kept: {why}"),
    }
}

fn encode(root: &Path, started: SystemTime, walked: &Walked) -> Result<Vec<u8>, String> {
    if let Some(warning) = walked.warnings.first() {
        return Err(format!("the walk warned ({warning})"));
    }
    let settled = started
        .checked_sub(SETTLED)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|t| i64::try_from(t.as_nanos()).ok())
        .ok_or("the clock is before 1970")?;
    let id = id(root).ok_or("the coordinator cannot name itself")?;
    let stamp = |path: &Path| -> Result<Option<Stamp>, String> {
        match Stamp::of(path) {
            Some(s) if !s.older_than(settled) => {
                Err(format!("{} changed during the walk", path.display()))
            }
            s => Ok(s),
        }
    };
    let mut out = Vec::with_capacity(64 * (walked.files.len() + walked.dirs.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&id);
    let watched = watched(root, &walked.dirs)?;
    put_count(watched.len(), &mut out);
    for path in &watched {
        put_bytes(path.as_os_str().as_bytes(), &mut out);
        Stamp::put(stamp(path)?.as_ref(), &mut out);
    }
    put_count(walked.dirs.len(), &mut out);
    for name in &walked.dirs {
        let path = root.join(std::ffi::OsStr::from_bytes(name));
        let s = stamp(&path)?.ok_or_else(|| format!("{} is gone", path.display()))?;
        put_bytes(name, &mut out);
        Stamp::put(Some(&s), &mut out);
    }
    put_count(walked.files.len(), &mut out);
    for file in &walked.files {
        put_bytes(&file.name, &mut out);
        out.push(u8::from(file.regular));
    }
    put_count(walked.repositories.len(), &mut out);
    for repository in &walked.repositories {
        put_bytes(repository, &mut out);
    }
    let digest = blake3::hash(&out);
    out.extend_from_slice(digest.as_bytes());
    Ok(out)
}

/// The files whose contents decide what a walk of `root` leaves out, as the `ignore` crate
/// reads them: the `.gitignore` files of the directories walked and of every directory above
/// the root, the `.git/info/exclude` of the root and of any repository above it, git's
/// global and system configuration and the excludes file they name. Those in the tree are
/// listed only where they exist: one appearing changes its directory's stamp.
fn watched(root: &Path, dirs: &[Vec<u8>]) -> Result<Vec<PathBuf>, String> {
    let mut watched = Vec::new();
    for name in dirs {
        let ignore = root
            .join(std::ffi::OsStr::from_bytes(name))
            .join(".gitignore");
        if ignore.exists() {
            watched.push(ignore);
        }
    }
    let canonical = root
        .canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
    for dir in canonical.ancestors() {
        let git = dir.join(".git");
        if git.is_file() {
            return Err(format!(
                "{} is a file (a linked work tree or a submodule)",
                git.display()
            ));
        }
        if dir != canonical {
            watched.push(dir.join(".gitignore"));
            watched.push(git.clone());
        }
        if git.is_dir() {
            watched.push(git.join("info/exclude"));
        }
    }
    let env_path = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let home = env_path("HOME");
    let config = env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
    watched.extend(env_path("GIT_CONFIG_GLOBAL"));
    watched.extend(home.map(|h| h.join(".gitconfig")));
    watched.extend(config.map(|c| c.join("git/config")));
    watched.push(env_path("GIT_CONFIG_SYSTEM").unwrap_or_else(|| "/etc/gitconfig".into()));
    watched.extend(ignore::gitignore::gitconfig_excludes_path());
    Ok(watched)
}

/// What a listing depends on besides its stamps: this coordinator (another build may walk
/// otherwise), the root, and the variables that say where git's global files are.
fn id(root: &Path) -> Option<Hash> {
    let me = std::env::current_exe().ok()?;
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 tree listing");
    h.update(validators::tools::fingerprint(&me)?.as_bytes());
    let mut field = |bytes: &[u8]| {
        h.update(&(bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(root.as_os_str().as_bytes());
    for var in [
        "HOME",
        "XDG_CONFIG_HOME",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
    ] {
        field(std::env::var_os(var).unwrap_or_default().as_bytes());
    }
    Some(*h.finalize().as_bytes())
}

fn put_count(n: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    put_count(bytes.len(), out);
    out.extend_from_slice(bytes);
}

/// Reads a listing front to back; `None` when it ends too soon.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(taken)
    }

    fn count(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.count()?;
        self.take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::select::walk;
    use std::fs;

    /// A tree with an ignore file and a nested repository, its listing kept in `cache` as by a
    /// walk that started well after every stamp in it: a test cannot wait for a tree to age.
    fn kept_tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = tempfile::tempdir().expect("tempdir");
        for (path, text) in [
            ("a.py", "x\n"),
            ("pkg/b.py", "x\n"),
            ("pkg/.gitignore", "*.log\n"),
            ("pkg/c.log", "x\n"),
            ("nested/.git/HEAD", "x\n"),
            ("nested/d.py", "x\n"),
        ] {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        keep_now(cache.path(), dir.path());
        (dir, cache)
    }

    fn keep_now(cache: &Path, root: &Path) {
        let later = SystemTime::now() + SETTLED + Duration::from_secs(1);
        keep(cache, root, later, &walk(root, root));
    }

    fn names(walked: &Walked) -> Vec<(String, bool)> {
        let mut names: Vec<_> = walked
            .files
            .iter()
            .map(|f| (String::from_utf8_lossy(&f.name).into_owned(), f.regular))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn an_unchanged_tree_is_listed_as_the_walk_found_it() {
        let (dir, cache) = kept_tree();
        let reused = reuse(cache.path(), dir.path()).expect("reused");
        let walked = walk(dir.path(), dir.path());
        assert_eq!(names(&reused), names(&walked));
        assert!(names(&reused).contains(&("pkg/b.py".to_owned(), true)));
        assert!(!names(&reused).iter().any(|(n, _)| n.ends_with(".log")));
        assert_eq!(reused.repositories, [b"nested".to_vec()]);
    }

    #[test]
    fn an_entry_added_or_removed_anywhere_is_seen() {
        let (dir, cache) = kept_tree();
        fs::write(dir.path().join("pkg/new.py"), "x\n").expect("write");
        assert!(reuse(cache.path(), dir.path()).is_none());
        keep_now(cache.path(), dir.path());
        assert!(names(&reuse(cache.path(), dir.path()).expect("kept again"))
            .contains(&("pkg/new.py".to_owned(), true)));
        fs::remove_file(dir.path().join("a.py")).expect("rm");
        assert!(reuse(cache.path(), dir.path()).is_none());
    }

    #[test]
    fn an_edited_ignore_file_is_seen() {
        let (dir, cache) = kept_tree();
        // Written in place: the directory's entries do not change, the file's stamp does.
        fs::write(dir.path().join("pkg/.gitignore"), "*.py\n").expect("write");
        assert!(reuse(cache.path(), dir.path()).is_none());
    }

    #[test]
    fn the_repositorys_excludes_are_watched_even_before_they_exist() {
        let (dir, cache) = kept_tree();
        fs::create_dir(dir.path().join(".git")).expect("mkdir");
        keep_now(cache.path(), dir.path());
        assert!(reuse(cache.path(), dir.path()).is_some());
        fs::create_dir(dir.path().join(".git/info")).expect("mkdir");
        fs::write(dir.path().join(".git/info/exclude"), "a.py\n").expect("write");
        assert!(reuse(cache.path(), dir.path()).is_none());
    }

    #[test]
    fn a_tree_that_changed_during_the_walk_is_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("a.py"), "x\n").expect("write");
        // Stamped just now, as by a walk that started just now: not settled.
        keep(
            cache.path(),
            dir.path(),
            SystemTime::now(),
            &walk(dir.path(), dir.path()),
        );
        assert!(reuse(cache.path(), dir.path()).is_none());
    }

    #[test]
    fn a_walk_that_warned_is_not_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cache = tempfile::tempdir().expect("tempdir");
        let mut walked = walk(dir.path(), dir.path());
        walked.warnings.push("cannot read x".into());
        let later = SystemTime::now() + SETTLED + Duration::from_secs(1);
        keep(cache.path(), dir.path(), later, &walked);
        assert!(reuse(cache.path(), dir.path()).is_none());
    }

    #[test]
    fn a_damaged_or_foreign_listing_is_as_good_as_none() {
        let (dir, cache) = kept_tree();
        let file = kept::file_for(cache.path(), Kind::Listing, dir.path());
        let mut bytes = fs::read(&file).expect("kept");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&file, &bytes).expect("write");
        assert!(reuse(cache.path(), dir.path()).is_none());
        fs::write(&file, &bytes[..bytes.len() / 3]).expect("write");
        assert!(reuse(cache.path(), dir.path()).is_none());
        // Another root's listing is not this one's.
        keep_now(cache.path(), dir.path());
        let other = tempfile::tempdir().expect("tempdir");
        fs::copy(
            &file,
            kept::file_for(cache.path(), Kind::Listing, other.path()),
        )
        .expect("copy");
        assert!(reuse(cache.path(), other.path()).is_none());
    }
}
