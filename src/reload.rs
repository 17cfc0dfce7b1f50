//! Hot reload of a keyring file shared by a fleet: a background thread re-reads the file
//! every interval and swaps in a new keyring only when the file parses into one that can seal.
//! A missing, half-written or invalid file never replaces a good keyring; each bad version is
//! logged once.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::engine::{Clock, SharedKeyring};
use crate::keyring::Keyring;

/// Watches one keyring file.
pub(crate) struct KeyringWatcher {
    current: SharedKeyring,
}

impl KeyringWatcher {
    /// Starts watching `path`, beginning with `initial`, parsed from the bytes `parsed` (so a
    /// file replaced since it was read is picked up by the first poll). The thread stops when
    /// the watcher is dropped. It logs to the `tracing` subscriber in force where it is spawned
    /// (a scoped one included), or to the global one.
    pub(crate) fn spawn(
        path: PathBuf,
        initial: Keyring,
        parsed: Zeroizing<Vec<u8>>,
        interval: Duration,
        clock: Clock,
    ) -> Arc<Self> {
        let watcher = Arc::new(KeyringWatcher {
            current: RwLock::new(Arc::new(initial)),
        });
        let weak = Arc::downgrade(&watcher);
        let scoped = tracing::dispatcher::get_default(|d| {
            (!d.is::<tracing::subscriber::NoSubscriber>()).then(|| d.clone())
        });
        let spawned = std::thread::Builder::new()
            .name("sealed-session-keyring".into())
            .spawn(move || {
                let run = || poll(&weak, &path, interval, &clock, Some(parsed));
                match scoped {
                    Some(dispatch) => tracing::dispatcher::with_default(&dispatch, run),
                    None => run(),
                }
            });
        if let Err(err) = spawned {
            tracing::error!(error = %err, "could not start the keyring reload thread; keys stay as loaded");
        }
        watcher
    }

