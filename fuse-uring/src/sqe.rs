//! The two FUSE io_uring SQEs, built on io-uring's `UringCmd80`.
//!
//! `UringCmd80` writes the opcode (`IORING_OP_URING_CMD`), the fd (plain, or fixed with
//! `IOSQE_FIXED_FILE`), `cmd_op` and the 80-byte command area. REGISTER also needs `addr`
//! (the iovec pair) and `len` (2), which `UringCmd80` has no setter for; they are written here
//! at their ABI offsets, taken from `linux-raw-sys`'s independent `io_uring_sqe` and checked at
//! compile time. The command area holds a `fuse_uring_cmd_req` of `fuse-kernel-sys`, written
//! field by field at the offsets of that struct into zeroed bytes: since 7.46 the struct ends in
//! a union whose members differ in size, so its bytes as a whole are not all initialised and
//! are never copied. The bytes past what a command uses stay zero, which is
//! what kernels before 7.46 (24-byte struct) and 7.46 (40 bytes) both expect.
//!
//! Most servers use [`Entry::register`](crate::Entry::register) and
//! [`Entry::commit_and_fetch`](crate::Entry::commit_and_fetch); the functions here are for
//! servers with their own buffer management.

use std::mem::{offset_of, size_of};
use std::os::fd::RawFd;

use crate::dev::DevFd;

use fuse_kernel_sys as sys;
use io_uring::{opcode, squeue, squeue::Entry128, types};
use linux_raw_sys::io_uring::io_uring_sqe;

/// Offset of `addr` in the SQE.
const SQE_ADDR: usize = offset_of!(io_uring_sqe, __bindgen_anon_2);
/// Offset of `len` in the SQE.
const SQE_LEN: usize = offset_of!(io_uring_sqe, len);
/// Offset of the command area (`cmd`, 80 bytes in an SQE128) in the SQE.
const SQE_CMD: usize = offset_of!(io_uring_sqe, __bindgen_anon_6);
/// Size of the command area of a 128-byte SQE.
const CMD_AREA: usize = 2 * size_of::<io_uring_sqe>() - SQE_CMD;

// The layout facts the builders rely on, against linux-raw-sys's `io_uring_sqe` (independent of
// the io-uring crate's own definition) and the offsets the kernel reads the command at
// (`fuse_uring_cmd_req` in the SQE128 command area).
const _: () = {
    assert!(size_of::<io_uring_sqe>() == 64);
    assert!(size_of::<Entry128>() == 2 * size_of::<io_uring_sqe>());
    assert!(align_of::<Entry128>() >= align_of::<u64>());
    assert!(SQE_ADDR == 16);
    assert!(SQE_LEN == 24);
    assert!(SQE_CMD == 48);
    assert!(CMD_AREA == 80);
    assert!(size_of::<sys::fuse_uring_cmd_req>() <= CMD_AREA);
    // `addr` is a u64 and `len` a u32 that do not overlap anything else we write.
    assert!(SQE_ADDR + size_of::<u64>() <= SQE_LEN);
    assert!(SQE_LEN + size_of::<u32>() <= SQE_CMD);
};

type Req = sys::fuse_uring_cmd_req;
type ReqUnion = sys::fuse_uring_cmd_req__bindgen_ty_1;
type ReqBufpool = sys::fuse_uring_cmd_req__bindgen_ty_1__bindgen_ty_1;
/// Offset of the 7.46 union in the command area (24: where the pre-7.46 struct ended).
const UNION: usize = offset_of!(Req, __bindgen_anon_1);
/// Offsets of the union's members in the command area.
const BUFPOOL_UADDR: usize = UNION + offset_of!(ReqUnion, bufpool) + offset_of!(ReqBufpool, uaddr);
const BUFPOOL_LEN: usize = UNION + offset_of!(ReqUnion, bufpool) + offset_of!(ReqBufpool, len);
const ZERO_COPY_INDEX: usize = UNION + offset_of!(ReqUnion, ent_zero_copy_buf_index);

const _: () = {
    assert!(UNION == sys::FUSE_URING_CMD_REQ_SIZE_V45);
    assert!(BUFPOOL_LEN + size_of::<u32>() <= size_of::<Req>());
    assert!(ZERO_COPY_INDEX + size_of::<u16>() <= size_of::<Req>());
};

