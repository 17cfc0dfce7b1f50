//! Hot reload of a keyring file shared by a fleet: a background thread re-reads the file
//! every interval and swaps in a new keyring only when the file parses into one that can seal.
//! A missing, half-written or invalid file never replaces a good keyring; each bad version is
//! logged once.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::keyring::Keyring;
use crate::middleware::{Clock, SharedKeyring};

/// Watches one keyring file.
pub(crate) struct KeyringWatcher {
    current: SharedKeyring,
}

impl KeyringWatcher {
    /// Starts watching `path`, beginning with `initial` (already loaded from it). The thread
    /// stops when the watcher is dropped.
    pub(crate) fn spawn(
        path: PathBuf,
        initial: Keyring,
        interval: Duration,
        clock: Clock,
    ) -> Arc<Self> {
        let watcher = Arc::new(KeyringWatcher {
            current: RwLock::new(Arc::new(initial)),
        });
        let weak = Arc::downgrade(&watcher);
        let first = std::fs::read(&path).ok().map(Zeroizing::new);
        let spawned = std::thread::Builder::new()
            .name("sealed-session-keyring".into())
            .spawn(move || poll(&weak, &path, interval, &clock, first));
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
                tracing::info!(path = %path.display(), keys = ring.keys().len(), "keyring reloaded");
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
