//! The `sealed-session` binary, run for real: every subcommand, its output and its errors.
// The binary exists only with the `cli` feature.
#![cfg(feature = "cli")]

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
        out.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        out.push(b64);
    }
    out
}

/// `keys list --json`, as (id, state) pairs in file order.
fn states(path: &Path) -> Vec<(String, String)> {
    let run = cli(&["keys", "list", "--keyring", p(path), "--json"]).ok();
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

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// A Cookie header carrying a session sealed with `keyring` at `now`.
fn sealed_header(
    config: SessionConfig,
    keyring: &Keyring,
    now: SystemTime,
    fill: impl FnOnce(&mut sealed_session::SessionState),
) -> String {
    let codec = Codec::new(config).unwrap();
    let mut state = codec.new_state(now, &mut rand::rng());
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
    let run = cli(&["keys", "init", "--keyring", p(&path)]).ok();
    assert_eq!(mode(&path), 0o600);
    let ring = load(&path);
    assert_eq!(ring.keys().len(), 1);
    let key = &ring.keys()[0];
    assert_eq!(key.algorithm(), Algorithm::Xaes256Gcm);
    assert!(run.stdout.contains(&key.id().to_string()), "{run:?}");
    for secret in secrets(&path) {
        assert!(!run.stdout.contains(&secret) && !run.stderr.contains(&secret));
    }
    assert_eq!(states(&path), pairs(&[(&key.id().to_string(), "sealing")]));
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
}

#[test]
fn init_takes_each_algorithm_and_refuses_unknown_ones() {
    let dir = TempDir::new();
    for algorithm in Algorithm::ALL {
        let path = dir.join(algorithm.name());
        cli(&[
            "keys",
            "init",
            "--keyring",
            p(&path),
            "--algorithm",
            algorithm.name(),
        ])
        .ok();
        assert_eq!(load(&path).keys()[0].algorithm(), algorithm);
    }
    let path = dir.join("rot13");
    cli(&[
        "keys",
        "init",
        "--keyring",
        p(&path),
        "--algorithm",
        "rot13",
    ])
    .fails(2, "\"rot13\"");
    assert!(!path.exists());
}

#[test]
fn init_refuses_to_overwrite_without_force() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let before = fs::read(&path).unwrap();
    cli(&["keys", "init", "--keyring", p(&path)])
        .fails(2, "--force")
        .fails(2, p(&path));
    assert_eq!(fs::read(&path).unwrap(), before);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    cli(&["keys", "init", "--keyring", p(&path), "--force"]).ok();
    assert_ne!(fs::read(&path).unwrap(), before);
    assert_eq!(load(&path).keys().len(), 1);
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn writing_into_a_missing_directory_is_a_clear_error() {
    let dir = TempDir::new();
    let missing = dir.join("no-such-dir");
    let path = missing.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)])
        .fails(2, p(&missing))
        .fails(2, "No such file or directory");
    assert!(!missing.exists());
}

#[test]
fn a_symlinked_keyring_is_replaced_through_the_link() {
    let dir = TempDir::new();
    let real = dir.join("real.json");
    let link = dir.join("link.json");
    cli(&["keys", "init", "--keyring", p(&real)]).ok();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    cli(&["keys", "rotate", "--keyring", p(&link)]).ok();
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
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let first = load(&path).keys()[0].id().to_string();
    let run = cli(&["keys", "rotate", "--keyring", p(&path)]).ok();
    assert_eq!(mode(&path), 0o600);
    let ring = load(&path);
    let new = &ring.keys()[1];
    assert!(
        run.stdout.contains(&new.id().to_string()) && run.stdout.contains("pending"),
        "{run:?}"
    );
    assert_eq!(
        new.activates_at().duration_since(new.created_at()).unwrap(),
        Duration::from_secs(3600)
    );
    assert_eq!(
        states(&path),
        pairs(&[(&first, "sealing"), (&new.id().to_string(), "pending")])
    );

    let table = cli(&["keys", "list", "--keyring", p(&path)]).ok().stdout;
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
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 2)]);
    let old_ring = load(&path);
    let header = sealed_header(SessionConfig::new(), &old_ring, SystemTime::now(), alice);

    let run = cli(&[
        "keys",
        "rotate",
        "--keyring",
        p(&path),
        "--activate-in",
        "0s",
        "--algorithm",
        "xchacha20poly1305",
    ])
    .ok();
    assert!(run.stdout.contains("seals from now on"), "{run:?}");
    let ring = load(&path);
    let new = ring.keys()[1].id().to_string();
    assert_eq!(ring.keys()[1].algorithm(), Algorithm::XChaCha20Poly1305);
    assert_eq!(
        states(&path),
        pairs(&[(&id(1), "open-only"), (&new, "sealing")])
    );

    // A cookie sealed with the old key still opens, and will be re-sealed under the new one.
    let run = cli(&["inspect", "--keyring", p(&path), &header]).ok();
    assert!(
        run.stdout
            .contains(&format!("key:         {} (xaes256gcm, open-only)", id(1))),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!("re-seals it under {new}")),
        "{run:?}"
    );
}

