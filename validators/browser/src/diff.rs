//! `validator-visual diff EXPECTED.png ACTUAL.png [--threshold T] [--include-aa]
//! [--background checkerboard|white] [--output DIFF.png] [--format json]`: pixelmatch's count
//! for two images, with pixelmatch 7.2.0's defaults (threshold 0.1, anti-aliased pixels not
//! counted, semi-transparent pixels blended over its checkerboard).
//!
//! Exit status: 0 no pixel differs, 1 some do (or the sizes differ), 2 bad arguments or an
//! unreadable image.

use crate::image::Image;
use crate::pixelmatch::{pixelmatch, Background, Options};
use protocol::exit;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: validator-visual diff EXPECTED.png ACTUAL.png [--threshold T] \
                     [--include-aa] [--background checkerboard|white] [--output DIFF.png] \
                     [--format text|json]";

/// The parsed command line.
#[derive(Debug, PartialEq)]
struct Args {
    expected: PathBuf,
    actual: PathBuf,
    options: Options,
    output: Option<PathBuf>,
    json: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut paths = Vec::new();
    let mut options = Options::default();
    let mut output = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.as_str() {
            "--threshold" => {
                let text = value("--threshold")?;
                options.threshold = text
                    .parse()
                    .ok()
                    .filter(|t: &f64| (0.0..=1.0).contains(t))
                    .ok_or_else(|| format!("--threshold {text}: write a number from 0 to 1"))?;
            }
            "--include-aa" => options.include_aa = true,
            "--background" => {
                options.background = match value("--background")?.as_str() {
                    "checkerboard" => Background::Checkerboard,
                    "white" => Background::White,
                    other => {
                        return Err(format!("--background {other}: write checkerboard or white"))
                    }
                }
            }
            "--output" => output = Some(PathBuf::from(value("--output")?)),
            "--format" => {
                json = match value("--format")?.as_str() {
                    "json" => true,
                    "text" => false,
                    other => return Err(format!("--format {other}: write text or json")),
                }
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            path => paths.push(PathBuf::from(path)),
        }
    }
    let [expected, actual] = <[PathBuf; 2]>::try_from(paths)
        .map_err(|_| "give exactly two images: EXPECTED.png ACTUAL.png".to_owned())?;
    Ok(Args {
        expected,
        actual,
        options,
        output,
        json,
    })
}

/// Runs the command; returns its exit status.
pub fn main(args: &[String]) -> ExitCode {
    let args = match parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("validator-visual diff: {e}\n{USAGE}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let read = |path: &PathBuf| {
        Image::read(path).map_err(|e| {
            eprintln!("validator-visual diff: {e}");
            ExitCode::from(exit::USAGE)
        })
    };
    let (expected, actual) = match (read(&args.expected), read(&args.actual)) {
        (Ok(e), Ok(a)) => (e, a),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let Some((diff_pixels, diff)) =
        pixelmatch(&expected, &actual, args.options, args.output.is_some())
    else {
        let message = format!(
            "the images differ in size: {}x{} and {}x{}",
            expected.width, expected.height, actual.width, actual.height
        );
        if args.json {
            println!(
                "{}",
                serde_json::json!({"diff_pixels": null, "width": expected.width, "height": expected.height, "error": message})
            );
        } else {
            println!("{message}");
        }
        return ExitCode::from(exit::FINDINGS);
    };
    if let (Some(path), Some(diff)) = (&args.output, diff) {
        if let Err(e) = diff.write(path) {
            eprintln!("validator-visual diff: {e}");
            return ExitCode::from(exit::USAGE);
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({"diff_pixels": diff_pixels, "width": expected.width, "height": expected.height})
        );
    } else {
        let pixels = u64::from(expected.width) * u64::from(expected.height);
        println!(
            "different pixels: {diff_pixels} of {pixels} ({:.2}%)",
            100.0 * diff_pixels as f64 / pixels.max(1) as f64
        );
    }
    ExitCode::from(if diff_pixels > 0 {
        exit::FINDINGS
    } else {
        exit::CLEAN
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn arguments_parse_with_pixelmatch_defaults() {
        let args = parse(&strings(&["a.png", "b.png", "--format", "json"])).expect("valid");
        assert_eq!(args.options, Options::default());
        assert!(args.json);
        let args =
            parse(&strings(&["--threshold", "0.05", "--include-aa", "a", "b"])).expect("valid");
        assert_eq!(args.options.threshold, 0.05);
        assert!(args.options.include_aa);
        for bad in [
            &["a.png"][..],
            &["a", "b", "--threshold", "2"],
            &["a", "b", "--bogus"],
        ] {
            assert!(parse(&strings(bad)).is_err(), "{bad:?}");
        }
    }
}
