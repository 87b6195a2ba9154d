//! The cache key: one function, [`key`], that names everything that can change a file's
//! findings. A cached answer is only as right as this list is complete.

use crate::digest::Hash;
use protocol::{FileInput, Manifest};

/// Bumped whenever the inputs of [`key`], their order or their encoding change, so that no
/// entry written under the old rules is ever served.
pub const KEY_VERSION: u32 = 2;

/// A cache key: a BLAKE3 digest.
pub type Key = [u8; 32];

/// What every key of one validator run shares.
#[derive(Debug, Clone)]
pub struct KeyInputs {
    validator: String,
    validator_version: String,
    tool: Option<(String, String)>,
    /// The validator's configuration table as JSON with sorted keys.
    config: String,
    /// The hasher of every key of the run, having taken the versions and the fields above:
    /// each key clones it instead of hashing them again (thousands of keys a run).
    prefix: blake3::Hasher,
}

impl KeyInputs {
    /// The inputs a manifest and a configuration table give; `config_json` is normalised, so
    /// the order of its keys does not matter.
    pub fn new(manifest: &Manifest, config_json: &str) -> KeyInputs {
        let mut inputs = KeyInputs {
            validator: manifest.name.clone(),
            validator_version: manifest.version.clone(),
            tool: manifest
                .tool
                .as_ref()
                .map(|t| (t.name.clone(), t.version.clone())),
            config: normalise(config_json),
            prefix: blake3::Hasher::new(),
        };
        inputs.prefix = prefix([KEY_VERSION, protocol::PROTOCOL_VERSION], &inputs);
        inputs
    }
}

/// What one key is for.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A file checked by a `per_file` validator: its findings depend on it alone.
    File { path: &'a str, content: &'a Hash },
    /// A file checked by a `project` validator: its findings depend on every input, summed up
    /// by [`project_inputs`].
    ProjectFile { inputs: &'a Hash, path: &'a str },
}

/// The key of one file's findings. Its inputs, in order:
///
/// 1. [`KEY_VERSION`] and [`protocol::PROTOCOL_VERSION`];
/// 2. the validator's name and version, from its manifest;
/// 3. the wrapped tool's name and exact version, or their absence;
/// 4. the validator's effective configuration table, normalised (keys sorted at every level);
/// 5. `config_files`: the contents of the configuration files its manifest declares, as found
///    for this file (see [`super::ConfigFiles`]);
/// 6. the subject: for a `per_file` validator the file's path relative to the root and its
///    content hash; for a `project` validator the hash of every input ([`project_inputs`]) and
///    the file's path.
///
/// Every variable-length field is length-prefixed and the hasher is keyed for this purpose
/// alone, so no two different input lists hash the same bytes.
pub fn key(inputs: &KeyInputs, config_files: &Hash, subject: Subject<'_>) -> Key {
    finish(inputs.prefix.clone(), config_files, subject)
}

/// The hasher of a key having taken inputs 1 to 4 of [`key`], with the versions as arguments
/// so that tests can prove they are inputs.
fn prefix(versions: [u32; 2], inputs: &KeyInputs) -> blake3::Hasher {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 result cache key");
    for version in versions {
        h.update(&version.to_le_bytes());
    }
    identity(&mut h, inputs);
    h
}

