//! Content hashes of the files a run checks, computed once per file and shared by every
//! validator that checks it.
//!
//! The stat fast path: a file whose size, mtime, ctime and inode equal what the cache recorded
//! is not read again. As in git, an entry recorded less than `RACY_WINDOW_NS` (2 s) after the file
//! last changed proves nothing (the file may have changed again within the filesystem's
//! timestamp granularity without its stat changing), so such a file is hashed again.

use crate::below::{Below, FileType, Links, Status};
use crate::cache::{Cache, FileStat};
use crate::digest::{hash_file, Hash};
use crate::locks::lock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How long after a file's last change its stat must have been recorded to be trusted: more
/// than the coarsest timestamp granularity in common use (2 s on FAT) and the kernel's coarse
/// clock.
const RACY_WINDOW_NS: i64 = 2_000_000_000;

type Known = foldhash::HashMap<String, Result<Hash, String>>;

/// Memoised content hashes of files under one root.
#[derive(Debug, Clone)]
pub struct FileHashes {
    root: Arc<Below>,
    cache: Cache,
    known: Arc<Mutex<Known>>,
    /// Stats of files hashed this run, to be recorded by [`FileHashes::persist`].
    fresh: Arc<Mutex<Vec<(String, FileStat)>>>,
    /// Held while files are examined: validators starting together ask for mostly the same
    /// files, and the later ones find them known instead of examining them again.
    turn: Arc<Mutex<()>>,
}

impl FileHashes {
    pub fn new(root: &Path, cache: Cache) -> FileHashes {
        FileHashes {
            root: Arc::new(Below::new(root)),
            cache,
            known: Arc::default(),
            fresh: Arc::default(),
            turn: Arc::default(),
        }
    }

    /// The root, held open to state the paths below it.
    pub fn root(&self) -> &Below {
        &self.root
    }

    /// Hashes of `paths` (relative to the root), reading only files not hashed yet and not
    /// known unchanged to the cache. A file that cannot be read (deleted since it was selected,
    /// say) gives the reason instead.
    pub async fn of(&self, paths: Vec<String>) -> Vec<(String, Result<Hash, String>)> {
        let this = self.clone();
        match tokio::task::spawn_blocking(move || this.of_blocking(paths)).await {
            Ok(hashes) => hashes,
            // The executor that asked is the one to fail, reported as an internal error.
            Err(e) => match e.try_into_panic() {
                Ok(payload) => std::panic::resume_unwind(payload),
                Err(cancelled) => panic!("hashing was cancelled: {cancelled}"),
            },
        }
    }

    fn of_blocking(&self, paths: Vec<String>) -> Vec<(String, Result<Hash, String>)> {
        let turn = lock(&self.turn);
        let todo: Vec<&String> = {
            let known = lock(&self.known);
            paths.iter().filter(|p| !known.contains_key(*p)).collect()
        };
        if !todo.is_empty() {
            // The stats kept for these files are read while the files are stated: neither
            // needs the other. A file that is not there (a stub a module's imports would find,
            // say) costs the lookup little: many paths are one scan of the kept stats by range,
            // a few one indexed query each.
            let root = self.root.path();
            let named: Vec<String> = (todo.iter())
                .map(|path| root.join(path).to_string_lossy().into_owned())
                .collect();
            let (stated, remembered) = std::thread::scope(|scope| {
                let remembered = scope.spawn(|| self.cache.file_stats(&named));
                let stated = crate::parallel::on_every_core(todo.clone(), |path| {
                    let status = self.root.status(path.as_bytes(), Links::Follow);
                    (regular_file(status), now_ns())
                });
                let remembered =
                    (remembered.join()).unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                (stated, remembered)
            });
            let mut hashed = Vec::with_capacity(stated.len());
            let mut work = Vec::new();
            let examined = todo.into_iter().zip(named).zip(stated).zip(remembered);
            for (((path, key), (meta, examined)), entry) in examined {
                match meta {
                    Ok(meta) => work.push(((path, key, meta, examined), entry)),
                    Err(e) => hashed.push((path.clone(), Err(e))),
                }
            }
            let examined =
                crate::parallel::on_every_core(work, |((path, abs, meta, examined), entry)| {
                    let (hash, stat) = hash_with_meta(Path::new(&abs), &meta, examined, entry);
                    ((path.clone(), hash), stat.map(|stat| (abs, stat)))
                });
            let (read, fresh): (Vec<_>, Vec<_>) = examined.into_iter().unzip();
            hashed.extend(read);
            lock(&self.known).extend(hashed);
            lock(&self.fresh).extend(fresh.into_iter().flatten());
        }
        drop(turn);
        let known = lock(&self.known);
        paths
            .into_iter()
            .map(|path| {
                let hash = known[&path].clone();
                (path, hash)
            })
            .collect()
    }

    /// Records the stats of the files hashed this run, so the next run need not read them.
    pub async fn persist(&self) {
        let fresh = std::mem::take(&mut *lock(&self.fresh));
        let cache = self.cache.clone();
        let _ = tokio::task::spawn_blocking(move || cache.put_file_stats(&fresh)).await;
    }
}

/// Hashes of files as they are now, for a caller that must not trust what was hashed earlier
/// in the run (a result's inputs: the validator may just have written one, a baseline say) but
/// asks about the same files again and again (each batch of results names most of the
/// project's modules). A file is read again only when its stat changed since this memo hashed
/// it, or was too recent then to be trusted.
#[derive(Debug, Default)]
pub struct Rehash(Mutex<HashMap<PathBuf, FileStat>>);

