//! INIT negotiation: from the kernel's `fuse_init_in` and the server's wishes to the
//! `fuse_init_out` reply, and from the result the buffer sizes both transports need.
//!
//! The kernel sends INIT first on every connection, with the newest protocol minor it speaks
//! and every feature flag it offers. The server answers with the minor both speak and the
//! flags it accepts (a subset of the offered ones). Until that reply, no other request comes.

use core::fmt;

use fuse_kernel_sys as sys;
use sys::zerocopy::{FromBytes, IntoBytes};

use crate::Errno;
use crate::decode_error::DecodeError;
use crate::init_flags;
use crate::request::Protocol;

/// The oldest kernel protocol minor this crate serves: 7.36 (Linux 5.17), the first with the
/// 64-byte `fuse_init_in` and its second flags word (`flags2`, `FUSE_INIT_EXT`).
///
/// Older kernels get [`InitError::MinorTooOld`], whose errno (`EPROTO`) the server writes as
/// the INIT reply: the kernel then fails the connection and `mount` callers see an error.
/// The kernel matrix of this workspace tests from Linux 6.1 (7.38) up.
pub const MIN_KERNEL_MINOR: u32 = 36;

/// The kernel's page size assumed when none is given: the sizes computed from a negotiation
/// use the running system's page size (`rustix::param::page_size`).
fn page_size() -> usize {
    rustix::param::page_size()
}

/// The kernel's default `max_pages` when the INIT reply does not negotiate `FUSE_MAX_PAGES`.
pub const KERNEL_DEFAULT_MAX_PAGES: u16 = 32;

/// The largest `max_stack_depth` the kernel accepts with passthrough
/// (`FILESYSTEM_MAX_STACK_DEPTH`).
pub const MAX_STACK_DEPTH: u32 = 2;

/// The kernel's INIT request, decoded.
///
/// `flags` merges `flags` and, when the kernel sets `FUSE_INIT_EXT`, `flags2 << 32`: test
/// the flags of [`init_flags`] against it, or ask [`KernelInit::offers`].
/// This is what `fuse_dev::Channel::read_init` hands back (`InitRequest::kernel`) and what
/// `fuse_uring::check_init` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelInit {
    /// Protocol major version (7 for every kernel so far).
    pub major: u32,
    /// The newest protocol minor the kernel speaks.
    pub minor: u32,
    /// The kernel's readahead limit in bytes.
    pub max_readahead: u32,
    /// Every flag the kernel offers, as 64 bits ([`init_flags`]).
    pub flags: u64,
}

impl KernelInit {
    /// Decodes INIT's argument (`fuse_init_in`; the bytes after the request header).
    ///
    /// Accepts the 16-byte form of kernels before 7.36 (no `flags2`) so that they can be
    /// refused properly by [`negotiate`]. Fails with [`DecodeErrorKind::Short`](crate::DecodeErrorKind::Short) below 16 bytes.
    pub fn parse(arg: &[u8]) -> Result<KernelInit, DecodeError> {
        // The part of `fuse_init_in` every kernel sends: major, minor, max_readahead, flags.
        let ([major, minor, max_readahead, flags32], rest) = <[u32; 4]>::read_from_prefix(arg)
            .map_err(|_| DecodeError::short("fuse_init_in", 16, arg.len()))?;
        let mut flags = u64::from(flags32);
        if flags32 & sys::FUSE_INIT_EXT != 0 {
            // flags2 directly follows flags.
            if let Ok((flags2, _)) = u32::read_from_prefix(rest) {
                flags |= u64::from(flags2) << 32;
            }
        }
        Ok(KernelInit {
            major,
            minor,
            max_readahead,
            flags,
        })
    }

    /// The request as the kernel's struct (`flags2` filled from bits 32..63; the fields this
    /// type does not keep are 0), for APIs that take a `fuse_init_in`.
    pub fn to_init_in(&self) -> sys::fuse_init_in {
        sys::fuse_init_in {
            major: self.major,
            minor: self.minor,
            max_readahead: self.max_readahead,
            flags: self.flags as u32,
            flags2: (self.flags >> 32) as u32,
            ..Default::default()
        }
    }

    /// Whether the kernel offers every flag of `flag` (flags of
    /// [`init_flags`], joined with `|`).
    pub const fn offers(&self, flag: u64) -> bool {
        self.flags & flag == flag
    }
}

