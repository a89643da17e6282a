//! The entry token ([`Entry`]): the right to read and write one ring entry's buffers.

use std::fmt;
use std::marker::PhantomData;
use std::mem::size_of;
use std::ptr::{self, NonNull};

use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{FromBytes, Immutable, IntoBytes};
use io_uring::squeue::Entry128;
use rustix::io::Errno;

use crate::buffers::QueueBuffers;
use crate::command::Command;
use crate::error::ReplyError;
use crate::layout::{KIND_COMMIT, Slot};
use crate::pool::{PoolError, PoolState, kernel_selects_buffer};
use crate::sqe;

/// The token of one ring entry: a pointer-sized value whose possession is the right to read
/// and write the entry's buffers.
///
/// # Ownership, and why it is sound
/// An entry's buffers (its `fuse_uring_req_header` slot and its payload buffer) are written
/// by the kernel only while a command for the entry is in flight: the kernel copies a request
/// into them just before it completes REGISTER or COMMIT_AND_FETCH with `res = 0`, and reads
/// the reply from them while processing COMMIT_AND_FETCH. It touches them at no other time
/// (at teardown, armed entries complete with `ENOTCONN` without a copy).
///
/// - The token is not `Clone`. Building an SQE ([`register`](Entry::register),
///   [`commit_and_fetch`](Entry::commit_and_fetch)) consumes it: while the command is in
///   flight no safe code can reach the buffers.
/// - The SQE's `user_data` names the entry; decoding the CQE turns it back into the one
///   token, after the kernel is done with the buffers (the CQE is read with acquire
///   ordering, so the kernel's writes are visible).
/// - While you hold the token, the accessors give shared (`&self`) or exclusive (`&mut self`)
///   access to the buffers, checked by the borrow checker. The token borrows the
///   [`QueueBuffers`], so the memory cannot be unmapped under it.
/// - COMMIT_AND_FETCH takes the commit id from the entry's own header, where the kernel put
///   it, and the writers never change it; so a commit always refers to the request in *this*
///   entry (the kernel picks the buffers by commit id, not by `user_data`).
///
/// What the token cannot see is the ring. With [`Queue`](crate::Queue), which owns the ring,
/// pushes the SQEs, decodes the CQEs and counts the entries in the kernel, all of it is safe.
/// With your own ring, two `unsafe` steps carry the rest of the contract: io-uring's `push`
/// (push each SQE built here **once**, unchanged, `user_data` included, and keep the
/// `QueueBuffers` alive until its CQE) and [`QueueBuffers::complete`] (decode each of those
/// CQEs once, with the same `QueueBuffers`).
pub struct Entry<'a> {
    pub(crate) slot: NonNull<Slot>,
    pub(crate) _buffers: PhantomData<&'a QueueBuffers>,
}

// SAFETY: an `Entry` is exclusive access to one entry's buffers (like `&mut [u8]`) plus shared
// access to its immutable slot record; `QueueBuffers` is `Sync`.
unsafe impl Send for Entry<'_> {}
// SAFETY: `&Entry` only reads (the slot record and the buffers); writes need `&mut Entry`.
unsafe impl Sync for Entry<'_> {}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("qid", &self.qid())
            .field("index", &self.index())
            .field("commit_id", &self.commit_id())
            .finish()
    }
}

impl<'a> Entry<'a> {
    #[inline(always)]
    pub(crate) fn slot(&self) -> &Slot {
        // SAFETY: `slot` points to an initialised, 64-aligned record inside the mapping, which
        // lives at least as long as 'a (the token borrows the `QueueBuffers`); records are never
        // written after `QueueBuffers::new` (the kernel only reads the iovec pair).
        unsafe { self.slot.as_ref() }
    }

    #[inline(always)]
    fn header_ptr(&self) -> *mut sys::fuse_uring_req_header {
        self.slot().iov[0].iov_base.cast()
    }

    #[inline(always)]
    fn header(&self) -> &sys::fuse_uring_req_header {
        // SAFETY: the header slot is 288 bytes inside the mapping, 8-aligned, of a type valid
        // for every bit pattern (integers and byte arrays; the mapping is zero-initialised).
        // Holding the token means the kernel does not write it (see the type docs), and `&self`
        // excludes writes through this token.
        unsafe { &*self.header_ptr() }
    }

