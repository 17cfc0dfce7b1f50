//! The envelope stage: `version ‖ algorithm ‖ key id ‖ nonce ‖ ciphertext+tag`, and the
//! associated data that binds it to its cookie name and chunk count.

use crate::codec::aead::{TAG_LEN, nonce_len};
use crate::error::{DecodeError, EnvelopeError};
use crate::keyring::{Algorithm, KeyId};

/// The only envelope version this build writes or reads.
pub(crate) const VERSION: u8 = 1;
/// Version, algorithm and key id.
pub(crate) const FIXED_HEADER: usize = 6;
/// Domain separation for the associated data.
const AAD_LABEL: &[u8] = b"sealed-session/v1";

/// A parsed envelope header, borrowing from the decoded cookie bytes.
pub(crate) struct Envelope<'a> {
    pub(crate) algorithm: Algorithm,
    pub(crate) key_id: KeyId,
    // Read only by the fuzzing harness, which needs the actix feature.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    pub(crate) nonce: &'a [u8],
    /// Everything before the ciphertext (bound into the AAD).
    pub(crate) header: &'a [u8],
    /// Length of the header; the ciphertext and tag follow it.
    pub(crate) header_len: usize,
}

/// Reads the header of `bytes`. Nothing is trusted yet: the algorithm byte only says which
/// nonce length to expect, and must later agree with the key's own algorithm.
pub(crate) fn parse(bytes: &[u8]) -> Result<Envelope<'_>, DecodeError> {
    let too_short = DecodeError::Envelope(EnvelopeError::TooShort);
    let fixed = bytes.get(..FIXED_HEADER).ok_or(too_short)?;
    let [version, algorithm, id @ ..] = fixed else {
        return Err(too_short);
    };
    if *version != VERSION {
        return Err(DecodeError::Envelope(EnvelopeError::UnknownVersion));
    }
    let algorithm = Algorithm::from_id(*algorithm)
        .ok_or(DecodeError::Envelope(EnvelopeError::UnknownAlgorithm))?;
    let key_id = KeyId(id.try_into().map_err(|_| too_short)?);
    let header_len = FIXED_HEADER.saturating_add(nonce_len(algorithm));
    if bytes.len() < header_len.saturating_add(TAG_LEN) {
        return Err(too_short);
    }
    let header = bytes.get(..header_len).ok_or(too_short)?;
    let nonce = header.get(FIXED_HEADER..).ok_or(too_short)?;
    Ok(Envelope {
        algorithm,
        key_id,
        nonce,
        header,
        header_len,
    })
}

/// Writes a header into a fresh buffer with room for `body_len` more bytes.
pub(crate) fn write_header(
    algorithm: Algorithm,
    key_id: KeyId,
    nonce: &[u8],
    body_len: usize,
) -> Vec<u8> {
    let capacity = [nonce.len(), body_len, TAG_LEN]
        .iter()
        .fold(FIXED_HEADER, |a, n| a.saturating_add(*n));
    let mut out = Vec::with_capacity(capacity);
    out.push(VERSION);
    out.push(algorithm.id());
    out.extend_from_slice(&key_id.0);
    out.extend_from_slice(nonce);
    out
}

/// Bytes the envelope adds around a plaintext of the given algorithm.
pub(crate) const fn overhead(algorithm: Algorithm) -> usize {
    FIXED_HEADER
        .saturating_add(nonce_len(algorithm))
        .saturating_add(TAG_LEN)
}

/// The associated data: label ‖ len(name) ‖ name ‖ chunk count ‖ header, then, only when the
/// application set a purpose label, ‖ len(purpose) ‖ purpose. A value moved to another
/// cookie name or application purpose, re-counted, re-labelled or given another key id fails
/// the tag. Without a purpose the AAD is exactly the one of the first release, so those
/// cookies keep opening. `None` only for a name or purpose over 255 bytes, which the
/// configuration refuses (both are capped at 200).
pub(crate) fn aad(
    cookie_name: &str,
    purpose: Option<&str>,
    chunk_count: u8,
    header: &[u8],
) -> Option<Aad> {
    let mut aad = Aad {
        buf: [0; AAD_MAX],
        len: 0,
    };
    aad.push(AAD_LABEL)?;
    aad.push(&[u8::try_from(cookie_name.len()).ok()?])?;
    aad.push(cookie_name.as_bytes())?;
    aad.push(&[chunk_count])?;
    aad.push(header)?;
    if let Some(purpose) = purpose {
        aad.push(&[u8::try_from(purpose.len()).ok()?])?;
        aad.push(purpose.as_bytes())?;
    }
    Some(aad)
}

