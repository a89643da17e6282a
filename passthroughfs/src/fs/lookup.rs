//! LOOKUP and FORGET: the kernel's references to inodes, their numbers and attributes.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use fuse_wire::{reply, sys};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use super::budget::retry_fds;
use super::tables::Inode;
use super::{FOREIGN_INO_BASE, Fs, file_type_bits};

impl Fs {
    /// The inode number shown for `(dev, ino)` of the source: unique on the mount.
    pub(super) fn ino_of(&self, dev: u64, ino: u64) -> u64 {
        if dev == self.root_dev && ino < FOREIGN_INO_BASE {
            return ino;
        }
        let mut foreign = self.foreign.lock().unwrap_or_else(PoisonError::into_inner);
        let next = FOREIGN_INO_BASE + foreign.len() as u64;
        *foreign.entry((dev, ino)).or_insert(next)
    }

    pub(super) fn attr_of(&self, st: &rustix::fs::Stat) -> sys::fuse_attr {
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
    pub(super) fn do_lookup(&self, parent: u64, name: &[u8]) -> Result<sys::fuse_entry_out, Errno> {
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

    pub(super) fn forget(&self, id: u64, n: u64) {
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
}
