//! The open memo under a realistic mix (issue 14): many distinct users, each holding a real
//! sealed session (~100 B: a user name, a counter, a CSRF token), visiting with Zipf-distributed
//! frequencies through 1 or 2 workers, 90 % reads and 10 % writes, at several memo sizes.
//! Prints, per configuration, the memo's hit rate, the mean wall-clock cost of a request and
//! the memo's approximate memory, as a markdown table.
//!
//! ```text
//! cargo run --release --example memo_study            # ~1-2 minutes for the whole sweep
//! USERS=100000 REQUESTS=200000 ZIPF_S=1.0 WRITES=10 MEMOS=0,1024,4096,16384,65536 \
//!   WORKERS=1,2 SEED=1 cargo run --release --example memo_study
//! ```
//!
//! Environment (all optional): `USERS` distinct users (100,000); `REQUESTS` timed requests per
//! configuration (200,000), after a warm-up of `USERS` requests drawn the same way (at least
//! one pass's worth); `ZIPF_S` the exponent (1.0: the user of rank k visits in proportion to
//! 1/k^s); `WRITES` the percentage of writes (10); `MEMOS` the memo sizes, entries per worker
//! (`open_memo_capacity`); `WORKERS` the worker counts; `SEED` the random seed (the same
//! sequence of users and reads/writes for every configuration).
//!
//! How it works, through the public API only: the users' sessions are seeded once through the
//! real middleware (`/seed`) and every configuration starts from those cookies. A worker is
//! its own `actix_web::test::init_service` of an `App` wrapped in a clone of one
//! `SessionMiddleware` (so its own memo, as an actix worker has); requests go round-robin over
//! the workers, as a load balancer would, all on this one thread (so the timings are cost, not
//! throughput). A read (`/read`) reads the name and counter; a write (`/write`) reads and
//! increments the counter, and its `Set-Cookie` replaces the cookies that user sends next, as
//! a browser would. The hit rate is `SessionStats::memo_hits / opened` over the timed phase;
//! "µs" is the mean time of `call_service` alone (request building and cookie bookkeeping
//! excluded). A `no middleware` row gives the floor of the same routes in the same harness.
//! "Repeat rate" is the share of timed requests whose exact cookies that worker had already
//! been sent (what an unbounded memo could answer). Memory is estimated as entries × (cookie
//! bytes + value bytes), the measure the memo itself bounds (16 MiB per memo), with entries =
//! min(capacity, distinct cookies the worker opened, 16 MiB / entry); the real footprint adds
//! the decoded session's maps and hash-table overhead.
//!
//! An example rather than a criterion bench: it sweeps configurations and reports counters
//! (hit rates) beside times, with the request count set from the environment.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant, SystemTime};

use actix_web::cookie::Cookie;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sealed_session::{Algorithm, Keyring, Session, SessionMiddleware};

/// The memo's own bound on cookie and value bytes (`open_memo_capacity`'s doc: 16 MiB).
const MEMO_BYTES: usize = 16 << 20;

/// The session routes, as `examples/instructions.rs` has them.
fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/seed/{user}",
        web::get().to(|s: Session, user: web::Path<u32>| async move {
            s.insert("user", format!("user-{:011}", user.into_inner()))?;
            s.insert("n", 1u64)?;
            s.insert("csrf", token(40))?;
            Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
        }),
    )
    .route(
        "/read",
        web::get().to(|s: Session| async move {
            let user = s.get::<String>("user")?.unwrap_or_default();
            let n = s.get::<u64>("n")?.unwrap_or(0);
            Ok::<_, actix_web::Error>(HttpResponse::Ok().body(format!("{user}{n}")))
        }),
    )
    .route(
        "/write",
        web::get().to(|s: Session| async move {
            let n = s.get::<u64>("n")?.unwrap_or(0);
            s.insert("n", n + 1)?;
            Ok::<_, actix_web::Error>(HttpResponse::Ok().finish())
        }),
    );
}

/// The same routes answering alike without a session (the floor).
fn bare_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/read",
        web::get().to(|| async { HttpResponse::Ok().body(format!("{}{}", "user-00000000001", 1)) }),
    )
    .route(
        "/write",
        web::get().to(|| async { HttpResponse::Ok().finish() }),
    );
}