/// What the server wants from the connection.
///
/// Only offered flags are accepted; values are clamped to what the kernel allows (see each
/// field). Build with [`InitConfig::default`] and change what matters, with the flags of
/// [`init_flags`]:
///
/// ```
/// use fuse_wire::{InitConfig, init_flags};
///
/// // READDIRPLUS requests come only if asked for: the default does not ask.
/// let config = InitConfig::default().with(init_flags::DO_READDIRPLUS);
/// assert!(config.want & init_flags::DO_READDIRPLUS != 0);
/// assert!(InitConfig::default().want & init_flags::DO_READDIRPLUS == 0);
/// ```
///
/// # The default
///
/// [`InitConfig::default`] asks for [`ASYNC_READ`], [`BIG_WRITES`] and [`MAX_PAGES`] (with
/// 1 MiB requests) and nothing else. So, unless you add flags: **READDIRPLUS never comes**
/// (directories are listed with READDIR), file locks stay inside the kernel (no GETLK,
/// SETLK, SETLKW), writes are not cached by the kernel, ACLs are not enforced, LOOKUPs and
/// READDIRs of one directory come one at a time, and no request comes over io_uring.
///
/// # What each flag turns on
///
/// A flag is agreed when the server asks for it (in [`InitConfig::want`]) and the kernel
/// offers it; [`negotiate`] keeps exactly those ([`Negotiated::has`]). Some flags are only
/// the kernel telling what it can do ("offered only"): asking for them changes nothing.
/// The minor is the protocol version that introduced the flag; every flag older than 7.36
/// exists on every kernel this crate serves ([`MIN_KERNEL_MINOR`]).
///
/// Requests that come only with a flag:
///
/// | flag (minor) | when agreed | without it |
/// |---|---|---|
/// | [`DO_READDIRPLUS`] (7.21) | directories are listed with READDIRPLUS: each entry comes with its attributes and counts as a LOOKUP (FORGET follows). With [`READDIRPLUS_AUTO`] (7.21) too, the kernel picks per read: READDIRPLUS at the start of a listing and when entries of the directory were looked up since, READDIR otherwise | only READDIR comes; READDIRPLUS never does |
/// | [`POSIX_LOCKS`] (7.7) | `fcntl(2)` record locks come as GETLK, SETLK and SETLKW: the server decides conflicts | POSIX locks are kept in the kernel, local to this machine; the server never sees them |
/// | [`FLOCK_LOCKS`] (7.17) | `flock(2)` locks come as SETLK and SETLKW with `FUSE_LK_FLOCK` in `lk_flags` | `flock(2)` locks are kernel-local |
/// | [`OVER_IO_URING`] (7.42) | requests come through the io_uring queues instead of `read(2)` on `/dev/fuse` (FORGET, BATCH_FORGET, INTERRUPT and NOTIFY_REPLY still come over `/dev/fuse`); every queue must then have entries registered, or its requests wait. Ask for it only once every queue is set up: `fuse-session` does; by hand, `fuse_dev::Channel::read_init`, `fuse_uring::check_init`, the queues, then this flag | everything comes over `/dev/fuse` |
/// | [`NO_OPEN_SUPPORT`] (7.23), [`NO_OPENDIR_SUPPORT`] (7.29) | offered only: answer one OPEN (OPENDIR) with `ENOSYS` and the kernel stops sending OPEN and RELEASE (OPENDIR and RELEASEDIR), using file handle 0 | OPEN and OPENDIR come for every open |
///
/// Caching and I/O:
///
/// | flag (minor) | when agreed | without it |
/// |---|---|---|
/// | [`ASYNC_READ`] (7.6, default) | readahead READs go out in the background, several in flight for one file, in any order | each readahead READ is waited for before the next |
/// | [`BIG_WRITES`] (7.9, default) | a WRITE carries up to `max_write` bytes | a WRITE carries at most one page |
/// | [`MAX_PAGES`] (7.28, default) | requests and replies of up to [`InitConfig::max_pages`] pages (the kernel clamps it to `/proc/sys/fs/fuse/max_pages_limit`); [`Negotiated::uring_payload_size`] and [`Negotiated::read_buffer_size`] follow | 32 pages per request |
/// | [`WRITEBACK_CACHE`] (7.23) | buffered writes land in the kernel's page cache and reach the server later as WRITEs with `FUSE_WRITE_CACHE`, through an open writable handle of the file that need not be the writer's. The kernel may READ through a handle opened `O_WRONLY` (to fill partial pages), so open backing files read-write; it implements `O_APPEND` itself; it keeps its own size and times, sending mtime and ctime back with SETATTR (`FATTR_MTIME`, `FATTR_CTIME`) | every `write(2)` is a WRITE before it returns |
/// | [`AUTO_INVAL_DATA`] (7.20) | cached data of a file is dropped when fresh attributes show another size or mtime | cached data is kept until an open without `FOPEN_KEEP_CACHE` or a [`notify::inval_inode`](crate::notify::inval_inode) |
/// | [`EXPLICIT_INVAL_DATA`] (7.30) | cached data is dropped only by [`notify::inval_inode`](crate::notify::inval_inode) (ignored when [`AUTO_INVAL_DATA`] is agreed too) | as above |
/// | [`ASYNC_DIO`] (7.22) | one direct I/O call (`O_DIRECT`, `FOPEN_DIRECT_IO`) may have several READs or WRITEs in flight at once | its requests come one after another |
/// | [`DIRECT_IO_ALLOW_MMAP`] (7.39) | files opened with `FOPEN_DIRECT_IO` may be mapped shared | `mmap(MAP_SHARED)` of such a file fails |
/// | [`PASSTHROUGH`] (7.40) | an OPEN or CREATE reply may name a backing file ([`OpenOut`](crate::OpenOut) with a `fuse_backing::BackingId<Passthrough>`): the kernel then reads, writes, splices and maps that open file on the backing file, without READ or WRITE requests. Needs `CAP_SYS_ADMIN` (to register backing files), [`InitConfig::max_stack_depth`] 1 or 2 ([`negotiate`] drops the flag at 0) and, as `fuse-backing` documents, no [`WRITEBACK_CACHE`] | every I/O is a request |
/// | [`CACHE_SYMLINKS`] (7.28) | READLINK answers are cached until the inode is invalidated | every symlink resolution sends READLINK |
/// | [`PARALLEL_DIROPS`] (7.25) | LOOKUPs and READDIRs of one directory may come concurrently | the kernel sends them one at a time per directory |
///
/// Permissions and attributes:
///
/// | flag (minor) | when agreed | without it |
/// |---|---|---|
/// | [`POSIX_ACL`] (7.26) | the kernel checks permissions itself (it turns on `default_permissions`) including POSIX ACLs, which it reads, caches and writes as the `system.posix_acl_access` and `system.posix_acl_default` xattrs (GETXATTR, SETXATTR, REMOVEXATTR): the server stores them | ACLs are not enforced by the kernel |
/// | [`DONT_MASK`] (7.12) | CREATE, MKNOD and MKDIR carry the mode unmasked; the server applies their `umask` | the mode arrives with the umask applied |
/// | [`ATOMIC_O_TRUNC`] (7.9) | OPEN keeps `O_TRUNC` in its flags; the server truncates | the kernel removes `O_TRUNC` and truncates with a SETATTR of size 0 |
/// | [`HANDLE_KILLPRIV`] (7.26) | the server clears setuid, setgid and `security.capability` on WRITE, chown and truncate | the kernel clears them (a SETATTR of the mode) |
/// | [`HANDLE_KILLPRIV_V2`] (7.33) | as [`HANDLE_KILLPRIV`], and the kernel says when, with Linux's rule (a caller without `CAP_FSETID`): `FUSE_WRITE_KILL_SUIDGID` in WRITE, [`SetattrValid::KILL_SUIDGID`](crate::SetattrValid::KILL_SUIDGID) in SETATTR, `FUSE_OPEN_KILL_SUIDGID` in OPEN and CREATE with `O_TRUNC` | as above |
/// | [`SETXATTR_EXT`] (7.33) | SETXATTR carries the longer `fuse_setxattr_in` (its `setxattr_flags`, for example `FUSE_SETXATTR_ACL_KILL_SGID`); [`Negotiated::protocol`] makes the decoder read it | the short form; those fields decode as 0 |
/// | [`SECURITY_CTX`] (7.36) | CREATE, MKNOD, MKDIR, SYMLINK and TMPFILE carry the security context (LSM label) of the new inode in their extensions ([`Request::extensions`](crate::Request::extensions)) | no context is sent |
/// | [`CREATE_SUPP_GROUP`] (7.38) | the same requests carry a supplementary-groups extension with the parent directory's group when the caller is a member of it without it being its fsgid | no group is sent |
/// | [`ALLOW_IDMAP`] (7.41) | the mount may be idmapped; the kernel fails INIT unless the mount has `default_permissions` | idmapped mounts are refused |
/// | [`EXPORT_SUPPORT`] (7.9) | the server answers LOOKUP of `.` and `..` in any directory, so file handles of the mount (NFS export, `open_by_handle_at`) decode even after the kernel dropped the inode | a file handle decodes only while its inode is cached (else `ESTALE`) |
/// | [`NO_EXPORT_SUPPORT`] (7.40) | the mount cannot be exported: its file handles only identify files (`AT_HANDLE_FID`) and never open them | as above |
///
/// The connection:
///
/// | flag (minor) | when agreed | without it |
/// |---|---|---|
/// | [`INIT_EXT`] (7.36) | the second flags word (bits 32..63) counts; [`negotiate`] sets it when a flag from there is accepted: never ask for it | only bits 0..31 |
/// | [`REQUEST_TIMEOUT`] (7.43) | the kernel aborts the connection when a request is not answered within [`InitConfig::request_timeout`] seconds | no limit (unless the system sets one) |
/// | [`ABORT_ERROR`] (7.27) | reads of an aborted connection fail with `ECONNABORTED` instead of `ENODEV` (`fuse_dev::Channel::receive` ends cleanly on both) | `ENODEV` |
/// | [`HAS_IO_URING_BUFPOOL`] (7.46) | offered only: io_uring queues may get a buffer pool and zero-copy (`ADD_QUEUE`, `ADD_BUFPOOL`); `fuse-uring`'s `QueueConfig::pool_if_offered` and `fuse-session` use them when offered | per-entry buffers |
/// | [`HAS_RESEND`] (7.40) | offered only: [`notify::resend`](crate::notify::resend) works, and resent requests carry `FUSE_UNIQUE_RESEND` in `unique` | no resend |
/// | [`HAS_EXPIRE_ONLY`] (7.38) | offered only: [`notify::inval_entry`](crate::notify::inval_entry) can merely expire an entry (`FUSE_EXPIRE_ONLY`) | full invalidation only |
/// | [`HAS_IOCTL_DIR`] (7.18) | offered only: IOCTL may come for directories | |
/// | [`SPLICE_READ`], [`SPLICE_WRITE`], [`SPLICE_MOVE`] (7.14) | offered only: `/dev/fuse` supports `splice(2)`; the crates of this workspace read and `writev` instead, so nothing uses them | |
/// | [`MAP_ALIGNMENT`] (7.31), [`HAS_INODE_DAX`] (7.36), [`SUBMOUNTS`] (7.32) | offered only by virtiofs (its DAX window, per-inode DAX, automatic submounts), never on a `/dev/fuse` mount; this type has no `map_alignment` | |
/// | [`FILE_OPS`] | never implemented by the kernel | |
///
/// [`ASYNC_READ`]: crate::init_flags::ASYNC_READ
/// [`BIG_WRITES`]: crate::init_flags::BIG_WRITES
/// [`MAX_PAGES`]: crate::init_flags::MAX_PAGES
/// [`DO_READDIRPLUS`]: crate::init_flags::DO_READDIRPLUS
/// [`READDIRPLUS_AUTO`]: crate::init_flags::READDIRPLUS_AUTO
/// [`POSIX_LOCKS`]: crate::init_flags::POSIX_LOCKS
/// [`FLOCK_LOCKS`]: crate::init_flags::FLOCK_LOCKS
/// [`OVER_IO_URING`]: crate::init_flags::OVER_IO_URING
/// [`NO_OPEN_SUPPORT`]: crate::init_flags::NO_OPEN_SUPPORT
/// [`NO_OPENDIR_SUPPORT`]: crate::init_flags::NO_OPENDIR_SUPPORT
/// [`WRITEBACK_CACHE`]: crate::init_flags::WRITEBACK_CACHE
/// [`AUTO_INVAL_DATA`]: crate::init_flags::AUTO_INVAL_DATA
/// [`EXPLICIT_INVAL_DATA`]: crate::init_flags::EXPLICIT_INVAL_DATA
/// [`ASYNC_DIO`]: crate::init_flags::ASYNC_DIO
/// [`DIRECT_IO_ALLOW_MMAP`]: crate::init_flags::DIRECT_IO_ALLOW_MMAP
/// [`PASSTHROUGH`]: crate::init_flags::PASSTHROUGH
/// [`CACHE_SYMLINKS`]: crate::init_flags::CACHE_SYMLINKS
/// [`PARALLEL_DIROPS`]: crate::init_flags::PARALLEL_DIROPS
/// [`POSIX_ACL`]: crate::init_flags::POSIX_ACL
/// [`DONT_MASK`]: crate::init_flags::DONT_MASK
/// [`ATOMIC_O_TRUNC`]: crate::init_flags::ATOMIC_O_TRUNC
/// [`HANDLE_KILLPRIV`]: crate::init_flags::HANDLE_KILLPRIV
/// [`HANDLE_KILLPRIV_V2`]: crate::init_flags::HANDLE_KILLPRIV_V2
/// [`SETXATTR_EXT`]: crate::init_flags::SETXATTR_EXT
/// [`SECURITY_CTX`]: crate::init_flags::SECURITY_CTX
/// [`CREATE_SUPP_GROUP`]: crate::init_flags::CREATE_SUPP_GROUP
/// [`ALLOW_IDMAP`]: crate::init_flags::ALLOW_IDMAP
/// [`EXPORT_SUPPORT`]: crate::init_flags::EXPORT_SUPPORT
/// [`NO_EXPORT_SUPPORT`]: crate::init_flags::NO_EXPORT_SUPPORT
/// [`INIT_EXT`]: crate::init_flags::INIT_EXT
/// [`REQUEST_TIMEOUT`]: crate::init_flags::REQUEST_TIMEOUT
/// [`ABORT_ERROR`]: crate::init_flags::ABORT_ERROR
/// [`HAS_IO_URING_BUFPOOL`]: crate::init_flags::HAS_IO_URING_BUFPOOL
/// [`HAS_RESEND`]: crate::init_flags::HAS_RESEND
/// [`HAS_EXPIRE_ONLY`]: crate::init_flags::HAS_EXPIRE_ONLY
/// [`HAS_IOCTL_DIR`]: crate::init_flags::HAS_IOCTL_DIR
/// [`SPLICE_READ`]: crate::init_flags::SPLICE_READ
/// [`SPLICE_WRITE`]: crate::init_flags::SPLICE_WRITE
/// [`SPLICE_MOVE`]: crate::init_flags::SPLICE_MOVE
/// [`MAP_ALIGNMENT`]: crate::init_flags::MAP_ALIGNMENT
/// [`HAS_INODE_DAX`]: crate::init_flags::HAS_INODE_DAX
/// [`SUBMOUNTS`]: crate::init_flags::SUBMOUNTS
/// [`FILE_OPS`]: crate::init_flags::FILE_OPS
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct InitConfig {
    /// INIT flags wanted: constants of [`init_flags`], all `u64`, joined
    /// with `|` (`init_flags::ASYNC_READ | init_flags::PASSTHROUGH`). Which flag turns on
    /// which request or behaviour, and what the default leaves out (READDIRPLUS, locks,
    /// the writeback cache, ACLs, io_uring...), is the table of [`InitConfig`]. Only flags
    /// the kernel offers are accepted; `FUSE_INIT_EXT` is added by [`negotiate`] when a
    /// flag of bits 32..63 is accepted.
    pub want: u64,
    /// Largest WRITE payload; the kernel never uses less than 4096.
    pub max_write: u32,
    /// Pages per request (needs `FUSE_MAX_PAGES` in `want`, offered since 7.28); the kernel
    /// clamps it to `/proc/sys/fs/fuse/max_pages_limit` (256 by default).
    pub max_pages: u16,
    /// Readahead limit in bytes; `None` keeps the kernel's value. Never more than the kernel's.
    pub max_readahead: Option<u32>,
    /// Background requests the kernel may have outstanding (0: the kernel's default, 12).
    pub max_background: u16,
    /// Background requests at which the kernel marks the bdi congested (0: 3/4 of
    /// `max_background`).
    pub congestion_threshold: u16,
    /// Timestamp granularity in nanoseconds (1 to 1,000,000,000, a power of 10).
    pub time_gran: u32,
    /// With `FUSE_PASSTHROUGH`: how deep backing files may themselves be stacked, 1 or 2
    /// ([`MAX_STACK_DEPTH`]). 0 turns passthrough down even where wanted and offered.
    pub max_stack_depth: u32,
    /// With `FUSE_REQUEST_TIMEOUT` (7.43): seconds after which the kernel aborts the
    /// connection if a request is not answered (0: no timeout).
    pub request_timeout: u16,
}

