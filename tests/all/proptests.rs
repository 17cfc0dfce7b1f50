//! Property tests of the codec: round trips of arbitrary sessions under every algorithm and
//! compression setting, and rejection (never a panic, never another session) of every
//! single-character change, bit flip, truncation, extension, chunk swap and splice.
//!
//! Each property runs 1,000 cases by default, or `PROPTEST_CASES` when set. For a long run:
//!
//! ```text
//! PROPTEST_CASES=10000 cargo test --release --test all proptests
//! ```
//!
//! Measured on the 2-core development machine, debug build: about 17 s for the default run,
//! about 110 s with `PROPTEST_CASES=10000`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use sealed_session::error::DecodeError;
use sealed_session::keyring::{Key, KeyId, Secret};
use sealed_session::{Algorithm, Codec, EncodeError, Keyring, SessionConfig, SessionState};

const NOW: u64 = 1_800_000_000;
const BUDGET: usize = 16 * 1024;
const ARMOR: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// 1,000 cases unless `PROPTEST_CASES` says otherwise.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn ring(algorithm: Algorithm) -> Keyring {
    let key = Key::new(
        KeyId([0x70, 0, 0, algorithm.id()]),
        algorithm,
        Secret::new([algorithm.id(); 32]),
        at(0),
        at(0),
    );
    Keyring::new(vec![key], at(NOW)).unwrap()
}

fn codec(threshold: Option<usize>) -> Codec {
    Codec::new(
        SessionConfig::new()
            .total_budget(BUDGET)
            .compression_threshold(threshold),
    )
    .unwrap()
}

type Pairs = Vec<(String, String)>;

fn open(codec: &Codec, ring: &Keyring, pairs: &Pairs) -> Result<Option<SessionState>, DecodeError> {
    codec
        .open(
            ring,
            pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            at(NOW),
        )
        .map(|o| o.map(|o| o.state))
}

/// Seals, or `None` when the session does not fit the budget (checked to be a real overflow).
fn seal(codec: &Codec, ring: &Keyring, state: &SessionState, seed: u64) -> Option<Pairs> {
    match codec.seal(ring, state, at(NOW), &mut StdRng::seed_from_u64(seed)) {
        Ok(cookies) => Some(
            cookies
                .iter()
                .map(|c| (c.name().to_owned(), c.value().to_owned()))
                .collect(),
        ),
        Err(EncodeError::TooLarge { needed, budget }) => {
            assert!(needed > budget, "TooLarge with {needed} <= {budget}");
            None
        }
        Err(e) => panic!("seal failed: {e}"),
    }
}

/// A tampered set must be rejected: an error, or (only if nothing changed) the same state.
fn assert_rejected(
    codec: &Codec,
    ring: &Keyring,
    original: &Pairs,
    tampered: &Pairs,
    state: &SessionState,
) {
    match open(codec, ring, tampered) {
        Err(_) => {}
        Ok(None) => panic!("tampered cookies were not recognised at all"),
        Ok(Some(got)) => {
            assert!(tampered == original, "a tampered cookie opened");
            assert!(got == *state);
        }
    }
}

fn algorithm() -> impl Strategy<Value = Algorithm> {
    prop::sample::select(Algorithm::ALL.to_vec())
}

fn threshold() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![Just(None), Just(Some(16)), Just(Some(256))]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..64),
        2 => prop::collection::vec(any::<u8>(), 0..2048),
        // Compressible: a short pattern repeated.
        2 => (prop::collection::vec(any::<u8>(), 1..8), 0..4096usize)
            .prop_map(|(p, n)| p.iter().copied().cycle().take(n).collect()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..32).prop_map(String::from_iter)
}

fn state() -> impl Strategy<Value = SessionState> {
    (
        any::<[u8; 16]>(),
        0..100_000u64,
        1..10_000_000u64,
        0..3600u64,
        prop::collection::btree_map(key(), value(), 0..8),
    )
        .prop_map(
            |(id, age, left, seen, entries): (_, _, _, _, BTreeMap<String, Vec<u8>>)| {
                let issued = NOW - age;
                SessionState::from_parts(
                    id,
                    at(issued),
                    at(NOW + left),
                    at(NOW - seen.min(age)),
                    entries,
                )
            },
        )
}

