//! Fuzz entry points, shared by the cargo-fuzz targets in `fuzz/` and by the corpus replay
//! test (`tests/all/corpus.rs`), so the corpus is exercised by `cargo test` on stable.
//!
//! Every function takes arbitrary bytes and must return without panicking; the only panics
//! are the explicit invariant assertions below (a decoded session that re-seals to something
//! else, a round trip that loses data), which are what the fuzzer hunts for.
//!
//! The fixed keyring holds one key per algorithm with the ids and secrets of the test
//! vectors in `docs/vectors/v1.json`, so the vectors' cookies open here at [`NOW_SECS`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use actix_web::dev::Service as _;
use actix_web::http::header::{CACHE_CONTROL, COOKIE, HeaderValue, SET_COOKIE};
use actix_web::{App, HttpRequest, HttpResponse, web};

use chacha20::ChaCha12Rng as StdRng;
use rand_core::SeedableRng;

use crate::codec::{Codec, armor, compress, cookie_pairs, envelope, payload};
use crate::config::SessionConfig;
use crate::engine::SessionStatus;
use crate::error::{DecodeError, EncodeError};
use crate::inspect as cli;
use crate::keyring::{Algorithm, Key, KeyId, Keyring, Secret, from_unix_seconds};
use crate::middleware::SessionMiddleware;
use crate::session::SessionExt as _;
use crate::state::SessionState;

/// "Now" for every entry point: 2027-01-15T08:00:00Z, the vectors' sealing time.
pub const NOW_SECS: u64 = 1_800_000_000;
/// When the fixed keys activate (2026-01-01T00:00:00Z).
const KEY_TIME: u64 = 1_767_225_600;

struct Fixture {
    now: SystemTime,
    codec: Codec,
    /// Every algorithm's key plus a retired one; XAES-256-GCM seals.
    keyring: Keyring,
    /// One single-key keyring per algorithm, in `Algorithm::ALL` order.
    single: Vec<Keyring>,
}

/// The vectors' key for `algorithm`: id `5e55<alg><a0+alg>`, secret bytes `alg*32 + i`.
fn vector_key(algorithm: Algorithm, activates: u64) -> Key {
    let a = algorithm.id();
    let secret = std::array::from_fn(|i| {
        a.wrapping_mul(0x20)
            .wrapping_add(u8::try_from(i).unwrap_or(0))
    });
    let id = KeyId([0x5e, 0x55, a, 0xa0 + a]);
    Key::new(
        id,
        algorithm,
        Secret::new(secret),
        from_unix_seconds(KEY_TIME),
        from_unix_seconds(activates),
    )
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let now = from_unix_seconds(NOW_SECS);
        let mut keys: Vec<Key> = Algorithm::ALL
            .into_iter()
            .map(|a| vector_key(a, KEY_TIME + u64::from(a == Algorithm::Xaes256Gcm)))
            .collect();
        let retired = Key::new(
            KeyId([0, 0, 0, 9]),
            Algorithm::Xaes256Gcm,
            Secret::new([9; 32]),
            from_unix_seconds(KEY_TIME),
            from_unix_seconds(KEY_TIME),
        );
        keys.push(retired.retired(now));
        let ring = |keys| match Keyring::new(keys, now) {
            Ok(ring) => ring,
            Err(e) => panic!("the fixed fuzzing keyring is valid: {e}"),
        };
        let single = Algorithm::ALL
            .into_iter()
            .map(|a| ring(vec![vector_key(a, KEY_TIME)]))
            .collect();
        Fixture {
            now,
            codec: codec(SessionConfig::new()),
            keyring: ring(keys),
            single,
        }
    })
}

/// The default configuration with a 16 KiB total budget (so multi-chunk seeds open).
fn codec(config: SessionConfig) -> Codec {
    match Codec::new(config.total_budget(16 * 1024)) {
        Ok(codec) => codec,
        Err(e) => panic!("the fuzzing configuration is valid: {e}"),
    }
}

