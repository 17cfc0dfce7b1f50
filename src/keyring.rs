//! Keys and the keyring: which key seals now, which keys may open.
//!
//! A keyring never depends on the order of its list. The sealing key is the newest key whose
//! activation time has passed; every key that is not retired can open. A keyring that could
//! not seal (no key, duplicate ids, a short secret) cannot be constructed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::codec::aead::Cipher;
use crate::error::KeyringError;

/// An AEAD algorithm a key is used with. Fixed per key: the envelope's algorithm byte must
/// agree with the key or the cookie is rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Algorithm {
    /// XAES-256-GCM (C2SP): 192-bit random nonces on AES hardware. The default: safe for
    /// ~2^80 seals per key and the fastest of the safe choices on x86-64 and ARMv8.
    #[default]
    Xaes256Gcm,
    /// XChaCha20-Poly1305: 192-bit random nonces, no AES hardware needed.
    XChaCha20Poly1305,
    /// AES-256-GCM with random 96-bit nonces: at most 2^32 seals per key (NIST SP 800-38D).
    /// Rotate well before that (see SECURITY.md).
    Aes256Gcm,
}

impl Algorithm {
    /// All algorithms, in envelope-id order.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::XChaCha20Poly1305,
        Algorithm::Aes256Gcm,
        Algorithm::Xaes256Gcm,
    ];

    /// The byte that names this algorithm in the envelope.
    pub const fn id(self) -> u8 {
        match self {
            Algorithm::XChaCha20Poly1305 => 1,
            Algorithm::Aes256Gcm => 2,
            Algorithm::Xaes256Gcm => 3,
        }
    }

    /// The algorithm an envelope byte names, if any.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Algorithm::XChaCha20Poly1305),
            2 => Some(Algorithm::Aes256Gcm),
            3 => Some(Algorithm::Xaes256Gcm),
            _ => None,
        }
    }

    /// The name used in keyring files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::XChaCha20Poly1305 => "xchacha20poly1305",
            Algorithm::Aes256Gcm => "aes256gcm",
            Algorithm::Xaes256Gcm => "xaes256gcm",
        }
    }

    /// Parses a name as written by [`Algorithm::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A key's short public identifier: 4 bytes, written as 8 lowercase hex digits. Carried in
/// every envelope so the right key is found without trial decryption.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// Parses 8 hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 8 {
            return None;
        }
        let mut out = [0u8; 4];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let pair = std::str::from_utf8(pair).ok()?;
            if pair.bytes().any(|b| b.is_ascii_uppercase()) {
                return None;
            }
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(KeyId(out))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A 256-bit secret: zeroized on drop, compared in constant time, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Secret([u8; 32]);

impl Secret {
    /// Wraps 32 bytes of key material.
    pub fn new(bytes: [u8; 32]) -> Self {
        Secret(bytes)
    }

    /// Draws a fresh secret from the operating system's CSPRNG.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn generate() -> Result<Self, KeyringError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|_| KeyringError::Random)?;
        Ok(Secret(bytes))
    }

    pub(crate) fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// One key of a keyring.
pub struct Key {
    id: KeyId,
    algorithm: Algorithm,
    secret: Secret,
    created_at: SystemTime,
    activates_at: SystemTime,
    retired_at: Option<SystemTime>,
    cipher: Cipher,
}

/// Where a key stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyState {
    /// Loaded, opens cookies, but does not seal until its activation time.
    Pending,
    /// The key that seals new cookies.
    Sealing,
    /// Opens cookies sealed earlier; clients are re-sealed under the sealing key.
    OpenOnly,
    /// Neither seals nor opens.
    Retired,
}

impl KeyState {
    /// Lower-case name for listings.
    pub fn name(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Sealing => "sealing",
            KeyState::OpenOnly => "open-only",
            KeyState::Retired => "retired",
        }
    }
}

impl Key {
    /// A key that activates at `activates_at`. Key times are whole seconds, as in the keyring
    /// file (docs/FORMAT.md §8): a fraction of a second is dropped.
    pub fn new(
        id: KeyId,
        algorithm: Algorithm,
        secret: Secret,
        created_at: SystemTime,
        activates_at: SystemTime,
    ) -> Self {
        let cipher = Cipher::new(algorithm, secret.expose());
        Key {
            id,
            algorithm,
            secret,
            created_at: whole_seconds(created_at),
            activates_at: whole_seconds(activates_at),
            retired_at: None,
            cipher,
        }
    }

