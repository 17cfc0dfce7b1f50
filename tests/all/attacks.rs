//! The attack suite: one named test per hostile input, through the real middleware unless the
//! case is a pure codec property (the exhaustive bit-flip loop and the nonce census use the
//! [`Codec`] directly to stay fast).
//!
//! Unless a test says otherwise, a hostile cookie must give: no panic, an empty session for the
//! handler (`/whoami` answers 401), exactly one DEBUG event from `sealed_session` carrying the
//! failure `category`, the handler's own status (never a 500) and no `Set-Cookie`.
//!
//! Allocation bounds: the crate forbids `unsafe` in every target, so there is no counting
//! global allocator here. What bounds allocation is asserted through the category instead:
//! `chunk.count`, `chunk.too_long`, `chunk.too_many`, `chunk.candidates` and `chunk.total` are
//! returned by `chunk::gather`/`candidates` before any base64 is decoded (their only
//! allocations are a `Vec` of at most 32 slots of at most 4 borrowed slices each), `key.unknown`
//! before any decryption, and `compression` before allocating an inflated value larger than
//! what is left of `max_inflated` (see the bomb tests for why peak RSS is not measured).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::test as actix_test;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::{Rng, RngExt, SeedableRng};
use sealed_session::codec::floor::RawAead;
use sealed_session::keyring::Secret;
use sealed_session::{
    Algorithm, Codec, DecodeError, Key, KeyId, Keyring, Session, SessionConfig,
    SessionMiddlewareBuilder, SessionState, SessionStats,
};
use tracing::Level;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::*;

/// The cookie name of [`builder`].
const NAME: &str = "__Host-s";

// ---------------------------------------------------------------------------------------------
// Log capture
// ---------------------------------------------------------------------------------------------

type Event = (Level, Option<String>);

/// Records `(level, category)` of every event from the `sealed_session` crate.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<Event>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if !meta.target().starts_with("sealed_session") {
            return;
        }
        struct Category(Option<String>);
        impl tracing::field::Visit for Category {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                if field.name() == "category" {
                    self.0 = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "category" && self.0.is_none() {
                    self.0 = Some(format!("{value:?}"));
                }
            }
        }
        let mut category = Category(None);
        event.record(&mut category);
        self.0.lock().unwrap().push((*meta.level(), category.0));
    }
}

impl Logs {
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn debug(category: &str) -> Event {
    (Level::DEBUG, Some(category.to_owned()))
}

// ---------------------------------------------------------------------------------------------
// The app under attack
// ---------------------------------------------------------------------------------------------

/// Routes on top of [`routes`]: `/blob`, `/id`, `/entries`, `/cart`, `/login-keep?user=`
/// (login that keeps the cart on purpose) and `/zeros?bytes=N` (a compressible blob).
fn extra_routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/blob",
        web::get().to(|s: Session| async move {
            let blob = s.get::<String>("blob").ok().flatten().unwrap_or_default();
            HttpResponse::Ok().body(blob)
        }),
    )
    .route(
        "/id",
        web::get().to(|s: Session| async move {
            let id = s.id().map_or("none".to_owned(), |id| hex(&id));
            HttpResponse::Ok().body(id)
        }),
    )
    .route(
        "/entries",
        web::get().to(|s: Session| async move {
            let keys: Vec<String> = s.entries().keys().cloned().collect();
            HttpResponse::Ok().body(keys.join(","))
        }),
    )
    .route(
        "/cart",
        web::get().to(|s: Session| async move {
            s.insert("cart", "apples").unwrap();
            HttpResponse::Ok().finish()
        }),
    )
    .route(
        "/login-keep",
        web::get().to(|s: Session, q: web::Query<UserQuery>| async move {
            let cart = s.get::<String>("cart").ok().flatten();
            s.clear();
            s.renew();
            if let Some(cart) = cart {
                s.insert("cart", cart).unwrap();
            }
            s.insert("user", &q.user).unwrap();
            HttpResponse::Ok().body("ok")
        }),
    )
    .route(
        "/zeros",
        web::get().to(|s: Session, q: web::Query<BytesQuery>| async move {
            s.insert("blob", "a".repeat(q.bytes)).unwrap();
            HttpResponse::Ok().finish()
        }),
    );
}

/// The usual middleware of this suite: default key, 16 KiB total budget (room for 3–4
/// chunks), no compression (so sizes are deterministic).
fn rig(clock: &TestClock) -> SessionMiddlewareBuilder {
    builder(ring(Algorithm::default()), clock)
        .total_budget(16 * 1024)
        .compression_threshold(None)
}

/// The type of a node's app ([`routes`] and [`extra_routes`] as an actix test service), for
/// return positions.
macro_rules! NodeApp {
    () => {
        impl Service<
            actix_http::Request,
            Response = ServiceResponse<impl MessageBody + use<>>,
            Error = actix_web::Error,
        > + use<>
    };
}

/// What the nodes of one test share: the clock, and a recorder of their events installed as
/// this thread's default subscriber while the bench lives (`actix_web::test` runs everything
/// on the test thread).
struct Bench {
    clock: TestClock,
    logs: Logs,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Bench {
    fn new() -> Rc<Bench> {
        let logs = Logs::default();
        let guard =
            tracing::subscriber::set_default(tracing_subscriber::registry().with(logs.clone()));
        Rc::new(Bench {
            clock: TestClock::new(),
            logs,
            _guard: guard,
        })
    }

    /// [`rig`] on this bench's clock.
    fn rig(&self) -> SessionMiddlewareBuilder {
        rig(&self.clock)
    }

    /// A node of the usual middleware that inflates at most `max` bytes per session.
    async fn capped(self: &Rc<Self>, max: usize) -> Target<NodeApp!()> {
        self.node(self.rig().max_inflated(max)).await
    }

    /// [`builder`] for `keyring` on this bench's clock.
    fn builder(&self, keyring: Keyring) -> SessionMiddlewareBuilder {
        builder(keyring, &self.clock)
    }

    /// A node running the middleware `builder` builds.
    async fn node(self: &Rc<Self>, builder: SessionMiddlewareBuilder) -> Target<NodeApp!()> {
        let mw = builder.build().unwrap();
        let stats = mw.stats();
        let app = App::new()
            .wrap(mw)
            .configure(routes)
            .configure(extra_routes);
        Target {
            app: actix_test::init_service(app).await,
            stats,
            bench: Rc::clone(self),
        }
    }
}

/// How most tests start: one node of the usual middleware ([`rig`]) on a bench of its own.
async fn target() -> Target<NodeApp!()> {
    let bench = Bench::new();
    bench.node(bench.rig()).await
}

struct Reply {
    status: u16,
    body: String,
    set_cookie: Vec<String>,
    header_count: usize,
}

/// One node under attack: its app, its counters and the bench its events go to.
struct Target<S> {
    app: S,
    stats: Arc<SessionStats>,
    bench: Rc<Bench>,
}

impl<S, B> Target<S>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// The events recorded since the last call.
    fn events(&self) -> Vec<Event> {
        self.bench.logs.take()
    }

    /// GET `uri` with one `Cookie` header per element of `cookies` (raw bytes).
    async fn send(&self, uri: &str, cookies: &[&[u8]]) -> Reply {
        let mut req = actix_test::TestRequest::get().uri(uri);
        for cookie in cookies {
            req = req.append_header((header::COOKIE, HeaderValue::from_bytes(cookie).unwrap()));
        }
        let res = actix_test::call_service(&self.app, req.to_request()).await;
        let set_cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let status = res.status().as_u16();
        let header_count = res.headers().len();
        let body = actix_test::read_body(res).await;
        Reply {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            set_cookie,
            header_count,
        }
    }

    /// GET `uri` as the browser `jar` ([`get`]): status, body and `Set-Cookie` lines.
    async fn get(&self, jar: &mut Jar, uri: &str) -> (u16, String, Vec<String>) {
        get(&self.app, jar, uri).await
    }

    /// The hostile `cookie` header gives an empty session, one DEBUG event with `category`, no
    /// `Set-Cookie` and the handler's own 401.
    async fn refused(&self, cookie: &[u8], category: &str, ctx: &str) {
        assert!(
            DecodeError::CATEGORIES.contains(&category),
            "{ctx}: {category}"
        );
        self.events();
        let r = self.send("/whoami", &[cookie]).await;
        assert_eq!(r.status, 401, "{ctx}: status (expected {category})");
        assert!(r.set_cookie.is_empty(), "{ctx}: {:?}", r.set_cookie);
        assert_eq!(self.events(), vec![debug(category)], "{ctx}");
    }

