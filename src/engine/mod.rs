//! The framework-neutral request path shared by every adapter (actix-web in `middleware.rs`
//! and `session.rs`, tower/axum in `tower.rs`): configuration and keys, the memo of opened
//! sessions, opening the request's cookies ([`Worker::open`], the one open path every adapter
//! calls), deciding what to write on the way out ([`Worker::finish`]), the counters.
//!
//! An adapter only moves bytes: it hands the request's `Cookie` header values to a
//! [`Session`], lets the handler use it, then asks [`Worker::finish`] what to do and writes
//! the `Set-Cookie` lines (or the empty 500) in its own response type.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::codec::cache::OpenCache;
use crate::codec::{Codec, Opened, cookie_pairs};
use crate::config::{SameSite, SessionConfig};
use crate::error::{ConfigError, DecodeError, EncodeError};
use crate::keyring::Keyring;
use crate::reload::KeyringWatcher;

mod handle;

pub(crate) use handle::RawCookies;
pub use handle::{Entries, Session, SessionStatus};

/// The time source; injectable so rotation and expiry can be tested.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// Keeps `RwLock` in this module's vocabulary for the watcher.
pub(crate) type SharedKeyring = RwLock<Arc<Keyring>>;

/// Most bytes (cookies and values) one memo holds.
pub(crate) const MEMO_BYTES: usize = 16 * 1024 * 1024;

/// When a session that the handler did not change is sealed again, refreshing its cookie's
/// `Max-Age` and its idle clock (actix-session's `TtlExtensionPolicy`).
///
/// A change is a change of the stored bytes: inserting the value a key already holds is not
/// one, under either policy, so a request that changes nothing cannot overwrite the cookie
/// that a parallel request just changed (the last response wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TtlExtensionPolicy {
    /// The default: sealed again when the entries change, when the session is renewed or
    /// moves to the sealing key, and (with an idle timeout) at most every
    /// [`renew_interval`](SessionBuilder::renew_interval) to slide the idle timeout.
    #[default]
    OnStateChanges,
    /// Sealed again on every response to a request that carried a valid session, whether or
    /// not the handler touched it: a persistent cookie's `Max-Age` restarts on every request.
    /// Costs one open and one seal per request, and a `Set-Cookie` on every response.
    OnEveryRequest,
}

/// Where the keys come from.
enum KeySource {
    Fixed(Arc<Keyring>),
    Watched(Arc<KeyringWatcher>),
}

/// State shared by every worker and every request of one middleware or layer.
pub(crate) struct Shared {
    pub(crate) codec: Codec,
    pub(crate) ttl_policy: TtlExtensionPolicy,
    pub(crate) memo_entries: usize,
    keys: KeySource,
    clock: Clock,
    pub(crate) stats: Arc<SessionStats>,
}

impl Shared {
    pub(crate) fn now(&self) -> SystemTime {
        (self.clock)()
    }

    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        match &self.keys {
            KeySource::Fixed(ring) => Arc::clone(ring),
            KeySource::Watched(watcher) => watcher.current(),
        }
    }

    /// Whether unchanged sessions are re-issued on every request.
    pub(crate) fn every_request(&self) -> bool {
        self.ttl_policy == TtlExtensionPolicy::OnEveryRequest
    }

    /// A new memo holder for one worker (actix) or one shard (tower).
    pub(crate) fn worker(self: &Arc<Self>) -> Arc<Worker> {
        Arc::new(Worker {
            shared: Arc::clone(self),
            memo: Mutex::new(OpenCache::new(self.memo_entries, MEMO_BYTES)),
        })
    }

    fn seal(&self, state: &crate::SessionState, now: SystemTime) -> Result<Vec<String>, ()> {
        match self.codec.seal_lines(&self.keyring(), state, now) {
            Ok(cookies) => {
                self.stats.sealed.fetch_add(1, Ordering::Relaxed);
                Ok(cookies)
            }
            Err(err) => {
                self.stats.overflows.fetch_add(1, Ordering::Relaxed);
                match err {
                    EncodeError::TooLarge { needed, budget } => tracing::error!(
                        needed,
                        budget,
                        "session does not fit its cookie budget ({needed} bytes needed, {budget} allowed); answering 500 and leaving the client's cookies untouched"
                    ),
                    other => {
                        tracing::error!(error = %other, "session could not be sealed; answering 500")
                    }
                }
                Err(())
            }
        }
    }
}