/// A sealed session with several chunks, for the chunk-level properties.
fn large_state(seed: u64, len: usize) -> SessionState {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut entries = BTreeMap::new();
    entries.insert("blob".to_owned(), (0..len).map(|_| rng.random()).collect());
    entries.insert("user".to_owned(), b"\x05alice".to_vec());
    SessionState::from_parts(
        rng.random(),
        at(NOW - 10),
        at(NOW + 3600),
        at(NOW - 10),
        entries,
    )
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn round_trip(state in state(), alg in algorithm(), threshold in threshold(), seed in any::<u64>()) {
        let (codec, ring) = (codec(threshold), ring(alg));
        let Some(pairs) = seal(&codec, &ring, &state, seed) else { return Ok(()) };
        prop_assert!(!pairs.is_empty() && pairs.len() <= 32);
        let total: usize = pairs.iter().map(|(n, v)| n.len() + 1 + v.len()).sum::<usize>() + 2 * (pairs.len() - 1);
        prop_assert!(total <= BUDGET);
        for (i, (name, value)) in pairs.iter().enumerate() {
            let expected = if i == 0 { "__Host-session".to_owned() } else { format!("__Host-session.{i}") };
            prop_assert_eq!(name, &expected);
            prop_assert!(name.len() + value.len() <= 4096);
            prop_assert!(!value.is_empty());
        }
        let prefix = format!("{}.", pairs.len());
        prop_assert!(pairs[0].1.starts_with(&prefix));
        let opened = codec.open(&ring, pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())), at(NOW));
        let opened = opened.unwrap().unwrap();
        prop_assert!(opened.state == state);
        prop_assert_eq!(opened.algorithm, alg);
        prop_assert!(!opened.needs_reseal);
        if threshold.is_none() {
            prop_assert!(opened.compressed.is_empty());
        }
        for k in &opened.compressed {
            prop_assert!(state.entries()[k].len() >= threshold.unwrap_or(usize::MAX));
        }
    }

    /// Issue 11: with `validated_at` sealed (schema 3, a revalidation hook configured) a
    /// session still round-trips, `validated_at` and fingerprints included; without it,
    /// `validated_at` reads back as the issue time, and a cutoff refuses exactly the sessions
    /// issued before it.
    #[test]
    fn i11_round_trip_with_validated_at_and_cutoff(
        state in state(),
        validated_ago in 0..100_000u64,
        typed in any::<bool>(),
        cutoff_ago in 0..200_000u64,
        seed in any::<u64>(),
    ) {
        let mut state = state;
        state.mark_validated(at(NOW - validated_ago));
        if typed {
            state.insert("typed", &(seed as i32)).unwrap();
        }
        let ring = ring(Algorithm::default());
        for stamped in [true, false] {
            let codec = Codec::new(
                SessionConfig::new().total_budget(BUDGET).seal_validated_at(stamped),
            ).unwrap();
            let Some(pairs) = seal(&codec, &ring, &state, seed) else { return Ok(()) };
            let opened = open(&codec, &ring, &pairs).unwrap().unwrap();
            let mut expected = state.clone();
            if !stamped {
                expected.mark_validated(state.issued_at());
            }
            prop_assert!(opened == expected);
            // The other codec setting reads it the same: the schema byte decides.
            let other = Codec::new(
                SessionConfig::new().total_budget(BUDGET).seal_validated_at(!stamped),
            ).unwrap();
            prop_assert!(open(&other, &ring, &pairs).unwrap().unwrap() == expected);

            let cutoff = at(NOW - cutoff_ago);
            let cut = ring.clone().with_not_before(Some(cutoff));
            let revoked = state.issued_at() < cutoff;
            match open(&codec, &cut, &pairs) {
                Err(DecodeError::Revoked) => prop_assert!(revoked),
                Ok(Some(_)) => prop_assert!(!revoked),
                other => prop_assert!(false, "{:?}", other.map(|o| o.is_some())),
            }
        }
    }

    /// Any single character of any chunk replaced by another byte: a different base64url
    /// character most of the time, sometimes a byte outside the alphabet.
    #[test]
    fn any_character_change_is_rejected(
        len in 0..6000usize, alg in algorithm(), seed in any::<u64>(),
        which in any::<prop::sample::Index>(), pos in any::<prop::sample::Index>(),
        replacement in prop_oneof![9 => prop::sample::select(ARMOR.to_vec()), 1 => any::<u8>()],
    ) {
        let (codec, ring) = (codec(Some(256)), ring(alg));
        let state = large_state(seed, len);
        let pairs = seal(&codec, &ring, &state, seed).unwrap();
        let mut tampered = pairs.clone();
        let value = &mut tampered[which.index(pairs.len())].1;
        let mut bytes = std::mem::take(value).into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != replacement);
        bytes[i] = replacement;
        *value = String::from_utf8_lossy(&bytes).into_owned();
        assert_rejected(&codec, &ring, &pairs, &tampered, &state);
    }

    /// Any bit of the decoded envelope flipped, re-armored and cut like the original.
    #[test]
    fn any_bit_flip_is_rejected(
        len in 0..6000usize, alg in algorithm(), seed in any::<u64>(), bit in any::<prop::sample::Index>(),
    ) {
        let (codec, ring) = (codec(Some(256)), ring(alg));
        let state = large_state(seed, len);
        let pairs = seal(&codec, &ring, &state, seed).unwrap();
        let (prefix, first) = pairs[0].1.split_once('.').unwrap();
        let armored: String = std::iter::once(first).chain(pairs[1..].iter().map(|(_, v)| v.as_str())).collect();
        let mut envelope = URL_SAFE_NO_PAD.decode(&armored).unwrap();
        let bit = bit.index(envelope.len() * 8);
        envelope[bit / 8] ^= 1 << (bit % 8);
        let rearmored = URL_SAFE_NO_PAD.encode(&envelope);
        prop_assert_eq!(rearmored.len(), armored.len());
        let mut tampered = Vec::new();
        let mut rest = rearmored.as_str();
        for (i, (name, value)) in pairs.iter().enumerate() {
            let n = if i == 0 { first.len() } else { value.len() };
            let (piece, tail) = rest.split_at(n);
            rest = tail;
            let v = if i == 0 { format!("{prefix}.{piece}") } else { piece.to_owned() };
            tampered.push((name.clone(), v));
        }
        match open(&codec, &ring, &tampered) {
            Err(_) => {}
            other => panic!("bit {bit} flipped and accepted: {:?}", other.map(|s| s.is_some())),
        }
    }

    /// Any chunk truncated (possibly to nothing) or extended with base64url characters.
    #[test]
    fn truncation_and_extension_are_rejected(
        len in 0..6000usize, alg in algorithm(), seed in any::<u64>(),
        which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(),
        extra in prop::collection::vec(prop::sample::select(ARMOR.to_vec()), 1..8), extend in any::<bool>(),
    ) {
        let (codec, ring) = (codec(Some(256)), ring(alg));
        let state = large_state(seed, len);
        let pairs = seal(&codec, &ring, &state, seed).unwrap();
        let mut tampered = pairs.clone();
        let value = &mut tampered[which.index(pairs.len())].1;
        if extend {
            value.push_str(std::str::from_utf8(&extra).unwrap());
        } else {
            let keep = cut.index(value.len());
            value.truncate(keep);
        }
        assert_rejected(&codec, &ring, &pairs, &tampered, &state);
        // Dropping a whole chunk cookie, or adding one past the end, is rejected too.
        if pairs.len() > 1 {
            let mut dropped = pairs.clone();
            dropped.remove(which.index(pairs.len()));
            assert_rejected(&codec, &ring, &pairs, &dropped, &state);
        }
        let mut added = pairs.clone();
        added.push((format!("__Host-session.{}", pairs.len()), std::str::from_utf8(&extra).unwrap().to_owned()));
        prop_assert!(open(&codec, &ring, &added).is_err());
    }

    /// Chunks swapped within a session or spliced in from another session under the same key.
    #[test]
    fn swaps_and_splices_are_rejected(
        len_a in 3000..9000usize, len_b in 3000..9000usize, alg in algorithm(), seed in any::<u64>(),
        i in any::<prop::sample::Index>(), j in any::<prop::sample::Index>(),
    ) {
        let (codec, ring) = (codec(None), ring(alg));
        let (sa, sb) = (large_state(seed, len_a), large_state(seed ^ 1, len_b));
        let a = seal(&codec, &ring, &sa, seed).unwrap();
        let b = seal(&codec, &ring, &sb, seed.wrapping_add(1)).unwrap();
        prop_assert!(a.len() >= 2 && b.len() >= 2);
        // Swap the values of two chunks of A (the count prefix stays on chunk 0).
        let (x, y) = (i.index(a.len()), j.index(a.len()));
        if x != y {
            let mut swapped = a.clone();
            let strip = |v: &str, k: usize| if k == 0 { v.split_once('.').unwrap().1.to_owned() } else { v.to_owned() };
            let (vx, vy) = (strip(&a[x].1, x), strip(&a[y].1, y));
            let put = |v: String, k: usize| if k == 0 { format!("{}.{v}", a.len()) } else { v };
            swapped[x].1 = put(vy, x);
            swapped[y].1 = put(vx, y);
            assert_rejected(&codec, &ring, &a, &swapped, &sa);
        }
        // Splice chunk k of B into A.
        let k = i.index(a.len().min(b.len()));
        let mut spliced = a.clone();
        spliced[k].1 = if k == 0 {
            format!("{}.{}", a.len(), b[0].1.split_once('.').unwrap().1)
        } else {
            b[k].1.clone()
        };
        assert_rejected(&codec, &ring, &a, &spliced, &sa);
        // Both sessions at once (cookie tossing): two authentic, different sessions are
        // ambiguous whatever their chunk counts, or too many combinations to try; never one
        // of them.
        let both: Pairs = a.iter().chain(&b).cloned().collect();
        match open(&codec, &ring, &both) {
            Err(DecodeError::Ambiguous) => {}
            Err(DecodeError::Chunk(e)) if e.category() == "chunk.candidates" => {}
            other => panic!("two sessions at once: {:?}", other.map(|s| s.is_some())),
        }
    }
}

