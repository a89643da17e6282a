//! The crate's error types.

use std::fmt;
use std::io;

use rustix::io::Errno;

use crate::command::Command;
use crate::setup::ENABLE_URING_PARAM;

/// A REGISTER or COMMIT_AND_FETCH command that the kernel completed with an error (a negative
/// `res` in the CQE). The kernel's errno is kept as is.
///
/// What the errno values mean (Linux 6.14 – 7.3, `fs/fuse/dev_uring.c`):
///
/// | errno | command | meaning |
/// |---|---|---|
/// | `ENOTCONN` | both | the connection was unmounted or aborted (every armed entry completes with it at teardown), or the ring was closed; on 6.14–6.17 also "fd not attached to a connection" |
/// | `ECONNABORTED` | both | the connection was aborted (fusectl `abort`) |
/// | `ECANCELED` | both | the task that owns the ring is exiting |
/// | `EOPNOTSUPP` | both | FUSE-over-io_uring is off (`/sys/module/fuse/parameters/enable_uring`), the kernel predates it (6.14) or lacks `CONFIG_FUSE_IO_URING`, or the fd is not `/dev/fuse`; on 7.2 and 7.3 also every command after one REGISTER of the connection failed (6.18 checks each command as usual) |
/// | `EPERM` | both | the fd is a `/dev/fuse` fd not attached to a connection (6.18) |
/// | `EAGAIN` | both | the INIT reply has not been processed yet |
/// | `EINVAL` | REGISTER | `qid` >= number of possible CPUs, payload buffer smaller than the negotiated maximum payload, or the ring was not set up with `IORING_SETUP_SQE128` |
/// | `EINVAL` | COMMIT_AND_FETCH | `qid` >= number of possible CPUs, or no SQE128 ring |
/// | `ENOENT` | COMMIT_AND_FETCH | the commit id names no request of this queue (for example an entry that never received one) |
/// | `EFAULT`, `ENOMEM`, `EIO` | both | bad buffer address, kernel allocation failure, entry in the wrong state |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CmdError {
    command: Command,
    errno: Errno,
}

impl CmdError {
    /// Wraps an errno returned for `command`.
    pub fn new(command: Command, errno: Errno) -> CmdError {
        CmdError { command, errno }
    }

    /// The command that failed.
    pub fn command(&self) -> Command {
        self.command
    }

    /// The kernel's errno.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// The kernel's errno as a positive integer.
    pub fn raw_os_error(&self) -> i32 {
        self.errno.raw_os_error()
    }

    /// The connection is gone (`ENOTCONN`, `ECONNABORTED`) or the ring's task is exiting
    /// (`ECANCELED`): the normal way every entry comes back at unmount. The entry will not be
    /// used by the kernel again.
    pub fn is_shutdown(&self) -> bool {
        matches!(
            self.errno,
            Errno::NOTCONN | Errno::CONNABORTED | Errno::CANCELED
        )
    }

    /// `EOPNOTSUPP`: FUSE-over-io_uring is not available for this fd (see the type docs).
    pub fn is_uring_unavailable(&self) -> bool {
        self.errno == Errno::OPNOTSUPP
    }

    /// `ENOENT` on COMMIT_AND_FETCH: the commit id names no request of the queue.
    pub fn is_unknown_commit_id(&self) -> bool {
        self.command == Command::CommitAndFetch && self.errno == Errno::NOENT
    }

