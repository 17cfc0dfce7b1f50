//! `SessionState`: what a session holds, and the metadata sealed with it.
//!
//! Values are kept as postcard bytes: postcard is not self-describing, so a value is typed
//! when it is read (`get::<T>`) and written (`insert`). Beside each value written by
//! [`SessionState::insert`] is its *fingerprint*, a hash of the serde data-model trace of the
//! value ([`fingerprint_of`]); [`SessionState::get`] checks it, so a value read with another type
//! than it was written with is an error, never a wrong value. Entries without a fingerprint
//! (sealed before fingerprints existed, or stored with [`SessionState::insert_raw`]) read
//! unchecked, as before. Keys are ordered (a `BTreeMap`) so the same state always encodes to
//! the same bytes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand_core::CryptoRng;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{SessionGetError, SessionInsertError};
use crate::keyring::{from_unix_seconds, unix_seconds};

mod fingerprint;

/// The payload schema without fingerprints: written when no entry has one (docs/FORMAT.md §5).
pub(crate) const SCHEMA_VERSION: u8 = 1;
/// The payload schema whose entries carry an optional fingerprint (docs/FORMAT.md §5).
pub(crate) const SCHEMA_TYPED: u8 = 2;
/// Schema 2's entries after a `validated_at` time: written only when a revalidation hook is
/// configured (docs/FORMAT.md §5).
pub(crate) const SCHEMA_VALIDATED: u8 = 3;

/// A session's entries and metadata. Times are whole seconds since the Unix epoch.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionState {
    pub(crate) id: [u8; 16],
    pub(crate) issued_at: u64,
    pub(crate) expires_at: u64,
    pub(crate) last_seen: u64,
    /// When the application's revalidation hook last confirmed the session (issue 11, level
    /// 2). A session sealed without one (schema 1 or 2) counts as validated when issued.
    pub(crate) validated_at: u64,
    /// Shared, copied on write (like `fingerprints`): a memo hit hands the request this map
    /// without copying it, and only a request that changes an entry pays for a copy.
    pub(crate) entries: Arc<BTreeMap<String, Vec<u8>>>,
    /// The fingerprint of each entry that has one (a subset of `entries`' keys).
    ///
    /// Shared, copied on write: the per-worker memo hands out a clone of the opened state on
    /// every hit, and most requests never change a fingerprint.
    pub(crate) fingerprints: Arc<BTreeMap<String, u64>>,
}

impl SessionState {
    /// A new, empty session issued at `now` and expiring after `lifetime`, with a random id
    /// (from a per-thread CSPRNG seeded from the OS that reseeds after `fork()`).
    pub fn new(now: SystemTime, lifetime: Duration) -> Self {
        Self::new_with_rng(now, lifetime, &mut crate::codec::ForkSafeRng)
    }

    /// [`SessionState::new`] with the id drawn from `rng` (seeded tests). Not part of the
    /// stable API: `rng` must stay unique across `fork()`, which `rand::rng()` does not.
    #[doc(hidden)]
    pub fn new_with_rng(now: SystemTime, lifetime: Duration, rng: &mut impl CryptoRng) -> Self {
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let now = unix_seconds(now);
        SessionState {
            id,
            issued_at: now,
            expires_at: now.saturating_add(lifetime.as_secs()),
            last_seen: now,
            validated_at: now,
            entries: Arc::default(),
            fingerprints: Arc::default(),
        }
    }

    /// Builds a state from its parts (used by tests, vectors and tools). The entries have no
    /// fingerprints (they read unchecked); add typed ones with
    /// [`SessionState::insert_fingerprinted`].
    pub fn from_parts(
        id: [u8; 16],
        issued_at: SystemTime,
        expires_at: SystemTime,
        last_seen: SystemTime,
        entries: BTreeMap<String, Vec<u8>>,
    ) -> Self {
        SessionState {
            id,
            issued_at: unix_seconds(issued_at),
            expires_at: unix_seconds(expires_at),
            last_seen: unix_seconds(last_seen),
            validated_at: unix_seconds(issued_at),
            entries: Arc::new(entries),
            fingerprints: Arc::default(),
        }
    }

    /// The random session id. It changes on [`SessionState::renew`].
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// When this session identity was issued.
    pub fn issued_at(&self) -> SystemTime {
        from_unix_seconds(self.issued_at)
    }

    /// The absolute expiry: after it the session is refused whatever the cookie says.
    pub fn expires_at(&self) -> SystemTime {
        from_unix_seconds(self.expires_at)
    }

    /// When the session was last re-issued (the idle timeout counts from here).
    pub fn last_seen(&self) -> SystemTime {
        from_unix_seconds(self.last_seen)
    }

    /// When the application's revalidation hook last confirmed this session; its issue time
    /// until then (a login is a validation).
    pub fn validated_at(&self) -> SystemTime {
        from_unix_seconds(self.validated_at)
    }

    /// Records that the session was confirmed at `now` (whole seconds).
    pub fn mark_validated(&mut self, now: SystemTime) {
        self.validated_at = unix_seconds(now);
    }