impl Default for InitConfig {
    /// Asynchronous reads, big writes, 1 MiB requests (`max_write` 1 MiB, 256 pages),
    /// kernel readahead, nothing else.
    fn default() -> Self {
        InitConfig {
            want: init_flags::ASYNC_READ | init_flags::BIG_WRITES | init_flags::MAX_PAGES,
            max_write: 1 << 20,
            max_pages: 256,
            max_readahead: None,
            max_background: 0,
            congestion_threshold: 0,
            time_gran: 1,
            max_stack_depth: 1,
            request_timeout: 0,
        }
    }
}

impl InitConfig {
    /// This configuration with `flags` (of [`init_flags`], joined with
    /// `|`) added to [`InitConfig::want`].
    #[must_use]
    pub const fn with(mut self, flags: u64) -> Self {
        self.want |= flags;
        self
    }

    /// This configuration with `flags` (of [`init_flags`]) removed from
    /// [`InitConfig::want`].
    #[must_use]
    pub const fn without(mut self, flags: u64) -> Self {
        self.want &= !flags;
        self
    }
}

/// Why INIT cannot be agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InitError {
    /// The kernel speaks another major version than 7.
    UnsupportedMajor {
        /// The kernel's major.
        kernel: u32,
    },
    /// The kernel's minor is older than [`MIN_KERNEL_MINOR`].
    MinorTooOld {
        /// The kernel's minor.
        kernel: u32,
    },
    /// [`InitConfig::max_stack_depth`] is above [`MAX_STACK_DEPTH`].
    StackDepth {
        /// The configured depth.
        configured: u32,
    },
    /// [`InitConfig::time_gran`] is 0, above 10^9 or not a power of 10.
    TimeGranularity {
        /// The configured granularity.
        configured: u32,
    },
}

