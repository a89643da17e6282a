//! Shared scaffolding for the workspace's kernel tests, examples, demo and benchmarks.
//!
//! One place for what every test against a real kernel needs, so that no test file copies it:
//! - [`skip`] / [`require_kernel`]: skip with a printed reason, or fail when
//!   `FUSE_TESTS_REQUIRE_KERNEL=1` (CI) says that skips are not allowed;
//! - [`open_dev`], [`Mount`]: open `/dev/fuse` and mount it with `mount(2)` on a fresh
//!   temporary directory, unmounted (and the connection aborted if needed) on drop;
//! - [`read_request`], [`reply`], [`handshake`]: the wire protocol on `/dev/fuse`;
//! - [`Session`]: a mount plus a server thread running a [`Handler`] such as [`MemFs`],
//!   torn down in the right order on success, failure and panic.
//!
//! Not published; not an API for users (the example server shows the user-facing way).

#![allow(missing_docs)]

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use sys::zerocopy::{FromBytes, Immutable, IntoBytes};

mod memfs;
pub use memfs::{MemFs, Node};
pub mod example;
pub mod fault;
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

/// Whether FUSE-over-io_uring is switched on (`/sys/module/fuse/parameters/enable_uring`).
pub fn uring_enabled() -> bool {
    // The same rule as `fuse_uring::uring_support` (which testkit cannot depend on: it is a
    // dev-dependency of fuse-uring): the kernel prints a bool parameter as Y or N, and
    // accepts 1 when it is written.
    fs::read_to_string("/sys/module/fuse/parameters/enable_uring")
        .is_ok_and(|v| matches!(v.trim(), "Y" | "1"))
}

/// Checks that kernel tests can run here (root and `/dev/fuse`); otherwise [`skip`]s and
/// returns false. Call at the top of every kernel test: `if !testkit::require_kernel() { return; }`
#[track_caller]
pub fn require_kernel() -> bool {
    if !Path::new("/dev/fuse").exists() {
        skip("/dev/fuse is missing (modprobe fuse)");
        return false;
    }
    if !is_root() {
        skip("not root: mount(2) of a FUSE file system needs CAP_SYS_ADMIN");
        return false;
    }
    true
}

/// Like [`require_kernel`], and also FUSE-over-io_uring switched on.
#[track_caller]
pub fn require_uring() -> bool {
    if !require_kernel() {
        return false;
    }
    if !uring_enabled() {
        skip("FUSE-over-io_uring is off: echo Y > /sys/module/fuse/parameters/enable_uring");
        return false;
    }
    true
}

/// Opens `/dev/fuse` read-write, close-on-exec.
pub fn open_dev() -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        "/dev/fuse",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

static UNIQUE_DIR: AtomicU64 = AtomicU64::new(0);