    /// Raw (postcard) entries.
    pub fn entries(&self) -> &BTreeMap<String, Vec<u8>> {
        &self.entries
    }

    /// The fingerprint stored beside `key`'s value, if it has one (docs/FORMAT.md §6.1).
    pub fn fingerprint(&self, key: &str) -> Option<u64> {
        self.fingerprints.get(key).copied()
    }

    /// Reads `key` as `T`. `Ok(None)` when absent; `Err` when the value is not a `T`.
    ///
    /// # Errors
    /// The stored bytes do not deserialize as `T` (or have bytes left over), or the value has
    /// a fingerprint and `T` reads it with a different serde data model (another integer
    /// width or signedness, `String` for bytes, other struct fields or enum variants, …).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionGetError> {
        let Some(bytes) = self.entries.get(key) else {
            return Ok(None);
        };
        decode_entry(bytes, self.fingerprints.get(key).copied())
            .map(Some)
            .map_err(|_| SessionGetError {
                key: key.to_owned(),
            })
    }

    /// Stores `value` under `key` with its fingerprint, returning whether the stored bytes or
    /// fingerprint changed.
    ///
    /// # Errors
    /// The value cannot be serialized by postcard (e.g. a map with non-string keys is fine,
    /// but `serde_json::Value` is not, postcard not being self-describing).
    pub fn insert<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<bool, SessionInsertError> {
        let (fingerprint, bytes) = encode_value(value).map_err(|_| SessionInsertError {
            key: key.to_owned(),
        })?;
        Ok(self.insert_fingerprinted(key.to_owned(), fingerprint, bytes))
    }

    /// Stores already-encoded postcard bytes with their fingerprint (as computed by
    /// [`fingerprint_of`]); returns whether anything changed.
    pub fn insert_fingerprinted(&mut self, key: String, fingerprint: u64, bytes: Vec<u8>) -> bool {
        let same = self.entries.get(&key).is_some_and(|old| *old == bytes)
            && self.fingerprints.get(&key) == Some(&fingerprint);
        if !same {
            // A new value of the same type keeps its fingerprint: the shared map is copied
            // only when a fingerprint really changes.
            if self.fingerprints.get(&key) != Some(&fingerprint) {
                Arc::make_mut(&mut self.fingerprints).insert(key.clone(), fingerprint);
            }
            Arc::make_mut(&mut self.entries).insert(key, bytes);
        }
        !same
    }

    /// Stores already-encoded bytes without a fingerprint (they will read unchecked, as
    /// entries sealed before fingerprints existed); returns whether anything changed.
    pub fn insert_raw(&mut self, key: String, bytes: Vec<u8>) -> bool {
        let had_fingerprint = self.take_fingerprint(&key).is_some();
        match self.entries.get(&key) {
            Some(old) if *old == bytes && !had_fingerprint => false,
            _ => {
                Arc::make_mut(&mut self.entries).insert(key, bytes);
                true
            }
        }
    }

    /// Removes `key`, returning its raw bytes.
    pub fn remove(&mut self, key: &str) -> Option<Vec<u8>> {
        self.take_fingerprint(key);
        if !self.entries.contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.entries).remove(key)
    }

    /// Removes `key` and reads it as `T` (checked like [`SessionState::get`]); `Err` carries
    /// the raw bytes when they are not a `T`.
    pub fn remove_as<T: DeserializeOwned>(&mut self, key: &str) -> Option<Result<T, Vec<u8>>> {
        let fingerprint = self.take_fingerprint(key);
        if !self.entries.contains_key(key) {
            return None;
        }
        let bytes = Arc::make_mut(&mut self.entries).remove(key)?;
        Some(decode_entry(&bytes, fingerprint).map_err(|_| bytes))
    }

    /// Removes every entry (the identity and times stay).
    pub fn clear(&mut self) {
        if !self.entries.is_empty() {
            self.entries = Arc::default();
        }
        if !self.fingerprints.is_empty() {
            self.fingerprints = Arc::default();
        }
    }

    /// Removes `key`'s fingerprint, copying the shared map only when there is one to remove.
    fn take_fingerprint(&mut self, key: &str) -> Option<u64> {
        if self.fingerprints.contains_key(key) {
            Arc::make_mut(&mut self.fingerprints).remove(key)
        } else {
            None
        }
    }

    /// A new identity for the same entries: new id, issued now, a fresh absolute lifetime.
    /// Call it whenever privileges change (login, sudo-mode), against session fixation.
    pub fn renew(&mut self, now: SystemTime, lifetime: Duration) {
        self.renew_with_rng(now, lifetime, &mut crate::codec::ForkSafeRng);
    }

    /// [`SessionState::renew`] with the id drawn from `rng`; as [`SessionState::new_with_rng`].
    #[doc(hidden)]
    pub fn renew_with_rng(
        &mut self,
        now: SystemTime,
        lifetime: Duration,
        rng: &mut impl CryptoRng,
    ) {
        let fresh = SessionState::new_with_rng(now, lifetime, rng);
        self.id = fresh.id;
        self.issued_at = fresh.issued_at;
        self.expires_at = fresh.expires_at;
        self.last_seen = fresh.last_seen;
        self.validated_at = fresh.validated_at;
    }

    /// Moves the idle clock to `now` (never past the absolute expiry).
    pub fn touch(&mut self, now: SystemTime) {
        self.last_seen = unix_seconds(now).min(self.expires_at);
    }
}

