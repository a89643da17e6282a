//! Reply encoding: each function writes one reply's payload (what follows the
//! `fuse_out_header`) into the caller's buffer and returns its length.
//!
//! The buffer is whatever the transport sends from: an io_uring entry's payload slot (then
//! `Entry::set_reply(len)`), or a `/dev/fuse` write buffer (then the transport writes
//! [`out_header`] and the payload with one `writev`). Nothing is allocated; a buffer that is
//! too small is a [`BufferTooSmall`] error and nothing is written.

use core::fmt;
use core::time::Duration;

use fuse_backing::{BackingId, Passthrough};
use fuse_kernel_sys as sys;
use sys::zerocopy::{Immutable, IntoBytes};

use crate::Errno;

/// The reply does not fit in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferTooSmall {
    /// Bytes the reply needs.
    pub need: usize,
    /// Bytes the buffer has.
    pub have: usize,
}

impl BufferTooSmall {
    /// `ERANGE`, the errno to answer the request with when a reply cannot be built.
    pub const fn errno(&self) -> Errno {
        Errno::RANGE
    }
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "reply of {} bytes does not fit in a {}-byte buffer",
            self.need, self.have
        )
    }
}

impl std::error::Error for BufferTooSmall {}

/// `ERANGE` ([`BufferTooSmall::errno`]), so that `?` works in handlers returning
/// `Result<_, Errno>`.
impl From<BufferTooSmall> for Errno {
    fn from(e: BufferTooSmall) -> Errno {
        e.errno()
    }
}

/// The value for `fuse_out_header.error`: `-errno`.
///
/// The kernel accepts only 0 and `-1..=-511` and rejects the whole reply otherwise (the
/// request then fails with `EINVAL` and the server's write fails); errno values outside
/// `1..=511` (for example `ENOTSUPP` 524, which some drivers leak; an [`Errno`] holds
/// `1..=4095`) become `-EIO`.
pub const fn out_error(errno: Errno) -> i32 {
    let raw = errno.raw_os_error();
    if raw > 0 && raw < 512 {
        -raw
    } else {
        -Errno::IO.raw_os_error()
    }
}

/// The `fuse_out_header` of a reply to `unique` with `error` (0, or [`out_error`]'s value)
/// and `payload_len` bytes of payload. `len` saturates at `u32::MAX` (the kernel then
/// rejects the reply; no payload is that large).
pub const fn out_header(unique: u64, error: i32, payload_len: usize) -> sys::fuse_out_header {
    let len = size_of::<sys::fuse_out_header>().saturating_add(payload_len);
    sys::fuse_out_header {
        len: if len > u32::MAX as usize {
            u32::MAX
        } else {
            len as u32
        },
        error,
        unique,
    }
}

/// Writes any ABI struct as a reply payload.
pub fn put<T: IntoBytes + Immutable>(out: &mut [u8], value: &T) -> Result<usize, BufferTooSmall> {
    data(out, value.as_bytes())
}

/// Copies `bytes` as the reply payload (READ, READLINK, GETXATTR and LISTXATTR data).
pub fn data(out: &mut [u8], bytes: &[u8]) -> Result<usize, BufferTooSmall> {
    let have = out.len();
    let dst = out.get_mut(..bytes.len()).ok_or(BufferTooSmall {
        need: bytes.len(),
        have,
    })?;
    dst.copy_from_slice(bytes);
    Ok(bytes.len())
}

/// A duration as the kernel's `(seconds, nanoseconds)` pair of `*_valid` fields.
pub const fn valid(timeout: Duration) -> (u64, u32) {
    (timeout.as_secs(), timeout.subsec_nanos())
}

/// A LOOKUP / MKNOD / MKDIR / SYMLINK / LINK / CREATE entry for inode `nodeid`.
///
/// `nodeid` 0 is a negative entry: the name does not exist, cached for `entry_timeout`
/// ([`negative_entry`]).
pub const fn entry_out(
    nodeid: u64,
    generation: u64,
    attr: sys::fuse_attr,
    entry_timeout: Duration,
    attr_timeout: Duration,
) -> sys::fuse_entry_out {
    let (entry_valid, entry_valid_nsec) = valid(entry_timeout);
    let (attr_valid, attr_valid_nsec) = valid(attr_timeout);
    sys::fuse_entry_out {
        nodeid,
        generation,
        entry_valid,
        attr_valid,
        entry_valid_nsec,
        attr_valid_nsec,
        attr,
    }
}

