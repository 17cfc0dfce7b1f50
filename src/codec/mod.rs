//! The sealed cookie codec, independent of any web framework.
//!
//! ```text
//! open:  cookie pairs ─► chunk::gather ─► armor::decode ─► envelope::parse ─► aead::open
//!                      ─► payload::decode ─► compress::inflate ─► SessionState
//! seal:  SessionState ─► compress::deflate ─► payload::encode ─► aead::seal
//!                      ─► envelope header ─► armor::encode ─► chunk::split ─► Set-Cookie
//! ```

// Untrusted bytes flow through every file below: no panicking shortcuts outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::cast_possible_truncation,
        clippy::arithmetic_side_effects
    )
)]

pub(crate) mod aead;
pub(crate) mod armor;
pub(crate) mod cache;
pub(crate) mod chunk;
pub(crate) mod compress;
pub(crate) mod envelope;
pub(crate) mod payload;

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cookie::Cookie;
use rand_core::CryptoRng;

use crate::config::{SameSite, SessionConfig};
use crate::error::{ChunkError, ConfigError, DecodeError, EncodeError, EnvelopeError};
use crate::keyring::{Algorithm, KeyId, Keyring, unix_seconds};
use crate::state::SessionState;
pub use aead::ForkSafeRng;
pub use chunk::{ChunkSet, cookie_pairs};

/// A session opened from a request's cookies.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The session.
    pub state: SessionState,
    /// The key that opened it.
    pub key_id: KeyId,
    /// That key's algorithm.
    pub algorithm: Algorithm,
    /// The opening key is not the sealing key: re-seal on this response so the client
    /// migrates to the current key.
    pub needs_reseal: bool,
    /// Length of each chunk cookie's value, in order (diagnostics for `inspect`; empty when
    /// the middleware's memo answered).
    pub chunk_lengths: Vec<usize>,
    /// Keys whose values travelled compressed (diagnostics, like `chunk_lengths`).
    pub compressed: Vec<String>,
}

/// Turns sessions into `Set-Cookie` values and request cookies back into sessions.
///
/// The framework-free core (it builds without the `actix` feature): a server written for
/// another framework seals the state into `Set-Cookie` lines and opens the `Cookie` header.
///
/// # Examples
/// ```
/// use std::time::SystemTime;
///
/// use sealed_session::codec::cookie_pairs;
/// use sealed_session::{Algorithm, Codec, Keyring, SessionConfig};
///
/// let now = SystemTime::now();
/// let keyring = Keyring::generate(Algorithm::default(), now).unwrap();
/// let codec = Codec::new(SessionConfig::new().cookie_name("__Host-app")).unwrap();
///
/// let mut state = codec.new_state(now);
/// state.insert("user", "alice").unwrap();
/// let lines = codec.seal_lines(&keyring, &state, now).unwrap();
/// assert!(lines[0].starts_with("__Host-app=1."));
///
/// // The browser sends back `name=value` pairs in one `Cookie` header.
/// let header = lines
///     .iter()
///     .map(|line| line.split(';').next().unwrap())
///     .collect::<Vec<_>>()
///     .join("; ");
/// let opened = codec
///     .open(&keyring, cookie_pairs([header.as_bytes()]), now)
///     .unwrap()
///     .expect("our cookie is there");
/// assert_eq!(opened.state.get::<String>("user").unwrap().as_deref(), Some("alice"));
/// // Another type than the one written is an error, never a wrong value.
/// assert!(opened.state.get::<Vec<u8>>("user").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Codec {
    config: SessionConfig,
    names: chunk::Names,
    /// The rendered attributes (without Max-Age) that follow `name=value` in every line.
    attrs: String,
}

