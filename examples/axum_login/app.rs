//! The identity example's app (routes, users, backend), shared with its test
//! (tests/tower/companions.rs).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sealed_session::SessionLayer;
use serde::Deserialize;

use super::auth::{AuthSession, AuthUser, Backend, login_required};

/// A user. A real app stores a password hash (argon2) and uses it as the auth hash.
#[derive(Clone)]
pub struct User {
    name: String,
    password: String,
}

impl AuthUser for User {
    type Id = String;
    fn id(&self) -> String {
        self.name.clone()
    }
    fn session_auth_hash(&self) -> &[u8] {
        self.password.as_bytes()
    }
}

/// Users in memory, by name.
#[derive(Clone, Default)]
pub struct Users(Arc<RwLock<HashMap<String, User>>>);

impl Users {
    /// Adds a user or changes their password.
    pub fn set(&self, name: &str, password: &str) {
        let user = User {
            name: name.to_owned(),
            password: password.to_owned(),
        };
        if let Ok(mut users) = self.0.write() {
            users.insert(name.to_owned(), user);
        }
    }

    fn find(&self, name: &str) -> Option<User> {
        self.0.read().ok()?.get(name).cloned()
    }
}

/// `?user=…&password=…`
#[derive(Deserialize)]
pub struct Credentials {
    user: String,
    password: String,
}

impl Backend for Users {
    type User = User;
    type Credentials = Credentials;

    async fn authenticate(&self, c: Credentials) -> Option<User> {
        use subtle::ConstantTimeEq as _;
        let user = self.find(&c.user)?;
        bool::from(user.password.as_bytes().ct_eq(c.password.as_bytes())).then_some(user)
    }

    async fn get_user(&self, id: &String) -> Option<User> {
        self.find(id)
    }
}

async fn login(mut auth: AuthSession<Users>, Query(c): Query<Credentials>) -> Response {
    let Some(user) = auth.authenticate(c).await else {
        return (StatusCode::UNAUTHORIZED, "wrong user or password\n").into_response();
    };
    match auth.login(&user) {
        Ok(()) => format!("logged in as {}\n", user.name).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn logout(mut auth: AuthSession<Users>) -> &'static str {
    auth.logout();
    "logged out\n"
}

async fn protected(auth: AuthSession<Users>) -> String {
    let name = auth.user.map(|u| u.name).unwrap_or_default();
    format!("hello {name}\n")
}

#[derive(Deserialize)]
struct NewPassword {
    password: String,
}

/// Changes the logged-in user's password: their other sessions stop working.
async fn password(
    auth: AuthSession<Users>,
    State(users): State<Users>,
    Query(p): Query<NewPassword>,
) -> &'static str {
    if let Some(user) = auth.user {
        users.set(&user.name, &p.password);
    }
    "password changed; log in again\n"
}

/// The app, also built by the test (tests/tower/companions.rs).
pub fn app(users: Users, sessions: SessionLayer) -> Router {
    let guarded = Router::new()
        .route("/protected", get(protected))
        .route("/password", get(password))
        .route_layer(axum::middleware::from_fn_with_state(
            users.clone(),
            login_required::<Users>,
        ));
    Router::new()
        .route("/login", get(login))
        .route("/logout", get(logout))
        .merge(guarded)
        .with_state(users)
        .layer(sessions)
}
