//! Configuration: one `#[must_use]` builder with a setter per knob and secure defaults.
//!
//! # How the defaults were chosen
//! - **Name `__Host-session`**: the `__Host-` prefix (matched without regard to case) makes
//!   browsers refuse the cookie unless it is Secure, host-only and `Path=/`, so a sibling
//!   subdomain or a plain-http page cannot plant or shadow it. Sharing across subdomains needs
//!   a Domain, hence another name (`__Secure-session` is suggested), and then any host under
//!   that domain can replace a user's session with its own authentic one, or plant one for a
//!   logged-out visitor: share only when every such host is yours (SECURITY.md, "Sibling
//!   subdomains").
//! - **Secure, HttpOnly, `SameSite=Lax`, always sent explicitly**: only Chrome defaults to Lax.
//! - **Browser-session cookies** (no Max-Age): closing the browser ends the session; the sealed
//!   absolute expiry bounds it anyway.
//! - **Absolute lifetime 24 h, idle timeout 2 h, renewal at most every 5 min**: a stolen cookie
//!   cannot be revoked, so it must die on its own; renewal costs a `Set-Cookie`, so it is rate
//!   limited.
//! - **3600 bytes per `Set-Cookie` line**: a session of one chunk passes a stock nginx, whose
//!   `proxy_buffer_size 4k` must hold the upstream's whole response head (measured: a
//!   3965-byte line passes beside a few small headers, 3992 gets a 502), with ~500 bytes left
//!   for the status line, the app's other headers and a chunk-removal line. Every browser keeps
//!   up to 4050 (name+value ≤ 4096, Safari's lower limit counts attributes): raise it to 4050
//!   when the proxy's buffers are raised too (docs/DEPLOY.md).
//! - **6144 bytes of `Cookie` header in all**: a stock nginx refuses request lines over 8 KB and
//!   all cookies travel in one line; 2 KB are left for the site's other cookies. A session of
//!   two chunks makes responses with more than 4 KiB of `Set-Cookie` lines: behind nginx raise
//!   `proxy_buffer_size` (docs/DEPLOY.md); the middleware says so once, at info.
//! - **Compression from 256-byte values, inflation capped at 64 KiB**.

use std::time::Duration;

use crate::codec::{DEFAULT_SAME_SITE, armor, envelope};
use crate::error::ConfigError;
use crate::keyring::Algorithm;

/// The default `cookie_budget` (see the module docs).
pub(crate) const DEFAULT_COOKIE_BUDGET: usize = 3600;

/// The cookies' `SameSite` attribute. Always sent explicitly: only Chrome defaults to `Lax`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Also sent with top-level cross-site navigations (links): the default.
    #[default]
    Lax,
    /// Sent with every request; requires `Secure`.
    None,
}

/// actix-web's `SameSite` (cookie 0.16), so code written for actix-session's builder compiles.
#[cfg(feature = "actix")]
impl From<actix_web::cookie::SameSite> for SameSite {
    fn from(same_site: actix_web::cookie::SameSite) -> Self {
        match same_site {
            actix_web::cookie::SameSite::Strict => SameSite::Strict,
            actix_web::cookie::SameSite::Lax => SameSite::Lax,
            actix_web::cookie::SameSite::None => SameSite::None,
        }
    }
}

/// Every knob of the session cookie and its lifetimes.
#[derive(Debug, Clone)]
#[must_use]
pub struct SessionConfig {
    pub(crate) cookie_name: String,
    pub(crate) domain: Option<String>,
    pub(crate) path: String,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) max_age: Option<Duration>,
    pub(crate) lifetime: Duration,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) renew_interval: Duration,
    pub(crate) cookie_budget: usize,
    pub(crate) total_budget: usize,
    pub(crate) compression_threshold: Option<usize>,
    pub(crate) max_inflated: usize,
    pub(crate) clock_skew: Duration,
    pub(crate) purpose: Option<String>,
    pub(crate) write_fingerprints: bool,
    pub(crate) write_validated_at: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            cookie_name: "__Host-session".to_owned(),
            domain: None,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: DEFAULT_SAME_SITE,
            max_age: None,
            lifetime: Duration::from_secs(24 * 3600),
            idle_timeout: Some(Duration::from_secs(2 * 3600)),
            renew_interval: Duration::from_secs(300),
            cookie_budget: DEFAULT_COOKIE_BUDGET,
            total_budget: 6144,
            compression_threshold: Some(256),
            max_inflated: 64 * 1024,
            clock_skew: Duration::from_secs(60),
            purpose: None,
            write_fingerprints: true,
            write_validated_at: false,
        }
    }
}

