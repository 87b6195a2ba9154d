//! `validator-ruff`: the built-in ruff validator as its own executable.

fn main() -> std::process::ExitCode {
    protocol::sdk::run(validators::ruff::Ruff::default())
}
