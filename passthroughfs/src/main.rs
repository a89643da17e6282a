//! `passthroughfs`: mirror a directory read-only through FUSE, built only from this
//! workspace's crates.
//!
//! - transport: FUSE-over-io_uring (`fuse-uring`) when the kernel offers it and the rings can
//!   be set up, else the classic `/dev/fuse` read/writev loop with one cloned fd per worker;
//! - data path: `FOPEN_PASSTHROUGH` with a backing id from `fuse-backing` when the kernel and
//!   privileges allow, else READ served with positional reads straight into the reply buffer;
//! - lifecycle: mount with `mount(2)`; unmount on SIGINT/SIGTERM/SIGHUP, on a server error, and
//!   (through a small watchdog process) when this process dies.
//!
//! Run `passthroughfs --help` for the options.

#![allow(missing_docs, unreachable_pub)]

use passthroughfs::stats::Transport;
use passthroughfs::{dev, fs, uring};

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use fuse_wire::sys;
use rustix::io::Errno;

const HELP: &str = "\
passthroughfs: mirror SOURCE read-only at MOUNTPOINT through FUSE

usage: passthroughfs [OPTIONS] SOURCE MOUNTPOINT

options:
  --transport uring|dev|auto  how requests travel (default auto):
                                uring  FUSE-over-io_uring, one ring and one thread per
                                       possible CPU (Linux 6.14+, and as root:
                                       echo Y > /sys/module/fuse/parameters/enable_uring);
                                       fails if the kernel does not offer it
                                dev    read(2)/writev(2) on /dev/fuse, one cloned fd per thread
                                auto   uring when offered and the rings can be set up, else dev
  --no-passthrough            serve READ from this process instead of letting the kernel read
                              the source files directly (passthrough needs Linux 6.9+ and root)
  --attr-timeout SECONDS      how long the kernel may cache attributes and names (default 1;
                              0 asks the server every time)
  --no-pin-queues             do not pin the io_uring thread of queue N to CPU N (by default
                              it is pinned: the kernel queues a request on the queue of the CPU
                              its caller runs on, and a wakeup across CPUs costs far more than
                              sharing the CPU with the caller)
  --zero-copy auto|off        with io_uring on Linux 7.3+ (which offers buffer pools) and as
                              root: READs of files not read through passthrough go straight
                              into the reader's pages (io_uring zero-copy; default auto)
  --threads N                 worker threads of the dev transport (default: possible CPUs)
  --stats                     on exit, print request counts by opcode and transport, and how
                              many opens went through passthrough
  --nonempty                  mount even if MOUNTPOINT has entries (they are hidden meanwhile)
  --one-file-system           mirror SOURCE's own file system only: what is mounted under it
                              shows as the empty directory it covers (then no other file
                              system, for example another user's FUSE mount, is ever entered)
  --                          end of options (SOURCE may then start with '-')
  -h, --help                  this text

It stays in the foreground; stop it with Ctrl-C (SIGINT) or SIGTERM, or unmount MOUNTPOINT.
If a client still holds the mount 2 s after the signal (a cwd, an open file), or on a second
signal, the connection is aborted: those clients get ENOTCONN. A watchdog process unmounts
the mount if the server dies, but only while the mount point is still this mount.
On start it prints one line `ready: transport=... passthrough=...` once the mount is usable.
SOURCE and MOUNTPOINT must not overlap, and MOUNTPOINT must not be a mount point already.

What it guarantees:
  - nothing is written to SOURCE, not even an atime: the server works on a private,
    detached, read-only, noatime copy of SOURCE's mounts (taken before mounting; a warning
    says so when the kernel or privileges do not allow it). Mounts made under SOURCE later,
    the mirror itself included, are not seen;
  - permissions as SOURCE enforces them: mode bits and POSIX ACLs (default_permissions and
    FUSE_POSIX_ACL); trusted.* xattrs are listed to CAP_SYS_ADMIN callers only;
  - inode numbers unique on the mount: SOURCE's own for its file system, numbers from 2^62
    for file systems mounted under SOURCE;
  - fd limit: the soft RLIMIT_NOFILE is raised to the hard one; inodes keep an O_PATH fd up
    to half of it, the least recently used beyond are closed and reopened from file handles
    (open_by_handle_at); an open that still hits EMFILE gets EMFILE, later ones work;
  - memory: a directory handle is one fd (read at the kernel's offset, never copied); the
    inode table grows with what the kernel remembers (about 200 bytes per inode) and
    shrinks when it forgets;
  - no waits on other users: files are opened O_NONBLOCK, so a lease held on a source file
    makes the open fail with EAGAIN at once (the holder is asked to release it) instead of
    stalling a worker or an io_uring queue for the lease-break time.
";

/// Which transport the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TransportChoice {
    Uring,
    Dev,
    Auto,
}

