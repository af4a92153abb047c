//! Whole frames as a stream reader gets them (4-byte length, then CBOR), through the same
//! `decode_frame` the replay test uses: any input must give a value or a `denied` error.
#![no_main]

use dsh::error::ErrorKind;
use dsh::node::PeerRequest;
use dsh::proto::{decode_frame, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = decode_frame::<Envelope>(data) {
        assert_eq!(e.kind, ErrorKind::Denied, "{e}");
    }
    if let Err(e) = decode_frame::<PeerRequest>(data) {
        assert_eq!(e.kind, ErrorKind::Denied, "{e}");
    }
});
