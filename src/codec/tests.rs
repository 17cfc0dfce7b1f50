use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::*;
use crate::error::ChunkError;
use crate::keyring::{Key, Secret, from_unix_seconds};

pub(crate) const NOW: u64 = 1_800_000_000;

pub(crate) fn at(secs: u64) -> SystemTime {
    from_unix_seconds(secs)
}

pub(crate) fn ring(alg: Algorithm, id: u8) -> Keyring {
    let key = Key::new(KeyId([id; 4]), alg, Secret::new([id; 32]), at(0), at(0));
    Keyring::new(vec![key], at(NOW)).unwrap()
}

pub(crate) fn codec() -> Codec {
    Codec::new(SessionConfig::new().total_budget(16 * 1024)).unwrap()
}

fn state_with(entries: &[(&str, Vec<u8>)]) -> SessionState {
    let mut rng = StdRng::seed_from_u64(7);
    let mut s = SessionState::new_with_rng(at(NOW), Duration::from_secs(3600), &mut rng);
    for (k, v) in entries {
        s.insert_raw((*k).to_owned(), v.clone());
    }
    s
}

fn pairs(cookies: &[Cookie<'static>]) -> Vec<(String, String)> {
    cookies
        .iter()
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
        .collect()
}

fn open_pairs(
    codec: &Codec,
    ring: &Keyring,
    p: &[(String, String)],
    now: u64,
) -> Result<Option<Opened>, DecodeError> {
    codec.open(
        ring,
        p.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())),
        at(now),
    )
}

fn random_text(n: usize, seed: u64) -> Vec<u8> {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| ALPHABET[rng.random_range(0..64)]).collect()
}

#[test]
fn round_trip_every_algorithm_and_size() {
    for alg in Algorithm::ALL {
        let ring = ring(alg, 1);
        let codec = codec();
        for n in [0, 10, 1000, 5000, 11_000] {
            let state = state_with(&[
                ("user", b"alice".to_vec()),
                ("blob", random_text(n, n as u64)),
            ]);
            let cookies = codec
                .seal(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1))
                .unwrap();
            for c in &cookies {
                let line = c.to_string();
                assert!(line.len() <= 4050, "{}", line.len());
                assert!(c.name().len() + c.value().len() <= 4096);
            }
            let opened = open_pairs(&codec, &ring, &pairs(&cookies), NOW + 1)
                .unwrap()
                .unwrap();
            assert_eq!(opened.state, state, "{alg} {n}");
            assert!(!opened.needs_reseal);
            assert_eq!(opened.chunk_lengths.len(), cookies.len());
        }
    }
}

#[test]
fn large_compressible_session_spans_chunks_and_inflates() {
    let ring = ring(Algorithm::default(), 1);
    let codec = codec();
    let text = "lorem ipsum dolor sit amet ".repeat(1500).into_bytes();
    let state = state_with(&[("doc", text.clone()), ("noise", random_text(7000, 3))]);
    let cookies = codec
        .seal(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1))
        .unwrap();
    assert!(cookies.len() >= 3);
    let opened = open_pairs(&codec, &ring, &pairs(&cookies), NOW)
        .unwrap()
        .unwrap();
    assert_eq!(opened.compressed, vec!["doc".to_owned()]);
    assert_eq!(opened.state.entries["doc"], text);
}

#[test]
fn too_large_gives_no_cookies() {
    let ring = ring(Algorithm::default(), 1);
    let codec = Codec::new(SessionConfig::new()).unwrap();
    let state = state_with(&[("blob", random_text(64 * 1024, 1))]);
    match codec.seal(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1)) {
        Err(EncodeError::TooLarge { needed, budget }) => assert!(needed > budget && budget == 6144),
        other => panic!("{other:?}"),
    }
}

