//! What a run found where a validator's configuration files could be, shared by its
//! validators and kept for the next run.
//!
//! Tools look for their configuration (`pyproject.toml`, `ruff.toml`…) in a file's directory
//! and every parent, so a file's cache key covers the declared names looked up from its
//! directory to the filesystem root ([`super::ConfigFiles`]). Nearly every look finds nothing:
//! on Django, three validators declaring five names between them made 3,300 failed opens,
//! 8 ms of a 75 ms warm run. A look that found no entry is therefore kept in the cache
//! directory (`probes/`, one file per root, [`crate::kept`]) under the stamp the directory had
//! before the look, and trusted while that stamp holds, as the tree's listing is
//! ([`crate::listing`]): adding, removing or renaming an entry changes its directory's change
//! time, which cannot be set back. A run in an unchanged tree then takes one `stat` per
//! directory instead of one `open` per declared name. Only "no entry" is kept: a file's
//! contents change under an unchanged directory stamp, so a file found is read every run, and
//! so is a name that fails to open while an entry of that name exists (a link to nothing, which
//! its target's creation elsewhere would bring to life; a directory; an unreadable file).
//!
//! Layout: the 8 bytes `orchprb1`, the root, a count (u32) of directories, each its absolute
//! path, its stamp and a count of the names it held no entry for, each name; last the digest.

use crate::below::Below;
use crate::digest::Hash;
use crate::kept::{self, put_bytes, put_count, Kind, Reader, Stamp};
use crate::locks::lock;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

const MAGIC: &[u8; 8] = b"orchprb1";

/// What is at one path a configuration file could be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Absent, or a directory of that name.
    Absent,
    /// Present but unreadable, which must not hash as absent.
    Unreadable,
    Content(Hash),
}

/// The looks of a run, and those kept by an earlier one.
#[derive(Debug, Default)]
pub struct Probes {
    /// The cache directory and the root they are kept for, held open to stamp the
    /// directories below it ([`Below`]); `None`: not kept.
    keep: Option<(PathBuf, Below)>,
    /// The earliest time a directory's stamp may show and still vouch for a look made in
    /// this run ([`kept::settled_before`] its start).
    settled: i64,
    /// Per directory, as an earlier run kept it: its stamp, and the names it held no entry for.
    kept: foldhash::HashMap<OsString, (Stamp, Vec<String>)>,
    /// Keyed by the directory's path as bytes: hashing a `Path` walks its components, and
    /// every file's key asks about its directory.
    dirs: Mutex<foldhash::HashMap<OsString, Dir>>,
    /// Names looked up in this run, not answered by the kept probes.
    looked: AtomicUsize,
}

/// One directory's looks in this run.
#[derive(Debug)]
struct Dir {
    /// Its stamp before any look, if settled: what its looks can be kept under.
    stamp: Option<Stamp>,
    /// Names with no entry: those kept while the stamp holds, and those looked up since.
    absent: Vec<String>,
    /// What every other look found.
    found: Vec<(String, Probe)>,
    /// Whether this has more to keep than the kept probes held.
    new: bool,
}

impl Probes {
    /// Probes kept for `root` in the cache directory `dir`, for a run that starts now.
    pub fn kept(dir: &Path, root: &Path) -> Probes {
        Probes::kept_at(dir, root, SystemTime::now())
    }

    /// [`Probes::kept`], for a run that started at `started`.
    fn kept_at(dir: &Path, root: &Path, started: SystemTime) -> Probes {
        Probes {
            kept: load(dir, root).unwrap_or_default(),
            keep: Some((dir.to_owned(), Below::new(root))),
            settled: kept::settled_before(started),
            ..Probes::default()
        }
    }

    /// What is at each of `names` in `dir`, in their order.
    pub fn look(&self, dir: &Path, names: &[String]) -> Vec<Probe> {
        let key = dir.as_os_str();
        let mut probes = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        {
            // Held while the directory is first stamped: validators computing their keys at
            // once ask about the same directories in the same order, and would each stamp them.
            let mut dirs = lock(&self.dirs);
            if !dirs.contains_key(key) {
                let seen = self.first_look(dir);
                dirs.insert(key.to_owned(), seen);
            }
            let seen = &dirs[key];
            for (at, name) in names.iter().enumerate() {
                let known = seen.known(name);
                probes.push(known.unwrap_or(Probe::Absent));
                if known.is_none() {
                    unknown.push(at);
                }
            }
        }
        if unknown.is_empty() {
            return probes;
        }
        self.looked.fetch_add(unknown.len(), Ordering::Relaxed);
        let looks: Vec<(Probe, bool)> = unknown
            .iter()
            .map(|&at| look_at(&dir.join(&names[at])))
            .collect();
        let mut dirs = lock(&self.dirs);
        let seen = dirs.get_mut(key).expect("inserted above");
        for (&at, (probe, no_entry)) in unknown.iter().zip(looks) {
            probes[at] = probe;
            let name = &names[at];
            if seen.known(name).is_some() {
                // Looked up by another validator meanwhile.
                continue;
            }
            if no_entry {
                seen.absent.push(name.clone());
                seen.new |= seen.stamp.is_some();
            } else {
                seen.found.push((name.clone(), probe));
            }
        }
        probes
    }

