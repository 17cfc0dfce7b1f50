//! The `sealed-session` binary, run for real: every subcommand, its output and its errors.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sealed_session::keyring::{Key, KeyId, Secret};
use sealed_session::{Algorithm, Codec, Keyring, SessionConfig};
use serde_json::Value;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const BIN: &str = env!("CARGO_BIN_EXE_sealed-session");

/// A fresh directory under Cargo's temporary directory for integration tests, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }

    /// Failed with `code`, naming `needle` on stderr.
    #[track_caller]
    fn fails(self, code: i32, needle: &str) -> Self {
        assert_eq!(self.code, code, "{self:#?}");
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}: {self:#?}"
        );
        self
    }

    /// Names `needle` on stdout.
    #[track_caller]
    fn says(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}: {self:#?}"
        );
        self
    }

    /// Prints none of `secrets`, on stdout or stderr.
    #[track_caller]
    fn hides(&self, secrets: &[String]) {
        for secret in secrets {
            assert!(
                !self.stdout.contains(secret.as_str()) && !self.stderr.contains(secret.as_str()),
                "{self:#?}"
            );
        }
    }
}

fn cli(args: &[&str]) -> Run {
    cli_with_stdin(args, "")
}

fn cli_with_stdin(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// `sealed-session <command…> --keyring <keyring> <rest…>`, `stdin` on standard input.
fn on_keyring(command: &[&str], keyring: &Path, rest: &[&str], stdin: &str) -> Run {
    cli_with_stdin(&[command, &["--keyring", p(keyring)], rest].concat(), stdin)
}

/// `sealed-session keys <sub> --keyring <keyring> <rest…>`.
fn keys(sub: &str, keyring: &Path, rest: &[&str]) -> Run {
    on_keyring(&["keys", sub], keyring, rest, "")
}

/// `sealed-session check --keyring <keyring>`.
fn check(keyring: &Path) -> Run {
    on_keyring(&["check"], keyring, &[], "")
}

/// `sealed-session inspect --keyring <keyring> <rest…>`.
fn inspect(keyring: &Path, rest: &[&str]) -> Run {
    on_keyring(&["inspect"], keyring, rest, "")
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn days_ago(days: u64) -> SystemTime {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    UNIX_EPOCH + Duration::from_secs(now - days * 86_400)
}

/// A key with a fixed id that was created and activated `days` ago.
fn old_key(id: u8, days: u64) -> Key {
    Key::new(
        KeyId([id; 4]),
        Algorithm::default(),
        Secret::generate().unwrap(),
        days_ago(days),
        days_ago(days),
    )
}

fn id(n: u8) -> String {
    KeyId([n; 4]).to_string()
}

/// Writes a keyring made with the library (mode 0600), so that activation times lie in the past.
fn write_keyring(path: &Path, keys: Vec<Key>) {
    let ring = Keyring::new(keys, SystemTime::now()).unwrap();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(ring.to_json().as_bytes()).unwrap();
}

/// A temporary directory and its `keyring.json`, made by `keys init`.
fn initialised() -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    keys("init", &path, &[]).ok();
    (dir, path)
}

/// A temporary directory and its `keyring.json`, holding `ring_keys` ([`write_keyring`]).
fn written(ring_keys: Vec<Key>) -> (TempDir, PathBuf) {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, ring_keys);
    (dir, path)
}

fn load(path: &Path) -> Keyring {
    Keyring::from_json(&fs::read(path).unwrap(), SystemTime::now()).unwrap()
}

fn file_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

/// Every secret in the file, as it is stored (base64url) and as hex.
fn secrets(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for key in file_json(path)["keys"].as_array().unwrap() {
        let b64 = key["secret"].as_str().unwrap().to_owned();
        let bytes = URL_SAFE_NO_PAD.decode(&b64).unwrap();
        assert_eq!(bytes.len(), 32);
        out.push(hex(&bytes));
        out.push(b64);
    }
    out
}

