//! Error types: [`MountError`] (mounting, unmounting, mount checks), [`ChannelError`]
//! (reading and writing `/dev/fuse`) and [`HandshakeError`] (INIT).

use std::fmt;
use std::io;
use std::path::PathBuf;

use rustix::io::Errno;

/// Why mounting, unmounting or a mount check failed.
///
/// Every variant says what to fix in its `Display` text; [`MountError::errno`] gives the
/// errno where one exists (the kernel's, kept as is; `EINVAL` for refused options).
#[non_exhaustive]
#[derive(Debug)]
pub enum MountError {
    /// A [`MountOptions`](crate::MountOptions) value was refused before any syscall.
    InvalidOption {
        /// The option (`"fsname"`, `"subtype"`, `"rootmode"`, `"blksize"`, `"user_id"`...).
        option: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// A path could not be resolved or inspected (`canonicalize`, `statx`).
    Path {
        /// The path as given.
        path: PathBuf,
        /// The errno (`ENOENT`, `EACCES`, `ENOTDIR`, `ELOOP`...).
        errno: Errno,
    },
    /// The mount point is not a directory (and the root mode asks for one).
    NotADirectory {
        /// The canonical mount point.
        path: PathBuf,
    },
    /// The mount point is a symbolic link, or its path passes through one. Mounting follows
    /// no symlink (one could be swapped in between the checks and the mount, and the mount
    /// would land on another directory): give the path without symlinks (`realpath`).
    Symlink {
        /// The mount point as given.
        path: PathBuf,
    },
    /// The mount point directory has entries, which the mount would hide, and
    /// [`MountOptions::allow_nonempty`](crate::MountOptions::allow_nonempty) was not set.
    NotEmpty {
        /// The mount point (absolute, as checked).
        path: PathBuf,
    },
    /// The mount point already is the root of a mount: mounting would stack on top of it.
    AlreadyMounted {
        /// The canonical mount point.
        path: PathBuf,
    },
    /// `mount(2)` failed: `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` for an option the kernel
    /// refuses, `ENODEV` without the fuse module, `EBUSY`...
    Mount {
        /// The canonical mount point.
        path: PathBuf,
        /// The kernel's errno.
        errno: Errno,
    },
    /// `umount2(2)` failed (`EPERM` without `CAP_SYS_ADMIN`, `EINVAL`...).
    Unmount {
        /// The mount point.
        path: PathBuf,
        /// The kernel's errno.
        errno: Errno,
    },
    /// No `fusermount3` program: neither on `PATH` nor in the usual directories.
    FusermountNotFound {
        /// Every place looked at.
        searched: Vec<PathBuf>,
    },
    /// `fusermount3` exists but is not set-user-ID root, so it cannot mount for an
    /// unprivileged user.
    FusermountNotSetuid {
        /// The program found.
        program: PathBuf,
    },
    /// Starting `fusermount3` or talking to it failed (`fork`/`exec`, `socketpair`,
    /// `recvmsg`).
    FusermountIo {
        /// The program.
        program: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// `fusermount3` ended without doing the job (no fd passed when mounting, or a failed
    /// exit status when unmounting); its standard error is kept.
    Fusermount {
        /// The program.
        program: PathBuf,
        /// Its exit code (`None`: killed by a signal, or still running).
        status: Option<i32>,
        /// What it printed on standard error, trimmed.
        stderr: String,
    },
}

impl MountError {
    /// The errno behind this error, when there is one: the kernel's for [`MountError::Path`],
    /// [`MountError::Mount`], [`MountError::Unmount`]; `EINVAL` for refused options;
    /// `EBUSY` for [`MountError::AlreadyMounted`]; `ENOTDIR` for
    /// [`MountError::NotADirectory`]; `ELOOP` for [`MountError::Symlink`]; `ENOTEMPTY` for
    /// [`MountError::NotEmpty`]; `ENOENT` when `fusermount3` is missing; `EPERM` when
    /// it is not setuid.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            MountError::InvalidOption { .. } => Some(Errno::INVAL),
            MountError::Path { errno, .. }
            | MountError::Mount { errno, .. }
            | MountError::Unmount { errno, .. } => Some(*errno),
            MountError::NotADirectory { .. } => Some(Errno::NOTDIR),
            MountError::Symlink { .. } => Some(Errno::LOOP),
            MountError::NotEmpty { .. } => Some(Errno::NOTEMPTY),
            MountError::AlreadyMounted { .. } => Some(Errno::BUSY),
            MountError::FusermountNotFound { .. } => Some(Errno::NOENT),
            MountError::FusermountNotSetuid { .. } => Some(Errno::PERM),
            MountError::FusermountIo { error, .. } => {
                error.raw_os_error().map(Errno::from_raw_os_error)
            }
            MountError::Fusermount { .. } => None,
        }
    }
}