    #[inline(always)]
    pub(crate) fn header_mut(&mut self) -> &mut sys::fuse_uring_req_header {
        // SAFETY: as in `header`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.header_ptr() }
    }

    /// The entry's index in its [`QueueBuffers`] (`0..depth`), for side tables.
    #[inline]
    pub fn index(&self) -> u32 {
        self.slot().index
    }

    /// The queue id the entry belongs to.
    #[inline]
    pub fn qid(&self) -> u16 {
        self.slot().qid
    }

    /// The request's `fuse_in_header` (`in_out[0..40)` of the header slot).
    ///
    /// Meaningful after a successful completion; zero in an entry that never received a
    /// request, and overwritten by the reply's `fuse_out_header` once one is set.
    #[inline]
    pub fn in_header(&self) -> &sys::fuse_in_header {
        // SAFETY: `in_out` is at offset 0 of the 8-aligned header slot and is 128 bytes, more
        // than the 40 of `fuse_in_header` (both asserted at compile time); `fuse_in_header` is
        // valid for every bit pattern; aliasing as in `header`.
        unsafe { &*self.header_ptr().cast::<sys::fuse_in_header>() }
    }

    /// The `fuse_uring_ent_in_out` the kernel wrote with the request (commit id, payload size).
    #[inline]
    pub fn ent_in_out(&self) -> &sys::fuse_uring_ent_in_out {
        &self.header().ring_ent_in_out
    }

    /// The commit id of the request in the entry (the kernel sets it to the request's
    /// `unique`); [`commit_and_fetch`](Entry::commit_and_fetch) sends it back.
    #[inline]
    pub fn commit_id(&self) -> u64 {
        self.ent_in_out().commit_id
    }

    /// The opcode's fixed argument (`op_in`), such as `fuse_getattr_in` for GETATTR or
    /// `fuse_read_in` for READ: `in_header.len - 40 - payload_sz` bytes, at most 128. Empty for
    /// opcodes whose first argument is empty or is a name (LOOKUP: the name is in the payload).
    #[inline]
    pub fn op_in(&self) -> &[u8] {
        let header = self.header();
        let len = (self.in_header().len as usize)
            .saturating_sub(size_of::<sys::fuse_in_header>())
            .saturating_sub(header.ring_ent_in_out.payload_sz as usize)
            .min(header.op_in.len());
        let op_in = ptr::from_ref(&header.op_in).cast::<u8>();
        // SAFETY: `op_in` is a 128-byte array inside the header, `len` <= 128, and c_char and
        // u8 have the same size and validity; aliasing as in `header`.
        unsafe { std::slice::from_raw_parts(op_in, len) }
    }

    /// The opcode's fixed argument as a struct (an unaligned copy), or `None` when `op_in` is
    /// shorter than `T`.
    ///
    /// `T` is any `fuse-kernel-sys` struct (they derive zerocopy's `FromBytes`, the compile-time
    /// proof that every bit pattern is a valid value), for example `fuse_read_in`.
    #[inline]
    pub fn op_in_as<T: FromBytes>(&self) -> Option<T> {
        T::read_from_prefix(self.op_in())
            .ok()
            .map(|(value, _)| value)
    }

    #[inline(always)]
    fn pool(&self) -> Option<&PoolState> {
        let pool = self.slot().pool;
        // SAFETY: non-null `pool` points to the `PoolState` boxed in the `QueueBuffers`, which
        // lives (and is never moved or changed but for its atomics) as long as the buffers the
        // token borrows.
        (!pool.is_null()).then(|| unsafe { &*pool })
    }

    /// With a pool: claims the pool buffer of the request the kernel just delivered, when the
    /// kernel gave it one. Called once per successful completion, while the header is still
    /// exactly what the kernel wrote (a reply overwrites the opcode and `payload_sz`).
    #[inline]
    pub(crate) fn claim_pool_buffer(&self) {
        let Some(pool) = self.pool() else { return };
        let ent = self.ent_in_out();
        let header = self.in_header();
        if ent.offset == 0 {
            // 0 is buffer 0 or no buffer at all: the kernel's own rule tells them apart.
            let zero_copy = ent.flags & u64::from(sys::FUSE_URING_ENT_ZERO_COPY) != 0;
            if !kernel_selects_buffer(header.opcode, ent.payload_sz, zero_copy) {
                return;
            }
        }
        if let Ok(index) = pool.locate(ent.offset) {
            // A buffer another entry still holds stays theirs: this entry gets no access.
            let _ = pool.claim(index, self.index());
        }
    }