fn token(n: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

/// Zipf over ranks 0..n (rank k drawn in proportion to 1/(k+1)^s): a precomputed cumulative
/// distribution and a binary search per draw.
struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let mut cdf: Vec<f64> = (1..=n)
            .map(|k| {
                total += (k as f64).powf(-s);
                total
            })
            .collect();
        for c in &mut cdf {
            *c /= total;
        }
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut StdRng) -> usize {
        let u: f64 = rng.random();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

/// A browser's cookie jar for one site: `Set-Cookie` lines replace or delete cookies.
#[derive(Clone, Default)]
struct Jar(Vec<(String, String)>);

impl Jar {
    fn apply<B>(&mut self, res: &ServiceResponse<B>) {
        for line in res.headers().get_all(header::SET_COOKIE) {
            let Some(c) = line.to_str().ok().and_then(|l| Cookie::parse(l).ok()) else {
                continue;
            };
            self.0.retain(|(name, _)| name != c.name());
            let deleted = c.max_age().is_some_and(|a| a.is_zero() || a.is_negative());
            if !deleted {
                self.0.push((c.name().to_owned(), c.value().to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Bytes of the cookie values (what the memo stores as the cookie).
    fn value_bytes(&self) -> usize {
        self.0.iter().map(|(_, v)| v.len()).sum()
    }
}

struct Params {
    users: usize,
    requests: usize,
    s: f64,
    writes: u32,
    memos: Vec<usize>,
    workers: Vec<usize>,
    seed: u64,
}

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("{name}={v}: not a valid value");
            std::process::exit(2)
        }),
        Err(_) => default,
    }
}

fn env_list(name: &str, default: &[usize]) -> Vec<usize> {
    std::env::var(name).map_or_else(
        |_| default.to_vec(),
        |v| {
            v.split(',')
                .map(|x| {
                    x.trim().parse().unwrap_or_else(|_| {
                        eprintln!("{name}={v}: not a list of numbers");
                        std::process::exit(2)
                    })
                })
                .collect()
        },
    )
}

/// What one configuration measured.
struct Row {
    label: String,
    workers: usize,
    memo: Option<usize>,
    hits: u64,
    opened: u64,
    repeats: usize,
    read: (Duration, u64),
    write: (Duration, u64),
    distinct: Vec<usize>,
}

/// Warm-up then timed phase over `apps` (round-robin), starting from `jars`.
async fn drive<S, B>(
    apps: &[S],
    jars: &mut [Jar],
    p: &Params,
    zipf: &Zipf,
    stats: Option<&sealed_session::SessionStats>,
) -> (
    u64,
    u64,
    usize,
    (Duration, u64),
    (Duration, u64),
    Vec<usize>,
)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let hasher = RandomState::new();
    let mut rng = StdRng::seed_from_u64(p.seed);
    let mut seen: Vec<HashSet<u64>> = vec![HashSet::new(); apps.len()];
    let (mut hits0, mut opened0) = (0, 0);
    let mut repeats = 0;
    let mut read = (Duration::ZERO, 0u64);
    let mut write = (Duration::ZERO, 0u64);
    for i in 0..p.users + p.requests {
        let timed = i >= p.users;
        if i == p.users {
            if let Some(stats) = stats {
                (hits0, opened0) = (stats.memo_hits(), stats.opened());
            }
        }
        let user = zipf.sample(&mut rng);
        let is_write = rng.random_range(0..100u32) < p.writes;
        let worker = i % apps.len();
        let cookie = jars[user].header();
        let fresh = seen[worker].insert(hasher.hash_one(&cookie));
        if timed && !fresh {
            repeats += 1;
        }
        let req = test::TestRequest::get()
            .uri(if is_write { "/write" } else { "/read" })
            .insert_header((header::COOKIE, cookie))
            .to_request();
        let t0 = Instant::now();
        let res = test::call_service(&apps[worker], req).await;
        let took = t0.elapsed();
        assert!(res.status().is_success(), "{}", res.status());
        if timed {
            let slot = if is_write { &mut write } else { &mut read };
            slot.0 += took;
            slot.1 += 1;
        }
        jars[user].apply(&res);
    }
    let (hits, opened) = stats.map_or((0, 0), |s| (s.memo_hits() - hits0, s.opened() - opened0));
    let distinct = seen.iter().map(HashSet::len).collect();
    (hits, opened, repeats, read, write, distinct)
}

fn main() {
    let p = Params {
        users: env("USERS", 100_000),
        requests: env("REQUESTS", 200_000),
        s: env("ZIPF_S", 1.0),
        writes: env("WRITES", 10),
        memos: env_list("MEMOS", &[0, 1024, 4096, 16384, 65536]),
        workers: env_list("WORKERS", &[1, 2]),
        seed: env("SEED", 1),
    };
    if p.users == 0 || p.workers.contains(&0) || p.writes > 100 {
        eprintln!("USERS and WORKERS must be positive, WRITES at most 100");
        std::process::exit(2);
    }
    let started = Instant::now();
    let zipf = Zipf::new(p.users, p.s);
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).expect("keyring");
    let middleware = |memo: usize| {
        SessionMiddleware::builder(ring.clone())
            .cookie_name("__Host-s".to_owned())
            .open_memo_capacity(memo)
            .build()
            .expect("middleware")
    };

    actix_web::rt::System::new().block_on(async {
        // Every user's session, sealed once through the real middleware.
        let seeder = test::init_service(App::new().wrap(middleware(0)).configure(routes)).await;
        let mut seeds = vec![Jar::default(); p.users];
        for (user, jar) in seeds.iter_mut().enumerate() {
            let req = test::TestRequest::get()
                .uri(&format!("/seed/{user}"))
                .to_request();
            let res = test::call_service(&seeder, req).await;
            assert!(res.status().is_success());
            jar.apply(&res);
        }
        let cookie_bytes = seeds.iter().map(Jar::value_bytes).sum::<usize>() / p.users;
        // The values the memo counts beside the cookie: the decoded entries' bytes.
        let codec =
            sealed_session::Codec::new(sealed_session::SessionConfig::new().cookie_name("__Host-s"))
                .expect("codec");
        let header = seeds[0].header();
        let opened = codec
            .open(
                &ring,
                sealed_session::codec::cookie_pairs([header.as_bytes()]),
                SystemTime::now(),
            )
            .ok()
            .flatten()
            .expect("a seeded session opens");
        let value_bytes: usize = opened.state.entries().values().map(Vec::len).sum();
        eprintln!(
            "seeded {} users in {:.1} s: cookie values {cookie_bytes} B, session values {value_bytes} B",
            p.users,
            started.elapsed().as_secs_f64()
        );

        let mut rows = Vec::new();
        {
            let app = test::init_service(App::new().configure(bare_routes)).await;
            let mut jars = seeds.clone();
            let (_, _, repeats, read, write, distinct) =
                drive(std::slice::from_ref(&app), &mut jars, &p, &zipf, None).await;
            rows.push(Row {
                label: "no middleware".to_owned(),
                workers: 1,
                memo: None,
                hits: 0,
                opened: 0,
                repeats,
                read,
                write,
                distinct,
            });
        }
        for &workers in &p.workers {
            for &memo in &p.memos {
                let t = Instant::now();
                let mw = middleware(memo);
                let stats = mw.stats();
                let mut apps = Vec::new();
                for _ in 0..workers {
                    apps.push(
                        test::init_service(App::new().wrap(mw.clone()).configure(routes)).await,
                    );
                }
                let mut jars = seeds.clone();
                let (hits, opened, repeats, read, write, distinct) =
                    drive(&apps, &mut jars, &p, &zipf, Some(&stats)).await;
                eprintln!(
                    "workers {workers}, memo {memo}: {:.1} s",
                    t.elapsed().as_secs_f64()
                );
                rows.push(Row {
                    label: "sealed-session".to_owned(),
                    workers,
                    memo: Some(memo),
                    hits,
                    opened,
                    repeats,
                    read,
                    write,
                    distinct,
                });
            }
        }
        print_table(&p, &rows, cookie_bytes, value_bytes);
        eprintln!("whole sweep: {:.0} s", started.elapsed().as_secs_f64());
    });
}

