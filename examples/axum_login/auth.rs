//! An `axum-login`-style identity layer on sealed sessions, in one file to copy into an app:
//! a backend that authenticates credentials and loads users, an [`AuthSession`] extractor
//! with `user`/`login`/`logout`, and a `login_required` guard.
//!
//! axum-login itself sits on tower-sessions' `Session` and a server-side store; here the
//! identity lives in the sealed cookie: the user's id, and a hash of what the user's
//! credentials were when they logged in (axum-login's `session_auth_hash`), so that changing
//! a password logs every other session of that user out at its next request, without any
//! server-side session list.

use std::future::Future;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use sealed_session::Session;
use serde::Serialize;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

/// Session key of the logged-in user's id.
const USER_ID: &str = "auth.id";
/// Session key of the user's credential hash at login.
const AUTH_HASH: &str = "auth.hash";

/// A user as the identity layer sees it (axum-login's `AuthUser`).
pub trait AuthUser: Clone + Send + Sync + 'static {
    /// What identifies the user in the session.
    type Id: Serialize + DeserializeOwned + Send + Sync;
    /// The user's id.
    fn id(&self) -> Self::Id;
    /// Bytes that change when the user's credentials change (e.g. their password hash):
    /// sessions made before the change are refused.
    fn session_auth_hash(&self) -> &[u8];
}

/// Where users come from (axum-login's `AuthnBackend`).
pub trait Backend: Clone + Send + Sync + 'static {
    /// The user type.
    type User: AuthUser;
    /// What a login form submits.
    type Credentials: Send;
    /// The user these credentials prove, if any.
    fn authenticate(
        &self,
        credentials: Self::Credentials,
    ) -> impl Future<Output = Option<Self::User>> + Send;
    /// The user with this id, if it still exists.
    fn get_user(
        &self,
        id: &<Self::User as AuthUser>::Id,
    ) -> impl Future<Output = Option<Self::User>> + Send;
}

/// The request's identity: the logged-in user (checked against the backend on every request)
/// and the session to log in or out with.
pub struct AuthSession<B: Backend> {
    /// The logged-in user, if any.
    pub user: Option<B::User>,
    /// The backend, to authenticate credentials.
    pub backend: B,
    session: Session,
}

impl<B: Backend> AuthSession<B> {
    /// The user these credentials prove, if any (nothing is logged in yet).
    pub async fn authenticate(&self, credentials: B::Credentials) -> Option<B::User> {
        self.backend.authenticate(credentials).await
    }

    /// Logs `user` in: a new session identity (no fixation), previous entries dropped.
    ///
    /// # Errors
    /// The user's id cannot be serialized.
    pub fn login(&mut self, user: &B::User) -> Result<(), sealed_session::SessionInsertError> {
        self.session.clear();
        self.session.renew();
        self.session.insert(USER_ID, user.id())?;
        self.session
            .insert(AUTH_HASH, user.session_auth_hash().to_vec())?;
        self.user = Some(user.clone());
        Ok(())
    }

    /// Logs out: every session cookie is expired on this response.
    pub fn logout(&mut self) -> Option<B::User> {
        self.session.purge();
        self.user.take()
    }
}

impl<S, B> FromRequestParts<S> for AuthSession<B>
where
    S: Send + Sync,
    B: Backend + FromRef<S>,
{
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let backend = B::from_ref(state);
        let mut user = None;
        if let Ok(Some(id)) = session.get::<<B::User as AuthUser>::Id>(USER_ID) {
            let hash: Vec<u8> = session.get(AUTH_HASH).ok().flatten().unwrap_or_default();
            match backend.get_user(&id).await {
                Some(found) if bool::from(found.session_auth_hash().ct_eq(&hash)) => {
                    user = Some(found);
                }
                // Deleted, or the credentials changed since this session logged in.
                _ => session.purge(),
            }
        }
        Ok(AuthSession {
            user,
            backend,
            session,
        })
    }
}

/// `axum::middleware::from_fn_with_state(state, login_required::<B>)`: a 401 for anyone not
/// logged in.
pub async fn login_required<B: Backend>(
    auth: AuthSession<B>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match auth.user {
        Some(_) => next.run(request).await,
        None => (StatusCode::UNAUTHORIZED, "log in first\n").into_response(),
    }
}