#[test]
fn times_are_enforced_from_the_sealed_payload() {
    let ring = ring(Algorithm::default(), 1);
    let codec = codec();
    let state = state_with(&[("user", b"a".to_vec())]);
    let p = pairs(
        &codec
            .seal(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    assert!(open_pairs(&codec, &ring, &p, NOW + 59).is_ok());
    assert_eq!(
        open_pairs(&codec, &ring, &p, NOW + 3600).err(),
        Some(DecodeError::Expired)
    );
    let idle = Codec::new(
        SessionConfig::new()
            .idle_timeout(Some(Duration::from_secs(600)))
            .renew_interval(Duration::from_secs(60))
            .total_budget(16384),
    )
    .unwrap();
    assert_eq!(
        open_pairs(&idle, &ring, &p, NOW + 600).err(),
        Some(DecodeError::IdleExpired)
    );
    assert!(open_pairs(&idle, &ring, &p, NOW + 599).is_ok());
    assert_eq!(
        open_pairs(&codec, &ring, &p, NOW - 61).err(),
        Some(DecodeError::FutureDated)
    );
    assert!(open_pairs(&codec, &ring, &p, NOW - 60).is_ok());
}

#[test]
fn i11_the_cutoff_refuses_earlier_sessions_memo_hits_included() {
    let plain = Arc::new(ring(Algorithm::default(), 1));
    let codec = codec();
    let state = state_with(&[("user", b"a".to_vec())]);
    let p = pairs(
        &codec
            .seal(&plain, &state, at(NOW), &mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    let open_memo = |ring: &Keyring, memo_ring: &Arc<Keyring>, memo: &mut cache::OpenCache| {
        let pairs = p.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes()));
        codec.open_memo(
            ring,
            Some((memo_ring, memo)),
            pairs,
            at(NOW + 10),
            &mut ChunkSet::default(),
        )
    };
    // Issued at NOW: a cutoff at NOW keeps it (strictly earlier is revoked), NOW + 1 does not.
    let same_second = (*plain).clone().with_not_before(Some(at(NOW)));
    assert!(open_pairs(&codec, &same_second, &p, NOW + 10).is_ok());
    let cut = Arc::new((*plain).clone().with_not_before(Some(at(NOW + 1))));
    assert_eq!(
        open_pairs(&codec, &cut, &p, NOW + 10).err(),
        Some(DecodeError::Revoked)
    );
    // Through the memo: refused on the miss and again on the next request.
    let mut memo = cache::OpenCache::new(16, 1 << 20);
    for _ in 0..2 {
        assert_eq!(
            open_memo(&cut, &cut, &mut memo).err(),
            Some(DecodeError::Revoked)
        );
    }
    // A hit remembered under another keyring is still checked against the one in force.
    assert!(open_memo(&plain, &plain, &mut memo).unwrap().is_some());
    assert_eq!(
        open_memo(&cut, &plain, &mut memo).err(),
        Some(DecodeError::Revoked)
    );
    // A renewed session (issued after the cutoff) opens.
    let mut renewed = state.clone();
    renewed.renew(at(NOW + 5), Duration::from_secs(3600));
    let q = pairs(
        &codec
            .seal(&cut, &renewed, at(NOW + 5), &mut StdRng::seed_from_u64(3))
            .unwrap(),
    );
    assert!(open_pairs(&codec, &cut, &q, NOW + 10).unwrap().is_some());
}

#[test]
fn key_labels_are_checked_before_decryption() {
    let codec = codec();
    let a = ring(Algorithm::Xaes256Gcm, 1);
    let state = state_with(&[("user", b"a".to_vec())]);
    let p = pairs(
        &codec
            .seal(&a, &state, at(NOW), &mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    assert_eq!(
        open_pairs(&codec, &ring(Algorithm::Xaes256Gcm, 2), &p, NOW).err(),
        Some(DecodeError::UnknownKey)
    );
    // Same id, other algorithm: the key decides, the input does not.
    assert_eq!(
        open_pairs(&codec, &ring(Algorithm::Aes256Gcm, 1), &p, NOW).err(),
        Some(DecodeError::AlgorithmMismatch)
    );
    // Same id and algorithm, other secret: a foreign deployment.
    let foreign = Keyring::new(
        vec![Key::new(
            KeyId([1; 4]),
            Algorithm::Xaes256Gcm,
            Secret::new([9; 32]),
            at(0),
            at(0),
        )],
        at(NOW),
    )
    .unwrap();
    assert_eq!(
        open_pairs(&codec, &foreign, &p, NOW).err(),
        Some(DecodeError::Tag)
    );
    // Retired.
    let newer = Key::new(
        KeyId([2; 4]),
        Algorithm::Xaes256Gcm,
        Secret::new([2; 32]),
        at(10),
        at(10),
    );
    let rotated = a.with_key(newer, at(NOW)).unwrap();
    let opened = open_pairs(&codec, &rotated, &p, NOW).unwrap().unwrap();
    assert!(opened.needs_reseal);
    let retired = rotated
        .with_retired(at(NOW), |k| k.id() == KeyId([1; 4]))
        .unwrap();
    assert_eq!(
        open_pairs(&codec, &retired, &p, NOW).err(),
        Some(DecodeError::RetiredKey)
    );
}

#[test]
fn renamed_reordered_truncated_and_spliced_chunks_fail() {
    let ring = ring(Algorithm::default(), 1);
    let codec = codec();
    let s1 = state_with(&[("blob", random_text(5000, 1))]);
    let s2 = state_with(&[("blob", random_text(5000, 2))]);
    let p1 = pairs(
        &codec
            .seal(&ring, &s1, at(NOW), &mut StdRng::seed_from_u64(1))
            .unwrap(),
    );
    let p2 = pairs(
        &codec
            .seal(&ring, &s2, at(NOW), &mut StdRng::seed_from_u64(2))
            .unwrap(),
    );
    assert_eq!(p1.len(), 2);
    // Swap chunk values.
    let swapped = vec![
        (p1[0].0.clone(), p1[0].1.clone()),
        (p1[1].0.clone(), p1[0].1[2..].to_owned()),
    ];
    assert!(open_pairs(&codec, &ring, &swapped, NOW).is_err());
    // Splice chunk 1 from another session.
    let spliced = vec![p1[0].clone(), p2[1].clone()];
    assert_eq!(
        open_pairs(&codec, &ring, &spliced, NOW).err(),
        Some(DecodeError::Tag)
    );
    // Drop the last chunk.
    assert_eq!(
        open_pairs(&codec, &ring, &p1[..1], NOW).err(),
        Some(DecodeError::Chunk(ChunkError::Missing))
    );
    // Rename: the value moved to another cookie name.
    let other = Codec::new(
        SessionConfig::new()
            .cookie_name("__Host-other")
            .total_budget(16384),
    )
    .unwrap();
    let renamed: Vec<_> = p1
        .iter()
        .map(|(n, v)| (n.replace("__Host-session", "__Host-other"), v.clone()))
        .collect();
    assert_eq!(
        open_pairs(&other, &ring, &renamed, NOW).err(),
        Some(DecodeError::Tag)
    );
    // Re-labelled count.
    let mut relabelled = p1.clone();
    relabelled[0].1.replace_range(0..1, "3");
    relabelled.push(("__Host-session.2".into(), "AAAA".into()));
    assert!(open_pairs(&codec, &ring, &relabelled, NOW).is_err());
    // Both sessions at once: ambiguous.
    let both: Vec<_> = p1.iter().chain(&p2).cloned().collect();
    assert_eq!(
        open_pairs(&codec, &ring, &both, NOW).err(),
        Some(DecodeError::Ambiguous)
    );
    // The same session twice (host-only and domain copies) is fine.
    let twice: Vec<_> = p1.iter().chain(&p1).cloned().collect();
    assert!(open_pairs(&codec, &ring, &twice, NOW).unwrap().is_some());
}

#[test]
fn removal_cookies_match_the_set_attributes() {
    let codec = Codec::new(
        SessionConfig::new()
            .cookie_name("__Secure-s")
            .cookie_domain(Some("example.com".into())),
    )
    .unwrap();
    let present = codec.present_chunks([
        (&b"__Secure-s"[..], &b""[..]),
        (b"__Secure-s.2", b""),
        (b"x", b""),
    ]);
    let removals = codec.removal_cookies(present, 1);
    assert_eq!(removals.len(), 1);
    let line = removals[0].to_string();
    for attr in [
        "__Secure-s.2=",
        "Domain=example.com",
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Max-Age=0",
    ] {
        assert!(line.contains(attr), "{line}");
    }
}

#[test]
fn persistent_cookies_stay_within_the_line_budget() {
    let ring = ring(Algorithm::default(), 1);
    let codec = Codec::new(
        SessionConfig::new()
            .persistent(Duration::from_secs(400 * 86_400))
            .lifetime(Duration::from_secs(400 * 86_400))
            .total_budget(16384),
    )
    .unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for n in (3_000..12_000).step_by(997) {
        let mut state =
            SessionState::new_with_rng(at(NOW), codec.config().session_lifetime(), &mut rng);
        state.insert_raw("blob".into(), random_text(n, n as u64));
        for c in codec.seal(&ring, &state, at(NOW), &mut rng).unwrap() {
            let line = c.to_string();
            assert!(line.contains("Max-Age=3456000"), "{line}");
            assert!(line.len() <= 4050, "{}", line.len());
        }
    }
}

#[test]
fn no_cookie_is_not_an_error() {
    let codec = codec();
    assert!(
        open_pairs(
            &codec,
            &ring(Algorithm::default(), 1),
            &[("a".into(), "b".into())],
            NOW
        )
        .unwrap()
        .is_none()
    );
    let _ = BTreeMap::<String, Vec<u8>>::new();
}

/// The pieces the memo stores for lines just sealed are those a request carrying the lines
/// back presents (one chunk or several, persistent cookie or not, with a Domain).
#[test]
fn sealed_pieces_are_what_a_request_carries_back() {
    let persistent = SessionConfig::new().total_budget(16 * 1024);
    let browser = SessionConfig::new()
        .cookie_name("__Secure-s")
        .cookie_domain(Some("example.com".to_owned()))
        .total_budget(16 * 1024)
        .browser_session();
    for config in [persistent, browser] {
        let codec = Codec::new(config).unwrap();
        let ring = ring(Algorithm::default(), 1);
        for bytes in [10, 3000, 9000] {
            let state = state_with(&[("blob", random_text(bytes, 3))]);
            let lines = codec
                .seal_with(&ring, &state, at(NOW), &mut StdRng::seed_from_u64(1))
                .unwrap();
            let (count, pieces) = codec.sealed_pieces(&lines).expect("our own lines");
            let header = lines
                .iter()
                .map(|l| l.split(';').next().unwrap())
                .collect::<Vec<_>>()
                .join("; ");
            let gathered = chunk::gather(&codec.names, cookie_pairs([header.as_bytes()]))
                .unwrap()
                .unwrap();
            let candidates = gathered.candidates(MAX_ATTEMPTS, 16 * 1024).unwrap();
            let [single] = candidates.as_slice() else {
                panic!("one candidate")
            };
            assert_eq!(
                (count, &pieces[..]),
                (single.count, &single.pieces[..]),
                "{bytes}"
            );
            assert_eq!(usize::from(count), lines.len());
        }
        // Anything else is refused.
        assert!(
            codec
                .sealed_pieces(&["other=1.abc; Path=/".to_owned()])
                .is_none()
        );
    }
}
