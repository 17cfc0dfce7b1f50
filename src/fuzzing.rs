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
use std::sync::OnceLock;
use std::time::SystemTime;

use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::codec::{Codec, armor, compress, cookie_pairs, envelope, payload};
use crate::config::SessionConfig;
use crate::error::{DecodeError, EncodeError};
use crate::keyring::{Algorithm, Key, KeyId, Keyring, Secret, from_unix_seconds};
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
        entries,
        fingerprints,
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
