//! The modules pyright finds outside the project's root: in directories its configuration adds
//! (`"extraPaths": ["../shared"]`, an execution environment's), and in those the interpreter's
//! search path adds (`PYTHONPATH`, the `.pth` file of a sibling project's editable install;
//! see [`crate::environment`]). A result's inputs are paths under the root, so these cannot be
//! among them; instead a stamp of every module file under those directories goes into
//! pyright's tool version, and a change there checks every file again. Coarse, but never
//! stale: an edit to a sibling package must not leave its importers' diagnostics as they were.
//! Stating a sibling package of a few hundred modules costs a few milliseconds a run.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// `modules outside the root 1f2e3d4c5b6a`: a digest of the path, size, modification time and
/// inode of every `.py` and `.pyi` file under `dirs`; `None` when there are no such
/// directories.
pub fn describe(dirs: &[PathBuf]) -> Option<String> {
    if dirs.is_empty() {
        return None;
    }
    let mut h = blake3::Hasher::new();
    for dir in dirs {
        h.update(dir.as_os_str().as_bytes());
        h.update(&[0]);
        for (path, m) in modules(dir) {
            h.update(path.as_os_str().as_bytes());
            h.update(&[0]);
            for n in [m.size() as i64, m.mtime(), m.mtime_nsec(), m.ino() as i64] {
                h.update(&n.to_le_bytes());
            }
        }
    }
    Some(format!(
        "modules outside the root {}",
        &h.finalize().to_hex()[..12]
    ))
}

/// Every module file under `dir`, in name order, with its metadata. Ignore files are not
/// honoured and links are followed, as pyright's resolver does.
fn modules(dir: &Path) -> impl Iterator<Item = (PathBuf, std::fs::Metadata)> {
    ignore::WalkBuilder::new(dir)
        .standard_filters(false)
        .follow_links(true)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build()
        .filter_map(Result::ok)
        .filter(|entry| {
            let module = |ext: &std::ffi::OsStr| ext == "py" || ext == "pyi";
            entry.path().extension().is_some_and(module)
        })
        .filter_map(|entry| {
            let m = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
            Some((entry.into_path(), m))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_edited_added_or_removed_changes_the_description_and_nothing_else_does() {
        let shared = crate::tree(&["pkg/a.py", "pkg/b.pyi"], "x = 1\n");
        let dirs = [shared.path().to_owned()];
        assert_eq!(describe(&[]), None);
        let first = describe(&dirs).expect("a description");
        assert!(first.starts_with("modules outside the root "), "{first}");
        std::fs::write(shared.path().join("notes.txt"), "not a module").expect("written");
        assert_eq!(describe(&dirs).as_ref(), Some(&first), "not a module");
        std::fs::write(shared.path().join("pkg/a.py"), "x = 22\n").expect("written");
        let edited = describe(&dirs).expect("a description");
        assert_ne!(edited, first, "edited");
        std::fs::write(shared.path().join("pkg/c.py"), "").expect("written");
        let added = describe(&dirs).expect("a description");
        assert_ne!(added, edited, "added");
        std::fs::remove_file(shared.path().join("pkg/c.py")).expect("removed");
        assert_eq!(describe(&dirs), Some(edited), "removed");
    }
}
