//! Buffer pools (protocol 7.46, Linux 7.3): the payload region of a [`QueueBuffers`] handed to
//! the kernel as one pool, and who may touch which of its buffers.
//!
//! Without a pool every entry has a payload buffer of its own. With a pool
//! (`FUSE_IO_URING_CMD_ADD_BUFPOOL`), REGISTER carries no payload buffer; the kernel cuts the
//! pool into `len / payload_size` buffers and, per request, picks a free one when the request
//! has payload to carry (arguments after `op_in`, or a reply with data), reporting where in
//! `fuse_uring_ent_in_out.offset`. It gives the buffer back when the entry is committed.
//!
//! # Ownership of a pool buffer
//!
//! A request's pool buffer belongs to the entry that holds the request, exactly like a
//! payload buffer of its own: from the completion until the entry's COMMIT_AND_FETCH SQE is
//! built. Two things the kernel tells us cannot be trusted to make that exclusive by
//! themselves: `offset` is 0 both for buffer 0 and for a request that got no buffer, and an
//! offset could lie outside the pool or between buffers. So:
//!
//! - an offset that is not a multiple of the buffer size, or whose buffer ends past the pool,
//!   gives no payload access (an error from [`Entry::payload_region`](crate::Entry)), never an
//!   out-of-bounds access;
//! - offset 0 counts as buffer 0 only when the kernel's rule says the request has a buffer
//!   (payload bytes, or an opcode whose reply carries data, or a zero-copy WRITE);
//! - each buffer has a claim (an atomic holding the owning entry's index + 1): an entry gets
//!   access only by claiming its buffer, and gives the claim back when its token is consumed
//!   (the SQE is built) or dropped. A buffer claimed by another entry gives no access. So no
//!   two entries ever reach the same bytes, whatever the kernel reports.

use std::sync::atomic::{AtomicU32, Ordering};

use fuse_kernel_sys as sys;

/// The opcodes whose reply is the `fuse_out_header` alone (no out-arguments in the kernel), so
/// the kernel selects no pool buffer for them unless their request carries payload bytes.
/// From Linux 7.3's `fs/fuse` (each request's `out_numargs` is 0).
const HEADER_ONLY_REPLIES: &[u32] = &[
    sys::FUSE_FORGET,
    sys::FUSE_BATCH_FORGET,
    sys::FUSE_INTERRUPT,
    sys::FUSE_NOTIFY_REPLY,
    sys::FUSE_UNLINK,
    sys::FUSE_RMDIR,
    sys::FUSE_RENAME,
    sys::FUSE_RENAME2,
    sys::FUSE_ACCESS,
    sys::FUSE_FLUSH,
    sys::FUSE_RELEASE,
    sys::FUSE_RELEASEDIR,
    sys::FUSE_FSYNC,
    sys::FUSE_FSYNCDIR,
    sys::FUSE_SETXATTR,
    sys::FUSE_REMOVEXATTR,
    sys::FUSE_SETLK,
    sys::FUSE_SETLKW,
    sys::FUSE_FALLOCATE,
    sys::FUSE_DESTROY,
    sys::FUSE_SYNCFS,
    sys::FUSE_SETUPMAPPING,
    sys::FUSE_REMOVEMAPPING,
];

/// Whether the kernel gave this request a pool buffer (its `fuse_uring_req_has_copyable_payload`
/// rule): payload bytes in, or data out, except that a zero-copy READ moves its data through
/// the zero-copy slot and gets none, and a zero-copy WRITE gets one for its `fuse_write_out`.
pub(crate) fn kernel_selects_buffer(opcode: u32, payload_sz: u32, zero_copy: bool) -> bool {
    if zero_copy {
        return opcode == sys::FUSE_WRITE;
    }
    payload_sz > 0 || !HEADER_ONLY_REPLIES.contains(&opcode)
}

