//! The other `/dev/fuse` ioctls: `FUSE_DEV_IOC_CLONE` and `FUSE_DEV_IOC_SYNC_INIT`.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};

use crate::error::{Error, Operation};
use crate::sys_ioctl;

/// Attaches `new_dev`, a freshly opened `/dev/fuse` fd, to the connection of `session_dev`:
/// `ioctl(new_dev, FUSE_DEV_IOC_CLONE, &session_fd)`.
///
/// Afterwards `new_dev` receives requests of the same connection and its replies are
/// accepted: multi-threaded servers give each thread its own fd this way, so that a request
/// is answered on the fd it was read from and threads do not contend for one fd. Each request
/// is read by exactly one fd. Linux 4.2.
///
/// # Errors
///
/// - `EPERM`: `session_dev` is a `/dev/fuse` fd that is not mounted yet (observed on 6.18).
/// - `EINVAL`: `session_dev` is not a `/dev/fuse` fd (or not open), or `new_dev` is already
///   attached to a connection.
/// - `ENOTTY`: `new_dev` is not a `/dev/fuse` fd, or the kernel predates 4.2.
///   *Unsupported* ([`Error::is_unsupported`]).
/// - `ENOMEM`.
#[doc(alias = "FUSE_DEV_IOC_CLONE")]
#[doc(alias = "fuse_clone_chan")]
pub fn attach_to_session(
    new_dev: BorrowedFd<'_>,
    session_dev: BorrowedFd<'_>,
) -> Result<(), Error> {
    // The kernel reads the argument as an unsigned fd number; an fd is never negative.
    let session_fd = session_dev.as_raw_fd() as u32;
    sys_ioctl::clone(new_dev, session_fd).map_err(|errno| Error::kernel(Operation::Clone, errno))
}

/// Opens a new `/dev/fuse` fd (read-write, close-on-exec) and attaches it to the connection
/// of `session_dev` ([`attach_to_session`]), as libfuse's `fuse_clone_chan` does.
///
/// # Errors
///
/// The errors of opening `/dev/fuse` ([`Operation::OpenDevice`]: `ENOENT` without the device
/// node, `ENODEV` without the fuse module, `EACCES`...), then those of [`attach_to_session`].
#[doc(alias = "FUSE_DEV_IOC_CLONE")]
#[doc(alias = "fuse_clone_chan")]
pub fn clone_device(session_dev: BorrowedFd<'_>) -> Result<OwnedFd, Error> {
    let new_dev = rustix::fs::open("/dev/fuse", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| Error::kernel(Operation::OpenDevice, errno))?;
    attach_to_session(std::os::fd::AsFd::as_fd(&new_dev), session_dev)?;
    Ok(new_dev)
}

/// Marks a `/dev/fuse` fd that is not mounted yet for synchronous INIT:
/// `ioctl(dev, FUSE_DEV_IOC_SYNC_INIT)`.
///
/// The later `mount(2)` with this fd then sends FUSE_INIT and waits for its reply inside the
/// mount call (so that the mount fails if INIT does), instead of returning at once and
/// letting the first file system access wait. The server must therefore already be reading
/// `dev` from another thread when it calls `mount(2)`; device operations on a marked fd wait
/// (interruptibly) until the mount attaches it. Marking twice is allowed. Linux 6.18, without
/// a protocol minor bump: `ENOTTY` is the feature test.
///
/// # Errors
///
/// - `EINVAL`: `dev` is already attached to a connection (mounted, or cloned).
/// - `ENOTTY`: a kernel before 6.18, or `dev` is not a `/dev/fuse` fd. *Unsupported*
///   ([`Error::is_unsupported`]).
#[doc(alias = "FUSE_DEV_IOC_SYNC_INIT")]
pub fn sync_init(dev: BorrowedFd<'_>) -> Result<(), Error> {
    sys_ioctl::sync_init(dev).map_err(|errno| Error::kernel(Operation::SyncInit, errno))
}
