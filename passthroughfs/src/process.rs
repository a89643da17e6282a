//! Process control: the unmount watchdog, the fd limit, the stop signals, and stopping.

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::io::Errno;

use crate::Fatal;

/// The watchdog of our mount: a child process that unmounts it when this process dies,
/// however it dies, but only if the mount point is still exactly our mount (mount id and
/// device, [`fuse_dev::MountIdentity::unmount_if_ours`]): never a file system mounted there
/// later or stacked on ours. It waits on a pipe whose write side only this process holds: a
/// byte means "stopped cleanly, nothing to do", end of file means "died".
///
/// Forked right after `mount(2)`, while this process has a single thread. The child closes
/// every fd but the pipe (it must not keep the FUSE connection alive) and starts its own
/// session, so that killing our process group (`kill -9 -PGID`) does not kill it too.
#[allow(unsafe_code)] // fork / close_range / _exit, which rustix does not offer safely
pub(crate) fn spawn_unmount_watchdog(identity: fuse_dev::MountIdentity) -> Result<OwnedFd, Fatal> {
    use std::os::fd::AsRawFd;
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // Closed by the child once it has its own session: until then a `kill -9 -PGID` of our
    // process group would take the watchdog with it, so the parent waits for that.
    let (started_read, started_write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: called while the process has a single thread (before any worker is spawned),
    // so the child may run arbitrary code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(Fatal(format!("fork: {}", std::io::Error::last_os_error()))),
        0 => {
            let _ = rustix::process::setsid();
            drop(started_read);
            drop(started_write);
            drop(write_end);
            let keep = read_end.as_raw_fd() as libc::c_uint;
            // SAFETY: closes fds of this child only; `read_end` (kept) is the only fd used
            // below, and no other code of the child holds an fd.
            unsafe {
                libc::close_range(3, keep - 1, 0);
            }
            // SAFETY: as above.
            unsafe {
                libc::close_range(keep + 1, libc::c_uint::MAX, 0);
            }
            let mut byte = [0u8; 1];
            let died = loop {
                match rustix::io::read(&read_end, &mut byte) {
                    Err(Errno::INTR) => continue,
                    Ok(1) => break false,
                    _ => break true,
                }
            };
            if died {
                let _ = identity.unmount_if_ours();
            }
            // SAFETY: _exit ends the child without running the parent's atexit handlers or
            // destructors, which belong to the parent.
            unsafe { libc::_exit(0) }
        }
        _ => {
            drop(read_end);
            drop(started_write);
            // EOF once the child has closed its copy, after setsid (or if it died).
            let mut byte = [0u8; 1];
            while let Err(Errno::INTR) = rustix::io::read(&started_read, &mut byte) {}
            Ok(write_end)
        }
    }
}

/// Blocks the stop signals in this thread (and so in every thread spawned later), so that
/// the main thread can wait for them with `sigwait`.
#[allow(unsafe_code)] // fork / signal masks, which rustix does not offer safely
pub(crate) fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit array; all-zero bytes are a valid (empty) set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1] {
        // SAFETY: `set` is a valid sigset_t and `sig` a valid signal number.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    set
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: inodes the kernel remembers keep an fd
/// each, up to the limit minus a reserve (see `fs`). Best effort.
pub(crate) fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Wakes the main thread (a worker ended or failed).
pub(crate) fn wake_main() {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR1);
}

/// How long the workers get to end by themselves after the unmount (a client still holding
/// the mount, a cwd or an open file, keeps the connection alive) before the connection is
/// aborted through fusectl. A second stop signal aborts at once.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Waits for the next signal of `signals`: `Some(signal)` for a stop signal (SIGINT,
/// SIGTERM, SIGHUP, or SIGUSR1 sent by this process when a worker ends), `None` when
/// `timeout` passed. A SIGUSR1 from another process is ignored (said on stderr).
#[allow(unsafe_code)] // sigtimedwait, which rustix does not offer safely
fn next_signal(signals: &libc::sigset_t, timeout: Option<Duration>) -> Option<libc::c_int> {
    let deadline = timeout.map(|t| std::time::Instant::now() + t);
    loop {
        // SAFETY: siginfo_t is plain data; all-zero bytes are a valid value.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let ts = left.map(|l| libc::timespec {
            tv_sec: l.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(l.subsec_nanos() as i32),
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `signals` is an initialised sigset, `info` a valid out pointer, `ts_ptr`
        // null or a valid timespec.
        let sig = unsafe { libc::sigtimedwait(signals, &mut info, ts_ptr) };
        if sig < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => return None,
            }
        }
        if sig == libc::SIGUSR1 {
            // SAFETY: for a signal sent with kill/tgkill the kernel filled si_pid.
            let from = unsafe { info.si_pid() };
            if from != rustix::process::getpid().as_raw_nonzero().get() {
                eprintln!("passthroughfs: ignoring SIGUSR1 from pid {from}");
                continue;
            }
        }
        return Some(sig);
    }
}

/// Waits for a stop signal, or for a worker to end (unmounted from outside, or an error),
/// then unmounts our mount (only ours) and joins the workers. When they do not end within
/// [`STOP_GRACE`] (a client holds the detached mount) or on a second stop signal, the
/// connection is aborted (fusectl): clients then get `ENOTCONN`, and the server exits.
pub(crate) fn stop(
    signals: &libc::sigset_t,
    mut mount: fuse_dev::Mount,
    workers: Vec<std::thread::JoinHandle<Result<(), String>>>,
) -> Result<(), Fatal> {
    let sig = next_signal(signals, None);
    if let Some(sig) = sig.filter(|&s| s != libc::SIGUSR1) {
        eprintln!("passthroughfs: signal {sig}, unmounting");
    }
    let connection = mount.connection();
    match mount.unmount() {
        Ok(fuse_dev::UnmountOutcome::NotOurs(presence)) => eprintln!(
            "passthroughfs: another mount sits on {} ({presence:?}); left alone",
            mount.mount_point().display()
        ),
        Ok(_) => {}
        Err(e) => return Err(Fatal(format!("unmount: {e}"))),
    }
    let all_ended =
        |workers: &[std::thread::JoinHandle<_>]| workers.iter().all(|w| w.is_finished());
    let started = std::time::Instant::now();
    while !all_ended(&workers) {
        let left = STOP_GRACE.saturating_sub(started.elapsed());
        let again = next_signal(signals, Some(left.min(Duration::from_millis(50))));
        let second = again.is_some_and(|s| s != libc::SIGUSR1);
        if second || started.elapsed() >= STOP_GRACE {
            match &connection {
                Some(c) => {
                    eprintln!(
                        "passthroughfs: {}; aborting the connection",
                        if second {
                            "second signal"
                        } else {
                            "the mount is still in use"
                        }
                    );
                    if let Err(e) = c.abort() {
                        eprintln!("passthroughfs: abort through fusectl: {e}; exiting");
                        return Ok(());
                    }
                }
                // No fusectl: exiting closes our /dev/fuse fds, which aborts the connection.
                None => return Ok(()),
            }
            break;
        }
    }
    let mut failed = None;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(e),
            Err(_) => failed = Some("a worker thread panicked".into()),
        }
    }
    match failed {
        Some(e) => Err(Fatal(format!("server error: {e}"))),
        None => Ok(()),
    }
}
