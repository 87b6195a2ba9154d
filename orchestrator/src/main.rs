//! `orchestrator`: see the crate documentation of the library.

fn main() -> std::process::ExitCode {
    orchestrator::cli::main()
}