    /// The payload buffer of the request in the entry: its own buffer without a pool; with a
    /// pool (7.46) the pool buffer at `fuse_uring_ent_in_out.offset`, claimed for this entry
    /// when its completion was decoded and until its token is consumed or dropped (see the
    /// `pool` module docs).
    ///
    /// # Errors
    /// With a pool: [`PoolError::NoBuffer`] when the kernel gave the request no buffer (its
    /// reply is the header alone, a zero-copy READ, or no request yet),
    /// [`PoolError::BadOffset`] for an offset that is not a buffer of the pool,
    /// [`PoolError::Busy`] when another entry holds that buffer.
    #[inline]
    pub fn payload_region(&self) -> Result<(*mut u8, usize), PoolError> {
        let Some(pool) = self.pool() else {
            let iov = self.slot().iov[1];
            return Ok((iov.iov_base.cast(), iov.iov_len));
        };
        let offset = self.ent_in_out().offset;
        let index = pool.locate(offset)?;
        match pool.holder(index) {
            Some(holder) if holder == self.index() => {
                Ok((pool.base.wrapping_add(offset as usize), pool.buf_size))
            }
            Some(holder) => Err(PoolError::Busy { offset, holder }),
            None => Err(PoolError::NoBuffer),
        }
    }

    /// The size of the payload buffer: what REGISTER announced in `iov[1].iov_len`, or with a
    /// pool the pool's buffer size, or 0 when [`payload_region`](Entry::payload_region) gives
    /// no buffer.
    #[inline]
    pub fn payload_capacity(&self) -> usize {
        self.payload_region().map_or(0, |(_, len)| len)
    }

