//! [`RedisRevocation`]: the Redis side of the revocation list.
//!
//! # Data model
//! Two sorted sets and one channel under a prefix (default `sealed-session:revocation`):
//! - `<prefix>:sessions`: member = the session id in hex, score = the Unix second after which
//!   the entry is useless (the session's sealed expiry plus the clock skew allowance);
//! - `<prefix>:users`: member = the hex of the user key's postcard bytes, score = the cutoff
//!   (sessions of that user issued at or before it are refused);
//! - `<prefix>:events`: every addition is published as `s <hex> <score>` or `u <hex> <score>`.
//!
//! A sorted set rather than one key per id with `EX`: the full resync is one
//! `ZRANGEBYSCORE now +inf` that reads exactly the live entries (per-id keys would need a
//! `SCAN` over the whole keyspace of a Redis that fleets share with other data), and the
//! trim is one `ZREMRANGEBYSCORE -inf now`, run on every write and every resync, so the sets
//! never hold more than the live revoked sessions. `ZADD GT` keeps the later score when two
//! nodes race (Redis ≥ 6.2).
//!
//! # Threads
//! A *reader* thread subscribes to the channel, then loads a full copy (so nothing published
//! in between is missed), applies every message as it arrives, and loads a full copy again
//! every `resync_interval` and after every reconnection. A *writer* thread sends the queued
//! revocations (pipelined `ZADD` + `PUBLISH`), keeping each one queued until Redis
//! acknowledged it, so a revocation made while Redis is unreachable lands when it comes back.
//! Neither thread is ever waited on by a request.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use redis::{Client, Connection, RedisResult};
use serde::Serialize;

use super::{IdKey, Mirror, Revoked, Tables, id_key};
use crate::error::{ConfigError, SessionInsertError};
use crate::keyring::unix_seconds;
use crate::state::SessionState;

/// What a node that never loaded the list does with a session (Redis unreachable since the
/// node started).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum NoMirrorPolicy {
    /// Serve it (the default): availability first, as with any stateless session; a revoked
    /// session may pass until the first load.
    #[default]
    Serve,
    /// Refuse every session until the first load: nobody is logged in on this node meanwhile.
    Refuse,
}

/// Settings of a [`RedisRevocation`].
#[derive(Debug, Clone)]
#[must_use]
pub struct RedisRevocationOptions {
    prefix: String,
    resync_interval: Duration,
    io_timeout: Duration,
    user_key_entry: Option<String>,
    no_mirror: NoMirrorPolicy,
    max_pending: usize,
}

impl Default for RedisRevocationOptions {
    fn default() -> Self {
        RedisRevocationOptions {
            prefix: "sealed-session:revocation".to_owned(),
            resync_interval: Duration::from_secs(30),
            io_timeout: Duration::from_secs(1),
            user_key_entry: None,
            no_mirror: NoMirrorPolicy::Serve,
            max_pending: 100_000,
        }
    }
}

impl RedisRevocationOptions {
    /// The defaults: prefix `sealed-session:revocation`, full resync every 30 s, 1 s network
    /// timeouts, no user revocation, [`NoMirrorPolicy::Serve`], 100,000 queued revocations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Prefix of the two sorted sets and the channel; give each app (or each environment
    /// sharing one Redis) its own.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How often the whole list is loaded again, catching anything pub/sub missed (it does not
    /// replay messages sent while a node was disconnected; the reload on reconnection does).
    pub fn resync_interval(mut self, interval: Duration) -> Self {
        self.resync_interval = interval;
        self
    }

    /// Connect, read and write timeout of every Redis call (never on the request path).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// The session entry that holds the user key (as the app inserted it, e.g. `"user"`):
    /// enables [`RedisRevocation::revoke_user`]. Without it only session ids are checked.
    pub fn user_key_entry(mut self, entry: impl Into<String>) -> Self {
        self.user_key_entry = Some(entry.into());
        self
    }

    /// See [`NoMirrorPolicy`].
    pub fn no_mirror_policy(mut self, policy: NoMirrorPolicy) -> Self {
        self.no_mirror = policy;
        self
    }

