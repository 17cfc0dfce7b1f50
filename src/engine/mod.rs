//! The framework-neutral request path shared by every adapter (actix-web in `middleware.rs`
//! and `session.rs`, tower/axum in `tower.rs`): configuration and keys, the memo of opened
//! sessions, opening the request's cookies ([`Worker::open`], the one open path every adapter
//! calls), deciding what to write on the way out ([`Worker::finish`]), the counters.
//!
//! An adapter only moves bytes: it hands the request's `Cookie` header values to a
//! [`Session`], lets the handler use it, then asks [`Worker::finish`] what to do and writes
//! the `Set-Cookie` lines (or the empty 500) in its own response type.

use std::future::Future;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::codec::cache::OpenCache;
use crate::codec::{ChunkSet, Codec, Opened, cookie_pairs};
use crate::config::{SameSite, SessionConfig};
use crate::error::{ConfigError, DecodeError, EncodeError};
use crate::keyring::Keyring;
use crate::reload::KeyringWatcher;
use crate::state::SessionState;

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

/// The error a revalidation hook may return.
pub type RevalidationError = Box<dyn std::error::Error + Send + Sync>;

/// The future a revalidation hook returns.
pub type RevalidationFuture =
    Pin<Box<dyn Future<Output = Result<bool, RevalidationError>> + Send + 'static>>;

type Hook = Arc<dyn Fn(SessionState) -> RevalidationFuture + Send + Sync>;

/// What happens to a session when the revalidation hook returns an error (its database is
/// down, a timeout): logged at warn level and counted either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RevalidationErrorPolicy {
    /// The default: the session goes on, unconfirmed; the check runs again on the next
    /// request. A revoked session then lives as long as the check keeps failing.
    #[default]
    Keep,
    /// The session is dropped as if the check had said no: the user is logged out while the
    /// check fails.
    Drop,
}

/// The configured hook and when to call it.
pub(crate) struct Revalidation {
    hook: Hook,
    interval: Duration,
    on_error: RevalidationErrorPolicy,
}