impl Codec {
    /// A codec for a validated configuration.
    ///
    /// # Errors
    /// Whatever [`SessionConfig::validate`] refuses.
    pub fn new(config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let names = chunk::Names::new(&config.cookie_name);
        let attrs = render_attributes(&config);
        Ok(Codec {
            config,
            names,
            attrs,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The purpose label bound in the associated data, if any (FORMAT.md §4.1).
    fn purpose(&self) -> Option<&str> {
        self.config.purpose.as_deref()
    }

    /// A fresh, empty session issued at `now` with the configured lifetime and a random id
    /// (drawn from a per-thread CSPRNG that reseeds after `fork()`).
    pub fn new_state(&self, now: SystemTime) -> SessionState {
        SessionState::new(now, self.config.lifetime)
    }

    /// Opens the session carried by a request's cookie pairs (see [`cookie_pairs`]).
    /// `Ok(None)` when the request carries no cookie of ours.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the stage that failed; the caller treats it as "no session".
    pub fn open<'a>(
        &self,
        keyring: &Keyring,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        now: SystemTime,
    ) -> Result<Option<Opened>, DecodeError> {
        self.open_memo(keyring, None, pairs, now, &mut ChunkSet::default())
    }

    /// [`Codec::open`] through a per-worker memo of sessions already opened (see
    /// [`cache`]). Only an unambiguous single set of chunks is memoized. `present` is set to
    /// the chunks the request carried (for the removals on the way out), whatever the result.
    pub(crate) fn open_memo<'a>(
        &self,
        keyring: &Keyring,
        memo: Option<(&Arc<Keyring>, &mut cache::OpenCache)>,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
        now: SystemTime,
        present: &mut ChunkSet,
    ) -> Result<Option<Opened>, DecodeError> {
        let Some(gathered) = chunk::gather(&self.names, pairs)? else {
            return Ok(None);
        };
        *present = gathered.present();
        let candidates = gathered.candidates(MAX_ATTEMPTS, self.config.total_budget)?;
        if let [single] = candidates.as_slice() {
            // One set: the memo, when it holds these exact pieces; else the screen and the full
            // open.
            let mut memo = memo.filter(|(_, memo)| memo.enabled());
            let hit = memo
                .as_mut()
                .and_then(|(ring, memo)| memo.get(ring, single.count, &single.pieces));
            let mut opened = match hit {
                Some(opened) => opened,
                None => {
                    screen_only(keyring, single)?;
                    let opened = self.open_candidate(keyring, single)?;
                    if let Some((ring, memo)) = memo.as_mut() {
                        memo.offer(ring, single.count, &single.pieces, &opened);
                    }
                    opened
                }
            };
            if let Err(e) = self.check_times(keyring, &opened.state, now) {
                if let Some((_, memo)) = memo.as_mut() {
                    memo.remove(single.count, &single.pieces);
                }
                return Err(e);
            }
            opened.needs_reseal = keyring.sealing_key(now).id() != opened.key_id;
            return Ok(Some(opened));
        }
        // Every candidate's header first (a few characters each, nothing joined or decoded),
        // then two bounds on what the survivors may cost to decrypt, then the survivors in
        // order.
        let mut scanned = Vec::new();
        let screened: Vec<Result<(), DecodeError>> = candidates
            .iter()
            .map(|c| screen(keyring, c, &mut scanned))
            .collect();
        let work = candidates
            .iter()
            .zip(&screened)
            .filter(|(_, s)| s.is_ok())
            .map(|(c, _)| armored_len(c))
            .fold(0usize, usize::saturating_add);
        if work > self.config.total_budget.saturating_mul(MAX_FULL_OPENS) {
            return Err(DecodeError::Chunk(ChunkError::TooManyCandidates));
        }
        let bound = max_open_work(self.config.total_budget);
        let mut spent = 0usize;
        let mut authentic_firsts: Vec<&[u8]> = Vec::new();
        let mut found: Option<Opened> = None;
        let mut last_err = DecodeError::Tag;
        for (candidate, screened) in candidates.iter().zip(screened) {
            if let Err(e) = screened {
                last_err = e;
                continue;
            }
            // Sets that share a chunk 0 holding the whole header share its key and nonce: once
            // one of them is authentic no other can be (a nonce is never reused), skip them.
            let first = candidate.pieces.first().copied().unwrap_or_default();
            if first.len() >= HEADER_AND_NONCE_CHARS && authentic_firsts.contains(&first) {
                continue;
            }
            spent = spent.saturating_add(armored_len(candidate));
            if spent > bound {
                // Every remaining set could be a different authentic session: refuse, never
                // accept one found so far.
                return Err(DecodeError::Chunk(ChunkError::TooManyCandidates));
            }
            match self.open_candidate(keyring, candidate) {
                Ok(opened) => {
                    authentic_firsts.push(first);
                    match &found {
                        // Two authentic sets that are not the same session: trust neither.
                        Some(seen) if seen.state != opened.state => {
                            return Err(DecodeError::Ambiguous);
                        }
                        Some(_) => {}
                        None => found = Some(opened),
                    }
                }
                Err(e) => last_err = e,
            }
        }
        let mut opened = found.ok_or(last_err)?;
        self.check_times(keyring, &opened.state, now)?;
        opened.needs_reseal = keyring.sealing_key(now).id() != opened.key_id;
        Ok(Some(opened))
    }

    /// [`Codec::seal_with`] parsed into `cookie` objects, for tests and tools: not part of the
    /// stable API (it names another crate's types).
    #[doc(hidden)]
    pub fn seal(
        &self,
        keyring: &Keyring,
        state: &SessionState,
        now: SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<Cookie<'static>>, EncodeError> {
        let lines = self.seal_with(keyring, state, now, rng)?;
        lines
            .into_iter()
            .map(|line| Cookie::parse(line).map_err(|_| EncodeError::Seal))
            .collect()
    }

    /// Seals `state` under the keyring's sealing key into the `Set-Cookie` header values to
    /// send, in chunk order: all of them or none. The nonce is drawn from a per-thread
    /// CSPRNG seeded from the OS that reseeds after `fork()` (so parent and child never share one).
    ///
    /// # Errors
    /// [`EncodeError::TooLarge`] when the cookies would exceed a budget,
    /// [`EncodeError::ValuesTooLarge`] when the values exceed `max_inflated`.
    pub fn seal_lines(
        &self,
        keyring: &Keyring,
        state: &SessionState,
        now: SystemTime,
    ) -> Result<Vec<String>, EncodeError> {
        self.seal_with(keyring, state, now, &mut ForkSafeRng)
    }

    /// [`Codec::seal_lines`] with the nonce drawn from `rng`: for test vectors and benches
    /// (a fixed or seeded nonce source). Not part of the stable API: a CSPRNG that repeats
    /// itself across `fork()` repeats nonces.
    #[doc(hidden)]
    pub fn seal_with(
        &self,
        keyring: &Keyring,
        state: &SessionState,
        now: SystemTime,
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<String>, EncodeError> {
        let key = keyring.sealing_key(now);
        let algorithm = key.algorithm();

        // The decoder refuses sessions whose values inflate beyond `max_inflated`: never seal
        // one (compressible values could otherwise fit the cookie budget and be lost).
        let size = state
            .entries
            .values()
            .map(Vec::len)
            .fold(0usize, usize::saturating_add);
        if size > self.config.max_inflated {
            return Err(EncodeError::ValuesTooLarge {
                size,
                cap: self.config.max_inflated,
            });
        }

        // payload::write, each value framed by compress::deflate on the way, straight after
        // the envelope header.
        let threshold = self.config.compression_threshold.unwrap_or(usize::MAX);
        let fingerprint = |k: &String| {
            state
                .fingerprints
                .get(k)
                .filter(|_| self.config.write_fingerprints)
                .map(|f| f.to_le_bytes())
        };
        let validated_at = self.config.write_validated_at.then_some(state.validated_at);
        let schema = if validated_at.is_some() {
            crate::state::SCHEMA_VALIDATED
        } else if state.entries.keys().any(|k| fingerprint(k).is_some()) {
            crate::state::SCHEMA_TYPED
        } else {
            crate::state::SCHEMA_VERSION
        };
        let meta = payload::Meta {
            schema,
            id: state.id,
            issued_at: state.issued_at,
            expires_at: state.expires_at,
            last_seen: state.last_seen,
            validated_at,
        };

        // Plan the chunks first: their count is bound into the AAD.
        let max_age = self.max_age(state, now);
        let attrs_len = self.attributes_len(max_age);
        let mut nonce = [0u8; 24];
        let nonce = nonce
            .get_mut(..aead::nonce_len(algorithm))
            .ok_or(EncodeError::Seal)?;
        rng.fill_bytes(nonce);
        // Room for the metadata, the keys, the values with their frames and length prefixes
        // and the tag, so the buffer is allocated once.
        let keys_len = state
            .entries
            .keys()
            .fold(0usize, |n, k| n.saturating_add(k.len()).saturating_add(24));
        let body_len = size.saturating_add(keys_len).saturating_add(64);
        let mut envelope = envelope::write_header(algorithm, key.id(), nonce, body_len);
        let header_len = envelope.len();
        let entries = state
            .entries
            .iter()
            .map(|(k, v)| (k.as_str(), fingerprint(k), v.as_slice()));
        payload::write(&mut envelope, &meta, entries, |value, out| {
            compress::deflate(value, threshold, out)
        })
        .map_err(|()| EncodeError::Serialize)?;
        let sealed_len = envelope.len().saturating_add(aead::TAG_LEN);
        let plan = chunk::plan(
            &self.names,
            armor::encoded_len(sealed_len),
            attrs_len,
            self.config.cookie_budget,
            self.config.total_budget,
        )?;
        let count = u8::try_from(plan.count()).map_err(|_| EncodeError::Seal)?;

        // aead::seal in place after the header.
        let (header, body) = envelope.split_at_mut(header_len);
        let aad = envelope::aad(self.names.base(), self.purpose(), count, header)
            .ok_or(EncodeError::Seal)?;
        let tag = key
            .cipher()
            .seal_detached(nonce, aad.as_slice(), body)
            .map_err(|_| EncodeError::Seal)?;
        envelope.extend_from_slice(&tag);

        // armor::encode straight into the line when the session fits one chunk (the usual
        // case); otherwise once, then cut by the plan.
        if let [size] = plan.sizes.as_slice() {
            let mut line = self.line_head(self.names.get(0), Some(1), *size, max_age);
            armor::encode_into(&envelope, &mut line);
            return Ok(vec![self.line_tail(line, max_age)?]);
        }
        let mut armored = Vec::with_capacity(armor::encoded_len(envelope.len()));
        armor::encode_into(&envelope, &mut armored);
        chunk::split(&self.names, &armored, &plan)
            .map(|piece| self.line(piece.name, piece.count, piece.armor, max_age))
            .collect::<Option<Vec<String>>>()
            .ok_or(EncodeError::Seal)
    }

    /// [`Codec::removal_lines`] parsed into `cookie` objects, for tests: not part of the
    /// stable API.
    #[doc(hidden)]
    pub fn removal_cookies(&self, present: ChunkSet, keep: usize) -> Vec<Cookie<'static>> {
        self.removal_lines(present, keep)
            .into_iter()
            .filter_map(|line| Cookie::parse(line).ok())
            .collect()
    }

    /// Removal `Set-Cookie` values (empty, `Max-Age=0`, same Domain/Path/Secure/SameSite) for
    /// every chunk in `present` (see [`Codec::present_chunks`]) at index `keep` or above: what
    /// a shrink (`keep` = the new chunk count) or a purge (`keep` = 0) leaves behind.
    pub fn removal_lines(&self, present: ChunkSet, keep: usize) -> Vec<String> {
        present
            .indices_from(keep)
            .filter_map(|i| self.line(self.names.get(i), None, b"", Some(Duration::ZERO)))
            .collect()
    }

    /// The chunk count and the armored pieces of `lines` (this codec's `Set-Cookie` lines of
    /// one sealed session, in order), as a request carrying them back would present them to
    /// the memo; `None` for anything else.
    #[cfg_attr(not(any(feature = "actix", feature = "tower")), allow(dead_code))]
    pub(crate) fn sealed_pieces<'l>(&self, lines: &'l [String]) -> Option<(u8, Vec<&'l [u8]>)> {
        let count = u8::try_from(lines.len()).ok()?;
        let mut pieces = Vec::with_capacity(lines.len());
        for (i, line) in lines.iter().enumerate() {
            // `name=` (`name=N.` on the first line), the piece, the attributes, then an
            // optional `; Max-Age=` of at most 20 digits: found from the ends, no scan.
            let mut start = self.names.get(i).len().saturating_add(1);
            if i == 0 {
                start = start
                    .saturating_add(decimal_len(u64::from(count)))
                    .saturating_add(1);
            }
            const MAX_AGE: &[u8] = b"; Max-Age=";
            let bytes = line.as_bytes();
            let digits = bytes
                .iter()
                .rev()
                .take(20)
                .take_while(|b| b.is_ascii_digit())
                .count();
            let before_digits = bytes.len().saturating_sub(digits);
            let attrs_end = match before_digits.checked_sub(MAX_AGE.len()) {
                Some(at) if digits > 0 && bytes.get(at..before_digits) == Some(MAX_AGE) => at,
                _ => bytes.len(),
            };
            let end = attrs_end.checked_sub(self.attrs.len())?;
            if line.get(end..attrs_end)? != self.attrs.as_str() {
                return None;
            }
            pieces.push(line.as_bytes().get(start..end)?);
        }
        Some((count, pieces))
    }

