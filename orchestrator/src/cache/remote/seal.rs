//! What the remote holds for an entry, and under which name: an authenticated envelope.
//!
//! Whoever can write to the shared storage could otherwise serve every machine a clean result
//! for a file with findings. So every object carries a keyed BLAKE3 tag over the entry's key
//! and value, under a key derived from `ORCHESTRATOR_CACHE_SECRET`; an object whose tag does
//! not verify is never served. Binding the key into the tag stops a valid value from being
//! replayed under another key (a clean file's result for a dirty file's). Object names are
//! keyed hashes of the cache keys too, so that a reader of the storage without the secret
//! cannot test whether a guessed file content is in the cache.

use crate::cache::Key;

/// The envelope's first bytes: a format version, so that a later format is not misread.
const MAGIC: &[u8; 4] = b"orc1";

/// Tag length: a BLAKE3 output.
const TAG: usize = 32;

/// The keys derived from the shared secret, one per purpose.
#[derive(Clone)]
pub struct Seal {
    tag_key: [u8; 32],
    name_key: [u8; 32],
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seal(..)")
    }
}

/// Why an object read from the remote was not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsealed {
    #[error("not an orchestrator cache object (bad header)")]
    Header,
    #[error("its tag does not verify: written without the secret, or altered")]
    Tag,
}

impl Seal {
    /// The keys for a secret, which must be non-empty; any length works, since both keys are
    /// derived from it.
    pub fn new(secret: &[u8]) -> Seal {
        Seal {
            tag_key: blake3::derive_key("orchestrator 2026 remote cache entry tag", secret),
            name_key: blake3::derive_key("orchestrator 2026 remote cache object name", secret),
        }
    }

    /// The object name of an entry: 64 hex digits that reveal nothing of the key.
    pub fn name(&self, key: &Key) -> String {
        blake3::keyed_hash(&self.name_key, key).to_hex().to_string()
    }

    /// The object for `value` stored under `key`.
    pub fn seal(&self, key: &Key, value: &[u8]) -> Vec<u8> {
        let mut object = Vec::with_capacity(MAGIC.len() + TAG + value.len());
        object.extend_from_slice(MAGIC);
        object.extend_from_slice(self.tag(key, value).as_bytes());
        object.extend_from_slice(value);
        object
    }

    /// The value inside an object read for `key`, if its tag verifies.
    pub fn open<'a>(&self, key: &Key, object: &'a [u8]) -> Result<&'a [u8], Unsealed> {
        let rest = object.strip_prefix(MAGIC).ok_or(Unsealed::Header)?;
        if rest.len() < TAG {
            return Err(Unsealed::Header);
        }
        let (tag, value) = rest.split_at(TAG);
        let tag: [u8; TAG] = tag.try_into().map_err(|_| Unsealed::Header)?;
        // `blake3::Hash` compares in constant time.
        if self.tag(key, value) == blake3::Hash::from_bytes(tag) {
            Ok(value)
        } else {
            Err(Unsealed::Tag)
        }
    }

    /// The key is fixed-length, so key and value cannot be shifted into each other.
    fn tag(&self, key: &Key, value: &[u8]) -> blake3::Hash {
        let mut h = blake3::Hasher::new_keyed(&self.tag_key);
        h.update(key);
        h.update(value);
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_under_its_key_and_secret_only() {
        let seal = Seal::new(b"team secret");
        let object = seal.seal(&[1; 32], b"findings");
        assert_eq!(seal.open(&[1; 32], &object), Ok(&b"findings"[..]));
        assert_eq!(seal.open(&[2; 32], &object), Err(Unsealed::Tag), "replayed");
        let other = Seal::new(b"another secret");
        assert_eq!(other.open(&[1; 32], &object), Err(Unsealed::Tag));
    }

    #[test]
    fn any_altered_byte_or_a_short_object_is_refused() {
        let seal = Seal::new(b"s");
        let object = seal.seal(&[1; 32], b"findings");
        for i in 0..object.len() {
            let mut altered = object.clone();
            altered[i] ^= 1;
            assert!(seal.open(&[1; 32], &altered).is_err(), "byte {i}");
        }
        assert_eq!(seal.open(&[1; 32], &object[..20]), Err(Unsealed::Header));
        assert_eq!(seal.open(&[1; 32], b""), Err(Unsealed::Header));
        let mut longer = object.clone();
        longer.push(0);
        assert_eq!(seal.open(&[1; 32], &longer), Err(Unsealed::Tag));
    }

    #[test]
    fn names_depend_on_the_secret_and_are_not_the_key() {
        let (a, b) = (Seal::new(b"a"), Seal::new(b"b"));
        let key = [7; 32];
        assert_eq!(a.name(&key).len(), 64);
        assert_ne!(a.name(&key), b.name(&key));
        assert_ne!(
            a.name(&key),
            blake3::Hash::from_bytes(key).to_hex().to_string()
        );
        assert_eq!(a.name(&key), Seal::new(b"a").name(&key));
    }
}