    /// A fresh random key (id and secret from the OS), active from `now`.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn generate(algorithm: Algorithm, now: SystemTime) -> Result<Self, KeyringError> {
        let mut id = [0u8; 4];
        getrandom::fill(&mut id).map_err(|_| KeyringError::Random)?;
        Ok(Key::new(
            KeyId(id),
            algorithm,
            Secret::generate()?,
            now,
            now,
        ))
    }

    /// Marks the key retired: from now on it neither seals nor opens, whatever `at` says.
    /// `at` (whole seconds) only records when that happened; a retirement is never scheduled
    /// (docs/FORMAT.md §8).
    #[must_use]
    pub fn retired(mut self, at: SystemTime) -> Self {
        self.retired_at = Some(whole_seconds(at));
        self
    }

    /// The key's public id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// When the key was created.
    pub fn created_at(&self) -> SystemTime {
        self.created_at
    }

    /// When the key starts sealing.
    pub fn activates_at(&self) -> SystemTime {
        self.activates_at
    }

    /// When the key was retired, if it was.
    pub fn retired_at(&self) -> Option<SystemTime> {
        self.retired_at
    }

    /// Whether the key is retired.
    pub fn is_retired(&self) -> bool {
        self.retired_at.is_some()
    }

    // Read only by the fuzzing harness, which needs the actix feature.
    #[cfg_attr(not(feature = "actix"), allow(dead_code))]
    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    pub(crate) fn cipher(&self) -> &Cipher {
        &self.cipher
    }

    fn clone_key(&self) -> Key {
        Key {
            retired_at: self.retired_at,
            ..Key::new(
                self.id,
                self.algorithm,
                self.secret.clone(),
                self.created_at,
                self.activates_at,
            )
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("algorithm", &self.algorithm)
            .field("activates_at", &unix_seconds(self.activates_at))
            .field("retired", &self.is_retired())
            .finish_non_exhaustive()
    }
}

impl Clone for Key {
    fn clone(&self) -> Self {
        self.clone_key()
    }
}

/// The keys a deployment shares. Always holds at least one key that can seal.
///
/// Every node loads the same keyring file (made and rotated with the `sealed-session` CLI);
/// the newest activated key seals, every non-retired key opens.
///
/// # Examples
/// ```
/// use std::time::{Duration, SystemTime};
///
/// use sealed_session::keyring::Secret;
/// use sealed_session::{Algorithm, Key, KeyId, Keyring};
///
/// let now = SystemTime::now();
/// let ring = Keyring::generate(Algorithm::default(), now).unwrap();
/// let first = ring.sealing_key(now).id();
///
/// // Rotation: a new key that activates in an hour opens at once but seals only then.
/// let secret = Secret::generate().unwrap();
/// let in_an_hour = now + Duration::from_secs(3600);
/// let next = Key::new(KeyId(*b"next"), Algorithm::default(), secret, now, in_an_hour);
/// let ring = ring.with_key(next, now).unwrap();
/// assert_eq!(ring.sealing_key(now).id(), first);
/// assert_ne!(ring.sealing_key(now + Duration::from_secs(3601)).id(), first);
///
/// // The JSON form is the keyring file; `Debug` never shows a secret.
/// let again = Keyring::from_json(ring.to_json().as_bytes(), now).unwrap();
/// assert_eq!(again.keys().len(), 2);
/// assert!(!format!("{ring:?}").contains("secret\":"));
/// ```
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Key>,
    /// The fleet-wide cutoff: sessions issued before it are refused (docs/FORMAT.md §8).
    not_before: Option<SystemTime>,
    /// The cutoff in Unix seconds, 0 without one: the per-request check is one comparison.
    not_before_secs: u64,
}

impl Keyring {
    /// Builds a keyring, refusing one that could not seal at `now`. Linear in the number of
    /// keys.
    ///
    /// # Errors
    /// [`KeyringError::TooManyKeys`] over [`MAX_KEYS`], [`KeyringError::DuplicateId`] when two
    /// keys share an id, [`KeyringError::Empty`] without a non-retired key,
    /// [`KeyringError::NoSealingKey`] when every usable key is still pending.
    pub fn new(keys: Vec<Key>, now: SystemTime) -> Result<Self, KeyringError> {
        if keys.len() > MAX_KEYS {
            return Err(KeyringError::TooManyKeys {
                count: keys.len(),
                max: MAX_KEYS,
            });
        }
        let mut seen: HashMap<KeyId, usize> = HashMap::with_capacity(keys.len());
        for (index, key) in keys.iter().enumerate() {
            if let Some(&first) = seen.get(&key.id) {
                return Err(KeyringError::DuplicateId {
                    first,
                    second: index,
                });
            }
            seen.insert(key.id, index);
        }
        if keys.iter().all(Key::is_retired) {
            return Err(KeyringError::Empty);
        }
        if !keys
            .iter()
            .any(|k| !k.is_retired() && k.activates_at <= now)
        {
            return Err(KeyringError::NoSealingKey);
        }
        Ok(Keyring {
            keys,
            not_before: None,
            not_before_secs: 0,
        })
    }

    /// A copy whose cutoff is `at` (whole seconds): every session issued before it is refused,
    /// whichever key sealed it; sessions issued at or after it are unaffected. `None` removes
    /// the cutoff. This is what `sealed-session revoke --before` writes into the file.
    #[must_use]
    pub fn with_not_before(mut self, at: Option<SystemTime>) -> Self {
        self.not_before = at.map(whole_seconds);
        self.not_before_secs = self.not_before.map_or(0, unix_seconds);
        self
    }

