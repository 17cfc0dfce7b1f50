//! Login identity with `actix-identity`, unchanged, on actix-session's middleware whose store
//! is this crate's sealing ([`SealedSessionStore`], cargo feature `actix-session-store`):
//! keyring rotation, compression and the audited envelope for sessions up to one cookie.
//!
//! `cargo run --example identity` (the dev-dependencies turn the feature on), then
//! `curl -c /tmp/jar -X POST localhost:8080/login/ferris`, `curl -b /tmp/jar localhost:8080/`.

use std::time::{Duration, SystemTime};

use actix_identity::{Identity, IdentityMiddleware};
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, HttpServer, Responder, cookie, web};
use sealed_session::{Algorithm, Keyring, SealedSessionStore};

async fn index(user: Option<Identity>) -> impl Responder {
    match user.map(|u| u.id()) {
        Some(Ok(id)) => format!("Welcome {id}"),
        _ => "Welcome, anonymous".to_owned(),
    }
}

async fn login(req: HttpRequest, user: web::Path<String>) -> actix_web::Result<HttpResponse> {
    // Authenticate here; then attach the verified identity to the session.
    Identity::login(&req.extensions(), user.into_inner())?;
    Ok(HttpResponse::Ok().finish())
}

async fn logout(user: Option<Identity>) -> impl Responder {
    if let Some(user) = user {
        user.logout();
    }
    HttpResponse::Ok()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // A development keyring; in production load a shared one (`Keyring::load`).
    let keyring = Keyring::generate(Algorithm::default(), SystemTime::now())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let store = SealedSessionStore::new(keyring);
    // actix-session signs its cookie with this key too; the session inside is sealed by
    // `store` under the keyring.
    let signing = cookie::Key::generate();
    HttpServer::new(move || {
        App::new()
            .wrap(
                IdentityMiddleware::builder()
                    .visit_deadline(Some(Duration::from_secs(30 * 60)))
                    .build(),
            )
            .wrap(
                actix_session::SessionMiddleware::builder(store.clone(), signing.clone())
                    .cookie_secure(false) // plain http on localhost
                    .build(),
            )
            .route("/", web::get().to(index))
            .route("/login/{user}", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", 8080))?
    .run()
    .await
}
