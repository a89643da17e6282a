//! The file system: a read-only mirror of a source directory.
//!
//! Transport-independent: [`Fs::dispatch`] takes one request decoded by `fuse-wire` (from
//! either transport's layout) and writes the reply payload straight into the caller's buffer
//! (the io_uring payload slot or the `/dev/fuse` write buffer) with `fuse-wire`'s encoders.
//!
//! What the server guarantees, and how:
//!
//! - **It never writes to the source, not even an atime.** [`open_source`] opens the source as
//!   a private, detached copy of its mount tree (`open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)`)
//!   made read-only and `noatime` (`mount_setattr`), before the FUSE mount exists: every fd
//!   of the server (and every passthrough backing file, whose path is the server's) lives on
//!   that copy, so neither reads, passthrough reads, nor directory listings can mark an
//!   atime, and no write can reach the source whatever the code does.
//! - **It never enters its own mount.** The copy is taken before mounting and is private, so
//!   a mount of the mirror inside the source (or the source inside the mount) is simply not
//!   in the server's view: no request of the server can be sent to itself.
//! - **Permissions as the source enforces them.** The mount uses `default_permissions` and
//!   negotiates `FUSE_POSIX_ACL`: the kernel checks mode bits and the POSIX ACLs it reads
//!   through GETXATTR `system.posix_acl_*`. LISTXATTR hides `trusted.*` names from callers
//!   without `CAP_SYS_ADMIN`, as ext4 does.
//! - **Bounded fds.** Every inode the kernel remembers holds an `O_PATH` fd only while fewer
//!   than `RLIMIT_NOFILE` minus a reserve (a quarter of it, at most 4,096) are in use by
//!   inodes; beyond that, the least recently used
//!   ones are closed and remembered as file handles (`name_to_handle_at`), reopened with
//!   `open_by_handle_at` when used again. When an `open` still fails with `EMFILE`/`ENFILE`,
//!   inode fds are shed and the call is tried once more; if it fails again only that request
//!   gets the error.
//! - **Bounded memory.** Directories are read lazily, per READDIR, at the offset the kernel
//!   asks for (the source's own `d_off` cookies): a directory handle holds one fd, not a copy.
//! - **No waits on other users.** Files are opened with `O_NONBLOCK`: a lease held by another
//!   user makes the open fail with `EAGAIN` (the lease holder is notified) instead of
//!   blocking a worker or a whole io_uring queue for the lease-break time.
//! - **Unique inode numbers.** `st_ino` is the source's for the source's own file system;
//!   inodes of other file systems mounted under the source (and source numbers >= 2^62) get
//!   numbers from 2^62 upwards, one per `(st_dev, st_ino)`, kept for the server's lifetime.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuse_wire::{BufferTooSmall, OpenOut, Operation, Request, reply, sys};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::stats::Stats;

mod budget;
mod dir;
mod handle;
mod lookup;
mod source;
mod tables;
mod xattr;

pub use source::{FAULT_NO_PRIVATE_COPY, SourceView, open_source};

use budget::{FdClock, retry_fds};
use tables::{DirHandle, Inode, Tables};

/// What the dispatcher did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Reply with the first `n` bytes of the output buffer.
    Reply(usize),
    /// Reply with this error.
    Error(Errno),
    /// Send no reply (FORGET, BATCH_FORGET, INTERRUPT).
    NoReply,
}

/// A reply payload written by a `fuse_wire::reply` encoder; a buffer too small for it
/// (never with buffers of the negotiated size) fails the request with `ERANGE`.
fn sent(written: Result<usize, BufferTooSmall>) -> Result<Outcome, Errno> {
    written.map(Outcome::Reply).map_err(|e| e.errno())
}

/// Runtime options of the file system.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Attribute and entry cache timeout.
    pub attr_timeout: Duration,
    /// Whether OPEN answers with `FOPEN_PASSTHROUGH` (negotiated and permitted).
    pub passthrough: bool,
    /// Whether OPEN of a served (not passthrough) file asks for io_uring zero-copy
    /// (`FOPEN_IO_URING_ZERO_COPY`): set only when the queues are zero-copy queues.
    pub zero_copy: bool,
}

/// The first inode number given to inodes outside the source's own file system.
pub const FOREIGN_INO_BASE: u64 = 1 << 62;