/// Seals `state`, opens the cookies again and checks that the same session comes back.
/// Returns the cookie pairs (empty when the session is too large to seal).
fn reseal_and_reopen(
    codec: &Codec,
    keyring: &Keyring,
    state: &SessionState,
    now: SystemTime,
    seed: u64,
) -> Vec<(String, String)> {
    let cookies = match codec.seal(keyring, state, now, &mut StdRng::seed_from_u64(seed)) {
        Ok(cookies) => cookies,
        Err(EncodeError::TooLarge { needed, budget }) => {
            assert!(needed > budget, "TooLarge with {needed} <= {budget}");
            return Vec::new();
        }
        Err(EncodeError::ValuesTooLarge { size, cap }) => {
            let total: usize = state.entries().values().map(Vec::len).sum();
            assert!(
                size > cap && size == total,
                "ValuesTooLarge with {size} <= {cap}"
            );
            return Vec::new();
        }
        Err(e) => panic!("a valid session could not be sealed: {e}"),
    };
    for c in &cookies {
        let line = c.to_string().len();
        assert!(
            line <= codec.config().cookie_budget,
            "Set-Cookie line of {line} bytes"
        );
        assert!(
            c.name().len() + c.value().len() <= 4096,
            "cookie over 4096 bytes"
        );
    }
    let pairs: Vec<(String, String)> = cookies
        .iter()
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect();
    match codec.open(
        keyring,
        pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        now,
    ) {
        Ok(Some(opened)) => assert!(
            opened.state == *state,
            "a re-sealed session opened to another state"
        ),
        Ok(None) => panic!("a sealed session's cookies were not recognised"),
        Err(e) => panic!("a sealed session did not open: {e}"),
    }
    pairs
}

/// Raw `Cookie` header bytes through [`cookie_pairs`] and [`Codec::open`]. A session that
/// opens must re-seal and re-open to the same state.
pub fn open_header(data: &[u8]) {
    let f = fixture();
    let present = f.codec.present_chunks(cookie_pairs([data]));
    let _ = f.codec.removal_cookies(present, 1);
    if let Ok(Some(opened)) = f.codec.open(&f.keyring, cookie_pairs([data]), f.now) {
        reseal_and_reopen(&f.codec, &f.keyring, &opened.state, f.now, 0);
    }
}

/// Whether a raw `Cookie` header opens with the fixed keyring at [`NOW_SECS`] (for the
/// corpus test: the seeds must reach the deep end of the pipeline).
///
/// # Errors
/// Why it did not open.
pub fn header_opens(data: &[u8]) -> Result<bool, DecodeError> {
    let f = fixture();
    Ok(f.codec
        .open(&f.keyring, cookie_pairs([data]), f.now)?
        .is_some())
}

/// Arbitrary bytes as a decoded envelope: the header parser's invariants, then the whole
/// open pipeline with the bytes armored into a one-chunk cookie.
pub fn envelope(data: &[u8]) {
    let f = fixture();
    if let Ok(env) = envelope::parse(data) {
        let header_len = 6 + crate::codec::aead::nonce_len(env.algorithm);
        assert_eq!(env.header_len, header_len);
        assert!(data.len() >= header_len + crate::codec::aead::TAG_LEN);
        assert_eq!(Some(env.header), data.get(..header_len));
        assert_eq!(Some(env.nonce), data.get(6..header_len));
        assert_eq!(data.first(), Some(&1));
        assert_eq!(data.get(1), Some(&env.algorithm.id()));
        assert_eq!(data.get(2..6), Some(&env.key_id.0[..]));
    }
    let value = format!("1.{}", armor::encode(data));
    let name = f.codec.config().name().as_bytes();
    if let Ok(Some(opened)) = f.codec.open(&f.keyring, [(name, value.as_bytes())], f.now) {
        reseal_and_reopen(&f.codec, &f.keyring, &opened.state, f.now, 0);
    }
}

