//! [`PassthroughSlot`]: one backing id per inode, registered at the inode's first passthrough
//! OPEN and closed when the inode is forgotten.

use std::fmt;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Mutex, PoisonError};

use crate::{Backing, BackingId, Error, Passthrough};

/// The passthrough backing file of one inode, shared by all of its opens.
///
/// The kernel allows one backing file per FUSE inode at a time: an OPEN reply naming a second,
/// different backing id while a file of that inode is open in passthrough mode fails that
/// `open(2)` with `EIO`. So ids belong to inodes, not to opens: keep a slot in each inode of
/// the server's table, answer every OPEN of the inode with [`PassthroughSlot::get_or_open`],
/// and let the slot go (closing the id with `BACKING_CLOSE`) when the kernel forgets the
/// inode (FORGET down to 0), not at RELEASE. Files still open keep working after the close:
/// the kernel holds its own reference to the backing file.
///
/// `D` is the `/dev/fuse` fd (borrowed or owned, for example `Arc<OwnedFd>`); the slot keeps a
/// clone of it inside its [`Backing`], so the id is never closed on another connection.
/// Thread-safe: concurrent first opens register one id.
pub struct PassthroughSlot<D: AsFd> {
    backing: Mutex<Option<Backing<Passthrough, D>>>,
}

impl<D: AsFd> Default for PassthroughSlot<D> {
    fn default() -> Self {
        PassthroughSlot {
            backing: Mutex::new(None),
        }
    }
}

impl<D: AsFd> fmt::Debug for PassthroughSlot<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PassthroughSlot")
            .field("id", &self.id())
            .finish()
    }
}

impl<D: AsFd + Clone> PassthroughSlot<D> {
    /// The inode's backing id; at the first call, `file` (the inode's real file, opened for
    /// reading or as the open asks) is registered with `BACKING_OPEN` on `dev`.
    ///
    /// Costs a mutex lock, plus one ioctl at the first call.
    ///
    /// # Errors
    ///
    /// Those of [`Backing::open`] at the first call (for example `EPERM` when passthrough
    /// was not negotiated, `ENOTTY` before Linux 6.9: [`Error::is_unsupported`]); a failed
    /// registration leaves the slot empty, so a later call tries again.
    pub fn get_or_open(
        &self,
        dev: &D,
        file: BorrowedFd<'_>,
    ) -> Result<BackingId<Passthrough>, Error> {
        let mut slot = self.backing.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(backing) = slot.as_ref() {
            return Ok(backing.id());
        }
        let backing = Backing::<Passthrough, D>::open(dev.clone(), file)?;
        let id = backing.id();
        *slot = Some(backing);
        Ok(id)
    }
}

impl<D: AsFd> PassthroughSlot<D> {
    /// The registered id, if any.
    pub fn id(&self) -> Option<BackingId<Passthrough>> {
        self.backing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .map(Backing::id)
    }

    /// Closes the id now (`BACKING_CLOSE`); dropping the slot does the same, ignoring errors.
    ///
    /// # Errors
    ///
    /// Those of [`Backing::close`].
    pub fn close(&self) -> Result<(), Error> {
        let taken = self
            .backing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        taken.map_or(Ok(()), Backing::close)
    }
}
