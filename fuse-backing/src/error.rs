//! The error type: the kernel's errno, which ioctl it came from, and whether it means
//! "unsupported here".

use std::fmt;
use std::io;

use rustix::io::Errno;

use crate::id::BackingType;

/// Which operation failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `FUSE_DEV_IOC_BACKING_OPEN` with this backing type.
    #[doc(alias = "FUSE_DEV_IOC_BACKING_OPEN")]
    BackingOpen(BackingType),
    /// `FUSE_DEV_IOC_BACKING_CLOSE`.
    #[doc(alias = "FUSE_DEV_IOC_BACKING_CLOSE")]
    BackingClose,
    /// `FUSE_DEV_IOC_CLONE`.
    #[doc(alias = "FUSE_DEV_IOC_CLONE")]
    Clone,
    /// `FUSE_DEV_IOC_SYNC_INIT`.
    #[doc(alias = "FUSE_DEV_IOC_SYNC_INIT")]
    SyncInit,
    /// Opening `/dev/fuse` (for [`clone_device`](crate::clone_device)).
    OpenDevice,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::BackingOpen(t) => write!(f, "FUSE_DEV_IOC_BACKING_OPEN ({})", t.name()),
            Operation::BackingClose => f.write_str("FUSE_DEV_IOC_BACKING_CLOSE"),
            Operation::Clone => f.write_str("FUSE_DEV_IOC_CLONE"),
            Operation::SyncInit => f.write_str("FUSE_DEV_IOC_SYNC_INIT"),
            Operation::OpenDevice => f.write_str("open /dev/fuse"),
        }
    }
}

/// Where an error was decided.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// The kernel refused the system call with this errno.
    Kernel,
    /// This crate refused the caller's flags (`EINVAL`) **before** any system call: bits
    /// outside `FUSE_BACKING_FLAGS_ALL`, or bits in the type field, which the kind sets.
    InvalidFlags,
    /// The kernel answered `FUSE_DEV_IOC_BACKING_OPEN` with a value that is not an id
    /// (0, which no kernel should return): `ERANGE`, as libfuse does. Nothing was allocated.
    BadReply,
}

/// An error of one of this crate's operations: the errno (the kernel's, kept as is), the
/// operation, and where it was decided.
///
/// Converts into [`std::io::Error`] (with [`raw_os_error`](io::Error::raw_os_error) set to the
/// errno) and into [`Errno`], so `?` works in functions returning either.
///
/// Use [`Error::is_unsupported`] to tell "this kernel or this connection cannot do it" (fall
/// back to serving the I/O yourself) from a real failure (a bad fd, a directory, an unknown
/// id...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Error {
    op: Operation,
    errno: Errno,
    cause: Cause,
}

impl Error {
    pub(crate) const fn kernel(op: Operation, errno: Errno) -> Error {
        Error {
            op,
            errno,
            cause: Cause::Kernel,
        }
    }

    pub(crate) const fn invalid_flags(op: Operation) -> Error {
        Error {
            op,
            errno: Errno::INVAL,
            cause: Cause::InvalidFlags,
        }
    }

    pub(crate) const fn bad_reply(op: Operation) -> Error {
        Error {
            op,
            errno: Errno::RANGE,
            cause: Cause::BadReply,
        }
    }

    /// The errno.
    pub const fn errno(&self) -> Errno {
        self.errno
    }

    /// The errno as a raw positive number (as in `errno.h`).
    pub const fn raw_os_error(&self) -> i32 {
        self.errno.raw_os_error()
    }

    /// The operation that failed.
    pub const fn operation(&self) -> Operation {
        self.op
    }

    /// Where the error was decided: by the kernel, or by this crate before any system call.
    pub const fn cause(&self) -> Cause {
        self.cause
    }

    /// Whether the error means "this kernel, or this connection, cannot do it" rather than
    /// a mistake in this particular call.
    ///
    /// True for kernel errors that are:
    /// - `ENOTTY`, any operation: the ioctl is unknown (a kernel older than the feature:
    ///   6.9 for BACKING_OPEN/CLOSE, 4.2 for CLONE, 6.18 for SYNC_INIT), or the fd is not a
    ///   `/dev/fuse` fd at all;
    /// - `EOPNOTSUPP`, any operation: a kernel built without `CONFIG_FUSE_PASSTHROUGH`, or a
    ///   backing type the kernel does not know;
    /// - `EPERM` from BACKING_OPEN / BACKING_CLOSE: the fd is not mounted yet, the server did
    ///   not negotiate passthrough (or iomap) in INIT, or the caller lacks `CAP_SYS_ADMIN`;
    /// - `EINVAL` from BACKING_OPEN with [`IomapDevice`](crate::IomapDevice): a mainline
    ///   kernel, which does not know the iomap type field.
    ///
    /// Everything else is a real failure: `EBADF`, `EISDIR`, `EINVAL` for a non-regular
    /// passthrough file, `ELOOP`, `ENOENT` for an unknown id, errors of CLONE and SYNC_INIT
    /// other than `ENOTTY`, and the errors this crate decides itself ([`Cause::InvalidFlags`],
    /// [`Cause::BadReply`]).
    pub fn is_unsupported(&self) -> bool {
        self.cause == Cause::Kernel && meaning(self.op, self.errno).0
    }

    /// A short explanation of the usual cause of this errno for this operation.
    fn hint(&self) -> &'static str {
        match self.cause {
            Cause::InvalidFlags => {
                "flags outside FUSE_BACKING_FLAGS_ALL or in the type field; \
                 rejected before the system call"
            }
            Cause::BadReply => "the kernel returned 0 instead of a backing id",
            Cause::Kernel => meaning(self.op, self.errno).1,
        }
    }
}

