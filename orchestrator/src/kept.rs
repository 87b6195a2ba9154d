//! Files the coordinator keeps per root in its cache directory, beside the result store: the
//! findings of the last JSON report ([`crate::rendered`]) and the tree's listing
//! ([`crate::listing`]).
//!
//! One file per root and kind, `<kind>/<digest of the root>`, replaced by a rename: a run
//! holding one open keeps reading the file it opened, whatever another run writes meanwhile.
//! Each is a copy of what can be worked out again, so `cache clear` removes them all.

use std::path::{Path, PathBuf};

/// What a kept file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rendered,
    Listing,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Rendered, Kind::Listing];

    fn directory(self) -> &'static str {
        match self {
            Kind::Rendered => "rendered",
            Kind::Listing => "listing",
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
