//! Issue 11, revocation through the real actix service: the fleet-wide cutoff in the keyring
//! file (level 1), spread by hot reload, and the application's revalidation hook (level 2).

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sealed_session::{
    Algorithm, Codec, Keyring, RevalidationErrorPolicy, SessionConfig, SessionMiddleware,
    SessionState,
};
use tracing_subscriber::layer::SubscriberExt as _;

use crate::support::*;

fn write(path: &Path, ring: &Keyring) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, ring.to_json().as_bytes()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn temp_keyring_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sealed-session-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("keyring.json")
}

/// The session the jar carries, opened with `ring` as the middleware would.
fn state_of(jar: &Jar, ring: &Keyring, clock: &TestClock) -> SessionState {
    let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
    let pairs: Vec<(&[u8], &[u8])> = jar
        .0
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    codec.open(ring, pairs, clock.now()).unwrap().unwrap().state
}

#[actix_web::test]
async fn i11_cutoff_reaches_running_nodes_and_a_new_login_is_unaffected() {
    let clock = TestClock::new();
    let path = temp_keyring_path("revoke");
    let ring = Keyring::new(vec![key(1, Algorithm::default(), 0)], clock.now()).unwrap();
    write(&path, &ring);
    let from_file = SessionMiddleware::builder_from_file(&path).unwrap();
    let mw = on_test_clock(from_file, &clock)
        .reload_interval(Duration::from_millis(25))
        .idle_timeout(Some(Duration::from_secs(3600)))
        .renew_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app(mw.clone()).await;
    let stats = mw.stats();

    let mut alice = Jar::default();
    get(&app, &mut alice, "/login?user=alice").await;
    let issued = state_of(&alice, &ring, &clock).issued_at();
    // Idle renewal re-seals the session but never moves its issue time.
    clock.advance(120);
    let (status, _, set) = get(&app, &mut alice, "/whoami").await;
    assert_eq!((status, set.len()), (200, 1), "renewed for idleness");
    let renewed = state_of(&alice, &ring, &clock);
    assert_eq!(renewed.issued_at(), issued);
    assert_eq!(renewed.last_seen(), clock.now());
    let mut bob = Jar::default();
    get(&app, &mut bob, "/login?user=bob").await;

    // `sealed-session revoke --before now`, as the file it writes.
    clock.advance(10);
    let cut = ring.clone().with_not_before(Some(clock.now()));
    write(&path, &cut);
    let deadline = Instant::now() + Duration::from_secs(10);
    while mw.keyring().not_before().is_none() {
        assert!(Instant::now() < deadline, "cutoff not reloaded within 10 s");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(rejected(&stats, "revoked"), 0);
    for jar in [&mut alice, &mut bob] {
        let (status, _, set) = get(&app, jar, "/whoami").await;
        assert_eq!((status, set.len()), (401, 0));
    }
    assert_eq!(rejected(&stats, "revoked"), 2);
    assert_eq!(stats.rejected_total(), 2);

    // Logging in again starts a session issued after the cutoff.
    get(&app, &mut alice, "/login?user=alice").await;
    assert_eq!(get(&app, &mut alice, "/whoami").await.1, "alice");
    assert!(state_of(&alice, &cut, &clock).issued_at() >= clock.now());
    clock.advance(120);
    assert_eq!(get(&app, &mut alice, "/whoami").await.0, 200);
    assert_eq!(get(&app, &mut bob, "/whoami").await.0, 401);
    // The login's `clear()` opened alice's revoked cookie too: 2 + 1 + bob's.
    assert_eq!(rejected(&stats, "revoked"), 4);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[actix_web::test]
async fn i11_requests_that_never_touch_the_session_count_nothing() {
    let clock = TestClock::new();
    let ring = ring(Algorithm::default());
    let mw = builder(ring.clone(), &clock).build().unwrap();
    let app = app(mw.clone()).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=alice").await;

    clock.advance(5);
    let cut = ring.with_not_before(Some(clock.now()));
    let mw = builder(cut, &clock).build().unwrap();
    let app = crate::support::app(mw.clone()).await;
    assert_eq!(get(&app, &mut jar, "/untouched").await.0, 200);
    assert_eq!(
        mw.stats().rejected_total(),
        0,
        "the cookie was never opened"
    );
    assert_eq!(get(&app, &mut jar, "/whoami").await.0, 401);
    assert_eq!(rejected(&mw.stats(), "revoked"), 1);
}

// ---------------------------------------------------------------------------------------------
// Level 2: the application's revalidation hook.

/// The application's side: which users' sessions are still good, how often it was asked, and
/// whether its database is down.
#[derive(Clone, Default)]
struct Directory {
    revoked: Arc<Mutex<Vec<String>>>,
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl Directory {
    fn hook(
        &self,
    ) -> impl Fn(SessionState) -> std::future::Ready<Result<bool, std::io::Error>> + Send + Sync + 'static
    {
        let dir = self.clone();
        move |state: SessionState| {
            dir.calls.fetch_add(1, Ordering::SeqCst);
            if dir.down.load(Ordering::SeqCst) {
                return std::future::ready(Err(std::io::Error::other("database down")));
            }
            let user = state
                .get::<String>("user")
                .ok()
                .flatten()
                .unwrap_or_default();
            std::future::ready(Ok(!dir.revoked.lock().unwrap().contains(&user)))
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn validated_at(jar: &Jar, clock: &TestClock) -> u64 {
    let state = state_of(jar, &ring(Algorithm::default()), clock);
    state
        .validated_at()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[actix_web::test]
async fn i11_revalidation_runs_once_per_interval_and_drops_refused_sessions() {
    let clock = TestClock::new();
    let dir = Directory::default();
    let mw = builder(ring(Algorithm::default()), &clock)
        .revalidate(dir.hook())
        .build()
        .unwrap();
    let app = app(mw.clone()).await;
    let stats = mw.stats();

    let mut alice = Jar::default();
    get(&app, &mut alice, "/login?user=alice").await;
    assert_eq!(validated_at(&alice, &clock), T0, "a login is a validation");
    for _ in 0..5 {
        clock.advance(59);
        assert_eq!(get(&app, &mut alice, "/whoami").await.1, "alice");
    }
    assert_eq!(dir.calls(), 0, "within the interval nothing is asked");

    // Due (5 min since the login): asked once, re-sealed with the new validated_at.
    clock.advance(5);
    let (status, _, set) = get(&app, &mut alice, "/whoami").await;
    assert_eq!((status, set.len(), dir.calls()), (200, 1, 1));
    assert_eq!(validated_at(&alice, &clock), T0 + 300);
    assert_eq!(stats.revalidated(), 1);
    // A route that never reads the session is checked too (the handler cannot know).
    clock.advance(299);
    assert_eq!(get(&app, &mut alice, "/untouched").await.0, 200);
    assert_eq!(dir.calls(), 1);

    // The application revokes alice: still served until her confirmation is 5 min old.
    dir.revoked.lock().unwrap().push("alice".into());
    assert_eq!(get(&app, &mut alice, "/whoami").await.0, 200);
    clock.advance(1);
    let (status, _, set) = get(&app, &mut alice, "/whoami").await;
    assert_eq!(
        (status, dir.calls()),
        (401, 2),
        "refused before the handler saw it"
    );
    assert!(set.iter().all(|l| l.contains("Max-Age=0")) && !set.is_empty());
    assert!(alice.0.is_empty(), "the cookies were expired");
    assert_eq!(rejected(&stats, "revalidation.failed"), 1);

    // Logging in again works (the hook judges the new session only after an interval).
    let mut bob = Jar::default();
    get(&app, &mut bob, "/login?user=bob").await;
    dir.revoked.lock().unwrap().clear();
    get(&app, &mut alice, "/login?user=alice").await;
    clock.advance(300);
    assert_eq!(get(&app, &mut alice, "/whoami").await.1, "alice");
    assert_eq!(get(&app, &mut bob, "/whoami").await.1, "bob");
    assert_eq!(dir.calls(), 4);
}

#[actix_web::test]
async fn i11_a_stale_session_refused_at_login_is_replaced_by_the_new_one() {
    let clock = TestClock::new();
    let dir = Directory::default();
    let mw = builder(ring(Algorithm::default()), &clock)
        .revalidate(dir.hook())
        .revalidate_interval(Duration::from_secs(60))
        .build()
        .unwrap();
    let app = app(mw.clone()).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=alice").await;
    assert_eq!(get(&app, &mut jar, "/set?bytes=3500").await.0, 200);
    assert!(jar.0.len() >= 2, "a chunked session");
    dir.revoked.lock().unwrap().push("alice".into());
    clock.advance(60);
    let (status, _, set) = get(&app, &mut jar, "/login?user=carol").await;
    assert_eq!(status, 200);
    assert_eq!(
        jar.0.len(),
        1,
        "new session sealed, the old chunks expired: {set:?}"
    );
    assert_eq!(get(&app, &mut jar, "/whoami").await.1, "carol");
    assert_eq!(rejected(&mw.stats(), "revalidation.failed"), 1);
}

#[actix_web::test]
async fn i11_hook_errors_follow_the_policy() {
    for policy in [RevalidationErrorPolicy::Keep, RevalidationErrorPolicy::Drop] {
        let clock = TestClock::new();
        let dir = Directory::default();
        let loud = LoudEvents::default();
        let subscriber = tracing_subscriber::registry().with(loud.clone());
        let _guard = tracing::subscriber::set_default(subscriber);
        let mw = builder(ring(Algorithm::default()), &clock)
            .revalidate(dir.hook())
            .revalidation_error_policy(policy)
            // Idle renewal later than the check, so a re-seal can only be the check's.
            .renew_interval(Duration::from_secs(900))
            .build()
            .unwrap();
        let app = app(mw.clone()).await;
        let mut jar = Jar::default();
        get(&app, &mut jar, "/login?user=alice").await;
        dir.down.store(true, Ordering::SeqCst);
        clock.advance(300);
        let (status, _, set) = get(&app, &mut jar, "/whoami").await;
        assert_eq!(mw.stats().revalidation_errors(), 1);
        assert_eq!(loud.0.lock().unwrap().len(), 1, "one warning");
        match policy {
            RevalidationErrorPolicy::Keep => {
                assert_eq!((status, set.len()), (200, 0), "kept, not re-sealed");
                // Asked again on the next request, and confirmed once the database is back.
                get(&app, &mut jar, "/whoami").await;
                assert_eq!(dir.calls(), 2);
                dir.down.store(false, Ordering::SeqCst);
                let (status, _, set) = get(&app, &mut jar, "/whoami").await;
                assert_eq!((status, set.len(), dir.calls()), (200, 1, 3));
                assert_eq!(rejected(&mw.stats(), "revalidation.failed"), 0);
            }
            _ => {
                assert_eq!(status, 401);
                assert!(jar.0.is_empty());
                assert_eq!(rejected(&mw.stats(), "revalidation.failed"), 1);
            }
        }
    }
}

#[actix_web::test]
async fn i11_without_a_hook_validated_at_is_never_sealed() {
    let clock = TestClock::new();
    let mw = builder(ring(Algorithm::default()), &clock).build().unwrap();
    let app = app(mw).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=alice").await;
    clock.advance(400);
    let (_, _, set) = get(&app, &mut jar, "/set?bytes=10").await;
    assert_eq!(set.len(), 1);
    // Not carried: it reads as the issue time, however often the session was re-sealed.
    assert_eq!(validated_at(&jar, &clock), T0);

    let zero = builder(ring(Algorithm::default()), &clock)
        .revalidate(Directory::default().hook())
        .revalidate_interval(Duration::from_millis(500))
        .build();
    assert!(zero.is_err());
}
