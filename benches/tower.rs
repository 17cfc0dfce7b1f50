//! Per-request cost of the tower layer, in-process through `tower::ServiceExt::oneshot` on a
//! current-thread runtime, in one run beside: the same axum router with no layer,
//! tower-sessions 0.15 with its `MemoryStore` (its fastest store), axum-extra's
//! `PrivateCookieJar` doing the same reads and writes, and (when a real `redis-server` can be
//! started on loopback) tower-sessions over Redis, the central-store alternative.
//!
//! Cases: (a) untouched, (b) read ~100 B, (c) write ~100 B (read a counter, write it back
//! beside the 100 B value), (d) read ~2 KB, (e) write ~2 KB.
//!
//! `cargo bench --bench tower`; figures are recorded in the README.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

mod support;

use support::text;

use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar};
use criterion::{Criterion, criterion_group, criterion_main};
use sealed_session::{Algorithm, Keyring, SessionLayer};
use tower::ServiceExt as _;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{MemoryStore, SessionManagerLayer};

const SMALL: usize = 100;
const MEDIUM: usize = 2 * 1024;

fn untouched<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/untouched", get(|| async { "hi" }))
}

fn ours(memo: usize) -> Router {
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
    let layer = SessionLayer::builder(ring)
        .cookie_name("__Host-s".into())
        .total_budget(16 * 1024)
        .open_memo_capacity(memo)
        .build()
        .unwrap();
    use sealed_session::Session;
    untouched()
        .route(
            "/read",
            get(|s: Session| async move {
                let v: Option<String> = s.get("data").ok().flatten();
                v.map_or(0, |v| v.len()).to_string()
            }),
        )
        .route(
            "/write",
            get(|s: Session| async move {
                let n: u64 = s.get("n").ok().flatten().unwrap_or(0);
                let _ = s.insert("n", n + 1);
                ""
            }),
        )
        .route(
            "/fill/{n}",
            get(
                |s: Session, axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    let _ = s.insert("n", 0u64);
                    let _ = s.insert("data", text(n));
                    ""
                },
            ),
        )
        .layer(layer)
}

fn tower_sessions_routes() -> Router {
    use tower_sessions::Session;
    untouched()
        .route(
            "/read",
            get(|s: Session| async move {
                let v: Option<String> = s.get("data").await.ok().flatten();
                v.map_or(0, |v| v.len()).to_string()
            }),
        )
        .route(
            "/write",
            get(|s: Session| async move {
                let n: u64 = s.get("n").await.ok().flatten().unwrap_or(0);
                let _ = s.insert("n", n + 1).await;
                ""
            }),
        )
        .route(
            "/fill/{n}",
            get(
                |s: Session, axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    let _ = s.insert("n", 0u64).await;
                    let _ = s.insert("data", text(n)).await;
                    ""
                },
            ),
        )
}

fn tower_sessions_memory() -> Router {
    tower_sessions_routes().layer(SessionManagerLayer::new(MemoryStore::default()))
}

fn private_jar() -> Router {
    untouched::<Key>()
        .route(
            "/read",
            get(|jar: PrivateCookieJar| async move {
                let v = jar.get("data").map(|c| c.value().len());
                v.unwrap_or(0).to_string()
            }),
        )
        .route(
            "/write",
            get(|jar: PrivateCookieJar| async move {
                let n: u64 = jar
                    .get("n")
                    .and_then(|c| c.value().parse().ok())
                    .unwrap_or(0);
                (jar.add(Cookie::new("n", (n + 1).to_string())), "")
            }),
        )
        .route(
            "/fill/{n}",
            get(
                |jar: PrivateCookieJar, axum::extract::Path(n): axum::extract::Path<usize>| async move {
                    (
                        jar.add(Cookie::new("n", "0"))
                            .add(Cookie::new("data", text(n))),
                        "",
                    )
                },
            ),
        )
        .with_state(Key::generate())
}