impl Rehash {
    /// The file's hash, or `None` when it is absent or unreadable.
    pub fn hash(&self, path: &Path) -> Option<Hash> {
        let remembered = lock(&self.0).get(path).cloned();
        let (hash, stat) = hash_with_stat(path, remembered);
        if let Some(stat) = stat {
            lock(&self.0).insert(path.to_owned(), stat);
        }
        hash.ok()
    }
}

/// A file's hash, from its remembered stat when that can be trusted, else by reading it; and
/// the stat to remember when it was read.
fn hash_with_stat(
    path: &Path,
    remembered: Option<FileStat>,
) -> (Result<Hash, String>, Option<FileStat>) {
    match regular_file(std::fs::metadata(path).map(|meta| Status::of(&meta))) {
        Ok(meta) => hash_with_meta(path, &meta, now_ns(), remembered),
        Err(e) => (Err(e), None),
    }
}

/// The status of a regular file; why not, for anything else.
fn regular_file(status: std::io::Result<Status>) -> Result<Status, String> {
    match status {
        Ok(meta) if meta.kind == FileType::File => Ok(meta),
        Ok(_) => Err("not a regular file".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// [`hash_with_stat`] of a file whose metadata `meta` was read at `examined` (ns).
fn hash_with_meta(
    path: &Path,
    meta: &Status,
    examined: i64,
    remembered: Option<FileStat>,
) -> (Result<Hash, String>, Option<FileStat>) {
    let stat = |hash| FileStat {
        size: i64::try_from(meta.size).unwrap_or(i64::MAX),
        mtime_ns: meta.modified,
        ctime_ns: meta.changed,
        inode: meta.ino as i64,
        hash,
        written_ns: examined,
    };
    if let Some(old) = remembered {
        let now = stat(old.hash);
        let same = (now.size, now.mtime_ns, now.ctime_ns, now.inode)
            == (old.size, old.mtime_ns, old.ctime_ns, old.inode);
        let racy = old.mtime_ns.max(old.ctime_ns) + RACY_WINDOW_NS > old.written_ns;
        if same && !racy {
            return (Ok(old.hash), None);
        }
    }
    match hash_file(path) {
        Ok(hash) => (Ok(hash), Some(stat(hash))),
        Err(e) => (Err(e), None),
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_file_gives_its_reason_and_others_still_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), "x").expect("write");
        let hashes = FileHashes::new(dir.path(), Cache::off());
        let got = hashes.of(vec!["a".into(), "gone".into()]).await;
        assert_eq!(got[0].1, Ok(*blake3::hash(b"x").as_bytes()));
        assert!(got[1]
            .1
            .as_ref()
            .expect_err("missing")
            .contains("No such file"));
    }

    fn stat_of(path: &Path, hash: Hash, age_ns: i64) -> FileStat {
        let meta = Status::of(&std::fs::metadata(path).expect("stat"));
        FileStat {
            size: meta.size as i64,
            mtime_ns: meta.modified,
            ctime_ns: meta.changed,
            inode: meta.ino as i64,
            hash,
            written_ns: meta.modified + age_ns,
        }
    }

    #[tokio::test]
    async fn many_files_hash_as_one_by_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let names: Vec<String> = (0..600).map(|i| format!("f{i}")).collect();
        for name in &names {
            std::fs::write(dir.path().join(name), name).expect("write");
        }
        let hashes = FileHashes::new(dir.path(), Cache::off());
        let mut asked = names.clone();
        asked.push("absent".into());
        let got = hashes.of(asked).await;
        for (name, (path, hash)) in names.iter().zip(&got) {
            assert_eq!(path, name);
            assert_eq!(hash, &Ok(*blake3::hash(name.as_bytes()).as_bytes()));
        }
        assert!(got[600].1.is_err());
    }

    #[test]
    fn a_rehash_sees_a_file_rewritten_at_once_with_the_same_size() {
        // A validator writing a baseline twice within one clock tick: the second content must
        // be seen, however alike the stats.
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("baseline.png");
        let rehash = Rehash::default();
        std::fs::write(&file, "one").expect("write");
        assert_eq!(rehash.hash(&file), Some(*blake3::hash(b"one").as_bytes()));
        std::fs::write(&file, "two").expect("write");
        assert_eq!(rehash.hash(&file), Some(*blake3::hash(b"two").as_bytes()));
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(rehash.hash(&file), None);
    }

    #[test]
    fn a_trusted_stat_is_not_read_and_a_racy_or_changed_one_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a");
        std::fs::write(&file, "x").expect("write");
        let real = *blake3::hash(b"x").as_bytes();
        // A remembered hash that differs from the content shows whether the file was read.
        let planted = [9; 32];
        let trusted = stat_of(&file, planted, 10 * RACY_WINDOW_NS);
        assert_eq!(
            hash_with_stat(&file, Some(trusted.clone())),
            (Ok(planted), None)
        );
        let racy = stat_of(&file, planted, RACY_WINDOW_NS / 2);
        let (hash, again) = hash_with_stat(&file, Some(racy));
        assert_eq!(hash, Ok(real));
        assert_eq!(again.expect("recorded again").hash, real);
        let mut changed = trusted;
        changed.size += 1;
        assert_eq!(hash_with_stat(&file, Some(changed)).0, Ok(real));
    }
}