    /// A directory as this run first sees it: with the names the kept probes say it has no
    /// entry for, while its stamp is the one they were kept under.
    fn first_look(&self, dir: &Path) -> Dir {
        // Probes that are not kept need no stamp to be kept under.
        let stamp = match &self.keep {
            Some((_, root)) => match dir.strip_prefix(root.path()) {
                Ok(name) => Stamp::below(root, name.as_os_str().as_bytes()),
                Err(_) => Stamp::of(dir),
            },
            None => None,
        };
        let stamp = stamp.filter(|s| s.before(self.settled));
        let absent = match (stamp, self.kept.get(dir.as_os_str())) {
            (Some(now), Some((then, absent))) if now == *then => absent.clone(),
            _ => Vec::new(),
        };
        Dir {
            stamp,
            absent,
            found: Vec::new(),
            new: false,
        }
    }

    /// Keeps what this run's looks found for the next run, if they add to what was kept.
    /// Kept directories this run did not look in stay while their stamps hold.
    pub fn keep(&self) {
        let Some((dir, root)) = &self.keep else {
            return;
        };
        let root = root.path();
        let dirs = lock(&self.dirs);
        tracing::debug!(
            "configuration files: {} directories, {} names looked up",
            dirs.len(),
            self.looked.load(Ordering::Relaxed)
        );
        if !dirs.values().any(|d| d.new) {
            return;
        }
        let mut keeping: Vec<(&Path, Stamp, &[String])> = dirs
            .iter()
            .filter_map(|(path, d)| Some((Path::new(path), d.stamp?, d.absent.as_slice())))
            .collect();
        keeping.extend(self.kept.iter().filter_map(|(path, (stamp, absent))| {
            let holds = !dirs.contains_key(path) && Stamp::of(Path::new(path)) == Some(*stamp);
            holds.then_some((Path::new(path), *stamp, absent.as_slice()))
        }));
        keeping.sort_by(|a, b| a.0.cmp(b.0));
        let target = kept::file_for(dir, Kind::Probes, root);
        match kept::replace(&target, &encode(root, &keeping)) {
            Ok(()) => tracing::debug!(
                "kept the configuration files' absence in {} directories",
                keeping.len()
            ),
            Err(e) => tracing::debug!(
                "the configuration files' looks were not kept: cannot write {}: {e}",
                target.display()
            ),
        }
    }
}

impl Dir {
    /// What this run knows to be at `name`.
    fn known(&self, name: &str) -> Option<Probe> {
        match self.absent.iter().any(|n| n == name) {
            true => Some(Probe::Absent),
            false => self.found.iter().find(|(n, _)| n == name).map(|(_, p)| *p),
        }
    }
}

/// What is at `path`, and whether the directory holds no entry of that name.
fn look_at(path: &Path) -> (Probe, bool) {
    match std::fs::read(path) {
        Ok(bytes) => (Probe::Content(*blake3::hash(&bytes).as_bytes()), false),
        // Absent is the common case; a link to nothing is an entry all the same.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let no_entry = path
                .symlink_metadata()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
            (Probe::Absent, no_entry)
        }
        Err(_) if !path.is_dir() => (Probe::Unreadable, false),
        Err(_) => (Probe::Absent, false),
    }
}

fn encode(root: &Path, dirs: &[(&Path, Stamp, &[String])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 * dirs.len());
    out.extend_from_slice(MAGIC);
    put_bytes(root.as_os_str().as_bytes(), &mut out);
    put_count(dirs.len(), &mut out);
    for (path, stamp, absent) in dirs {
        put_bytes(path.as_os_str().as_bytes(), &mut out);
        Stamp::put(Some(stamp), &mut out);
        put_count(absent.len(), &mut out);
        for name in *absent {
            put_bytes(name.as_bytes(), &mut out);
        }
    }
    kept::seal(&mut out);
    out
}

