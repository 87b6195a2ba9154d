//! Content hashes of the files a run checks, computed once per file and shared by every
//! validator that checks it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A BLAKE3 digest of a file's contents.
pub type Hash = [u8; 32];

/// Memoised content hashes of files under one root.
#[derive(Debug, Clone)]
pub struct FileHashes {
    root: Arc<PathBuf>,
    known: Arc<Mutex<HashMap<String, Result<Hash, String>>>>,
}

impl FileHashes {
    pub fn new(root: &Path) -> FileHashes {
        FileHashes {
            root: Arc::new(root.to_owned()),
            known: Arc::default(),
        }
    }

    /// Hashes of `paths` (relative to the root), reading only files not hashed yet. A file that
    /// cannot be read (deleted since it was selected, say) gives the reason instead.
    pub async fn of(&self, paths: Vec<String>) -> Vec<(String, Result<Hash, String>)> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.of_blocking(paths))
            .await
            .expect("hashing does not panic")
    }

    fn of_blocking(&self, paths: Vec<String>) -> Vec<(String, Result<Hash, String>)> {
        paths
            .into_iter()
            .map(|path| {
                let cached = self.lock().get(&path).cloned();
                let hash = cached.unwrap_or_else(|| {
                    let hash = hash_file(&self.root.join(&path));
                    self.lock().insert(path.clone(), hash.clone());
                    hash
                });
                (path, hash)
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Result<Hash, String>>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Streams a file through BLAKE3 without holding it in memory.
pub fn hash_file(path: &Path) -> Result<Hash, String> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(*hasher.finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_missing_file_gives_its_reason_and_others_still_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), "x").expect("write");
        let hashes = FileHashes::new(dir.path());
        let got = hashes.of(vec!["a".into(), "gone".into()]).await;
        assert_eq!(got[0].1, Ok(*blake3::hash(b"x").as_bytes()));
        assert!(got[1]
            .1
            .as_ref()
            .expect_err("missing")
            .contains("No such file"));
    }
}
