//! The two FUSE io_uring SQEs, built on io-uring's `UringCmd80`.
//!
//! `UringCmd80` writes the opcode (`IORING_OP_URING_CMD`), the fd (plain, or fixed with
//! `IOSQE_FIXED_FILE`), `cmd_op` and the 80-byte command area. REGISTER also needs `addr`
//! (the iovec pair) and `len` (2), which `UringCmd80` has no setter for; they are written here
//! at their ABI offsets, taken from `linux-raw-sys`'s independent `io_uring_sqe` and checked at
//! compile time. The command area holds a `fuse_uring_cmd_req` of `fuse-kernel-sys`, written
//! field by field at the offsets of that struct into zeroed bytes: since 7.46 the struct ends in
//! a union whose members differ in size, so its bytes as a whole are not all initialised and
//! are never copied (see [`CmdArea`]). The bytes past what a command uses stay zero, which is
//! what kernels before 7.46 (24-byte struct) and 7.46 (40 bytes) both expect.
//!
//! Most servers use [`Entry::register`](crate::Entry::register) and
//! [`Entry::commit_and_fetch`](crate::Entry::commit_and_fetch); the functions here are for
//! servers with their own buffer management.

use std::mem::{offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

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
// the io-uring crate's own definition) and the offsets of ABI_FACTS 4.2.
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

/// The `/dev/fuse` fd an SQE targets: a plain fd, or an index into the ring's registered
/// files (`io_uring_register_files`), which saves the fd lookup on every submission.
///
/// It must refer to the connection the entry is registered with, for every command of the
/// entry; a fixed index must name that fd in the table of the ring the SQE is pushed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DevFd {
    /// A plain file descriptor (`io_uring::types::Fd`).
    Fd(RawFd),
    /// A registered file index (`io_uring::types::Fixed`).
    Fixed(u32),
}

impl From<types::Fd> for DevFd {
    fn from(fd: types::Fd) -> DevFd {
        DevFd::Fd(fd.0)
    }
}

impl From<types::Fixed> for DevFd {
    fn from(fd: types::Fixed) -> DevFd {
        DevFd::Fixed(fd.0)
    }
}

impl From<BorrowedFd<'_>> for DevFd {
    fn from(fd: BorrowedFd<'_>) -> DevFd {
        DevFd::Fd(fd.as_raw_fd())
    }
}

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
pub(crate) mod tests {
    use super::*;
    use linux_raw_sys::io_uring::{io_uring_op, io_uring_sqe_flags_bit};

    const IORING_OP_URING_CMD: u8 = io_uring_op::IORING_OP_URING_CMD as u8;
    pub(crate) const IOSQE_FIXED_FILE_BIT: u32 =
        io_uring_sqe_flags_bit::IOSQE_FIXED_FILE_BIT as u32;

    /// The 128 bytes of an SQE.
    pub(crate) fn sqe_bytes(sqe: &Entry128) -> [u8; 128] {
        // SAFETY: `Entry128` is a `repr(C)` 128-byte struct (asserted above) built by io-uring
        // from a zeroed `io_uring_sqe` plus a byte array, with no padding, so all 128 bytes are
        // initialised; `read_unaligned` needs no alignment.
        unsafe { std::ptr::from_ref(sqe).cast::<[u8; 128]>().read_unaligned() }
    }

    fn u8_at(b: &[u8; 128], off: usize) -> u8 {
        b[off]
    }
    fn u16_at(b: &[u8; 128], off: usize) -> u16 {
        u16::from_ne_bytes(b[off..off + 2].try_into().unwrap())
    }
    fn u32_at(b: &[u8; 128], off: usize) -> u32 {
        u32::from_ne_bytes(b[off..off + 4].try_into().unwrap())
    }
    fn u64_at(b: &[u8; 128], off: usize) -> u64 {
        u64::from_ne_bytes(b[off..off + 8].try_into().unwrap())
    }

