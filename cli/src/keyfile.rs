//! Reading and writing keyring files: atomic replacement, mode 0600, no secret in any message.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, anyhow, bail};
use sealed_session::Keyring;
use zeroize::Zeroizing;

/// The only mode a keyring file is written with: the secrets are for its owner alone.
const MODE: u32 = 0o600;

/// Reads and validates the keyring at `path`.
///
/// # Errors
/// The file cannot be read, or is not a keyring that can seal at `now`; the message names the
/// path and, for a missing file, how to create one.
pub fn read(path: &Path, now: SystemTime) -> anyhow::Result<Keyring> {
    let bytes = match fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) => {
            let hint = if e.kind() == io::ErrorKind::NotFound {
                format!(
                    " (create one with `sealed-session keys init --keyring {}`)",
                    path.display()
                )
            } else {
                String::new()
            };
            return Err(anyhow!(e).context(format!("cannot read keyring {}{hint}", path.display())));
        }
    };
    Keyring::from_json(&bytes, now)
        .with_context(|| format!("keyring {} is not usable", path.display()))
}

/// Prints a warning to stderr when users other than the owner may read or write the file.
pub fn warn_if_exposed(path: &Path) {
    let Ok(meta) = fs::metadata(path) else { return };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!(
            "sealed-session: warning: keyring {} has mode {mode:04o}: group or other users can \
             access its secrets; run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

/// Whether anything (a file, a directory, even a dangling symlink) is at `path`.
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Replaces the file at `path` with `contents`, atomically: a temporary file with mode 0600 in
/// the same directory is written and fsynced, then renamed over `path`, and the directory is
/// fsynced. Readers see the old keyring or the new one, never a mix. A symlink at `path` is
/// followed, so the file it points to is replaced and the link is kept.
///
/// # Errors
/// The directory does not exist or is not writable, the disk is full, …; the message names the
/// path.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let target = resolve(path)?;
    let file_name = target
        .file_name()
        .with_context(|| format!("keyring path {} does not name a file", path.display()))?;
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| anyhow!("the random generator failed: {e}"))?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{}.{suffix}.tmp", file_name.to_string_lossy()));

    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE)
        .open(&tmp)
        .with_context(|| {
            format!(
                "cannot write keyring {}: cannot create a file in directory {} (does it exist, \
                 and may you write to it? `keys init --create-dirs` creates it)",
                path.display(),
                dir.display()
            )
        })?;
    let written = (|| -> io::Result<()> {
        // The umask can only clear bits, but say it explicitly anyway.
        file.set_permissions(Permissions::from_mode(MODE))?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!(e).context(format!("cannot write keyring {}", path.display())));
    }
    // Make the rename itself durable. Best effort: some file systems refuse to sync a
    // directory, and the new file is already complete either way.
    if let Ok(dir) = File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates the missing directories above `path`, each with mode 0700 (only the owner may list
/// or enter them: the keyring's secrets are for the owner alone).
///
/// # Errors
/// A directory cannot be created; the message names it.
pub fn create_parent_dirs(path: &Path) -> anyhow::Result<()> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create directory {}", dir.display()))
}

/// `path`, or the file it points to when it is a symlink.
fn resolve(path: &Path) -> anyhow::Result<PathBuf> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path)
            .with_context(|| format!("keyring {} is a symlink that leads nowhere", path.display())),
        Ok(meta) if meta.is_dir() => bail!("keyring path {} is a directory", path.display()),
        _ => Ok(path.to_path_buf()),
    }
}
