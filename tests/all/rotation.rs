//! Key lifecycle through the middleware: a whole rotation with injected time, and hot reload
//! of the keyring file that never lets a bad file replace good keys.

use std::path::Path;
use std::time::{Duration, Instant};

use sealed_session::{
    Algorithm, Codec, KeyId, Keyring, SessionConfig, SessionMiddleware, SessionMiddlewareBuilder,
};

use crate::support::*;

fn write(path: &Path, ring: &Keyring) {
    std::fs::write(path, ring.to_json().as_bytes()).unwrap();
}

/// Waits (bounded) until the middleware's keyring satisfies `done`.
async fn wait_for(mw: &SessionMiddleware, done: impl Fn(&Keyring) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(&mw.keyring()) {
        assert!(
            Instant::now() < deadline,
            "keyring was not reloaded within 10 s"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The suite's builder ([`on_test_clock`]) for the keyring file at `path`, re-read every
/// `interval`.
fn reloading(path: &Path, clock: &TestClock, interval: Duration) -> SessionMiddlewareBuilder {
    let from_file = SessionMiddleware::builder_from_file(path).unwrap();
    on_test_clock(from_file, clock).reload_interval(interval)
}

fn sealed_with(jar: &Jar, ring: &Keyring, clock: &TestClock) -> KeyId {
    let codec = Codec::new(SessionConfig::new().cookie_name("__Host-s")).unwrap();
    let pairs: Vec<(&[u8], &[u8])> = jar
        .0
        .iter()
        .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
        .collect();
    codec
        .open(ring, pairs, clock.now())
        .unwrap()
        .unwrap()
        .key_id
}

fn temp_keyring_path(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sealed-session-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("keyring.json")
}

#[actix_web::test]
async fn rotation_never_logs_anyone_out_and_retirement_rejects_old_cookies() {
    let clock = TestClock::new();
    let path = temp_keyring_path("rotation");
    let a = key(1, Algorithm::Xaes256Gcm, 0);
    let b = key(2, Algorithm::XChaCha20Poly1305, T0 + 3600);
    let ring_a = Keyring::new(vec![a.clone()], clock.now()).unwrap();
    write(&path, &ring_a);
    let mw = reloading(&path, &clock, Duration::from_millis(25))
        .idle_timeout(None)
        .build()
        .unwrap();
    let app = app(mw.clone()).await;

    // Log in under key A.
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=alice").await;
    let before_rotation = jar.clone();
    assert_eq!(sealed_with(&jar, &ring_a, &clock), KeyId([1; 4]));

    // Rotate in B with a one-hour delay; every node loads it, A still seals.
    let ring_ab = Keyring::new(vec![a.clone(), b.clone()], clock.now()).unwrap();
    write(&path, &ring_ab);
    wait_for(&mw, |r| r.keys().len() == 2).await;
    let (status, _, set) = get(&app, &mut jar, "/whoami").await;
    assert_eq!(
        (status, set.len()),
        (200, 0),
        "nothing to re-seal before activation"
    );
    get(&app, &mut jar, "/set?bytes=10").await;
    assert_eq!(
        sealed_with(&jar, &ring_ab, &clock),
        KeyId([1; 4]),
        "A seals until B activates"
    );

    // B activates: the next response re-seals under B, without any write by the handler.
    clock.advance(3600);
    let (status, body, set) = get(&app, &mut jar, "/whoami").await;
    assert_eq!((status, body.as_str(), set.len()), (200, "alice", 1));
    assert_eq!(sealed_with(&jar, &ring_ab, &clock), KeyId([2; 4]));
    let (_, _, set) = get(&app, &mut jar, "/whoami").await;
    assert!(set.is_empty(), "re-sealed once, not on every request");

    // Retire A: the migrated client stays logged in, the pre-rotation cookie is refused.
    let ring_b = ring_ab
        .with_retired(clock.now(), |k| k.id() == KeyId([1; 4]))
        .unwrap();
    write(&path, &ring_b);
    wait_for(&mw, |r| {
        r.get(KeyId([1; 4])).is_some_and(|k| k.is_retired())
    })
    .await;
    assert_eq!(get(&app, &mut jar, "/whoami").await.1, "alice");
    let mut old = before_rotation;
    assert_eq!(get(&app, &mut old, "/whoami").await.0, 401);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[actix_web::test]
async fn hot_reload_ignores_truncated_and_garbage_files() {
    let clock = TestClock::new();
    let path = temp_keyring_path("reload");
    let ring_a = Keyring::new(vec![key(1, Algorithm::default(), 0)], clock.now()).unwrap();
    write(&path, &ring_a);
    let mw = reloading(&path, &clock, Duration::from_millis(20))
        .build()
        .unwrap();
    let app = app(mw.clone()).await;
    let mut jar = Jar::default();
    get(&app, &mut jar, "/login?user=bob").await;

    let json = ring_a
        .with_key(key(2, Algorithm::default(), 0), clock.now())
        .unwrap()
        .to_json();
    let bad: Vec<Vec<u8>> = vec![
        json.as_bytes()[..json.len() / 2].to_vec(),
        b"\x00\xffgarbage".to_vec(),
        Vec::new(),
        b"{\"version\":1,\"keys\":[]}".to_vec(),
    ];
    for bytes in bad {
        std::fs::write(&path, &bytes).unwrap();
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            mw.keyring().keys().len(),
            1,
            "a bad file replaced the keyring"
        );
        assert_eq!(get(&app, &mut jar, "/whoami").await.1, "bob");
    }
    std::fs::remove_file(&path).unwrap();
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        get(&app, &mut jar, "/whoami").await.1,
        "bob",
        "a missing file keeps the keys"
    );

    // A good file is picked up without restart.
    std::fs::write(&path, json.as_bytes()).unwrap();
    wait_for(&mw, |r| r.keys().len() == 2).await;
    assert_eq!(get(&app, &mut jar, "/whoami").await.1, "bob");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
