//! The demo's contract, shared by `examples/demo.rs` (actix-web) and `examples/axum_demo.rs`
//! (axum) so the two cannot drift: the environment, the session settings, the banner and what
//! every route does. Each demo only maps these replies onto its framework (the `Session` type
//! is the same in both). The cluster and browser tests drive either demo, or both at once.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `PORT` | port on 127.0.0.1 | 8080 |
//! | `SESSION_KEYRING` | keyring file (re-read when it changes) | an ephemeral development keyring, with a warning |
//! | `SESSION_RELOAD_SECS` | how often the keyring file is checked | 5 |
//! | `COOKIE_DOMAIN` | parent domain shared by subdomains | none (host-only) |
//! | `COOKIE_SECURE` | `0` drops Secure for plain-http local testing | on |
//! | `NODE_NAME` | sent back as `X-Node` | `demo` |
//! | `SESSION_MAX_BYTES` | total cookie budget (bytes of `Cookie` header the session may take) | 6144 |
//! | `REDIS_URL` | Redis of the fleet-wide revocation list (needs `--features redis`) | none: no revocation list |
//!
//! Routes: `GET /login?user=NAME`, `GET /whoami`, `GET /grow?bytes=N`, `GET /logout`, `GET /`,
//! `GET /logout-everywhere` (every session of the current user, on every node; needs
//! `REDIS_URL`, else 501). With `REDIS_URL`, `/logout` also revokes the session's id on every
//! node, so a copy of the cookie stops working too.
//!
//! The default budget stays under curl's 8190-byte cookie cap and nginx's stock 8 KB request
//! line, so the demo works with `curl -c jar -b jar` and behind a stock nginx request side;
//! the real-parts tests pass a larger `SESSION_MAX_BYTES` to exercise several chunks.

use std::time::{Duration, SystemTime};

use rand::RngExt;
use sealed_session::{Algorithm, Keyring, KeyringError, Session, SessionBuilder};
use serde::Deserialize;

/// The most a single `/grow` may add: far above any budget, small enough to allocate.
const MAX_GROW: usize = 1 << 20;
/// Under curl's 8190-byte cookie cap (FACTS.md) with room for the app's other cookies.
const DEFAULT_MAX_BYTES: usize = 6144;
/// curl sends at most this many bytes of cookies from its jar, and nginx's stock request line
/// is about as long: past it the page warns.
const CURL_COOKIE_CAP: usize = 8190;

/// Logs to stderr, `RUST_LOG` or info by default.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sealed_session=info".into()),
        )
        .init();
}

/// The demo's environment, read once at start.
pub struct Settings {
    pub port: u16,
    pub node: String,
    secure: bool,
    domain: Option<String>,
    max_bytes: usize,
    reload: Duration,
    /// The cookie name: `__Host-` needs Secure and no Domain, `__Secure-` needs Secure, plain
    /// http gets a plain name.
    name: &'static str,
}

impl Settings {
    pub fn from_env() -> Self {
        let secure = std::env::var("COOKIE_SECURE").map_or(true, |v| v != "0");
        let domain = std::env::var("COOKIE_DOMAIN")
            .ok()
            .filter(|d| !d.is_empty());
        let name = match (secure, &domain) {
            (true, None) => "__Host-session",
            (true, Some(_)) => "__Secure-session",
            (false, _) => "session",
        };
        Settings {
            port: env_or("PORT", 8080),
            node: std::env::var("NODE_NAME").unwrap_or_else(|_| "demo".to_owned()),
            secure,
            domain,
            max_bytes: env_or("SESSION_MAX_BYTES", DEFAULT_MAX_BYTES),
            reload: Duration::from_secs(env_or("SESSION_RELOAD_SECS", 5)),
            name,
        }
    }

