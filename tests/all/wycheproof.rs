//! Project Wycheproof AEAD vectors (vendored in `tests/data/wycheproof/`, see its README)
//! through the crate's own cipher wrapper, `aead::Cipher`, reached by the doc-hidden hook
//! `codec::floor::RawAead::{seal_raw, open_raw}`: the wrapper must pass the nonce, the
//! associated data and the tag exactly as the primitives expect.
//!
//! Every "valid" test: `seal(key, iv, aad, msg) == ct ‖ tag` and `open` gives `msg` back.
//! Every "invalid" test: `open` fails. AES-GCM tests whose IV is not 96 bits are skipped (the
//! wrapper only takes 12-byte AES-GCM nonces), counted, and the wrapper must refuse them.

use std::path::PathBuf;

use sealed_session::Algorithm;
use sealed_session::codec::floor::RawAead;
use serde::Deserialize;

use crate::support::unhex;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    algorithm: String,
    number_of_tests: usize,
    test_groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    iv_size: usize,
    key_size: usize,
    tag_size: usize,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    tc_id: u32,
    key: String,
    iv: String,
    aad: String,
    msg: String,
    ct: String,
    tag: String,
    result: String,
}

fn load(name: &str) -> File {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "data",
        "wycheproof",
        name,
    ]
    .iter()
    .collect();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    valid: usize,
    invalid: usize,
    skipped: usize,
}

impl Counts {
    fn of(valid: usize, invalid: usize, skipped: usize) -> Counts {
        Counts {
            valid,
            invalid,
            skipped,
        }
    }
}

/// Runs one file; `supported_iv` is the only IV length (bytes) the wrapper takes for this
/// algorithm. Invalid tests with another IV length are still run: the wrapper must refuse
/// them like any other invalid input.
fn run(file: &File, algorithm: Algorithm, supported_iv: usize) -> Counts {
    let mut counts = Counts::default();
    let mut seen = 0;
    for group in &file.test_groups {
        assert_eq!(group.key_size, 256, "{}: only 256-bit keys", file.algorithm);
        assert_eq!(group.tag_size, 128, "{}: 16-byte tags only", file.algorithm);
        for case in &group.tests {
            seen += 1;
            let ctx = format!("{} tcId {}", file.algorithm, case.tc_id);
            let key: [u8; 32] = unhex(&case.key).try_into().unwrap();
            let (iv, aad, msg) = (unhex(&case.iv), unhex(&case.aad), unhex(&case.msg));
            assert_eq!(iv.len() * 8, group.iv_size, "{ctx}");
            let mut sealed = unhex(&case.ct);
            sealed.extend(unhex(&case.tag));
            let cipher = RawAead::new(algorithm, &key);
            if iv.len() != supported_iv && case.result == "valid" {
                // A valid GCM input the wrapper deliberately does not support: it must refuse
                // both directions rather than silently use another nonce.
                let mut buf = msg.clone();
                assert!(!cipher.seal_raw(&iv, &aad, &mut buf), "{ctx}: sealed");
                let mut buf = sealed.clone();
                assert!(!cipher.open_raw(&iv, &aad, &mut buf), "{ctx}: opened");
                counts.skipped += 1;
                continue;
            }
            match case.result.as_str() {
                "valid" => {
                    let mut buf = msg.clone();
                    assert!(cipher.seal_raw(&iv, &aad, &mut buf), "{ctx}: seal refused");
                    assert_eq!(buf, sealed, "{ctx}: seal != ct ‖ tag");
                    assert!(cipher.open_raw(&iv, &aad, &mut buf), "{ctx}: open refused");
                    assert_eq!(buf, msg, "{ctx}: open != msg");
                    counts.valid += 1;
                }
                "invalid" => {
                    let mut buf = sealed.clone();
                    assert!(
                        !cipher.open_raw(&iv, &aad, &mut buf),
                        "{ctx}: invalid opened"
                    );
                    counts.invalid += 1;
                }
                other => panic!("{ctx}: unexpected result {other:?}"),
            }
        }
    }
    assert_eq!(seen, file.number_of_tests, "{}", file.algorithm);
    eprintln!(
        "wycheproof {}: {} valid, {} invalid, {} skipped (unsupported IV size)",
        file.algorithm, counts.valid, counts.invalid, counts.skipped
    );
    counts
}

/// [`run`] on the file `name`, whose header must name `label`.
fn run_file(name: &str, label: &str, algorithm: Algorithm, supported_iv: usize) -> Counts {
    let file = load(name);
    assert_eq!(file.algorithm, label);
    run(&file, algorithm, supported_iv)
}

#[test]
fn wycheproof_aes_256_gcm_through_the_cipher_wrapper() {
    let counts = run_file("aes_gcm_test.json", "AES-GCM", Algorithm::Aes256Gcm, 12);
    // 105 tests in the 256-bit groups: 39 valid and 27 invalid with 96-bit IVs, 2 invalid
    // with an empty IV (refused), 37 valid with other IV sizes (skipped).
    assert_eq!(counts, Counts::of(39, 29, 37));
}

#[test]
fn wycheproof_xchacha20_poly1305_through_the_cipher_wrapper() {
    let name = "xchacha20_poly1305_test.json";
    let counts = run_file(name, "XCHACHA20-POLY1305", Algorithm::XChaCha20Poly1305, 24);
    // 246 valid, 60 invalid with 192-bit nonces, 9 invalid nonce sizes (refused).
    assert_eq!(counts, Counts::of(246, 69, 0));
}

/// The wrapper really passes the associated data: every valid vector with non-empty AAD
/// fails to open once one AAD bit flips, and one with empty AAD fails with an extra byte.
#[test]
fn wycheproof_vectors_fail_with_altered_associated_data() {
    for (name, algorithm, iv_len) in [
        ("aes_gcm_test.json", Algorithm::Aes256Gcm, 12),
        (
            "xchacha20_poly1305_test.json",
            Algorithm::XChaCha20Poly1305,
            24,
        ),
    ] {
        let file = load(name);
        let mut checked = 0;
        for case in file.test_groups.iter().flat_map(|g| &g.tests) {
            let iv = unhex(&case.iv);
            if case.result != "valid" || iv.len() != iv_len {
                continue;
            }
            let key: [u8; 32] = unhex(&case.key).try_into().unwrap();
            let cipher = RawAead::new(algorithm, &key);
            let mut aad = unhex(&case.aad);
            match aad.first_mut() {
                Some(b) => *b ^= 1,
                None => aad.push(0),
            }
            let mut buf = unhex(&case.ct);
            buf.extend(unhex(&case.tag));
            assert!(
                !cipher.open_raw(&iv, &aad, &mut buf),
                "{name} tcId {}",
                case.tc_id
            );
            checked += 1;
        }
        assert!(checked > 30, "{name}: {checked}");
    }
}
