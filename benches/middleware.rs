//! Per-request cost through the real service (`init_service` + `call_service`), ours beside
//! the same handler with no middleware and with actix-session's `CookieSessionStore`, in one
//! run: (a) untouched, (b) read ~100 B, (c) write ~100 B, (d) read ~2 KB, (e) write ~2 KB,
//! (f) read ~10 KB (several chunks for us; actix-session cannot hold it).
//!
//! Group `hostile` (issue 9 A8): the worst `Cookie` header that fits the budgets against a
//! memo-miss open of a normal session; its figures are recorded in SECURITY.md.
//!
//! `cargo bench --bench middleware`; figures are recorded in the README.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::time::{Duration, SystemTime};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use criterion::{Criterion, criterion_group, criterion_main};
use sealed_session::{Algorithm, Keyring, SessionMiddleware};

const SMALL: usize = 100;
const MEDIUM: usize = 2 * 1024;
const LARGE: usize = 10 * 1024;

/// Random base64url text of `n` characters (incompressible, like tokens).
fn text(n: usize) -> String {
    use rand::RngExt;
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

macro_rules! handlers {
    ($session:ty, $get:ident, $insert:expr) => {
        |cfg: &mut web::ServiceConfig| {
            cfg.route(
                "/untouched",
                web::get().to(|| async { HttpResponse::Ok().body("hi") }),
            )
            .route(
                "/read",
                web::get().to(|s: $session| async move {
                    let v: Option<String> = s.$get("data").ok().flatten();
                    HttpResponse::Ok().body(v.map_or(0, |v| v.len()).to_string())
                }),
            )
            .route(
                "/write",
                web::get().to(|s: $session| async move {
                    let n: u64 = s.$get("n").ok().flatten().unwrap_or(0);
                    #[allow(clippy::redundant_closure_call)]
                    ($insert)(&s, n + 1);
                    HttpResponse::Ok().finish()
                }),
            )
            .route(
                "/fill/{n}",
                web::get().to(|s: $session, n: web::Path<usize>| async move {
                    #[allow(clippy::redundant_closure_call)]
                    ($insert)(&s, 0);
                    let _ = s.insert("data", text(n.into_inner()));
                    HttpResponse::Ok().finish()
                }),
            );
        }
    };
}

/// Ours with the default configuration but a 16 KiB budget; `memo` sessions remembered per
/// worker (0: every request opens its cookies from scratch).
fn ours(ring: Keyring, memo: usize) -> SessionMiddleware {
    SessionMiddleware::builder(ring)
        .cookie_name("__Host-s".into())
        .total_budget(16 * 1024)
        .open_memo_capacity(memo)
        .build()
        .unwrap()
}

fn theirs() -> actix_session::SessionMiddleware<actix_session::storage::CookieSessionStore> {
    actix_session::SessionMiddleware::builder(
        actix_session::storage::CookieSessionStore::default(),
        actix_web::cookie::Key::generate(),
    )
    .cookie_name("id".into())
    .build()
}

/// The `Cookie` header a client holding a session of `n` bytes would send.
async fn cookie_for<S, B>(app: &S, n: usize) -> String
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(
        app,
        test::TestRequest::get()
            .uri(&format!("/fill/{n}"))
            .to_request(),
    )
    .await;
    assert!(res.status().is_success(), "fill {n}: {}", res.status());
    res.headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn bench_app<S, B>(
    c: &mut Criterion,
    rt: &actix_web::rt::Runtime,
    name: &str,
    app: &S,
    cookies: &[(&str, Option<String>)],
) where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let mut group = c.benchmark_group("request");
    for (case, cookie) in cookies {
        let (uri, cookie) = match case.split_once(':') {
            Some((uri, _)) => (uri, cookie.clone()),
            None => (*case, cookie.clone()),
        };
        group.bench_function(format!("{case}/{name}"), |b| {
            b.iter(|| {
                let mut req = test::TestRequest::get().uri(uri);
                if let Some(c) = &cookie {
                    req = req.insert_header((header::COOKIE, c.as_str()));
                }
                rt.block_on(async { test::call_service(app, req.to_request()).await.status() })
            })
        });
    }
    group.finish();
}

