//! Issue 9 A3: nonces and session ids stay unique across `fork()`.
//!
//! A process that seals, forks, and seals again on the same thread must not hand the parent
//! and the child the same bytes: a repeated nonce under one key gives away the XOR of two
//! plaintexts (and, for GCM, the authentication key), a repeated session id merges two
//! sessions. rand 0.9's `rand::rng()` is copied by `fork()` and not reseeded in the child: with
//! it this test fails (the child's and the parent's second login draw the same id and nonce).

use actix_web::http::header;
use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealed_session::{Algorithm, Keyring, Session, SessionMiddleware};

use crate::support::*;

/// One login through the real middleware, on a fresh actix runtime on this thread: the new
/// session's id (as the handler saw it) and the nonce of the cookie sealed for it, as
/// `"<id hex> <nonce hex>"`.
fn login(ring: &Keyring) -> Vec<u8> {
    actix_web::rt::System::new().block_on(async {
        let mw = SessionMiddleware::builder(ring.clone())
            .cookie_name("__Host-s".into())
            .build()
            .unwrap();
        let app = actix_test::init_service(App::new().wrap(mw).route(
            "/login",
            web::get().to(|s: Session| async move {
                s.renew();
                s.insert("user", "alice").unwrap();
                HttpResponse::Ok().body(hex(&s.id().unwrap()))
            }),
        ))
        .await;
        let res = actix_test::call_service(
            &app,
            actix_test::TestRequest::get().uri("/login").to_request(),
        )
        .await;
        let line = res
            .headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let id = String::from_utf8(actix_test::read_body(res).await.to_vec()).unwrap();
        let value = line
            .strip_prefix("__Host-s=1.")
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let envelope = URL_SAFE_NO_PAD.decode(value).unwrap();
        let nonce_len = if envelope[1] == 2 { 12 } else { 24 };
        format!("{id} {}", hex(&envelope[6..6 + nonce_len])).into_bytes()
    })
}

#[test]
fn a3_nonces_and_session_ids_differ_between_parent_and_forked_child() {
    for alg in Algorithm::ALL {
        let ring = ring(alg);
        let before = login(&ring);
        let child = forkcheck::in_child(|| login(&ring)).unwrap();
        let after = login(&ring);
        let draws: Vec<(String, String)> = [&before, &child, &after]
            .iter()
            .map(|d| {
                let text = String::from_utf8(d.to_vec()).unwrap();
                let (id, nonce) = text.split_once(' ').unwrap();
                (id.to_owned(), nonce.to_owned())
            })
            .collect();
        let (parent_after, child) = (&draws[2], &draws[1]);
        assert_ne!(
            child.0, parent_after.0,
            "{alg:?}: session id repeated across fork"
        );
        assert_ne!(
            child.1, parent_after.1,
            "{alg:?}: nonce repeated across fork"
        );
        for (i, a) in draws.iter().enumerate() {
            for b in &draws[i + 1..] {
                assert_ne!(a.0, b.0, "{alg:?}: ids {draws:?}");
                assert_ne!(a.1, b.1, "{alg:?}: nonces {draws:?}");
            }
        }
    }
}
