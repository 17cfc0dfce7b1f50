//! `inspect`: opens a session cookie copied from a browser and shows what the server would see.
//! The decoding and printing live in the library (`sealed_session::inspect`), where the fuzz
//! target drives them; this file reads the inputs and maps the outcome to an exit status.

use std::io::{IsTerminal as _, Read as _, Write};
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::Context as _;
use sealed_session::inspect::{self as core, Outcome, Settings};

use crate::command::Header;
use crate::keyfile;

/// Exit status when the header holds no session that opens (like ripgrep's "no match").
const NOT_OPENED: u8 = 1;

/// `inspect`.
pub fn inspect(
    out: &mut impl Write,
    path: &Path,
    settings: &Settings,
    header: &Header,
    now: SystemTime,
) -> anyhow::Result<ExitCode> {
    let keyring = keyfile::read(path, now)?;
    keyfile::warn_if_exposed(path);
    let codec = settings
        .codec()
        .with_context(|| format!("invalid --cookie-name {:?}", settings.cookie_name))?;

    let bytes = match header {
        Header::Arg(text) => text.as_bytes().to_vec(),
        Header::Stdin => {
            if std::io::stdin().is_terminal() {
                eprintln!(
                    "sealed-session: reading the Cookie header from standard input (end with Ctrl-D)"
                );
            }
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("cannot read the Cookie header from standard input")?;
            bytes
        }
    };
    let fields = core::header_fields(&bytes).context("cannot use this Cookie header")?;
    let mut notes = std::io::stderr().lock();
    match core::run(out, &mut notes, &keyring, settings, &codec, &fields, now)? {
        Outcome::Opened => Ok(ExitCode::SUCCESS),
        Outcome::Absent | Outcome::Rejected(_) => Ok(ExitCode::from(NOT_OPENED)),
    }
}