impl InitError {
    /// The errno to answer INIT with when it cannot be agreed: `EPROTO` for a protocol
    /// mismatch, `EINVAL` for a bad configuration.
    pub const fn errno(&self) -> Errno {
        match self {
            InitError::UnsupportedMajor { .. } | InitError::MinorTooOld { .. } => Errno::PROTO,
            InitError::StackDepth { .. } | InitError::TimeGranularity { .. } => Errno::INVAL,
        }
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::UnsupportedMajor { kernel } => write!(
                f,
                "the kernel speaks FUSE protocol {kernel}.x; this server speaks {}.x",
                sys::FUSE_KERNEL_VERSION
            ),
            InitError::MinorTooOld { kernel } => write!(
                f,
                "the kernel speaks FUSE protocol 7.{kernel}; this server needs 7.{MIN_KERNEL_MINOR} \
                 (Linux 5.17) or newer"
            ),
            InitError::StackDepth { configured } => write!(
                f,
                "max_stack_depth {configured} is above the kernel's limit of {MAX_STACK_DEPTH}"
            ),
            InitError::TimeGranularity { configured } => write!(
                f,
                "time_gran {configured} is not a power of 10 between 1 and 1000000000"
            ),
        }
    }
}

impl std::error::Error for InitError {}

/// The outcome of INIT: the reply to send and what it means for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    kernel: KernelInit,
    accepted: u64,
    init_out: sys::fuse_init_out,
}

