//! Level 3 of revocation: a fleet-wide list of revoked sessions and users, kept in Redis and
//! mirrored in memory on every node (feature `redis`, SECURITY.md "Level 3").
//!
//! The request path only ever reads the `Mirror`: an atomic counter when nothing is revoked,
//! a read lock and one or two hash lookups otherwise, never a network round trip. The
//! background threads of [`RedisRevocation`] keep the mirror in step with Redis.

use std::hash::{BuildHasher, Hasher};
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::state::SessionState;

mod redis;

pub use self::redis::{NoMirrorPolicy, RedisRevocation, RedisRevocationOptions, RevocationStats};

/// Why a session was refused by the revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Revoked {
    /// Its id is on the list (logout, `revoke_session`).
    Session,
    /// Its user was revoked after it was issued (`revoke_user`).
    User,
    /// No mirror was ever loaded and the policy is [`NoMirrorPolicy::Refuse`].
    Unavailable,
}

impl Revoked {
    /// The category logged and counted in [`SessionStats`](crate::SessionStats).
    pub(crate) fn category(self) -> &'static str {
        match self {
            Revoked::Session => "revoked_session",
            Revoked::User => "revoked_user",
            Revoked::Unavailable => "revocation_unavailable",
        }
    }
}

/// The local copy of the list. Sessions map their id to the expiry after which the entry is
/// useless (the session is dead anyway); users map the postcard bytes of their key to the
/// cutoff: a session of that user issued at or before it is refused.
pub(crate) struct Mirror {
    tables: RwLock<Tables>,
    /// Entries in `tables`; 0 lets the request path skip the lock.
    len: AtomicUsize,
    /// A full copy was loaded from Redis at least once.
    synced: AtomicBool,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) sessions: hashbrown::HashMap<IdKey, u64, IdHasher>,
    /// User keys are chosen by the application (and often by users): SipHash with a random
    /// key, against collision flooding.
    pub(crate) users: hashbrown::HashMap<Box<[u8]>, u64, std::hash::RandomState>,
}

/// What [`Mirror::merge`] found missing from Redis.
#[derive(Default, Debug, PartialEq, Eq)]
pub(crate) struct Missing {
    pub(crate) sessions: Vec<([u8; 16], u64)>,
    pub(crate) users: Vec<(Vec<u8>, u64)>,
}

impl Tables {
    fn len(&self) -> usize {
        self.sessions.len() + self.users.len()
    }

    /// Heap bytes held by both tables (their hash tables' allocations plus the boxed user keys).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.sessions.allocation_size()
            + self.users.allocation_size()
            + self.users.keys().map(|k| k.len()).sum::<usize>()
    }

    /// Drops the entries that can no longer matter at `now` (Unix seconds): sessions past
    /// their expiry, user cutoffs older than `horizon` seconds (no session issued before
    /// them is still alive).
    pub(crate) fn prune(&mut self, now: u64, horizon: u64) {
        self.sessions.retain(|_, expires| *expires > now);
        self.users
            .retain(|_, cutoff| cutoff.saturating_add(horizon) > now);
    }
}

impl Mirror {
    pub(crate) fn new() -> Self {
        Mirror {
            tables: RwLock::new(Tables::default()),
            len: AtomicUsize::new(0),
            synced: AtomicBool::new(false),
        }
    }

    /// The check on the request path. `user_entry` is the session entry that holds the user
    /// key, if user revocation is configured.
    pub(crate) fn check(&self, state: &SessionState, user_entry: Option<&str>) -> Option<Revoked> {
        if self.len.load(Ordering::Acquire) == 0 {
            return None;
        }
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        if tables.sessions.contains_key(&id_key(state.id)) {
            return Some(Revoked::Session);
        }
        if tables.users.is_empty() {
            return None;
        }
        let key = state.entries.get(user_entry?)?;
        match tables.users.get(key.as_slice()) {
            Some(cutoff) if state.issued_at <= *cutoff => Some(Revoked::User),
            _ => None,
        }
    }

    pub(crate) fn synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Adds one revoked session; a later expiry wins.
    pub(crate) fn add_session(&self, id: [u8; 16], expires: u64) {
        self.update(|t| {
            let e = t.sessions.entry(id_key(id)).or_insert(expires);
            *e = (*e).max(expires);
        });
    }

    /// Adds one user cutoff; a later cutoff wins.
    pub(crate) fn add_user(&self, key: &[u8], cutoff: u64) {
        self.update(|t| match t.users.get_mut(key) {
            Some(c) => *c = (*c).max(cutoff),
            None => {
                t.users.insert(key.into(), cutoff);
            }
        });
    }

