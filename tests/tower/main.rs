//! The tower layer and the axum extractor through the real tower service
//! (`tower::ServiceExt::oneshot` on an axum `Router`): the key cases of the actix middleware
//! tests (tests/all/middleware.rs, rotation.rs), plus the multi-threaded runtime and the
//! format shared with the actix middleware.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::Query;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use sealed_session::keyring::Secret;
use sealed_session::{
    Algorithm, Codec, Key, KeyId, Keyring, Session, SessionConfig, SessionLayer,
    SessionLayerBuilder, SessionMiddleware,
};
use serde::Deserialize;
use tower::ServiceExt as _;

mod companions;

const T0: u64 = 1_800_000_000;

fn unix_time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[derive(Clone)]
struct TestClock(Arc<AtomicU64>);

impl TestClock {
    fn new() -> Self {
        TestClock(Arc::new(AtomicU64::new(T0)))
    }
    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

fn key(id: u8, alg: Algorithm, activates: u64) -> Key {
    Key::new(
        KeyId([id; 4]),
        alg,
        Secret::new([id; 32]),
        unix_time(0),
        unix_time(activates),
    )
}

fn ring(alg: Algorithm) -> Keyring {
    Keyring::new(vec![key(1, alg, 0)], unix_time(T0)).unwrap()
}

fn builder(keyring: Keyring, clock: &TestClock) -> SessionLayerBuilder {
    let c = clock.clone();
    SessionLayer::builder(keyring)
        .cookie_name("__Host-s".into())
        .clock(move || c.now())
}

#[derive(Deserialize)]
struct UserQuery {
    user: String,
}

#[derive(Deserialize)]
struct BytesQuery {
    bytes: usize,
}

fn random_text(n: usize) -> String {
    use rand::RngExt;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

/// The routes of the actix suite (tests/all/support.rs), written for axum.
fn routes() -> Router {
    Router::new()
        .route(
            "/login",
            get(|s: Session, q: Query<UserQuery>| async move {
                s.clear();
                s.renew();
                s.insert("user", &q.user).unwrap();
                "ok"
            }),
        )
        .route(
            "/whoami",
            get(|s: Session| async move {
                match s.get::<String>("user") {
                    Ok(Some(u)) => (StatusCode::OK, u),
                    _ => (StatusCode::UNAUTHORIZED, String::new()),
                }
            }),
        )
        .route(
            "/set",
            get(|s: Session, q: Query<BytesQuery>| async move {
                s.insert("blob", random_text(q.bytes)).unwrap();
                StatusCode::OK
            }),
        )
        .route(
            "/logout",
            get(|s: Session| async move {
                s.purge();
                StatusCode::OK
            }),
        )
        .route("/untouched", get(|| async { "hi" }))
}

fn app(layer: SessionLayer) -> Router {
    routes().layer(layer)
}

/// What a browser keeps: name → value, honouring Max-Age=0.
#[derive(Default, Clone, Debug)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn absorb(&mut self, headers: &header::HeaderMap) -> Vec<String> {
        let lines: Vec<String> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for line in &lines {
            let c = cookie::Cookie::parse(line.clone()).unwrap();
            if c.max_age() == Some(cookie::time::Duration::ZERO) {
                self.0.remove(c.name());
            } else {
                self.0.insert(c.name().to_owned(), c.value().to_owned());
            }
        }
        lines
    }
}

struct Reply {
    status: u16,
    body: String,
    set: Vec<String>,
    headers: header::HeaderMap,
}

