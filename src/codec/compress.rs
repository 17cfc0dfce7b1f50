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
        let written = out.get_mut(body..).map(|dst| compress_block(value, dst));
        if let Some(Ok(n)) = written {
            let framed = body.saturating_sub(start).saturating_add(n);
            // Keep it only if it beats the stored frame (1 + len bytes) and obeys the LZ4
            // end-of-block rules every decoder checks (lz4_flex's compressor does; this
            // makes sure a future version cannot make us write blocks we would refuse).
            let block = out.get(body..body.saturating_add(n)).unwrap_or(&[]);
            if framed <= value.len() && check_block(block, value.len()).is_some() {
                out.truncate(body.saturating_add(n));
                return;
            }
        }
        out.truncate(start);
    }
    out.push(STORED);
    out.extend_from_slice(value);
}

thread_local! {
    /// The compressor's hash table, kept per thread: building a fresh one (8 KiB, zeroed)
    /// for every value cost more than compressing a 1 KB value.
    static TABLE: std::cell::RefCell<lz4_flex::block::CompressTable> =
        std::cell::RefCell::new(lz4_flex::block::CompressTable::default());
}

/// One LZ4 block of `value` into `dst` (sized by `get_maximum_output_size`), with this
/// thread's table (or a fresh one, re-entered or at thread exit).
fn compress_block(value: &[u8], dst: &mut [u8]) -> Result<usize, lz4_flex::block::CompressError> {
    let reused = TABLE.try_with(|table| {
        table
            .try_borrow_mut()
            .ok()
            .map(|mut table| lz4_flex::block::compress_into_with_table(value, dst, &mut table))
    });
    match reused {
        Ok(Some(written)) => written,
        _ => lz4_flex::block::compress_into(value, dst),
    }
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
            // An empty value is always stored: a compressed frame announces 1 byte or more.
            if len == 0 {
                return Err(DecodeError::Compression);
            }
            // Check the claim against the budget before allocating anything from it.
            take(budget, len)?;
            // The LZ4 end-of-block rules, which lz4_flex's decoder does not check.
            check_block(block, len).ok_or(DecodeError::Compression)?;
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

/// LZ4 block format (lz4/doc/lz4_Block_format.md), "End of block conditions": the last
/// sequence holds literals only, the last 5 bytes of the output are literals, and the last
/// match starts at least 12 bytes before the end. Also: the block decodes to exactly
/// `out_len` bytes, and every offset is 1 … bytes produced so far (no dictionary).
/// The C library rejects blocks that break these rules; lz4_flex's decoder accepts some, so
/// they are checked here, walking the sequences without decoding them. `None` on violation.
fn check_block(block: &[u8], out_len: usize) -> Option<()> {
    const MIN_MATCH: usize = 4;
    const LAST_LITERALS: usize = 5;
    const MF_LIMIT: usize = 12;
    let mut ip = 0usize;
    let mut op = 0usize;
    // Every turn consumes at least the token byte, so this ends within `block.len()` turns.
    loop {
        let token = *block.get(ip)?;
        ip = ip.checked_add(1)?;
        let literals = read_length(block, &mut ip, usize::from(token >> 4))?;
        ip = ip.checked_add(literals)?;
        op = op.checked_add(literals)?;
        if ip > block.len() || op > out_len {
            return None;
        }
        if ip == block.len() {
            // The last sequence: literals only, and the output is complete.
            return (op == out_len).then_some(());
        }
        let offset = block.get(ip..ip.checked_add(2)?)?;
        let offset = usize::from(u16::from_le_bytes([*offset.first()?, *offset.get(1)?]));
        ip = ip.checked_add(2)?;
        if offset == 0 || offset > op {
            return None;
        }
        let matched = read_length(block, &mut ip, usize::from(token & 0x0f))?;
        let matched = matched.checked_add(MIN_MATCH)?;
        let end = op.checked_add(matched)?;
        if op.checked_add(MF_LIMIT)? > out_len || end.checked_add(LAST_LITERALS)? > out_len {
            return None;
        }
        op = end;
    }
}

/// A sequence length: the 4-bit `nibble`, extended by bytes while they are 255.
fn read_length(block: &[u8], ip: &mut usize, nibble: usize) -> Option<usize> {
    let mut n = nibble;
    if nibble == 0x0f {
        loop {
            let b = *block.get(*ip)?;
            *ip = ip.checked_add(1)?;
            n = n.checked_add(usize::from(b))?;
            if b != 0xff {
                break;
            }
        }
    }
    Some(n)
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

    fn lz4(value: &[u8]) -> Vec<u8> {
        let mut out = vec![0; lz4_flex::block::get_maximum_output_size(value.len())];
        let n = lz4_flex::block::compress_into(value, &mut out).unwrap();
        out.truncate(n);
        out
    }

    fn frame_of(len: usize, block: &[u8]) -> Vec<u8> {
        let mut f = vec![LZ4];
        push_varint(&mut f, len);
        f.extend_from_slice(block);
        f
    }

    #[test]
    fn b2_blocks_breaking_the_end_of_block_rules_are_refused() {
        // 20 × 'a': literal 'a', a match of 19 at offset 1, then an empty last sequence.
        // lz4_flex decodes it; the LZ4 format (and the C library) forbid it: the match covers
        // the last 5 bytes and starts 19 bytes (not ≥ 12) before the end.
        let ends_in_match = [0x1f, b'a', 0x01, 0x00, 0x00, 0x00];
        let mut out = [0u8; 20];
        assert_eq!(
            lz4_flex::block::decompress_into(&ends_in_match, &mut out).ok(),
            Some(20),
            "lz4_flex alone accepts it"
        );
        assert_eq!(
            inflate(&frame_of(20, &ends_in_match), &mut 1000),
            Err(DecodeError::Compression)
        );
        // Without the empty last sequence the block ends in a match.
        assert_eq!(check_block(&ends_in_match[..5], 20), None);
        // 'a', a match of 19, then 'b': lz4_flex accepts it, the last byte is the only literal.
        let one_literal = [0x1f, b'a', 0x01, 0x00, 0x00, 0x10, b'b'];
        let mut out = [0u8; 21];
        assert!(lz4_flex::block::decompress_into(&one_literal, &mut out).is_ok());
        assert_eq!(check_block(&one_literal, 21), None);
        // 'a' + match of 15 + 4 literals: the last 5 bytes are not all literals.
        let short_tail = [0x1b, b'a', 0x01, 0x00, 0x40, b'b', b'b', b'b', b'b'];
        assert_eq!(check_block(&short_tail, 20), None);
        assert_eq!(
            inflate(&frame_of(20, &short_tail), &mut 1000),
            Err(DecodeError::Compression)
        );
        // 'a' + match of 5 (ends 14 bytes before the end, so 5 literals are fine) but it
        // starts 1 + … : make a match start 11 bytes before the end of 20.
        // 9 literals, then a match of 4 at op 9 (11 before the end), then 7 literals.
        let late_match = [
            0x90, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', 0x04, 0x00, 0x70, b'j',
            b'k', b'l', b'm', b'n', b'o', b'p',
        ];
        assert_eq!(check_block(&late_match, 20), None);
        // The same with 8 literals first (match at op 8, exactly 12 before the end): valid.
        let ok = [
            0x80, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0x04, 0x00, 0x80, b'j', b'k',
            b'l', b'm', b'n', b'o', b'p', b'q',
        ];
        assert_eq!(check_block(&ok, 20), Some(()));
        let mut budget = 1000;
        assert_eq!(
            inflate(&frame_of(20, &ok), &mut budget).unwrap(),
            b"abcdefghefghjklmnopq"
        );
        // Offset 0, offset beyond the output, an empty block, trailing bytes.
        assert_eq!(
            check_block(&[0x10, b'a', 0x00, 0x00, 0x50, 1, 2, 3, 4, 5], 10),
            None
        );
        assert_eq!(
            check_block(&[0x10, b'a', 0x02, 0x00, 0x50, 1, 2, 3, 4, 5], 10),
            None
        );
        assert_eq!(check_block(&[], 0), None);
        assert_eq!(check_block(&[0x10, b'a', 0x00], 1), None);
    }

    #[test]
    fn b2_our_own_blocks_obey_the_end_of_block_rules() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for len in (1..600).chain([1000, 4096, 20_000, 65_536]) {
            for alphabet in [1u64, 2, 4, 26, 256] {
                let value: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x % alphabet) as u8
                    })
                    .collect();
                let block = lz4(&value);
                assert_eq!(
                    check_block(&block, len),
                    Some(()),
                    "{len} bytes over {alphabet}"
                );
            }
        }
    }

    #[test]
    fn b9_a_compressed_frame_of_raw_length_0_is_refused() {
        let empty = lz4(b"");
        assert_eq!(empty, [0]);
        assert_eq!(
            inflate(&frame_of(0, &empty), &mut 100),
            Err(DecodeError::Compression)
        );
        assert_eq!(inflate(&[STORED], &mut 100).unwrap(), b"");
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
