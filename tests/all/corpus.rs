//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the same entry points
//! the cargo-fuzz targets call, so every `cargo test` on stable re-checks the seeds and any
//! minimised crash inputs added there.

use std::path::{Path, PathBuf};

use sealed_session::fuzzing;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fuzz/corpus");

fn files(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(CORPUS).join(target);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn replay(target: &str, entry: fn(&[u8])) -> usize {
    let files = files(target);
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| entry(&data));
        assert!(result.is_ok(), "{target}: {} panicked", path.display());
    }
    files.len()
}

#[test]
fn every_target_has_a_corpus_and_no_unknown_target_does() {
    let mut dirs: Vec<String> = std::fs::read_dir(CORPUS)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs,
        [
            "armor",
            "envelope",
            "inspect",
            "keyring_json",
            "open_header",
            "payload",
            "roundtrip",
            "service"
        ]
    );
}

#[test]
fn open_header_corpus() {
    replay("open_header", fuzzing::open_header);
    // The valid seeds really open: the fuzzer starts from authentic sessions.
    let valid: Vec<PathBuf> = files("open_header")
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("valid-")
        })
        .collect();
    assert!(valid.len() >= 6);
    for path in valid {
        let data = std::fs::read(&path).unwrap();
        assert_eq!(fuzzing::header_opens(&data), Ok(true), "{}", path.display());
    }
}

/// One test per target, replaying its corpus through `fuzzing::<target>`.
macro_rules! corpus_tests {
    ($($test:ident: $target:ident,)*) => {
        $(
            #[test]
            fn $test() {
                replay(stringify!($target), fuzzing::$target);
            }
        )*
    };
}

corpus_tests! {
    armor_corpus: armor,
    envelope_corpus: envelope,
    payload_corpus: payload,
    keyring_json_corpus: keyring_json,
    roundtrip_corpus: roundtrip,
    inspect_corpus: inspect,
}

#[test]
fn service_corpus() {
    use std::sync::atomic::Ordering;
    let before = fuzzing::SERVICE_JAR_CHECKS.load(Ordering::Relaxed);
    let seeds = replay("service", fuzzing::service) as u64;
    // The seeds reach the deep end: sessions written, kept in the jar and read back.
    let checks = fuzzing::SERVICE_JAR_CHECKS.load(Ordering::Relaxed) - before;
    assert!(checks >= seeds, "{checks} jar checks for {seeds} seeds");
}

/// A few structured inputs beyond the corpus, so an empty or garbage input is covered even
/// if the corpus is pruned.
#[test]
fn entry_points_take_garbage() {
    let inputs: [&[u8]; 6] = [
        b"",
        b"\0",
        b"\xff\xfe\xfd",
        b"__Host-session=1.",
        b"__Host-session=99.AAAA; __Host-session.1=",
        &[1u8; 300],
    ];
    for data in inputs {
        fuzzing::open_header(data);
        fuzzing::envelope(data);
        fuzzing::payload(data);
        fuzzing::keyring_json(data);
        fuzzing::roundtrip(data);
        fuzzing::service(data);
        fuzzing::inspect(data);
    }
}