#[test]
fn rotate_never_ties_with_an_existing_activation() {
    // init then rotate 0s may fall in the same second: the new key must still come strictly
    // later, or only the random ids would decide which key seals.
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    cli(&[
        "keys",
        "rotate",
        "--keyring",
        p(&path),
        "--activate-in",
        "0s",
    ])
    .ok();
    let ring = load(&path);
    assert!(ring.keys()[1].activates_at() > ring.keys()[0].activates_at());
}

#[test]
fn bad_durations_are_refused_and_change_nothing() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let before = fs::read(&path).unwrap();
    for bad in ["10x", "-5m", "", "5", "soon"] {
        cli(&[
            "keys",
            "rotate",
            "--keyring",
            p(&path),
            "--activate-in",
            bad,
        ])
        .fails(2, &format!("--activate-in {bad:?}"));
        cli(&["keys", "retire", "--keyring", p(&path), "--older-than", bad])
            .fails(2, &format!("--older-than {bad:?}"));
    }
    cli(&[
        "keys",
        "rotate",
        "--keyring",
        p(&path),
        "--activate-in",
        "400d",
    ])
    .fails(2, "366 days");
    cli(&["keys", "rotate", "--keyring", p(&path), "--activate-in=-5m"]).fails(2, "negative");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn rotate_refuses_a_missing_or_corrupt_keyring() {
    let dir = TempDir::new();
    let missing = dir.join("missing.json");
    cli(&["keys", "rotate", "--keyring", p(&missing)])
        .fails(2, p(&missing))
        .fails(2, "keys init");
    assert!(!missing.exists());
    let corrupt = dir.join("corrupt.json");
    fs::write(&corrupt, "garbage").unwrap();
    cli(&["keys", "rotate", "--keyring", p(&corrupt)]).fails(2, p(&corrupt));
    assert_eq!(fs::read(&corrupt).unwrap(), b"garbage");
}

// ---------------------------------------------------------------------------------------------
// keys list

#[test]
fn list_never_prints_a_secret() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    cli(&[
        "keys",
        "rotate",
        "--keyring",
        p(&path),
        "--algorithm",
        "aes256gcm",
    ])
    .ok();
    let secrets = secrets(&path);
    assert_eq!(secrets.len(), 4);
    for args in [
        &["keys", "list", "--keyring", p(&path)][..],
        &["keys", "list", "--keyring", p(&path), "--json"],
        &["check", "--keyring", p(&path)],
    ] {
        let run = cli(args).ok();
        for secret in &secrets {
            assert!(
                !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
                "{args:?}"
            );
        }
    }
}

#[test]
fn list_json_has_every_field() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(
        &path,
        vec![
            old_key(1, 10).retired(days_ago(1)),
            old_key(2, 5),
            old_key(3, 1),
        ],
    );
    let run = cli(&["keys", "list", "--keyring", p(&path), "--json"]).ok();
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
    cli(&["keys", "init", "--keyring", p(&good)]).ok();
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
            let args = [sub, &["--keyring", p(&path)]].concat();
            cli(&args).fails(2, p(&path)).fails(2, "not valid JSON");
        }
    }
    let missing = dir.join("missing.json");
    cli(&["keys", "list", "--keyring", p(&missing)]).fails(2, p(&missing));
    cli(&["keys", "list", "--keyring", p(&dir.0)]).fails(2, p(&dir.0));
}