#[derive(Debug)]
struct Args {
    source: PathBuf,
    mountpoint: PathBuf,
    transport: TransportChoice,
    passthrough: bool,
    attr_timeout: Duration,
    threads: Option<usize>,
    pin_queues: bool,
    /// `--zero-copy auto` (true) or `off`.
    zero_copy: bool,
    stats: bool,
    nonempty: bool,
    one_file_system: bool,
}

/// A one-line error for the user: what went wrong and how to fix it.
#[derive(Debug)]
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

fn parse_args() -> Result<Option<Args>, Fatal> {
    let mut positional = Vec::new();
    let mut args = Args {
        source: PathBuf::new(),
        mountpoint: PathBuf::new(),
        transport: TransportChoice::Auto,
        passthrough: true,
        attr_timeout: Duration::from_secs(1),
        threads: None,
        pin_queues: true,
        zero_copy: true,
        stats: false,
        nonempty: false,
        one_file_system: false,
    };
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        if arg == "--" {
            // Everything after `--` is positional (a source named like an option).
            positional.extend(it.by_ref().map(PathBuf::from));
            break;
        }
        let value = |it: &mut dyn Iterator<Item = std::ffi::OsString>, name: &str| {
            it.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| Fatal(format!("{name} needs a value (see --help)")))
        };
        match arg.to_str() {
            Some("-h" | "--help") => {
                print!("{HELP}");
                return Ok(None);
            }
            Some("--transport") => {
                args.transport = match value(&mut it, "--transport")?.as_str() {
                    "uring" => TransportChoice::Uring,
                    "dev" => TransportChoice::Dev,
                    "auto" => TransportChoice::Auto,
                    other => {
                        return Err(Fatal(format!(
                            "--transport {other}: expected uring, dev or auto"
                        )));
                    }
                }
            }
            Some("--no-passthrough") => args.passthrough = false,
            Some("--attr-timeout") => {
                let v = value(&mut it, "--attr-timeout")?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| Fatal(format!("--attr-timeout {v}: expected seconds >= 0")))?;
                args.attr_timeout = Duration::from_secs_f64(secs);
            }
            Some("--threads") => {
                let v = value(&mut it, "--threads")?;
                args.threads = Some(
                    v.parse()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| Fatal(format!("--threads {v}: expected 1..1024")))?,
                );
            }
            Some("--stats") => args.stats = true,
            Some("--nonempty") => args.nonempty = true,
            Some("--one-file-system") => args.one_file_system = true,
            Some("--no-pin-queues") => args.pin_queues = false,
            Some("--zero-copy") => {
                args.zero_copy = match value(&mut it, "--zero-copy")?.as_str() {
                    "auto" => true,
                    "off" => false,
                    _ => return Err(Fatal("--zero-copy: expected auto or off".into())),
                };
            }
            Some(s) if s.starts_with('-') => {
                return Err(Fatal(format!("unknown option {s} (see --help)")));
            }
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    let [source, mountpoint] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| Fatal("expected SOURCE and MOUNTPOINT (see --help)".into()))?;
    args.source = source;
    args.mountpoint = mountpoint;
    Ok(Some(args))
}

