//! Stateless, encrypted, chunked cookie sessions for actix-web.
//!
//! The whole session lives in the browser, sealed with an AEAD under a rotating keyring, so
//! any node behind a round-robin load balancer can serve any request: no session store, no
//! sticky routing, no replication.
//!
//! ```text
//! request:  Cookie header ─► chunk::gather ─► armor::decode ─► envelope::parse ─► aead::open
//!             ─► payload::decode ─► compress::inflate ─► SessionState ─► Session
//! response: Session ─► SessionState ─► compress::deflate ─► payload::encode ─► aead::seal
//!             ─► envelope header ─► armor::encode ─► chunk::split ─► Set-Cookie headers
//! ```
//!
//! Start with [`SessionMiddleware`] and the [`Session`] extractor; the framework-free core is
//! [`Codec`]. The wire format is specified in `docs/FORMAT.md`, the threat model in
//! `SECURITY.md`.
//!
//! # Limits
//! A stateless session cannot be revoked before the expiry sealed inside it: a copied cookie
//! works until then. Parallel requests race (the last response wins). A session is capped by
//! the cookie budgets (6 KiB of `Cookie` header by default).
//!
//! # Quick start
//! See the README (doc-tested) and `examples/demo.rs`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "actix-session-store")]
mod actix_store;
pub mod codec;
pub mod config;
#[cfg(any(feature = "actix", feature = "tower"))]
mod engine;
pub mod error;
#[cfg(feature = "actix")]
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod inspect;
pub mod keyring;
#[cfg(feature = "actix")]
mod middleware;
#[cfg(any(feature = "actix", feature = "tower"))]
mod reload;
#[cfg(feature = "redis")]
mod revocation;
#[cfg(feature = "actix")]
mod session;
pub mod state;
#[cfg(feature = "tower")]
mod tower;

#[cfg(feature = "actix-session-store")]
pub use actix_store::SealedSessionStore;
pub use codec::{Codec, Opened};
pub use config::{SameSite, SessionConfig};
#[cfg(any(feature = "actix", feature = "tower"))]
pub use engine::{
    Clock, Entries, RevalidationError, RevalidationErrorPolicy, RevalidationFuture, Session,
    SessionBuilder, SessionStats, SessionStatus, TtlExtensionPolicy,
};
pub use error::{
    ConfigError, DecodeError, EncodeError, KeyringError, SessionGetError, SessionInsertError,
};
pub use keyring::{Algorithm, Key, KeyId, Keyring};
#[cfg(feature = "actix")]
pub use middleware::{SessionMiddleware, SessionMiddlewareBuilder, SessionService};
#[cfg(feature = "redis")]
pub use revocation::{NoMirrorPolicy, RedisRevocation, RedisRevocationOptions, RevocationStats};
#[cfg(feature = "actix")]
pub use session::SessionExt;
pub use state::SessionState;
#[cfg(feature = "tower")]
pub use tower::{SessionLayer, SessionLayerBuilder, SessionLayerFuture, SessionLayerService};

/// The README's Rust examples are compiled as doc tests so they cannot drift.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
