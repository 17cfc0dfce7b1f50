//! What the port of actix-session's suite needed (issue 10, section 1), each item tested
//! through the real actix service.

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::{App, HttpRequest, HttpResponse, guard, test, web};
use sealed_session::{
    Session, SessionExt, SessionMiddleware, SessionMiddlewareBuilder, SessionStatus,
    TtlExtensionPolicy,
};
use serde::{Serialize, Serializer};

use crate::test_helpers::key;

fn builder() -> SessionMiddlewareBuilder {
    SessionMiddleware::builder(key()).cookie_name("id".into())
}

fn set_cookies<B>(res: &ServiceResponse<B>) -> Vec<String> {
    res.headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_of<B>(res: &ServiceResponse<B>) -> actix_web::cookie::Cookie<'static> {
    res.response()
        .cookies()
        .find(|c| c.name() == "id")
        .expect("a session cookie")
        .into_owned()
}

#[actix_web::test]
async fn s1_get_session_outside_the_middleware_is_a_working_detached_session() {
    // On a bare request (unit tests of handlers).
    let req = test::TestRequest::default().to_http_request();
    let session = req.get_session();
    assert!(session.is_detached());
    session.insert("n", 7u32).unwrap();
    assert_eq!(req.get_session().get::<u32>("n").unwrap(), Some(7));

    // Through an App without the middleware: the extractor works, nothing is written.
    let app = test::init_service(App::new().route(
        "/",
        web::get().to(|s: Session| async move {
            s.insert("n", 1u32).unwrap();
            format!("{:?}", s.get::<u32>("n").unwrap())
        }),
    ))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(set_cookies(&res).is_empty());
    assert_eq!(test::read_body(res).await, "Some(1)");
}

#[actix_web::test]
async fn s1_session_ext_on_service_response_and_guard_context() {
    let app = test::init_service(
        App::new()
            .wrap_fn(|req, srv| {
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    // The session the handler used, read from the response.
                    let user = res.get_session().get::<String>("user").unwrap();
                    if let Some(user) = user {
                        res.headers_mut().insert(
                            header::HeaderName::from_static("x-user"),
                            header::HeaderValue::from_str(&user).unwrap(),
                        );
                    }
                    Ok(res)
                }
            })
            .wrap(builder().build().unwrap())
            .route(
                "/login",
                web::post().to(|s: Session| async move {
                    s.insert("user", "ferris").unwrap();
                    "in"
                }),
            )
            .service(
                web::scope("/private")
                    .guard(guard::fn_guard(|g| {
                        g.get_session().get::<String>("user").unwrap().is_some()
                    }))
                    .route("", web::get().to(|| async { "secret" })),
            ),
    )
    .await;

    let res = test::call_service(&app, test::TestRequest::get().uri("/private").to_request()).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND, "the guard refuses");
    let res = test::call_service(&app, test::TestRequest::post().uri("/login").to_request()).await;
    assert_eq!(res.headers().get("x-user").unwrap(), "ferris");
    let cookie = cookie_of(&res);
    let req = test::TestRequest::get()
        .uri("/private")
        .cookie(cookie)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), StatusCode::OK, "the guard reads the session");
    assert_eq!(res.headers().get("x-user").unwrap(), "ferris");
}

/// A value postcard cannot serialize.
struct Unserializable;

impl Serialize for Unserializable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("never"))
    }
}

#[actix_web::test]
async fn s1_session_errors_are_opaque_500s_through_question_mark() {
    async fn read(s: Session) -> actix_web::Result<HttpResponse> {
        s.insert("word", "secret-value").unwrap();
        // A string's bytes are not a bool: `?` turns the error into a response.
        let flag: Option<bool> = s.get("word")?;
        Ok(HttpResponse::Ok().body(format!("{flag:?}")))
    }
    async fn write(s: Session) -> actix_web::Result<HttpResponse> {
        s.insert("bad", Unserializable)?;
        Ok(HttpResponse::Ok().finish())
    }
    let app = test::init_service(
        App::new()
            .wrap(builder().build().unwrap())
            .route("/read", web::get().to(read))
            .route("/write", web::get().to(write)),
    )
    .await;
    for uri in ["/read", "/write"] {
        let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        let body = res.into_body().try_into_bytes().unwrap();
        assert!(body.is_empty(), "{uri}: {body:?}");
    }
}

