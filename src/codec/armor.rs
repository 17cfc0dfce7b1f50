//! The armor stage: strict, unpadded URL-safe base64, the only encoding that survives every
//! browser and proxy unescaped. Non-canonical input (padding, non-zero trailing bits, other
//! alphabets) is rejected so that one envelope has exactly one cookie spelling.

use crate::error::DecodeError;

/// The alphabet, by sextet value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Marks a byte outside the alphabet in [`SEXTETS`] (its top bit, which no sextet has).
const INVALID: u8 = 0x80;

/// The sextet value of every byte, or [`INVALID`].
const SEXTETS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// The character of the low six bits of `n`.
#[allow(clippy::indexing_slicing)] // `& 63` keeps the index within the 64-entry table
#[inline(always)]
fn char_of(n: u64) -> u8 {
    ALPHABET[(n & 63) as usize]
}

/// The sextet value of `c`, or [`INVALID`].
#[allow(clippy::indexing_slicing)] // a `u8` always indexes the 256-entry table
#[inline(always)]
fn sextet_of(c: u8) -> u8 {
    SEXTETS[usize::from(c)]
}

/// Encodes bytes as cookie-safe text.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(encoded_len(bytes.len()));
    encode_into(bytes, &mut out);
    // Every byte written is from the ASCII alphabet, so this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the text of `bytes` to `out` (a `Set-Cookie` line being built), six bytes (eight
/// characters) per step.
pub(crate) fn encode_into(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start.saturating_add(encoded_len(bytes.len())), 0);
    let sixes = bytes.chunks_exact(6);
    let rest = sixes.remainder();
    let mut eights = out.get_mut(start..).unwrap_or_default().chunks_exact_mut(8);
    for (six, eight) in sixes.zip(&mut eights) {
        let (Ok(&[a, b, c, d, e, f]), Ok(eight)) =
            (<&[u8; 6]>::try_from(six), <&mut [u8; 8]>::try_from(eight))
        else {
            continue;
        };
        let n = u64::from_be_bytes([0, 0, a, b, c, d, e, f]);
        *eight = [
            char_of(n.wrapping_shr(42)),
            char_of(n.wrapping_shr(36)),
            char_of(n.wrapping_shr(30)),
            char_of(n.wrapping_shr(24)),
            char_of(n.wrapping_shr(18)),
            char_of(n.wrapping_shr(12)),
            char_of(n.wrapping_shr(6)),
            char_of(n),
        ];
    }
    let tail = eights.into_remainder();
    for (group, chars) in rest.chunks(3).zip(tail.chunks_mut(4)) {
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().skip(5).zip(group) {
            *d = *s;
        }
        let n = u64::from_be_bytes(word);
        let all = [
            char_of(n.wrapping_shr(18)),
            char_of(n.wrapping_shr(12)),
            char_of(n.wrapping_shr(6)),
            char_of(n),
        ];
        // 1 byte → 2 characters, 2 → 3, 3 → 4 (no padding): `chars` has that length.
        for (d, s) in chars.iter_mut().zip(all) {
            *d = s;
        }
    }
}

/// Decodes cookie text, eight characters (six bytes) per step. Strict: a byte outside the
/// alphabet, padding, an impossible length (one character past a group) or non-zero unused
/// bits in the last character is an error. The caller has already bounded `text.len()`.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0u8; decoded_len(text.len()).ok_or(DecodeError::Armor)?];
    let mut bad = 0u8;
    let eights = text.chunks_exact(8);
    let rest = eights.remainder();
    let mut sixes = out.chunks_exact_mut(6);
    for (eight, six) in eights.zip(&mut sixes) {
        let (Ok(&[a, b, c, d, e, f, g, h]), Ok(six)) =
            (<&[u8; 8]>::try_from(eight), <&mut [u8; 6]>::try_from(six))
        else {
            continue;
        };
        let v = [
            sextet_of(a),
            sextet_of(b),
            sextet_of(c),
            sextet_of(d),
            sextet_of(e),
            sextet_of(f),
            sextet_of(g),
            sextet_of(h),
        ];
        bad |= v[0] | v[1] | v[2] | v[3] | v[4] | v[5] | v[6] | v[7];
        let n = v
            .iter()
            .fold(0u64, |n, &s| n.wrapping_shl(6) | u64::from(s));
        let [_, _, b0, b1, b2, b3, b4, b5] = n.to_be_bytes();
        *six = [b0, b1, b2, b3, b4, b5];
    }
    let tail = sixes.into_remainder();
    // `decoded_len` refused a lone character: every group here has 2 to 4, and `tail` the
    // bytes they decode to.
    for (group, bytes) in rest.chunks(4).zip(tail.chunks_mut(3)) {
        let mut n = 0u64;
        for &c in group {
            let v = sextet_of(c);
            bad |= v;
            n = n.wrapping_shl(6) | u64::from(v);
        }
        let unused_bits = match group.len() {
            4 => 0,
            3 => 2,
            2 => 4,
            _ => return Err(DecodeError::Armor),
        };
        // The bits past the last whole byte must be zero (one spelling per envelope).
        if n & (1u64.wrapping_shl(unused_bits).wrapping_sub(1)) != 0 {
            return Err(DecodeError::Armor);
        }
        let be = n.wrapping_shr(unused_bits).to_be_bytes();
        let from = be.len().saturating_sub(bytes.len());
        for (d, s) in bytes.iter_mut().zip(be.iter().skip(from)) {
            *d = *s;
        }
    }
    if bad & INVALID != 0 {
        return Err(DecodeError::Armor);
    }
    Ok(out)
}

/// Decoded length of `n` characters; `None` when no encoding has that length.
pub(crate) const fn decoded_len(n: usize) -> Option<usize> {
    let tail = match n % 4 {
        0 => 0,
        2 => 1,
        3 => 2,
        _ => return None,
    };
    Some((n / 4).saturating_mul(3).saturating_add(tail))
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

    /// The base64 crate's strict URL-safe, unpadded engine is the reference: the same text
    /// for every input, and the same verdict (and bytes) for every text.
    mod against_base64_crate {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn encode_matches(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
                prop_assert_eq!(super::encode(&bytes), URL_SAFE_NO_PAD.encode(&bytes));
            }

            #[test]
            fn decode_matches(text in "[A-Za-z0-9_=+/ .-]{0,40}") {
                let ours = super::decode(text.as_bytes()).ok();
                let theirs = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok();
                prop_assert_eq!(ours, theirs, "{:?}", text);
            }

            #[test]
            fn decode_matches_mostly_valid(
                bytes in proptest::collection::vec(any::<u8>(), 0..100),
                flip in any::<(usize, u8)>(),
            ) {
                let mut text = URL_SAFE_NO_PAD.encode(&bytes).into_bytes();
                if !text.is_empty() {
                    let i = flip.0 % text.len();
                    text[i] = flip.1;
                }
                let ours = super::decode(&text).ok();
                let theirs = URL_SAFE_NO_PAD.decode(&text).ok();
                prop_assert_eq!(ours, theirs);
            }

            #[test]
            fn any_bytes_match(text in proptest::collection::vec(any::<u8>(), 0..24)) {
                prop_assert_eq!(
                    super::decode(&text).ok(),
                    URL_SAFE_NO_PAD.decode(&text).ok()
                );
            }
        }
    }
}
