//! The [`Session`] handle and extractor, with actix-session's API.
//!
//! The cookies are opened only when a handler first touches the session; a request that
//! never does pays for nothing but the middleware's bookkeeping.

use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::http::header::{COOKIE, HeaderMap, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::{Ready, ready};

use crate::codec::cookie_pairs;
use crate::config::SessionConfig;
use crate::error::{SessionGetError, SessionInsertError};
use crate::middleware::{Shared, Verdict, Worker};
use crate::state::{SessionState, encode_value};

/// What happened to the session during this request; tells the middleware what to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SessionStatus {
    /// Entries changed: the session is sealed again.
    Changed,
    /// Purged: every chunk cookie is expired.
    Purged,
    /// New identity (id, issued-at, absolute expiry): the session is sealed again.
    Renewed,
    /// Untouched or only read. The middleware may still re-issue it to slide the idle timeout
    /// or to move it to the current sealing key.
    #[default]
    Unchanged,
}

/// The session of the current request. Cheap to clone; all clones share one state.
///
/// Values are stored with postcard, so `get` must name the type that was inserted; another
/// type (another serde data model) is an error, never a wrong value (docs/FORMAT.md §6.1).
///
/// Outside [`SessionMiddleware`](crate::SessionMiddleware) (a unit test's `TestRequest`, a
/// route the middleware does not wrap) the session is *detached*, as in actix-session: it
/// starts empty, works in memory, and nothing is ever written to the response.
///
/// # Examples
/// A handler takes `Session` as an extractor; at a privilege change (login) it gives the
/// session a new identity:
/// ```
/// use actix_web::{HttpResponse, web};
/// use sealed_session::Session;
///
/// async fn login(session: Session, user: web::Path<String>) -> actix_web::Result<HttpResponse> {
///     session.clear();
///     session.renew(); // new session id, issued-at and absolute expiry (no fixation)
///     session.insert("user", user.into_inner())?; // `?`: an opaque 500 on failure
///     Ok(HttpResponse::Ok().finish())
/// }
///
/// async fn whoami(session: Session) -> actix_web::Result<HttpResponse> {
///     // Read with the type that was written: another type is an error, never a wrong value.
///     Ok(match session.get::<String>("user")? {
///         Some(user) => HttpResponse::Ok().body(user),
///         None => HttpResponse::Unauthorized().finish(),
///     })
/// }
///
/// # let _ = (web::get().to(login), web::get().to(whoami));
/// ```
#[derive(Clone)]
pub struct Session(Rc<RefCell<Inner>>);

pub(crate) struct Inner {
    /// `None` for a detached session.
    worker: Option<Rc<Worker>>,
    cookie_headers: Vec<HeaderValue>,
    loaded: bool,
    pub(crate) state: Option<SessionState>,
    pub(crate) status: SessionStatus,
    /// Opened under a key that no longer seals.
    pub(crate) needs_reseal: bool,
    /// Confirmed by the revalidation hook on this request: re-seal with the new
    /// `validated_at`.
    pub(crate) revalidated: bool,
    /// Refused by the revalidation hook: expire the cookies unless the handler starts a new
    /// session.
    pub(crate) dropped: bool,
}

/// Marks a request as handled by the middleware, with the worker's memo of opened sessions.
#[derive(Clone)]
pub(crate) struct Installed(pub(crate) Rc<Worker>);

