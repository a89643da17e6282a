//! The file system: a read-only mirror of a source directory.
//!
//! Transport-independent: [`Fs::dispatch`] takes one request as (header, fixed argument,
//! rest) and writes the reply payload straight into the caller's buffer (the io_uring payload
//! slot or the `/dev/fuse` write buffer), so the request path allocates nothing but what the
//! directory and inode tables need.
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

use fuse_kernel_sys as sys;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;
use testkit::{bytes_of, read_struct};

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

/// One request, split as the kernel lays it out: the fixed per-opcode argument (`arg`) and
/// what follows it (`rest`: names, data). `/dev/fuse` delivers them contiguous; io_uring puts
/// `arg` in the header slot's `op_in` and `rest` in the payload buffer.
#[derive(Debug, Clone, Copy)]
pub struct Req<'a> {
    /// The request header.
    pub header: sys::fuse_in_header,
    /// The fixed argument record (may be empty).
    pub arg: &'a [u8],
    /// Names or data after the fixed argument.
    pub rest: &'a [u8],
}

/// Size of the fixed argument record of `opcode` in a `/dev/fuse` request body, so that the
/// body can be split like io_uring splits it. Unknown opcodes: the whole body.
pub fn fixed_arg_size(opcode: u32, body_len: usize) -> usize {
    let size = match opcode {
        // Requests whose first argument is a name (io_uring gives them an empty op_in).
        sys::FUSE_LOOKUP
        | sys::FUSE_READLINK
        | sys::FUSE_SYMLINK
        | sys::FUSE_UNLINK
        | sys::FUSE_RMDIR
        | sys::FUSE_STATFS
        | sys::FUSE_REMOVEXATTR
        | sys::FUSE_DESTROY => 0,
        sys::FUSE_GETXATTR | sys::FUSE_LISTXATTR => size_of::<sys::fuse_getxattr_in>(),
        sys::FUSE_BATCH_FORGET => size_of::<sys::fuse_batch_forget_in>(),
        // The rest have no trailing data that this file system reads: the record is a prefix.
        _ => body_len,
    };
    size.min(body_len)
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
            next_id: u64::from(sys::FUSE_ROOT_ID) + 1,
            ..Tables::default()
        };
        tables.by_key.insert(root.key, u64::from(sys::FUSE_ROOT_ID));
        tables.inodes.insert(u64::from(sys::FUSE_ROOT_ID), root);
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
        sys::fuse_entry_out {
            nodeid: id,
            generation: 0,
            entry_valid: t.as_secs(),
            attr_valid: t.as_secs(),
            entry_valid_nsec: t.subsec_nanos(),
            attr_valid_nsec: t.subsec_nanos(),
            attr: self.attr_of(st),
        }
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
            Some(inode) if id != u64::from(sys::FUSE_ROOT_ID) => {
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
    pub fn dispatch(&self, req: &Req<'_>, out: &mut [u8]) -> Outcome {
        match self.dispatch_inner(req, out) {
            Ok(outcome) => outcome,
            Err(e) => Outcome::Error(e),
        }
    }

    fn put<T: testkit::sys_plain::Plain>(out: &mut [u8], value: &T) -> Result<Outcome, Errno> {
        let bytes = bytes_of(value);
        let dst = out.get_mut(..bytes.len()).ok_or(Errno::RANGE)?;
        dst.copy_from_slice(bytes);
        Ok(Outcome::Reply(bytes.len()))
    }

    fn dispatch_inner(&self, req: &Req<'_>, out: &mut [u8]) -> Result<Outcome, Errno> {
        let id = req.header.nodeid;
        let name = || -> &[u8] {
            let rest = req.rest;
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            &rest[..end]
        };
        match req.header.opcode {
            sys::FUSE_LOOKUP => {
                let entry = self.do_lookup(id, name())?;
                Self::put(out, &entry)
            }
            sys::FUSE_FORGET => {
                let arg: sys::fuse_forget_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                self.forget(id, arg.nlookup);
                Ok(Outcome::NoReply)
            }
            sys::FUSE_BATCH_FORGET => {
                let all = [req.arg, req.rest].concat();
                let arg: sys::fuse_batch_forget_in = read_struct(&all).ok_or(Errno::INVAL)?;
                let items = all
                    .get(size_of::<sys::fuse_batch_forget_in>()..)
                    .unwrap_or(&[]);
                for chunk in items
                    .chunks_exact(size_of::<sys::fuse_forget_one>())
                    .take(arg.count as usize)
                {
                    if let Some(one) = read_struct::<sys::fuse_forget_one>(chunk) {
                        self.forget(one.nodeid, one.nlookup);
                    }
                }
                Ok(Outcome::NoReply)
            }
            sys::FUSE_GETATTR => {
                let inode = self.inode(id)?;
                let st = rustix::fs::statat(
                    &inode.fd,
                    c"",
                    AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                )?;
                let t = self.opts.attr_timeout;
                Self::put(
                    out,
                    &sys::fuse_attr_out {
                        attr_valid: t.as_secs(),
                        attr_valid_nsec: t.subsec_nanos(),
                        dummy: 0,
                        attr: self.attr_of(&st),
                    },
                )
            }
            sys::FUSE_STATX => Err(Errno::NOSYS),
            sys::FUSE_READLINK => {
                let inode = self.inode(id)?;
                let target = rustix::fs::readlinkat(&inode.fd, c"", Vec::new())?;
                let bytes = target.as_bytes();
                out.get_mut(..bytes.len())
                    .ok_or(Errno::RANGE)?
                    .copy_from_slice(bytes);
                Ok(Outcome::Reply(bytes.len()))
            }
            sys::FUSE_ACCESS => {
                let arg: sys::fuse_access_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                if arg.mask & libc::W_OK as u32 != 0 {
                    return Err(Errno::ROFS);
                }
                let inode = self.inode(id)?;
                let access = rustix::fs::Access::from_bits_truncate(arg.mask);
                rustix::fs::access(proc_path(inode.fd.as_fd()), access)?;
                Ok(Outcome::Reply(0))
            }
            sys::FUSE_OPEN => self.open(id, req, out),
            sys::FUSE_READ => {
                let arg: sys::fuse_read_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                let file = self.tables().files.get(arg.fh).ok_or(Errno::BADF)?;
                let len = (arg.size as usize).min(out.len());
                let n = pread_full(file.as_fd(), &mut out[..len], arg.offset)?;
                self.stats
                    .served_read_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
                Ok(Outcome::Reply(n))
            }
            sys::FUSE_RELEASE => {
                let arg: sys::fuse_release_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                self.tables().files.remove(arg.fh);
                Ok(Outcome::Reply(0))
            }
            sys::FUSE_FLUSH => Ok(Outcome::Reply(0)),
            sys::FUSE_OPENDIR => {
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
                Self::put(
                    out,
                    &sys::fuse_open_out {
                        fh,
                        open_flags: sys::FOPEN_CACHE_DIR | sys::FOPEN_KEEP_CACHE,
                        backing_id: 0,
                    },
                )
            }
            sys::FUSE_READDIR | sys::FUSE_READDIRPLUS => {
                let plus = req.header.opcode == sys::FUSE_READDIRPLUS;
                let arg: sys::fuse_read_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                let dir = self.tables().dirs.get(arg.fh).ok_or(Errno::BADF)?;
                let limit = (arg.size as usize).min(out.len());
                Ok(Outcome::Reply(self.readdir(
                    id,
                    &dir,
                    arg.offset,
                    plus,
                    &mut out[..limit],
                )))
            }
            sys::FUSE_RELEASEDIR => {
                let arg: sys::fuse_release_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
                self.tables().dirs.remove(arg.fh);
                Ok(Outcome::Reply(0))
            }
            sys::FUSE_FSYNCDIR | sys::FUSE_FSYNC => Ok(Outcome::Reply(0)),
            sys::FUSE_STATFS => {
                let st = rustix::fs::fstatvfs(self.open_dir(u64::from(sys::FUSE_ROOT_ID))?)?;
                Self::put(
                    out,
                    &sys::fuse_statfs_out {
                        st: sys::fuse_kstatfs {
                            blocks: st.f_blocks,
                            bfree: st.f_bfree,
                            bavail: st.f_bavail,
                            files: st.f_files,
                            ffree: st.f_ffree,
                            bsize: st.f_bsize as u32,
                            namelen: st.f_namemax as u32,
                            frsize: st.f_frsize as u32,
                            ..Default::default()
                        },
                    },
                )
            }
            sys::FUSE_GETXATTR | sys::FUSE_LISTXATTR => self.xattr(id, req, out),
            sys::FUSE_INTERRUPT => {
                // Every request is answered promptly from local files; nothing to cancel.
                Ok(Outcome::NoReply)
            }
            sys::FUSE_DESTROY => Ok(Outcome::Reply(0)),
            sys::FUSE_SETATTR
            | sys::FUSE_SYMLINK
            | sys::FUSE_MKNOD
            | sys::FUSE_MKDIR
            | sys::FUSE_UNLINK
            | sys::FUSE_RMDIR
            | sys::FUSE_RENAME
            | sys::FUSE_RENAME2
            | sys::FUSE_LINK
            | sys::FUSE_WRITE
            | sys::FUSE_SETXATTR
            | sys::FUSE_REMOVEXATTR
            | sys::FUSE_CREATE
            | sys::FUSE_FALLOCATE
            | sys::FUSE_COPY_FILE_RANGE
            | sys::FUSE_COPY_FILE_RANGE_64
            | sys::FUSE_TMPFILE
            | sys::FUSE_SETLK
            | sys::FUSE_SETLKW => Err(Errno::ROFS),
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

    fn open(&self, id: u64, req: &Req<'_>, out: &mut [u8]) -> Result<Outcome, Errno> {
        let arg: sys::fuse_open_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
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
        let mut open_out = sys::fuse_open_out::default();
        if self.opts.passthrough {
            if let Some(dev) = &self.dev {
                match inode.backing.get_or_open(dev, file.as_fd()) {
                    Ok(id) => {
                        open_out.open_flags |= sys::FOPEN_PASSTHROUGH;
                        open_out.backing_id = id;
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
        open_out.fh = self.tables().files.insert(Arc::new(file));
        Self::put(out, &open_out)
    }

    fn readdir(
        &self,
        parent: u64,
        dir: &DirHandle,
        offset: u64,
        plus: bool,
        out: &mut [u8],
    ) -> usize {
        let mut used = 0;
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        for (index, (name, ino, kind)) in dir.entries.iter().enumerate().skip(start) {
            let size = if plus {
                sys::fuse_direntplus_size(name.len())
            } else {
                sys::fuse_dirent_size(name.len())
            };
            if used + size > out.len() {
                break;
            }
            let record = &mut out[used..used + size];
            record.fill(0);
            let mut at = 0;
            let mut ino = *ino;
            if plus {
                let dot = name.as_slice() == b"." || name.as_slice() == b"..";
                let entry = if dot {
                    sys::fuse_entry_out {
                        attr: sys::fuse_attr {
                            ino,
                            mode: u32::from(*kind) << 12,
                            ..Default::default()
                        },
                        ..Default::default()
                    }
                } else {
                    // Vanished since OPENDIR: an entry without attributes (nodeid 0).
                    self.do_lookup(parent, name).unwrap_or_default()
                };
                if entry.nodeid != 0 {
                    ino = entry.attr.ino;
                }
                let bytes = bytes_of(&entry);
                record[..bytes.len()].copy_from_slice(bytes);
                at = bytes.len();
            }
            // struct fuse_dirent { u64 ino; u64 off; u32 namelen; u32 type; char name[]; }
            record[at..at + 8].copy_from_slice(&ino.to_ne_bytes());
            record[at + 8..at + 16].copy_from_slice(&(index as u64 + 1).to_ne_bytes());
            record[at + 16..at + 20].copy_from_slice(&(name.len() as u32).to_ne_bytes());
            record[at + 20..at + 24].copy_from_slice(&u32::from(*kind).to_ne_bytes());
            let name_at = at + sys::FUSE_NAME_OFFSET as usize;
            record[name_at..name_at + name.len()].copy_from_slice(name);
            used += size;
        }
        used
    }

    fn xattr(&self, id: u64, req: &Req<'_>, out: &mut [u8]) -> Result<Outcome, Errno> {
        let arg: sys::fuse_getxattr_in = read_struct(req.arg).ok_or(Errno::INVAL)?;
        let inode = self.inode(id)?;
        let st = rustix::fs::fstat(&inode.fd)?;
        if file_type_bits(&st) == libc::S_IFLNK {
            // O_PATH symlink fds cannot carry xattr calls; links have none here.
            return if req.header.opcode == sys::FUSE_LISTXATTR {
                if arg.size == 0 {
                    Self::put(out, &sys::fuse_getxattr_out::default())
                } else {
                    Ok(Outcome::Reply(0))
                }
            } else {
                Err(Errno::NODATA)
            };
        }
        let path = proc_path(inode.fd.as_fd());
        let name_bytes = {
            let rest = req.rest;
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            rest.get(..=end).unwrap_or(rest)
        };
        let size = if arg.size == 0 {
            if req.header.opcode == sys::FUSE_LISTXATTR {
                rustix::fs::listxattr_query(&path)?
            } else {
                let name = CStr::from_bytes_with_nul(name_bytes).map_err(|_| Errno::INVAL)?;
                rustix::fs::getxattr_query(&path, name)?
            }
        } else {
            let len = (arg.size as usize).min(out.len());
            let buf = &mut out[..len];
            let n = if req.header.opcode == sys::FUSE_LISTXATTR {
                rustix::fs::listxattr(&path, buf)?
            } else {
                let name = CStr::from_bytes_with_nul(name_bytes).map_err(|_| Errno::INVAL)?;
                rustix::fs::getxattr(&path, name, buf)?
            };
            return Ok(Outcome::Reply(n));
        };
        Self::put(
            out,
            &sys::fuse_getxattr_out {
                size: u32::try_from(size).map_err(|_| Errno::RANGE)?,
                padding: 0,
            },
        )
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