/// The mirror file system.
pub struct Fs {
    tables: Mutex<Tables>,
    opts: Options,
    dev: Option<Arc<OwnedFd>>,
    /// `st_dev` of the source root.
    root_dev: u64,
    /// Inode numbers for other file systems under the source.
    foreign: Mutex<HashMap<(u64, u64), u64>>,
    clock: Mutex<FdClock>,
    /// Inode fds open now (root included).
    open_count: Arc<AtomicUsize>,
    /// How many inode fds may stay open (`RLIMIT_NOFILE` minus a reserve, see `with_root`).
    fd_budget: usize,
    /// An fd on each file system seen, for `open_by_handle_at`.
    mounts: Mutex<HashMap<u64, Arc<OwnedFd>>>,
    /// Fault injection for the tests: GETXATTR of [`FAULT_XATTR`] fails with this errno.
    fault_errno: Option<i32>,
    /// `st_dev` of our own mount, when the server sees the source itself (no private copy):
    /// LOOKUP then refuses to enter it (see [`Fs::guard_own_mount`]).
    own_dev: Option<u64>,
    /// `/proc/self/fd`, opened once: OPEN and ACCESS reach an inode through its `O_PATH` fd's
    /// entry there without building the path per request.
    proc_fds: OwnedFd,
    /// Request and data-path counters.
    pub stats: Stats,
}

/// The xattr name whose GETXATTR fails with [`Fs::with_fault_errno`]'s errno.
pub const FAULT_XATTR: &CStr = c"user.passthroughfs.fault";

impl std::fmt::Debug for Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fs")
            .field("opts", &self.opts)
            .field("fd_budget", &self.fd_budget)
            .finish_non_exhaustive()
    }
}

fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

/// The name of `fd` in `/proc/self/fd`, written into `buf`: the per-request form of
/// [`proc_path`], without allocating, for use with [`Fs`]'s fd on that directory.
fn fd_name<'b>(fd: BorrowedFd<'_>, buf: &'b mut [u8; 10]) -> &'b str {
    decimal(fd.as_raw_fd().unsigned_abs(), buf)
}

/// `n` in decimal, written at the end of `buf` (a u32 has at most 10 digits).
fn decimal(mut n: u32, buf: &mut [u8; 10]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buf[at..]).unwrap_or("")
}