    /// Which of our chunk names a request carried (whatever their values).
    pub fn present_chunks<'a>(
        &self,
        pairs: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    ) -> ChunkSet {
        let mut set = ChunkSet::default();
        for (name, _) in pairs {
            if let Some(i) = self.names.index_of(name) {
                set.insert(i);
            }
        }
        set
    }

    fn open_candidate(
        &self,
        keyring: &Keyring,
        candidate: &chunk::Candidate<'_>,
    ) -> Result<Opened, DecodeError> {
        // armor::decode (strict: any byte outside the alphabet fails here)
        #[cfg(test)]
        screen_tests::FULL_DECODES.with(|n| n.set(n.get() + 1));
        let mut bytes = match candidate.pieces.as_slice() {
            [single] => armor::decode(single)?,
            pieces => armor::decode(&pieces.concat())?,
        };
        // envelope::parse, then the key decides everything else.
        let env = envelope::parse(&bytes)?;
        let key = keyring.get(env.key_id).ok_or(DecodeError::UnknownKey)?;
        if key.is_retired() {
            return Err(DecodeError::RetiredKey);
        }
        if key.algorithm() != env.algorithm {
            return Err(DecodeError::AlgorithmMismatch);
        }
        let aad = envelope::aad(
            self.names.base(),
            self.purpose(),
            candidate.count,
            env.header,
        )
        .ok_or(DecodeError::Envelope(EnvelopeError::TooShort))?;
        #[cfg(test)]
        screen_tests::AEAD_ATTEMPTS.with(|n| n.set(n.get() + 1));
        let (header_len, key_id) = (env.header_len, env.key_id);
        let (header, sealed) = bytes.split_at_mut(header_len);
        let nonce = header.get(envelope::FIXED_HEADER..).unwrap_or(&[]);
        let body_len = sealed.len().saturating_sub(aead::TAG_LEN);
        let (body, tag) = sealed.split_at_mut(body_len);
        key.cipher()
            .open_detached(nonce, aad.as_slice(), body, tag)
            .map_err(|_| DecodeError::Tag)?;

        // payload::decode, then compress::inflate each value within the cap.
        let payload = payload::decode(body)?;
        let mut budget = self.config.max_inflated;
        let mut state = SessionState {
            id: payload.id,
            issued_at: payload.issued_at,
            expires_at: payload.expires_at,
            last_seen: payload.last_seen,
            // Sealed without one (schema 1 or 2): validated when issued.
            validated_at: payload.validated_at.unwrap_or(payload.issued_at),
            entries: Default::default(),
            fingerprints: Default::default(),
        };
        let mut entries = std::collections::BTreeMap::new();
        let mut fingerprints = std::collections::BTreeMap::new();
        let mut compressed = Vec::new();
        for entry in &payload.entries {
            let (k, framed) = (entry.key, entry.value);
            if framed.first().is_some_and(|&b| b != 0) {
                compressed.push(k.to_owned());
            }
            let value = compress::inflate(framed, &mut budget)?;
            if let Some(fingerprint) = entry.fingerprint {
                fingerprints.insert(k.to_owned(), u64::from_le_bytes(fingerprint));
            }
            entries.insert(k.to_owned(), value);
        }
        state.entries = std::sync::Arc::new(entries);
        if !fingerprints.is_empty() {
            state.fingerprints = std::sync::Arc::new(fingerprints);
        }
        let opened = Opened {
            state,
            key_id,
            algorithm: key.algorithm(),
            needs_reseal: false,
            chunk_lengths: candidate.pieces.iter().map(|p| p.len()).collect(),
            compressed,
        };
        Ok(opened)
    }

    /// The checks that depend on the time and on the keyring in force, made on every open,
    /// a memo hit included: the sealed times against the clock, then the fleet-wide cutoff.
    fn check_times(
        &self,
        keyring: &Keyring,
        state: &SessionState,
        now: SystemTime,
    ) -> Result<(), DecodeError> {
        let now = unix_seconds(now);
        let skew = self.config.clock_skew.as_secs();
        let ahead = now.saturating_add(skew);
        if state.issued_at > ahead || state.last_seen > ahead || state.validated_at > ahead {
            return Err(DecodeError::FutureDated);
        }
        if state.expires_at <= now {
            return Err(DecodeError::Expired);
        }
        if let Some(idle) = self.config.idle_timeout {
            if state.last_seen.saturating_add(idle.as_secs()) <= now {
                return Err(DecodeError::IdleExpired);
            }
        }
        // Level 1 revocation: one comparison (the cutoff is 0 when there is none).
        if keyring.revokes(state.issued_at) {
            return Err(DecodeError::Revoked);
        }
        Ok(())
    }

    /// `Max-Age` for a persistent cookie: the configured maximum, never past the session's
    /// absolute expiry. `None` for browser-session cookies.
    fn max_age(&self, state: &SessionState, now: SystemTime) -> Option<Duration> {
        let cap = self.config.max_age?;
        let left = state.expires_at.saturating_sub(unix_seconds(now));
        Some(cap.min(Duration::from_secs(left)))
    }

    /// One `Set-Cookie` header value: `name=`, the chunk count prefix `<count>.` on the first
    /// chunk, the armored piece, the attributes, and Max-Age if any. `None` only if a byte is
    /// not ASCII, which the validated configuration and the armor rule out.
    fn line(
        &self,
        name: &str,
        count: Option<usize>,
        value: &[u8],
        max_age: Option<Duration>,
    ) -> Option<String> {
        let mut line = self.line_head(name, count, value.len(), max_age);
        line.extend_from_slice(value);
        self.line_tail(line, max_age).ok()
    }

    /// A line's `name=` and count prefix, with room for `value_len` armored characters and the
    /// attributes.
    fn line_head(
        &self,
        name: &str,
        count: Option<usize>,
        value_len: usize,
        max_age: Option<Duration>,
    ) -> Vec<u8> {
        let capacity = name
            .len()
            .saturating_add(value_len)
            .saturating_add(self.attributes_len(max_age))
            .saturating_add(4);
        let mut line = Vec::with_capacity(capacity);
        line.extend_from_slice(name.as_bytes());
        line.push(b'=');
        if let Some(count) = count {
            // Writing to a Vec cannot fail.
            let _ = write!(line, "{count}.");
        }
        line
    }

    /// Appends the attributes (and Max-Age) to a line holding `name=value`.
    fn line_tail(
        &self,
        mut line: Vec<u8>,
        max_age: Option<Duration>,
    ) -> Result<String, EncodeError> {
        line.extend_from_slice(self.attrs.as_bytes());
        if let Some(age) = max_age {
            let _ = write!(line, "; Max-Age={}", age.as_secs());
        }
        String::from_utf8(line).map_err(|_| EncodeError::Seal)
    }

    /// Bytes the rendered attributes add to `name=value` in a `Set-Cookie` line, Max-Age
    /// included when present.
    fn attributes_len(&self, max_age: Option<Duration>) -> usize {
        let max_age_len = max_age.map_or(0, |age| {
            "; Max-Age="
                .len()
                .saturating_add(decimal_len(age.as_secs()))
        });
        self.attrs.len().saturating_add(max_age_len)
    }
}