    /// The cutoff, if any: sessions issued before it do not open.
    pub fn not_before(&self) -> Option<SystemTime> {
        self.not_before
    }

    /// Whether a session issued at `issued_at` (Unix seconds) is older than the cutoff.
    pub(crate) fn revokes(&self, issued_at: u64) -> bool {
        issued_at < self.not_before_secs
    }

    /// A keyring with one fresh random key: for development and tests only, since every node
    /// must share the same keys.
    ///
    /// # Errors
    /// When the operating system has no randomness to give.
    pub fn generate(algorithm: Algorithm, now: SystemTime) -> Result<Self, KeyringError> {
        Keyring::new(vec![Key::generate(algorithm, now)?], now)
    }

    /// Parses the JSON keyring format (see docs/FORMAT.md, "Keyring file").
    ///
    /// # Errors
    /// Malformed JSON, a secret that is not 32 bytes of base64url, an unknown algorithm, a
    /// bad id or time, or any reason [`Keyring::new`] gives.
    pub fn from_json(json: &[u8], now: SystemTime) -> Result<Self, KeyringError> {
        let file: KeyringFile = serde_json::from_slice(json).map_err(|e| KeyringError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        match (file.version, &file.not_before) {
            (1, None) | (2, _) => {}
            (1, Some(_)) => return Err(KeyringError::NotBeforeNeedsVersion2),
            (v, _) => return Err(KeyringError::UnsupportedVersion(v)),
        }
        let not_before = match &file.not_before {
            None => None,
            Some(None) => return Err(KeyringError::BadNotBefore),
            Some(Some(text)) => Some(parse_time(text).ok_or(KeyringError::BadNotBefore)?),
        };
        if file.keys.len() > MAX_KEYS {
            return Err(KeyringError::TooManyKeys {
                count: file.keys.len(),
                max: MAX_KEYS,
            });
        }
        let keys = file
            .keys
            .iter()
            .enumerate()
            .map(|(index, entry)| entry.to_key(index))
            .collect::<Result<Vec<Key>, KeyringError>>()?;
        Ok(Keyring::new(keys, now)?.with_not_before(not_before))
    }

    /// Reads and parses a keyring file.
    ///
    /// # Errors
    /// I/O errors and everything [`Keyring::from_json`] rejects.
    pub fn load(path: &Path, now: SystemTime) -> Result<Self, KeyringError> {
        Keyring::load_with_bytes(path, now).map(|(ring, _)| ring)
    }

    /// [`Keyring::load`], also returning the bytes that were parsed (the hot reload starts
    /// from them, not from a second read that could see a newer file).
    pub(crate) fn load_with_bytes(
        path: &Path,
        now: SystemTime,
    ) -> Result<(Self, Zeroizing<Vec<u8>>), KeyringError> {
        let bytes = Zeroizing::new(
            std::fs::read(path)
                .map_err(|e| KeyringError::Io(e.kind(), path.display().to_string()))?,
        );
        Ok((Keyring::from_json(&bytes, now)?, bytes))
    }

    /// Parses a keyring from the JSON held in environment variable `var`.
    ///
    /// # Errors
    /// An unset or non-UTF-8 variable, and everything [`Keyring::from_json`] rejects.
    pub fn from_env(var: &str, now: SystemTime) -> Result<Self, KeyringError> {
        let value = Zeroizing::new(
            std::env::var(var).map_err(|_| KeyringError::MissingEnv(var.to_owned()))?,
        );
        Keyring::from_json(value.as_bytes(), now)
    }

    /// Serializes to the JSON keyring format, secrets included.
    /// A keyring without a cutoff is written as version 1, which every release reads; one
    /// with a cutoff as version 2 (docs/FORMAT.md §8).
    pub fn to_json(&self) -> Zeroizing<String> {
        let file = KeyringFile {
            version: if self.not_before.is_some() { 2 } else { 1 },
            keys: self.keys.iter().map(KeyEntry::from_key).collect(),
            not_before: self.not_before.map(|t| Some(format_time(t))),
        };
        // Serializing plain strings and integers into a String cannot fail.
        Zeroizing::new(serde_json::to_string_pretty(&file).unwrap_or_default() + "\n")
    }

    /// The key that seals at `now`: the newest activated, non-retired key (ties broken by
    /// creation time, then id, so list order never matters). If the clock has gone back before
    /// every activation, the earliest-activating usable key.
    pub fn sealing_key(&self, now: SystemTime) -> &Key {
        let usable = self.keys.iter().filter(|k| !k.is_retired());
        let active = usable.clone().filter(|k| k.activates_at <= now);
        active
            .max_by_key(|k| (k.activates_at, k.created_at, k.id))
            .or_else(|| usable.min_by_key(|k| (k.activates_at, k.created_at, k.id)))
            .unwrap_or_else(|| {
                // `Keyring::new` guarantees a non-retired key and the list is never mutated
                // in a way that breaks that, so this branch is unreachable; fall back to any.
                &self.keys[0]
            })
    }

    /// Finds a key by id, retired or not.
    pub fn get(&self, id: KeyId) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// All keys, in file order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Where `key` stands at `now`. Linear in the number of keys (it finds the sealing key);
    /// use [`Keyring::states`] for all keys at once.
    pub fn state(&self, key: &Key, now: SystemTime) -> KeyState {
        key_state(key, self.sealing_key(now).id, now)
    }

    /// Every key with where it stands at `now`, in file order: linear in the number of keys.
    pub fn states(&self, now: SystemTime) -> impl Iterator<Item = (&Key, KeyState)> {
        let sealing = self.sealing_key(now).id;
        self.keys
            .iter()
            .map(move |k| (k, key_state(k, sealing, now)))
    }

    /// A copy with `key` added.
    ///
    /// # Errors
    /// As [`Keyring::new`], e.g. a duplicate id.
    pub fn with_key(&self, key: Key, now: SystemTime) -> Result<Self, KeyringError> {
        let mut keys = self.keys.clone();
        keys.push(key);
        Ok(Keyring::new(keys, now)?.with_not_before(self.not_before))
    }

    /// A copy with the keys for which `retire` answers true retired at `now`.
    ///
    /// # Errors
    /// [`KeyringError::NoSealingKey`]/[`KeyringError::Empty`] when that would leave no key
    /// able to seal.
    pub fn with_retired(
        &self,
        now: SystemTime,
        mut retire: impl FnMut(&Key) -> bool,
    ) -> Result<Self, KeyringError> {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                if !k.is_retired() && retire(k) {
                    k.clone().retired(now)
                } else {
                    k.clone()
                }
            })
            .collect();
        Ok(Keyring::new(keys, now)?.with_not_before(self.not_before))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys)
            .field("not_before", &self.not_before.map(unix_seconds))
            .finish()
    }
}