impl Negotiated {
    /// The kernel's request.
    pub const fn kernel(&self) -> &KernelInit {
        &self.kernel
    }

    /// The protocol minor both sides speak: the smaller of the kernel's and
    /// [`sys::FUSE_KERNEL_MINOR_VERSION`].
    pub const fn minor(&self) -> u32 {
        self.init_out.minor
    }

    /// Every flag the kernel offered.
    pub const fn offered(&self) -> u64 {
        self.kernel.flags
    }

    /// The flags accepted in the reply (offered and wanted, plus `FUSE_INIT_EXT` when a flag
    /// of bits 32..63 is among them).
    pub const fn accepted(&self) -> u64 {
        self.accepted
    }

    /// Whether every flag of `flag` (flags of [`init_flags`], joined with
    /// `|`) was accepted.
    pub const fn has(&self, flag: u64) -> bool {
        self.accepted & flag == flag
    }

    /// The INIT reply.
    pub const fn init_out(&self) -> &sys::fuse_init_out {
        &self.init_out
    }

    /// The INIT reply payload, as written after the `fuse_out_header`.
    pub fn reply_bytes(&self) -> &[u8] {
        self.init_out.as_bytes()
    }

    /// The effective `max_write` (at least 4096, as the kernel makes it).
    pub const fn max_write(&self) -> u32 {
        self.init_out.max_write
    }

