//! The request-path cost of level 3 of revocation (feature `redis`): a request that reads a
//! ~100 B session through the real service, without a revocation list, then with one that is
//! empty, holds 100,000 revoked session ids, or 100,000 ids and 10,000 revoked users (with
//! the user check on). Nothing this session holds is revoked, so every case answers 200.
//!
//! The lists never connect (`RedisRevocation::offline`): the mirror is filled by this
//! process's own revocations, as a node's would be; the request path never touches the
//! network anyway. Also prints the mirror's memory for 100,000 ids (its own accounting of its
//! hash tables, and the growth of this process's resident set while filling it).
//!
//! Group `check`: the check alone (`RedisRevocation::is_revoked`, what the middleware adds
//! to a request whose session opened), on the same lists: a few dozen nanoseconds, too little
//! for the request figures above to resolve on a shared machine.
//!
//! `cargo bench --features redis --bench revocation`; figures are recorded in the README.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::time::{Duration, SystemTime};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header;
use actix_web::{App, HttpResponse, test, web};
use criterion::{Criterion, criterion_group, criterion_main};
use sealed_session::{
    Algorithm, Keyring, RedisRevocation, RedisRevocationOptions, Session, SessionMiddleware,
    SessionState,
};

const IDS: usize = 100_000;
const USERS: usize = 10_000;

/// A list that never connects (no threads, so no retries in the figures): its mirror is
/// filled by this process's own revocations, as a node's would be.
fn unreachable_list(users: bool) -> RedisRevocation {
    let mut options = RedisRevocationOptions::new().max_pending(1_000_000);
    if users {
        options = options.user_key_entry("user");
    }
    RedisRevocation::offline(options)
}

/// `n` ids that are not the benchmarked session's (random, like real ones).
fn fill(list: &RedisRevocation, ids: usize, users: usize) {
    let until = SystemTime::now() + Duration::from_secs(3600);
    for _ in 0..ids {
        list.revoke_session(rand::random(), until);
    }
    for i in 0..users {
        list.revoke_user(&format!("user-{i}"), SystemTime::now())
            .unwrap();
    }
}

fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Runs first, in a fresh process, so the resident set's growth is this fill's.
fn memory(_: &mut Criterion) {
    let list = unreachable_list(false);
    let before = resident_bytes();
    fill(&list, IDS, 0);
    let after = resident_bytes();
    let stats = list.stats();
    eprintln!(
        "memory: mirror of {} revoked ids: {} heap bytes by its own accounting ({:.1} B/id); resident set grew by {} bytes while filling (includes the pending queue)",
        stats.sessions,
        stats.mirror_bytes,
        stats.mirror_bytes as f64 / stats.sessions as f64,
        match (before, after) {
            (Some(b), Some(a)) => a.saturating_sub(b).to_string(),
            _ => "(no /proc)".to_owned(),
        }
    );
}

fn middleware(ring: &Keyring, list: Option<RedisRevocation>) -> SessionMiddleware {
    let builder = SessionMiddleware::builder(ring.clone()).cookie_name("__Host-s".into());
    match list {
        Some(list) => builder.revocation(list),
        None => builder,
    }
    .build()
    .unwrap()
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/read",
        web::get().to(|s: Session| async move {
            // 401 without the session: the benchmark would measure the wrong path.
            match s.get::<String>("data") {
                Ok(Some(v)) => HttpResponse::Ok().body(v.len().to_string()),
                _ => HttpResponse::Unauthorized().finish(),
            }
        }),
    )
    .route(
        "/fill",
        web::get().to(|s: Session| async move {
            s.insert("user", "someone-else").unwrap();
            s.insert("data", "x".repeat(100)).unwrap();
            HttpResponse::Ok().finish()
        }),
    );
}

fn cookie_of<B>(res: &ServiceResponse<B>) -> String {
    res.headers()
        .get_all(header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ")
}

fn requests(c: &mut Criterion) {
    let rt = actix_web::rt::Runtime::new().unwrap();
    let ring = Keyring::generate(Algorithm::default(), SystemTime::now()).unwrap();
    let empty = unreachable_list(false);
    let ids = unreachable_list(false);
    fill(&ids, IDS, 0);
    let users = unreachable_list(true);
    fill(&users, IDS, USERS);
    let cases = [
        ("no-list", None),
        ("empty-list", Some(empty)),
        ("100k-ids", Some(ids)),
        ("100k-ids+10k-users", Some(users)),
    ];
    let mut group = c.benchmark_group("revocation");
    for (name, list) in cases {
        let app = rt.block_on(test::init_service(
            App::new().wrap(middleware(&ring, list)).configure(routes),
        ));
        let res = rt.block_on(test::call_service(
            &app,
            test::TestRequest::get().uri("/fill").to_request(),
        ));
        let cookie = cookie_of(&res);
        group.bench_function(format!("read-100B/{name}"), |b| {
            b.iter(|| {
                let req = test::TestRequest::get()
                    .uri("/read")
                    .insert_header((header::COOKIE, cookie.as_str()));
                let status =
                    rt.block_on(async { app.call(req.to_request()).await.unwrap().status() });
                assert_eq!(status.as_u16(), 200);
            })
        });
    }
    group.finish();
}

fn check(c: &mut Criterion) {
    use std::collections::BTreeMap;
    let empty = unreachable_list(true);
    let ids = unreachable_list(true);
    fill(&ids, IDS, 0);
    let users = unreachable_list(true);
    fill(&users, IDS, USERS);
    let mut entries = BTreeMap::new();
    entries.insert("user".to_owned(), vec![12]);
    entries
        .get_mut("user")
        .unwrap()
        .extend_from_slice(b"someone-else");
    let now = SystemTime::now();
    let state = SessionState::from_parts(
        rand::random(),
        now,
        now + Duration::from_secs(3600),
        now,
        entries,
    );
    let mut group = c.benchmark_group("check");
    for (name, list) in [
        ("empty-list", &empty),
        ("100k-ids", &ids),
        ("100k-ids+10k-users", &users),
    ] {
        assert!(!list.is_revoked(&state));
        group.bench_function(name, |b| {
            b.iter(|| list.is_revoked(std::hint::black_box(&state)))
        });
    }
    // A revoked one, for comparison: found in the id table.
    users.revoke_session(state.id(), now + Duration::from_secs(3600));
    assert!(users.is_revoked(&state));
    group.bench_function("revoked", |b| {
        b.iter(|| users.is_revoked(std::hint::black_box(&state)))
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(40)
}

criterion_group! { name = benches; config = config(); targets = memory, check, requests }
criterion_main!(benches);