/// A pool's geometry and the claims on its buffers. Lives in the [`QueueBuffers`] (boxed, so
/// its address is stable) and is reached from every entry's slot record.
///
/// [`QueueBuffers`]: crate::QueueBuffers
#[derive(Debug)]
pub(crate) struct PoolState {
    /// Start of the pool (inside the queue's mapping).
    pub(crate) base: *mut u8,
    /// Bytes handed to the kernel.
    pub(crate) len: usize,
    /// The kernel's buffer size (the connection's payload size).
    pub(crate) buf_size: usize,
    /// `len / buf_size`.
    pub(crate) nr_bufs: usize,
    /// The registered-buffer index the pool was added under (`IORING_URING_CMD_FIXED`).
    pub(crate) registered: Option<u16>,
    /// Zero-copy queue: entry `i` uses registered-buffer slot `zero_copy_first + i`.
    pub(crate) zero_copy_first: Option<u16>,
    /// 0: free; otherwise the index + 1 of the entry that holds the buffer.
    claims: Box<[AtomicU32]>,
}

/// Why an entry of a pool queue has no payload buffer to read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The kernel selected no buffer for this request (its reply is the header alone, or it
    /// is a zero-copy READ).
    NoBuffer,
    /// `fuse_uring_ent_in_out.offset` is not the start of a buffer inside the pool.
    BadOffset {
        /// The offset the kernel reported.
        offset: u32,
        /// The pool's size in bytes.
        pool_len: usize,
        /// The size of one buffer.
        buf_size: usize,
    },
    /// The buffer at this offset is held by another entry of the queue (the kernel reported
    /// a buffer that it had not given back yet).
    Busy {
        /// The offset the kernel reported.
        offset: u32,
        /// The entry that holds it.
        holder: u32,
    },
}

impl std::fmt::Display for PoolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PoolError::NoBuffer => f.write_str("the kernel gave this request no pool buffer"),
            PoolError::BadOffset {
                offset,
                pool_len,
                buf_size,
            } => write!(
                f,
                "pool offset {offset} is not the start of a {buf_size}-byte buffer inside the \
                 {pool_len}-byte pool"
            ),
            PoolError::Busy { offset, holder } => {
                write!(f, "the pool buffer at {offset} is held by entry {holder}")
            }
        }
    }
}

impl std::error::Error for PoolError {}

