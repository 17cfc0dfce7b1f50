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
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::codec::Opened;
use crate::keyring::{Algorithm, KeyId, Keyring};
use crate::state::SessionState;

/// Last armored bytes used as the lookup key: 24 characters cover the 16-byte tag.
const TAIL: usize = 24;

type Key = ([u8; TAIL], usize, u8);

/// Opened sessions by exact cookie bytes, bounded in entries and bytes.
///
/// Admission is by a doorkeeper: cookies are remembered on their second open (or their
/// first, when this worker sealed them), so the many cookies a busy site sees once never
/// enter, and never push out an entry that would have been hit; admitting every miss made a
/// miss cost twice an open without the memo (evicting a cold session frees many small
/// allocations). Eviction is second-chance (CLOCK): an entry hit since it last reached the
/// front of the queue goes round once more, so the sessions of frequent visitors stay.
pub(crate) struct OpenCache {
    keyring: Option<Arc<Keyring>>,
    doorkeeper: Doorkeeper,
    entries: HashMap<Key, Entry, BuildHasherDefault<TagHasher>>,
    /// Insertion order, for eviction (may hold keys already removed).
    order: VecDeque<Key>,
    bytes: usize,
    max_entries: usize,
    max_bytes: usize,
    /// Hits since the last [`OpenCache::take_hits`].
    hits: u64,
}

struct Entry {
    armored: Box<[u8]>,
    /// Shares its entries with every request it answers (copied on write).
    state: SessionState,
    key_id: KeyId,
    algorithm: Algorithm,
    size: usize,
    /// Hit since it was queued: spared once by the eviction.
    referenced: bool,
}