/// What the revalidation decided for one request's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Confirmed: stamp `validated_at` and re-seal.
    Confirmed,
    /// The check failed and the policy keeps the session: leave it as it is.
    Unconfirmed,
    /// Refused (or failed under [`RevalidationErrorPolicy::Drop`]): no session, expire the
    /// cookies.
    Dropped,
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
    /// Level 3 of revocation: checked after every successful open.
    #[cfg(feature = "redis")]
    pub(crate) revocation: Option<crate::revocation::RedisRevocation>,
    /// Whether a response's `Set-Cookie` lines already passed 4 KiB (logged once, at info).
    big_set_cookie_noted: AtomicBool,
    /// Level 2 of revocation: the application's check, when configured.
    pub(crate) revalidation: Option<Revalidation>,
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

    fn seal(
        &self,
        ring: &Keyring,
        state: &crate::SessionState,
        now: SystemTime,
    ) -> Result<Vec<String>, ()> {
        match self.codec.seal_lines(ring, state, now) {
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

impl Shared {
    /// Revocation level 2, first half: the hook's future when `state`'s last confirmation is
    /// at least the interval old, `None` when nothing is due (no hook, no session, or a recent
    /// confirmation). Checks that must run before the handler sit here, in the adapters'
    /// shared path.
    pub(crate) fn revalidation_due(
        &self,
        state: Option<&SessionState>,
    ) -> Option<RevalidationFuture> {
        let revalidation = self.revalidation.as_ref()?;
        let state = state?;
        let age = crate::keyring::unix_seconds(self.now()).saturating_sub(state.validated_at);
        (age >= revalidation.interval.as_secs()).then(|| (revalidation.hook)(state.clone()))
    }

    /// Revocation level 2, second half: what the hook's answer means for the session, logged
    /// (the category only) and counted.
    pub(crate) fn revalidation_verdict(&self, answer: Result<bool, RevalidationError>) -> Verdict {
        let on_error = self
            .revalidation
            .as_ref()
            .map_or(RevalidationErrorPolicy::Keep, |r| r.on_error);
        match answer {
            Ok(true) => {
                self.stats.revalidated.fetch_add(1, Ordering::Relaxed);
                Verdict::Confirmed
            }
            Ok(false) => self.refuse_revalidation(),
            Err(err) => {
                self.stats
                    .revalidation_errors
                    .fetch_add(1, Ordering::Relaxed);
                let drop = on_error == RevalidationErrorPolicy::Drop;
                tracing::warn!(
                    error = %err,
                    policy = if drop { "drop" } else { "keep" },
                    "session revalidation hook failed"
                );
                if drop {
                    self.refuse_revalidation()
                } else {
                    Verdict::Unconfirmed
                }
            }
        }
    }

    fn refuse_revalidation(&self) -> Verdict {
        let err = DecodeError::RevalidationFailed;
        tracing::debug!(
            category = err.category(),
            "session cookie rejected; continuing without a session"
        );
        self.stats.count_rejection(&err);
        Verdict::Dropped
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
    /// `present` is set to the chunks the request carried.
    pub(crate) fn open<'a>(
        &self,
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        present: &mut ChunkSet,
    ) -> Option<Opened> {
        let shared = &self.shared;
        let ring = shared.keyring();
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        let opened = shared.codec.open_memo(
            &ring,
            Some((&ring, &mut memo)),
            pairs,
            shared.now(),
            present,
        );
        let hits = memo.take_hits();
        drop(memo);
        match opened {
            Ok(Some(opened)) => {
                #[cfg(feature = "redis")]
                if let Some(revoked) = shared
                    .revocation
                    .as_ref()
                    .and_then(|l| l.check(&opened.state))
                {
                    tracing::debug!(
                        category = revoked.category(),
                        "session revoked; continuing without a session"
                    );
                    shared.stats.count_revoked(revoked);
                    return None;
                }
                shared.stats.opened.fetch_add(1, Ordering::Relaxed);
                if hits > 0 {
                    shared.stats.memo_hits.fetch_add(1, Ordering::Relaxed);
                }
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
        let ring = shared.keyring();
        let config = shared.codec.config();
        let (status, needs_reseal) = (inner.status, inner.needs_reseal);
        let (revalidated, dropped) = (inner.revalidated, inner.dropped);
        let expire_all = status == SessionStatus::Purged
            || (status == SessionStatus::Unchanged && inner.state.is_none() && dropped);
        let cookies = match (status, inner.state.as_mut()) {
            (SessionStatus::Purged, _) => Vec::new(),
            // Refused by the revalidation hook and not replaced by the handler: expire it, so
            // the browser stops sending it (and the hook is not asked again for it).
            (SessionStatus::Unchanged, None) if dropped => Vec::new(),
            (SessionStatus::Changed | SessionStatus::Renewed, Some(state)) => {
                state.touch(now);
                match shared.seal(&ring, state, now) {
                    Ok(c) => c,
                    Err(()) => return Outcome::Overflow,
                }
            }
            (SessionStatus::Unchanged, Some(state)) => {
                let renewal_due = config.idle_timeout.is_some()
                    && now
                        .duration_since(state.last_seen())
                        .is_ok_and(|idle| idle >= config.renew_interval);
                if !(renewal_due || needs_reseal || every_request || revalidated) {
                    return Outcome::Untouched;
                }
                state.touch(now);
                match shared.seal(&ring, state, now) {
                    Ok(c) => c,
                    Err(()) => return Outcome::Overflow,
                }
            }
            _ => return Outcome::Untouched,
        };
        if !cookies.is_empty() {
            self.expect(&cookies);
        }
        // Known when the cookies were opened (always, but for a session the handler never
        // loaded, which only `OnEveryRequest` or a revalidation could re-seal).
        let present = inner.present.unwrap_or_else(|| {
            shared
                .codec
                .present_chunks(cookie_pairs(inner.cookies.iter()))
        });
        let lines = if expire_all {
            shared.codec.removal_lines(present, 0)
        } else {
            let sealed = cookies.len();
            let mut lines = cookies;
            if sealed > 0 {
                lines.extend(shared.codec.removal_lines(present, sealed));
            }
            lines
        };
        note_set_cookie_block(&shared.big_set_cookie_noted, &lines);
        if lines.is_empty() {
            Outcome::Untouched
        } else {
            Outcome::Write(lines)
        }
    }

    /// Tells the memo which cookies the client will send next, so that their first open on
    /// this worker is remembered (a session is not stored here: most writes are never read
    /// back by the same worker, and storing each one evicted another).
    fn expect(&self, lines: &[String]) {
        if self.shared.memo_entries == 0 {
            return;
        }
        if let Some((count, pieces)) = self.shared.codec.sealed_pieces(lines) {
            let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
            memo.expect(count, &pieces);
        }
    }
}

/// Bytes of response head a stock nginx holds for the upstream's headers
/// (`proxy_buffer_size 4k`): a response whose `Set-Cookie` lines alone pass it gets a 502.
const STOCK_PROXY_HEADER_BUFFER: usize = 4096;

/// The bytes `lines` take as `Set-Cookie: value\r\n` header lines.
fn set_cookie_block_len<'a>(lines: impl IntoIterator<Item = &'a String>) -> usize {
    lines
        .into_iter()
        .map(|line| line.len().saturating_add("Set-Cookie: \r\n".len()))
        .fold(0, usize::saturating_add)
}

/// Logs once per middleware, at info, the first time a response's `Set-Cookie` lines pass
/// 4 KiB: behind a stock nginx such a response becomes a 502 until the proxy's buffers grow.
/// Returns whether it logged.
fn note_set_cookie_block(noted: &AtomicBool, lines: &[String]) -> bool {
    let bytes = set_cookie_block_len(lines);
    if bytes <= STOCK_PROXY_HEADER_BUFFER || noted.swap(true, Ordering::Relaxed) {
        return false;
    }
    tracing::info!(
        category = "proxy.set_cookie_block",
        bytes,
        lines = lines.len(),
        "a response carries more than 4 KiB of Set-Cookie lines (logged once): behind nginx set \
         `proxy_buffer_size 16k; proxy_busy_buffers_size 16k;` (the stock 4k answers 502 \
         \"upstream sent too big header\"); requests then carry over 4 KiB of Cookie header \
         too, see docs/DEPLOY.md for every proxy setting"
    );
    true
}

/// The `Cache-Control` value a response that sets session cookies must carry, given the one it
/// has: `None` when it is already private (or `no-store`); otherwise `private` in front of its
/// directives, less `public` and `s-maxage` (borrowed, with no allocation, when there were
/// none). Such a response must never be stored by a shared cache.
pub(crate) fn private_cache_control(
    existing: Option<&[u8]>,
) -> Option<std::borrow::Cow<'static, str>> {
    let Some(existing) = existing.and_then(|v| std::str::from_utf8(v).ok()) else {
        return Some(std::borrow::Cow::Borrowed("private"));
    };
    let existing = existing.to_ascii_lowercase();
    if existing.contains("private") || existing.contains("no-store") {
        return None;
    }
    let kept: Vec<&str> = existing
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != "public" && !d.starts_with("s-maxage"))
        .collect();
    Some(std::borrow::Cow::Owned(
        std::iter::once("private")
            .chain(kept)
            .collect::<Vec<_>>()
            .join(", "),
    ))
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
    #[cfg(feature = "redis")]
    revocation: Option<crate::revocation::RedisRevocation>,
    hook: Option<Hook>,
    revalidate_interval: Duration,
    on_revalidation_error: RevalidationErrorPolicy,
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
            #[cfg(feature = "redis")]
            revocation: None,
            hook: None,
            revalidate_interval: Duration::from_secs(300),
            on_revalidation_error: RevalidationErrorPolicy::default(),
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
    ///
    /// Cookies enter on their second open by the same memo (or their first, when that worker
    /// sealed them), so clients seen once cost a lookup and never evict a useful entry. A memo
    /// pays when the same worker sees the same cookies again: few workers, clients that come
    /// back often. Watch [`SessionStats::memo_hits`] against [`SessionStats::opened`]: below
    /// a hit rate of about a quarter (many workers behind a round-robin balancer, most users
    /// seen once), set 0. The README's "Speed" section has the measured trade-off.
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

    /// A fleet-wide revocation list (feature `redis`): every opened session is checked against
    /// its local mirror, and [`Session::purge`](crate::Session::purge) revokes the session's
    /// id on every node. Share one [`RedisRevocation`](crate::RedisRevocation) between the
    /// middlewares of a process.
    #[cfg(feature = "redis")]
    pub fn revocation(mut self, list: crate::revocation::RedisRevocation) -> Self {
        self.revocation = Some(list);
        self
    }

    /// Revocation level 2: an application check that a session is still good, e.g. "is the
    /// session's user generation still the one in my database?" (bumped on a password change
    /// or "log out all my devices"). It receives a copy of the session (read the user id and
    /// generation with [`SessionState::get`]) and answers `Ok(true)` to keep it, `Ok(false)` to
    /// drop it (no session for the handler, cookies expired on the response), or an error
    /// (see [`revalidation_error_policy`](Self::revalidation_error_policy)).
    ///
    /// It runs before the handler, and only for a session whose sealed `validated_at` is at
    /// least [`revalidate_interval`](Self::revalidate_interval) old; a confirmed session is
    /// re-sealed with `validated_at` = now, so most requests do not call it. A revoked session
    /// is therefore refused at most one interval after the application revoked it. With a
    /// hook, every request carrying a session cookie opens it before the handler runs (the
    /// memo makes that cheap), and sessions are sealed with `validated_at` (payload schema 3,
    /// which releases before it cannot read: configure the hook once every node runs this
    /// release). Without a hook nothing of this runs and cookies are unchanged.
    pub fn revalidate<F, Fut, E>(mut self, hook: F) -> Self
    where
        F: Fn(SessionState) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<bool, E>> + Send + 'static,
        E: Into<RevalidationError> + 'static,
    {
        self.hook = Some(Arc::new(move |state| {
            let fut = hook(state);
            Box::pin(async move { fut.await.map_err(Into::into) })
        }));
        self
    }

    /// How old a session's last confirmation may be before the revalidation hook is asked
    /// again: the staleness bound of level 2. Default 5 minutes; whole seconds, at least 1.
    pub fn revalidate_interval(mut self, interval: Duration) -> Self {
        self.revalidate_interval = interval;
        self
    }

    /// What an error from the revalidation hook does. Default
    /// [`RevalidationErrorPolicy::Keep`].
    pub fn revalidation_error_policy(mut self, policy: RevalidationErrorPolicy) -> Self {
        self.on_revalidation_error = policy;
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
        #[cfg(feature = "redis")]
        if let Some(list) = &self.revocation {
            list.attach(self.config.lifetime, self.config.clock_skew);
        }
        if self.hook.is_some() && self.revalidate_interval.as_secs() == 0 {
            return Err(ConfigError(
                "the revalidation interval must be at least one second".into(),
            ));
        }
        let revalidation = self.hook.map(|hook| Revalidation {
            hook,
            interval: self.revalidate_interval,
            on_error: self.on_revalidation_error,
        });
        // Sessions carry `validated_at` only when something reads it.
        let codec = Codec::new(self.config.seal_validated_at(revalidation.is_some()))?;
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
            #[cfg(feature = "redis")]
            revocation: self.revocation,
            big_set_cookie_noted: AtomicBool::new(false),
            revalidation,
        }))
    }
}

