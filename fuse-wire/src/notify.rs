//! Notifications: messages the server sends to the kernel on its own (`unique` 0, the
//! notification code in `fuse_out_header.error`).
//!
//! Each function writes a whole message (header and payload) into the caller's buffer and
//! returns its length; write it to `/dev/fuse` with one `write(2)` (also when requests come
//! over io_uring: notifications never go through the ring). Nothing is allocated.
//!
//! The kernel answers a notification it does not know (an older kernel) with `EINVAL` on the
//! write; the minimum protocol of each is in its docs.

use fuse_kernel_sys as sys;
use sys::zerocopy::{Immutable, IntoBytes};

use crate::dirent::{DirentError, NAME_MAX};
use crate::reply::BufferTooSmall;

/// Why a notification was not built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyError {
    /// The buffer is too small.
    BufferTooSmall(BufferTooSmall),
    /// A name is empty, longer than [`NAME_MAX`] or contains `/` or NUL.
    InvalidName,
}

impl core::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NotifyError::BufferTooSmall(e) => e.fmt(f),
            NotifyError::InvalidName => DirentError::InvalidName.fmt(f),
        }
    }
}

impl std::error::Error for NotifyError {}

impl From<BufferTooSmall> for NotifyError {
    fn from(e: BufferTooSmall) -> Self {
        NotifyError::BufferTooSmall(e)
    }
}