    /// Merges a full copy from Redis into the mirror and returns what the mirror held that
    /// Redis did not (or with a lower score): a Redis restarted without persistence, or
    /// revocations this node has not sent yet. The caller sends them (again).
    ///
    /// A union, never a replacement: revocations only ever end by expiring, so an entry
    /// Redis lost is still in force.
    pub(crate) fn merge(&self, mut fresh: Tables, now: u64, horizon: u64) -> Missing {
        let mut missing = Missing::default();
        {
            let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
            for (id, expires) in &tables.sessions {
                if *expires > now && fresh.sessions.get(id).is_none_or(|e| e < expires) {
                    missing.sessions.push((id_bytes(*id), *expires));
                }
            }
            for (key, cutoff) in &tables.users {
                if cutoff.saturating_add(horizon) > now
                    && fresh.users.get(key).is_none_or(|c| c < cutoff)
                {
                    missing.users.push((key.to_vec(), *cutoff));
                }
            }
        }
        // Entries added between the read above and the write below are kept by the same rule.
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        for (id, expires) in tables.sessions.drain() {
            let e = fresh.sessions.entry(id).or_insert(expires);
            *e = (*e).max(expires);
        }
        for (key, cutoff) in tables.users.drain() {
            let e = fresh.users.entry(key).or_insert(cutoff);
            *e = (*e).max(cutoff);
        }
        fresh.prune(now, horizon);
        self.len.store(fresh.len(), Ordering::Release);
        let old = std::mem::replace(&mut *tables, fresh);
        drop(tables);
        self.synced.store(true, Ordering::Release);
        drop(old);
        missing
    }

    pub(crate) fn prune(&self, now: u64, horizon: u64) {
        self.update(|t| t.prune(now, horizon));
    }

    /// `(revoked sessions, revoked users, heap bytes)`.
    pub(crate) fn sizes(&self) -> (usize, usize, usize) {
        let tables = self.tables.read().unwrap_or_else(|e| e.into_inner());
        (
            tables.sessions.len(),
            tables.users.len(),
            tables.heap_bytes(),
        )
    }

    fn update(&self, f: impl FnOnce(&mut Tables)) {
        let mut tables = self.tables.write().unwrap_or_else(|e| e.into_inner());
        f(&mut tables);
        self.len.store(tables.len(), Ordering::Release);
    }
}

/// A session id as the mirror stores it: two words (24-byte entries with the expiry, where a
/// `u128` key would take 32 for its 16-byte alignment).
pub(crate) type IdKey = (u64, u64);

pub(crate) fn id_key(id: [u8; 16]) -> IdKey {
    let (lo, hi) = id.split_at(8);
    let word = |half: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(half);
        u64::from_le_bytes(w)
    };
    (word(lo), word(hi))
}

pub(crate) fn id_bytes((lo, hi): IdKey) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&lo.to_le_bytes());
    id[8..].copy_from_slice(&hi.to_le_bytes());
    id
}

/// Hashes a session id (16 bytes from a CSPRNG, never chosen by a client: it comes out of a
/// sealed cookie or our own logout) by folding its two words with a per-process random key.
/// SipHash would cost a third of the lookup for no gain.
#[derive(Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Default for IdHasher {
    fn default() -> Self {
        // One random key per process, drawn once.
        static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
        IdHasher(*KEY.get_or_init(|| {
            let mut bytes = [0u8; 8];
            // Without OS randomness the key is 0: still correct, only predictable.
            let _ = getrandom::fill(&mut bytes);
            u64::from_le_bytes(bytes)
        }))
    }
}

impl BuildHasher for IdHasher {
    type Hasher = IdHash;
    fn build_hasher(&self) -> IdHash {
        IdHash(self.0)
    }
}

/// The hasher built by [`IdHasher`].
pub(crate) struct IdHash(u64);

impl Hasher for IdHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `IdKey`s; kept correct for any other input (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, word: u64) {
        // A multiply spreads the bits into hashbrown's top-7-bit control byte.
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(26);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::keyring::from_unix_seconds;

    fn state(id: u8, issued: u64, user: Option<&str>) -> SessionState {
        let mut entries = BTreeMap::new();
        if let Some(user) = user {
            entries.insert("user".to_owned(), postcard::to_allocvec(user).unwrap());
        }
        SessionState::from_parts(
            [id; 16],
            from_unix_seconds(issued),
            from_unix_seconds(issued + 3600),
            from_unix_seconds(issued),
            entries,
        )
    }

