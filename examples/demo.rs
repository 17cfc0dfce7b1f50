//! The demo app on actix-web, and the target of the cluster and browser tests. Its contract
//! (environment, routes, pages) lives in `demo_contract/mod.rs`, shared with the axum demo
//! (`examples/axum_demo.rs`) so the two cannot drift:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PORT` | port on 127.0.0.1 | 8080 |
//! | `SESSION_KEYRING` | keyring file (re-read when it changes) | an ephemeral development keyring, with a warning |
//! | `SESSION_RELOAD_SECS` | how often the keyring file is checked | 5 |
//! | `COOKIE_DOMAIN` | parent domain shared by subdomains | none (host-only) |
//! | `COOKIE_SECURE` | `0` drops Secure for plain-http local testing | on |
//! | `NODE_NAME` | sent back as `X-Node` | `demo` |
//! | `SESSION_MAX_BYTES` | total cookie budget (bytes of `Cookie` header the session may take) | 6144 |
//! | `REDIS_URL` | Redis of the fleet-wide revocation list (needs `--features redis`) | none: no revocation list |
//!
//! Routes: `GET /login?user=NAME`, `GET /whoami`, `GET /grow?bytes=N`, `GET /logout`, `GET /`,
//! `GET /logout-everywhere` (every session of the current user, on every node; needs
//! `REDIS_URL`, else 501).

#[path = "demo_contract/mod.rs"]
mod contract;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use contract::{GrowQuery, LoginQuery, Reply, Revocation, Settings};
use sealed_session::{Session, SessionMiddleware};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    contract::init_tracing();
    let settings = Settings::from_env();
    let revocation = contract::revocation_list("cargo run --example demo --features redis")?;
    let sessions = settings
        .sessions(
            SessionMiddleware::builder,
            |path: &str| SessionMiddleware::builder_from_file(path),
            &revocation,
        )?
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let revocation = web::Data::new(revocation);
    settings.announce("actix-web");
    let node = HeaderValue::from_str(&settings.node).unwrap_or(HeaderValue::from_static("demo"));
    HttpServer::new(move || {
        App::new()
            .app_data(revocation.clone())
            .wrap(sessions.clone())
            .wrap(DefaultHeaders::new().add(("X-Node", node.clone())))
            .route("/", web::get().to(index))
            .route("/login", web::get().to(login))
            .route("/whoami", web::get().to(whoami))
            .route("/grow", web::get().to(grow))
            .route("/logout", web::get().to(logout))
            .route("/logout-everywhere", web::get().to(logout_everywhere))
    })
    .bind(("127.0.0.1", settings.port))?
    .run()
    .await
}

fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if reply.body.is_empty() {
        return HttpResponse::new(status);
    }
    HttpResponse::build(status).body(reply.body)
}

async fn login(session: Session, query: web::Query<LoginQuery>) -> HttpResponse {
    respond(contract::login(&session, &query.user))
}

async fn whoami(session: Session) -> HttpResponse {
    respond(contract::whoami(&session))
}

async fn grow(session: Session, query: web::Query<GrowQuery>) -> HttpResponse {
    respond(contract::grow(&session, query.bytes))
}

async fn logout(session: Session) -> HttpResponse {
    respond(contract::logout(&session))
}

async fn logout_everywhere(session: Session, list: web::Data<Revocation>) -> HttpResponse {
    respond(contract::logout_everywhere(&session, &list))
}

async fn index(req: HttpRequest, session: Session) -> HttpResponse {
    let cookies = req.headers().get_all(header::COOKIE).map(|v| v.as_bytes());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(contract::index(&session, cookies))
}
