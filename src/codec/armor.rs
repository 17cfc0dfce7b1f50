//! The armor stage: strict, unpadded URL-safe base64, the only encoding that survives every
//! browser and proxy unescaped. Non-canonical input (padding, non-zero trailing bits, other
//! alphabets) is rejected so that one envelope has exactly one cookie spelling.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::DecodeError;

/// Encodes bytes as cookie-safe text.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes cookie text. The caller has already bounded `text.len()`.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    URL_SAFE_NO_PAD.decode(text).map_err(|_| DecodeError::Armor)
}

/// Encoded length of `n` bytes.
/// Saturates instead of overflowing (lengths here are bounded by the budgets anyway).
pub(crate) const fn encoded_len(n: usize) -> usize {
    let tail = match n % 3 {
        0 => 0,
        1 => 2,
        _ => 3,
    };
    (n / 3).saturating_mul(4).saturating_add(tail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_round_trip() {
        for n in 0..40 {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
            let text = encode(&bytes);
            assert_eq!(text.len(), encoded_len(n));
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert_eq!(decode(text.as_bytes()).unwrap(), bytes);
        }
    }

    #[test]
    fn non_canonical_is_rejected() {
        // Padding, standard alphabet, non-zero trailing bits, impossible length, spaces.
        for bad in ["AQ==", "A+8", "A/8", "AR", "AQID_", "AQ ", "%41Q"] {
            assert_eq!(decode(bad.as_bytes()), Err(DecodeError::Armor), "{bad}");
        }
        assert_eq!(decode(b"AQ").unwrap(), vec![1]);
    }
}