/// Creates a fresh empty directory under the system temporary directory.
pub fn temp_dir(tag: &str) -> io::Result<PathBuf> {
    let n = UNIQUE_DIR.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("fuse-testkit-{tag}-{}-{n}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A FUSE mount made with `mount(2)` on a temporary directory.
///
/// Dropping it detaches the mount (`umount2(MNT_DETACH)`) and removes the directory. It never
/// panics in drop.
#[derive(Debug)]
pub struct Mount {
    path: PathBuf,
    connection: Option<u32>,
    mounted: bool,
    remove_dir: bool,
}

impl Mount {
    /// Mounts the FUSE connection of `dev` on a new temporary directory.
    ///
    /// `extra_options` are appended to the mount data (for example `"max_read=131072"`).
    /// The kernel sends INIT on `dev` right away; answer it with [`handshake`].
    pub fn new(dev: BorrowedFd<'_>, extra_options: &str) -> io::Result<Mount> {
        let path = temp_dir("mnt")?;
        match Self::at(dev, &path, "testkit", extra_options) {
            Ok(mut mount) => {
                mount.remove_dir = true;
                Ok(mount)
            }
            Err(e) => {
                let _ = fs::remove_dir(&path);
                Err(e)
            }
        }
    }

    /// Mounts the FUSE connection of `dev` on the existing directory `path` (left in place on
    /// drop), as file system type `fuse.<subtype>` with source `subtype`.
    ///
    /// Options always given: `fd`, `rootmode=40000`, `user_id` and `group_id` of the caller,
    /// `allow_other`; `extra_options` are appended. Needs CAP_SYS_ADMIN (root).
    pub fn at(
        dev: BorrowedFd<'_>,
        path: &Path,
        subtype: &str,
        extra_options: &str,
    ) -> io::Result<Mount> {
        Self::at_with_flags(
            dev,
            path,
            subtype,
            extra_options,
            rustix::mount::MountFlags::empty(),
        )
    }

    /// [`Mount::at`] with extra `mount(2)` flags (for example `MountFlags::RDONLY`) besides the
    /// `NOSUID | NODEV` it always uses.
    pub fn at_with_flags(
        dev: BorrowedFd<'_>,
        path: &Path,
        subtype: &str,
        extra_options: &str,
        flags: rustix::mount::MountFlags,
    ) -> io::Result<Mount> {
        let mut data = format!(
            "fd={},rootmode=40000,user_id={},group_id={},allow_other",
            dev.as_raw_fd(),
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        if !extra_options.is_empty() {
            data.push(',');
            data.push_str(extra_options);
        }
        let data = CString::new(data).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        rustix::mount::mount(
            subtype,
            path,
            format!("fuse.{subtype}").as_str(),
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV | flags,
            data.as_c_str(),
        )?;
        let connection = connection_of(path);
        Ok(Mount {
            path: path.to_owned(),
            connection,
            mounted: true,
            remove_dir: false,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection number (`/sys/fs/fuse/connections/<N>`), read from mountinfo.
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

    /// Detaches the mount now (idempotent).
    pub fn unmount(&mut self) -> io::Result<()> {
        if self.mounted {
            rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH)?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("testkit: unmount of {} failed: {e}", self.path.display());
        }
        if self.remove_dir {
            let _ = fs::remove_dir(&self.path);
        }
    }
}

/// Whether `path` is a mount point right now (from `/proc/self/mountinfo`).
pub fn is_mount_point(path: &Path) -> bool {
    connection_of(path).is_some()
}

/// Finds the FUSE connection number of the mount at `path` (its device minor) in
/// `/proc/self/mountinfo`, without sending a request to the file system.
pub fn connection_of(path: &Path) -> Option<u32> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_str()?;
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let dev = fields.nth(2)?;
        let mount_point = fields.nth(1)?;
        if mount_point != want {
            return None;
        }
        dev.split_once(':')?.1.parse().ok()
    })
}

/// Aborts FUSE connection `n` through `/sys/fs/fuse/connections/<n>/abort`, mounting fusectl
/// there first if needed.
pub fn abort_connection(n: u32) -> io::Result<()> {
    let dir = Path::new("/sys/fs/fuse/connections");
    if !dir.join(n.to_string()).exists() {
        let _ = rustix::mount::mount(
            "fusectl",
            dir,
            "fusectl",
            rustix::mount::MountFlags::empty(),
            None,
        );
    }
    fs::write(dir.join(n.to_string()).join("abort"), "1")
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

/// Reads one request. `Ok(None)` means the connection is gone (`ENODEV`: unmounted or
/// aborted). Interrupted reads (`EINTR`, and `ENOENT` for a request that vanished) are retried.
pub fn read_request(dev: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Option<Request>> {
    loop {
        match rustix::io::read(dev, &mut *buf) {
            Ok(n) => {
                let header: sys::fuse_in_header = read_struct(&buf[..n]).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "short FUSE request")
                })?;
                let end = (header.len as usize).min(n);
                let body = buf
                    .get(size_of::<sys::fuse_in_header>()..end)
                    .unwrap_or(&[]);
                return Ok(Some(Request {
                    header,
                    body: body.to_vec(),
                }));
            }
            Err(Errno::NODEV) => return Ok(None),
            Err(Errno::INTR | Errno::NOENT | Errno::AGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Writes a reply: `fuse_out_header { len, error, unique }` followed by `parts`.
/// `error` is 0 or a positive errno (it is negated on the wire).
pub fn reply(dev: BorrowedFd<'_>, unique: u64, error: i32, parts: &[&[u8]]) -> io::Result<()> {
    let len = size_of::<sys::fuse_out_header>() + parts.iter().map(|p| p.len()).sum::<usize>();
    let header = sys::fuse_out_header {
        len: u32::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
        error: -error,
        unique,
    };
    let mut iov = vec![io::IoSlice::new(bytes_of(&header))];
    iov.extend(parts.iter().map(|p| io::IoSlice::new(p)));
    match rustix::io::writev(dev, &iov) {
        Ok(_) => Ok(()),
        // The request was interrupted and is gone, or the connection is gone.
        Err(Errno::NOENT | Errno::NODEV) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What the server asked for in INIT, and what was agreed.
#[derive(Debug, Clone, Copy)]
pub struct Negotiated {
    /// The kernel's INIT request.
    pub init_in: sys::fuse_init_in,
    /// Our reply.
    pub init_out: sys::fuse_init_out,
    /// The 64-bit flags the kernel offered.
    pub offered: u64,
    /// The 64-bit flags we accepted (offered & wanted).
    pub accepted: u64,
}

/// INIT parameters of the server.
#[derive(Debug, Clone, Copy)]
pub struct InitOptions {
    /// 64-bit INIT flags wanted (kept only where offered). `FUSE_INIT_EXT` is added as needed.
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
            want: u64::from(sys::FUSE_ASYNC_READ | sys::FUSE_MAX_PAGES | sys::FUSE_BIG_WRITES),
            max_write: 128 * 1024,
            max_pages: 32,
            max_stack_depth: 0,
        }
    }
}

/// Splits 64-bit INIT flags into `(flags, flags2)`.
pub fn split_flags(flags: u64) -> (u32, u32) {
    (flags as u32, (flags >> 32) as u32)
}

/// Builds our INIT reply for the kernel's request.
pub fn init_reply(init_in: &sys::fuse_init_in, opts: &InitOptions) -> Negotiated {
    let offered = u64::from(init_in.flags)
        | if init_in.flags & sys::FUSE_INIT_EXT != 0 {
            u64::from(init_in.flags2) << 32
        } else {
            0
        };
    let mut accepted = offered & opts.want;
    if accepted >> 32 != 0 {
        accepted |= u64::from(sys::FUSE_INIT_EXT);
    }
    let (flags, flags2) = split_flags(accepted);
    let init_out = sys::fuse_init_out {
        major: sys::FUSE_KERNEL_VERSION,
        minor: sys::FUSE_KERNEL_MINOR_VERSION.min(init_in.minor),
        max_readahead: init_in.max_readahead,
        flags,
        flags2,
        max_background: 16,
        congestion_threshold: 12,
        max_write: opts.max_write,
        time_gran: 1,
        max_pages: opts.max_pages,
        max_stack_depth: if accepted & sys::FUSE_PASSTHROUGH != 0 {
            opts.max_stack_depth
        } else {
            0
        },
        ..Default::default()
    };
    Negotiated {
        init_in: *init_in,
        init_out,
        offered,
        accepted,
    }
}

/// Reads the kernel's INIT request from `dev` and answers it per `opts`.
pub fn handshake(dev: BorrowedFd<'_>, opts: &InitOptions) -> io::Result<Negotiated> {
    let mut buf = vec![0u8; 1 << 20];
    let request = read_request(dev, &mut buf)?
        .ok_or_else(|| io::Error::other("connection closed before INIT"))?;
    if request.opcode() != sys::FUSE_INIT {
        return Err(io::Error::other(format!(
            "expected INIT, got opcode {}",
            request.opcode()
        )));
    }
    let init_in: sys::fuse_init_in = request
        .arg()
        .ok_or_else(|| io::Error::other("short INIT request"))?;
    let negotiated = init_reply(&init_in, opts);
    reply(
        dev,
        request.header.unique,
        0,
        &[bytes_of(&negotiated.init_out)],
    )?;
    Ok(negotiated)
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

/// Serves requests from `dev` with `handler` until the connection goes away.
pub fn serve(
    dev: BorrowedFd<'_>,
    handler: &mut dyn Handler,
    counters: &Counters,
) -> io::Result<()> {
    let mut buf = vec![0u8; (1 << 20) + 4096];
    while let Some(request) = read_request(dev, &mut buf)? {
        counters.record(request.opcode());
        match handler.handle(&request) {
            Reply::Data(data) => reply(dev, request.header.unique, 0, &[&data])?,
            Reply::Error(errno) => reply(dev, request.header.unique, errno, &[])?,
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
        let mount = Mount::new(dev.as_fd(), "")?;
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
        let mount = Mount::new(dev.as_fd(), "")?;
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
        let deadline = Instant::now() + Duration::from_secs(5);
        while !server.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !server.is_finished() {
            if let Some(n) = connection {
                let _ = abort_connection(n);
            }
        }
        match server.join() {
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
