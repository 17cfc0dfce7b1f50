//! Issue 9 A8: candidates are refused by their envelope header before their pieces are joined,
//! decoded or decrypted, and what the survivors may cost is bounded. The AEAD attempts are
//! counted (test builds only) where `open_candidate` calls the cipher.

use std::cell::Cell;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use super::tests::{NOW, at};
use super::*;
use crate::keyring::{Key, Secret};

thread_local! {
    /// AEAD opens attempted on this thread (incremented by `Codec::open_candidate`).
    pub(super) static AEAD_ATTEMPTS: Cell<usize> = const { Cell::new(0) };
    /// Candidates joined and base64-decoded in full on this thread (`Codec::open_candidate`).
    pub(super) static FULL_DECODES: Cell<usize> = const { Cell::new(0) };
}

/// Opens `pairs` and returns the result with the AEAD attempts it made.
fn open_counted(
    codec: &Codec,
    ring: &Keyring,
    pairs: &[(String, String)],
) -> (Result<Option<Opened>, DecodeError>, usize) {
    let (r, attempts, _) = open_counting(codec, ring, pairs);
    (r, attempts)
}

/// Opens `pairs`: the result, the AEAD attempts and the full decodes it made.
fn open_counting(
    codec: &Codec,
    ring: &Keyring,
    pairs: &[(String, String)],
) -> (Result<Option<Opened>, DecodeError>, usize, usize) {
    AEAD_ATTEMPTS.with(|n| n.set(0));
    FULL_DECODES.with(|n| n.set(0));
    let r = codec.open(
        ring,
        pairs.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())),
        at(NOW + 1),
    );
    (
        r,
        AEAD_ATTEMPTS.with(Cell::get),
        FULL_DECODES.with(Cell::get),
    )
}

/// Key 1 (XAES, seals), key 2 (XChaCha, retired), key 3 (AES-256-GCM, pending: opens only).
fn ring() -> Keyring {
    let key =
        |id: u8, alg, from| Key::new(KeyId([id; 4]), alg, Secret::new([id; 32]), at(0), at(from));
    Keyring::new(
        vec![
            key(1, Algorithm::Xaes256Gcm, 0),
            key(2, Algorithm::XChaCha20Poly1305, 0).retired(at(10)),
            key(3, Algorithm::Aes256Gcm, NOW + 3600),
        ],
        at(NOW),
    )
    .unwrap()
}

fn codec(total_budget: usize) -> Codec {
    Codec::new(
        SessionConfig::new()
            .total_budget(total_budget)
            .compression_threshold(None),
    )
    .unwrap()
}

/// Random base64url text of `n` characters whose last character has zero unused bits when
/// `n % 4 == 0` (always, here).
fn text(n: usize, seed: u64) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| char::from(A[rng.random_range(0..64)]))
        .collect()
}

/// Alice's session sealed by `codec` with `blob` bytes of filler: the cookie pairs.
fn sealed(codec: &Codec, ring: &Keyring, blob: usize) -> Vec<(String, String)> {
    let mut state = SessionState::new_with_rng(
        at(NOW),
        Duration::from_secs(3600),
        &mut StdRng::seed_from_u64(3),
    );
    state.insert("user", "alice").unwrap();
    state.insert("blob", &text(blob, 9)).unwrap();
    codec
        .seal(ring, &state, at(NOW), &mut StdRng::seed_from_u64(4))
        .unwrap()
        .iter()
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}

/// The one-chunk cookie of Alice's session with its envelope edited by `edit`.
fn edited(edit: impl FnOnce(&mut Vec<u8>)) -> Vec<(String, String)> {
    let pairs = sealed(&codec(6144), &ring(), 10);
    let armored = pairs[0].1.strip_prefix("1.").unwrap();
    let mut envelope = armor::decode(armored.as_bytes()).unwrap();
    edit(&mut envelope);
    vec![(
        pairs[0].0.clone(),
        format!("1.{}", armor::encode(&envelope)),
    )]
}