/// Arbitrary bytes as cookie text and as bytes to armor: the codec's own base64url
/// (table-driven, issue 14) against the `base64` crate's strict URL-safe, unpadded engine,
/// which must agree on every verdict and every byte.
pub fn armor(data: &[u8]) {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    assert_eq!(
        armor::decode(data).ok(),
        URL_SAFE_NO_PAD.decode(data).ok(),
        "decode verdicts differ"
    );
    let text = armor::encode(data);
    assert_eq!(text, URL_SAFE_NO_PAD.encode(data));
    assert_eq!(armor::decode(text.as_bytes()).ok().as_deref(), Some(data));
    let mut line = b"name=1.".to_vec();
    armor::encode_into(data, &mut line);
    assert_eq!(line.get(7..), Some(text.as_bytes()));
}

/// Arbitrary bytes as a decrypted plaintext (which the fuzzer cannot forge through the
/// AEAD): the payload parser, the per-value inflater under the default 64 KiB cap, and the
/// deflate → inflate round trip.
pub fn payload(data: &[u8]) {
    const CAP: usize = 64 * 1024;
    if let Ok(p) = payload::decode(data) {
        assert!(
            p.entries
                .windows(2)
                .all(|w| matches!(w, [a, b] if a.key < b.key))
        );
        let mut budget = CAP;
        for entry in &p.entries {
            let before = budget;
            if let Ok(value) = compress::inflate(entry.value, &mut budget) {
                assert_eq!(
                    before - budget,
                    value.len(),
                    "the cap is charged what was produced"
                );
            }
        }
        // What decodes re-encodes to something that decodes the same.
        if let Ok(again) = payload::encode(&p, Vec::new()) {
            match payload::decode(&again) {
                Ok(q) => {
                    assert!(q.schema == p.schema && q.id == p.id && q.entries == p.entries);
                    assert!(
                        (q.issued_at, q.expires_at, q.last_seen)
                            == (p.issued_at, p.expires_at, p.last_seen)
                    );
                }
                Err(e) => panic!("a re-encoded payload did not decode: {e}"),
            }
        }
    }
    // The whole input as one framed value.
    let mut budget = CAP;
    if let Ok(value) = compress::inflate(data, &mut budget) {
        assert!(value.len() <= CAP && budget == CAP - value.len());
    }
    // Deflate → inflate, the threshold taken from the first byte.
    let threshold = data.first().map_or(usize::MAX, |&b| usize::from(b));
    let mut framed = Vec::new();
    compress::deflate(data, threshold, &mut framed);
    assert!(
        framed.len() <= data.len() + 1,
        "framing never grows a value by more than its byte"
    );
    let mut budget = data.len();
    match compress::inflate(&framed, &mut budget) {
        Ok(value) => assert!(
            value == data && budget == 0,
            "deflate/inflate changed the value"
        ),
        Err(e) => panic!("a deflated value did not inflate: {e}"),
    }
}

/// Arbitrary bytes as a keyring file. One that loads must serialize, load again to the same
/// keys, and serialize identically the second time.
pub fn keyring_json(data: &[u8]) {
    let now = from_unix_seconds(NOW_SECS);
    let Ok(ring) = Keyring::from_json(data, now) else {
        return;
    };
    let json = ring.to_json();
    let again = match Keyring::from_json(json.as_bytes(), now) {
        Ok(again) => again,
        Err(e) => panic!("a serialized keyring did not load: {e}"),
    };
    let summary = |r: &Keyring| -> Vec<(KeyId, Algorithm, bool)> {
        r.keys()
            .iter()
            .map(|k| (k.id(), k.algorithm(), k.is_retired()))
            .collect()
    };
    assert_eq!(summary(&ring), summary(&again));
    assert_eq!(
        *json,
        *again.to_json(),
        "keyring serialization is not idempotent"
    );
}