/// A negative LOOKUP answer: "no such name", cached by the kernel for `timeout`
/// (answering `ENOENT` instead caches nothing).
pub fn negative_entry(timeout: Duration) -> sys::fuse_entry_out {
    entry_out(0, 0, sys::fuse_attr::default(), timeout, Duration::ZERO)
}

/// A GETATTR / SETATTR reply body.
pub const fn attr_out(attr: sys::fuse_attr, timeout: Duration) -> sys::fuse_attr_out {
    let (attr_valid, attr_valid_nsec) = valid(timeout);
    sys::fuse_attr_out {
        attr_valid,
        attr_valid_nsec,
        dummy: 0,
        attr,
    }
}

/// Writes an entry reply (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK).
pub fn entry(out: &mut [u8], entry: &sys::fuse_entry_out) -> Result<usize, BufferTooSmall> {
    put(out, entry)
}

/// Writes a GETATTR / SETATTR reply.
pub fn attr(out: &mut [u8], attr: &sys::fuse_attr_out) -> Result<usize, BufferTooSmall> {
    put(out, attr)
}

/// Writes a STATX reply (7.39, Linux 6.6).
pub fn statx(out: &mut [u8], statx: &sys::fuse_statx_out) -> Result<usize, BufferTooSmall> {
    put(out, statx)
}

/// An OPEN / OPENDIR / CREATE reply: the file handle, `FOPEN_*` flags and, for passthrough,
/// the backing file.
///
/// Only a [`BackingId<Passthrough>`] can go here: an iomap device id is another type.
///
/// ```compile_fail
/// use fuse_backing::{BackingId, IomapDevice};
/// let device = BackingId::<IomapDevice>::new(1).unwrap();
/// let _ = fuse_wire::OpenOut::new(0).passthrough(device); // type error: not Passthrough
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOut {
    fh: u64,
    flags: u32,
    backing: Option<BackingId<Passthrough>>,
}

impl OpenOut {
    /// A reply with file handle `fh` and no flags.
    pub const fn new(fh: u64) -> OpenOut {
        OpenOut {
            fh,
            flags: 0,
            backing: None,
        }
    }

    /// Adds `FOPEN_*` flags (for example `FOPEN_KEEP_CACHE`, `FOPEN_NOFLUSH`).
    #[must_use]
    pub const fn flags(mut self, flags: u32) -> OpenOut {
        self.flags |= flags;
        self
    }

    /// Hands the open file to the kernel for passthrough I/O on backing file `id` (sets
    /// `FOPEN_PASSTHROUGH`). Needs `FUSE_PASSTHROUGH` agreed in INIT (Linux 6.9, 7.40) and the
    /// id registered on this connection; the kernel allows one backing file per inode at a
    /// time, so keep one id per inode, not per open.
    #[must_use]
    pub const fn passthrough(mut self, id: BackingId<Passthrough>) -> OpenOut {
        self.backing = Some(id);
        self
    }

    /// The reply struct.
    pub const fn to_sys(&self) -> sys::fuse_open_out {
        match self.backing {
            Some(id) => id.open_out(self.fh, self.flags),
            None => sys::fuse_open_out {
                fh: self.fh,
                open_flags: self.flags,
                backing_id: 0,
            },
        }
    }
}

/// Writes an OPEN / OPENDIR reply.
pub fn open(out: &mut [u8], open: &OpenOut) -> Result<usize, BufferTooSmall> {
    put(out, &open.to_sys())
}

/// Writes a CREATE reply (an entry followed by an open reply).
pub fn create(
    out: &mut [u8],
    entry: &sys::fuse_entry_out,
    open: &OpenOut,
) -> Result<usize, BufferTooSmall> {
    let need = size_of::<sys::fuse_entry_out>() + size_of::<sys::fuse_open_out>();
    if out.len() < need {
        return Err(BufferTooSmall {
            need,
            have: out.len(),
        });
    }
    let n = put(out, entry)?;
    Ok(n + put(&mut out[n..], &open.to_sys())?)
}

/// Writes a WRITE reply: `size` bytes written.
pub fn write(out: &mut [u8], size: u32) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_write_out { size, padding: 0 })
}

/// Writes a STATFS reply.
pub fn statfs(out: &mut [u8], st: &sys::fuse_kstatfs) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_statfs_out { st: *st })
}