    /// The request's remaining arguments (names, write data...): `payload_sz` bytes of the
    /// payload buffer, cut at the buffer's size if `payload_sz` claims more. Empty when there
    /// is no buffer (see [`payload_region`](Entry::payload_region)).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let payload_sz = self.ent_in_out().payload_sz as usize;
        if payload_sz == 0 {
            return &[];
        }
        let Ok((base, capacity)) = self.payload_region() else {
            return &[];
        };
        let len = payload_sz.min(capacity);
        // SAFETY: the payload buffer is `capacity` bytes inside the mapping (its own buffer, or
        // a pool buffer checked by `locate` and claimed for this entry alone) and `len` is at
        // most that; u8 is valid for every bit pattern (the memory is initialised: zero from
        // mmap or written by the kernel or by us); the token excludes kernel writes and
        // `&self` excludes our own.
        unsafe { std::slice::from_raw_parts(base, len) }
    }

    /// The whole payload buffer, to write a reply in place (then call
    /// [`set_reply`](Entry::set_reply) with its length). It still holds the request's payload
    /// until overwritten. Empty when there is no buffer (see
    /// [`payload_region`](Entry::payload_region)).
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let Ok((base, len)) = self.payload_region() else {
            return &mut [];
        };
        // SAFETY: as in `payload`, for the whole buffer, and `&mut self` makes it exclusive.
        unsafe { std::slice::from_raw_parts_mut(base, len) }
    }

    /// What a zero-copy request (7.46) lent this entry: `Some` when the kernel registered the
    /// request's pages in the entry's zero-copy slot (`FUSE_URING_ENT_ZERO_COPY`).
    ///
    /// The pages belong to the request until the entry is committed: read them (a WRITE) or
    /// fill them (a READ) with io_uring fixed-buffer operations on the queue's ring, with
    /// `buf_index` = [`ZeroCopy::slot`] and the address an offset into the request's data
    /// (0 for its start); wait for those to complete before committing, then reply with
    /// [`set_zero_copy_reply`](Entry::set_zero_copy_reply). The pages are the client's
    /// (page cache or user pages), never memory of this process, so no Rust reference to them
    /// exists; [`Queue::zero_copy_read`](crate::Queue::zero_copy_read) builds and pushes such
    /// a read for a READ request.
    #[inline]
    pub fn zero_copy(&self) -> Option<ZeroCopy> {
        let ent = self.ent_in_out();
        if ent.flags & u64::from(sys::FUSE_URING_ENT_ZERO_COPY) == 0 {
            return None;
        }
        let slot = self.pool()?.zero_copy_slot(self.index())?;
        let opcode = self.in_header().opcode;
        // A READ's size is in its fuse_read_in (its payload_sz counts only copied bytes); a
        // WRITE's payload_sz counts the bytes in the pages.
        let len = if opcode == sys::FUSE_READ {
            self.op_in_as::<sys::fuse_read_in>()
                .map_or(0, |read| read.size)
        } else {
            ent.payload_sz
        };
        Some(ZeroCopy { slot, len, opcode })
    }

    /// The reply to a zero-copy request whose `len` data bytes went through the zero-copy
    /// slot: `fuse_out_header { len: 16 + len, .. }` and `payload_sz = len`, nothing copied.
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] when `len` exceeds what the request lent (`payload_sz`), or
    /// there is no zero-copy request in the entry (capacity 0).
    #[inline]
    pub fn set_zero_copy_reply(&mut self, len: usize) -> Result<(), ReplyError> {
        let capacity = self.zero_copy().map_or(0, |z| z.len as usize);
        if len > capacity {
            return Err(ReplyError::TooLong { len, capacity });
        }
        let out_len = (size_of::<sys::fuse_out_header>() + len) as u32;
        self.write_out_header(out_len, 0, len as u32);
        Ok(())
    }

    /// Writes the reply header for a successful reply whose `len` payload bytes are already
    /// in [`payload_mut`](Entry::payload_mut): `fuse_out_header { len: 16 + len, error: 0,
    /// unique }` at `in_out[0..16)` and `payload_sz = len`. `unique` is the commit id (the
    /// request's `unique`).
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] exactly when `len > payload_capacity()` (nothing is written);
    /// `len == 0` never fails.
    #[inline]
    pub fn set_reply(&mut self, len: usize) -> Result<(), ReplyError> {
        let capacity = self.payload_capacity();
        if len > capacity {
            return Err(ReplyError::TooLong { len, capacity });
        }
        // Both fit: len <= capacity <= u32::MAX (checked by `Layout::new`).
        let out_len = u32::try_from(size_of::<sys::fuse_out_header>() + len)
            .map_err(|_| ReplyError::TooLong { len, capacity })?;
        self.write_out_header(out_len, 0, len as u32);
        Ok(())
    }

    /// Writes an error reply: `fuse_out_header { len: 16, error: -errno, unique }` and
    /// `payload_sz = 0`. Cannot fail.
    ///
    /// The kernel accepts only errno values below 512 (`ERESTARTSYS`) and fails the request
    /// with `EINVAL` otherwise; an errno of 512 or more (for example `ENOTSUPP`, 524, which
    /// some drivers leak) is sent as `EIO`, the same rule as `fuse-wire`'s `out_error`.
    /// `Errno` is rustix's (`rustix::io::Errno`, for example `Errno::NOSYS`), which
    /// `fuse-uring` re-exports.
    #[inline]
    pub fn set_error(&mut self, errno: Errno) {
        let raw = match errno.raw_os_error() {
            e @ 1..=511 => e,
            _ => Errno::IO.raw_os_error(),
        };
        self.write_out_header(size_of::<sys::fuse_out_header>() as u32, -raw, 0);
    }

    /// Copies `data` into the payload buffer and sets the reply header
    /// ([`set_reply`](Entry::set_reply)).
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] exactly when `data.len() > payload_capacity()` (nothing is
    /// written).
    #[inline]
    pub fn reply(&mut self, data: &[u8]) -> Result<(), ReplyError> {
        let capacity = self.payload_capacity();
        let Some(dst) = self.payload_mut().get_mut(..data.len()) else {
            return Err(ReplyError::TooLong {
                len: data.len(),
                capacity,
            });
        };
        dst.copy_from_slice(data);
        self.set_reply(data.len())
    }

    /// Copies a reply struct (for example `fuse_attr_out`) into the payload buffer and sets
    /// the reply header.
    ///
    /// `T` is any `fuse-kernel-sys` struct with a byte view (zerocopy's `IntoBytes`, proven at
    /// compile time: no padding).
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] exactly when `size_of::<T>() > payload_capacity()`: never with
    /// a payload buffer of its own (at least 8192 bytes, more than any reply struct); with a
    /// buffer pool, for a request the kernel gave no buffer (see
    /// [`payload_capacity`](Entry::payload_capacity)).
    #[inline]
    pub fn reply_value<T: IntoBytes + Immutable>(&mut self, value: &T) -> Result<(), ReplyError> {
        self.reply(value.as_bytes())
    }

    #[inline(always)]
    fn write_out_header(&mut self, len: u32, error: i32, payload_sz: u32) {
        let out = sys::fuse_out_header {
            len,
            error,
            unique: self.commit_id(),
        };
        let header = self.header_mut();
        header.ring_ent_in_out.payload_sz = payload_sz;
        let dst = ptr::from_mut(&mut header.in_out).cast::<sys::fuse_out_header>();
        // SAFETY: `in_out` is 128 bytes at offset 0 of the 8-aligned header slot, enough for the
        // 16-byte, 8-aligned `fuse_out_header` (asserted at compile time); the pointer comes
        // from a unique reference.
        unsafe { dst.write(out) };
    }

    #[inline(always)]
    fn user_data(&self, command: Command) -> u64 {
        // Entries only build these two; the other commands carry no entry.
        let kind = match command {
            Command::CommitAndFetch => KIND_COMMIT,
            _ => 0,
        };
        self.slot.as_ptr() as u64 | kind
    }

    /// Builds the REGISTER SQE for this entry (its iovec pair, its queue, its fd), consuming
    /// the token until the CQE gives it back: when a request has been written into the
    /// buffers (`Ok`), or with the kernel's error.
    ///
    /// Register an entry once per connection; afterwards use
    /// [`commit_and_fetch`](Entry::commit_and_fetch). An entry whose REGISTER failed may be
    /// registered again.
    #[inline]
    #[must_use = "the entry is lost unless the SQE is pushed to the ring"]
    pub fn register(self) -> Entry128 {
        let slot = self.slot();
        let pool = self.pool().map_or(sqe::PoolArgs::NONE, |p| sqe::PoolArgs {
            registered_pool: p.registered,
            zero_copy_slot: p.zero_copy_slot(slot.index),
        });
        sqe::register_with(
            slot.fd,
            slot.qid,
            ptr::from_ref(&slot.iov),
            pool,
            self.user_data(Command::Register),
        )
    }

    /// Builds the COMMIT_AND_FETCH SQE for this entry: the kernel reads the reply you wrote
    /// (header with [`set_reply`](Entry::set_reply) / [`set_error`](Entry::set_error) /
    /// [`reply`](Entry::reply), payload), finishes the request, and waits for the next request
    /// in the same buffers. Consumes the token until the CQE gives it back.
    ///
    /// The commit id is the one in the entry's header. Committing an entry that holds no
    /// request (never fetched) completes with `ENOENT`.
    #[inline]
    #[must_use = "the entry is lost unless the SQE is pushed to the ring"]
    pub fn commit_and_fetch(self) -> Entry128 {
        let slot = self.slot();
        sqe::commit_and_fetch_with(
            slot.fd,
            slot.qid,
            self.commit_id(),
            self.pool().and_then(|p| p.registered),
            self.user_data(Command::CommitAndFetch),
        )
    }
}

