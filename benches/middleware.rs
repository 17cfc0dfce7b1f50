//! Per-request cost through the real service (`init_service` + `call_service`), ours beside
//! the same handler with no middleware and with actix-session's `CookieSessionStore`, in one
//! run: (a) untouched, (b) read ~100 B, (c) write ~100 B, (d) read ~2 KB, (e) write ~2 KB,
//! (f) read ~10 KB (several chunks for us; actix-session's cookie store cannot hold it).
//!
//! Arms (criterion ids `request/<case>/<arm>`): `none` (the same routes with no middleware,
//! same bodies: each case's floor), `sealed-session` (default memo), `sealed-session-nomemo`,
//! `sealed-session-cutoff` (revocation level 1, reads only), `actix-session` (its
//! `CookieSessionStore`) and `actix-session-redis` (its `RedisSessionStore` against a real
//! `redis-server` the bench starts on 127.0.0.1 and stops by PID; skipped with a
//! `skipped: …` line when none can be started). At the end, `scripts/bench-table.py` prints
//! the issue-14 table (medians and ratios) to stderr and writes it to
//! `target/criterion/middleware-table.md`.
//!
//! Group `hostile` (issue 9 A8): the worst `Cookie` header that fits the budgets against a
//! memo-miss open of a normal session; its figures are recorded in SECURITY.md.
//!
//! `cargo bench --bench middleware` (about 4 minutes of running after the build); figures are
//! recorded in the README.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

mod support;

use support::text;

use std::time::{Duration, SystemTime};

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use criterion::{BenchmarkId, Criterion, criterion_group};
use sealed_session::{Algorithm, Keyring, SessionMiddleware};

const SMALL: usize = 100;
const MEDIUM: usize = 2 * 1024;
const LARGE: usize = 10 * 1024;

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

/// The cases in the order they run; every arm of a case runs back to back, so that load on a
/// shared machine (which drifts over minutes) hits the arms of one case alike.
const CASES: [&str; 7] = [
    "a-untouched",
    "b-read-100B",
    "b-read-100B-unchecked",
    "c-write-100B",
    "d-read-2KB",
    "e-write-2KB",
    "f-read-10KB",
];

/// What a case requests, and what the route answers for every arm (`none` included).
fn route(case: &str) -> (&'static str, String) {
    match case {
        "a-untouched" => ("/untouched", "hi".to_owned()),
        "b-read-100B" | "b-read-100B-unchecked" => ("/read", SMALL.to_string()),
        "d-read-2KB" => ("/read", MEDIUM.to_string()),
        "f-read-10KB" => ("/read", LARGE.to_string()),
        "c-write-100B" | "e-write-2KB" => ("/write", String::new()),
        other => unreachable!("no case {other}"),
    }
}

/// One initialised app of any middleware, behind one interface so the arms of a case can be
/// benchmarked side by side.
trait Arm {
    fn status(&self, rt: &actix_web::rt::Runtime, req: Request) -> u16;
    fn answer(&self, rt: &actix_web::rt::Runtime, req: Request) -> (u16, Vec<u8>);
    fn fill(&self, rt: &actix_web::rt::Runtime, n: usize) -> String;
}

struct Served<S>(S);

impl<S, B> Arm for Served<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    fn status(&self, rt: &actix_web::rt::Runtime, req: Request) -> u16 {
        rt.block_on(async { test::call_service(&self.0, req).await.status().as_u16() })
    }

    fn answer(&self, rt: &actix_web::rt::Runtime, req: Request) -> (u16, Vec<u8>) {
        rt.block_on(async {
            let res = test::call_service(&self.0, req).await;
            let status = res.status().as_u16();
            (status, test::read_body(res).await.to_vec())
        })
    }

    fn fill(&self, rt: &actix_web::rt::Runtime, n: usize) -> String {
        rt.block_on(cookie_for(&self.0, n))
    }
}

/// An arm's app and the `Cookie` header it is sent for each case it takes part in.
struct Entry<'a> {
    arm: &'static str,
    app: &'a dyn Arm,
    cookies: Vec<(&'static str, String)>,
}

