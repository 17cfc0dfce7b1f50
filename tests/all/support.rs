//! Shared test app and a minimal browser-like cookie jar.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use sealed_session::keyring::Secret;
use sealed_session::{
    Algorithm, Key, KeyId, Keyring, Session, SessionMiddleware, SessionMiddlewareBuilder,
    SessionStats,
};
use serde::Deserialize;

pub const T0: u64 = 1_800_000_000;

/// A settable clock shared with the middleware.
#[derive(Clone)]
pub struct TestClock(pub Arc<AtomicU64>);

impl TestClock {
    pub fn new() -> Self {
        TestClock(Arc::new(AtomicU64::new(T0)))
    }
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

pub fn key(id: u8, alg: Algorithm, activates: u64) -> Key {
    Key::new(
        KeyId([id; 4]),
        alg,
        Secret::new([id; 32]),
        unix_time(0),
        unix_time(activates),
    )
}

pub fn ring(alg: Algorithm) -> Keyring {
    Keyring::new(vec![key(1, alg, 0)], unix_time(T0)).unwrap()
}

/// The builder every acceptance test starts from: plain-http friendly name, test clock.
pub fn builder(keyring: Keyring, clock: &TestClock) -> SessionMiddlewareBuilder {
    on_test_clock(SessionMiddleware::builder(keyring), clock)
}

/// `builder` with the suite's cookie name (`__Host-s`) and `clock`.
pub fn on_test_clock(
    builder: SessionMiddlewareBuilder,
    clock: &TestClock,
) -> SessionMiddlewareBuilder {
    let c = clock.clone();
    builder
        .cookie_name("__Host-s".into())
        .clock(move || c.now())
}

/// `?user=NAME` of the login routes.
#[derive(Deserialize)]
pub struct UserQuery {
    pub user: String,
}

/// `?bytes=N` of the routes that store a blob.
#[derive(Deserialize)]
pub struct BytesQuery {
    pub bytes: usize,
}

/// The demo's routes, plus `/touch-nothing` and `/set?bytes=N` (replace the blob).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/login",
        web::get().to(|s: Session, q: web::Query<UserQuery>| async move {
            s.clear();
            s.renew();
            s.insert("user", &q.user).unwrap();
            HttpResponse::Ok().body("ok")
        }),
    )
    .route(
        "/whoami",
        web::get().to(|s: Session| async move {
            match s.get::<String>("user") {
                Ok(Some(u)) => HttpResponse::Ok().body(u),
                _ => HttpResponse::Unauthorized().finish(),
            }
        }),
    )
    .route(
        "/set",
        web::get().to(|s: Session, q: web::Query<BytesQuery>| async move {
            s.insert("blob", random_text(q.bytes)).unwrap();
            HttpResponse::Ok().finish()
        }),
    )
    .route(
        "/logout",
        web::get().to(|s: Session| async move {
            s.purge();
            HttpResponse::Ok().finish()
        }),
    )
    .route(
        "/untouched",
        web::get().to(|| async { HttpResponse::Ok().body("hi") }),
    );
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

pub fn random_text(n: usize) -> String {
    use rand::RngExt;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

pub async fn app(
    mw: SessionMiddleware,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    test::init_service(App::new().wrap(mw).configure(routes)).await
}

/// What a browser keeps: name → value, honouring Max-Age=0.
#[derive(Default, Clone, Debug)]
pub struct Jar(pub BTreeMap<String, String>);

impl Jar {
    pub fn absorb<B>(&mut self, res: &ServiceResponse<B>) -> Vec<String> {
        let lines: Vec<String> = res
            .headers()
            .get_all(header::SET_COOKIE)
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

    pub fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Sends GET `uri` with the jar's cookies, absorbs the response cookies; returns status,
/// body and the Set-Cookie lines.
pub async fn get<S, B>(app: &S, jar: &mut Jar, uri: &str) -> (u16, String, Vec<String>)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let mut req = test::TestRequest::get().uri(uri);
    if !jar.0.is_empty() {
        req = req.insert_header((header::COOKIE, jar.header()));
    }
    let res = test::call_service(app, req.to_request()).await;
    let lines = jar.absorb(&res);
    let status = res.status().as_u16();
    let body = test::read_body(res).await;
    (status, String::from_utf8_lossy(&body).into_owned(), lines)
}

/// Counts log events at WARN or above.
#[derive(Clone, Default)]
pub struct LoudEvents(pub Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LoudEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() <= tracing::Level::WARN {
            self.0
                .lock()
                .unwrap()
                .push(event.metadata().name().to_owned());
        }
    }
}

/// How many requests the middleware refused with `category` (e.g. `"ambiguous"`).
pub fn rejected(stats: &SessionStats, category: &str) -> u64 {
    stats
        .rejected()
        .into_iter()
        .find(|(c, _)| *c == category)
        .map_or(0, |(_, n)| n)
}

/// The time `secs` seconds after the Unix epoch.
pub fn unix_time(secs: u64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}
