//! Error types. At the HTTP boundary every failure is "no session"; inside the crate each
//! stage has its own variant so logs and counters can tell an unknown key from a bad tag.

use std::fmt;

/// Why a request's cookies did not yield a session. The caller treats every variant as "no
/// session"; the variant names the stage that failed (see [`DecodeError::category`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The chunk cookies do not form one complete, well-numbered set.
    Chunk(ChunkError),
    /// A chunk is not strict, unpadded URL-safe base64.
    Armor,
    /// The envelope header is malformed.
    Envelope(EnvelopeError),
    /// No key in the keyring has the envelope's key id (no decryption was attempted).
    UnknownKey,
    /// The key exists but was retired.
    RetiredKey,
    /// The envelope's algorithm byte disagrees with the key's algorithm.
    AlgorithmMismatch,
    /// The authentication tag did not verify: tampered, spliced, renamed or foreign.
    Tag,
    /// The decrypted payload is not a valid session.
    Payload,
    /// A compressed value is malformed or inflates beyond the configured cap.
    Compression,
    /// The absolute expiry sealed in the session has passed.
    Expired,
    /// The session was idle longer than the idle timeout.
    IdleExpired,
    /// The session claims to be issued (or seen) in the future, beyond the allowed skew.
    FutureDated,
    /// The session was issued before the keyring's cutoff (`not_before`, set by
    /// `sealed-session revoke --before`): revoked fleet-wide.
    Revoked,
    /// The application's revalidation hook refused the session (or failed, under
    /// `RevalidationErrorPolicy::Drop`). Never returned by the codec.
    RevalidationFailed,
    /// Two different authentic sessions were presented (e.g. cookie tossing from a sibling
    /// subdomain), or more distinct values of one chunk name than are tried; neither is
    /// trusted.
    Ambiguous,
}

impl DecodeError {
    /// A short, stable label for logs and metrics. Never contains input bytes.
    pub fn category(&self) -> &'static str {
        match self {
            DecodeError::Chunk(e) => e.category(),
            DecodeError::Armor => "armor",
            DecodeError::Envelope(e) => e.category(),
            DecodeError::UnknownKey => "key.unknown",
            DecodeError::RetiredKey => "key.retired",
            DecodeError::AlgorithmMismatch => "key.algorithm_mismatch",
            DecodeError::Tag => "aead.tag",
            DecodeError::Payload => "payload",
            DecodeError::Compression => "compression",
            DecodeError::Expired => "time.expired",
            DecodeError::IdleExpired => "time.idle",
            DecodeError::FutureDated => "time.future",
            DecodeError::Ambiguous => "ambiguous",
            DecodeError::Revoked => "revoked",
            DecodeError::RevalidationFailed => "revalidation.failed",
        }
    }

    /// Every category, for pre-registering counters.
    pub const CATEGORIES: [&'static str; 24] = [
        "chunk.count",
        "chunk.missing_first",
        "chunk.missing",
        "chunk.extra",
        "chunk.too_long",
        "chunk.too_many",
        "chunk.candidates",
        "chunk.total",
        "armor",
        "envelope.too_short",
        "envelope.unknown_version",
        "envelope.unknown_algorithm",
        "key.unknown",
        "key.retired",
        "key.algorithm_mismatch",
        "aead.tag",
        "payload",
        "compression",
        "time.expired",
        "time.idle",
        "time.future",
        "ambiguous",
        "revoked",
        "revalidation.failed",
    ];
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session cookie rejected: {}", self.category())
    }
}

impl std::error::Error for DecodeError {}

/// What is wrong with the set of chunk cookies: opaque, read it through
/// [`ChunkError::category`] (the set of reasons grows with the format's screening rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkError(ChunkKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkKind {
    BadCount,
    MissingFirst,
    Missing,
    Extra,
    TooLong,
    TooMany,
    TooManyCandidates,
    TotalTooLong,
}

// Named like the variants they stand for, so the decoder reads `ChunkError::Missing`.
#[allow(non_upper_case_globals)]
impl ChunkError {
    /// The first cookie's chunk count is not a canonical number in range.
    pub(crate) const BadCount: Self = Self(ChunkKind::BadCount);
    /// Continuation chunks are present but the first cookie is not.
    pub(crate) const MissingFirst: Self = Self(ChunkKind::MissingFirst);
    /// A chunk below the declared count is absent.
    pub(crate) const Missing: Self = Self(ChunkKind::Missing);
    /// A chunk at or above the declared count is present.
    pub(crate) const Extra: Self = Self(ChunkKind::Extra);
    /// One chunk is longer than any cookie we write.
    pub(crate) const TooLong: Self = Self(ChunkKind::TooLong);
    /// More chunk cookies than the configuration can produce.
    pub(crate) const TooMany: Self = Self(ChunkKind::TooMany);
    /// Duplicates would need more decryption attempts than allowed.
    pub(crate) const TooManyCandidates: Self = Self(ChunkKind::TooManyCandidates);
    /// All chunks together exceed the total budget.
    pub(crate) const TotalTooLong: Self = Self(ChunkKind::TotalTooLong);