/// Checks what can be checked before touching the kernel, each with a fix.
fn preflight(args: &Args) -> Result<(), Fatal> {
    let source = std::fs::metadata(&args.source).map_err(|e| {
        Fatal(format!(
            "source {}: {e}; give an existing directory",
            args.source.display()
        ))
    })?;
    if !source.is_dir() {
        return Err(Fatal(format!(
            "source {} is not a directory",
            args.source.display()
        )));
    }
    let mp = std::fs::metadata(&args.mountpoint).map_err(|e| {
        Fatal(format!(
            "mount point {}: {e}; create it first (mkdir -p {})",
            args.mountpoint.display(),
            args.mountpoint.display()
        ))
    })?;
    if !mp.is_dir() {
        return Err(Fatal(format!(
            "mount point {} is not a directory",
            args.mountpoint.display()
        )));
    }
    // Identified by device and mount id, not by the spelling of the path.
    if fuse_dev::is_mount_point(&args.mountpoint)? {
        return Err(Fatal(format!(
            "{} is already a mount point; unmount it first (umount {})",
            args.mountpoint.display(),
            args.mountpoint.display()
        )));
    }
    // A mount point inside the source (or the source inside the mount point) would make the
    // server's own syscalls enter its own mount: a deadlock.
    if let Some(overlap) = fuse_dev::check_overlap(&args.source, &args.mountpoint)? {
        return Err(Fatal(format!(
            "source {} and mount point {} overlap ({overlap}); choose a mount point outside the source",
            args.source.display(),
            args.mountpoint.display()
        )));
    }
    // Mounting over files hides them from everyone until the unmount: only when asked.
    if !args.nonempty && std::fs::read_dir(&args.mountpoint).is_ok_and(|mut d| d.next().is_some()) {
        return Err(Fatal(format!(
            "mount point {} is not empty; mounting would hide its files (give --nonempty to \
             mount anyway)",
            args.mountpoint.display()
        )));
    }
    if !Path::new("/dev/fuse").exists() {
        return Err(Fatal(
            "/dev/fuse is missing; load the module: modprobe fuse".into(),
        ));
    }
    if !rustix::process::geteuid().is_root() {
        return Err(Fatal(
            "not permitted: mounting needs root (CAP_SYS_ADMIN), and fusermount3 is not \
             supported by this example; run it as root (sudo)"
                .into(),
        ));
    }
    Ok(())
}

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
fn spawn_unmount_watchdog(identity: fuse_dev::MountIdentity) -> Result<OwnedFd, Fatal> {
    use std::os::fd::AsRawFd;
    let (read_end, write_end) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // SAFETY: called while the process has a single thread (before any worker is spawned),
    // so the child may run arbitrary code.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(Fatal(format!("fork: {}", std::io::Error::last_os_error()))),
        0 => {
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
            let _ = rustix::process::setsid();
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
            Ok(write_end)
        }
    }
}

/// Blocks the stop signals in this thread (and so in every thread spawned later), so that
/// the main thread can wait for them with `sigwait`.
#[allow(unsafe_code)] // fork / signal masks, which rustix does not offer safely
fn block_stop_signals() -> libc::sigset_t {
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

/// Raises the mount's readahead to 1 MiB (the kernel's default is 128 KiB; the INIT reply can
/// only lower it): served sequential reads then come in larger READs. Best effort.
fn raise_readahead(mount: &fuse_dev::Mount) {
    if let Some(connection) = mount.connection() {
        let _ = connection.set_readahead_kb(1024);
    }
}

/// Fault injection for the tests (`tests/harden.rs`): with `PASSTHROUGHFS_FAULT_ERRNO=<n>`,
/// GETXATTR of `user.passthroughfs.fault` fails with errno `n` (also outside the kernel's
/// range, as some drivers leak `ENOTSUPP`, 524).
const FAULT_ERRNO: &str = "PASSTHROUGHFS_FAULT_ERRNO";

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: inodes the kernel remembers keep an fd
/// each, up to half the limit (see `fs`). Best effort.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// Wakes the main thread (a worker ended or failed).
fn wake_main() {
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::USR1);
}

fn possible_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The INIT flags the mirror wants, besides passthrough and io_uring.
const WANT: u32 = sys::FUSE_ASYNC_READ
    | sys::FUSE_MAX_PAGES
    | sys::FUSE_BIG_WRITES
    | sys::FUSE_DO_READDIRPLUS
    | sys::FUSE_READDIRPLUS_AUTO
    | sys::FUSE_PARALLEL_DIROPS
    | sys::FUSE_CACHE_SYMLINKS
    | sys::FUSE_ASYNC_DIO
    // Permission checks with the source's POSIX ACLs, which the kernel reads through GETXATTR.
    | sys::FUSE_POSIX_ACL;