/// Refuses a candidate by its envelope header before its pieces are joined or decoded: the
/// first [`HEADER_CHARS`] armored characters hold the version, algorithm and key id
/// (FORMAT.md §3–4), so an unknown version or algorithm, an unknown or retired key, an
/// algorithm that is not the key's, or pieces too short for that algorithm's envelope cost a
/// scan of the characters instead of joining, decoding and decrypting the set.
///
/// The refusals are exactly those of the full open, in its order: the armor is checked first
/// without decoding it (length, alphabet, the last character's unused bits: what a strict
/// decode refuses), then the header as `envelope::parse` and the key lookup would. A
/// candidate shorter than [`HEADER_CHARS`] is left to the full open. The count was checked
/// against the chunks present by `chunk::Gathered::candidates`.
///
/// `scanned` remembers the pieces whose alphabet was checked for earlier candidates of the
/// same request (candidates share pieces), so each piece is scanned once.
fn screen<'a>(
    keyring: &Keyring,
    candidate: &chunk::Candidate<'a>,
    scanned: &mut Vec<(&'a [u8], bool)>,
) -> Result<(), DecodeError> {
    let len = armored_len(candidate);
    if len < HEADER_CHARS {
        return Ok(());
    }
    screen_armor(candidate, len, scanned)?;
    screen_header(keyring, candidate, len)
}

