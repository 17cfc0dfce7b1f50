//! Companion (issue 10, section 3): `actix-web-flash-messages` through its `FlashMessageStore`
//! trait over our session, with the store of `examples/flash_messages/store.rs` as is.

use actix_web::dev::ServiceResponse;
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpResponse, Responder, test, web};
use actix_web_flash_messages::{FlashMessage, FlashMessagesFramework, IncomingFlashMessages};
use sealed_session::SessionMiddleware;

#[path = "../../examples/flash_messages/store.rs"]
mod store;

use store::SealedFlashStore;

use crate::test_helpers::key;

async fn save() -> impl Responder {
    FlashMessage::info("Saved.").send();
    FlashMessage::debug("below the minimum level").send();
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/"))
        .finish()
}

async fn show(messages: IncomingFlashMessages) -> impl Responder {
    messages
        .iter()
        .map(|m| format!("{:?}: {}", m.level(), m.content()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn session_cookie<B>(res: &ServiceResponse<B>) -> Option<actix_web::cookie::Cookie<'static>> {
    res.response()
        .cookies()
        .find(|c| c.name() == "id")
        .map(|c| c.into_owned())
}

#[actix_web::test]
async fn s3_flash_messages_are_shown_once_through_the_sealed_session() {
    let app = test::init_service(
        App::new()
            .wrap(FlashMessagesFramework::builder(SealedFlashStore::default()).build())
            .wrap(
                SessionMiddleware::builder(key())
                    .cookie_name("id".into())
                    .build()
                    .unwrap(),
            )
            .route("/", web::get().to(show))
            .route("/save", web::post().to(save)),
    )
    .await;

    // Nothing flashed: no session is started.
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert!(session_cookie(&res).is_none());
    assert_eq!(test::read_body(res).await, "");

    let res = test::call_service(&app, test::TestRequest::post().uri("/save").to_request()).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let with_message = session_cookie(&res).expect("the message travels in the session");
    assert!(!with_message.value().contains("Saved"), "sealed");

    // Shown once: the response drops it from the session.
    let req = test::TestRequest::get()
        .uri("/")
        .cookie(with_message.clone())
        .to_request();
    let res = test::call_service(&app, req).await;
    let consumed = session_cookie(&res).expect("the session is re-sealed without the message");
    assert_eq!(test::read_body(res).await, "info: Saved.");
    let req = test::TestRequest::get()
        .uri("/")
        .cookie(consumed)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert!(
        session_cookie(&res).is_none(),
        "nothing changed: no Set-Cookie"
    );
    assert_eq!(test::read_body(res).await, "");
}
