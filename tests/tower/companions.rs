//! The axum companions, through the real service: the identity example
//! (examples/axum_login, axum-login's model) and flash messages (examples/axum_flash, the API
//! of axum-messages), with the examples' own modules.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use sealed_session::{Algorithm, SessionLayer};
use tower::ServiceExt as _;

use crate::{Jar, ring};

#[path = "../../examples/axum_login/auth.rs"]
mod auth;
#[path = "../../examples/axum_login/app.rs"]
mod login_app;

#[path = "../../examples/axum_flash/flash.rs"]
mod flash;
#[path = "../../examples/axum_flash/app.rs"]
mod flash_app;

fn sessions() -> SessionLayer {
    SessionLayer::builder(ring(Algorithm::default()))
        .cookie_name("session".into())
        .cookie_secure(false)
        .build()
        .unwrap()
}

async fn send(app: &Router, jar: &mut Jar, method: &str, uri: &str) -> (u16, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if !jar.0.is_empty() {
        req = req.header(header::COOKIE, jar.header());
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    jar.absorb(res.headers());
    let status = res.status().as_u16();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn identity_login_guard_logout_and_password_change() {
    let users = login_app::Users::default();
    users.set("ferris", "crab");
    let app = login_app::app(users.clone(), sessions());
    let mut jar = Jar::default();
    assert_eq!(send(&app, &mut jar, "GET", "/protected").await.0, 401);
    let wrong = send(&app, &mut jar, "GET", "/login?user=ferris&password=fish").await;
    assert_eq!(wrong.0, 401);
    assert!(jar.0.is_empty(), "a failed login sets no cookie");
    let ok = send(&app, &mut jar, "GET", "/login?user=ferris&password=crab").await;
    assert_eq!(ok, (200, "logged in as ferris\n".to_owned()));
    assert_eq!(
        send(&app, &mut jar, "GET", "/protected").await,
        (200, "hello ferris\n".to_owned())
    );

    // A second device; the first changes the password: the second is logged out.
    let mut other = Jar::default();
    send(&app, &mut other, "GET", "/login?user=ferris&password=crab").await;
    assert_eq!(send(&app, &mut other, "GET", "/protected").await.0, 200);
    let stale = other.clone();
    assert_eq!(
        send(&app, &mut jar, "GET", "/password?password=lobster")
            .await
            .0,
        200
    );
    assert_eq!(send(&app, &mut other, "GET", "/protected").await.0, 401);
    assert!(other.0.is_empty(), "the stale session is purged: {other:?}");
    // Replaying the stale cookie does not help either.
    let mut replay = stale;
    assert_eq!(send(&app, &mut replay, "GET", "/protected").await.0, 401);
    // A deleted user, likewise; logout empties the jar.
    let mut jar = Jar::default();
    send(&app, &mut jar, "GET", "/login?user=ferris&password=lobster").await;
    assert_eq!(send(&app, &mut jar, "GET", "/protected").await.0, 200);
    send(&app, &mut jar, "GET", "/logout").await;
    assert!(jar.0.is_empty());
    assert_eq!(send(&app, &mut jar, "GET", "/protected").await.0, 401);
}

#[tokio::test]
async fn flash_messages_show_once() {
    let app = flash_app::app(sessions());
    let mut jar = Jar::default();
    assert_eq!(send(&app, &mut jar, "GET", "/").await, (200, String::new()));
    assert!(jar.0.is_empty(), "reading no messages writes nothing");
    let (status, _) = send(&app, &mut jar, "POST", "/save").await;
    assert_eq!(status, 303);
    assert_eq!(jar.0.len(), 1);
    assert_eq!(
        send(&app, &mut jar, "GET", "/").await,
        (200, "Info: Saved.\nSuccess: All good.".to_owned())
    );
    assert_eq!(send(&app, &mut jar, "GET", "/").await.1, "", "shown once");
}
