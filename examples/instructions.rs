//! Instruction counts per request, for changes too small for wall-clock benches on shared
//! machines (±25 % between runs of one binary): drives N requests of one case through the
//! real actix service, to be run under callgrind, whose counts are deterministic.
//!
//! ```text
//! cargo build --release --example instructions
//! for n in 0 1000; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions read memo $n 2>&1 | grep Collected
//! done   # per request = (count at 1000 − count at 0) / 1000
//! ```
//!
//! Arguments: `read|write|untouched`, `memo|nomemo|actix-session|none`, the number of
//! requests. The session holds three values (a user name, a counter, a CSRF token); `read`
//! reads two of them, `write` reads and rewrites the counter, `untouched` never looks at it.
//! `actix-session` runs the same handlers under actix-session's `CookieSessionStore` (the
//! reference of the speed targets), `none` the same routes with no middleware (handlers that
//! answer alike without a session). `FINGERPRINTS=0` seals without value fingerprints. `CUTOFF=1` gives
//! the keyring a revocation cutoff an hour in the past (`sealed-session revoke`), which the
//! session, issued now, passes: what level 1 of revocation costs when nothing is revoked.
//!
//! `codec codec|floor N`: N seal + open round trips of the ~1 KB session of
//! `benches/codec.rs` (a user, roles, a CSRF token, a JSON-like cart that compresses) through
//! `Codec`, or its floor (the same number of plaintext bytes through the raw AEAD and the
//! `base64` crate, as the bench's `floor-seal+open`).
//!
//! With `--features redis`, `REVOCATION=empty|ids|users` adds a revocation list (level 3)
//! that never connects (no threads): empty, holding 100,000 revoked ids, or those and 10,000
//! revoked users with the user check on; the session itself is not revoked.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use sealed_session::{Algorithm, Keyring, Session, SessionMiddleware};

/// The three routes (and `/seed`) over one session type: ours or actix-session's, which have
/// the same `get`/`insert`.
macro_rules! routes {
    ($session:ty) => {
        |cfg: &mut web::ServiceConfig| {
            cfg.route(
                "/seed",
                web::get().to(|s: $session| async move {
                    s.insert("user", "alice-0123456789".to_owned())?;
                    s.insert("n", 1u64)?;
                    s.insert("csrf", "x".repeat(40))?;
                    Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
                }),
            )
            .route("/untouched", web::get().to(untouched))
            .route(
                "/read",
                web::get().to(|s: $session| async move {
                    let user = s.get::<String>("user")?.unwrap_or_default();
                    let n = s.get::<u64>("n")?.unwrap_or(0);
                    Ok::<_, actix_web::Error>(HttpResponse::Ok().body(format!("{user}{n}")))
                }),
            )
            .route(
                "/write",
                web::get().to(|s: $session| async move {
                    let n = s.get::<u64>("n")?.unwrap_or(0);
                    s.insert("n", n + 1)?;
                    Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
                }),
            );
        }
    };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(case), Some(mode), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("usage: instructions read|write|untouched memo|nomemo|actix-session|none N");
        std::process::exit(2);
    };
    let Ok(n) = n.parse::<usize>() else {
        eprintln!("N must be a number");
        std::process::exit(2);
    };
    if case == "codec" {
        codec_round_trips(mode, n);
        return;
    }
    let uri = match case.as_str() {
        "write" => "/write",
        "untouched" => "/untouched",
        _ => "/read",
    };
    let fingerprints = std::env::var("FINGERPRINTS").map_or(true, |v| v != "0");
    actix_web::rt::System::new().block_on(async move {
        match mode.as_str() {
            "actix-session" => {
                let store = actix_session::storage::CookieSessionStore::default();
                let sessions = actix_session::SessionMiddleware::builder(
                    store,
                    actix_web::cookie::Key::generate(),
                )
                .cookie_name("id".to_owned())
                .build();
                let app = test::init_service(
                    App::new()
                        .wrap(sessions)
                        .configure(routes!(actix_session::Session)),
                )
                .await;
                drive(&app, uri, n).await;
            }
            "none" => {
                let app = test::init_service(App::new().configure(|cfg| {
                    cfg.route(
                        "/seed",
                        web::get().to(|| async { HttpResponse::Ok().finish() }),
                    )
                    .route("/untouched", web::get().to(untouched))
                    .route(
                        "/read",
                        web::get().to(|| async {
                            HttpResponse::Ok().body(format!("{}{}", "alice-0123456789", 1))
                        }),
                    )
                    .route(
                        "/write",
                        web::get().to(|| async { HttpResponse::Ok().finish() }),
                    );
                }))
                .await;
                drive(&app, uri, n).await;
            }
            memo => {
                let memo = if memo == "nomemo" { 0 } else { 1024 };
                let now = SystemTime::now();
                let ring = Keyring::generate(Algorithm::default(), now).expect("keyring");
                let ring = if std::env::var("CUTOFF").is_ok_and(|v| v == "1") {
                    ring.with_not_before(now.checked_sub(std::time::Duration::from_secs(3600)))
                } else {
                    ring
                };
                let builder = SessionMiddleware::builder(ring);
                #[cfg(feature = "redis")]
                let builder = match revocation_list() {
                    Some(list) => builder.revocation(list),
                    None => builder,
                };
                let sessions = builder
                    .cookie_name("__Host-s".to_owned())
                    .open_memo_capacity(memo)
                    .value_fingerprints(fingerprints)
                    .build()
                    .expect("middleware");
                let app =
                    test::init_service(App::new().wrap(sessions).configure(routes!(Session))).await;
                drive(&app, uri, n).await;
            }
        }
    });
}

