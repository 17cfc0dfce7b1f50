//! The armor stage: strict, unpadded URL-safe base64, the only encoding that survives every
//! browser and proxy unescaped. Non-canonical input (padding, non-zero trailing bits, other
//! alphabets) is rejected so that one envelope has exactly one cookie spelling.

use crate::error::DecodeError;

/// The alphabet, by sextet value.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Encodes bytes as cookie-safe text (the sealing path uses [`encode_into`]; this is for the
/// tests and the fuzz targets).
#[cfg_attr(not(any(test, feature = "actix")), allow(dead_code))]
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(encoded_len(bytes.len()));
    encode_into(bytes, &mut out);
    // Every byte written is from the ASCII alphabet, so this never falls back.
    String::from_utf8(out).unwrap_or_default()
}

/// Two characters for every 12-bit value: a group of three bytes is two lookups.
// Evaluated at compile time: an out-of-range index would fail the build, never a request.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const PAIRS: [[u8; 2]; 4096] = {
    let mut table = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    table
};

/// The two characters of the low twelve bits of `n`.
#[allow(clippy::indexing_slicing)] // `& 4095` keeps the index within the table
#[inline(always)]
fn pair_of(n: u64) -> [u8; 2] {
    PAIRS[(n & 4095) as usize]
}

/// Appends the text of `bytes` to `out` (a `Set-Cookie` line being built), six bytes (eight
/// characters, four table lookups) per step.
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
        let [p0, p1] = pair_of(n.wrapping_shr(36));
        let [p2, p3] = pair_of(n.wrapping_shr(24));
        let [p4, p5] = pair_of(n.wrapping_shr(12));
        let [p6, p7] = pair_of(n);
        *eight = [p0, p1, p2, p3, p4, p5, p6, p7];
    }
    let tail = eights.into_remainder();
    for (group, chars) in rest.chunks(3).zip(tail.chunks_mut(4)) {
        let mut word = [0u8; 8];
        for (d, s) in word.iter_mut().skip(5).zip(group) {
            *d = *s;
        }
        let n = u64::from_be_bytes(word);
        let [c0, c1] = pair_of(n.wrapping_shr(12));
        let [c2, c3] = pair_of(n);
        // 1 byte → 2 characters, 2 → 3, 3 → 4 (no padding): `chars` has that length.
        for (d, s) in chars.iter_mut().zip([c0, c1, c2, c3]) {
            *d = s;
        }
    }
}

/// The sextet of every byte shifted to its place in a four-character group (`[k]` for the
/// `k`-th character), or a bit at 24 or above for a byte outside the alphabet: a group
/// decodes with four lookups and three ORs, and any bad byte shows above the 24 data bits.
// Evaluated at compile time: an out-of-range index would fail the build, never a request.
#[allow(
    clippy::indexing_slicing,
    clippy::cast_possible_truncation,
    clippy::arithmetic_side_effects
)]
const PLACED: [[u32; 256]; 4] = {
    let mut tables = [[0xFF00_0000u32; 256]; 4];
    let mut i = 0;
    while i < 64 {
        let c = ALPHABET[i] as usize;
        let v = i as u32;
        tables[0][c] = v << 18;
        tables[1][c] = v << 12;
        tables[2][c] = v << 6;
        tables[3][c] = v;
        i += 1;
    }
    tables
};

/// Up to four characters as one 24-bit group (missing characters count as `A`), with the
/// invalid marker above bit 24 when any is outside the alphabet.
#[allow(clippy::indexing_slicing)] // constant table indices; a `u8` always indexes 256 entries
#[inline(always)]
fn group(chars: &[u8]) -> u32 {
    let at = |k: usize| chars.get(k).map_or(0, |&c| PLACED[k][usize::from(c)]);
    at(0) | at(1) | at(2) | at(3)
}

/// Decodes cookie text, four characters (three bytes) per step. Strict: a byte outside the
/// alphabet, padding, an impossible length (one character past a group) or non-zero unused
/// bits in the last character is an error. The caller has already bounded `text.len()`.
pub(crate) fn decode(text: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut out = vec![0u8; decoded_len(text.len()).ok_or(DecodeError::Armor)?];
    let mut bad = 0u32;
    let fours = text.chunks_exact(4);
    let rest = fours.remainder();
    let mut threes = out.chunks_exact_mut(3);
    for (four, three) in fours.zip(&mut threes) {
        let n = group(four);
        bad |= n;
        let [_, b0, b1, b2] = n.to_be_bytes();
        if let Ok(three) = <&mut [u8; 3]>::try_from(three) {
            *three = [b0, b1, b2];
        }
    }
    // `decoded_len` refused a lone character: `rest` has 0, 2 or 3, and `tail` the 0, 1 or
    // 2 bytes they decode to.
    let tail = threes.into_remainder();
    if !rest.is_empty() {
        let n = group(rest);
        bad |= n;
        // The bits past the last whole byte must be zero (one spelling per envelope).
        let unused = if rest.len() == 2 {
            0x0000_FFFF
        } else {
            0x0000_00FF
        };
        if n & unused != 0 {
            return Err(DecodeError::Armor);
        }
        let [_, b0, b1, _] = n.to_be_bytes();
        for (d, s) in tail.iter_mut().zip([b0, b1]) {
            *d = s;
        }
    }
    if bad >> 24 != 0 {
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