/// What a middleware or layer has seen since it was built. Counters only ever grow.
#[derive(Debug, Default)]
pub struct SessionStats {
    opened: AtomicU64,
    memo_hits: AtomicU64,
    sealed: AtomicU64,
    overflows: AtomicU64,
    revalidated: AtomicU64,
    revalidation_errors: AtomicU64,
    rejected: [AtomicU64; DecodeError::CATEGORIES.len()],
    /// Refused by the revocation list (feature `redis`), by [`REVOCATION_CATEGORIES`].
    revoked: [AtomicU64; REVOCATION_CATEGORIES.len()],
}

/// The categories [`SessionStats::rejected`] lists after the decoding ones: sessions refused
/// by the Redis revocation list (feature `redis`) because their id was revoked, their user
/// was, or the node never loaded the list and its policy is to refuse.
const REVOCATION_CATEGORIES: [&str; 3] =
    ["revoked_session", "revoked_user", "revocation_unavailable"];

impl SessionStats {
    /// Sessions opened from cookies.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Of [`opened`](Self::opened), those the memo of opened sessions answered (the same
    /// cookies opened earlier by this worker or shard): `memo_hits / opened` is the memo's
    /// hit rate, to size [`open_memo_capacity`](SessionBuilder::open_memo_capacity).
    pub fn memo_hits(&self) -> u64 {
        self.memo_hits.load(Ordering::Relaxed)
    }

