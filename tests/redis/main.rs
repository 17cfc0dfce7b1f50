//! Level 3 of revocation against a real `redis-server` (feature `redis`): three middleware
//! instances ("nodes") in one process, each with its own `RedisRevocation` (own mirror, own
//! threads, own connections), as three machines would have.
//!
//! The test installs `redis-server` from Debian if it is missing (printing a `prerequisite:`
//! line), starts it on a free loopback port, and stops it by PID. A small TCP proxy owned by
//! the test sits between one node and Redis to cut that node off (a partition).
//!
//! Run: `cargo test -p sealed-session --features redis --test redis`.

#[path = "../all/support.rs"]
#[allow(dead_code)]
mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, HttpResponse, test, web};
use sealed_session::{
    Algorithm, NoMirrorPolicy, RedisRevocation, RedisRevocationOptions, Session, SessionMiddleware,
};
use support::{Jar, get, rejected, ring, routes};

// ---------------------------------------------------------------------------------------
// redis-server, started and stopped by this test

fn ensure_redis_server() -> PathBuf {
    if let Some(path) = which("redis-server") {
        return path;
    }
    println!("prerequisite: installing redis-server with apt-get (Debian package redis-server)");
    let ok = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "redis-server",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "redis-server is missing and apt-get could not install it"
    );
    which("redis-server").expect("redis-server installed but not on PATH")
}

fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/usr/sbin".into()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `redis-server` on 127.0.0.1, no persistence (a restart loses everything: the hardest
/// case for the mirror), killed by PID when dropped.
struct RedisServer {
    binary: PathBuf,
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port; another port when a parallel test's server took it first.
    fn start() -> Self {
        let binary = ensure_redis_server();
        for _ in 0..10 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "sealed-session-redis-{}-{port}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let mut server = RedisServer {
                binary: binary.clone(),
                port,
                dir,
                child: None,
            };
            if server.try_start() {
                return server;
            }
        }
        panic!("redis-server could not start on any of 10 free ports");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it again on the same port (after `kill`).
    fn restart(&mut self) {
        assert!(
            self.try_start(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    /// Starts it and waits (bounded) until *this* process answers on the port (its
    /// `process_id` in `INFO server`); false when it exited or another one answers.
    fn try_start(&mut self) -> bool {
        assert!(self.child.is_none());
        let child = Command::new(&self.binary)
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--dir", self.dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some())
            {
                self.child = None;
                return false;
            }
            let answered = redis::Client::open(self.url()).ok().and_then(|client| {
                let mut con = client
                    .get_connection_with_timeout(Duration::from_millis(200))
                    .ok()?;
                redis::cmd("INFO")
                    .arg("server")
                    .query::<String>(&mut con)
                    .ok()
            });
            if let Some(info) = answered {
                if info
                    .lines()
                    .any(|l| l.trim() == format!("process_id:{pid}"))
                {
                    return true;
                }
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// SIGKILL by PID, then reaps it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn zcard(&self, key: &str) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut con = client
            .get_connection_with_timeout(Duration::from_secs(1))
            .unwrap();
        redis::cmd("ZCARD").arg(key).query(&mut con).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------
// A TCP proxy the test can cut: a partition between one node and Redis

struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (c, s, o) = (Arc::clone(&cut), Arc::clone(&stop), Arc::clone(&open));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    // Cut off: the connection dies at once, as behind a rejecting firewall.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let mut open = o.lock().unwrap();
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                drop(open);
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy {
            port,
            cut,
            stop,
            open,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Drops every connection through the proxy and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

// ---------------------------------------------------------------------------------------
// Error logs, by list prefix (the nodes' threads log from threads of their own, so the
// subscriber is global; each test uses its own prefix)

#[derive(Default)]
struct PrefixVisitor(Option<String>);

impl tracing::field::Visit for PrefixVisitor {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "prefix" {
            self.0 = Some(format!("{value:?}"));
        }
    }
}

struct ErrorsByPrefix(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for ErrorsByPrefix {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::ERROR {
            let mut visitor = PrefixVisitor::default();
            event.record(&mut visitor);
            if let Some(prefix) = visitor.0 {
                self.0.lock().unwrap().push(prefix);
            }
        }
    }
}

/// How many error events the lists with `prefix` logged so far.
fn errors_logged(prefix: &str) -> usize {
    static LOG: std::sync::OnceLock<Arc<Mutex<Vec<String>>>> = std::sync::OnceLock::new();
    let log = LOG.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let log = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(ErrorsByPrefix(Arc::clone(&log)));
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        log
    });
    log.lock().unwrap().iter().filter(|p| *p == prefix).count()
}

// ---------------------------------------------------------------------------------------
// The nodes

fn options(prefix: &str) -> RedisRevocationOptions {
    RedisRevocationOptions::new()
        .prefix(prefix)
        .user_key_entry("user")
        .resync_interval(Duration::from_secs(2))
        .io_timeout(Duration::from_millis(500))
}

struct Node {
    list: RedisRevocation,
    mw: SessionMiddleware,
}

fn node(url: &str, prefix: &str) -> Node {
    let list = RedisRevocation::connect(url, options(prefix)).unwrap();
    let mw = SessionMiddleware::builder(ring(Algorithm::default()))
        .cookie_name("__Host-s".into())
        .revocation(list.clone())
        .build()
        .unwrap();
    Node { list, mw }
}

async fn app(
    node: &Node,
) -> impl Service<
    actix_http::Request,
    Response = ServiceResponse<impl actix_web::body::MessageBody>,
    Error = actix_web::Error,
> {
    let list = node.list.clone();
    test::init_service(App::new().wrap(node.mw.clone()).configure(routes).route(
        "/logout-everywhere",
        web::get().to(move |s: Session| {
            let list = list.clone();
            async move {
                match s.get::<String>("user") {
                    Ok(Some(user)) => {
                        list.revoke_user(&user, SystemTime::now()).unwrap();
                        s.purge();
                        HttpResponse::Ok().finish()
                    }
                    _ => HttpResponse::Unauthorized().finish(),
                }
            }
        }),
    ))
    .await
}

/// Waits (bounded: 10 s) until every node has loaded the list once.
async fn synced(nodes: &[&Node]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !nodes.iter().all(|n| n.list.is_synced()) {
        assert!(Instant::now() < deadline, "a node never loaded the list");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn login<S, B>(app: &S, user: &str) -> Jar
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let mut jar = Jar::default();
    let (status, ..) = get(app, &mut jar, &format!("/login?user={user}")).await;
    assert_eq!(status, 200);
    jar
}

/// `/whoami` with a copy of `jar` (a replayed cookie: the jar is never updated).
async fn whoami<S, B>(app: &S, jar: &Jar) -> u16
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let status = get(app, &mut jar.clone(), "/whoami").await.0;
    assert!(status == 200 || status == 401, "unexpected status {status}");
    status
}

macro_rules! until_refused {
    ($app:expr, $jar:expr, $what:expr) => {{
        let start = Instant::now();
        loop {
            if whoami($app, $jar).await == 401 {
                break start.elapsed();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{} still accepted after 10 s",
                $what
            );
            actix_web::rt::time::sleep(Duration::from_millis(1)).await;
        }
    }};
}

// ---------------------------------------------------------------------------------------

#[actix_web::test]
async fn logout_on_a_refuses_the_replayed_cookie_on_b_and_c() {
    let redis = RedisServer::start();
    let prefix = "t1";
    let (a, b, c) = (
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
    );
    synced(&[&a, &b, &c]).await;
    let (app_a, app_b, app_c) = (app(&a).await, app(&b).await, app(&c).await);

    let mut delays = Vec::new();
    for round in 0..20 {
        let mut jar = login(&app_a, &format!("user{round}")).await;
        let copy = jar.clone();
        let other = login(&app_b, "bystander").await;
        for app in [&app_b, &app_c] {
            assert_eq!(whoami(app, &copy).await, 200);
        }
        // Logout on A: A refuses the copy at once (its own mirror), B and C once the message
        // arrived.
        let start = Instant::now();
        assert_eq!(get(&app_a, &mut jar, "/logout").await.0, 200);
        assert_eq!(whoami(&app_a, &copy).await, 401);
        until_refused!(&app_b, &copy, "the logged-out session on B");
        until_refused!(&app_c, &copy, "the logged-out session on C");
        delays.push(start.elapsed());
        // Another user's session is untouched.
        for app in [&app_a, &app_b, &app_c] {
            assert_eq!(whoami(app, &other).await, 200);
        }
    }
    delays.sort();
    println!(
        "propagation (logout on A -> refused on B and C), 20 rounds: median {:?}, max {:?}",
        delays[delays.len() / 2],
        delays[delays.len() - 1]
    );
    assert!(rejected(&b.mw.stats(), "revoked_session") >= 20);
    assert!(rejected(&c.mw.stats(), "revoked_session") >= 20);
    // One entry per logged-out session in Redis (the list never outgrows the live sessions).
    assert_eq!(redis.zcard("t1:sessions"), 20);
    let stats = b.list.stats();
    assert_eq!((stats.sessions, stats.users, stats.pending), (20, 0, 0));
    assert!(stats.connected);
}

#[actix_web::test]
async fn logout_everywhere_revokes_every_session_of_the_user_on_every_node() {
    let redis = RedisServer::start();
    let prefix = "t2";
    let (a, b, c) = (
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
    );
    synced(&[&a, &b, &c]).await;
    let (app_a, app_b, app_c) = (app(&a).await, app(&b).await, app(&c).await);

    // alice on two devices (logged in on A and on B), bob on C.
    let alice1 = login(&app_a, "alice").await;
    let alice2 = login(&app_b, "alice").await;
    let bob = login(&app_c, "bob").await;
    // The same second as the logins is refused too, so step into the next one first.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        get(&app_c, &mut alice1.clone(), "/logout-everywhere")
            .await
            .0,
        200
    );
    for (app, n) in [(&app_a, &a), (&app_b, &b), (&app_c, &c)] {
        until_refused!(
            app,
            &alice1,
            format!("alice's first session ({:?})", n.list)
        );
        until_refused!(
            app,
            &alice2,
            format!("alice's second session ({:?})", n.list)
        );
        assert_eq!(whoami(app, &bob).await, 200);
    }
    // The other device's session can only be refused by user; the one that asked was also
    // purged, so it is refused by id or by user, whichever message arrived first.
    for n in [&a, &b, &c] {
        let (by_id, by_user) = (
            rejected(&n.mw.stats(), "revoked_session"),
            rejected(&n.mw.stats(), "revoked_user"),
        );
        assert!(by_user >= 1 && by_id + by_user >= 2, "{by_id} {by_user}");
    }
    // A new login of alice, a second later, works everywhere.
    actix_web::rt::time::sleep(Duration::from_millis(1100)).await;
    let fresh = login(&app_a, "alice").await;
    for app in [&app_a, &app_b, &app_c] {
        assert_eq!(whoami(app, &fresh).await, 200);
    }
    assert_eq!(redis.zcard("t2:users"), 1);
}

#[actix_web::test]
async fn redis_killed_and_restarted_no_500_and_the_mirrors_resync() {
    assert_eq!(errors_logged("t3"), 0);
    let mut redis = RedisServer::start();
    let prefix = "t3";
    let (a, b, c) = (
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
        node(&redis.url(), prefix),
    );
    synced(&[&a, &b, &c]).await;
    let (app_a, app_b, app_c) = (app(&a).await, app(&b).await, app(&c).await);

    let mut before = login(&app_a, "before").await;
    let before_copy = before.clone();
    let mut during = login(&app_a, "during").await;
    let during_copy = during.clone();
    let alive = login(&app_b, "alive").await;
    assert_eq!(get(&app_a, &mut before, "/logout").await.0, 200);
    until_refused!(&app_b, &before_copy, "the first logout on B");
    until_refused!(&app_c, &before_copy, "the first logout on C");

    redis.kill();
    // Every node keeps serving (`whoami` asserts 200 or 401, never a 500), from its mirror.
    let deadline = Instant::now() + Duration::from_secs(10);
    while [&a, &b, &c].iter().any(|n| n.list.stats().connected) {
        assert!(Instant::now() < deadline, "the outage was never noticed");
        for app in [&app_a, &app_b, &app_c] {
            assert_eq!(whoami(app, &alive).await, 200);
            assert_eq!(whoami(app, &before_copy).await, 401);
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    // A logout during the outage: in force on A at once, queued for Redis.
    assert_eq!(get(&app_a, &mut during, "/logout").await.0, 200);
    assert_eq!(whoami(&app_a, &during_copy).await, 401);
    assert_eq!(a.list.stats().pending, 1);
    for app in [&app_b, &app_c] {
        assert_eq!(
            whoami(app, &during_copy).await,
            200,
            "B and C cannot know yet"
        );
        assert_eq!(whoami(app, &alive).await, 200);
    }

    // Redis comes back empty (no persistence): the queued logout reaches it, and the nodes
    // put back what it forgot.
    let loads: Vec<u64> = [&a, &b, &c].iter().map(|n| n.list.stats().loads).collect();
    redis.restart();
    for app in [&app_b, &app_c] {
        until_refused!(app, &during_copy, "the logout made during the outage");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis.zcard("t3:sessions") < 2
        || [&a, &b, &c]
            .iter()
            .zip(&loads)
            .any(|(n, l)| n.list.stats().loads <= *l)
    {
        assert!(
            Instant::now() < deadline,
            "Redis was not re-seeded / mirrors not reloaded"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    for (app, n) in [(&app_a, &a), (&app_b, &b), (&app_c, &c)] {
        assert_eq!(whoami(app, &before_copy).await, 401);
        assert_eq!(whoami(app, &during_copy).await, 401);
        assert_eq!(whoami(app, &alive).await, 200);
        let stats = n.list.stats();
        assert!(stats.connected);
        assert_eq!((stats.sessions, stats.pending), (2, 0));
    }
    // One error per node for the whole outage, however many calls failed.
    assert_eq!(errors_logged("t3"), 3);
    // A node started now, from Redis alone, knows both.
    let d = node(&redis.url(), prefix);
    synced(&[&d]).await;
    let app_d = app(&d).await;
    assert_eq!(whoami(&app_d, &before_copy).await, 401);
    assert_eq!(whoami(&app_d, &during_copy).await, 401);
}

#[actix_web::test]
async fn a_partitioned_node_catches_up_when_it_reconnects() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(redis.port);
    let prefix = "t4";
    let (a, b) = (node(&redis.url(), prefix), node(&redis.url(), prefix));
    let c = node(&proxy.url(), prefix);
    synced(&[&a, &b, &c]).await;
    let (app_a, app_b, app_c) = (app(&a).await, app(&b).await, app(&c).await);

    let mut s1 = login(&app_a, "s1").await;
    let s1_copy = s1.clone();
    let mut s2 = login(&app_c, "s2").await;
    let s2_copy = s2.clone();

    proxy.cut();
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.list.stats().connected {
        assert!(Instant::now() < deadline, "C never noticed the partition");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    // Logout on A while C is cut off: B learns it, C cannot yet (and keeps serving).
    assert_eq!(get(&app_a, &mut s1, "/logout").await.0, 200);
    until_refused!(&app_b, &s1_copy, "s1 on B");
    assert_eq!(whoami(&app_c, &s1_copy).await, 200);
    // Logout on C while cut off: in force on C, queued; A and B cannot know yet.
    assert_eq!(get(&app_c, &mut s2, "/logout").await.0, 200);
    assert_eq!(whoami(&app_c, &s2_copy).await, 401);
    assert_eq!(whoami(&app_a, &s2_copy).await, 200);
    assert_eq!(c.list.stats().pending, 1);

    // Restored: C reloads (s1) and sends its queue (s2) to A and B.
    let start = Instant::now();
    proxy.restore();
    until_refused!(&app_c, &s1_copy, "s1 on C after reconnection");
    until_refused!(&app_a, &s2_copy, "s2 on A after C reconnected");
    until_refused!(&app_b, &s2_copy, "s2 on B after C reconnected");
    println!(
        "partition healed: both revocations in force on every node {:?} after the restore",
        start.elapsed()
    );
    assert!(c.list.stats().connected);
    assert_eq!(c.list.stats().pending, 0);
}

#[actix_web::test]
async fn a_node_that_never_loaded_the_list_serves_or_refuses_by_policy() {
    // Nothing listens on this port.
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let serve = node(&url, "t5");
    let refuse_list =
        RedisRevocation::connect(&url, options("t5").no_mirror_policy(NoMirrorPolicy::Refuse))
            .unwrap();
    let refuse = Node {
        mw: SessionMiddleware::builder(ring(Algorithm::default()))
            .cookie_name("__Host-s".into())
            .revocation(refuse_list.clone())
            .build()
            .unwrap(),
        list: refuse_list,
    };
    let (app_serve, app_refuse) = (app(&serve).await, app(&refuse).await);
    let jar = login(&app_serve, "x").await;
    assert_eq!(whoami(&app_serve, &jar).await, 200);
    assert_eq!(whoami(&app_refuse, &jar).await, 401);
    assert_eq!(rejected(&refuse.mw.stats(), "revocation_unavailable"), 1);
    assert!(!serve.list.is_synced() && !refuse.list.is_synced());
    // The revocation still works locally, and waits in the queue.
    let mut out = jar.clone();
    assert_eq!(get(&app_serve, &mut out, "/logout").await.0, 200);
    assert_eq!(whoami(&app_serve, &jar).await, 401);
    assert_eq!(serve.list.stats().pending, 1);
}