/// [`screen`] for the only candidate of a request, when a full open follows at once: the
/// header first, and the armor scan only to choose the error when the header is refused
/// (bad armor must still be reported first, as the full open would). A candidate whose
/// header passes goes straight to the full open, whose strict decode checks the armor
/// anyway: the same verdicts, without scanning every character twice.
fn screen_only<'a>(keyring: &Keyring, candidate: &chunk::Candidate<'a>) -> Result<(), DecodeError> {
    let len = armored_len(candidate);
    if len < HEADER_CHARS {
        return Ok(());
    }
    match screen_header(keyring, candidate, len) {
        Ok(()) => Ok(()),
        Err(header) => {
            screen_armor(candidate, len, &mut Vec::new())?;
            Err(header)
        }
    }
}

/// The armor half of [`screen`]: what a strict decode of the joined pieces would refuse.
fn screen_armor<'a>(
    candidate: &chunk::Candidate<'a>,
    len: usize,
    scanned: &mut Vec<(&'a [u8], bool)>,
) -> Result<(), DecodeError> {
    let mut alphabet_ok = true;
    for &piece in &candidate.pieces {
        let same = |p: &&(&[u8], bool)| std::ptr::eq(p.0, piece);
        let ok = match scanned.iter().find(same) {
            Some(&(_, ok)) => ok,
            None => {
                // Branch-free, so it vectorizes: well under a microsecond for 4 KiB.
                let ok = piece.iter().fold(true, |ok, &c| ok & is_armor_char(c));
                scanned.push((piece, ok));
                ok
            }
        };
        alphabet_ok &= ok;
    }
    let last = candidate
        .pieces
        .iter()
        .rev()
        .find_map(|p| p.last())
        .map_or(0, |&c| sextet(c));
    let unused_bits = match len % 4 {
        1 => return Err(DecodeError::Armor),
        2 => last & 0x0f,
        3 => last & 0x03,
        _ => 0,
    };
    if !alphabet_ok || unused_bits != 0 {
        return Err(DecodeError::Armor);
    }
    Ok(())
}