    fn explanation(&self) -> &'static str {
        match (self.errno, self.command) {
            (Errno::NOTCONN, _) => {
                "the FUSE connection is gone (unmounted or aborted) or the ring was closed"
            }
            (Errno::CONNABORTED, _) => "the FUSE connection was aborted",
            (Errno::CANCELED, _) => "the task that owns the ring is exiting",
            (Errno::OPNOTSUPP, _) => {
                "FUSE-over-io_uring is not available: it needs Linux 6.14 or later built with \
                 CONFIG_FUSE_IO_URING, `echo Y > /sys/module/fuse/parameters/enable_uring`, \
                 FUSE_OVER_IO_URING accepted in the INIT reply, and a /dev/fuse fd"
            }
            (Errno::PERM, Command::AddQueue) => "zero-copy queues need CAP_SYS_ADMIN",
            (Errno::PERM, _) => "the /dev/fuse fd is not attached to a mounted connection",
            (Errno::AGAIN, _) => "the INIT reply has not been processed yet",
            (Errno::INVAL, Command::Register) => {
                "REGISTER rejected: qid out of range (>= number of possible CPUs), payload buffer \
                 smaller than the negotiated maximum payload, or the ring lacks IORING_SETUP_SQE128; \
                 on a pool queue (7.46): a payload iovec that is not empty, or a missing or wrong \
                 IORING_URING_CMD_FIXED/buf_index; a zero-copy queue without a pool, or a \
                 zero-copy slot on a queue without zero-copy"
            }
            (Errno::INVAL, Command::CommitAndFetch) => {
                "COMMIT_AND_FETCH rejected: qid out of range, the ring lacks IORING_SETUP_SQE128, \
                 or (7.46, registered pool) a missing or wrong IORING_URING_CMD_FIXED/buf_index"
            }
            (Errno::INVAL, Command::AddQueue) => {
                "ADD_QUEUE rejected: qid out of range, unknown flags, or a kernel before 7.46 \
                 (Linux 7.3), which does not know the command"
            }
            (Errno::EXIST, Command::AddQueue) => {
                "ADD_QUEUE rejected: the queue exists (added before, or created by a REGISTER)"
            }
            (Errno::INVAL, Command::AddBufpool) => {
                "ADD_BUFPOOL rejected: no such queue (ADD_QUEUE first), the queue already has a \
                 pool or a REGISTERed entry, flags or reserved not 0, a pool smaller than one \
                 buffer, or a kernel before 7.46"
            }
            (Errno::NOENT, Command::CommitAndFetch) => {
                "unknown commit id: no request with this id is waiting for a reply on this queue"
            }
            (Errno::FAULT, _) => "the kernel could not access the entry's buffers",
            (Errno::NOMEM, _) => "the kernel is out of memory",
            (Errno::IO, _) => "the kernel found the ring entry in an unexpected state",
            _ => "unexpected error",
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed with {}: {}",
            self.command,
            io::Error::from_raw_os_error(self.errno.raw_os_error()),
            self.explanation()
        )?;
        if self.errno == Errno::OPNOTSUPP {
            write!(f, " (knob: {ENABLE_URING_PARAM})")?;
        }
        Ok(())
    }
}

impl std::error::Error for CmdError {}

impl From<CmdError> for io::Error {
    /// Keeps the kind of the kernel's errno and the explanation; the errno itself is available
    /// through [`CmdError::errno`] on the inner error.
    fn from(e: CmdError) -> io::Error {
        io::Error::new(io::Error::from(e.errno).kind(), e)
    }
}

/// Why a queue's buffers could not be laid out or mapped. Size problems are found before any
/// system call.
#[derive(Debug)]
#[non_exhaustive]
pub enum BufferError {
    /// A queue needs at least one entry.
    ZeroDepth,
    /// The payload buffer is smaller than the kernel's minimum
    /// ([`FUSE_MIN_READ_BUFFER`](fuse_kernel_sys::FUSE_MIN_READ_BUFFER), 8192 bytes).
    PayloadTooSmall {
        /// The requested payload size.
        requested: usize,
        /// The smallest size the kernel can accept.
        minimum: usize,
    },
    /// The payload buffer is larger than `fuse_uring_ent_in_out.payload_sz` (a `u32`) can
    /// describe.
    PayloadTooLarge {
        /// The requested payload size.
        requested: usize,
        /// The largest size this crate accepts.
        maximum: usize,
    },
    /// `depth` entries of this size do not fit in the address space (arithmetic overflow).
    TooLarge {
        /// The requested number of entries.
        depth: u32,
        /// The requested payload size.
        payload_size: usize,
    },
    /// The payload region is too large to be one pool: `fuse_uring_cmd_req.bufpool.len` is a
    /// `u32` (4 GiB).
    PoolTooLarge {
        /// The region's length.
        len: usize,
    },
    /// The page size is not a power of two of at least 4096 (only from [`Layout::new`](crate::Layout::new)
    /// with a caller-supplied page size).
    BadPageSize(usize),
    /// `mmap(2)` failed (typically `ENOMEM`).
    Map(io::Error),
    /// `madvise(2)` failed: `MADV_HUGEPAGE` (`EINVAL` without transparent huge pages) or
    /// `MADV_POPULATE_WRITE` (`EINVAL` before Linux 5.14, `ENOMEM`/`EFAULT` when memory runs
    /// out). The mapping was released again.
    Advise {
        /// `"MADV_HUGEPAGE"` or `"MADV_POPULATE_WRITE"`.
        advice: &'static str,
        /// The error of `madvise(2)`.
        error: io::Error,
    },
}

