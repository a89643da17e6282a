//! fuse-uring's SQE builders with caller-controlled fds, queue ids, commit ids, iovec
//! addresses and user data: every field lands at its ABI offset and nothing else is set.

#![no_main]

use fuse_kernel_sys as sys;
use fuse_uring::{DevFd, sqe};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fn bytes(sqe: &io_uring::squeue::Entry128) -> [u8; 128] {
    // SAFETY: Entry128 is a 128-byte repr(C) struct of integers built from zeroed memory, all
    // bytes initialised; read_unaligned needs no alignment.
    unsafe { std::ptr::from_ref(sqe).cast::<[u8; 128]>().read_unaligned() }
}

fn u32_of(b: &[u8; 128], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4"))
}

fn u64_of(b: &[u8; 128], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8"))
}

fuzz_target!(|data: &[u8]| {
    let raw_fd = u64_at(data, 0) as u32;
    let fixed = data.get(8).is_some_and(|b| b & 1 == 1);
    let fd = if fixed {
        DevFd::Fixed(raw_fd)
    } else {
        DevFd::Fd(raw_fd as i32)
    };
    let qid = u64_at(data, 9) as u16;
    let commit_id = u64_at(data, 11);
    let user_data = u64_at(data, 19);
    let addr = u64_at(data, 27);

    let check_common = |b: &[u8; 128], cmd_op: u32| {
        assert_eq!(b[0], 46, "IORING_OP_URING_CMD");
        assert_eq!(b[1], if fixed { 1 } else { 0 }, "IOSQE_FIXED_FILE only");
        assert_eq!(u32_of(b, 4), raw_fd, "fd or fixed index");
        assert_eq!(u32_of(b, 8), cmd_op);
        assert_eq!(u64_of(b, 32), user_data);
        assert_eq!(u16::from_ne_bytes([b[64], b[65]]), qid);
        assert_eq!(u64_of(b, 48), 0, "fuse_uring_cmd_req.flags");
        assert!(
            b[66..].iter().all(|&x| x == 0),
            "command area past the request"
        );
        assert!(b[40..48].iter().all(|&x| x == 0));
        assert_eq!(u32_of(b, 28), 0, "uring_cmd_flags");
    };

    let reg = bytes(&sqe::register(
        fd,
        qid,
        addr as *const [libc::iovec; 2],
        user_data,
    ));
    check_common(&reg, sys::FUSE_IO_URING_CMD_REGISTER);
    assert_eq!(u64_of(&reg, 16), addr);
    assert_eq!(u32_of(&reg, 24), 2);
    assert_eq!(u64_of(&reg, 56), 0, "REGISTER has no commit id");

    let commit = bytes(&sqe::commit_and_fetch(fd, qid, commit_id, user_data));
    check_common(&commit, sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
    assert_eq!(u64_of(&commit, 16), 0);
    assert_eq!(u32_of(&commit, 24), 0);
    assert_eq!(u64_of(&commit, 56), commit_id);
});
