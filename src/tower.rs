//! The tower adapter (feature `tower`): a [`Layer`] and [`Service`] over `http` 1.x requests
//! and responses, thin glue over the shared request path (`engine`), with the same semantics
//! as the actix-web middleware. With feature `axum`, [`Session`] is an axum extractor.
//!
//! On the way in the service hands the request's `Cookie` header values to a new [`Session`]
//! in the request's extensions (nothing is opened yet); on the way out it asks the engine
//! what to write: `Set-Cookie` lines and `Cache-Control: private`, or an empty 500 (the
//! body type's `Default`) when the session does not fit, leaving the client's cookies
//! untouched.
//!
//! Without axum, a tower service reads the handle with
//! `req.extensions().get::<sealed_session::Session>()`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{CACHE_CONTROL, COOKIE, HeaderValue, SET_COOKIE};
use http::{Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::engine::{Engine, Outcome, RawCookies, SessionBuilder, Worker, private_cache_control};
use crate::error::ConfigError;
use crate::keyring::Keyring;
use crate::{Session, SessionStats};

/// Stateless cookie sessions for a tower service or an axum router: `.layer(sessions)`.
///
/// Clones share one keyring, one set of counters and one memo of opened sessions, split in
/// shards (one per core) so threads of a multi-threaded runtime rarely wait for each other.
///
/// # Examples
/// ```
/// # #[cfg(feature = "axum")] {
/// use std::time::SystemTime;
///
/// use axum::{Router, routing::get};
/// use sealed_session::{Algorithm, Keyring, Session, SessionLayer};
///
/// let keyring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
/// let sessions = SessionLayer::builder(keyring).build().unwrap();
/// let app: Router = Router::new()
///     .route(
///         "/visit",
///         get(|session: Session| async move {
///             let n = session.get::<u32>("visits").ok().flatten().unwrap_or(0) + 1;
///             session.insert("visits", n).map(|()| n.to_string()).map_err(|_| {
///                 axum::http::StatusCode::INTERNAL_SERVER_ERROR
///             })
///         }),
///     )
///     .layer(sessions);
/// # let _ = app;
/// # }
/// ```
#[derive(Clone)]
pub struct SessionLayer {
    engine: Engine,
    shards: Arc<[Arc<Worker>]>,
}

/// Builds a [`SessionLayer`]: the shared [`SessionBuilder`], with the same setters as
/// [`SessionMiddlewareBuilder`](crate::SessionBuilder).
pub type SessionLayerBuilder = SessionBuilder<SessionLayer>;

impl SessionLayer {
    /// A layer with the default configuration and a fixed keyring.
    ///
    /// # Errors
    /// Never with the defaults; kept fallible like the builder.
    pub fn new(keyring: Keyring) -> Result<Self, ConfigError> {
        Self::builder(keyring).build()
    }

    /// A builder with secure defaults (see [`SessionConfig`](crate::SessionConfig)) and a
    /// fixed keyring.
    pub fn builder(keyring: Keyring) -> SessionLayerBuilder {
        SessionBuilder::fixed(keyring)
    }

    /// A builder whose keyring is the file at `path`, re-read when it changes (see
    /// [`SessionBuilder::reload_interval`]). A missing, half-written or invalid file never
    /// replaces a good keyring.
    ///
    /// # Errors
    /// The file cannot be loaded now.
    pub fn builder_from_file(
        path: impl Into<PathBuf>,
    ) -> Result<SessionLayerBuilder, crate::KeyringError> {
        SessionBuilder::from_file(path)
    }

    /// Counters of what the layer saw, shared by every clone.
    pub fn stats(&self) -> Arc<SessionStats> {
        Arc::clone(&self.engine.stats)
    }

    /// The keyring in force now.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.engine.keyring()
    }

    /// The memo shard of the calling thread.
    fn worker(&self) -> Arc<Worker> {
        let i = shard_index() % self.shards.len().max(1);
        match self.shards.get(i) {
            Some(worker) => Arc::clone(worker),
            // Unreachable: there is always at least one shard.
            None => self.engine.worker(),
        }
    }
}

/// Most memo shards: threads beyond it share.
const MAX_SHARDS: usize = 64;

/// The calling thread's shard number, handed out in turn on a thread's first request.
fn shard_index() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<Option<usize>> = const { Cell::new(None) };
    }
    SHARD.with(|shard| match shard.get() {
        Some(i) => i,
        None => {
            let i = NEXT.fetch_add(1, Ordering::Relaxed);
            shard.set(Some(i));
            i
        }
    })
}

