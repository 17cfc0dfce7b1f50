//! The actix-web middleware: thin glue over the shared request path (`engine`). On the way in
//! it only marks the request; on the way out it asks the engine what the session needs
//! (sealed again when it changed, was renewed, must move to the sealing key or is due for idle
//! renewal; every chunk the request carried that the new session does not use expired) and
//! writes it. A session over budget turns the response into an empty 500 and leaves the
//! client's cookies untouched.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::HttpMessage;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::{CACHE_CONTROL, HeaderValue, SET_COOKIE};
use actix_web::{HttpResponseBuilder, http::StatusCode};
use std::future::{Ready, ready};

use crate::engine::{Engine, Outcome, SessionBuilder, Worker, private_cache_control};
use crate::error::ConfigError;
use crate::keyring::Keyring;
use crate::session::{Installed, cookies_of};
use crate::{Session, SessionStats};

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
    engine: Engine,
}

/// Builds a [`SessionMiddleware`]: the shared [`SessionBuilder`].
pub type SessionMiddlewareBuilder = SessionBuilder<SessionMiddleware>;

impl SessionMiddleware {
    /// A middleware with the default configuration and a fixed keyring.
    ///
    /// # Errors
    /// Never with the defaults; kept fallible like [`SessionBuilder::build`].
    pub fn new(keyring: Keyring) -> Result<Self, ConfigError> {
        Self::builder(keyring).build()
    }

    /// A builder with secure defaults (see [`SessionConfig`](crate::SessionConfig)) and a
    /// fixed keyring.
    pub fn builder(keyring: Keyring) -> SessionMiddlewareBuilder {
        SessionBuilder::fixed(keyring)
    }

    /// A builder whose keyring is the file at `path`, re-read when it changes (every
    /// `poll_interval`, see [`SessionBuilder::reload_interval`]). A missing, half-written or
    /// invalid file never replaces a good keyring.
    ///
    /// # Errors
    /// The file cannot be loaded now.
    pub fn builder_from_file(
        path: impl Into<PathBuf>,
    ) -> Result<SessionMiddlewareBuilder, crate::KeyringError> {
        SessionBuilder::from_file(path)
    }

    /// Counters of what the middleware saw, shared by every clone.
    pub fn stats(&self) -> Arc<SessionStats> {
        Arc::clone(&self.engine.stats)
    }

    /// The keyring in force now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.engine.keyring()
    }
}

impl SessionBuilder<SessionMiddleware> {
    /// Validates the configuration and builds the middleware.
    ///
    /// # Errors
    /// An unsafe or impossible combination, with a message that says what to change.
    pub fn build(self) -> Result<SessionMiddleware, ConfigError> {
        Ok(SessionMiddleware {
            engine: self.engine()?,
        })
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
        // One memo per worker: a worker is one thread, so its lock is never contended.
        let worker = self.engine.worker();
        ready(Ok(SessionService {
            service: Rc::new(service),
            worker,
        }))
    }
}

/// The per-worker service produced by [`SessionMiddleware`].
pub struct SessionService<S> {
    service: Rc<S>,
    worker: Arc<Worker>,
}

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
        let installed = Installed::new(Arc::clone(&self.worker));
        // A session made before this middleware saw the request (a scope guard, an outer
        // middleware) is detached: attach it, or drop it if it already holds changes. One of
        // an enclosing SessionMiddleware stays the request's session.
        if let Some(early) = extensions.remove::<Session>() {
            if !early.is_detached() || early.attach(&self.worker, || cookies_of(req.headers())) {
                installed.adopt(early);
            } else {
                tracing::warn!(
                    "a session changed before SessionMiddleware ran is discarded; wrap the middleware further out"
                );
            }
        } else if let Some(outer) = extensions.remove::<Installed>() {
            if let Some(session) = outer.into_session() {
                installed.adopt(session);
            }
        }
        extensions.insert(installed);
        // Revocation level 2: a session due for revalidation is checked before the handler
        // sees it, so it is opened now; only then is the handler's future boxed.
        let due = if self.worker.shared.revalidation.is_some() {
            let session = Session::of(&mut extensions, req.headers());
            session.revalidation_due().map(|check| (session, check))
        } else {
            None
        };
        drop(extensions);
        let every_request = self.worker.shared.every_request();
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
        let session = Installed::take_session(&mut res.request().extensions_mut());
        let session = match session {
            Some(session) => session,
            None if *this.every_request => {
                let req = res.request();
                Session::of(&mut req.extensions_mut(), req.headers());
                let taken = Installed::take_session(&mut req.extensions_mut());
                match taken {
                    Some(session) => session,
                    None => return Poll::Ready(Ok(res.map_into_left_body())),
                }
            }
            None => return Poll::Ready(Ok(res.map_into_left_body())),
        };
        let Some(worker) = session.worker() else {
            // Detached: made before this middleware saw the request; nothing to write.
            return Poll::Ready(Ok(res.map_into_left_body()));
        };
        Poll::Ready(match worker.finish(&session) {
            Outcome::Untouched => Ok(res.map_into_left_body()),
            Outcome::Write(lines) => {
                write_lines(lines, &mut res).map(|()| res.map_into_left_body())
            }
            Outcome::Overflow => {
                let empty = HttpResponseBuilder::new(StatusCode::INTERNAL_SERVER_ERROR).finish();
                Ok(res.into_response(empty).map_into_right_body())
            }
        })
    }
}

/// Appends the session's `Set-Cookie` lines and makes the response private to caches.
fn write_lines<B>(
    lines: Vec<String>,
    res: &mut ServiceResponse<B>,
) -> Result<(), actix_web::Error> {
    let headers = res.response_mut().headers_mut();
    for line in lines {
        let value =
            HeaderValue::try_from(line).map_err(actix_web::error::ErrorInternalServerError)?;
        headers.append(SET_COOKIE, value);
    }
    let existing = headers.get(CACHE_CONTROL).map(HeaderValue::as_bytes);
    let value = match private_cache_control(existing) {
        Some(std::borrow::Cow::Borrowed(value)) => Some(HeaderValue::from_static(value)),
        Some(std::borrow::Cow::Owned(value)) => HeaderValue::from_str(&value).ok(),
        None => None,
    };
    if let Some(value) = value {
        headers.insert(CACHE_CONTROL, value);
    }
    Ok(())
}

impl std::fmt::Debug for SessionMiddleware {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("config", self.engine.codec.config())
            .finish_non_exhaustive()
    }
}
