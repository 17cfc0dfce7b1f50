//! Flash messages (`actix-web-flash-messages`) on sealed sessions: `POST /save` records a
//! message and redirects, `GET /` shows it once.
//!
//! `cargo run --example flash_messages`, then `curl -ci /tmp/jar -b /tmp/jar -X POST
//! localhost:8080/save` and `curl -b /tmp/jar localhost:8080/`.

mod store;

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, Responder, web};
use actix_web_flash_messages::{FlashMessage, FlashMessagesFramework, IncomingFlashMessages};
use sealed_session::{Algorithm, Keyring, SessionMiddleware};

use store::SealedFlashStore;

async fn save() -> impl Responder {
    FlashMessage::info("Saved.").send();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

async fn index(messages: IncomingFlashMessages) -> impl Responder {
    let shown: Vec<String> = messages
        .iter()
        .map(|m| format!("{:?}: {}", m.level(), m.content()))
        .collect();
    shown.join("\n")
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    // A development keyring; in production load a shared one (`builder_from_file`).
    let keyring = Keyring::generate(Algorithm::default(), SystemTime::now())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let sessions = SessionMiddleware::builder(keyring)
        // Plain http on localhost: no `__Host-` prefix, no Secure.
        .cookie_name("session".into())
        .cookie_secure(false)
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    HttpServer::new(move || {
        App::new()
            .wrap(FlashMessagesFramework::builder(SealedFlashStore::default()).build())
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
            .route("/save", web::post().to(save))
    })
    .bind(("127.0.0.1", 8080))?
    .run()
    .await
}