/// A memo of opened sessions and the shared state it serves: one per actix worker, one per
/// shard of a tower layer. Sessions hold an `Arc` of it so they can open lazily.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    memo: Mutex<OpenCache>,
}

/// What the adapter must do to the response once the handler is done.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Nothing to write.
    Untouched,
    /// Append these `Set-Cookie` lines (new chunks first, then removals) and make the
    /// response `Cache-Control: private` (see [`private_cache_control`]).
    Write(Vec<String>),
    /// The session did not fit (or could not be sealed): answer an empty 500 instead, and
    /// leave the client's cookies untouched.
    Overflow,
}

impl Worker {
    /// Opens the request's cookies: the one open path of every adapter. Every failure is "no
    /// session", logged at debug level by category and counted.
    pub(crate) fn open<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Option<Opened> {
        let shared = &self.shared;
        let ring = shared.keyring();
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        match shared
            .codec
            .open_memo(&ring, Some((&ring, &mut memo)), pairs, shared.now())
        {
            Ok(Some(opened)) => {
                shared.stats.opened.fetch_add(1, Ordering::Relaxed);
                Some(opened)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::debug!(
                    category = err.category(),
                    "session cookie rejected; continuing without a session"
                );
                shared.stats.count_rejection(&err);
                None
            }
        }
    }

    /// Decides what the response must carry for `session`: the cookies when it changed, was
    /// renewed, must move to the sealing key or is due for idle renewal (or on every request
    /// under [`TtlExtensionPolicy::OnEveryRequest`]), with every chunk the request carried
    /// that the new session does not use expired; every chunk expired on purge.
    pub(crate) fn finish(&self, session: &Session) -> Outcome {
        let shared = &*self.shared;
        let every_request = shared.every_request();
        if every_request {
            session.load();
        }
        let mut inner = session.lock();
        if !inner.is_loaded() && inner.status == SessionStatus::Unchanged {
            return Outcome::Untouched;
        }
        let now = shared.now();
        let config = shared.codec.config();
        let (status, needs_reseal) = (inner.status, inner.needs_reseal);
        let cookies = match (status, inner.state.as_mut()) {
            (SessionStatus::Purged, _) => Vec::new(),
            (SessionStatus::Changed | SessionStatus::Renewed, Some(state)) => {
                state.touch(now);
                match shared.seal(state, now) {
                    Ok(c) => c,
                    Err(()) => return Outcome::Overflow,
                }
            }
            (SessionStatus::Unchanged, Some(state)) => {
                let renewal_due = config.idle_timeout.is_some()
                    && now
                        .duration_since(state.last_seen())
                        .is_ok_and(|idle| idle >= config.renew_interval);
                if !(renewal_due || needs_reseal || every_request) {
                    return Outcome::Untouched;
                }
                state.touch(now);
                match shared.seal(state, now) {
                    Ok(c) => c,
                    Err(()) => return Outcome::Overflow,
                }
            }
            _ => return Outcome::Untouched,
        };
        let present = shared
            .codec
            .present_chunks(cookie_pairs(inner.cookies.iter()));
        let lines = if status == SessionStatus::Purged {
            shared.codec.removal_lines(present, 0)
        } else {
            let sealed = cookies.len();
            let mut lines = cookies;
            if sealed > 0 {
                lines.extend(shared.codec.removal_lines(present, sealed));
            }
            lines
        };
        if lines.is_empty() {
            Outcome::Untouched
        } else {
            Outcome::Write(lines)
        }
    }
}

