//! `inspect`: opens a session cookie copied from a browser and shows what the server would see.

use std::io::{IsTerminal as _, Read as _, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use sealed_session::codec::cookie_pairs;
use sealed_session::{Codec, DecodeError, Keyring, Opened, SessionConfig};

use crate::command::Header;
use crate::keyfile;
use crate::keys::{relative, rfc3339};

/// Exit status when the header holds no session that opens (like ripgrep's "no match").
const NOT_OPENED: u8 = 1;

/// `inspect`.
pub fn inspect(
    out: &mut impl Write,
    path: &Path,
    cookie_name: &str,
    header: &Header,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    keyfile::warn_if_exposed(path);
    let codec = Codec::new(config(cookie_name))
        .with_context(|| format!("invalid --cookie-name {cookie_name:?}"))?;

    let text = match header {
        Header::Arg(text) => text.clone(),
        Header::Stdin => {
            if std::io::stdin().is_terminal() {
                eprintln!(
                    "sealed-session: reading the Cookie header from standard input (end with Ctrl-D)"
                );
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the Cookie header from standard input")?;
            text
        }
    };
    let text = strip_header_name(&text);
    let pairs: Vec<(&[u8], &[u8])> = cookie_pairs([text.as_bytes()]).collect();

    match codec.open(&keyring, pairs.iter().copied(), now) {
        Ok(Some(opened)) => {
            show(out, &keyring, cookie_name, &opened, now)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            let names: Vec<String> = pairs
                .iter()
                .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
                .collect();
            if names.is_empty() {
                eprintln!(
                    "sealed-session: the header holds no cookie; expected `name=value; name2=value2` \
                     as sent in the Cookie request header"
                );
            } else {
                eprintln!(
                    "sealed-session: no {cookie_name} cookie in the header (it has: {}); pass \
                     --cookie-name if the server uses another name",
                    names.join(", ")
                );
            }
            Ok(ExitCode::from(NOT_OPENED))
        }
        Err(e) => {
            eprintln!(
                "sealed-session: the {cookie_name} cookie does not open: {} ({})",
                e.category(),
                explain(e.category())
            );
            // A session refused only for its times still authenticated: show it, so that the
            // times can be read.
            if matches!(e, DecodeError::Expired | DecodeError::FutureDated) {
                if let Some(opened) = open_ignoring_time(cookie_name, &keyring, &pairs) {
                    show(out, &keyring, cookie_name, &opened, now)?;
                }
            }
            Ok(ExitCode::from(NOT_OPENED))
        }
    }
}

/// A configuration that opens whatever a server with this cookie name could have sealed: the
/// largest budgets, no idle timeout (the server's is unknown; `last seen` is shown instead).
fn config(cookie_name: &str) -> SessionConfig {
    SessionConfig::new()
        .cookie_name(cookie_name)
        .total_budget(64 * 1024)
        .max_inflated(16 * 1024 * 1024)
        .idle_timeout(None)
}

/// Opens again with the time checks out of the way: `now` at the epoch (nothing has expired)
/// and an unbounded skew (nothing is future-dated). The key and tag are checked as before.
fn open_ignoring_time(
    cookie_name: &str,
    keyring: &Keyring,
    pairs: &[(&[u8], &[u8])],
) -> Option<Opened> {
    let codec = Codec::new(config(cookie_name).clock_skew(Duration::from_secs(u64::MAX))).ok()?;
    codec
        .open(keyring, pairs.iter().copied(), UNIX_EPOCH)
        .ok()
        .flatten()
}

/// The header value without a leading `Cookie:` copied along with it.
fn strip_header_name(text: &str) -> &str {
    let text = text.trim();
    match text.get(..7) {
        Some(name) if name.eq_ignore_ascii_case("cookie:") => text[7..].trim_start(),
        _ => text,
    }
}

/// The explanation of a category this build does not know yet.
const UNEXPLAINED: &str = "see docs/FORMAT.md";

/// What a person can do about each stage's failure.
fn explain(category: &str) -> &'static str {
    match category {
        c if c.starts_with("chunk.") => {
            "the chunk cookies do not form one complete set: copy every <name>, <name>.1, <name>.2, … cookie"
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
        "time.idle" => "the session was idle too long",
        "time.future" => "it claims to be issued in the future: check the clocks",
        "ambiguous" => "two different sessions were presented under the same name",
        _ => UNEXPLAINED,
    }
}

/// Prints an opened session: never a secret, but the entries are the user's data.
fn show(
    out: &mut impl Write,
    keyring: &Keyring,
    cookie_name: &str,
    opened: &Opened,
    now: SystemTime,
) -> anyhow::Result<()> {
    let chunks = &opened.chunk_lengths;
    let sizes: Vec<String> = chunks.iter().map(usize::to_string).collect();
    writeln!(
        out,
        "cookie:      {cookie_name}, {} chunk{} ({} bytes)",
        chunks.len(),
        if chunks.len() == 1 { "" } else { "s" },
        sizes.join(" + ")
    )?;
    let state = keyring
        .get(opened.key_id)
        .map_or("unknown", |k| keyring.state(k, now).name());
    writeln!(
        out,
        "key:         {} ({}, {state})",
        opened.key_id, opened.algorithm
    )?;
    let sealing = keyring.sealing_key(now).id();
    if sealing != opened.key_id {
        writeln!(
            out,
            "             not the sealing key: the server re-seals it under {sealing}"
        )?;
    }
    let s = &opened.state;
    writeln!(out, "session id:  {}", hex(&s.id()))?;
    for (label, t) in [
        ("issued:", s.issued_at()),
        ("expires:", s.expires_at()),
        ("last seen:", s.last_seen()),
    ] {
        writeln!(out, "{label:<12} {} ({})", rfc3339(t), relative(t, now))?;
    }
    let compressed = if opened.compressed.is_empty() {
        "none".to_owned()
    } else {
        opened.compressed.join(", ")
    };
    writeln!(out, "compressed:  {compressed}")?;
    writeln!(out, "entries:     {}", s.entries().len())?;
    for (key, bytes) in s.entries() {
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
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_name_is_optional() {
        assert_eq!(strip_header_name(" Cookie: a=b; c=d\n"), "a=b; c=d");
        assert_eq!(strip_header_name("cookie:a=b"), "a=b");
        assert_eq!(strip_header_name("a=b"), "a=b");
        assert_eq!(strip_header_name("é"), "é");
    }

    #[test]
    fn every_category_is_explained() {
        for c in DecodeError::CATEGORIES {
            assert_ne!(explain(c), UNEXPLAINED, "{c}");
        }
    }
}