/// Criterion ids `request/<case>/<arm>` (files under `target/criterion/request/<case>/<arm>/`).
/// Each (case, arm) is first checked once: 200 and the body every arm gives for that case, so
/// a broken arm fails the run instead of timing an error page. Settings: 1 s warm-up, 3 s of
/// measurement, 40 samples (~4.5 s per benchmark with the analysis; 33 benchmarks).
fn bench_cases(c: &mut Criterion, rt: &actix_web::rt::Runtime, entries: &[Entry<'_>]) {
    let mut group = c.benchmark_group("request");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40);
    for case in CASES {
        let (uri, body) = route(case);
        for entry in entries {
            let Some((_, cookie)) = entry.cookies.iter().find(|(c, _)| *c == case) else {
                continue;
            };
            let req = || {
                test::TestRequest::get()
                    .uri(uri)
                    .insert_header((header::COOKIE, cookie.as_str()))
                    .to_request()
            };
            let (status, got) = entry.app.answer(rt, req());
            assert_eq!(status, 200, "{case}/{}", entry.arm);
            assert_eq!(got, body.as_bytes(), "{case}/{}: body", entry.arm);
            group.bench_function(BenchmarkId::new(case, entry.arm), |b| {
                b.iter(|| entry.app.status(rt, req()))
            });
        }
    }
    group.finish();
}