    /// Our cookie made of `pieces`, derived from the envelope `original`, is [`Self::refused`]
    /// with the category [`expected_category`] gives; returns that category.
    async fn refused_pieces(&self, pieces: &[String], original: &[u8], ctx: &str) -> &'static str {
        let category = expected_category(pieces, original);
        self.refused(&cookie_of(pieces), category, ctx).await;
        category
    }

    /// Sends the envelope of `like` after `edit`, cut like `like`, and expects `category`.
    async fn tampered_envelope(
        &self,
        like: &[String],
        edit: impl FnOnce(&mut Vec<u8>),
        category: &str,
        ctx: &str,
    ) {
        let mut env = envelope_of(like);
        edit(&mut env);
        self.refused(&cookie_of(&recut(&env, like)), category, ctx)
            .await;
    }

    /// The `cookie` header opens to `user`'s session, with no rejection logged.
    async fn accepted(&self, cookie: &[u8], user: &str, ctx: &str) {
        self.events();
        let r = self.send("/whoami", &[cookie]).await;
        assert_eq!((r.status, r.body.as_str()), (200, user), "{ctx}");
        let rejections: Vec<Event> = self
            .events()
            .into_iter()
            .filter(|e| e.1.is_some())
            .collect();
        assert!(rejections.is_empty(), "{ctx}: {rejections:?}");
    }

    /// The `cookie` header holds no cookie of ours: `/whoami` answers 401 and nothing is
    /// logged.
    async fn ignored(&self, cookie: &[u8], ctx: &str) -> Reply {
        self.events();
        let r = self.send("/whoami", &[cookie]).await;
        assert_eq!(r.status, 401, "{ctx}");
        assert_eq!(self.events(), vec![], "{ctx}");
        r
    }

    /// A fresh browser logged in as `user` holding a blob of `bytes` random characters.
    async fn session(&self, user: &str, bytes: usize) -> Jar {
        let mut jar = Jar::default();
        assert_eq!(
            self.get(&mut jar, &format!("/login?user={user}")).await.0,
            200
        );
        if bytes > 0 {
            let (status, _, _) = self.get(&mut jar, &format!("/set?bytes={bytes}")).await;
            assert_eq!(status, 200, "set {bytes}");
        }
        jar
    }

    /// The armored pieces of a fresh [`Self::session`].
    async fn session_pieces(&self, user: &str, bytes: usize) -> Vec<String> {
        pieces(&values(&self.session(user, bytes).await, NAME))
    }

    /// GET `uri`, a write that cannot be stored, answers an empty 500 with no `Set-Cookie` and
    /// leaves the jar as it was; returns the events logged meanwhile.
    async fn fails_closed(&self, jar: &mut Jar, uri: &str) -> Vec<Event> {
        let before = jar.clone();
        self.events();
        let (status, body, set) = self.get(jar, uri).await;
        assert_eq!((status, body.as_str(), set.len()), (500, "", 0), "{uri}");
        assert_eq!(jar.0, before.0, "{uri}: cookies untouched");
        self.events()
    }

    /// Largest blob (random characters) that still fits in at most `chunks` cookies.
    async fn largest_with(&self, chunks: usize) -> usize {
        let fits = |bytes: usize| async move {
            let mut jar = self.session("alice", 0).await;
            let (status, _, set) = self.get(&mut jar, &format!("/set?bytes={bytes}")).await;
            status == 200 && set.len() <= chunks
        };
        let (mut lo, mut hi) = (0usize, 40_000usize);
        assert!(fits(lo).await && !fits(hi).await);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if fits(mid).await {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Grows a session byte by byte around `boundary` and checks every Set-Cookie line: at
    /// most `budget` bytes, name+value at most 4096, every chunk but the last filled exactly to
    /// the binding limit, and the session round-trips.
    async fn check_lines_around(&self, boundary: usize, budget: usize) {
        for bytes in boundary.saturating_sub(6)..=boundary + 6 {
            let ctx = format!("budget {budget}, {bytes} bytes");
            let mut jar = self.session("alice", 0).await;
            let (status, _, lines) = self.get(&mut jar, &format!("/set?bytes={bytes}")).await;
            assert_eq!(status, 200, "{ctx}");
            for (i, line) in lines.iter().enumerate() {
                let c = cookie::Cookie::parse(line.as_str()).unwrap();
                let name_value = c.name().len() + c.value().len();
                let attrs = line.len() - c.name().len() - 1 - c.value().len();
                assert!(line.len() <= budget, "{ctx}: line {i} is {}", line.len());
                assert!(name_value <= 4096, "{ctx}: name+value {name_value}");
                if i + 1 < lines.len() {
                    // Greedy: full up to whichever limit binds first.
                    let full = (budget - 1 - attrs).min(4096);
                    assert_eq!(name_value, full, "{ctx}: chunk {i} not full");
                }
            }
            assert_eq!(self.get(&mut jar, "/whoami").await.1, "alice", "{ctx}");
            assert_eq!(self.get(&mut jar, "/blob").await.1.len(), bytes, "{ctx}");
            // No rejection (the proxy-size hint is not one).
            let rejections = self.events().into_iter().filter(|e| {
                e.1.as_deref()
                    .is_some_and(|c| c != "proxy.set_cookie_block")
            });
            assert_eq!(rejections.count(), 0, "{ctx}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cookies, pieces and envelopes
// ---------------------------------------------------------------------------------------------

type Pairs = Vec<(String, String)>;

fn chunk_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_owned()
    } else {
        format!("{name}.{i}")
    }
}

fn header_of(pairs: &[(String, String)]) -> Vec<u8> {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
        .into_bytes()
}

/// A session's chunk values in index order.
fn values(jar: &Jar, name: &str) -> Vec<String> {
    (0..)
        .map_while(|i| jar.0.get(&chunk_name(name, i)).cloned())
        .collect()
}

/// The armored pieces (count prefix stripped) in index order.
fn pieces(values: &[String]) -> Vec<String> {
    let mut out = values.to_vec();
    let (count, piece) = out[0].split_once('.').unwrap();
    assert_eq!(count.parse::<usize>().unwrap(), values.len());
    out[0] = piece.to_owned();
    out
}

/// Pairs for `pieces` under `name`, chunk 0 labelled `count_label.`.
fn pairs_of(name: &str, count_label: &str, pieces: &[String]) -> Pairs {
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let value = if i == 0 {
                format!("{count_label}.{p}")
            } else {
                p.clone()
            };
            (chunk_name(name, i), value)
        })
        .collect()
}

fn pairs_for(name: &str, pieces: &[String]) -> Pairs {
    pairs_of(name, &pieces.len().to_string(), pieces)
}

fn envelope_of(pieces: &[String]) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(pieces.concat()).unwrap()
}

/// Armors `envelope` and cuts it like `like` (every piece but the last keeps its length).
fn recut(envelope: &[u8], like: &[String]) -> Vec<String> {
    let armored = URL_SAFE_NO_PAD.encode(envelope);
    let mut rest = armored.as_str();
    let mut out = Vec::new();
    for (i, p) in like.iter().enumerate() {
        if i + 1 == like.len() {
            out.push(rest.to_owned());
        } else {
            let (a, b) = rest.split_at(p.len().min(rest.len()));
            out.push(a.to_owned());
            rest = b;
        }
    }
    out
}

/// The category FORMAT.md §3–4 prescribe for armored `pieces` that are not `original` (the
/// envelope they were derived from), assuming the payload itself was not forged: a decoder
/// that reaches the AEAD must fail the tag.
fn expected_category(pieces: &[String], original: &[u8]) -> &'static str {
    let Ok(env) = URL_SAFE_NO_PAD.decode(pieces.concat()) else {
        return "armor";
    };
    if env.len() < 6 {
        return "envelope.too_short";
    }
    if env[0] != 1 {
        return "envelope.unknown_version";
    }
    let nonce_len = match env[1] {
        1 | 3 => 24,
        2 => 12,
        _ => return "envelope.unknown_algorithm",
    };
    if env.len() < 6 + nonce_len + 16 {
        return "envelope.too_short";
    }
    if env[2..6] != original[2..6] {
        return "key.unknown";
    }
    if env[1] != original[1] {
        return "key.algorithm_mismatch";
    }
    "aead.tag"
}

/// Our cookie header for `pieces`.
fn cookie_of(pieces: &[String]) -> Vec<u8> {
    header_of(&pairs_for(NAME, pieces))
}

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn sextet(c: u8) -> usize {
    ALPHABET.iter().position(|&a| a == c).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Hand-sealed envelopes (docs/FORMAT.md §4–6), sealed by the crate's own cipher wrapper
// ---------------------------------------------------------------------------------------------

/// Who seals a crafted envelope and what its header says.
#[derive(Clone, Copy)]
struct Spec {
    version: u8,
    /// The envelope's algorithm byte.
    alg_byte: u8,
    /// The cipher that actually seals (its nonce length is used).
    cipher: Algorithm,
    key_id: [u8; 4],
    secret: [u8; 32],
}

impl Spec {
    /// What the suite's default keyring (`support::ring`, key 1) would seal.
    fn ours() -> Spec {
        Spec::key(1, Algorithm::default())
    }

    /// Key `id` of `support::key` with `alg`.
    fn key(id: u8, alg: Algorithm) -> Spec {
        Spec {
            version: 1,
            alg_byte: alg.id(),
            cipher: alg,
            key_id: [id; 4],
            secret: [id; 32],
        }
    }
}

fn nonce_len(alg: Algorithm) -> usize {
    if alg == Algorithm::Aes256Gcm { 12 } else { 24 }
}

/// FORMAT.md §4.1: label ‖ u8 len(name) ‖ name ‖ u8 count ‖ header.
fn aad(name: &str, count: u8, header: &[u8]) -> Vec<u8> {
    let mut aad = b"sealed-session/v1".to_vec();
    aad.push(u8::try_from(name.len()).unwrap());
    aad.extend_from_slice(name.as_bytes());
    aad.push(count);
    aad.extend_from_slice(header);
    aad
}

/// Chunk capacity used for crafted sessions (any cut is valid for a decoder).
const CRAFT_CHUNK: usize = 3_900;

/// Seals `plaintext` as `spec` says into chunk cookies named after `name`.
fn craft(spec: Spec, name: &str, plaintext: &[u8]) -> Pairs {
    let mut nonce = vec![0u8; nonce_len(spec.cipher)];
    rand::rng().fill_bytes(&mut nonce);
    let mut header = vec![spec.version, spec.alg_byte];
    header.extend_from_slice(&spec.key_id);
    header.extend_from_slice(&nonce);
    let armored_len = (header.len() + plaintext.len() + 16).div_ceil(3) * 4;
    let count = armored_len.div_ceil(CRAFT_CHUNK).max(1);
    let mut body = plaintext.to_vec();
    let cipher = RawAead::new(spec.cipher, &spec.secret);
    let aad = aad(name, u8::try_from(count).unwrap(), &header);
    assert!(cipher.seal_raw(&nonce, &aad, &mut body));
    header.extend_from_slice(&body);
    let armored = URL_SAFE_NO_PAD.encode(&header);
    let pieces: Vec<String> = armored
        .as_bytes()
        .chunks(armored.len().div_ceil(count).max(1))
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect();
    assert_eq!(pieces.len(), count);
    pairs_for(name, &pieces)
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// FORMAT.md §5: schema 1, id, issued_at, expires_at, last_seen, then `(key, frame)` pairs
/// (keys must already be in ascending order).
fn payload(times: (u64, u64, u64), entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = vec![1];
    out.extend([0x42; 16]);
    varint(times.0, &mut out);
    varint(times.1, &mut out);
    varint(times.2, &mut out);
    varint(entries.len() as u64, &mut out);
    for (key, frame) in entries {
        varint(key.len() as u64, &mut out);
        out.extend_from_slice(key.as_bytes());
        varint(frame.len() as u64, &mut out);
        out.extend_from_slice(frame);
    }
    out
}

/// Issued now, valid for an hour.
fn fresh() -> (u64, u64, u64) {
    (T0, T0 + 3600, T0)
}

/// A postcard `String`.
fn pc_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    varint(s.len() as u64, &mut out);
    out.extend_from_slice(s.as_bytes());
    out
}

/// FORMAT.md §6 stored frame.
fn stored(value: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(value);
    out
}

/// FORMAT.md §6 LZ4 frame with an arbitrary claimed length.
fn lz4_frame(claimed: u64, block: &[u8]) -> Vec<u8> {
    let mut out = vec![1];
    varint(claimed, &mut out);
    out.extend_from_slice(block);
    out
}

fn alice() -> (&'static str, Vec<u8>) {
    ("user", stored(&pc_string("alice")))
}

/// A fresh session for `entries`, hand-sealed as `spec` says, as a `Cookie` header.
fn sealed_as(spec: Spec, entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    header_of(&craft(spec, NAME, &payload(fresh(), entries)))
}

/// A hand-sealed session for `entries` under the suite's key, as a `Cookie` header.
fn crafted(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    sealed_as(Spec::ours(), entries)
}

/// A codec for `config`, the suite's keyring, and alice's fresh session issued at [`T0`].
fn alice_codec(config: SessionConfig) -> (Codec, Keyring, SystemTime, SessionState) {
    let codec = Codec::new(config.cookie_name(NAME)).unwrap();
    let now = unix_time(T0);
    let mut state = codec.new_state(now);
    state.insert("user", "alice").unwrap();
    (codec, ring(Algorithm::default()), now, state)
}

// =============================================================================================
// Tampering
// =============================================================================================

/// Every single-bit flip of the decoded envelope of a two-chunk session, re-armored and cut
/// like the original, is refused with the category of the field it hit (Codec directly: ~26k
/// opens).
#[test]
fn tamper_every_bit_of_a_two_chunk_session() {
    let (codec, ring, now, mut state) =
        alice_codec(SessionConfig::new().compression_threshold(None));
    state.insert("blob", &random_text(3200)).unwrap();
    let cookies = codec.seal(&ring, &state, now, &mut rand::rng()).unwrap();
    assert_eq!(cookies.len(), 2, "a two-chunk session");
    let original_values: Vec<String> = cookies.iter().map(|c| c.value().to_owned()).collect();
    let original = pieces(&original_values);
    let envelope = envelope_of(&original);
    let open = |pieces: &[String]| {
        let pairs = pairs_for(NAME, pieces);
        codec
            .open(
                &ring,
                pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())),
                now,
            )
            .map(|o| o.map(|o| o.state))
    };
    assert_eq!(open(&original).unwrap().unwrap(), state, "control");

    let start = Instant::now();
    let mut by_category = std::collections::BTreeMap::<&str, usize>::new();
    for bit in 0..envelope.len() * 8 {
        let mut env = envelope.clone();
        env[bit / 8] ^= 1 << (bit % 8);
        let tampered = recut(&env, &original);
        let expected = expected_category(&tampered, &envelope);
        match open(&tampered) {
            Err(e) => assert_eq!(e.category(), expected, "bit {bit}"),
            Ok(_) => panic!("bit {bit} flipped and the session still opened"),
        }
        *by_category.entry(expected).or_default() += 1;
    }
    eprintln!(
        "tamper_every_bit: {} flips in {:?}: {by_category:?}",
        envelope.len() * 8,
        start.elapsed()
    );
    assert_eq!(by_category["envelope.unknown_version"], 8);
    assert_eq!(by_category["key.unknown"], 32);
    // 0x03 ^ 1 = AES-256-GCM, 0x03 ^ 2 = XChaCha20-Poly1305: known, but not this key's.
    assert_eq!(by_category["key.algorithm_mismatch"], 2);
    assert_eq!(by_category["envelope.unknown_algorithm"], 6);
    assert_eq!(by_category["aead.tag"], (envelope.len() - 6) * 8);
}