    fn key(user: &str) -> Vec<u8> {
        postcard::to_allocvec(user).unwrap()
    }

    #[test]
    fn sessions_are_refused_by_id_users_by_issue_time() {
        let mirror = Mirror::new();
        let alice = state(1, 1000, Some("alice"));
        assert_eq!(mirror.check(&alice, Some("user")), None);
        mirror.add_session([1; 16], 5000);
        assert_eq!(mirror.check(&alice, Some("user")), Some(Revoked::Session));
        assert_eq!(
            mirror.check(&state(2, 1000, Some("alice")), Some("user")),
            None
        );

        mirror.add_user(&key("alice"), 1000);
        // Issued at or before the cutoff: refused; after it: kept; another user: kept.
        assert_eq!(
            mirror.check(&state(2, 1000, Some("alice")), Some("user")),
            Some(Revoked::User)
        );
        assert_eq!(
            mirror.check(&state(3, 1001, Some("alice")), Some("user")),
            None
        );
        assert_eq!(
            mirror.check(&state(4, 900, Some("bob")), Some("user")),
            None
        );
        // Without a configured entry, or without the entry in the session, no user check.
        assert_eq!(mirror.check(&state(2, 1000, Some("alice")), None), None);
        assert_eq!(mirror.check(&state(2, 1000, None), Some("user")), None);
        // A later cutoff wins, an earlier one never lowers it.
        mirror.add_user(&key("alice"), 1100);
        mirror.add_user(&key("alice"), 10);
        assert_eq!(
            mirror.check(&state(3, 1001, Some("alice")), Some("user")),
            Some(Revoked::User)
        );
    }

    #[test]
    fn prune_drops_dead_entries_and_merge_keeps_the_union() {
        let mirror = Mirror::new();
        mirror.add_session([1; 16], 100);
        mirror.add_session([2; 16], 300);
        mirror.add_user(&key("old"), 50);
        mirror.add_user(&key("new"), 250);
        assert_eq!(mirror.sizes().0 + mirror.sizes().1, 4);
        mirror.prune(200, 100);
        let (sessions, users, _) = mirror.sizes();
        assert_eq!((sessions, users), (1, 1));
        assert_eq!(mirror.check(&state(1, 0, None), None), None);
        assert_eq!(
            mirror.check(&state(2, 0, None), None),
            Some(Revoked::Session)
        );

        assert!(!mirror.synced());
        // Redis knows [9] and [2] with a later expiry; it lost "new" and never had [3].
        mirror.add_session([3; 16], 350);
        let mut fresh = Tables::default();
        fresh.sessions.insert(id_key([9; 16]), 400);
        fresh.sessions.insert(id_key([2; 16]), 320);
        fresh.sessions.insert(id_key([8; 16]), 150);
        let missing = mirror.merge(fresh, 200, 100);
        assert!(mirror.synced());
        assert_eq!(missing.sessions, vec![([3; 16], 350)]);
        assert_eq!(missing.users, vec![(key("new"), 250)]);
        for (id, revoked) in [(2, true), (3, true), (9, true), (8, false), (1, false)] {
            assert_eq!(
                mirror.check(&state(id, 0, None), None).is_some(),
                revoked,
                "{id}"
            );
        }
        assert_eq!(
            mirror.check(&state(5, 250, Some("new")), Some("user")),
            Some(Revoked::User)
        );
        mirror.prune(500, 0);
        assert_eq!(mirror.len.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn id_keys_round_trip() {
        let id: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(id_bytes(id_key(id)), id);
    }

    #[test]
    fn heap_bytes_follow_the_table_layout() {
        // hashbrown allocates (buckets × (entry + 1 control byte)) + a group of trailing
        // control bytes, buckets being the next power of two above 8/7 of the entries.
        let mut tables = Tables::default();
        for i in 0..100_000u64 {
            tables
                .sessions
                .insert((i, i.wrapping_mul(0x9e37_79b9_7f4a_7c15)), 1);
        }
        let buckets = (100_000usize * 8 / 7).next_power_of_two();
        let entry = std::mem::size_of::<(IdKey, u64)>();
        assert_eq!(entry, 24);
        let bytes = tables.heap_bytes();
        assert!(bytes >= buckets * (entry + 1), "{bytes}");
        assert!(bytes <= buckets * (entry + 1) + 64, "{bytes}");
    }
}