/// The `Cache-Control` value a response that sets session cookies must carry, given the one it
/// has: `None` when it is already private (or `no-store`); otherwise `private` in front of its
/// directives, less `public` and `s-maxage`. Such a response must never be stored by a
/// shared cache.
pub(crate) fn private_cache_control(existing: Option<&[u8]>) -> Option<String> {
    let existing = existing
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_ascii_lowercase);
    match existing {
        None => Some("private".to_owned()),
        Some(v) if v.contains("private") || v.contains("no-store") => None,
        Some(v) => {
            let kept: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty() && *d != "public" && !d.starts_with("s-maxage"))
                .collect();
            Some(
                std::iter::once("private")
                    .chain(kept)
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        }
    }
}

/// A shared, built engine: what an adapter wraps.
pub(crate) type Engine = Arc<Shared>;

enum KeySourceSpec {
    Fixed(Keyring),
    /// The path, the keyring and the bytes it was parsed from.
    File(PathBuf, Keyring, zeroize::Zeroizing<Vec<u8>>),
}

/// Builds a session middleware (`SessionMiddleware` for actix-web, `SessionLayer` for tower and
/// axum): one builder, one set of setters for every adapter. Every setter of
/// [`SessionConfig`] is available here too.
#[must_use]
pub struct SessionBuilder<T> {
    keys: KeySourceSpec,
    config: SessionConfig,
    clock: Option<Clock>,
    reload_interval: Duration,
    memo_entries: usize,
    ttl_policy: TtlExtensionPolicy,
    target: PhantomData<fn() -> T>,
}

macro_rules! forward {
    ($($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*);)*) => {$(
        $(#[$doc])*
        pub fn $name(mut self, $($arg: $ty),*) -> Self {
            self.config = self.config.$name($($arg),*);
            self
        }
    )*};
}

impl<T> SessionBuilder<T> {
    /// A builder with secure defaults (see [`SessionConfig`]) and a fixed keyring.
    pub(crate) fn fixed(keyring: Keyring) -> Self {
        Self::new(KeySourceSpec::Fixed(keyring))
    }

    /// A builder whose keyring is the file at `path`, re-read when it changes.
    pub(crate) fn from_file(path: impl Into<PathBuf>) -> Result<Self, crate::KeyringError> {
        let path = path.into();
        let (keyring, parsed) = Keyring::load_with_bytes(&path, SystemTime::now())?;
        Ok(Self::new(KeySourceSpec::File(path, keyring, parsed)))
    }

    fn new(keys: KeySourceSpec) -> Self {
        SessionBuilder {
            keys,
            config: SessionConfig::default(),
            clock: None,
            reload_interval: Duration::from_secs(5),
            memo_entries: 4096,
            ttl_policy: TtlExtensionPolicy::default(),
            target: PhantomData,
        }
    }

    forward! {
        /// See [`SessionConfig::cookie_name`]. Takes a `String` like actix-session's setter,
        /// so `.cookie_name("id".into())` compiles unchanged.
        cookie_name(name: String);
        /// See [`SessionConfig::cookie_domain`].
        cookie_domain(domain: Option<String>);
        /// See [`SessionConfig::cookie_path`]. Takes a `String` like actix-session's setter.
        cookie_path(path: String);
        /// See [`SessionConfig::cookie_secure`].
        cookie_secure(secure: bool);
        /// See [`SessionConfig::cookie_http_only`].
        cookie_http_only(http_only: bool);
        /// See [`SessionConfig::cookie_same_site`].
        cookie_same_site(same_site: impl Into<SameSite>);
        /// See [`SessionConfig::browser_session`].
        browser_session();
        /// See [`SessionConfig::persistent`].
        persistent(max_age: Duration);
        /// See [`SessionConfig::lifetime`].
        lifetime(lifetime: Duration);
        /// See [`SessionConfig::idle_timeout`].
        idle_timeout(idle: Option<Duration>);
        /// See [`SessionConfig::renew_interval`].
        renew_interval(interval: Duration);
        /// See [`SessionConfig::cookie_budget`].
        cookie_budget(bytes: usize);
        /// See [`SessionConfig::total_budget`].
        total_budget(bytes: usize);
        /// See [`SessionConfig::compression_threshold`].
        compression_threshold(bytes: Option<usize>);
        /// See [`SessionConfig::max_inflated`].
        max_inflated(bytes: usize);
        /// See [`SessionConfig::clock_skew`].
        clock_skew(skew: Duration);
        /// See [`SessionConfig::purpose`].
        purpose(label: Option<String>);
        /// See [`SessionConfig::value_fingerprints`].
        value_fingerprints(on: bool);
    }

