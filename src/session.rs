//! The actix-web side of [`Session`]: the extractor and `get_session()`, as in actix-session.
//! The handle itself and all its logic live in the shared engine (`engine::handle`).

use std::cell::OnceCell;
use std::sync::Arc;

use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::guard::GuardContext;
use actix_web::http::header::{COOKIE, HeaderMap};
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use std::future::{Ready, ready};

use crate::Session;
use crate::engine::{RawCookies, Worker};

/// Marks a request as handled by the middleware, with the worker's memo of opened sessions,
/// and holds the request's session once something asks for it: one request extension for
/// both (each costs an allocation and a map operation).
pub(crate) struct Installed {
    worker: Arc<Worker>,
    session: OnceCell<Session>,
}

impl Installed {
    pub(crate) fn new(worker: Arc<Worker>) -> Self {
        Installed {
            worker,
            session: OnceCell::new(),
        }
    }

    /// Makes `session` (an early one, now attached) the request's session.
    pub(crate) fn adopt(&self, session: Session) {
        let _ = self.session.set(session);
    }

    /// The request's session, if one was made.
    pub(crate) fn into_session(self) -> Option<Session> {
        self.session.into_inner()
    }

    /// Takes the request's session out, for the middleware's way out.
    pub(crate) fn take_session(extensions: &mut Extensions) -> Option<Session> {
        extensions.get_mut::<Installed>()?.session.take()
    }
}

/// The request's `Cookie` header values (reference counts, no copy).
pub(crate) fn cookies_of(headers: &HeaderMap) -> RawCookies {
    let mut values = headers.get_all(COOKIE);
    match (values.next(), values.next()) {
        (None, _) => RawCookies::None,
        (Some(one), None) => RawCookies::ActixOne(one.clone()),
        (Some(first), Some(second)) => {
            RawCookies::Actix([first, second].into_iter().chain(values).cloned().collect())
        }
    }
}

impl Session {
    /// The session of a request, creating the handle on first use: attached to the
    /// middleware's worker when the middleware wraps the request, detached otherwise.
    pub(crate) fn of(extensions: &mut Extensions, headers: &HeaderMap) -> Session {
        if let Some(installed) = extensions.get::<Installed>() {
            return installed
                .session
                .get_or_init(|| {
                    Session::new(Some(Arc::clone(&installed.worker)), cookies_of(headers))
                })
                .clone();
        }
        // Detached: kept as its own extension, for the middleware to attach if it runs later.
        if let Some(session) = extensions.get::<Session>() {
            return session.clone();
        }
        let session = Session::new(None, RawCookies::None);
        extensions.insert(session.clone());
        session
    }
}

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