/// `pairs` with a character of the value at `at` (from the end when negative) replaced.
fn spoiled(mut pairs: Vec<(String, String)>, at: isize, with: char) -> Vec<(String, String)> {
    let v = &mut pairs[0].1;
    let i = if at < 0 {
        v.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    v.replace_range(i..i + 1, &with.to_string());
    pairs
}

/// A label, an edit of the envelope and the error it must give.
type Case = (&'static str, fn(&mut Vec<u8>), DecodeError);

#[test]
fn a8_header_refused_candidates_are_never_decoded_nor_decrypted() {
    let codec = codec(6144);
    let ring = ring();
    let cases: [Case; 6] = [
        (
            "version 2",
            |e| e[0] = 2,
            DecodeError::Envelope(EnvelopeError::UnknownVersion),
        ),
        (
            "algorithm 9",
            |e| e[1] = 9,
            DecodeError::Envelope(EnvelopeError::UnknownAlgorithm),
        ),
        (
            "unknown key",
            |e| e[2..6].copy_from_slice(&[9; 4]),
            DecodeError::UnknownKey,
        ),
        (
            "retired key",
            |e| {
                e[1] = Algorithm::XChaCha20Poly1305.id();
                e[2..6].copy_from_slice(&[2; 4]);
            },
            DecodeError::RetiredKey,
        ),
        (
            "algorithm not the key's",
            |e| e[1] = Algorithm::Aes256Gcm.id(),
            DecodeError::AlgorithmMismatch,
        ),
        (
            "too short for its algorithm",
            |e| e.truncate(6 + 24 + 15),
            DecodeError::Envelope(EnvelopeError::TooShort),
        ),
    ];
    for (label, edit, expected) in cases {
        // Refused from the header: never joined, decoded or decrypted.
        let got = open_counting(&codec, &ring, &edited(edit));
        assert_eq!(
            (got.0.err(), got.1, got.2),
            (Some(expected), 0, 0),
            "{label}"
        );
        // The order of FORMAT.md §3–4 is kept: bad armor anywhere is reported first.
        for (at, with) in [(-1, '*'), (40, '='), (20, '+')] {
            let (r, attempts) = open_counted(&codec, &ring, &spoiled(edited(edit), at, with));
            assert_eq!(
                (r.err(), attempts),
                (Some(DecodeError::Armor), 0),
                "{label} {at}"
            );
        }
    }
}

/// The screen refuses exactly what a strict base64 decode refuses, without decoding.
#[test]
fn a8_screen_armor_checks_agree_with_the_decoder() {
    let ring = ring();
    let mut rng = StdRng::seed_from_u64(11);
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/* .";
    let real = armor::decode(&edited(|_| {})[0].1.as_bytes()[2..]).unwrap();
    for _ in 0..20_000 {
        // A valid header, then random characters, mostly from the alphabet.
        let len = rng.random_range(8..80);
        let mut text = armor::encode(&real[..6]);
        while text.len() < len {
            let pool = if rng.random_range(0..20) == 0 {
                alphabet.len()
            } else {
                64
            };
            text.push(char::from(alphabet[rng.random_range(0..pool)]));
        }
        let value = format!("1.{text}");
        let candidate = chunk::Candidate {
            count: 1,
            pieces: vec![&value.as_bytes()[2..]],
        };
        let decoded = armor::decode(text.as_bytes());
        let screened = screen(&ring, &candidate, &mut Vec::new());
        assert_eq!(
            screened == Err(DecodeError::Armor),
            decoded.is_err(),
            "{text:?} {screened:?}"
        );
    }
}

/// Eight candidates (4 values of chunk 0 × 2 of chunk 1), each as long as the budget allows
/// and each starting with a real header of a known key: the worst a header that fits the
/// budgets can ask for.
fn hostile(codec: &Codec, ring: &Keyring, total_budget: usize) -> Vec<(String, String)> {
    let real = sealed(codec, ring, 10);
    let header = &real[0].1[2..42]; // "1." then 40 characters: 30 header bytes
    let half = (total_budget / 2) / 4 * 4 - 4;
    let mut pairs = Vec::new();
    for i in 0..4u64 {
        let value = format!("2.{header}{}", text(half - header.len(), i));
        pairs.push((codec.names.get(0).to_owned(), value));
    }
    for i in 0..2u64 {
        pairs.push((codec.names.get(1).to_owned(), text(half, 100 + i)));
    }
    pairs
}

#[test]
fn a8_eight_full_budget_candidates_with_a_known_key_cost_no_aead_attempt() {
    for budget in [6144, 8000] {
        let codec = codec(budget);
        let ring = ring();
        let pairs = hostile(&codec, &ring, budget);
        assert!(pairs.iter().all(|(_, v)| v.len() <= 4096));
        let (r, attempts) = open_counted(&codec, &ring, &pairs);
        assert_eq!(
            (r.err(), attempts),
            (Some(DecodeError::Chunk(ChunkError::TooManyCandidates)), 0),
            "{budget}"
        );
        assert_eq!(FULL_DECODES.with(Cell::get), 0, "{budget}");
        // Two of them (one value of chunk 0): within the bound (one full set plus up to 6144
        // characters) at the default budget, so each is decrypted and fails; at 8000 the
        // second would pass the bound: refused after one.
        let two: Vec<_> = pairs
            .iter()
            .filter(|(n, v)| n.ends_with(".1") || v == &pairs[0].1)
            .cloned()
            .collect();
        let (r, attempts) = open_counted(&codec, &ring, &two);
        let expected = if budget == 6144 {
            (Some(DecodeError::Tag), 2)
        } else {
            (Some(DecodeError::Chunk(ChunkError::TooManyCandidates)), 1)
        };
        assert_eq!((r.err(), attempts), expected, "{budget}");
    }
    assert_eq!(max_open_work(6144), 2 * 6144);
    assert_eq!(max_open_work(16 * 1024), 16 * 1024 + 6144);
    assert_eq!(max_open_work(3000), 6000);
}

#[test]
fn a8_valid_sessions_still_open_beside_screened_out_copies() {
    let ring = ring();
    // One chunk, and several chunks (16 KiB budget).
    for (budget, blob) in [(6144, 100), (16 * 1024, 10_000)] {
        let codec = codec(budget);
        let pairs = sealed(&codec, &ring, blob);
        let (r, attempts) = open_counted(&codec, &ring, &pairs);
        let opened = r.unwrap().unwrap();
        assert_eq!(
            opened.state.get::<String>("user").unwrap().unwrap(),
            "alice"
        );
        assert_eq!(opened.chunk_lengths.len(), pairs.len());
        assert_eq!(attempts, 1, "{budget}");
    }
    // Beside a first chunk of the same name under an unknown key (another app's, a tossed
    // cookie): that copy is screened out, the session opens with one AEAD attempt.
    let codec = codec(6144);
    let pairs = sealed(&codec, &ring, 100);
    let foreign = edited(|e| e[2..6].copy_from_slice(&[7; 4]));
    let mut both = foreign.clone();
    both.extend(pairs.iter().cloned());
    let (r, attempts) = open_counted(&codec, &ring, &both);
    assert_eq!(r.unwrap().unwrap().key_id, KeyId([1; 4]));
    assert_eq!(attempts, 1);
    // Beside a full-budget copy with a valid header: both are decrypted (two full opens fit
    // the bound), the authentic one wins.
    let header = &pairs[0].1[2..42];
    let junk = format!("1.{header}{}", text(4000 - header.len(), 5));
    let mut both = vec![(pairs[0].0.clone(), junk)];
    both.extend(pairs.iter().cloned());
    let (r, attempts) = open_counted(&codec, &ring, &both);
    assert_eq!(r.unwrap().unwrap().key_id, KeyId([1; 4]));
    assert_eq!(attempts, 2);
    // A two-chunk session beside a second value of chunk 1: once the real set is authentic,
    // the set sharing its chunk 0 (its key and nonce) cannot be, and is not decrypted.
    let wide = self::codec(16 * 1024);
    let pairs = sealed(&wide, &ring, 5000);
    assert_eq!(pairs.len(), 2);
    let mut both = pairs.clone();
    both.push((pairs[1].0.clone(), text(pairs[1].1.len() / 4 * 4, 6)));
    let (r, attempts) = open_counted(&wide, &ring, &both);
    assert_eq!(r.unwrap().unwrap().key_id, KeyId([1; 4]));
    assert_eq!(attempts, 1);
}
