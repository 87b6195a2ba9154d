//! Arbitrary bytes through the frame reader and both message decoders: never a panic, never an
//! allocation beyond the frame budget, and whatever decodes re-encodes to the very same bytes
//! (the encoding is canonical, so a validator in another language can compare bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{codec, frame, Request, Response};

/// Small, so that length prefixes beyond it are exercised as rejections.
const MAX: u32 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    check_payload::<Request>(data);
    check_payload::<Response>(data);
    check_stream::<Request>(data);
    check_stream::<Response>(data);
});

fn check_payload<M: codec::Message>(data: &[u8]) {
    if let Ok(message) = codec::decode::<M>(data) {
        assert_eq!(codec::encode(&message), data, "decoding then encoding changed the bytes");
    }
}

fn check_stream<M: codec::Message>(data: &[u8]) {
    let mut reader = data;
    while let Ok(Some(message)) = frame::read_frame::<_, M>(&mut reader, MAX) {
        let frame = frame::encode_frame(&message, MAX).expect("a decoded message fits its frame");
        assert!(frame.len() <= data.len());
    }
}
