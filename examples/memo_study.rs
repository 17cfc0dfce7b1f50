//! The open memo under a realistic mix (issue 14): many distinct users, each holding a real
//! sealed session (~100 B: a user name, a counter, a CSRF token), visiting with Zipf-distributed
//! frequencies through 1 or 2 workers, 90 % reads and 10 % writes, at several memo sizes.
//! Prints, per configuration, the memo's hit rate, the mean wall-clock cost of a request and
//! the memo's approximate memory, as a markdown table.
//!
//! ```text
//! cargo run --release --example memo_study            # ~1-2 minutes for the whole sweep
//! USERS=100000 REQUESTS=200000 ROUNDS=10 ZIPF_S=1.0 WRITES=10 \
//!   MEMOS=0,1024,4096,16384,65536 WORKERS=1,2 SEED=1 cargo run --release --example memo_study
//! ```
//!
//! Environment (all optional): `USERS` distinct users (100,000); `REQUESTS` timed requests
//! per configuration (200,000), after a warm-up of `USERS` requests drawn the same way (at
//! least one pass's worth), in `ROUNDS` rounds (10) that visit every configuration in turn;
//! `ZIPF_S` the exponent (1.0: the user of rank k visits in proportion to 1/k^s); `WRITES` the
//! percentage of writes (10); `MEMOS` the memo sizes, entries per worker
//! (`open_memo_capacity`); `WORKERS` the worker counts; `EXTRA` bytes of random text added to
//! every session (0; e.g. 2048 for ~2 KB sessions, whose decoding costs more); `SEED` the
//! random seed (the same sequence of users and reads/writes for every configuration).
//!
//! How it works, through the public API only: the users' sessions are seeded once through the
//! real middleware (`/seed`) and every configuration starts from those cookies. A worker is
//! its own `actix_web::test::init_service` of an `App` wrapped in a clone of one
//! `SessionMiddleware` (so its own memo, as an actix worker has); requests go round-robin over
//! the workers, as a load balancer would, all on this one thread (so the timings are cost, not
//! throughput). A read (`/read`) reads the name and counter; a write (`/write`) reads and
//! increments the counter, and its `Set-Cookie` replaces the cookies that user sends next, as
//! a browser would. The hit rate is `SessionStats::memo_hits / opened` over the timed phase.
//! "µs" is the time of `call_service` alone (request building and cookie bookkeeping
//! excluded): per request, the median of the rounds' means (the rounds interleave the
//! configurations, so load on a shared machine hits them alike); per read and per write, the
//! mean over all rounds; and the median of single requests by whether the memo answered them
//! (the hit counter moved), which prices a hit and a miss at any hit rate. On a shared machine wall-clock counts the time other processes held
//! the core; the "CPU" columns (this thread's CPU time per request from
//! `/proc/thread-self/schedstat`, for the whole loop, harness included, averaged over the
//! rounds, minus the same for the no-middleware row) do not. A `no middleware` row gives the floor of the same routes in the
//! same harness. "Repeat rate" is the share of timed requests whose exact cookies that worker
//! had already been sent or had itself issued (what an unbounded memo could answer). Memory is
//! estimated as entries × (cookie bytes + value bytes), the measure the memo itself bounds
//! (16 MiB per memo), with entries = min(capacity, distinct cookies the worker saw or issued,
//! 16 MiB / entry); the real footprint adds the decoded session's maps and hash-table
//! overhead.
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
        "/seed/{user}/{extra}",
        web::get().to(|s: Session, path: web::Path<(u32, usize)>| async move {
            let (user, extra) = path.into_inner();
            s.insert("user", format!("user-{user:011}"))?;
            s.insert("n", 1u64)?;
            s.insert("csrf", token(40))?;
            if extra > 0 {
                s.insert("data", token(extra))?;
            }
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
    rounds: usize,
    extra: usize,
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

/// One configuration in progress: its workers, its users' cookie jars and its own copy of
/// the request sequence (the same seed for every configuration).
struct Run<S> {
    label: &'static str,
    workers: usize,
    memo: Option<usize>,
    stats: Option<std::sync::Arc<sealed_session::SessionStats>>,
    apps: Vec<S>,
    jars: Vec<Jar>,
    rng: StdRng,
    hasher: RandomState,
    /// Per worker, the cookies it has been sent (hashes).
    seen: Vec<HashSet<u64>>,
    sent: usize,
    /// Memo counters at the end of the warm-up.
    base: (u64, u64),
    repeats: usize,
    read: (Duration, u64),
    write: (Duration, u64),
    /// Mean µs per request of each timed round: wall-clock of `call_service`, and this
    /// thread's CPU time for the whole round (harness included).
    rounds: Vec<f64>,
    cpu: Vec<f64>,
    /// Wall-clock ns of each timed request by class: read miss, read hit, write miss, write hit.
    classes: [Vec<u32>; 4],
}

/// CPU time this thread has run, in ns (`/proc/thread-self/schedstat`, Linux): unlike
/// wall-clock, it does not count the time other processes of a shared machine held the core.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl<S, B> Run<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    fn new(
        label: &'static str,
        memo: Option<usize>,
        apps: Vec<S>,
        p: &Params,
        seeds: &[Jar],
    ) -> Self {
        Run {
            label,
            workers: apps.len(),
            memo,
            stats: None,
            seen: vec![HashSet::new(); apps.len()],
            apps,
            jars: seeds.to_vec(),
            rng: StdRng::seed_from_u64(p.seed),
            hasher: RandomState::new(),
            sent: 0,
            base: (0, 0),
            repeats: 0,
            read: (Duration::ZERO, 0),
            write: (Duration::ZERO, 0),
            rounds: Vec::new(),
            cpu: Vec::new(),
            classes: Default::default(),
        }
    }

    /// Sends the next `n` requests (round-robin over the workers); `timed` records them.
    async fn step(&mut self, n: usize, timed: bool, p: &Params, zipf: &Zipf) {
        let mut round = (Duration::ZERO, 0u32);
        let cpu0 = thread_cpu_ns();
        for _ in 0..n {
            let user = zipf.sample(&mut self.rng);
            let is_write = self.rng.random_range(0..100u32) < p.writes;
            let worker = self.sent % self.apps.len();
            self.sent += 1;
            let cookie = self.jars[user].header();
            let fresh = self.seen[worker].insert(self.hasher.hash_one(&cookie));
            let req = test::TestRequest::get()
                .uri(if is_write { "/write" } else { "/read" })
                .insert_header((header::COOKIE, cookie))
                .to_request();
            let hits0 = self.stats.as_ref().map(|s| s.memo_hits());
            let t0 = Instant::now();
            let res = test::call_service(&self.apps[worker], req).await;
            let took = t0.elapsed();
            assert!(res.status().is_success(), "{}", res.status());
            if timed {
                self.repeats += usize::from(!fresh);
                // Whether the memo answered this request: the counter moved during it.
                if let Some(h0) = hits0 {
                    let hit = self.stats.as_ref().is_some_and(|s| s.memo_hits() > h0);
                    let class = usize::from(is_write) * 2 + usize::from(hit);
                    self.classes[class].push(took.as_nanos() as u32);
                }
                let slot = if is_write {
                    &mut self.write
                } else {
                    &mut self.read
                };
                slot.0 += took;
                slot.1 += 1;
                round.0 += took;
                round.1 += 1;
            }
            let before = self.jars[user].0.len();
            let changed = res.headers().contains_key(header::SET_COOKIE);
            self.jars[user].apply(&res);
            if changed && before > 0 {
                // The worker that sealed these cookies knows them too (the memo remembers a
                // session it has just sealed).
                let issued = self.hasher.hash_one(self.jars[user].header());
                self.seen[worker].insert(issued);
            }
        }
        if !timed {
            // The end of the warm-up: the timed phase's counters start here.
            if let Some(stats) = &self.stats {
                self.base = (stats.memo_hits(), stats.opened());
            }
        } else if round.1 > 0 {
            let n = f64::from(round.1);
            self.rounds.push(round.0.as_secs_f64() * 1e6 / n);
            if let (Some(a), Some(b)) = (cpu0, thread_cpu_ns()) {
                self.cpu.push(b.saturating_sub(a) as f64 / 1e3 / n);
            }
        }
    }

    fn row(&self) -> Row {
        let (hits, opened) = self.stats.as_ref().map_or((0, 0), |s| {
            (s.memo_hits() - self.base.0, s.opened() - self.base.1)
        });
        let mut rounds = self.rounds.clone();
        rounds.sort_by(f64::total_cmp);
        let mut cpu = self.cpu.clone();
        cpu.sort_by(f64::total_cmp);
        let classes = self.classes.clone().map(|mut v| {
            v.sort_unstable();
            v.get(v.len() / 2).map(|&ns| f64::from(ns) / 1e3)
        });
        Row {
            label: self.label,
            workers: self.workers,
            memo: self.memo,
            hits,
            opened,
            repeats: self.repeats,
            read: self.read,
            write: self.write,
            rounds,
            cpu,
            classes,
            distinct: self.seen.iter().map(HashSet::len).collect(),
        }
    }
}

