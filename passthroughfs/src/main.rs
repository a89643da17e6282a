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
use std::process::ExitCode;
use std::sync::Arc;

use fuse_wire::init_flags;
use rustix::io::Errno;

mod cli;
mod process;

use cli::{Args, TransportChoice, parse_args, preflight};
use process::{block_stop_signals, raise_fd_limit, spawn_unmount_watchdog, stop, wake_main};

/// A one-line error for the user: what went wrong and how to fix it.
#[derive(Debug)]
struct Fatal(String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
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

fn possible_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The INIT flags the mirror wants, besides passthrough and io_uring.
const WANT: u64 = init_flags::ASYNC_READ
    | init_flags::MAX_PAGES
    | init_flags::BIG_WRITES
    | init_flags::DO_READDIRPLUS
    | init_flags::READDIRPLUS_AUTO
    | init_flags::PARALLEL_DIROPS
    | init_flags::CACHE_SYMLINKS
    | init_flags::ASYNC_DIO
    // Permission checks with the source's POSIX ACLs, which the kernel reads through GETXATTR.
    | init_flags::POSIX_ACL;

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
        .nodev(true)
        // fuse-dev checks emptiness again on the directory it mounts on (held by fd).
        .allow_nonempty(args.nonempty);
    let mount =
        fuse_dev::Mount::new(&device, &args.mountpoint, &options).map_err(|e| match e.errno() {
            Some(Errno::PERM) => Fatal("mount: not permitted; run as root".into()),
            _ => Fatal(format!("mount on {}: {e}", args.mountpoint.display())),
        })?;
    Ok((device, mount))
}

/// The io_uring options of the command line (zero-copy is decided after INIT).
fn ring_options(args: &Args, zero_copy: bool) -> uring::RingOptions {
    uring::RingOptions {
        depth: args.queue_depth,
        setup: args.ring_setup,
        pin: args.pin_queues,
        zero_copy,
    }
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
    if !kernel.offers(init_flags::OVER_IO_URING) {
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
    match uring::Rings::prepare(queues, kernel, ring_options(args, false)) {
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

/// Opens the source before the mount exists: as a private copy of its mounts, in which our
/// own mount never appears (see `fs::open_source`), or the source itself with a warning.
fn open_source(args: &Args) -> Result<(OwnedFd, fs::SourceView), Fatal> {
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
    Ok((root, view))
}

/// What this server asks for in INIT.
fn init_config(passthrough: bool, uring: bool) -> fuse_wire::InitConfig {
    let mut config = fuse_wire::InitConfig::default().with(WANT);
    if passthrough {
        config = config.with(init_flags::PASSTHROUGH);
    }
    if uring {
        config = config.with(init_flags::OVER_IO_URING);
    }
    config
}

/// A worker thread's handle: its error, if it ended with one.
type Worker = std::thread::JoinHandle<Result<(), String>>;

/// Starts `count` `/dev/fuse` workers, each on its own clone of `channel`'s fd (the last on
/// `channel` itself).
fn start_dev_workers(
    fs: &Arc<fs::Fs>,
    channel: fuse_dev::Channel,
    count: usize,
) -> Result<Vec<Worker>, Fatal> {
    let mut channels = Vec::with_capacity(count);
    for _ in 1..count {
        channels.push(
            channel
                .try_clone()
                .map_err(|e| Fatal(format!("CLONE: {e}")))?,
        );
    }
    channels.push(channel);
    let mut workers = Vec::with_capacity(count);
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
    Ok(workers)
}

fn run(args: Args) -> Result<(), Fatal> {
    preflight(&args)?;
    let signals = block_stop_signals();
    raise_fd_limit();
    let (root, view) = open_source(&args)?;
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
    let passthrough = args.passthrough && kernel.offers(init_flags::PASSTHROUGH);
    let queues = match args.transport {
        TransportChoice::Dev => Vec::new(),
        _ => uring::possible_queues().map_err(|e| {
            Fatal(format!(
                "cannot list the possible CPUs for io_uring queues: {e}"
            ))
        })?,
    };
    let rings = choose_rings(&args, &kernel, &queues)?;
    let negotiated = match fuse_wire::negotiate(&kernel, &init_config(passthrough, rings.is_some()))
    {
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
            workers.extend(rings.with_zero_copy(zero_copy).start(
                fs.clone(),
                backing_dev.clone(),
                negotiated.uring_payload_size(),
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
    workers.extend(start_dev_workers(&fs, channel, dev_threads)?);
    println!(
        "ready: transport={} passthrough={} queues={} dev_threads={dev_threads} \
         attr_timeout={:?} max_write={} minor={} zero_copy={} queue_depth={} ring_setup={}",
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
        args.queue_depth,
        args.ring_setup.name(),
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