/// A cursor over fuzz input that yields zeros once exhausted.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(std::array::from_fn(|_| self.u8()))
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// A session derived from the bytes: sealed under each algorithm in turn (chosen by the
/// first byte), opened again, then one byte of one cookie flipped, which must never open to
/// a different session.
pub fn roundtrip(data: &[u8]) {
    let f = fixture();
    let mut input = Input(data);
    let algorithm = Algorithm::ALL[usize::from(input.u8()) % Algorithm::ALL.len()];
    let keyring = &f.single[usize::from(algorithm.id() - 1) % f.single.len()];
    let knobs = input.u8();
    let threshold = match knobs & 3 {
        0 => None,
        1 => Some(1),
        2 => Some(16),
        _ => Some(256),
    };
    let mut config = SessionConfig::new().compression_threshold(threshold);
    if knobs & 4 != 0 {
        config = config.idle_timeout(None);
    }
    let codec = codec(config);
    let id: [u8; 16] = std::array::from_fn(|_| input.u8());
    let now = NOW_SECS;
    let (issued_at, expires_at, last_seen) = if knobs & 8 != 0 {
        (input.u64(), input.u64(), input.u64())
    } else {
        let issued = now - u64::from(input.u16());
        (
            issued,
            now + 1 + u64::from(input.u16()),
            issued.max(now - 3600),
        )
    };
    let mut entries = BTreeMap::new();
    let mut fingerprints = BTreeMap::new();
    while !input.0.is_empty() {
        let klen = usize::from(input.u8() % 40);
        let key = String::from_utf8_lossy(input.take(klen)).into_owned();
        let spec = input.u16();
        let vlen = usize::from(spec & 0x0fff);
        let value = if spec & 0x8000 != 0 {
            // A compressible value: a short pattern repeated.
            let pattern = input.take(1 + vlen % 16).to_vec();
            pattern
                .iter()
                .copied()
                .cycle()
                .take(vlen.saturating_mul(4))
                .collect()
        } else {
            input.take(vlen).to_vec()
        };
        if spec & 0x4000 != 0 {
            fingerprints.insert(key.clone(), input.u64());
        }
        entries.insert(key, value);
    }
    let state = SessionState {
        id,
        issued_at,
        expires_at,
        last_seen,
        validated_at: issued_at,
        entries: Arc::new(entries),
        fingerprints: std::sync::Arc::new(fingerprints),
    };
    let at = from_unix_seconds(now);

    // Times that the decoder would refuse: sealing works, opening names the time check.
    let skew = codec.config().clock_skew.as_secs();
    let idle = codec.config().idle_timeout.map(|d| d.as_secs());
    let expected = if issued_at > now + skew || last_seen > now + skew {
        Some(DecodeError::FutureDated)
    } else if expires_at <= now {
        Some(DecodeError::Expired)
    } else if idle.is_some_and(|i| last_seen.saturating_add(i) <= now) {
        Some(DecodeError::IdleExpired)
    } else {
        None
    };
    let pairs = match expected {
        None => reseal_and_reopen(&codec, keyring, &state, at, u64::from(knobs)),
        Some(err) => {
            if let Ok(cookies) = codec.seal(keyring, &state, at, &mut StdRng::seed_from_u64(1)) {
                let pairs: Vec<(String, String)> = cookies
                    .iter()
                    .map(|c| (c.name().to_owned(), c.value().to_owned()))
                    .collect();
                let got = codec.open(
                    keyring,
                    pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
                    at,
                );
                assert_eq!(got.err(), Some(err), "time checks");
            }
            return;
        }
    };
    // Flip one byte of one chunk value.
    let Some(&pick) = data.last() else { return };
    let mut tampered = pairs.clone();
    let which = usize::from(pick) % tampered.len().max(1);
    if let Some((_, value)) = tampered.get_mut(which) {
        let mut bytes = value.clone().into_bytes();
        let len = bytes.len().max(1);
        let pos = (usize::from(knobs) * 31 + usize::from(pick)) % len;
        if let Some(b) = bytes.get_mut(pos) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        *value = String::from_utf8_lossy(&bytes).into_owned();
    }
    if tampered != pairs {
        if let Ok(Some(opened)) = codec.open(
            keyring,
            tampered.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            at,
        ) {
            panic!(
                "a tampered cookie opened (same state: {})",
                opened.state == state
            );
        }
    }
}

/// The fixed keyring as a keyring file, for tests that run the CLI on the fuzzing keys.
pub fn keyring_file() -> String {
    fixture().keyring.to_json().to_string()
}

