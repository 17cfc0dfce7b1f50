//! The actix-web middleware: on the way in it only marks the request; on the way out it seals
//! the session when it changed, was renewed, must move to the sealing key or is due for idle
//! renewal, and expires every chunk the request carried that the new session does not use.
//! A session over budget turns the response into an empty 500 and leaves the client's
//! cookies untouched.

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use crate::config::SameSite;
use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderValue, SET_COOKIE};
use actix_web::{HttpResponse, HttpResponseBuilder, http::StatusCode};
use std::future::{Ready, ready};

use crate::codec::cache::OpenCache;
use crate::codec::{Codec, Opened, cookie_pairs};
use crate::config::SessionConfig;
use crate::error::{ConfigError, DecodeError, EncodeError};
use crate::keyring::Keyring;
use crate::reload::KeyringWatcher;
use crate::session::{Installed, Session, SessionStatus};
use crate::state::SessionState;

/// Stateless cookie sessions for an actix-web app. Build it once, outside `HttpServer::new`,
/// and `.wrap(middleware.clone())` in every worker so all workers share one keyring.
///
/// # Examples
/// ```
/// use std::time::SystemTime;
///
/// use actix_web::{App, HttpResponse, test, web};
/// use sealed_session::{Algorithm, Keyring, Session, SessionMiddleware};
///
/// # actix_web::rt::System::new().block_on(async {
/// // In production: `SessionMiddleware::builder_from_file(path)?` with a keyring made by
/// // `sealed-session keys init`, shared by every node.
/// let keyring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
/// let sessions = SessionMiddleware::builder(keyring)
///     .cookie_name("__Host-app".to_owned())
///     .build()
///     .unwrap();
///
/// let app = test::init_service(
///     App::new().wrap(sessions.clone()).route(
///         "/visit",
///         web::get().to(|session: Session| async move {
///             let n = session.get::<u32>("visits").ok().flatten().unwrap_or(0) + 1;
///             session.insert("visits", n).unwrap();
///             HttpResponse::Ok().body(n.to_string())
///         }),
///     ),
/// )
/// .await;
/// let response = test::call_service(&app, test::TestRequest::get().uri("/visit").to_request()).await;
/// // The session travels in the response's Set-Cookie header: no server-side store.
/// assert!(response.headers().contains_key("set-cookie"));
/// # });
/// ```
#[derive(Clone)]
pub struct SessionMiddleware {
    shared: Arc<Shared>,
}

/// Where the keys come from.
#[derive(Clone)]
enum KeySource {
    Fixed(Arc<Keyring>),
    Watched(Arc<KeyringWatcher>),
}

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
    /// [`renew_interval`](SessionMiddlewareBuilder::renew_interval) to slide the idle timeout.
    #[default]
    OnStateChanges,
    /// Sealed again on every response to a request that carried a valid session, whether or
    /// not the handler touched it: a persistent cookie's `Max-Age` restarts on every request.
    /// Costs one open and one seal per request, and a `Set-Cookie` on every response.
    OnEveryRequest,
}

/// State shared by every worker and every request.
pub(crate) struct Shared {
    pub(crate) codec: Codec,
    ttl_policy: TtlExtensionPolicy,
    memo_entries: usize,
    keys: KeySource,
    clock: Clock,
    stats: Arc<SessionStats>,
    /// Whether a response's `Set-Cookie` lines already passed 4 KiB (logged once, at info).
    big_set_cookie_noted: AtomicBool,
    /// Level 2 of revocation: the application's check, when configured.
    pub(crate) revalidation: Option<Revalidation>,
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

/// The time source; injectable so rotation and expiry can be tested.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

impl SessionMiddleware {
    /// A middleware with the default configuration and a fixed keyring.
    ///
    /// # Errors
    /// Never with the defaults; kept fallible like [`SessionMiddlewareBuilder::build`].
    pub fn new(keyring: Keyring) -> Result<Self, ConfigError> {
        Self::builder(keyring).build()
    }

    /// A builder with secure defaults (see [`SessionConfig`]) and a fixed keyring.
    pub fn builder(keyring: Keyring) -> SessionMiddlewareBuilder {
        SessionMiddlewareBuilder::new(KeySourceSpec::Fixed(keyring))
    }

