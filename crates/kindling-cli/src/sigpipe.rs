//! A command-line tool stops quietly when its reader goes away (`kindling stages | head -1`).
//!
//! Rust programs start with SIGPIPE ignored, so a write to a closed pipe fails with EPIPE and
//! `println!` panics ("failed printing to stdout: Broken pipe", exit 101). Restoring the
//! default action makes the kernel end the process at that write, as it ends `cat` or `ls`:
//! nothing is half-written by it, because every file Kindling writes is written atomically.
//! Sockets are unaffected (the standard library sends with `MSG_NOSIGNAL`), and children get
//! the default action anyway.

/// Restores SIGPIPE's default action (terminate) for this process.
pub(crate) fn restore_default() {
    #[cfg(unix)]
    // SAFETY: `signal` with a valid signal number and `SIG_DFL` has no memory-safety
    // preconditions; it runs first thing in `main`, before any thread is started.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
