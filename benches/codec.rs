//! Codec speed: seal (`seal_lines`, the middleware's path) and open of realistic sessions next
//! to the raw AEAD + base64 floor, the three AEAD candidates, and the compression candidates.
//!
//! `cargo bench --bench codec`; figures are recorded in the README (and, for `nonce_source`,
//! in SECURITY.md).
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, RngExt, SeedableRng};
use sealed_session::codec::ForkSafeRng;
use sealed_session::codec::floor::RawAead;
use sealed_session::keyring::Secret;
use sealed_session::{Algorithm, Codec, Key, KeyId, Keyring, SessionConfig, SessionState};

fn ring(alg: Algorithm) -> Keyring {
    let now = SystemTime::now();
    Keyring::new(
        vec![Key::new(KeyId([1; 4]), alg, Secret::new([7; 32]), now, now)],
        now,
    )
    .unwrap()
}

/// A realistic session of about `size` bytes: a user, roles, a CSRF token, preferences,
/// and (for the larger ones) a cart or form draft of JSON-like text that compresses.
fn session(size: usize) -> SessionState {
    let mut rng = rand::rngs::StdRng::seed_from_u64(size as u64);
    let mut s =
        SessionState::new_with_rng(SystemTime::now(), Duration::from_secs(86_400), &mut rng);
    s.insert("user", "alice@example.com").unwrap();
    s.insert("roles", &vec!["admin".to_owned(), "editor".to_owned()])
        .unwrap();
    let mut csrf = [0u8; 32];
    rng.fill_bytes(&mut csrf);
    s.insert("csrf", serde_bytes::Bytes::new(&csrf)).unwrap();
    let mut i = 0;
    let mut draft = String::new();
    while draft.len() + 120 < size {
        draft.push_str(&format!(
            "{{\"sku\":\"SKU-{:05}\",\"name\":\"Item number {i}\",\"qty\":{},\"price\":{}.99}},",
            rng.random_range(0..99_999),
            rng.random_range(1..5),
            rng.random_range(1..500)
        ));
        i += 1;
    }
    if !draft.is_empty() {
        s.insert("cart", &draft).unwrap();
    }
    s
}

/// The default configuration (compression from 256-byte values) with room for 16 KiB.
fn codec() -> Codec {
    Codec::new(SessionConfig::new().total_budget(32 * 1024)).unwrap()
}