// ---------------------------------------------------------------------------------------------
// keys retire

#[test]
fn retire_by_id_stops_a_key_opening() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 10), old_key(2, 2)]);
    let header = sealed_header(SessionConfig::new(), &load(&path), days_ago(5), alice);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();

    let run = cli(&["keys", "retire", "--keyring", p(&path), "--id", &id(1)]).ok();
    assert!(
        run.stdout.contains(&format!("retired key {}", id(1))),
        "{run:?}"
    );
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        states(&path),
        pairs(&[(&id(1), "retired"), (&id(2), "sealing")])
    );
    cli(&["inspect", "--keyring", p(&path), &header]).fails(1, "key.retired");

    // Again: nothing to do, nothing written.
    let before = fs::read(&path).unwrap();
    let run = cli(&["keys", "retire", "--keyring", p(&path), "--id", &id(1)]).ok();
    assert!(run.stdout.contains("already retired"), "{run:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retiring_the_last_key_is_refused_and_the_file_is_unchanged() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let only = load(&path).keys()[0].id().to_string();
    let before = fs::read(&path).unwrap();
    cli(&["keys", "retire", "--keyring", p(&path), "--id", &only])
        .fails(2, "refusing")
        .fails(2, p(&path));
    assert_eq!(fs::read(&path).unwrap(), before);

    // Nor may the sealing key go while the only other key is still pending.
    cli(&["keys", "rotate", "--keyring", p(&path)]).ok();
    let before = fs::read(&path).unwrap();
    cli(&["keys", "retire", "--keyring", p(&path), "--id", &only]).fails(2, "refusing");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retiring_the_sealing_key_falls_back_to_an_older_key_and_says_so() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 10), old_key(2, 2)]);
    let run = cli(&["keys", "retire", "--keyring", p(&path), "--id", &id(2)]).ok();
    assert!(
        run.stdout
            .contains(&format!("warning: key {} was the sealing key", id(2))),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains(&format!("key {} seals from now on", id(1))),
        "{run:?}"
    );
    assert_eq!(
        states(&path),
        pairs(&[(&id(1), "sealing"), (&id(2), "retired")])
    );
}

#[test]
fn retire_refuses_unknown_and_malformed_ids() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 10), old_key(2, 2)]);
    let before = fs::read(&path).unwrap();
    cli(&["keys", "retire", "--keyring", p(&path), "--id", &id(9)]).fails(2, &id(9));
    cli(&["keys", "retire", "--keyring", p(&path), "--id", "0A0A0A0A"])
        .fails(2, "8 lowercase hex digits");
    cli(&["keys", "retire", "--keyring", p(&path)]).fails(2, "--older-than");
    cli(&[
        "keys",
        "retire",
        "--keyring",
        p(&path),
        "--id",
        &id(1),
        "--older-than",
        "1d",
    ])
    .fails(2, "cannot be used with");
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn retire_older_than_spares_the_sealing_key() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 30), old_key(2, 10), old_key(3, 3)]);
    let run = cli(&[
        "keys",
        "retire",
        "--keyring",
        p(&path),
        "--older-than",
        "20d",
    ])
    .ok();
    // Key 1 activated 30 days ago but sealed until key 2 activated 10 days ago: say so.
    assert!(
        run.stdout
            .contains(&format!("warning: key {} sealed cookies until", id(1))),
        "{run:?}"
    );
    assert_eq!(
        states(&path),
        pairs(&[
            (&id(1), "retired"),
            (&id(2), "open-only"),
            (&id(3), "sealing")
        ])
    );
    assert_eq!(mode(&path), 0o600);

    // Key 3 is older than an hour too, but it seals. Key 2 stopped sealing days ago.
    let run = cli(&[
        "keys",
        "retire",
        "--keyring",
        p(&path),
        "--older-than",
        "1h",
    ])
    .ok();
    assert!(
        run.stdout.contains(&format!("retired key {}", id(2))),
        "{run:?}"
    );
    assert!(!run.stdout.contains("warning"), "{run:?}");
    assert_eq!(
        states(&path),
        pairs(&[
            (&id(1), "retired"),
            (&id(2), "retired"),
            (&id(3), "sealing")
        ])
    );

    let before = fs::read(&path).unwrap();
    let run = cli(&[
        "keys",
        "retire",
        "--keyring",
        p(&path),
        "--older-than",
        "1h",
    ])
    .ok();
    assert!(run.stdout.contains("no key to retire"), "{run:?}");
    assert_eq!(fs::read(&path).unwrap(), before);
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_summarizes_a_good_keyring() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(1, 10), old_key(2, 2)]);
    let run = cli(&["check", "--keyring", p(&path)]).ok();
    assert_eq!(run.stdout.lines().count(), 1, "{run:?}");
    assert!(
        run.stdout.starts_with("ok:") && run.stdout.contains("2 keys"),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&format!("sealing key {}", id(2)))
            && run.stdout.contains("pending: none"),
        "{run:?}"
    );
    assert_eq!(run.stderr, "");

    cli(&["keys", "rotate", "--keyring", p(&path)]).ok();
    let pending = load(&path).keys()[2].id().to_string();
    let run = cli(&["check", "--keyring", p(&path)]).ok();
    assert!(
        run.stdout.contains(&format!("pending: {pending}")),
        "{run:?}"
    );
}

