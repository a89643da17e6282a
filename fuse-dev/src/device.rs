//! [`Device`]: an owned `/dev/fuse` fd.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

/// The path of the FUSE character device.
pub const DEVICE_PATH: &str = "/dev/fuse";

/// An open `/dev/fuse` file descriptor, owned (closed on drop).
///
/// A fresh `Device` belongs to no connection: mounting it ([`Mount::new`](crate::Mount::new))
/// creates the connection, after which the kernel queues requests on it, starting with INIT.
/// When the last fd of a connection is closed the kernel aborts the connection (pending and
/// future requests of the mount fail with `ENOTCONN`).
pub struct Device {
    fd: OwnedFd,
}

impl Device {
    /// Opens `/dev/fuse` read-write and close-on-exec (`open(2)`: one syscall, no allocation).
    ///
    /// # Errors
    ///
    /// - `ENOENT`: no device node (`mknod /dev/fuse c 10 229`, or the module is not loaded:
    ///   `modprobe fuse`);
    /// - `ENODEV`: the node exists but the fuse module is not loaded;
    /// - `EACCES`/`EPERM`: the node's mode forbids it (it is normally 0666), or a container
    ///   policy denies the device.
    pub fn open() -> Result<Device, Errno> {
        let fd = rustix::fs::open(DEVICE_PATH, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())?;
        Ok(Device { fd })
    }

    /// Wraps an fd that the caller knows to be a `/dev/fuse` fd (for example one received
    /// from `fusermount3`, or inherited from a parent). Nothing is checked here; a wrong fd
    /// makes later reads and ioctls fail (`EINVAL`, `ENOTTY`).
    pub fn from_fd(fd: OwnedFd) -> Device {
        Device { fd }
    }

    /// Checks that `fd` is an open `/dev/fuse`: a character device with the device number of
    /// [`DEVICE_PATH`] (two `fstat`/`stat` calls, no allocation beyond the path). Use it on
    /// fds received from elsewhere before [`Device::from_fd`]: other character devices accept
    /// some of the same calls (`/dev/null` completes io_uring commands with 0, for example)
    /// and fail only later, or not at all.
    ///
    /// # Errors
    ///
    /// `ENODEV` when `fd` is something else; the errno of `fstat` (`EBADF`) or of
    /// `stat("/dev/fuse")` (`ENOENT` without the device node).
    pub fn check(fd: BorrowedFd<'_>) -> Result<(), Errno> {
        let theirs = rustix::fs::fstat(fd)?;
        let ours = rustix::fs::stat(DEVICE_PATH)?;
        let is_char = |st: &rustix::fs::Stat| {
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::CharacterDevice
        };
        if is_char(&theirs) && is_char(&ours) && theirs.st_rdev == ours.st_rdev {
            Ok(())
        } else {
            Err(Errno::NODEV)
        }
    }

    /// Opens a second fd on the same connection (not a `dup`: a new open file of
    /// `/dev/fuse`, attached to this one's connection): `open("/dev/fuse")` plus
    /// `ioctl(FUSE_DEV_IOC_CLONE)` through [`fuse_backing::clone_device`] (two syscalls, no
    /// allocation). Give each worker thread its own clone: each request is read by exactly
    /// one fd and must be answered on the fd it was read from. Linux 4.2.
    ///
    /// # Errors
    ///
    /// Those of [`fuse_backing::clone_device`]: `EPERM` when this device is not mounted yet
    /// (observed on 6.18), `EINVAL` when it is not a `/dev/fuse` fd, `ENOTTY` before 4.2,
    /// and the errors of opening `/dev/fuse`.
    pub fn try_clone(&self) -> Result<Device, fuse_backing::Error> {
        Ok(Device {
            fd: fuse_backing::clone_device(self.fd.as_fd())?,
        })
    }

    /// Gives up ownership of the fd.
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }
}

impl AsFd for Device {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Device {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl IntoRawFd for Device {
    fn into_raw_fd(self) -> RawFd {
        self.fd.into_raw_fd()
    }
}

impl From<OwnedFd> for Device {
    fn from(fd: OwnedFd) -> Device {
        Device { fd }
    }
}

impl From<Device> for OwnedFd {
    fn from(dev: Device) -> OwnedFd {
        dev.fd
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Device")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}
