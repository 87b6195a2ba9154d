//! The hex test vectors of `docs/protocol.md`, checked against the code in both directions, so
//! the document cannot drift from the wire format.

use protocol::frame::{encode_frame, HEADER_LEN};
use protocol::{codec, *};

/// One sample of every message kind, named as in the document's `vector:` markers.
fn samples() -> Vec<(&'static str, Sample)> {
    let finding = Finding {
        path: "src/app.py".into(),
        line: 3,
        column: 8,
        end_line: Some(3),
        end_column: Some(10),
        rule: "F401".into(),
        severity: Severity::Error,
        message: "`os` imported but unused".into(),
        help_url: None,
        fix: Some(Fix {
            description: "remove import".into(),
            edits: vec![TextEdit {
                line: 3,
                column: 1,
                end_line: 4,
                end_column: 1,
                replacement: String::new(),
            }],
        }),
        artifacts: Vec::new(),
    };
    let page_differs = Finding {
        artifacts: vec![Artifact {
            kind: "diff".into(),
            path: "d.png".into(),
        }],
        ..Finding::new("a.html", 1, 1, "visual-diff", Severity::Error, "differs")
    };
    vec![
        (
            "Hello",
            Sample::Request(Request::Hello(Hello {
                protocol_version: 2,
                coordinator_version: "0.1.0".into(),
                max_frame_size: 16 * 1024 * 1024,
            })),
        ),
        (
            "Validate",
            Sample::Request(Request::Validate(Validate {
                root: "/repo".into(),
                files: vec![FileInput {
                    path: "a.py".into(),
                    content_hash: [0xab; 32],
                }],
                config_json: "{}".into(),
                fix: false,
                update_baselines: false,
                artifacts_dir: "/repo/.orchestrator/artifacts".into(),
            })),
        ),
        ("Shutdown", Sample::Request(Request::Shutdown)),
        (
            "Manifest",
            Sample::Response(Response::Manifest(Manifest {
                protocol_version: 2,
                name: "ruff".into(),
                version: "0.1.0".into(),
                dimension: Dimension::CodeQuality,
                tool: Some(Tool {
                    name: "ruff".into(),
                    version: "0.8.4".into(),
                }),
                scope: Scope::PerFile,
                globs: vec!["**/*.py".into()],
                config_files: vec!["ruff.toml".into()],
                can_fix: true,
                suggested_timeout_ms: Some(60_000),
                batch_size: None,
            })),
        ),
        (
            "Manifest (other dimension)",
            Sample::Response(Response::Manifest(Manifest::new(
                "spell",
                "2.0",
                Dimension::Other("docs".into()),
                Scope::Project,
            ))),
        ),
        (
            "Progress",
            Sample::Response(Response::Progress(Progress {
                files_done: 1,
                files_total: 2,
                message: String::new(),
            })),
        ),
        (
            "FileResult",
            Sample::Response(Response::FileResult(FileResult::new(
                "src/app.py",
                vec![finding],
            ))),
        ),
        (
            "FileResult (inputs and artifacts)",
            Sample::Response(Response::FileResult(FileResult {
                inputs: vec!["a.css".into()],
                baselines_written: vec!["b.png".into()],
                ..FileResult::new("a.html", vec![page_differs])
            })),
        ),
        (
            "InputPaths",
            Sample::Response(Response::InputPaths(vec!["a.css".into(), "b.js".into()])),
        ),
        (
            "NumberedResult",
            Sample::Response(Response::NumberedResult(NumberedResult {
                result: FileResult::new("a.html", Vec::new()),
                inputs: vec![1, 0],
            })),
        ),
        (
            "Log",
            Sample::Response(Response::Log(Log {
                level: LogLevel::Warn,
                message: "slow".into(),
            })),
        ),
        ("Done", Sample::Response(Response::Done)),
        (
            "Failed",
            Sample::Response(Response::Failed(Failed {
                kind: FailureKind::Error,
                message: "ruff crashed".into(),
            })),
        ),
        (
            "Failed (not installed)",
            Sample::Response(Response::Failed(Failed {
                kind: FailureKind::NotInstalled,
                message: "ruff not found".into(),
            })),
        ),
        (
            "Failed (configuration)",
            Sample::Response(Response::Failed(Failed {
                kind: FailureKind::Config,
                message: "unknown key `selct`".into(),
            })),
        ),
        (
            "Failed (transient)",
            Sample::Response(Response::Failed(Failed {
                kind: FailureKind::Transient,
                message: "browser exited".into(),
            })),
        ),
    ]
}