#[test]
fn check_warns_about_a_group_readable_keyring() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let run = cli(&["check", "--keyring", p(&path)]).ok();
    assert!(
        run.stderr.contains("warning")
            && run.stderr.contains("0644")
            && run.stderr.contains("chmod 600"),
        "{run:?}"
    );
    assert!(run.stdout.starts_with("ok:"), "{run:?}");

    // Every write puts the mode back to 0600.
    cli(&["keys", "rotate", "--keyring", p(&path)]).ok();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(cli(&["check", "--keyring", p(&path)]).ok().stderr, "");
}

#[test]
fn check_fails_on_unusable_keyrings() {
    let dir = TempDir::new();
    let missing = dir.join("missing.json");
    cli(&["check", "--keyring", p(&missing)]).fails(2, p(&missing));

    // Valid JSON that is not a usable keyring.
    let good = dir.join("good.json");
    cli(&["keys", "init", "--keyring", p(&good)]).ok();
    let base = file_json(&good);
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 5] = [
        ("no key whose activation time has passed", |v| {
            v["keys"][0]["activates_at"] = "2999-01-01T00:00:00Z".into()
        }),
        ("no key that is not retired", |v| {
            v["keys"][0]["retired_at"] = "2020-01-01T00:00:00Z".into()
        }),
        ("two keys with id", |v| {
            let copy = v["keys"][0].clone();
            v["keys"].as_array_mut().unwrap().push(copy);
        }),
        ("is not 32 bytes", |v| {
            v["keys"][0]["secret"] = "AAAA".into()
        }),
        ("version 2 is not supported", |v| v["version"] = 2.into()),
    ];
    for (n, (needle, edit)) in cases.into_iter().enumerate() {
        let mut value = base.clone();
        edit(&mut value);
        let path = dir.join(&format!("bad-{n}.json"));
        fs::write(&path, value.to_string()).unwrap();
        let run = cli(&["check", "--keyring", p(&path)])
            .fails(2, needle)
            .fails(2, p(&path));
        assert_eq!(run.stdout, "");
    }
}

// ---------------------------------------------------------------------------------------------
// inspect

