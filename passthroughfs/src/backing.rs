//! Passthrough backing ids, one per inode, through `fuse-backing`.

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, PoisonError};

use fuse_backing::{Backing, BackingId, Passthrough};
use rustix::io::Errno;

/// The backing id of one inode: registered at its first OPEN, closed (BACKING_CLOSE) when the
/// inode is dropped after the kernel forgot it. Files already open keep working: the kernel
/// holds its own reference to the backing file.
#[derive(Debug, Default)]
pub struct BackingSlot(Mutex<Option<Backing<Passthrough, Arc<OwnedFd>>>>);

impl BackingSlot {
    /// The inode's backing id, registering `file` with the kernel on first use.
    pub fn get_or_open(
        &self,
        dev: &Arc<OwnedFd>,
        file: BorrowedFd<'_>,
    ) -> Result<BackingId<Passthrough>, Errno> {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(backing) = slot.as_ref() {
            return Ok(backing.id());
        }
        let backing = Backing::<Passthrough, _>::open(dev.clone(), file).map_err(Errno::from)?;
        let id = backing.id();
        *slot = Some(backing);
        Ok(id)
    }
}
