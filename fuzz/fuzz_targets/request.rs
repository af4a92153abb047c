//! Frame bodies decoded as a node decodes requests (client `Envelope`s and peer requests), then
//! held to the size limits and encoded again: nothing may panic, and whatever decodes must
//! survive a round trip.
#![no_main]

use dsh::error::ErrorKind;
use dsh::node::PeerRequest;
use dsh::proto::{decode, encode, limits, Envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode::<Envelope>(data) {
        Ok(env) => {
            let _ = limits::check_request(&env.request, limits::DEFAULT_MAX_VALUE);
            if let Ok(frame) = encode(&env) {
                let again: Envelope = decode(&frame[4..]).expect("an encoded envelope decodes");
                assert_eq!(format!("{again:?}"), format!("{env:?}"));
            }
        }
        Err(e) => assert_eq!(e.kind, ErrorKind::Denied, "{e}"),
    }
    match decode::<PeerRequest>(data) {
        Ok(req) => {
            let _ = req.sender();
            if let Ok(frame) = encode(&req) {
                decode::<PeerRequest>(&frame[4..]).expect("an encoded peer request decodes");
            }
        }
        Err(e) => assert_eq!(e.kind, ErrorKind::Denied, "{e}"),
    }
});