    /// Sessions sealed into cookies.
    pub fn sealed(&self) -> u64 {
        self.sealed.load(Ordering::Relaxed)
    }

    /// Responses turned into 500 because the session did not fit.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Sessions the revalidation hook confirmed (and that were re-sealed with a new
    /// `validated_at`).
    pub fn revalidated(&self) -> u64 {
        self.revalidated.load(Ordering::Relaxed)
    }

    /// Revalidation hook calls that returned an error (whatever the policy did with the
    /// session; those it dropped are also counted as `revalidation.failed`).
    pub fn revalidation_errors(&self) -> u64 {
        self.revalidation_errors.load(Ordering::Relaxed)
    }

    /// Cookies rejected, by [`DecodeError::category`], then sessions refused by the revocation
    /// list (`revoked_session`, `revoked_user`, `revocation_unavailable`; feature `redis`).
    /// Categories never seen are 0.
    pub fn rejected(&self) -> Vec<(&'static str, u64)> {
        DecodeError::CATEGORIES
            .iter()
            .zip(&self.rejected)
            .chain(REVOCATION_CATEGORIES.iter().zip(&self.revoked))
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Total cookies rejected, all categories.
    pub fn rejected_total(&self) -> u64 {
        self.rejected
            .iter()
            .chain(&self.revoked)
            .map(|n| n.load(Ordering::Relaxed))
            .sum()
    }

    #[cfg(feature = "redis")]
    fn count_revoked(&self, revoked: crate::revocation::Revoked) {
        let i = match revoked {
            crate::revocation::Revoked::Session => 0,
            crate::revocation::Revoked::User => 1,
            crate::revocation::Revoked::Unavailable => 2,
        };
        if let Some(counter) = self.revoked.get(i) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
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