/// The token is gone (its SQE built, or dropped): with a pool, the claim on the pool buffer
/// of its request is given back, so that the entry that gets this buffer next can claim it.
impl Drop for Entry<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(pool) = self.pool() {
            if let Ok(index) = pool.locate(self.ent_in_out().offset) {
                pool.release(index, self.index());
            }
        }
    }
}

/// A zero-copy request's pages, lent to an entry (from [`Entry::zero_copy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZeroCopy {
    /// The registered-buffer slot that holds the pages (`buf_index` of fixed-buffer ops).
    pub slot: u16,
    /// The request's data bytes: for a READ the bytes asked for (`fuse_read_in.size`), for a
    /// WRITE the bytes written (`payload_sz`).
    pub len: u32,
    /// `FUSE_READ` or `FUSE_WRITE`.
    pub opcode: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffers::tests::buffers;

    #[test]
    fn request_accessors_are_bounded() {
        let b = buffers(1);
        let mut e = b.take_entries().unwrap().next().unwrap();
        // A GETATTR as the kernel lays it out: header, 16-byte op_in, no payload.
        let h = e.header_mut();
        let in_header = sys::fuse_in_header {
            len: 56,
            opcode: sys::FUSE_GETATTR,
            unique: 10,
            nodeid: 1,
            ..Default::default()
        };
        // SAFETY: test-only write of a plain struct into the 8-aligned in_out area.
        unsafe {
            ptr::from_mut(&mut h.in_out)
                .cast::<sys::fuse_in_header>()
                .write(in_header)
        };
        h.op_in[0] = 7;
        h.ring_ent_in_out.commit_id = 10;
        assert_eq!(e.in_header().opcode, sys::FUSE_GETATTR);
        assert_eq!(e.op_in().len(), 16);
        assert_eq!(e.op_in()[0], 7);
        let getattr: sys::fuse_getattr_in = e.op_in_as().unwrap();
        assert_eq!(getattr.getattr_flags, 7);
        assert!(e.op_in_as::<sys::fuse_read_in>().is_none(), "40 > 16 bytes");
        assert!(e.payload().is_empty());

        // A lying payload_sz is cut at the buffer size; a lying len at 128.
        e.header_mut().ring_ent_in_out.payload_sz = u32::MAX;
        assert_eq!(e.payload().len(), 3 * 4096);
        assert!(e.op_in().is_empty(), "len - 40 - payload_sz saturates at 0");
        e.header_mut().ring_ent_in_out.payload_sz = 5;
        // SAFETY: test-only write of the 4-byte len field at offset 0 of in_out.
        unsafe {
            ptr::from_mut(&mut e.header_mut().in_out)
                .cast::<u32>()
                .write(u32::MAX)
        };
        assert_eq!(e.op_in().len(), 128);
        assert_eq!(e.payload().len(), 5);
    }

    #[test]
    fn reply_writers_fill_out_header_and_payload_sz() {
        let b = buffers(1);
        let mut e = b.take_entries().unwrap().next().unwrap();
        e.header_mut().ring_ent_in_out.commit_id = 0xabc;
        e.reply(b"hello").unwrap();
        let out: sys::fuse_out_header = read(&e);
        assert_eq!((out.len, out.error, out.unique), (16 + 5, 0, 0xabc));
        assert_eq!(e.ent_in_out().payload_sz, 5);
        assert_eq!(e.payload(), b"hello");

        e.set_error(Errno::NOENT);
        let out: sys::fuse_out_header = read(&e);
        assert_eq!((out.len, out.error, out.unique), (16, -libc::ENOENT, 0xabc));
        assert_eq!(e.ent_in_out().payload_sz, 0);
        assert_eq!(e.commit_id(), 0xabc, "writers never touch the commit id");

        let attr = sys::fuse_attr_out {
            attr_valid: 3,
            ..Default::default()
        };
        e.reply_value(&attr).unwrap();
        assert_eq!(e.ent_in_out().payload_sz, 104);
        assert_eq!(e.payload()[..8], 3u64.to_ne_bytes());

        // An errno the kernel would refuse (>= 512, such as ENOTSUPP 524) is sent as EIO; the
        // largest accepted one (511) as is.
        e.set_error(Errno::from_raw_os_error(524));
        let out: sys::fuse_out_header = read(&e);
        assert_eq!((out.len, out.error), (16, -libc::EIO));
        e.set_error(Errno::from_raw_os_error(512));
        assert_eq!(read::<sys::fuse_out_header>(&e).error, -libc::EIO);
        e.set_error(Errno::from_raw_os_error(511));
        assert_eq!(read::<sys::fuse_out_header>(&e).error, -511);
        e.reply_value(&attr).unwrap();

        // Bad input: typed errors, nothing written.
        let too_long = vec![0u8; 3 * 4096 + 1];
        assert_eq!(
            e.reply(&too_long),
            Err(ReplyError::TooLong {
                len: 3 * 4096 + 1,
                capacity: 3 * 4096
            })
        );
        assert_eq!(
            e.set_reply(3 * 4096 + 1),
            Err(ReplyError::TooLong {
                len: 3 * 4096 + 1,
                capacity: 3 * 4096
            })
        );
        assert_eq!(e.ent_in_out().payload_sz, 104, "unchanged by failed writes");
        e.set_reply(3 * 4096).unwrap();
        assert_eq!(e.ent_in_out().payload_sz, 3 * 4096);
    }

    fn read<T: FromBytes>(e: &Entry<'_>) -> T {
        T::read_from_prefix(e.header().in_out.as_bytes())
            .expect("in_out holds the struct")
            .0
    }
}