    /// Pages per request as the kernel will use them: the reply's `max_pages` with
    /// `FUSE_MAX_PAGES`, else [`KERNEL_DEFAULT_MAX_PAGES`].
    pub const fn max_pages(&self) -> u16 {
        if self.has(init_flags::MAX_PAGES) {
            if self.init_out.max_pages == 0 {
                1
            } else {
                self.init_out.max_pages
            }
        } else {
            KERNEL_DEFAULT_MAX_PAGES
        }
    }

    /// How requests of this connection are decoded ([`crate::Request::parse`]).
    pub const fn protocol(&self) -> Protocol {
        Protocol {
            minor: self.init_out.minor,
            setxattr_ext: self.has(init_flags::SETXATTR_EXT),
        }
    }

    /// The payload buffer size of one FUSE-over-io_uring entry:
    /// `max(FUSE_MIN_READ_BUFFER, max_write, max_pages * page size)`, which the kernel
    /// requires of every REGISTER (smaller: `EINVAL`). The one rule for both transports:
    /// [`Negotiated::read_buffer_size`] is this plus the fixed part of a WRITE request.
    pub fn uring_payload_size(&self) -> usize {
        payload_size_for(self.max_write(), self.max_pages(), page_size())
    }

    /// The smallest buffer for `read(2)` on `/dev/fuse` after this INIT: the fixed part of the
    /// largest request (`fuse_in_header` + `fuse_write_in`) plus
    /// [`Negotiated::uring_payload_size`]. The kernel fails a smaller `read(2)` with `EINVAL`
    /// (it checks `max(8192, 80 + max_write)`), even for small requests.
    pub fn read_buffer_size(&self) -> usize {
        WRITE_REQUEST_HEAD.saturating_add(self.uring_payload_size())
    }
}

/// `fuse_in_header` + `fuse_write_in`: the bytes before a WRITE's data.
pub const WRITE_REQUEST_HEAD: usize =
    size_of::<sys::fuse_in_header>() + size_of::<sys::fuse_write_in>();

/// The smallest `read(2)` buffer the kernel accepts on `/dev/fuse` before INIT is answered
/// (`FUSE_MIN_READ_BUFFER`, 8192 bytes), enough for the INIT request.
pub const MIN_READ_BUFFER: usize = sys::FUSE_MIN_READ_BUFFER as usize;

/// `max(FUSE_MIN_READ_BUFFER, max_write, max_pages * page_size)`, saturating.
pub const fn payload_size_for(max_write: u32, max_pages: u16, page_size: usize) -> usize {
    let min = MIN_READ_BUFFER;
    let write = max_write as usize;
    let pages = (max_pages as usize).saturating_mul(page_size);
    let size = if write > min { write } else { min };
    if pages > size { pages } else { size }
}

