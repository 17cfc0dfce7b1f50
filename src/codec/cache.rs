//! A per-worker memo of sessions already opened.
//!
//! A client re-sends the very same cookies until its session changes, so a node that opened
//! (or sealed) them once can skip base64, the AEAD and decoding the next time: it looks the
//! cookies up by their last armored bytes (which hold the authentication tag) and accepts a hit
//! only when every byte matches, compared without an early exit. Expiry, idle time and key
//! state are re-checked on every hit, and the memo is dropped whenever the keyring changes, so
//! a hit answers exactly what a fresh open would.

// The memo belongs to the framework adapters; the framework-free core only passes it through.
#![cfg_attr(not(any(feature = "actix", feature = "tower")), allow(dead_code))]

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::codec::Opened;
use crate::keyring::Keyring;

/// Last armored bytes used as the lookup key: 24 characters cover the 16-byte tag.
const TAIL: usize = 24;

type Key = ([u8; TAIL], usize, u8);

/// Opened sessions by exact cookie bytes, bounded in entries and bytes.
pub(crate) struct OpenCache {
    keyring: Option<Arc<Keyring>>,
    entries: HashMap<Key, Entry>,
    /// Insertion order, for first-in-first-out eviction (may hold keys already removed).
    order: VecDeque<Key>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    /// Hits since the last [`OpenCache::take_hits`].
    hits: u64,
}

struct Entry {
    armored: Box<[u8]>,
    opened: Opened,
    size: usize,
}

impl OpenCache {
    /// A memo of at most `max_entries` sessions and `max_bytes` of cookie and value bytes.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        OpenCache {
            keyring: None,
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            hits: 0,
        }
    }

    /// The session these exact pieces opened to before, if any (under this same keyring).
    pub(crate) fn get(
        &mut self,
        keyring: &Arc<Keyring>,
        count: u8,
        pieces: &[&[u8]],
    ) -> Option<&Opened> {
        self.sync(keyring);
        let entry = self.entries.get(&key(count, pieces))?;
        let hit = pieces_eq(pieces, &entry.armored);
        self.hits = self.hits.saturating_add(u64::from(hit));
        hit.then_some(&entry.opened)
    }

    /// Hits counted since the last call (for the middleware's stats).
    pub(crate) fn take_hits(&mut self) -> u64 {
        std::mem::take(&mut self.hits)
    }

    /// Forgets the entry for these pieces (e.g. when it has expired).
    pub(crate) fn remove(&mut self, count: u8, pieces: &[&[u8]]) {
        if let Some(entry) = self.entries.remove(&key(count, pieces)) {
            self.bytes = self.bytes.saturating_sub(entry.size);
        }
    }

    /// Remembers that these pieces open to `opened` under `keyring`.
    pub(crate) fn insert(
        &mut self,
        keyring: &Arc<Keyring>,
        count: u8,
        pieces: &[&[u8]],
        opened: Opened,
    ) {
        if self.max_entries == 0 {
            return;
        }
        self.sync(keyring);
        let armored: Box<[u8]> = pieces.concat().into_boxed_slice();
        let values = opened
            .state
            .entries
            .values()
            .fold(0usize, |n, v| n.saturating_add(v.len()));
        let size = armored.len().saturating_add(values);
        if size > self.max_bytes {
            return;
        }
        let key = key(count, pieces);
        self.remove_key(&key);
        while self.entries.len() >= self.max_entries
            || self.bytes.saturating_add(size) > self.max_bytes
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.remove_key(&oldest);
        }
        if self.order.len() > self.max_entries.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
        self.order.push_back(key);
        self.bytes = self.bytes.saturating_add(size);
        self.entries.insert(
            key,
            Entry {
                armored,
                opened,
                size,
            },
        );
    }

    fn remove_key(&mut self, key: &Key) {
        if let Some(entry) = self.entries.remove(key) {
            self.bytes = self.bytes.saturating_sub(entry.size);
        }
    }

    /// Drops everything when the keyring in force is not the one the entries were opened with
    /// (a rotation or retirement must be seen at once).
    fn sync(&mut self, keyring: &Arc<Keyring>) {
        if !self
            .keyring
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(k, keyring))
        {
            self.entries.clear();
            self.order.clear();
            self.bytes = 0;
            self.keyring = Some(Arc::clone(keyring));
        }
    }
}

/// Count, total length and the last [`TAIL`] bytes of the concatenated pieces.
fn key(count: u8, pieces: &[&[u8]]) -> Key {
    let mut tail = [0u8; TAIL];
    let mut slots = tail.iter_mut().rev();
    'outer: for piece in pieces.iter().rev() {
        for &b in piece.iter().rev() {
            match slots.next() {
                Some(slot) => *slot = b,
                None => break 'outer,
            }
        }
    }
    let total = pieces.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    (tail, total, count)
}

/// Whether the pieces, concatenated, equal `stored`; the time taken depends on the lengths only.
fn pieces_eq(pieces: &[&[u8]], stored: &[u8]) -> bool {
    let total = pieces.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
    if total != stored.len() {
        return false;
    }
    let mut diff = 0u8;
    let mut rest = stored;
    for piece in pieces {
        let (head, tail) = rest.split_at(piece.len().min(rest.len()));
        diff |= xor_fold(piece, head);
        rest = tail;
    }
    diff == 0
}

/// OR of the XOR of two equal-length slices, word by word, with no early exit.
fn xor_fold(a: &[u8], b: &[u8]) -> u8 {
    let mut acc = 0u64;
    let (wa, wb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (wa.remainder(), wb.remainder());
    for (x, y) in wa.zip(wb) {
        let x = u64::from_le_bytes(x.try_into().unwrap_or([0; 8]));
        let y = u64::from_le_bytes(y.try_into().unwrap_or([0; 8]));
        acc |= x ^ y;
    }
    for (x, y) in ra.iter().zip(rb) {
        acc |= u64::from(x ^ y);
    }
    u8::from(acc != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_spans_pieces_and_rejects_any_difference() {
        let stored = b"abcdefghijklmnopqrstuvwxyz0123456789".to_vec();
        assert!(pieces_eq(
            &[&stored[..5], &stored[5..30], &stored[30..]],
            &stored
        ));
        for i in 0..stored.len() {
            let mut other = stored.clone();
            other[i] ^= 1;
            assert!(!pieces_eq(&[&other[..7], &other[7..]], &stored), "{i}");
        }
        assert!(!pieces_eq(&[&stored[..35]], &stored));
        assert_eq!(key(2, &[b"ab", b"cd"]).0[TAIL - 4..], *b"abcd");
        assert_ne!(key(2, &[b"abcd"]), key(1, &[b"abcd"]));
    }
}