/// Two authentic sessions with different chunk counts (a victim's 1-chunk session and a
/// 2-chunk session tossed in from a sibling subdomain under a `__Secure-` name with a Domain)
/// are refused like two sessions with the same count. Found by `swaps_and_splices_are_rejected`:
/// the shorter set used to fail with `chunk.extra` and the longer one opened.
#[test]
fn cookie_tossing_with_another_chunk_count_is_ambiguous() {
    let (codec, ring) = (codec(None), ring(Algorithm::default()));
    let victim = seal(&codec, &ring, &large_state(1, 100), 1).unwrap();
    let attacker = seal(&codec, &ring, &large_state(2, 5000), 2).unwrap();
    assert_eq!((victim.len(), attacker.len()), (1, 2));
    let both: Pairs = victim.iter().chain(&attacker).cloned().collect();
    assert_eq!(
        open(&codec, &ring, &both).map(|s| s.is_some()),
        Err(DecodeError::Ambiguous)
    );
}

/// The encoder refuses what its decoder would refuse: values that compress into the cookie
/// budget but inflate past `max_inflated` (found by the `roundtrip` fuzz target).
#[test]
fn sealing_refuses_values_over_the_inflation_cap() {
    let (codec, ring) = (codec(Some(256)), ring(Algorithm::default()));
    let mut entries = BTreeMap::new();
    for k in ["a", "b", "c", "d", "e"] {
        entries.insert(k.to_owned(), vec![b'x'; 16_000]);
    }
    let state = SessionState::from_parts([1; 16], at(NOW), at(NOW + 60), at(NOW), entries);
    match codec.seal(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1)) {
        Err(EncodeError::ValuesTooLarge {
            size: 80_000,
            cap: 65_536,
        }) => {}
        other => panic!("{:?}", other.map(|c| c.len())),
    }
    let mut entries = state.entries().clone();
    entries.remove("e");
    let fits = SessionState::from_parts([1; 16], at(NOW), at(NOW + 60), at(NOW), entries);
    let pairs = seal(&codec, &ring, &fits, 1).unwrap();
    assert_eq!(open(&codec, &ring, &pairs).unwrap().unwrap(), fits);
}