/// Agrees INIT: `kernel` is the decoded request, `config` the server's wishes.
///
/// Costs nothing but arithmetic. Fails when the kernel's protocol is not served
/// ([`InitError::UnsupportedMajor`], [`InitError::MinorTooOld`]) or the configuration is
/// invalid; answer INIT with [`InitError::errno`] then.
///
/// Rules applied (the kernel's): only offered flags are accepted, bits 32..63 only when the
/// kernel offers `FUSE_INIT_EXT`; `FUSE_PASSTHROUGH` is dropped when `max_stack_depth` is 0;
/// `max_stack_depth` is sent only with passthrough and `request_timeout` only with
/// `FUSE_REQUEST_TIMEOUT`; `max_write` is at least 4096; `max_readahead` never exceeds the
/// kernel's.
pub fn negotiate(kernel: &KernelInit, config: &InitConfig) -> Result<Negotiated, InitError> {
    if kernel.major != sys::FUSE_KERNEL_VERSION {
        return Err(InitError::UnsupportedMajor {
            kernel: kernel.major,
        });
    }
    if kernel.minor < MIN_KERNEL_MINOR {
        return Err(InitError::MinorTooOld {
            kernel: kernel.minor,
        });
    }
    if config.max_stack_depth > MAX_STACK_DEPTH {
        return Err(InitError::StackDepth {
            configured: config.max_stack_depth,
        });
    }
    let gran = config.time_gran;
    if gran == 0 || gran > 1_000_000_000 || !is_power_of_10(gran) {
        return Err(InitError::TimeGranularity { configured: gran });
    }
    let ext = init_flags::INIT_EXT;
    let mut accepted = kernel.flags & config.want & !ext;
    if kernel.flags & ext == 0 {
        // Without FUSE_INIT_EXT the kernel reads no flags2: bits 32..63 cannot be agreed
        // (only a hand-built KernelInit can offer them so).
        accepted &= u64::from(u32::MAX);
    }
    if config.max_stack_depth == 0 {
        accepted &= !init_flags::PASSTHROUGH;
    }
    if accepted >> 32 != 0 {
        accepted |= ext & kernel.flags;
    }
    let passthrough = accepted & init_flags::PASSTHROUGH != 0;
    let timeout = accepted & init_flags::REQUEST_TIMEOUT != 0;
    let max_readahead = match config.max_readahead {
        Some(wanted) => wanted.min(kernel.max_readahead),
        None => kernel.max_readahead,
    };
    let init_out = sys::fuse_init_out {
        major: sys::FUSE_KERNEL_VERSION,
        minor: kernel.minor.min(sys::FUSE_KERNEL_MINOR_VERSION),
        max_readahead,
        flags: accepted as u32,
        max_background: config.max_background,
        congestion_threshold: config.congestion_threshold,
        max_write: config.max_write.max(4096),
        time_gran: gran,
        max_pages: config.max_pages,
        flags2: (accepted >> 32) as u32,
        max_stack_depth: if passthrough {
            config.max_stack_depth
        } else {
            0
        },
        request_timeout: if timeout { config.request_timeout } else { 0 },
        ..Default::default()
    };
    Ok(Negotiated {
        kernel: *kernel,
        accepted,
        init_out,
    })
}