/// What a command puts into the 7.46 union of `fuse_uring_cmd_req`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmdUnion {
    /// Nothing (all zero): every command before 7.46, and REGISTER on a queue without
    /// zero-copy.
    Zero,
    /// `bufpool { uaddr, len, reserved: 0 }` of ADD_BUFPOOL.
    Bufpool { uaddr: u64, len: u32 },
    /// `ent_zero_copy_buf_index` of REGISTER on a zero-copy queue.
    ZeroCopyIndex(u16),
}

/// The fields of a `fuse_uring_cmd_req`, written one by one into a zeroed 80-byte command
/// area at the struct's offsets (from `fuse-kernel-sys`).
///
/// Why not copy the struct: since 7.46 it ends in a union whose members differ in size (16 and
/// 2 bytes), so a struct built through the small member has 14 uninitialised bytes, and reading
/// them as bytes would be undefined behaviour; `fuse-kernel-sys` therefore gives the struct no
/// `IntoBytes`. Writing the fields into zeroed bytes has no such bytes, and leaves everything a
/// command does not use zero, as both pre-7.46 and 7.46 kernels expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CmdArea {
    pub(crate) flags: u64,
    pub(crate) commit_id: u64,
    pub(crate) qid: u16,
    pub(crate) union: CmdUnion,
}

impl CmdArea {
    /// The 80 bytes.
    #[inline(always)]
    pub(crate) fn bytes(&self) -> [u8; CMD_AREA] {
        #[inline(always)]
        fn put(cmd: &mut [u8; CMD_AREA], at: usize, bytes: &[u8]) {
            cmd[at..at + bytes.len()].copy_from_slice(bytes);
        }
        let mut cmd = [0u8; CMD_AREA];
        put(&mut cmd, offset_of!(Req, flags), &self.flags.to_ne_bytes());
        put(
            &mut cmd,
            offset_of!(Req, commit_id),
            &self.commit_id.to_ne_bytes(),
        );
        put(&mut cmd, offset_of!(Req, qid), &self.qid.to_ne_bytes());
        match self.union {
            CmdUnion::Zero => {}
            CmdUnion::Bufpool { uaddr, len } => {
                put(&mut cmd, BUFPOOL_UADDR, &uaddr.to_ne_bytes());
                put(&mut cmd, BUFPOOL_LEN, &len.to_ne_bytes());
            }
            CmdUnion::ZeroCopyIndex(index) => put(&mut cmd, ZERO_COPY_INDEX, &index.to_ne_bytes()),
        }
        cmd
    }
}

/// The UringCmd80 SQE for `command` with `area` in the command area. A fixed index goes into
/// the fd field with `IOSQE_FIXED_FILE`, exactly as `UringCmd80::new(types::Fixed(..))` does,
/// but without a second copy of the builder code. `pool_buf_index` sets
/// `IORING_URING_CMD_FIXED` in `uring_cmd_flags` and the index in `buf_index` (io-uring's own
/// `buf_index` setter).
#[inline(always)]
fn uring_cmd(
    fd: DevFd,
    command: u32,
    area: &CmdArea,
    pool_buf_index: Option<u16>,
    user_data: u64,
) -> Entry128 {
    let (raw, flags) = match fd {
        DevFd::Fd(fd) => (fd, squeue::Flags::empty()),
        DevFd::Fixed(index) => (index as RawFd, squeue::Flags::FIXED_FILE),
    };
    opcode::UringCmd80::new(types::Fd(raw), command)
        .cmd(area.bytes())
        .buf_index(pool_buf_index)
        .build()
        .flags(flags)
        .user_data(user_data)
}

/// Writes `addr` and `len` at their offsets in `sqe`.
#[inline(always)]
fn set_addr_len(sqe: &mut Entry128, addr: u64, len: u32) {
    let base = std::ptr::from_mut(sqe).cast::<u8>();
    // SAFETY: `Entry128` is `repr(C)` and starts with the 64-byte `io_uring_sqe`, whose every
    // bit pattern is valid (integers and unions of integers); it is 128 bytes, so offset
    // SQE_ADDR (16) + 8 is in bounds (asserted above); `base` comes from a unique reference, so
    // the write cannot alias. Unaligned writes need no alignment.
    unsafe {
        base.wrapping_add(SQE_ADDR)
            .cast::<u64>()
            .write_unaligned(addr)
    };
    // SAFETY: as above, for the u32 at SQE_LEN (24), which does not overlap `addr`.
    unsafe {
        base.wrapping_add(SQE_LEN)
            .cast::<u32>()
            .write_unaligned(len)
    };
}