/// The header half of [`screen`]: what `envelope::parse` and the key lookup would refuse,
/// from the first [`HEADER_CHARS`] characters (a bad character there is an armor error).
fn screen_header(
    keyring: &Keyring,
    candidate: &chunk::Candidate<'_>,
    len: usize,
) -> Result<(), DecodeError> {
    let mut head = [0u8; HEADER_CHARS];
    let chars = candidate.pieces.iter().flat_map(|p| p.iter());
    for (slot, &c) in head.iter_mut().zip(chars) {
        *slot = c;
    }
    let fixed = armor::decode(&head)?;
    let [version, algorithm, id @ ..] = fixed.as_slice() else {
        return Err(DecodeError::Envelope(EnvelopeError::TooShort));
    };
    if *version != envelope::VERSION {
        return Err(DecodeError::Envelope(EnvelopeError::UnknownVersion));
    }
    let algorithm = Algorithm::from_id(*algorithm)
        .ok_or(DecodeError::Envelope(EnvelopeError::UnknownAlgorithm))?;
    // Bytes the armored length decodes to (len % 4 is 0, 2 or 3 here).
    let decoded = (len / 4)
        .saturating_mul(3)
        .saturating_add((len % 4).saturating_sub(1));
    if decoded < envelope::overhead(algorithm) {
        return Err(DecodeError::Envelope(EnvelopeError::TooShort));
    }
    let id = KeyId(
        id.try_into()
            .map_err(|_| DecodeError::Envelope(EnvelopeError::TooShort))?,
    );
    let key = keyring.get(id).ok_or(DecodeError::UnknownKey)?;
    if key.is_retired() {
        return Err(DecodeError::RetiredKey);
    }
    if key.algorithm() != algorithm {
        return Err(DecodeError::AlgorithmMismatch);
    }
    Ok(())
}

