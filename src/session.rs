//! The [`Session`] handle and extractor, with actix-session's API.
//!
//! The cookies are opened only when a handler first touches the session; a request that
//! never does pays for nothing but the middleware's bookkeeping.

use std::cell::{Ref, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::{Extensions, Payload, ServiceRequest};
use actix_web::http::header::{COOKIE, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::{Ready, ready};

use crate::codec::cookie_pairs;
use crate::error::{SessionGetError, SessionInsertError};
use crate::middleware::{Shared, Worker};
use crate::state::{SessionState, decode_value};

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
/// Values are stored with postcard, so `get` must name the type that was inserted.
#[derive(Clone)]
pub struct Session(Rc<RefCell<Inner>>);

pub(crate) struct Inner {
    worker: Rc<Worker>,
    cookie_headers: Vec<HeaderValue>,
    loaded: bool,
    pub(crate) state: Option<SessionState>,
    pub(crate) status: SessionStatus,
    /// Opened under a key that no longer seals.
    pub(crate) needs_reseal: bool,
}

/// Marks a request as handled by the middleware, with the worker's memo of opened sessions.
#[derive(Clone)]
pub(crate) struct Installed(pub(crate) Rc<Worker>);

impl Session {
    /// Reads `key` as `T`: `Ok(None)` when absent.
    ///
    /// # Errors
    /// The stored bytes are not a `T` (postcard is not self-describing: use the inserted type).
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, SessionGetError> {
        let mut inner = self.loaded();
        let Some(state) = inner.state.as_mut() else {
            return Ok(None);
        };
        state.get(key).map_err(|_| SessionGetError {
            key: key.to_owned(),
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

    /// Stores `value` under `key`, starting a session if there was none.
    ///
    /// # Errors
    /// `value` cannot be serialized by postcard.
    pub fn insert<T: Serialize>(
        &self,
        key: impl Into<String>,
        value: T,
    ) -> Result<(), SessionInsertError> {
        let key = key.into();
        let bytes =
            postcard::to_allocvec(&value).map_err(|_| SessionInsertError { key: key.clone() })?;
        let mut inner = self.loaded();
        let changed = inner.state_or_new().insert_raw(key, bytes);
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
        self.remove(key)
            .map(|bytes| decode_value(&bytes).map_err(|_| bytes))
    }

    /// Removes every entry; the session identity stays.
    pub fn clear(&self) {
        let mut inner = self.loaded();
        if let Some(state) = inner.state.as_mut() {
            if !state.entries.is_empty() {
                state.clear();
                inner.mark(SessionStatus::Changed);
            }
        }
    }

    /// Ends the session: every chunk cookie is expired on this response (logout).
    pub fn purge(&self) {
        let mut inner = self.loaded();
        inner.state = None;
        inner.status = SessionStatus::Purged;
    }

    /// Gives the session a new identity (random id, issued now, fresh absolute lifetime),
    /// keeping its entries. Call it whenever privileges change, above all at login, against
    /// session fixation: `session.clear(); session.renew();` then insert the user (read and
    /// re-insert any pre-login entry you mean to keep).
    pub fn renew(&self) {
        let mut inner = self.loaded();
        let now = inner.worker.shared.now();
        let lifetime = inner.worker.shared.codec.config().session_lifetime();
        let mut rng = crate::codec::ForkSafeRng;
        match inner.state.as_mut() {
            Some(state) => state.renew(now, lifetime, &mut rng),
            None => inner.state = Some(SessionState::new(now, lifetime, &mut rng)),
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

    /// The session of a request, creating the handle on first use.
    pub(crate) fn of(
        extensions: &mut Extensions,
        headers: impl FnOnce() -> Vec<HeaderValue>,
    ) -> Option<Session> {
        if let Some(session) = extensions.get::<Session>() {
            return Some(session.clone());
        }
        let Installed(worker) = extensions.get::<Installed>()?.clone();
        let session = Session(Rc::new(RefCell::new(Inner {
            worker,
            cookie_headers: headers(),
            loaded: false,
            state: None,
            status: SessionStatus::Unchanged,
            needs_reseal: false,
        })));
        extensions.insert(session.clone());
        Some(session)
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.0.borrow().worker.shared)
    }

    pub(crate) fn inner(&self) -> std::cell::RefMut<'_, Inner> {
        self.0.borrow_mut()
    }

    /// Borrows the state, opening the cookies on first use.
    fn loaded(&self) -> std::cell::RefMut<'_, Inner> {
        let mut inner = self.0.borrow_mut();
        if !inner.loaded {
            inner.loaded = true;
            let worker = Rc::clone(&inner.worker);
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
        let shared = &self.worker.shared;
        self.state.get_or_insert_with(|| {
            SessionState::new(
                shared.now(),
                shared.codec.config().session_lifetime(),
                &mut crate::codec::ForkSafeRng,
            )
        })
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

fn cookie_headers(req: &HttpRequest) -> Vec<HeaderValue> {
    req.headers().get_all(COOKIE).cloned().collect()
}

impl FromRequest for Session {
    type Error = actix_web::Error;
    type Future = Ready<Result<Session, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.get_session().ok_or_else(|| {
            tracing::error!("Session extractor used without SessionMiddleware on this route");
            actix_web::error::ErrorInternalServerError("")
        }))
    }
}

/// `req.get_session()` for requests inside the middleware, as in actix-session.
pub trait SessionExt {
    /// The request's session; `None` when [`SessionMiddleware`](crate::SessionMiddleware)
    /// does not wrap this route.
    fn get_session(&self) -> Option<Session>;
}

impl SessionExt for HttpRequest {
    fn get_session(&self) -> Option<Session> {
        Session::of(&mut self.extensions_mut(), || cookie_headers(self))
    }
}

impl SessionExt for ServiceRequest {
    fn get_session(&self) -> Option<Session> {
        Session::of(&mut self.extensions_mut(), || {
            self.headers().get_all(COOKIE).cloned().collect()
        })
    }
}