    /// The session builder of either framework (`fixed` and `from_file` are its
    /// `builder`/`builder_from_file`), configured from the environment.
    pub fn sessions<T>(
        &self,
        fixed: impl FnOnce(Keyring) -> SessionBuilder<T>,
        from_file: impl FnOnce(&str) -> Result<SessionBuilder<T>, KeyringError>,
        revocation: &Revocation,
    ) -> std::io::Result<SessionBuilder<T>> {
        let builder = match std::env::var("SESSION_KEYRING") {
            Ok(path) if !path.is_empty() => from_file(&path)
                .map_err(|e| std::io::Error::other(format!("SESSION_KEYRING={path}: {e}")))?
                .reload_interval(self.reload),
            _ => {
                tracing::warn!(
                    "SESSION_KEYRING is not set: using an ephemeral development keyring. Sessions will not survive a restart and no other node can read them; create a shared keyring with `sealed-session keys init --keyring FILE`."
                );
                let ring = Keyring::generate(Algorithm::default(), SystemTime::now())
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                fixed(ring)
            }
        };
        #[cfg(feature = "redis")]
        let builder = match revocation {
            Some(list) => builder.revocation(list.clone()),
            None => builder,
        };
        #[cfg(not(feature = "redis"))]
        let _ = revocation;
        Ok(builder
            .cookie_name(self.name.to_owned())
            .cookie_domain(self.domain.clone())
            .cookie_secure(self.secure)
            .total_budget(self.max_bytes))
    }