/// Inputs 5 and 6 of [`key`], and the key.
fn finish(mut h: blake3::Hasher, config_files: &Hash, subject: Subject<'_>) -> Key {
    h.update(config_files);
    match subject {
        Subject::File { path, content } => {
            h.update(&[0]);
            field(&mut h, path.as_bytes());
            h.update(content);
        }
        Subject::ProjectFile { inputs: all, path } => {
            h.update(&[1]);
            h.update(all);
            field(&mut h, path.as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

/// Where the [`super::RunRecord`] of a validator run with these inputs in `root` is kept: one
/// slot per validator identity and checkout, so that each complete run replaces the last one's
/// record, and two checkouts sharing a cache do not take each other's. `--changed` runs have a
/// slot of their own, so that a hook's runs do not displace the record of whole-tree runs.
pub fn run_slot(inputs: &KeyInputs, root: &std::path::Path, changed: bool) -> Key {
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 run record slot");
    for version in [KEY_VERSION, protocol::PROTOCOL_VERSION] {
        h.update(&version.to_le_bytes());
    }
    identity(&mut h, inputs);
    field(&mut h, root.as_os_str().as_encoded_bytes());
    h.update(&[u8::from(changed)]);
    *h.finalize().as_bytes()
}

/// One hash over the sorted (path, content hash) pairs of every input of a `project` validator:
/// adding, removing, renaming or changing any file changes it.
pub fn project_inputs(files: &[FileInput]) -> Hash {
    let mut sorted: Vec<&FileInput> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = blake3::Hasher::new_derive_key("orchestrator 2026 project inputs");
    h.update(&(sorted.len() as u64).to_le_bytes());
    for file in sorted {
        field(&mut h, file.path.as_bytes());
        h.update(&file.content_hash);
    }
    *h.finalize().as_bytes()
}

/// What every key of one validator run shares: the validator's name and version, the tool's
/// name and version or their absence, and the configuration table.
fn identity(h: &mut blake3::Hasher, inputs: &KeyInputs) {
    field(h, inputs.validator.as_bytes());
    field(h, inputs.validator_version.as_bytes());
    match &inputs.tool {
        None => {
            h.update(&[0]);
        }
        Some((name, version)) => {
            h.update(&[1]);
            field(h, name.as_bytes());
            field(h, version.as_bytes());
        }
    }
    field(h, inputs.config.as_bytes());
}

fn field(h: &mut blake3::Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// JSON with object keys sorted at every level (serde_json's map is ordered); text that is not
/// JSON is kept as it is, which can only cost a miss.
fn normalise(json: &str) -> String {
    serde_json::from_str::<serde_json::Value>(json)
        .map_or_else(|_| json.to_owned(), |v| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Dimension, Scope};

    fn manifest() -> Manifest {
        Manifest::new("ruff", "0.1.0", Dimension::CodeQuality, Scope::PerFile)
            .with_tool("ruff", "0.8.4")
    }

    const CONTENT: Hash = [7; 32];
    const CONFIG_FILES: Hash = [9; 32];

    fn file_key(inputs: &KeyInputs) -> Key {
        key(
            inputs,
            &CONFIG_FILES,
            Subject::File {
                path: "src/a.py",
                content: &CONTENT,
            },
        )
    }

    fn base() -> Key {
        file_key(&KeyInputs::new(&manifest(), r#"{"select":["E"]}"#))
    }

    #[test]
    fn equal_inputs_give_equal_keys() {
        assert_eq!(base(), base());
    }

    #[test]
    fn the_key_version_and_the_protocol_version_are_inputs() {
        let inputs = KeyInputs::new(&manifest(), r#"{"select":["E"]}"#);
        let subject = Subject::File {
            path: "src/a.py",
            content: &CONTENT,
        };
        let with = |versions| finish(prefix(versions, &inputs), &CONFIG_FILES, subject);
        let current = [KEY_VERSION, protocol::PROTOCOL_VERSION];
        assert_eq!(with(current), base());
        assert_ne!(with([KEY_VERSION + 1, protocol::PROTOCOL_VERSION]), base());
        assert_ne!(with([KEY_VERSION, protocol::PROTOCOL_VERSION + 1]), base());
    }

    #[test]
    fn the_validator_name_is_an_input() {
        let mut m = manifest();
        m.name = "ruff2".into();
        assert_ne!(file_key(&KeyInputs::new(&m, r#"{"select":["E"]}"#)), base());
    }

    #[test]
    fn the_validator_version_is_an_input() {
        let mut m = manifest();
        m.version = "0.1.1".into();
        assert_ne!(file_key(&KeyInputs::new(&m, r#"{"select":["E"]}"#)), base());
    }

    #[test]
    fn the_tool_version_is_an_input() {
        let m = manifest().with_tool("ruff", "0.8.5");
        assert_ne!(file_key(&KeyInputs::new(&m, r#"{"select":["E"]}"#)), base());
    }

    #[test]
    fn having_no_tool_differs_from_having_one() {
        let mut m = manifest();
        m.tool = None;
        assert_ne!(file_key(&KeyInputs::new(&m, r#"{"select":["E"]}"#)), base());
    }

    #[test]
    fn the_config_table_is_an_input_and_its_key_order_is_not() {
        let changed = KeyInputs::new(&manifest(), r#"{"select":["F"]}"#);
        assert_ne!(file_key(&changed), base());
        let a = KeyInputs::new(&manifest(), r#"{"a":1,"b":{"x":1,"y":2}}"#);
        let b = KeyInputs::new(&manifest(), r#"{"b":{"y":2,"x":1},"a":1}"#);
        assert_eq!(file_key(&a), file_key(&b));
    }

    #[test]
    fn the_declared_config_files_are_an_input() {
        let inputs = KeyInputs::new(&manifest(), r#"{"select":["E"]}"#);
        let other = key(
            &inputs,
            &[1; 32],
            Subject::File {
                path: "src/a.py",
                content: &CONTENT,
            },
        );
        assert_ne!(other, base());
    }

    #[test]
    fn the_path_is_an_input() {
        let inputs = KeyInputs::new(&manifest(), r#"{"select":["E"]}"#);
        let renamed = key(
            &inputs,
            &CONFIG_FILES,
            Subject::File {
                path: "src/b.py",
                content: &CONTENT,
            },
        );
        assert_ne!(renamed, base());
    }

    #[test]
    fn the_content_is_an_input() {
        let inputs = KeyInputs::new(&manifest(), r#"{"select":["E"]}"#);
        let edited = key(
            &inputs,
            &CONFIG_FILES,
            Subject::File {
                path: "src/a.py",
                content: &[8; 32],
            },
        );
        assert_ne!(edited, base());
    }

    #[test]
    fn a_project_key_depends_on_every_input_file() {
        let inputs = KeyInputs::new(&manifest(), "{}");
        let files = |second: &str, hash: u8| {
            vec![
                FileInput {
                    path: "a.py".into(),
                    content_hash: [1; 32],
                },
                FileInput {
                    path: second.into(),
                    content_hash: [hash; 32],
                },
            ]
        };
        let project_key = |files: &[FileInput]| {
            key(
                &inputs,
                &CONFIG_FILES,
                Subject::ProjectFile {
                    inputs: &project_inputs(files),
                    path: "a.py",
                },
            )
        };
        let base = project_key(&files("b.py", 2));
        assert_ne!(
            project_key(&files("b.py", 3)),
            base,
            "another file's content"
        );
        assert_ne!(project_key(&files("c.py", 2)), base, "another file's name");
        assert_ne!(project_key(&files("b.py", 2)[..1]), base, "a file fewer");
        let mut reversed = files("b.py", 2);
        reversed.reverse();
        assert_eq!(
            project_key(&reversed),
            base,
            "the order of inputs does not matter"
        );
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let mut a = manifest();
        a.name = "ab".into();
        a.version = "c".into();
        let mut b = manifest();
        b.name = "a".into();
        b.version = "bc".into();
        assert_ne!(
            file_key(&KeyInputs::new(&a, "{}")),
            file_key(&KeyInputs::new(&b, "{}"))
        );
    }
}
