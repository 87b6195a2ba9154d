//! Content digests: the one hash function of the coordinator (BLAKE3), in a module of its own
//! so that both the file hashing and the cache can use it without depending on each other.

use std::path::Path;

/// A BLAKE3 digest of a file's contents.
pub type Hash = [u8; 32];

/// Streams a file through BLAKE3 without holding it in memory.
pub fn hash_file(path: &Path) -> Result<Hash, String> {
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(std::fs::File::open(path).map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    Ok(*hasher.finalize().as_bytes())
}
