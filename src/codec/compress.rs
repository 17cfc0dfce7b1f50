//! The compression stage, per value.
//!
//! Each large value is compressed on its own (never together with other entries), so data an
//! attacker controls never shares a compression context with a secret: the length of the
//! cookie reveals nothing about how one value relates to another (no CRIME/BREACH oracle).
//! A value is stored compressed only when that saves bytes.
//!
//! Framing of one value: `0x00 ‖ raw bytes`, or `0x01 ‖ varint(raw length) ‖ LZ4 block`.
//! Inflation is bounded by a budget checked *before* allocating.

use crate::error::DecodeError;

const STORED: u8 = 0;
const LZ4: u8 = 1;

/// Frames `value`, compressing it with LZ4 when it is at least `threshold` bytes long and
/// compression saves bytes. `threshold == usize::MAX` disables compression.
pub(crate) fn deflate(value: &[u8], threshold: usize, out: &mut Vec<u8>) {
    if value.len() >= threshold {
        let start = out.len();
        out.push(LZ4);
        push_varint(out, value.len());
        let body = out.len();
        let bound = lz4_flex::block::get_maximum_output_size(value.len());
        out.resize(body.saturating_add(bound), 0);
        let written = out
            .get_mut(body..)
            .map(|dst| lz4_flex::block::compress_into(value, dst));
        if let Some(Ok(n)) = written {
            let framed = body.saturating_sub(start).saturating_add(n);
            // Keep it only if it beats the stored frame (1 + len bytes).
            if framed <= value.len() {
                out.truncate(body.saturating_add(n));
                return;
            }
        }
        out.truncate(start);
    }
    out.push(STORED);
    out.extend_from_slice(value);
}

/// Unframes one value, refusing to produce more than `*budget` bytes and charging what it
/// produced against the budget.
pub(crate) fn inflate(framed: &[u8], budget: &mut usize) -> Result<Vec<u8>, DecodeError> {
    let (&kind, rest) = framed.split_first().ok_or(DecodeError::Compression)?;
    let out = match kind {
        STORED => {
            take(budget, rest.len())?;
            rest.to_vec()
        }
        LZ4 => {
            let (len, block) = read_varint(rest).ok_or(DecodeError::Compression)?;
            // Check the claim against the budget before allocating anything from it.
            take(budget, len)?;
            let mut out = vec![0u8; len];
            match lz4_flex::block::decompress_into(block, &mut out) {
                Ok(n) if n == len => out,
                _ => return Err(DecodeError::Compression),
            }
        }
        _ => return Err(DecodeError::Compression),
    };
    Ok(out)
}

fn take(budget: &mut usize, n: usize) -> Result<(), DecodeError> {
    *budget = budget.checked_sub(n).ok_or(DecodeError::Compression)?;
    Ok(())
}

fn push_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(low_bits(n) | 0x80);
        n >>= 7;
    }
    out.push(low_bits(n));
}

/// The low 7 bits of `n`.
fn low_bits(n: usize) -> u8 {
    u8::try_from(n & 0x7f).unwrap_or(0)
}

/// LEB128, at most 4 bytes (values < 2^28), canonical (no trailing zero groups).
fn read_varint(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut n: usize = 0;
    for (i, (&b, shift)) in bytes.iter().zip([0u32, 7, 14, 21]).enumerate() {
        n |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return None;
            }
            return Some((n, bytes.get(i.saturating_add(1)..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(value: &[u8], threshold: usize) -> Vec<u8> {
        let mut out = Vec::new();
        deflate(value, threshold, &mut out);
        out
    }

    #[test]
    fn compresses_only_when_it_saves_bytes() {
        let text = "the quick brown fox ".repeat(50);
        let f = framed(text.as_bytes(), 64);
        assert_eq!(f[0], LZ4);
        assert!(f.len() < text.len() / 4);
        let mut budget = 10_000;
        assert_eq!(inflate(&f, &mut budget).unwrap(), text.as_bytes());
        assert_eq!(budget, 10_000 - text.len());

        let small = framed(b"short", 64);
        assert_eq!(small, b"\0short");
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let random: Vec<u8> = (0..500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[3]
            })
            .collect();
        assert_eq!(framed(&random, 64)[0], STORED);
        assert_eq!(framed(text.as_bytes(), usize::MAX)[0], STORED);
    }

    #[test]
    fn inflation_is_bounded_before_allocation() {
        let text = vec![b'a'; 100_000];
        let f = framed(&text, 1);
        let mut small = 99_999;
        assert_eq!(inflate(&f, &mut small), Err(DecodeError::Compression));
        // A forged size prefix of 0x7FFFFFFF cannot even be expressed (4-byte varint max),
        // and one of 2^28-1 is refused by the budget without allocating.
        let mut forged = vec![LZ4, 0xff, 0xff, 0xff, 0x7f];
        forged.extend_from_slice(&[0x1f, b'a', 0, 0]);
        let mut budget = 65_536;
        assert_eq!(inflate(&forged, &mut budget), Err(DecodeError::Compression));
        assert_eq!(
            inflate(&[LZ4, 0xff, 0xff, 0xff, 0xff, 0x07], &mut budget),
            Err(DecodeError::Compression)
        );
        // Wrong claimed size, unknown id, empty frame, non-canonical varint.
        let mut f2 = f.clone();
        f2[1] ^= 1;
        assert_eq!(inflate(&f2, &mut 1_000_000), Err(DecodeError::Compression));
        assert_eq!(inflate(&[7, 1, 2], &mut 100), Err(DecodeError::Compression));
        assert_eq!(inflate(&[], &mut 100), Err(DecodeError::Compression));
        assert_eq!(
            inflate(&[LZ4, 0x80, 0x00], &mut 100),
            Err(DecodeError::Compression)
        );
    }
}
