//! The configuration files a validator declares (`pyproject.toml`, `ruff.toml`…), hashed as
//! they apply to each directory: tools look for them in a file's directory and every parent, so
//! a file's key covers the declared files found from its directory up to the filesystem root.

use super::probes::{Probe, Probes};
use crate::digest::Hash;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Memoised hashes of the declared configuration files, per directory.
#[derive(Debug)]
pub struct ConfigFiles {
    /// Declared names, sorted, so the declaration order does not matter.
    names: Vec<String>,
    /// Keyed by the directory's path as bytes, which hash far faster than a `Path`'s
    /// components.
    by_dir: foldhash::HashMap<OsString, Hash>,
    /// The last directory asked about (relative to the root) and its hash: files come sorted
    /// by path, so most are in the directory of the one before, and comparing bytes is cheaper
    /// than joining and hashing a path.
    last: Option<(String, Hash)>,
    probes: Arc<Probes>,
}

impl ConfigFiles {
    /// The hashes of `declared` files, looked for through the run's `probes`.
    pub fn new(declared: &[String], probes: Arc<Probes>) -> ConfigFiles {
        let mut names = declared.to_vec();
        names.sort();
        names.dedup();
        ConfigFiles {
            names,
            by_dir: foldhash::HashMap::default(),
            last: None,
            probes,
        }
    }

    /// The hash of every declared file in `dir` and its ancestors, each with its distance from
    /// `dir` (which of two `pyproject.toml` files is nearer matters) but not its absolute path
    /// (so clones of one repository share results).
    pub fn for_dir(&mut self, dir: &Path) -> Hash {
        if let Some(hash) = self.by_dir.get(dir.as_os_str()) {
            return *hash;
        }
        let parent = match dir.parent() {
            Some(parent) => self.for_dir(parent),
            None => [0; 32],
        };
        let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 config files");
        h.update(&parent);
        for (name, probe) in self.names.iter().zip(self.probes.look(dir, &self.names)) {
            match probe {
                Probe::Content(hash) => {
                    h.update(&[1]);
                    h.update(&(name.len() as u64).to_le_bytes());
                    h.update(name.as_bytes());
                    h.update(&hash);
                }
                Probe::Unreadable => {
                    h.update(&[2]);
                    h.update(name.as_bytes());
                }
                Probe::Absent => {}
            }
        }
        let hash = *h.finalize().as_bytes();
        self.by_dir.insert(dir.as_os_str().to_owned(), hash);
        hash
    }

    /// The hash for a file given relative to `root`, with `/` between its components as the
    /// run's paths have.
    pub fn for_file(&mut self, root: &Path, path: &str) -> Hash {
        let dir = path.rfind('/').map_or("", |end| &path[..end]);
        if let Some((last, hash)) = &self.last {
            if last == dir {
                return *hash;
            }
        }
        let hash = match dir {
            "" => self.for_dir(root),
            dir => self.for_dir(&root.join(dir)),
        };
        self.last = Some((dir.to_owned(), hash));
        hash
    }

    /// One hash for a `project` validator: the declared files seen from every directory that
    /// holds an input.
    pub fn for_project<'a>(&mut self, root: &Path, paths: impl Iterator<Item = &'a str>) -> Hash {
        let mut dirs: Vec<PathBuf> = paths
            .map(|p| root.join(p).parent().unwrap_or(root).to_owned())
            .collect();
        dirs.sort();
        dirs.dedup();
        let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 project config files");
        h.update(&self.for_dir(root));
        for dir in dirs {
            h.update(&self.for_dir(&dir));
        }
        *h.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("pkg/sub")).expect("mkdir");
        std::fs::write(dir.path().join("pkg/sub/a.py"), "x = 1\n").expect("write");
        dir
    }

    fn hash_of(root: &Path) -> Hash {
        ConfigFiles::new(
            &["pyproject.toml".into(), "ruff.toml".into()],
            Arc::default(),
        )
        .for_file(root, "pkg/sub/a.py")
    }

    #[test]
    fn a_declared_file_in_any_ancestor_counts_and_others_do_not() {
        let dir = setup();
        let before = hash_of(dir.path());
        std::fs::write(dir.path().join("setup.cfg"), "[x]").expect("write");
        assert_eq!(hash_of(dir.path()), before, "an undeclared file");
        std::fs::write(dir.path().join("ruff.toml"), "line-length = 80").expect("write");
        let with_root_config = hash_of(dir.path());
        assert_ne!(with_root_config, before, "a declared file at the root");
        std::fs::write(dir.path().join("ruff.toml"), "line-length = 90").expect("write");
        assert_ne!(hash_of(dir.path()), with_root_config, "its contents");
    }

    #[test]
    fn where_a_declared_file_sits_matters() {
        let dir = setup();
        std::fs::write(dir.path().join("pkg/ruff.toml"), "x").expect("write");
        let in_pkg = hash_of(dir.path());
        std::fs::remove_file(dir.path().join("pkg/ruff.toml")).expect("rm");
        std::fs::write(dir.path().join("pkg/sub/ruff.toml"), "x").expect("write");
        assert_ne!(hash_of(dir.path()), in_pkg);
    }

    #[test]
    fn validators_sharing_probes_see_only_their_own_names() {
        let dir = setup();
        std::fs::write(dir.path().join("ruff.toml"), "x").expect("write");
        std::fs::write(dir.path().join("pkg/pyproject.toml"), "y").expect("write");
        let probes = Arc::new(Probes::default());
        let ruff = |probes| {
            ConfigFiles::new(&["pyproject.toml".into(), "ruff.toml".into()], probes)
                .for_file(dir.path(), "pkg/sub/a.py")
        };
        let pyright = |probes| {
            ConfigFiles::new(&["pyproject.toml".into()], probes)
                .for_file(dir.path(), "pkg/sub/a.py")
        };
        assert_eq!(ruff(probes.clone()), ruff(Arc::default()));
        assert_eq!(pyright(probes.clone()), pyright(Arc::default()));
        assert_ne!(ruff(probes.clone()), pyright(probes));
    }

    #[test]
    fn files_one_after_another_each_get_their_own_directorys_hash() {
        let dir = setup();
        std::fs::write(dir.path().join("pkg/sub/b.py"), "y = 1\n").expect("write");
        std::fs::write(dir.path().join("pkg/c.py"), "z = 1\n").expect("write");
        std::fs::write(dir.path().join("pkg/sub/ruff.toml"), "x").expect("write");
        let alone = |path: &str| {
            ConfigFiles::new(&["ruff.toml".into()], Arc::default()).for_file(dir.path(), path)
        };
        let mut one = ConfigFiles::new(&["ruff.toml".into()], Arc::default());
        let paths = ["pkg/sub/a.py", "pkg/sub/b.py", "pkg/c.py", "pkg/sub/a.py"];
        let hashes: Vec<Hash> = paths.iter().map(|p| one.for_file(dir.path(), p)).collect();
        let expected: Vec<Hash> = paths.iter().map(|p| alone(p)).collect();
        assert_eq!(hashes, expected);
        assert_ne!(
            hashes[1], hashes[2],
            "pkg/sub has a ruff.toml, pkg has none"
        );
    }

    #[test]
    fn clones_in_different_places_agree() {
        let (a, b) = (setup(), setup());
        for d in [&a, &b] {
            std::fs::write(d.path().join("pyproject.toml"), "[tool.ruff]").expect("write");
        }
        assert_eq!(hash_of(a.path()), hash_of(b.path()));
    }
}