/// GET `uri` through the real service with the jar's cookies; the jar absorbs the response.
async fn call(app: &Router, jar: &mut Jar, uri: &str) -> Reply {
    let mut req = Request::get(uri);
    if !jar.0.is_empty() {
        req = req.header(header::COOKIE, jar.header());
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let set = jar.absorb(res.headers());
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Reply {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
        set,
        headers,
    }
}

async fn get_(app: &Router, jar: &mut Jar, uri: &str) -> (u16, String, Vec<String>) {
    let r = call(app, jar, uri).await;
    (r.status, r.body, r.set)
}

#[tokio::test]
async fn acceptance_suite_over_every_configuration() {
    for alg in [
        Algorithm::Xaes256Gcm,
        Algorithm::XChaCha20Poly1305,
        Algorithm::Aes256Gcm,
    ] {
        for compression in [Some(256), None] {
            let clock = TestClock::new();
            let layer = builder(ring(alg), &clock)
                .compression_threshold(compression)
                .total_budget(16 * 1024)
                .build()
                .unwrap();
            let app = app(layer);
            let ctx = format!("{alg} compression={compression:?}");
            let mut jar = Jar::default();

            let (status, _, set) = get_(&app, &mut jar, "/login?user=alice").await;
            assert_eq!((status, set.len()), (200, 1), "{ctx}");
            let (status, body, set) = get_(&app, &mut jar, "/whoami").await;
            assert_eq!((status, body.as_str()), (200, "alice"), "{ctx}");
            assert!(set.is_empty(), "{ctx}: a read must not re-issue cookies");

            let mut max_chunks = 0;
            for bytes in [100, 1_000, 4_000, 8_000, 11_000] {
                let (status, _, set) = get_(&app, &mut jar, &format!("/set?bytes={bytes}")).await;
                assert_eq!(status, 200, "{ctx} {bytes}");
                for line in &set {
                    assert!(line.len() <= 4050, "{ctx}: Set-Cookie of {}", line.len());
                }
                max_chunks = max_chunks.max(jar.0.len());
                let (status, body, _) = get_(&app, &mut jar, "/whoami").await;
                assert_eq!((status, body.as_str()), (200, "alice"), "{ctx} {bytes}");
            }
            assert!(max_chunks >= 3, "{ctx}: {max_chunks}");

            // Shrink: stale chunks expired in the same response, same attributes.
            let before = jar.0.len();
            let (_, _, set) = get_(&app, &mut jar, "/set?bytes=10").await;
            assert_eq!(
                set.len(),
                before,
                "{ctx}: one new cookie plus one removal each"
            );
            assert_eq!(jar.0.len(), 1);
            for removal in set.iter().filter(|l| l.contains("Max-Age=0")) {
                for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
                    assert!(removal.contains(attr), "{ctx}: {removal}");
                }
            }

            // Logout (purge) expires every chunk.
            get_(&app, &mut jar, "/set?bytes=9000").await;
            let chunks = jar.0.len();
            assert!(chunks >= 2);
            let (_, _, set) = get_(&app, &mut jar, "/logout").await;
            assert_eq!(set.len(), chunks);
            assert!(jar.0.is_empty(), "{ctx}: {jar:?}");
            assert_eq!(get_(&app, &mut jar, "/whoami").await.0, 401);
        }
    }
}

#[tokio::test]
async fn untouched_requests_send_no_cookie_and_cost_no_decoding() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let stats = layer.stats();
    let app = app(layer);
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=bob").await;
    let r = call(&app, &mut jar, "/untouched").await;
    assert_eq!((r.status, r.set.len()), (200, 0));
    assert!(r.headers.get(header::CACHE_CONTROL).is_none());
    assert_eq!(stats.opened(), 0, "the cookie was never opened");
    // A read changes nothing either: no Set-Cookie, one open.
    let (status, _, set) = get_(&app, &mut jar, "/whoami").await;
    assert_eq!((status, set.len()), (200, 0));
    assert_eq!(stats.opened(), 1);
    jar.0.insert("__Host-s".into(), "garbage".into());
    let (status, _, set) = get_(&app, &mut jar, "/untouched").await;
    assert_eq!((status, set.len()), (200, 0));
    assert_eq!(stats.rejected_total(), 0);
}

#[tokio::test]
async fn set_cookie_responses_are_private() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|s: Session| async move {
                s.insert("a", 1u8).unwrap();
                ([(header::CACHE_CONTROL, "public, max-age=60")], "x").into_response()
            }),
        )
        .route(
            "/plain",
            get(|s: Session| async move {
                s.insert("a", 2u8).unwrap();
                "y"
            }),
        )
        .layer(layer);
    let r = call(&app, &mut Jar::default(), "/").await;
    assert_eq!(r.set.len(), 1);
    assert_eq!(
        r.headers.get(header::CACHE_CONTROL).unwrap(),
        "private, max-age=60"
    );
    let r = call(&app, &mut Jar::default(), "/plain").await;
    assert_eq!(r.headers.get(header::CACHE_CONTROL).unwrap(), "private");
}

#[tokio::test]
async fn overflow_answers_500_and_leaves_cookies_untouched() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let stats = layer.stats();
    let app = app(layer);
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=dave").await;
    let before = jar.clone();
    let (status, body, set) = get_(&app, &mut jar, "/set?bytes=65536").await;
    assert_eq!((status, body.as_str(), set.len()), (500, "", 0));
    assert_eq!(jar.0, before.0);
    assert_eq!(stats.overflows(), 1);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.1, "dave");
}