fn requests(c: &mut Criterion) {
    let rt = actix_web::rt::Runtime::new().unwrap();

    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
    let ours_app = |memo: usize| {
        rt.block_on(test::init_service(
            App::new()
                .wrap(ours(ring.clone(), memo))
                .configure(handlers!(
                    sealed_session::Session,
                    get,
                    |s: &sealed_session::Session, n: u64| {
                        let _ = s.insert("n", n);
                    }
                )),
        ))
    };
    let memo_app = ours_app(4096);
    let small = rt.block_on(cookie_for(&memo_app, SMALL));
    let medium = rt.block_on(cookie_for(&memo_app, MEDIUM));
    let large = rt.block_on(cookie_for(&memo_app, LARGE));
    eprintln!(
        "sealed-session cookie header bytes: {} / {} / {}",
        small.len(),
        medium.len(),
        large.len()
    );
    // No middleware, the same request with the same cookie header: the floor of case (a).
    let bare = rt.block_on(test::init_service(App::new().route(
        "/untouched",
        web::get().to(|| async { HttpResponse::Ok().body("hi") }),
    )));
    bench_app(
        c,
        &rt,
        "none",
        &bare,
        &[("/untouched:a", Some(small.clone()))],
    );
    let legacy = legacy_cookie(&ring, &small);
    let cases = [
        ("/untouched:a", Some(small.clone())),
        ("/read:b-100B", Some(small.clone())),
        // The same session sealed without fingerprints (as before them): what checking costs.
        ("/read:b-100B-unchecked", Some(legacy)),
        ("/write:c-100B", Some(small.clone())),
        ("/read:d-2KB", Some(medium.clone())),
        ("/write:e-2KB", Some(medium.clone())),
        ("/read:f-10KB", Some(large)),
    ];
    bench_app(c, &rt, "sealed-session", &memo_app, &cases);
    // Revocation level 1 with nothing revoked: a cutoff an hour before the session was issued.
    let cutoff_app = rt.block_on(test::init_service(
        App::new()
            .wrap(ours(
                ring.clone()
                    .with_not_before(SystemTime::now().checked_sub(Duration::from_secs(3600))),
                4096,
            ))
            .configure(handlers!(
                sealed_session::Session,
                get,
                |s: &sealed_session::Session, n: u64| {
                    let _ = s.insert("n", n);
                }
            )),
    ));
    bench_app(
        c,
        &rt,
        "sealed-session-cutoff",
        &cutoff_app,
        &[
            ("/read:b-100B", Some(small.clone())),
            ("/read:d-2KB", Some(medium.clone())),
        ],
    );
    // The same cookies through a middleware without the open memo: every request decodes.
    bench_app(c, &rt, "sealed-session-nomemo", &ours_app(0), &cases);

    let theirs_app = rt.block_on(test::init_service(App::new().wrap(theirs()).configure(
        handlers!(
            actix_session::Session,
            get,
            |s: &actix_session::Session, n: u64| {
                let _ = s.insert("n", n);
            }
        ),
    )));
    let small = rt.block_on(cookie_for(&theirs_app, SMALL));
    let medium = rt.block_on(cookie_for(&theirs_app, MEDIUM));
    eprintln!(
        "actix-session cookie header bytes: {} / {}",
        small.len(),
        medium.len()
    );
    bench_app(
        c,
        &rt,
        "actix-session",
        &theirs_app,
        &[
            ("/untouched:a", Some(small.clone())),
            ("/read:b-100B", Some(small.clone())),
            ("/write:c-100B", Some(small)),
            ("/read:d-2KB", Some(medium.clone())),
            ("/write:e-2KB", Some(medium)),
        ],
    );
}

