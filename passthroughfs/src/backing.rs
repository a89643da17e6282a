//! Passthrough backing ids per inode, and cloned `/dev/fuse` fds, through `fuse-backing`.
//! (Being wired to fuse-backing; until then passthrough and CLONE report ENOSYS.)

use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::io::Errno;

/// The backing id of one inode, opened at its first OPEN and closed when the inode goes.
#[derive(Debug, Default)]
pub struct BackingSlot {}

impl BackingSlot {
    /// The inode's backing id, registering `file` with the kernel on first use.
    pub fn get_or_open(&self, _dev: &Arc<OwnedFd>, _file: BorrowedFd<'_>) -> Result<i32, Errno> {
        Err(Errno::NOSYS)
    }
}

/// A new `/dev/fuse` fd attached to the session of `dev` (`FUSE_DEV_IOC_CLONE`).
pub fn clone_dev(_dev: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    Err(Errno::NOSYS)
}