/// A `Cookie` header holding a session (`"user"` = `"alice"`) sealed with the fixed keyring
/// at `issued`, with these raw times: a `SessionState` cannot be built from `SystemTime`s
/// past what the platform holds, but a cookie can carry any `u64`.
///
/// # Panics
/// If the session cannot be sealed (it always can).
pub fn sealed_header(issued: u64, expires: u64, last_seen: u64) -> Vec<u8> {
    let f = fixture();
    let mut entries = BTreeMap::new();
    entries.insert("user".to_owned(), b"\x05alice".to_vec());
    let state = SessionState {
        id: [7; 16],
        issued_at: issued,
        expires_at: expires,
        last_seen,
        validated_at: issued,
        entries: Arc::new(entries),
        fingerprints: Default::default(),
    };
    let at = from_unix_seconds(issued);
    let cookies = match f
        .codec
        .seal(&f.keyring, &state, at, &mut StdRng::seed_from_u64(0))
    {
        Ok(cookies) => cookies,
        Err(e) => panic!("a small session always seals: {e}"),
    };
    cookies
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ")
        .into_bytes()
}

/// Arbitrary bytes as the input of `sealed-session inspect` (standard input), the first byte
/// choosing the idle timeout: [`cli::header_fields`], then [`cli::run`] with the fixed
/// keyring at [`NOW_SECS`]. Neither may panic; what is printed never holds a secret of the
/// keyring, and a session is shown exactly when the outcome says it opened or was refused
/// for its times only.
pub fn inspect(data: &[u8]) {
    let f = fixture();
    let (knob, input) = data.split_first().unwrap_or((&0, &[]));
    let mut settings = cli::Settings::new("__Host-session");
    if knob & 1 != 0 {
        settings.idle_timeout = None;
    }
    let Ok(fields) = cli::header_fields(input) else {
        return;
    };
    let codec = match settings.codec() {
        Ok(codec) => codec,
        Err(e) => panic!("the inspect settings are valid: {e}"),
    };
    let (mut out, mut notes) = (Vec::new(), Vec::new());
    let outcome = match cli::run(
        &mut out, &mut notes, &f.keyring, &settings, &codec, &fields, f.now,
    ) {
        Ok(outcome) => outcome,
        Err(e) => panic!("writing to a Vec failed: {e}"),
    };
    let shown = !out.is_empty();
    match outcome {
        cli::Outcome::Opened => assert!(shown && notes.is_empty(), "opened but not shown"),
        cli::Outcome::Absent => assert!(!shown && !notes.is_empty(), "absent"),
        cli::Outcome::Rejected(
            DecodeError::Expired | DecodeError::IdleExpired | DecodeError::FutureDated,
        ) => assert!(!notes.is_empty()),
        cli::Outcome::Rejected(_) => assert!(!shown && !notes.is_empty(), "rejected, shown"),
    }
    for key in f.keyring.keys() {
        let secret = crate::codec::armor::encode(key.secret().expose());
        for text in [&out, &notes] {
            assert!(
                memchr::memmem::find(text, secret.as_bytes()).is_none(),
                "a secret was printed"
            );
        }
    }
}

/// How many times [`service`] compared a session read back from the jar with what was
/// written (for the corpus test: the seeds must reach that check).
pub static SERVICE_JAR_CHECKS: AtomicU64 = AtomicU64::new(0);

/// The middleware's clock in [`service`]: seconds since the epoch.
static SERVICE_NOW: AtomicU64 = AtomicU64::new(NOW_SECS);

/// The middleware [`service`] wraps around its app: the fixed keyring (the vectors' keys,
/// XAES-256-GCM sealing, the others open-only so their cookies are re-sealed), a 16 KiB total
/// budget, and [`SERVICE_NOW`] as the clock.
fn service_middleware() -> &'static (SessionMiddleware, SessionConfig) {
    static MIDDLEWARE: OnceLock<(SessionMiddleware, SessionConfig)> = OnceLock::new();
    MIDDLEWARE.get_or_init(|| {
        let config = SessionConfig::new().total_budget(16 * 1024);
        let built = SessionMiddleware::builder(fixture().keyring.clone())
            .config(config.clone())
            .clock(|| from_unix_seconds(SERVICE_NOW.load(Ordering::Relaxed)))
            .build();
        match built {
            Ok(middleware) => (middleware, config),
            Err(e) => panic!("the fuzzing middleware is valid: {e}"),
        }
    })
}