/// Character substitutions at a sampling of positions of both chunks (start, header, middle,
/// end), each by three other base64url characters, through the middleware.
#[actix_web::test]
async fn tamper_substituted_characters_through_the_middleware() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    assert_eq!(original.len(), 2);
    let envelope = envelope_of(&original);
    app.accepted(&cookie_of(&original), "alice", "control")
        .await;

    let mut requests = 0;
    for (chunk, piece) in original.iter().enumerate() {
        let len = piece.len();
        let mut positions: Vec<usize> = (0..12).chain((12..len).step_by(251)).collect();
        positions.extend([len / 2, len - 3, len - 2, len - 1]);
        positions.retain(|&p| p < len);
        positions.dedup();
        for pos in positions {
            for shift in [1, 17, 32] {
                let mut tampered = original.clone();
                let mut bytes = tampered[chunk].clone().into_bytes();
                bytes[pos] = ALPHABET[(sextet(bytes[pos]) + shift) % 64];
                tampered[chunk] = String::from_utf8(bytes).unwrap();
                let ctx = format!("chunk {chunk} position {pos} +{shift}");
                app.refused_pieces(&tampered, &envelope, &ctx).await;
                requests += 1;
            }
        }
    }
    assert_eq!(app.stats.rejected_total(), requests);
    assert_eq!(
        app.stats.opened(),
        2,
        "the /set after login and the control"
    );
}

/// A fresh two-chunk session whose envelope has bit `bit` of byte `byte` flipped, for each
/// `(byte, bit, ctx)` of `flips`, is refused with `category`.
async fn flips_refused(flips: impl IntoIterator<Item = (usize, usize, String)>, category: &str) {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    for (byte, bit, ctx) in flips {
        let edit = |e: &mut Vec<u8>| e[byte] ^= 1 << bit;
        app.tampered_envelope(&original, edit, category, &ctx).await;
    }
}

#[actix_web::test]
async fn tamper_version_byte() {
    let flips = (0..8).map(|bit| (0, bit, format!("version bit {bit}")));
    flips_refused(flips, "envelope.unknown_version").await;
}

#[actix_web::test]
async fn tamper_algorithm_byte() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    assert_eq!(envelope_of(&original)[1], Algorithm::Xaes256Gcm.id());
    for bit in 0..8 {
        let flipped = Algorithm::Xaes256Gcm.id() ^ (1 << bit);
        let expected = match Algorithm::from_id(flipped) {
            Some(_) => "key.algorithm_mismatch",
            None => "envelope.unknown_algorithm",
        };
        let edit = |e: &mut Vec<u8>| e[1] = flipped;
        let ctx = format!("algorithm byte {flipped:#04x}");
        app.tampered_envelope(&original, edit, expected, &ctx).await;
    }
}

#[actix_web::test]
async fn tamper_key_id() {
    let flips = (0..32).map(|bit| (2 + bit / 8, bit % 8, format!("key id bit {bit}")));
    flips_refused(flips, "key.unknown").await;
}

#[actix_web::test]
async fn tamper_nonce() {
    let flips = (6..30)
        .flat_map(|byte| [0, 7].map(|bit| (byte, bit, format!("nonce byte {byte} bit {bit}"))));
    flips_refused(flips, "aead.tag").await;
}

/// The count prefix of chunk 0: too small (a chunk left over), too large (a chunk missing),
/// non-canonical or signed (bad count).
#[actix_web::test]
async fn tamper_count_prefix() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    assert_eq!(original.len(), 2);
    for (label, category) in [
        ("1", "chunk.extra"),
        ("3", "chunk.missing"),
        ("32", "chunk.missing"),
        ("02", "chunk.count"),
        ("+2", "chunk.count"),
        ("2 ", "chunk.count"),
        ("", "chunk.count"),
        ("33", "chunk.count"),
        ("٢", "chunk.count"),
    ] {
        let pairs = pairs_of(NAME, label, &original);
        app.refused(&header_of(&pairs), category, label).await;
    }
    // No dot at all: the first three bytes hold no '.'.
    let mut pairs = pairs_for(NAME, &original);
    pairs[0].1 = format!("2{}", original[0]);
    app.refused(&header_of(&pairs), "chunk.count", "no dot")
        .await;
}

#[actix_web::test]
async fn truncate_the_last_chunk_by_1_to_22_characters() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    let envelope = envelope_of(&original);
    let last = original.len() - 1;
    let mut seen = HashSet::new();
    for n in 1..=22 {
        let mut cut = original.clone();
        let keep = cut[last].len() - n;
        cut[last].truncate(keep);
        let ctx = format!("-{n}");
        seen.insert(app.refused_pieces(&cut, &envelope, &ctx).await);
    }
    assert_eq!(seen, HashSet::from(["armor", "aead.tag"]));
}

#[actix_web::test]
async fn append_characters_or_a_whole_base64_block() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    let envelope = envelope_of(&original);
    for chunk in 0..original.len() {
        for extra in ["A", "AA", "AAA", "AAAA", "QUJD", "____", "QUJDREVG"] {
            let mut longer = original.clone();
            longer[chunk].push_str(extra);
            let ctx = format!("chunk {chunk} + {extra}");
            app.refused_pieces(&longer, &envelope, &ctx).await;
        }
    }
}

// =============================================================================================
// Crypto labels
// =============================================================================================

/// A control for every hand-sealed case below: the crafting code seals what the crate opens
/// (so the attacks fail for the reason they claim, not because the crafting is wrong).
#[actix_web::test]
async fn hand_sealed_control_sessions_open() {
    let bench = Bench::new();
    let app = bench.node(bench.rig()).await;
    app.accepted(&crafted(&[alice()]), "alice", "stored").await;
    let user = pc_string("alice");
    let frame = lz4_frame(user.len() as u64, &lz4_flex::block::compress(&user));
    app.accepted(&crafted(&[("user", frame)]), "alice", "lz4")
        .await;
    let blob = ("blob", stored(&vec![b'x'; 9000]));
    let two_chunks = craft(Spec::ours(), NAME, &payload(fresh(), &[blob, alice()]));
    assert!(two_chunks.len() >= 3);
    app.accepted(&header_of(&two_chunks), "alice", "multi-chunk")
        .await;
    for alg in [Algorithm::XChaCha20Poly1305, Algorithm::Aes256Gcm] {
        let app = bench.node(bench.builder(ring(alg))).await;
        let cookie = sealed_as(Spec::key(1, alg), &[alice()]);
        app.accepted(&cookie, "alice", alg.name()).await;
    }
}

/// Versions other than 1, sealed with a valid tag over their own header: refused by the
/// version check alone.
#[actix_web::test]
async fn unknown_envelope_version_is_refused() {
    let app = target().await;
    for version in [0, 2, 0x81, 0xff] {
        let spec = Spec {
            version,
            ..Spec::ours()
        };
        let cookie = sealed_as(spec, &[alice()]);
        let ctx = format!("version {version}");
        app.refused(&cookie, "envelope.unknown_version", &ctx).await;
    }
}

/// For every key algorithm K and every other algorithm A: an envelope labelled A and sealed
/// *correctly under A* with K's secret is refused, because the key decides the algorithm.
#[actix_web::test]
async fn algorithm_byte_disagreeing_with_the_key_is_refused() {
    let bench = Bench::new();
    for key_alg in Algorithm::ALL {
        let app = bench.node(bench.builder(ring(key_alg))).await;
        for label in Algorithm::ALL {
            let spec = Spec {
                alg_byte: label.id(),
                cipher: label,
                ..Spec::key(1, key_alg)
            };
            let cookie = sealed_as(spec, &[alice()]);
            let ctx = format!("key {key_alg}, envelope says {label}");
            if label == key_alg {
                app.accepted(&cookie, "alice", &ctx).await;
            } else {
                app.refused(&cookie, "key.algorithm_mismatch", &ctx).await;
            }
        }
        assert_eq!(rejected(&app.stats, "aead.tag"), 0, "never decrypted");
    }
}

