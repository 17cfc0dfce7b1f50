//! The demo app on axum (feature `axum`): the same contract, routes and pages as
//! `examples/demo.rs` (the actix-web demo), both built on `demo_contract/mod.rs`, so the cluster
//! and browser tests run against either, and against a mixed cluster of both behind one nginx
//! upstream. The environment and routes are listed there and in the README.
//!
//! `cargo run --example axum_demo --features axum`

#[path = "demo_contract/mod.rs"]
mod contract;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use contract::{GrowQuery, LoginQuery, Reply, Revocation, Settings};
use sealed_session::{Session, SessionLayer};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    contract::init_tracing();
    let settings = Settings::from_env();
    let revocation =
        contract::revocation_list("cargo run --example axum_demo --features axum,redis")?;
    let sessions = settings
        .sessions(
            SessionLayer::builder,
            |path: &str| SessionLayer::builder_from_file(path),
            &revocation,
        )?
        .build()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    settings.announce("axum");
    let node = HeaderValue::from_str(&settings.node).unwrap_or(HeaderValue::from_static("demo"));
    let app = Router::new()
        .route("/", get(index))
        .route("/login", get(login))
        .route("/whoami", get(whoami))
        .route("/grow", get(grow))
        .route("/logout", get(logout))
        .route("/logout-everywhere", get(logout_everywhere))
        .with_state(Arc::new(revocation))
        .layer(sessions)
        // Outside the sessions, as in the actix demo: the empty 500 of an oversized session
        // carries X-Node too.
        .layer(axum::middleware::map_response(move |mut res: Response| {
            let node = node.clone();
            async move {
                res.headers_mut().insert("x-node", node);
                res
            }
        }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port)).await?;
    axum::serve(listener, app).await
}

fn respond(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if reply.body.is_empty() {
        return status.into_response();
    }
    (status, reply.body).into_response()
}

async fn login(session: Session, Query(query): Query<LoginQuery>) -> Response {
    respond(contract::login(&session, &query.user))
}

async fn whoami(session: Session) -> Response {
    respond(contract::whoami(&session))
}

async fn grow(session: Session, Query(query): Query<GrowQuery>) -> Response {
    respond(contract::grow(&session, query.bytes))
}

async fn logout(session: Session) -> Response {
    respond(contract::logout(&session))
}

async fn logout_everywhere(session: Session, State(list): State<Arc<Revocation>>) -> Response {
    respond(contract::logout_everywhere(&session, &list))
}

async fn index(headers: HeaderMap, session: Session) -> Html<String> {
    let cookies = headers.get_all(header::COOKIE).iter().map(|v| v.as_bytes());
    Html(contract::index(&session, cookies))
}
