//! The orchestrator protocol: the stable contract between the coordinator and every validator.
//!
//! A validator is any executable named `validator-NAME` that speaks this protocol on its
//! stdin/stdout: length-prefixed frames, each carrying one bincode-encoded message (see
//! `docs/protocol.md` for the byte layout). This crate owns
//!
//! - [`messages`]: the wire types, the only things that cross a pipe;
//! - [`codec`]: the one place that knows the encoding, so it could be swapped without touching
//!   the message types;
//! - [`frame`]: the length prefix, its limits, and blocking frame I/O;
//! - [`numbered`]: input paths sent once a request and named by number;
//! - [`sdk`]: what turns a Rust type into a complete validator executable.
//!
//! The coordinator's internals promise nothing; this crate promises compatibility. Public enums
//! that may grow are `#[non_exhaustive]`, and [`PROTOCOL_VERSION`] changes whenever a message's
//! layout does.

pub mod codec;
pub mod error;
pub mod exit;
pub mod frame;
pub mod messages;
pub mod numbered;
pub mod sdk;

pub use error::ProtocolError;
pub use messages::*;

/// Version of the wire format described in `docs/protocol.md`. Both sides must speak the same.
pub const PROTOCOL_VERSION: u32 = 2;

/// Default upper bound on a frame's payload, in bytes, announced in [`Hello`].
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;

/// The largest maximum frame size a coordinator may announce. Bounds what a peer can make us
/// allocate even when the negotiated limit is raised.
pub const HARD_MAX_FRAME_SIZE: u32 = 256 * 1024 * 1024;