/// A key id the keyring does not hold is refused as `key.unknown`, which the decoder returns
/// at the key lookup, before any decryption: the envelope below is not even a valid
/// ciphertext (random bytes, or the shortest possible body), yet the answer is never
/// `aead.tag`.
#[actix_web::test]
async fn unknown_key_id_is_refused_before_any_decryption() {
    let app = target().await;
    let mut rng = StdRng::seed_from_u64(7);
    for body_len in [16, 17, 100, 3000] {
        let mut env = vec![1, Algorithm::Xaes256Gcm.id(), 9, 9, 9, 9];
        let mut rest = vec![0u8; 24 + body_len];
        rng.fill_bytes(&mut rest);
        env.extend(rest);
        let armored = URL_SAFE_NO_PAD.encode(&env);
        let pieces: Vec<String> = armored
            .as_bytes()
            .chunks(CRAFT_CHUNK)
            .map(|c| String::from_utf8(c.to_vec()).unwrap())
            .collect();
        let ctx = format!("random body of {body_len}");
        app.refused(&cookie_of(&pieces), "key.unknown", &ctx).await;
    }
    // A correctly sealed envelope under a key this node lacks.
    let cookie = sealed_as(Spec::key(9, Algorithm::default()), &[alice()]);
    app.refused(&cookie, "key.unknown", "sealed by key 9").await;
    assert_eq!(rejected(&app.stats, "key.unknown"), 5);
    assert_eq!(rejected(&app.stats, "aead.tag"), 0);
}

#[actix_web::test]
async fn retired_key_is_refused() {
    let bench = Bench::new();
    let before = bench.node(bench.rig()).await;
    let jar = before.session("alice", 0).await;
    let alg = Algorithm::default();
    let now = bench.clock.now();
    let retired = Keyring::new(vec![key(1, alg, 0).retired(now), key(2, alg, 0)], now).unwrap();
    let later = bench.builder(retired).total_budget(16 * 1024);
    let after = bench.node(later).await;
    let (cookie, ctx) = (jar.header(), "key 1 retired");
    after.refused(cookie.as_bytes(), "key.retired", ctx).await;
}

/// Same cookie name, another deployment: with another key id (`key.unknown`) and with a
/// colliding key id but another secret (`aead.tag`).
#[actix_web::test]
async fn cookie_from_another_deployment_is_refused() {
    let bench = Bench::new();
    let here = bench.node(bench.rig()).await;
    let alg = Algorithm::default();
    let other_id = Keyring::new(vec![key(9, alg, 0)], bench.clock.now()).unwrap();
    let colliding = Key::new(
        KeyId([1; 4]),
        alg,
        Secret::new([0x77; 32]),
        unix_time(0),
        unix_time(0),
    );
    let colliding = Keyring::new(vec![colliding], bench.clock.now()).unwrap();
    for (ring, category) in [(other_id, "key.unknown"), (colliding, "aead.tag")] {
        let theirs = bench.builder(ring).total_budget(16 * 1024);
        let there = bench.node(theirs).await;
        for bytes in [0, 5000] {
            let jar = there.session("mallory", bytes).await;
            let ctx = format!("{category} with {bytes} bytes");
            here.refused(jar.header().as_bytes(), category, &ctx).await;
        }
    }
}

/// The cookie name is bound into the AAD: valid chunks renamed to another deployment's name
/// (same keyring) fail the tag there.
#[actix_web::test]
async fn valid_value_moved_to_another_cookie_name_is_refused() {
    let bench = Bench::new();
    let s = bench.node(bench.rig()).await;
    let t = bench.node(bench.rig().cookie_name("__Host-t".into())).await;
    for bytes in [0, 5000] {
        let jar = s.session("alice", bytes).await;
        let moved = pairs_for("__Host-t", &pieces(&values(&jar, NAME)));
        let ctx = format!("{bytes} bytes");
        t.refused(&header_of(&moved), "aead.tag", &ctx).await;
        s.accepted(jar.header().as_bytes(), "alice", &ctx).await;
    }
}

#[actix_web::test]
async fn envelopes_of_0_1_17_and_40_bytes_are_refused() {
    let bench = Bench::new();
    let app = bench.node(bench.rig()).await;
    let aes = bench.node(bench.builder(ring(Algorithm::Aes256Gcm))).await;
    let xaes = Algorithm::Xaes256Gcm.id();
    let envelope = |len: usize, alg: u8| -> Vec<u8> {
        let mut e = vec![1, alg, 1, 1, 1, 1];
        e.resize(len.max(6), 0xa5);
        e.truncate(len);
        e
    };
    let cookie = |env: &[u8]| format!("{NAME}=1.{}", URL_SAFE_NO_PAD.encode(env)).into_bytes();
    for len in [0, 1, 17, 40] {
        let ctx = format!("{len} bytes");
        let too_short = cookie(&envelope(len, xaes));
        app.refused(&too_short, "envelope.too_short", &ctx).await;
    }
    // 40 bytes are enough for an AES-256-GCM header (6 + 12) and tag (16): the key then
    // decides (mismatch with an XAES key, a failed tag with an AES key).
    let aes40 = cookie(&envelope(40, Algorithm::Aes256Gcm.id()));
    app.refused(&aes40, "key.algorithm_mismatch", "40, AES label")
        .await;
    aes.refused(&aes40, "aead.tag", "40, AES key").await;
    let aes33 = cookie(&envelope(33, 2));
    aes.refused(&aes33, "envelope.too_short", "33, AES").await;
}

// =============================================================================================
// Nonce sanity
// =============================================================================================

/// 100,000 seals of the same session with the thread RNG: every nonce and every ciphertext is
/// distinct. Nonce at envelope offset 6 (FORMAT.md §4), 24 bytes for XAES-256-GCM.
#[test]
fn hundred_thousand_seals_give_distinct_nonces_and_ciphertexts() {
    const SEALS: usize = 100_000;
    let (codec, ring, now, state) = alice_codec(SessionConfig::new());
    let mut nonces = HashSet::with_capacity(SEALS);
    let mut ciphertexts = HashSet::with_capacity(SEALS);
    let mut rng = rand::rng();
    let start = Instant::now();
    for i in 0..SEALS {
        let cookies = codec.seal(&ring, &state, now, &mut rng).unwrap();
        let [cookie] = cookies.as_slice() else {
            panic!("one chunk")
        };
        let env = URL_SAFE_NO_PAD
            .decode(cookie.value().strip_prefix("1.").unwrap())
            .unwrap();
        let nonce: [u8; 24] = env[6..30].try_into().unwrap();
        assert!(nonces.insert(nonce), "nonce repeated at seal {i}");
        assert!(
            ciphertexts.insert(env[30..].to_vec()),
            "ciphertext repeated at seal {i}"
        );
    }
    eprintln!("{SEALS} seals in {:?}", start.elapsed());
    assert_eq!((nonces.len(), ciphertexts.len()), (SEALS, SEALS));
}

// =============================================================================================
// Encoding
// =============================================================================================

#[actix_web::test]
async fn characters_outside_base64url_are_refused() {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    let bad: &[&[u8]] = &[
        b"+",
        b"/",
        b"=",
        b".",
        b"!",
        b"~",
        b"%",
        b"%41",
        b"\"",
        b",",
        b"\\",
        b"*",
        b"\t",
        b" ",
        b"\x80",
        b"\xff",
        "é".as_bytes(),
        "٣".as_bytes(),
        b"A A",
    ];
    for chunk in 0..original.len() {
        for replacement in bad {
            let mut pairs = cookie_of(&original);
            // Replace one character in the middle of this chunk's value.
            let start = pairs
                .windows(NAME.len() + 1)
                .enumerate()
                .filter(|(_, w)| w.starts_with(NAME.as_bytes()))
                .nth(chunk)
                .unwrap()
                .0;
            let at = start + NAME.len() + 100;
            pairs.splice(at..at + 1, replacement.iter().copied());
            let ctx = format!("chunk {chunk}: {:?}", String::from_utf8_lossy(replacement));
            app.refused(&pairs, "armor", &ctx).await;
        }
    }
}

/// Padding and non-zero trailing bits: one envelope has exactly one spelling.
#[actix_web::test]
async fn non_canonical_base64_is_refused() {
    let app = target().await;
    let mut residues = HashSet::new();
    for bytes in 100..103 {
        let jar = app.session("alice", bytes).await;
        let original = pieces(&values(&jar, NAME));
        let last = original.len() - 1;
        let residue = original.concat().len() % 4;
        residues.insert(residue);
        app.accepted(jar.header().as_bytes(), "alice", "control")
            .await;
        let ctx = format!("armored length ≡ {residue} (mod 4)");
        // Padding, whatever the residue (padding a multiple of 4 is as wrong).
        for pad in ["=", "==", "==="] {
            let mut padded = original.clone();
            padded[last].push_str(pad);
            let ctx = format!("{ctx}, {pad}");
            app.refused(&cookie_of(&padded), "armor", &ctx).await;
        }
        // Non-zero trailing bits in the last character.
        let unused = match residue {
            2 => 0b1111,
            3 => 0b11,
            _ => continue,
        };
        for set in [1, unused] {
            let mut odd = original.clone();
            let mut bytes = odd[last].clone().into_bytes();
            let c = bytes.last_mut().unwrap();
            assert_eq!(sextet(*c) & unused, 0, "canonical to start with");
            *c = ALPHABET[sextet(*c) | set];
            odd[last] = String::from_utf8(bytes).unwrap();
            let ctx = format!("{ctx}, trailing bits {set:#b}");
            app.refused(&cookie_of(&odd), "armor", &ctx).await;
        }
    }
    assert_eq!(residues, HashSet::from([0, 2, 3]));
}

#[actix_web::test]
async fn empty_values_are_refused() {
    let app = target().await;
    let cases: &[(&str, &str)] = &[
        ("__Host-s=", "chunk.count"),
        ("__Host-s=; __Host-s.1=", "chunk.count"),
        ("__Host-s=1.", "envelope.too_short"),
        ("__Host-s=2.; __Host-s.1=", "envelope.too_short"),
        ("__Host-s.1=", "chunk.missing_first"),
    ];
    for (cookie, category) in cases {
        app.refused(cookie.as_bytes(), category, cookie).await;
    }
}

/// Pairs without `=` or without a name are not cookies of ours: no session, nothing logged,
/// and a valid session among them still opens.
#[actix_web::test]
async fn name_only_and_nameless_pairs_are_ignored() {
    let app = target().await;
    for junk in [
        "__Host-s",
        "__Host-s; __Host-s.1",
        "=1.AAAA",
        "=__Host-s",
        "; ; ;",
        "=",
        "==",
    ] {
        let ctx = format!("{junk}: not a rejection, no cookie of ours");
        let r = app.ignored(junk.as_bytes(), &ctx).await;
        assert!(r.set_cookie.is_empty(), "{junk}");
    }
    assert_eq!(app.stats.rejected_total(), 0);
    let jar = app.session("alice", 3200).await;
    let cookie = format!("__Host-s; =x; {}; =; __Host-s.1; __Host-s.2", jar.header());
    app.accepted(cookie.as_bytes(), "alice", "valid among junk")
        .await;
}

