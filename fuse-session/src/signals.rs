//! Stopping a session on SIGINT, SIGTERM and SIGHUP ([`Session::stop_on_signals`]).
//!
//! The signals are blocked in the thread that calls `serve` before any session thread is
//! started (threads inherit the mask), and one thread of the session takes them with
//! `sigtimedwait`, then stops the session: a mount made with `mount(2)` is never left dead
//! behind a killed server. This is the only module with `unsafe`: signal masks and
//! `sigtimedwait` have no safe wrapper in rustix.
//!
//! [`Session::stop_on_signals`]: crate::Session::stop_on_signals
#![allow(unsafe_code)]

use std::time::Duration;

/// The signals that stop a session.
pub(crate) const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The calling thread's signal mask before [`block`], restored by [`Blocked::restore`].
pub(crate) struct Blocked {
    set: libc::sigset_t,
    old: libc::sigset_t,
}

impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blocked(SIGINT, SIGTERM, SIGHUP)")
    }
}

/// Blocks the stop signals in the calling thread (and so in the threads it starts).
pub(crate) fn block() -> Blocked {
    // SAFETY: sigset_t is a plain bit array; all-zero bytes are a valid (empty) set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for sig in STOP_SIGNALS {
        // SAFETY: `set` is a valid sigset_t and `sig` a valid signal number.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    // SAFETY: `set` is initialised and `old` a valid out pointer.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    Blocked { set, old }
}

impl Blocked {
    /// Waits up to `timeout` for one of the stop signals; the signal, or `None`.
    pub(crate) fn wait(&self, timeout: Duration) -> Option<libc::c_int> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        // SAFETY: siginfo_t is plain data; all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `self.set` is an initialised sigset, `info` and `ts` valid pointers.
        let sig = unsafe { libc::sigtimedwait(&self.set, &mut info, &ts) };
        (sig > 0).then_some(sig)
    }

    /// Restores the mask the calling thread had before [`block`] (call it on that thread).
    pub(crate) fn restore(self) {
        // SAFETY: `self.old` is the mask `pthread_sigmask` returned; null old-set is allowed.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}