/// Mounts read-only (a mirror takes no writes, and the kernel then also skips the atime
/// update it would otherwise mark after every passthrough read).
fn mount(args: &Args) -> Result<(fuse_dev::Device, fuse_dev::Mount), Fatal> {
    let device =
        fuse_dev::Device::open().map_err(|e| Fatal(format!("cannot open /dev/fuse: {e}")))?;
    let options = fuse_dev::MountOptions::new()
        .subtype("passthroughfs")
        .allow_other(true)
        .default_permissions(true)
        .read_only(true)
        .nosuid(true)
        .nodev(true);
    let mount =
        fuse_dev::Mount::new(&device, &args.mountpoint, &options).map_err(|e| match e.errno() {
            Some(Errno::PERM) => Fatal("mount: not permitted; run as root".into()),
            _ => Fatal(format!("mount on {}: {e}", args.mountpoint.display())),
        })?;
    Ok((device, mount))
}

/// Whether io_uring will be used: offered by the kernel, wanted, and the rings can be set up
/// (checked before agreeing to it: once agreed, the kernel waits for every queue).
fn choose_rings(
    args: &Args,
    kernel: &fuse_wire::KernelInit,
    queues: &[u16],
) -> Result<Option<uring::Rings>, Fatal> {
    const SWITCH: &str = "echo Y > /sys/module/fuse/parameters/enable_uring";
    if args.transport == TransportChoice::Dev {
        return Ok(None);
    }
    if !kernel.offers(sys::FUSE_OVER_IO_URING) {
        if args.transport == TransportChoice::Uring {
            return Err(Fatal(format!(
                "the kernel does not offer FUSE-over-io_uring: it needs Linux 6.14+ with \
                 CONFIG_FUSE_IO_URING, and as root: {SWITCH}"
            )));
        }
        eprintln!(
            "passthroughfs: FUSE-over-io_uring is not offered by the kernel, using /dev/fuse \
             (to enable it, as root: {SWITCH})"
        );
        return Ok(None);
    }
    match uring::Rings::prepare(queues, kernel) {
        Ok(rings) => Ok(Some(rings)),
        Err(e) if args.transport == TransportChoice::Uring => {
            Err(Fatal(format!("cannot set up the io_uring rings: {e}")))
        }
        Err(e) => {
            eprintln!("passthroughfs: io_uring unavailable ({e}); using /dev/fuse");
            Ok(None)
        }
    }
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
fn stop(
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

fn run(args: Args) -> Result<(), Fatal> {
    preflight(&args)?;
    let signals = block_stop_signals();
    raise_fd_limit();
    // The source is opened before the mount exists: as a private copy of its mounts, in
    // which our own mount never appears (see `fs::open_source`).
    let (root, view) = fs::open_source(&args.source, !args.one_file_system)
        .map_err(|e| Fatal(format!("source {}: {e}", args.source.display())))?;
    if let (fs::SourceView::Shared(_), true) = (view, args.one_file_system) {
        return Err(Fatal(
            "--one-file-system needs a private copy of the source's mount (open_tree and \
             mount_setattr: Linux 5.12+, CAP_SYS_ADMIN)"
                .into(),
        ));
    }
    if let fs::SourceView::Shared(e) = view {
        eprintln!(
            "passthroughfs: cannot make a private read-only noatime copy of the source's \
             mounts ({e}); serving the source itself, whose atimes may then change"
        );
    }
    let (device, mount) = mount(&args)?;
    let watchdog = spawn_unmount_watchdog(mount.identity().clone())?;
    // A handle on the connection for passthrough's BACKING_OPEN (any fd of the session).
    let backing_dev = Arc::new(
        device
            .try_clone()
            .map_err(|e| Fatal(format!("CLONE: {e}")))?
            .into_fd(),
    );
    let mut channel = fuse_dev::Channel::new(device);

    // INIT: see what the kernel offers, set up what it needs, then answer.
    let init = channel
        .read_init(&mut vec![0u8; fuse_dev::MIN_READ_BUFFER])
        .map_err(|e| Fatal(format!("INIT: {e}")))?;
    let kernel = init.kernel;
    let passthrough = args.passthrough && kernel.offers(sys::FUSE_PASSTHROUGH);
    let queues = match args.transport {
        TransportChoice::Dev => Vec::new(),
        _ => uring::possible_queues().map_err(|e| {
            Fatal(format!(
                "cannot list the possible CPUs for io_uring queues: {e}"
            ))
        })?,
    };
    let rings = choose_rings(&args, &kernel, &queues)?;
    let mut config = fuse_wire::InitConfig::default().with(u64::from(WANT));
    if passthrough {
        config = config.with(sys::FUSE_PASSTHROUGH);
    }
    if rings.is_some() {
        config = config.with(sys::FUSE_OVER_IO_URING);
    }
    let negotiated = match fuse_wire::negotiate(&kernel, &config) {
        Ok(n) => n,
        Err(e) => {
            let _ = channel.refuse_init(&init, &e);
            return Err(Fatal(format!("INIT: {e}")));
        }
    };
    // Zero-copy needs buffer pools (Linux 7.3) and CAP_SYS_ADMIN.
    let zero_copy = args.zero_copy
        && rings.as_ref().is_some_and(uring::Rings::pools)
        && rustix::process::geteuid().is_root();
    let fs = fs::Fs::with_root(
        root,
        fs::Options {
            attr_timeout: args.attr_timeout,
            passthrough,
            zero_copy,
        },
        Some(backing_dev.clone()),
    )?
    .with_fault_errno(std::env::var(FAULT_ERRNO).ok().and_then(|v| v.parse().ok()));
    let fs = match view {
        // Without a private copy our own mount is in the server's view: guard LOOKUP.
        fs::SourceView::Shared(_) => {
            let own = mount.identity().device();
            fs.guard_own_mount(rustix::fs::makedev(own.major, own.minor))
        }
        fs::SourceView::Private => fs,
    };
    let fs = Arc::new(fs);
    channel.reply_init(&init, &negotiated)?;
    raise_readahead(&mount);

    // Start the workers: rings first (every queue must have an entry before requests flow),
    // then the /dev/fuse workers (all requests without io_uring; FORGET/INTERRUPT with it).
    let mut workers = Vec::new();
    let transport = match rings {
        Some(rings) => {
            workers.extend(rings.start(
                fs.clone(),
                backing_dev.clone(),
                negotiated.uring_payload_size(),
                args.pin_queues,
                zero_copy,
                negotiated.protocol(),
                wake_main,
            )?);
            Transport::Uring
        }
        None => Transport::Dev,
    };
    if transport == Transport::Uring && args.threads.is_some() {
        eprintln!(
            "passthroughfs: --threads applies to the dev transport only; io_uring serves \
             with one thread per queue (one queue per possible CPU)"
        );
    }
    let dev_threads = match transport {
        Transport::Uring => 1,
        Transport::Dev => args.threads.unwrap_or_else(possible_cpus),
    };
    let mut channels = Vec::with_capacity(dev_threads);
    for _ in 1..dev_threads {
        channels.push(
            channel
                .try_clone()
                .map_err(|e| Fatal(format!("CLONE: {e}")))?,
        );
    }
    channels.push(channel);
    for (i, channel) in channels.into_iter().enumerate() {
        let fs = fs.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("fuse-dev-{i}"))
                .spawn(move || {
                    let r = dev::serve(&fs, &channel);
                    if let Err(e) = &r {
                        eprintln!("passthroughfs: /dev/fuse worker {i}: {e}");
                    }
                    wake_main();
                    r.map_err(|e| e.to_string())
                })?,
        );
    }
    println!(
        "ready: transport={} passthrough={} queues={} dev_threads={dev_threads} \
         attr_timeout={:?} max_write={} minor={} zero_copy={}",
        transport.name(),
        if passthrough { "on" } else { "off" },
        if transport == Transport::Uring {
            queues.len()
        } else {
            0
        },
        args.attr_timeout,
        negotiated.max_write(),
        kernel.minor,
        if zero_copy { "on" } else { "off" },
    );
    let result = stop(&signals, mount, workers);
    // Stopped: the watchdog has nothing to do (a byte, not the end of the pipe).
    let _ = rustix::io::write(&watchdog, b"x");
    if args.stats {
        print!("{}", fs.stats.report());
        println!("stats: transport: {}", transport.name());
    }
    result
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => return ExitCode::SUCCESS,
        Err(Fatal(e)) => {
            eprintln!("passthroughfs: {e}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(e)) => {
            eprintln!("passthroughfs: {e}");
            ExitCode::FAILURE
        }
    }
}