    /// Most revocations waiting for Redis; past it the oldest are dropped from the queue (not
    /// from this node's mirror) and an error is logged.
    pub fn max_pending(mut self, entries: usize) -> Self {
        self.max_pending = entries;
        self
    }
}

/// A fleet-wide revocation list in Redis, mirrored in memory (feature `redis`). Build one per
/// process, pass it to [`SessionMiddlewareBuilder::revocation`](crate::SessionMiddlewareBuilder::revocation);
/// clones share the mirror and the threads, which stop when the last clone is dropped.
///
/// With it, [`Session::purge`](crate::Session::purge) revokes the purged session's id on
/// every node, and [`RedisRevocation::revoke_user`] ends all of a user's sessions.
///
/// # Examples
/// ```no_run
/// use std::time::SystemTime;
///
/// use actix_web::{App, HttpResponse, web};
/// use sealed_session::{RedisRevocation, RedisRevocationOptions, Session, SessionMiddleware};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The session entry "user" holds the user key (as `/login` inserted it).
/// let list = RedisRevocation::connect(
///     "redis://127.0.0.1:6379/",
///     RedisRevocationOptions::new().user_key_entry("user"),
/// )?;
/// let sessions = SessionMiddleware::builder_from_file("/etc/app/keyring.json")?
///     .revocation(list.clone())
///     .build()?;
///
/// // `session.purge()` now revokes the session on every node; this ends all of a user's.
/// async fn logout_everywhere(session: Session, list: web::Data<RedisRevocation>) -> HttpResponse {
///     let Ok(Some(user)) = session.get::<String>("user") else {
///         return HttpResponse::Unauthorized().finish();
///     };
///     if list.revoke_user(&user, SystemTime::now()).is_err() {
///         return HttpResponse::InternalServerError().finish();
///     }
///     session.purge();
///     HttpResponse::Ok().finish()
/// }
///
/// let _app = App::new()
///     .app_data(web::Data::new(list))
///     .wrap(sessions)
///     .route("/logout-everywhere", web::post().to(logout_everywhere));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisRevocation {
    handle: Arc<Handle>,
}

/// Stops the threads when the last [`RedisRevocation`] clone goes.
struct Handle {
    core: Arc<Core>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.core.stop.store(true, Ordering::Release);
        self.core.wake.notify_all();
    }
}

struct Core {
    client: Client,
    options: RedisRevocationOptions,
    sessions_key: String,
    users_key: String,
    channel: String,
    mirror: Mirror,
    queue: Mutex<Pending>,
    wake: Condvar,
    stop: AtomicBool,
    /// Redis is failing; set by the first failure of an outage, cleared by a full load.
    down: AtomicBool,
    /// Seconds added to a session's expiry (clock skew between nodes).
    slack: AtomicU64,
    /// Seconds a user cutoff is kept: the longest session lifetime plus the skew.
    horizon: AtomicU64,
    loads: AtomicU64,
    dropped: AtomicU64,
    /// The queue overflowed during this outage and it was logged.
    drop_logged: AtomicBool,
}

#[derive(Default)]
struct Pending {
    entries: VecDeque<(u64, Entry)>,
    next_seq: u64,
}

#[derive(Clone)]
enum Entry {
    Session([u8; 16], u64),
    User(Vec<u8>, u64),
}

/// A snapshot of a [`RedisRevocation`]'s state, for metrics and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationStats {
    /// Revoked session ids in this node's mirror.
    pub sessions: usize,
    /// Revoked users in this node's mirror.
    pub users: usize,
    /// Heap bytes of the mirror's tables (hash tables and user keys).
    pub mirror_bytes: usize,
    /// Revocations waiting to reach Redis.
    pub pending: usize,
    /// Revocations dropped from a full queue (they stayed in this node's mirror).
    pub dropped: u64,
    /// Full loads of the list so far.
    pub loads: u64,
    /// Whether the last Redis call succeeded.
    pub connected: bool,
}

