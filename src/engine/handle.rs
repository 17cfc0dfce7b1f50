//! The [`Session`] handle, with actix-session's API, shared by every adapter.
//!
//! The cookies are opened only when a handler first touches the session; a request that
//! never does pays for nothing but the adapter's bookkeeping. The handle is `Send + Sync`
//! (axum handlers' futures must be `Send`): one uncontended mutex per request.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Worker;
use crate::codec::cookie_pairs;
use crate::config::SessionConfig;
use crate::error::{SessionGetError, SessionInsertError};
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

/// The request's `Cookie` header values, as the framework handed them over (a reference
/// count each, no copy).
#[derive(Default)]
pub(crate) enum RawCookies {
    /// None kept (a detached session, or already used).
    #[default]
    None,
    /// One actix-web (http 0.2) header value: the usual case, kept without a `Vec`.
    #[cfg(feature = "actix")]
    ActixOne(actix_web::http::header::HeaderValue),
    /// Several actix-web header values.
    #[cfg(feature = "actix")]
    Actix(Vec<actix_web::http::header::HeaderValue>),
    /// One http 1.x header value (tower, axum): the usual case, kept without a `Vec`.
    #[cfg(feature = "tower")]
    HttpOne(http::HeaderValue),
    /// Several http 1.x header values (HTTP/2 may split the `Cookie` header).
    #[cfg(feature = "tower")]
    Http(Vec<http::HeaderValue>),
}

impl RawCookies {
    /// Each header value's bytes (no allocation: one slice per framework, all but one empty).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        #[cfg(feature = "actix")]
        let actix: &[actix_web::http::header::HeaderValue] = match self {
            RawCookies::ActixOne(value) => std::slice::from_ref(value),
            RawCookies::Actix(values) => values,
            _ => &[],
        };
        #[cfg(not(feature = "actix"))]
        let actix: &[&[u8]] = &[];
        #[cfg(feature = "tower")]
        let http: &[http::HeaderValue] = match self {
            RawCookies::HttpOne(value) => std::slice::from_ref(value),
            RawCookies::Http(values) => values,
            _ => &[],
        };
        #[cfg(not(feature = "tower"))]
        let http: &[&[u8]] = &[];
        actix
            .iter()
            .map(AsRef::<[u8]>::as_ref)
            .chain(http.iter().map(AsRef::<[u8]>::as_ref))
    }
}

/// The session of the current request. Cheap to clone; all clones share one state.
///
/// Values are stored with postcard, so `get` must name the type that was inserted; another
/// type (another serde data model) is an error, never a wrong value (docs/FORMAT.md §6.1).
///
/// Outside the middleware (a unit test's `TestRequest`, a route the middleware does not
/// wrap) the session is *detached*, as in actix-session: it starts empty, works in memory,
/// and nothing is ever written to the response.
///
/// The same type serves actix-web (extractor, `SessionExt`) and axum (extractor, feature
/// `axum`); it is `Send + Sync`.
///
/// # Examples
/// A handler takes `Session` as an extractor; at a privilege change (login) it gives the
/// session a new identity:
/// ```
/// # #[cfg(feature = "actix")] {
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
/// # }
/// ```
#[derive(Clone)]
pub struct Session(Arc<Mutex<Inner>>);

pub(crate) struct Inner {
    /// `None` for a detached session.
    worker: Option<Arc<Worker>>,
    /// The request's cookies: opened on first use, and the chunks to expire on the way out.
    pub(crate) cookies: RawCookies,
    loaded: bool,
    pub(crate) state: Option<SessionState>,
    pub(crate) status: SessionStatus,
    /// Which of our chunks the request carried, once the cookies were opened.
    pub(crate) present: Option<crate::codec::ChunkSet>,
    /// Opened under a key that no longer seals.
    pub(crate) needs_reseal: bool,
    /// Confirmed by the revalidation hook on this request: re-seal with the new
    /// `validated_at`.
    pub(crate) revalidated: bool,
    /// Refused by the revalidation hook: expire the cookies unless the handler starts a new
    /// session.
    pub(crate) dropped: bool,
}

/// The session's entries, borrowed from the handle (see [`Session::entries`]). Holding it
/// blocks every other use of the session: drop it before touching the session again.
pub struct Entries<'a>(MutexGuard<'a, Inner>);

impl Deref for Entries<'_> {
    type Target = BTreeMap<String, Vec<u8>>;

    fn deref(&self) -> &Self::Target {
        match &self.0.state {
            Some(state) => &state.entries,
            None => &EMPTY,
        }
    }
}