#[actix_web::test]
async fn s1_clear_marks_even_an_empty_session_changed() {
    let session = test::TestRequest::default().to_http_request().get_session();
    session.clear();
    assert_eq!(session.status(), SessionStatus::Changed);

    // Through the middleware: clearing a session that holds nothing re-seals it; clearing
    // when there is no session at all writes nothing.
    let app = test::init_service(
        App::new()
            .wrap(builder().build().unwrap())
            .route(
                "/start",
                web::get().to(|s: Session| async move {
                    s.renew();
                    ""
                }),
            )
            .route(
                "/clear",
                web::get().to(|s: Session| async move {
                    s.clear();
                    format!("{:?}", s.status())
                }),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/clear").to_request()).await;
    assert!(set_cookies(&res).is_empty());
    let res = test::call_service(&app, test::TestRequest::get().uri("/start").to_request()).await;
    let cookie = cookie_of(&res);
    let req = test::TestRequest::get()
        .uri("/clear")
        .cookie(cookie)
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(set_cookies(&res).len(), 1);
    assert_eq!(test::read_body(res).await, "Changed");
}

/// The TTL extension decision: `OnStateChanges` (default) writes only real changes, so an
/// insert of the same value sends nothing; `OnEveryRequest` re-issues every valid session.
#[actix_web::test]
async fn s1_ttl_extension_policies() {
    let routes = |cfg: &mut web::ServiceConfig| {
        cfg.route(
            "/set",
            web::get().to(|s: Session| async move {
                s.insert("counter", 100).unwrap();
                ""
            }),
        )
        .route("/untouched", web::get().to(|| async { "" }));
    };
    for policy in [
        TtlExtensionPolicy::OnStateChanges,
        TtlExtensionPolicy::OnEveryRequest,
    ] {
        let app = test::init_service(
            App::new()
                .wrap(
                    builder()
                        .persistent(Duration::from_secs(60))
                        .ttl_extension_policy(policy)
                        .build()
                        .unwrap(),
                )
                .configure(routes),
        )
        .await;
        let every = policy == TtlExtensionPolicy::OnEveryRequest;

        // No cookie, or a cookie that does not open: nothing to re-issue under either policy.
        let res = app
            .call(test::TestRequest::get().uri("/untouched").to_request())
            .await
            .unwrap();
        assert!(set_cookies(&res).is_empty(), "{policy:?}");
        let req = test::TestRequest::get()
            .uri("/untouched")
            .cookie(actix_web::cookie::Cookie::new("id", "1.garbage"))
            .to_request();
        let res = app.call(req).await.unwrap();
        assert!(set_cookies(&res).is_empty(), "{policy:?}");

        let res = app
            .call(test::TestRequest::get().uri("/set").to_request())
            .await
            .unwrap();
        let first = cookie_of(&res);
        assert_eq!(
            first.max_age(),
            Some(actix_web::cookie::time::Duration::seconds(60))
        );

        // Same value again, and a request that does not touch the session.
        for uri in ["/set", "/untouched"] {
            let req = test::TestRequest::get()
                .uri(uri)
                .cookie(first.clone())
                .to_request();
            let res = app.call(req).await.unwrap();
            let set = set_cookies(&res);
            if every {
                assert_eq!(set.len(), 1, "{policy:?} {uri}");
                let again = cookie_of(&res);
                assert_ne!(again.value(), first.value(), "{uri}: sealed anew");
                assert_eq!(again.max_age(), first.max_age(), "{uri}");
            } else {
                assert!(set.is_empty(), "{policy:?} {uri}: {set:?}");
            }
        }
    }
}

#[actix_web::test]
async fn s1_handlers_can_take_the_request_and_read_the_session() {
    // `req.get_session()` inside the middleware is the same session as the extractor's.
    let app = test::init_service(App::new().wrap(builder().build().unwrap()).route(
        "/",
        web::get().to(|req: HttpRequest, s: Session| async move {
            s.insert("k", 1u8).unwrap();
            assert!(!req.get_session().is_detached());
            format!("{:?}", req.get_session().get::<u8>("k").unwrap())
        }),
    ))
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(set_cookies(&res).len(), 1);
    assert_eq!(test::read_body(res).await, "Some(1)");
}

#[actix_web::test]
async fn s1_a_scope_guard_that_reads_the_session_before_the_scope_middleware() {
    // The scope's guard runs before the scope's middleware: it sees a detached, empty
    // session (as with actix-session), and the handler still gets the real one.
    let app = test::init_service(
        App::new().service(
            web::scope("/s")
                .guard(guard::fn_guard(|g| {
                    g.get_session().get::<String>("user").unwrap().is_none()
                }))
                .wrap(builder().build().unwrap())
                .route(
                    "/login",
                    web::get().to(|s: Session| async move {
                        assert!(!s.is_detached());
                        s.insert("user", "ferris").unwrap();
                        ""
                    }),
                )
                .route(
                    "/whoami",
                    web::get().to(|s: Session| async move {
                        format!("{:?}", s.get::<String>("user").unwrap())
                    }),
                ),
        ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/s/login").to_request()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = cookie_of(&res);
    let req = test::TestRequest::get()
        .uri("/s/whoami")
        .cookie(cookie)
        .to_request();
    assert_eq!(
        test::call_and_read_body(&app, req).await,
        "Some(\"ferris\")"
    );
}