/// Whether `c` is in the base64url alphabet (`A–Z a–z 0–9 - _`), without branches.
fn is_armor_char(c: u8) -> bool {
    (c.wrapping_sub(b'A') < 26)
        | (c.wrapping_sub(b'a') < 26)
        | (c.wrapping_sub(b'0') < 10)
        | (c == b'-')
        | (c == b'_')
}

/// The value of a base64url character, or 64 for any other byte.
fn sextet(c: u8) -> u8 {
    match c {
        b'A'..=b'Z' => c.wrapping_sub(b'A'),
        b'a'..=b'z' => c.wrapping_sub(b'a').wrapping_add(26),
        b'0'..=b'9' => c.wrapping_sub(b'0').wrapping_add(52),
        b'-' => 62,
        b'_' => 63,
        _ => 64,
    }
}

/// Armored characters a candidate carries in all.
fn armored_len(candidate: &chunk::Candidate<'_>) -> usize {
    candidate
        .pieces
        .iter()
        .map(|p| p.len())
        .fold(0, usize::saturating_add)
}

/// The attributes every line carries, sent explicitly (SameSite above all: only Chrome
/// defaults to Lax). The configuration was validated, so no value needs escaping.
fn render_attributes(config: &SessionConfig) -> String {
    let mut attrs = format!("; Path={}", config.path);
    if let Some(domain) = &config.domain {
        attrs.push_str("; Domain=");
        attrs.push_str(domain);
    }
    if config.secure {
        attrs.push_str("; Secure");
    }
    if config.http_only {
        attrs.push_str("; HttpOnly");
    }
    attrs.push_str(match config.same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    attrs
}

fn decimal_len(n: u64) -> usize {
    n.checked_ilog10()
        .map_or(1, |d| usize::try_from(d).unwrap_or(19).saturating_add(1))
}

/// The most decryption attempts duplicated cookies may cause.
pub(crate) const MAX_ATTEMPTS: usize = 8;

/// The candidates that pass [`screen`] may carry at most this many times the total budget of
/// armored characters in all, else the request is refused as `chunk.candidates` before any of
/// them is decoded: eight hostile full-budget sets with a known key id cost nothing to refuse.
pub(crate) const MAX_FULL_OPENS: usize = 2;

/// What one request may spend decoding and decrypting, in armored characters: one full-budget
/// set plus one of up to the default budget (6144). At the default budget that is two full
/// sets (an authentic session beside one copy of the same size still opens), at 16 KiB one and
/// a third. Reaching it before every candidate was tried refuses the request
/// (`chunk.candidates`): an untried set could be a second, different authentic session.
fn max_open_work(total_budget: usize) -> usize {
    total_budget.saturating_add(total_budget.min(DEFAULT_TOTAL_BUDGET))
}

/// The default total budget (see `SessionConfig`).
const DEFAULT_TOTAL_BUDGET: usize = 6144;

/// Armored characters that carry the fixed header (version, algorithm, key id: 6 bytes).
const HEADER_CHARS: usize = 8;

/// Armored characters that carry the longest header with its nonce (6 + 24 bytes).
const HEADER_AND_NONCE_CHARS: usize = 40;

/// The fixed SameSite default, sent explicitly.
pub(crate) const DEFAULT_SAME_SITE: SameSite = SameSite::Lax;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod screen_tests;

/// The benchmark floor: the same bytes through the raw AEAD and the `base64` crate's
/// URL-safe engine alone, no session logic (the floor as issue 14 defines it, kept on the
/// `base64` crate although the codec's own armor is faster, so the ratio stays comparable).
/// Not part of the API.
#[doc(hidden)]
pub mod floor {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::aead;
    use crate::keyring::Algorithm;

    /// A keyed cipher.
    pub struct RawAead(aead::Cipher, Algorithm);

    impl RawAead {
        /// Keys `algorithm` with `secret`.
        pub fn new(algorithm: Algorithm, secret: &[u8; 32]) -> Self {
            RawAead(aead::Cipher::new(algorithm, secret), algorithm)
        }

        /// Nonce length of the algorithm.
        pub fn nonce_len(&self) -> usize {
            aead::nonce_len(self.1)
        }

        /// Seals and armors.
        pub fn seal(&self, nonce: &[u8], plaintext: &[u8]) -> String {
            let mut buf = plaintext.to_vec();
            let _ = self.0.seal(nonce, b"", &mut buf);
            URL_SAFE_NO_PAD.encode(&buf)
        }

        /// Dearmors and opens.
        pub fn open(&self, nonce: &[u8], text: &str) -> Option<Vec<u8>> {
            let mut buf = URL_SAFE_NO_PAD.decode(text.as_bytes()).ok()?;
            self.0.open(nonce, b"", &mut buf).ok()?;
            Some(buf)
        }

        /// Test hook: the codec's own `seal` with associated data, no armor. `false` when the
        /// cipher refuses (a nonce of the wrong length).
        pub fn seal_raw(&self, nonce: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> bool {
            self.0.seal(nonce, aad, buf).is_ok()
        }

        /// Test hook: the codec's own `open` of `ciphertext ‖ tag` with associated data, no
        /// armor. `false` when it does not open (`buf` is then unspecified).
        pub fn open_raw(&self, nonce: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> bool {
            self.0.open(nonce, aad, buf).is_ok()
        }
    }
}
