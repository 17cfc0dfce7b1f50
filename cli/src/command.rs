//! The validated command: every argument parsed into its real type before anything runs.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use sealed_session::inspect::Settings;
use sealed_session::{Algorithm, KeyId};

use crate::args::{KeysCommand, LowArgs, LowCommand};

/// The longest activation delay `keys rotate` accepts. Anything longer is almost certainly a
/// typo, and keeps every time far from the year-9999 limit of RFC 3339.
const MAX_ACTIVATION_DELAY: Duration = Duration::from_secs(366 * 86_400);

/// What to do, with every argument checked.
#[derive(Debug)]
pub enum Command {
    /// `keys init`.
    Init {
        path: PathBuf,
        algorithm: Algorithm,
        force: bool,
        create_dirs: bool,
    },
    /// `keys rotate`.
    Rotate {
        path: PathBuf,
        activate_in: Duration,
        algorithm: Algorithm,
    },
    /// `keys list`.
    List { path: PathBuf, json: bool },
    /// `keys retire`.
    Retire { path: PathBuf, which: Retire },
    /// `inspect`.
    Inspect {
        path: PathBuf,
        settings: Settings,
        header: Header,
    },
    /// `check`.
    Check { path: PathBuf },
    /// `revoke`.
    Revoke { path: PathBuf, before: Before },
}

/// The cutoff `revoke --before` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// The moment the command runs.
    Now,
    /// A given time.
    At(SystemTime),
}

/// Which keys `keys retire` retires.
#[derive(Debug)]
pub enum Retire {
    /// These ids.
    Ids(Vec<KeyId>),
    /// Every key activated more than this long ago, except the sealing key.
    OlderThan(Duration),
}

/// Where `inspect` reads the Cookie header from.
#[derive(Debug)]
pub enum Header {
    /// The command line (bytes: a cookie need not be UTF-8).
    Arg(OsString),
    /// Standard input.
    Stdin,
}

impl Command {
    /// Validates the plain arguments.
    ///
    /// # Errors
    /// A duration, algorithm or key id that does not parse, with the flag and value named.
    pub fn from_args(args: LowArgs) -> anyhow::Result<Command> {
        Ok(match args.command {
            LowCommand::Keys { command } => match command {
                KeysCommand::Init(a) => Command::Init {
                    path: a.keyring.keyring,
                    algorithm: algorithm(a.algorithm.as_deref())?,
                    force: a.force,
                    create_dirs: a.create_dirs,
                },
                KeysCommand::Rotate(a) => {
                    let activate_in = duration("--activate-in", &a.activate_in)?;
                    if activate_in > MAX_ACTIVATION_DELAY {
                        bail!(
                            "invalid --activate-in {:?}: activation more than 366 days away is \
                             refused (a typo?)",
                            a.activate_in
                        );
                    }
                    Command::Rotate {
                        path: a.keyring.keyring,
                        activate_in,
                        algorithm: algorithm(a.algorithm.as_deref())?,
                    }
                }
                KeysCommand::List(a) => Command::List {
                    path: a.keyring.keyring,
                    json: a.json,
                },
                KeysCommand::Retire(a) => {
                    let which = match a.older_than {
                        Some(text) => Retire::OlderThan(duration("--older-than", &text)?),
                        None => Retire::Ids(
                            a.id.iter()
                                .map(|id| key_id(id))
                                .collect::<anyhow::Result<_>>()?,
                        ),
                    };
                    Command::Retire {
                        path: a.keyring.keyring,
                        which,
                    }
                }
            },
            LowCommand::Inspect(a) => {
                let mut settings = Settings::new(a.cookie_name);
                settings.purpose = a.purpose;
                settings.idle_timeout = match a.idle_timeout.trim() {
                    "none" => None,
                    text => {
                        let idle = duration("--idle-timeout", text)?;
                        if idle.is_zero() {
                            bail!(
                                "invalid --idle-timeout {text:?}: give a positive duration, or \
                                 `none` to skip the check"
                            );
                        }
                        Some(idle)
                    }
                };
                Command::Inspect {
                    path: a.keyring.keyring,
                    settings,
                    header: match a.header {
                        Some(text) if text != "-" => Header::Arg(text),
                        _ => Header::Stdin,
                    },
                }
            }
            LowCommand::Check(a) => Command::Check {
                path: a.keyring.keyring,
            },
            LowCommand::Revoke(a) => Command::Revoke {
                path: a.keyring.keyring,
                before: before(&a.before)?,
            },
        })
    }
}

/// A non-negative duration such as `90s`, `30m`, `48h`, `7d` or `1h 30m`.
fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    if text.trim_start().starts_with('-') {
        bail!("invalid {flag} {text:?}: a duration cannot be negative");
    }
    humantime::parse_duration(text.trim()).with_context(|| {
        format!("invalid {flag} {text:?}: expected a duration such as 90s, 30m, 48h or 7d")
    })
}

/// `now` or an RFC 3339 time in UTC (`Z`), as the keyring file writes times.
fn before(text: &str) -> anyhow::Result<Before> {
    let text = text.trim();
    if text == "now" {
        return Ok(Before::Now);
    }
    if !text.ends_with('Z') {
        bail!(
            "invalid --before {text:?}: expected `now` or a UTC time such as \
             2026-12-02T21:00:00Z"
        );
    }
    humantime::parse_rfc3339(text)
        .map(Before::At)
        .with_context(|| {
            format!(
                "invalid --before {text:?}: expected `now` or a UTC time such as \
             2026-12-02T21:00:00Z"
            )
        })
}

/// An algorithm name; none means the library default (XAES-256-GCM).
fn algorithm(name: Option<&str>) -> anyhow::Result<Algorithm> {
    let Some(name) = name else {
        return Ok(Algorithm::default());
    };
    Algorithm::from_name(name).with_context(|| {
        let known: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
        format!(
            "invalid --algorithm {name:?}: expected one of {}",
            known.join(", ")
        )
    })
}

/// A key id as `keys list` prints it.
fn key_id(text: &str) -> anyhow::Result<KeyId> {
    KeyId::parse(text).with_context(|| {
        format!(
            "invalid --id {text:?}: a key id is 8 lowercase hex digits, as `sealed-session keys \
             list` prints it"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("--x", "0s").unwrap(), Duration::ZERO);
        assert_eq!(
            duration("--x", "7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(
            duration("--x", "1h 30m").unwrap(),
            Duration::from_secs(5_400)
        );
        for bad in ["10x", "-5m", "", "5", "m"] {
            let err = duration("--x", bad).unwrap_err().to_string();
            assert!(
                err.contains("--x") && err.contains(&format!("{bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn before_times() {
        assert_eq!(before("now").unwrap(), Before::Now);
        assert_eq!(
            before("2026-01-01T00:00:00Z").unwrap(),
            Before::At(SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600))
        );
        for bad in [
            "",
            "yesterday",
            "2026-01-01",
            "2026-01-01T00:00:00+02:00",
            "1h",
        ] {
            let err = before(bad).unwrap_err().to_string();
            assert!(err.contains("--before"), "{err}");
        }
    }

    #[test]
    fn algorithms_and_ids() {
        assert_eq!(algorithm(None).unwrap(), Algorithm::Xaes256Gcm);
        assert_eq!(algorithm(Some("aes256gcm")).unwrap(), Algorithm::Aes256Gcm);
        assert!(algorithm(Some("AES256GCM")).is_err());
        assert_eq!(key_id("0a0b0c0d").unwrap(), KeyId([10, 11, 12, 13]));
        assert!(key_id("0A0B0C0D").is_err());
    }
}
