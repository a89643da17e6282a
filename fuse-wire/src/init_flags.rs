//! The INIT flags, every one as a `u64`: the type of [`InitConfig::want`],
//! [`KernelInit::flags`], [`KernelInit::offers`], [`Negotiated::accepted`] and
//! [`Negotiated::has`].
//!
//! `fuse-kernel-sys` mirrors the C header, where bits 0..31 are `u32` and bits 32..63 are
//! `u64` constants; here they are one type, so a set of flags is built with `|` alone:
//!
//! ```
//! use fuse_wire::{InitConfig, init_flags};
//!
//! let config = InitConfig::default()
//!     .with(init_flags::DO_READDIRPLUS | init_flags::READDIRPLUS_AUTO | init_flags::PASSTHROUGH);
//! assert_eq!(config.want & init_flags::PASSTHROUGH, 1 << 37);
//! ```
//!
//! Each flag names the protocol minor that introduced it; every flag older than 7.36
//! ([`MIN_KERNEL_MINOR`]) exists on every kernel this crate serves. What each flag turns on,
//! and what happens without it, is the table in [`InitConfig`]'s documentation. A flag
//! counts only when the kernel offers it: test the offer with [`KernelInit::offers`] and the
//! outcome with [`Negotiated::has`].
//!
//! [`InitConfig`]: crate::InitConfig
//! [`InitConfig::want`]: crate::InitConfig::want
//! [`KernelInit::flags`]: crate::KernelInit::flags
//! [`KernelInit::offers`]: crate::KernelInit::offers
//! [`Negotiated::accepted`]: crate::Negotiated::accepted
//! [`Negotiated::has`]: crate::Negotiated::has
//! [`MIN_KERNEL_MINOR`]: crate::MIN_KERNEL_MINOR

use fuse_kernel_sys as sys;

// Bits 0..31 are `u32` in fuse-kernel-sys (widened here, losslessly); bits 32..63 are `u64`
// there already. A change of either type is a compile error here, not a silent truncation.