fn print_table(p: &Params, rows: &[Row], cookie_bytes: usize, value_bytes: usize) {
    let per = |(d, n): (Duration, u64)| {
        if n == 0 {
            "—".to_owned()
        } else {
            format!("{:.2}", d.as_secs_f64() * 1e6 / n as f64)
        }
    };
    println!(
        "{} users, Zipf s = {}, {} % writes, {} timed requests per row after {} warm-up requests \
         (seed {}); µs = mean wall-clock of `call_service`, one thread.\n",
        p.users, p.s, p.writes, p.requests, p.users, p.seed
    );
    println!(
        "| arm | workers | memo entries / worker | hit rate | repeat rate (∞ memo) | µs / request | µs / read | µs / write | memo entries / worker (est.) | memo memory, all workers (est.) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let entry = cookie_bytes + value_bytes;
    for r in rows {
        let all = (r.read.0 + r.write.0, r.read.1 + r.write.1);
        let repeat = r.repeats as f64 / p.requests.max(1) as f64;
        let (memo, hit, entries, memory) = match r.memo {
            None => (
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
                "—".to_owned(),
            ),
            Some(cap) => {
                let per_worker: Vec<usize> = r
                    .distinct
                    .iter()
                    .map(|&d| cap.min(d).min(MEMO_BYTES / entry))
                    .collect();
                let total: usize = per_worker.iter().sum::<usize>() * entry;
                let mean = per_worker.iter().sum::<usize>() / per_worker.len().max(1);
                let hit = if r.opened == 0 {
                    "—".to_owned()
                } else {
                    format!("{:.1} %", 100.0 * r.hits as f64 / r.opened as f64)
                };
                (
                    cap.to_string(),
                    hit,
                    mean.to_string(),
                    format!("{:.1} MiB", total as f64 / f64::from(1 << 20)),
                )
            }
        };
        println!(
            "| {} | {} | {memo} | {hit} | {:.1} % | {} | {} | {} | {entries} | {memory} |",
            r.label,
            r.workers,
            100.0 * repeat,
            per(all),
            per(r.read),
            per(r.write),
        );
    }
}