impl fmt::Display for MountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MountError::InvalidOption { option, reason } => {
                write!(f, "mount option {option}: {reason}")
            }
            MountError::Path { path, errno } => write!(f, "{}: {errno}", path.display()),
            MountError::NotADirectory { path } => {
                write!(f, "mount point {} is not a directory", path.display())
            }
            MountError::Symlink { path } => write!(
                f,
                "mount point {} is a symbolic link or passes through one; mounting follows no \
                 symlink: give the real path (realpath {})",
                path.display(),
                path.display()
            ),
            MountError::NotEmpty { path } => write!(
                f,
                "mount point {} is not empty and mounting would hide its entries; empty it, \
                 choose another directory, or allow it (MountOptions::allow_nonempty)",
                path.display()
            ),
            MountError::AlreadyMounted { path } => write!(
                f,
                "{} is already a mount point; unmount it first or choose another directory",
                path.display()
            ),
            MountError::Mount { path, errno } => {
                write!(f, "mount(2) on {}: {errno}", path.display())?;
                match *errno {
                    Errno::PERM => f.write_str(
                        " (needs CAP_SYS_ADMIN: run as root, or mount through fusermount3)",
                    ),
                    Errno::NODEV => f.write_str(" (the fuse module is not loaded: modprobe fuse)"),
                    _ => Ok(()),
                }
            }
            MountError::Unmount { path, errno } => {
                write!(f, "umount2(2) of {}: {errno}", path.display())
            }
            MountError::FusermountNotFound { searched } => {
                f.write_str("fusermount3 not found (looked at")?;
                for (i, p) in searched.iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { " " } else { ", " }, p.display())?;
                }
                f.write_str(
                    "); install it: apt-get install fuse3 (Debian/Ubuntu), dnf install fuse3",
                )
            }
            MountError::FusermountNotSetuid { program } => write!(
                f,
                "{} is not set-user-ID root, so it cannot mount for this user; as root: chown root {} && chmod u+s {}",
                program.display(),
                program.display(),
                program.display()
            ),
            MountError::FusermountIo { program, error } => {
                write!(f, "running {}: {error}", program.display())
            }
            MountError::Fusermount {
                program,
                status,
                stderr,
            } => {
                write!(f, "{} failed", program.display())?;
                match status {
                    Some(code) => write!(f, " (exit status {code})")?,
                    None => f.write_str(" (no exit status)")?,
                }
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for MountError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MountError::FusermountIo { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<MountError> for io::Error {
    fn from(e: MountError) -> io::Error {
        match e.errno() {
            Some(errno) => io::Error::new(io::Error::from(errno).kind(), e),
            None => io::Error::other(e),
        }
    }
}

/// Why reading or writing the `/dev/fuse` channel failed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The caller's read buffer is smaller than the kernel accepts: `read(2)` would fail with
    /// `EINVAL`. `need` is the size to allocate (checked before the syscall).
    BufferTooSmall {
        /// The smallest buffer the kernel accepts now, bytes.
        need: usize,
        /// The buffer given, bytes.
        have: usize,
    },
    /// The kernel returned fewer bytes than a request header, or a header whose length does
    /// not match what was read (a kernel bug or a fd that is not `/dev/fuse`).
    Malformed {
        /// Bytes read.
        read: usize,
        /// The length the header claims (0 if there was no header).
        claimed: u32,
    },
    /// A reply or notification is larger than `u32::MAX` bytes, or has more parts than
    /// [`MAX_PARTS`](crate::MAX_PARTS).
    TooLarge,
    /// The kernel refused the syscall with this errno (`EINVAL` for a malformed reply,
    /// `EBADF`, `EFAULT`, ...; `ENOENT` of a notification).
    Kernel(Errno),
}

impl ChannelError {
    /// The errno: the kernel's for [`ChannelError::Kernel`], `EINVAL` for
    /// [`ChannelError::BufferTooSmall`] (what the kernel would have said), `EIO` for
    /// [`ChannelError::Malformed`], `E2BIG` for [`ChannelError::TooLarge`].
    pub fn errno(&self) -> Errno {
        match self {
            ChannelError::BufferTooSmall { .. } => Errno::INVAL,
            ChannelError::Malformed { .. } => Errno::IO,
            ChannelError::TooLarge => Errno::TOOBIG,
            ChannelError::Kernel(e) => *e,
        }
    }
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelError::BufferTooSmall { need, have } => write!(
                f,
                "/dev/fuse read buffer of {have} bytes is too small: the kernel needs at least {need} \
                 (max(8192, 80 + max_write); fuse_wire::Negotiated::read_buffer_size())"
            ),
            ChannelError::Malformed { read, claimed } => write!(
                f,
                "malformed request from /dev/fuse: read {read} bytes, header says {claimed}"
            ),
            ChannelError::TooLarge => f.write_str("reply too large or in too many parts"),
            ChannelError::Kernel(e) => write!(f, "/dev/fuse: {e}"),
        }
    }
}

