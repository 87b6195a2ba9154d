//! File globs as users and manifests write them (`src/**/*.py`), compiled once.
//!
//! `*` does not cross `/` (`*.py` is a top-level file; `**/*.py` is any), as in `.gitignore`
//! and in the tools wrapped; a pattern is compiled where it is read, so that a bad one is
//! reported with the key or validator it came from before anything runs.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// A compiled list of globs.
#[derive(Debug, Clone)]
pub struct Globs {
    patterns: Vec<String>,
    set: GlobSet,
}

/// A pattern that is not a valid glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid glob {pattern:?}: {reason}")]
pub struct GlobError {
    pub pattern: String,
    pub reason: String,
}

impl Globs {
    /// Compiles `patterns`; the first invalid one is the error.
    pub fn new(patterns: Vec<String>) -> Result<Globs, GlobError> {
        let mut set = GlobSetBuilder::new();
        for pattern in &patterns {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| GlobError {
                    pattern: pattern.clone(),
                    reason: e.kind().to_string(),
                })?;
            set.add(glob);
        }
        let set = set.build().map_err(|e| GlobError {
            pattern: patterns.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Globs { patterns, set })
    }

    /// Whether any pattern matches this root-relative, `/`-separated path.
    pub fn is_match(&self, path: &str) -> bool {
        self.set.is_match(path)
    }
}

impl Default for Globs {
    /// No pattern: matches nothing.
    fn default() -> Globs {
        Globs {
            patterns: Vec::new(),
            set: GlobSet::empty(),
        }
    }
}

impl PartialEq for Globs {
    fn eq(&self, other: &Globs) -> bool {
        self.patterns == other.patterns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_star_stays_in_its_directory_and_a_double_star_does_not() {
        let globs = Globs::new(vec!["*.py".into(), "src/**/*.pyi".into()]).expect("valid");
        assert!(globs.is_match("a.py"));
        assert!(!globs.is_match("d/a.py"));
        assert!(globs.is_match("src/x/y/a.pyi"));
        assert!(!Globs::default().is_match("a.py"));
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        let err = Globs::new(vec!["ok/*.py".into(), "src/[a.py".into()]).expect_err("invalid");
        assert_eq!(err.pattern, "src/[a.py");
        assert!(
            err.to_string().starts_with("invalid glob \"src/[a.py\": "),
            "{err}"
        );
    }
}
