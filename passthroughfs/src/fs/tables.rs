//! The tables of the file system: inodes, open files and open directories.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backing::BackingSlot;

use super::handle::FileHandle;

/// The fd of an inode: open, or closed and remembered as a file handle.
pub(super) enum InodeFd {
    Open(Arc<OwnedFd>),
    Closed(FileHandle),
}

pub(super) struct Inode {
    pub(super) key: (u64, u64),
    /// `S_IFMT` bits of its mode.
    pub(super) kind: u32,
    /// For symlinks: the parent and name it was first looked up by, for xattr calls (which
    /// an `O_PATH` fd of a symlink cannot carry).
    pub(super) link_name: Option<Box<(u64, Box<[u8]>)>>,
    pub(super) nlookup: AtomicU64,
    pub(super) backing: BackingSlot,
    pub(super) fd: Mutex<InodeFd>,
    /// Used since the fd cache last looked (second chance before closing).
    pub(super) used: AtomicBool,
    /// The file system's count of open inode fds (decremented when this one closes).
    pub(super) open_count: Arc<AtomicUsize>,
}

impl Inode {
    pub(super) fn new(
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

    pub(super) fn fd_state(&self) -> MutexGuard<'_, InodeFd> {
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
pub(super) struct DirHandle {
    pub(super) fd: Mutex<OwnedFd>,
    /// `st_dev` of the directory (to map the entries' inode numbers).
    pub(super) dev: u64,
}

#[derive(Default)]
pub(super) struct Tables {
    pub(super) inodes: HashMap<u64, Arc<Inode>>,
    pub(super) by_key: HashMap<(u64, u64), u64>,
    pub(super) next_id: u64,
    pub(super) files: Slab<Arc<OwnedFd>>,
    pub(super) dirs: Slab<Arc<DirHandle>>,
}

/// A vector of optional slots with a free list: handles for OPEN/OPENDIR.
pub(super) struct Slab<T> {
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
    pub(super) fn insert(&mut self, value: T) -> u64 {
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

    pub(super) fn get(&self, handle: u64) -> Option<T> {
        self.slots.get(usize::try_from(handle).ok()?)?.clone()
    }

    pub(super) fn remove(&mut self, handle: u64) -> Option<T> {
        let i = usize::try_from(handle).ok()?;
        let value = self.slots.get_mut(i)?.take()?;
        self.free.push(i);
        Some(value)
    }
}
