//! An `axum-login`-style identity example on sealed sessions (`auth.rs`): log in with a
//! password, a guarded page, log out; changing a password logs the user's other sessions out.
//!
//! `cargo run --example axum_login --features axum`, then
//! `curl -c /tmp/jar -b /tmp/jar 'localhost:8080/login?user=ferris&password=crab'` and
//! `curl -b /tmp/jar localhost:8080/protected`.

mod app;
mod auth;

use std::time::SystemTime;

use sealed_session::{Algorithm, Keyring, SessionLayer};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // A development keyring; in production load a shared one (`builder_from_file`).
    let keyring = Keyring::generate(Algorithm::default(), SystemTime::now())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let sessions = SessionLayer::builder(keyring)
        // Plain http on localhost: no `__Host-` prefix, no Secure.
        .cookie_name("session".into())
        .cookie_secure(false)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let users = app::Users::default();
    users.set("ferris", "crab");
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await?;
    axum::serve(listener, app::app(users, sessions)).await
}