    /// Logs the start and prints the URL and the routes.
    pub fn announce(&self, framework: &str) {
        let (port, node, name, max_bytes) = (self.port, &self.node, self.name, self.max_bytes);
        tracing::info!(port, node = %node, cookie = name, max_bytes, framework, "demo listening on 127.0.0.1");
        println!(
            "sealed-session demo on {framework} (node {node}) on http://127.0.0.1:{port}/\n  \
             GET /                   the session, its entries and the cookies received\n  \
             GET /login?user=NAME    log in (new session identity)\n  \
             GET /whoami             the user, or 401\n  \
             GET /grow?bytes=N       add N random characters to the session\n  \
             GET /logout             purge the session (every chunk cookie expired)\n  \
             GET /logout-everywhere  end every session of this user on every node (REDIS_URL)\n\
             cookie {name}, budget {max_bytes} bytes of Cookie header"
        );
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[cfg(feature = "redis")]
pub type Revocation = Option<sealed_session::RedisRevocation>;
#[cfg(not(feature = "redis"))]
pub type Revocation = Option<std::convert::Infallible>;

/// The revocation list when `REDIS_URL` is set (and the demo was built with `--features
/// redis`); the user key is the session's `user` entry, as `/login` stores it. `run` is the
/// command that starts this demo with the feature, for the error message.
pub fn revocation_list(run: &str) -> std::io::Result<Revocation> {
    let url = std::env::var("REDIS_URL").ok().filter(|u| !u.is_empty());
    #[cfg(feature = "redis")]
    if let Some(url) = url {
        let _ = run;
        let options = sealed_session::RedisRevocationOptions::new().user_key_entry("user");
        let list = sealed_session::RedisRevocation::connect(&url, options)
            .map_err(|e| std::io::Error::other(format!("REDIS_URL: {e}")))?;
        tracing::info!("revocation list on Redis enabled (REDIS_URL)");
        return Ok(Some(list));
    }
    #[cfg(not(feature = "redis"))]
    if url.is_some() {
        return Err(std::io::Error::other(format!(
            "REDIS_URL is set but the demo was built without the `redis` feature: run it with `{run}`"
        )));
    }
    Ok(None)
}

/// A route's answer: status and plain-text body.
pub struct Reply {
    pub status: u16,
    pub body: String,
}

fn reply(status: u16, body: impl Into<String>) -> Reply {
    Reply {
        status,
        body: body.into(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    pub user: String,
}

#[derive(Deserialize)]
pub struct GrowQuery {
    pub bytes: usize,
}

/// `/login`: renew (new identity, pre-login entries dropped), then store the user.
pub fn login(session: &Session, user: &str) -> Reply {
    session.clear();
    session.renew();
    match session.insert("user", user) {
        Ok(()) => reply(200, format!("logged in as {user}\n")),
        Err(_) => reply(500, ""),
    }
}

/// `/whoami`: the user, or 401.
pub fn whoami(session: &Session) -> Reply {
    match session.get::<String>("user") {
        Ok(Some(user)) => reply(200, user),
        _ => reply(401, "not logged in\n"),
    }
}

/// `/grow`: appends N random base64url characters (6 bits of entropy each: no compression
/// helps) and answers the new length.
pub fn grow(session: &Session, bytes: usize) -> Reply {
    if bytes > MAX_GROW {
        return reply(400, format!("bytes must be at most {MAX_GROW}\n"));
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let extra: String = (0..bytes)
        .map(|_| char::from(ALPHABET[rng.random_range(0..64)]))
        .collect();
    let mut blob = session
        .get::<String>("blob")
        .ok()
        .flatten()
        .unwrap_or_default();
    blob.push_str(&extra);
    let len = blob.len();
    match session.insert("blob", blob) {
        Ok(()) => reply(200, format!("{len}\n")),
        Err(_) => reply(500, ""),
    }
}

/// `/logout`: purges the session (every chunk expired; with `REDIS_URL` its id is revoked).
pub fn logout(session: &Session) -> Reply {
    session.purge();
    reply(200, "logged out\n")
}

/// `/logout-everywhere`: revokes every session of the current user on every node (issued up to
/// now), then purges this one. Without a revocation list it says so: stateless sessions alone
/// cannot do it.
pub fn logout_everywhere(session: &Session, list: &Revocation) -> Reply {
    let Some(list) = list else {
        return reply(
            501,
            "logout-everywhere needs the revocation list on Redis: start the demo with REDIS_URL (built with --features redis)\n",
        );
    };
    #[cfg(not(feature = "redis"))]
    {
        // Without the feature there is no list: `list` cannot exist here.
        let _ = session;
        match *list {}
    }
    #[cfg(feature = "redis")]
    {
        let Ok(Some(user)) = session.get::<String>("user") else {
            return reply(401, "not logged in\n");
        };
        if list.revoke_user(&user, SystemTime::now()).is_err() {
            return reply(500, "");
        }
        session.purge();
        reply(
            200,
            format!("every session of {user} is logged out, on every node\n"),
        )
    }
}

/// `/`: an HTML page showing the session, the cookies received and their sizes.
pub fn index<'a>(session: &Session, cookie_headers: impl Iterator<Item = &'a [u8]>) -> String {
    let user = session.get::<String>("user").ok().flatten();
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><title>sealed-session demo</title><h1>sealed-session demo</h1>",
    );
    match session.state() {
        Some(state) => {
            let id: String = state.id().iter().map(|b| format!("{b:02x}")).collect();
            html += &format!(
                "<p>Session <code>{id}</code>, user <b>{}</b></p><h2>Entries</h2><ul>",
                escape(user.as_deref().unwrap_or("(none)"))
            );
            for (k, v) in state.entries() {
                html += &format!("<li><code>{}</code>: {} bytes</li>", escape(k), v.len());
            }
            html += "</ul>";
        }
        None => html += "<p>No session. <a href=\"/login?user=alice\">Log in as alice</a></p>",
    }
    html += "<h2>Cookies received</h2><table border=1><tr><th>name</th><th>bytes</th></tr>";
    let mut cookie_bytes = 0;
    for value in cookie_headers {
        cookie_bytes += value.len();
        for pair in value.split(|&b| b == b';') {
            let pair = String::from_utf8_lossy(pair.trim_ascii());
            let (name, val) = pair.split_once('=').unwrap_or((&pair, ""));
            html += &format!(
                "<tr><td><code>{}</code></td><td>{}</td></tr>",
                escape(name),
                val.len()
            );
        }
    }
    html += &format!("</table><p>Cookie header: {cookie_bytes} bytes.</p>");
    if cookie_bytes > CURL_COOKIE_CAP {
        html += &format!(
            "<p><b>Warning:</b> the cookies pass {CURL_COOKIE_CAP} bytes: curl's cookie jar \
             silently stops sending some of them, and a stock nginx (8 KB request line) answers \
             400. See docs/DEPLOY.md.</p>"
        );
    }
    html += "<p><a href=\"/grow?bytes=3000\">grow by 3000</a> · <a href=\"/whoami\">whoami</a> · <a href=\"/logout\">log out</a></p>";
    html
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
