//! Where everything lies in the one mapping of a queue ([`Layout`]), and the per-entry slot
//! record that REGISTER's `addr` points to.

use std::mem::{align_of, offset_of, size_of};

use fuse_kernel_sys as sys;

use crate::dev::DevFd;
use crate::error::BufferError;

/// Bytes of one entry's slot record (its iovec pair plus who it belongs to). The records are
/// at the start of the page-aligned mapping, so every record address is 64-aligned and the low
/// bits of a `user_data` built from it are free: bit 0 says which command the SQE carried.
pub const SLOT_SIZE: usize = 64;
pub(crate) const KIND_COMMIT: u64 = 1;

/// Bytes of a `fuse_uring_req_header` slot (288).
pub const HEADER_SIZE: usize = size_of::<sys::fuse_uring_req_header>();

/// The smallest payload buffer the kernel accepts (`FUSE_MIN_READ_BUFFER`, 8192).
pub const MIN_PAYLOAD_SIZE: usize = sys::FUSE_MIN_READ_BUFFER as usize;

/// The largest payload buffer: `fuse_uring_ent_in_out.payload_sz` is a `u32`.
pub const MAX_PAYLOAD_SIZE: usize = u32::MAX as usize;

/// One entry's record in the mapping. `iov` is what REGISTER's `addr` points to; the kernel
/// reads it during REGISTER only. Written once when the buffers are created, never after.
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub(crate) iov: [libc::iovec; 2],
    pub(crate) fd: DevFd,
    pub(crate) qid: u16,
    pub(crate) index: u32,
    /// The queue's pool (7.46), owned by the `QueueBuffers` (boxed: its address is stable);
    /// null without a pool.
    pub(crate) pool: *const crate::pool::PoolState,
}

const _: () = {
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(offset_of!(Slot, iov) == 0);
    assert!(size_of::<libc::iovec>() == 16);
    // Header slots are packed at a multiple of 288 from a 64-aligned start: 8-aligned, enough
    // for every struct read from or written to them.
    assert!(HEADER_SIZE % align_of::<sys::fuse_uring_req_header>() == 0);
    assert!(align_of::<sys::fuse_uring_req_header>() >= align_of::<sys::fuse_in_header>());
    assert!(align_of::<sys::fuse_uring_req_header>() >= align_of::<sys::fuse_out_header>());
    assert!(SLOT_SIZE % align_of::<sys::fuse_uring_req_header>() == 0);
    assert!(size_of::<sys::fuse_in_header>() <= sys::FUSE_URING_IN_OUT_HEADER_SZ as usize);
    assert!(size_of::<sys::fuse_out_header>() <= sys::FUSE_URING_IN_OUT_HEADER_SZ as usize);
    assert!(offset_of!(sys::fuse_uring_req_header, in_out) == 0);
};

/// Where everything lies in the one mapping of a queue.
///
/// ```text
/// [0, headers_offset)                 depth slot records of 64 bytes (the iovec pairs)
/// [headers_offset, + depth * 288)     depth fuse_uring_req_header slots, packed
/// [payloads_offset, + depth * stride) depth payload slots, page-aligned, stride = payload
///                                     size rounded up to the page size
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub(crate) depth: u32,
    pub(crate) payload_size: usize,
    pub(crate) page_size: usize,
    pub(crate) headers_offset: usize,
    pub(crate) payloads_offset: usize,
    pub(crate) payload_stride: usize,
    pub(crate) len: usize,
}

