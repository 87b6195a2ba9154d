//! A validator's stderr, drained all the time into a bounded buffer.
//!
//! A child that writes to a full pipe blocks, so stderr must be read as long as the child runs;
//! and a child that floods it must not grow our memory. The last [`TAIL_BYTES`] are kept, which
//! is where a crash's explanation is.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much of a validator's stderr is kept.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The last bytes of a stream, and how many came before them.
#[derive(Debug, Default)]
pub struct Tail {
    bytes: Vec<u8>,
    dropped: u64,
}

impl Tail {
    /// Appends `chunk`, forgetting the oldest bytes beyond [`TAIL_BYTES`].
    pub fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend_from_slice(chunk);
        if self.bytes.len() > TAIL_BYTES {
            let excess = self.bytes.len() - TAIL_BYTES;
            self.bytes.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    /// The kept text, lossily decoded, with a note of what was dropped.
    pub fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.bytes);
        let text = text.trim_end();
        if self.dropped > 0 {
            format!("[{} earlier bytes dropped]\n{text}", self.dropped)
        } else {
            text.to_owned()
        }
    }
}

/// Shared handle to a tail being filled by a drain task.
pub type SharedTail = Arc<Mutex<Tail>>;

/// Reads `stream` to its end into `tail`.
pub async fn drain<R: AsyncRead + Unpin>(mut stream: R, tail: SharedTail) {
    let mut buf = vec![0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => crate::locks::lock(&tail).push(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_bytes_are_kept() {
        let mut tail = Tail::default();
        for _ in 0..100 {
            tail.push(&[b'a'; 1000]);
        }
        tail.push(b"the end\n");
        assert_eq!(tail.bytes.len(), TAIL_BYTES);
        assert_eq!(tail.dropped, 100_008 - TAIL_BYTES as u64);
        let text = tail.text();
        assert!(
            text.starts_with("[34472 earlier bytes dropped]\n"),
            "{}",
            &text[..40]
        );
        assert!(text.ends_with("the end"));
    }
}
