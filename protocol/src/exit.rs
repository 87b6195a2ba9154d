//! Process exit codes, defined once for the coordinator, scripts and validators.
//!
//! Scripts and CI systems branch on these, so they are part of the stable contract.

/// `orchestrator run`: every selected validator completed and none reported an error.
pub const CLEAN: u8 = 0;
/// `orchestrator run`: every selected validator completed and at least one error was found.
pub const FINDINGS: u8 = 1;
/// Usage or configuration error: bad arguments, bad `orchestrator.toml`, unknown validator.
pub const USAGE: u8 = 2;
/// `orchestrator run`: at least one selected validator did not complete (timed out, crashed,
/// broke the protocol, or is not installed). Wins over [`FINDINGS`]: an incomplete run cannot be
/// called clean.
pub const INCOMPLETE: u8 = 3;

/// A validator process that failed to keep the protocol (bad frame, broken pipe) exits with this.
pub const VALIDATOR_PROTOCOL_FAILURE: u8 = 4;
