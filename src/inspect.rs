//! The core of `sealed-session inspect`, in the library so that the fuzz target
//! (`fuzz/fuzz_targets/inspect.rs`) drives exactly what the command runs. Not a stable API.
//!
//! The header is read as bytes and parsed as the middleware parses it: one `Cookie` field per
//! input line, each split by [`cookie_pairs`]. Nothing is trimmed but what HTTP itself removes
//! (the line ending, an optional `Cookie:` field name, spaces and tabs around the field
//! value), and a byte that no HTTP server accepts in a field value is refused, since no server
//! would ever see such a header. Nothing here panics on any input.

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::codec::{Codec, Opened, cookie_pairs};
use crate::config::SessionConfig;
use crate::error::{ConfigError, DecodeError};
use crate::keyring::{Keyring, unix_seconds};

/// The checks `inspect` applies: the ones of a server with these settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base name of the session cookie.
    pub cookie_name: String,
    /// The server's idle timeout; `None` skips the check (and says so).
    pub idle_timeout: Option<Duration>,
    /// The server's allowed clock skew.
    pub clock_skew: Duration,
    /// The server's purpose label (`SessionConfig::purpose`), bound in the associated data.
    pub purpose: Option<String>,
}

impl Settings {
    /// The middleware's defaults for `cookie_name`.
    pub fn new(cookie_name: impl Into<String>) -> Self {
        let defaults = SessionConfig::new();
        Settings {
            cookie_name: cookie_name.into(),
            idle_timeout: defaults.idle_timeout,
            clock_skew: defaults.clock_skew,
            purpose: None,
        }
    }

    /// A codec that applies these checks and accepts the largest sessions any server could
    /// seal (total budget 64 KiB, inflation cap 16 MiB).
    ///
    /// # Errors
    /// A cookie name the middleware would refuse, or a zero idle timeout.
    pub fn codec(&self) -> Result<Codec, ConfigError> {
        Codec::new(self.config())
    }

    fn config(&self) -> SessionConfig {
        SessionConfig::new()
            .cookie_name(self.cookie_name.clone())
            .total_budget(TOTAL_BUDGET)
            .max_inflated(MAX_INFLATED)
            .idle_timeout(self.idle_timeout)
            // Only used when sealing; it must merely be shorter than the idle timeout.
            .renew_interval(Duration::from_nanos(1))
            .clock_skew(self.clock_skew)
            .purpose(self.purpose.clone())
    }
}

/// How `inspect` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A session opened and was shown.
    Opened,
    /// No session cookie in the header.
    Absent,
    /// A session cookie was present but did not open (shown anyway when only its times failed).
    Rejected(DecodeError),
}

/// A byte that no HTTP server accepts in a `Cookie` field value (a control character other
/// than tab).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForbiddenByte {
    /// 1-based input line.
    pub line: usize,
    /// 1-based byte position in that line.
    pub column: usize,
    /// The byte.
    pub byte: u8,
}

impl std::fmt::Display for ForbiddenByte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "byte 0x{:02x} at line {}, column {} cannot appear in an HTTP Cookie header (a \
             server would refuse the request before any cookie is read)",
            self.byte, self.line, self.column
        )
    }
}

impl std::error::Error for ForbiddenByte {}

/// The `Cookie` field values in `input`: one per line (LF or CRLF), each without a leading
/// `Cookie:` field name (ASCII case-insensitive) and without the spaces and tabs around it,
/// as an HTTP/1.1 parser delivers them. Several lines are several `Cookie` fields.
///
/// # Errors
/// A control byte other than tab (DEL included) anywhere in a line.
pub fn header_fields(input: &[u8]) -> Result<Vec<&[u8]>, ForbiddenByte> {
    let mut fields = Vec::new();
    let body = input.strip_suffix(b"\n").unwrap_or(input);
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(column) = line.iter().position(|&b| forbidden(b)) {
            return Err(ForbiddenByte {
                line: i + 1,
                column: column + 1,
                byte: line.get(column).copied().unwrap_or(0),
            });
        }
        let line = trim_ows(line);
        let value = match line.get(..7) {
            Some(name) if name.eq_ignore_ascii_case(b"cookie:") => {
                trim_ows(line.get(7..).unwrap_or_default())
            }
            _ => line,
        };
        fields.push(value);
    }
    Ok(fields)
}

