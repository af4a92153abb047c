//! Framing: a 4-byte big-endian length, then one CBOR value. The cap keeps a hostile or broken
//! peer from making a node allocate unbounded memory; it is checked before reading the body.

use crate::error::{Error, Result};
use serde::{de::DeserializeOwned, Serialize};

pub const FRAME_HEADER: usize = 4;
/// Large enough for a snapshot chunk, small enough that a bogus length is refused up front.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Serializes `value` into a complete frame (header included).
pub fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(128);
    buf.extend_from_slice(&[0; FRAME_HEADER]);
    ciborium::into_writer(value, &mut buf).map_err(|e| Error::internal(format!("encode: {e}")))?;
    let len = buf.len() - FRAME_HEADER;
    if len > MAX_FRAME {
        return Err(Error::denied(format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte cap")));
    }
    buf[..FRAME_HEADER].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(buf)
}

/// Reads the body length from a header, refusing lengths over the cap.
pub fn frame_len(header: [u8; FRAME_HEADER]) -> Result<usize> {
    let len = u32::from_be_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(Error::denied(format!("frame of {len} bytes exceeds the {MAX_FRAME}-byte cap")));
    }
    Ok(len)
}

/// Decodes a frame body (without header).
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    ciborium::from_reader(body).map_err(|e| Error::denied(format!("malformed frame: {e}")))
}

/// Decodes one whole frame, header included, as a stream reader would: the announced length is
/// checked against the cap and against the bytes actually there.
pub fn decode_frame<T: DeserializeOwned>(frame: &[u8]) -> Result<T> {
    let Some((header, body)) = frame.split_first_chunk::<FRAME_HEADER>() else {
        return Err(Error::denied(format!("truncated frame: {} bytes, no complete header", frame.len())));
    };
    let len = frame_len(*header)?;
    if body.len() != len {
        return Err(Error::denied(format!("frame announces {len} bytes but carries {}", body.len())));
    }
    decode(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Request;

    #[test]
    fn round_trip_and_caps() {
        let req = Request::Put { key: "k".into(), value: "v".into() };
        let frame = encode(&req).unwrap();
        let len = frame_len(frame[..4].try_into().unwrap()).unwrap();
        assert_eq!(len, frame.len() - 4);
        let back: Request = decode(&frame[4..]).unwrap();
        assert!(matches!(back, Request::Put { key, .. } if key == "k"));

        assert!(frame_len((MAX_FRAME as u32 + 1).to_be_bytes()).is_err());
        assert!(decode::<Request>(b"\xff\x00garbage").is_err());
    }

    #[test]
    fn whole_frames_must_be_exactly_as_long_as_announced() {
        let frame = encode(&Request::Ping).unwrap();
        assert!(matches!(decode_frame::<Request>(&frame), Ok(Request::Ping)));
        for bad in [&frame[..2], &frame[..frame.len() - 1], &[frame.as_slice(), b"x"].concat()[..]] {
            let e = decode_frame::<Request>(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::Denied, "{e}");
        }
    }
}