#[tokio::test]
async fn bad_cookies_give_an_empty_session_never_a_500() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock)
        .total_budget(16 * 1024)
        .build()
        .unwrap();
    let stats = layer.stats();
    let app = app(layer);
    let mut good = Jar::default();
    get_(&app, &mut good, "/login?user=erin").await;
    get_(&app, &mut good, "/set?bytes=5000").await;
    assert_eq!(good.0.len(), 2);
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
        ("missing", vec![("__Host-s", first.clone())]),
        ("garbage", vec![("__Host-s", "1.!!!".into())]),
    ];
    for (name, pairs) in cases {
        let mut jar = Jar(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect());
        let (status, _, set) = get_(&app, &mut jar, "/whoami").await;
        assert_eq!((status, set.len()), (401, 0), "{name}");
    }
    assert_eq!(stats.rejected_total(), 4);
    // Expired: the sealed absolute lifetime (24 h) has passed.
    clock.advance(24 * 3600);
    assert_eq!(get_(&app, &mut good, "/whoami").await.0, 401);
}

#[tokio::test]
async fn idle_renewal_is_rate_limited_and_the_idle_timeout_is_enforced() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock)
        .idle_timeout(Some(Duration::from_secs(600)))
        .renew_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app(layer);
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=gina").await;
    clock.advance(59);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.2.len(), 0, "not due");
    clock.advance(1);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.2.len(), 1, "due");
    clock.advance(599);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.1, "gina", "slid");
    clock.advance(600);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.0, 401, "idle 600 s");
}

#[tokio::test]
async fn renew_gives_a_new_identity() {
    let clock = TestClock::new();
    let keyring = ring(Algorithm::default());
    let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
    let app = app(builder(keyring.clone(), &clock).build().unwrap());
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=hana").await;
    let id = |jar: &Jar| {
        let pairs: Vec<(&[u8], &[u8])> = jar
            .0
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect();
        codec
            .open(&keyring, pairs, clock.now())
            .unwrap()
            .unwrap()
            .state
            .id()
    };
    let first = id(&jar);
    get_(&app, &mut jar, "/set?bytes=10").await;
    assert_eq!(id(&jar), first, "a change keeps the identity");
    get_(&app, &mut jar, "/login?user=hana").await;
    assert_ne!(id(&jar), first, "login renews it");
}

fn write(path: &Path, ring: &Keyring) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ring.to_json().as_bytes()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn sealed_with(jar: &Jar, ring: &Keyring, clock: &TestClock) -> KeyId {
    let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
    let pairs: Vec<(&[u8], &[u8])> = jar
        .0
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    codec
        .open(ring, pairs, clock.now())
        .unwrap()
        .unwrap()
        .key_id
}

