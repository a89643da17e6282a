//! Passthrough backing ids, one per inode: `fuse-backing`'s [`PassthroughSlot`] on the
//! session's `/dev/fuse` fd.
//!
//! Registered at an inode's first passthrough OPEN, shared by all its opens (the kernel allows
//! one backing file per inode), closed when the inode is dropped after the kernel forgot it.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use fuse_backing::PassthroughSlot;

/// The backing id slot of one inode.
pub type BackingSlot = PassthroughSlot<Arc<OwnedFd>>;