/// What one configuration measured.
struct Row {
    label: &'static str,
    workers: usize,
    memo: Option<usize>,
    hits: u64,
    opened: u64,
    repeats: usize,
    read: (Duration, u64),
    write: (Duration, u64),
    /// Mean µs per request of each round, sorted: wall-clock of `call_service`, CPU time.
    rounds: Vec<f64>,
    cpu: Vec<f64>,
    /// Median wall-clock µs of read misses, read hits, write misses, write hits.
    classes: [Option<f64>; 4],
    distinct: Vec<usize>,
}

fn main() {
    let p = Params {
        users: env("USERS", 100_000),
        requests: env("REQUESTS", 200_000),
        s: env("ZIPF_S", 1.0),
        writes: env("WRITES", 10),
        memos: env_list("MEMOS", &[0, 1024, 4096, 16384, 65536]),
        workers: env_list("WORKERS", &[1, 2]),
        rounds: env("ROUNDS", 10),
        extra: env("EXTRA", 0),
        seed: env("SEED", 1),
    };
    if p.users == 0 || p.rounds == 0 || p.workers.contains(&0) || p.writes > 100 {
        eprintln!("USERS, ROUNDS and WORKERS must be positive, WRITES at most 100");
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
                .uri(&format!("/seed/{user}/{}", p.extra))
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

        // Every configuration is warmed up, then the timed requests run in rounds that visit
        // every configuration in turn, so load on a shared machine (which drifts over
        // seconds) hits them alike; each row reports the median of its round means.
        let bare = test::init_service(App::new().configure(bare_routes)).await;
        let mut floor = Run::new("no middleware", None, vec![bare], &p, &seeds);
        let mut runs = Vec::new();
        for &workers in &p.workers {
            for &memo in &p.memos {
                let mw = middleware(memo);
                let mut apps = Vec::new();
                for _ in 0..workers {
                    apps.push(
                        test::init_service(App::new().wrap(mw.clone()).configure(routes)).await,
                    );
                }
                let mut run = Run::new("sealed-session", Some(memo), apps, &p, &seeds);
                run.stats = Some(mw.stats());
                runs.push(run);
            }
        }
        let t = Instant::now();
        floor.step(p.users, false, &p, &zipf).await;
        for run in &mut runs {
            run.step(p.users, false, &p, &zipf).await;
        }
        eprintln!("warm-up ({} requests each): {:.1} s", p.users, t.elapsed().as_secs_f64());
        for r in 0..p.rounds {
            let t = Instant::now();
            let n = p.requests / p.rounds + usize::from(r < p.requests % p.rounds);
            floor.step(n, true, &p, &zipf).await;
            for run in &mut runs {
                run.step(n, true, &p, &zipf).await;
            }
            eprintln!("round {}/{}: {:.1} s", r + 1, p.rounds, t.elapsed().as_secs_f64());
        }
        let rows: Vec<Row> = std::iter::once(floor.row())
            .chain(runs.iter().map(Run::row))
            .collect();
        print_table(&p, &rows, cookie_bytes, value_bytes);
        eprintln!("whole sweep: {:.0} s", started.elapsed().as_secs_f64());
    });
}

