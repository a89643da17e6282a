//! The command line: `--help`, the options, and the checks made before touching the kernel.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use crate::Fatal;
use passthroughfs::uring::RingSetup;

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
  --queue-depth N             io_uring entries per queue, 1..=1024 (default 16): how many
                              requests one CPU's queue holds at once
  --ring-setup defer|coop|plain
                              how each io_uring ring runs the kernel's task work (default
                              defer): defer = single issuer with deferred task work (run
                              when the ring thread waits), coop = single issuer with
                              cooperative task work, plain = neither (libfuse's choice)
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
    to the limit minus a reserve (a quarter, at most 4096), the least recently used beyond
    are closed and reopened from file handles
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
pub(crate) enum TransportChoice {
    Uring,
    Dev,
    Auto,
}

#[derive(Debug)]
pub(crate) struct Args {
    pub(crate) source: PathBuf,
    pub(crate) mountpoint: PathBuf,
    pub(crate) transport: TransportChoice,
    pub(crate) passthrough: bool,
    pub(crate) attr_timeout: Duration,
    pub(crate) threads: Option<usize>,
    pub(crate) pin_queues: bool,
    pub(crate) queue_depth: u32,
    pub(crate) ring_setup: RingSetup,
    /// `--zero-copy auto` (true) or `off`.
    pub(crate) zero_copy: bool,
    pub(crate) stats: bool,
    pub(crate) nonempty: bool,
    pub(crate) one_file_system: bool,
}

pub(crate) fn parse_args() -> Result<Option<Args>, Fatal> {
    let mut positional = Vec::new();
    let mut args = Args {
        source: PathBuf::new(),
        mountpoint: PathBuf::new(),
        transport: TransportChoice::Auto,
        passthrough: true,
        attr_timeout: Duration::from_secs(1),
        threads: None,
        pin_queues: true,
        queue_depth: 16,
        ring_setup: RingSetup::Defer,
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
                args.transport = choice(
                    "--transport",
                    &value(&mut it, "--transport")?,
                    &[
                        ("uring", TransportChoice::Uring),
                        ("dev", TransportChoice::Dev),
                        ("auto", TransportChoice::Auto),
                    ],
                )?;
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
                args.threads = Some(number_in("--threads", &v, 1..=1024)?);
            }
            Some("--queue-depth") => {
                let v = value(&mut it, "--queue-depth")?;
                args.queue_depth = number_in("--queue-depth", &v, 1..=1024)?;
            }
            Some("--ring-setup") => {
                args.ring_setup = choice(
                    "--ring-setup",
                    &value(&mut it, "--ring-setup")?,
                    &[
                        ("defer", RingSetup::Defer),
                        ("coop", RingSetup::Coop),
                        ("plain", RingSetup::Plain),
                    ],
                )?;
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

/// The value of option `name` that is one of `choices`; else an error naming them
/// (`--name v: expected a, b or c`).
fn choice<T: Copy>(name: &str, v: &str, choices: &[(&str, T)]) -> Result<T, Fatal> {
    if let Some(&(_, t)) = choices.iter().find(|(word, _)| *word == v) {
        return Ok(t);
    }
    let words: Vec<&str> = choices.iter().map(|(word, _)| *word).collect();
    let expected = match words.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(Fatal(format!("{name} {v}: expected {expected}")))
}

/// The value of option `name` as a number in `range`; else an error naming the range
/// (`--name v: expected 1..1024`).
fn number_in<T>(name: &str, v: &str, range: RangeInclusive<T>) -> Result<T, Fatal>
where
    T: FromStr + PartialOrd + Display,
{
    v.parse().ok().filter(|n| range.contains(n)).ok_or_else(|| {
        Fatal(format!(
            "{name} {v}: expected {}..{}",
            range.start(),
            range.end()
        ))
    })
}

/// Checks what can be checked before touching the kernel, each with a fix.
pub(crate) fn preflight(args: &Args) -> Result<(), Fatal> {
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
