//! Companion (issue 10, section 3): `actix-identity`, unchanged, on actix-session's
//! middleware with [`SealedSessionStore`] (cargo feature `actix-session-store`).

use std::time::Duration;

use actix_identity::{Identity, IdentityMiddleware};
use actix_web::dev::ServiceResponse;
use actix_web::{App, HttpMessage, HttpRequest, HttpResponse, Responder, cookie, test, web};
use sealed_session::SealedSessionStore;

use crate::test_helpers::key;

async fn whoami(user: Option<Identity>) -> impl Responder {
    match user.map(|u| u.id()) {
        Some(Ok(id)) => id,
        _ => "anonymous".to_owned(),
    }
}

async fn login(req: HttpRequest, user: web::Path<String>) -> actix_web::Result<HttpResponse> {
    Identity::login(&req.extensions(), user.into_inner())?;
    Ok(HttpResponse::Ok().finish())
}

async fn logout(user: Option<Identity>) -> impl Responder {
    if let Some(user) = user {
        user.logout();
    }
    HttpResponse::Ok()
}

fn id_cookie<B>(res: &ServiceResponse<B>) -> cookie::Cookie<'static> {
    res.response()
        .cookies()
        .find(|c| c.name() == "id")
        .expect("a session cookie")
        .into_owned()
}

#[actix_web::test]
async fn s3_actix_identity_login_id_logout_and_visit_deadline_on_the_sealed_store() {
    let store = SealedSessionStore::new(key());
    let signing = cookie::Key::generate();
    let app = test::init_service(
        App::new()
            .wrap(
                IdentityMiddleware::builder()
                    .visit_deadline(Some(Duration::from_secs(1)))
                    .build(),
            )
            .wrap(actix_session::SessionMiddleware::new(store, signing))
            .route("/", web::get().to(whoami))
            .route("/login/{user}", web::post().to(login))
            .route("/logout", web::post().to(logout)),
    )
    .await;

    let res = test::call_service(
        &app,
        test::TestRequest::post().uri("/login/ferris").to_request(),
    )
    .await;
    let cookie = id_cookie(&res);
    assert!(!cookie.value().contains("ferris"), "sealed");
    let req = test::TestRequest::get()
        .uri("/")
        .cookie(cookie.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    // Each visit moves the visit timestamp: a new sealed cookie.
    let cookie = id_cookie(&res);
    assert_eq!(test::read_body(res).await, "ferris");

    // A tampered cookie is no identity, not an error.
    let mut tampered = cookie.clone();
    tampered.set_value(format!("{}x", cookie.value()));
    let req = test::TestRequest::get()
        .uri("/")
        .cookie(tampered)
        .to_request();
    assert_eq!(test::call_and_read_body(&app, req).await, "anonymous");

    // Logout expires the cookie.
    let req = test::TestRequest::post()
        .uri("/logout")
        .cookie(cookie.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(
        id_cookie(&res).max_age(),
        Some(cookie::time::Duration::ZERO)
    );

    // Visit deadline: one second without a visit logs the user out.
    let res = test::call_service(
        &app,
        test::TestRequest::post().uri("/login/ferris").to_request(),
    )
    .await;
    let cookie = id_cookie(&res);
    actix_web::rt::time::sleep(Duration::from_millis(2100)).await;
    let req = test::TestRequest::get()
        .uri("/")
        .cookie(cookie)
        .to_request();
    assert_eq!(test::call_and_read_body(&app, req).await, "anonymous");
}