impl PoolState {
    pub(crate) fn new(
        base: *mut u8,
        len: usize,
        buf_size: usize,
        registered: Option<u16>,
        zero_copy_first: Option<u16>,
    ) -> PoolState {
        let nr_bufs = len / buf_size;
        PoolState {
            base,
            len,
            buf_size,
            nr_bufs,
            registered,
            zero_copy_first,
            claims: (0..nr_bufs).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    /// The buffer index of `offset`, checked to be a whole buffer inside the pool.
    pub(crate) fn locate(&self, offset: u32) -> Result<usize, PoolError> {
        let bad = PoolError::BadOffset {
            offset,
            pool_len: self.len,
            buf_size: self.buf_size,
        };
        let at = offset as usize;
        if at % self.buf_size != 0 {
            return Err(bad);
        }
        let index = at / self.buf_size;
        if index >= self.nr_bufs || at + self.buf_size > self.len {
            return Err(bad);
        }
        Ok(index)
    }

    /// Claims buffer `index` for entry `entry` (or finds it already claimed by it).
    pub(crate) fn claim(&self, index: usize, entry: u32) -> Result<(), u32> {
        let me = entry + 1;
        match self.claims[index].compare_exchange(0, me, Ordering::Acquire, Ordering::Acquire) {
            Ok(_) => Ok(()),
            Err(holder) if holder == me => Ok(()),
            Err(holder) => Err(holder - 1),
        }
    }

    /// The entry that holds buffer `index`, if any.
    pub(crate) fn holder(&self, index: usize) -> Option<u32> {
        self.claims[index].load(Ordering::Acquire).checked_sub(1)
    }

    /// Gives back entry `entry`'s claim on buffer `index`, if it holds one.
    pub(crate) fn release(&self, index: usize, entry: u32) {
        let _ =
            self.claims[index].compare_exchange(entry + 1, 0, Ordering::Release, Ordering::Relaxed);
    }

    /// The zero-copy slot of entry `entry`, on a zero-copy queue.
    pub(crate) fn zero_copy_slot(&self, entry: u32) -> Option<u16> {
        self.zero_copy_first
            .and_then(|first| u16::try_from(u32::from(first) + entry).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(len: usize, buf: usize) -> PoolState {
        PoolState::new(std::ptr::null_mut(), len, buf, None, None)
    }

    #[test]
    fn offsets_outside_the_pool_or_between_buffers_are_refused() {
        let p = pool(4 * 8192, 8192);
        assert_eq!(p.nr_bufs, 4);
        assert_eq!(p.locate(0), Ok(0));
        assert_eq!(p.locate(3 * 8192), Ok(3));
        for bad in [1, 4096, 8191, 4 * 8192, 5 * 8192, u32::MAX] {
            assert_eq!(
                p.locate(bad),
                Err(PoolError::BadOffset {
                    offset: bad,
                    pool_len: 4 * 8192,
                    buf_size: 8192
                }),
                "offset {bad}"
            );
        }
        // A pool that is not a whole number of buffers: the tail is no buffer.
        let p = pool(2 * 8192 + 100, 8192);
        assert_eq!(p.nr_bufs, 2);
        assert!(p.locate(2 * 8192).is_err());
    }

    #[test]
    fn a_buffer_has_one_holder_at_a_time() {
        let p = pool(2 * 8192, 8192);
        assert_eq!(p.claim(0, 5), Ok(()));
        assert_eq!(p.claim(0, 5), Ok(()), "the holder may claim again");
        assert_eq!(p.claim(0, 6), Err(5));
        p.release(0, 6); // not the holder: no effect
        assert_eq!(p.claim(0, 6), Err(5));
        p.release(0, 5);
        assert_eq!(p.claim(0, 6), Ok(()));
        assert_eq!(
            p.claim(1, 0),
            Ok(()),
            "entry 0 is not confused with a free buffer"
        );
        assert_eq!(p.claim(1, 1), Err(0));
    }

    #[test]
    fn the_kernels_buffer_rule() {
        // Payload in: always a buffer.
        assert!(kernel_selects_buffer(sys::FUSE_UNLINK, 6, false));
        // Header-only replies without payload: none.
        for op in [sys::FUSE_RELEASE, sys::FUSE_FLUSH, sys::FUSE_FSYNC] {
            assert!(!kernel_selects_buffer(op, 0, false));
        }
        // Replies with data: a buffer even without payload in.
        for op in [
            sys::FUSE_GETATTR,
            sys::FUSE_READ,
            sys::FUSE_OPEN,
            sys::FUSE_STATFS,
        ] {
            assert!(kernel_selects_buffer(op, 0, false));
        }
        // Zero-copy: READ's data goes through the slot; WRITE still gets one for write_out.
        assert!(!kernel_selects_buffer(sys::FUSE_READ, 0, true));
        assert!(kernel_selects_buffer(sys::FUSE_WRITE, 4096, true));
    }
}

/// The pool through the public types, without a kernel: SQEs, payload located from the
/// offset the "kernel" (the test) writes, refusals, claims.
#[cfg(test)]
#[allow(unsafe_code)] // minting tokens from made-up completions, as the kernel would
mod queue_tests {
    use crate::sqe::tests::decode;
    use crate::{Command, Pool, PoolError, QueueBuffers, QueueConfig};
    use fuse_kernel_sys as sys;
    use fuse_wire::init_flags;

    const PAYLOAD: usize = 3 * 4096;

    fn pooled(depth: u32, pool: Pool) -> QueueBuffers {
        let mut config = QueueConfig::unbound(1, depth, PAYLOAD);
        config.pool = Some(pool);
        QueueBuffers::new(config).expect("buffers")
    }

    /// Delivers a request into `entry` as the kernel would (header, ent_in_out) and returns
    /// the completed token: REGISTER's SQE, then its completion.
    fn deliver<'b>(
        buffers: &'b QueueBuffers,
        mut entry: crate::Entry<'b>,
        opcode: u32,
        payload_sz: u32,
        offset: u32,
    ) -> crate::Entry<'b> {
        let h = entry.header_mut();
        let in_header = sys::fuse_in_header {
            len: 40 + payload_sz,
            opcode,
            unique: 7,
            ..Default::default()
        };
        h.in_out[..40]
            .iter_mut()
            .zip(sys::zerocopy::IntoBytes::as_bytes(&in_header))
            .for_each(|(d, s)| *d = *s as core::ffi::c_char);
        h.ring_ent_in_out.commit_id = 7;
        h.ring_ent_in_out.payload_sz = payload_sz;
        h.ring_ent_in_out.offset = offset;
        let user_data = entry.register().get_user_data();
        // SAFETY: the SQE was never pushed; its user_data is decoded once.
        let done = unsafe { buffers.complete(user_data, 0) }.expect("ours");
        assert_eq!(done.command, Command::Register);
        done.entry
    }

    #[test]
    fn pool_sqes_register_empty_payload_and_carry_fixed_index_and_slot() {
        let b = pooled(4, Pool::standard(true));
        let info = b.pool().expect("a pool");
        assert_eq!(info.iovec.iov_len, 4 * PAYLOAD, "the whole payload region");
        assert_eq!(
            info.iovec.iov_base as usize,
            b.mapping().0.as_ptr() as usize + b.layout().payload_offset(0)
        );
        assert_eq!((info.buf_size, info.buffers), (PAYLOAD, 4));
        let add_queue = decode(&b.add_queue_sqe(1).expect("pool"));
        assert_eq!(
            (add_queue.cmd_op, add_queue.cmd_flags, add_queue.cmd_qid),
            (3, 1, 1)
        );
        let add_pool = decode(&b.add_bufpool_sqe(3).expect("pool"));
        assert_eq!(add_pool.cmd_op, 4);
        assert_eq!(
            add_pool.cmd_bufpool,
            (info.iovec.iov_base as u64, 4 * PAYLOAD as u32, 0)
        );
        assert_eq!(
            (add_pool.uring_cmd_flags, add_pool.buf_index),
            (1, 0),
            "registered as 0"
        );
        let mut entries = b.take_entries().expect("fresh");
        let _first = entries.next().expect("entry 0");
        let second = entries.next().expect("entry 1");
        assert_eq!(
            second.slot().iov[1].iov_len,
            0,
            "REGISTER's payload iovec is empty"
        );
        assert!(second.slot().iov[1].iov_base.is_null());
        let reg = decode(&second.register());
        assert_eq!(
            (reg.cmd_op, reg.len, reg.uring_cmd_flags, reg.buf_index),
            (1, 2, 1, 0)
        );
        assert_eq!(
            reg.cmd_bufpool.0 & 0xffff,
            2,
            "entry 1's zero-copy slot is 1 + 1"
        );
        // Without zero-copy: no slot; without registration: no FIXED flag.
        let plain = pooled(2, Pool::default());
        let e = plain.take_entries().expect("fresh").next().expect("entry");
        let reg = decode(&e.register());
        assert_eq!(
            (reg.uring_cmd_flags, reg.buf_index, reg.cmd_bufpool),
            (0, 0, (0, 0, 0))
        );
        assert_eq!(decode(&plain.add_queue_sqe(1).expect("pool")).cmd_flags, 0);
    }

    #[test]
    fn the_payload_is_found_at_the_offset_and_nowhere_else() {
        let b = pooled(4, Pool::standard(false));
        let base = b.pool().expect("pool").iovec.iov_base as usize;
        let mut entries = b.take_entries().expect("fresh");
        let (e0, e1, e2) = (
            entries.next().expect("e0"),
            entries.next().expect("e1"),
            entries.next().expect("e2"),
        );
        // A WRITE of 100 bytes in pool buffer 2.
        let mut w = deliver(&b, e0, sys::FUSE_WRITE, 100, 2 * PAYLOAD as u32);
        let (at, len) = w.payload_region().expect("buffer 2");
        assert_eq!((at as usize, len), (base + 2 * PAYLOAD, PAYLOAD));
        assert_eq!(w.payload().len(), 100);
        assert_eq!(w.payload_capacity(), PAYLOAD);
        w.reply(b"done").expect("fits");
        assert_eq!(w.payload(), b"done");
        // Another entry told the same offset gets nothing (the buffer is held).
        let mut dup = deliver(&b, e1, sys::FUSE_READ, 0, 2 * PAYLOAD as u32);
        assert_eq!(
            dup.payload_region(),
            Err(PoolError::Busy {
                offset: 2 * PAYLOAD as u32,
                holder: w.index()
            })
        );
        assert!(dup.payload_mut().is_empty());
        assert!(dup.reply(b"x").is_err());
        // Offsets outside the pool or between buffers: an error, never an access.
        for bad in [1, PAYLOAD as u32 + 8, 4 * PAYLOAD as u32, u32::MAX] {
            let e = deliver(&b, dup, sys::FUSE_READ, 10, bad);
            assert!(
                matches!(e.payload_region(), Err(PoolError::BadOffset { offset, .. }) if offset == bad)
            );
            assert!(e.payload().is_empty());
            assert_eq!(e.payload_capacity(), 0);
            dup = e;
        }
        // Offset 0 without a buffer (RELEASE: a header-only reply, no payload): no access
        // to buffer 0, which the kernel may have given to another request.
        let release = deliver(&b, e2, sys::FUSE_RELEASE, 0, 0);
        assert_eq!(release.payload_region(), Err(PoolError::NoBuffer));
        // Committing `w` gives buffer 2 back: the next request there can use it.
        let commit = decode(&w.commit_and_fetch());
        assert_eq!(
            (commit.cmd_op, commit.uring_cmd_flags, commit.buf_index),
            (2, 1, 0)
        );
        let again = deliver(&b, dup, sys::FUSE_READ, 0, 2 * PAYLOAD as u32);
        assert_eq!(again.payload_capacity(), PAYLOAD);
        // A GETATTR at offset 0 has a buffer (its reply carries data).
        let getattr = deliver(&b, release, sys::FUSE_GETATTR, 0, 0);
        assert_eq!(getattr.payload_capacity(), PAYLOAD);
    }

    #[test]
    fn a_pool_larger_than_4_gib_is_refused() {
        let mut config = QueueConfig::unbound(0, 4097, 1 << 20);
        config.pool = Some(Pool::default());
        assert!(matches!(
            QueueBuffers::new(config),
            Err(crate::BufferError::PoolTooLarge { len }) if len == 4097 << 20
        ));
    }

    #[test]
    fn pool_if_offered_follows_the_kernels_flag() {
        let c = QueueConfig::unbound(0, 1, PAYLOAD);
        let offered = init_flags::OVER_IO_URING | init_flags::HAS_IO_URING_BUFPOOL;
        assert_eq!(
            c.clone()
                .pool_if_offered(offered, Pool::standard(false))
                .pool,
            Some(Pool::standard(false))
        );
        assert_eq!(
            c.pool_if_offered(init_flags::OVER_IO_URING, Pool::standard(false))
                .pool,
            None,
            "a 7.45 kernel: per-entry buffers"
        );
    }
}