#[test]
fn inspect_shows_an_opened_session() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let ring = load(&path);
    let key_id = ring.keys()[0].id().to_string();
    let header = sealed_header(SessionConfig::new(), &ring, SystemTime::now(), |s| {
        s.insert("user", "alice").unwrap();
        s.insert("visits", &7u32).unwrap();
        s.insert("notes", &"lorem ipsum ".repeat(50)).unwrap();
    });
    let run = cli(&["inspect", "--keyring", p(&path), &header]).ok();
    let out = &run.stdout;
    assert!(
        out.contains(&format!("key:         {key_id} (xaes256gcm, sealing)")),
        "{out}"
    );
    assert!(out.contains("__Host-session, 1 chunk"), "{out}");
    assert!(out.contains("\"user\" = \"alice\""), "{out}");
    assert!(out.contains("\"visits\" = hex 07 (1 byte)"), "{out}");
    assert!(out.contains("compressed:  notes\n"), "{out}");
    assert!(out.contains("entries:     3"), "{out}");
    for label in ["issued:", "expires:", "last seen:", "session id:"] {
        assert!(out.contains(label), "{out}");
    }
    assert!(!out.contains("re-seals"), "{out}");
    for secret in secrets(&path) {
        assert!(!out.contains(&secret) && !run.stderr.contains(&secret));
    }
}

#[test]
fn inspect_reads_stdin_and_other_cookie_names_and_chunks() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(4, 1)]);
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
    let run = cli_with_stdin(
        &[
            "inspect",
            "--keyring",
            p(&path),
            "--cookie-name",
            "sid",
            "-",
        ],
        &format!("Cookie: {header}\n"),
    )
    .ok();
    assert!(run.stdout.contains("sid, 2 chunks"), "{run:?}");
    assert!(run.stdout.contains("compressed:  none"), "{run:?}");
    // Postcard: the length 3000 as a varint (b8 17), then the bytes.
    let hex: String = blob.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        run.stdout
            .contains(&format!("\"blob\" = hex b817{hex} (3002 bytes)")),
        "{run:?}"
    );

    // Without --cookie-name it looks for __Host-session and says what it found instead.
    cli_with_stdin(&["inspect", "--keyring", p(&path)], &header)
        .fails(1, "no __Host-session cookie")
        .fails(1, "theme, sid, sid.1");
}

#[test]
fn inspect_names_the_stage_that_failed() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    cli(&["keys", "init", "--keyring", p(&path)]).ok();
    let header = sealed_header(SessionConfig::new(), &load(&path), SystemTime::now(), alice);

    // Tampered: one character of the ciphertext changed.
    let mut tampered = header.clone().into_bytes();
    let at = tampered.len() - 12;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let run = cli(&["inspect", "--keyring", p(&path), &tampered]).fails(1, "aead.tag");
    assert!(!run.stdout.contains("alice"), "{run:?}");

    // Another deployment's keyring.
    let foreign = dir.join("foreign.json");
    cli(&["keys", "init", "--keyring", p(&foreign)]).ok();
    cli(&["inspect", "--keyring", p(&foreign), &header]).fails(1, "key.unknown");

    // No cookie of ours, or no cookie at all.
    cli(&["inspect", "--keyring", p(&path), "theme=dark; lang=en"]).fails(1, "theme, lang");
    cli(&["inspect", "--keyring", p(&path), ""]).fails(1, "no cookie");

    // Errors, not verdicts: exit 2.
    cli(&[
        "inspect",
        "--keyring",
        p(&path),
        "--cookie-name",
        "bad name",
        &header,
    ])
    .fails(2, "--cookie-name");
    cli(&[
        "inspect",
        "--keyring",
        p(&dir.join("missing.json")),
        &header,
    ])
    .fails(2, "missing.json");
}

#[test]
fn inspect_shows_an_expired_session_but_fails() {
    let dir = TempDir::new();
    let path = dir.join("keyring.json");
    write_keyring(&path, vec![old_key(5, 10)]);
    let header = sealed_header(SessionConfig::new(), &load(&path), days_ago(3), alice);
    let run = cli(&["inspect", "--keyring", p(&path), &header]).fails(1, "time.expired");
    assert!(run.stdout.contains("\"user\" = \"alice\""), "{run:?}");
    assert!(run.stdout.contains("ago"), "{run:?}");
}

#[test]
fn usage_errors_exit_2() {
    cli(&[]).fails(2, "Usage");
    cli(&["keys", "list"]).fails(2, "--keyring");
    cli(&["frobnicate"]).fails(2, "frobnicate");
    let help = cli(&["--help"]).ok();
    assert!(
        help.stdout.contains("inspect") && help.stdout.contains("check"),
        "{help:?}"
    );
}
