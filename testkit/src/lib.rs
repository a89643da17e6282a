//! Shared scaffolding for the workspace's kernel tests, examples, demo and benchmarks.
//!
//! One place for what every test against a real kernel needs, so that no test file copies it:
//! - [`kernel_test`] / [`kernel_test_leak_checked`]: the one guard at the top of every kernel
//!   test, from what it [`Needs`]; it skips with a printed reason ([`skip`]), or fails when
//!   `FUSE_TESTS_REQUIRE_KERNEL=1` (CI) says that skips are not allowed;
//! - [`open_dev`], [`Mount`]: open `/dev/fuse` and mount it with `mount(2)` on a fresh
//!   temporary directory, unmounted (and the connection aborted if needed) on drop;
//! - [`read_request`], [`reply`], [`handshake`]: the wire protocol on `/dev/fuse`;
//! - [`Session`]: a mount plus a server thread running a [`Handler`] such as [`MemFs`],
//!   torn down in the right order on success, failure and panic.
//!
//! Not published; not an API for users (the example server shows the user-facing way).

#![allow(missing_docs)]

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use fuse_wire::init_flags;
use rustix::io::Errno;
use sys::zerocopy::{FromBytes, Immutable, IntoBytes};

mod memfs;
pub use memfs::{MemFs, Node};
pub mod example;
pub mod fault;
mod guard;
pub use guard::{
    Feature, KernelTest, Needs, Verdict, host_verdict, kernel_test, kernel_test_leak_checked,
    kernel_verdict,
};
pub mod kernel;
pub mod leak;
mod serve_later;
pub mod tree;

/// The environment variable that turns every kernel-test skip into a failure.
pub const REQUIRE_ENV: &str = "FUSE_TESTS_REQUIRE_KERNEL";

/// Whether `FUSE_TESTS_REQUIRE_KERNEL=1` is set.
pub fn kernel_required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// Skips the calling test with a printed reason, or panics when skips are not allowed.
#[track_caller]
pub fn skip(reason: &str) {
    if kernel_required() {
        panic!("{REQUIRE_ENV}=1 but this kernel test cannot run: {reason}");
    }
    eprintln!("SKIP ({}): {reason}", std::panic::Location::caller());
}

/// Whether we are root (needed for `mount(2)` of a FUSE file system).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The `enable_uring` switch (`/sys/module/fuse/parameters/enable_uring`): `None` when the
/// kernel has no such parameter (before 6.14, or built without FUSE-over-io_uring).
pub fn enable_uring_switch() -> Option<bool> {
    // The same rule as `fuse_uring::uring_support` (which testkit cannot depend on: it is a
    // dev-dependency of fuse-uring): the kernel prints a bool parameter as Y or N, and
    // accepts 1 when it is written.
    fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .ok()
        .map(|v| matches!(v.trim(), "Y" | "1"))
}

/// Whether FUSE-over-io_uring is switched on ([`enable_uring_switch`]).
pub fn uring_enabled() -> bool {
    enable_uring_switch() == Some(true)
}

/// Opens `/dev/fuse` read-write, close-on-exec (`fuse_dev::Device::open`).
pub fn open_dev() -> io::Result<OwnedFd> {
    Ok(fuse_dev::Device::open()?.into_fd())
}

/// A `fuse_dev::Device` for the connection of `dev` (a duplicate of the fd: the same open
/// file, so the same connection), for the fuse-dev calls that take one.
fn device_of(dev: BorrowedFd<'_>) -> io::Result<fuse_dev::Device> {
    Ok(fuse_dev::Device::from_fd(rustix::io::fcntl_dupfd_cloexec(
        dev, 0,
    )?))
}