/// `FUSE_ASYNC_READ` (7.6): readahead READs go out in the background, several at a time.
pub const ASYNC_READ: u64 = sys::FUSE_ASYNC_READ as u64;
/// `FUSE_POSIX_LOCKS` (7.7): `fcntl(2)` record locks come as GETLK, SETLK and SETLKW.
pub const POSIX_LOCKS: u64 = sys::FUSE_POSIX_LOCKS as u64;
/// `FUSE_FILE_OPS` (bit 2): reserved by the header, never implemented by the kernel.
pub const FILE_OPS: u64 = sys::FUSE_FILE_OPS as u64;
/// `FUSE_ATOMIC_O_TRUNC` (7.9): OPEN keeps `O_TRUNC` and the server truncates.
pub const ATOMIC_O_TRUNC: u64 = sys::FUSE_ATOMIC_O_TRUNC as u64;
/// `FUSE_EXPORT_SUPPORT` (7.9): the server answers LOOKUP of `.` and `..`; the mount can be
/// exported (NFS, `open_by_handle_at`).
pub const EXPORT_SUPPORT: u64 = sys::FUSE_EXPORT_SUPPORT as u64;
/// `FUSE_BIG_WRITES` (7.9): a WRITE may carry up to `max_write` bytes, not one page.
pub const BIG_WRITES: u64 = sys::FUSE_BIG_WRITES as u64;
/// `FUSE_DONT_MASK` (7.12): the kernel leaves the umask to the server on CREATE, MKNOD and
/// MKDIR.
pub const DONT_MASK: u64 = sys::FUSE_DONT_MASK as u64;
/// `FUSE_SPLICE_WRITE` (7.14): offered by the kernel: `/dev/fuse` accepts replies through
/// `splice(2)`. Nothing to agree.
pub const SPLICE_WRITE: u64 = sys::FUSE_SPLICE_WRITE as u64;
/// `FUSE_SPLICE_MOVE` (7.14): offered by the kernel: spliced reply pages may be moved, not
/// copied. Nothing to agree.
pub const SPLICE_MOVE: u64 = sys::FUSE_SPLICE_MOVE as u64;
/// `FUSE_SPLICE_READ` (7.14): offered by the kernel: requests can be read from `/dev/fuse`
/// with `splice(2)`. Nothing to agree.
pub const SPLICE_READ: u64 = sys::FUSE_SPLICE_READ as u64;
/// `FUSE_FLOCK_LOCKS` (7.17): `flock(2)` locks come as SETLK and SETLKW with
/// `FUSE_LK_FLOCK`.
pub const FLOCK_LOCKS: u64 = sys::FUSE_FLOCK_LOCKS as u64;
/// `FUSE_HAS_IOCTL_DIR` (7.18): offered by the kernel: IOCTL may come for directories.
pub const HAS_IOCTL_DIR: u64 = sys::FUSE_HAS_IOCTL_DIR as u64;
/// `FUSE_AUTO_INVAL_DATA` (7.20): cached file data is dropped when new attributes show a
/// changed size or mtime.
pub const AUTO_INVAL_DATA: u64 = sys::FUSE_AUTO_INVAL_DATA as u64;
/// `FUSE_DO_READDIRPLUS` (7.21): directories are listed with READDIRPLUS instead of READDIR.
pub const DO_READDIRPLUS: u64 = sys::FUSE_DO_READDIRPLUS as u64;
/// `FUSE_READDIRPLUS_AUTO` (7.21): with [`DO_READDIRPLUS`], the kernel chooses READDIRPLUS
/// or READDIR for each listing.
pub const READDIRPLUS_AUTO: u64 = sys::FUSE_READDIRPLUS_AUTO as u64;
/// `FUSE_ASYNC_DIO` (7.22): one direct I/O call may have several READs or WRITEs in flight.
pub const ASYNC_DIO: u64 = sys::FUSE_ASYNC_DIO as u64;
/// `FUSE_WRITEBACK_CACHE` (7.23): buffered writes are cached by the kernel and written back
/// later.
pub const WRITEBACK_CACHE: u64 = sys::FUSE_WRITEBACK_CACHE as u64;
/// `FUSE_NO_OPEN_SUPPORT` (7.23): offered by the kernel: an OPEN answered `ENOSYS` turns
/// OPEN and RELEASE off for the connection.
pub const NO_OPEN_SUPPORT: u64 = sys::FUSE_NO_OPEN_SUPPORT as u64;
/// `FUSE_PARALLEL_DIROPS` (7.25): LOOKUPs and READDIRs of one directory may come
/// concurrently.
pub const PARALLEL_DIROPS: u64 = sys::FUSE_PARALLEL_DIROPS as u64;
/// `FUSE_HANDLE_KILLPRIV` (7.26): the server clears setuid, setgid and capabilities on
/// WRITE, chown and truncate.
pub const HANDLE_KILLPRIV: u64 = sys::FUSE_HANDLE_KILLPRIV as u64;
/// `FUSE_POSIX_ACL` (7.26): the kernel enforces POSIX ACLs, kept by the server as the
/// `system.posix_acl_*` xattrs.
pub const POSIX_ACL: u64 = sys::FUSE_POSIX_ACL as u64;
/// `FUSE_ABORT_ERROR` (7.27): reads of an aborted connection fail with `ECONNABORTED`
/// instead of `ENODEV`.
pub const ABORT_ERROR: u64 = sys::FUSE_ABORT_ERROR as u64;
/// `FUSE_MAX_PAGES` (7.28): [`InitConfig::max_pages`](crate::InitConfig::max_pages) pages
/// per request instead of the kernel's 32.
pub const MAX_PAGES: u64 = sys::FUSE_MAX_PAGES as u64;
/// `FUSE_CACHE_SYMLINKS` (7.28): READLINK answers are cached by the kernel.
pub const CACHE_SYMLINKS: u64 = sys::FUSE_CACHE_SYMLINKS as u64;
/// `FUSE_NO_OPENDIR_SUPPORT` (7.29): offered by the kernel: an OPENDIR answered `ENOSYS`
/// turns OPENDIR and RELEASEDIR off for the connection.
pub const NO_OPENDIR_SUPPORT: u64 = sys::FUSE_NO_OPENDIR_SUPPORT as u64;
/// `FUSE_EXPLICIT_INVAL_DATA` (7.30): cached file data is dropped only when the server
/// says so (`notify::inval_inode`).
pub const EXPLICIT_INVAL_DATA: u64 = sys::FUSE_EXPLICIT_INVAL_DATA as u64;
/// `FUSE_MAP_ALIGNMENT` (7.31): DAX (virtiofs) only: the alignment of SETUPMAPPING offsets.
pub const MAP_ALIGNMENT: u64 = sys::FUSE_MAP_ALIGNMENT as u64;
/// `FUSE_SUBMOUNTS` (7.32): virtiofs only: directories marked `FUSE_ATTR_SUBMOUNT` become
/// automatic submounts.
pub const SUBMOUNTS: u64 = sys::FUSE_SUBMOUNTS as u64;
/// `FUSE_HANDLE_KILLPRIV_V2` (7.33): as [`HANDLE_KILLPRIV`], with the kernel saying in each
/// request whether to clear.
pub const HANDLE_KILLPRIV_V2: u64 = sys::FUSE_HANDLE_KILLPRIV_V2 as u64;
/// `FUSE_SETXATTR_EXT` (7.33): SETXATTR carries the extended `fuse_setxattr_in`.
pub const SETXATTR_EXT: u64 = sys::FUSE_SETXATTR_EXT as u64;
/// `FUSE_INIT_EXT` (7.36): the second flags word (`flags2`, bits 32..63) is valid.
/// [`negotiate`](crate::negotiate) sets it in the reply when needed; never ask for it.
pub const INIT_EXT: u64 = sys::FUSE_INIT_EXT as u64;
/// `FUSE_SECURITY_CTX` (7.36): CREATE, MKNOD, MKDIR, SYMLINK and TMPFILE carry the new
/// inode's security context as an extension.
pub const SECURITY_CTX: u64 = sys::FUSE_SECURITY_CTX;
/// `FUSE_HAS_INODE_DAX` (7.36): virtiofs only: DAX chosen per inode (`FUSE_ATTR_DAX`).
pub const HAS_INODE_DAX: u64 = sys::FUSE_HAS_INODE_DAX;
/// `FUSE_CREATE_SUPP_GROUP` (7.38): CREATE, MKNOD, MKDIR, SYMLINK and TMPFILE may carry
/// the parent directory's group as a supplementary-group extension.
pub const CREATE_SUPP_GROUP: u64 = sys::FUSE_CREATE_SUPP_GROUP;
/// `FUSE_HAS_EXPIRE_ONLY` (7.38): offered by the kernel: `notify::inval_entry` may only
/// expire an entry (`FUSE_EXPIRE_ONLY`).
pub const HAS_EXPIRE_ONLY: u64 = sys::FUSE_HAS_EXPIRE_ONLY;
/// `FUSE_DIRECT_IO_ALLOW_MMAP` (7.39): files opened with `FOPEN_DIRECT_IO` may be mapped
/// shared.
pub const DIRECT_IO_ALLOW_MMAP: u64 = sys::FUSE_DIRECT_IO_ALLOW_MMAP;
/// `FUSE_PASSTHROUGH` (7.40, Linux 6.9): OPEN and CREATE may hand I/O to a backing file.
pub const PASSTHROUGH: u64 = sys::FUSE_PASSTHROUGH;
/// `FUSE_NO_EXPORT_SUPPORT` (7.40): the mount cannot be exported (its file handles only
/// identify files).
pub const NO_EXPORT_SUPPORT: u64 = sys::FUSE_NO_EXPORT_SUPPORT;
/// `FUSE_HAS_RESEND` (7.40): offered by the kernel: `notify::resend` works, and resent
/// requests carry `FUSE_UNIQUE_RESEND` in `unique`.
pub const HAS_RESEND: u64 = sys::FUSE_HAS_RESEND;
/// `FUSE_ALLOW_IDMAP` (7.41): the mount may be idmapped; the kernel fails INIT unless it is
/// mounted with `default_permissions`.
pub const ALLOW_IDMAP: u64 = sys::FUSE_ALLOW_IDMAP;
/// `FUSE_OVER_IO_URING` (7.42, Linux 6.14): requests come through io_uring queues.
pub const OVER_IO_URING: u64 = sys::FUSE_OVER_IO_URING;
/// `FUSE_REQUEST_TIMEOUT` (7.43): the kernel aborts the connection when a request waits
/// longer than [`InitConfig::request_timeout`](crate::InitConfig::request_timeout).
pub const REQUEST_TIMEOUT: u64 = sys::FUSE_REQUEST_TIMEOUT;
/// `FUSE_HAS_IO_URING_BUFPOOL` (7.46, Linux 7.3): offered by the kernel: io_uring queues may
/// get a buffer pool and zero-copy (`ADD_QUEUE`, `ADD_BUFPOOL`).
pub const HAS_IO_URING_BUFPOOL: u64 = sys::FUSE_HAS_IO_URING_BUFPOOL;

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's bit numbers, written out from `include/uapi/linux/fuse.h`.
    #[test]
    fn bits_are_the_kernels() {
        let bits = [
            (ASYNC_READ, 0),
            (POSIX_LOCKS, 1),
            (FILE_OPS, 2),
            (ATOMIC_O_TRUNC, 3),
            (EXPORT_SUPPORT, 4),
            (BIG_WRITES, 5),
            (DONT_MASK, 6),
            (SPLICE_WRITE, 7),
            (SPLICE_MOVE, 8),
            (SPLICE_READ, 9),
            (FLOCK_LOCKS, 10),
            (HAS_IOCTL_DIR, 11),
            (AUTO_INVAL_DATA, 12),
            (DO_READDIRPLUS, 13),
            (READDIRPLUS_AUTO, 14),
            (ASYNC_DIO, 15),
            (WRITEBACK_CACHE, 16),
            (NO_OPEN_SUPPORT, 17),
            (PARALLEL_DIROPS, 18),
            (HANDLE_KILLPRIV, 19),
            (POSIX_ACL, 20),
            (ABORT_ERROR, 21),
            (MAX_PAGES, 22),
            (CACHE_SYMLINKS, 23),
            (NO_OPENDIR_SUPPORT, 24),
            (EXPLICIT_INVAL_DATA, 25),
            (MAP_ALIGNMENT, 26),
            (SUBMOUNTS, 27),
            (HANDLE_KILLPRIV_V2, 28),
            (SETXATTR_EXT, 29),
            (INIT_EXT, 30),
            (SECURITY_CTX, 32),
            (HAS_INODE_DAX, 33),
            (CREATE_SUPP_GROUP, 34),
            (HAS_EXPIRE_ONLY, 35),
            (DIRECT_IO_ALLOW_MMAP, 36),
            (PASSTHROUGH, 37),
            (NO_EXPORT_SUPPORT, 38),
            (HAS_RESEND, 39),
            (ALLOW_IDMAP, 40),
            (OVER_IO_URING, 41),
            (REQUEST_TIMEOUT, 42),
            (HAS_IO_URING_BUFPOOL, 43),
        ];
        for (flag, bit) in bits {
            assert_eq!(flag, 1u64 << bit, "bit {bit}");
        }
        // Every bit named once: bits 0..30 and 32..43, nothing else (31 is reserved).
        let all = bits.iter().fold(0, |acc, (flag, _)| acc | flag);
        assert_eq!(all, 0x0000_0fff_7fff_ffff);
        assert_eq!(all.count_ones() as usize, bits.len());
    }
}