/// How far the clock moves before a request of [`service`], by the top 3 bits of its first
/// byte: nothing, a second, past the renewal interval, up to and past the idle timeout and
/// the lifetime.
const SERVICE_STEPS: [u64; 8] = [0, 1, 60, 299, 300, 7_199, 7_200, 86_400];

/// A sequence of up to 16 requests (separated by `\r`) through the real actix service with the
/// middleware, and a browser-like cookie jar kept from the responses (a request sent without
/// the jar stands for another client, whose cookies replace the jar when it gets any). Each request's first
/// byte is: bits 0-2 what the handler does (0 nothing, 1 read `k`, 2 write `k`, 3 store a
/// blob whose size is the next byte times 64, 4 remove `k`, 5 purge, 6 renew, 7 read and
/// write `n`), bit 3 send the jar, bit 4 send it after the fuzzed cookies, bits 5-7 the clock
/// step (`SERVICE_STEPS`). The rest is fuzzed `Cookie` header lines (split at `\n`; bytes
/// that no header value may hold are dropped).
///
/// What must hold: no panic and no service error; only a blob may answer 500 (over budget);
/// every `Set-Cookie` parses, fits the per-cookie budget and 4096 bytes of name and value, and
/// comes with `Cache-Control: private`; and when the jar alone is sent at the instant its
/// session was sealed, the handler sees exactly the value of `k` that was written.
pub fn service(data: &[u8]) {
    let (middleware, config) = service_middleware();
    SERVICE_NOW.store(NOW_SECS, Ordering::Relaxed);
    let runner = actix_web::rt::System::new();
    runner.block_on(async {
        let app = actix_web::test::init_service(
            App::new()
                .wrap(middleware.clone())
                .default_service(web::to(service_handler)),
        )
        .await;
        let mut jar: BTreeMap<String, String> = BTreeMap::new();
        // What `k` holds in the session the jar carries, when known for certain.
        let mut expected: Option<Option<String>> = None;
        for request in data.split(|&b| b == b'\r').take(16) {
            let (&op, mut rest) = request.split_first().unwrap_or((&0, &[]));
            let mut blob = 0u8;
            if op & 7 == 3 {
                (blob, rest) = rest.split_first().map_or((0, rest), |(b, r)| (*b, r));
            }
            let step = SERVICE_STEPS[usize::from(op >> 5)];
            if step > 0 {
                SERVICE_NOW.fetch_add(step, Ordering::Relaxed);
                expected = None;
            }
            let send_jar = op & 8 != 0 && !jar.is_empty();
            let jar_line = jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            let mut lines: Vec<Vec<u8>> = rest
                .split(|&b| b == b'\n')
                .map(|l| {
                    l.iter()
                        .copied()
                        .filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
                        .collect()
                })
                .filter(|l: &Vec<u8>| !l.is_empty())
                .collect();
            let clean = lines.is_empty();
            if send_jar {
                if op & 16 != 0 {
                    lines.push(jar_line.into_bytes());
                } else {
                    lines.insert(0, jar_line.into_bytes());
                }
            }
            let mut req = actix_web::test::TestRequest::get()
                .uri("/")
                .insert_header(("x-op", (op & 7).to_string()))
                .insert_header(("x-blob", blob.to_string()));
            for line in lines {
                match HeaderValue::from_bytes(&line) {
                    Ok(value) => req = req.append_header((COOKIE, value)),
                    Err(e) => panic!("a filtered header line was refused: {e}"),
                }
            }
            let res = match app.call(req.to_request()).await {
                Ok(res) => res,
                Err(e) => panic!("the service failed: {e}"),
            };
            let status = res.status().as_u16();
            assert!(
                status == 200 || (status == 500 && op & 7 == 3),
                "status {status} for op {}",
                op & 7
            );
            let set: Vec<String> = res
                .headers()
                .get_all(SET_COOKIE)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect();
            if !set.is_empty() {
                let private = res
                    .headers()
                    .get(CACHE_CONTROL)
                    .is_some_and(|v| v.as_bytes().starts_with(b"private"));
                assert!(private, "Set-Cookie without Cache-Control: private");
            }
            let body = actix_web::test::read_body(res).await;
            let (before, after) = parse_report(&body);
            if send_jar && clean && op & 7 != 0 && status == 200 {
                if let Some(want) = &expected {
                    SERVICE_JAR_CHECKS.fetch_add(1, Ordering::Relaxed);
                    assert!(
                        before.as_ref() == Some(want),
                        "the jar's session read {before:?}, written {want:?}"
                    );
                }
            }
            // A request without the jar comes from another client: when its response sets
            // cookies, that client becomes the one followed (a browser always sends its whole
            // jar, so its stale chunks would have been expired by the response).
            if !send_jar && !set.is_empty() {
                jar.clear();
                expected = None;
            }
            let base = config.name();
            let mut sealed = false;
            let mut removed = false;
            for line in &set {
                assert!(
                    line.len() <= config.cookie_budget,
                    "Set-Cookie line of {}",
                    line.len()
                );
                let cookie = match cookie::Cookie::parse(line.as_str()) {
                    Ok(c) => c,
                    Err(e) => panic!("an unparsable Set-Cookie line: {e}"),
                };
                assert!(cookie.name().len() + cookie.value().len() <= 4096);
                let gone = cookie.max_age().is_some_and(|a| a.is_zero());
                if cookie.name() == base {
                    sealed |= !gone;
                    removed |= gone;
                }
                if gone {
                    jar.remove(cookie.name());
                } else {
                    jar.insert(cookie.name().to_owned(), cookie.value().to_owned());
                }
            }
            if sealed {
                expected = match (status, after) {
                    (200, Some(v)) => Some((v != "-").then_some(v)),
                    _ => None,
                };
            } else if removed {
                expected = Some(None);
            }
        }
    });
}

