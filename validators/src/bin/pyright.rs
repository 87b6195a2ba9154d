//! `validator-pyright`: the built-in pyright validator as its own executable.

fn main() -> std::process::ExitCode {
    protocol::sdk::run(validators::pyright::Pyright::default())
}
