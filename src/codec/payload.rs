//! The payload stage: postcard bytes ⇄ session metadata and (framed) entries.
//!
//! Layout (postcard, see docs/FORMAT.md): `schema: u8`, `id: [u8; 16]`, `issued_at`,
//! `expires_at`, `last_seen` (varint seconds since the Unix epoch), then a sequence of
//! `(key: str, value: bytes)` in strictly ascending key order. Each value is framed by the
//! compression stage.

use serde::{Deserialize, Serialize};
use serde_bytes::Bytes;

use crate::error::DecodeError;
use crate::state::SCHEMA_VERSION;

/// A decoded payload borrowing from the plaintext buffer.
#[derive(Serialize, Deserialize)]
pub(crate) struct Payload<'a> {
    pub(crate) schema: u8,
    pub(crate) id: [u8; 16],
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
    #[serde(borrow)]
    pub(crate) entries: Vec<(&'a str, &'a Bytes)>,
}

/// Serializes a payload, appending to `out`.
pub(crate) fn encode(payload: &Payload<'_>, out: Vec<u8>) -> Result<Vec<u8>, postcard::Error> {
    postcard::to_extend(payload, out)
}

/// Parses a payload: the whole buffer, known schema, canonical key order.
pub(crate) fn decode(bytes: &[u8]) -> Result<Payload<'_>, DecodeError> {
    let payload: Payload<'_> = match postcard::take_from_bytes(bytes) {
        Ok((p, [])) => p,
        _ => return Err(DecodeError::Payload),
    };
    if payload.schema != SCHEMA_VERSION {
        return Err(DecodeError::Payload);
    }
    if payload
        .entries
        .windows(2)
        .any(|w| matches!(w, [a, b] if a.0 >= b.0))
    {
        return Err(DecodeError::Payload);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(entries: Vec<(&'static str, &'static Bytes)>) -> Vec<u8> {
        let p = Payload {
            schema: 1,
            id: [7; 16],
            issued_at: 1,
            expires_at: 300,
            last_seen: 2,
            entries,
        };
        encode(&p, Vec::new()).unwrap()
    }

    #[test]
    fn layout_is_stable() {
        let bytes = sample(vec![("a", Bytes::new(b"\0x"))]);
        let mut expected = vec![1];
        expected.extend([7; 16]);
        expected.extend([1, 0xac, 0x02, 2, 1, 1, b'a', 2, 0, b'x']);
        assert_eq!(bytes, expected);
        let p = decode(&bytes).unwrap();
        assert_eq!(p.entries[0].0, "a");
    }

    #[test]
    fn trailing_bytes_bad_schema_and_unordered_keys_are_refused() {
        let mut bytes = sample(vec![]);
        bytes.push(0);
        assert!(decode(&bytes).is_err());
        let mut bytes = sample(vec![]);
        bytes[0] = 2;
        assert!(decode(&bytes).is_err());
        let bytes = sample(vec![("b", Bytes::new(b"\0")), ("a", Bytes::new(b"\0"))]);
        assert!(decode(&bytes).is_err());
        let bytes = sample(vec![("a", Bytes::new(b"\0")), ("a", Bytes::new(b"\0"))]);
        assert!(decode(&bytes).is_err());
        assert!(decode(&[]).is_err());
    }
}