impl SessionConfig {
    /// The secure defaults (see the module docs for why each was chosen).
    pub fn new() -> Self {
        Self::default()
    }

    /// Base cookie name; chunks are `<name>.1`, `<name>.2` … Default `__Host-session`.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// Domain attribute, e.g. a parent domain `example.com` so that `a.example.com` and
    /// `b.example.com` share the session. Default: none (host-only). With a Domain, every host
    /// under it can overwrite the session with one of its own (SECURITY.md, "Sibling
    /// subdomains"): set it only when all of them are yours.
    pub fn cookie_domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    /// Path attribute. Default `/`.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        self.path = path.into();
        self
    }

    /// Secure attribute. Default on. Turning it off is for plain-http local testing only, and
    /// is refused with a `__Host-`/`__Secure-` name or `SameSite=None`.
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// HttpOnly attribute. Default on: scripts have no business with a sealed blob.
    pub fn cookie_http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// SameSite attribute, always sent. Default `Lax`. Takes this crate's [`SameSite`] or, with
    /// the `actix` feature, `actix_web::cookie::SameSite` (as actix-session's builder does).
    pub fn cookie_same_site(mut self, same_site: impl Into<SameSite>) -> Self {
        self.same_site = same_site.into();
        self
    }

    /// Browser-session cookies (no Max-Age): the default.
    pub fn browser_session(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// Persistent cookies with this Max-Age (never past the session's absolute expiry; at
    /// most 400 days, the browsers' cap).
    pub fn persistent(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// Absolute lifetime from login (or [`renew`](crate::Session::renew)), sealed in the
    /// session and enforced server-side. Default 24 h.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// Idle timeout, enforced from the sealed last-seen time. Default 2 h; `None` disables.
    pub fn idle_timeout(mut self, idle: Option<Duration>) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// How often an unchanged session is re-issued to slide its idle timeout. Default 5 min;
    /// must be shorter than the idle timeout.
    pub fn renew_interval(mut self, interval: Duration) -> Self {
        self.renew_interval = interval;
        self
    }

    /// Most bytes in one `Set-Cookie` header value (name, value and attributes). Default 3600
    /// (one chunk passes a stock nginx); at most 8192, and browsers drop lines whose name and
    /// value pass 4096.
    pub fn cookie_budget(mut self, bytes: usize) -> Self {
        self.cookie_budget = bytes;
        self
    }

    /// Most bytes all chunks may take in the `Cookie` request header. Default 6144. Raise it
    /// only with the proxy settings in the README ("Running several nodes").
    pub fn total_budget(mut self, bytes: usize) -> Self {
        self.total_budget = bytes;
        self
    }

    /// Values at least this long are compressed on their own when that saves bytes. Default
    /// `Some(256)`; `None` disables compression.
    pub fn compression_threshold(mut self, bytes: Option<usize>) -> Self {
        self.compression_threshold = bytes;
        self
    }

    /// Most bytes the values of one session may inflate to. Default 64 KiB.
    pub fn max_inflated(mut self, bytes: usize) -> Self {
        self.max_inflated = bytes;
        self
    }

    /// How far in the future an issued-at time may lie (clock drift between nodes). Default
    /// 60 s.
    pub fn clock_skew(mut self, skew: Duration) -> Self {
        self.clock_skew = skew;
        self
    }

    /// A purpose label bound into every cookie (as Rails and ASP.NET Core do), e.g.
    /// `Some("billing".into())`: apps that share a keyring but not a purpose refuse each
    /// other's cookies even under the same cookie name. 1–200 bytes. Default `None`, which
    /// seals exactly as before, so existing cookies keep opening; setting it later logs
    /// everyone out once.
    pub fn purpose(mut self, label: Option<String>) -> Self {
        self.purpose = label;
        self
    }

    /// Whether sealed values carry their type fingerprint (payload schema 2, docs/FORMAT.md
    /// §6.1). Default `true`. Set `false` for the first step of a rolling upgrade from a
    /// release without fingerprints (0.1): nodes then *read* fingerprints but *write* schema 1,
    /// which the old nodes still open, so users bouncing between old and new nodes stay logged
    /// in; once no old node is left, deploy again with the default. While `false`, values
    /// read unchecked, as before fingerprints.
    pub fn value_fingerprints(mut self, on: bool) -> Self {
        self.write_fingerprints = on;
        self
    }

    /// Whether sessions are sealed with their `validated_at` time (payload schema 3,
    /// docs/FORMAT.md §5). Off by default, so cookies stay readable by releases that predate
    /// it; the middleware turns it on when a revalidation hook is configured
    /// ([`SessionMiddlewareBuilder::revalidate`](crate::SessionMiddlewareBuilder::revalidate)),
    /// and only then. Set it on a [`Codec`](crate::Codec) that shares cookies with such a
    /// middleware.
    pub fn seal_validated_at(mut self, on: bool) -> Self {
        self.write_validated_at = on;
        self
    }

    /// The cookie's base name.
    pub fn name(&self) -> &str {
        &self.cookie_name
    }

    /// The absolute lifetime.
    pub fn session_lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The renewal interval.
    pub fn session_renew_interval(&self) -> Duration {
        self.renew_interval
    }

    /// The total budget.
    pub fn session_total_budget(&self) -> usize {
        self.total_budget
    }

    /// Checks every rule a browser or proxy would silently break.
    ///
    /// # Errors
    /// A [`ConfigError`] that says what to change.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |msg: String| Err(ConfigError(msg));
        let name = &self.cookie_name;
        if name.is_empty() || name.len() > 200 || !name.bytes().all(is_token_byte) {
            return err(format!(
                "cookie name {name:?} must be 1-200 RFC 6265 token characters (letters, digits, !#$%&'*+-.^_`|~)"
            ));
        }
        // Browsers match the prefixes without regard to ASCII case (RFC 6265bis): `__host-x`
        // with a Domain would be dropped by every browser, so it is refused here too.
        let host_prefixed = has_prefix(name, HOST_PREFIX);
        let secure_prefixed = has_prefix(name, SECURE_PREFIX);
        if host_prefixed {
            if self.domain.is_some() {
                return err("a __Host- cookie cannot have a Domain; use a __Secure- name to share a session across subdomains".into());
            }
            if self.path != "/" {
                return err("a __Host- cookie must have Path=/".into());
            }
        }
        if (host_prefixed || secure_prefixed) && !self.secure {
            return err("__Host- and __Secure- cookies require Secure; choose another name for plain-http testing".into());
        }
        if self
            .purpose
            .as_ref()
            .is_some_and(|p| p.is_empty() || p.len() > 200)
        {
            return err("the purpose label must be 1-200 bytes".into());
        }
        if self.same_site == SameSite::None && !self.secure {
            return err("SameSite=None requires Secure".into());
        }
        if let Some(domain) = &self.domain {
            let ok = !domain.is_empty()
                && domain.len() <= 253
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !domain.starts_with('.')
                && !domain.ends_with('.');
            if !ok {
                return err(format!(
                    "cookie domain {domain:?} is not a plain host name such as example.com"
                ));
            }
        }
        if !self.path.starts_with('/')
            || self.path.len() > 1024
            || !self
                .path
                .bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b';')
        {
            return err(format!(
                "cookie path {:?} must start with / and hold no spaces, controls or ';'",
                self.path
            ));
        }
        if self.lifetime.is_zero() {
            return err("the session lifetime must be positive".into());
        }
        if let Some(age) = self.max_age {
            if age.is_zero() || age > Duration::from_secs(400 * 86_400) {
                return err(
                    "Max-Age must be between 1 s and 400 days (browsers cap it there)".into(),
                );
            }
        }
        if let Some(idle) = self.idle_timeout {
            if self.renew_interval.is_zero() || self.renew_interval >= idle {
                return err(
                    "the renewal interval must be positive and shorter than the idle timeout"
                        .into(),
                );
            }
        }
        if self.cookie_budget > 8192 {
            return err("the per-cookie budget cannot exceed 8192 bytes (browsers keep 4096 of name and value)".into());
        }
        // The smallest possible session (no entries) must fit in one cookie and in the total.
        let min_envelope = envelope::overhead(Algorithm::Xaes256Gcm)
            .max(envelope::overhead(Algorithm::XChaCha20Poly1305))
            + MIN_PAYLOAD;
        let attrs = 16
            + self.domain.as_ref().map_or(0, |d| d.len() + 9)
            + self.path.len()
            + 8
            + 9
            + 17
            + 20;
        let min_line = name.len() + 4 + armor::encoded_len(min_envelope) + attrs;
        if self.cookie_budget < min_line {
            return err(format!(
                "the per-cookie budget {} is below the {min_line} bytes an empty session needs",
                self.cookie_budget
            ));
        }
        let min_total = name.len() + 4 + armor::encoded_len(min_envelope);
        if self.total_budget < min_total {
            return err(format!(
                "the total budget {} is below the {min_total} bytes an empty session needs",
                self.total_budget
            ));
        }
        if self.max_inflated == 0 {
            return err("the inflation cap must be positive".into());
        }
        Ok(())
    }
}