/// Builds a `FUSE_IO_URING_CMD_REGISTER` SQE: `cmd_op = FUSE_IO_URING_CMD_REGISTER`,
/// `addr = iovecs` (header buffer, payload buffer), `len = 2`, command area
/// `fuse_uring_cmd_req { qid, .. }`, and `user_data`.
///
/// Building is safe; pushing the SQE to a ring is `unsafe` (io-uring's `push`): both buffers
/// must stay valid and untouched by the caller until the command's CQE (which comes when a
/// request has been written into them, or with an error). The kernel reads the iovec array
/// only during the REGISTER itself. Completes with `-EINVAL` when `qid` is out of range or a
/// buffer is too small (see [`CmdError`](crate::CmdError)).
#[inline]
#[doc(alias = "FUSE_IO_URING_CMD_REGISTER")]
pub fn register(fd: DevFd, qid: u16, iovecs: *const [libc::iovec; 2], user_data: u64) -> Entry128 {
    register_with(fd, qid, iovecs, PoolArgs::NONE, user_data)
}

/// What REGISTER and COMMIT_AND_FETCH carry on a queue with a buffer pool (7.46, Linux 7.3).
/// [`PoolArgs::NONE`] (all `None`) gives exactly the SQEs of a queue without a pool, which every
/// kernel since 7.42 accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PoolArgs {
    /// The pool was added with `IORING_URING_CMD_FIXED` and this registered-buffer index
    /// ([`add_bufpool`]): every later REGISTER and COMMIT_AND_FETCH of the queue must carry the
    /// same flag and index, else the kernel completes them with `EINVAL`.
    pub registered_pool: Option<u16>,
    /// REGISTER on a zero-copy queue ([`add_queue`] with `zero_copy`): the slot of the ring's
    /// registered-buffer table where the kernel puts the pages of this entry's zero-copy
    /// requests (`ent_zero_copy_buf_index`). Must be `None` (0) on other queues (`EINVAL`).
    /// Ignored by COMMIT_AND_FETCH.
    pub zero_copy_slot: Option<u16>,
}

impl PoolArgs {
    /// No pool, no zero-copy: the pre-7.46 commands.
    pub const NONE: PoolArgs = PoolArgs {
        registered_pool: None,
        zero_copy_slot: None,
    };
}

/// [`register`] with the 7.46 pool arguments. On a queue with a pool, the payload iovec
/// (`iovecs[1]`) must be empty (`iov_base` null, `iov_len` 0), else `EINVAL`.
#[inline]
#[doc(alias = "ent_zero_copy_buf_index")]
pub fn register_with(
    fd: DevFd,
    qid: u16,
    iovecs: *const [libc::iovec; 2],
    pool: PoolArgs,
    user_data: u64,
) -> Entry128 {
    let area = CmdArea {
        flags: 0,
        commit_id: 0,
        qid,
        union: match pool.zero_copy_slot {
            None => CmdUnion::Zero,
            Some(slot) => CmdUnion::ZeroCopyIndex(slot),
        },
    };
    let mut sqe = uring_cmd(
        fd,
        sys::FUSE_IO_URING_CMD_REGISTER,
        &area,
        pool.registered_pool,
        user_data,
    );
    set_addr_len(&mut sqe, iovecs as u64, 2);
    sqe
}

/// Builds a `FUSE_IO_URING_CMD_ADD_QUEUE` SQE (7.46, Linux 7.3): creates queue `qid`, with
/// zero-copy (`FUSE_URING_ZERO_COPY` in `flags`) when `zero_copy` is set. Nothing points into
/// memory, so pushing it has no buffer contract; it completes at once.
///
/// Completes with 0, or: `EINVAL` for a `qid` out of range (or on a kernel before 7.46, which
/// does not know the command), `EEXIST` when the queue exists (added before, or created by an
/// earlier REGISTER), `EPERM` for zero-copy without `CAP_SYS_ADMIN`. A queue is only needed
/// this way for zero-copy or a buffer pool; a plain REGISTER creates its queue itself.
#[inline]
#[doc(alias = "FUSE_IO_URING_CMD_ADD_QUEUE")]
#[doc(alias = "FUSE_URING_ZERO_COPY")]
pub fn add_queue(fd: DevFd, qid: u16, zero_copy: bool, user_data: u64) -> Entry128 {
    let area = CmdArea {
        flags: if zero_copy {
            u64::from(sys::FUSE_URING_ZERO_COPY)
        } else {
            0
        },
        commit_id: 0,
        qid,
        union: CmdUnion::Zero,
    };
    uring_cmd(fd, sys::FUSE_IO_URING_CMD_ADD_QUEUE, &area, None, user_data)
}

