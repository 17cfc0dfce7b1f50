//! The arguments as clap parses them: plain strings and flags, nothing checked yet.
//!
//! [`crate::command::Command::from_args`] turns them into a validated command (durations,
//! algorithms and key ids parsed), the way ripgrep turns `LowArgs` into `HiArgs`.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

/// Manage the keyring of sealed-session cookies and inspect cookies sealed with it.
#[derive(Debug, Parser)]
#[command(name = "sealed-session", version)]
#[command(after_help = "Durations are written like 90s, 30m, 48h or 7d. \
Exit status: 0 on success, 1 when `inspect` finds no session that opens, 2 on any error.")]
pub struct LowArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LowCommand,
}

/// The top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum LowCommand {
    /// Create, rotate, list and retire keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Open a session cookie copied from a browser and show what it holds.
    Inspect(InspectArgs),
    /// Validate a keyring file (for deploy pipelines): exit 0 and a summary when it is usable.
    Check(CheckArgs),
    /// End every session issued before a moment, on every node that loads the keyring.
    Revoke(RevokeArgs),
}

/// `sealed-session keys …`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a keyring holding one key that seals from now on.
    Init(InitArgs),
    /// Add a key that starts sealing after a delay; the earlier keys keep opening cookies.
    Rotate(RotateArgs),
    /// List the keys and their states (never their secrets).
    List(ListArgs),
    /// Retire keys so that they no longer open cookies.
    Retire(RetireArgs),
}

/// The keyring file every subcommand works on.
#[derive(Debug, Args)]
pub struct KeyringArg {
    /// The keyring file (JSON, see docs/FORMAT.md).
    #[arg(long, value_name = "FILE")]
    pub keyring: PathBuf,
}

/// `keys init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// AEAD algorithm of the key: xaes256gcm (default), xchacha20poly1305 or aes256gcm.
    #[arg(long, value_name = "NAME")]
    pub algorithm: Option<String>,
    /// Replace an existing keyring file. Its keys are lost: every session sealed with them ends.
    #[arg(long)]
    pub force: bool,
    /// Create the keyring's missing parent directories (mode 0700). Without it a missing
    /// directory is an error.
    #[arg(long)]
    pub create_dirs: bool,
}

/// `keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// How long until the new key starts sealing. Make it longer than the keyring reload
    /// interval of every node (see docs/CLI.md). `0s` seals at once.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1h",
        allow_hyphen_values = true
    )]
    pub activate_in: String,
    /// AEAD algorithm of the new key: xaes256gcm (default), xchacha20poly1305 or aes256gcm.
    #[arg(long, value_name = "NAME")]
    pub algorithm: Option<String>,
}

/// `keys list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `keys retire`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "older_than"])))]
pub struct RetireArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// Retire the key with this id (8 hex digits, as `keys list` prints). Repeatable.
    #[arg(long, value_name = "ID")]
    pub id: Vec<String>,
    /// Retire every key that activated more than DURATION ago, except the sealing key.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    pub older_than: Option<String>,
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// Base name of the session cookie.
    #[arg(long, value_name = "NAME", default_value = "__Host-session")]
    pub cookie_name: String,
    /// The server's idle timeout, checked as the server checks it (`none` skips the check).
    #[arg(long, value_name = "DURATION", default_value = "2h")]
    pub idle_timeout: String,
    /// The server's purpose label (`purpose(Some(..))`), if it sets one: it is bound into
    /// every cookie, which opens only under the same label.
    #[arg(long, value_name = "LABEL")]
    pub purpose: Option<String>,
    /// The request's Cookie header (`a=b; c=d`, a leading `Cookie:` is ignored; one header
    /// per line). `-` or nothing reads it from standard input, which keeps the cookie out of
    /// shell history. Read as bytes, exactly as the server reads it.
    #[arg(value_name = "COOKIE_HEADER")]
    pub header: Option<OsString>,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
}

/// `revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    #[command(flatten)]
    pub keyring: KeyringArg,
    /// Sessions issued before this moment stop opening: `now`, or a UTC time such as
    /// 2026-12-02T21:00:00Z (not in the future). Sessions issued at or after it, and every
    /// later login, are unaffected.
    #[arg(long, value_name = "TIME|now")]
    pub before: String,
}