static UNIQUE_DIR: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh empty directory under the system temporary directory.
pub fn temp_dir(tag: &str) -> io::Result<PathBuf> {
    let n = UNIQUE_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fuse-testkit-{tag}-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A FUSE mount made with `fuse_dev::Mount` (mount(2)) on a fresh temporary directory.
///
/// Dropping it unmounts it (only if our mount is still there: fuse-dev checks by device and
/// mount id) and removes the directory. It never panics in drop.
#[derive(Debug)]
pub struct Mount {
    mount: Option<fuse_dev::Mount>,
    path: PathBuf,
    connection: Option<u32>,
}

impl Mount {
    /// Mounts the FUSE connection of `dev` (a fresh `/dev/fuse` fd) on a new temporary
    /// directory: file system type `fuse.testkit`, `allow_other`, `nosuid`, `nodev`, owned
    /// by the caller. The kernel sends INIT on `dev` right away; answer it with [`handshake`].
    pub fn new(dev: BorrowedFd<'_>) -> io::Result<Mount> {
        let path = temp_dir("mnt")?;
        let options = fuse_dev::MountOptions::new()
            .subtype("testkit")
            .allow_other(true)
            .nosuid(true)
            .nodev(true);
        let mount =
            device_of(dev).and_then(|device| Ok(fuse_dev::Mount::new(&device, &path, &options)?));
        match mount {
            Ok(mount) => Ok(Mount {
                connection: mount.identity().connection_number(),
                path: mount.mount_point().to_owned(),
                mount: Some(mount),
            }),
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection number (`/sys/fs/fuse/connections/<N>`).
    pub fn connection(&self) -> Option<u32> {
        self.connection
    }

    /// Aborts the connection through fusectl: every pending and future request fails with
    /// `ENOTCONN`, and the server's reads fail with `ENODEV`.
    pub fn abort(&self) -> io::Result<()> {
        let n = self
            .connection
            .ok_or_else(|| io::Error::other("connection number unknown"))?;
        abort_connection(n)
    }

    /// Unmounts now (idempotent); fails if another mount sits on ours.
    pub fn unmount(&mut self) -> io::Result<()> {
        if let Some(mut mount) = self.mount.take() {
            if let fuse_dev::UnmountOutcome::NotOurs(p) = mount.unmount()? {
                return Err(io::Error::other(format!(
                    "another mount sits on {}: {p:?}",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("testkit: unmount of {} failed: {e}", self.path.display());
        }
        let _ = fs::remove_dir(&self.path);
    }
}

/// Whether `path` is a mount point right now, decided by device and mount id
/// (`fuse_dev::is_mount_point`); false when it cannot be checked.
pub fn is_mount_point(path: &Path) -> bool {
    fuse_dev::is_mount_point(path).unwrap_or(false)
}

/// The FUSE connection number of the mount at `path` (its device minor), without sending a
/// request to the file system (`AT_STATX_DONT_SYNC`); `None` if `path` is not the root of a
/// FUSE mount.
pub fn connection_of(path: &Path) -> Option<u32> {
    if !is_mount_point(path) {
        return None;
    }
    let st = rustix::fs::statx(
        rustix::fs::CWD,
        path,
        rustix::fs::AtFlags::STATX_DONT_SYNC,
        rustix::fs::StatxFlags::BASIC_STATS,
    )
    .ok()?;
    let n = st.stx_dev_minor;
    (st.stx_dev_major == 0 && Path::new(&format!("/sys/fs/fuse/connections/{n}")).exists())
        .then_some(n)
}

/// Aborts FUSE connection `n` through fusectl (`fuse_dev::Connection::abort`, which mounts
/// fusectl first if needed).
pub fn abort_connection(n: u32) -> io::Result<()> {
    fuse_dev::Connection::new(n).abort()
}

/// Reads an ABI struct from the start of `bytes` (unaligned), or `None` if too short.
pub fn read_struct<T: FromBytes>(bytes: &[u8]) -> Option<T> {
    T::read_from_prefix(bytes).ok().map(|(value, _)| value)
}

/// The bytes of an ABI struct.
pub fn bytes_of<T: IntoBytes + Immutable>(value: &T) -> &[u8] {
    value.as_bytes()
}

/// One request read from `/dev/fuse`.
#[derive(Debug, Clone)]
pub struct Request {
    /// The request header.
    pub header: sys::fuse_in_header,
    /// Everything after the header (`header.len - 40` bytes).
    pub body: Vec<u8>,
}

impl Request {
    /// The opcode.
    pub fn opcode(&self) -> u32 {
        self.header.opcode
    }

    /// The fixed argument struct at the start of the body.
    pub fn arg<T: FromBytes>(&self) -> Option<T> {
        read_struct(&self.body)
    }
}

/// Reads one request with a `fuse_dev::Channel` on `dev`. `Ok(None)` means the connection
/// is gone (unmounted or aborted). `buf` must hold the largest request (the negotiated
/// `read_buffer_size`; 8 KiB before INIT).
pub fn read_request(dev: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<Request>> {
    let channel = fuse_dev::Channel::new(device_of(dev)?);
    let Some(bytes) = channel.receive(buf)? else {
        return Ok(None);
    };
    let header: sys::fuse_in_header = read_struct(bytes)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "short FUSE request"))?;
    Ok(Some(Request {
        header,
        body: bytes[size_of::<sys::fuse_in_header>()..].to_vec(),
    }))
}

/// Writes a reply with a `fuse_dev::Channel` on `dev`: `fuse_out_header` then `parts`.
/// `error` is 0 or a positive errno.
pub fn reply(dev: BorrowedFd<'_>, unique: u64, error: i32, parts: &[&[u8]]) -> io::Result<()> {
    let channel = fuse_dev::Channel::new(device_of(dev)?);
    if error == 0 {
        channel.reply(unique, parts)?;
    } else {
        channel.reply_error(unique, Errno::from_raw_os_error(error))?;
    }
    Ok(())
}

/// What the server asked for in INIT, and what was agreed.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    /// The kernel's INIT request, decoded (what `fuse_dev::Channel::read_init` hands back;
    /// `fuse_uring::check_init` takes it).
    pub kernel: fuse_wire::KernelInit,
    /// The kernel's INIT request (as far as the decoder keeps it: major, minor,
    /// max_readahead, flags, flags2).
    pub init_in: sys::fuse_init_in,
    /// Our reply.
    pub init_out: sys::fuse_init_out,
    /// The 64-bit flags the kernel offered.
    pub offered: u64,
    /// The 64-bit flags we accepted (offered & wanted).
    pub accepted: u64,
}

impl From<&fuse_wire::Negotiated> for Negotiated {
    fn from(n: &fuse_wire::Negotiated) -> Self {
        let k = n.kernel();
        Negotiated {
            kernel: *k,
            init_in: k.to_init_in(),
            init_out: *n.init_out(),
            offered: n.offered(),
            accepted: n.accepted(),
        }
    }
}

/// INIT parameters of the test servers: a few fields, turned into a `fuse_wire::InitConfig`.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    /// INIT flags wanted (`fuse_wire::init_flags`, kept only where offered). `FUSE_INIT_EXT`
    /// is added as needed.
    pub want: u64,
    /// `max_write`.
    pub max_write: u32,
    /// `max_pages` (with `FUSE_MAX_PAGES`).
    pub max_pages: u16,
    /// `max_stack_depth` (with `FUSE_PASSTHROUGH`).
    pub max_stack_depth: u32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            want: init_flags::ASYNC_READ | init_flags::MAX_PAGES | init_flags::BIG_WRITES,
            max_write: 128 * 1024,
            max_pages: 32,
            max_stack_depth: 0,
        }
    }
}

impl InitOptions {
    /// The default options plus `FUSE_OVER_IO_URING` (the io_uring tests' INIT).
    pub fn uring() -> InitOptions {
        let default = InitOptions::default();
        InitOptions {
            want: default.want | init_flags::OVER_IO_URING,
            ..default
        }
    }

    /// The `fuse_wire::InitConfig` these options stand for.
    pub fn config(&self) -> fuse_wire::InitConfig {
        let mut config = fuse_wire::InitConfig::default()
            .without(u64::MAX)
            .with(self.want);
        config.max_write = self.max_write;
        config.max_pages = self.max_pages;
        config.max_stack_depth = self.max_stack_depth;
        config
    }
}

/// Builds our INIT reply for the kernel's request with `fuse_wire::negotiate`.
pub fn init_reply(init_in: &sys::fuse_init_in, opts: &InitOptions) -> io::Result<Negotiated> {
    let kernel = fuse_wire::KernelInit::parse(init_in.as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let negotiated = fuse_wire::negotiate(&kernel, &opts.config())
        .map_err(|e| io::Error::new(io::ErrorKind::Unsupported, e))?;
    Ok(Negotiated::from(&negotiated))
}

/// Reads the kernel's INIT request from `dev` and answers it per `opts`
/// (`fuse_dev::Channel::handshake`).
pub fn handshake(dev: BorrowedFd<'_>, opts: &InitOptions) -> io::Result<Negotiated> {
    let mut channel = fuse_dev::Channel::new(device_of(dev)?);
    let negotiated = channel
        .handshake(&opts.config())
        .map_err(io::Error::other)?;
    Ok(Negotiated::from(&negotiated))
}

/// What a handler answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Success with this payload (may be empty).
    Data(Vec<u8>),
    /// Failure with this positive errno.
    Error(i32),
    /// No reply (FORGET, BATCH_FORGET).
    None,
}

/// Answers requests; used by [`Session`]'s server thread and by io_uring servers alike.
pub trait Handler: Send + 'static {
    /// Answers one request.
    fn handle(&mut self, request: &Request) -> Reply;
}

/// Counts of what a [`Session`]'s server thread saw.
#[derive(Debug)]
pub struct Counters {
    /// Requests read from `/dev/fuse`, by opcode (index = opcode, up to 63; others in 0).
    pub by_opcode: [AtomicU64; 64],
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            by_opcode: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Counters {
    /// Requests of `opcode` seen so far.
    pub fn count(&self, opcode: u32) -> u64 {
        self.by_opcode
            .get(opcode as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn record(&self, opcode: u32) {
        let i = if (opcode as usize) < self.by_opcode.len() {
            opcode as usize
        } else {
            0
        };
        self.by_opcode[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Serves requests from `dev` with `handler` until the connection goes away (one
/// `fuse_dev::Channel`, one request buffer for the whole run).
pub fn serve(
    dev: BorrowedFd<'_>,
    handler: &mut dyn Handler,
    counters: &Counters,
) -> io::Result<()> {
    let channel = fuse_dev::Channel::new(device_of(dev)?);
    let mut buf = vec![0u8; (1 << 20) + 4096];
    while let Some(bytes) = channel.receive(&mut buf)? {
        let Some(header) = read_struct::<sys::fuse_in_header>(bytes) else {
            continue;
        };
        let request = Request {
            header,
            body: bytes[size_of::<sys::fuse_in_header>()..].to_vec(),
        };
        counters.record(request.opcode());
        match handler.handle(&request) {
            Reply::Data(data) => channel.reply(header.unique, &[&data])?,
            Reply::Error(errno) => {
                channel.reply_error(header.unique, Errno::from_raw_os_error(errno))?
            }
            Reply::None => {}
        }
    }
    Ok(())
}

/// A mounted file system served by a background thread on `/dev/fuse`.
///
/// Drop order is what keeps the machine clean: the mount is detached first, then the server
/// thread is given a few seconds to see `ENODEV`; if it does not, the connection is aborted
/// through fusectl, and the thread is joined. A server thread that panicked is reported, not
/// re-raised, in drop; [`Session::finish`] returns its result.
#[derive(Debug)]
pub struct Session {
    mount: Option<Mount>,
    server: Option<JoinHandle<io::Result<()>>>,
    /// The `/dev/fuse` fd of the session.
    pub dev: Arc<OwnedFd>,
    /// What INIT agreed.
    pub negotiated: Negotiated,
    /// What the server thread saw.
    pub counters: Arc<Counters>,
}

impl Session {
    /// Opens `/dev/fuse`, mounts it, answers INIT with `opts`, and starts a server thread
    /// running `handler`.
    pub fn start(opts: &InitOptions, handler: impl Handler) -> io::Result<Session> {
        let dev = Arc::new(open_dev()?);
        let mount = Mount::new(dev.as_fd())?;
        let negotiated = handshake(dev.as_fd(), opts)?;
        let counters = Arc::new(Counters::default());
        let server = {
            let dev = dev.clone();
            let counters = counters.clone();
            let mut handler = handler;
            std::thread::Builder::new()
                .name("testkit-server".into())
                .spawn(move || serve(dev.as_fd(), &mut handler, &counters))?
        };
        Ok(Session {
            mount: Some(mount),
            server: Some(server),
            dev,
            negotiated,
            counters,
        })
    }

    /// Mounts `dev` and answers INIT, without a server thread: for tests that serve requests
    /// themselves (io_uring, CLONE). Tear down with [`Session::finish`] or drop.
    pub fn mount_only(dev: Arc<OwnedFd>, opts: &InitOptions) -> io::Result<Session> {
        let mount = Mount::new(dev.as_fd())?;
        let negotiated = handshake(dev.as_fd(), opts)?;
        Ok(Session {
            mount: Some(mount),
            server: None,
            dev,
            negotiated,
            counters: Arc::new(Counters::default()),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.mount
            .as_ref()
            .map_or(Path::new("/nonexistent"), Mount::path)
    }

    /// The mount, while mounted.
    pub fn mount(&self) -> Option<&Mount> {
        self.mount.as_ref()
    }

    /// Unmounts, stops the server thread, and returns the server's result.
    pub fn finish(mut self) -> io::Result<()> {
        self.teardown()
    }

    fn teardown(&mut self) -> io::Result<()> {
        let connection = self.mount.as_ref().and_then(Mount::connection);
        drop(self.mount.take());
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        match join_or_abort(server, Duration::from_secs(5), connection) {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("server thread panicked")),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Err(e) = self.teardown() {
            eprintln!("testkit: session teardown: {e}");
        }
    }
}

/// Joins `handle`, giving the thread `timeout` to end on its own; if it has not by then, FUSE
/// connection `connection` is aborted through fusectl (a server blocked on it then returns)
/// before joining. `Err` if the thread panicked.
pub fn join_or_abort<T>(
    handle: JoinHandle<T>,
    timeout: Duration,
    connection: Option<u32>,
) -> std::thread::Result<T> {
    let deadline = Instant::now() + timeout;
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !handle.is_finished() {
        if let Some(n) = connection {
            let _ = abort_connection(n);
        }
    }
    handle.join()
}

/// An unmount guard for a mount made by someone else (for example a child process): detaches
/// `path` on drop if it is still a mount point.
#[derive(Debug)]
pub struct UnmountOnDrop(pub PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::DETACH);
    }
}

/// Returns the errno of an `io::Error` (0 if it has none).
pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

#[doc(hidden)]
pub use libc;