fn file_type_bits(st: &rustix::fs::Stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

impl Fs {
    /// Opens `source` itself as the root (no private copy; see [`open_source`] and
    /// [`Fs::with_root`]). `dev` is the `/dev/fuse` fd, needed for passthrough.
    pub fn new(
        source: &std::path::Path,
        opts: Options,
        dev: Option<Arc<OwnedFd>>,
    ) -> Result<Fs, Errno> {
        let fd = rustix::fs::open(
            source,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Fs::with_root(fd, opts, dev)
    }

    /// The file system over `root` (an fd of the source directory, from [`open_source`]).
    /// The inode fd budget is the soft `RLIMIT_NOFILE` at this call minus a reserve of a
    /// quarter of it, at most 4,096 (for the files clients open and the server's own fds; an
    /// open that hits the limit sheds inode fds and tries again).
    pub fn with_root(root: OwnedFd, opts: Options, dev: Option<Arc<OwnedFd>>) -> Result<Fs, Errno> {
        let st = rustix::fs::fstat(&root)?;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20);
        let fd_budget = usize::try_from(limit - (limit / 4).min(4096))
            .unwrap_or(usize::MAX)
            .max(32);
        let open_count = Arc::new(AtomicUsize::new(0));
        let mut mounts = HashMap::new();
        // For open_by_handle_at on the source's own file system (it refuses O_PATH fds).
        if let Ok(dir) = rustix::fs::openat(
            &root,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            mounts.insert(st.st_dev, Arc::new(dir));
        }
        let root = Arc::new(Inode::new(
            (st.st_dev, st.st_ino),
            libc::S_IFDIR,
            root,
            &open_count,
            2,
        ));
        let proc_fds = rustix::fs::open(
            "/proc/self/fd",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let mut tables = Tables {
            next_id: fuse_wire::ROOT_ID + 1,
            ..Tables::default()
        };
        tables.by_key.insert(root.key, fuse_wire::ROOT_ID);
        tables.inodes.insert(fuse_wire::ROOT_ID, root);
        Ok(Fs {
            tables: Mutex::new(tables),
            opts,
            dev,
            root_dev: st.st_dev,
            foreign: Mutex::new(HashMap::new()),
            clock: Mutex::new(FdClock::default()),
            open_count,
            fd_budget,
            mounts: Mutex::new(mounts),
            fault_errno: None,
            own_dev: None,
            proc_fds,
            stats: Stats::default(),
        })
    }

    /// Fault injection for the tests: GETXATTR of [`FAULT_XATTR`] fails with `errno` (any
    /// value, also outside the kernel's errno range).
    #[must_use]
    pub fn with_fault_errno(mut self, errno: Option<i32>) -> Fs {
        self.fault_errno = errno;
        self
    }

    /// For a source opened as [`SourceView::Shared`] (no private copy): `dev` is `st_dev` of
    /// our own mount, and LOOKUP answers `EXDEV` for a name that leads into it (the mirror
    /// bound into its own source), found with `statx(AT_STATX_DONT_SYNC)`, which sends no
    /// request to the mount. Costs one `statx` per LOOKUP; unneeded with a private copy.
    #[must_use]
    pub fn guard_own_mount(mut self, dev: u64) -> Fs {
        self.own_dev = Some(dev);
        self
    }

    /// How many inode fds may stay open before the least recently used are closed.
    pub fn fd_budget(&self) -> usize {
        self.fd_budget
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inode(&self, id: u64) -> Result<Arc<Inode>, Errno> {
        self.tables().inodes.get(&id).cloned().ok_or(Errno::NOENT)
    }

    /// Answers one request, writing the reply payload into `out`.
    pub fn dispatch(&self, req: &Request<'_>, out: &mut [u8]) -> Outcome {
        match self.dispatch_inner(req, out) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Error(e),
        }
    }

    fn dispatch_inner(&self, req: &Request<'_>, out: &mut [u8]) -> Result<Outcome, Errno> {
        let id = req.nodeid();
        match *req.operation() {
            Operation::Lookup { name } => {
                sent(reply::entry(out, &self.do_lookup(id, name.to_bytes())?))
            }
            Operation::Forget(arg) => {
                self.forget(id, arg.nlookup);
                Ok(Outcome::NoReply)
            }
            Operation::BatchForget(forgets) => {
                for one in forgets {
                    self.forget(one.nodeid, one.nlookup);
                }
                Ok(Outcome::NoReply)
            }
            Operation::Getattr(_) => {
                let inode = self.inode(id)?;
                let fd = self.path_fd(id, &inode)?;
                let st =
                    rustix::fs::statat(&*fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)?;
                let attr = reply::attr_out(self.attr_of(&st), self.opts.attr_timeout);
                sent(reply::attr(out, &attr))
            }
            Operation::Readlink => {
                let inode = self.inode(id)?;
                let fd = self.path_fd(id, &inode)?;
                let target = rustix::fs::readlinkat(&*fd, c"", Vec::new())?;
                sent(reply::data(out, target.as_bytes()))
            }
            Operation::Access(arg) => {
                if arg.mask & libc::W_OK as u32 != 0 {
                    return Err(Errno::ROFS);
                }
                let inode = self.inode(id)?;
                let fd = self.path_fd(id, &inode)?;
                let access = rustix::fs::Access::from_bits_truncate(arg.mask);
                let mut name = [0; 10];
                rustix::fs::accessat(
                    &self.proc_fds,
                    fd_name(fd.as_fd(), &mut name),
                    access,
                    AtFlags::empty(),
                )?;
                Ok(Outcome::Reply(0))
            }
            Operation::Open(arg) => self.open(id, &arg, out),
            Operation::Read(arg) => {
                let file = self.tables().files.get(arg.fh).ok_or(Errno::BADF)?;
                let len = (arg.size as usize).min(out.len());
                let n = pread_full(file.as_fd(), &mut out[..len], arg.offset)?;
                self.stats
                    .served_read_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(Outcome::Reply(n))
            }
            Operation::Release(arg) => {
                self.tables().files.remove(arg.fh);
                Ok(Outcome::Reply(0))
            }
            Operation::Flush(_) => Ok(Outcome::Reply(0)),
            Operation::Opendir(_) => {
                let inode = self.inode(id)?;
                let fd = self.open_dir(id, &inode)?;
                let dir = DirHandle {
                    fd: Mutex::new(fd),
                    dev: inode.key.0,
                };
                let fh = self.tables().dirs.insert(Arc::new(dir));
                let open = OpenOut::new(fh).flags(sys::FOPEN_CACHE_DIR | sys::FOPEN_KEEP_CACHE);
                sent(reply::open(out, &open))
            }
            Operation::Readdir(arg) | Operation::Readdirplus(arg) => {
                let plus = matches!(req.operation(), Operation::Readdirplus(_));
                let dir = self.tables().dirs.get(arg.fh).ok_or(Errno::BADF)?;
                let limit = (arg.size as usize).min(out.len());
                let out = &mut out[..limit];
                let len = if plus {
                    self.readdirplus(id, &dir, arg.offset, out)?
                } else {
                    self.readdir(&dir, arg.offset, out)?
                };
                Ok(Outcome::Reply(len))
            }
            Operation::Releasedir(arg) => {
                self.tables().dirs.remove(arg.fh);
                Ok(Outcome::Reply(0))
            }
            Operation::Fsync(_) | Operation::Fsyncdir(_) => Ok(Outcome::Reply(0)),
            Operation::Statfs => {
                let root = self.inode(fuse_wire::ROOT_ID)?;
                let fd = self.path_fd(fuse_wire::ROOT_ID, &root)?;
                let st = rustix::fs::fstatvfs(&*fd)?;
                let st = sys::fuse_kstatfs {
                    blocks: st.f_blocks,
                    bfree: st.f_bfree,
                    bavail: st.f_bavail,
                    files: st.f_files,
                    ffree: st.f_ffree,
                    bsize: st.f_bsize as u32,
                    namelen: st.f_namemax as u32,
                    frsize: st.f_frsize as u32,
                    ..Default::default()
                };
                sent(reply::statfs(out, &st))
            }
            Operation::Getxattr { arg, name } => {
                if let Some(errno) = self.fault_errno {
                    if name == FAULT_XATTR {
                        return Err(Errno::from_raw_os_error(errno));
                    }
                }
                self.getxattr(id, arg.size, name, out)
            }
            Operation::Listxattr(arg) => self.listxattr(id, arg.size, req.pid(), out),
            // Every request is answered promptly from local files; nothing to cancel.
            Operation::Interrupt(_) => Ok(Outcome::NoReply),
            Operation::Destroy => Ok(Outcome::Reply(0)),
            Operation::Setattr(_)
            | Operation::Symlink { .. }
            | Operation::Mknod { .. }
            | Operation::Mkdir { .. }
            | Operation::Unlink { .. }
            | Operation::Rmdir { .. }
            | Operation::Rename { .. }
            | Operation::Rename2 { .. }
            | Operation::Link { .. }
            | Operation::Write { .. }
            | Operation::Setxattr { .. }
            | Operation::Removexattr { .. }
            | Operation::Create { .. }
            | Operation::Fallocate(_)
            | Operation::CopyFileRange(_)
            | Operation::CopyFileRange64(_)
            | Operation::Tmpfile { .. }
            | Operation::Setlk(_)
            | Operation::Setlkw(_) => Err(Errno::ROFS),
            _ => Err(Errno::NOSYS),
        }
    }

    /// The source file behind open file handle `fh`, for zero-copy reads.
    pub fn file(&self, fh: u64) -> Option<Arc<OwnedFd>> {
        self.tables().files.get(fh)
    }

    fn open(&self, id: u64, arg: &sys::fuse_open_in, out: &mut [u8]) -> Result<Outcome, Errno> {
        let acc = arg.flags & libc::O_ACCMODE as u32;
        if acc != libc::O_RDONLY as u32 || arg.flags & libc::O_TRUNC as u32 != 0 {
            return Err(Errno::ROFS);
        }
        let inode = self.inode(id)?;
        let fd = self.path_fd(id, &inode)?;
        let mut name = [0; 10];
        let name = fd_name(fd.as_fd(), &mut name);
        // O_NONBLOCK: a lease held by someone else makes this fail with EAGAIN at once
        // (and starts the lease break) instead of waiting up to lease-break-time.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let file = retry_fds(
            || self.shed(),
            || {
                let proc = &self.proc_fds;
                rustix::fs::openat(proc, name, flags | OFlags::NOATIME, Mode::empty()).or_else(
                    |e| match e {
                        Errno::PERM => rustix::fs::openat(proc, name, flags, Mode::empty()),
                        e => Err(e),
                    },
                )
            },
        )?;
        let mut backing = None;
        if self.opts.passthrough {
            if let Some(dev) = &self.dev {
                match inode.backing.get_or_open(dev, file.as_fd()) {
                    Ok(id) => {
                        backing = Some(id);
                        self.stats.passthrough_opens.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        self.stats
                            .passthrough_fallbacks
                            .fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let fh = self.tables().files.insert(Arc::new(file));
        // Read-only opens have nothing to flush: FOPEN_NOFLUSH spares the FLUSH request the
        // kernel would send at every close (one of the 9 requests of open+read+close).
        let open = OpenOut::new(fh).flags(sys::FOPEN_NOFLUSH);
        let open = match backing {
            Some(id) => open.passthrough(id),
            None if self.opts.zero_copy => open.flags(sys::FOPEN_IO_URING_ZERO_COPY),
            None => open,
        };
        sent(reply::open(out, &open))
    }
}

/// `pread` until `buf` is full or end of file.
fn pread_full(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod proc_name_tests {
    use super::*;

    #[test]
    fn fd_names_are_the_decimal_numbers() {
        let mut buf = [0; 10];
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        let fd = file.as_fd();
        assert_eq!(fd_name(fd, &mut buf), fd.as_raw_fd().to_string());
        for (n, want) in [
            (0, "0"),
            (7, "7"),
            (10, "10"),
            (4_095, "4095"),
            (u32::MAX, "4294967295"),
        ] {
            let mut buf = [0; 10];
            assert_eq!(decimal(n, &mut buf), want);
        }
    }
}
