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
//!   than half of `RLIMIT_NOFILE` are in use by inodes; beyond that, the least recently used
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

use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fuse_wire::{
    BufferTooSmall, DirentBuf, DirentPlusBuf, OpenOut, Operation, Request, reply, sys,
};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::backing::BackingSlot;
use crate::stats::Stats;

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

/// How [`open_source`] opened the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceView {
    /// A private, detached, read-only, `noatime` copy of the source's mount tree.
    Private,
    /// The source itself (the copy failed with this errno, for example `EPERM` without
    /// `CAP_SYS_ADMIN` or `ENOSYS` before Linux 5.12): atimes may change, and a mount of the
    /// mirror inside the source is visible to the server.
    Shared(Errno),
}

/// `struct mount_attr` of `mount_setattr(2)` (Linux 5.12).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the detached mount tree `tree` private, read-only, `nosuid`, `nodev` and `noatime`,
/// recursively.
#[allow(unsafe_code)] // mount_setattr(2), which neither rustix nor libc wraps
fn seal(tree: BorrowedFd<'_>) -> Result<(), Errno> {
    use rustix::mount::MountAttrFlags as A;
    let attr = MountAttr {
        attr_set: u64::from(
            (A::MOUNT_ATTR_RDONLY
                | A::MOUNT_ATTR_NOSUID
                | A::MOUNT_ATTR_NODEV
                | A::MOUNT_ATTR_NOATIME)
                .bits(),
        ),
        attr_clr: u64::from(A::MOUNT_ATTR__ATIME.bits()),
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: `tree` is a valid fd, the path is a NUL-terminated empty string, and `attr`
    // points to a properly laid out `struct mount_attr` of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    };
    if r == 0 { Ok(()) } else { Err(last_errno()) }
}

/// Fault injection for the tests: with this variable set, [`open_source`] acts as if the
/// private copy were not permitted (`EPERM`), as on kernels before 5.12.
pub const FAULT_NO_PRIVATE_COPY: &str = "PASSTHROUGHFS_FAULT_NO_PRIVATE_COPY";

/// Opens the source directory as the server will see it, before anything is mounted: a
/// private, detached, read-only, `noatime` copy of its mount tree ([`SourceView::Private`]),
/// or, when that is not permitted here, the directory itself ([`SourceView::Shared`]).
/// With `submounts` false, the copy holds the source's own mount only: file systems mounted
/// under it show as the directories they cover (`--one-file-system`: nothing mounted there,
/// a FUSE mount of another user for instance, can make the server wait).
/// Fails with the errno of `open` (`ENOENT`, `EACCES`, ...) or `ENOTDIR`.
pub fn open_source(
    path: &std::path::Path,
    submounts: bool,
) -> Result<(OwnedFd, SourceView), Errno> {
    use rustix::mount::OpenTreeFlags as T;
    let mut flags = T::OPEN_TREE_CLONE | T::OPEN_TREE_CLOEXEC;
    if submounts {
        flags |= T::AT_RECURSIVE;
    }
    let copy = if std::env::var_os(FAULT_NO_PRIVATE_COPY).is_some() {
        Err(Errno::PERM)
    } else {
        rustix::mount::open_tree(rustix::fs::CWD, path, flags)
    }
    .and_then(|tree| seal(tree.as_fd()).map(|()| tree));
    let (fd, view) = match copy {
        Ok(tree) => (tree, SourceView::Private),
        Err(e) => (
            rustix::fs::open(
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            SourceView::Shared(e),
        ),
    };
    let st = rustix::fs::fstat(&fd)?;
    if file_type_bits(&st) != libc::S_IFDIR {
        return Err(Errno::NOTDIR);
    }
    Ok((fd, view))
}

/// A file handle (`struct file_handle`: `handle_bytes`, `handle_type`, then the bytes), in
/// 32-bit words for its alignment.
#[derive(Clone)]
struct FileHandle(Box<[u32]>);

/// `MAX_HANDLE_SZ` of `<linux/exportfs.h>`.
const MAX_HANDLE_SZ: usize = 128;

#[allow(unsafe_code)] // name_to_handle_at / open_by_handle_at, which rustix does not wrap
impl FileHandle {
    /// The handle of what `fd` (any kind of fd, `O_PATH` included) refers to.
    fn of(fd: BorrowedFd<'_>) -> Result<FileHandle, Errno> {
        let mut words = [0u32; 2 + MAX_HANDLE_SZ / 4];
        words[0] = MAX_HANDLE_SZ as u32;
        let mut mount_id: libc::c_int = 0;
        // SAFETY: `words` is a writable, 4-byte aligned `struct file_handle` whose
        // `handle_bytes` says how much room follows the header; the path is an empty
        // NUL-terminated string used with AT_EMPTY_PATH on a valid fd.
        let r = unsafe {
            libc::name_to_handle_at(
                fd.as_raw_fd(),
                c"".as_ptr(),
                words.as_mut_ptr().cast(),
                &mut mount_id,
                libc::AT_EMPTY_PATH,
            )
        };
        if r != 0 {
            return Err(last_errno());
        }
        let len = 2 + (words[0] as usize).min(MAX_HANDLE_SZ).div_ceil(4);
        Ok(FileHandle(words[..len].into()))
    }

    /// Opens the handle as an `O_PATH` fd; `mount` is any fd on the same file system.
    fn open(&self, mount: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        let mut words = self.0.clone();
        // SAFETY: `words` is a complete `struct file_handle` as name_to_handle_at wrote it
        // (the kernel reads `handle_bytes` bytes after the header, all present).
        let fd = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                words.as_mut_ptr().cast(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: open_by_handle_at returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}

/// The fd of an inode: open, or closed and remembered as a file handle.
enum InodeFd {
    Open(Arc<OwnedFd>),
    Closed(FileHandle),
}

struct Inode {
    key: (u64, u64),
    /// `S_IFMT` bits of its mode.
    kind: u32,
    /// For symlinks: the parent and name it was first looked up by, for xattr calls (which
    /// an `O_PATH` fd of a symlink cannot carry).
    link_name: Option<Box<(u64, Box<[u8]>)>>,
    nlookup: AtomicU64,
    backing: BackingSlot,
    fd: Mutex<InodeFd>,
    /// Used since the fd cache last looked (second chance before closing).
    used: AtomicBool,
    /// The file system's count of open inode fds (decremented when this one closes).
    open_count: Arc<AtomicUsize>,
}

impl Inode {
    fn new(
        key: (u64, u64),
        kind: u32,
        fd: OwnedFd,
        open_count: &Arc<AtomicUsize>,
        nlookup: u64,
    ) -> Inode {
        open_count.fetch_add(1, Ordering::Relaxed);
        Inode {
            key,
            kind,
            link_name: None,
            nlookup: AtomicU64::new(nlookup),
            backing: BackingSlot::default(),
            fd: Mutex::new(InodeFd::Open(Arc::new(fd))),
            used: AtomicBool::new(true),
            open_count: open_count.clone(),
        }
    }

    fn fd_state(&self) -> MutexGuard<'_, InodeFd> {
        self.fd.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Inode {
    fn drop(&mut self) {
        let state = self.fd.get_mut().unwrap_or_else(PoisonError::into_inner);
        if matches!(state, InodeFd::Open(_)) {
            self.open_count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// An open directory: one fd, read at the offset each READDIR asks for.
struct DirHandle {
    fd: Mutex<OwnedFd>,
    /// `st_dev` of the directory (to map the entries' inode numbers).
    dev: u64,
}

#[derive(Default)]
struct Tables {
    inodes: HashMap<u64, Arc<Inode>>,
    by_key: HashMap<(u64, u64), u64>,
    next_id: u64,
    files: Slab<Arc<OwnedFd>>,
    dirs: Slab<Arc<DirHandle>>,
}

/// A vector of optional slots with a free list: handles for OPEN/OPENDIR.
struct Slab<T> {
    slots: Vec<Option<T>>,
    free: Vec<usize>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T: Clone> Slab<T> {
    fn insert(&mut self, value: T) -> u64 {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(value);
                i as u64
            }
            None => {
                self.slots.push(Some(value));
                (self.slots.len() - 1) as u64
            }
        }
    }

    fn get(&self, handle: u64) -> Option<T> {
        self.slots.get(usize::try_from(handle).ok()?)?.clone()
    }

    fn remove(&mut self, handle: u64) -> Option<T> {
        let i = usize::try_from(handle).ok()?;
        let value = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        Some(value)
    }
}

/// The first inode number given to inodes outside the source's own file system.
pub const FOREIGN_INO_BASE: u64 = 1 << 62;

/// The inode fds in opening order, for closing the least recently used (clock).
#[derive(Default)]
struct FdClock {
    queue: VecDeque<u64>,
}

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
    /// How many inode fds may stay open (half of `RLIMIT_NOFILE`).
    fd_budget: usize,
    /// An fd on each file system seen, for `open_by_handle_at`.
    mounts: Mutex<HashMap<u64, Arc<OwnedFd>>>,
    /// Fault injection for the tests: GETXATTR of [`FAULT_XATTR`] fails with this errno.
    fault_errno: Option<i32>,
    /// `st_dev` of our own mount, when the server sees the source itself (no private copy):
    /// LOOKUP then refuses to enter it (see [`Fs::guard_own_mount`]).
    own_dev: Option<u64>,
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

/// A path for xattr calls, and the fd it goes through (kept open while the path is used).
type XattrPath = (std::path::PathBuf, Option<Arc<OwnedFd>>);

fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn file_type_bits(st: &rustix::fs::Stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

/// Runs `f`, which opens an fd; on `EMFILE`/`ENFILE` sheds inode fds with `shed` and tries
/// once more.
fn retry_fds<T>(shed: impl FnOnce(), mut f: impl FnMut() -> Result<T, Errno>) -> Result<T, Errno> {
    match f() {
        Err(Errno::MFILE | Errno::NFILE) => {
            shed();
            f()
        }
        r => r,
    }
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
    /// The inode fd budget is half of the soft `RLIMIT_NOFILE` at this call.
    pub fn with_root(root: OwnedFd, opts: Options, dev: Option<Arc<OwnedFd>>) -> Result<Fs, Errno> {
        let st = rustix::fs::fstat(&root)?;
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(1 << 20);
        let fd_budget = usize::try_from(limit / 2).unwrap_or(usize::MAX).max(32);
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

    /// The `O_PATH` fd of inode `id`, reopened from its file handle if it was closed.
    fn path_fd(&self, id: u64, inode: &Inode) -> Result<Arc<OwnedFd>, Errno> {
        let mut state = inode.fd_state();
        let handle = match &*state {
            InodeFd::Open(fd) => {
                inode.used.store(true, Ordering::Relaxed);
                return Ok(fd.clone());
            }
            InodeFd::Closed(handle) => handle,
        };
        let mount = self
            .mounts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&inode.key.0)
            .cloned()
            .ok_or(Errno::STALE)?;
        let fd = Arc::new(retry_fds(|| self.shed(), || handle.open(mount.as_fd()))?);
        *state = InodeFd::Open(fd.clone());
        inode.open_count.fetch_add(1, Ordering::Relaxed);
        self.stats
            .inode_fds_reopened
            .fetch_add(1, Ordering::Relaxed);
        inode.used.store(true, Ordering::Relaxed);
        drop(state);
        self.opened(id);
        Ok(fd)
    }

    /// Notes that inode `id` holds an fd again; closes others beyond the budget.
    fn opened(&self, id: u64) {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        clock.queue.push_back(id);
        if self.open_count.load(Ordering::Relaxed) > self.fd_budget {
            // Close about an eighth of the budget at once: amortised, a few entries per open.
            let target = self.fd_budget - self.fd_budget / 8;
            self.close_lru(&mut clock, target, false);
        }
        // Entries of forgotten inodes stay in the queue until met; compact when they dominate.
        if clock.queue.len() > 2 * self.open_count.load(Ordering::Relaxed) + 1024 {
            let tables = self.tables();
            clock.queue.retain(|id| tables.inodes.contains_key(id));
        }
    }

    /// Closes inode fds (oldest first, skipping once those used since the last pass unless
    /// `force`) until at most `target` are open or every entry was tried twice.
    fn close_lru(&self, clock: &mut FdClock, target: usize, force: bool) {
        let mut tries = 2 * clock.queue.len();
        while self.open_count.load(Ordering::Relaxed) > target && tries > 0 {
            tries -= 1;
            let Some(id) = clock.queue.pop_front() else {
                break;
            };
            let Some(inode) = self.tables().inodes.get(&id).cloned() else {
                continue;
            };
            if id == fuse_wire::ROOT_ID {
                continue;
            }
            // try_lock: the holder may be reopening it, or waiting for this clock.
            let Ok(mut state) = inode.fd.try_lock() else {
                clock.queue.push_back(id);
                continue;
            };
            let InodeFd::Open(fd) = &*state else {
                continue;
            };
            if !force && inode.used.swap(false, Ordering::Relaxed) {
                clock.queue.push_back(id);
                continue;
            }
            let Ok(handle) = FileHandle::of(fd.as_fd()) else {
                // No file handles on this file system: the fd stays.
                clock.queue.push_back(id);
                continue;
            };
            if !self.has_mount_fd(inode.key.0, fd.as_fd()) {
                // No way to reopen it yet: keep it until a directory of its file system
                // gave one.
                clock.queue.push_back(id);
                continue;
            }
            *state = InodeFd::Closed(handle);
            inode.open_count.fetch_sub(1, Ordering::Relaxed);
            self.stats.inode_fds_closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Whether an fd for `open_by_handle_at` on file system `dev` is there, opening one from
    /// `fd` (an `O_PATH` fd on it) if that is a directory. `open_by_handle_at` refuses
    /// `O_PATH` fds (`EBADF`), so it is a directory opened for reading (no lease or lock can
    /// delay that).
    fn has_mount_fd(&self, dev: u64, fd: BorrowedFd<'_>) -> bool {
        let mut mounts = self.mounts.lock().unwrap_or_else(PoisonError::into_inner);
        if mounts.contains_key(&dev) {
            return true;
        }
        let dir = rustix::fs::openat(
            fd,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
        match dir {
            Ok(dir) => {
                mounts.insert(dev, Arc::new(dir));
                true
            }
            Err(_) => false,
        }
    }

    /// Closes a quarter of the inode fds at once (an open failed with `EMFILE`/`ENFILE`).
    fn shed(&self) {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self.open_count.load(Ordering::Relaxed);
        self.close_lru(&mut clock, open - open / 4, true);
    }

    /// The inode number shown for `(dev, ino)` of the source: unique on the mount.
    fn ino_of(&self, dev: u64, ino: u64) -> u64 {
        if dev == self.root_dev && ino < FOREIGN_INO_BASE {
            return ino;
        }
        let mut foreign = self.foreign.lock().unwrap_or_else(PoisonError::into_inner);
        let next = FOREIGN_INO_BASE + foreign.len() as u64;
        *foreign.entry((dev, ino)).or_insert(next)
    }

    fn attr_of(&self, st: &rustix::fs::Stat) -> sys::fuse_attr {
        sys::fuse_attr {
            ino: self.ino_of(st.st_dev, st.st_ino),
            size: st.st_size as u64,
            blocks: st.st_blocks as u64,
            atime: st.st_atime as u64,
            mtime: st.st_mtime as u64,
            ctime: st.st_ctime as u64,
            atimensec: st.st_atime_nsec as u32,
            mtimensec: st.st_mtime_nsec as u32,
            ctimensec: st.st_ctime_nsec as u32,
            mode: st.st_mode,
            nlink: st.st_nlink as u32,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev as u32,
            blksize: st.st_blksize as u32,
            flags: 0,
        }
    }

    fn entry_out(&self, id: u64, st: &rustix::fs::Stat) -> sys::fuse_entry_out {
        let t = self.opts.attr_timeout;
        reply::entry_out(id, 0, self.attr_of(st), t, t)
    }

    /// Looks `name` up in `parent`, counting one kernel reference on success.
    fn do_lookup(&self, parent: u64, name: &[u8]) -> Result<sys::fuse_entry_out, Errno> {
        let dir = self.inode(parent)?;
        let dirfd = self.path_fd(parent, &dir)?;
        if let Some(own) = self.own_dev {
            let st = rustix::fs::statx(
                &*dirfd,
                name,
                AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
                rustix::fs::StatxFlags::TYPE,
            )?;
            if rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor) == own {
                return Err(Errno::XDEV);
            }
        }
        // A stat by name first: an inode the kernel already knows needs no new O_PATH fd.
        let st = rustix::fs::statat(&*dirfd, name, AtFlags::SYMLINK_NOFOLLOW)?;
        let known = {
            let tables = self.tables();
            tables.by_key.get(&(st.st_dev, st.st_ino)).and_then(|id| {
                let inode = tables.inodes.get(id)?;
                inode.nlookup.fetch_add(1, Ordering::Relaxed);
                Some(*id)
            })
        };
        if let Some(id) = known {
            return Ok(self.entry_out(id, &st));
        }
        let fd = retry_fds(
            || self.shed(),
            || {
                rustix::fs::openat(
                    &*dirfd,
                    name,
                    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            },
        )?;
        // Stat the opened object itself: the name may have been replaced in between.
        let st = rustix::fs::statat(&fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)?;
        let key = (st.st_dev, st.st_ino);
        let mut tables = self.tables();
        let (id, new) = match tables.by_key.get(&key).copied() {
            Some(id) => {
                if let Some(inode) = tables.inodes.get(&id) {
                    inode.nlookup.fetch_add(1, Ordering::Relaxed);
                }
                (id, false)
            }
            None => {
                let id = tables.next_id;
                tables.next_id += 1;
                tables.by_key.insert(key, id);
                let kind = file_type_bits(&st);
                let mut inode = Inode::new(key, kind, fd, &self.open_count, 1);
                if kind == libc::S_IFLNK {
                    inode.link_name = Some(Box::new((parent, name.into())));
                }
                tables.inodes.insert(id, Arc::new(inode));
                (id, true)
            }
        };
        drop(tables);
        if new {
            self.opened(id);
        }
        Ok(self.entry_out(id, &st))
    }

    fn forget(&self, id: u64, n: u64) {
        let mut tables = self.tables();
        let gone = match tables.inodes.get(&id) {
            Some(inode) if id != fuse_wire::ROOT_ID => {
                let before = inode.nlookup.fetch_sub(
                    n.min(inode.nlookup.load(Ordering::Relaxed)),
                    Ordering::Relaxed,
                );
                before <= n
            }
            _ => false,
        };
        if gone {
            if let Some(inode) = tables.inodes.remove(&id) {
                tables.by_key.remove(&inode.key);
                // Dropping the last Arc closes the O_PATH fd and the backing id.
            }
        }
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
                rustix::fs::access(proc_path(fd.as_fd()), access)?;
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

    /// Opens directory inode `id` for reading.
    fn open_dir(&self, id: u64, inode: &Inode) -> Result<OwnedFd, Errno> {
        let fd = self.path_fd(id, inode)?;
        retry_fds(
            || self.shed(),
            || {
                rustix::fs::openat(
                    &*fd,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            },
        )
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
        let path = proc_path(fd.as_fd());
        // O_NONBLOCK: a lease held by someone else makes this fail with EAGAIN at once
        // (and starts the lease break) instead of waiting up to lease-break-time.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK;
        let file = retry_fds(
            || self.shed(),
            || {
                rustix::fs::open(&path, flags | OFlags::NOATIME, Mode::empty()).or_else(|e| match e
                {
                    Errno::PERM => rustix::fs::open(&path, flags, Mode::empty()),
                    e => Err(e),
                })
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

    /// READDIR: the entries from `offset` (0, or a `d_off` cookie of the source directory,
    /// which each record carries as its next offset), as many as fit in `out`.
    fn readdir(&self, dir: &DirHandle, offset: u64, out: &mut [u8]) -> Result<usize, Errno> {
        let fd = dir.fd.lock().unwrap_or_else(PoisonError::into_inner);
        rustix::fs::seek(&*fd, rustix::fs::SeekFrom::Start(offset))?;
        let mut raw = [MaybeUninit::<u8>::uninit(); 8192];
        let cap = out.len().clamp(1024, raw.len());
        let mut entries = rustix::fs::RawDir::new(&*fd, &mut raw[..cap]);
        let mut buf = DirentBuf::new(out);
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if buf.is_empty() => return Err(e),
                Err(_) => break,
            };
            let name = entry.file_name().to_bytes();
            let ino = self.ino_of(dir.dev, entry.ino());
            let kind = dirent_type(entry.file_type());
            if buf
                .push(ino, entry.next_entry_cookie(), kind, name)
                .is_err()
            {
                break;
            }
        }
        Ok(buf.len())
    }

    /// READDIRPLUS: like [`Fs::readdir`], each entry with its lookup (counted only for the
    /// entries that fit).
    fn readdirplus(
        &self,
        parent: u64,
        dir: &DirHandle,
        offset: u64,
        out: &mut [u8],
    ) -> Result<usize, Errno> {
        let fd = dir.fd.lock().unwrap_or_else(PoisonError::into_inner);
        rustix::fs::seek(&*fd, rustix::fs::SeekFrom::Start(offset))?;
        let mut raw = [MaybeUninit::<u8>::uninit(); 8192];
        // A direntplus record is about 150 bytes larger than the source's dirent.
        let cap = (out.len() / 4).clamp(1024, raw.len());
        let mut entries = rustix::fs::RawDir::new(&*fd, &mut raw[..cap]);
        let mut buf = DirentPlusBuf::new(out);
        while let Some(entry) = entries.next() {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if buf.is_empty() => return Err(e),
                Err(_) => break,
            };
            let name = entry.file_name().to_bytes();
            if !buf.has_room(name.len()) {
                break;
            }
            let kind = dirent_type(entry.file_type());
            let dot = name == b"." || name == b"..";
            let record = if dot {
                // No lookup for . and ..: the kernel only lists them.
                sys::fuse_entry_out {
                    attr: sys::fuse_attr {
                        ino: self.ino_of(dir.dev, entry.ino()),
                        mode: kind << 12,
                        ..Default::default()
                    },
                    ..Default::default()
                }
            } else {
                // Vanished since it was listed: an entry without attributes (nodeid 0).
                self.do_lookup(parent, name).unwrap_or_default()
            };
            if buf
                .push(&record, entry.next_entry_cookie(), kind, name)
                .is_err()
            {
                if record.nodeid != 0 {
                    self.forget(record.nodeid, 1);
                }
                break;
            }
        }
        Ok(buf.len())
    }

    /// GETXATTR: the size when `size` is 0, else the value.
    fn getxattr(&self, id: u64, size: u32, name: &CStr, out: &mut [u8]) -> Result<Outcome, Errno> {
        let inode = self.inode(id)?;
        let fd = self.path_fd(id, &inode)?;
        if size == 0 {
            let n = self.getxattr_fd(&inode, fd.as_fd(), name, &mut [])?;
            return sent(reply::xattr_size(
                out,
                u32::try_from(n).map_err(|_| Errno::RANGE)?,
            ));
        }
        let len = (size as usize).min(out.len());
        let n = self.getxattr_fd(&inode, fd.as_fd(), name, &mut out[..len])?;
        Ok(Outcome::Reply(n))
    }

    /// LISTXATTR: the names as the caller would see them on the source: `trusted.*` only for
    /// callers with `CAP_SYS_ADMIN` (in the initial user namespace), as ext4 and tmpfs list
    /// them.
    fn listxattr(&self, id: u64, size: u32, pid: u32, out: &mut [u8]) -> Result<Outcome, Errno> {
        let inode = self.inode(id)?;
        let fd = self.path_fd(id, &inode)?;
        let mut names = Vec::new();
        // The list can grow between the size query and the read: try a few times.
        for _ in 0..4 {
            let n = self.listxattr_fd(&inode, fd.as_fd(), &mut [])?;
            names.resize(n, 0);
            match self.listxattr_fd(&inode, fd.as_fd(), &mut names) {
                Ok(n) => {
                    names.truncate(n);
                    break;
                }
                Err(Errno::RANGE) => continue,
                Err(e) => return Err(e),
            }
        }
        let hidden = |n: &[u8]| n.starts_with(b"trusted.");
        if names.split(|&b| b == 0).any(hidden) && !caller_is_admin(pid) {
            let mut kept = Vec::with_capacity(names.len());
            for n in names
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty() && !hidden(n))
            {
                kept.extend_from_slice(n);
                kept.push(0);
            }
            names = kept;
        }
        if size == 0 {
            return sent(reply::xattr_size(
                out,
                u32::try_from(names.len()).map_err(|_| Errno::RANGE)?,
            ));
        }
        if names.len() > (size as usize).min(out.len()) {
            return Err(Errno::RANGE);
        }
        out[..names.len()].copy_from_slice(&names);
        Ok(Outcome::Reply(names.len()))
    }

    /// A path for xattr calls on `inode` (whose `O_PATH` fd is `fd`): `/proc/self/fd/N` for
    /// everything but symlinks, to be used with the following calls; for a symlink,
    /// `/proc/self/fd/<parent>/<name>` to be used with the `l*xattr` calls, after checking
    /// that the name still is that symlink (`None` when it is not: no xattrs then). The
    /// parent's fd, returned too, must stay open while the path is used.
    fn xattr_path(&self, inode: &Inode, fd: BorrowedFd<'_>) -> Result<Option<XattrPath>, Errno> {
        use std::os::unix::ffi::OsStrExt;
        if inode.kind != libc::S_IFLNK {
            return Ok(Some((proc_path(fd).into(), None)));
        }
        let Some(link) = inode.link_name.as_deref() else {
            return Ok(None);
        };
        let (parent, name) = (link.0, &link.1);
        let Ok(dir) = self.inode(parent) else {
            return Ok(None);
        };
        let dirfd = self.path_fd(parent, &dir)?;
        match rustix::fs::statat(&*dirfd, &**name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_dev, st.st_ino) == inode.key => {
                let mut path = std::path::PathBuf::from(proc_path(dirfd.as_fd()));
                path.push(std::ffi::OsStr::from_bytes(name));
                Ok(Some((path, Some(dirfd))))
            }
            _ => Ok(None),
        }
    }

    /// `getxattr` on what `fd` (the `O_PATH` fd of `inode`) refers to, symlinks included
    /// (see [`Fs::xattr_path`]); the size when `buf` is empty.
    fn getxattr_fd(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        name: &CStr,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let Some((path, _parent)) = self.xattr_path(inode, fd)? else {
            return Err(Errno::NODATA);
        };
        match (inode.kind == libc::S_IFLNK, buf.is_empty()) {
            (false, true) => rustix::fs::getxattr_query(&path, name),
            (false, false) => rustix::fs::getxattr(&path, name, buf),
            (true, true) => rustix::fs::lgetxattr_query(&path, name),
            (true, false) => rustix::fs::lgetxattr(&path, name, buf),
        }
    }

    /// `listxattr` on what `fd` refers to, as [`Fs::getxattr_fd`].
    fn listxattr_fd(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let Some((path, _parent)) = self.xattr_path(inode, fd)? else {
            return Ok(0);
        };
        match (inode.kind == libc::S_IFLNK, buf.is_empty()) {
            (false, true) => rustix::fs::listxattr_query(&path),
            (false, false) => rustix::fs::listxattr(&path, buf),
            (true, true) => rustix::fs::llistxattr_query(&path),
            (true, false) => rustix::fs::llistxattr(&path, buf),
        }
    }
}

/// `DT_*` of a directory entry (`st_mode >> 12`).
fn dirent_type(kind: rustix::fs::FileType) -> u32 {
    (kind.as_raw_mode() & libc::S_IFMT) >> 12
}

/// Whether the task `pid` (a request's caller) has `CAP_SYS_ADMIN` in the initial user
/// namespace (`capable(CAP_SYS_ADMIN)`, what ext4 asks before listing `trusted.*`). Unknown
/// callers (pid 0, or gone) are not.
fn caller_is_admin(pid: u32) -> bool {
    /// `CAP_SYS_ADMIN` of `<linux/capability.h>`.
    const CAP_SYS_ADMIN: u32 = 21;
    if pid == 0 {
        return false;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << CAP_SYS_ADMIN) == 0 {
        return false;
    }
    // Capabilities count for the initial user namespace only if the caller is in it (the
    // server runs there: it mounted with CAP_SYS_ADMIN).
    let ns = |p: String| std::fs::read_link(p).ok();
    let theirs = ns(format!("/proc/{pid}/ns/user"));
    theirs.is_some() && theirs == ns("/proc/self/ns/user".into())
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