/// Opens the session in `fields` at `now` and writes what the server would see to `out`;
/// why it did not open goes to `notes` (standard error in the command).
///
/// # Errors
/// Only the writers' errors.
pub fn run(
    out: &mut dyn Write,
    notes: &mut dyn Write,
    keyring: &Keyring,
    settings: &Settings,
    codec: &Codec,
    fields: &[&[u8]],
    now: SystemTime,
) -> io::Result<Outcome> {
    let name = &settings.cookie_name;
    let pairs: Vec<(&[u8], &[u8])> = cookie_pairs(fields.iter().copied()).collect();
    match codec.open(keyring, pairs.iter().copied(), now) {
        Ok(Some(opened)) => {
            show(out, keyring, settings, &opened, now)?;
            Ok(Outcome::Opened)
        }
        Ok(None) => {
            if pairs.is_empty() {
                writeln!(
                    notes,
                    "sealed-session: the header holds no cookie; expected `name=value; \
                     name2=value2` as sent in the Cookie request header"
                )?;
            } else {
                let names: Vec<String> = pairs
                    .iter()
                    .map(|(n, _)| String::from_utf8_lossy(n).into_owned())
                    .collect();
                writeln!(
                    notes,
                    "sealed-session: no {name} cookie in the header (it has: {}); pass \
                     --cookie-name if the server uses another name",
                    names.join(", ")
                )?;
            }
            Ok(Outcome::Absent)
        }
        Err(e) => {
            writeln!(
                notes,
                "sealed-session: the {name} cookie does not open: {} ({})",
                e.category(),
                explain(e.category())
            )?;
            // A session refused only for its times (or the cutoff) still authenticated: show
            // it, so that the times can be read.
            if matches!(
                e,
                DecodeError::Expired
                    | DecodeError::IdleExpired
                    | DecodeError::FutureDated
                    | DecodeError::Revoked
            ) {
                if let Some(opened) = open_ignoring_time(settings, keyring, &pairs) {
                    show(out, keyring, settings, &opened, now)?;
                }
            }
            Ok(Outcome::Rejected(e))
        }
    }
}

/// What a person can do about each stage's failure.
pub fn explain(category: &str) -> &'static str {
    match category {
        c if c.starts_with("chunk.") => {
            "the chunk cookies do not form one complete set: copy every <name>, <name>.1, \
             <name>.2, … cookie"
        }
        "armor" => "a value is not the base64url the server writes: was it copied whole?",
        c if c.starts_with("envelope.") => {
            "the value is not a sealed session of a format this build knows"
        }
        "key.unknown" => {
            "it was sealed with a key that is not in this keyring (another deployment's?)"
        }
        "key.retired" => "it was sealed with a key that has been retired",
        "key.algorithm_mismatch" => "the key with this id has another algorithm in this keyring",
        "aead.tag" => {
            "authentication failed: the cookie was altered, truncated or renamed, or a different \
             secret has this key id"
        }
        "payload" | "compression" => "it authenticated but its contents are malformed",
        "time.expired" => "the session's absolute lifetime is over",
        "time.idle" => "the session was idle longer than the idle timeout (--idle-timeout)",
        "time.future" => "it claims to be issued in the future: check the clocks",
        "ambiguous" => "two different sessions were presented under the same name",
        "revoked" => {
            "it was issued before the keyring's cutoff (`not_before`, set by `sealed-session \
             revoke`): the user must log in again"
        }
        "revalidation.failed" => {
            "the application's revalidation hook refused it (never reported by this command)"
        }
        _ => UNEXPLAINED,
    }
}

/// The explanation of a category this build does not know yet.
pub const UNEXPLAINED: &str = "see docs/FORMAT.md";

