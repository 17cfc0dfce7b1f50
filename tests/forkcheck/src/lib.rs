//! Test helper for sealed-session (issue 9 A3): run a closure in a real `fork()`ed child and
//! get back what it returns, so a test can compare what a parent and its child draw from the
//! same thread-local state.
//!
//! Only the fork itself (`fork`, `_exit`, `waitpid`) is `unsafe`; the child reports through a
//! file the parent reads after the child has exited.

#![deny(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Forks; in the child, runs `child` on the calling thread (the only thread a forked child
/// has), writes the bytes it returns for the parent and exits with `_exit` (no atexit handlers,
/// no destructors). Returns those bytes in the parent once the child has exited.
///
/// Keep `child` simple: the child inherits memory, not the other threads, so a lock another
/// thread held at the fork stays held (glibc's allocator is safe).
///
/// # Errors
/// The fork failed, or the child panicked, was killed or wrote nothing.
pub fn in_child(child: impl FnOnce() -> Vec<u8>) -> Result<Vec<u8>, String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let path: PathBuf = std::env::temp_dir().join(format!(
        "forkcheck-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    match fork() {
        Fork::Failed(errno) => Err(format!("fork failed (errno {errno})")),
        Fork::Child => {
            let ok = catch_unwind(AssertUnwindSafe(child))
                .ok()
                .and_then(|bytes| std::fs::write(&path, bytes).ok())
                .is_some();
            exit_now(if ok { 0 } else { 1 })
        }
        Fork::Parent(pid) => {
            let status = wait(pid);
            let out = std::fs::read(&path);
            let _ = std::fs::remove_file(&path);
            match (status, out) {
                (Some(0), Ok(bytes)) => Ok(bytes),
                (status, out) => Err(format!(
                    "child {pid} ended with status {status:?} (0 = success), output {:?}",
                    out.map(|b| b.len())
                )),
            }
        }
    }
}

enum Fork {
    Child,
    Parent(libc::pid_t),
    Failed(i32),
}

#[allow(unsafe_code)]
fn fork() -> Fork {
    // SAFETY: `fork` has no preconditions; the child only runs the closure on this thread and
    // leaves through `_exit`.
    match unsafe { libc::fork() } {
        0 => Fork::Child,
        pid if pid > 0 => Fork::Parent(pid),
        _ => Fork::Failed(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
    }
}

#[allow(unsafe_code)]
fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// The child's exit code, or `None` when it did not exit normally.
#[allow(unsafe_code)]
fn wait(pid: libc::pid_t) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid, writable int for the call's duration.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        if r < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return None;
        }
    }
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}