impl Session {
    /// Reads `key` as `T`: `Ok(None)` when absent.
    ///
    /// # Errors
    /// The stored value is not a `T`: its bytes do not decode as one, or it was inserted with
    /// a type of another serde data model (checked by the fingerprint stored beside it, so an
    /// `i32` read as `u32` or a struct whose fields changed is an error, not a wrong value).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionGetError> {
        let mut inner = self.loaded();
        let Some(state) = inner.state.as_mut() else {
            return Ok(None);
        };
        state.get(key).map_err(|_| {
            tracing::debug!(
                key,
                requested = std::any::type_name::<T>(),
                "session value unreadable as the requested type"
            );
            SessionGetError {
                key: key.to_owned(),
            }
        })
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.loaded()
            .state
            .as_ref()
            .is_some_and(|s| s.entries.contains_key(key))
    }

    /// All entries as raw postcard bytes, in key order.
    pub fn entries(&self) -> Ref<'_, BTreeMap<String, Vec<u8>>> {
        drop(self.loaded());
        Ref::map(self.0.borrow(), |inner| match &inner.state {
            Some(state) => &state.entries,
            None => &EMPTY,
        })
    }

    /// Stores `value` under `key`, starting a session if there was none. The fingerprint of
    /// its serde data model goes beside it, so that [`Session::get`] with another type fails.
    ///
    /// # Errors
    /// `value` cannot be serialized by postcard.
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<String>,
        value: T,
    ) -> Result<(), SessionInsertError> {
        let key = key.into();
        let (fingerprint, bytes) =
            encode_value(&value).map_err(|_| SessionInsertError { key: key.clone() })?;
        let mut inner = self.loaded();
        let changed = inner
            .state_or_new()
            .insert_fingerprinted(key, fingerprint, bytes);
        if changed {
            inner.mark(SessionStatus::Changed);
        }
        Ok(())
    }

    /// Replaces the value of `key` with `updater(old)`; nothing happens when `key` is absent.
    ///
    /// # Errors
    /// The stored value is not a `T`, or the new value cannot be serialized.
    pub fn update<T, F>(&self, key: &str, updater: F) -> Result<(), SessionInsertError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(T) -> T,
    {
        match self.get::<T>(key) {
            Ok(Some(old)) => self.insert(key, updater(old)),
            Ok(None) => Ok(()),
            Err(_) => Err(SessionInsertError {
                key: key.to_owned(),
            }),
        }
    }

    /// Like [`Session::update`], inserting `default` when `key` is absent.
    ///
    /// # Errors
    /// As [`Session::update`].
    pub fn update_or<T, F>(
        &self,
        key: &str,
        default: T,
        updater: F,
    ) -> Result<(), SessionInsertError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce(T) -> T,
    {
        match self.get::<T>(key) {
            Ok(Some(old)) => self.insert(key, updater(old)),
            Ok(None) => self.insert(key, default),
            Err(_) => Err(SessionInsertError {
                key: key.to_owned(),
            }),
        }
    }

    /// Removes `key`, returning its raw postcard bytes.
    pub fn remove(&self, key: &str) -> Option<Vec<u8>> {
        let mut inner = self.loaded();
        let removed = inner.state.as_mut()?.remove(key);
        if removed.is_some() {
            inner.mark(SessionStatus::Changed);
        }
        removed
    }

    /// Removes `key` and decodes it as `T`; `Err` carries the raw bytes when they are not a `T`.
    pub fn remove_as<T: DeserializeOwned>(&self, key: &str) -> Option<Result<T, Vec<u8>>> {
        let mut inner = self.loaded();
        let removed = inner.state.as_mut()?.remove_as(key);
        if removed.is_some() {
            inner.mark(SessionStatus::Changed);
        }
        removed
    }

    /// Removes every entry; the session identity stays. Marks the session
    /// [`Changed`](SessionStatus::Changed) even when it held nothing, as actix-session does
    /// (a session that does not exist is still not written).
    pub fn clear(&self) {
        let mut inner = self.loaded();
        if let Some(state) = inner.state.as_mut() {
            state.clear();
        }
        inner.mark(SessionStatus::Changed);
    }

    /// Ends the session: every chunk cookie is expired on this response (logout). With a
    /// revocation list ([`SessionMiddlewareBuilder::revocation`](crate::SessionMiddlewareBuilder::revocation),
    /// feature `redis`) the session's id is also revoked on every node until its expiry, so a
    /// copy of the cookie stops working too.
    pub fn purge(&self) {
        let mut inner = self.loaded();
        #[cfg(feature = "redis")]
        if let (Some(state), Some(worker)) = (&inner.state, &inner.worker) {
            if let Some(list) = &worker.shared.revocation {
                list.revoke_session(state.id(), state.expires_at());
            }
        }
        inner.state = None;
        inner.status = SessionStatus::Purged;
    }

    /// Gives the session a new identity (random id, issued now, fresh absolute lifetime),
    /// keeping its entries. Call it whenever privileges change, above all at login, against
    /// session fixation: `session.clear(); session.renew();` then insert the user (read and
    /// re-insert any pre-login entry you mean to keep).
    pub fn renew(&self) {
        let mut inner = self.loaded();
        let (now, lifetime) = inner.clock();
        match inner.state.as_mut() {
            Some(state) => state.renew(now, lifetime),
            None => inner.state = Some(SessionState::new(now, lifetime)),
        }
        inner.mark(SessionStatus::Renewed);
    }

    /// What happened to the session so far in this request.
    pub fn status(&self) -> SessionStatus {
        self.0.borrow().status
    }

    /// The session's random id, if a session exists.
    pub fn id(&self) -> Option<[u8; 16]> {
        self.loaded().state.as_ref().map(SessionState::id)
    }

    /// A copy of the whole state (metadata and raw entries), if a session exists.
    pub fn state(&self) -> Option<SessionState> {
        self.loaded().state.clone()
    }

    /// The session of a request, creating the handle on first use: attached to the
    /// middleware's worker when the middleware wraps the request, detached otherwise.
    pub(crate) fn of(extensions: &mut Extensions, headers: &HeaderMap) -> Session {
        if let Some(session) = extensions.get::<Session>() {
            return session.clone();
        }
        let worker = extensions.get::<Installed>().map(|i| Rc::clone(&i.0));
        let cookie_headers = match worker {
            Some(_) => headers.get_all(COOKIE).cloned().collect(),
            None => Vec::new(),
        };
        let session = Session(Rc::new(RefCell::new(Inner {
            loaded: worker.is_none(),
            worker,
            cookie_headers,
            state: None,
            status: SessionStatus::Unchanged,
            needs_reseal: false,
            revalidated: false,
            dropped: false,
        })));
        extensions.insert(session.clone());
        session
    }

    /// Attaches a detached session that nothing has changed yet to the middleware now
    /// handling its request (e.g. a scope guard read the session before the scope's
    /// middleware ran): it will open the request's cookies on first use. `false` when it is
    /// attached already or holds changes (the caller then discards a detached one).
    pub(crate) fn attach(&self, worker: &Rc<Worker>, headers: &HeaderMap) -> bool {
        let mut inner = self.0.borrow_mut();
        if inner.worker.is_some()
            || inner.state.is_some()
            || inner.status != SessionStatus::Unchanged
        {
            return false;
        }
        inner.worker = Some(Rc::clone(worker));
        inner.cookie_headers = headers.get_all(COOKIE).cloned().collect();
        inner.loaded = false;
        true
    }

    /// Whether this session lives outside the middleware (nothing will be written).
    pub fn is_detached(&self) -> bool {
        self.0.borrow().worker.is_none()
    }

    /// The middleware's shared state; `None` for a detached session.
    pub(crate) fn shared(&self) -> Option<Arc<Shared>> {
        self.0
            .borrow()
            .worker
            .as_ref()
            .map(|w| Arc::clone(&w.shared))
    }

    /// Opens the cookies now if nothing did yet (the middleware's `OnEveryRequest` policy).
    pub(crate) fn load(&self) {
        drop(self.loaded());
    }

    /// Opens the cookies and returns the revalidation hook's future if the session is due for
    /// a check (see `Shared::revalidation_due`).
    pub(crate) fn revalidation_due(&self) -> Option<crate::middleware::RevalidationFuture> {
        let inner = self.loaded();
        let worker = inner.worker.as_ref()?;
        worker.shared.revalidation_due(inner.state.as_ref())
    }

    /// Applies the revalidation hook's answer before the handler runs.
    pub(crate) fn apply_revalidation(
        &self,
        answer: Result<bool, crate::middleware::RevalidationError>,
    ) {
        let mut inner = self.0.borrow_mut();
        let Some(shared) = inner.worker.as_ref().map(|w| Arc::clone(&w.shared)) else {
            return;
        };
        match shared.revalidation_verdict(answer) {
            Verdict::Confirmed => {
                let now = shared.now();
                if let Some(state) = inner.state.as_mut() {
                    state.mark_validated(now);
                    inner.revalidated = true;
                }
            }
            Verdict::Unconfirmed => {}
            Verdict::Dropped => {
                inner.state = None;
                inner.needs_reseal = false;
                inner.dropped = true;
            }
        }
    }

    pub(crate) fn inner(&self) -> std::cell::RefMut<'_, Inner> {
        self.0.borrow_mut()
    }

    /// Borrows the state, opening the cookies on first use.
    fn loaded(&self) -> std::cell::RefMut<'_, Inner> {
        let mut inner = self.0.borrow_mut();
        if !inner.loaded {
            inner.loaded = true;
            let Some(worker) = inner.worker.clone() else {
                return inner;
            };
            let headers = std::mem::take(&mut inner.cookie_headers);
            let opened = worker.shared.open(
                &worker.memo,
                cookie_pairs(headers.iter().map(HeaderValue::as_bytes)),
            );
            if let Some(opened) = opened {
                inner.needs_reseal = opened.needs_reseal;
                inner.state = Some(opened.state);
            }
        }
        inner
    }
}