/// A time as RFC 3339 in UTC, whole seconds, for any `u64` of seconds: years past 9999 are
/// written with a `+` and as many digits as they need (ISO 8601's expanded years).
pub fn format_time(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // H. Hinnant's `civil_from_days`, in unsigned arithmetic (no date before 1970 here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = u128::from(yoe) + u128::from(era) * 400 + u128::from(month <= 2);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let sign = if year > 9999 { "+" } else { "" };
    format!("{sign}{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// "in 1h 2m" or "5m ago", to the second.
pub fn relative(secs: u64, now: u64) -> String {
    let span = |d: u64| humantime::format_duration(Duration::from_secs(d)).to_string();
    match secs.cmp(&now) {
        std::cmp::Ordering::Equal => "now".to_owned(),
        std::cmp::Ordering::Greater => format!("in {}", span(secs - now)),
        std::cmp::Ordering::Less => format!("{} ago", span(now - secs)),
    }
}

/// The largest sessions any server could seal.
const TOTAL_BUDGET: usize = 64 * 1024;
const MAX_INFLATED: usize = 16 * 1024 * 1024;

fn forbidden(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Without the spaces and tabs (HTTP's OWS) at either end.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Opens again with the time checks out of the way: `now` at the epoch (nothing has expired),
/// no idle timeout, an unbounded skew (nothing is future-dated) and no cutoff. The key and
/// tag are checked as before.
fn open_ignoring_time(
    settings: &Settings,
    keyring: &Keyring,
    pairs: &[(&[u8], &[u8])],
) -> Option<Opened> {
    let relaxed = Settings {
        idle_timeout: None,
        clock_skew: Duration::from_secs(u64::MAX),
        ..settings.clone()
    };
    let keyring = keyring.clone().with_not_before(None);
    relaxed
        .codec()
        .ok()?
        .open(&keyring, pairs.iter().copied(), UNIX_EPOCH)
        .ok()
        .flatten()
}

/// Prints an opened session: never a secret, but the entries are the user's data.
fn show(
    out: &mut dyn Write,
    keyring: &Keyring,
    settings: &Settings,
    opened: &Opened,
    now: SystemTime,
) -> io::Result<()> {
    let now = unix_seconds(now);
    let chunks = &opened.chunk_lengths;
    let sizes: Vec<String> = chunks.iter().map(usize::to_string).collect();
    writeln!(
        out,
        "cookie:      {}, {} chunk{} ({} bytes)",
        settings.cookie_name,
        chunks.len(),
        if chunks.len() == 1 { "" } else { "s" },
        sizes.join(" + ")
    )?;
    let at = crate::keyring::from_unix_seconds(now);
    let state = keyring
        .get(opened.key_id)
        .map_or("unknown", |k| keyring.state(k, at).name());
    writeln!(
        out,
        "key:         {} ({}, {state})",
        opened.key_id, opened.algorithm
    )?;
    let sealing = keyring.sealing_key(at).id();
    if sealing != opened.key_id {
        writeln!(
            out,
            "             not the sealing key: the server re-seals it under {sealing}"
        )?;
    }
    let s = &opened.state;
    writeln!(out, "session id:  {}", hex(&s.id))?;
    for (label, t) in [
        ("issued:", s.issued_at),
        ("expires:", s.expires_at),
        ("last seen:", s.last_seen),
    ] {
        writeln!(out, "{label:<12} {} ({})", format_time(t), relative(t, now))?;
    }
    let skew = humantime::format_duration(settings.clock_skew);
    match settings.idle_timeout {
        Some(idle) => writeln!(
            out,
            "checks:      key, tag, expiry, idle timeout {} (--idle-timeout), clock skew {skew}; \
             the server's cookie budgets are not checked",
            humantime::format_duration(idle)
        )?,
        None => writeln!(
            out,
            "checks:      key, tag, expiry, clock skew {skew}; skipped: the idle timeout \
             (--idle-timeout none) and the server's cookie budgets"
        )?,
    }
    let compressed = if opened.compressed.is_empty() {
        "none".to_owned()
    } else {
        opened.compressed.join(", ")
    };
    writeln!(out, "compressed:  {compressed}")?;
    writeln!(out, "entries:     {}", s.entries.len())?;
    for (key, bytes) in s.entries.iter() {
        // Postcard writes a string as a varint length and UTF-8 bytes; anything else is hex.
        match s.get::<String>(key) {
            Ok(Some(text)) => writeln!(out, "  {key:?} = {text:?}")?,
            _ => {
                let n = bytes.len();
                writeln!(
                    out,
                    "  {key:?} = hex {} ({n} byte{})",
                    hex(bytes),
                    if n == 1 { "" } else { "s" }
                )?;
            }
        }
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_is_explained() {
        for c in DecodeError::CATEGORIES {
            assert_ne!(explain(c), UNEXPLAINED, "{c}");
        }
    }

    #[test]
    fn a10_times_format_for_every_u64() {
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(format_time(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_time(253_402_300_799), "9999-12-31T23:59:59Z");
        assert_eq!(format_time(253_402_300_800), "+10000-01-01T00:00:00Z");
        assert_eq!(format_time(1 << 63), "+292277026596-12-04T15:30:08Z");
        assert_eq!(format_time(u64::MAX), "+584554051223-11-09T07:00:15Z");
        assert!(relative(u64::MAX, 0).starts_with("in "));
        assert!(relative(0, u64::MAX).ends_with(" ago"));
    }

    #[test]
    fn a10_header_fields_are_what_http_delivers() {
        fn f(s: &[u8]) -> Vec<&[u8]> {
            header_fields(s).unwrap()
        }
        assert_eq!(f(b" Cookie: a=b; c=d\n"), [b"a=b; c=d"]);
        assert_eq!(f(b"cookie:a=b\r\n"), [b"a=b"]);
        assert_eq!(f(b"a=b\nCOOKIE: c=d"), [&b"a=b"[..], b"c=d"]);
        // Unicode whitespace is not HTTP whitespace, and other bytes are not UTF-8-checked.
        assert_eq!(f("\u{a0}a=b".as_bytes()), ["\u{a0}a=b".as_bytes()]);
        assert_eq!(f(b"x=\xff; a=b"), [b"x=\xff; a=b"]);
        for bad in [
            &b"a=b\x0b"[..],
            b"\x00",
            b"a=\x7f",
            b"a=b\rc=d",
            b"\x0c a=b",
        ] {
            assert!(header_fields(bad).is_err(), "{bad:?}");
        }
    }
}
