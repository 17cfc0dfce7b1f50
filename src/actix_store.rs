//! [`SealedSessionStore`]: this crate's sealing as an actix-session
//! [`SessionStore`](actix_session::storage::SessionStore), for apps that keep
//! actix-session's middleware (and what is built on it, such as actix-identity) but want the
//! keyring rotation, compression and audited envelope of `docs/FORMAT.md`.
//!
//! The whole session travels in the session key, i.e. in actix-session's one cookie: it is
//! limited to one cookie (actix-session refuses keys over 4064 bytes), where
//! [`SessionMiddleware`](crate::SessionMiddleware) would chunk it. actix-session then signs or
//! encrypts that cookie once more with its own `Key`, as it does for its cookie store.
//!
//! ```
//! # use std::time::SystemTime;
//! use actix_session::SessionMiddleware;
//! use actix_web::{App, cookie::Key};
//! use sealed_session::{Algorithm, Keyring, SealedSessionStore};
//!
//! let keyring = Keyring::generate(Algorithm::Xaes256Gcm, SystemTime::now()).unwrap();
//! let store = SealedSessionStore::new(keyring);
//! let app = App::new().wrap(SessionMiddleware::new(store, Key::generate()));
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use actix_session::storage::{LoadError, SaveError, SessionKey, SessionStore, UpdateError};
use actix_web::cookie::time;

use crate::codec::{Codec, ForkSafeRng};
use crate::config::SessionConfig;
use crate::error::{ConfigError, EncodeError};
use crate::keyring::Keyring;
use crate::state::SessionState;

/// An actix-session store that seals the whole session into the session key (see the module
/// docs). Cheap to clone.
#[derive(Clone)]
pub struct SealedSessionStore {
    codec: Arc<Codec>,
    keyring: Arc<Keyring>,
}

impl SealedSessionStore {
    /// A store with the default configuration, except that there is no idle timeout:
    /// actix-session re-saves a session only when its state changes, so an idle clock sealed
    /// inside would expire sessions that are only read. The absolute lifetime (24 h) holds.
    pub fn new(keyring: Keyring) -> Self {
        let config = SessionConfig::default().idle_timeout(None);
        match Codec::new(config) {
            Ok(codec) => Self::from_parts(codec, keyring),
            // The defaults always validate (pinned by a unit test below).
            Err(_) => unreachable!("the default configuration is valid"),
        }
    }

    /// A store with this configuration. Only the lifetimes, budgets, compression and the
    /// cookie name (bound into the seal as associated data) matter here; actix-session's
    /// builder decides the cookie's attributes.
    ///
    /// # Errors
    /// Whatever [`SessionConfig::validate`] refuses.
    pub fn with_config(keyring: Keyring, config: SessionConfig) -> Result<Self, ConfigError> {
        Ok(Self::from_parts(Codec::new(config)?, keyring))
    }

    fn from_parts(codec: Codec, keyring: Keyring) -> Self {
        SealedSessionStore {
            codec: Arc::new(codec),
            keyring: Arc::new(keyring),
        }
    }

    /// Opens a session key; every failure is "no session", logged at debug by category.
    fn open(&self, key: &SessionKey, now: SystemTime) -> Option<SessionState> {
        let name = self.codec.config().name().as_bytes();
        let pairs = [(name, key.as_ref().as_bytes())];
        match self.codec.open(&self.keyring, pairs, now) {
            Ok(opened) => opened.map(|o| o.state),
            Err(err) => {
                tracing::debug!(
                    category = err.category(),
                    "sealed session key rejected; continuing without a session"
                );
                None
            }
        }
    }

    /// Seals `state` into one cookie value.
    fn seal(&self, state: &SessionState, now: SystemTime) -> Result<SessionKey, anyhow::Error> {
        let cookies = self
            .codec
            .seal(&self.keyring, state, now, &mut ForkSafeRng)
            .map_err(anyhow::Error::new)?;
        match cookies.as_slice() {
            [one] => SessionKey::try_from(one.value().to_owned()).map_err(anyhow::Error::new),
            more => Err(anyhow::Error::new(EncodeError::TooLarge {
                needed: more.iter().map(|c| c.value().len()).sum(),
                budget: self.codec.config().session_total_budget(),
            })
            .context("the session needs more than the one cookie actix-session provides")),
        }
    }
}