const fn is_power_of_10(mut n: u32) -> bool {
    while n % 10 == 0 {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init_in(minor: u32, flags: u32, flags2: u32) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [7, minor, 131072, flags, flags2] {
            b.extend_from_slice(&u32::to_ne_bytes(v));
        }
        b.resize(64, 0);
        b
    }

    #[test]
    fn flags2_counts_only_with_init_ext() {
        let with = KernelInit::parse(&init_in(45, 1 << 30, 1 << 5)).unwrap();
        assert_eq!(with.flags, (1 << 30) | (1 << 37));
        let back = with.to_init_in();
        assert_eq!(
            (back.major, back.minor, back.max_readahead),
            (7, 45, 131072)
        );
        assert_eq!((back.flags, back.flags2), (1 << 30, 1 << 5));
        let without = KernelInit::parse(&init_in(45, 1, 1 << 5)).unwrap();
        assert_eq!(without.flags, 1);
        // The 16-byte form of old kernels.
        let old = KernelInit::parse(&init_in(26, 1 << 30, 0)[..16]).unwrap();
        assert_eq!((old.minor, old.flags), (26, 1 << 30));
        assert!(matches!(
            KernelInit::parse(&[0; 15]),
            Err(e) if e.kind() == crate::DecodeErrorKind::Short { what: "fuse_init_in", need: 16, have: 15 }
        ));
    }

    #[test]
    fn negotiation_accepts_offered_wanted_flags_and_sets_init_ext() {
        // Offered: ASYNC_READ (bit 0), MAX_PAGES (bit 22), INIT_EXT (bit 30),
        // PASSTHROUGH (bit 37) and OVER_IO_URING (bit 41).
        let kernel =
            KernelInit::parse(&init_in(45, 1 | 1 << 22 | 1 << 30, 1 << 5 | 1 << 9)).unwrap();
        let config = InitConfig::default().with(1 << 37);
        let n = negotiate(&kernel, &config).unwrap();
        assert_eq!(n.accepted(), 1 | 1 << 22 | 1 << 30 | 1 << 37);
        assert_eq!(n.init_out().flags, 1 | 1 << 22 | 1 << 30);
        assert_eq!(n.init_out().flags2, 1 << 5);
        assert_eq!(n.init_out().max_stack_depth, 1);
        assert_eq!(n.init_out().minor, 45);
        assert_eq!(n.init_out().major, 7);
        assert_eq!(n.reply_bytes().len(), 64);
        // Without passthrough accepted, max_stack_depth is 0 and flags2 empty: no INIT_EXT.
        let n = negotiate(&kernel, &InitConfig::default()).unwrap();
        assert_eq!(n.accepted(), 1 | 1 << 22);
        assert_eq!((n.init_out().flags2, n.init_out().max_stack_depth), (0, 0));
        // max_stack_depth 0 turns passthrough down.
        let config = InitConfig {
            max_stack_depth: 0,
            ..InitConfig::default().with(1 << 37)
        };
        assert!(!negotiate(&kernel, &config).unwrap().has(1 << 37));
    }

    #[test]
    fn flags2_is_never_agreed_without_init_ext() {
        // Found by fuzzing (fuzz/regressions/init_negotiation): a KernelInit built by hand
        // with PASSTHROUGH (bit 37) but no INIT_EXT got PASSTHROUGH accepted and sent in
        // flags2, which the kernel does not read without INIT_EXT.
        let kernel = KernelInit {
            major: 7,
            minor: 45,
            max_readahead: 0,
            flags: 1 | 1 << 37,
        };
        let n = negotiate(&kernel, &InitConfig::default().with(1 | 1 << 37)).unwrap();
        assert_eq!(n.accepted(), 1);
        assert!(!n.has(1 << 37));
        assert_eq!((n.init_out().flags, n.init_out().flags2), (1, 0));
        assert_eq!(n.init_out().max_stack_depth, 0);
    }

    #[test]
    fn versions_and_configuration_are_checked() {
        let old = KernelInit::parse(&init_in(35, 0, 0)).unwrap();
        let e = negotiate(&old, &InitConfig::default()).unwrap_err();
        assert_eq!(e, InitError::MinorTooOld { kernel: 35 });
        assert_eq!(e.errno(), Errno::PROTO);
        let mut eight = init_in(1, 0, 0);
        eight[..4].copy_from_slice(&8u32.to_ne_bytes());
        let e = negotiate(&KernelInit::parse(&eight).unwrap(), &InitConfig::default());
        assert_eq!(e, Err(InitError::UnsupportedMajor { kernel: 8 }));
        let newer = KernelInit::parse(&init_in(99, 0, 0)).unwrap();
        assert_eq!(
            negotiate(&newer, &InitConfig::default()).unwrap().minor(),
            sys::FUSE_KERNEL_MINOR_VERSION
        );
        let config = InitConfig {
            max_stack_depth: 3,
            ..InitConfig::default()
        };
        assert_eq!(
            negotiate(&newer, &config),
            Err(InitError::StackDepth { configured: 3 })
        );
        for bad in [0, 3, 20_000_001, 2_000_000_000] {
            let config = InitConfig {
                time_gran: bad,
                ..InitConfig::default()
            };
            assert!(negotiate(&newer, &config).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_follow_one_rule() {
        assert_eq!(payload_size_for(4096, 1, 4096), 8192);
        assert_eq!(payload_size_for(1 << 20, 32, 4096), 1 << 20);
        assert_eq!(payload_size_for(65536, 256, 4096), 1 << 20);
        assert_eq!(payload_size_for(u32::MAX, u16::MAX, usize::MAX), usize::MAX);
        let kernel = KernelInit::parse(&init_in(45, 1 << 22, 0)).unwrap();
        let mut config = InitConfig {
            max_write: 100,
            max_pages: 0,
            ..InitConfig::default()
        };
        let n = negotiate(&kernel, &config).unwrap();
        assert_eq!(n.max_write(), 4096);
        assert_eq!(n.max_pages(), 1);
        assert_eq!(n.uring_payload_size(), 8192.max(page_size()));
        assert_eq!(n.read_buffer_size(), 80 + n.uring_payload_size());
        // Readahead never above the kernel's.
        config.max_readahead = Some(u32::MAX);
        assert_eq!(
            negotiate(&kernel, &config)
                .unwrap()
                .init_out()
                .max_readahead,
            131072
        );
    }
}