    /// Replaces the whole configuration.
    pub fn config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// How often a keyring file is checked for changes. Default 5 s.
    pub fn reload_interval(mut self, interval: Duration) -> Self {
        self.reload_interval = interval;
        self
    }

    /// How many opened sessions each memo remembers by their exact cookie bytes, so a client
    /// that sends the same cookies again skips base64, the AEAD and decoding (expiry and keys
    /// are still checked on every request; the memo is dropped when the keyring changes).
    /// There is one memo per actix worker, and one per shard of a tower layer (as many shards
    /// as the machine has cores). Default 4096 entries per memo, bounded to 16 MiB; 0
    /// disables it.
    pub fn open_memo_capacity(mut self, entries: usize) -> Self {
        self.memo_entries = entries;
        self
    }

    /// When an unchanged session is sealed again. Default
    /// [`TtlExtensionPolicy::OnStateChanges`].
    pub fn ttl_extension_policy(mut self, policy: TtlExtensionPolicy) -> Self {
        self.ttl_policy = policy;
        self
    }

    /// Replaces the system clock (tests of expiry and rotation).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Some(Arc::new(clock));
        self
    }

    /// Validates the configuration and builds the shared engine.
    pub(crate) fn engine(self) -> Result<Engine, ConfigError> {
        if self.reload_interval.is_zero() {
            return Err(ConfigError(
                "the keyring reload interval must be positive".into(),
            ));
        }
        let codec = Codec::new(self.config)?;
        let clock = self.clock.unwrap_or_else(|| Arc::new(SystemTime::now));
        let keys = match self.keys {
            KeySourceSpec::Fixed(ring) => KeySource::Fixed(Arc::new(ring)),
            KeySourceSpec::File(path, ring, parsed) => KeySource::Watched(KeyringWatcher::spawn(
                path,
                ring,
                parsed,
                self.reload_interval,
                Arc::clone(&clock),
            )),
        };
        Ok(Arc::new(Shared {
            codec,
            ttl_policy: self.ttl_policy,
            memo_entries: self.memo_entries,
            keys,
            clock,
            stats: Arc::default(),
        }))
    }
}

/// What a middleware or layer has seen since it was built. Counters only ever grow.
#[derive(Debug, Default)]
pub struct SessionStats {
    opened: AtomicU64,
    sealed: AtomicU64,
    overflows: AtomicU64,
    rejected: [AtomicU64; DecodeError::CATEGORIES.len()],
}

impl SessionStats {
    /// Sessions opened from cookies.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Sessions sealed into cookies.
    pub fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Relaxed)
    }

    /// Responses turned into 500 because the session did not fit.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Cookies rejected, by [`DecodeError::category`] (categories never seen are 0).
    pub fn rejected(&self) -> Vec<(&'static str, u64)> {
        DecodeError::CATEGORIES
            .iter()
            .zip(&self.rejected)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Total cookies rejected, all categories.
    pub fn rejected_total(&self) -> u64 {
        self.rejected
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    fn count_rejection(&self, err: &DecodeError) {
        let category = err.category();
        if let Some(i) = DecodeError::CATEGORIES.iter().position(|c| *c == category) {
            if let Some(counter) = self.rejected.get(i) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::private_cache_control;

    #[test]
    fn cache_control_is_made_private_once() {
        assert_eq!(private_cache_control(None).as_deref(), Some("private"));
        assert_eq!(private_cache_control(Some(b"no-store")), None);
        assert_eq!(private_cache_control(Some(b"Private, max-age=5")), None);
        assert_eq!(
            private_cache_control(Some(b"public, max-age=60, s-maxage=600")).as_deref(),
            Some("private, max-age=60")
        );
    }
}