#[actix_web::test]
async fn single_100_kb_chunk_is_refused_by_length_before_decoding() {
    let app = target().await;
    let huge = "A".repeat(100 * 1024);
    let cookie = format!("{NAME}=1.{huge}");
    app.refused(cookie.as_bytes(), "chunk.too_long", "chunk 0")
        .await;
    // Also as a continuation chunk next to a valid first chunk, and just over the limit.
    let jar = app.session("alice", 3200).await;
    let values = values(&jar, NAME);
    let cookie = format!("{NAME}={}; {NAME}.1={huge}", values[0]);
    app.refused(cookie.as_bytes(), "chunk.too_long", "chunk 1")
        .await;
    let cookie = format!("{NAME}=1.{}", "A".repeat(4095));
    app.refused(cookie.as_bytes(), "chunk.too_long", "4097")
        .await;
}

#[actix_web::test]
async fn malformed_unrelated_cookies_do_not_hide_the_session() {
    let app = target().await;
    let jar = app.session("alice", 3200).await;
    let mut cookie = b"a=\xff\xfe; ;; =; =x; junk; b=\"q\"; c=%%%; d==; e=\x80\x81; ".to_vec();
    cookie.extend_from_slice(jar.header().as_bytes());
    cookie.extend_from_slice(b"; f=\xc3(; g=\t; h");
    app.accepted(&cookie, "alice", "one header").await;
    // The same, split over several Cookie headers (HTTP/2 style), garbage in its own.
    app.events();
    let pairs: Vec<Vec<u8>> = jar
        .0
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let mut headers: Vec<&[u8]> = vec![b"x=\xff\xfe\xfd"];
    headers.extend(pairs.iter().map(Vec::as_slice));
    headers.push(b";;;=;");
    let r = app.send("/whoami", &headers).await;
    assert_eq!((r.status, r.body.as_str()), (200, "alice"));
    assert!(app.events().iter().all(|e| e.1.is_none()));
}

// =============================================================================================
// Chunking
// =============================================================================================

/// A valid two-chunk session whose count prefix is replaced by `label`. The count is parsed
/// from at most three bytes before the dot (`chunk::split_count`), so no claim, however large,
/// is ever turned into a number, let alone an allocation: the rejection is O(1) whatever the
/// claim and the value's length.
async fn bad_count(label: &str) {
    let app = target().await;
    let original = app.session_pieces("alice", 3200).await;
    let relabelled = header_of(&pairs_of(NAME, label, &original));
    app.refused(&relabelled, "chunk.count", label).await;
    let alone = format!("{NAME}={label}.AAAA");
    app.refused(alone.as_bytes(), "chunk.count", label).await;
    assert_eq!(rejected(&app.stats, "chunk.count"), 2);
}

/// One test per count label, each a [`bad_count`].
macro_rules! bad_count_tests {
    ($($test:ident: $label:literal,)*) => {
        $(
            #[actix_web::test]
            async fn $test() {
                bad_count($label).await;
            }
        )*
    };
}

bad_count_tests! {
    count_0_is_rejected_in_constant_time: "0",
    count_minus_1_is_rejected_in_constant_time: "-1",
    count_007_is_rejected_in_constant_time: "007",
    count_1e9_is_rejected_in_constant_time: "1e9",
    count_2_pow_32_minus_1_is_rejected_in_constant_time: "4294967295",
    count_33_above_the_chunk_limit_is_rejected: "33",
}

#[actix_web::test]
async fn missing_middle_chunk_is_refused() {
    let app = target().await;
    let all = pairs_for(NAME, &app.session_pieces("alice", 7000).await);
    assert_eq!(all.len(), 3);
    for (drop, category) in [
        (1, "chunk.missing"),
        (2, "chunk.missing"),
        (0, "chunk.missing_first"),
    ] {
        let mut pairs = all.clone();
        pairs.remove(drop);
        let ctx = format!("without chunk {drop}");
        app.refused(&header_of(&pairs), category, &ctx).await;
    }
}

#[actix_web::test]
async fn swapped_chunks_are_refused() {
    let app = target().await;
    let original = app.session_pieces("alice", 7000).await;
    let envelope = envelope_of(&original);
    assert_eq!(original.len(), 3);
    for (a, b) in [(1, 2), (0, 1), (0, 2)] {
        let mut swapped = original.clone();
        swapped.swap(a, b);
        let ctx = format!("{a} ⇄ {b}");
        app.refused_pieces(&swapped, &envelope, &ctx).await;
    }
    // The names swapped instead of the values: the same bytes in the same order once the
    // decoder sorts by index, so it still opens (order in the header does not matter).
    let mut pairs = pairs_for(NAME, &original);
    pairs.reverse();
    app.accepted(&header_of(&pairs), "alice", "header order")
        .await;
}

#[actix_web::test]
async fn chunks_spliced_from_two_valid_sessions_are_refused() {
    let app = target().await;
    let a = app.session_pieces("alice", 7000).await;
    let b = app.session_pieces("mallory", 7000).await;
    assert_eq!((a.len(), b.len()), (3, 3));
    let envelope = envelope_of(&a);
    for mask in 1..7u32 {
        // Bit i set: chunk i from mallory's session.
        let spliced: Vec<String> = (0..3)
            .map(|i| if mask & (1 << i) != 0 { &b[i] } else { &a[i] }.clone())
            .collect();
        // Same key, so the header always parses: only the tag can catch the splice.
        let ctx = format!("mask {mask:03b}");
        app.refused_pieces(&spliced, &envelope, &ctx).await;
    }
}

#[actix_web::test]
async fn leftover_higher_chunk_is_refused() {
    let app = target().await;
    let one = app.session("alice", 0).await;
    let three = app.session("alice", 7000).await;
    for (jar, leftover) in [(&one, 1), (&one, 31), (&three, 3), (&three, 5)] {
        let cookie = format!("{}; {NAME}.{leftover}=AAAA", jar.header());
        let ctx = format!("{} chunks + .{leftover}", jar.0.len());
        app.refused(cookie.as_bytes(), "chunk.extra", &ctx).await;
    }
    // The next write expires the leftover in the same response.
    let cookie = format!("{}; {NAME}.5=AAAA", one.header());
    let r = app.send("/login?user=alice", &[cookie.as_bytes()]).await;
    assert_eq!(r.status, 200);
    assert!(
        r.set_cookie
            .iter()
            .any(|l| l.starts_with(&format!("{NAME}.5=;")) && l.contains("Max-Age=0")),
        "{:?}",
        r.set_cookie
    );
}

/// The same chunk name several times (host-only and parent-domain copies, split headers):
/// identical copies count once, at most 4 distinct values per name are tried (more is
/// `ambiguous`), and they form at most 8 candidate sets.
#[actix_web::test]
async fn same_chunk_name_twice_is_bounded() {
    let app = target().await;
    let jar = app.session("alice", 7000).await;
    let valid = pairs_for(NAME, &pieces(&values(&jar, NAME)));
    let garbage = |i: usize| "Q".repeat(100 + i);

    // Identical copies of every chunk: one session.
    let mut twice = valid.clone();
    twice.extend(valid.clone());
    app.accepted(&header_of(&twice), "alice", "identical copies")
        .await;

    // A second, different value for chunk 1: two candidates, the valid one opens.
    let mut pairs = valid.clone();
    pairs.push((chunk_name(NAME, 1), garbage(0)));
    app.accepted(&header_of(&pairs), "alice", "two values of .1")
        .await;

    // Valid first, then 3 more values of chunk 1: 4 distinct values, all tried.
    let mut pairs = valid.clone();
    pairs.extend((0..3).map(|i| (chunk_name(NAME, 1), garbage(i))));
    app.accepted(&header_of(&pairs), "alice", "4 values of .1")
        .await;

    // Valid first, then 50 more values of chunk 1: more distinct values than the cap is
    // ambiguous (issue 9, A1), never a truncated choice.
    let mut pairs = valid.clone();
    pairs.extend((0..50).map(|i| (chunk_name(NAME, 1), garbage(i))));
    let ctx = "50 more values of .1";
    app.refused(&header_of(&pairs), "ambiguous", ctx).await;

    // Four values of chunk 1 before the valid one: ambiguous too. (Until issue 9 the valid
    // one was dropped as the fifth, so a planted flood chose which sets were tried.)
    let mut pairs: Pairs = (0..4).map(|i| (chunk_name(NAME, 1), garbage(i))).collect();
    pairs.extend(valid.clone());
    app.refused(&header_of(&pairs), "ambiguous", "valid .1 fifth")
        .await;

    // 3 values of chunks 1 and 2 each: 9 candidate sets > 8.
    let mut pairs = valid.clone();
    for i in 0..2 {
        pairs.push((chunk_name(NAME, 1), garbage(i)));
        pairs.push((chunk_name(NAME, 2), garbage(i)));
    }
    app.refused(&header_of(&pairs), "chunk.candidates", "3 × 3")
        .await;
    // 4 first chunks with 2 values of chunk 1 each: exactly 8, still tried.
    let two = pairs_for(NAME, &app.session_pieces("bob", 3200).await);
    let mut pairs = two.clone();
    for i in 0..3 {
        pairs.push((NAME.to_owned(), format!("2.{}", garbage(i))));
    }
    pairs.push((chunk_name(NAME, 1), garbage(9)));
    app.accepted(&header_of(&pairs), "bob", "4 × 2 = 8 sets")
        .await;
    pairs.push((chunk_name(NAME, 1), garbage(10)));
    let ctx = "4 × 3 = 12 sets";
    app.refused(&header_of(&pairs), "chunk.candidates", ctx)
        .await;
    assert_eq!(rejected(&app.stats, "chunk.candidates"), 2);
}

/// Names that look like `<name>.1` but are not byte-for-byte canonical are unrelated cookies:
/// they neither count as a chunk nor as a leftover.
#[actix_web::test]
async fn look_alike_chunk_names_are_not_ours() {
    let app = target().await;
    let jar = app.session("alice", 3200).await;
    let values = values(&jar, NAME);
    assert_eq!(values.len(), 2);
    for look_alike in [
        "__Host-s.01",
        "__Host-s.+1",
        "__Host-s.١",       // ARABIC-INDIC DIGIT ONE
        "__Host-s.۱",       // EXTENDED ARABIC-INDIC DIGIT ONE
        "__Host-s.１",      // FULLWIDTH DIGIT ONE
        "__Host-s.1\u{a0}", // trailing NO-BREAK SPACE (not trimmed: not ASCII whitespace)
        "__Host-s. 1",
        "__Host-s..1",
        "__Host-s.1.",
        "__Host-s.1e0",
        "__host-s.1",
        "__HOST-S.1",
        "__Host-S.1",
        "__Host-s.0",
        "__Host-s.32",
    ] {
        // Instead of the real chunk 1: chunk 1 is missing.
        let mut cookie = format!("{NAME}={}; ", values[0]).into_bytes();
        cookie.extend_from_slice(format!("{look_alike}={}", values[1]).as_bytes());
        app.refused(&cookie, "chunk.missing", look_alike).await;
        // Next to the real chunks: ignored (not a leftover, not a duplicate).
        let mut cookie = jar.header().into_bytes();
        cookie.extend_from_slice(format!("; {look_alike}=AAAA").as_bytes());
        app.accepted(&cookie, "alice", look_alike).await;
    }
    // Look-alikes of the base name: no cookie of ours at all.
    for look_alike in ["__host-s", "__Host-S", "__Host-s\u{a0}", "_Host-s"] {
        let cookie = format!("{look_alike}={}", values[0]);
        app.ignored(cookie.as_bytes(), look_alike).await;
    }
    // ASCII whitespace around a name is trimmed, as RFC 6265 §5.2 asks of user agents: a
    // trailing space or tab *is* chunk 1 (browsers never send one; a proxy that adds one does
    // not break the session).
    for spaced in ["__Host-s.1 ", "__Host-s.1\t", " __Host-s.1"] {
        let cookie = format!("{NAME}={}; {spaced}={}", values[0], values[1]);
        let ctx = format!("{spaced:?}");
        app.accepted(cookie.as_bytes(), "alice", &ctx).await;
    }
}