/// `before=<k>;after=<k>` from the handler (`-` for absent).
fn parse_report(body: &[u8]) -> (Option<Option<String>>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let mut parts = text.splitn(2, ';');
    let before = parts
        .next()
        .and_then(|p| p.strip_prefix("before="))
        .map(|v| (v != "-").then(|| v.to_owned()));
    let after = parts
        .next()
        .and_then(|p| p.strip_prefix("after="))
        .map(str::to_owned);
    (before, after)
}

async fn service_handler(req: HttpRequest) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
    };
    let op = header("x-op");
    if op == 0 {
        return HttpResponse::Ok().body("untouched");
    }
    let session = req.get_session();
    let read = |s: &crate::Session| match s.get::<String>("k") {
        Ok(Some(v)) => v,
        _ => "-".to_owned(),
    };
    let before = read(&session);
    let written = match op {
        2 => {
            let counter = SERVICE_NOW.load(Ordering::Relaxed) % 1000;
            session.insert("k", format!("v{counter}-{}", before.len()))
        }
        3 => {
            let size = header("x-blob") * 64;
            let mut rng = StdRng::seed_from_u64(size as u64);
            let mut blob = vec![0u8; size];
            rand_core::Rng::fill_bytes(&mut rng, &mut blob);
            session.insert("blob", serde_bytes::ByteBuf::from(blob))
        }
        4 => {
            session.remove("k");
            Ok(())
        }
        5 => {
            session.purge();
            Ok(())
        }
        6 => {
            session.renew();
            Ok(())
        }
        7 => session.update_or("n", 0u64, |n: u64| n.wrapping_add(1)),
        _ => Ok(()),
    };
    if written.is_err() {
        return HttpResponse::InternalServerError().finish();
    }
    let after = if session.status() == SessionStatus::Purged {
        "-".to_owned()
    } else {
        read(&session)
    };
    HttpResponse::Ok().body(format!("before={before};after={after}"))
}
