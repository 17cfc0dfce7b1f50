//! Compatibility with actix-session users (issue 10): actix-session 0.11.0's own tests,
//! ported with only their imports and builder lines changed (`session`, `middleware`,
//! `opaque_errors`, and `actix_session_lib` for the `test_helpers` module of actix-session's
//! `src/lib.rs`; MIT OR Apache-2.0, licence files beside this one), then
//! our tests of what the port needed (`fixes`) and of the usual companions through a real
//! `App` (`flash`, `identity`). Every ignored test cites a row of the README's migration
//! table; `cargo test --test compat -- --ignored` shows each of them failing for that reason.

mod actix_session_lib;
mod fixes;
mod flash;
mod identity;
mod middleware;
// The ported file keeps actix-session's `MockStore`, which only its ignored test uses.
#[allow(dead_code)]
mod opaque_errors;
mod session;

use actix_session_lib::test_helpers;