/// Writes the size answer of GETXATTR / LISTXATTR (the request's `size` was 0).
pub fn xattr_size(out: &mut [u8], size: u32) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_getxattr_out { size, padding: 0 })
}

/// Writes an LSEEK reply: the resulting offset.
pub fn lseek(out: &mut [u8], offset: u64) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_lseek_out { offset })
}

/// Writes a BMAP reply: the device block.
pub fn bmap(out: &mut [u8], block: u64) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_bmap_out { block })
}

/// Writes a POLL reply: the ready events.
pub fn poll(out: &mut [u8], revents: u32) -> Result<usize, BufferTooSmall> {
    put(
        out,
        &sys::fuse_poll_out {
            revents,
            padding: 0,
        },
    )
}

/// Writes a GETLK reply.
pub fn lk(out: &mut [u8], lock: &sys::fuse_file_lock) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_lk_out { lk: *lock })
}

/// Writes a COPY_FILE_RANGE reply (bytes copied, at most `u32::MAX`).
pub fn copy_file_range(out: &mut [u8], size: u32) -> Result<usize, BufferTooSmall> {
    write(out, size)
}

/// Writes a COPY_FILE_RANGE_64 reply (7.45, Linux 6.18).
pub fn copy_file_range_64(out: &mut [u8], bytes_copied: u64) -> Result<usize, BufferTooSmall> {
    put(out, &sys::fuse_copy_file_range_out { bytes_copied })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_outside_the_kernel_range_become_eio() {
        assert_eq!(out_error(Errno::NOENT), -2);
        assert_eq!(out_error(Errno::from_raw_os_error(511)), -511);
        assert_eq!(out_error(Errno::from_raw_os_error(512)), -5);
        assert_eq!(out_error(Errno::from_raw_os_error(524)), -5);
        assert_eq!(out_error(Errno::from_raw_os_error(4095)), -5);
    }

    #[test]
    fn a_reply_too_large_is_erange_through_question_mark() {
        fn handler(out: &mut [u8]) -> Result<usize, Errno> {
            Ok(write(out, 1)?)
        }
        assert_eq!(handler(&mut [0; 4]), Err(Errno::RANGE));
        assert_eq!(handler(&mut [0; 8]), Ok(8));
    }

    #[test]
    fn headers_count_themselves() {
        let h = out_header(9, -2, 0);
        assert_eq!((h.len, h.error, h.unique), (16, -2, 9));
        assert_eq!(out_header(1, 0, 128).len, 144);
        assert_eq!(out_header(1, 0, usize::MAX).len, u32::MAX);
    }

    #[test]
    fn replies_are_laid_out_as_the_kernel_reads_them() {
        let mut out = [0xFFu8; 200];
        assert_eq!(write(&mut out, 0x0102_0304), Ok(8));
        assert_eq!(out[..4], 0x0102_0304u32.to_ne_bytes());
        assert_eq!(out[4..8], [0; 4]);
        let id = BackingId::<Passthrough>::new(7).unwrap();
        let n = open(
            &mut out,
            &OpenOut::new(5).flags(sys::FOPEN_KEEP_CACHE).passthrough(id),
        );
        assert_eq!(n, Ok(16));
        assert_eq!(out[..8], 5u64.to_ne_bytes());
        assert_eq!(out[8..12], (2u32 | 1 << 7).to_ne_bytes()); // KEEP_CACHE | PASSTHROUGH
        assert_eq!(out[12..16], 7i32.to_ne_bytes());
        let e = entry_out(
            3,
            1,
            sys::fuse_attr::default(),
            Duration::from_millis(1500),
            Duration::ZERO,
        );
        assert_eq!((e.entry_valid, e.entry_valid_nsec), (1, 500_000_000));
        assert_eq!(create(&mut out, &e, &OpenOut::new(1)), Ok(128 + 16));
        assert_eq!(out[..8], 3u64.to_ne_bytes());
        assert_eq!(out[128..136], 1u64.to_ne_bytes());
        let mut small = [0u8; 127];
        assert_eq!(
            create(&mut small, &e, &OpenOut::new(1)),
            Err(BufferTooSmall {
                need: 144,
                have: 127
            })
        );
        assert_eq!(
            data(&mut small, &[1; 128]),
            Err(BufferTooSmall {
                need: 128,
                have: 127
            })
        );
        assert!(small.iter().all(|&b| b == 0), "nothing written on failure");
    }
}
