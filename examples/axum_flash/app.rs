//! The flash example's routes, shared with its test (tests/tower/companions.rs).

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use sealed_session::SessionLayer;

use super::flash::Messages;

async fn save(messages: Messages) -> impl IntoResponse {
    messages.info("Saved.").success("All good.");
    (StatusCode::SEE_OTHER, [(header::LOCATION, "/")])
}

async fn index(messages: Messages) -> String {
    messages
        .into_iter()
        .map(|m| format!("{:?}: {}", m.level, m.message))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The app: `POST /save` leaves two messages and redirects, `GET /` shows them once.
pub fn app(sessions: SessionLayer) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/save", post(save))
        .layer(sessions)
}