fn seal_open(c: &mut Criterion) {
    let codec = codec();
    let ring = ring(Algorithm::default());
    let now = SystemTime::now();
    let mut group = c.benchmark_group("session");
    for size in [100, 1024, 4096, 16 * 1024] {
        let state = session(size);
        let cookies = codec.seal(&ring, &state, now, &mut rand::rng()).unwrap();
        let pairs: Vec<(String, String)> = cookies
            .iter()
            .map(|c| (c.name().to_owned(), c.value().to_owned()))
            .collect();
        let plain: usize = state.entries().values().map(Vec::len).sum();
        eprintln!(
            "session ~{size} B: {plain} B of values → {} cookie(s), {} B of cookie values",
            cookies.len(),
            pairs.iter().map(|(_, v)| v.len()).sum::<usize>()
        );
        group.throughput(Throughput::Bytes(plain as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &state, |b, s| {
            b.iter(|| codec.seal_lines(&ring, black_box(s), now).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("open", size), &pairs, |b, p| {
            b.iter(|| {
                codec
                    .open(
                        &ring,
                        p.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
                        now,
                    )
                    .unwrap()
            })
        });
        // Floor: the postcard-sized plaintext through the raw AEAD + base64 only.
        let raw = RawAead::new(Algorithm::default(), &[7; 32]);
        let bytes = vec![0x5au8; plain + 50];
        let nonce = vec![1u8; raw.nonce_len()];
        group.bench_with_input(
            BenchmarkId::new("floor-seal+open", size),
            &bytes,
            |b, bytes| {
                b.iter(|| {
                    let mut n = nonce.clone();
                    rand::rng().fill_bytes(&mut n);
                    let text = raw.seal(&n, black_box(bytes));
                    raw.open(&n, &text).unwrap()
                })
            },
        );
    }
    group.finish();
}

fn aead_candidates(c: &mut Criterion) {
    let mut group = c.benchmark_group("aead");
    for alg in [
        Algorithm::Xaes256Gcm,
        Algorithm::XChaCha20Poly1305,
        Algorithm::Aes256Gcm,
    ] {
        let raw = RawAead::new(alg, &[7; 32]);
        for size in [64, 2048, 4096] {
            let bytes = vec![0x5au8; size];
            let mut nonce = vec![0u8; raw.nonce_len()];
            rand::rng().fill_bytes(&mut nonce);
            let sealed = raw.seal(&nonce, &bytes);
            group.bench_function(BenchmarkId::new(format!("{alg}/open"), size), |b| {
                b.iter(|| raw.open(&nonce, black_box(&sealed)).unwrap())
            });
            group.bench_function(BenchmarkId::new(format!("{alg}/seal"), size), |b| {
                b.iter(|| {
                    let mut n = nonce.clone();
                    rand::rng().fill_bytes(&mut n);
                    raw.seal(&n, black_box(&bytes))
                })
            });
        }
    }
    // Nonce sources: a userspace CSPRNG seeded by the OS, against a syscall per nonce.
    group.bench_function("nonce/thread_rng-24", |b| {
        b.iter(|| {
            let mut n = [0u8; 24];
            rand::rng().fill_bytes(&mut n);
            n
        })
    });
    group.bench_function("nonce/getrandom-24", |b| {
        b.iter(|| {
            let mut n = [0u8; 24];
            getrandom::fill(&mut n).unwrap();
            n
        })
    });
    group.bench_function("nonce/fork_safe-24", |b| {
        b.iter(|| {
            let mut n = [0u8; 24];
            ForkSafeRng::fill(&mut n);
            n
        })
    });
    group.finish();
}

/// Every draw straight from the OS (`getrandom`): the other fork-safe design of issue 9 A3.
struct OsDraw;

impl rand::TryRng for OsDraw {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dest).unwrap();
        Ok(())
    }
}

impl rand::TryCryptoRng for OsDraw {}

/// Issue 9 A3: what fork safety costs per seal of a ~100 B session (`seal_lines`, the
/// middleware's path) and per new session (id + seal), by randomness source: `rand::rng()`
/// (not fork-safe, the old choice), a `getrandom` syscall per draw, and [`ForkSafeRng`] (the
/// choice: a per-thread ChaCha12 that reseeds on a new process id).
fn nonce_source(c: &mut Criterion) {
    let codec = codec();
    let ring = ring(Algorithm::default());
    let now = SystemTime::now();
    let state = session(100);
    let lifetime = Duration::from_secs(86_400);
    let mut group = c.benchmark_group("nonce_source");
    macro_rules! source {
        ($label:literal, $rng:expr) => {
            group.bench_function(concat!("seal-100/", $label), |b| {
                b.iter(|| {
                    codec
                        .seal_with(&ring, black_box(&state), now, &mut $rng)
                        .unwrap()
                })
            });
            group.bench_function(concat!("new+seal-100/", $label), |b| {
                b.iter(|| {
                    let mut s = state.clone();
                    s.renew_with_rng(now, lifetime, &mut $rng);
                    codec
                        .seal_with(&ring, black_box(&s), now, &mut $rng)
                        .unwrap()
                })
            });
        };
    }
    source!("thread_rng", rand::rng());
    source!("getrandom", OsDraw);
    source!("fork_safe", ForkSafeRng);
    group.finish();
}

fn compression_candidates(c: &mut Criterion) {
    let mut group = c.benchmark_group("compression");
    for size in [1024, 8192] {
        let cart = session(size)
            .get::<String>("cart")
            .unwrap()
            .unwrap_or_default()
            .into_bytes();
        let lz4 = lz4_flex::block::compress(&cart);
        let deflate = miniz_oxide::deflate::compress_to_vec(&cart, 1);
        eprintln!(
            "compression of a {} B cart: lz4 ratio {:.2}, deflate-1 ratio {:.2}",
            cart.len(),
            lz4.len() as f64 / cart.len() as f64,
            deflate.len() as f64 / cart.len() as f64
        );
        group.bench_function(BenchmarkId::new("lz4/compress", size), |b| {
            b.iter(|| lz4_flex::block::compress(black_box(&cart)))
        });
        group.bench_function(BenchmarkId::new("deflate1/compress", size), |b| {
            b.iter(|| miniz_oxide::deflate::compress_to_vec(black_box(&cart), 1))
        });
        group.bench_function(BenchmarkId::new("lz4/decompress", size), |b| {
            b.iter(|| lz4_flex::block::decompress(black_box(&lz4), cart.len()).unwrap())
        });
        group.bench_function(BenchmarkId::new("deflate1/decompress", size), |b| {
            b.iter(|| {
                miniz_oxide::inflate::decompress_to_vec_with_limit(black_box(&deflate), cart.len())
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = seal_open, aead_candidates, compression_candidates, nonce_source }
criterion_main!(benches);