impl SessionBuilder<SessionLayer> {
    /// Validates the configuration and builds the layer.
    ///
    /// # Errors
    /// An unsafe or impossible combination, with a message that says what to change.
    pub fn build(self) -> Result<SessionLayer, ConfigError> {
        let engine = self.engine()?;
        let shards = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .clamp(1, MAX_SHARDS);
        let shards = (0..shards).map(|_| engine.worker()).collect();
        Ok(SessionLayer { engine, shards })
    }
}

impl std::fmt::Debug for SessionLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("config", self.engine.codec.config())
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionLayerService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionLayerService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service produced by [`SessionLayer`].
#[derive(Clone)]
pub struct SessionLayerService<S> {
    inner: S,
    layer: SessionLayer,
}

impl<S> std::fmt::Debug for SessionLayerService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayerService")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionLayerService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = SessionLayerFuture<S::Future, Result<Response<ResBody>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        let mut values = req.headers().get_all(COOKIE).iter();
        let cookies = match (values.next(), values.next()) {
            (None, _) => RawCookies::None,
            (Some(one), None) => RawCookies::HttpOne(one.clone()),
            _ => RawCookies::Http(req.headers().get_all(COOKIE).iter().cloned().collect()),
        };
        let session = Session::new(Some(self.layer.worker()), cookies);
        if req.extensions_mut().insert(session.clone()).is_some() {
            tracing::warn!(
                "two SessionLayers wrap this request; the inner one's session replaces the outer one's"
            );
        }
        // Revocation level 2: a session due for revalidation is checked before the handler
        // sees it (the inner service is then called from a boxed future).
        let due = match self.layer.engine.revalidation {
            Some(_) => session.revalidation_due(),
            None => None,
        };
        let Some(check) = due else {
            return SessionLayerFuture {
                fut: Inner::Direct {
                    fut: self.inner.call(req),
                },
                session: Some(session),
            };
        };
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let handle = session.clone();
        SessionLayerFuture {
            fut: Inner::Revalidating {
                fut: Box::pin(async move {
                    handle.apply_revalidation(check.await);
                    inner.call(req).await
                }),
            },
            session: Some(session),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`SessionLayerService`]: the inner future, unboxed (boxed only
    /// when a revalidation hook must run first).
    pub struct SessionLayerFuture<F, O> {
        #[pin]
        fut: Inner<F, O>,
        session: Option<Session>,
    }
}

pin_project_lite::pin_project! {
    #[project = InnerProj]
    enum Inner<F, O> {
        Direct { #[pin] fut: F },
        Revalidating { fut: Pin<Box<dyn Future<Output = O> + Send>> },
    }
}

impl<F, ResBody, E> Future for SessionLayerFuture<F, Result<Response<ResBody>, E>>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, E>;

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
        let Some(session) = this.session.take() else {
            return Poll::Ready(Ok(res));
        };
        let Some(worker) = session.worker() else {
            return Poll::Ready(Ok(res));
        };
        Poll::Ready(Ok(match worker.finish(&session) {
            Outcome::Untouched => res,
            Outcome::Write(lines) => {
                if write_lines(lines, &mut res) {
                    res
                } else {
                    internal_error()
                }
            }
            Outcome::Overflow => internal_error(),
        }))
    }
}

/// The empty 500 that replaces a response whose session cannot be written.
fn internal_error<B: Default>() -> Response<B> {
    let mut res = Response::new(B::default());
    *res.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    res
}

/// Appends the session's `Set-Cookie` lines and makes the response private to caches;
/// `false` (nothing written) when a line is not a valid header value.
fn write_lines<B>(lines: Vec<String>, res: &mut Response<B>) -> bool {
    let mut values = Vec::with_capacity(lines.len());
    for line in lines {
        match HeaderValue::try_from(line) {
            Ok(value) => values.push(value),
            Err(_) => {
                tracing::error!("a session cookie line is not a valid header value; answering 500");
                return false;
            }
        }
    }
    let headers = res.headers_mut();
    for value in values {
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
    true
}

#[cfg(feature = "axum")]
mod extract {
    use axum_core::extract::FromRequestParts;
    use http::StatusCode;
    use http::request::Parts;

    use crate::Session;

    /// The request's session, put there by [`SessionLayer`](crate::SessionLayer).
    impl<S: Send + Sync> FromRequestParts<S> for Session {
        /// Without the layer the route is misconfigured: a 500, and an error in the log,
        /// rather than a session whose changes are silently lost.
        type Rejection = (StatusCode, &'static str);

        async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
            match parts.extensions.get::<Session>() {
                Some(session) => Ok(session.clone()),
                None => {
                    tracing::error!(
                        "Session extractor used without SessionLayer on this route; add `.layer(SessionLayer)` to the router"
                    );
                    Err((StatusCode::INTERNAL_SERVER_ERROR, "session layer missing"))
                }
            }
        }
    }
}
