//! The file system: a read-only mirror of a source directory.
//!
//! Transport-independent: [`Fs::dispatch`] takes one request decoded by `fuse-wire` (from
//! either transport's layout) and writes the reply payload straight into the caller's buffer
//! (the io_uring payload slot or the `/dev/fuse` write buffer) with `fuse-wire`'s encoders, so
//! the request path allocates nothing but what the directory and inode tables need.
//!
//! Every inode is an `O_PATH` file descriptor in the source tree (as libfuse's
//! `passthrough_ll` does), keyed by `(st_dev, st_ino)`, with the kernel's lookup count. With
//! passthrough, the first OPEN of an inode registers a backing file with the kernel
//! (`fuse-backing`); the id lives as long as the inode and is closed when the kernel forgets it.

use std::collections::HashMap;
use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
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
}

struct Inode {
    fd: OwnedFd,
    key: (u64, u64),
    nlookup: AtomicU64,
    backing: BackingSlot,
}

struct DirHandle {
    entries: Vec<(Vec<u8>, u64, u8)>,
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

/// The mirror file system.
pub struct Fs {
    tables: Mutex<Tables>,
    opts: Options,
    dev: Option<Arc<OwnedFd>>,
    /// Request and data-path counters.
    pub stats: Stats,
}

impl std::fmt::Debug for Fs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fs")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

fn proc_path(fd: BorrowedFd<'_>) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn file_type_bits(st: &rustix::fs::Stat) -> u32 {
    st.st_mode & libc::S_IFMT
}

impl Fs {
    /// Opens `source` as the root. `dev` is the `/dev/fuse` fd, needed for passthrough.
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
        let st = rustix::fs::fstat(&fd)?;
        let root = Arc::new(Inode {
            fd,
            key: (st.st_dev, st.st_ino),
            nlookup: AtomicU64::new(2),
            backing: BackingSlot::default(),
        });
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
            stats: Stats::default(),
        })
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn inode(&self, id: u64) -> Result<Arc<Inode>, Errno> {
        self.tables().inodes.get(&id).cloned().ok_or(Errno::NOENT)
    }

    fn attr_of(&self, st: &rustix::fs::Stat) -> sys::fuse_attr {
        sys::fuse_attr {
            ino: st.st_ino,
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
        // A stat by name first: an inode the kernel already knows needs no new O_PATH fd.
        let st = rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)?;
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
        let fd = rustix::fs::openat(
            &dir.fd,
            name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        // Stat the opened object itself: the name may have been replaced in between.
        let st = rustix::fs::statat(&fd, c"", AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)?;
        let key = (st.st_dev, st.st_ino);
        let mut tables = self.tables();
        let id = match tables.by_key.get(&key).copied() {
            Some(id) => {
                if let Some(inode) = tables.inodes.get(&id) {
                    inode.nlookup.fetch_add(1, Ordering::Relaxed);
                }
                id
            }
            None => {
                let id = tables.next_id;
                tables.next_id += 1;
                tables.by_key.insert(key, id);
                tables.inodes.insert(
                    id,
                    Arc::new(Inode {
                        fd,
                        key,
                        nlookup: AtomicU64::new(1),
                        backing: BackingSlot::default(),
                    }),
                );
                id
            }
        };
        drop(tables);
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
                let st = rustix::fs::statat(
                    &inode.fd,
                    c"",
                    AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                )?;
                let attr = reply::attr_out(self.attr_of(&st), self.opts.attr_timeout);
                sent(reply::attr(out, &attr))
            }
            Operation::Readlink => {
                let inode = self.inode(id)?;
                let target = rustix::fs::readlinkat(&inode.fd, c"", Vec::new())?;
                sent(reply::data(out, target.as_bytes()))
            }
            Operation::Access(arg) => {
                if arg.mask & libc::W_OK as u32 != 0 {
                    return Err(Errno::ROFS);
                }
                let inode = self.inode(id)?;
                let access = rustix::fs::Access::from_bits_truncate(arg.mask);
                rustix::fs::access(proc_path(inode.fd.as_fd()), access)?;
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
                let dir = self.open_dir(id)?;
                let mut entries = Vec::new();
                for entry in rustix::fs::Dir::new(dir)? {
                    let entry = entry?;
                    entries.push((
                        entry.file_name().to_bytes().to_vec(),
                        entry.ino(),
                        entry.file_type().as_raw_mode() as u8,
                    ));
                }
                let fh = self.tables().dirs.insert(Arc::new(DirHandle { entries }));
                let open = OpenOut::new(fh).flags(sys::FOPEN_CACHE_DIR | sys::FOPEN_KEEP_CACHE);
                sent(reply::open(out, &open))
            }
            Operation::Readdir(arg) | Operation::Readdirplus(arg) => {
                let plus = matches!(req.operation(), Operation::Readdirplus(_));
                let dir = self.tables().dirs.get(arg.fh).ok_or(Errno::BADF)?;
                let limit = (arg.size as usize).min(out.len());
                let out = &mut out[..limit];
                let len = if plus {
                    self.readdirplus(id, &dir, arg.offset, out)
                } else {
                    readdir(&dir, arg.offset, out)
                };
                Ok(Outcome::Reply(len))
            }
            Operation::Releasedir(arg) => {
                self.tables().dirs.remove(arg.fh);
                Ok(Outcome::Reply(0))
            }
            Operation::Fsync(_) | Operation::Fsyncdir(_) => Ok(Outcome::Reply(0)),
            Operation::Statfs => {
                let st = rustix::fs::fstatvfs(self.open_dir(fuse_wire::ROOT_ID)?)?;
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
            Operation::Getxattr { arg, name } => self.xattr(id, arg.size, Some(name), out),
            Operation::Listxattr(arg) => self.xattr(id, arg.size, None, out),
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
    fn open_dir(&self, id: u64) -> Result<OwnedFd, Errno> {
        let inode = self.inode(id)?;
        rustix::fs::openat(
            &inode.fd,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn open(&self, id: u64, arg: &sys::fuse_open_in, out: &mut [u8]) -> Result<Outcome, Errno> {
        let acc = arg.flags & libc::O_ACCMODE as u32;
        if acc != libc::O_RDONLY as u32 || arg.flags & libc::O_TRUNC as u32 != 0 {
            return Err(Errno::ROFS);
        }
        let inode = self.inode(id)?;
        let file = rustix::fs::open(
            proc_path(inode.fd.as_fd()),
            OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOATIME,
            Mode::empty(),
        )
        .or_else(|_| {
            rustix::fs::open(
                proc_path(inode.fd.as_fd()),
                OFlags::RDONLY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })?;
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
            None => open,
        };
        sent(reply::open(out, &open))
    }

    /// READDIRPLUS: like [`readdir`], each entry with its lookup (counted only for the
    /// entries that fit).
    fn readdirplus(&self, parent: u64, dir: &DirHandle, offset: u64, out: &mut [u8]) -> usize {
        let mut buf = DirentPlusBuf::new(out);
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (index, (name, ino, kind)) in dir.entries.iter().enumerate().skip(start) {
            if !buf.has_room(name.len()) {
                break;
            }
            let dot = name.as_slice() == b"." || name.as_slice() == b"..";
            let entry = if dot {
                // No lookup for . and ..: the kernel only lists them.
                sys::fuse_entry_out {
                    attr: sys::fuse_attr {
                        ino: *ino,
                        mode: u32::from(*kind) << 12,
                        ..Default::default()
                    },
                    ..Default::default()
                }
            } else {
                // Vanished since OPENDIR: an entry without attributes (nodeid 0).
                self.do_lookup(parent, name).unwrap_or_default()
            };
            if buf
                .push(&entry, index as u64 + 1, u32::from(*kind), name)
                .is_err()
            {
                if entry.nodeid != 0 {
                    self.forget(entry.nodeid, 1);
                }
                break;
            }
        }
        buf.len()
    }

    /// GETXATTR (`name`) or LISTXATTR (no name): the size when `size` is 0, else the data.
    fn xattr(
        &self,
        id: u64,
        size: u32,
        name: Option<&CStr>,
        out: &mut [u8],
    ) -> Result<Outcome, Errno> {
        let inode = self.inode(id)?;
        let st = rustix::fs::fstat(&inode.fd)?;
        if file_type_bits(&st) == libc::S_IFLNK {
            // O_PATH symlink fds cannot carry xattr calls; links have none here.
            return match name {
                Some(_) => Err(Errno::NODATA),
                None if size == 0 => sent(reply::xattr_size(out, 0)),
                None => Ok(Outcome::Reply(0)),
            };
        }
        let path = proc_path(inode.fd.as_fd());
        if size == 0 {
            let size = match name {
                None => rustix::fs::listxattr_query(&path)?,
                Some(name) => rustix::fs::getxattr_query(&path, name)?,
            };
            return sent(reply::xattr_size(
                out,
                u32::try_from(size).map_err(|_| Errno::RANGE)?,
            ));
        }
        let len = (size as usize).min(out.len());
        let buf = &mut out[..len];
        let n = match name {
            None => rustix::fs::listxattr(&path, buf)?,
            Some(name) => rustix::fs::getxattr(&path, name, buf)?,
        };
        Ok(Outcome::Reply(n))
    }
}

/// READDIR: the entries from `offset` (an index into the listing taken at OPENDIR; each
/// record carries the next index), as many as fit in `out`.
fn readdir(dir: &DirHandle, offset: u64, out: &mut [u8]) -> usize {
    let mut buf = DirentBuf::new(out);
    let start = usize::try_from(offset).unwrap_or(usize::MAX);
    for (index, (name, ino, kind)) in dir.entries.iter().enumerate().skip(start) {
        if buf
            .push(*ino, index as u64 + 1, u32::from(*kind), name)
            .is_err()
        {
            break;
        }
    }
    buf.len()
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