/// The most keys a keyring may hold. Real keyrings hold a handful: rotating every day and
/// retiring after a 30-day lifetime keeps about 31, and even hourly rotation with retired keys
/// never pruned stays under 10 000 for a year. The cap only bounds what a hostile or broken
/// file can cost (`check` and `inspect` load it in linear time; see docs/CLI.md for the
/// measured figure at the cap) and keeps the per-request key lookup short.
pub const MAX_KEYS: usize = 10_000;

fn key_state(key: &Key, sealing: KeyId, now: SystemTime) -> KeyState {
    if key.is_retired() {
        KeyState::Retired
    } else if key.activates_at > now {
        KeyState::Pending
    } else if sealing == key.id {
        KeyState::Sealing
    } else {
        KeyState::OpenOnly
    }
}

/// `t` without its fraction of a second (times before the epoch are kept as they are).
fn whole_seconds(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => from_unix_seconds(d.as_secs()),
        Err(_) => t,
    }
}

/// Seconds since the Unix epoch; times before it count as 0.
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The time `secs` seconds after the Unix epoch, or the latest whole second this platform's
/// `SystemTime` holds when `secs` lies beyond it (a sealed time near 2^64 must not panic).
pub(crate) fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .unwrap_or_else(latest_time)
}

/// The latest whole second after the epoch that `SystemTime` can hold, found by adding the
/// largest powers of two that still fit.
fn latest_time() -> SystemTime {
    let mut t = UNIX_EPOCH;
    let mut step = 1u64 << 63;
    while step > 0 {
        if let Some(next) = t.checked_add(Duration::from_secs(step)) {
            t = next;
        }
        step >>= 1;
    }
    t
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyringFile {
    version: u32,
    keys: Vec<KeyEntry>,
    /// Version 2 only. Absent: no cutoff; `null` is refused, as for `retired_at`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    not_before: Option<Option<String>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    algorithm: String,
    secret: String,
    created_at: String,
    activates_at: String,
    /// Absent: not retired. `null` is refused (see `to_key`), so the outer `Option` tells an
    /// absent field from a `null` one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    retired_at: Option<Option<String>>,
}

/// A field that is present, possibly `null`: `Some(None)` for `null`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl KeyEntry {
    /// The key this entry describes. Errors name the key's position and the field, never a
    /// field's value: a hand-edited file may hold the secret in any field.
    fn to_key(&self, index: usize) -> Result<Key, KeyringError> {
        let id = KeyId::parse(&self.id).ok_or(KeyringError::BadId { index })?;
        let algorithm = Algorithm::from_name(&self.algorithm)
            .ok_or(KeyringError::UnknownAlgorithm { index })?;
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(self.secret.as_bytes())
                .map_err(|_| KeyringError::BadSecret { index })?,
        );
        let secret: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyringError::BadSecret { index })?;
        let time = |field: &'static str, text: &str| {
            parse_time(text).ok_or(KeyringError::BadTime { index, field })
        };
        let key = Key::new(
            id,
            algorithm,
            Secret::new(secret),
            time("created_at", &self.created_at)?,
            time("activates_at", &self.activates_at)?,
        );
        Ok(match &self.retired_at {
            None => key,
            Some(None) => return Err(KeyringError::NullRetiredAt { index }),
            Some(Some(at)) => key.retired(time("retired_at", at)?),
        })
    }

    fn from_key(key: &Key) -> Self {
        let time = format_time;
        KeyEntry {
            id: key.id.to_string(),
            algorithm: key.algorithm.name().to_owned(),
            secret: URL_SAFE_NO_PAD.encode(key.secret.expose()),
            created_at: time(key.created_at),
            activates_at: time(key.activates_at),
            retired_at: key.retired_at.map(|t| Some(time(t))),
        }
    }
}