impl std::fmt::Debug for SessionState {
    /// Shows the shape, never the values: sessions hold user data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionState")
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .field("last_seen", &self.last_seen)
            .field("validated_at", &self.validated_at)
            .field("keys", &self.entries.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The fingerprint of `value` (docs/FORMAT.md §6.1): a 64-bit FNV-1a hash of the serde
/// data-model trace of the value, as [`SessionState::insert`] stores it.
///
/// `None` when the value cannot be serialized by postcard (a sequence or map of unknown
/// length, or the value's own `Serialize` error).
pub fn fingerprint_of<T: Serialize + ?Sized>(value: &T) -> Option<u64> {
    fingerprint::of(value).ok()
}

/// A value's fingerprint and postcard bytes.
pub(crate) fn encode_value<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(u64, Vec<u8>), postcard::Error> {
    let fingerprint = fingerprint::of(value)?;
    Ok((fingerprint, postcard::to_allocvec(value)?))
}

/// Decodes one entry as `T`: checked against its fingerprint when it has one, unchecked
/// (legacy) otherwise; trailing bytes are refused either way.
pub(crate) fn decode_entry<T: DeserializeOwned>(
    bytes: &[u8],
    fingerprint: Option<u64>,
) -> Result<T, postcard::Error> {
    match fingerprint {
        Some(expected) => fingerprint::decode_checked(bytes, expected),
        None => decode_value(bytes),
    }
}

/// Decodes one value without a fingerprint, refusing trailing bytes (postcard's `from_bytes`
/// would ignore them).
pub(crate) fn decode_value<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, postcard::Error> {
    match postcard::take_from_bytes(bytes)? {
        (value, []) => Ok(value),
        _ => Err(postcard::Error::DeserializeBadEncoding),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn typed_values_round_trip_and_trailing_bytes_are_refused() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut s =
            SessionState::new_with_rng(from_unix_seconds(100), Duration::from_secs(60), &mut rng);
        assert!(s.insert("user", "alice").unwrap());
        assert!(!s.insert("user", "alice").unwrap());
        assert_eq!(s.get::<String>("user").unwrap().as_deref(), Some("alice"));
        assert_eq!(s.get::<u32>("missing").unwrap(), None);
        s.insert_raw("n".into(), vec![5, 0]);
        assert!(s.get::<u8>("n").is_err());
        assert_eq!(s.expires_at, 160);
    }

    #[test]
    fn s2_inserted_values_are_checked_raw_ones_read_unchecked() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut s =
            SessionState::new_with_rng(from_unix_seconds(100), Duration::from_secs(60), &mut rng);
        assert!(s.insert("n", &100i32).unwrap());
        assert_eq!(s.fingerprint("n"), Some(fingerprint_of(&100i32).unwrap()));
        assert_eq!(s.get::<i32>("n").unwrap(), Some(100));
        assert!(s.get::<usize>("n").is_err());
        // The same bytes stored raw lose the fingerprint (a change) and read unchecked.
        let bytes = s.entries()["n"].clone();
        assert!(s.insert_raw("n".into(), bytes.clone()));
        assert!(!s.insert_raw("n".into(), bytes));
        assert_eq!(s.fingerprint("n"), None);
        assert_eq!(s.get::<usize>("n").unwrap(), Some(200));
        // Inserting it again restores the check; removal drops both.
        assert!(s.insert("n", &100i32).unwrap());
        assert!(!s.insert("n", &100i32).unwrap());
        assert!(s.get::<u64>("n").is_err());
        assert!(matches!(s.remove_as::<u32>("n"), Some(Err(_))));
        assert!(s.fingerprints.is_empty() && s.entries.is_empty());
        s.insert("a", "x").unwrap();
        s.clear();
        assert!(s.fingerprints.is_empty());
    }

    #[test]
    fn renew_changes_identity_and_keeps_entries() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut s =
            SessionState::new_with_rng(from_unix_seconds(100), Duration::from_secs(60), &mut rng);
        s.insert("k", &1u8).unwrap();
        let old = s.id;
        s.renew_with_rng(from_unix_seconds(130), Duration::from_secs(60), &mut rng);
        assert_ne!(s.id, old);
        assert_eq!((s.issued_at, s.expires_at), (130, 190));
        assert_eq!(s.get::<u8>("k").unwrap(), Some(1));
        s.touch(from_unix_seconds(500));
        assert_eq!(s.last_seen, 190);
    }
}