/// `header`'s session sealed again without fingerprints (schema 1, as earlier releases
/// wrote it): its values read unchecked.
fn legacy_cookie(ring: &Keyring, header: &str) -> String {
    let codec = sealed_session::Codec::new(
        sealed_session::SessionConfig::new()
            .cookie_name("__Host-s")
            .total_budget(16 * 1024),
    )
    .unwrap();
    let now = SystemTime::now();
    let pairs = sealed_session::codec::cookie_pairs([header.as_bytes()]);
    let typed = codec.open(ring, pairs, now).unwrap().unwrap().state;
    assert!(typed.fingerprint("data").is_some());
    let state = sealed_session::SessionState::from_parts(
        typed.id(),
        typed.issued_at(),
        typed.expires_at(),
        typed.last_seen(),
        typed.entries().clone(),
    );
    codec
        .seal(ring, &state, now, &mut rand::rng())
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The value layer alone, in one run so that load on a shared machine hits both sides alike:
/// `insert` + `get` with a fingerprint (checked) beside the same bytes stored without one
/// (`insert_raw`, read unchecked as before fingerprints): the fingerprint's own cost.
fn values(c: &mut Criterion) {
    use std::hint::black_box;

    use sealed_session::SessionState;

    let base = SessionState::new(SystemTime::now(), Duration::from_secs(60));
    let data = text(SMALL);
    let mut group = c.benchmark_group("value");
    group.bench_function("u64/typed", |b| {
        b.iter(|| {
            let mut s = base.clone();
            s.insert("n", black_box(&7u64)).unwrap();
            black_box(s.get::<u64>("n").unwrap())
        })
    });
    group.bench_function("u64/unchecked", |b| {
        b.iter(|| {
            let mut s = base.clone();
            s.insert_raw(
                "n".to_owned(),
                postcard::to_allocvec(black_box(&7u64)).unwrap(),
            );
            black_box(s.get::<u64>("n").unwrap())
        })
    });
    let mut typed = base.clone();
    typed.insert("data", &data).unwrap();
    let mut unchecked = base.clone();
    unchecked.insert_raw("data".to_owned(), postcard::to_allocvec(&data).unwrap());
    group.bench_function("get-string-100B/typed", |b| {
        b.iter(|| black_box(typed.get::<String>(black_box("data")).unwrap()))
    });
    group.bench_function("get-string-100B/unchecked", |b| {
        b.iter(|| black_box(unchecked.get::<String>(black_box("data")).unwrap()))
    });
    group.finish();
}

/// The worst `Cookie` header that fits `total_budget` (issue 9 A8): `firsts` values of chunk 0
/// × `seconds` values of chunk 1 (4 × 2 = 8 candidate sets, the most the decoder tries), each
/// set as long as the budget allows and each value within 4096 bytes, all valid base64 and all
/// starting with the real header (version, algorithm, known key id, nonce) of `real`, a
/// genuine cookie of this app: nothing short of the AEAD can refuse them one by one.
fn hostile_header(real: &str, total_budget: usize, firsts: u64, seconds: u64) -> String {
    let armor = real
        .strip_prefix("__Host-s=1.")
        .expect("a one-chunk session");
    let header = &armor[..40]; // 30 bytes: version, algorithm, key id, 24-byte nonce
    let count = total_budget.div_ceil(4092);
    let piece = (total_budget / count / 4 * 4).min(4092);
    let mut pairs = Vec::new();
    for i in 0..firsts {
        let filler = seeded_text(piece - header.len(), i);
        pairs.push(format!("__Host-s={count}.{header}{filler}"));
    }
    for i in 0..seconds {
        pairs.push(format!("__Host-s.1={}", seeded_text(piece, 100 + i)));
    }
    for c in 2..count {
        pairs.push(format!(
            "__Host-s.{c}={}",
            seeded_text(piece, 200 + c as u64)
        ));
    }
    pairs.join("; ")
}

/// The worst header that is still decrypted (issue 9 A8): one full-budget set and a second set
/// (sharing chunk 1) that fills what the decoder's work bound leaves, one full-budget set plus
/// `min(budget, 6144)` armored characters in all, every set with a real header.
fn worst_decrypted_header(real: &str, total_budget: usize) -> String {
    let armor = real
        .strip_prefix("__Host-s=1.")
        .expect("a one-chunk session");
    let header = &armor[..40];
    let count = total_budget.div_ceil(4092);
    let piece = (total_budget / count / 4 * 4).min(4092);
    let left = total_budget + total_budget.min(6144) - count * piece;
    let second = piece.min(left - piece) / 4 * 4;
    let mut pairs = vec![
        format!("__Host-s={count}.{header}{}", seeded_text(piece - 40, 1)),
        format!("__Host-s=2.{header}{}", seeded_text(second - 40, 2)),
    ];
    for c in 1..count {
        pairs.push(format!(
            "__Host-s.{c}={}",
            seeded_text(piece, 200 + c as u64)
        ));
    }
    pairs.join("; ")
}

fn seeded_text(n: usize, seed: u64) -> String {
    use rand::{RngExt, SeedableRng};
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

/// Issue 9 A8: hostile headers against a memo-miss open of a normal (~100 B) session, at the
/// default total budget (6144) and at 16 KiB. `8x` is the worst header of [`hostile_header`]
/// (refused before anything is decoded: its sets would cost more than the decoder's work
/// bound); `worst-decrypted` is [`worst_decrypted_header`] (at the default budget: two
/// full-budget sets).
fn hostile(c: &mut Criterion) {
    let rt = actix_web::rt::Runtime::new().unwrap();
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
    let mut group = c.benchmark_group("hostile");
    for (label, budget) in [("default", 6144), ("16KiB", 16 * 1024)] {
        let app = rt.block_on(test::init_service(
            App::new()
                .wrap(
                    SessionMiddleware::builder(ring.clone())
                        .cookie_name("__Host-s".into())
                        .total_budget(budget)
                        .open_memo_capacity(0)
                        .build()
                        .unwrap(),
                )
                .configure(handlers!(
                    sealed_session::Session,
                    get,
                    |s: &sealed_session::Session, n: u64| {
                        let _ = s.insert("n", n);
                    }
                )),
        ));
        let normal = rt.block_on(cookie_for(&app, SMALL));
        let cases = [
            ("memo-miss-100B".to_owned(), normal.clone(), 200),
            (
                format!("8x{budget}B"),
                hostile_header(&normal, budget, 4, 2),
                200,
            ),
            (
                "worst-decrypted".to_owned(),
                worst_decrypted_header(&normal, budget),
                200,
            ),
            // The floor: the 8x header's bytes under names that are not ours.
            (
                "8x-unrelated-names".to_owned(),
                hostile_header(&normal, budget, 4, 2).replace("__Host-s", "__Other"),
                200,
            ),
        ];
        for (case, cookie, status) in cases {
            eprintln!(
                "hostile {label}/{case}: Cookie header of {} bytes",
                cookie.len()
            );
            group.bench_function(format!("{label}/{case}"), |b| {
                b.iter(|| {
                    let req = test::TestRequest::get()
                        .uri("/read")
                        .insert_header((header::COOKIE, cookie.as_str()));
                    let got = rt.block_on(async {
                        test::call_service(&app, req.to_request()).await.status()
                    });
                    assert_eq!(got.as_u16(), status);
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = requests, values, hostile }
criterion_main!(benches);
