//! Issue 11, revocation through the real actix service: the fleet-wide cutoff in the keyring
//! file (level 1), spread by hot reload.

use std::path::Path;
use std::time::{Duration, Instant};

use sealed_session::{Algorithm, Codec, Keyring, SessionConfig, SessionMiddleware, SessionState};

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