async fn untouched() -> HttpResponse {
    HttpResponse::Ok().body("hi")
}

/// Seeds a session, then sends `n` requests to `uri` with its cookies.
async fn drive<S, B>(app: &S, uri: &str, n: usize)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let seeded = test::call_service(app, test::TestRequest::get().uri("/seed").to_request()).await;
    let cookie = seeded
        .headers()
        .get_all(header::SET_COOKIE)
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    for _ in 0..n {
        let req = test::TestRequest::get()
            .uri(uri)
            .insert_header((header::COOKIE, cookie.as_str()))
            .to_request();
        assert!(test::call_service(app, req).await.status().is_success());
    }
}

#[cfg(feature = "redis")]
fn revocation_list() -> Option<sealed_session::RedisRevocation> {
    let kind = std::env::var("REVOCATION").ok()?;
    let options = sealed_session::RedisRevocationOptions::new()
        .max_pending(1_000_000)
        .user_key_entry("user");
    let list = sealed_session::RedisRevocation::offline(options);
    let until = SystemTime::now() + std::time::Duration::from_secs(3600);
    let (ids, users) = match kind.as_str() {
        "ids" => (100_000, 0),
        "users" => (100_000, 10_000),
        _ => (0, 0),
    };
    for i in 0..ids {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        id[8..].copy_from_slice(&(i as u64).to_le_bytes());
        list.revoke_session(id, until);
    }
    for i in 0..users {
        list.revoke_user(&format!("user-{i}"), SystemTime::now())
            .ok()?;
    }
    Some(list)
}

/// `codec codec|floor N` (see the header).
fn codec_round_trips(mode: &str, n: usize) {
    use rand::{Rng, RngExt, SeedableRng};
    use sealed_session::codec::floor::RawAead;
    use sealed_session::{Codec, SessionConfig, SessionState};

    let now = SystemTime::now();
    let ring = Keyring::generate(Algorithm::default(), now).expect("keyring");
    let codec = Codec::new(SessionConfig::new().total_budget(32 * 1024)).expect("codec");
    let mut rng = rand::rngs::StdRng::seed_from_u64(1024);
    let mut state = SessionState::new(now, std::time::Duration::from_secs(86_400));
    state.insert("user", "alice@example.com").expect("insert");
    state
        .insert("roles", &vec!["admin".to_owned(), "editor".to_owned()])
        .expect("insert");
    let mut csrf = [0u8; 32];
    rng.fill_bytes(&mut csrf);
    state
        .insert("csrf", serde_bytes::Bytes::new(&csrf))
        .expect("insert");
    let mut draft = String::new();
    let mut i = 0;
    while draft.len() + 120 < 1024 {
        draft.push_str(&format!(
            "{{\"sku\":\"SKU-{:05}\",\"name\":\"Item number {i}\",\"qty\":{},\"price\":{}.99}},",
            rng.random_range(0..99_999),
            rng.random_range(1..5),
            rng.random_range(1..500)
        ));
        i += 1;
    }
    state.insert("cart", &draft).expect("insert");
    let plain: usize = state.entries().values().map(Vec::len).sum();
    if mode == "floor" {
        let raw = RawAead::new(Algorithm::default(), &[7; 32]);
        let bytes = vec![0x5au8; plain + 50];
        for _ in 0..n {
            let mut nonce = vec![0u8; raw.nonce_len()];
            rand::rng().fill_bytes(&mut nonce);
            let text = raw.seal(&nonce, &bytes);
            assert!(raw.open(&nonce, &text).is_some());
        }
        return;
    }
    for _ in 0..n {
        let lines = codec.seal_lines(&ring, &state, now).expect("seal");
        let header = lines
            .iter()
            .filter_map(|l| l.split(';').next())
            .collect::<Vec<_>>()
            .join("; ");
        let pairs = sealed_session::codec::cookie_pairs([header.as_bytes()]);
        assert!(codec.open(&ring, pairs, now).expect("open").is_some());
    }
}
