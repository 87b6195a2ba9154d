//! The one error type of the protocol layer.
//!
//! Every way a peer can break the protocol maps to a variant with a clear message, so that the
//! coordinator can report "validator X broke the protocol: …" instead of panicking or hanging.

use std::io;

/// A failure to exchange a well-formed message with the peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Reading or writing the pipe failed.
    #[error("pipe i/o failed")]
    Io(#[source] io::Error),
    /// The peer closed the pipe in the middle of a frame.
    #[error("truncated frame: expected {expected} bytes, the stream ended after {got}")]
    Truncated { expected: u64, got: u64 },
    /// A frame length above the negotiated maximum, refused before any allocation.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    Oversized { len: u64, max: u32 },
    /// A message decoded before the end of its frame.
    #[error("{extra} trailing bytes after a {message} message in a {len}-byte frame")]
    TrailingBytes {
        message: &'static str,
        extra: u64,
        len: u64,
    },
    /// An enum tag no variant has.
    #[error("unknown tag {tag} for {type_name}")]
    UnknownTag { type_name: &'static str, tag: u32 },
    /// A string that is not valid UTF-8.
    #[error("invalid utf-8 in a string field")]
    InvalidUtf8,
    /// Any other malformed payload: the reason is bincode's.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The two sides speak different protocol versions.
    #[error(
        "protocol version mismatch: coordinator speaks version {coordinator}, validator speaks \
         version {validator}; upgrade the older side"
    )]
    VersionMismatch { coordinator: u32, validator: u32 },
    /// The validator answered the handshake with `Failed` (it refused our protocol version).
    #[error("refused the handshake: {0}")]
    Refused(String),
    /// The manifest names a validator other than the executable that sent it.
    #[error(
        "its manifest names it `{manifest}`, but it was started as `validator-{executable}`; \
         rename the executable to `validator-{manifest}` or fix the manifest's name"
    )]
    NameMismatch {
        manifest: String,
        executable: String,
    },
    /// A well-formed message that is not allowed at this point of the exchange.
    #[error("unexpected {got} message while waiting for {expected}")]
    Unexpected {
        expected: &'static str,
        got: &'static str,
    },
}

impl From<io::Error> for ProtocolError {
    fn from(e: io::Error) -> Self {
        ProtocolError::Io(e)
    }
}