/// The probes kept for `root` in the cache directory `dir`; anything missing, damaged or kept
/// for another root is as good as none.
fn load(dir: &Path, root: &Path) -> Option<foldhash::HashMap<OsString, (Stamp, Vec<String>)>> {
    let bytes = std::fs::read(kept::file_for(dir, Kind::Probes, root)).ok()?;
    let mut r = Reader::unsealed(&bytes)?;
    if r.take(8)? != MAGIC || r.bytes()? != root.as_os_str().as_bytes() {
        return None;
    }
    let count = r.count()?;
    let mut dirs =
        foldhash::HashMap::with_capacity_and_hasher(count.min(1 << 16), Default::default());
    for _ in 0..count {
        let path = OsStr::from_bytes(r.bytes()?).to_owned();
        let stamp = Stamp::take(&mut r)??;
        let names = (0..r.count()?)
            .map(|_| String::from_utf8(r.bytes()?.to_vec()).ok())
            .collect::<Option<Vec<String>>>()?;
        dirs.insert(path, (stamp, names));
    }
    r.is_empty().then_some(dirs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kept::SETTLED;
    use std::fs;

    const NAMES: [&str; 2] = ["pyproject.toml", "ruff.toml"];

    fn names() -> Vec<String> {
        NAMES.map(String::from).to_vec()
    }

    /// Probes for `root`, for a run far enough after now that every stamp is settled.
    fn later(cache: &Path, root: &Path) -> Probes {
        Probes::kept_at(cache, root, SystemTime::now() + SETTLED * 2)
    }

    /// Looks in `dir` once with a fresh set of probes, which then keeps them; how many names
    /// had to be looked up.
    fn look_and_keep(cache: &Path, root: &Path, dir: &Path) -> (Vec<Probe>, usize) {
        let probes = later(cache, root);
        let found = probes.look(dir, &names());
        probes.keep();
        (found, probes.looked.load(Ordering::Relaxed))
    }

    fn setup() -> (tempfile::TempDir, tempfile::TempDir) {
        let (cache, root) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        fs::create_dir(root.path().join("pkg")).expect("mkdir");
        (cache, root)
    }

    #[test]
    fn absence_in_an_unchanged_directory_is_not_looked_up_again() {
        let (cache, root) = setup();
        let pkg = root.path().join("pkg");
        let first = look_and_keep(cache.path(), root.path(), &pkg);
        assert_eq!(first, (vec![Probe::Absent, Probe::Absent], 2));
        let again = look_and_keep(cache.path(), root.path(), &pkg);
        assert_eq!(again, (vec![Probe::Absent, Probe::Absent], 0));
    }

    #[test]
    fn a_file_added_or_rewritten_is_seen() {
        let (cache, root) = setup();
        let pkg = root.path().join("pkg");
        look_and_keep(cache.path(), root.path(), &pkg);
        fs::write(pkg.join("ruff.toml"), "a").expect("write");
        let (added, _) = look_and_keep(cache.path(), root.path(), &pkg);
        assert!(matches!(added[1], Probe::Content(_)), "{added:?}");
        // Rewritten in place: the directory's stamp does not change, its contents do.
        fs::write(pkg.join("ruff.toml"), "b").expect("write");
        let (rewritten, looked) = look_and_keep(cache.path(), root.path(), &pkg);
        assert_ne!(rewritten[1], added[1]);
        assert_eq!(rewritten[0], Probe::Absent);
        assert_eq!(looked, 1, "pyproject.toml's absence was kept");
    }

    #[test]
    fn a_link_to_nothing_is_looked_at_every_run() {
        let (cache, root) = setup();
        let pkg = root.path().join("pkg");
        fs::create_dir(root.path().join("elsewhere")).expect("mkdir");
        std::os::unix::fs::symlink("../elsewhere/ruff.toml", pkg.join("ruff.toml"))
            .expect("symlink");
        let (dangling, _) = look_and_keep(cache.path(), root.path(), &pkg);
        assert_eq!(dangling[1], Probe::Absent);
        // The target appears in another directory: this one's stamp holds.
        fs::write(root.path().join("elsewhere/ruff.toml"), "x").expect("write");
        let (found, _) = look_and_keep(cache.path(), root.path(), &pkg);
        assert!(matches!(found[1], Probe::Content(_)), "{found:?}");
    }

    #[test]
    fn a_directory_changed_too_recently_is_not_kept() {
        let (cache, root) = setup();
        let pkg = root.path().join("pkg");
        let now = Probes::kept(cache.path(), root.path());
        now.look(&pkg, &names());
        now.keep();
        assert!(!kept::file_for(cache.path(), Kind::Probes, root.path()).exists());
    }

    #[test]
    fn damaged_or_foreign_probes_are_as_good_as_none() {
        let (cache, root) = setup();
        let pkg = root.path().join("pkg");
        look_and_keep(cache.path(), root.path(), &pkg);
        let file = kept::file_for(cache.path(), Kind::Probes, root.path());
        let mut bytes = fs::read(&file).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        fs::write(&file, &bytes).expect("write");
        assert_eq!(look_and_keep(cache.path(), root.path(), &pkg).1, 2);
        let other = tempfile::tempdir().expect("tempdir");
        fs::copy(
            &file,
            kept::file_for(cache.path(), Kind::Probes, other.path()),
        )
        .expect("copy");
        assert!(load(cache.path(), other.path()).is_none());
    }
}