/// What the kernel's `errno` means for `op`: whether it says "this kernel or this connection
/// cannot do it" ([`Error::is_unsupported`]), and its usual cause (the hint of the message).
/// The one table of the crate's errno facts.
fn meaning(op: Operation, errno: Errno) -> (bool, &'static str) {
    use Operation::*;
    match (op, errno) {
        (OpenDevice, _) => (false, "/dev/fuse could not be opened"),
        (_, Errno::NOTTY) => (
            true,
            "not a /dev/fuse fd, or the kernel does not know this ioctl",
        ),
        (_, Errno::OPNOTSUPP) => (
            true,
            "kernel without CONFIG_FUSE_PASSTHROUGH, or a backing type it does not know",
        ),
        (BackingOpen(_) | BackingClose, Errno::PERM) => (
            true,
            "device not mounted, passthrough not negotiated in INIT, or no CAP_SYS_ADMIN",
        ),
        (BackingOpen(BackingType::Iomap), Errno::INVAL) => (
            true,
            "this kernel does not know the iomap backing type (mainline)",
        ),
        (BackingOpen(_), Errno::INVAL) => (false, "the backing file is not a regular file"),
        (BackingOpen(_), Errno::BADF) => (false, "the backing fd is not open"),
        (BackingOpen(_), Errno::ISDIR) => (false, "the backing file is a directory"),
        (BackingOpen(_), Errno::LOOP) => (
            false,
            "the backing file's file system is stacked max_stack_depth deep or deeper",
        ),
        (BackingOpen(BackingType::Iomap), Errno::NODEV) => (false, "not a block device"),
        (BackingClose, Errno::INVAL) => (false, "not a valid id (0 or above i32::MAX)"),
        (BackingClose, Errno::NOENT) => {
            (false, "no backing id with this number on this connection")
        }
        (BackingClose, Errno::BUSY) => (false, "iomap inodes still use this device"),
        (Clone, Errno::PERM) => (false, "the session fd is not mounted yet"),
        (Clone, Errno::INVAL) => (
            false,
            "the session fd is not an attached /dev/fuse fd, or the new fd is already attached",
        ),
        (SyncInit, Errno::INVAL) => (false, "the fd is already mounted"),
        _ => (false, ""),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, io::Error::from(self.errno))?;
        match self.hint() {
            "" => Ok(()),
            hint => write!(f, " ({hint})"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    /// An `io::Error` whose `raw_os_error()` is the errno (the operation is not kept).
    fn from(e: Error) -> io::Error {
        io::Error::from_raw_os_error(e.raw_os_error())
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        e.errno
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN_PT: Operation = Operation::BackingOpen(BackingType::Passthrough);
    const OPEN_IOMAP: Operation = Operation::BackingOpen(BackingType::Iomap);

    #[test]
    fn unsupported_classification_per_operation() {
        let unsupported = [
            (OPEN_PT, Errno::NOTTY),
            (OPEN_PT, Errno::PERM),
            (OPEN_PT, Errno::OPNOTSUPP),
            (OPEN_IOMAP, Errno::INVAL),
            (OPEN_IOMAP, Errno::PERM),
            (Operation::BackingClose, Errno::PERM),
            (Operation::Clone, Errno::NOTTY),
            (Operation::SyncInit, Errno::NOTTY),
        ];
        for (op, errno) in unsupported {
            assert!(Error::kernel(op, errno).is_unsupported(), "{op} {errno:?}");
        }
        let failures = [
            (OPEN_PT, Errno::INVAL),
            (OPEN_PT, Errno::BADF),
            (OPEN_PT, Errno::ISDIR),
            (OPEN_PT, Errno::LOOP),
            (OPEN_IOMAP, Errno::NODEV),
            (Operation::BackingClose, Errno::NOENT),
            (Operation::BackingClose, Errno::INVAL),
            (Operation::Clone, Errno::PERM),
            (Operation::Clone, Errno::INVAL),
            (Operation::SyncInit, Errno::INVAL),
            (Operation::OpenDevice, Errno::NOTTY),
        ];
        for (op, errno) in failures {
            assert!(!Error::kernel(op, errno).is_unsupported(), "{op} {errno:?}");
        }
        assert!(!Error::invalid_flags(OPEN_IOMAP).is_unsupported());
        assert!(!Error::bad_reply(OPEN_PT).is_unsupported());
    }

    #[test]
    fn conversions_keep_the_errno() {
        let e = Error::kernel(OPEN_PT, Errno::ISDIR);
        assert_eq!(io::Error::from(e).raw_os_error(), Some(21));
        assert_eq!(Errno::from(e), Errno::ISDIR);
        assert_eq!(Error::bad_reply(OPEN_PT).raw_os_error(), 34);
        assert_eq!(Error::invalid_flags(OPEN_PT).raw_os_error(), 22);
        assert_eq!(Error::invalid_flags(OPEN_PT).cause(), Cause::InvalidFlags);
    }

    #[test]
    fn display_names_the_ioctl_and_the_cause() {
        let text = Error::kernel(OPEN_IOMAP, Errno::INVAL).to_string();
        assert!(
            text.starts_with("FUSE_DEV_IOC_BACKING_OPEN (iomap): "),
            "{text}"
        );
        assert!(text.contains("mainline"), "{text}");
    }
}
