//! Which of the run's files a validator checks, and their contents' hashes.

use crate::globs::{GlobError, Globs};
use crate::hashing::FileHashes;
use crate::plan::PlannedValidator;
use protocol::{FileInput, Manifest};

/// The selected files this validator checks: its configured globs (compiled when the
/// configuration was read) or else its manifest's, minus its configured excludes. An invalid
/// glob here can only be the manifest's.
pub fn choose(
    validator: &PlannedValidator,
    manifest: &Manifest,
    files: &[String],
) -> Result<Vec<String>, GlobError> {
    let declared;
    let include = match &validator.settings.files {
        Some(globs) => globs,
        None => {
            declared = Globs::new(manifest.globs.clone())?;
            &declared
        }
    };
    let exclude = &validator.settings.exclude;
    Ok(files
        .iter()
        .filter(|f| include.is_match(f) && !exclude.is_match(f))
        .cloned()
        .collect())
}

/// Hashes the files; those that cannot be read are left out with a warning.
pub async fn read(hashes: &FileHashes, files: Vec<String>) -> (Vec<FileInput>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut unreadable = Vec::new();
    for (path, hash) in hashes.of(files).await {
        match hash {
            Ok(content_hash) => inputs.push(FileInput { path, content_hash }),
            Err(reason) => unreadable.push(format!("{path}: cannot be read ({reason}); skipped")),
        }
    }
    (inputs, unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Scope;

    fn validator(exclude: &[&str]) -> PlannedValidator {
        PlannedValidator {
            name: "v".into(),
            launch: crate::session::Launch {
                program: "v".into(),
                args: vec![],
            },
            settings: crate::config::ValidatorConfig {
                exclude: Globs::new(exclude.iter().map(|s| s.to_string()).collect())
                    .expect("valid"),
                ..Default::default()
            },
            disabled: false,
        }
    }

    #[test]
    fn globs_do_not_cross_directories_unless_asked_to() {
        let manifest = Manifest::new("v", "1", protocol::Dimension::Security, Scope::PerFile)
            .with_globs(["*.py", "src/*.py"]);
        let files: Vec<String> = [
            "a.py",
            "src/b.py",
            "src/deep/c.py",
            "d/skip_e.py",
            "src/skip_f.py",
        ]
        .map(String::from)
        .into();
        let got = choose(&validator(&["**/skip_*.py"]), &manifest, &files).expect("valid");
        assert_eq!(got, ["a.py", "src/b.py"]);
    }

    #[test]
    fn a_bad_manifest_glob_is_an_error() {
        let manifest = Manifest::new("v", "1", protocol::Dimension::Security, Scope::PerFile)
            .with_globs(["[x"]);
        let err = choose(&validator(&[]), &manifest, &["a".into()]).expect_err("invalid");
        assert_eq!(err.pattern, "[x");
    }
}