impl Layout {
    /// Computes the layout of `depth` entries with `payload_size`-byte payload buffers for
    /// pages of `page_size` bytes.
    ///
    /// # Errors
    /// [`BufferError::ZeroDepth`], [`BufferError::PayloadTooSmall`] (below 8192),
    /// [`BufferError::PayloadTooLarge`] (above `u32::MAX`), [`BufferError::TooLarge`] when the
    /// total overflows, [`BufferError::BadPageSize`] when `page_size` is not a power of two of
    /// at least 4096.
    pub fn new(depth: u32, payload_size: usize, page_size: usize) -> Result<Layout, BufferError> {
        if depth == 0 {
            return Err(BufferError::ZeroDepth);
        }
        if payload_size < MIN_PAYLOAD_SIZE {
            return Err(BufferError::PayloadTooSmall {
                requested: payload_size,
                minimum: MIN_PAYLOAD_SIZE,
            });
        }
        if payload_size > MAX_PAYLOAD_SIZE {
            return Err(BufferError::PayloadTooLarge {
                requested: payload_size,
                maximum: MAX_PAYLOAD_SIZE,
            });
        }
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(BufferError::BadPageSize(page_size));
        }
        let too_large = || BufferError::TooLarge {
            depth,
            payload_size,
        };
        let round_up = |x: usize| x.checked_add(page_size - 1).map(|x| x & !(page_size - 1));
        let n = depth as usize;
        let headers_offset = n.checked_mul(SLOT_SIZE).ok_or_else(too_large)?;
        let headers_end = n
            .checked_mul(HEADER_SIZE)
            .and_then(|h| h.checked_add(headers_offset))
            .ok_or_else(too_large)?;
        let payloads_offset = round_up(headers_end).ok_or_else(too_large)?;
        let payload_stride = round_up(payload_size).ok_or_else(too_large)?;
        let len = n
            .checked_mul(payload_stride)
            .and_then(|p| p.checked_add(payloads_offset))
            .filter(|&len| len <= isize::MAX as usize)
            .ok_or_else(too_large)?;
        Ok(Layout {
            depth,
            payload_size,
            page_size,
            headers_offset,
            payloads_offset,
            payload_stride,
            len,
        })
    }

    /// Number of entries.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Size of each payload buffer (`iov[1].iov_len`).
    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// The page size the layout was made for.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Total bytes of the mapping (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a layout has at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of entry `index`'s slot record (its iovec pair).
    pub fn slot_offset(&self, index: u32) -> usize {
        index as usize * SLOT_SIZE
    }

    /// Offset of entry `index`'s `fuse_uring_req_header` (288 bytes).
    pub fn header_offset(&self, index: u32) -> usize {
        self.headers_offset + index as usize * HEADER_SIZE
    }

    /// Offset of entry `index`'s payload buffer (page-aligned).
    pub fn payload_offset(&self, index: u32) -> usize {
        self.payloads_offset + index as usize * self.payload_stride
    }

    /// Distance between consecutive payload buffers (payload size rounded up to pages).
    pub fn payload_stride(&self) -> usize {
        self.payload_stride
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{QueueBuffers, QueueConfig};

    #[test]
    fn layout_errors_before_any_mmap() {
        assert!(matches!(
            Layout::new(0, 8192, 4096),
            Err(BufferError::ZeroDepth)
        ));
        assert!(matches!(
            Layout::new(1, 8191, 4096),
            Err(BufferError::PayloadTooSmall {
                requested: 8191,
                minimum: 8192
            })
        ));
        assert!(matches!(
            Layout::new(1, u32::MAX as usize + 1, 4096),
            Err(BufferError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            Layout::new(u32::MAX, u32::MAX as usize, 4096),
            Err(BufferError::TooLarge { .. })
        ));
        assert!(matches!(
            Layout::new(1, 8192, 3000),
            Err(BufferError::BadPageSize(3000))
        ));
        // QueueBuffers::new reports the same errors.
        assert!(matches!(
            QueueBuffers::new(QueueConfig::unbound(0, 0, 1 << 20)),
            Err(BufferError::ZeroDepth)
        ));
        assert!(matches!(
            QueueBuffers::new(QueueConfig::unbound(0, 4, 4096)),
            Err(BufferError::PayloadTooSmall { .. })
        ));
    }

    /// Regions of one layout: (start, end) of every slot record, header and payload.
    fn regions(l: &Layout) -> Vec<(usize, usize, &'static str)> {
        let mut r = Vec::new();
        for i in 0..l.depth() {
            r.push((l.slot_offset(i), l.slot_offset(i) + 64, "slot"));
            r.push((l.header_offset(i), l.header_offset(i) + 288, "header"));
            r.push((
                l.payload_offset(i),
                l.payload_offset(i) + l.payload_size(),
                "payload",
            ));
        }
        r.sort();
        r
    }

    #[test]
    fn layout_is_aligned_packed_and_disjoint() {
        for (depth, payload, page) in [
            (1, 8192, 4096),
            (3, 8193, 4096),
            (256, 1 << 20, 4096),
            (7, 135_168, 65536),
            (100, 12_288, 16384),
        ] {
            let l = Layout::new(depth, payload, page).unwrap();
            // Sizes: 64-byte records, 288-byte headers back to back, page-rounded payloads.
            assert_eq!(l.slot_offset(0), 0);
            assert_eq!(l.header_offset(0), depth as usize * 64);
            assert_eq!(l.payload_stride(), payload.div_ceil(page) * page);
            assert_eq!(
                l.payload_offset(0),
                (depth as usize * (64 + 288)).div_ceil(page) * page
            );
            assert_eq!(
                l.len(),
                l.payload_offset(0) + depth as usize * l.payload_stride()
            );
            assert_eq!(l.len() % page, 0);
            for i in 0..depth {
                assert_eq!(l.slot_offset(i) % 64, 0);
                assert_eq!(l.header_offset(i) % 8, 0);
                assert_eq!(l.payload_offset(i) % page, 0);
                if i > 0 {
                    assert_eq!(l.header_offset(i) - l.header_offset(i - 1), 288, "packed");
                }
            }
            // No overlap, everything inside the mapping.
            let r = regions(&l);
            for w in r.windows(2) {
                assert!(w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
            }
            assert!(r.last().unwrap().1 <= l.len());
        }
    }
}
