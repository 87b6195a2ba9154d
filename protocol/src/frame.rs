//! Frames: a 4-byte little-endian payload length, then the payload (one encoded message).
//!
//! The length is checked against the negotiated maximum before a single payload byte is
//! allocated or read. This module is the one reader of the wire format: the blocking reader
//! and writer used by validators, and (with the `async` feature) the asynchronous reader the
//! coordinator uses, sharing every check.

use crate::codec::{self, Message};
use crate::error::ProtocolError;
use std::io::{self, Read, Write};

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

/// Validates a frame header and returns the payload length it announces.
pub fn payload_len(header: [u8; HEADER_LEN], max: u32) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(header);
    if len > max {
        return Err(ProtocolError::Oversized {
            len: u64::from(len),
            max,
        });
    }
    Ok(len as usize)
}

/// Encodes a message as a complete frame, refusing one larger than `max`.
pub fn encode_frame<M: Message>(message: &M, max: u32) -> Result<Vec<u8>, ProtocolError> {
    let payload = codec::encode(message);
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|len| *len <= max)
        .ok_or(ProtocolError::Oversized {
            len: payload.len() as u64,
            max,
        })?;
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&payload);
    Ok(frame)
}

/// Writes one message as a frame and flushes, so the peer sees it at once.
pub fn write_frame<W: Write + ?Sized, M: Message>(
    writer: &mut W,
    message: &M,
    max: u32,
) -> Result<(), ProtocolError> {
    writer.write_all(&encode_frame(message, max)?)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame and decodes its message. Returns `None` when the stream ends cleanly at a
/// frame boundary.
pub fn read_frame<R: Read + ?Sized, M: Message>(
    reader: &mut R,
    max: u32,
) -> Result<Option<M>, ProtocolError> {
    let mut header = [0u8; HEADER_LEN];
    let Some(len) = check_header(read_full(reader, &mut header)?, header, max)? else {
        return Ok(None);
    };
    let mut payload = vec![0u8; len];
    let got = read_full(reader, &mut payload)?;
    check_length(&payload, got)?;
    codec::decode(&payload).map(Some)
}

/// The asynchronous [`read_frame`], for a coordinator reading many validators at once; the
/// same checks, in the same order.
#[cfg(feature = "async")]
pub async fn read_frame_async<R, M>(reader: &mut R, max: u32) -> Result<Option<M>, ProtocolError>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    M: Message,
{
    let mut header = [0u8; HEADER_LEN];
    let Some(len) = check_header(read_full_async(reader, &mut header).await?, header, max)? else {
        return Ok(None);
    };
    let mut payload = vec![0u8; len];
    let got = read_full_async(reader, &mut payload).await?;
    check_length(&payload, got)?;
    codec::decode(&payload).map(Some)
}

/// The payload length of a header of which `read` bytes arrived, or `None` for a clean close.
fn check_header(
    read: usize,
    header: [u8; HEADER_LEN],
    max: u32,
) -> Result<Option<usize>, ProtocolError> {
    match read {
        0 => Ok(None),
        n if n < HEADER_LEN => Err(ProtocolError::Truncated {
            expected: HEADER_LEN as u64,
            got: n as u64,
        }),
        _ => payload_len(header, max).map(Some),
    }
}

/// Checks that the whole payload arrived (`got` bytes of it did).
fn check_length(payload: &[u8], got: usize) -> Result<(), ProtocolError> {
    if got < payload.len() {
        return Err(ProtocolError::Truncated {
            expected: payload.len() as u64,
            got: got as u64,
        });
    }
    Ok(())
}

/// Reads until `buf` is full or the stream ends; returns how many bytes were read.
fn read_full<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(feature = "async")]
async fn read_full_async<R>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
{
    use tokio::io::AsyncReadExt;
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]).await? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Request, Response, DEFAULT_MAX_FRAME_SIZE as MAX};

    fn frame_of(payload: &[u8]) -> Vec<u8> {
        let mut frame = (payload.len() as u32).to_le_bytes().to_vec();
        frame.extend_from_slice(payload);
        frame
    }

    fn read_request(bytes: &[u8]) -> Result<Option<Request>, ProtocolError> {
        read_frame(&mut &bytes[..], MAX)
    }

    #[test]
    fn a_clean_close_at_a_frame_boundary_is_not_an_error() {
        assert!(read_request(&[]).expect("clean").is_none());
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading_the_payload() {
        // Only the header is present: an allocation of 4 GiB would be attempted otherwise.
        let err = read_request(&u32::MAX.to_le_bytes()).expect_err("oversized");
        assert!(
            matches!(err, ProtocolError::Oversized { len, max: MAX } if len == u64::from(u32::MAX)),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "frame of 4294967295 bytes exceeds the maximum of 16777216 bytes"
        );
    }

    #[test]
    fn a_frame_larger_than_the_maximum_is_not_sent() {
        let big = Response::Failed(crate::Failed {
            kind: crate::FailureKind::Error,
            message: "x".repeat(100),
        });
        let err = encode_frame(&big, 50).expect_err("too big");
        assert!(
            matches!(err, ProtocolError::Oversized { max: 50, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_header_is_an_error() {
        let err = read_request(&[5, 0]).expect_err("truncated");
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    expected: 4,
                    got: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_payload_is_an_error() {
        let mut frame = frame_of(&codec::encode(&Request::Shutdown));
        frame[0] = 10;
        let err = read_request(&frame).expect_err("truncated");
        assert!(
            matches!(
                err,
                ProtocolError::Truncated {
                    expected: 10,
                    got: 4
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn trailing_bytes_after_a_message_are_an_error() {
        let mut payload = codec::encode(&Request::Shutdown);
        payload.extend_from_slice(&[0, 0]);
        let err = read_request(&frame_of(&payload)).expect_err("trailing");
        assert_eq!(
            err.to_string(),
            "2 trailing bytes after a Shutdown message in a 6-byte frame"
        );
    }

    #[test]
    fn an_unknown_tag_is_an_error() {
        let err = read_request(&frame_of(&7u32.to_le_bytes())).expect_err("tag");
        assert_eq!(err.to_string(), "unknown tag 7 for Request");
    }

    #[test]
    fn an_unknown_nested_tag_names_its_type() {
        // Response::Log with level 9.
        let mut payload = 3u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&9u32.to_le_bytes());
        payload.extend_from_slice(&0u64.to_le_bytes());
        let err = read_frame::<_, Response>(&mut &frame_of(&payload)[..], MAX).expect_err("tag");
        assert_eq!(err.to_string(), "unknown tag 9 for LogLevel");
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        // Response::Failed { kind: Error, message: [0xff, 0xfe] }
        let mut payload = 5u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&0u32.to_le_bytes());
        payload.extend_from_slice(&2u64.to_le_bytes());
        payload.extend_from_slice(&[0xff, 0xfe]);
        let err = read_frame::<_, Response>(&mut &frame_of(&payload)[..], MAX).expect_err("utf8");
        assert!(matches!(err, ProtocolError::InvalidUtf8), "{err}");
    }

    #[test]
    fn a_huge_declared_string_length_is_refused_without_allocating() {
        // Response::Failed whose message claims 2^62 bytes in a 20-byte payload.
        let mut payload = 5u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&0u32.to_le_bytes());
        payload.extend_from_slice(&(1u64 << 62).to_le_bytes());
        payload.extend_from_slice(&[b'a'; 4]);
        let err = read_frame::<_, Response>(&mut &frame_of(&payload)[..], MAX).expect_err("huge");
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    }

    #[test]
    fn a_huge_declared_list_length_is_refused_without_allocating() {
        // Response::FileResult { path: "", findings: claims 2^40 elements }
        let mut payload = 2u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&0u64.to_le_bytes());
        payload.extend_from_slice(&(1u64 << 40).to_le_bytes());
        let err = read_frame::<_, Response>(&mut &frame_of(&payload)[..], MAX).expect_err("huge");
        assert!(matches!(err, ProtocolError::Malformed(_)), "{err}");
    }

    #[test]
    fn an_invalid_boolean_is_an_error() {
        // Request::Validate { root: "", files: [], config_json: "", fix: 2 }
        let mut payload = 1u32.to_le_bytes().to_vec();
        payload.extend_from_slice(&[0; 24]);
        payload.push(2);
        let err = read_request(&frame_of(&payload)).expect_err("bool");
        assert_eq!(
            err.to_string(),
            "malformed message: invalid boolean byte 0x02 (must be 0 or 1)"
        );
    }

    #[test]
    fn frames_are_read_one_after_another() {
        let mut stream = encode_frame(&Request::Shutdown, MAX).expect("small");
        stream.extend(encode_frame(&Request::Shutdown, MAX).expect("small"));
        let mut reader = &stream[..];
        for _ in 0..2 {
            let got: Option<Request> = read_frame(&mut reader, MAX).expect("reads");
            assert_eq!(got, Some(Request::Shutdown));
        }
        assert!(read_frame::<_, Request>(&mut reader, MAX)
            .expect("clean")
            .is_none());
    }
}
