//! [`DevFd`]: the `/dev/fuse` fd an SQE targets.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

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

/// The device number of `/dev/fuse`: character device major 10 (misc), minor 229
/// (`FUSE_MINOR` in the kernel's `include/linux/miscdevice.h`).
pub const FUSE_DEV_MAJOR: u32 = 10;
/// See [`FUSE_DEV_MAJOR`].
pub const FUSE_DEV_MINOR: u32 = 229;

/// A `/dev/fuse` fd that a queue sends its commands to, checked and kept open by the queue.
///
/// [`QueueConfig`](crate::QueueConfig) takes one, and the [`QueueBuffers`](crate::QueueBuffers)
/// built from it hold it (an `Arc`): every [`Entry`](crate::Entry) borrows the buffers, and a
/// [`Queue`](crate::Queue) owns them, so the fd cannot be closed (or its number reused for
/// another file) while anything can still build or push an SQE for it. Cloning is cheap (the
/// `Arc`), so one connection's fd can be shared by the queues of all CPUs.
///
/// The check: [`FuseFd::new`] refuses an fd that is not the `/dev/fuse` character device
/// (10:229), because other files can accept `IORING_OP_URING_CMD` too (`/dev/null` completes
/// every command with 0, which would look like a REGISTER that delivered an all-zero request).
#[derive(Clone)]
pub struct FuseFd {
    fd: std::sync::Arc<dyn std::os::fd::AsFd + Send + Sync>,
    fixed: Option<u32>,
}

impl std::fmt::Debug for FuseFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuseFd")
            .field("fd", &self.fd.as_fd().as_raw_fd())
            .field("fixed", &self.fixed)
            .finish()
    }
}

impl FuseFd {
    /// Checks that `dev` is `/dev/fuse` (one `fstat(2)`) and keeps it.
    ///
    /// `dev` is anything that owns the fd: an `Arc<OwnedFd>`, an `Arc<File>`, or the device
    /// type of a `/dev/fuse` transport crate.
    ///
    /// # Errors
    /// [`NotFuseDevice`] when `fstat(2)` fails or the fd is not the character device 10:229.
    pub fn new<D>(dev: std::sync::Arc<D>) -> Result<FuseFd, NotFuseDevice>
    where
        D: std::os::fd::AsFd + Send + Sync + 'static,
    {
        check_fuse_device(dev.as_fd())?;
        Ok(FuseFd {
            fd: dev,
            fixed: None,
        })
    }

    /// Duplicates `fd` (one `dup(2)`, close-on-exec), checks the duplicate and keeps it: for a
    /// caller that owns the connection's fd in a type of its own and only lends it.
    ///
    /// # Errors
    /// [`NotFuseDevice`] as for [`FuseFd::new`], or [`NotFuseDevice::Io`] when `dup(2)` fails
    /// (`EMFILE`).
    pub fn dup(fd: BorrowedFd<'_>) -> Result<FuseFd, NotFuseDevice> {
        let owned = fd.try_clone_to_owned().map_err(NotFuseDevice::Io)?;
        FuseFd::new(std::sync::Arc::new(owned))
    }

    /// Sends the commands through index `index` of the ring's registered files instead of the
    /// fd (`IOSQE_FIXED_FILE`, which saves the fd lookup on every submission). The ring must
    /// have this same fd registered at `index` (`Submitter::register_files`); the fd is still
    /// kept open here.
    pub fn with_fixed_index(mut self, index: u32) -> FuseFd {
        self.fixed = Some(index);
        self
    }

    /// The fd.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// What the SQEs carry: the fixed index when one was given, else the fd.
    pub fn dev_fd(&self) -> DevFd {
        match self.fixed {
            Some(index) => DevFd::Fixed(index),
            None => DevFd::Fd(self.fd.as_fd().as_raw_fd()),
        }
    }
}

/// An fd that is not `/dev/fuse`, from [`FuseFd::new`].
#[derive(Debug)]
pub enum NotFuseDevice {
    /// `fstat(2)` (or, in [`FuseFd::dup`], `dup(2)`) failed.
    Io(std::io::Error),
    /// Another kind of file, or another device.
    Other {
        /// `st_mode & S_IFMT`.
        file_type: u32,
        /// `(major, minor)` of `st_rdev` (0, 0 for files that are not devices).
        rdev: (u32, u32),
    },
}

impl std::fmt::Display for NotFuseDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotFuseDevice::Io(e) => write!(f, "cannot check the /dev/fuse fd: {e}"),
            NotFuseDevice::Other { file_type, rdev } => write!(
                f,
                "the fd is not /dev/fuse (character device {FUSE_DEV_MAJOR}:{FUSE_DEV_MINOR}): \
                 file type {file_type:#o}, device {}:{}; FUSE io_uring commands must go to the \
                 connection's /dev/fuse fd",
                rdev.0, rdev.1
            ),
        }
    }
}

impl std::error::Error for NotFuseDevice {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            NotFuseDevice::Io(e) => Some(e),
            NotFuseDevice::Other { .. } => None,
        }
    }
}

impl From<NotFuseDevice> for std::io::Error {
    fn from(e: NotFuseDevice) -> std::io::Error {
        let kind = match &e {
            NotFuseDevice::Io(inner) => inner.kind(),
            NotFuseDevice::Other { .. } => std::io::ErrorKind::InvalidInput,
        };
        std::io::Error::new(kind, e)
    }
}

/// `fstat(2)`: a character device 10:229.
fn check_fuse_device(fd: BorrowedFd<'_>) -> Result<(), NotFuseDevice> {
    use rustix::fs::FileType;
    let st = rustix::fs::fstat(fd).map_err(|e| NotFuseDevice::Io(e.into()))?;
    let file_type = FileType::from_raw_mode(st.st_mode);
    let rdev = (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev));
    if file_type == FileType::CharacterDevice && rdev == (FUSE_DEV_MAJOR, FUSE_DEV_MINOR) {
        return Ok(());
    }
    Err(NotFuseDevice::Other {
        file_type: file_type.as_raw_mode(),
        rdev: if matches!(file_type, FileType::CharacterDevice | FileType::BlockDevice) {
            rdev
        } else {
            (0, 0)
        },
    })
}
