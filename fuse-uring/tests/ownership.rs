//! Entry ownership without a kernel: tokens taken once, consumed by SQEs, minted back by
//! completions, written by their owner only, and sent between threads. Pure (no ring, no
//! mount), so `cargo xtask miri` runs it under Miri, whose aliasing and data-race checks
//! prove that the entries' buffers are disjoint and that each token really is exclusive.

// These tests drive the unsafe parts of the APIs (raw rings, raw memory) on purpose.
#![allow(unsafe_code)]

use fuse_kernel_sys as sys;
use fuse_uring::{Command, Entry, QueueBuffers, QueueConfig};

const DEPTH: u32 = 4;
const PAYLOAD: usize = 8192;

fn buffers() -> QueueBuffers {
    QueueBuffers::new(QueueConfig::unbound(1, DEPTH, PAYLOAD)).expect("buffers")
}

/// Builds the SQE of `entry` (consuming it) and returns its `user_data`, as a ring would
/// carry it to the completion.
fn submit(entry: Entry<'_>, commit: bool) -> u64 {
    let sqe = if commit {
        entry.commit_and_fetch()
    } else {
        entry.register()
    };
    sqe.get_user_data()
}

#[test]
fn entries_cycle_through_register_commit_and_completion() {
    let buffers = buffers();
    let mut entries: Vec<Entry<'_>> = buffers.take_entries().expect("fresh").collect();
    assert!(
        buffers.take_entries().is_none(),
        "tokens are handed out once"
    );
    assert_eq!(entries.len(), DEPTH as usize);

    for round in 0..3u8 {
        let in_flight: Vec<(u32, u64)> = entries
            .drain(..)
            .map(|e| (e.index(), submit(e, round > 0)))
            .collect();
        // Completions arrive in any order; each gives back exactly its entry.
        for &(index, user_data) in in_flight.iter().rev() {
            assert!(buffers.owns(user_data));
            // SAFETY: `user_data` is that of an SQE just built from one of our entries, never
            // pushed to a ring, and decoded exactly once.
            let done = unsafe { buffers.complete(user_data, 0) }.expect("ours");
            assert_eq!(done.entry.index(), index);
            let expected = if round > 0 {
                Command::CommitAndFetch
            } else {
                Command::Register
            };
            assert_eq!(done.command, expected);
            assert!(done.result.is_ok());
            entries.push(done.entry);
        }
        // Each owner fills its whole payload buffer and writes a reply of its own.
        for e in &mut entries {
            let tag = e.index() as u8 * 16 + round;
            e.payload_mut().fill(tag);
            e.reply(&[tag; 100]).expect("fits");
        }
        for e in &entries {
            let tag = e.index() as u8 * 16 + round;
            assert_eq!(e.payload(), &[tag; 100][..]);
            assert_eq!(e.in_header().len, 16 + 100, "out header over in_out");
            assert_eq!(e.ent_in_out().payload_sz, 100);
        }
    }
    assert!(!buffers.owns(0));
    assert!(!buffers.owns(u64::MAX));
}

#[test]
fn entries_are_send_and_their_buffers_are_disjoint_across_threads() {
    let buffers = buffers();
    let entries: Vec<Entry<'_>> = buffers.take_entries().expect("fresh").collect();
    // Every entry on its own thread at once: any overlap of two entries' buffers would be a
    // data race (which Miri reports).
    let back: Vec<Entry<'_>> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .into_iter()
            .map(|mut e| {
                s.spawn(move || {
                    let tag = 0xa0 | e.index() as u8;
                    e.payload_mut().fill(tag);
                    e.set_reply(PAYLOAD).expect("whole buffer");
                    e
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for e in &back {
        let tag = 0xa0 | e.index() as u8;
        assert_eq!(e.payload().len(), PAYLOAD);
        assert!(e.payload().iter().all(|&b| b == tag), "entry {}", e.index());
    }
}

#[test]
fn accessors_stay_inside_the_entry_whatever_the_header_says() {
    let buffers = buffers();
    let mut entry = buffers
        .take_entries()
        .expect("fresh")
        .next()
        .expect("entry");
    // A "request" whose header claims more than the entry holds: replying with the whole
    // buffer sets payload_sz to the capacity; op_in is then empty, payload is the buffer.
    entry.set_reply(PAYLOAD).expect("fits");
    assert_eq!(entry.payload().len(), PAYLOAD);
    assert!(entry.op_in().len() <= sys::FUSE_URING_OP_IN_OUT_SZ as usize);
    assert!(entry.op_in_as::<sys::fuse_read_in>().is_none());
    assert!(entry.set_reply(PAYLOAD + 1).is_err());
    assert!(entry.reply(&vec![0u8; PAYLOAD + 1]).is_err());
    assert_eq!(
        entry.ent_in_out().payload_sz as usize,
        PAYLOAD,
        "refusals write nothing"
    );
    // An errno the kernel refuses (>= 512) becomes EIO; nothing else is written.
    entry.set_error(fuse_uring::Errno::from_raw_os_error(512));
    assert_eq!(entry.payload().len(), 0);
    entry.set_error(fuse_uring::Errno::NOENT);
    assert_eq!(entry.payload().len(), 0);
}

/// Found by `cargo xtask fuzz` (target ring_entry, input in
/// fuzz/regressions/ring_entry/): a completion result below -4095 made `complete` panic in
/// rustix's `Errno::from_raw_os_error` (linux_raw backend asserts 1..=4095).
#[test]
fn a_completion_result_below_minus_4095_is_an_error_not_a_panic() {
    let buffers = buffers();
    let mut entries = buffers.take_entries().expect("fresh");
    for result in [-4096, i32::MIN] {
        let user_data = submit(entries.next().expect("entry"), false);
        // SAFETY: as above: our own SQE's user_data, decoded once.
        let done = unsafe { buffers.complete(user_data, result) }.expect("ours");
        let err = done.result.expect_err("a negative result is an error");
        assert_eq!(err.raw_os_error(), libc::EIO, "result {result}");
    }
}