/// A keyring time as the file is written: `YYYY-MM-DDTHH:MM:SSZ`.
fn format_time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Parses a keyring time (docs/FORMAT.md §8): `YYYY-MM-DDTHH:MM:SS`, an optional fraction of
/// 1 to 9 digits, then `Z` or `+00:00`; years 1970 to 9999, seconds 00 to 59 (no leap
/// second). The fraction is dropped: keyring times are whole seconds, as the file is written.
fn parse_time(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let (main, rest) = (b.get(..19)?, b.get(19..)?);
    let digits = |r: std::ops::Range<usize>| -> Option<u64> {
        main.get(r)?.iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let punctuation = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if punctuation.iter().any(|&(i, c)| main.get(i) != Some(&c)) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let zone = match rest
        .iter()
        .position(|c| !(c.is_ascii_digit() || *c == b'.'))
    {
        Some(i) => {
            let (fraction, zone) = rest.split_at(i);
            match fraction {
                [] => {}
                [b'.', digits @ ..] if (1..=9).contains(&digits.len()) => {
                    if !digits.iter().all(u8::is_ascii_digit) {
                        return None;
                    }
                }
                _ => return None,
            }
            zone
        }
        None => return None,
    };
    if zone != b"Z" && zone != b"+00:00" {
        return None;
    }
    if !(1970..=9999).contains(&year) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let month_index = usize::try_from(month.checked_sub(1)?).ok()?;
    if day == 0 || day > *month_days.get(month_index)? {
        return None;
    }
    // Days since 1970-01-01 (H. Hinnant's `days_from_civil`, years counted from March).
    let y = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (y / 400, y % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = (era * 146_097 + day_of_era).checked_sub(719_468)?;
    Some(from_unix_seconds(
        days * 86_400 + hour * 3600 + minute * 60 + second,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        from_unix_seconds(secs)
    }

    fn key(id: u8, activates: u64) -> Key {
        Key::new(
            KeyId([id; 4]),
            Algorithm::default(),
            Secret::new([id; 32]),
            at(activates),
            at(activates),
        )
    }

    #[test]
    fn sealing_key_is_newest_activated_whatever_the_order() {
        let now = at(1_000);
        let ring = Keyring::new(vec![key(2, 900), key(1, 100), key(3, 2_000)], now).unwrap();
        assert_eq!(ring.sealing_key(now).id(), KeyId([2; 4]));
        assert_eq!(ring.sealing_key(at(2_000)).id(), KeyId([3; 4]));
        assert_eq!(ring.state(&key(3, 2_000), now), KeyState::Pending);
        let reversed = Keyring::new(vec![key(3, 2_000), key(1, 100), key(2, 900)], now).unwrap();
        assert_eq!(reversed.sealing_key(now).id(), KeyId([2; 4]));
        assert_eq!(
            ring.state(ring.get(KeyId([1; 4])).unwrap(), now),
            KeyState::OpenOnly
        );
    }

    #[test]
    fn retired_keys_never_seal_and_rings_that_cannot_seal_are_refused() {
        let now = at(1_000);
        let ring = Keyring::new(vec![key(1, 100), key(2, 900).retired(now)], now).unwrap();
        assert_eq!(ring.sealing_key(now).id(), KeyId([1; 4]));
        assert!(matches!(
            Keyring::new(vec![], now),
            Err(KeyringError::Empty)
        ));
        assert!(matches!(
            Keyring::new(vec![key(1, 100).retired(now)], now),
            Err(KeyringError::Empty)
        ));
        assert!(matches!(
            Keyring::new(vec![key(1, 5_000)], now),
            Err(KeyringError::NoSealingKey)
        ));
        assert!(matches!(
            Keyring::new(vec![key(1, 100), key(1, 200)], now),
            Err(KeyringError::DuplicateId {
                first: 0,
                second: 1
            })
        ));
        assert!(matches!(
            ring.with_retired(now, |k| k.id() == KeyId([1; 4])),
            Err(KeyringError::Empty)
        ));
    }

    #[test]
    fn json_round_trip_and_bad_files() {
        let now = at(1_800_000_000);
        let ring = Keyring::new(vec![key(1, 1_700_000_000), key(2, 1_800_000_100)], now).unwrap();
        let json = ring.to_json();
        let back = Keyring::from_json(json.as_bytes(), now).unwrap();
        assert_eq!(back.keys().len(), 2);
        assert!(back.keys()[0].secret == ring.keys()[0].secret);
        type Check = fn(&KeyringError) -> bool;
        let bad: &[(&str, Check)] = &[
            ("", |e| matches!(e, KeyringError::Json { .. })),
            ("{\"version\":3,\"keys\":[]}", |e| {
                matches!(e, KeyringError::UnsupportedVersion(3))
            }),
            ("{\"version\":1,\"keys\":[]}", |e| {
                matches!(e, KeyringError::Empty)
            }),
            (
                r#"{"version":1,"keys":[{"id":"0102030g","algorithm":"xaes256gcm","secret":"","created_at":"2020-01-01T00:00:00Z","activates_at":"2020-01-01T00:00:00Z"}]}"#,
                |e| matches!(e, KeyringError::BadId { index: 0 }),
            ),
            (
                r#"{"version":1,"keys":[{"id":"01020304","algorithm":"rot13","secret":"","created_at":"2020-01-01T00:00:00Z","activates_at":"2020-01-01T00:00:00Z"}]}"#,
                |e| matches!(e, KeyringError::UnknownAlgorithm { index: 0 }),
            ),
            (
                r#"{"version":1,"keys":[{"id":"01020304","algorithm":"xaes256gcm","secret":"AAAA","created_at":"2020-01-01T00:00:00Z","activates_at":"2020-01-01T00:00:00Z"}]}"#,
                |e| matches!(e, KeyringError::BadSecret { index: 0 }),
            ),
            (
                r#"{"version":1,"keys":[{"id":"01020304","algorithm":"xaes256gcm","secret":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","created_at":"yesterday","activates_at":"2020-01-01T00:00:00Z"}]}"#,
                |e| matches!(e, KeyringError::BadTime { .. }),
            ),
        ];
        for (json, check) in bad {
            let err = Keyring::from_json(json.as_bytes(), now).unwrap_err();
            assert!(check(&err), "{json}: {err:?}");
        }
    }

    #[test]
    fn i11_cutoff_round_trips_as_version_2_and_survives_key_changes() {
        let now = at(1_800_000_000);
        let ring = Keyring::new(vec![key(1, 1_700_000_000)], now).unwrap();
        // No cutoff: version 1, byte for byte what earlier releases wrote and read.
        let plain = ring.to_json();
        assert!(plain.contains("\"version\": 1") && !plain.contains("not_before"));
        assert!(!ring.revokes(0) && !ring.revokes(u64::MAX));

        // Fractions are dropped, as for key times; strictly earlier is revoked.
        let cutoff = at(1_799_999_000) + Duration::from_millis(700);
        let cut = ring.clone().with_not_before(Some(cutoff));
        assert_eq!(cut.not_before(), Some(at(1_799_999_000)));
        assert!(cut.revokes(1_799_998_999));
        assert!(!cut.revokes(1_799_999_000));
        let json = cut.to_json();
        assert!(json.contains("\"version\": 2"), "{}", *json);
        assert!(
            json.contains("\"not_before\": \"2027-01-15T07:43:20Z\""),
            "{}",
            *json
        );
        let back = Keyring::from_json(json.as_bytes(), now).unwrap();
        assert_eq!(back.not_before(), Some(at(1_799_999_000)));
        assert!(back.revokes(1_799_998_999));

        // Rotation and retirement keep the cutoff; removing it goes back to version 1.
        let rotated = back.with_key(key(2, 1_800_000_100), now).unwrap();
        assert_eq!(rotated.not_before(), Some(at(1_799_999_000)));
        let retired = rotated
            .with_retired(now, |k| k.id() == KeyId([2; 4]))
            .unwrap();
        assert_eq!(retired.not_before(), Some(at(1_799_999_000)));
        assert_eq!(
            retired.with_not_before(None).to_json().as_str(),
            ring.with_key(key(2, 1_800_000_100), now)
                .unwrap()
                .with_retired(now, |k| k.id() == KeyId([2; 4]))
                .unwrap()
                .to_json()
                .as_str()
        );
        assert!(format!("{cut:?}").contains("not_before: Some(1799999000)"));
    }

    #[test]
    fn i11_bad_cutoffs_are_refused() {
        let now = at(1_800_000_000);
        let with = |version: u32, field: &str| {
            let json = one_key(
                r#""created_at":"2020-01-01T00:00:00Z","activates_at":"2020-01-01T00:00:00Z""#,
            )
            .replacen("\"version\":1", &format!("\"version\":{version}"), 1);
            let json = format!("{},{field}}}", json.strip_suffix('}').unwrap());
            Keyring::from_json(json.as_bytes(), now)
        };
        assert_eq!(
            with(2, r#""not_before":"2026-01-01T00:00:00Z""#)
                .unwrap()
                .not_before(),
            Some(at(1_767_225_600))
        );
        // Version 2 without a cutoff reads; version 1 with one does not (old readers refuse it).
        assert!(with(2, r#""x":1"#).is_err());
        assert_eq!(
            with(1, r#""not_before":"2026-01-01T00:00:00Z""#).unwrap_err(),
            KeyringError::NotBeforeNeedsVersion2
        );
        for bad in [
            r#""not_before":null"#,
            r#""not_before":"now""#,
            r#""not_before":"2026-01-01 00:00:00Z""#,
            r#""not_before":1767225600"#,
        ] {
            let err = with(2, bad).unwrap_err();
            assert!(
                matches!(err, KeyringError::BadNotBefore | KeyringError::Json { .. }),
                "{bad}: {err:?}"
            );
        }
        assert_eq!(
            with(2, r#""not_before":null"#).unwrap_err(),
            KeyringError::BadNotBefore
        );
    }

    fn one_key(fields: &str) -> String {
        format!(
            r#"{{"version":1,"keys":[{{"id":"01020304","algorithm":"xaes256gcm","secret":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE",{fields}}}]}}"#
        )
    }

    fn times(created: &str, activates: &str) -> String {
        one_key(&format!(
            r#""created_at":"{created}","activates_at":"{activates}""#
        ))
    }

    /// B4: `retired_at` retires the key at once whatever its value (in the future, before
    /// the key was created); the value is only a record.
    #[test]
    fn b4_any_retired_at_retires_at_once() {
        let now = at(1_800_000_000);
        for retired in [
            "9999-12-31T23:59:59Z",
            "2027-01-15T08:00:01Z",
            "1970-01-01T00:00:00Z",
        ] {
            let json = format!(
                r#"{{"version":1,"keys":[
                {{"id":"01010101","algorithm":"xaes256gcm","secret":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","created_at":"2026-01-01T00:00:00Z","activates_at":"2026-01-01T00:00:00Z"}},
                {{"id":"02020202","algorithm":"xaes256gcm","secret":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI","created_at":"2026-06-01T00:00:00Z","activates_at":"2026-06-01T00:00:00Z","retired_at":"{retired}"}}]}}"#
            );
            let ring = Keyring::from_json(json.as_bytes(), now).unwrap();
            let key = ring.get(KeyId([2; 4])).unwrap();
            assert!(key.is_retired(), "{retired}");
            assert_eq!(ring.state(key, now), KeyState::Retired, "{retired}");
            assert_eq!(ring.sealing_key(now).id(), KeyId([1; 4]), "{retired}");
        }
        // The same through the API: a retirement "in the future" is a retirement now.
        let ring = Keyring::new(vec![key(1, 100), key(2, 200).retired(at(5_000))], at(1_000));
        let ring = ring.unwrap();
        assert_eq!(ring.sealing_key(at(1_000)).id(), KeyId([1; 4]));
    }

    /// B8: the time grammar of docs/FORMAT.md §8.
    #[test]
    fn b8_time_grammar() {
        let now = at(1_800_000_000);
        let base = 1_767_225_600; // 2026-01-01T00:00:00Z
        let accepted = [
            ("2026-01-01T00:00:00Z", base),
            ("2026-01-01T00:00:00+00:00", base),
            ("2026-01-01T00:00:00.5Z", base),
            ("2026-01-01T00:00:00.999999999Z", base),
            ("2026-01-01T00:00:01.0+00:00", base + 1),
            ("2000-02-29T12:00:00Z", 951_825_600),
            ("1970-01-01T00:00:00Z", 0),
        ];
        for (text, secs) in accepted {
            let ring = Keyring::from_json(times(text, text).as_bytes(), now)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(ring.keys()[0].activates_at(), at(secs), "{text}");
            assert_eq!(ring.keys()[0].created_at(), at(secs), "{text}");
        }
        let refused = [
            "2026-12-31T23:59:60Z",            // leap second (§1: none)
            "2026-01-01T00:00:00.9999999999Z", // 10 fraction digits
            "2026-01-01T00:00:00.Z",
            "2026-01-01T00:00:00,5Z",
            "2026-01-01t00:00:00Z",
            "2026-01-01T00:00:00z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00-00:00",
            "2026-01-01T01:00:00+01:00",
            "2026-01-01T00:00Z",
            "2026-1-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "10000-01-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-04-31T00:00:00Z",
            "2026-00-01T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-00T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "2026-01-01T00:60:00Z",
            "+2026-01-01T00:00:00Z",
            " 2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00Z ",
            "２026-01-01T00:00:00Z",
            "",
        ];
        for text in refused {
            let err = Keyring::from_json(times(text, "2026-01-01T00:00:00Z").as_bytes(), now).err();
            assert_eq!(
                err,
                Some(KeyringError::BadTime {
                    index: 0,
                    field: "created_at"
                }),
                "{text:?}"
            );
        }
    }

    /// B8: a fractional activation time counts from its whole second, as the file is written:
    /// the key seals at the whole second already, and a round trip through `to_json` changes
    /// nothing.
    #[test]
    fn b8_fractional_activation_counts_from_its_whole_second() {
        let json = r#"{"version":1,"keys":[
            {"id":"01010101","algorithm":"xaes256gcm","secret":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","created_at":"2026-01-01T00:00:00Z","activates_at":"2026-01-01T00:00:00Z"},
            {"id":"02020202","algorithm":"xaes256gcm","secret":"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI","created_at":"2026-06-01T00:00:00Z","activates_at":"2026-06-01T00:00:00.75Z"}]}"#;
        let switch = 1_780_272_000; // 2026-06-01T00:00:00Z
        let ring = Keyring::from_json(json.as_bytes(), at(switch)).unwrap();
        assert_eq!(ring.sealing_key(at(switch)).id(), KeyId([2; 4]));
        assert_eq!(ring.sealing_key(at(switch - 1)).id(), KeyId([1; 4]));
        let again = Keyring::from_json(ring.to_json().as_bytes(), at(switch)).unwrap();
        assert_eq!(
            again.keys()[1].activates_at(),
            ring.keys()[1].activates_at()
        );
        // Through the API as well.
        let half = at(switch) + Duration::from_millis(500);
        let k = Key::new(
            KeyId([3; 4]),
            Algorithm::default(),
            Secret::new([3; 32]),
            half,
            half,
        );
        assert_eq!(k.activates_at(), at(switch));
    }

    /// B8: `"retired_at": null` is refused (a key that is not retired has no `retired_at`),
    /// and `version` is the JSON integer 1 (`1.0`, `1e0`, `"1"` are refused).
    #[test]
    fn b8_null_retired_at_and_version_spelling() {
        let now = at(1_800_000_000);
        let t = r#""created_at":"2026-01-01T00:00:00Z","activates_at":"2026-01-01T00:00:00Z""#;
        let null = one_key(&format!(r#"{t},"retired_at":null"#));
        assert_eq!(
            Keyring::from_json(null.as_bytes(), now).err(),
            Some(KeyringError::NullRetiredAt { index: 0 })
        );
        let good = one_key(t);
        assert!(Keyring::from_json(good.as_bytes(), now).is_ok());
        for version in ["1.0", "1e0", "\"1\"", "01", "-1", "true", "null"] {
            let json = good.replacen("\"version\":1", &format!("\"version\":{version}"), 1);
            assert!(
                matches!(
                    Keyring::from_json(json.as_bytes(), now),
                    Err(KeyringError::Json { .. })
                ),
                "{version}"
            );
        }
    }

    /// A9: the cap, and loading that stays linear (a 10 000-key file, every id distinct, is
    /// loaded; the time is measured in docs/CLI.md, not asserted).
    #[test]
    fn a9_too_many_keys_is_a_clear_error() {
        let now = at(1_000);
        let many = |n: usize| -> Vec<Key> {
            (0..n)
                .map(|i| {
                    let id = u32::try_from(i).unwrap().to_be_bytes();
                    Key::new(
                        KeyId(id),
                        Algorithm::XChaCha20Poly1305,
                        Secret::new([1; 32]),
                        at(0),
                        at(0),
                    )
                })
                .collect()
        };
        assert_eq!(
            Keyring::new(many(MAX_KEYS), now).unwrap().keys().len(),
            MAX_KEYS
        );
        let err = Keyring::new(many(MAX_KEYS + 1), now).unwrap_err();
        assert_eq!(
            err,
            KeyringError::TooManyKeys {
                count: MAX_KEYS + 1,
                max: MAX_KEYS
            }
        );
        assert!(
            err.to_string()
                .contains("10001 keys, more than the 10000 allowed")
        );
        // From a file the count is checked before any key is built.
        let entry = r#"{"id":"zz","algorithm":"","secret":"","created_at":"","activates_at":""}"#;
        let json = format!(
            r#"{{"version":1,"keys":[{}]}}"#,
            vec![entry; MAX_KEYS + 1].join(",")
        );
        assert!(matches!(
            Keyring::from_json(json.as_bytes(), now),
            Err(KeyringError::TooManyKeys { .. })
        ));
        // Duplicates are found by position, in one pass.
        let mut keys = many(5);
        keys.push(key(9, 0));
        keys.push(Key::new(
            KeyId([0, 0, 0, 3]),
            Algorithm::default(),
            Secret::new([2; 32]),
            at(0),
            at(0),
        ));
        assert_eq!(
            Keyring::new(keys, now).unwrap_err(),
            KeyringError::DuplicateId {
                first: 3,
                second: 6
            }
        );
    }

    /// Like cookie-rs's `debug_does_not_leak_key`: no key material in any Debug output.
    #[test]
    fn debug_is_redacted() {
        let ring = Keyring::new(vec![key(0xAB, 0)], at(10)).unwrap();
        let secret_b64 = URL_SAFE_NO_PAD.encode([0xABu8; 32]);
        for text in [
            format!("{ring:?}"),
            format!("{:?}", ring.keys()[0]),
            format!("{:?}", Secret::new([0xAB; 32])),
        ] {
            assert!(!text.contains(&secret_b64), "{text}");
            assert!(!text.contains("171, 171"), "{text}");
            assert!(!text.contains(&"ab".repeat(16)), "{text}");
        }
    }
}