impl OpenCache {
    /// A memo of at most `max_entries` sessions and `max_bytes` of cookie and value bytes.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        OpenCache {
            keyring: None,
            doorkeeper: Doorkeeper::new(max_entries),
            entries: HashMap::default(),
            order: VecDeque::new(),
            bytes: 0,
            max_entries,
            max_bytes,
            hits: 0,
        }
    }

    /// Whether the memo keeps anything (a capacity of 0 turns it off).
    pub(crate) fn enabled(&self) -> bool {
        self.max_entries > 0
    }

    /// The session these exact pieces opened to before, if any (under this same keyring).
    /// Its diagnostics (`chunk_lengths`, `compressed`) are not kept: they are empty.
    pub(crate) fn get(
        &mut self,
        keyring: &Arc<Keyring>,
        count: u8,
        pieces: &[&[u8]],
    ) -> Option<Opened> {
        self.sync(keyring);
        let entry = self.entries.get_mut(&key(count, pieces))?;
        if !pieces_eq(pieces, &entry.armored) {
            return None;
        }
        self.hits = self.hits.saturating_add(1);
        entry.referenced = true;
        Some(Opened {
            state: entry.state.clone(),
            key_id: entry.key_id,
            algorithm: entry.algorithm,
            needs_reseal: false,
            chunk_lengths: Vec::new(),
            compressed: Vec::new(),
        })
    }

    /// Hits counted since the last call (for the middleware's stats).
    pub(crate) fn take_hits(&mut self) -> u64 {
        std::mem::take(&mut self.hits)
    }

    /// Forgets the entry for these pieces (e.g. when it has expired).
    pub(crate) fn remove(&mut self, count: u8, pieces: &[&[u8]]) {
        self.remove_key(&key(count, pieces));
    }

    /// Offers the session these pieces just opened to (a miss): remembered when the same
    /// cookies were opened (or sealed) here recently, otherwise only noted for next time.
    pub(crate) fn offer(
        &mut self,
        keyring: &Arc<Keyring>,
        count: u8,
        pieces: &[&[u8]],
        opened: &Opened,
    ) {
        if self.enabled() && self.doorkeeper.admit(&key(count, pieces)) {
            self.insert(keyring, count, pieces, opened);
        }
    }

    /// Notes cookies this worker has just sealed: the client sends them next, and their
    /// first open here is then remembered.
    pub(crate) fn expect(&mut self, count: u8, pieces: &[&[u8]]) {
        if self.enabled() {
            self.doorkeeper.admit(&key(count, pieces));
        }
    }

    /// Remembers that these pieces open to `opened` under `keyring` (past the doorkeeper).
    fn insert(&mut self, keyring: &Arc<Keyring>, count: u8, pieces: &[&[u8]], opened: &Opened) {
        if !self.enabled() {
            return;
        }
        self.sync(keyring);
        let values = opened
            .state
            .entries
            .values()
            .fold(0usize, |n, v| n.saturating_add(v.len()));
        let total = pieces.iter().fold(0usize, |n, p| n.saturating_add(p.len()));
        let size = total.saturating_add(values);
        if size > self.max_bytes {
            return;
        }
        let key = key(count, pieces);
        self.remove_key(&key);
        self.make_room(size);
        if self.order.len() > self.max_entries.saturating_mul(2) {
            let entries = &self.entries;
            self.order.retain(|k| entries.contains_key(k));
        }
        self.order.push_back(key);
        self.bytes = self.bytes.saturating_add(size);
        self.entries.insert(
            key,
            Entry {
                armored: pieces.concat().into_boxed_slice(),
                state: opened.state.clone(),
                key_id: opened.key_id,
                algorithm: opened.algorithm,
                size,
                referenced: false,
            },
        );
    }

    /// Evicts until one more entry of `size` bytes fits: from the front of the queue, sparing
    /// (and re-queuing, unmarked) each entry hit since it was queued. Every pass unmarks
    /// what it spares, so this ends within two rounds of the queue.
    fn make_room(&mut self, size: usize) {
        let mut budget = self.order.len().saturating_mul(2).saturating_add(1);
        while self.entries.len() >= self.max_entries
            || self.bytes.saturating_add(size) > self.max_bytes
        {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            budget = budget.saturating_sub(1);
            match self.entries.get_mut(&oldest) {
                Some(entry) if entry.referenced && budget > 0 => {
                    entry.referenced = false;
                    self.order.push_back(oldest);
                }
                Some(_) => self.remove_key(&oldest),
                None => {}
            }
        }
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

/// Which cookies were opened (or sealed) recently: one bit per hashed key, about eight bits per
/// memo entry, cleared when as many keys as the memo holds have been noted since the last
/// clearing (so it forgets, and its false positives stay near one in eight).
struct Doorkeeper {
    bits: Vec<u64>,
    noted: usize,
    limit: usize,
}

impl Doorkeeper {
    fn new(max_entries: usize) -> Self {
        let bits = max_entries
            .saturating_mul(8)
            .clamp(1024, 1 << 24)
            .next_power_of_two();
        Doorkeeper {
            bits: vec![0; bits / 64],
            noted: 0,
            limit: max_entries.max(1),
        }
    }

    /// Notes `key`; whether it was noted before (since the last clearing).
    fn admit(&mut self, key: &Key) -> bool {
        let mut hasher = TagHasher::default();
        std::hash::Hash::hash(key, &mut hasher);
        let hash = hasher.finish();
        // Masked before the conversion, so a 32-bit `usize` takes it too.
        let mask = u64::try_from(self.bits.len().saturating_sub(1)).unwrap_or(0);
        let index = usize::try_from(hash.wrapping_shr(6) & mask).unwrap_or(0);
        let Some(word) = self.bits.get_mut(index) else {
            return false;
        };
        let bit = 1u64.wrapping_shl(u32::try_from(hash & 63).unwrap_or(0));
        let seen = *word & bit != 0;
        if !seen {
            *word |= bit;
            self.noted = self.noted.saturating_add(1);
            if self.noted >= self.limit {
                self.bits.fill(0);
                self.noted = 0;
            }
        }
        seen
    }
}

/// Hashes a [`Key`] by multiplying its words: no keyed hash is needed, since only authentic
/// cookies are ever inserted and their last bytes are the AEAD tag, which nobody without
/// the key can choose (a lookup of forged bytes only probes).
#[derive(Default)]
pub(crate) struct TagHasher(u64);

impl Hasher for TagHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for word in bytes.chunks(8) {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(word) {
                *d = *s;
            }
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
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

    #[test]
    fn the_doorkeeper_admits_on_the_second_sighting_and_forgets() {
        let mut door = Doorkeeper::new(64);
        let k = |i: u8| key(1, &[&[i; 40][..]]);
        assert!(!door.admit(&k(1)), "first sighting");
        assert!(door.admit(&k(1)), "second sighting");
        assert!(door.admit(&k(1)), "still known");
        // 64 newly noted keys clear the table (k(1) was the first of them).
        for i in 2..=64 {
            door.admit(&k(i));
        }
        assert!(!door.admit(&k(1)), "forgotten after the clearing");
    }

    #[test]
    fn a_memo_keeps_a_cookie_on_its_second_offer_only() {
        let ring = Arc::new(
            Keyring::generate(
                crate::keyring::Algorithm::default(),
                std::time::SystemTime::now(),
            )
            .unwrap(),
        );
        let opened = Opened {
            state: SessionState::new(
                std::time::SystemTime::now(),
                std::time::Duration::from_secs(60),
            ),
            key_id: ring.sealing_key(std::time::SystemTime::now()).id(),
            algorithm: crate::keyring::Algorithm::default(),
            needs_reseal: false,
            chunk_lengths: Vec::new(),
            compressed: Vec::new(),
        };
        let pieces: [&[u8]; 1] = [b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"];
        let mut memo = OpenCache::new(8, 1 << 20);
        memo.offer(&ring, 1, &pieces, &opened);
        assert!(memo.get(&ring, 1, &pieces).is_none());
        memo.offer(&ring, 1, &pieces, &opened);
        assert!(memo.get(&ring, 1, &pieces).is_some());
        // Expected (sealed here): kept on the first offer.
        let other: [&[u8]; 1] = [b"zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLK"];
        memo.expect(1, &other);
        memo.offer(&ring, 1, &other, &opened);
        assert!(memo.get(&ring, 1, &other).is_some());
        assert_eq!(memo.take_hits(), 2);
    }
}
