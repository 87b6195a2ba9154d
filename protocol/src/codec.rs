//! The message encoding, in one place.
//!
//! Messages are encoded with bincode 2.0.1 in its `legacy()` configuration: little-endian,
//! fixed-width integers, `u32` enum tags, `u64` lengths. That layout is simple enough for plain
//! struct unpacking in any language. Nothing outside this module names bincode, so the codec can
//! be replaced without touching the message types.
//!
//! Decoding is bounded: bincode allocates a container's declared length up front, so a crafted
//! length inside a small frame could ask for gigabytes. Each decode therefore runs with an
//! allocation budget proportional to the frame (eight times its size), which no well-formed
//! message comes near.

use crate::error::ProtocolError;
use bincode::config::{self, Config};
use bincode::error::{DecodeError, EncodeError};

/// Largest ratio of decoded memory to encoded bytes that a well-formed message reaches is
/// about 5 (a list of minimal findings); the budget allows 8.
const BUDGET_FACTOR: usize = 8;

/// A type that can be sent as one message.
pub trait Message: bincode::Encode + bincode::Decode<()> {
    /// The type's name, for error messages.
    const NAME: &'static str;
    /// The variant's name, for error messages.
    fn kind(&self) -> &'static str;
    /// The error for a handshake message of this type that speaks version `theirs`.
    fn version_mismatch(theirs: u32) -> ProtocolError;
}

impl Message for crate::Request {
    const NAME: &'static str = "Request";
    fn kind(&self) -> &'static str {
        crate::Request::kind(self)
    }
    fn version_mismatch(theirs: u32) -> ProtocolError {
        ProtocolError::VersionMismatch {
            coordinator: theirs,
            validator: crate::PROTOCOL_VERSION,
        }
    }
}

impl Message for crate::Response {
    const NAME: &'static str = "Response";
    fn kind(&self) -> &'static str {
        crate::Response::kind(self)
    }
    fn version_mismatch(theirs: u32) -> ProtocolError {
        ProtocolError::VersionMismatch {
            coordinator: crate::PROTOCOL_VERSION,
            validator: theirs,
        }
    }
}

/// Encodes a message into its payload bytes (without the length prefix).
pub fn encode<M: Message>(message: &M) -> Vec<u8> {
    bincode::encode_to_vec(message, config::legacy())
        .unwrap_or_else(|e: EncodeError| unreachable!("encoding into a Vec cannot fail: {e}"))
}

/// The `protocol_version` of a `Hello` or `Manifest` payload, read without decoding the rest.
///
/// Both messages are variant 0 of their enum and start with the version, and these first 8
/// bytes are the same in every protocol version; everything after them may differ, so the
/// versions are compared before anything else is interpreted. `None` if not variant 0.
fn handshake_version(payload: &[u8]) -> Option<u32> {
    let tag = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?);
    let version = u32::from_le_bytes(payload.get(4..8)?.try_into().ok()?);
    (tag == 0).then_some(version)
}

/// Decodes one message that must fill `payload` exactly. A handshake message (`Hello`,
/// `Manifest`) of another protocol version is a [`ProtocolError::VersionMismatch`], decided on
/// its first 8 bytes alone.
pub fn decode<M: Message>(payload: &[u8]) -> Result<M, ProtocolError> {
    if let Some(theirs) = handshake_version(payload).filter(|v| *v != crate::PROTOCOL_VERSION) {
        return Err(M::version_mismatch(theirs));
    }
    // The allocation budget is a const generic of bincode's config; pick the smallest bucket
    // that covers this payload.
    let len = payload.len();
    let result: Result<(M, usize), DecodeError> = if len <= 64 * 1024 / BUDGET_FACTOR {
        decode_with(payload, config::legacy().with_limit::<{ 64 * 1024 }>())
    } else if len <= (1 << 20) / BUDGET_FACTOR {
        decode_with(payload, config::legacy().with_limit::<{ 1 << 20 }>())
    } else if len <= (16 << 20) / BUDGET_FACTOR {
        decode_with(payload, config::legacy().with_limit::<{ 16 << 20 }>())
    } else if len <= (256 << 20) / BUDGET_FACTOR {
        decode_with(payload, config::legacy().with_limit::<{ 256 << 20 }>())
    } else {
        decode_with(payload, config::legacy().with_limit::<{ 2048 << 20 }>())
    };
    let (message, used) = result.map_err(|e| decode_error::<M>(e))?;
    if used != len {
        return Err(ProtocolError::TrailingBytes {
            message: message.kind(),
            extra: (len - used) as u64,
            len: len as u64,
        });
    }
    Ok(message)
}

fn decode_with<M: Message, C: Config>(payload: &[u8], c: C) -> Result<(M, usize), DecodeError> {
    bincode::decode_from_slice(payload, c)
}

fn decode_error<M: Message>(e: DecodeError) -> ProtocolError {
    match e {
        DecodeError::UnexpectedVariant {
            type_name, found, ..
        } => ProtocolError::UnknownTag {
            type_name: short_type_name(type_name),
            tag: found,
        },
        DecodeError::Utf8 { .. } => ProtocolError::InvalidUtf8,
        DecodeError::UnexpectedEnd { additional } => ProtocolError::Malformed(format!(
            "{} ends {additional} bytes before its content does",
            M::NAME
        )),
        DecodeError::LimitExceeded => ProtocolError::Malformed(format!(
            "{} declares a length larger than its frame can hold",
            M::NAME
        )),
        DecodeError::InvalidBooleanValue(v) => {
            ProtocolError::Malformed(format!("invalid boolean byte {v:#04x} (must be 0 or 1)"))
        }
        DecodeError::InvalidIntegerType { found, .. } => {
            ProtocolError::Malformed(format!("invalid integer type {found:?}"))
        }
        other => ProtocolError::Malformed(other.to_string()),
    }
}

/// `protocol::messages::Severity` → `Severity`.
fn short_type_name(name: &'static str) -> &'static str {
    name.rsplit("::").next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Response;

    #[test]
    fn a_manifest_of_another_version_is_a_version_mismatch_whatever_follows() {
        let mut payload = 0u32.to_le_bytes().to_vec();
        payload.extend(7u32.to_le_bytes());
        payload.extend([0xff; 3]);
        let err = decode::<Response>(&payload).expect_err("foreign");
        assert!(
            matches!(
                err,
                ProtocolError::VersionMismatch {
                    coordinator: crate::PROTOCOL_VERSION,
                    validator: 7
                }
            ),
            "{err}"
        );
    }
}