    /// A builder whose keyring is the file at `path`, re-read when it changes (every
    /// `poll_interval`, see [`SessionMiddlewareBuilder::reload_interval`]). A missing,
    /// half-written or invalid file never replaces a good keyring.
    ///
    /// # Errors
    /// The file cannot be loaded now.
    pub fn builder_from_file(
        path: impl Into<PathBuf>,
    ) -> Result<SessionMiddlewareBuilder, crate::KeyringError> {
        let path = path.into();
        let (keyring, parsed) = Keyring::load_with_bytes(&path, SystemTime::now())?;
        Ok(SessionMiddlewareBuilder::new(KeySourceSpec::File(
            path, keyring, parsed,
        )))
    }

    /// Counters of what the middleware saw, shared by every clone.
    pub fn stats(&self) -> Arc<SessionStats> {
        Arc::clone(&self.shared.stats)
    }

    /// The keyring in force now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.shared.keyring()
    }
}

enum KeySourceSpec {
    Fixed(Keyring),
    /// The path, the keyring and the bytes it was parsed from.
    File(PathBuf, Keyring, zeroize::Zeroizing<Vec<u8>>),
}

/// Builds a [`SessionMiddleware`]. Every setter of [`SessionConfig`] is available here too.
#[must_use]
pub struct SessionMiddlewareBuilder {
    keys: KeySourceSpec,
    config: SessionConfig,
    clock: Option<Clock>,
    reload_interval: Duration,
    memo_entries: usize,
    ttl_policy: TtlExtensionPolicy,
    hook: Option<Hook>,
    revalidate_interval: Duration,
    on_revalidation_error: RevalidationErrorPolicy,
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

impl SessionMiddlewareBuilder {
    fn new(keys: KeySourceSpec) -> Self {
        SessionMiddlewareBuilder {
            keys,
            config: SessionConfig::default(),
            clock: None,
            reload_interval: Duration::from_secs(5),
            memo_entries: 4096,
            ttl_policy: TtlExtensionPolicy::default(),
            hook: None,
            revalidate_interval: Duration::from_secs(300),
            on_revalidation_error: RevalidationErrorPolicy::default(),
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

    /// How many opened sessions each worker remembers by their exact cookie bytes, so a client
    /// that sends the same cookies again skips base64, the AEAD and decoding (expiry and keys
    /// are still checked on every request; the memo is dropped when the keyring changes).
    /// Default 4096 per worker, bounded to 16 MiB; 0 disables it.
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

    /// Validates the configuration and builds the middleware.
    ///
    /// # Errors
    /// An unsafe or impossible combination, with a message that says what to change.
    pub fn build(self) -> Result<SessionMiddleware, ConfigError> {
        if self.reload_interval.is_zero() {
            return Err(ConfigError(
                "the keyring reload interval must be positive".into(),
            ));
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
        let shared = Shared {
            codec,
            ttl_policy: self.ttl_policy,
            memo_entries: self.memo_entries,
            keys,
            clock,
            stats: Arc::default(),
            big_set_cookie_noted: AtomicBool::new(false),
            revalidation,
        };
        Ok(SessionMiddleware {
            shared: Arc::new(shared),
        })
    }
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

    /// Opens the request's cookies; every failure is "no session", logged at debug level
    /// by category and counted.
    pub(crate) fn open<'a>(
        &self,
        memo: &RefCell<OpenCache>,
        pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Option<Opened> {
        let ring = self.keyring();
        let mut memo = memo.borrow_mut();
        match self
            .codec
            .open_memo(&ring, Some((&ring, &mut memo)), pairs, self.now())
        {
            Ok(Some(opened)) => {
                self.stats.opened.fetch_add(1, Ordering::Relaxed);
                Some(opened)
            }
            Ok(None) => None,
            Err(err) => {
                tracing::debug!(
                    category = err.category(),
                    "session cookie rejected; continuing without a session"
                );
                self.stats.count_rejection(&err);
                None
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

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let worker = Rc::new(Worker {
            shared: Arc::clone(&self.shared),
            memo: RefCell::new(OpenCache::new(self.shared.memo_entries, MEMO_BYTES)),
        });
        ready(Ok(SessionService {
            service: Rc::new(service),
            worker,
        }))
    }
}

/// The per-worker service produced by [`SessionMiddleware`].
pub struct SessionService<S> {
    service: Rc<S>,
    worker: Rc<Worker>,
}

/// What one worker shares with its requests: the middleware's state and the worker's memo
/// of opened sessions (see `codec::cache`). One `Rc` clone per request, no atomics.
pub(crate) struct Worker {
    pub(crate) shared: Arc<Shared>,
    pub(crate) memo: RefCell<OpenCache>,
}

/// Most bytes (cookies and values) one worker's memo holds.
const MEMO_BYTES: usize = 16 * 1024 * 1024;

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = SessionFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let mut extensions = req.extensions_mut();
        extensions.insert(Installed(Rc::clone(&self.worker)));
        // A session made before this middleware saw the request (a scope guard, an outer
        // middleware) is detached: attach it, or drop it if it already holds changes.
        if let Some(early) = extensions.get::<Session>() {
            if early.is_detached() && !early.attach(&self.worker, req.headers()) {
                tracing::warn!(
                    "a session changed before SessionMiddleware ran is discarded; wrap the middleware further out"
                );
                extensions.remove::<Session>();
            }
        }
        // Revocation level 2: a session due for revalidation is checked before the handler
        // sees it, so it is opened now; only then is the handler's future boxed.
        let due = if self.worker.shared.revalidation.is_some() {
            let session = Session::of(&mut extensions, req.headers());
            session.revalidation_due().map(|check| (session, check))
        } else {
            None
        };
        drop(extensions);
        let every_request = self.worker.shared.ttl_policy == TtlExtensionPolicy::OnEveryRequest;
        let Some((session, check)) = due else {
            return SessionFuture {
                fut: Inner::Direct {
                    fut: self.service.call(req),
                },
                every_request,
            };
        };
        let service = Rc::clone(&self.service);
        SessionFuture {
            fut: Inner::Revalidating {
                fut: Box::pin(async move {
                    session.apply_revalidation(check.await);
                    service.call(req).await
                }),
            },
            every_request,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionService`]: the inner future, unboxed, so a request that
    /// never touches the session pays no allocation for it (boxed only when a revalidation
    /// hook must run first).
    pub struct SessionFuture<F, B> {
        #[pin]
        fut: Inner<F, B>,
        // `TtlExtensionPolicy::OnEveryRequest`: re-issue sessions the handler did not touch.
        every_request: bool,
    }
}

/// A boxed handler future that awaits a revalidation first.
type Revalidating<B> = Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, actix_web::Error>>>>;

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<F, B> {
        Direct { #[pin] fut: F },
        Revalidating { fut: Revalidating<B> },
    }
}

impl<F, B> Future for SessionFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, actix_web::Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = match this.fut.project() {
            InnerProj::Direct { fut } => fut.poll(cx),
            InnerProj::Revalidating { fut } => fut.as_mut().poll(cx),
        };
        let mut res = match polled {
            Poll::Ready(res) => res?,
            Poll::Pending => return Poll::Pending,
        };
        let session = res.request().extensions_mut().remove::<Session>();
        let session = match session {
            Some(session) => session,
            None if *this.every_request => {
                let req = res.request();
                let session = Session::of(&mut req.extensions_mut(), req.headers());
                req.extensions_mut().remove::<Session>();
                session
            }
            None => return Poll::Ready(Ok(res.map_into_left_body())),
        };
        let Some(shared) = session.shared() else {
            // Detached: made before this middleware saw the request; nothing to write.
            return Poll::Ready(Ok(res.map_into_left_body()));
        };
        Poll::Ready(
            write_session(&shared, session, &mut res).map(|fail| match fail {
                None => res.map_into_left_body(),
                Some(overflow) => res.into_response(overflow).map_into_right_body(),
            }),
        )
    }
}

/// Adds the cookies the session needs to `res`. Returns the empty 500 to send instead when
/// the session does not fit.
fn write_session<B>(
    shared: &Shared,
    session: Session,
    res: &mut ServiceResponse<B>,
) -> Result<Option<HttpResponse>, actix_web::Error> {
    let every_request = shared.ttl_policy == TtlExtensionPolicy::OnEveryRequest;
    if every_request {
        session.load();
    }
    let mut inner = session.inner();
    if !inner.is_loaded() && inner.status == SessionStatus::Unchanged {
        return Ok(None);
    }
    let now = shared.now();
    let config = shared.codec.config();
    let present = || {
        let headers = res
            .request()
            .headers()
            .get_all(COOKIE)
            .map(HeaderValue::as_bytes);
        shared.codec.present_chunks(cookie_pairs(headers))
    };
    let (status, needs_reseal) = (inner.status, inner.needs_reseal);
    let (revalidated, dropped) = (inner.revalidated, inner.dropped);
    let cookies = match (status, inner.state.as_mut()) {
        (SessionStatus::Purged, _) => shared.codec.removal_lines(present(), 0),
        // Refused by the revalidation hook and not replaced by the handler: expire it, so the
        // browser stops sending it (and the hook is not asked again for it).
        (SessionStatus::Unchanged, None) if dropped => shared.codec.removal_lines(present(), 0),
        (SessionStatus::Changed | SessionStatus::Renewed, Some(state)) => {
            state.touch(now);
            match seal(shared, state, now) {
                Ok(c) => c,
                Err(overflow) => return Ok(Some(overflow)),
            }
        }
        (SessionStatus::Unchanged, Some(state)) => {
            let renewal_due = config.idle_timeout.is_some()
                && now
                    .duration_since(state.last_seen())
                    .is_ok_and(|idle| idle >= config.renew_interval);
            if !(renewal_due || needs_reseal || every_request || revalidated) {
                return Ok(None);
            }
            state.touch(now);
            match seal(shared, state, now) {
                Ok(c) => c,
                Err(overflow) => return Ok(Some(overflow)),
            }
        }
        _ => return Ok(None),
    };
    let sealed = if status == SessionStatus::Purged || inner.state.is_none() {
        0
    } else {
        cookies.len()
    };
    let removals = if sealed > 0 {
        shared.codec.removal_lines(present(), sealed)
    } else {
        Vec::new()
    };
    drop(inner);
    note_set_cookie_block(&shared.big_set_cookie_noted, &cookies, &removals);
    let headers = res.response_mut().headers_mut();
    let any = !cookies.is_empty() || !removals.is_empty();
    for line in cookies.into_iter().chain(removals) {
        let value =
            HeaderValue::try_from(line).map_err(actix_web::error::ErrorInternalServerError)?;
        headers.append(SET_COOKIE, value);
    }
    if any {
        mark_private(headers);
    }
    Ok(None)
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
fn note_set_cookie_block(noted: &AtomicBool, cookies: &[String], removals: &[String]) -> bool {
    let bytes = set_cookie_block_len(cookies.iter().chain(removals));
    if bytes <= STOCK_PROXY_HEADER_BUFFER || noted.swap(true, Ordering::Relaxed) {
        return false;
    }
    tracing::info!(
        category = "proxy.set_cookie_block",
        bytes,
        lines = cookies.len() + removals.len(),
        "a response carries more than 4 KiB of Set-Cookie lines (logged once): behind nginx set \
         `proxy_buffer_size 16k; proxy_busy_buffers_size 16k;` (the stock 4k answers 502 \
         \"upstream sent too big header\"); requests then carry over 4 KiB of Cookie header \
         too, see docs/DEPLOY.md for every proxy setting"
    );
    true
}

fn seal(
    shared: &Shared,
    state: &crate::SessionState,
    now: SystemTime,
) -> Result<Vec<String>, HttpResponse> {
    match shared.codec.seal_lines(&shared.keyring(), state, now) {
        Ok(cookies) => {
            shared.stats.sealed.fetch_add(1, Ordering::Relaxed);
            Ok(cookies)
        }
        Err(err) => {
            shared.stats.overflows.fetch_add(1, Ordering::Relaxed);
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
            Err(HttpResponseBuilder::new(StatusCode::INTERNAL_SERVER_ERROR).finish())
        }
    }
}

/// Responses that set session cookies must never be stored by a shared cache.
fn mark_private(headers: &mut actix_web::http::header::HeaderMap) {
    let existing = headers
        .get(CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    let value = match existing {
        None => "private".to_owned(),
        Some(v) if v.contains("private") || v.contains("no-store") => return,
        Some(v) => {
            let kept: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|d| !d.is_empty() && *d != "public" && !d.starts_with("s-maxage"))
                .collect();
            std::iter::once("private")
                .chain(kept)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(CACHE_CONTROL, v);
    }
}

/// What the middleware has seen since it was built. Counters only ever grow.
#[derive(Debug, Default)]
pub struct SessionStats {
    opened: AtomicU64,
    sealed: AtomicU64,
    overflows: AtomicU64,
    revalidated: AtomicU64,
    revalidation_errors: AtomicU64,
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

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("config", self.shared.codec.config())
            .finish_non_exhaustive()
    }
}

/// Keeps `RwLock` in this module's vocabulary for the watcher.
pub(crate) type SharedKeyring = RwLock<Arc<Keyring>>;