/// The same routes with no middleware, answering what the session arms answer (`/read`: the
/// length of a `read_len`-byte value): the floor of every case.
fn bare(rt: &actix_web::rt::Runtime, read_len: usize) -> Box<dyn Arm> {
    Box::new(Served(
        rt.block_on(test::init_service(
            App::new()
                .route(
                    "/untouched",
                    web::get().to(|| async { HttpResponse::Ok().body("hi") }),
                )
                .route(
                    "/read",
                    web::get()
                        .to(move || async move { HttpResponse::Ok().body(read_len.to_string()) }),
                )
                .route(
                    "/write",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )),
    ))
}

/// Ours, an app with the given middleware and the session handlers.
fn ours_app(rt: &actix_web::rt::Runtime, ring: Keyring, memo: usize) -> Box<dyn Arm> {
    Box::new(Served(rt.block_on(test::init_service(
        App::new().wrap(ours(ring, memo)).configure(handlers!(
            sealed_session::Session,
            get,
            |s: &sealed_session::Session, n: u64| {
                let _ = s.insert("n", n);
            }
        )),
    ))))
}

/// actix-session with `store`, the same handlers.
fn theirs_app<St>(rt: &actix_web::rt::Runtime, store: St) -> Box<dyn Arm>
where
    St: actix_session::storage::SessionStore + 'static,
{
    Box::new(Served(
        rt.block_on(test::init_service(
            App::new()
                .wrap(
                    actix_session::SessionMiddleware::builder(
                        store,
                        actix_web::cookie::Key::generate(),
                    )
                    .cookie_name("id".into())
                    .build(),
                )
                .configure(handlers!(
                    actix_session::Session,
                    get,
                    |s: &actix_session::Session, n: u64| {
                        let _ = s.insert("n", n);
                    }
                )),
        )),
    ))
}

/// The `Cookie` header a client of `app` holding a session of `n` bytes would send.
fn cookie(rt: &actix_web::rt::Runtime, app: &dyn Arm, n: usize) -> String {
    app.fill(rt, n)
}

fn requests(c: &mut Criterion) {
    let rt = actix_web::rt::Runtime::new().unwrap();
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();

    let memo_app = ours_app(&rt, ring.clone(), 4096);
    let small = cookie(&rt, &*memo_app, SMALL);
    let medium = cookie(&rt, &*memo_app, MEDIUM);
    let large = cookie(&rt, &*memo_app, LARGE);
    eprintln!(
        "sealed-session cookie header bytes: {} / {} / {}",
        small.len(),
        medium.len(),
        large.len()
    );
    let legacy = legacy_cookie(&ring, &small);
    let ours_cookies = vec![
        ("a-untouched", small.clone()),
        ("b-read-100B", small.clone()),
        // The same session sealed without fingerprints (as before them): what checking costs.
        ("b-read-100B-unchecked", legacy),
        ("c-write-100B", small.clone()),
        ("d-read-2KB", medium.clone()),
        ("e-write-2KB", medium.clone()),
        ("f-read-10KB", large.clone()),
    ];
    // No middleware, each case with the same cookie header as ours (never parsed): the floors.
    let (bare_small, bare_medium, bare_large) =
        (bare(&rt, SMALL), bare(&rt, MEDIUM), bare(&rt, LARGE));
    let mut entries = vec![
        Entry {
            arm: "none",
            app: &*bare_small,
            cookies: vec![
                ("a-untouched", small.clone()),
                ("b-read-100B", small.clone()),
                ("c-write-100B", small.clone()),
            ],
        },
        Entry {
            arm: "none",
            app: &*bare_medium,
            cookies: vec![
                ("d-read-2KB", medium.clone()),
                ("e-write-2KB", medium.clone()),
            ],
        },
        Entry {
            arm: "none",
            app: &*bare_large,
            cookies: vec![("f-read-10KB", large.clone())],
        },
        Entry {
            arm: "sealed-session",
            app: &*memo_app,
            cookies: ours_cookies.clone(),
        },
    ];
    // The same cookies through a middleware without the open memo: every request decodes.
    let nomemo_app = ours_app(&rt, ring.clone(), 0);
    entries.push(Entry {
        arm: "sealed-session-nomemo",
        app: &*nomemo_app,
        cookies: ours_cookies,
    });
    // Revocation level 1 with nothing revoked: a cutoff an hour before the session was issued.
    let cutoff_app = ours_app(
        &rt,
        ring.clone()
            .with_not_before(SystemTime::now().checked_sub(Duration::from_secs(3600))),
        4096,
    );
    entries.push(Entry {
        arm: "sealed-session-cutoff",
        app: &*cutoff_app,
        cookies: vec![("b-read-100B", small), ("d-read-2KB", medium)],
    });

    let cookie_app = theirs_app(&rt, actix_session::storage::CookieSessionStore::default());
    let small = cookie(&rt, &*cookie_app, SMALL);
    let medium = cookie(&rt, &*cookie_app, MEDIUM);
    eprintln!(
        "actix-session cookie header bytes: {} / {}",
        small.len(),
        medium.len()
    );
    entries.push(Entry {
        arm: "actix-session",
        app: &*cookie_app,
        cookies: vec![
            ("a-untouched", small.clone()),
            ("b-read-100B", small.clone()),
            ("c-write-100B", small),
            ("d-read-2KB", medium.clone()),
            ("e-write-2KB", medium),
        ],
    });

    // actix-session over its `RedisSessionStore` (the central-store alternative) against a
    // `redis-server` started here on loopback, stopped (by PID) when `server` drops at the end.
    const REDIS_ARM: &str = "actix-session + RedisSessionStore";
    let server = support::RedisServer::start()
        .map_err(|e| eprintln!("skipped: {REDIS_ARM} (no redis-server: {e})"))
        .ok();
    // The store's connection manager is a task on this runtime: build it inside.
    let redis_app = server.as_ref().and_then(|server| {
        rt.block_on(actix_session::storage::RedisSessionStore::new(server.url()))
            .map_err(|e| eprintln!("skipped: {REDIS_ARM} (no redis-server: cannot connect: {e})"))
            .ok()
            .map(|store| theirs_app(&rt, store))
    });
    if let Some(app) = &redis_app {
        let small = cookie(&rt, &**app, SMALL);
        let medium = cookie(&rt, &**app, MEDIUM);
        let large = cookie(&rt, &**app, LARGE);
        entries.push(Entry {
            arm: "actix-session-redis",
            app: &**app,
            cookies: vec![
                ("a-untouched", small.clone()),
                ("b-read-100B", small.clone()),
                ("c-write-100B", small),
                ("d-read-2KB", medium.clone()),
                ("e-write-2KB", medium),
                ("f-read-10KB", large),
            ],
        });
    }

    bench_cases(c, &rt, &entries);
    drop(entries);
    drop(redis_app);
    drop(server);
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

/// `criterion_main!` plus the table: after a full run (`cargo bench`, which passes `--bench`),
/// `scripts/bench-table.py` reads this run's medians and prints the README's table to stderr
/// and to `<criterion dir>/middleware-table.md`; values older than this run (a filtered run)
/// show as "—".
fn main() {
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    benches();
    Criterion::default().configure_from_args().final_summary();
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --benches`: one iteration each, no estimates
    }
    // Where criterion writes (its own order of preference); the bench binary lives in
    // <target>/<profile>/deps/.
    let dir = std::env::var_os("CRITERION_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|t| std::path::Path::new(&t).join("criterion"))
        })
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.ancestors().nth(3)?.join("criterion"))
        })
        .unwrap_or_else(|| "target/criterion".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/bench-table.py");
    let out = dir.join("middleware-table.md");
    let status = std::process::Command::new("python3")
        .arg(script)
        .arg("--dir")
        .arg(&dir)
        .arg("--since")
        .arg(started.to_string())
        .arg("--out")
        .arg(&out)
        .stdout(std::process::Stdio::from(std::io::stderr()))
        .status();
    match status {
        Ok(s) if s.success() => eprintln!("table written to {}", out.display()),
        Ok(s) => eprintln!("scripts/bench-table.py failed ({s})"),
        Err(e) => eprintln!("no table: cannot run python3 ({e}); run scripts/bench-table.py"),
    }
}