/// Builds a `FUSE_IO_URING_CMD_ADD_BUFPOOL` SQE (7.46, Linux 7.3): gives queue `qid` the
/// payload pool `uaddr .. uaddr + len`, which the kernel cuts into `len / max_payload` buffers
/// (the connection's payload size, see [`payload_size`](crate::payload_size)) and hands out per
/// request; `fuse_uring_ent_in_out.offset` then says where a request's buffer starts.
/// With `registered = Some(index)` the SQE carries `IORING_URING_CMD_FIXED` and `buf_index`:
/// the pool must be registered buffer `index` of the ring's table (`register_buffers`, or
/// `register_buffers_update` into a sparse table), and every later REGISTER and
/// COMMIT_AND_FETCH of the queue carries the same ([`PoolArgs::registered_pool`]).
///
/// Building is safe; pushing it is where the contract starts: the pool must stay mapped and
/// must not be accessed except as the requests' completions allow until the connection is gone
/// (the kernel writes into its buffers whenever it delivers a request).
/// [`QueueBuffers`](crate::QueueBuffers) keeps that contract for its own pool.
///
/// Completes at once with 0, or `EINVAL`: no such queue (send ADD_QUEUE first), the queue
/// already has a pool or a REGISTERed entry, `len` smaller than one buffer, or a kernel before
/// 7.46.
#[inline]
#[doc(alias = "FUSE_IO_URING_CMD_ADD_BUFPOOL")]
pub fn add_bufpool(
    fd: DevFd,
    qid: u16,
    uaddr: *mut u8,
    len: u32,
    registered: Option<u16>,
    user_data: u64,
) -> Entry128 {
    let area = CmdArea {
        flags: 0,
        commit_id: 0,
        qid,
        union: CmdUnion::Bufpool {
            uaddr: uaddr as u64,
            len,
        },
    };
    uring_cmd(
        fd,
        sys::FUSE_IO_URING_CMD_ADD_BUFPOOL,
        &area,
        registered,
        user_data,
    )
}

/// Builds a `FUSE_IO_URING_CMD_COMMIT_AND_FETCH` SQE: command area
/// `fuse_uring_cmd_req { commit_id, qid, .. }`, and `user_data`.
///
/// The kernel finds the request by `commit_id` among those waiting on queue `qid`, reads the
/// reply from **the buffers of the entry that request was delivered to** (whatever
/// `user_data` says), and re-arms that entry under this SQE's `user_data`. Passing the commit
/// id of a request that sits in another entry therefore hands that other entry's buffers to
/// the kernel; [`Entry::commit_and_fetch`](crate::Entry::commit_and_fetch) cannot do that,
/// since it takes the id from the entry itself. Completes with `-ENOENT` for an unknown id.
#[inline]
#[doc(alias = "FUSE_IO_URING_CMD_COMMIT_AND_FETCH")]
pub fn commit_and_fetch(fd: DevFd, qid: u16, commit_id: u64, user_data: u64) -> Entry128 {
    commit_and_fetch_with(fd, qid, commit_id, None, user_data)
}

/// [`commit_and_fetch`] on a queue whose pool was added registered
/// ([`PoolArgs::registered_pool`]): carries `IORING_URING_CMD_FIXED` and `registered_pool` as
/// `buf_index` (a mismatch completes with `EINVAL`).
#[inline]
pub fn commit_and_fetch_with(
    fd: DevFd,
    qid: u16,
    commit_id: u64,
    registered_pool: Option<u16>,
    user_data: u64,
) -> Entry128 {
    let area = CmdArea {
        flags: 0,
        commit_id,
        qid,
        union: CmdUnion::Zero,
    };
    uring_cmd(
        fd,
        sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH,
        &area,
        registered_pool,
        user_data,
    )
}

#[cfg(test)]
pub(crate) mod tests;