impl RedisRevocation {
    /// Starts the background threads for the Redis at `url` (`redis://[user:pass@]host:port/db`).
    /// Redis need not be up: the node serves meanwhile (see [`NoMirrorPolicy`]) and logs one
    /// error per outage.
    ///
    /// # Errors
    /// The URL is invalid, a timeout or the resync interval is zero, or a thread could not be
    /// started.
    pub fn connect(url: &str, options: RedisRevocationOptions) -> Result<Self, ConfigError> {
        let client =
            Client::open(url).map_err(|e| ConfigError(format!("invalid Redis URL: {e}")))?;
        if options.io_timeout.is_zero() || options.resync_interval.is_zero() {
            return Err(ConfigError(
                "the Redis timeout and resync interval must be positive".into(),
            ));
        }
        let list = Self::unstarted(client, options);
        for (name, body) in [
            ("sealed-session-revocation-reader", reader as fn(&Core)),
            ("sealed-session-revocation-writer", writer as fn(&Core)),
        ] {
            let core = Arc::clone(&list.handle.core);
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || body(&core))
                .map_err(|e| ConfigError(format!("cannot start {name}: {e}")))?;
        }
        Ok(list)
    }

    /// A list that never connects (no threads): its mirror holds this process's own
    /// revocations only, which stay queued. For benchmarks and instruction counts, where the
    /// threads' retries would be noise; not for production.
    #[doc(hidden)]
    pub fn offline(options: RedisRevocationOptions) -> Self {
        let client = Client::open("redis://127.0.0.1:1/");
        match client {
            Ok(client) => Self::unstarted(client, options),
            // The URL is a constant that parses.
            Err(_) => unreachable!("constant Redis URL"),
        }
    }

    fn unstarted(client: Client, options: RedisRevocationOptions) -> Self {
        let prefix = &options.prefix;
        let core = Arc::new(Core {
            client,
            sessions_key: format!("{prefix}:sessions"),
            users_key: format!("{prefix}:users"),
            channel: format!("{prefix}:events"),
            options,
            mirror: Mirror::new(),
            queue: Mutex::default(),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            slack: AtomicU64::new(60),
            horizon: AtomicU64::new(24 * 3600 + 60),
            loads: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            drop_logged: AtomicBool::new(false),
        });
        RedisRevocation {
            handle: Arc::new(Handle { core }),
        }
    }

    /// Revokes one session on every node until `expires_at` (its sealed expiry: later the
    /// session is dead anyway). Takes effect on this node at once, elsewhere when the message
    /// arrives (or at the next load after an outage). Holding only the id (an admin tool),
    /// pass `now + lifetime`: the longest it can still live.
    pub fn revoke_session(&self, id: [u8; 16], expires_at: SystemTime) {
        let core = &self.handle.core;
        let until = unix_seconds(expires_at).saturating_add(core.slack.load(Ordering::Relaxed));
        core.mirror.add_session(id, until);
        core.enqueue(Entry::Session(id, until));
    }

    /// Revokes every session of the user whose key (the value of the configured
    /// [`user_key_entry`](RedisRevocationOptions::user_key_entry), of the type the app
    /// inserted) is `key`, issued at or before `now`. A session issued in the same second is
    /// refused too: a login right after may need a second attempt a second later.
    ///
    /// # Errors
    /// `key` cannot be serialized by postcard.
    pub fn revoke_user<K: Serialize + ?Sized>(
        &self,
        key: &K,
        now: SystemTime,
    ) -> Result<(), SessionInsertError> {
        let core = &self.handle.core;
        let bytes = postcard::to_allocvec(key).map_err(|_| SessionInsertError {
            key: core.options.user_key_entry.clone().unwrap_or_default(),
        })?;
        let cutoff = unix_seconds(now);
        core.mirror.add_user(&bytes, cutoff);
        core.enqueue(Entry::User(bytes, cutoff));
        Ok(())
    }

    /// Whether this node loaded the whole list at least once.
    pub fn is_synced(&self) -> bool {
        self.handle.core.mirror.synced()
    }

    /// Sizes and health, for metrics.
    pub fn stats(&self) -> RevocationStats {
        let core = &self.handle.core;
        let (sessions, users, mirror_bytes) = core.mirror.sizes();
        RevocationStats {
            sessions,
            users,
            mirror_bytes,
            pending: core.lock_queue().entries.len(),
            dropped: core.dropped.load(Ordering::Relaxed),
            loads: core.loads.load(Ordering::Relaxed),
            connected: !core.down.load(Ordering::Relaxed),
        }
    }

    /// Whether this node refuses `state`: its id or its user is revoked in the local mirror,
    /// or no mirror was ever loaded under [`NoMirrorPolicy::Refuse`]. Local only, never a
    /// network call: the check the middleware makes after opening a session.
    pub fn is_revoked(&self, state: &SessionState) -> bool {
        self.check(state).is_some()
    }

    /// The request-path check: local only.
    pub(crate) fn check(&self, state: &SessionState) -> Option<Revoked> {
        let core = &self.handle.core;
        if core.options.no_mirror == NoMirrorPolicy::Refuse && !core.mirror.synced() {
            return Some(Revoked::Unavailable);
        }
        core.mirror
            .check(state, core.options.user_key_entry.as_deref())
    }

    /// Called by the middleware builder: user cutoffs are kept for the longest lifetime of
    /// any middleware using this list, and session entries for the clock skew past expiry.
    pub(crate) fn attach(&self, lifetime: Duration, skew: Duration) {
        let core = &self.handle.core;
        let skew = skew.as_secs();
        core.slack.fetch_max(skew, Ordering::Relaxed);
        core.horizon
            .fetch_max(lifetime.as_secs().saturating_add(skew), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for RedisRevocation {
    /// The URL may hold a password: never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRevocation")
            .field("prefix", &self.handle.core.options.prefix)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Core {
    fn lock_queue(&self) -> MutexGuard<'_, Pending> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, entry: Entry) {
        let mut queue = self.lock_queue();
        if queue.entries.len() >= self.options.max_pending.max(1) {
            queue.entries.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if !self.drop_logged.swap(true, Ordering::Relaxed) {
                tracing::error!(
                    prefix = %self.options.prefix,
                    max_pending = self.options.max_pending,
                    "revocation queue full while Redis is unreachable: the oldest revocation will not reach the other nodes"
                );
            }
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.entries.push_back((seq, entry));
        drop(queue);
        self.wake.notify_all();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn now(&self) -> u64 {
        unix_seconds(SystemTime::now())
    }

    fn horizon(&self) -> u64 {
        self.horizon.load(Ordering::Relaxed)
    }

    /// Logs once per outage, at error; every failure at debug.
    fn failed(&self, what: &str, err: &redis::RedisError) {
        tracing::debug!(error = %err, what, "revocation list: Redis call failed");
        if !self.down.swap(true, Ordering::AcqRel) {
            let (sessions, users, _) = self.mirror.sizes();
            tracing::error!(
                prefix = %self.options.prefix,
                error = %err,
                what,
                sessions,
                users,
                synced = self.mirror.synced(),
                "revocation list: Redis unreachable; serving with the last mirror until it is back"
            );
        }
    }

    fn connect(&self, read_timeout: Duration) -> RedisResult<Connection> {
        let timeout = self.options.io_timeout;
        let con = self.client.get_connection_with_timeout(timeout)?;
        con.set_read_timeout(Some(read_timeout))?;
        con.set_write_timeout(Some(timeout))?;
        Ok(con)
    }

    /// Sleeps up to `pause`, waking early on stop.
    fn pause(&self, pause: Duration) {
        let queue = self.lock_queue();
        if !self.stopped() {
            let _ = self.wake.wait_timeout(queue, pause);
        }
    }

    /// Loads the whole list, adds what this node still has to send, and swaps the mirror.
    fn load(&self, con: &mut Connection) -> RedisResult<()> {
        let now = self.now();
        let floor = now.saturating_sub(self.horizon());
        let (sessions, users): (Scored, Scored) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.sessions_key)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&self.users_key)
            .arg("-inf")
            .arg(format!("({floor}"))
            .ignore()
            .cmd("ZRANGEBYSCORE")
            .arg(&self.sessions_key)
            .arg(format!("({now}"))
            .arg("+inf")
            .arg("WITHSCORES")
            .cmd("ZRANGEBYSCORE")
            .arg(&self.users_key)
            .arg(floor)
            .arg("+inf")
            .arg("WITHSCORES")
            .query(con)?;
        let mut fresh = Tables::default();
        fresh.sessions.reserve(sessions.len());
        for (member, score) in &sessions {
            if let Some(id) = parse_id(member) {
                fresh.sessions.insert(id_key(id), score_secs(*score));
            }
        }
        for (member, score) in &users {
            if let Some(key) = unhex(member) {
                fresh.users.insert(key.into(), score_secs(*score));
            }
        }
        // What this node knows and Redis does not: queued revocations not sent yet (they
        // are in the queue already), or a Redis that restarted empty: send those again.
        let missing = self.mirror.merge(fresh, now, self.horizon());
        let queued: std::collections::HashSet<IdKey> = self
            .lock_queue()
            .entries
            .iter()
            .filter_map(|(_, e)| match e {
                Entry::Session(id, _) => Some(id_key(*id)),
                Entry::User(..) => None,
            })
            .collect();
        let resend: Vec<Entry> = missing
            .sessions
            .into_iter()
            .filter(|(id, _)| !queued.contains(&id_key(*id)))
            .map(|(id, until)| Entry::Session(id, until))
            .chain(missing.users.into_iter().map(|(k, c)| Entry::User(k, c)))
            .collect();
        if !resend.is_empty() {
            tracing::info!(
                prefix = %self.options.prefix,
                entries = resend.len(),
                "revocation list: Redis lacks revocations this node holds (restarted without persistence?); sending them again"
            );
            for entry in resend {
                self.enqueue(entry);
            }
        }
        self.loads.fetch_add(1, Ordering::Relaxed);
        if self.down.swap(false, Ordering::AcqRel) {
            self.drop_logged.store(false, Ordering::Relaxed);
            tracing::info!(
                prefix = %self.options.prefix,
                sessions = sessions.len(),
                users = users.len(),
                "revocation list: Redis reachable again; mirror reloaded"
            );
        }
        Ok(())
    }

    /// Applies one published message (`s <hex id> <secs>` or `u <hex key> <secs>`); anything
    /// else is ignored.
    fn apply(&self, payload: &[u8]) {
        let Ok(text) = std::str::from_utf8(payload) else {
            return;
        };
        let mut parts = text.split(' ');
        let (Some(kind), Some(member), Some(secs), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return;
        };
        let Ok(secs) = secs.parse::<u64>() else {
            return;
        };
        match kind {
            "s" => {
                if let Some(id) = parse_id(member) {
                    self.mirror.add_session(id, secs);
                }
            }
            "u" => {
                if let Some(key) = unhex(member) {
                    self.mirror.add_user(&key, secs);
                }
            }
            _ => {}
        }
    }

    /// One connected stretch of the reader: subscribe, load, then follow the channel.
    fn follow(&self) -> Result<(), (&'static str, redis::RedisError)> {
        let poll = Duration::from_millis(200);
        let mut sub = self.connect(poll).map_err(|e| ("connect", e))?;
        let mut cmd = self
            .connect(self.options.io_timeout)
            .map_err(|e| ("connect", e))?;
        let mut pubsub = sub.as_pubsub();
        pubsub
            .subscribe(&self.channel)
            .map_err(|e| ("subscribe", e))?;
        self.load(&mut cmd).map_err(|e| ("load", e))?;
        let mut next_load = Instant::now() + self.options.resync_interval;
        while !self.stopped() {
            match pubsub.get_message() {
                Ok(msg) => self.apply(msg.get_payload_bytes()),
                Err(e) if e.is_timeout() => {}
                Err(e) => return Err(("receive", e)),
            }
            if Instant::now() >= next_load {
                self.load(&mut cmd).map_err(|e| ("load", e))?;
                next_load = Instant::now() + self.options.resync_interval;
            }
        }
        Ok(())
    }

    /// Sends the oldest queued revocations; they leave the queue once Redis acknowledged them.
    fn flush(&self, con: &mut Connection) -> RedisResult<()> {
        let batch: Vec<(u64, Entry)> = self
            .lock_queue()
            .entries
            .iter()
            .take(512)
            .cloned()
            .collect();
        let Some((last, _)) = batch.last() else {
            return Ok(());
        };
        let now = self.now();
        let mut pipe = redis::pipe();
        for (_, entry) in &batch {
            let (key, kind, member, score) = match entry {
                Entry::Session(id, until) => (&self.sessions_key, 's', hex(id), *until),
                Entry::User(key, cutoff) => (&self.users_key, 'u', hex(key), *cutoff),
            };
            pipe.cmd("ZADD")
                .arg(key)
                .arg("GT")
                .arg(score)
                .arg(&member)
                .ignore()
                .cmd("PUBLISH")
                .arg(&self.channel)
                .arg(format!("{kind} {member} {score}"))
                .ignore();
        }
        pipe.cmd("ZREMRANGEBYSCORE")
            .arg(&self.sessions_key)
            .arg("-inf")
            .arg(now)
            .ignore();
        pipe.query::<()>(con)?;
        let last = *last;
        self.lock_queue().entries.retain(|(seq, _)| *seq > last);
        Ok(())
    }
}

/// A sorted set read `WITHSCORES`.
type Scored = Vec<(String, f64)>;

fn reader(core: &Core) {
    let mut backoff = Duration::from_millis(50);
    while !core.stopped() {
        match core.follow() {
            Ok(()) => return,
            Err((what, err)) => core.failed(what, &err),
        }
        // Without Redis the mirror still forgets what expired.
        core.mirror.prune(core.now(), core.horizon());
        core.pause(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(1));
        if !core.down.load(Ordering::Relaxed) {
            backoff = Duration::from_millis(50);
        }
    }
}

fn writer(core: &Core) {
    let mut con: Option<Connection> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        {
            let queue = core.lock_queue();
            if queue.entries.is_empty() {
                if core.stopped() {
                    return;
                }
                let _ = core.wake.wait_timeout(queue, Duration::from_millis(500));
                continue;
            }
        }
        let result = match con.as_mut() {
            Some(c) => core.flush(c).map_err(|e| ("write", e)),
            None => match core.connect(core.options.io_timeout) {
                Ok(c) => core.flush(con.insert(c)).map_err(|e| ("write", e)),
                Err(e) => Err(("connect", e)),
            },
        };
        match result {
            Ok(()) => backoff = Duration::from_millis(50),
            Err((what, err)) => {
                con = None;
                core.failed(what, &err);
                if core.stopped() {
                    // Shutting down with Redis away: the rest of the queue is lost.
                    return;
                }
                core.pause(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Scores are whole seconds; anything else (a foreign writer) is clamped.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn score_secs(score: f64) -> u64 {
    if score.is_finite() && score > 0.0 {
        score as u64
    } else {
        0
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || text.len() > 2048 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_id(text: &str) -> Option<[u8; 16]> {
    unhex(text)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        let id = [0xab; 16];
        assert_eq!(parse_id(&hex(&id)), Some(id));
        assert_eq!(parse_id("abc"), None);
        assert_eq!(parse_id("zz"), None);
        assert_eq!(parse_id(&hex(&[1; 15])), None);
        assert_eq!(unhex(""), Some(Vec::new()));
        assert_eq!(score_secs(f64::NAN), 0);
        assert_eq!(score_secs(-5.0), 0);
        assert_eq!(score_secs(1_764_720_000.0), 1_764_720_000);
    }

    #[test]
    fn messages_update_the_mirror_and_garbage_is_ignored() {
        let core = RedisRevocation::connect("redis://127.0.0.1:1/", RedisRevocationOptions::new())
            .unwrap();
        let c = &core.handle.core;
        c.apply(format!("s {} 4000000000", hex(&[7; 16])).as_bytes());
        c.apply(format!("u {} 1000", hex(b"\x05alice")).as_bytes());
        for junk in [
            "", "s", "s 00 1", "x aa 1", "s zz 1", "u aa", "u aa 1 2", "s aa -1",
        ] {
            c.apply(junk.as_bytes());
        }
        c.apply(&[0xff, 0xfe]);
        assert_eq!(c.mirror.sizes().0, 1);
        assert_eq!(c.mirror.sizes().1, 1);
        // Nothing listens on port 1: the threads fail and the stats say so.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!core.stats().connected);
        assert!(!core.is_synced());
    }
}
