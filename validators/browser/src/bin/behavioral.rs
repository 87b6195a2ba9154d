//! `validator-behavioral`: serves the protocol.

fn main() -> std::process::ExitCode {
    protocol::sdk::run(browser_validators::behavioral::Behavioral::default())
}
