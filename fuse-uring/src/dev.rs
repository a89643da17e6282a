//! [`DevFd`]: the `/dev/fuse` fd an SQE targets.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use io_uring::types;

/// The `/dev/fuse` fd an SQE targets: a plain fd, or an index into the ring's registered
/// files (`io_uring_register_files`), which saves the fd lookup on every submission.
///
/// It must refer to the connection the entry is registered with, for every command of the
/// entry; a fixed index must name that fd in the table of the ring the SQE is pushed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DevFd {
    /// A plain file descriptor (`io_uring::types::Fd`).
    Fd(RawFd),
    /// A registered file index (`io_uring::types::Fixed`).
    Fixed(u32),
}

impl From<types::Fd> for DevFd {
    fn from(fd: types::Fd) -> DevFd {
        DevFd::Fd(fd.0)
    }
}

impl From<types::Fixed> for DevFd {
    fn from(fd: types::Fixed) -> DevFd {
        DevFd::Fixed(fd.0)
    }
}

impl From<BorrowedFd<'_>> for DevFd {
    fn from(fd: BorrowedFd<'_>) -> DevFd {
        DevFd::Fd(fd.as_raw_fd())
    }
}
