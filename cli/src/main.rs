//! `sealed-session`: manage the keyring that seals session cookies, and inspect a cookie.
//!
//! ```text
//! sealed-session keys init    --keyring FILE [--algorithm NAME] [--force]
//! sealed-session keys rotate  --keyring FILE [--activate-in DURATION] [--algorithm NAME]
//! sealed-session keys list    --keyring FILE [--json]
//! sealed-session keys retire  --keyring FILE (--id ID ... | --older-than DURATION)
//! sealed-session inspect      --keyring FILE [--cookie-name NAME] [--idle-timeout D|none] [--purpose L] ['COOKIE HEADER' | -]
//! sealed-session check        --keyring FILE
//! sealed-session revoke       --keyring FILE --before TIME|now
//! ```
//!
//! Exit status: 0 on success, 1 when `inspect` finds no session that opens, 2 on an error
//! (printed to stderr with its causes). See docs/CLI.md for the key rotation runbook.

mod args;
mod command;
mod inspect;
mod keyfile;
mod keys;

use std::io::{self, Write as _};
use std::process::ExitCode;
use std::time::SystemTime;

use clap::Parser as _;

use crate::args::LowArgs;
use crate::command::Command;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(err) => {
            // `sealed-session keys list | head -1` is not an error.
            if err.chain().any(|e| {
                e.downcast_ref::<io::Error>()
                    .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("sealed-session: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Parses the arguments (clap exits with status 2 on a usage error), validates them into a
/// [`Command`], and runs it.
fn run() -> anyhow::Result<ExitCode> {
    let command = Command::from_args(LowArgs::parse())?;
    let now = SystemTime::now();
    let mut out = io::stdout().lock();
    let code = match &command {
        Command::Init {
            path,
            algorithm,
            force,
            create_dirs,
        } => keys::init(&mut out, path, *algorithm, *force, *create_dirs, now)?,
        Command::Rotate {
            path,
            activate_in,
            algorithm,
        } => keys::rotate(&mut out, path, *activate_in, *algorithm, now)?,
        Command::List { path, json } => keys::list(&mut out, path, *json, now)?,
        Command::Retire { path, which } => keys::retire(&mut out, path, which, now)?,
        Command::Inspect {
            path,
            settings,
            header,
        } => inspect::inspect(&mut out, path, settings, header, now)?,
        Command::Check { path } => keys::check(&mut out, path, now)?,
        Command::Revoke { path, before } => keys::revoke(&mut out, path, *before, now)?,
    };
    out.flush()?;
    Ok(code)
}
