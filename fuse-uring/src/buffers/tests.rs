//! Unit tests of the entry allocator: layout in memory, tokens handed out once, SQEs and
//! completions round-tripping, residency.
use super::*;
use crate::sqe::tests::decode;
use fuse_kernel_sys as sys;

pub(crate) fn buffers(depth: u32) -> QueueBuffers {
    QueueBuffers::new(QueueConfig::unbound(2, depth, 3 * 4096)).unwrap()
}

#[test]
fn entries_are_handed_out_once_with_their_buffers() {
    let b = buffers(4);
    let (base, len) = b.mapping();
    let base = base.as_ptr() as usize;
    let entries: Vec<Entry<'_>> = b.take_entries().unwrap().collect();
    assert!(b.take_entries().is_none(), "tokens are handed out once");
    assert_eq!(entries.len(), 4);
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.index(), i as u32);
        assert_eq!(e.qid(), 2);
        assert_eq!(e.payload_capacity(), 3 * 4096);
        let slot = e.slot();
        assert_eq!(
            slot.iov[0].iov_base as usize,
            base + b.layout().header_offset(i as u32)
        );
        assert_eq!(slot.iov[0].iov_len, 288);
        assert_eq!(
            slot.iov[1].iov_base as usize,
            base + b.layout().payload_offset(i as u32)
        );
        assert!(slot.iov[1].iov_base as usize + slot.iov[1].iov_len <= base + len);
        // Fresh memory: no request, empty accessors.
        assert_eq!(e.commit_id(), 0);
        assert!(e.op_in().is_empty());
        assert!(e.payload().is_empty());
    }
}

#[test]
fn register_sqe_points_at_the_entry_iovecs_and_round_trips() {
    let b = buffers(3);
    let mut entries = b.take_entries().unwrap();
    let _first = entries.next().unwrap();
    let second = entries.next().unwrap();
    let iov_addr = ptr::from_ref(&second.slot().iov) as u64;
    let sqe = second.register();
    let d = decode(&sqe);
    assert_eq!(d.cmd_op, sys::FUSE_IO_URING_CMD_REGISTER);
    assert_eq!(d.addr, iov_addr);
    assert_eq!(d.len, 2);
    assert_eq!(d.cmd_qid, 2);
    assert_eq!(d.fd, -1, "unbound buffers target fd -1");
    assert_eq!(d.flags, 0);
    assert_eq!(
        d.user_data, iov_addr,
        "REGISTER user_data is the slot address"
    );

    // The CQE gives the same entry back, with the kernel's errno.
    // SAFETY: the SQEs of these tests are never pushed; each minted token is the only one
    // of its entry while it lives.
    let done = unsafe { b.complete(d.user_data, -libc::EINVAL) }.unwrap();
    assert_eq!(done.entry.index(), 1);
    assert_eq!(done.command, Command::Register);
    let err = done.result.unwrap_err();
    assert_eq!(err.raw_os_error(), libc::EINVAL);
    assert_eq!(err.command(), Command::Register);
    // Registering it again consumes the token again; its completion gives it back.
    let again = done.entry.register();
    assert_eq!(again.get_user_data(), d.user_data);
    // SAFETY: as above, the previous token was consumed by `register`.
    let ok = unsafe { b.complete(again.get_user_data(), 0) }.unwrap();
    assert!(ok.result.is_ok());
    assert_eq!(ok.entry.index(), 1);
}

#[test]
fn commit_sqe_carries_the_entry_commit_id() {
    let b = buffers(2);
    let mut entry = b.take_entries().unwrap().nth(1).unwrap();
    // Pretend the kernel delivered a request with unique 0x1234 (what it writes on fetch).
    entry.header_mut().ring_ent_in_out.commit_id = 0x1234;
    let sqe = entry.commit_and_fetch();
    let d = decode(&sqe);
    assert_eq!(d.cmd_op, sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
    assert_eq!(d.cmd_commit_id, 0x1234);
    assert_eq!(d.cmd_qid, 2);
    assert_eq!(d.addr, 0);
    assert_eq!(d.len, 0);
    assert_eq!(d.user_data & 1, 1, "bit 0 marks COMMIT_AND_FETCH");
    // SAFETY: the SQE is never pushed; this is the only token of entry 1.
    let done = unsafe { b.complete(d.user_data, -libc::ENOENT) }.unwrap();
    assert_eq!(done.command, Command::CommitAndFetch);
    assert_eq!(done.entry.index(), 1);
    assert!(done.result.unwrap_err().is_unknown_commit_id());
}

#[test]
fn foreign_user_data_is_not_decoded() {
    let a = buffers(2);
    let b = buffers(2);
    let (base, _) = a.mapping();
    let base = base.as_ptr() as u64;
    assert!(a.owns(base));
    assert!(a.owns(base + 64 + 1));
    assert!(!a.owns(base + 128), "past the last slot");
    assert!(!a.owns(base + 8), "not a slot boundary");
    assert!(!a.owns(base + 2), "unused low bits set");
    assert!(!a.owns(base.wrapping_sub(64)));
    assert!(!a.owns(0));
    assert!(!a.owns(u64::MAX));
    // SAFETY: not a user_data of ours: no token is minted.
    assert!(unsafe { a.complete(42, 0) }.is_none());
    let (b_base, _) = b.mapping();
    assert!(!a.owns(b_base.as_ptr() as u64), "another queue's entry");
    assert!(b.owns(b_base.as_ptr() as u64));
}

#[test]
fn lazy_allocation_touches_only_the_slot_records() {
    let b = QueueBuffers::new(QueueConfig::unbound(0, 64, 1 << 20)).unwrap();
    let (base, len) = b.mapping();
    let resident = resident_pages(base.as_ptr(), len);
    let records_pages = (64 * 64usize).div_ceil(rustix::param::page_size());
    assert_eq!(
        resident, records_pages,
        "only the iovec records are written"
    );
}

#[test]
fn prefault_options_make_memory_resident() {
    let page = rustix::param::page_size();
    for prefault in [Prefault::MapPopulate, Prefault::PopulateWrite] {
        let mut config = QueueConfig::unbound(0, 4, 64 * 1024);
        config.prefault = prefault;
        config.huge_pages = prefault == Prefault::PopulateWrite;
        let b = QueueBuffers::new(config).unwrap();
        let (base, len) = b.mapping();
        assert_eq!(
            resident_pages(base.as_ptr(), len),
            len / page,
            "{prefault:?}"
        );
    }
}

/// Resident pages of a range, by mincore(2).
fn resident_pages(base: *mut u8, len: usize) -> usize {
    let page = rustix::param::page_size();
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: test-only: `base..base+len` is one mapping we own; `vec` has one byte per page.
    let rc = unsafe { libc::mincore(base.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0);
    vec.iter().filter(|&&v| v & 1 != 0).count()
}