/// Label, a name and a purpose of up to 200 bytes each, the count and the longest header fit
/// in this.
const AAD_MAX: usize = 512;

/// The associated data, built on the stack (every request that opens or seals needs one).
pub(crate) struct Aad {
    buf: [u8; AAD_MAX],
    len: usize,
}

impl Aad {
    fn push(&mut self, bytes: &[u8]) -> Option<()> {
        let end = self.len.checked_add(bytes.len())?;
        self.buf.get_mut(self.len..end)?.copy_from_slice(bytes);
        self.len = end;
        Some(())
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_short_or_unknown_input() {
        for alg in Algorithm::ALL {
            let nonce = vec![5u8; nonce_len(alg)];
            let mut bytes = write_header(alg, KeyId([1, 2, 3, 4]), &nonce, 0);
            bytes.extend([0u8; TAG_LEN]);
            let env = parse(&bytes).unwrap();
            assert_eq!(
                (env.algorithm, env.key_id, env.nonce),
                (alg, KeyId([1, 2, 3, 4]), &nonce[..])
            );
            assert_eq!(bytes.len(), overhead(alg));
            assert!(parse(&bytes[..bytes.len() - 1]).is_err());
        }
        for len in [0, 1, 5, 17, 40] {
            let mut b = vec![0u8; len];
            if let Some(v) = b.first_mut() {
                *v = VERSION;
            }
            if let Some(a) = b.get_mut(1) {
                *a = Algorithm::Xaes256Gcm.id();
            }
            assert!(parse(&b).is_err(), "{len}");
        }
        assert_eq!(
            parse(&[2, 3, 0, 0, 0, 0]).err(),
            Some(DecodeError::Envelope(EnvelopeError::UnknownVersion))
        );
        assert_eq!(
            parse(&[1, 9, 0, 0, 0, 0]).err(),
            Some(DecodeError::Envelope(EnvelopeError::UnknownAlgorithm))
        );
    }

    #[test]
    fn aad_separates_names_and_counts() {
        let aad = |name, count, header| {
            super::aad(name, None, count, header)
                .unwrap()
                .as_slice()
                .to_vec()
        };
        assert_ne!(aad("ab", 1, b"h"), aad("a", 1, b"bh"));
        assert_ne!(aad("a", 1, b"h"), aad("a", 2, b"h"));
        assert!(super::aad(&"n".repeat(201), None, 1, &[0; 30]).is_some());
        assert!(super::aad(&"n".repeat(256), None, 1, &[0; 30]).is_none());
    }

    #[test]
    fn a7_purpose_is_appended_and_absent_purpose_is_the_old_aad() {
        let header = [1u8, 3, 9, 9, 9, 9, 7, 7];
        let old: Vec<u8> = [&b"sealed-session/v1"[..], &[2], b"ab", &[1], &header].concat();
        let aad = |purpose| {
            super::aad("ab", purpose, 1, &header)
                .unwrap()
                .as_slice()
                .to_vec()
        };
        assert_eq!(aad(None), old);
        let mut labelled = old.clone();
        labelled.extend_from_slice(b"\x07billing");
        assert_eq!(aad(Some("billing")), labelled);
        assert_ne!(aad(Some("billing")), aad(Some("shop")));
        assert!(super::aad(&"n".repeat(200), Some(&"p".repeat(200)), 1, &[0; 30]).is_some());
        assert!(super::aad("n", Some(&"p".repeat(256)), 1, &[0; 30]).is_none());
    }
}
