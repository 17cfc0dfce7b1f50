//! The middleware through the real actix service: one acceptance suite run over every
//! algorithm and compression on/off, then the cases that need a special configuration.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use sealed_session::{Algorithm, Session, SessionMiddleware};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

/// Every configuration the acceptance suite runs over.
fn configurations() -> Vec<(Algorithm, Option<usize>)> {
    let mut out = Vec::new();
    for alg in [
        Algorithm::Xaes256Gcm,
        Algorithm::XChaCha20Poly1305,
        Algorithm::Aes256Gcm,
    ] {
        for compression in [Some(256), None] {
            out.push((alg, compression));
        }
    }
    out
}

fn middleware(alg: Algorithm, compression: Option<usize>, clock: &TestClock) -> SessionMiddleware {
    builder(ring(alg), clock)
        .compression_threshold(compression)
        .total_budget(16 * 1024)
        .build()
        .unwrap()
}

#[actix_web::test]
async fn acceptance_suite_over_every_configuration() {
    for (alg, compression) in configurations() {
        let clock = TestClock::new();
        let app = app(middleware(alg, compression, &clock)).await;
        let ctx = format!("{alg} compression={compression:?}");
        let mut jar = Jar::default();

        // Login → whoami.
        let (status, _, set) = get(&app, &mut jar, "/login?user=alice").await;
        assert_eq!((status, set.len()), (200, 1), "{ctx}");
        let (status, body, set) = get(&app, &mut jar, "/whoami").await;
        assert_eq!((status, body.as_str()), (200, "alice"), "{ctx}");
        assert!(set.is_empty(), "{ctx}: a read must not re-issue cookies");

        // Sessions from 100 B to the maximum, across several chunks.
        let mut max_chunks = 0;
        for bytes in [100, 1_000, 4_000, 8_000, 11_000] {
            let (status, _, set) = get(&app, &mut jar, &format!("/set?bytes={bytes}")).await;
            assert_eq!(status, 200, "{ctx} {bytes}");
            for line in &set {
                assert!(
                    line.len() <= 4050,
                    "{ctx}: Set-Cookie of {} bytes",
                    line.len()
                );
            }
            max_chunks = max_chunks.max(jar.0.len());
            let (status, body, _) = get(&app, &mut jar, "/whoami").await;
            assert_eq!((status, body.as_str()), (200, "alice"), "{ctx} {bytes}");
        }
        assert!(max_chunks >= 3, "{ctx}: {max_chunks}");

        // Shrink: stale chunks expired in the same response, same attributes.
        let before = jar.0.len();
        let (_, _, set) = get(&app, &mut jar, "/set?bytes=10").await;
        assert_eq!(
            set.len(),
            before,
            "{ctx}: one new cookie plus one removal per stale chunk"
        );
        assert_eq!(jar.0.len(), 1);
        for removal in set.iter().filter(|l| l.contains("Max-Age=0")) {
            for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
                assert!(removal.contains(attr), "{ctx}: {removal}");
            }
        }

        // Logout expires every chunk.
        get(&app, &mut jar, "/set?bytes=9000").await;
        let chunks = jar.0.len();
        let (_, _, set) = get(&app, &mut jar, "/logout").await;
        assert_eq!(set.len(), chunks);
        assert!(jar.0.is_empty(), "{ctx}: {jar:?}");
        assert_eq!(get(&app, &mut jar, "/whoami").await.0, 401);
    }
}

#[actix_web::test]
async fn untouched_requests_send_no_cookie_and_cost_no_decoding() {
    let clock = TestClock::new();
    let mw = middleware(Algorithm::default(), Some(256), &clock);
    let stats = mw.stats();
    let app = app(mw).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=bob").await;
    let (status, _, set) = get(&app, &mut jar, "/untouched").await;
    assert_eq!((status, set.len()), (200, 0));
    assert_eq!(stats.opened(), 0, "the cookie was never opened");
    jar.0.insert("__Host-s".into(), "garbage".into());
    let (status, _, set) = get(&app, &mut jar, "/untouched").await;
    assert_eq!((status, set.len()), (200, 0));
    assert_eq!(stats.rejected_total(), 0);
}

#[actix_web::test]
async fn set_cookie_responses_are_private() {
    let clock = TestClock::new();
    let app = test::init_service(
        App::new()
            .wrap(middleware(Algorithm::default(), None, &clock))
            .route(
                "/",
                web::get().to(|s: Session| async move {
                    s.insert("a", 1u8).unwrap();
                    HttpResponse::Ok()
                        .insert_header((header::CACHE_CONTROL, "public, max-age=60"))
                        .finish()
                }),
            ),
    )
    .await;
    let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
    assert_eq!(
        res.headers().get(header::CACHE_CONTROL).unwrap(),
        "private, max-age=60"
    );
}