/// The count is bound into the AAD: a two-chunk envelope re-labelled as one chunk (and a
/// one-chunk envelope split in two) fails the tag; re-cutting at another position with the
/// same count is not an attack (the decoder only concatenates) and still opens.
#[actix_web::test]
async fn multi_chunk_envelope_presented_as_single_chunk_is_refused() {
    let bench = Bench::new();
    // A small per-cookie budget so that both chunks together fit in one 4096-byte cookie.
    let app = bench.node(bench.rig().cookie_budget(2000)).await;
    let two = app.session_pieces("alice", 1500).await;
    assert_eq!(two.len(), 2);
    let joined = vec![two.concat()];
    assert!(joined[0].len() < 4000);
    app.refused(&cookie_of(&joined), "aead.tag", "2 as 1").await;

    let one = app.session_pieces("alice", 100).await;
    assert_eq!(one.len(), 1);
    let (a, b) = one[0].split_at(one[0].len() / 2);
    let split = vec![a.to_owned(), b.to_owned()];
    app.refused(&cookie_of(&split), "aead.tag", "1 as 2").await;

    let (a, b) = joined[0].split_at(joined[0].len() / 3);
    let recut = vec![a.to_owned(), b.to_owned()];
    app.accepted(&cookie_of(&recut), "alice", "re-cut").await;
}

/// Every chunk within 4096 bytes, the sum over the node's total budget: refused before
/// decoding (`chunk.total`).
#[actix_web::test]
async fn total_over_budget_while_each_chunk_fits_is_refused() {
    let bench = Bench::new();
    let big = bench.node(bench.rig()).await;
    let jar = big.session("alice", 7000).await;
    let values = values(&jar, NAME);
    assert!(values.len() == 3 && values.iter().all(|v| v.len() <= 4096));
    let small = bench.builder(ring(Algorithm::default())).total_budget(6144);
    let small = bench.node(small).await;
    let (cookie, ctx) = (jar.header(), "12 KB > 6144");
    small.refused(cookie.as_bytes(), "chunk.total", ctx).await;
}

#[actix_web::test]
async fn two_hundred_cookies_with_our_chunk_names_are_refused_early() {
    let app = target().await;
    let jar = app.session("alice", 0).await;
    let mut pairs: Pairs = (0..200)
        .map(|i| (chunk_name(NAME, 1 + i % 31), format!("v{i}")))
        .collect();
    pairs.insert(0, (NAME.to_owned(), values(&jar, NAME)[0].clone()));
    app.refused(&header_of(&pairs), "chunk.too_many", "200 × .N")
        .await;
    let same: Pairs = (0..200)
        .map(|i| (NAME.to_owned(), format!("1.{i}")))
        .collect();
    app.refused(&header_of(&same), "chunk.too_many", "200 × base")
        .await;
}

#[actix_web::test]
async fn two_hundred_cookies_sharing_our_prefix_do_not_hide_the_session() {
    let app = target().await;
    let jar = app.session("alice", 3200).await;
    let mut cookie = String::new();
    for i in 0..200 {
        let name = match i % 4 {
            0 => format!("{NAME}.{}", 32 + i),
            1 => format!("{NAME}{i}"),
            2 => format!("{NAME}-{i}"),
            _ => format!("{NAME}.{i}x"),
        };
        cookie.push_str(&format!("{name}=v{i}; "));
    }
    cookie.push_str(&jar.header());
    let ctx = "200 look-alike prefixes";
    app.accepted(cookie.as_bytes(), "alice", ctx).await;
}

// =============================================================================================
// Size
// =============================================================================================

/// One raw HTTP/1.1 GET with bounded timeouts; returns the raw response (possibly cut short
/// if the server resets the connection).
fn raw_get(addr: SocketAddr, path: &str, cookie: &[u8]) -> String {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: ")
            .into_bytes();
    request.extend_from_slice(cookie);
    request.extend_from_slice(b"\r\n\r\n");
    // The server may answer and close before reading everything: write from another thread
    // and ignore its errors, read here.
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&request);
    });
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let _ = sender.join();
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(response: &str) -> Option<u16> {
    response.split(' ').nth(1)?.parse().ok()
}

/// `actix_web::test::call_service` bypasses the HTTP/1 codec, so this starts a real server on
/// 127.0.0.1:0: a 200 KB `Cookie` header is answered 431 by actix-http (its head limit is 128
/// KiB) before the middleware sees it, while 100 KB of unrelated cookies around a valid
/// session still reach it and open (200).
#[actix_web::test]
async fn cookie_header_of_200_kb_is_answered_431_by_actix() {
    let clock = TestClock::new();
    let mw = rig(&clock).build().unwrap();
    let stats = mw.stats();
    // A valid session for this keyring and name, sealed offline.
    let (codec, ring, now, state) = alice_codec(SessionConfig::new());
    let ours = codec
        .seal(&ring, &state, now, &mut rand::rng())
        .unwrap()
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    let filler = |target: usize| {
        let mut out = String::new();
        let mut i = 0;
        while out.len() < target {
            out.push_str(&format!("u{i}={}; ", "z".repeat(90)));
            i += 1;
        }
        out
    };
    let ok = format!("{}{ours}", filler(100 * 1024));
    let too_big = format!("{}{ours}", filler(200 * 1024));

    let server = HttpServer::new(move || App::new().wrap(mw.clone()).configure(routes))
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    let (small, big) = actix_web::rt::task::spawn_blocking(move || {
        (
            raw_get(addr, "/whoami", ok.as_bytes()),
            raw_get(addr, "/whoami", too_big.as_bytes()),
        )
    })
    .await
    .unwrap();
    handle.stop(true).await;

    assert_eq!(status_of(&small), Some(200), "{small}");
    assert!(small.ends_with("alice"), "{small}");
    assert_eq!(status_of(&big), Some(431), "{big}");
    assert_eq!(
        stats.opened(),
        1,
        "only the 100 KB request reached the middleware"
    );
    assert_eq!(stats.rejected_total(), 0);
}

#[actix_web::test]
async fn hundred_kb_of_unrelated_cookies_still_find_the_session() {
    let app = target().await;
    let jar = app.session("alice", 3200).await;
    let noise = |n: usize| -> String {
        (0..n)
            .map(|i| format!("n{i}={}", "y".repeat(40)))
            .collect::<Vec<_>>()
            .join("; ")
    };
    for (before, after) in [(2200, 0), (0, 2200), (1100, 1100)] {
        let mut parts = vec![noise(before), jar.header(), noise(after)];
        parts.retain(|p| !p.is_empty());
        let cookie = parts.join("; ");
        assert!(cookie.len() > 100 * 1024);
        let ctx = "100 KB of noise";
        app.accepted(cookie.as_bytes(), "alice", ctx).await;
    }
}

/// A handler storing 64 KB: the session cannot fit, the response becomes an empty 500 with no
/// Set-Cookie, the client keeps its old (multi-chunk) cookies and its old session; the same
/// for a compressible value over `max_inflated` (it would fit the cookies but the decoder
/// would refuse it), while a compressible value under the cap is stored.
#[actix_web::test]
async fn handler_storing_64_kb_fails_closed() {
    let bench = Bench::new();
    let app = bench.node(bench.builder(ring(Algorithm::default()))).await;
    let mut jar = app.session("alice", 3500).await;
    assert_eq!(jar.0.len(), 2);
    let old_blob = app.get(&mut jar, "/blob").await.1;
    for uri in ["/set?bytes=65536", "/zeros?bytes=65537"] {
        let events = app.fails_closed(&mut jar, uri).await;
        assert_eq!(events.len(), 1, "{uri}: {events:?}");
        assert_eq!(events[0].0, Level::ERROR, "{uri}");
        assert_eq!(app.get(&mut jar, "/blob").await.1, old_blob, "{uri}");
        assert_eq!(app.get(&mut jar, "/whoami").await.1, "alice");
    }
    assert_eq!(app.stats.overflows(), 2);
    let (status, _, set) = app.get(&mut jar, "/zeros?bytes=60000").await;
    assert_eq!((status, set.len()), (200, 2), "one cookie, one removal");
    assert_eq!(app.get(&mut jar, "/blob").await.1.len(), 60_000);
}

/// The default budget (3600 per line), around the sizes where 1, 2 and 3 chunks fill up.
#[actix_web::test]
async fn set_cookie_lines_at_every_chunk_boundary_stay_within_budgets() {
    let app = target().await;
    for chunks in 1..=3 {
        let boundary = app.largest_with(chunks).await;
        app.check_lines_around(boundary, 3600).await;
    }
}

/// Per-line budgets at and around 4096: lines never exceed the configured budget, name+value
/// never exceeds 4096 (from 4138 on the browser limit binds, not the budget).
#[actix_web::test]
async fn cookie_budgets_4095_4096_4097_and_above_bound_every_line() {
    let bench = Bench::new();
    for budget in [4095, 4096, 4097, 4136, 4137, 4138, 8192] {
        let app = bench.node(bench.rig().cookie_budget(budget)).await;
        let boundary = app.largest_with(1).await;
        app.check_lines_around(boundary, budget).await;
    }
    // With Max-Age in the attributes too.
    let persistent = bench.rig().persistent(Duration::from_secs(3600));
    let app = bench.node(persistent.cookie_budget(4097)).await;
    let boundary = app.largest_with(1).await;
    app.check_lines_around(boundary, 4097).await;
}

/// The largest session the default total budget (6144) allows is stored and read back; one
/// byte more fails closed.
#[actix_web::test]
async fn largest_session_under_the_total_budget_and_one_byte_more() {
    let bench = Bench::new();
    let defaults = bench.builder(ring(Algorithm::default()));
    let app = bench.node(defaults.compression_threshold(None)).await;
    let largest = app.largest_with(32).await;
    let mut jar = app.session("alice", 0).await;
    let (status, _, lines) = app.get(&mut jar, &format!("/set?bytes={largest}")).await;
    assert_eq!(status, 200);
    let pairs: usize = lines
        .iter()
        .map(|l| {
            let c = cookie::Cookie::parse(l.as_str()).unwrap();
            c.name().len() + 1 + c.value().len()
        })
        .sum();
    let header = pairs + 2 * (lines.len() - 1);
    assert!(header <= 6144 && header > 6144 - 8, "{header}");
    assert!(lines.iter().all(|l| l.len() <= 3600));
    assert_eq!(app.get(&mut jar, "/blob").await.1.len(), largest);
    app.fails_closed(&mut jar, &format!("/set?bytes={}", largest + 1))
        .await;
    assert_eq!(app.get(&mut jar, "/blob").await.1.len(), largest);
}

