//! Instruction counts per request through the tower layer, for the untouched case that
//! wall-clock benches on shared machines cannot resolve: drives N requests through an axum
//! `Router` with `tower::ServiceExt::oneshot` on a current-thread runtime, under callgrind.
//!
//! ```text
//! cargo build --release --example instructions_tower --features axum
//! for n in 0 1000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions_tower ours untouched $n 2>&1 | grep Collected
//! done   # per request = (count at 1000 − count at 0) / 1000
//! ```
//!
//! Arguments: `none|identity|ours|ts|jar` (no layer, a pass-through layer, `SessionLayer`,
//! tower-sessions 0.15 with its `MemoryStore`, axum-extra's `PrivateCookieJar`),
//! `untouched|read|write`, the number of requests. Every request carries a ~100 B session.

use std::time::SystemTime;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, header};
use axum::routing::get;
use sealed_session::{Algorithm, Keyring, Session, SessionLayer};
use tower::ServiceExt as _;

fn routes() -> Router {
    Router::new()
        .route("/untouched", get(|| async { "hi" }))
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
            "/seed",
            get(|s: Session| async move {
                let _ = s.insert("n", 0u64);
                let _ = s.insert("data", "x".repeat(100));
                ""
            }),
        )
}

fn tower_sessions() -> Router {
    use tower_sessions::Session;
    Router::new()
        .route("/untouched", get(|| async { "hi" }))
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
            "/seed",
            get(|s: Session| async move {
                let _ = s.insert("n", 0u64).await;
                let _ = s.insert("data", "x".repeat(100)).await;
                ""
            }),
        )
        .layer(tower_sessions::SessionManagerLayer::new(
            tower_sessions::MemoryStore::default(),
        ))
}

fn private_jar() -> Router {
    use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar};
    Router::new()
        .route("/untouched", get(|| async { "hi" }))
        .route(
            "/read",
            get(|jar: PrivateCookieJar| async move {
                jar.get("data").map_or(0, |c| c.value().len()).to_string()
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
            "/seed",
            get(|jar: PrivateCookieJar| async move {
                (
                    jar.add(Cookie::new("n", "0"))
                        .add(Cookie::new("data", "x".repeat(100))),
                    "",
                )
            }),
        )
        .with_state(Key::generate())
}

fn request(uri: &str, cookie: &str) -> Request<Body> {
    let mut req = Request::get(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    req.body(Body::empty()).unwrap_or_default()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(rig), Some(case), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: instructions_tower none|identity|ours untouched|read|write N");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a number");
        std::process::exit(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).expect("keyring");
    let sessions = SessionLayer::builder(ring)
        .cookie_name("__Host-s".to_owned())
        .build()
        .expect("layer");
    let app = match rig.as_str() {
        "none" => routes(),
        "identity" => routes().layer(tower::layer::util::Identity::new()),
        "ts" => tower_sessions(),
        "jar" => private_jar(),
        _ => routes().layer(sessions.clone()),
    };
    let seeder = match rig.as_str() {
        "ts" | "jar" => app.clone(),
        _ => routes().layer(sessions),
    };
    let cookie = rt.block_on(async {
        let res = seeder.oneshot(request("/seed", "")).await.expect("seed");
        res.headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let uri = format!("/{case}");
    rt.block_on(async {
        for _ in 0..n {
            let res = app.clone().oneshot(request(&uri, &cookie)).await;
            std::hint::black_box(res.map(|r| r.status()).ok());
        }
    });
}