/// Writes header + `parts` into `out`.
fn message(out: &mut [u8], code: u32, parts: &[&[u8]]) -> Result<usize, NotifyError> {
    let payload: usize = parts.iter().map(|p| p.len()).sum();
    let need = size_of::<sys::fuse_out_header>().saturating_add(payload);
    if need > u32::MAX as usize {
        // `fuse_out_header.len` cannot say it (out_header would saturate): no message.
        return Err(BufferTooSmall {
            need,
            have: u32::MAX as usize,
        }
        .into());
    }
    let header = crate::reply::out_header(0, code as i32, payload);
    if out.len() < need {
        return Err(BufferTooSmall {
            need,
            have: out.len(),
        }
        .into());
    }
    let mut at = 0;
    for part in core::iter::once(header.as_bytes()).chain(parts.iter().copied()) {
        out[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(at)
}

/// A length or count the message carries in a `u32` field; a larger one cannot be said, and is
/// refused as [`BufferTooSmall`] with `need` the value and `have` the field's limit.
fn length_field(n: usize) -> Result<u32, BufferTooSmall> {
    u32::try_from(n).map_err(|_| BufferTooSmall {
        need: n,
        have: u32::MAX as usize,
    })
}

fn with_name<T: IntoBytes + Immutable>(
    out: &mut [u8],
    code: u32,
    arg: &T,
    name: &[u8],
) -> Result<usize, NotifyError> {
    if name.is_empty() || name.len() > NAME_MAX || name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(NotifyError::InvalidName);
    }
    message(out, code, &[arg.as_bytes(), name, b"\0"])
}

/// INVAL_INODE: drop cached attributes of inode `ino` and cached data in
/// `offset..offset + len` (`len` 0: to the end; `offset` negative: attributes only).
pub fn inval_inode(out: &mut [u8], ino: u64, offset: i64, len: i64) -> Result<usize, NotifyError> {
    let arg = sys::fuse_notify_inval_inode_out {
        ino,
        off: offset,
        len,
    };
    message(out, sys::FUSE_NOTIFY_INVAL_INODE, &[arg.as_bytes()])
}

/// INVAL_ENTRY: drop the cached lookup of `name` in directory `parent`; with `expire_only`
/// (`FUSE_EXPIRE_ONLY`, 7.38) only mark it stale.
pub fn inval_entry(
    out: &mut [u8],
    parent: u64,
    name: &[u8],
    expire_only: bool,
) -> Result<usize, NotifyError> {
    let arg = sys::fuse_notify_inval_entry_out {
        parent,
        // At most NAME_MAX, checked in with_name.
        namelen: name.len().min(NAME_MAX) as u32,
        flags: if expire_only {
            sys::FUSE_EXPIRE_ONLY
        } else {
            0
        },
    };
    with_name(out, sys::FUSE_NOTIFY_INVAL_ENTRY, &arg, name)
}

/// DELETE: `name` in `parent` (inode `child`) is gone; the kernel drops the entry and, if
/// the inode is cached, marks it deleted.
pub fn delete(out: &mut [u8], parent: u64, child: u64, name: &[u8]) -> Result<usize, NotifyError> {
    let arg = sys::fuse_notify_delete_out {
        parent,
        child,
        namelen: name.len().min(NAME_MAX) as u32,
        padding: 0,
    };
    with_name(out, sys::FUSE_NOTIFY_DELETE, &arg, name)
}

/// STORE: put `data` into the kernel's page cache of `nodeid` at `offset`.
pub fn store(out: &mut [u8], nodeid: u64, offset: u64, data: &[u8]) -> Result<usize, NotifyError> {
    let size = length_field(data.len())?;
    let arg = sys::fuse_notify_store_out {
        nodeid,
        offset,
        size,
        padding: 0,
    };
    message(out, sys::FUSE_NOTIFY_STORE, &[arg.as_bytes(), data])
}

/// RETRIEVE: ask the kernel for `size` bytes of `nodeid`'s page cache at `offset`; it
/// answers with a NOTIFY_REPLY request whose `unique` is `notify_unique`.
pub fn retrieve(
    out: &mut [u8],
    notify_unique: u64,
    nodeid: u64,
    offset: u64,
    size: u32,
) -> Result<usize, NotifyError> {
    let arg = sys::fuse_notify_retrieve_out {
        notify_unique,
        nodeid,
        offset,
        size,
        padding: 0,
    };
    message(out, sys::FUSE_NOTIFY_RETRIEVE, &[arg.as_bytes()])
}

/// POLL: wake the pollers of poll handle `kh` (from a POLL request with
/// `FUSE_POLL_SCHEDULE_NOTIFY`).
pub fn poll_wakeup(out: &mut [u8], kh: u64) -> Result<usize, NotifyError> {
    let arg = sys::fuse_notify_poll_wakeup_out { kh };
    message(out, sys::FUSE_NOTIFY_POLL, &[arg.as_bytes()])
}

/// RESEND (7.40, Linux 6.9): make the kernel send every pending request again (after the
/// server restarted its request handling).
pub fn resend(out: &mut [u8]) -> Result<usize, NotifyError> {
    message(out, sys::FUSE_NOTIFY_RESEND, &[])
}

/// INC_EPOCH (7.44): invalidate every cached lookup of the connection at once.
pub fn inc_epoch(out: &mut [u8]) -> Result<usize, NotifyError> {
    message(out, sys::FUSE_NOTIFY_INC_EPOCH, &[])
}

/// PRUNE (7.45, Linux 6.18): ask the kernel to forget the given inodes if unused.
pub fn prune(out: &mut [u8], nodeids: &[u64]) -> Result<usize, NotifyError> {
    let count = length_field(nodeids.len())?;
    let arg = sys::fuse_notify_prune_out {
        count,
        padding: 0,
        spare: 0,
    };
    message(
        out,
        sys::FUSE_NOTIFY_PRUNE,
        &[arg.as_bytes(), nodeids.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_pointer_width = "64")]
    #[cfg_attr(miri, ignore = "a 4 GiB allocation")]
    fn messages_longer_than_the_header_can_say_are_refused() {
        // A PRUNE list of 2^29 ids: 4 GiB + 32 bytes, more than fuse_out_header.len holds.
        // The header said u32::MAX (saturated) and, with a buffer that large, the bytes
        // written would not have matched it. (calloc'd lazily; refused before any copy.)
        let ids = vec![0u64; 1 << 29];
        let mut out = [0u8; 64];
        assert_eq!(
            prune(&mut out, &ids),
            Err(NotifyError::BufferTooSmall(BufferTooSmall {
                need: (1 << 32) + 32,
                have: u32::MAX as usize
            }))
        );
        assert!(out.iter().all(|&b| b == 0));
    }

    #[test]
    fn notifications_have_unique_0_and_the_code_as_error() {
        let mut out = [0u8; 64];
        let n = inval_entry(&mut out, 1, b"name", true).unwrap();
        // 16 header + 16 arg + 4 name + NUL.
        assert_eq!(n, 37);
        assert_eq!(out[..4], 37u32.to_ne_bytes());
        assert_eq!(out[4..8], 3i32.to_ne_bytes());
        assert_eq!(out[8..16], 0u64.to_ne_bytes());
        assert_eq!(out[16..24], 1u64.to_ne_bytes());
        assert_eq!(out[24..28], 4u32.to_ne_bytes());
        assert_eq!(out[28..32], 1u32.to_ne_bytes());
        assert_eq!(out[32..37], *b"name\0");
        assert_eq!(
            inval_entry(&mut out, 1, b"a\0b", false),
            Err(NotifyError::InvalidName)
        );
        assert_eq!(inc_epoch(&mut out), Ok(16));
        assert_eq!(out[4..8], 8i32.to_ne_bytes());
        assert_eq!(prune(&mut out, &[5, 6]), Ok(16 + 16 + 16));
        assert_eq!(out[32..40], 5u64.to_ne_bytes());
        assert!(matches!(
            store(&mut out, 1, 0, &[0; 64]),
            Err(NotifyError::BufferTooSmall(BufferTooSmall {
                need: 104,
                have: 64
            }))
        ));
    }
}
