//! [`Error`]: why a session could not start or ended early.

use std::fmt;
use std::io;

use rustix::io::Errno;

/// Why [`Session::serve`](crate::Session::serve) (or mounting) failed. Every variant says
/// which step failed; the connection is aborted (so that no caller waits on a server that is
/// gone) and the session's own mount unmounted before the error is returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// Mounting failed (see [`fuse_dev::MountError`]: the mount point, permissions).
    Mount(fuse_dev::MountError),
    /// Reading or answering the kernel's INIT failed (the device is not a mounted
    /// `/dev/fuse`, or the connection went away first).
    Handshake(fuse_dev::HandshakeError),
    /// The handler's [`InitConfig`](fuse_wire::InitConfig) asks for something the kernel
    /// does not offer (or for an older protocol than the kernel's minimum): INIT was refused
    /// with this error's errno and the mount is dead.
    InitRefused(fuse_wire::InitError),
    /// [`Transport::Uring`](crate::Transport::Uring) was asked for and cannot be had: the
    /// text says why (the kernel does not offer it, a ring or a queue's buffers could not be
    /// set up). Nothing was agreed with the kernel: INIT was refused.
    UringUnavailable(String),
    /// An io_uring queue failed after INIT (its REGISTER or a COMMIT_AND_FETCH was refused,
    /// or its thread could not be started). The kernel routes requests to every queue once
    /// the first registers, so the connection was aborted.
    Queue {
        /// The queue (its CPU).
        qid: u16,
        /// What failed.
        error: io::Error,
    },
    /// Reading a request from, or answering on, `/dev/fuse` failed with something else than
    /// the end of the connection.
    Channel(fuse_dev::ChannelError),
    /// Another system call failed: cloning the device fd (`CLONE`), creating an eventfd,
    /// starting a thread. The text names the step.
    Io {
        /// What was being done.
        what: &'static str,
        /// The error.
        error: io::Error,
    },
}

impl Error {
    /// The errno closest to this error, for servers that exit with one.
    pub fn errno(&self) -> Errno {
        match self {
            Error::Mount(e) => e.errno().unwrap_or(Errno::IO),
            Error::Handshake(e) => e.errno(),
            Error::InitRefused(e) => e.errno(),
            Error::UringUnavailable(_) => Errno::OPNOTSUPP,
            Error::Queue { error, .. } | Error::Io { error, .. } => error
                .raw_os_error()
                .map_or(Errno::IO, Errno::from_raw_os_error),
            Error::Channel(e) => e.errno(),
        }
    }

    pub(crate) fn io(what: &'static str, error: impl Into<io::Error>) -> Error {
        Error::Io {
            what,
            error: error.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Mount(e) => write!(f, "mount: {e}"),
            Error::Handshake(e) => write!(f, "INIT: {e}"),
            Error::InitRefused(e) => write!(f, "INIT refused: {e}"),
            Error::UringUnavailable(why) => write!(f, "FUSE-over-io_uring unavailable: {why}"),
            Error::Queue { qid, error } => write!(f, "io_uring queue {qid}: {error}"),
            Error::Channel(e) => write!(f, "/dev/fuse: {e}"),
            Error::Io { what, error } => write!(f, "{what}: {error}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Mount(e) => Some(e),
            Error::Handshake(e) => Some(e),
            Error::InitRefused(e) => Some(e),
            Error::UringUnavailable(_) => None,
            Error::Queue { error, .. } | Error::Io { error, .. } => Some(error),
            Error::Channel(e) => Some(e),
        }
    }
}

impl From<fuse_dev::MountError> for Error {
    fn from(e: fuse_dev::MountError) -> Error {
        Error::Mount(e)
    }
}

impl From<fuse_dev::HandshakeError> for Error {
    fn from(e: fuse_dev::HandshakeError) -> Error {
        Error::Handshake(e)
    }
}

impl From<fuse_dev::ChannelError> for Error {
    fn from(e: fuse_dev::ChannelError) -> Error {
        Error::Channel(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        io::Error::from_raw_os_error(e.errno().raw_os_error())
    }
}