impl std::error::Error for ChannelError {}

impl From<ChannelError> for io::Error {
    fn from(e: ChannelError) -> io::Error {
        io::Error::new(io::Error::from(e.errno()).kind(), e)
    }
}

/// Why the INIT handshake failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum HandshakeError {
    /// Reading or writing the channel failed.
    Channel(ChannelError),
    /// The connection ended before INIT came (`ENODEV`: unmounted or aborted).
    Closed,
    /// The first request was not INIT (a kernel bug, or a device already past INIT).
    NotInit {
        /// The opcode that came.
        opcode: u32,
    },
    /// INIT's bytes could not be decoded.
    Decode(fuse_wire::DecodeError),
    /// The kernel speaks a protocol we do not serve; INIT was answered with the errno
    /// (`EPROTO`).
    Refused(fuse_wire::InitError),
}

impl HandshakeError {
    /// The errno: the channel's, `ENODEV` for [`HandshakeError::Closed`], `EPROTO` for a
    /// request that is not INIT or a refused protocol, the decoder's for a malformed INIT.
    pub fn errno(&self) -> Errno {
        match self {
            HandshakeError::Channel(e) => e.errno(),
            HandshakeError::Closed => Errno::NODEV,
            HandshakeError::NotInit { .. } => Errno::PROTO,
            HandshakeError::Decode(e) => e.errno(),
            HandshakeError::Refused(e) => e.errno(),
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Channel(e) => write!(f, "INIT: {e}"),
            HandshakeError::Closed => f.write_str("the connection ended before INIT"),
            HandshakeError::NotInit { opcode } => {
                write!(f, "expected INIT as the first request, got opcode {opcode}")
            }
            HandshakeError::Decode(e) => write!(f, "malformed INIT: {e}"),
            HandshakeError::Refused(e) => write!(f, "INIT refused: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Channel(e) => Some(e),
            HandshakeError::Decode(e) => Some(e),
            HandshakeError::Refused(e) => Some(e),
            _ => None,
        }
    }
}

impl From<ChannelError> for HandshakeError {
    fn from(e: ChannelError) -> HandshakeError {
        HandshakeError::Channel(e)
    }
}

impl From<HandshakeError> for io::Error {
    fn from(e: HandshakeError) -> io::Error {
        io::Error::new(io::Error::from(e.errno()).kind(), e)
    }
}