impl std::fmt::Debug for Entries<'_> {
    /// The keys only: sessions hold user data.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl Session {
    /// A session for a request the middleware handles (`worker`), over its `Cookie` header
    /// values; or a detached one (`None`).
    pub(crate) fn new(worker: Option<Arc<Worker>>, cookies: RawCookies) -> Session {
        Session(Arc::new(Mutex::new(Inner {
            loaded: worker.is_none(),
            worker,
            cookies,
            state: None,
            status: SessionStatus::Unchanged,
            present: None,
            needs_reseal: false,
            revalidated: false,
            dropped: false,
        })))
    }

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

    /// All entries as raw postcard bytes, in key order. The session is locked while the
    /// returned guard lives: drop it before calling another method of this session, which
    /// would otherwise wait for it forever.
    pub fn entries(&self) -> Entries<'_> {
        Entries(self.loaded())
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
    /// revocation list ([`SessionBuilder::revocation`](crate::SessionBuilder::revocation),
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
        self.lock().status
    }

    /// The session's random id, if a session exists.
    pub fn id(&self) -> Option<[u8; 16]> {
        self.loaded().state.as_ref().map(SessionState::id)
    }

    /// A copy of the whole state (metadata and raw entries), if a session exists.
    pub fn state(&self) -> Option<SessionState> {
        self.loaded().state.clone()
    }

    /// Whether this session lives outside the middleware (nothing will be written).
    pub fn is_detached(&self) -> bool {
        self.lock().worker.is_none()
    }

    /// Attaches a detached session that nothing has changed yet to the middleware now
    /// handling its request (e.g. a scope guard read the session before the scope's
    /// middleware ran): it will open the request's cookies on first use. `false` when it is
    /// attached already or holds changes (the caller then discards a detached one).
    #[cfg(feature = "actix")]
    pub(crate) fn attach(
        &self,
        worker: &Arc<Worker>,
        cookies: impl FnOnce() -> RawCookies,
    ) -> bool {
        let mut inner = self.lock();
        if inner.worker.is_some()
            || inner.state.is_some()
            || inner.status != SessionStatus::Unchanged
        {
            return false;
        }
        inner.worker = Some(Arc::clone(worker));
        inner.cookies = cookies();
        inner.loaded = false;
        true
    }

    /// The middleware's memo and shared state; `None` for a detached session.
    pub(crate) fn worker(&self) -> Option<Arc<Worker>> {
        self.lock().worker.clone()
    }

    /// Opens the cookies and returns the revalidation hook's future if the session is due for
    /// a check (see `Shared::revalidation_due`).
    pub(crate) fn revalidation_due(&self) -> Option<super::RevalidationFuture> {
        let inner = self.loaded();
        let worker = inner.worker.as_ref()?;
        worker.shared.revalidation_due(inner.state.as_ref())
    }

    /// Applies the revalidation hook's answer before the handler runs.
    pub(crate) fn apply_revalidation(&self, answer: Result<bool, super::RevalidationError>) {
        let mut inner = self.lock();
        let Some(shared) = inner.worker.as_ref().map(|w| Arc::clone(&w.shared)) else {
            return;
        };
        match shared.revalidation_verdict(answer) {
            super::Verdict::Confirmed => {
                let now = shared.now();
                if let Some(state) = inner.state.as_mut() {
                    state.mark_validated(now);
                    inner.revalidated = true;
                }
            }
            super::Verdict::Unconfirmed => {}
            super::Verdict::Dropped => {
                inner.state = None;
                inner.needs_reseal = false;
                inner.dropped = true;
            }
        }
    }

    /// Opens the cookies now if nothing did yet (the `OnEveryRequest` policy).
    pub(crate) fn load(&self) {
        drop(self.loaded());
    }

    /// Locks the state without opening anything. A handler that panicked while holding the
    /// lock leaves a state that is still consistent (every method changes it in one step),
    /// so a poisoned lock is used as is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the state, opening the cookies on first use (through [`Worker::open`], the one
    /// open path of every adapter).
    fn loaded(&self) -> MutexGuard<'_, Inner> {
        let mut inner = self.lock();
        if !inner.loaded {
            inner.loaded = true;
            let Some(worker) = inner.worker.clone() else {
                return inner;
            };
            let mut present = crate::codec::ChunkSet::default();
            let opened = worker.open(cookie_pairs(inner.cookies.iter()), &mut present);
            inner.present = Some(present);
            if let Some(opened) = opened {
                inner.needs_reseal = opened.needs_reseal;
                inner.state = Some(opened.state);
            }
        }
        inner
    }
}

impl std::fmt::Debug for Session {
    /// The status and whether it is attached, never the values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Session")
            .field("status", &inner.status)
            .field("detached", &inner.worker.is_none())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn state_or_new(&mut self) -> &mut SessionState {
        // The clock is read only when a new session is made (each read costs a vDSO call,
        // a system call on some hosts); the closure below runs in that case only.
        let (now, lifetime) = if self.state.is_none() {
            self.clock()
        } else {
            (SystemTime::UNIX_EPOCH, Duration::ZERO)
        };
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

#[cfg(test)]
mod tests {
    use super::Session;

    #[test]
    fn the_handle_is_send_and_sync() {
        fn check<T: Send + Sync + 'static>() {}
        check::<Session>();
    }
}