/// `keys list --json`, as (id, state) pairs in file order.
fn states(path: &Path) -> Vec<(String, String)> {
    let run = keys("list", path, &["--json"]).ok();
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["id"].as_str().unwrap().to_owned(),
                k["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `keys list --json` gives the `expected` (id, state) pairs.
#[track_caller]
fn assert_states(path: &Path, expected: &[(&str, &str)]) {
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(states(path), expected);
}

/// A Cookie header carrying a session sealed with `keyring` at `now`.
fn sealed_header(
    config: SessionConfig,
    keyring: &Keyring,
    now: SystemTime,
    fill: impl FnOnce(&mut sealed_session::SessionState),
) -> String {
    let codec = Codec::new(config).unwrap();
    let mut state = codec.new_state(now);
    fill(&mut state);
    let cookies = codec.seal(keyring, &state, now, &mut rand::rng()).unwrap();
    let mut parts = vec!["theme=dark".to_owned()];
    parts.extend(
        cookies
            .iter()
            .map(|c| format!("{}={}", c.name(), c.value())),
    );
    parts.join("; ")
}

fn alice(state: &mut sealed_session::SessionState) {
    state.insert("user", "alice").unwrap();
}

// ---------------------------------------------------------------------------------------------
// keys init

#[test]
fn init_creates_a_0600_keyring_with_one_sealing_key() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    let run = keys("init", &path, &[]).ok();
    assert_eq!(mode(&path), 0o600);
    let ring = load(&path);
    assert_eq!(ring.keys().len(), 1);
    let key = &ring.keys()[0];
    assert_eq!(key.algorithm(), Algorithm::Xaes256Gcm);
    run.says(&key.id().to_string()).hides(&secrets(&path));
    assert_states(&path, &[(&key.id().to_string(), "sealing")]);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn init_takes_each_algorithm_and_refuses_unknown_ones() {
    let dir = TempDir::new();
    for algorithm in Algorithm::ALL {
        let path = dir.join(algorithm.name());
        keys("init", &path, &["--algorithm", algorithm.name()]).ok();
        assert_eq!(load(&path).keys()[0].algorithm(), algorithm);
    }
    let path = dir.join("rot13");
    keys("init", &path, &["--algorithm", "rot13"]).fails(2, "\"rot13\"");
    assert!(!path.exists());
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let (_dir, path) = initialised();
    let before = fs::read(&path).unwrap();
    keys("init", &path, &[])
        .fails(2, "--force")
        .fails(2, p(&path));
    assert_eq!(fs::read(&path).unwrap(), before);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    keys("init", &path, &["--force"]).ok();
    assert_ne!(fs::read(&path).unwrap(), before);
    assert_eq!(load(&path).keys().len(), 1);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn writing_into_a_missing_directory_is_a_clear_error() {
    let dir = TempDir::new();
    let missing = dir.join("no-such-dir");
    let path = missing.join("keyring.json");
    keys("init", &path, &[])
        .fails(2, p(&missing))
        .fails(2, "No such file or directory")
        .fails(2, "--create-dirs");
    assert!(!missing.exists());

    // --create-dirs makes the missing directories, owner-only, then the 0600 keyring.
    let nested = missing.join("deeper");
    let path = nested.join("keyring.json");
    keys("init", &path, &["--create-dirs"]).ok();
    assert_eq!(load(&path).keys().len(), 1);
    assert_eq!(mode(&path), 0o600);
    for d in [&missing, &nested] {
        assert_eq!(fs::metadata(d).unwrap().permissions().mode() & 0o777, 0o700);
    }
}

#[test]
fn a_symlinked_keyring_is_replaced_through_the_link() {
    let dir = TempDir::new();
    let real = dir.join("real.json");
    let link = dir.join("link.json");
    keys("init", &real, &[]).ok();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    keys("rotate", &link, &[]).ok();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(load(&real).keys().len(), 2);
    assert_eq!(mode(&real), 0o600);
}

// ---------------------------------------------------------------------------------------------
// keys rotate

#[test]
fn rotate_adds_a_pending_key_an_hour_out_by_default() {
    let (_dir, path) = initialised();
    let first = load(&path).keys()[0].id().to_string();
    let run = keys("rotate", &path, &[]).ok();
    assert_eq!(mode(&path), 0o600);
    let ring = load(&path);
    let new = &ring.keys()[1];
    run.says(&new.id().to_string()).says("pending");
    assert_eq!(
        new.activates_at().duration_since(new.created_at()).unwrap(),
        Duration::from_secs(3600)
    );
    assert_states(
        &path,
        &[(&first, "sealing"), (&new.id().to_string(), "pending")],
    );

    let table = keys("list", &path, &[]).ok().stdout;
    let line = table
        .lines()
        .find(|l| l.starts_with(&new.id().to_string()))
        .unwrap();
    assert!(
        line.contains("pending") && line.contains("xaes256gcm"),
        "{table}"
    );
}

#[test]
fn rotate_activate_in_0s_seals_at_once_and_the_old_key_keeps_opening() {
    let (_dir, path) = written(vec![old_key(1, 2)]);
    let old_ring = load(&path);
    let header = sealed_header(SessionConfig::new(), &old_ring, SystemTime::now(), alice);

    let at_once = ["--activate-in", "0s", "--algorithm", "xchacha20poly1305"];
    keys("rotate", &path, &at_once)
        .ok()
        .says("seals from now on");
    let ring = load(&path);
    let new = ring.keys()[1].id().to_string();
    assert_eq!(ring.keys()[1].algorithm(), Algorithm::XChaCha20Poly1305);
    assert_states(&path, &[(&id(1), "open-only"), (&new, "sealing")]);

    // A cookie sealed with the old key still opens, and will be re-sealed under the new one.
    inspect(&path, &[&header])
        .ok()
        .says(&format!("key:         {} (xaes256gcm, open-only)", id(1)))
        .says(&format!("re-seals it under {new}"));
}

#[test]
fn rotate_never_ties_with_an_existing_activation() {
    // init then rotate 0s may fall in the same second: the new key must still come strictly
    // later, or only the random ids would decide which key seals.
    let (_dir, path) = initialised();
    keys("rotate", &path, &["--activate-in", "0s"]).ok();
    let ring = load(&path);
    assert!(ring.keys()[1].activates_at() > ring.keys()[0].activates_at());
}

#[test]
fn bad_durations_are_refused_and_change_nothing() {
    let (_dir, path) = initialised();
    let before = fs::read(&path).unwrap();
    for bad in ["10x", "-5m", "", "5", "soon"] {
        keys("rotate", &path, &["--activate-in", bad]).fails(2, &format!("--activate-in {bad:?}"));
        keys("retire", &path, &["--older-than", bad]).fails(2, &format!("--older-than {bad:?}"));
    }
    keys("rotate", &path, &["--activate-in", "400d"]).fails(2, "366 days");
    keys("rotate", &path, &["--activate-in=-5m"]).fails(2, "negative");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn rotate_refuses_a_missing_or_corrupt_keyring() {
    let dir = TempDir::new();
    let missing = dir.join("missing.json");
    keys("rotate", &missing, &[])
        .fails(2, p(&missing))
        .fails(2, "keys init");
    assert!(!missing.exists());
    let corrupt = dir.join("corrupt.json");
    fs::write(&corrupt, "garbage").unwrap();
    keys("rotate", &corrupt, &[]).fails(2, p(&corrupt));
    assert_eq!(fs::read(&corrupt).unwrap(), b"garbage");
}

// ---------------------------------------------------------------------------------------------
// keys list

#[test]
fn list_never_prints_a_secret() {
    let (_dir, path) = initialised();
    keys("rotate", &path, &["--algorithm", "aes256gcm"]).ok();
    let secrets = secrets(&path);
    assert_eq!(secrets.len(), 4);
    for run in [
        keys("list", &path, &[]),
        keys("list", &path, &["--json"]),
        check(&path),
    ] {
        run.ok().hides(&secrets);
    }
}

#[test]
fn list_json_has_every_field() {
    let (_dir, path) = written(vec![
        old_key(1, 10).retired(days_ago(1)),
        old_key(2, 5),
        old_key(3, 1),
    ]);
    let run = keys("list", &path, &["--json"]).ok();
    let list: Value = serde_json::from_str(&run.stdout).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let expected = [(1, "retired"), (2, "open-only"), (3, "sealing")];
    for (key, (n, state)) in list.iter().zip(expected) {
        let fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            [
                "activates_at",
                "algorithm",
                "created_at",
                "id",
                "retired_at",
                "state"
            ]
        );
        assert_eq!(key["id"], id(n));
        assert_eq!(key["state"], state);
        assert_eq!(key["algorithm"], "xaes256gcm");
        for field in ["created_at", "activates_at"] {
            humantime::parse_rfc3339(key[field].as_str().unwrap()).unwrap();
        }
    }
    assert_eq!(
        list[0]["retired_at"].as_str(),
        Some(
            humantime::format_rfc3339_seconds(days_ago(1))
                .to_string()
                .as_str()
        )
    );
    assert!(list[1]["retired_at"].is_null());
}

#[test]
fn list_refuses_missing_garbage_and_truncated_files() {
    let dir = TempDir::new();
    let good = dir.join("good.json");
    keys("init", &good, &[]).ok();
    let text = fs::read_to_string(&good).unwrap();
    let cases = [
        ("garbage.json", "not a keyring"),
        ("truncated.json", &text[..text.len() / 2]),
        ("empty.json", ""),
    ];
    for (name, contents) in cases {
        let path = dir.join(name);
        fs::write(&path, contents).unwrap();
        for sub in [&["keys", "list"][..], &["check"]] {
            on_keyring(sub, &path, &[], "")
                .fails(2, p(&path))
                .fails(2, "not valid JSON");
        }
    }
    let missing = dir.join("missing.json");
    keys("list", &missing, &[]).fails(2, p(&missing));
    keys("list", &dir.0, &[]).fails(2, p(&dir.0));
}

// ---------------------------------------------------------------------------------------------
// keys retire

#[test]
fn retire_by_id_stops_a_key_opening() {
    let (_dir, path) = written(vec![old_key(1, 10), old_key(2, 2)]);
    let header = sealed_header(SessionConfig::new(), &load(&path), days_ago(5), alice);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

    keys("retire", &path, &["--id", &id(1)])
        .ok()
        .says(&format!("retired key {}", id(1)));
    assert_eq!(mode(&path), 0o600);
    assert_states(&path, &[(&id(1), "retired"), (&id(2), "sealing")]);
    inspect(&path, &[&header]).fails(1, "key.retired");

    // Again: nothing to do, nothing written.
    let before = fs::read(&path).unwrap();
    keys("retire", &path, &["--id", &id(1)])
        .ok()
        .says("already retired");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retiring_the_last_key_is_refused_and_the_file_is_unchanged() {
    let (_dir, path) = initialised();
    let only = load(&path).keys()[0].id().to_string();
    let before = fs::read(&path).unwrap();
    keys("retire", &path, &["--id", &only])
        .fails(2, "refusing")
        .fails(2, p(&path));
    assert_eq!(fs::read(&path).unwrap(), before);

    // Nor may the sealing key go while the only other key is still pending.
    keys("rotate", &path, &[]).ok();
    let before = fs::read(&path).unwrap();
    keys("retire", &path, &["--id", &only]).fails(2, "refusing");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retiring_the_sealing_key_falls_back_to_an_older_key_and_says_so() {
    let (_dir, path) = written(vec![old_key(1, 10), old_key(2, 2)]);
    keys("retire", &path, &["--id", &id(2)])
        .ok()
        .says(&format!("warning: key {} was the sealing key", id(2)))
        .says(&format!("key {} seals from now on", id(1)));
    assert_states(&path, &[(&id(1), "sealing"), (&id(2), "retired")]);
}

#[test]
fn retire_refuses_unknown_and_malformed_ids() {
    let (_dir, path) = written(vec![old_key(1, 10), old_key(2, 2)]);
    let before = fs::read(&path).unwrap();
    keys("retire", &path, &["--id", &id(9)]).fails(2, &id(9));
    keys("retire", &path, &["--id", "0A0A0A0A"]).fails(2, "8 lowercase hex digits");
    keys("retire", &path, &[]).fails(2, "--older-than");
    keys("retire", &path, &["--id", &id(1), "--older-than", "1d"]).fails(2, "cannot be used with");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retire_older_than_spares_the_sealing_key() {
    let (_dir, path) = written(vec![old_key(1, 30), old_key(2, 10), old_key(3, 3)]);
    // Key 1 activated 30 days ago but sealed until key 2 activated 10 days ago: say so.
    keys("retire", &path, &["--older-than", "20d"])
        .ok()
        .says(&format!("warning: key {} sealed cookies until", id(1)));
    let (one, two, three) = (id(1), id(2), id(3));
    assert_states(
        &path,
        &[(&one, "retired"), (&two, "open-only"), (&three, "sealing")],
    );
    assert_eq!(mode(&path), 0o600);

    // Key 3 is older than an hour too, but it seals. Key 2 stopped sealing days ago.
    let run = keys("retire", &path, &["--older-than", "1h"]).ok();
    run.says(&format!("retired key {}", id(2)));
    assert!(!run.stdout.contains("warning"), "{run:?}");
    assert_states(
        &path,
        &[(&one, "retired"), (&two, "retired"), (&three, "sealing")],
    );

    let before = fs::read(&path).unwrap();
    keys("retire", &path, &["--older-than", "1h"])
        .ok()
        .says("no key to retire");
    assert_eq!(fs::read(&path).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_summarizes_a_good_keyring() {
    let (_dir, path) = written(vec![old_key(1, 10), old_key(2, 2)]);
    let run = check(&path).ok();
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert!(run.stdout.starts_with("ok:"), "{run:?}");
    run.says("2 keys")
        .says(&format!("sealing key {}", id(2)))
        .says("pending: none");
    assert_eq!(run.stderr, "");

    keys("rotate", &path, &[]).ok();
    let pending = load(&path).keys()[2].id().to_string();
    check(&path).ok().says(&format!("pending: {pending}"));
}

#[test]
fn check_warns_about_a_group_readable_keyring() {
    let (_dir, path) = initialised();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let run = check(&path).ok();
    assert!(
        run.stderr.contains("warning")
            && run.stderr.contains("0644")
            && run.stderr.contains("chmod 600"),
        "{run:?}"
    );
    assert!(run.stdout.starts_with("ok:"), "{run:?}");

    // Every write puts the mode back to 0600.
    keys("rotate", &path, &[]).ok();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(check(&path).ok().stderr, "");
}

#[test]
fn check_fails_on_unusable_keyrings() {
    let dir = TempDir::new();
    let missing = dir.join("missing.json");
    check(&missing).fails(2, p(&missing));

    // Valid JSON that is not a usable keyring.
    let good = dir.join("good.json");
    keys("init", &good, &[]).ok();
    let base = file_json(&good);
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 5] = [
        ("no key whose activation time has passed", |v| {
            v["keys"][0]["activates_at"] = "2999-01-01T00:00:00Z".into()
        }),
        ("no key that is not retired", |v| {
            v["keys"][0]["retired_at"] = "2020-01-01T00:00:00Z".into()
        }),
        ("keys[0] and keys[1] have the same id", |v| {
            let copy = v["keys"][0].clone();
            v["keys"].as_array_mut().unwrap().push(copy);
        }),
        ("is not 32 bytes", |v| {
            v["keys"][0]["secret"] = "AAAA".into()
        }),
        ("version 3 is not supported", |v| v["version"] = 3.into()),
    ];
    for (n, (needle, edit)) in cases.into_iter().enumerate() {
        let mut value = base.clone();
        edit(&mut value);
        let path = dir.join(&format!("bad-{n}.json"));
        fs::write(&path, value.to_string()).unwrap();
        let run = check(&path).fails(2, needle).fails(2, p(&path));
        assert_eq!(run.stdout, "");
    }
}

// ---------------------------------------------------------------------------------------------
// inspect

#[test]
fn inspect_shows_an_opened_session() {
    let (_dir, path) = initialised();
    let ring = load(&path);
    let key_id = ring.keys()[0].id().to_string();
    let header = sealed_header(SessionConfig::new(), &ring, SystemTime::now(), |s| {
        s.insert("user", "alice").unwrap();
        s.insert("visits", &7u32).unwrap();
        s.insert("notes", &"lorem ipsum ".repeat(50)).unwrap();
    });
    let run = inspect(&path, &[&header]).ok();
    run.says(&format!("key:         {key_id} (xaes256gcm, sealing)"))
        .says("__Host-session, 1 chunk")
        .says("\"user\" = \"alice\"")
        .says("\"visits\" = hex 07 (1 byte)")
        .says("compressed:  notes\n")
        .says("entries:     3");
    for label in ["issued:", "expires:", "last seen:", "session id:"] {
        run.says(label);
    }
    assert!(!run.stdout.contains("re-seals"), "{run:?}");
    run.hides(&secrets(&path));
}

#[test]
fn inspect_reads_stdin_and_other_cookie_names_and_chunks() {
    let (_dir, path) = written(vec![old_key(4, 1)]);
    // Random bytes do not compress: two chunks.
    let blob: Vec<u8> = (0..3000).map(|_| rand::random::<u8>()).collect();
    let header = sealed_header(
        SessionConfig::new().cookie_name("sid"),
        &load(&path),
        SystemTime::now(),
        |s| {
            s.insert("blob", &blob).unwrap();
        },
    );
    let stdin = format!("Cookie: {header}\n");
    on_keyring(&["inspect"], &path, &["--cookie-name", "sid", "-"], &stdin)
        .ok()
        .says("sid, 2 chunks")
        .says("compressed:  none")
        // Postcard: the length 3000 as a varint (b8 17), then the bytes.
        .says(&format!("\"blob\" = hex b817{} (3002 bytes)", hex(&blob)));

    // Without --cookie-name it looks for __Host-session and says what it found instead.
    on_keyring(&["inspect"], &path, &[], &header)
        .fails(1, "no __Host-session cookie")
        .fails(1, "theme, sid, sid.1");
}

#[test]
fn inspect_names_the_stage_that_failed() {
    let (dir, path) = initialised();
    let header = sealed_header(SessionConfig::new(), &load(&path), SystemTime::now(), alice);

    // Tampered: one character of the ciphertext changed.
    let mut tampered = header.clone().into_bytes();
    let at = tampered.len() - 12;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let run = inspect(&path, &[&tampered]).fails(1, "aead.tag");
    assert!(!run.stdout.contains("alice"), "{run:?}");

    // Another deployment's keyring.
    let foreign = dir.join("foreign.json");
    keys("init", &foreign, &[]).ok();
    inspect(&foreign, &[&header]).fails(1, "key.unknown");

    // No cookie of ours, or no cookie at all.
    inspect(&path, &["theme=dark; lang=en"]).fails(1, "theme, lang");
    inspect(&path, &[""]).fails(1, "no cookie");

    // Errors, not verdicts: exit 2.
    inspect(&path, &["--cookie-name", "bad name", &header]).fails(2, "--cookie-name");
    inspect(&dir.join("missing.json"), &[&header]).fails(2, "missing.json");
}

#[test]
fn inspect_shows_an_expired_session_but_fails() {
    let (_dir, path) = written(vec![old_key(5, 10)]);
    let header = sealed_header(SessionConfig::new(), &load(&path), days_ago(3), alice);
    inspect(&path, &[&header])
        .fails(1, "time.expired")
        .says("\"user\" = \"alice\"")
        .says("ago");
}

#[test]
fn usage_errors_exit_2() {
    cli(&[]).fails(2, "Usage");
    cli(&["keys", "list"]).fails(2, "--keyring");
    cli(&["frobnicate"]).fails(2, "frobnicate");
    let help = cli(&["--help"]).ok();
    help.says("inspect").says("check");
}

// ---------------------------------------------------------------------------------------------
// issue 11: revoke --before

fn revoke(keyring: &Path, before: &str) -> Run {
    on_keyring(&["revoke"], keyring, &["--before", before], "")
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[test]
fn i11_revoke_now_refuses_earlier_sessions_and_keeps_later_ones() {
    let (_dir, path) = written(vec![old_key(1, 3)]);
    let before = sealed_header(
        SessionConfig::new(),
        &load(&path),
        SystemTime::now() - Duration::from_secs(60),
        alice,
    );
    inspect(&path, &[&before]).ok();
    let plain = fs::read(&path).unwrap();
    keys("list", &path, &[]).ok().says("cutoff: none");
    check(&path).ok().says("cutoff: none");

    let run = revoke(&path, "now").ok();
    run.says("revoked every session issued before")
        .says("upgrade every node first");
    run.hides(&secrets(&path));
    let cutoff = load(&path).not_before().expect("a cutoff");
    assert!(SystemTime::now().duration_since(cutoff).unwrap() < Duration::from_secs(60));
    let file = file_json(&path);
    assert_eq!(file["version"], 2);
    assert_eq!(file["not_before"], rfc3339(cutoff).as_str());
    assert_eq!(mode(&path), 0o600);
    // Only the version and the cutoff changed: same keys, same secrets.
    let mut old: Value = serde_json::from_slice(&plain).unwrap();
    old["version"] = 2.into();
    old["not_before"] = rfc3339(cutoff).into();
    assert_eq!(file, old);

    inspect(&path, &[&before])
        .fails(1, "revoked")
        .says("\"user\" = \"alice\"");
    let after = sealed_header(SessionConfig::new(), &load(&path), cutoff, alice);
    inspect(&path, &[&after]).ok().says("\"user\" = \"alice\"");

    keys("list", &path, &[])
        .ok()
        .says(&format!("cutoff: {}", rfc3339(cutoff)))
        .says("sessions issued earlier are refused");
    check(&path)
        .ok()
        .says(&format!("cutoff: {}", rfc3339(cutoff)));
    // Rotation and retirement keep the cutoff.
    keys("rotate", &path, &["--activate-in", "0s"]).ok();
    keys("retire", &path, &["--id", &id(1)]).ok();
    assert_eq!(load(&path).not_before(), Some(cutoff));
}

#[test]
fn i11_revoke_takes_a_past_time_and_never_moves_back_or_forward_past_now() {
    let (_dir, path) = written(vec![old_key(1, 3)]);
    let day_ago = rfc3339(days_ago(1));
    revoke(&path, &day_ago).ok().says(&day_ago);
    assert_eq!(file_json(&path)["not_before"], day_ago.as_str());
    revoke(&path, &day_ago).ok().says("unchanged");

    let unchanged = fs::read(&path).unwrap();
    let two_days_ago = rfc3339(days_ago(2));
    revoke(&path, &two_days_ago).fails(2, "never moves back");
    let tomorrow = rfc3339(SystemTime::now() + Duration::from_secs(86_400));
    revoke(&path, &tomorrow).fails(2, "in the future");
    for bad in ["yesterday", "2026-01-01", "2026-01-01T00:00:00+01:00", ""] {
        revoke(&path, bad).fails(2, "--before");
    }
    assert_eq!(fs::read(&path).unwrap(), unchanged);
    revoke(&path, "now").ok();
    assert!(load(&path).not_before().unwrap() > days_ago(1));

    let dir = TempDir::new();
    revoke(&dir.join("missing.json"), "now").fails(2, "keys init");
}

#[test]
fn i11_an_old_reader_refuses_version_2_and_version_1_cannot_carry_a_cutoff() {
    let (dir, path) = initialised();
    revoke(&path, "now").ok();
    let mut v1 = file_json(&path);
    v1["version"] = 1.into();
    let bad = dir.join("bad.json");
    fs::write(&bad, v1.to_string()).unwrap();
    check(&bad).fails(2, "only allowed in a version 2");
    v1["not_before"] = Value::Null;
    v1["version"] = 2.into();
    fs::write(&bad, v1.to_string()).unwrap();
    check(&bad).fails(2, "not_before is not a time");
}

// ---------------------------------------------------------------------------------------------
// issue 9

/// `sealed-session <args…>` with `stdin`, both as raw bytes.
fn cli_bytes(args: &[&std::ffi::OsStr], stdin: &[u8]) -> Run {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `inspect --keyring <keyring> <rest…> <header bytes>`.
fn inspect_bytes(keyring: &Path, rest: &[&str], header: &[u8]) -> Run {
    use std::os::unix::ffi::OsStrExt as _;
    let head = ["inspect", "--keyring", p(keyring)];
    let mut args: Vec<&std::ffi::OsStr> =
        head.iter().chain(rest).map(std::ffi::OsStr::new).collect();
    args.push(std::ffi::OsStr::from_bytes(header));
    cli_bytes(&args, b"")
}

/// A key whose five times and fields all differ, retired if `retired`.
fn distinct_key(n: u8, retired: bool) -> Key {
    let key = Key::new(
        KeyId([n; 4]),
        Algorithm::XChaCha20Poly1305,
        Secret::generate().unwrap(),
        days_ago(20),
        days_ago(19),
    );
    if retired {
        key.retired(days_ago(15))
    } else {
        key
    }
}

/// A5: a hand-edited keyring with any two fields of a key swapped. Whatever each subcommand
/// that loads a keyring says, a failure names the key's position and the field and never a
/// field's value, and no output ever holds a secret. (The algorithm's value is one of three
/// public names, which the error's hint lists; it is not checked.)
#[test]
fn a5_swapped_fields_never_reach_an_error_message() {
    const FIELDS: [&str; 6] = [
        "id",
        "algorithm",
        "secret",
        "created_at",
        "activates_at",
        "retired_at",
    ];
    let dir = TempDir::new();
    let good = dir.join("good.json");
    write_keyring(&good, vec![distinct_key(1, false), distinct_key(2, true)]);
    let base = file_json(&good);
    let header = sealed_header(SessionConfig::new(), &load(&good), SystemTime::now(), alice);
    let mut failures = 0;
    for index in 0..2 {
        let entry = &base["keys"][index];
        let present: Vec<&str> = FIELDS
            .into_iter()
            .filter(|f| entry.get(*f).is_some())
            .collect();
        let secret = entry["secret"].as_str().unwrap().to_owned();
        let secret_hex = hex(&URL_SAFE_NO_PAD.decode(&secret).unwrap());
        let values: Vec<String> = present
            .iter()
            .filter(|f| **f != "algorithm")
            .map(|f| entry[*f].as_str().unwrap().to_owned())
            .chain([secret_hex.clone()])
            .collect();
        for (i, a) in present.iter().enumerate() {
            for b in &present[i + 1..] {
                let mut value = base.clone();
                let key = &mut value["keys"][index];
                let (va, vb) = (key[*a].clone(), key[*b].clone());
                key[*a] = vb;
                key[*b] = va;
                let text = value.to_string();
                let runs: [(&str, &[&str], &[&str]); 6] = [
                    ("check", &["check"], &[]),
                    ("list", &["keys", "list"], &[]),
                    ("list --json", &["keys", "list"], &["--json"]),
                    ("rotate", &["keys", "rotate"], &[]),
                    ("retire", &["keys", "retire"], &["--id", "09090909"]),
                    ("inspect", &["inspect"], &[&header]),
                ];
                for (name, command, rest) in runs {
                    let path = dir.join(&format!("swap-{index}-{a}-{b}-{}.json", name.len()));
                    write_file_0600(&path, text.as_bytes());
                    let run = on_keyring(command, &path, rest, "");
                    let what = format!("keys[{index}] {a} <-> {b}, {name}");
                    run.hides(&[secret.clone(), secret_hex.clone()]);
                    if run.code == 2 && !run.stderr.contains("has no key 09090909") {
                        failures += 1;
                        assert!(
                            run.stderr.contains(&format!("keys[{index}].")),
                            "{what}: {run:#?}"
                        );
                        for v in &values {
                            assert!(!run.stderr.contains(v.as_str()), "{what}: {v} in {run:#?}");
                        }
                    }
                }
            }
        }
    }
    // Most swaps make the file unusable; the two time swaps may not.
    assert!(failures >= 6 * 20, "{failures}");
}

/// A9: a keyring over the cap is refused with a clear error, at the cap it loads (the time
/// at the cap is measured in docs/CLI.md, not asserted here).
#[test]
fn a9_keyring_size_is_capped() {
    let max = sealed_session::keyring::MAX_KEYS;
    let dir = TempDir::new();
    let entry = |n: usize| {
        serde_json::json!({
            "id": format!("{n:08x}"),
            "algorithm": "xchacha20poly1305",
            "secret": URL_SAFE_NO_PAD.encode([7u8; 32]),
            "created_at": "2026-01-01T00:00:00Z",
            "activates_at": "2026-01-01T00:00:00Z",
        })
    };
    let file =
        |n: usize| serde_json::json!({"version": 1, "keys": (0..n).map(entry).collect::<Vec<_>>()});
    let over = dir.join("over.json");
    fs::write(&over, file(max + 1).to_string()).unwrap();
    fs::set_permissions(&over, fs::Permissions::from_mode(0o600)).unwrap();
    check(&over).fails(
        2,
        &format!("keyring has {} keys, more than the {max} allowed", max + 1),
    );
    let at = dir.join("at.json");
    fs::write(&at, file(max).to_string()).unwrap();
    fs::set_permissions(&at, fs::Permissions::from_mode(0o600)).unwrap();
    check(&at).ok().says(&format!("{max} keys"));
}

/// A10: an authentic session whose times lie past year 9999, at 2^63 or at 2^64 - 1 seconds
/// is shown, not a panic (exit 101).
#[test]
fn a10_inspect_never_panics_on_far_future_times() {
    use sealed_session::fuzzing;
    let dir = TempDir::new();
    let path = dir.join("fixture.json");
    write_file_0600(&path, fuzzing::keyring_file().as_bytes());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (expires, shown) in [
        (253_402_300_800u64, "+10000-01-01T00:00:00Z"),
        (1 << 63, "+292277026596-12-04T15:30:08Z"),
        (u64::MAX, "+584554051223-11-09T07:00:15Z"),
    ] {
        let header = fuzzing::sealed_header(now, expires, now);
        inspect_bytes(&path, &[], &header)
            .ok()
            .says(&format!("expires:     {shown} (in "))
            .says("\"user\" = \"alice\"");
    }
}

fn write_file_0600(path: &Path, contents: &[u8]) {
    fs::write(path, contents).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

/// A10: `inspect` applies the server's idle timeout (default 2 h, `--idle-timeout`), and says
/// when it was skipped.
#[test]
fn a10_inspect_applies_the_idle_timeout() {
    let (_dir, path) = written(vec![old_key(6, 10)]);
    let three_hours_ago = SystemTime::now() - Duration::from_secs(3 * 3600);
    let header = sealed_header(SessionConfig::new(), &load(&path), three_hours_ago, alice);
    inspect(&path, &[&header])
        .fails(1, "time.idle")
        .says("\"user\" = \"alice\"");
    inspect(&path, &["--idle-timeout", "4h", &header])
        .ok()
        .says("idle timeout 4h");
    inspect(&path, &["--idle-timeout", "none", &header])
        .ok()
        .says("skipped: the idle timeout");
    inspect(&path, &["--idle-timeout", "0s", &header]).fails(2, "--idle-timeout");
}

/// A7: a cookie sealed under a purpose label opens in `inspect` only with the same label.
#[test]
fn a7_inspect_takes_the_purpose_label() {
    let (_dir, path) = initialised();
    let labelled = SessionConfig::new().purpose(Some("billing".into()));
    let header = sealed_header(labelled, &load(&path), SystemTime::now(), alice);
    inspect(&path, &[&header]).fails(1, "aead");
    inspect(&path, &["--purpose", "shop", &header]).fails(1, "aead");
    inspect(&path, &["--purpose", "billing", &header])
        .ok()
        .says("\"user\" = \"alice\"");
    let plain = sealed_header(SessionConfig::new(), &load(&path), SystemTime::now(), alice);
    inspect(&path, &["--purpose", "billing", &plain]).fails(1, "aead");
}

/// A10: the header is bytes, parsed as the middleware parses it: a non-UTF-8 byte in an
/// unrelated cookie does not hide the session, Unicode whitespace is not trimmed, and a byte
/// that no HTTP server accepts is refused with its position.
#[test]
fn a10_inspect_reads_the_header_as_the_middleware_does() {
    let (_dir, path) = initialised();
    let header = sealed_header(SessionConfig::new(), &load(&path), SystemTime::now(), alice);
    let with = |prefix: &[u8], suffix: &[u8]| [prefix, header.as_bytes(), suffix].concat();

    inspect_bytes(&path, &[], &with(b"x=\xff\xfe; ", b"; y=\xc0"))
        .ok()
        .says("\"user\" = \"alice\"");
    let stdin = with(b"Cookie: z=\xff; ", b"\r\n");
    cli_bytes(
        &["inspect", "--keyring", p(&path), "-"].map(std::ffi::OsStr::new),
        &stdin,
    )
    .ok()
    .says("\"user\" = \"alice\"");
    // Several Cookie lines, as HTTP/2 or a proxy may send them.
    let (first, rest) = header.split_once("; ").unwrap();
    let lines = format!("Cookie: {first}\ncookie: {rest}\n");
    cli_bytes(
        &["inspect", "--keyring", p(&path), "-"].map(std::ffi::OsStr::new),
        lines.as_bytes(),
    )
    .ok();

    // U+00A0 and U+2028 belong to the cookie name, as in the middleware: no session.
    for space in ["\u{a0}", "\u{2028}"] {
        let spaced = header.replacen("; __Host", &format!("; {space}__Host"), 1);
        assert_ne!(spaced, header);
        inspect_bytes(&path, &[], spaced.as_bytes()).fails(1, "no __Host-session");
    }
    // VT and other controls never reach a server.
    inspect_bytes(&path, &[], &with(b"\x0b", b"")).fails(2, "byte 0x0b at line 1, column 1");
    cli_bytes(
        &["inspect", "--keyring", p(&path), "-"].map(std::ffi::OsStr::new),
        &with(b"", b"\x00"),
    )
    .fails(2, "cannot appear in an HTTP Cookie");
}