impl fmt::Display for BufferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BufferError::ZeroDepth => f.write_str("a FUSE io_uring queue needs at least one entry"),
            BufferError::PayloadTooSmall { requested, minimum } => write!(
                f,
                "payload buffer of {requested} bytes is below the kernel minimum of {minimum} \
                 bytes (FUSE_MIN_READ_BUFFER)"
            ),
            BufferError::PayloadTooLarge { requested, maximum } => write!(
                f,
                "payload buffer of {requested} bytes exceeds the maximum of {maximum} bytes"
            ),
            BufferError::TooLarge {
                depth,
                payload_size,
            } => write!(
                f,
                "{depth} entries with {payload_size}-byte payloads do not fit in the address space"
            ),
            BufferError::PoolTooLarge { len } => write!(
                f,
                "a {len}-byte payload region is too large for one buffer pool (at most 4 GiB)"
            ),
            BufferError::BadPageSize(p) => {
                write!(f, "page size {p} is not a power of two of at least 4096")
            }
            BufferError::Map(e) => write!(f, "mmap of the entry buffers failed: {e}"),
            BufferError::Advise { advice, error } => {
                write!(f, "madvise({advice}) of the entry buffers failed: {error}")
            }
        }
    }
}

impl std::error::Error for BufferError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BufferError::Map(e) | BufferError::Advise { error: e, .. } => Some(e),
            _ => None,
        }
    }
}

impl From<BufferError> for io::Error {
    fn from(e: BufferError) -> io::Error {
        let kind = match &e {
            BufferError::Map(inner) | BufferError::Advise { error: inner, .. } => inner.kind(),
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// A reply that cannot be written into an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyError {
    /// The reply payload does not fit in the entry's payload buffer.
    TooLong {
        /// The reply's length.
        len: usize,
        /// The payload buffer's size.
        capacity: usize,
    },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::TooLong { len, capacity } => write!(
                f,
                "reply of {len} bytes does not fit in the {capacity}-byte payload buffer"
            ),
        }
    }
}

impl std::error::Error for ReplyError {}

impl From<ReplyError> for io::Error {
    fn from(e: ReplyError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup::Unsupported;

    #[test]
    fn messages_name_the_enable_uring_knob() {
        let e = CmdError::new(Command::Register, Errno::OPNOTSUPP);
        assert!(e.is_uring_unavailable());
        assert!(!e.is_shutdown());
        let text = e.to_string();
        assert!(
            text.contains("/sys/module/fuse/parameters/enable_uring"),
            "{text}"
        );
        assert!(
            text.starts_with("FUSE_IO_URING_CMD_REGISTER failed"),
            "{text}"
        );
        let text = Unsupported::Disabled.to_string();
        assert!(
            text.contains("echo Y > /sys/module/fuse/parameters/enable_uring"),
            "{text}"
        );
        let text = Unsupported::KernelTooOld { minor: 41 }.to_string();
        assert!(
            text.contains("7.41") && text.contains("7.42 (Linux 6.14)"),
            "{text}"
        );
        assert!(
            Unsupported::NotBuilt
                .to_string()
                .contains("CONFIG_FUSE_IO_URING")
        );
    }

    #[test]
    fn classification_keeps_the_errno() {
        let gone = CmdError::new(Command::CommitAndFetch, Errno::NOTCONN);
        assert!(gone.is_shutdown());
        assert_eq!(gone.raw_os_error(), libc::ENOTCONN);
        assert!(CmdError::new(Command::Register, Errno::CANCELED).is_shutdown());
        assert!(CmdError::new(Command::Register, Errno::CONNABORTED).is_shutdown());
        assert!(CmdError::new(Command::CommitAndFetch, Errno::NOENT).is_unknown_commit_id());
        assert!(!CmdError::new(Command::Register, Errno::NOENT).is_unknown_commit_id());
        let io: io::Error = CmdError::new(Command::Register, Errno::INVAL).into();
        assert_eq!(io.kind(), io::ErrorKind::InvalidInput);
        assert!(io.to_string().contains("qid out of range"));
        assert_eq!(
            Command::Register.cmd_op(),
            fuse_kernel_sys::FUSE_IO_URING_CMD_REGISTER
        );
        assert_eq!(
            Command::CommitAndFetch.cmd_op(),
            fuse_kernel_sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH
        );
    }

    #[test]
    fn buffer_errors_convert_to_io_errors() {
        let e: io::Error = BufferError::ZeroDepth.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e: io::Error = BufferError::Map(io::Error::from_raw_os_error(libc::ENOMEM)).into();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        let e: io::Error = ReplyError::TooLong {
            len: 2,
            capacity: 1,
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