    /// The keyring in force.
    pub(crate) fn current(&self) -> Arc<Keyring> {
        match self.current.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn replace(&self, ring: Keyring) {
        let ring = Arc::new(ring);
        match self.current.write() {
            Ok(mut guard) => *guard = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
    }
}

fn poll(
    weak: &Weak<KeyringWatcher>,
    path: &PathBuf,
    interval: Duration,
    clock: &Clock,
    mut last_good: Option<Zeroizing<Vec<u8>>>,
) {
    let mut last_bad: Option<Zeroizing<Vec<u8>>> = None;
    let mut last_io_error: Option<std::io::ErrorKind> = None;
    loop {
        std::thread::sleep(interval);
        let Some(watcher) = weak.upgrade() else {
            return;
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => {
                last_io_error = None;
                Zeroizing::new(bytes)
            }
            Err(err) => {
                if last_io_error != Some(err.kind()) {
                    tracing::error!(path = %path.display(), error = %err, "cannot read the keyring file; keeping the keys in force");
                    last_io_error = Some(err.kind());
                }
                continue;
            }
        };
        if last_good.as_deref() == Some(&*bytes) || last_bad.as_deref() == Some(&*bytes) {
            continue;
        }
        match Keyring::from_json(&bytes, clock()) {
            Ok(ring) => {
                // The cutoff (Unix seconds, 0 for none) shows when a revocation took effect here.
                let not_before = ring.not_before().map_or(0, crate::keyring::unix_seconds);
                tracing::info!(path = %path.display(), keys = ring.keys().len(), not_before, "keyring reloaded");
                watcher.replace(ring);
                last_good = Some(bytes);
                last_bad = None;
            }
            Err(err) => {
                tracing::error!(path = %path.display(), error = %err, "ignoring an invalid keyring file; keeping the keys in force");
                last_bad = Some(bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;
    use std::path::Path;
    use std::sync::Mutex;
    use std::time::{Instant, SystemTime};

    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use crate::keyring::{Algorithm, Key, KeyId, Keyring, Secret, from_unix_seconds};
    use crate::middleware::SessionMiddleware;

    fn ring(ids: &[u8]) -> Keyring {
        let now = crate::keyring::unix_seconds(SystemTime::now());
        let keys = ids
            .iter()
            .map(|&n| {
                Key::new(
                    KeyId([n; 4]),
                    Algorithm::XChaCha20Poly1305,
                    Secret::new([n; 32]),
                    from_unix_seconds(now - 2000 - u64::from(n)),
                    from_unix_seconds(now - 1000 - u64::from(n)),
                )
            })
            .collect();
        Keyring::new(keys, SystemTime::now()).unwrap()
    }

    fn dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sealed-session-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Replaces `path` atomically, as `sealed-session keys` does.
    fn replace(path: &Path, bytes: &[u8]) {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed().as_secs() < 10,
                "timed out waiting for {what}"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn ids(mw: &SessionMiddleware) -> Vec<KeyId> {
        mw.keyring().keys().iter().map(Key::id).collect()
    }

    /// A6: a keyring file replaced between `builder_from_file` and `build()` is picked up:
    /// the watcher starts from the bytes that were parsed, not from a second read.
    #[test]
    fn a6_a_change_between_load_and_build_is_picked_up() {
        let dir = dir("a6");
        let path = dir.join("keyring.json");
        replace(&path, ring(&[1]).to_json().as_bytes());
        let builder = SessionMiddleware::builder_from_file(&path).unwrap();
        replace(&path, ring(&[1, 2]).to_json().as_bytes());
        let mw = builder
            .reload_interval(std::time::Duration::from_millis(5))
            .build()
            .unwrap();
        // (No assertion on the keys right after build: with a 5 ms interval the watcher may
        // already have reloaded, which made this test flaky under load.)
        wait_for("the reload", || ids(&mw).len() == 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// A5: a reloaded keyring with any two fields of a key swapped is refused, and the ERROR
    /// line names the key's position and the field, never a value from the file.
    #[test]
    fn a5_swapped_fields_never_reach_the_reload_log() {
        const FIELDS: [&str; 6] = [
            "id",
            "algorithm",
            "secret",
            "created_at",
            "activates_at",
            "retired_at",
        ];
        let dir = dir("a5");
        let path = dir.join("keyring.json");
        let now = SystemTime::now();
        let good = Keyring::new(
            vec![
                ring(&[1]).keys()[0].clone(),
                ring(&[2]).keys()[0].clone().retired(now),
            ],
            now,
        )
        .unwrap();
        let good_json = good.to_json();
        replace(&path, good_json.as_bytes());
        let base: serde_json::Value = serde_json::from_str(&good_json).unwrap();

        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let mw = tracing::subscriber::with_default(subscriber, || {
            SessionMiddleware::builder_from_file(&path)
                .unwrap()
                .reload_interval(std::time::Duration::from_millis(2))
                .build()
                .unwrap()
        });
        let mut refused = 0;
        for index in 0..2 {
            let entry = &base["keys"][index];
            let present: Vec<&str> = FIELDS
                .into_iter()
                .filter(|f| entry.get(*f).is_some())
                .collect();
            let secret = entry["secret"].as_str().unwrap();
            let mut values: Vec<String> = present
                .iter()
                .filter(|f| **f != "algorithm")
                .map(|f| entry[*f].as_str().unwrap().to_owned())
                .collect();
            let raw = URL_SAFE_NO_PAD.decode(secret).unwrap();
            values.push(raw.iter().map(|b| format!("{b:02x}")).collect());
            values.push(format!("{raw:?}"));
            for (i, a) in present.iter().enumerate() {
                for b in &present[i + 1..] {
                    let mut value = base.clone();
                    let key = &mut value["keys"][index];
                    let (va, vb) = (key[*a].clone(), key[*b].clone());
                    key[*a] = vb;
                    key[*b] = va;
                    let text = serde_json::to_string_pretty(&value).unwrap();
                    if Keyring::from_json(text.as_bytes(), now).is_ok() {
                        continue;
                    }
                    refused += 1;
                    let lines = captured.text().lines().count();
                    replace(&path, text.as_bytes());
                    wait_for("the ERROR line", || captured.text().lines().count() > lines);
                    let log = captured.text();
                    let line = log.lines().last().unwrap();
                    assert!(
                        line.contains("ERROR") && line.contains(&format!("keys[{index}].")),
                        "{line}"
                    );
                    for v in &values {
                        assert!(!log.contains(v.as_str()), "{a} <-> {b}: {v} in {line}");
                    }
                }
            }
        }
        assert!(refused >= 20, "{refused}");
        assert_eq!(
            mw.keyring().keys().len(),
            2,
            "the good keyring stays in force"
        );
        let mut f = std::fs::File::create(dir.join("done")).unwrap();
        f.write_all(b"").unwrap();
        drop(mw);
        let _ = std::fs::remove_dir_all(dir);
    }
}
