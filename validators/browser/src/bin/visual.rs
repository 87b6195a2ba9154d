//! `validator-visual`: serves the protocol, or with `diff` compares two PNG files on their own.

use browser_validators::{diff, visual::Visual};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("diff") {
        return diff::main(&args[1..]);
    }
    protocol::sdk::run_with_args(Visual::default(), args)
}