/// The largest encoding of an empty payload (schema, id, three varint u64 times, no entries).
const MIN_PAYLOAD: usize = 1 + 16 + 3 * 10 + 1;

/// The cookie name prefixes browsers enforce (RFC 6265bis §4.1.3), lowercase.
const HOST_PREFIX: &str = "__host-";
const SECURE_PREFIX: &str = "__secure-";

/// Whether `name` starts with `prefix` (given in lowercase), ignoring ASCII case as browsers
/// do: `__HOST-x` and `__host-x` are `__Host-` cookies.
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// RFC 6265 `token` (RFC 2616 tchar).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_secure() {
        let c = SessionConfig::new();
        c.validate().unwrap();
        assert!(c.secure && c.http_only && c.same_site == SameSite::Lax);
        assert!(c.cookie_name.starts_with("__Host-"));
    }

    #[test]
    fn unsafe_or_impossible_combinations_are_refused() {
        let bad = [
            SessionConfig::new().cookie_domain(Some("example.com".into())),
            SessionConfig::new().cookie_path("/app"),
            SessionConfig::new().cookie_secure(false),
            SessionConfig::new()
                .cookie_name("__Secure-s")
                .cookie_secure(false),
            SessionConfig::new()
                .cookie_name("s")
                .cookie_secure(false)
                .cookie_same_site(SameSite::None),
            SessionConfig::new().cookie_name("bad name"),
            SessionConfig::new().cookie_name(""),
            SessionConfig::new()
                .cookie_name("s")
                .cookie_domain(Some("evil.com; x".into())),
            SessionConfig::new().cookie_budget(100),
            SessionConfig::new().total_budget(50),
            SessionConfig::new().lifetime(Duration::ZERO),
            SessionConfig::new().renew_interval(Duration::from_secs(3 * 3600)),
            SessionConfig::new().persistent(Duration::from_secs(401 * 86_400)),
            SessionConfig::new().purpose(Some(String::new())),
            SessionConfig::new().purpose(Some("p".repeat(201))),
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        SessionConfig::new()
            .cookie_name("__Secure-s")
            .cookie_domain(Some("example.com".into()))
            .validate()
            .unwrap();
        SessionConfig::new()
            .cookie_name("s")
            .cookie_secure(false)
            .validate()
            .unwrap();
    }

    /// Issue 9 A4: every ASCII-case spelling of `__Host-` with a Domain, another Path or
    /// without Secure is refused, and a prefixed name never drops Secure.
    #[test]
    fn a4_host_prefix_is_matched_without_regard_to_case() {
        for prefix in ["__Host-", "__host-", "__HOST-", "__hOsT-", "__HoSt-"] {
            let name = format!("{prefix}s");
            let bad = [
                SessionConfig::new()
                    .cookie_name(&name)
                    .cookie_domain(Some("example.com".into())),
                SessionConfig::new().cookie_name(&name).cookie_path("/app"),
                SessionConfig::new().cookie_name(&name).cookie_secure(false),
            ];
            for c in bad {
                assert!(c.validate().is_err(), "{c:?}");
            }
            SessionConfig::new().cookie_name(&name).validate().unwrap();
        }
    }

    /// Issue 9 A4: every ASCII-case spelling of `__Secure-` without Secure is refused.
    #[test]
    fn a4_secure_prefix_is_matched_without_regard_to_case() {
        for prefix in ["__Secure-", "__secure-", "__SECURE-", "__sEcUrE-"] {
            let name = format!("{prefix}s");
            let c = SessionConfig::new().cookie_name(&name).cookie_secure(false);
            assert!(c.validate().is_err(), "{c:?}");
            SessionConfig::new()
                .cookie_name(&name)
                .cookie_domain(Some("example.com".into()))
                .cookie_path("/app")
                .validate()
                .unwrap();
        }
        // Near misses are ordinary names: plain-http testing stays possible with them.
        for name in [
            "_Host-s",
            "__Host_s",
            "__Hostx-s",
            "Host-s",
            "__Secures",
            "x__Secure-s",
        ] {
            SessionConfig::new()
                .cookie_name(name)
                .cookie_secure(false)
                .cookie_domain(Some("example.com".into()))
                .validate()
                .unwrap();
        }
    }
}