async fn wait_for(layer: &SessionLayer, done: impl Fn(&Keyring) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&layer.keyring()) {
        assert!(
            Instant::now() < deadline,
            "keyring not reloaded within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A whole rotation through a hot-reloaded keyring file: a session sealed under the old key
/// is re-sealed under the new one on its next read, and retiring the old key then rejects a
/// cookie that still uses it.
#[tokio::test]
async fn rotation_by_hot_reload_reseals_and_retirement_rejects() {
    let clock = TestClock::new();
    let dir = std::env::temp_dir().join(format!("sealed-session-tower-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keyring.json");
    let a = key(1, Algorithm::Xaes256Gcm, 0);
    let b = key(2, Algorithm::XChaCha20Poly1305, T0 + 3600);
    let ring_a = Keyring::new(vec![a.clone()], clock.now()).unwrap();
    write(&path, &ring_a);
    let c = clock.clone();
    let layer = SessionLayer::builder_from_file(&path)
        .unwrap()
        .cookie_name("__Host-s".into())
        .clock(move || c.now())
        .reload_interval(Duration::from_millis(25))
        .idle_timeout(None)
        .build()
        .unwrap();
    let app = app(layer.clone());
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=alice").await;
    let old_cookie = jar.clone();
    assert_eq!(sealed_with(&jar, &ring_a, &clock), KeyId([1; 4]));

    let ring_ab = Keyring::new(vec![a.clone(), b.clone()], clock.now()).unwrap();
    write(&path, &ring_ab);
    wait_for(&layer, |r| r.keys().len() == 2).await;
    let (status, _, set) = get_(&app, &mut jar, "/whoami").await;
    assert_eq!(
        (status, set.len()),
        (200, 0),
        "B not active yet: no re-seal"
    );

    clock.advance(3600);
    let (status, _, set) = get_(&app, &mut jar, "/whoami").await;
    assert_eq!((status, set.len()), (200, 1), "moved to the sealing key");
    assert_eq!(sealed_with(&jar, &ring_ab, &clock), KeyId([2; 4]));
    let (_, _, set) = get_(&app, &mut jar, "/whoami").await;
    assert!(set.is_empty(), "once moved, a read writes nothing");

    // Retire A: the old cookie is refused, the re-sealed one is not.
    let ring_b_a_retired = Keyring::new(vec![a.retired(clock.now()), b], clock.now()).unwrap();
    write(&path, &ring_b_a_retired);
    wait_for(&layer, |r| r.keys().iter().any(Key::is_retired)).await;
    let mut old = old_cookie;
    assert_eq!(get_(&app, &mut old, "/whoami").await.0, 401);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.1, "alice");
    let _ = std::fs::remove_dir_all(dir);
}

/// The memo is shared by the threads of a multi-threaded runtime through shards: many clients
/// in parallel, each reading, changing and re-reading its own session, never see another's,
/// and a rotation drops every shard's memo at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multi_threaded_runtime_memo_is_correct() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let stats = layer.stats();
    let app = app(layer);
    let mut tasks = Vec::new();
    for client in 0..32 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut jar = Jar::default();
            let user = format!("user{client}");
            get_(&app, &mut jar, &format!("/login?user={user}")).await;
            for round in 0..20 {
                let (status, body, _) = get_(&app, &mut jar, "/whoami").await;
                assert_eq!(
                    (status, body.as_str()),
                    (200, user.as_str()),
                    "round {round}"
                );
                if round % 5 == 0 {
                    get_(&app, &mut jar, &format!("/set?bytes={}", 10 + round)).await;
                }
                tokio::task::yield_now().await;
            }
            jar
        }));
    }
    let mut jars = Vec::new();
    for t in tasks {
        jars.push(t.await.unwrap());
    }
    assert_eq!(stats.rejected_total(), 0);
    assert!(stats.opened() >= 32 * 24);
    // Every client's last cookie, replayed from other threads, still opens to its own user.
    let mut tasks = Vec::new();
    for (client, jar) in jars.into_iter().enumerate() {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let mut jar = jar;
            let (_, body, _) = get_(&app, &mut jar, "/whoami").await;
            assert_eq!(body, format!("user{client}"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Expiry is checked on memo hits too, on every thread.
    clock.advance(24 * 3600);
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=late").await;
    assert_eq!(get_(&app, &mut jar, "/whoami").await.1, "late");
}

/// One format: a session sealed by the actix middleware opens in the tower layer under the
/// same keyring and configuration, and the other way round.
#[tokio::test]
async fn actix_and_tower_read_each_others_cookies() {
    let clock = TestClock::new();
    let keyring = ring(Algorithm::default());
    let tower_app = app(builder(keyring.clone(), &clock).build().unwrap());
    let c = clock.clone();
    let actix_mw = SessionMiddleware::builder(keyring)
        .cookie_name("__Host-s".into())
        .clock(move || c.now())
        .build()
        .unwrap();
    let actix_app = actix_web::test::init_service(actix_web::App::new().wrap(actix_mw).route(
        "/whoami",
        actix_web::web::get().to(|s: Session| async move {
            match s.get::<String>("user") {
                Ok(Some(u)) => actix_web::HttpResponse::Ok().body(u),
                _ => actix_web::HttpResponse::Unauthorized().finish(),
            }
        }),
    ))
    .await;
    let mut jar = Jar::default();
    get_(&tower_app, &mut jar, "/login?user=iris").await;
    let req = actix_web::test::TestRequest::get()
        .uri("/whoami")
        .insert_header(("cookie", jar.header()))
        .to_request();
    let res = actix_web::test::call_service(&actix_app, req).await;
    assert_eq!(res.status(), 200);
    assert_eq!(actix_web::test::read_body(res).await, "iris");
    // Garbage is refused by both.
    let mut bad = Jar(BTreeMap::from([(
        "__Host-s".to_owned(),
        "1.AAAA".to_owned(),
    )]));
    assert_eq!(get_(&tower_app, &mut bad, "/whoami").await.0, 401);
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500() {
    let app = routes();
    let (status, _, set) = get_(&app, &mut Jar::default(), "/whoami").await;
    assert_eq!((status, set.len()), (500, 0));
}

#[test]
fn session_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let session = sealed_session::SessionLayer::new(ring(Algorithm::default())).unwrap();
    send(&session);
    async fn handler(s: Session) -> u32 {
        let n = s.get::<u32>("n").ok().flatten().unwrap_or(0);
        tokio::task::yield_now().await;
        s.insert("n", n + 1).ok();
        n
    }
    fn check<F: std::future::Future + Send>(_: F) {}
    check(handler(Session::clone(&detached())));
}

/// A session handle outside any middleware, for the Send check.
fn detached() -> Session {
    use actix_web::HttpMessage as _;
    use sealed_session::SessionExt as _;
    let req = actix_web::test::TestRequest::default().to_http_request();
    let s = req.get_session();
    assert!(s.is_detached());
    let _ = req.extensions();
    s
}

/// `TtlExtensionPolicy::OnEveryRequest`: a valid session is re-issued on every response, even
/// when the handler does not touch it; a request without a session still gets nothing.
#[tokio::test]
async fn every_request_policy_reissues_untouched_sessions() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock)
        .ttl_extension_policy(sealed_session::TtlExtensionPolicy::OnEveryRequest)
        .persistent(Duration::from_secs(3600))
        .build()
        .unwrap();
    let app = app(layer);
    let mut jar = Jar::default();
    assert!(get_(&app, &mut jar, "/untouched").await.2.is_empty());
    get_(&app, &mut jar, "/login?user=kim").await;
    let (status, _, set) = get_(&app, &mut jar, "/untouched").await;
    assert_eq!((status, set.len()), (200, 1));
    assert!(set[0].contains("Max-Age=3600"), "{}", set[0]);
    assert_eq!(get_(&app, &mut jar, "/whoami").await.1, "kim");
}