#[actix_web::test]
async fn subdomain_configuration_sends_domain_on_every_chunk() {
    let clock = TestClock::new();
    let mw = builder(ring(Algorithm::default()), &clock)
        .cookie_name("__Secure-s".into())
        .cookie_domain(Some("example.com".into()))
        .total_budget(16 * 1024)
        .build()
        .unwrap();
    let app = app(mw).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=carol").await;
    let (_, _, set) = get(&app, &mut jar, "/set?bytes=9000").await;
    assert!(set.len() >= 3);
    for line in &set {
        assert!(line.contains("Domain=example.com"), "{line}");
    }
    let (_, _, set) = get(&app, &mut jar, "/logout").await;
    for line in &set {
        assert!(
            line.contains("Domain=example.com") && line.contains("Max-Age=0"),
            "{line}"
        );
    }
}

#[actix_web::test]
async fn overflow_answers_500_and_leaves_cookies_untouched() {
    let clock = TestClock::new();
    let mw = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let stats = mw.stats();
    let app = app(mw).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=dave").await;
    let before = jar.clone();
    let (status, body, set) = get(&app, &mut jar, "/set?bytes=65536").await;
    assert_eq!((status, body.as_str(), set.len()), (500, "", 0));
    assert_eq!(jar.0, before.0);
    assert_eq!(stats.overflows(), 1);
    assert_eq!(get(&app, &mut jar, "/whoami").await.1, "dave");
}

#[actix_web::test]
async fn bad_cookies_give_an_empty_session_never_a_500() {
    let clock = TestClock::new();
    let mw = middleware(Algorithm::default(), Some(256), &clock);
    let app = app(mw).await;
    let mut good = Jar::default();
    get(&app, &mut good, "/login?user=erin").await;
    get(&app, &mut good, "/set?bytes=5000").await;
    assert_eq!(good.0.len(), 2);
    let mut other = Jar::default();
    get(&app, &mut other, "/login?user=mallory").await;
    get(&app, &mut other, "/set?bytes=5000").await;

    let first = good.0["__Host-s"].clone();
    let second = good.0["__Host-s.1"].clone();
    let mut flipped = first.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "tampered",
            vec![
                ("__Host-s", String::from_utf8(flipped).unwrap()),
                ("__Host-s.1", second.clone()),
            ],
        ),
        (
            "truncated",
            vec![
                ("__Host-s", first.clone()),
                ("__Host-s.1", second[..second.len() - 5].to_owned()),
            ],
        ),
        (
            "swapped",
            vec![
                ("__Host-s", format!("2.{second}")),
                ("__Host-s.1", first[2..].to_owned()),
            ],
        ),
        (
            "spliced",
            vec![
                ("__Host-s", first.clone()),
                ("__Host-s.1", other.0["__Host-s.1"].clone()),
            ],
        ),
        ("missing", vec![("__Host-s", first.clone())]),
        ("garbage", vec![("__Host-s", "1.!!!".into())]),
    ];
    for (name, pairs) in cases {
        let mut jar = Jar(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let (status, _, set) = get(&app, &mut jar, "/whoami").await;
        assert_eq!((status, set.len()), (401, 0), "{name}");
    }
    // A foreign deployment's key: same cookie name, other keyring.
    let foreign = app_with_other_key(&clock).await;
    let mut jar = good.clone();
    assert_eq!(get(&foreign, &mut jar, "/whoami").await.0, 401);
    // Expired: the sealed absolute lifetime (24 h) has passed.
    let mut jar = good.clone();
    clock.advance(24 * 3600);
    assert_eq!(get(&app, &mut jar, "/whoami").await.0, 401);
}

async fn app_with_other_key(
    clock: &TestClock,
) -> impl actix_web::dev::Service<
    actix_http::Request,
    Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let ring =
        sealed_session::Keyring::new(vec![key(9, Algorithm::default(), 0)], clock.now()).unwrap();
    app(builder(ring, clock)
        .total_budget(16 * 1024)
        .build()
        .unwrap())
    .await
}