fn median(sorted: &[f64]) -> Option<f64> {
    sorted.get(sorted.len() / 2).copied()
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

fn print_table(p: &Params, rows: &[Row], cookie_bytes: usize, value_bytes: usize) {
    let avg = |(d, n): (Duration, u64)| {
        if n == 0 {
            "—".to_owned()
        } else {
            format!("{:.2}", d.as_secs_f64() * 1e6 / n as f64)
        }
    };
    let floor_cpu = rows
        .iter()
        .find(|r| r.memo.is_none())
        .and_then(|r| mean(&r.cpu));
    println!(
        "{} users (session cookie {cookie_bytes} B, values {value_bytes} B), Zipf s = {}, {} % \
         writes, {} timed requests per row in {} interleaved rounds after {} warm-up requests \
         (seed {}), one thread. \"wall\": `call_service` alone, median of the round means \
         [lowest–highest round]; per read / per write: mean over all rounds; miss / hit: median \
         of single requests the memo did not / did answer. \"CPU\": this \
         thread's CPU time per request over the whole loop (harness included), mean of the \
         rounds (the clock may count in scheduler ticks, too coarse for one round); \"CPU − floor\": minus the no-middleware row's.\n",
        p.users, p.s, p.writes, p.requests, p.rounds, p.users, p.seed
    );
    println!(
        "| arm | workers | memo entries / worker | hit rate | repeat rate (∞ memo) | wall µs / request [range] | µs / read | µs / write | median µs, read miss / hit | median µs, write miss / hit | CPU µs / request | CPU − floor | memo entries / worker (est.) | memo memory, all workers (est.) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let entry = cookie_bytes + value_bytes;
    let dash = || "—".to_owned();
    for r in rows {
        let wall = match (median(&r.rounds), r.rounds.first(), r.rounds.last()) {
            (Some(m), Some(lo), Some(hi)) => format!("{m:.2} [{lo:.2}–{hi:.2}]"),
            _ => dash(),
        };
        let cpu = mean(&r.cpu);
        let over = match (r.memo, cpu, floor_cpu) {
            (Some(_), Some(c), Some(f)) => format!("{:.2}", c - f),
            _ => dash(),
        };
        let cpu = cpu.map_or_else(dash, |c| format!("{c:.2}"));
        let split = |miss: Option<f64>, hit: Option<f64>| {
            let f = |v: Option<f64>| v.map_or_else(dash, |v| format!("{v:.2}"));
            format!("{} / {}", f(miss), f(hit))
        };
        let reads = split(r.classes[0], r.classes[1]);
        let writes = split(r.classes[2], r.classes[3]);
        let (memo, hit, repeat, entries, memory) = match r.memo {
            // No writes change its cookies: hit and repeat rates do not apply.
            None => (dash(), dash(), dash(), dash(), dash()),
            Some(cap) => {
                let per_worker: Vec<usize> = r
                    .distinct
                    .iter()
                    .map(|&d| cap.min(d).min(MEMO_BYTES / entry))
                    .collect();
                let sum: usize = per_worker.iter().sum();
                let hit = if r.opened == 0 {
                    dash()
                } else {
                    format!("{:.1} %", 100.0 * r.hits as f64 / r.opened as f64)
                };
                (
                    cap.to_string(),
                    hit,
                    format!(
                        "{:.1} %",
                        100.0 * r.repeats as f64 / p.requests.max(1) as f64
                    ),
                    (sum / per_worker.len().max(1)).to_string(),
                    format!("{:.1} MiB", (sum * entry) as f64 / f64::from(1 << 20)),
                )
            }
        };
        println!(
            "| {} | {} | {memo} | {hit} | {repeat} | {wall} | {} | {} | {reads} | {writes} | {cpu} | {over} | {entries} | {memory} |",
            r.label,
            r.workers,
            avg(r.read),
            avg(r.write),
        );
    }
}