/// Per-value compression is no length oracle: with a secret entry S of 600 random bytes and
/// an attacker-chosen entry A, the cookie is exactly as long when A is a prefix of S as when
/// A is unrelated random data of the same length, for every prefix length, algorithm and
/// compression setting.
#[test]
fn compression_length_does_not_depend_on_secret_relation() {
    let mut rng = StdRng::seed_from_u64(0x5ec7e7);
    let secret: Vec<u8> = (0..600).map(|_| rng.random()).collect();
    let total_len = |pairs: &Pairs| pairs.iter().map(|(_, v)| v.len()).sum::<usize>();
    for alg in Algorithm::ALL {
        let ring = ring(alg);
        for threshold in [Some(16), Some(256), None] {
            let codec = codec(threshold);
            for k in 0..=600 {
                let random: Vec<u8> = (0..k).map(|_| rng.random()).collect();
                let with = |attacker: &[u8]| {
                    let mut entries = BTreeMap::new();
                    entries.insert("attacker".to_owned(), attacker.to_vec());
                    entries.insert("secret".to_owned(), secret.clone());
                    let state =
                        SessionState::from_parts([1; 16], at(NOW), at(NOW + 60), at(NOW), entries);
                    total_len(&seal(&codec, &ring, &state, k as u64).unwrap())
                };
                assert_eq!(
                    with(&secret[..k]),
                    with(&random),
                    "{alg} {threshold:?} k={k}"
                );
            }
        }
    }
}

/// The previous test has teeth: compressing the two values together (what the format avoids)
/// makes the length reveal the prefix relation.
#[test]
fn joint_compression_would_leak() {
    let mut rng = StdRng::seed_from_u64(0x5ec7e7);
    let secret: Vec<u8> = (0..600).map(|_| rng.random()).collect();
    let lz4 = |input: &[u8]| {
        let mut out = vec![0u8; lz4_flex::block::get_maximum_output_size(input.len())];
        lz4_flex::block::compress_into(input, &mut out).unwrap()
    };
    let leaks = (16..=600).step_by(16).filter(|&k| {
        let random: Vec<u8> = (0..k).map(|_| rng.random()).collect();
        let joint = |a: &[u8]| lz4(&[a, &secret[..]].concat());
        joint(&secret[..k]) < joint(&random)
    });
    assert_eq!(leaks.count(), (16..=600).step_by(16).count());
}