#[derive(Debug, PartialEq)]
enum Sample {
    Request(Request),
    Response(Response),
}

impl Sample {
    fn frame(&self) -> Vec<u8> {
        let max = DEFAULT_MAX_FRAME_SIZE;
        match self {
            Sample::Request(m) => encode_frame(m, max),
            Sample::Response(m) => encode_frame(m, max),
        }
        .expect("samples are small")
    }

    fn decode_like(&self, payload: &[u8]) -> Sample {
        match self {
            Sample::Request(_) => Sample::Request(codec::decode(payload).expect("decodes")),
            Sample::Response(_) => Sample::Response(codec::decode(payload).expect("decodes")),
        }
    }
}

/// `(name, bytes)` of every ```` ```hex ```` block preceded by a `<!-- vector: NAME -->` line.
fn document_vectors() -> Vec<(String, Vec<u8>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md is readable");
    let mut vectors = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .strip_prefix("<!-- vector: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        assert_eq!(
            lines.next(),
            Some("```hex"),
            "vector {name}: hex block follows"
        );
        let mut bytes = Vec::new();
        for hex_line in lines.by_ref().take_while(|l| *l != "```") {
            let hex = hex_line.split('#').next().unwrap_or_default();
            for pair in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(pair, 16).expect("two hex digits"));
            }
        }
        vectors.push((name.to_owned(), bytes));
    }
    vectors
}

#[test]
fn every_sample_has_its_vector_in_the_document_and_they_agree() {
    let documented = document_vectors();
    let samples = samples();
    assert_eq!(
        documented
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        samples.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "docs/protocol.md has one vector per sample, in order"
    );
    for ((name, bytes), (_, sample)) in documented.iter().zip(&samples) {
        assert_eq!(
            hex(bytes),
            hex(&sample.frame()),
            "vector {name} is the sample's frame"
        );
        let payload = &bytes[HEADER_LEN..];
        assert_eq!(
            &sample.decode_like(payload),
            sample,
            "vector {name} decodes"
        );
    }
}

#[test]
fn every_message_kind_has_a_sample() {
    let names: Vec<&str> = samples().iter().map(|(n, _)| *n).collect();
    for kind in [
        "Hello",
        "Validate",
        "Shutdown",
        "Manifest",
        "Progress",
        "FileResult",
        "Log",
        "Done",
        "Failed",
    ] {
        assert!(names.contains(&kind), "{kind} has a vector");
    }
}

#[test]
fn every_sample_round_trips_through_a_frame_reader() {
    for (name, sample) in samples() {
        let frame = sample.frame();
        let mut reader = frame.as_slice();
        let decoded = match sample {
            Sample::Request(_) => Sample::Request(
                frame::read_frame(&mut reader, DEFAULT_MAX_FRAME_SIZE)
                    .expect("reads")
                    .expect("one frame"),
            ),
            Sample::Response(_) => Sample::Response(
                frame::read_frame(&mut reader, DEFAULT_MAX_FRAME_SIZE)
                    .expect("reads")
                    .expect("one frame"),
            ),
        };
        assert_eq!(decoded, sample, "{name} round-trips");
        assert!(
            reader.is_empty(),
            "{name}: the reader consumed the whole frame"
        );
    }
}

/// Prints the vectors in the document's format: `cargo test -p protocol --test vectors --
/// --ignored --nocapture print_vectors`.
#[test]
#[ignore = "a tool for writing the document, not a check"]
fn print_vectors() {
    for (name, sample) in samples() {
        println!("<!-- vector: {name} -->\n```hex");
        for chunk in sample.frame().chunks(16) {
            println!("{}", hex(chunk));
        }
        println!("```\n");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