    /// A short, stable label (`chunk.*`, one of [`DecodeError::CATEGORIES`]).
    pub fn category(self) -> &'static str {
        match self.0 {
            ChunkKind::BadCount => "chunk.count",
            ChunkKind::MissingFirst => "chunk.missing_first",
            ChunkKind::Missing => "chunk.missing",
            ChunkKind::Extra => "chunk.extra",
            ChunkKind::TooLong => "chunk.too_long",
            ChunkKind::TooMany => "chunk.too_many",
            ChunkKind::TooManyCandidates => "chunk.candidates",
            ChunkKind::TotalTooLong => "chunk.total",
        }
    }
}

/// What is wrong with the envelope header: opaque, read it through
/// [`EnvelopeError::category`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeError(EnvelopeKind);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvelopeKind {
    TooShort,
    UnknownVersion,
    UnknownAlgorithm,
}

#[allow(non_upper_case_globals)]
impl EnvelopeError {
    /// Shorter than header + tag.
    pub(crate) const TooShort: Self = Self(EnvelopeKind::TooShort);
    /// A version byte this build does not know.
    pub(crate) const UnknownVersion: Self = Self(EnvelopeKind::UnknownVersion);
    /// An algorithm byte this build does not know.
    pub(crate) const UnknownAlgorithm: Self = Self(EnvelopeKind::UnknownAlgorithm);

    /// A short, stable label (`envelope.*`, one of [`DecodeError::CATEGORIES`]).
    pub fn category(self) -> &'static str {
        match self.0 {
            EnvelopeKind::TooShort => "envelope.too_short",
            EnvelopeKind::UnknownVersion => "envelope.unknown_version",
            EnvelopeKind::UnknownAlgorithm => "envelope.unknown_algorithm",
        }
    }
}