    /// Decodes every field of the SQE by its linux-raw-sys offset.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) struct Decoded {
        pub opcode: u8,
        pub flags: u8,
        pub ioprio: u16,
        pub fd: i32,
        pub cmd_op: u32,
        pub pad1: u32,
        pub addr: u64,
        pub len: u32,
        pub uring_cmd_flags: u32,
        pub user_data: u64,
        pub buf_index: u16,
        pub personality: u16,
        pub file_index: u32,
        pub cmd_flags: u64,
        pub cmd_commit_id: u64,
        pub cmd_qid: u16,
        pub cmd_padding: [u8; 6],
        /// The 7.46 union read as bufpool (uaddr, len, reserved).
        pub cmd_bufpool: (u64, u32, u32),
        pub cmd_rest_zero: bool,
    }

    pub(crate) fn decode(sqe: &Entry128) -> Decoded {
        let b = sqe_bytes(sqe);
        let c = SQE_CMD;
        type R = sys::fuse_uring_cmd_req;
        let req_end = c + size_of::<R>();
        Decoded {
            opcode: u8_at(&b, offset_of!(io_uring_sqe, opcode)),
            flags: u8_at(&b, offset_of!(io_uring_sqe, flags)),
            ioprio: u16_at(&b, offset_of!(io_uring_sqe, ioprio)),
            fd: u32_at(&b, offset_of!(io_uring_sqe, fd)) as i32,
            cmd_op: u32_at(&b, offset_of!(io_uring_sqe, __bindgen_anon_1)),
            pad1: u32_at(&b, offset_of!(io_uring_sqe, __bindgen_anon_1) + 4),
            addr: u64_at(&b, SQE_ADDR),
            len: u32_at(&b, SQE_LEN),
            uring_cmd_flags: u32_at(&b, offset_of!(io_uring_sqe, __bindgen_anon_3)),
            user_data: u64_at(&b, offset_of!(io_uring_sqe, user_data)),
            buf_index: u16_at(&b, offset_of!(io_uring_sqe, __bindgen_anon_4)),
            personality: u16_at(&b, offset_of!(io_uring_sqe, personality)),
            file_index: u32_at(&b, offset_of!(io_uring_sqe, __bindgen_anon_5)),
            cmd_flags: u64_at(&b, c + offset_of!(R, flags)),
            cmd_commit_id: u64_at(&b, c + offset_of!(R, commit_id)),
            cmd_qid: u16_at(&b, c + offset_of!(R, qid)),
            cmd_padding: b[c + offset_of!(R, padding)..][..6].try_into().unwrap(),
            cmd_bufpool: (
                u64_at(&b, c + BUFPOOL_UADDR),
                u32_at(&b, c + BUFPOOL_LEN),
                u32_at(&b, c + BUFPOOL_LEN + 4),
            ),
            cmd_rest_zero: b[req_end..].iter().all(|&x| x == 0),
        }
    }

    fn expected(fd: i32, flags: u8) -> Decoded {
        Decoded {
            opcode: IORING_OP_URING_CMD,
            flags,
            ioprio: 0,
            fd,
            cmd_op: 0,
            pad1: 0,
            addr: 0,
            len: 0,
            uring_cmd_flags: 0,
            user_data: 0,
            buf_index: 0,
            personality: 0,
            file_index: 0,
            cmd_flags: 0,
            cmd_commit_id: 0,
            cmd_qid: 0,
            cmd_padding: [0; 6],
            cmd_bufpool: (0, 0, 0),
            cmd_rest_zero: true,
        }
    }

    #[test]
    fn register_sqe_fields_plain_fd() {
        let sqe = register(
            DevFd::Fd(7),
            3,
            0x7f00_1234_5640 as *const [libc::iovec; 2],
            0xdead_beef_0001,
        );
        let want = Decoded {
            cmd_op: 1,
            addr: 0x7f00_1234_5640,
            len: 2,
            user_data: 0xdead_beef_0001,
            cmd_qid: 3,
            ..expected(7, 0)
        };
        assert_eq!(decode(&sqe), want);
        assert_eq!(want.cmd_op, sys::FUSE_IO_URING_CMD_REGISTER);
    }

    #[test]
    fn register_sqe_fields_fixed_fd() {
        let sqe = register(DevFd::Fixed(5), 0, 0x1000 as *const [libc::iovec; 2], 42);
        let want = Decoded {
            cmd_op: 1,
            addr: 0x1000,
            len: 2,
            user_data: 42,
            ..expected(5, 1 << IOSQE_FIXED_FILE_BIT)
        };
        assert_eq!(decode(&sqe), want);
    }

    #[test]
    fn commit_sqe_fields() {
        let sqe = commit_and_fetch(DevFd::Fd(9), 1, 0x0123_4567_89ab_cdef, 77);
        let want = Decoded {
            cmd_op: 2,
            user_data: 77,
            cmd_qid: 1,
            cmd_commit_id: 0x0123_4567_89ab_cdef,
            ..expected(9, 0)
        };
        assert_eq!(decode(&sqe), want);
        assert_eq!(want.cmd_op, sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH);

        let fixed = commit_and_fetch(DevFd::Fixed(0), u16::MAX, u64::MAX, u64::MAX);
        let want = Decoded {
            cmd_op: 2,
            user_data: u64::MAX,
            cmd_qid: u16::MAX,
            cmd_commit_id: u64::MAX,
            ..expected(0, 1 << IOSQE_FIXED_FILE_BIT)
        };
        assert_eq!(decode(&fixed), want);
    }

    const IORING_URING_CMD_FIXED: u32 = linux_raw_sys::io_uring::IORING_URING_CMD_FIXED;

    #[test]
    fn add_queue_sqe_fields() {
        let plain = add_queue(DevFd::Fd(4), 1, false, 9);
        let want = Decoded {
            cmd_op: 3,
            user_data: 9,
            cmd_qid: 1,
            ..expected(4, 0)
        };
        assert_eq!(decode(&plain), want);
        assert_eq!(want.cmd_op, sys::FUSE_IO_URING_CMD_ADD_QUEUE);
        let zc = add_queue(DevFd::Fixed(2), 7, true, 10);
        let want = Decoded {
            cmd_op: 3,
            user_data: 10,
            cmd_qid: 7,
            cmd_flags: 1,
            ..expected(2, 1 << IOSQE_FIXED_FILE_BIT)
        };
        assert_eq!(decode(&zc), want);
        assert_eq!(want.cmd_flags, u64::from(sys::FUSE_URING_ZERO_COPY));
    }

    #[test]
    fn add_bufpool_sqe_fields_with_and_without_fixed() {
        let pool = 0x7f12_3456_0000usize as *mut u8;
        let plain = add_bufpool(DevFd::Fd(5), 3, pool, 4 << 20, None, 11);
        let want = Decoded {
            cmd_op: 4,
            user_data: 11,
            cmd_qid: 3,
            cmd_bufpool: (0x7f12_3456_0000, 4 << 20, 0),
            ..expected(5, 0)
        };
        assert_eq!(decode(&plain), want);
        assert_eq!(want.cmd_op, sys::FUSE_IO_URING_CMD_ADD_BUFPOOL);
        let fixed = add_bufpool(DevFd::Fd(5), 3, pool, 4 << 20, Some(6), 11);
        assert_eq!(
            decode(&fixed),
            Decoded {
                uring_cmd_flags: IORING_URING_CMD_FIXED,
                buf_index: 6,
                ..want
            }
        );
    }

    #[test]
    fn pooled_register_and_commit_carry_fixed_flag_index_and_slot() {
        let iov = 0x5000 as *const [libc::iovec; 2];
        let pool = PoolArgs {
            registered_pool: Some(3),
            zero_copy_slot: Some(0x0102),
        };
        let reg = register_with(DevFd::Fd(8), 2, iov, pool, 12);
        assert_eq!(
            decode(&reg),
            Decoded {
                cmd_op: 1,
                addr: 0x5000,
                len: 2,
                user_data: 12,
                cmd_qid: 2,
                uring_cmd_flags: IORING_URING_CMD_FIXED,
                buf_index: 3,
                // ent_zero_copy_buf_index shares the union's first two bytes with uaddr.
                cmd_bufpool: (0x0102, 0, 0),
                ..expected(8, 0)
            }
        );
        assert_eq!(
            decode(&register_with(DevFd::Fd(8), 2, iov, PoolArgs::NONE, 12)),
            decode(&register(DevFd::Fd(8), 2, iov, 12)),
            "PoolArgs::NONE is the pre-7.46 REGISTER"
        );
        let commit = commit_and_fetch_with(DevFd::Fd(8), 2, 77, Some(3), 13);
        assert_eq!(
            decode(&commit),
            Decoded {
                cmd_op: 2,
                user_data: 13,
                cmd_qid: 2,
                cmd_commit_id: 77,
                uring_cmd_flags: IORING_URING_CMD_FIXED,
                buf_index: 3,
                ..expected(8, 0)
            }
        );
    }

    #[test]
    fn cmd_area_is_the_struct_fields_in_abi_order() {
        let area = CmdArea {
            flags: 0x1111_2222_3333_4444,
            commit_id: 0x5555_6666_7777_8888,
            qid: 0x99aa,
            union: CmdUnion::Zero,
        };
        let cmd = area.bytes();
        // The ABI (the official 7.46 header, checked by abi-tests): flags [0], commit_id [8],
        // qid [16], padding [18..24), union [24..40): bufpool.uaddr [24], bufpool.len [32],
        // bufpool.reserved [36], or ent_zero_copy_buf_index [24..26).
        assert_eq!(cmd[0..8], 0x1111_2222_3333_4444u64.to_ne_bytes());
        assert_eq!(cmd[8..16], 0x5555_6666_7777_8888u64.to_ne_bytes());
        assert_eq!(cmd[16..18], 0x99aau16.to_ne_bytes());
        assert!(
            cmd[18..].iter().all(|&b| b == 0),
            "padding, union and the rest zero"
        );

        let pool = CmdArea {
            union: CmdUnion::Bufpool {
                uaddr: 0x7f00_0000_1000,
                len: 0x0020_0000,
            },
            ..area
        }
        .bytes();
        assert_eq!(pool[..24], cmd[..24]);
        assert_eq!(pool[24..32], 0x7f00_0000_1000u64.to_ne_bytes());
        assert_eq!(pool[32..36], 0x0020_0000u32.to_ne_bytes());
        assert!(
            pool[36..].iter().all(|&b| b == 0),
            "reserved and the rest zero"
        );

        let slot = CmdArea {
            union: CmdUnion::ZeroCopyIndex(0xbeef),
            ..area
        }
        .bytes();
        assert_eq!(slot[..24], cmd[..24]);
        assert_eq!(slot[24..26], 0xbeefu16.to_ne_bytes());
        assert!(
            slot[26..].iter().all(|&b| b == 0),
            "the rest of the union zero"
        );
    }

    #[test]
    fn dev_fd_conversions() {
        assert_eq!(DevFd::from(types::Fd(3)), DevFd::Fd(3));
        assert_eq!(DevFd::from(types::Fixed(4)), DevFd::Fixed(4));
        let stdin = std::io::stdin();
        use std::os::fd::AsFd;
        assert_eq!(DevFd::from(stdin.as_fd()), DevFd::Fd(0));
    }
}