impl Inner {
    fn state_or_new(&mut self) -> &mut SessionState {
        let (now, lifetime) = self.clock();
        self.state
            .get_or_insert_with(|| SessionState::new(now, lifetime))
    }

    /// Now and the absolute lifetime of a new identity: the middleware's, or the system clock
    /// and the default lifetime for a detached session.
    fn clock(&self) -> (SystemTime, Duration) {
        match &self.worker {
            Some(worker) => (
                worker.shared.now(),
                worker.shared.codec.config().session_lifetime(),
            ),
            None => (
                SystemTime::now(),
                SessionConfig::default().session_lifetime(),
            ),
        }
    }

    fn mark(&mut self, status: SessionStatus) {
        if self.status != SessionStatus::Purged
            && !(self.status == SessionStatus::Renewed && status == SessionStatus::Changed)
        {
            self.status = status;
        }
    }

    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }
}

static EMPTY: BTreeMap<String, Vec<u8>> = BTreeMap::new();

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Session, actix_web::Error>>;

    /// Never fails: outside the middleware the session is detached (as in actix-session),
    /// and a warning says that its changes will not be saved.
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        if session.is_detached() {
            tracing::warn!(
                "Session extractor used without SessionMiddleware on this route: the session is detached and its changes are not saved"
            );
        }
        ready(Ok(session))
    }
}

/// `get_session()` on requests, responses and guard contexts, as in actix-session.
pub trait SessionExt {
    /// The request's session. Outside [`SessionMiddleware`](crate::SessionMiddleware) it is
    /// a detached session (in memory only, never written), as in actix-session.
    fn get_session(&self) -> Session;
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> Session {
        Session::of(&mut self.extensions_mut(), self.headers())
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Session {
        Session::of(&mut self.extensions_mut(), self.headers())
    }
}

impl SessionExt for ServiceResponse {
    fn get_session(&self) -> Session {
        self.request().get_session()
    }
}

impl SessionExt for GuardContext<'_> {
    fn get_session(&self) -> Session {
        Session::of(&mut self.req_data_mut(), &self.head().headers)
    }
}