/// Why a session could not be turned into cookies.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// The sealed session needs more bytes (as sent in the `Cookie` request header) than the
    /// total budget, or more chunks than allowed. No cookie is produced.
    TooLarge {
        /// Bytes the session would occupy in the `Cookie` header.
        needed: usize,
        /// The configured total budget.
        budget: usize,
    },
    /// The values add up to more bytes than the decoder's inflation cap
    /// ([`SessionConfig::max_inflated`](crate::SessionConfig::max_inflated)), so the session
    /// could not be opened again even if it compresses into the cookie budget.
    ValuesTooLarge {
        /// Total bytes of all values.
        size: usize,
        /// The configured inflation cap.
        cap: usize,
    },
    /// A value could not be serialized.
    Serialize,
    /// The AEAD refused to seal (cannot happen with a valid key and nonce length).
    Seal,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLarge { needed, budget } => {
                write!(
                    f,
                    "session too large: needs {needed} cookie bytes, budget is {budget}"
                )
            }
            EncodeError::ValuesTooLarge { size, cap } => {
                write!(
                    f,
                    "session values total {size} bytes, over the {cap}-byte inflation cap"
                )
            }
            EncodeError::Serialize => f.write_str("session could not be serialized"),
            EncodeError::Seal => f.write_str("session could not be sealed"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Why a keyring could not be built or loaded. Never carries a value read from a keyring
/// file: a hand-edited file may hold a secret in any field, so errors name the key by its
/// position in the list (`keys[0]` is the first) and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringError {
    /// No key that is not retired.
    Empty,
    /// Every usable key is still pending: nothing could seal now.
    NoSealingKey,
    /// The keys at these positions share an id.
    DuplicateId {
        /// Position of the first key with the id.
        first: usize,
        /// Position of the later key with the same id.
        second: usize,
    },
    /// The id of the key at this position is not 8 lowercase hex digits.
    BadId {
        /// The key's position in the list.
        index: usize,
    },
    /// The secret of the key at this position is not 32 bytes of unpadded base64url.
    BadSecret {
        /// The key's position in the list.
        index: usize,
    },
    /// The algorithm of the key at this position is not a name this build knows.
    UnknownAlgorithm {
        /// The key's position in the list.
        index: usize,
    },
    /// A time field that is not a keyring time (docs/FORMAT.md §8).
    BadTime {
        /// The key's position in the list.
        index: usize,
        /// The field.
        field: &'static str,
    },
    /// `"retired_at": null`: a key that is not retired has no `retired_at` field.
    NullRetiredAt {
        /// The key's position in the list.
        index: usize,
    },
    /// More keys than [`MAX_KEYS`](crate::keyring::MAX_KEYS).
    TooManyKeys {
        /// How many keys the file or list holds.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// The JSON does not parse (position only, never the text).
    Json {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
    /// A keyring format version this build does not know.
    UnsupportedVersion(u32),
    /// `not_before` is not a keyring time (or is `null`).
    BadNotBefore,
    /// A version 1 file carries `not_before`, which only version 2 may hold (a release that
    /// reads only version 1 would refuse it).
    NotBeforeNeedsVersion2,
    /// The file could not be read.
    Io(std::io::ErrorKind, String),
    /// The environment variable is unset or not UTF-8.
    MissingEnv(String),
    /// The OS random number generator failed.
    Random,
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringError::Empty => f.write_str("keyring has no key that is not retired"),
            KeyringError::NoSealingKey => {
                f.write_str("keyring has no key whose activation time has passed")
            }
            KeyringError::DuplicateId { first, second } => {
                write!(f, "keys[{first}] and keys[{second}] have the same id")
            }
            KeyringError::BadId { index } => {
                write!(f, "keys[{index}].id is not 8 lowercase hex digits")
            }
            KeyringError::BadSecret { index } => write!(
                f,
                "keys[{index}].secret is not 32 bytes of unpadded base64url"
            ),
            KeyringError::UnknownAlgorithm { index } => write!(
                f,
                "keys[{index}].algorithm is not a known algorithm (expected xaes256gcm, \
                 xchacha20poly1305 or aes256gcm)"
            ),
            KeyringError::BadTime { index, field } => write!(
                f,
                "keys[{index}].{field} is not a time of the form YYYY-MM-DDTHH:MM:SSZ (UTC, \
                 years 1970 to 9999, no leap second)"
            ),
            KeyringError::NullRetiredAt { index } => write!(
                f,
                "keys[{index}].retired_at is null: remove the field for a key that is not \
                 retired, or give the time it was retired"
            ),
            KeyringError::TooManyKeys { count, max } => write!(
                f,
                "keyring has {count} keys, more than the {max} allowed (remove retired keys \
                 whose sessions have expired)"
            ),
            KeyringError::Json { line, column } => {
                write!(
                    f,
                    "keyring is not valid JSON (line {line}, column {column})"
                )
            }
            KeyringError::UnsupportedVersion(v) => {
                write!(f, "keyring version {v} is not supported")
            }
            KeyringError::BadNotBefore => f.write_str(
                "not_before is not a time of the form YYYY-MM-DDTHH:MM:SSZ (UTC, years 1970 to \
                 9999, no leap second); remove the field for no cutoff",
            ),
            KeyringError::NotBeforeNeedsVersion2 => {
                f.write_str("not_before is only allowed in a version 2 keyring file")
            }
            KeyringError::Io(kind, path) => write!(f, "cannot read keyring {path}: {kind}"),
            KeyringError::MissingEnv(var) => write!(f, "environment variable {var} is not set"),
            KeyringError::Random => f.write_str("the operating system's random generator failed"),
        }
    }
}

impl std::error::Error for KeyringError {}

/// A middleware configuration that would be unsafe or could never work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigError(pub(crate) String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid session configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A stored value could not be read as the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionGetError {
    pub(crate) key: String,
}

impl fmt::Display for SessionGetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session value {:?} does not deserialize as the requested type",
            self.key
        )
    }
}

impl std::error::Error for SessionGetError {}

/// A value could not be stored in the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInsertError {
    pub(crate) key: String,
}

impl fmt::Display for SessionInsertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "session value {:?} could not be serialized", self.key)
    }
}

impl std::error::Error for SessionInsertError {}

/// An opaque 500 with an empty body, as actix-session answers: `?` on `get`/`insert` in a
/// handler returning `actix_web::Result` works, and nothing about the session leaks.
#[cfg(feature = "actix")]
impl actix_web::ResponseError for SessionGetError {
    fn error_response(&self) -> actix_web::HttpResponse {
        actix_web::HttpResponse::new(self.status_code())
    }
}

/// As for [`SessionGetError`]: an opaque, empty 500.
#[cfg(feature = "actix")]
impl actix_web::ResponseError for SessionInsertError {
    fn error_response(&self) -> actix_web::HttpResponse {
        actix_web::HttpResponse::new(self.status_code())
    }
}