#[actix_web::test]
async fn split_cookie_headers_decode_the_same() {
    let clock = TestClock::new();
    let app = app(middleware(Algorithm::default(), Some(256), &clock)).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=frank").await;
    get(&app, &mut jar, "/set?bytes=9000").await;
    let mut req = test::TestRequest::get().uri("/whoami");
    for (k, v) in &jar.0 {
        req = req.append_header((header::COOKIE, format!("{k}={v}")));
    }
    req = req.append_header((
        header::COOKIE,
        header::HeaderValue::from_bytes(b"unrelated=\xff\xfebad").unwrap(),
    ));
    let res = test::call_service(&app, req.to_request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(test::read_body(res).await, "frank");
}

#[actix_web::test]
async fn idle_renewal_is_rate_limited_and_the_idle_timeout_is_enforced() {
    let clock = TestClock::new();
    let mw = builder(ring(Algorithm::default()), &clock)
        .idle_timeout(Some(Duration::from_secs(600)))
        .renew_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app(mw).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=gina").await;
    clock.advance(59);
    assert_eq!(
        get(&app, &mut jar, "/whoami").await.2.len(),
        0,
        "not due yet"
    );
    clock.advance(1);
    assert_eq!(
        get(&app, &mut jar, "/whoami").await.2.len(),
        1,
        "due: re-issued"
    );
    clock.advance(599);
    assert_eq!(
        get(&app, &mut jar, "/whoami").await.1,
        "gina",
        "the renewal slid the idle timeout"
    );
    clock.advance(600);
    assert_eq!(
        get(&app, &mut jar, "/whoami").await.0,
        401,
        "idle for 600 s"
    );
}

#[actix_web::test]
async fn garbage_cookies_at_volume_log_nothing_loud_and_do_not_grow_responses() {
    let loud = LoudEvents::default();
    let subscriber = tracing_subscriber::registry().with(loud.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let clock = TestClock::new();
    let mw = middleware(Algorithm::default(), Some(256), &clock);
    let stats = mw.stats();
    let app = app(mw).await;
    let mut sizes = std::collections::BTreeSet::new();
    for i in 0..10_000u32 {
        let mut garbage = format!(
            "__Host-s={}.{}; __Host-s.1={i}; x=",
            i % 40,
            "A".repeat((i % 97) as usize)
        )
        .into_bytes();
        garbage.extend_from_slice(&[0xff, (i % 256) as u8 | 0x80]);
        let value = header::HeaderValue::from_bytes(&garbage).unwrap();
        let req = test::TestRequest::get()
            .uri("/whoami")
            .insert_header((header::COOKIE, value))
            .to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.status(), 401);
        assert!(res.headers().get(header::SET_COOKIE).is_none());
        sizes.insert(res.headers().len());
    }
    assert_eq!(sizes.len(), 1, "response headers never grow");
    assert_eq!(stats.rejected_total(), 10_000);
    assert!(
        loud.0.lock().unwrap().is_empty(),
        "{:?}",
        loud.0.lock().unwrap().first()
    );
}

/// Everything a session holds, values and fingerprints included (its `Debug` hides values).
fn describe(state: Option<sealed_session::SessionState>) -> String {
    let Some(s) = state else {
        return "none".to_owned();
    };
    let mut out = format!(
        "{} {:?} {:?} {:?} {:?}",
        hex(&s.id()),
        s.issued_at(),
        s.expires_at(),
        s.last_seen(),
        s.validated_at()
    );
    for (key, bytes) in s.entries() {
        out.push_str(&format!(" {key}={}/{:?}", hex(bytes), s.fingerprint(key)));
    }
    out
}

/// A session the middleware has just sealed is remembered under its new cookies (issue 14):
/// the client's next request is answered by the memo, with exactly the state a fresh open of
/// those cookies gives, whatever the configuration writes (fingerprints or not, a
/// revalidation time or not, compressed values or not).
#[actix_web::test]
async fn sealed_sessions_are_remembered_as_a_fresh_open_gives_them() {
    for (fingerprints, hook, compression) in [
        (true, false, None),
        (false, false, None),
        (true, true, Some(64)),
        (false, true, Some(64)),
    ] {
        let ctx = format!("fingerprints {fingerprints}, hook {hook}, compression {compression:?}");
        let clock = TestClock::new();
        let build = |memo: usize| {
            let b = builder(ring(Algorithm::default()), &clock)
                .open_memo_capacity(memo)
                .value_fingerprints(fingerprints)
                .compression_threshold(compression)
                .total_budget(16 * 1024);
            let b = if hook {
                // Confirmed on every request after a second: `validated_at` moves on.
                b.revalidate(|_| async { Ok::<_, std::io::Error>(true) })
                    .revalidate_interval(Duration::from_secs(1))
            } else {
                b
            };
            b.build().unwrap()
        };
        let with_state = |mw: SessionMiddleware| {
            App::new().wrap(mw).configure(routes).route(
                "/state",
                web::get()
                    .to(|s: Session| async move { HttpResponse::Ok().body(describe(s.state())) }),
            )
        };
        let memo = build(64);
        let stats = memo.stats();
        let memo_app = test::init_service(with_state(memo)).await;
        let fresh_app = test::init_service(with_state(build(0))).await;
        let mut jar = Jar::default();
        get(&memo_app, &mut jar, "/login?user=alice").await;
        clock.advance(3);
        let (_, _, set) = get(&memo_app, &mut jar, "/set?bytes=300").await;
        assert_eq!(set.len(), 1, "{ctx}");
        let hits = stats.memo_hits();
        let (status, remembered, set) = get(&memo_app, &mut jar, "/state").await;
        assert_eq!((status, set.len()), (200, 0), "{ctx}");
        assert_eq!(stats.memo_hits(), hits + 1, "{ctx}: answered by the memo");
        let (_, fresh, _) = get(&fresh_app, &mut jar, "/state").await;
        assert_ne!(fresh, "none", "{ctx}");
        assert_eq!(remembered, fresh, "{ctx}");
    }
}