// =============================================================================================
// Compression
// =============================================================================================

/// Peak RSS is not measured: every test of this binary shares one process and runs in
/// parallel, so `VmHWM` mostly reports the other tests (the nonce census alone holds ~10 MB).
/// What bounds allocation is the order of checks in `compress::inflate`: the claimed length is
/// charged against what is left of `max_inflated` *before* the output buffer is allocated, the
/// claim cannot exceed 2^28 − 1 (4-byte varint), and LZ4 decodes into that fixed buffer
/// (`decompress_into` never grows it). The control (same bytes, cap raised) shows that it is
/// the cap, not malformed input, that refuses the bomb.
#[actix_web::test]
async fn lz4_bomb_is_refused_at_the_inflation_cap() {
    let bench = Bench::new();
    let zeros = vec![0u8; 500_000];
    let block = lz4_flex::block::compress(&zeros);
    assert!(block.len() < 2100, "{}", block.len());
    let cookie = crafted(&[("blob", lz4_frame(500_000, &block)), alice()]);
    let capped = bench.node(bench.rig()).await;
    let ctx = "500 KB bomb, 64 KiB cap";
    capped.refused(&cookie, "compression", ctx).await;
    // The stored "alice" counts too (6 bytes of value): 500,006 bytes in all.
    let raised = bench.capped(500_006).await;
    let exact = "cap raised to fit exactly";
    raised.accepted(&cookie, "alice", exact).await;
    let one_short = bench.capped(500_005).await;
    let short = "cap one byte short";
    one_short.refused(&cookie, "compression", short).await;
}

/// A claim within the cap whose block inflates to far more: LZ4 writes into the claimed
/// buffer only, and fails.
#[actix_web::test]
async fn lz4_block_inflating_past_its_claimed_size_is_refused() {
    let bench = Bench::new();
    let app = bench.node(bench.rig()).await;
    let roomy = bench.capped(600_000).await;
    let block = lz4_flex::block::compress(&vec![0u8; 500_000]);
    for claimed in [0, 1, 60_000, 499_999] {
        let cookie = crafted(&[("blob", lz4_frame(claimed, &block)), alice()]);
        let ctx = format!("claims {claimed}");
        roomy.refused(&cookie, "compression", &ctx).await;
    }
    let cookie = crafted(&[("blob", lz4_frame(60_000, &block)), alice()]);
    app.refused(&cookie, "compression", "default cap").await;
}

/// Each value under the cap, their sum over it: the budget is per session, not per value.
#[actix_web::test]
async fn values_summing_past_the_cap_are_refused() {
    let bench = Bench::new();
    let block = lz4_flex::block::compress(&vec![0u8; 40_000]);
    let entries = [
        ("blob", lz4_frame(40_000, &block)),
        ("blob2", lz4_frame(40_000, &block)),
        alice(),
    ];
    let cookie = crafted(&entries);
    let app = bench.node(bench.rig()).await;
    let two_values = "80 KB in two values";
    app.refused(&cookie, "compression", two_values).await;
    let raised = bench.capped(80_006).await;
    raised.accepted(&cookie, "alice", "cap raised").await;
    // Stored values count against the cap too.
    let stored_big = crafted(&[
        ("blob", lz4_frame(40_000, &block)),
        ("blob2", stored(&vec![b's'; 3000])),
        alice(),
    ]);
    let tight = bench.capped(42_000).await;
    let both = "stored + lz4";
    tight.refused(&stored_big, "compression", both).await;
}

/// A zlib (deflate) bomb, 1 MB of zeros in about 1 KB: the format has no deflate, so the
/// frame's first byte is an unknown compression id and nothing is ever inflated.
#[actix_web::test]
async fn deflate_bomb_with_an_unknown_compression_id_is_never_inflated() {
    let bench = Bench::new();
    let app = bench.capped(2_000_000).await;
    let zlib = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 1_000_000], 10);
    assert!(zlib.len() < 2000, "{}", zlib.len());
    let mut framed = vec![2];
    framed.extend_from_slice(&zlib);
    let mut with_size = vec![2];
    varint(1_000_000, &mut with_size);
    with_size.extend_from_slice(&zlib);
    for (ctx, frame) in [
        ("id 2", framed),
        ("id 2 + size", with_size),
        ("bare zlib", zlib),
    ] {
        let cookie = crafted(&[("blob", frame), alice()]);
        app.refused(&cookie, "compression", ctx).await;
    }
}

/// 0x7FFFFFFF needs a 5-byte varint; the format allows at most 4 (< 2^28). The largest
/// 4-byte claim is refused by the cap even when the cap is 1 MB, and overlong or
/// non-canonical encodings are refused.
#[actix_web::test]
async fn forged_size_prefix_0x7fffffff_is_not_representable() {
    let bench = Bench::new();
    let app = bench.capped(1 << 20).await;
    let block = lz4_flex::block::compress(&[0u8; 1000]);
    let mut forged = Vec::new();
    varint(0x7FFF_FFFF, &mut forged);
    assert_eq!(forged, [0xff, 0xff, 0xff, 0xff, 0x07]);
    let frame = |prefix: &[u8]| {
        let mut f = vec![1];
        f.extend_from_slice(prefix);
        f.extend_from_slice(&block);
        f
    };
    for (ctx, prefix) in [
        ("0x7FFFFFFF", forged.clone()),
        ("2^28 - 1", vec![0xff, 0xff, 0xff, 0x7f]),
        (
            "u64::MAX",
            vec![0xff; 9].into_iter().chain([0x01]).collect(),
        ),
        ("overlong 1000", vec![0xe8, 0x87, 0x80, 0x00]),
        ("unterminated", vec![0x80, 0x80, 0x80, 0x80]),
    ] {
        let cookie = crafted(&[("blob", frame(&prefix)), alice()]);
        app.refused(&cookie, "compression", ctx).await;
    }
    let cookie = crafted(&[("blob", frame(&[0xe8, 0x07])), alice()]);
    app.accepted(&cookie, "alice", "1000, canonical").await;
}

#[actix_web::test]
async fn wrong_claimed_sizes_are_refused() {
    let app = target().await;
    let text = "the quick brown fox ".repeat(50);
    let user = pc_string(&text);
    let block = lz4_flex::block::compress(&user);
    let actual = user.len() as u64;
    for claimed in [0, 1, actual - 1, actual + 1, 2 * actual, 65_536] {
        let cookie = crafted(&[("user", lz4_frame(claimed, &block))]);
        let ctx = format!("claims {claimed}");
        app.refused(&cookie, "compression", &ctx).await;
    }
    let cookie = crafted(&[("user", lz4_frame(actual, &block))]);
    app.accepted(&cookie, &text, "claims the truth").await;
}

#[actix_web::test]
async fn unknown_compression_id_is_refused() {
    let app = target().await;
    let user = pc_string("alice");
    for id in [2u8, 3, 0x7f, 0x80, 0xff] {
        let mut frame = vec![id];
        frame.extend_from_slice(&user);
        let cookie = crafted(&[("user", frame)]);
        let ctx = format!("id {id:#x}");
        app.refused(&cookie, "compression", &ctx).await;
    }
    let cookie = crafted(&[("user", Vec::new())]);
    app.refused(&cookie, "compression", "empty frame").await;
}

// =============================================================================================
// Time
// =============================================================================================

/// A captured cookie replayed after the absolute expiry sealed inside it: refused, although
/// its tag is perfectly valid.
#[actix_web::test]
async fn replay_after_absolute_expiry_is_refused() {
    let bench = Bench::new();
    let lifetime = bench.rig().lifetime(Duration::from_secs(3600));
    let app = bench.node(lifetime.idle_timeout(None)).await;
    let captured = app.session("alice", 3200).await.header();
    bench.clock.advance(3599);
    let ctx = "last second";
    app.accepted(captured.as_bytes(), "alice", ctx).await;
    bench.clock.advance(1);
    let ctx = "at expiry";
    app.refused(captured.as_bytes(), "time.expired", ctx).await;
    bench.clock.advance(365 * 86_400);
    let ctx = "a year on";
    app.refused(captured.as_bytes(), "time.expired", ctx).await;
}

#[actix_web::test]
async fn idle_timeout_passed_is_refused() {
    let bench = Bench::new();
    let idle = bench.rig().idle_timeout(Some(Duration::from_secs(600)));
    let idle = idle.renew_interval(Duration::from_secs(60));
    let app = bench.node(idle).await;
    let captured = app.session("alice", 0).await.header();
    bench.clock.advance(599);
    let ctx = "idle 599 s";
    app.accepted(captured.as_bytes(), "alice", ctx).await;
    bench.clock.advance(1);
    let ctx = "idle 600 s";
    app.refused(captured.as_bytes(), "time.idle", ctx).await;
}

/// A session sealed by a node whose clock runs ahead: tolerated up to the skew (60 s), refused
/// beyond.
async fn issued_ahead_by(ahead: u64) -> (u16, Vec<Event>) {
    let bench = Bench::new();
    let fast = TestClock::new();
    fast.advance(ahead);
    let app = bench.node(bench.rig()).await;
    let fast_node = bench.node(rig(&fast)).await;
    let jar = fast_node.session("alice", 0).await;
    app.events();
    let r = app.send("/whoami", &[jar.header().as_bytes()]).await;
    assert!(r.set_cookie.is_empty());
    (r.status, app.events())
}

#[actix_web::test]
async fn issued_at_beyond_the_clock_skew_is_refused() {
    for ahead in [61, 3600, 10 * 365 * 86_400] {
        assert_eq!(
            issued_ahead_by(ahead).await,
            (401, vec![debug("time.future")]),
            "{ahead} s ahead"
        );
    }
}

#[actix_web::test]
async fn issued_at_within_the_clock_skew_is_accepted() {
    for ahead in [1, 30, 60] {
        assert_eq!(
            issued_ahead_by(ahead).await,
            (200, vec![]),
            "{ahead} s ahead"
        );
    }
}

// =============================================================================================
// Lifecycle
// =============================================================================================

