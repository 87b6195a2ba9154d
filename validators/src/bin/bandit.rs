//! `validator-bandit`: the built-in bandit validator as its own executable.

fn main() -> std::process::ExitCode {
    protocol::sdk::run(validators::bandit::Bandit::default())
}
