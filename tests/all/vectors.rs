//! Wire-format test vectors (docs/vectors/v1.json).
//!
//! Every valid vector is reproduced byte for byte by `Codec::seal` with its fixed nonce,
//! opened back to the same state, and re-derived by a second, minimal implementation of
//! docs/FORMAT.md written here (`spec`), which checks the AAD, the plaintext layout and the
//! ciphertext independently of `src/codec`. Every invalid vector must be rejected with its
//! expected error category.
//!
//! Vectors are kept forever per format version: never edit a published vector; add new ones.
//! To regenerate the file after adding vectors to the generator below:
//!
//! ```text
//! SEALED_SESSION_WRITE_VECTORS=1 cargo test --test all vectors::write_vectors
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{RngExt, SeedableRng};
use sealed_session::{Codec, Keyring, SessionConfig, SessionState};
use serde::{Deserialize, Serialize};

use crate::support::{hex, unhex};

const VECTORS_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/vectors/v1.json");
/// Seconds since the Unix epoch used as "now" by most vectors (2027-01-15T08:00:00Z).
const NOW: u64 = 1_800_000_000;

// ---------------------------------------------------------------------------------------
// The file format.

#[derive(Serialize, Deserialize, Debug, Clone)]
struct VectorFile {
    format: String,
    comment: Vec<String>,
    valid: Vec<ValidVector>,
    invalid: Vec<InvalidVector>,
    /// Inputs that MUST open to `state` although a conforming encoder need not produce them
    /// (another LZ4 compressor's blocks, other cuts, raw header syntax, settings at their
    /// boundaries). Added with issue 9.
    #[serde(default)]
    opens: Vec<OpenVector>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct OpenVector {
    name: String,
    description: String,
    keyring: serde_json::Value,
    now: u64,
    config: VectorConfig,
    /// The request's cookie pairs, in header order (when `headers` is absent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<Pair>,
    /// Raw `Cookie` header lines, in the order received (FORMAT.md §2.4).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<String>,
    state: VectorState,
    compressed: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct ValidVector {
    name: String,
    description: String,
    /// A keyring file (docs/FORMAT.md, "Keyring file"); the sealing key is its only
    /// non-retired, activated key.
    keyring: serde_json::Value,
    /// Unix seconds: when the cookies were sealed, and when they must open.
    now: u64,
    config: VectorConfig,
    /// The nonce the sealer drew, hex.
    nonce: String,
    state: VectorState,
    /// Keys whose values travel LZ4-compressed.
    compressed: Vec<String>,
    /// The associated data, hex.
    aad: String,
    /// The AEAD plaintext (postcard payload with framed values), hex.
    plaintext: String,
    /// The armor-decoded envelope (header ‖ ciphertext ‖ tag), hex.
    envelope: String,
    /// The cookies, in chunk order.
    cookies: Vec<Pair>,
    /// Typed vectors (issue 10 §2): how each entry's fingerprint is derived.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    fingerprints: Vec<FingerprintNote>,
}

/// An entry's fingerprint derived from its trace (docs/FORMAT.md §6.1).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct FingerprintNote {
    key: String,
    /// The Rust type and value that was inserted (informative).
    value: String,
    /// The serde data-model trace, hex.
    trace: String,
    /// FNV-1a 64 of the trace, little-endian, hex (as in the entry and the plaintext).
    fingerprint: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
struct InvalidVector {
    name: String,
    description: String,
    keyring: serde_json::Value,
    now: u64,
    config: VectorConfig,
    /// The request's cookie pairs, in header order.
    cookies: Vec<Pair>,
    /// Raw `Cookie` header lines, in the order received; when present, `cookies` is empty
    /// and these are parsed as FORMAT.md §2.4 says (issue 9 onwards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<String>,
    /// `DecodeError::category()` of the expected rejection.
    error: String,
}

/// The configuration knobs that matter to the wire format. Cookie attributes are the
/// defaults (`Path=/; Secure; HttpOnly; SameSite=Lax`, no Domain, no Max-Age); they only
/// influence where the encoder cuts chunks.
#[derive(Serialize, Deserialize, Debug, Clone)]
struct VectorConfig {
    cookie_name: String,
    cookie_budget: usize,
    total_budget: usize,
    compression_threshold: Option<usize>,
    max_inflated: usize,
    /// Seconds.
    clock_skew: u64,
    /// Seconds; `null` disables the idle check.
    idle_timeout: Option<u64>,
    /// The purpose label bound in the AAD (FORMAT.md §4.1); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    /// The encoder seals `validated_at` (payload schema 3, issue 11); absent: false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    seal_validated_at: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct VectorState {
    id: String,
    issued_at: u64,
    expires_at: u64,
    last_seen: u64,
    /// Schema 3 only (issue 11); absent: the session reads as validated when issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    validated_at: Option<u64>,
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct Entry {
    key: String,
    /// The entry's bytes (a postcard value), hex.
    value: String,
    /// The value's fingerprint (8 bytes, little-endian), hex; absent: none (schema 1 entry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct Pair {
    name: String,
    value: String,
}

fn pair(name: impl Into<String>, value: impl Into<String>) -> Pair {
    Pair {
        name: name.into(),
        value: value.into(),
    }
}

impl VectorConfig {
    fn new(cookie_name: &str, total_budget: usize) -> Self {
        VectorConfig {
            cookie_name: cookie_name.to_owned(),
            cookie_budget: 4050,
            total_budget,
            compression_threshold: Some(256),
            max_inflated: 64 * 1024,
            clock_skew: 60,
            idle_timeout: Some(7200),
            purpose: None,
            seal_validated_at: false,
        }
    }

    fn codec(&self) -> Codec {
        let mut c = SessionConfig::new()
            .cookie_name(self.cookie_name.clone())
            .cookie_budget(self.cookie_budget)
            .total_budget(self.total_budget)
            .compression_threshold(self.compression_threshold)
            .max_inflated(self.max_inflated)
            .clock_skew(Duration::from_secs(self.clock_skew))
            .idle_timeout(self.idle_timeout.map(Duration::from_secs))
            .purpose(self.purpose.clone())
            .seal_validated_at(self.seal_validated_at);
        if let Some(idle) = self.idle_timeout {
            c = c.renew_interval(Duration::from_secs((idle / 2).max(1)));
        }
        Codec::new(c).unwrap()
    }
}

impl VectorState {
    fn to_state(&self) -> SessionState {
        let id: [u8; 16] = unhex(&self.id).try_into().unwrap();
        let entries: BTreeMap<String, Vec<u8>> = self
            .entries
            .iter()
            .map(|e| (e.key.clone(), unhex(&e.value)))
            .collect();
        assert_eq!(
            entries.len(),
            self.entries.len(),
            "duplicate keys in a vector"
        );
        let mut state = SessionState::from_parts(
            id,
            at(self.issued_at),
            at(self.expires_at),
            at(self.last_seen),
            entries,
        );
        if let Some(validated) = self.validated_at {
            state.mark_validated(at(validated));
        }
        for e in &self.entries {
            if let Some(f) = &e.fingerprint {
                let f = u64::from_le_bytes(unhex(f).try_into().unwrap());
                state.insert_fingerprinted(e.key.clone(), f, unhex(&e.value));
            }
        }
        state
    }

    /// `stamped`: sealed with `validated_at` (the config's `seal_validated_at`).
    fn from_state(s: &SessionState, stamped: bool) -> Self {
        VectorState {
            id: hex(&s.id()),
            issued_at: secs(s.issued_at()),
            expires_at: secs(s.expires_at()),
            last_seen: secs(s.last_seen()),
            validated_at: stamped.then(|| secs(s.validated_at())),
            entries: s
                .entries()
                .iter()
                .map(|(k, v)| Entry {
                    key: k.clone(),
                    value: hex(v),
                    fingerprint: s.fingerprint(k).map(|f| hex(&f.to_le_bytes())),
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn at(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An RNG that hands out one fixed nonce: the only randomness `Codec::seal` draws.
struct FixedNonce(Vec<u8>);

impl rand::TryRng for FixedNonce {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        unreachable!("seal draws its nonce with fill_bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        unreachable!("seal draws its nonce with fill_bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        assert_eq!(dst.len(), self.0.len(), "nonce length");
        dst.copy_from_slice(&self.0);
        Ok(())
    }
}

impl rand::TryCryptoRng for FixedNonce {}

/// `state` sealed at `now` with the one `nonce`, as the cookies' (name, value) pairs.
fn seal_pairs(
    codec: &Codec,
    ring: &Keyring,
    state: &SessionState,
    now: u64,
    nonce: Vec<u8>,
) -> Vec<Pair> {
    let cookies = codec
        .seal(ring, state, at(now), &mut FixedNonce(nonce))
        .unwrap();
    cookies.iter().map(|c| pair(c.name(), c.value())).collect()
}

fn keyring(json: &serde_json::Value, now: u64) -> Keyring {
    Keyring::from_json(&serde_json::to_vec(json).unwrap(), at(now)).unwrap()
}

fn pairs_of(cookies: &[Pair]) -> impl Iterator<Item = (&[u8], &[u8])> {
    cookies
        .iter()
        .map(|p| (p.name.as_bytes(), p.value.as_bytes()))
}

/// Opens a vector's input: its raw header lines when it has them, else its pairs.
fn open_input(
    config: &VectorConfig,
    ring: &serde_json::Value,
    now: u64,
    cookies: &[Pair],
    headers: &[String],
) -> Result<Option<sealed_session::Opened>, sealed_session::DecodeError> {
    let codec = config.codec();
    let ring = keyring(ring, now);
    if headers.is_empty() {
        codec.open(&ring, pairs_of(cookies), at(now))
    } else {
        let lines = headers.iter().map(|h| h.as_bytes());
        codec.open(&ring, sealed_session::codec::cookie_pairs(lines), at(now))
    }
}

fn load() -> VectorFile {
    let text = std::fs::read_to_string(VECTORS_PATH).expect("docs/vectors/v1.json");
    serde_json::from_str(&text).expect("vector file parses")
}

/// The sealing key of a vector's keyring: its only key that is neither retired nor pending.
fn sealing_key(json: &serde_json::Value) -> (u8, [u8; 4], [u8; 32]) {
    let keys = json["keys"].as_array().unwrap();
    let key = keys.iter().find(|k| k.get("retired_at").is_none()).unwrap();
    let alg = match key["algorithm"].as_str().unwrap() {
        "xchacha20poly1305" => 1,
        "aes256gcm" => 2,
        "xaes256gcm" => 3,
        other => panic!("{other}"),
    };
    let id: [u8; 4] = unhex(key["id"].as_str().unwrap()).try_into().unwrap();
    let secret: [u8; 32] = URL_SAFE_NO_PAD
        .decode(key["secret"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    (alg, id, secret)
}

// ---------------------------------------------------------------------------------------
// A second implementation of docs/FORMAT.md, written from the document.

mod spec {
    use aes::Aes256;
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    use aes_gcm::Aes256Gcm;
    use aes_gcm::aead::AeadInOut;
    use chacha20poly1305::XChaCha20Poly1305;

    pub const LABEL: &[u8] = b"sealed-session/v1";

    pub fn aad(name: &str, purpose: Option<&str>, count: u8, header: &[u8]) -> Vec<u8> {
        let mut out = LABEL.to_vec();
        out.push(u8::try_from(name.len()).unwrap());
        out.extend_from_slice(name.as_bytes());
        out.push(count);
        out.extend_from_slice(header);
        if let Some(p) = purpose {
            out.push(u8::try_from(p.len()).unwrap());
            out.extend_from_slice(p.as_bytes());
        }
        out
    }

    pub fn header(alg: u8, key_id: [u8; 4], nonce: &[u8]) -> Vec<u8> {
        let mut out = vec![1, alg];
        out.extend_from_slice(&key_id);
        out.extend_from_slice(nonce);
        out
    }

    pub fn nonce_len(alg: u8) -> usize {
        if alg == 2 { 12 } else { 24 }
    }

    /// C2SP XAES-256-GCM: the derived AES-256-GCM key and the inner 96-bit nonce.
    fn xaes(secret: &[u8; 32], nonce: &[u8]) -> (Aes256Gcm, [u8; 12]) {
        assert_eq!(nonce.len(), 24);
        let block = Aes256::new(secret.into());
        let mut l = [0u8; 16].into();
        block.encrypt_block(&mut l);
        let l: [u8; 16] = l.into();
        let mut k1 = [0u8; 16];
        for i in 0..16 {
            k1[i] = (l[i] << 1) | l.get(i + 1).map_or(0, |n| n >> 7);
        }
        if l[0] & 0x80 != 0 {
            k1[15] ^= 0x87;
        }
        let mut key = [0u8; 32];
        for (i, counter) in [1u8, 2].into_iter().enumerate() {
            let mut m = [0u8; 16];
            m[..4].copy_from_slice(&[0, counter, b'X', 0]);
            m[4..].copy_from_slice(&nonce[..12]);
            for (b, k) in m.iter_mut().zip(k1) {
                *b ^= k;
            }
            let mut m = m.into();
            block.encrypt_block(&mut m);
            key[16 * i..16 * i + 16].copy_from_slice(m.as_slice());
        }
        (Aes256Gcm::new(&key.into()), nonce[12..].try_into().unwrap())
    }

    pub fn seal(alg: u8, secret: &[u8; 32], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut buf = plaintext.to_vec();
        let tag = match alg {
            1 => XChaCha20Poly1305::new(secret.into()).encrypt_inout_detached(
                nonce.try_into().unwrap(),
                aad,
                buf.as_mut_slice().into(),
            ),
            2 => Aes256Gcm::new(secret.into()).encrypt_inout_detached(
                nonce.try_into().unwrap(),
                aad,
                buf.as_mut_slice().into(),
            ),
            3 => {
                let (gcm, inner) = xaes(secret, nonce);
                gcm.encrypt_inout_detached(&inner.into(), aad, buf.as_mut_slice().into())
            }
            _ => panic!("algorithm {alg}"),
        }
        .unwrap();
        buf.extend_from_slice(tag.as_slice());
        buf
    }

    pub fn open(
        alg: u8,
        secret: &[u8; 32],
        nonce: &[u8],
        aad: &[u8],
        sealed: &[u8],
    ) -> Option<Vec<u8>> {
        let (body, tag) = sealed.split_at(sealed.len().checked_sub(16)?);
        let tag: [u8; 16] = tag.try_into().ok()?;
        let mut buf = body.to_vec();
        let ok = match alg {
            1 => XChaCha20Poly1305::new(secret.into()).decrypt_inout_detached(
                nonce.try_into().ok()?,
                aad,
                buf.as_mut_slice().into(),
                &tag.into(),
            ),
            2 => Aes256Gcm::new(secret.into()).decrypt_inout_detached(
                nonce.try_into().ok()?,
                aad,
                buf.as_mut_slice().into(),
                &tag.into(),
            ),
            3 => {
                let (gcm, inner) = xaes(secret, nonce);
                gcm.decrypt_inout_detached(
                    &inner.into(),
                    aad,
                    buf.as_mut_slice().into(),
                    &tag.into(),
                )
            }
            _ => return None,
        };
        ok.ok().map(|()| buf)
    }

    pub fn varint(out: &mut Vec<u8>, mut n: u64) {
        while n >= 0x80 {
            out.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    /// One value's frame: stored, or LZ4 when at least `threshold` long and smaller so.
    pub fn frame(value: &[u8], threshold: Option<usize>) -> Vec<u8> {
        if threshold.is_some_and(|t| value.len() >= t) {
            let block = super::lz4(value);
            let mut out = vec![1];
            varint(&mut out, value.len() as u64);
            out.extend_from_slice(&block);
            if out.len() < value.len() + 1 {
                return out;
            }
        }
        let mut out = vec![0];
        out.extend_from_slice(value);
        out
    }

    /// The postcard payload, written field by field.
    pub fn payload(
        schema: u8,
        id: &[u8],
        times: [u64; 3],
        entries: &[(&[u8], Vec<u8>)],
    ) -> Vec<u8> {
        let mut out = vec![schema];
        out.extend_from_slice(id);
        for t in times {
            varint(&mut out, t);
        }
        varint(&mut out, entries.len() as u64);
        for (k, v) in entries {
            varint(&mut out, k.len() as u64);
            out.extend_from_slice(k);
            varint(&mut out, v.len() as u64);
            out.extend_from_slice(v);
        }
        out
    }
}

fn spec_plaintext(state: &VectorState, threshold: Option<usize>) -> Vec<u8> {
    if state.entries.iter().any(|e| e.fingerprint.is_some()) || state.validated_at.is_some() {
        return typed::spec_payload(state, threshold);
    }
    let entries: Vec<(&[u8], Vec<u8>)> = state
        .entries
        .iter()
        .map(|e| (e.key.as_bytes(), spec::frame(&unhex(&e.value), threshold)))
        .collect();
    spec::payload(
        1,
        &unhex(&state.id),
        [state.issued_at, state.expires_at, state.last_seen],
        &entries,
    )
}

/// Splits the first chunk's `<count>.` prefix off and concatenates the pieces.
fn spec_armored(cookies: &[Pair]) -> (u8, String) {
    let (count, first) = cookies[0].value.split_once('.').unwrap();
    let mut armored = first.to_owned();
    for p in &cookies[1..] {
        armored.push_str(&p.value);
    }
    (count.parse().unwrap(), armored)
}

// ---------------------------------------------------------------------------------------
// The checks.

#[test]
fn valid_vectors_reproduce_byte_for_byte() {
    let file = load();
    assert_eq!(file.format, "sealed-session/v1");
    assert!(file.valid.len() >= 6, "at least two vectors per algorithm");
    for v in &file.valid {
        typed::check_notes(v);
        let ring = keyring(&v.keyring, v.now);
        let codec = v.config.codec();
        let state = v.state.to_state();
        let got = seal_pairs(&codec, &ring, &state, v.now, unhex(&v.nonce));
        assert_eq!(got, v.cookies, "{}: cookies differ", v.name);

        let opened = codec
            .open(&ring, pairs_of(&v.cookies), at(v.now))
            .unwrap()
            .unwrap();
        assert_eq!(opened.state, state, "{}", v.name);
        assert_eq!(
            VectorState::from_state(&opened.state, v.config.seal_validated_at),
            v.state,
            "{}",
            v.name
        );
        assert_eq!(opened.compressed, v.compressed, "{}", v.name);
        assert!(!opened.needs_reseal);

        // The independent implementation agrees on every intermediate.
        let (alg, key_id, secret) = sealing_key(&v.keyring);
        let nonce = unhex(&v.nonce);
        assert_eq!(nonce.len(), spec::nonce_len(alg));
        let (count, armored) = spec_armored(&v.cookies);
        assert_eq!(usize::from(count), v.cookies.len());
        for (i, p) in v.cookies.iter().enumerate() {
            let name = if i == 0 {
                v.config.cookie_name.clone()
            } else {
                format!("{}.{i}", v.config.cookie_name)
            };
            assert_eq!(p.name, name);
            assert!(p.name.len() + p.value.len() <= 4096);
        }
        let envelope = URL_SAFE_NO_PAD.decode(&armored).unwrap();
        assert_eq!(hex(&envelope), v.envelope, "{}", v.name);
        let header = spec::header(alg, key_id, &nonce);
        assert!(envelope.starts_with(&header));
        let aad = spec::aad(
            &v.config.cookie_name,
            v.config.purpose.as_deref(),
            count,
            &header,
        );
        assert_eq!(hex(&aad), v.aad, "{}", v.name);
        let plaintext = spec_plaintext(&v.state, v.config.compression_threshold);
        assert_eq!(hex(&plaintext), v.plaintext, "{}", v.name);
        let sealed = spec::seal(alg, &secret, &nonce, &aad, &plaintext);
        assert_eq!(&envelope[header.len()..], &sealed[..], "{}", v.name);
        assert_eq!(
            spec::open(alg, &secret, &nonce, &aad, &sealed).unwrap(),
            plaintext
        );
    }
    let algorithms: Vec<u8> = file
        .valid
        .iter()
        .map(|v| sealing_key(&v.keyring).0)
        .collect();
    for alg in 1..=3 {
        assert!(
            algorithms.iter().filter(|&&a| a == alg).count() >= 2,
            "algorithm {alg}"
        );
    }
    assert!(
        file.valid
            .iter()
            .any(|v| v.cookies.len() >= 2 && !v.compressed.is_empty())
    );
}

#[test]
fn invalid_vectors_are_rejected_with_their_category() {
    let file = load();
    assert!(file.invalid.len() >= 20);
    for v in &file.invalid {
        match open_input(&v.config, &v.keyring, v.now, &v.cookies, &v.headers) {
            Err(e) => assert_eq!(e.category(), v.error, "{}", v.name),
            Ok(o) => panic!("{}: accepted ({:?})", v.name, o.map(|o| o.state)),
        }
    }
}

/// Also rejected when the cookies arrive as one raw `Cookie` header.
#[test]
fn invalid_vectors_are_rejected_from_a_raw_header() {
    let file = load();
    for v in file.invalid.iter().filter(|v| v.headers.is_empty()) {
        let header: Vec<String> = v
            .cookies
            .iter()
            .map(|p| format!("{}={}", p.name, p.value))
            .collect();
        let header = header.join("; ");
        let ring = keyring(&v.keyring, v.now);
        let codec = v.config.codec();
        let pairs = sealed_session::codec::cookie_pairs([header.as_bytes()]);
        assert!(codec.open(&ring, pairs, at(v.now)).is_err(), "{}", v.name);
    }
}

/// Every `opens` vector opens to its state (raw header lines parsed as §2.4 says).
#[test]
fn opens_vectors_open_to_their_state() {
    let file = load();
    assert!(file.opens.len() >= 10);
    for v in &file.opens {
        check_opens(v);
    }
}

fn invalid_named<'a>(file: &'a VectorFile, name: &str) -> &'a InvalidVector {
    file.invalid
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no invalid vector {name}"))
}

fn opens_named<'a>(file: &'a VectorFile, name: &str) -> &'a OpenVector {
    file.opens
        .iter()
        .find(|v| v.name == name)
        .unwrap_or_else(|| panic!("no opens vector {name}"))
}

#[track_caller]
fn assert_rejected(file: &VectorFile, name: &str, category: &str) {
    let v = invalid_named(file, name);
    assert_eq!(v.error, category, "{name}");
    let got = open_input(&v.config, &v.keyring, v.now, &v.cookies, &v.headers);
    assert_eq!(got.err().map(|e| e.category()), Some(category), "{name}");
}

/// Issue 9, A1: more distinct values of a chunk name than the cap is ambiguous; at the cap
/// every value is tried.
#[test]
fn a1_vectors_cover_the_duplicate_cap() {
    let file = load();
    assert_rejected(&file, "chunk/five-values-of-chunk-0", "ambiguous");
    assert_rejected(&file, "chunk/five-values-of-chunk-1", "ambiguous");
    check_opens(opens_named(&file, "chunk/four-values-of-chunk-0"));
}

/// Issue 9, A7: vectors with a purpose label reproduce (their AAD ends with the label) and
/// no other purpose, or none, opens them; a cookie without a label opens only without one.
#[test]
fn a7_purpose_vectors_bind_the_label() {
    let file = load();
    let labelled: Vec<&ValidVector> = file
        .valid
        .iter()
        .filter(|v| v.config.purpose.is_some())
        .collect();
    assert!(labelled.len() >= 2);
    for v in labelled {
        let purpose = v.config.purpose.clone().unwrap();
        let mut tail = vec![u8::try_from(purpose.len()).unwrap()];
        tail.extend(purpose.as_bytes());
        assert!(unhex(&v.aad).ends_with(&tail), "{}", v.name);
        for other in [None, Some("shop".to_owned())] {
            let mut config = v.config.clone();
            config.purpose = other;
            let got = open_input(&config, &v.keyring, v.now, &v.cookies, &[]);
            assert_eq!(got.err().map(|e| e.category()), Some("aead.tag"));
        }
    }
    // Without a label the AAD is the first release's: every published vector has none.
    assert!(file.valid[..9].iter().all(|v| v.config.purpose.is_none()));
    for name in ["purpose/missing", "purpose/unexpected", "purpose/other"] {
        assert_rejected(&file, name, "aead.tag");
    }
}

/// Issue 9, B1: LZ4 blocks from other compressors (the C library, literals only) decode.
#[test]
fn b1_blocks_of_other_compressors_open() {
    let file = load();
    for name in [
        "lz4/c-library-block",
        "lz4/literals-only-block",
        "lz4/last-match-12-before-end",
    ] {
        check_opens(opens_named(&file, name));
    }
    // The C library's block really differs from what this crate's compressor writes.
    let doc = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(6);
    let ours = lz4(doc.as_bytes());
    assert_ne!(
        hex(&ours),
        "ff2a4c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e73656374657475722061646970697363696e6720656c69742e203900ff06506c69742e20"
    );
}

/// Issue 9, B2: every block breaking an end-of-block rule is refused; the blocks in the
/// valid vectors (this crate's compressor) obey the rules.
#[test]
fn b2_end_of_block_rules_are_enforced() {
    let file = load();
    for (name, _, _, _) in BAD_BLOCKS {
        assert_rejected(&file, name, "compression");
    }
    // lz4_flex alone decodes two of them: the check is ours, not the library's.
    let mut out = [0u8; 21];
    assert!(lz4_flex::block::decompress_into(BAD_BLOCKS[1].3, &mut out[..20]).is_ok());
    assert!(lz4_flex::block::decompress_into(BAD_BLOCKS[2].3, &mut out).is_ok());
    assert!(file.valid.iter().any(|v| !v.compressed.is_empty()));
}

/// Issue 9, B3: one set's errors disqualify that set only; the error reported is the last
/// candidate's in the defined order; every combination counts towards the cap.
#[test]
fn b3_candidate_errors_and_order() {
    let file = load();
    assert_rejected(&file, "chunk/last-candidate-error", "key.unknown");
    assert_rejected(&file, "chunk/last-candidate-error-reversed", "aead.tag");
    assert_rejected(&file, "chunk/set-error-after-candidate", "aead.tag");
    assert_rejected(
        &file,
        "chunk/candidates-count-every-combination",
        "chunk.candidates",
    );
    check_opens(opens_named(&file, "chunk/bad-sets-beside-a-good-one"));
}

/// Issue 9, B5: raw `Cookie` header syntax: SP/HTAB only, no unquoting, pairs without `=`
/// skipped, several lines read as one list.
#[test]
fn b5_cookie_header_syntax() {
    let file = load();
    for name in [
        "header/tabs-and-spaces",
        "header/vertical-tab-is-not-whitespace",
        "header/pairs-without-equals",
        "header/several-lines",
    ] {
        let v = opens_named(&file, name);
        assert!(!v.headers.is_empty() && v.cookies.is_empty(), "{name}");
        check_opens(v);
    }
    assert_eq!(opens_named(&file, "header/several-lines").headers.len(), 2);
    assert_rejected(&file, "header/quoted-value", "chunk.count");
    assert_rejected(&file, "header/quoted-chunk-1", "armor");
    assert_rejected(&file, "header/form-feed-after-value", "armor");
    assert_rejected(&file, "header/no-break-space-after-value", "armor");
}

/// Issue 9, B6: empty pieces are pieces; a lone one-chunk session beside any higher chunk
/// name is `chunk.extra`.
#[test]
fn b6_empty_pieces_and_lone_higher_chunks() {
    let file = load();
    check_opens(opens_named(&file, "chunk/empty-first-piece"));
    check_opens(opens_named(&file, "chunk/empty-last-piece"));
    assert_rejected(&file, "chunk/extra-empty", "chunk.extra");
    assert_rejected(&file, "chunk/extra", "chunk.extra");
    assert_rejected(&file, "chunk/empty-pieces-recounted", "aead.tag");
}

/// Issue 9, B7: every vector carries every decoder setting that is not in the cookie, and
/// vectors pin how each is applied at its limit.
#[test]
fn b7_every_vector_carries_the_decoder_settings() {
    let text = std::fs::read_to_string(VECTORS_PATH).unwrap();
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut n = 0;
    for kind in ["valid", "invalid", "opens"] {
        for v in raw[kind].as_array().unwrap() {
            let config = v["config"].as_object().unwrap();
            for key in ["total_budget", "max_inflated", "clock_skew", "idle_timeout"] {
                assert!(config.contains_key(key), "{}: {key}", v["name"]);
            }
            n += 1;
        }
    }
    assert!(n > 100);
    let file = load();
    for name in [
        "settings/total-budget-counts-pieces",
        "settings/max-inflated-exact",
        "settings/idle-timeout-null",
        "settings/clock-skew-limit",
    ] {
        check_opens(opens_named(&file, name));
    }
    assert_rejected(&file, "settings/total-budget-one-short", "chunk.total");
    assert_rejected(&file, "settings/max-inflated-one-short", "compression");
    assert_rejected(&file, "settings/clock-skew-exceeded", "time.future");
}

/// Issue 9, B9: overlong payload varints open, an 11-byte or overflowing one does not; a
/// compressed frame of raw length 0 is refused; base names may contain dots.
#[test]
fn b9_varints_empty_frames_and_dotted_names() {
    let file = load();
    check_opens(opens_named(&file, "payload/overlong-varints"));
    assert_rejected(&file, "payload/varint-11-bytes", "payload");
    assert_rejected(&file, "payload/varint-overflow", "payload");
    assert_rejected(&file, "compression/raw-length-0", "compression");
    let dotted = file
        .valid
        .iter()
        .find(|v| v.name == "xaes256gcm/dotted-name")
        .unwrap();
    assert_eq!(dotted.cookies[1].name, "app.session.v2.1");
}

// ---------------------------------------------------------------------------------------
// The generator.

const KEY_TIME: &str = "2026-01-01T00:00:00Z";
const RETIRE_TIME: &str = "2027-01-01T00:00:00Z";

fn alg_name(alg: u8) -> &'static str {
    match alg {
        1 => "xchacha20poly1305",
        2 => "aes256gcm",
        _ => "xaes256gcm",
    }
}

fn secret_bytes(seed: u8) -> [u8; 32] {
    std::array::from_fn(|i| seed.wrapping_mul(0x20).wrapping_add(i as u8))
}

fn key_json(
    id: &str,
    alg: u8,
    secret: [u8; 32],
    retired: bool,
    activates: &str,
) -> serde_json::Value {
    let mut k = serde_json::json!({
        "id": id,
        "algorithm": alg_name(alg),
        "secret": URL_SAFE_NO_PAD.encode(secret),
        "created_at": KEY_TIME,
        "activates_at": activates,
    });
    if retired {
        k["retired_at"] = RETIRE_TIME.into();
    }
    k
}

fn ring_json(keys: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({ "version": 1, "keys": keys })
}

/// A keyring of one key, active since [`KEY_TIME`], with the secret of `seed`.
fn single_key_ring(id: &str, alg: u8, seed: u8) -> serde_json::Value {
    ring_json(vec![key_json(id, alg, secret_bytes(seed), false, KEY_TIME)])
}

fn key_id_hex(alg: u8) -> String {
    format!("5e55{alg:02x}{:02x}", 0xa0 + alg)
}

fn nonce_for(alg: u8, salt: u8) -> Vec<u8> {
    (0..spec::nonce_len(alg) as u8)
        .map(|i| i.wrapping_mul(17).wrapping_add(salt))
        .collect()
}

/// An LZ4 block (lz4_flex is built without `alloc` here, so through `compress_into`).
fn lz4(input: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(input.len())];
    let n = lz4_flex::block::compress_into(input, &mut out).unwrap();
    out.truncate(n);
    out
}

fn postcard<T: Serialize + ?Sized>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

fn small_state(alg: u8) -> SessionState {
    let mut entries = BTreeMap::new();
    entries.insert("n".to_owned(), postcard(&42u32));
    entries.insert("roles".to_owned(), postcard(&["admin", "dev"]));
    entries.insert("user".to_owned(), postcard("alice"));
    let id: [u8; 16] = std::array::from_fn(|i| (i as u8) | (alg << 4));
    let issued = NOW - 100;
    SessionState::from_parts(id, at(issued), at(issued + 86_400), at(NOW - 10), entries)
}

fn large_state(seed: u64) -> SessionState {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let doc = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(40);
    let noise: Vec<u8> = (0..5000).map(|_| rng.random()).collect();
    let mut entries = BTreeMap::new();
    entries.insert("doc".to_owned(), postcard(doc.as_str()));
    entries.insert(
        "noise".to_owned(),
        postcard(serde_bytes::Bytes::new(&noise)),
    );
    entries.insert("user".to_owned(), postcard("bob"));
    let id: [u8; 16] = std::array::from_fn(|_| rng.random());
    SessionState::from_parts(
        id,
        at(NOW - 600),
        at(NOW - 600 + 86_400),
        at(NOW - 5),
        entries,
    )
}

struct Gen {
    valid: Vec<ValidVector>,
    invalid: Vec<InvalidVector>,
    opens: Vec<OpenVector>,
}

impl Gen {
    #[allow(clippy::too_many_arguments)]
    fn valid(
        &mut self,
        name: &str,
        description: &str,
        ring: serde_json::Value,
        config: VectorConfig,
        nonce: Vec<u8>,
        state: &SessionState,
    ) -> ValidVector {
        let codec = config.codec();
        let kr = keyring(&ring, NOW);
        let cookies = seal_pairs(&codec, &kr, state, NOW, nonce.clone());
        let opened = codec
            .open(&kr, pairs_of(&cookies), at(NOW))
            .unwrap()
            .unwrap();
        let vstate = VectorState::from_state(state, config.seal_validated_at);
        let (alg, key_id, _) = sealing_key(&ring);
        let (count, armored) = spec_armored(&cookies);
        let header = spec::header(alg, key_id, &nonce);
        let v = ValidVector {
            name: name.to_owned(),
            description: description.to_owned(),
            keyring: ring,
            now: NOW,
            nonce: hex(&nonce),
            aad: hex(&spec::aad(
                &config.cookie_name,
                config.purpose.as_deref(),
                count,
                &header,
            )),
            plaintext: hex(&spec_plaintext(&vstate, config.compression_threshold)),
            envelope: hex(&URL_SAFE_NO_PAD.decode(&armored).unwrap()),
            config,
            state: vstate,
            compressed: opened.compressed,
            cookies,
            fingerprints: Vec::new(),
        };
        self.valid.push(v.clone());
        v
    }

    fn invalid(
        &mut self,
        base: &ValidVector,
        name: &str,
        description: &str,
        error: &str,
        edit: impl FnOnce(&mut InvalidVector),
    ) {
        let mut v = InvalidVector {
            name: name.to_owned(),
            description: description.to_owned(),
            keyring: base.keyring.clone(),
            now: base.now,
            config: base.config.clone(),
            cookies: base.cookies.clone(),
            headers: Vec::new(),
            error: error.to_owned(),
        };
        edit(&mut v);
        let got = open_input(&v.config, &v.keyring, v.now, &v.cookies, &v.headers);
        match got {
            Err(e) => assert_eq!(e.category(), error, "generator: {name}"),
            Ok(_) => panic!("generator: {name} was accepted"),
        }
        self.invalid.push(v);
    }
}

impl Gen {
    /// An input that must open: starts from `base`'s cookies and state, then `edit`.
    fn opens(
        &mut self,
        base: &ValidVector,
        name: &str,
        description: &str,
        edit: impl FnOnce(&mut OpenVector),
    ) {
        let mut v = OpenVector {
            name: name.to_owned(),
            description: description.to_owned(),
            keyring: base.keyring.clone(),
            now: base.now,
            config: base.config.clone(),
            cookies: base.cookies.clone(),
            headers: Vec::new(),
            state: base.state.clone(),
            compressed: base.compressed.clone(),
        };
        edit(&mut v);
        check_opens(&v);
        self.opens.push(v);
    }
}

/// The reference decoder opens `v` to its state, with its compressed keys.
#[track_caller]
fn check_opens(v: &OpenVector) {
    let opened = open_input(&v.config, &v.keyring, v.now, &v.cookies, &v.headers)
        .unwrap_or_else(|e| panic!("{}: {}", v.name, e.category()))
        .unwrap_or_else(|| panic!("{}: no session", v.name));
    assert_eq!(
        VectorState::from_state(&opened.state, v.config.seal_validated_at),
        v.state,
        "{}",
        v.name
    );
    assert_eq!(opened.compressed, v.compressed, "{}", v.name);
}

/// `envelope` armored as the single chunk of `v`'s cookie.
fn single_chunk(v: &ValidVector, envelope: &[u8]) -> Vec<Pair> {
    let value = format!("1.{}", URL_SAFE_NO_PAD.encode(envelope));
    vec![pair(v.config.cookie_name.clone(), value)]
}

/// Re-armors an envelope edited by `f` as a single chunk.
fn edit_envelope(v: &ValidVector, f: impl FnOnce(&mut Vec<u8>)) -> Vec<Pair> {
    let mut env = unhex(&v.envelope);
    f(&mut env);
    single_chunk(v, &env)
}

/// A single-chunk cookie sealing `plaintext` (any bytes) under the vector's key, as a
/// conforming encoder would: lets vectors reach the payload and compression checks.
fn seal_plaintext(v: &ValidVector, plaintext: &[u8]) -> Vec<Pair> {
    let (alg, key_id, secret) = sealing_key(&v.keyring);
    let nonce = nonce_for(alg, 0x77);
    let header = spec::header(alg, key_id, &nonce);
    let aad = spec::aad(
        &v.config.cookie_name,
        v.config.purpose.as_deref(),
        1,
        &header,
    );
    let mut env = header;
    env.extend(spec::seal(alg, &secret, &nonce, &aad, plaintext));
    single_chunk(v, &env)
}

fn generate() -> VectorFile {
    let mut g = Gen {
        valid: Vec::new(),
        invalid: Vec::new(),
        opens: Vec::new(),
    };
    let mut smalls = BTreeMap::new();
    let mut larges = BTreeMap::new();
    for alg in [1u8, 2, 3] {
        let ring = single_key_ring(&key_id_hex(alg), alg, alg);
        let s = g.valid(
            &format!("{}/small", alg_name(alg)),
            "Three small entries, one cookie, nothing compressed.",
            ring.clone(),
            VectorConfig::new("__Host-session", 6144),
            nonce_for(alg, alg),
            &small_state(alg),
        );
        smalls.insert(alg, s);
        let l = g.valid(
            &format!("{}/compressed-chunks", alg_name(alg)),
            "A compressible text (LZ4-framed) and 5000 incompressible bytes (stored): two chunks.",
            ring,
            VectorConfig::new("__Host-session", 16384),
            nonce_for(alg, 0x40 + alg),
            &large_state(u64::from(alg)),
        );
        assert!(l.cookies.len() >= 2 && l.compressed == ["doc"]);
        larges.insert(alg, l);
    }
    {
        let alg = 3;
        let ring = single_key_ring(&key_id_hex(alg), alg, alg);
        let empty = SessionState::from_parts(
            [0xee; 16],
            at(NOW),
            at(NOW + 3600),
            at(NOW),
            BTreeMap::new(),
        );
        let mut config = VectorConfig::new("sid", 6144);
        config.compression_threshold = None;
        config.idle_timeout = None;
        g.valid(
            "xaes256gcm/empty-custom-name",
            "No entries, cookie name `sid`, compression and idle timeout off.",
            ring.clone(),
            config,
            nonce_for(alg, 0x99),
            &empty,
        );
        let mut entries = BTreeMap::new();
        entries.insert(String::new(), Vec::new());
        entries.insert(
            "small".to_owned(),
            b"abababababababababababababababab".to_vec(),
        );
        entries.insert("\u{e9}t\u{e9}".to_owned(), vec![0xff; 3]);
        let edge = SessionState::from_parts(
            [0x01; 16],
            at(0),
            at(u64::from(u32::MAX) * 4),
            at(NOW),
            entries,
        );
        let mut config = VectorConfig::new("__Secure-s", 6144);
        config.compression_threshold = Some(16);
        g.valid("xaes256gcm/edge-cases", "Empty key with empty value, non-ASCII key, a 32-byte value compressed at threshold 16, issued_at 0, a 5-byte varint expiry.", ring, config, nonce_for(alg, 0x5a), &edge);
        // secret_bytes(0) makes the top bit of AES_K(0^128) one, exercising the 0x87 branch
        // of the XAES-256-GCM subkey derivation (the other XAES keys here leave it zero).
        let msb_ring = single_key_ring("5e5503b0", 3, 0);
        g.valid(
            "xaes256gcm/derivation-msb-set",
            "An XAES-256-GCM key whose L = AES-256_K(0^128) has its top bit set, so K1 = (L << 1) xor 0x87.",
            msb_ring,
            VectorConfig::new("__Host-session", 6144),
            nonce_for(3, 0x33),
            &small_state(3),
        );
    }

    let s = smalls[&3].clone();
    let m = larges[&3].clone();
    let name = s.config.cookie_name.clone();
    // Chunk stage.
    g.invalid(
        &s,
        "chunk/count-leading-zero",
        "The count prefix `01.` is not canonical decimal.",
        "chunk.count",
        |v| {
            v.cookies[0].value.insert(0, '0');
        },
    );
    g.invalid(
        &s,
        "chunk/count-zero",
        "A count of 0.",
        "chunk.count",
        |v| v.cookies[0].value.replace_range(..1, "0"),
    );
    g.invalid(
        &s,
        "chunk/count-33",
        "A count above 32.",
        "chunk.count",
        |v| v.cookies[0].value.replace_range(..1, "33"),
    );
    g.invalid(
        &s,
        "chunk/no-count",
        "The count prefix is missing.",
        "chunk.count",
        |v| {
            v.cookies[0].value.replace_range(..2, "");
        },
    );
    g.invalid(
        &m,
        "chunk/missing-last",
        "The last chunk of two is absent.",
        "chunk.missing",
        |v| {
            v.cookies.pop();
        },
    );
    g.invalid(
        &m,
        "chunk/missing-first",
        "Only the continuation chunk is present.",
        "chunk.missing_first",
        |v| {
            v.cookies.remove(0);
        },
    );
    g.invalid(
        &s,
        "chunk/extra",
        "A chunk at an index at or above the declared count.",
        "chunk.extra",
        |v| {
            v.cookies.push(pair(format!("{name}.1"), "AAAA"));
        },
    );
    g.invalid(
        &s,
        "chunk/too-long",
        "A chunk value longer than 4096 bytes.",
        "chunk.too_long",
        |v| {
            v.cookies.push(pair(format!("{name}.1"), "A".repeat(4097)));
        },
    );
    g.invalid(
        &m,
        "chunk/total-too-long",
        "Both chunks together exceed the total budget.",
        "chunk.total",
        |v| {
            v.config.total_budget = 6144;
        },
    );
    g.invalid(
        &s,
        "chunk/recounted",
        "The count relabelled `2.` with an added chunk: the AAD binds the count.",
        "aead.tag",
        |v| {
            v.cookies[0].value.replace_range(..1, "2");
            v.cookies.push(pair(format!("{name}.1"), "AAAA"));
        },
    );
    g.invalid(
        &m,
        "chunk/truncated",
        "The last chunk cut back to a 4-character boundary of the armor (still canonical base64).",
        "aead.tag",
        |v| {
            let total: usize = v.cookies.iter().map(|p| p.value.len()).sum::<usize>() - 2;
            let last = v.cookies.last_mut().unwrap();
            let n = last.value.len();
            last.value.truncate(n - 4 - total % 4);
        },
    );
    g.invalid(
        &m,
        "chunk/extended",
        "Four characters appended to the last chunk.",
        "aead.tag",
        |v| {
            v.cookies.last_mut().unwrap().value.push_str("AAAA");
        },
    );
    let other = generate_other(&m);
    g.invalid(
        &m,
        "chunk/spliced",
        "Chunk 1 taken from another session sealed under the same key.",
        "aead.tag",
        |v| {
            v.cookies[1] = other[1].clone();
        },
    );
    g.invalid(
        &m,
        "chunk/ambiguous",
        "Two different authentic sessions under the same names.",
        "ambiguous",
        |v| {
            v.cookies.extend(other.iter().cloned());
        },
    );
    g.invalid(
        &s,
        "chunk/wrong-name",
        "The cookies presented under another name: the AAD binds the name.",
        "aead.tag",
        |v| {
            v.config.cookie_name = "__Host-other".into();
            v.cookies[0].name = "__Host-other".into();
        },
    );
    // Armor stage.
    let armored = s.cookies[0].value[2..].to_owned();
    assert!(
        armored.len() % 4 != 0,
        "the small XAES vector has trailing bits"
    );
    g.invalid(
        &s,
        "armor/padding",
        "Base64 padding `=` appended.",
        "armor",
        |v| {
            let pad = 4 - v.cookies[0].value[2..].len() % 4;
            v.cookies[0].value.push_str(&"=".repeat(pad));
        },
    );
    g.invalid(
        &s,
        "armor/trailing-bits",
        "The last character has a non-zero unused bit.",
        "armor",
        |v| {
            let last = v.cookies[0].value.pop().unwrap();
            const ALPHABET: &str =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let i = ALPHABET.find(last).unwrap();
            v.cookies[0].value.push(ALPHABET.as_bytes()[i ^ 1] as char);
        },
    );
    g.invalid(
        &s,
        "armor/standard-alphabet",
        "A character of the standard (`+/`) base64 alphabet.",
        "armor",
        |v| {
            v.cookies[0].value.replace_range(10..11, "+");
        },
    );
    g.invalid(
        &s,
        "armor/impossible-length",
        "Characters removed until the armored length is 1 mod 4, which no byte string encodes to.",
        "armor",
        |v| {
            let value = &mut v.cookies[0].value;
            let n = value.len();
            // Drop characters until the armored length is 1 mod 4 (never valid base64).
            let drop = match (n - 3) % 4 {
                0 => 4,
                d => d,
            };
            value.truncate(n - drop);
            assert_eq!((value.len() - 2) % 4, 1);
        },
    );
    // Envelope stage.
    g.invalid(
        &s,
        "envelope/unknown-version",
        "Version byte 2.",
        "envelope.unknown_version",
        |v| {
            v.cookies = edit_envelope(&s, |e| e[0] = 2);
        },
    );
    g.invalid(
        &s,
        "envelope/unknown-algorithm",
        "Algorithm byte 9.",
        "envelope.unknown_algorithm",
        |v| {
            v.cookies = edit_envelope(&s, |e| e[1] = 9);
        },
    );
    g.invalid(
        &s,
        "envelope/too-short",
        "Header and 15 bytes: shorter than a tag.",
        "envelope.too_short",
        |v| {
            v.cookies = edit_envelope(&s, |e| e.truncate(6 + 24 + 15));
        },
    );
    // Keys.
    g.invalid(
        &s,
        "key/unknown-id",
        "The keyring has no key with the envelope's id.",
        "key.unknown",
        |v| {
            v.keyring = single_key_ring("00000001", 3, 3);
        },
    );
    g.invalid(
        &s,
        "key/retired",
        "The key that sealed the cookie was retired.",
        "key.retired",
        |v| {
            let mut old = v.keyring["keys"][0].clone();
            old["retired_at"] = RETIRE_TIME.into();
            v.keyring = ring_json(vec![
                old,
                key_json("00000002", 3, secret_bytes(9), false, KEY_TIME),
            ]);
        },
    );
    g.invalid(
        &s,
        "key/algorithm-mismatch",
        "The key with that id is an AES-256-GCM key.",
        "key.algorithm_mismatch",
        |v| {
            v.keyring = single_key_ring(&key_id_hex(3), 2, 3);
        },
    );
    g.invalid(
        &s,
        "key/wrong-secret",
        "Same id and algorithm, another secret.",
        "aead.tag",
        |v| {
            v.keyring = single_key_ring(&key_id_hex(3), 3, 7);
        },
    );
    g.invalid(
        &s,
        "envelope/key-id-edited",
        "The key id in the header points at another (valid) key: the AAD binds the header.",
        "aead.tag",
        |v| {
            let mut keys = vec![v.keyring["keys"][0].clone()];
            keys.push(key_json("5e550000", 3, secret_bytes(3), false, KEY_TIME));
            v.keyring = ring_json(keys);
            v.cookies = edit_envelope(&s, |e| e[2..6].copy_from_slice(&[0x5e, 0x55, 0, 0]));
        },
    );
    // AEAD.
    for (alg, base) in &smalls {
        g.invalid(
            base,
            &format!("aead/{}-tag-bit", alg_name(*alg)),
            "The last tag byte's low bit flipped.",
            "aead.tag",
            |v| {
                v.cookies = edit_envelope(base, |e| *e.last_mut().unwrap() ^= 1);
            },
        );
        g.invalid(
            base,
            &format!("aead/{}-nonce-bit", alg_name(*alg)),
            "A nonce bit flipped.",
            "aead.tag",
            |v| {
                v.cookies = edit_envelope(base, |e| e[6] ^= 0x80);
            },
        );
        g.invalid(
            base,
            &format!("aead/{}-ciphertext-bit", alg_name(*alg)),
            "The first ciphertext byte's top bit flipped.",
            "aead.tag",
            |v| {
                let n = 6 + spec::nonce_len(*alg);
                v.cookies = edit_envelope(base, |e| e[n] ^= 0x80);
            },
        );
    }
    // Times.
    g.invalid(
        &s,
        "time/expired",
        "Opened at the sealed expiry.",
        "time.expired",
        |v| v.now = s.state.expires_at,
    );
    g.invalid(
        &s,
        "time/idle",
        "Opened 2 h after the sealed last-seen time.",
        "time.idle",
        |v| v.now = s.state.last_seen + 7200,
    );
    g.invalid(
        &s,
        "time/future",
        "Opened 61 s before issued_at (60 s of skew allowed).",
        "time.future",
        |v| v.now = s.state.issued_at - 61,
    );
    // Payload and compression, sealed by the spec implementation with the right key.
    let st = &s.state;
    let times = [st.issued_at, st.expires_at, st.last_seen];
    let id = unhex(&st.id);
    let cases: Vec<(&str, &str, &str, Vec<u8>)> = vec![
        (
            "payload/control",
            "A well-formed payload sealed by the spec implementation (sanity: rejected only by being expired).",
            "time.expired",
            spec::payload(1, &id, [st.issued_at, st.issued_at + 1, st.last_seen], &[]),
        ),
        (
            "payload/schema-2",
            "Schema byte 2.",
            "payload",
            spec::payload(2, &id, times, &[]),
        ),
        (
            "payload/trailing-byte",
            "One byte after the payload.",
            "payload",
            {
                let mut p = spec::payload(1, &id, times, &[]);
                p.push(0);
                p
            },
        ),
        (
            "payload/unsorted-keys",
            "Keys `b` then `a`.",
            "payload",
            spec::payload(1, &id, times, &[(b"b", vec![0]), (b"a", vec![0])]),
        ),
        (
            "payload/duplicate-keys",
            "Key `a` twice.",
            "payload",
            spec::payload(1, &id, times, &[(b"a", vec![0]), (b"a", vec![0])]),
        ),
        (
            "payload/key-not-utf8",
            "A key that is not UTF-8.",
            "payload",
            spec::payload(1, &id, times, &[(b"\xff", vec![0])]),
        ),
        (
            "payload/truncated",
            "The entry count promises one entry that is absent.",
            "payload",
            {
                let mut p = spec::payload(1, &id, times, &[]);
                *p.last_mut().unwrap() = 1;
                p
            },
        ),
        (
            "payload/empty",
            "An empty plaintext.",
            "payload",
            Vec::new(),
        ),
        (
            "compression/empty-frame",
            "A value with no frame byte.",
            "compression",
            spec::payload(1, &id, times, &[(b"a", vec![])]),
        ),
        (
            "compression/unknown-frame",
            "Frame byte 2.",
            "compression",
            spec::payload(1, &id, times, &[(b"a", vec![2, 1, 2])]),
        ),
        (
            "compression/non-canonical-length",
            "LZ4 frame whose length is `80 00` (a zero continuation group).",
            "compression",
            spec::payload(1, &id, times, &[(b"a", vec![1, 0x80, 0x00])]),
        ),
        (
            "compression/length-five-bytes",
            "LZ4 frame whose length takes 5 bytes.",
            "compression",
            spec::payload(
                1,
                &id,
                times,
                &[(b"a", vec![1, 0x81, 0x80, 0x80, 0x80, 0x00, 0x10])],
            ),
        ),
        (
            "compression/wrong-length",
            "LZ4 block of 300 bytes announced as 301.",
            "compression",
            {
                let mut f = vec![1];
                spec::varint(&mut f, 301);
                f.extend(lz4(&[b'a'; 300]));
                spec::payload(1, &id, times, &[(b"a", f)])
            },
        ),
        (
            "compression/bomb",
            "An LZ4 block that inflates to 65537 bytes, over the 64 KiB cap.",
            "compression",
            {
                let mut f = vec![1];
                spec::varint(&mut f, 65_537);
                f.extend(lz4(&[0u8; 65_537]));
                spec::payload(1, &id, times, &[(b"a", f)])
            },
        ),
        (
            "compression/stored-over-cap",
            "Two stored values of 600 bytes with a 1000-byte inflation cap: the cap counts every value.",
            "compression",
            {
                let mut big = vec![0];
                big.extend(vec![7u8; 600]);
                spec::payload(1, &id, times, &[(b"a", big.clone()), (b"b", big)])
            },
        ),
    ];
    for (vname, description, error, plaintext) in cases {
        g.invalid(&s, vname, description, error, |v| {
            v.cookies = seal_plaintext(&s, &plaintext);
            if vname == "compression/stored-over-cap" {
                v.config.max_inflated = 1000;
            }
        });
    }
    // Appended after the first publication.
    g.invalid(
        &m,
        "chunk/ambiguous-across-counts",
        "A one-chunk and a two-chunk authentic session under the same name (cookie tossing): the longer set must not win by making the shorter one look extra.",
        "ambiguous",
        |v| {
            let mut cookies = s.cookies.clone();
            cookies.extend(m.cookies.iter().cloned());
            v.cookies = cookies;
        },
    );
    generate_issue_9(&mut g, &smalls, &m);
    typed::generate(&mut g);
    VectorFile {
        format: "sealed-session/v1".into(),
        comment: vec![
            "Test vectors for the sealed-session v1 wire format; see docs/FORMAT.md.".into(),
            "Published vectors are never edited; new ones are appended. Times are Unix seconds.".into(),
            "valid: sealing `state` with the keyring's sealing key, `nonce`, `config` at `now` gives exactly `cookies`; opening them at `now` gives `state` back.".into(),
            "invalid: opening `cookies` with `keyring` and `config` at `now` must fail; `error` is the reference implementation's category.".into(),
            "Cookie attributes are the defaults: Path=/; Secure; HttpOnly; SameSite=Lax; no Domain, no Max-Age. They only affect where chunks are cut.".into(),
            "opens: `cookies` (or the raw `Cookie` header lines `headers`, parsed as FORMAT.md 2.4 says) must open at `now` to `state`, though an encoder need not produce them (other LZ4 blocks, other cuts, settings at their limits).".into(),
            "config holds every decoder setting that is not in the cookie (total_budget, max_inflated, clock_skew, idle_timeout; null disables) and the optional purpose label; a decoder must use exactly these.".into(),
        ],
        valid: g.valid,
        invalid: g.invalid,
        opens: g.opens,
    }
}

/// `plaintext` sealed under `v`'s key, name and purpose for a set of `count` chunks, armored
/// (not cut).
fn seal_armored(v: &ValidVector, plaintext: &[u8], count: u8) -> String {
    let (alg, key_id, secret) = sealing_key(&v.keyring);
    let nonce = nonce_for(alg, 0x77);
    let header = spec::header(alg, key_id, &nonce);
    let aad = spec::aad(
        &v.config.cookie_name,
        v.config.purpose.as_deref(),
        count,
        &header,
    );
    let mut env = header;
    env.extend(spec::seal(alg, &secret, &nonce, &aad, plaintext));
    URL_SAFE_NO_PAD.encode(env)
}

/// An LZ4 block of literals only (valid LZ4; what a compressor that finds no match emits).
fn lz4_literals(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if value.len() < 15 {
        out.push((value.len() as u8) << 4);
    } else {
        out.push(0xf0);
        let mut rest = value.len() - 15;
        while rest >= 255 {
            out.push(255);
            rest -= 255;
        }
        out.push(rest as u8);
    }
    out.extend_from_slice(value);
    out
}

/// `base`'s stored entries (hex values) as (key, stored frame) pairs, plus `extra` frames,
/// sorted by key.
fn frames_with(base: &VectorState, extra: Vec<(&str, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out: Vec<(Vec<u8>, Vec<u8>)> = base
        .entries
        .iter()
        .map(|e| {
            let mut f = vec![0];
            f.extend(unhex(&e.value));
            (e.key.as_bytes().to_vec(), f)
        })
        .collect();
    out.extend(extra.into_iter().map(|(k, f)| (k.as_bytes().to_vec(), f)));
    out.sort();
    out
}

fn payload_of(state: &VectorState, frames: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<(&[u8], Vec<u8>)> = frames
        .iter()
        .map(|(k, f)| (k.as_slice(), f.clone()))
        .collect();
    spec::payload(
        1,
        &unhex(&state.id),
        [state.issued_at, state.expires_at, state.last_seen],
        &entries,
    )
}

/// `state` with `(key, value)` added, entries kept in key order.
fn state_with(state: &VectorState, key: &str, value: &[u8]) -> VectorState {
    let mut s = state.clone();
    s.entries.push(Entry {
        key: key.to_owned(),
        value: hex(value),
        fingerprint: None,
    });
    s.entries
        .sort_by(|a, b| a.key.as_bytes().cmp(b.key.as_bytes()));
    s
}

/// Sum of the armored pieces of `cookies` (the count prefix excluded): what a decoder
/// compares with the total budget.
fn pieces_len(cookies: &[Pair]) -> usize {
    let (_, armored) = spec_armored(cookies);
    armored.len()
}

/// A 20-byte frame's LZ4 blocks that break one end-of-block rule each (FORMAT.md §6).
const BAD_BLOCKS: &[(&str, &str, usize, &[u8])] = &[
    (
        "lz4/ends-in-match",
        "A literal `a`, then a match of 19 at offset 1 that ends the block: no last literals-only sequence. Decoders without the end-of-block checks (lz4_flex) produce 20 bytes of `a`.",
        20,
        &[0x1f, b'a', 0x01, 0x00, 0x00],
    ),
    (
        "lz4/match-then-empty-literals",
        "As lz4/ends-in-match, followed by an empty last sequence: the match covers the last 5 bytes of the output. lz4_flex accepts it; the C library refuses it.",
        20,
        &[0x1f, b'a', 0x01, 0x00, 0x00, 0x00],
    ),
    (
        "lz4/last-five-not-literals",
        "`a`, a match of 19, one literal `b` (21 bytes): only 1 of the last 5 bytes is a literal.",
        21,
        &[0x1f, b'a', 0x01, 0x00, 0x00, 0x10, b'b'],
    ),
    (
        "lz4/match-starts-11-before-end",
        "9 literals, a match of 4 at output offset 9 (11 bytes before the end of 20), 7 literals: the last match must start at least 12 bytes before the end.",
        20,
        &[
            0x90, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', 0x04, 0x00, 0x70, b'j',
            b'k', b'l', b'm', b'n', b'o', b'p',
        ],
    ),
    (
        "lz4/offset-zero",
        "A match with offset 0.",
        20,
        &[
            0x10, b'a', 0x00, 0x00, 0x0b, 0x50, b'a', b'a', b'a', b'a', b'a',
        ],
    ),
    (
        "lz4/offset-before-start",
        "A match with offset 2 after 1 byte of output (no dictionary).",
        20,
        &[
            0x10, b'a', 0x02, 0x00, 0x0b, 0x50, b'a', b'a', b'a', b'a', b'a',
        ],
    ),
    (
        "lz4/trailing-bytes",
        "A valid literals-only block of 20 bytes followed by one more byte.",
        20,
        &[
            0xf0, 0x05, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', b'i', b'j', b'k', b'l',
            b'm', b'n', b'o', b'p', b'q', b'r', b's', b't', 0x00,
        ],
    ),
];

/// A varint of `n` padded to `len` bytes (overlong unless `len` is the shortest).
fn varint_padded(n: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut n = n;
    for i in 0..len {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        out.push(if i + 1 < len { low | 0x80 } else { low });
    }
    out
}

/// The vectors added for issue 9 (A1, A7, B1–B3, B5–B7, B9). Appended after the published
/// ones.
fn generate_issue_9(g: &mut Gen, smalls: &BTreeMap<u8, ValidVector>, m: &ValidVector) {
    let s = smalls[&3].clone();
    let name = s.config.cookie_name.clone();
    let value0 = s.cookies[0].value.clone();

    // A7: purpose labels.
    let ring3 = single_key_ring(&key_id_hex(3), 3, 3);
    let mut billing = VectorConfig::new("__Host-session", 6144);
    billing.purpose = Some("billing".into());
    let p = g.valid(
        "xaes256gcm/purpose",
        "Purpose label `billing`: the AAD ends with 0x07 `billing` (FORMAT.md 4.1). Same key, name, nonce and state as xaes256gcm/small.",
        ring3.clone(),
        billing.clone(),
        nonce_for(3, 3),
        &small_state(3),
    );
    assert_ne!(p.cookies, s.cookies);
    let mut billing16 = VectorConfig::new("__Host-session", 16384);
    billing16.purpose = Some("billing \u{2192} invoices".into());
    let pm = g.valid(
        "xchacha20poly1305/purpose-chunks",
        "A non-ASCII purpose label over two chunks.",
        single_key_ring(&key_id_hex(1), 1, 1),
        billing16,
        nonce_for(1, 0x61),
        &large_state(11),
    );
    assert!(pm.cookies.len() >= 2);
    g.invalid(
        &p,
        "purpose/missing",
        "A cookie sealed with purpose `billing` opened by an app without a purpose.",
        "aead.tag",
        |v| v.config.purpose = None,
    );
    g.invalid(
        &s,
        "purpose/unexpected",
        "A cookie sealed without a purpose opened by an app with purpose `billing`.",
        "aead.tag",
        |v| v.config.purpose = Some("billing".into()),
    );
    g.invalid(
        &p,
        "purpose/other",
        "A cookie sealed with purpose `billing` opened by an app with purpose `shop` (same keyring, same cookie name).",
        "aead.tag",
        |v| v.config.purpose = Some("shop".into()),
    );

    // A1: more distinct values of one chunk name than the cap (4).
    g.invalid(
        &s,
        "chunk/five-values-of-chunk-0",
        "Four planted values of chunk 0 before the authentic one: more than 4 distinct values of one chunk name is ambiguous, never a truncated choice.",
        "ambiguous",
        |v| {
            let mut c: Vec<Pair> = (0..4)
                .map(|i| pair(name.clone(), format!("1.{}", "A".repeat(40 + i))))
                .collect();
            c.extend(s.cookies.iter().cloned());
            v.cookies = c;
        },
    );
    g.invalid(
        m,
        "chunk/five-values-of-chunk-1",
        "The authentic set, then four more values of chunk 1: ambiguous, wherever the authentic value stands.",
        "ambiguous",
        |v| {
            for i in 0..4 {
                v.cookies
                    .push(pair(format!("{name}.1"), "B".repeat(40 + i)));
            }
        },
    );
    g.opens(
        &s,
        "chunk/four-values-of-chunk-0",
        "Three planted values of chunk 0 before the authentic one: at the cap every value is tried, and the authentic one opens.",
        |v| {
            let mut c: Vec<Pair> = (0..3)
                .map(|i| pair(name.clone(), format!("1.{}", "A".repeat(40 + i))))
                .collect();
            c.extend(s.cookies.iter().cloned());
            v.cookies = c;
        },
    );

    // B1: LZ4 output is not canonical; other compressors' blocks must decode.
    let lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(6);
    let c_block = unhex(
        "ff2a4c6f72656d20697073756d20646f6c6f722073697420616d65742c20636f6e73656374657475722061646970697363696e6720656c69742e203900ff06506c69742e20",
    );
    let other_blocks: [(&str, &str, Vec<u8>, Vec<u8>); 3] = [
        (
            "lz4/c-library-block",
            "A 342-byte value compressed by the LZ4 C library (LZ4_compress_default, 69 bytes); lz4_flex cuts the same input differently.",
            lorem.clone().into_bytes(),
            c_block,
        ),
        (
            "lz4/literals-only-block",
            "A compressible 342-byte value framed as LZ4 with a block of literals only (longer than stored, still a valid frame).",
            lorem.clone().into_bytes(),
            lz4_literals(lorem.as_bytes()),
        ),
        (
            "lz4/last-match-12-before-end",
            "A block whose match starts exactly 12 bytes before the end and whose last 8 bytes are literals: the limits of the end-of-block rules, allowed.",
            b"abcdefghefghjklmnopq".to_vec(),
            vec![
                0x80, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h', 0x04, 0x00, 0x80, b'j', b'k',
                b'l', b'm', b'n', b'o', b'p', b'q',
            ],
        ),
    ];
    for (vname, description, value, block) in other_blocks {
        let mut frame = vec![1];
        spec::varint(&mut frame, value.len() as u64);
        frame.extend(&block);
        let frames = frames_with(&s.state, vec![("doc", frame)]);
        let armored = seal_armored(&s, &payload_of(&s.state, &frames), 1);
        g.opens(&s, vname, description, |v| {
            v.cookies = vec![pair(name.clone(), format!("1.{armored}"))];
            v.state = state_with(&s.state, "doc", &value);
            v.compressed = vec!["doc".into()];
        });
    }
    // B2: blocks that break the end-of-block rules.
    for (vname, description, len, block) in BAD_BLOCKS {
        let mut frame = vec![1];
        spec::varint(&mut frame, *len as u64);
        frame.extend_from_slice(block);
        let frames = frames_with(&s.state, vec![("doc", frame)]);
        let armored = seal_armored(&s, &payload_of(&s.state, &frames), 1);
        g.invalid(&s, vname, description, "compression", |v| {
            v.cookies = vec![pair(name.clone(), format!("1.{armored}"))];
        });
    }

    // B3: a set's errors disqualify the set; the error reported is the last candidate's.
    let tampered = {
        let mut env = unhex(&s.envelope);
        *env.last_mut().unwrap() ^= 1;
        format!("1.{}", URL_SAFE_NO_PAD.encode(env))
    };
    let unknown_key = {
        let mut env = unhex(&s.envelope);
        env[2..6].copy_from_slice(&[0, 0, 0, 9]);
        format!("1.{}", URL_SAFE_NO_PAD.encode(env))
    };
    g.invalid(
        &s,
        "chunk/last-candidate-error",
        "Two chunk-0 values: a wrong tag, then an unknown key id. Candidates are tried in header order; the error reported is the last one's.",
        "key.unknown",
        |v| {
            v.cookies = vec![
                pair(name.clone(), tampered.clone()),
                pair(name.clone(), unknown_key.clone()),
            ];
        },
    );
    g.invalid(
        &s,
        "chunk/last-candidate-error-reversed",
        "As chunk/last-candidate-error in the other order.",
        "aead.tag",
        |v| {
            v.cookies = vec![
                pair(name.clone(), unknown_key.clone()),
                pair(name.clone(), tampered.clone()),
            ];
        },
    );
    g.invalid(
        &s,
        "chunk/set-error-after-candidate",
        "A wrong tag, then a chunk-0 value with a bad count: the bad set forms no candidate, so the error is the last candidate's (aead.tag), not chunk.count.",
        "aead.tag",
        |v| {
            v.cookies = vec![
                pair(name.clone(), tampered.clone()),
                pair(name.clone(), "99.AAAA".to_owned()),
            ];
        },
    );
    g.opens(
        &s,
        "chunk/bad-sets-beside-a-good-one",
        "Chunk-0 values with a bad count (`99.`) and with a missing chunk (`2.`) beside the authentic one: those sets are skipped, the request is not refused.",
        |v| {
            v.cookies = vec![
                pair(name.clone(), "99.AAAA".to_owned()),
                pair(name.clone(), "2.AAAA".to_owned()),
                s.cookies[0].clone(),
            ];
        },
    );
    {
        // Three chunk-0 values × three chunk-1 values = 9 combinations > 8, although the sets
        // of the first two are over the total budget and would never be opened.
        let exact = pieces_len(&m.cookies);
        g.invalid(
            m,
            "chunk/candidates-count-every-combination",
            "Total budget = the authentic pieces' length; two chunk-0 values whose sets exceed it and the authentic one, with three values of chunk 1: 9 combinations, over the 8 allowed, whether or not they fit the budget.",
            "chunk.candidates",
            |v| {
                v.config.total_budget = exact;
                let first = &m.cookies[0].value;
                v.cookies = vec![
                    pair(name.clone(), format!("{first}AAAA")),
                    pair(name.clone(), format!("{first}BBBB")),
                    m.cookies[0].clone(),
                    m.cookies[1].clone(),
                    pair(format!("{name}.1"), "C".repeat(8)),
                    pair(format!("{name}.1"), "D".repeat(8)),
                ];
            },
        );
    }

    // B5: Cookie header syntax.
    let other = {
        let ring = keyring(&s.keyring, s.now);
        let cookies = seal_pairs(
            &s.config.codec(),
            &ring,
            &small_state(1),
            s.now,
            nonce_for(3, 0xd1),
        );
        cookies[0].value.clone()
    };
    g.opens(
        &s,
        "header/tabs-and-spaces",
        "Spaces and tabs around the pair, the name and the value are trimmed.",
        |v| {
            v.cookies.clear();
            v.headers = vec![format!(" \t{name} \t=\t {value0}\t ;\t")];
        },
    );
    g.opens(
        &s,
        "header/vertical-tab-is-not-whitespace",
        "A second authentic session under `VT<name>`: only SP and HTAB are trimmed, so it is not our cookie (a decoder that trims VT sees two sessions: ambiguous).",
        |v| {
            v.cookies.clear();
            v.headers = vec![format!("\u{b}{name}={other}; {name}={value0}")];
        },
    );
    g.opens(
        &s,
        "header/pairs-without-equals",
        "Pairs without `=` (`<name>.1`, `<name>`) are not cookies: had `<name>.1` been read as an empty chunk 1, the lone one-chunk session would be refused as chunk.extra.",
        |v| {
            v.cookies.clear();
            v.headers = vec![format!("{name}.1; {name}={value0}; {name}")];
        },
    );
    g.opens(
        m,
        "header/several-lines",
        "The chunks in two `Cookie` header lines (HTTP/1.1 repeated field or HTTP/2 split `cookie` fields): read as one list, in order.",
        |v| {
            v.headers = v
                .cookies
                .iter()
                .map(|c| format!("other=1; {}={}", c.name, c.value))
                .collect();
            v.cookies.clear();
        },
    );
    for (vname, description, header, error) in [
        (
            "header/quoted-value",
            "A DQUOTE-quoted value: quotes are part of the value (`\"1` is no count).",
            format!("{name}=\"{value0}\""),
            "chunk.count",
        ),
        (
            "header/form-feed-after-value",
            "A form feed after the value: not trimmed, so not base64url.",
            format!("{name}={value0}\u{c}"),
            "armor",
        ),
        (
            "header/no-break-space-after-value",
            "U+00A0 (bytes C2 A0) after the value: not trimmed.",
            format!("{name}={value0}\u{a0}"),
            "armor",
        ),
    ] {
        g.invalid(&s, vname, description, error, |v| {
            v.cookies.clear();
            v.headers = vec![header];
        });
    }
    g.invalid(
        m,
        "header/quoted-chunk-1",
        "Chunk 1 DQUOTE-quoted.",
        "armor",
        |v| {
            v.headers = vec![format!(
                "{}={}; {}=\"{}\"",
                m.cookies[0].name, m.cookies[0].value, m.cookies[1].name, m.cookies[1].value
            )];
            v.cookies.clear();
        },
    );

    // B6: empty pieces; a lone higher chunk.
    let plaintext = unhex(&s.plaintext);
    let two = seal_armored(&s, &plaintext, 2);
    g.opens(
        &s,
        "chunk/empty-first-piece",
        "Count 2 (bound in the AAD), chunk 0 is just `2.` and chunk 1 holds the whole armored envelope: pieces may be empty, only their concatenation matters.",
        |v| {
            v.cookies = vec![
                pair(name.clone(), "2."),
                pair(format!("{name}.1"), two.clone()),
            ];
        },
    );
    g.opens(
        &s,
        "chunk/empty-last-piece",
        "Count 2, everything in chunk 0 and an empty chunk 1 (`<name>.1=`).",
        |v| {
            v.cookies = vec![
                pair(name.clone(), format!("2.{two}")),
                pair(format!("{name}.1"), ""),
            ];
        },
    );
    g.invalid(
        &s,
        "chunk/extra-empty",
        "A lone one-chunk session beside an empty `<name>.1=`: any chunk name at or above the count next to a lone chunk 0 is chunk.extra, whatever its value.",
        "chunk.extra",
        |v| v.cookies.push(pair(format!("{name}.1"), "")),
    );
    g.invalid(
        &s,
        "chunk/empty-pieces-recounted",
        "The two-chunk envelope of chunk/empty-last-piece presented as one chunk (`1.`): the count is bound.",
        "aead.tag",
        |v| v.cookies = vec![pair(name.clone(), format!("1.{two}"))],
    );

    // B7: decoder settings at their limits.
    let exact = pieces_len(&m.cookies);
    g.opens(
        m,
        "settings/total-budget-counts-pieces",
        "Total budget = the sum of the armored pieces (no names, count prefix or separators), which is how a decoder counts it; an encoder counts the whole header and would not have sealed this under that budget.",
        |v| v.config.total_budget = exact,
    );
    g.invalid(
        m,
        "settings/total-budget-one-short",
        "As settings/total-budget-counts-pieces with a budget one byte smaller.",
        "chunk.total",
        |v| v.config.total_budget = exact - 1,
    );
    let values_len: usize = s.state.entries.iter().map(|e| e.value.len() / 2).sum();
    g.opens(
        &s,
        "settings/max-inflated-exact",
        "max_inflated = the total size of the values.",
        |v| v.config.max_inflated = values_len,
    );
    g.invalid(
        &s,
        "settings/max-inflated-one-short",
        "max_inflated one byte below the total size of the values.",
        "compression",
        |v| v.config.max_inflated = values_len - 1,
    );
    g.opens(
        &s,
        "settings/idle-timeout-null",
        "Opened 2 h after last_seen with the idle timeout disabled (null).",
        |v| {
            v.config.idle_timeout = None;
            v.now = s.state.last_seen + 7200;
        },
    );
    g.opens(
        &s,
        "settings/clock-skew-limit",
        "Opened when last_seen is exactly clock_skew (60 s) ahead of now.",
        |v| v.now = s.state.last_seen - 60,
    );
    g.invalid(
        &s,
        "settings/clock-skew-exceeded",
        "Opened when last_seen is 61 s ahead of now.",
        "time.future",
        |v| v.now = s.state.last_seen - 61,
    );

    // B9: varints, an empty compressed frame, dotted names.
    {
        let st = &s.state;
        let mut pt = vec![1];
        pt.extend(unhex(&st.id));
        pt.extend(varint_padded(st.issued_at, 10));
        pt.extend(varint_padded(st.expires_at, 6));
        pt.extend(varint_padded(st.last_seen, 5));
        let mut entries = vec![0x83, 0x80, 0x00]; // 3 entries, overlong
        for (k, f) in frames_with(st, vec![]) {
            entries.extend(varint_padded(k.len() as u64, 2));
            entries.extend(&k);
            entries.extend(varint_padded(f.len() as u64, 3));
            entries.extend(&f);
        }
        pt.extend(entries);
        let armored = seal_armored(&s, &pt, 1);
        g.opens(
            &s,
            "payload/overlong-varints",
            "Every payload varint overlong (issued_at in the maximum 10 bytes): decoders MUST accept them, as postcard does (only a key holder can write them).",
            |v| v.cookies = vec![pair(name.clone(), format!("1.{armored}"))],
        );
        let mut bad = vec![1];
        bad.extend(unhex(&st.id));
        bad.extend([0x80; 10]);
        bad.push(0x00);
        bad.extend([0, 0, 0]);
        let armored = seal_armored(&s, &bad, 1);
        g.invalid(
            &s,
            "payload/varint-11-bytes",
            "issued_at as an 11-byte varint.",
            "payload",
            |v| v.cookies = vec![pair(name.clone(), format!("1.{armored}"))],
        );
        let mut bad = vec![1];
        bad.extend(unhex(&st.id));
        bad.extend([0x80; 9]);
        bad.push(0x02);
        bad.extend([0, 0, 0]);
        let armored = seal_armored(&s, &bad, 1);
        g.invalid(
            &s,
            "payload/varint-overflow",
            "issued_at as a 10-byte varint whose last byte is 0x02 (over 2^64).",
            "payload",
            |v| v.cookies = vec![pair(name.clone(), format!("1.{armored}"))],
        );
        let frames = frames_with(st, vec![("doc", vec![1, 0, 0])]);
        let armored = seal_armored(&s, &payload_of(st, &frames), 1);
        g.invalid(
            &s,
            "compression/raw-length-0",
            "A compressed frame announcing 0 bytes (`01 00 00`): an empty value is always stored.",
            "compression",
            |v| v.cookies = vec![pair(name.clone(), format!("1.{armored}"))],
        );
    }
    let dotted = g.valid(
        "xaes256gcm/dotted-name",
        "Base name `app.session.v2` (dots are token characters): chunk 1 is `app.session.v2.1`.",
        ring3,
        VectorConfig::new("app.session.v2", 16384),
        nonce_for(3, 0x2e),
        &large_state(12),
    );
    assert_eq!(dotted.cookies[1].name, "app.session.v2.1");

    // Issue 11: the keyring's cutoff (section 8, version 2). Strictly earlier is revoked.
    let cutoff_ring = |base: &ValidVector, at_secs: u64| {
        let mut ring = base.keyring.clone();
        ring["version"] = 2.into();
        ring["not_before"] = humantime::format_rfc3339_seconds(at(at_secs))
            .to_string()
            .into();
        ring
    };
    let issued = dotted.state.issued_at;
    g.invalid(
        &dotted,
        "revocation/issued-before-cutoff",
        "A version 2 keyring whose not_before is one second after the session's issued_at: revoked, whichever key sealed it.",
        "revoked",
        |v| v.keyring = cutoff_ring(&dotted, issued + 1),
    );
    g.opens(
        &dotted,
        "revocation/issued-at-cutoff",
        "not_before equal to issued_at: only sessions issued strictly earlier are refused.",
        |v| v.keyring = cutoff_ring(&dotted, issued),
    );
    g.opens(
        &dotted,
        "revocation/version-2-without-cutoff",
        "A version 2 keyring without not_before reads as version 1.",
        |v| v.keyring["version"] = 2.into(),
    );

    // Issue 11, level 2: payload schema 3 carries validated_at.
    let mut config = VectorConfig::new("__Host-session", 6144);
    config.seal_validated_at = true;
    let mut confirmed = small_state(3);
    confirmed.mark_validated(at(NOW - 40));
    let v3 = g.valid(
        "xaes256gcm/validated-at",
        "Schema 3 (a revalidation hook is configured): validated_at after last_seen; entries in the schema 2 layout, here without fingerprints.",
        single_key_ring(&key_id_hex(3), 3, 3),
        config.clone(),
        nonce_for(3, 0x33),
        &confirmed,
    );
    assert_eq!(&v3.plaintext[..2], "03");
    let (mut typed_state, notes) = typed::state(3);
    typed_state.mark_validated(at(NOW - 5));
    let mut typed_v3 = g.valid(
        "xaes256gcm/validated-at-typed",
        "Schema 3 with the fingerprinted entries of xaes256gcm/typed (see `fingerprints`) and one without.",
        single_key_ring(&key_id_hex(3), 3, 3),
        config,
        nonce_for(3, 0x34),
        &typed_state,
    );
    typed_v3.fingerprints = notes;
    *g.valid.last_mut().unwrap() = typed_v3;
    let mut ahead = small_state(3);
    ahead.mark_validated(at(NOW + 61));
    let mut ahead_config = VectorConfig::new("__Host-session", 6144);
    ahead_config.seal_validated_at = true;
    let cookies = seal_pairs(
        &ahead_config.codec(),
        &keyring(&v3.keyring, NOW),
        &ahead,
        NOW,
        nonce_for(3, 0x35),
    );
    g.invalid(
        &v3,
        "time/validated-at-future",
        "validated_at 61 s after now (clock_skew 60): future-dated like issued_at and last_seen.",
        "time.future",
        |v| v.cookies = cookies,
    );
    let mut p = unhex(&v3.plaintext);
    p[0] = 4;
    g.invalid(
        &v3,
        "payload/schema-4",
        "The schema 3 payload with schema byte 4 (unknown). (payload/unknown-schema, published before schema 3 existed, stays invalid: its bytes do not parse as schema 3.)",
        "payload",
        |iv| iv.cookies = seal_plaintext(&v3, &p),
    );
}

/// A second session like `m`, sealed under the same key with another nonce.
fn generate_other(m: &ValidVector) -> Vec<Pair> {
    let ring = keyring(&m.keyring, m.now);
    let state = large_state(99);
    let cookies = seal_pairs(&m.config.codec(), &ring, &state, m.now, nonce_for(3, 0xc3));
    assert_eq!(cookies.len(), m.cookies.len());
    cookies
}

/// Writes docs/vectors/v1.json when `SEALED_SESSION_WRITE_VECTORS=1`; otherwise checks that
/// the generator still produces exactly the committed file (so a change to the generator
/// cannot silently diverge from the published vectors).
#[test]
fn write_vectors() {
    let generated = generate();
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var("SEALED_SESSION_WRITE_VECTORS").as_deref() == Ok("1") {
        std::fs::create_dir_all(std::path::Path::new(VECTORS_PATH).parent().unwrap()).unwrap();
        std::fs::write(VECTORS_PATH, &text).unwrap();
        eprintln!(
            "wrote {VECTORS_PATH}: {} valid, {} invalid",
            generated.valid.len(),
            generated.invalid.len()
        );
        return;
    }
    let committed = load();
    // Published vectors must still be generated identically (new ones may be appended).
    for (a, b) in committed.valid.iter().zip(&generated.valid) {
        assert_same_json(a, b, &a.name);
    }
    for (a, b) in committed.invalid.iter().zip(&generated.invalid) {
        assert_same_json(a, b, &a.name);
    }
}

#[track_caller]
fn assert_same_json<T: Serialize>(a: &T, b: &T, name: &str) {
    assert_eq!(
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
        "{name}"
    );
}

/// The keyring example in docs/FORMAT.md (section 8) loads, and means what the text says.
#[test]
fn format_md_keyring_example_loads() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/FORMAT.md")).unwrap();
    let start = doc.find("```json\n").unwrap() + "```json\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let ring = Keyring::from_json(&doc.as_bytes()[start..end], at(NOW)).unwrap();
    assert_eq!(ring.sealing_key(at(NOW)).id().to_string(), "00000002");
    let old = ring
        .keys()
        .iter()
        .find(|k| k.id().to_string() == "5e5503a3")
        .unwrap();
    assert!(old.is_retired());
    // Same id and secret as the XAES-256-GCM vectors' key.
    let file = load();
    let xaes = file
        .valid
        .iter()
        .find(|v| v.name == "xaes256gcm/small")
        .unwrap();
    assert_eq!(
        xaes.keyring["keys"][0]["secret"],
        "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8"
    );
}

// ---------------------------------------------------------------------------------------
// Typed vectors (issue 10 §2): entries with fingerprints, schema 2 payloads. A separate
// block, appended after the others.

mod typed {
    use super::*;

    /// FNV-1a 64 as docs/FORMAT.md §6.1 defines it.
    pub fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    /// A trace name: varint(len) ‖ UTF-8.
    fn name(s: &str) -> Vec<u8> {
        let mut out = Vec::new();
        spec::varint(&mut out, s.len() as u64);
        out.extend_from_slice(s.as_bytes());
        out
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[derive(Serialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum Role {
        Guest,
        Admin { since: u16 },
    }

    /// Key, description, postcard bytes, fingerprint, trace.
    type Typed = (&'static str, &'static str, Vec<u8>, u64, Vec<u8>);
    /// A named edit of a plaintext.
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;

    /// The typed entries: key, description, value's postcard bytes and its fingerprint as
    /// `SessionState::insert` computes it, and the trace written by hand from the format.
    fn entries() -> Vec<Typed> {
        fn typed<T: Serialize + ?Sized>(
            key: &'static str,
            what: &'static str,
            value: &T,
            trace: Vec<u8>,
        ) -> Typed {
            let mut s = SessionState::from_parts([0; 16], at(0), at(1), at(0), BTreeMap::new());
            s.insert(key, value).unwrap();
            let fingerprint = s.fingerprint(key).unwrap();
            assert_eq!(
                fnv1a(&trace),
                fingerprint,
                "{key}: the format's trace and the implementation disagree"
            );
            (key, what, s.entries()[key].clone(), fingerprint, trace)
        }
        vec![
            typed(
                "cart",
                "Option<(u8, i64)>: Some((3, -2))",
                &Some((3u8, -2i64)),
                vec![0x12, 0x18, 0x02, 0x07, 0x05],
            ),
            typed("n", "u32: 42", &42u32, vec![0x09]),
            typed(
                "point",
                "struct Point { x: i32, y: i32 }: Point { x: 1, y: -1 }",
                &Point { x: 1, y: -1 },
                cat(&[
                    &[0x1b],
                    &name("Point"),
                    &[0x02],
                    &name("x"),
                    &[0x04],
                    &name("y"),
                    &[0x04],
                ]),
            ),
            typed(
                "role",
                "enum Role { Guest, Admin { since: u16 } }: Role::Admin { since: 2020 }",
                &Role::Admin { since: 2020 },
                cat(&[
                    &[0x1c],
                    &name("Role"),
                    &name("Admin"),
                    &[0x20, 0x01],
                    &name("since"),
                    &[0x08],
                ]),
            ),
            typed(
                "roles",
                "Vec<&str>: [\"admin\", \"dev\"]",
                &["admin", "dev"][..],
                vec![0x16, 0x0f, 0x0f, 0x17],
            ),
            typed("user", "&str: \"alice\"", "alice", vec![0x0f]),
        ]
    }

    /// A schema 2 state: the typed entries, and one entry without a fingerprint (as sealed
    /// before fingerprints existed).
    pub fn state(alg: u8) -> (SessionState, Vec<FingerprintNote>) {
        let mut raw = BTreeMap::new();
        raw.insert("legacy".to_owned(), postcard(&7u8));
        let id: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(3) | (alg << 5));
        let issued = NOW - 200;
        let mut state =
            SessionState::from_parts(id, at(issued), at(issued + 86_400), at(NOW - 20), raw);
        let mut notes = Vec::new();
        for (key, what, bytes, fingerprint, trace) in entries() {
            state.insert_fingerprinted(key.to_owned(), fingerprint, bytes);
            notes.push(FingerprintNote {
                key: key.to_owned(),
                value: what.to_owned(),
                trace: hex(&trace),
                fingerprint: hex(&fingerprint.to_le_bytes()),
            });
        }
        (state, notes)
    }

    /// docs/FORMAT.md §5, schema 2, written field by field.
    pub fn spec_payload(state: &VectorState, threshold: Option<usize>) -> Vec<u8> {
        // Schema 3 (issue 11) is schema 2 with `validated_at` after `last_seen`.
        let mut out = vec![if state.validated_at.is_some() { 3 } else { 2 }];
        out.extend_from_slice(&unhex(&state.id));
        for t in [state.issued_at, state.expires_at, state.last_seen] {
            spec::varint(&mut out, t);
        }
        if let Some(t) = state.validated_at {
            spec::varint(&mut out, t);
        }
        spec::varint(&mut out, state.entries.len() as u64);
        for e in &state.entries {
            spec::varint(&mut out, e.key.len() as u64);
            out.extend_from_slice(e.key.as_bytes());
            match &e.fingerprint {
                Some(f) => {
                    out.push(1);
                    let f = unhex(f);
                    assert_eq!(f.len(), 8);
                    out.extend_from_slice(&f);
                }
                None => out.push(0),
            }
            let frame = spec::frame(&unhex(&e.value), threshold);
            spec::varint(&mut out, frame.len() as u64);
            out.extend_from_slice(&frame);
        }
        out
    }

    /// A vector's notes agree with FNV-1a of their traces and with its entries.
    pub fn check_notes(v: &ValidVector) {
        for note in &v.fingerprints {
            assert_eq!(
                hex(&fnv1a(&unhex(&note.trace)).to_le_bytes()),
                note.fingerprint,
                "{}: {}",
                v.name,
                note.key
            );
            let entry = v.state.entries.iter().find(|e| e.key == note.key).unwrap();
            assert_eq!(entry.fingerprint.as_ref(), Some(&note.fingerprint));
        }
        let typed = v.state.entries.iter().filter(|e| e.fingerprint.is_some());
        assert_eq!(typed.count(), v.fingerprints.len(), "{}", v.name);
    }

    pub fn generate(g: &mut Gen) {
        let mut typed_xaes = None;
        for alg in [1u8, 2, 3] {
            let (state, notes) = state(alg);
            let mut v = g.valid(
                &format!("{}/typed", alg_name(alg)),
                "Schema 2: six values with fingerprints (see `fingerprints` for their traces) and one without (\"legacy\", read unchecked).",
                single_key_ring(&key_id_hex(alg), alg, alg),
                VectorConfig::new("__Host-session", 6144),
                nonce_for(alg, 0x20 + alg),
                &state,
            );
            assert!(v.plaintext.starts_with("02"));
            v.fingerprints = notes;
            *g.valid.last_mut().unwrap() = v.clone();
            typed_xaes = Some(v);
        }
        let v = typed_xaes.unwrap();
        let plaintext = unhex(&v.plaintext);
        // The first entry is "cart" with a fingerprint: its tag byte follows the key.
        let head = 1
            + 16
            + [v.state.issued_at, v.state.expires_at, v.state.last_seen]
                .iter()
                .map(|&t| {
                    let mut b = Vec::new();
                    spec::varint(&mut b, t);
                    b.len()
                })
                .sum::<usize>()
            + 1;
        assert_eq!(&plaintext[head..head + 6], b"\x04cart\x01");
        let edits: [(&str, &str, Edit); 3] = [
            (
                "payload/fingerprint-tag",
                "Schema 2 with a fingerprint tag of 2 (only 0 and 1 exist).",
                Box::new(move |p: &mut Vec<u8>| p[head + 5] = 2),
            ),
            (
                "payload/unknown-schema",
                "The typed payload with schema byte 3.",
                Box::new(|p: &mut Vec<u8>| p[0] = 3),
            ),
            (
                "payload/schema-1-with-fingerprints",
                "A typed payload labelled schema 1: the fingerprint bytes are read as the value's frame length and the rest no longer parses.",
                Box::new(|p: &mut Vec<u8>| p[0] = 1),
            ),
        ];
        for (name, description, edit) in edits {
            let mut p = plaintext.clone();
            edit(&mut p);
            g.invalid(&v, name, description, "payload", |iv| {
                iv.cookies = seal_plaintext(&v, &p);
            });
        }
    }
}