/// Login (`clear(); renew(); insert`) gives a new session id and drops what an anonymous
/// (possibly attacker-planted) session held; a login route that keeps an entry on purpose
/// keeps only that one. The planted pre-login cookie never becomes authenticated.
#[actix_web::test]
async fn login_renews_the_session_id_and_drops_pre_login_entries() {
    let app = target().await;
    let mut jar = Jar::default();
    app.get(&mut jar, "/cart").await;
    let planted = jar.header();
    let anonymous = app.get(&mut jar, "/id").await.1;
    assert_eq!(anonymous.len(), 32);
    app.get(&mut jar, "/login?user=alice").await;
    let logged_in = app.get(&mut jar, "/id").await.1;
    assert_ne!(logged_in, anonymous);
    assert_eq!(app.get(&mut jar, "/entries").await.1, "user");
    assert_eq!(app.get(&mut jar, "/whoami").await.1, "alice");
    // The attacker's copy of the pre-login cookie is still just the anonymous session.
    let r = app.send("/whoami", &[planted.as_bytes()]).await;
    assert_eq!(r.status, 401);
    assert_eq!(app.send("/id", &[planted.as_bytes()]).await.body, anonymous);

    let mut jar = Jar::default();
    app.get(&mut jar, "/cart").await;
    let anonymous = app.get(&mut jar, "/id").await.1;
    app.get(&mut jar, "/login-keep?user=bob").await;
    assert_ne!(app.get(&mut jar, "/id").await.1, anonymous);
    assert_eq!(app.get(&mut jar, "/entries").await.1, "cart,user");
    assert!(app.events().iter().all(|e| e.1.is_none()));
}

/// Rolling deploy: new nodes know (and seal with) key 2, old nodes only key 1. A cookie sealed
/// by a new node that reaches an old node is an empty session there (key.unknown), never a
/// 500; the old node's own write replaces it, and a new node migrates an old cookie.
#[actix_web::test]
async fn rolling_deploy_cookie_sealed_by_a_key_only_new_nodes_know() {
    let bench = Bench::new();
    let alg = Algorithm::default();
    let now = bench.clock.now();
    let new_ring = Keyring::new(vec![key(1, alg, 0), key(2, alg, T0 - 10)], now).unwrap();
    let new_node = bench.node(bench.builder(new_ring)).await;
    let old_node = bench.node(bench.builder(ring(alg))).await;
    let mut jar = new_node.session("alice", 0).await;
    let cookie = jar.header();
    let ctx = "new → old";
    old_node
        .refused(cookie.as_bytes(), "key.unknown", ctx)
        .await;
    let r = old_node.send("/untouched", &[cookie.as_bytes()]).await;
    assert_eq!((r.status, r.set_cookie.len()), (200, 0));
    let (status, _, set) = old_node.get(&mut jar, "/login?user=alice").await;
    assert_eq!((status, set.len()), (200, 1));
    // The new node opens the old node's cookie and re-seals it under key 2 on a mere read.
    let (status, body, set) = new_node.get(&mut jar, "/whoami").await;
    assert_eq!((status, body.as_str(), set.len()), (200, "alice", 1));
    let cookie = jar.header();
    new_node
        .accepted(cookie.as_bytes(), "alice", "migrated")
        .await;
}

// =============================================================================================
// Domains
// =============================================================================================

/// The cookie name of [`parent_domain_node`].
const PARENT_NAME: &str = "__Secure-s";

/// A node whose cookies are for example.com and every subdomain (16 KiB total budget).
async fn parent_domain_node() -> Target<NodeApp!()> {
    let bench = Bench::new();
    let builder = bench
        .builder(ring(Algorithm::default()))
        .cookie_name(PARENT_NAME.into())
        .cookie_domain(Some("example.com".into()))
        .total_budget(16 * 1024);
    bench.node(builder).await
}

/// Cookie tossing: a sibling subdomain plants its own valid session for the parent domain with
/// a longer Path, so browsers send it first. Two different authentic sessions: neither is
/// trusted (`ambiguous`). One session sent twice (host-only and parent-domain copies) or a
/// planted session that does not open is not ambiguous.
#[actix_web::test]
async fn cookie_tossing_from_a_sibling_subdomain_is_ambiguous() {
    let app = parent_domain_node().await;
    for bytes in [0, 3200] {
        let victim = app.session("alice", bytes).await;
        let planted = app.session("mallory", bytes).await;
        let both = format!("{}; {}", planted.header(), victim.header());
        let ctx = format!("{bytes}");
        app.refused(both.as_bytes(), "ambiguous", &ctx).await;
        let twice = format!("{}; {}", victim.header(), victim.header());
        let ctx = "same session twice";
        app.accepted(twice.as_bytes(), "alice", ctx).await;
        let mut forged = pieces(&values(&planted, PARENT_NAME));
        let other = if &forged[0][10..11] == "A" { "B" } else { "A" };
        forged[0].replace_range(10..11, other);
        let forged = header_of(&pairs_for(PARENT_NAME, &forged));
        let mut cookie = forged;
        cookie.extend_from_slice(format!("; {}", victim.header()).as_bytes());
        app.accepted(&cookie, "alice", "planted garbage").await;
    }
}

/// The same attack with sessions of different chunk counts, in both directions. Until commit
/// 5159eca the set with fewer chunks saw the other set's higher chunk as a leftover
/// (`chunk.extra`) and was skipped, so a two-chunk session planted over a victim's one-chunk
/// session won silently; now the leftover rule only applies to a lone first cookie.
#[actix_web::test]
async fn cookie_tossing_with_another_chunk_count_is_ambiguous() {
    let app = parent_domain_node().await;
    for (victim_bytes, planted_bytes) in [(0, 3200), (3200, 0)] {
        let victim = app.session("alice", victim_bytes).await;
        let planted = app.session("mallory", planted_bytes).await;
        let both = format!("{}; {}", planted.header(), victim.header());
        let ctx = format!("planted {planted_bytes} over {victim_bytes}");
        app.refused(both.as_bytes(), "ambiguous", &ctx).await;
    }
}

// =============================================================================================
// Volume
// =============================================================================================

/// A variant of the existing volume test
/// (`middleware::garbage_cookies_at_volume_log_nothing_loud_and_do_not_grow_responses`, which
/// repeats one shape) with other garbage shapes (random bytes, random base64 under a valid count,
/// unknown key ids, wrong tags, floods of our names, oversized chunks, leftovers, junk without
/// our name): 10,000 requests, nothing at WARN or above, one DEBUG line per request that
/// carried our cookie (none otherwise), no Set-Cookie, responses that never grow.
#[actix_web::test]
async fn garbage_cookie_shapes_at_volume_log_nothing_loud() {
    let app = target().await;
    let valid = app.session_pieces("alice", 3200).await;
    let envelope = envelope_of(&valid);
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut shapes = [0usize; 10];
    let mut header_counts = HashSet::new();
    let mut expected_rejections = 0;
    for i in 0..10_000usize {
        let shape = i % 10;
        shapes[shape] += 1;
        let random_b64 = |rng: &mut StdRng, n: usize| -> String {
            (0..n)
                .map(|_| char::from(ALPHABET[rng.random_range(0..64)]))
                .collect()
        };
        let cookie: Vec<u8> = match shape {
            0 => {
                let n = rng.random_range(0..300);
                let mut v = format!("{NAME}=").into_bytes();
                v.extend((0..n).map(|_| match rng.random_range(0x20u8..=0xff) {
                    b';' | 0x7f => b'x',
                    b => b,
                }));
                v
            }
            1 => {
                let n = rng.random_range(0..4000);
                format!("{NAME}=1.{}", random_b64(&mut rng, n)).into_bytes()
            }
            2 => format!(
                "{NAME}=3.{}; {NAME}.1={}; {NAME}.2={}",
                random_b64(&mut rng, 50),
                random_b64(&mut rng, 50),
                random_b64(&mut rng, 7)
            )
            .into_bytes(),
            3 => format!("{NAME}={}.AAAA", rng.random::<u64>()).into_bytes(),
            4 => (0..70)
                .map(|j| format!("{NAME}.{}=x", 1 + j % 31))
                .collect::<Vec<_>>()
                .join("; ")
                .into_bytes(),
            5 => {
                let mut env = envelope.clone();
                rng.fill_bytes(&mut env[2..6]);
                header_of(&pairs_for(NAME, &recut(&env, &valid)))
            }
            6 => {
                let mut env = envelope.clone();
                let at = rng.random_range(6..env.len());
                env[at] ^= 1 << rng.random_range(0..8);
                header_of(&pairs_for(NAME, &recut(&env, &valid)))
            }
            7 => format!("{NAME}=1.{}", "A".repeat(rng.random_range(4097..20_000))).into_bytes(),
            8 => format!(
                "{}; {NAME}.{}=AAAA",
                header_of(&pairs_for(NAME, &valid))
                    .into_iter()
                    .map(char::from)
                    .collect::<String>(),
                rng.random_range(2..32)
            )
            .into_bytes(),
            _ => format!("{NAME}x=1; =2; {NAME}; x{NAME}=3; {NAME}.0=4").into_bytes(),
        };
        let ours = shape != 9;
        app.events();
        let r = app.send("/whoami", &[&cookie]).await;
        assert_eq!((r.status, r.set_cookie.len()), (401, 0), "shape {shape}");
        assert!(r.body.is_empty());
        header_counts.insert(r.header_count);
        let events = app.events();
        assert!(
            events.iter().all(|e| e.0 > Level::WARN),
            "shape {shape}: {events:?}"
        );
        assert_eq!(events.len(), usize::from(ours), "shape {shape}: {events:?}");
        expected_rejections += u64::from(ours);
    }
    assert_eq!(header_counts.len(), 1, "responses never grow");
    assert_eq!(app.stats.rejected_total(), expected_rejections);
    assert!(shapes.iter().all(|&n| n == 1000));
}

/// Issue 12: the first response whose `Set-Cookie` lines pass 4 KiB (a stock nginx's
/// `proxy_buffer_size`) says once, at info, which proxy settings it needs; one-chunk responses
/// say nothing, and later big ones do not repeat it.
#[actix_web::test]
async fn set_cookie_lines_over_4_kib_are_noted_once_at_info() {
    let bench = Bench::new();
    let app = bench.node(bench.rig()).await;
    let hints = || {
        bench
            .logs
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(level, category)| {
                *level == Level::INFO && category.as_deref() == Some("proxy.set_cookie_block")
            })
            .count()
    };
    let block = |lines: &[String]| lines.iter().map(|l| l.len() + 14).sum::<usize>();
    let mut jar = app.session("alice", 0).await;
    let (status, _, lines) = app.get(&mut jar, "/set?bytes=2000").await;
    assert_eq!((status, lines.len(), hints()), (200, 1, 0), "one chunk");
    assert!(block(&lines) <= 4096);
    let (status, _, lines) = app.get(&mut jar, "/set?bytes=4000").await;
    assert_eq!((status, lines.len()), (200, 2), "two chunks");
    assert!(block(&lines) > 4096, "{}", block(&lines));
    assert_eq!(hints(), 1);
    let (status, _, lines) = app.get(&mut jar, "/set?bytes=4100").await;
    assert_eq!((status, lines.len(), hints()), (200, 2, 1), "said once");
}