impl SessionStore for SealedSessionStore {
    async fn load(
        &self,
        session_key: &SessionKey,
    ) -> Result<Option<HashMap<String, String>>, LoadError> {
        let Some(state) = self.open(session_key, SystemTime::now()) else {
            return Ok(None);
        };
        let mut out = HashMap::with_capacity(state.entries().len());
        for key in state.entries().keys() {
            match state.get::<String>(key) {
                Ok(Some(value)) => {
                    out.insert(key.clone(), value);
                }
                Ok(None) => {}
                Err(_) => {
                    tracing::debug!("sealed session entry is not a string; no session");
                    return Ok(None);
                }
            }
        }
        Ok(Some(out))
    }

    async fn save(
        &self,
        session_state: HashMap<String, String>,
        _ttl: &time::Duration,
    ) -> Result<SessionKey, SaveError> {
        let now = SystemTime::now();
        let mut state = self.codec.new_state(now);
        fill(&mut state, session_state).map_err(SaveError::Serialization)?;
        self.seal(&state, now).map_err(SaveError::Other)
    }

    /// Keeps the identity and the absolute expiry of the session the old key carried (a new
    /// one if it no longer opens), with the new entries.
    async fn update(
        &self,
        session_key: SessionKey,
        session_state: HashMap<String, String>,
        _ttl: &time::Duration,
    ) -> Result<SessionKey, UpdateError> {
        let now = SystemTime::now();
        let mut state = match self.open(&session_key, now) {
            Some(mut old) => {
                old.clear();
                old.touch(now);
                old
            }
            None => self.codec.new_state(now),
        };
        fill(&mut state, session_state).map_err(UpdateError::Serialization)?;
        self.seal(&state, now).map_err(UpdateError::Other)
    }

    /// Nothing to do: the key cannot change here, and the absolute expiry sealed in it is
    /// not extended (the cookie's `Max-Age` is actix-session's).
    async fn update_ttl(
        &self,
        _session_key: &SessionKey,
        _ttl: &time::Duration,
    ) -> Result<(), anyhow::Error> {
        Ok(())
    }

    /// Nothing to do: a stateless session cannot be revoked; actix-session expires the cookie.
    async fn delete(&self, _session_key: &SessionKey) -> Result<(), anyhow::Error> {
        Ok(())
    }
}

fn fill(state: &mut SessionState, entries: HashMap<String, String>) -> anyhow::Result<()> {
    for (key, value) in entries {
        state.insert(&key, &value).map_err(anyhow::Error::new)?;
    }
    Ok(())
}

impl std::fmt::Debug for SealedSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSessionStore")
            .field("config", self.codec.config())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Algorithm;

    fn store() -> SealedSessionStore {
        let ring = Keyring::generate(Algorithm::Xaes256Gcm, SystemTime::now()).unwrap();
        SealedSessionStore::new(ring)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        actix_web::rt::System::new().block_on(f)
    }

    #[test]
    fn saved_state_loads_back_and_updates_keep_the_identity() {
        let store = store();
        let ttl = time::Duration::days(1);
        let state = HashMap::from([("user_id".to_owned(), "\"ferris\"".to_owned())]);
        let key = block_on(store.save(state.clone(), &ttl)).unwrap();
        assert!(!key.as_ref().contains("ferris"), "the value is sealed");
        assert_eq!(block_on(store.load(&key)).unwrap(), Some(state));

        let before = store.open(&key, SystemTime::now()).unwrap();
        let next = HashMap::from([("n".to_owned(), "1".to_owned())]);
        let key2 = block_on(store.update(key, next.clone(), &ttl)).unwrap();
        let after = store.open(&key2, SystemTime::now()).unwrap();
        assert_eq!(block_on(store.load(&key2)).unwrap(), Some(next));
        assert_eq!(
            (before.id(), before.expires_at()),
            (after.id(), after.expires_at())
        );
    }

    #[test]
    fn foreign_or_tampered_keys_are_no_session_and_big_sessions_are_refused() {
        let store = store();
        let ttl = time::Duration::days(1);
        let key = block_on(store.save(HashMap::new(), &ttl)).unwrap();
        let other = block_on(self::store().save(HashMap::new(), &ttl)).unwrap();
        assert!(block_on(store.load(&other)).unwrap().is_none());
        let mut tampered = key.as_ref().to_owned();
        tampered.push('A');
        let tampered = SessionKey::try_from(tampered).unwrap();
        assert!(block_on(store.load(&tampered)).unwrap().is_none());

        // Random text does not compress: 6 KB cannot fit one cookie.
        use rand::RngExt;
        let big: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(6000)
            .map(char::from)
            .collect();
        let state = HashMap::from([("big".to_owned(), big)]);
        assert!(block_on(store.save(state, &ttl)).is_err());
    }
}