/// A tower-sessions store over a real Redis: one `SET … EXAT` per save, one `GET` per load
/// (records as JSON), on one multiplexed connection, as a Redis store does.
#[derive(Debug, Clone)]
struct RedisStore(redis::aio::MultiplexedConnection);

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait::async_trait]
impl SessionStore for RedisStore {
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let bytes =
            serde_json::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let mut conn = self.0.clone();
        redis::cmd("SET")
            .arg(record.id.to_string())
            .arg(bytes)
            .arg("EXAT")
            .arg(record.expiry_date.unix_timestamp())
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let mut conn = self.0.clone();
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(id.to_string())
            .query_async(&mut conn)
            .await
            .map_err(backend)?;
        bytes
            .map(|b| serde_json::from_slice(&b))
            .transpose()
            .map_err(|e| session_store::Error::Decode(e.to_string()))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let mut conn = self.0.clone();
        redis::cmd("DEL")
            .arg(id.to_string())
            .query_async::<()>(&mut conn)
            .await
            .map_err(backend)
    }
}

fn request(uri: &str, cookie: &str) -> Request<Body> {
    let mut req = Request::get(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::empty()).unwrap()
}

/// The `Cookie` header a browser would send after `/fill/{bytes}`.
async fn cookie_for(app: &Router, bytes: usize) -> String {
    let res = app
        .clone()
        .oneshot(request(&format!("/fill/{bytes}"), ""))
        .await
        .unwrap();
    assert!(res.status().is_success());
    let cookie = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    assert!(!cookie.is_empty());
    cookie
}

fn bench_app(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    name: &str,
    app: &Router,
    cases: &[(&str, &str, String)],
) {
    let mut group = c.benchmark_group(name);
    for (case, uri, cookie) in cases {
        // Sanity: every case answers 200 before it is timed.
        let status = rt
            .block_on(app.clone().oneshot(request(uri, cookie)))
            .unwrap()
            .status();
        assert_eq!(status, 200, "{name} {case}");
        group.bench_function(*case, |b| {
            b.iter(|| {
                rt.block_on(async {
                    app.clone()
                        .oneshot(request(uri, cookie))
                        .await
                        .unwrap()
                        .status()
                })
            })
        });
    }
    group.finish();
}

fn requests(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = |app: &Router| {
        let small = rt.block_on(cookie_for(app, SMALL));
        let medium = rt.block_on(cookie_for(app, MEDIUM));
        vec![
            ("a_untouched", "/untouched", small.clone()),
            ("b_read_100B", "/read", small.clone()),
            ("c_write_100B", "/write", small),
            ("d_read_2KB", "/read", medium.clone()),
            ("e_write_2KB", "/write", medium),
        ]
    };

    let none = untouched();
    let small_ours = rt.block_on(cookie_for(&ours(4096), SMALL));
    let untouched_case = [("a_untouched", "/untouched", small_ours)];
    bench_app(c, &rt, "tower_none", &none, &untouched_case);
    // Any layer on an axum Router boxes every route once more: the floor for (a).
    let identity = untouched().layer(tower::layer::util::Identity::new());
    bench_app(c, &rt, "tower_identity_layer", &identity, &untouched_case);

    let app = ours(4096);
    bench_app(c, &rt, "tower_ours_memo", &app, &cases(&app));
    let app = ours(0);
    bench_app(c, &rt, "tower_ours_nomemo", &app, &cases(&app));
    let app = tower_sessions_memory();
    bench_app(c, &rt, "tower_sessions_memory", &app, &cases(&app));
    let app = private_jar();
    bench_app(c, &rt, "axum_extra_private_jar", &app, &cases(&app));

    match support::RedisServer::start() {
        Ok(server) => {
            let conn = rt.block_on(async {
                let client = redis::Client::open(server.url())?;
                client.get_multiplexed_async_connection().await
            });
            match conn {
                Ok(conn) => {
                    let app =
                        tower_sessions_routes().layer(SessionManagerLayer::new(RedisStore(conn)));
                    bench_app(c, &rt, "tower_sessions_redis", &app, &cases(&app));
                }
                Err(e) => println!("tower-sessions + Redis row skipped: cannot connect ({e})"),
            }
            drop(server);
        }
        Err(e) => println!(
            "tower-sessions + Redis row skipped: no redis-server ({e}; apt-get install redis-server)"
        ),
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = requests
}
criterion_main!(benches);
