//! Unit tests of the SQE builders: every field of every SQE decoded at linux-raw-sys's offsets.
use super::*;
use linux_raw_sys::io_uring::{io_uring_op, io_uring_sqe_flags_bit};

const IORING_OP_URING_CMD: u8 = io_uring_op::IORING_OP_URING_CMD as u8;
pub(crate) const IOSQE_FIXED_FILE_BIT: u32 = io_uring_sqe_flags_bit::IOSQE_FIXED_FILE_BIT as u32;

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