/// A session split over several `Cookie` header lines (as HTTP/2 sends them) opens the same,
/// and an unrelated non-UTF-8 cookie line is ignored.
#[tokio::test]
async fn split_cookie_headers_decode_the_same() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock)
        .total_budget(16 * 1024)
        .build()
        .unwrap();
    let app = app(layer);
    let mut jar = Jar::default();
    get_(&app, &mut jar, "/login?user=frank").await;
    get_(&app, &mut jar, "/set?bytes=9000").await;
    assert!(jar.0.len() >= 3);
    let mut req = Request::get("/whoami");
    for (k, v) in &jar.0 {
        req = req.header(header::COOKIE, format!("{k}={v}"));
    }
    req = req.header(
        header::COOKIE,
        header::HeaderValue::from_bytes(b"unrelated=\xff\xfebad").unwrap(),
    );
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(&body[..], b"frank");
}

/// Revocation level 2 through the tower layer (the hook lives in the shared engine): a
/// session due for revalidation is checked before the handler; confirmed ones are re-sealed,
/// refused ones reach the handler as no session and their cookies are expired.
#[tokio::test]
async fn revalidation_hook_runs_before_the_handler() {
    let clock = TestClock::new();
    let layer = builder(ring(Algorithm::default()), &clock)
        .revalidate(|state: sealed_session::SessionState| async move {
            let user = state.get::<String>("user").ok().flatten();
            Ok::<bool, std::io::Error>(user.as_deref() != Some("mallory"))
        })
        .revalidate_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let stats = layer.stats();
    let app = app(layer);
    let mut alice = Jar::default();
    let mut mallory = Jar::default();
    get_(&app, &mut alice, "/login?user=alice").await;
    get_(&app, &mut mallory, "/login?user=mallory").await;
    // Not due yet: nothing is asked, nothing written.
    let (status, _, set) = get_(&app, &mut mallory, "/whoami").await;
    assert_eq!((status, set.len()), (200, 0));
    assert_eq!(stats.revalidated(), 0);
    clock.advance(61);
    let (status, body, set) = get_(&app, &mut alice, "/whoami").await;
    assert_eq!((status, body.as_str(), set.len()), (200, "alice", 1));
    assert_eq!(stats.revalidated(), 1);
    let (status, _, set) = get_(&app, &mut alice, "/whoami").await;
    assert_eq!((status, set.len()), (200, 0), "confirmed: not asked again");
    let (status, _, set) = get_(&app, &mut mallory, "/whoami").await;
    assert_eq!(status, 401);
    assert!(set.iter().all(|l| l.contains("Max-Age=0")) && !set.is_empty());
    assert!(mallory.0.is_empty());
}
