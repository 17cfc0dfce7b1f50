//! Flash messages on sealed sessions for axum (`flash.rs`, the API of `axum-messages`):
//! `POST /save` leaves a message and redirects, `GET /` shows it once.
//!
//! `cargo run --example axum_flash --features axum`, then
//! `curl -c /tmp/jar -b /tmp/jar -X POST localhost:8080/save` and
//! `curl -c /tmp/jar -b /tmp/jar localhost:8080/` (twice: the second time it is gone).

mod app;
mod flash;

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
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 8080)).await?;
    axum::serve(listener, app::app(sessions)).await
}
