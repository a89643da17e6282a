//! The inode fd budget: closing the least recently used inode fds, reopening them from
//! their file handles, and shedding fds when an open fails with `EMFILE`/`ENFILE`.

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::Fs;
use super::handle::FileHandle;
use super::tables::{Inode, InodeFd};

/// The inode fds in opening order, for closing the least recently used (clock).
#[derive(Default)]
pub(super) struct FdClock {
    queue: VecDeque<u64>,
}

/// Runs `f`, which opens an fd; on `EMFILE`/`ENFILE` sheds inode fds with `shed` and tries
/// once more.
pub(super) fn retry_fds<T>(
    shed: impl FnOnce(),
    mut f: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    match f() {
        Err(Errno::MFILE | Errno::NFILE) => {
            shed();
            f()
        }
        r => r,
    }
}

impl Fs {
    /// The `O_PATH` fd of inode `id`, reopened from its file handle if it was closed.
    pub(super) fn path_fd(&self, id: u64, inode: &Inode) -> Result<Arc<OwnedFd>, Errno> {
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
    pub(super) fn opened(&self, id: u64) {
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
    pub(super) fn shed(&self) {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        let open = self.open_count.load(Ordering::Relaxed);
        self.close_lru(&mut clock, open - open / 4, true);
    }
}
