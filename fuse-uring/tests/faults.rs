//! Faults with io_uring entries registered, on real mounts, each test alone in a child process
//! under the leak check (`testkit::leak`): the connection aborted through fusectl while every
//! queue holds registered entries and one request is being served, and REGISTER failing for
//! one queue while another queue registered fine.
//!
//! The leak check proves that once every entry is back and the queues are dropped, the
//! process has exactly the fds (`/dev/fuse`, the rings) and mappings (the rings, the entry
//! buffers) it had before.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use fuse_uring::{CmdError, Command, Queue, QueueBuffers, QueueConfig};
use io_uring::IoUring;
use rustix::io::Errno;
use testkit::{InitOptions, MemFs, Needs, Session};

/// The longest any wait may take before the test gives up.
const DEADLINE: Duration = Duration::from_secs(20);

fn uring_opts() -> InitOptions {
    InitOptions::uring()
}

/// One `Queue` of `depth` entries for `qid` on `dev`, with a plain ring of its own.
fn queue(dev: &Arc<std::os::fd::OwnedFd>, qid: u16, depth: u32, payload: usize) -> Queue {
    let buffers = QueueBuffers::new(QueueConfig::new(
        qid,
        depth,
        payload,
        fuse_uring::FuseFd::new(dev.clone()).expect("/dev/fuse"),
    ))
    .expect("queue buffers");
    Queue::new(buffers, IoUring::builder().build(depth).expect("ring")).expect("queue")
}

/// Waits until `queue` has no entry in the kernel, collecting every completion's error
/// (all completions must be errors).
fn drain(queue: &Queue) -> Vec<CmdError> {
    let deadline = Instant::now() + DEADLINE;
    let mut errors = Vec::new();
    while queue.in_kernel() > 0 {
        assert!(
            Instant::now() < deadline,
            "queue {}: {} entries still in the kernel after {DEADLINE:?}",
            queue.buffers().qid(),
            queue.in_kernel()
        );
        queue.wait(Some(Duration::from_millis(50))).expect("wait");
        for done in queue.completions() {
            match done.result {
                Ok(()) => panic!(
                    "entry {} got a request (opcode {}) after the fault",
                    done.entry.index(),
                    done.entry.in_header().opcode
                ),
                Err(e) => errors.push(e),
            }
        }
    }
    errors
}

/// Whether any line of `/proc/self/maps` overlaps `[start, start + len)`.
fn mapped(start: usize, len: usize) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    maps.lines()
        .filter_map(testkit::leak::Mapping::parse)
        .any(|m| (m.start as usize) < start + len && start < m.end as usize)
}

/// Joins `handle`, aborting `connection` first if it does not finish within the deadline.
fn join_within<T>(handle: JoinHandle<T>, connection: u32, what: &str) -> T {
    if !testkit::fault::wait_until(DEADLINE, || handle.is_finished()) {
        let _ = testkit::abort_connection(connection);
        panic!("{what} still blocked after {DEADLINE:?}");
    }
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

#[test]
fn abort_with_entries_registered_returns_every_entry_and_unmaps() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    const DEPTH: u32 = 4;
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &uring_opts()).expect("mount and INIT");
    fuse_uring::check_init(&session.negotiated.kernel).expect("io_uring offered");
    let connection = session
        .mount()
        .and_then(testkit::Mount::connection)
        .expect("connection number");
    let payload = fuse_uring::payload_size(&session.negotiated.init_out);
    let queues: Vec<Queue> = fuse_uring::queue_ids()
        .expect("queue ids")
        .map(|qid| queue(&dev, qid, DEPTH, payload))
        .collect();
    for q in &queues {
        q.register_all().expect("REGISTER");
    }
    let total = DEPTH * queues.len() as u32;
    let mappings: Vec<(usize, usize)> = queues
        .iter()
        .map(|q| {
            let (base, len) = q.buffers().mapping();
            (base.as_ptr() as usize, len)
        })
        .collect();

    // A client on CPU 0: its LOOKUP arrives in an entry of queue 0, which we keep.
    let path = session.path().join("no-such-file");
    let client = std::thread::spawn(move || {
        testkit::fault::pin_current_thread(0).expect("pin to CPU 0");
        std::fs::metadata(path)
    });
    let deadline = Instant::now() + DEADLINE;
    let mut held = loop {
        assert!(Instant::now() < deadline, "no request reached queue 0");
        queues[0]
            .wait(Some(Duration::from_millis(50)))
            .expect("wait");
        if let Some(done) = queues[0].next_completion() {
            done.result.expect("a request");
            break done.entry;
        }
    };
    assert_eq!(held.in_header().opcode, sys::FUSE_LOOKUP);
    assert_eq!(queues[0].in_kernel(), DEPTH - 1);

    testkit::abort_connection(connection).expect("abort through fusectl");
    // The client's request was with the server: the abort ends it at once.
    let e = join_within(client, connection, "client").expect_err("aborted LOOKUP");
    assert_eq!(e.raw_os_error(), Some(libc::ECONNABORTED), "{e}");
    assert!(!held.payload().is_empty(), "the LOOKUP carries its name");

    // Answering the aborted request: its COMMIT_AND_FETCH fails like every idle entry.
    held.set_error(fuse_uring::Errno::NOENT);
    queues[0].commit_and_fetch(held).expect("own entry");
    let errors: Vec<CmdError> = queues.iter().flat_map(drain).collect();
    eprintln!("after the abort: {errors:?}");
    assert_eq!(errors.len(), total as usize, "{errors:?}");
    // Observed on 6.18: ENOTCONN for the idle entries and for the late commit alike.
    assert!(errors.iter().all(CmdError::is_shutdown), "{errors:?}");
    assert!(
        errors.iter().all(|e| e.errno() == Errno::NOTCONN),
        "{errors:?}"
    );
    assert_eq!(
        errors
            .iter()
            .filter(|e| e.command() == Command::CommitAndFetch)
            .count(),
        1
    );
    assert!(queues.iter().all(|q| q.in_kernel() == 0));

    // Every entry is back: dropping the queues unmaps their buffers.
    drop(queues);
    for (base, len) in mappings {
        assert!(
            !mapped(base, len),
            "entry buffers at {base:#x} still mapped"
        );
    }
    session.finish().expect("unmount");
}

#[test]
fn register_failing_for_one_queue_falls_back_to_dev_fuse() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    const DEPTH: u32 = 2;
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let mut session = Session::mount_only(dev.clone(), &uring_opts()).expect("mount and INIT");
    let connection = session
        .mount()
        .and_then(testkit::Mount::connection)
        .expect("connection number");
    let payload = fuse_uring::payload_size(&session.negotiated.init_out);
    let ids: Vec<u16> = fuse_uring::queue_ids().expect("queue ids").collect();
    let bad_qid = *ids.last().expect("at least one queue");
    // Every queue but the last registers correctly; the last one's payload buffers are one
    // page short of what INIT negotiated.
    let queues: Vec<Queue> = ids
        .iter()
        .map(|&qid| {
            let size = if qid == bad_qid {
                payload - 4096
            } else {
                payload
            };
            queue(&dev, qid, DEPTH, size)
        })
        .collect();
    for q in &queues {
        q.register_all().expect("REGISTER");
    }
    let (bad, good) = queues.split_last().expect("queues");
    let errors = drain(bad);
    assert_eq!(errors.len(), DEPTH as usize);
    // The first failure is the short buffer; what later REGISTERs of the connection get
    // depends on the kernel (testkit::kernel::register_after_failed_register).
    let caps = t.caps();
    let later = testkit::kernel::uring_cmd_after_failed_register(caps, Errno::INVAL);
    for (i, e) in errors.iter().enumerate() {
        assert_eq!(e.command(), Command::Register, "{e}");
        if i == 0 {
            assert_eq!(e.errno(), Errno::INVAL, "{e}");
        } else {
            assert!(
                later.contains(&e.errno()),
                "{e} (expected {later:?} on {})",
                caps.release
            );
        }
    }

    // The kernel turned io_uring off for the connection: requests come through read(2).
    let mut fs = MemFs::new();
    fs.add_file(1, "file", b"served through /dev/fuse".to_vec());
    session
        .spawn_server(dev.clone(), fs)
        .expect("/dev/fuse server");
    let path = session.path().join("file");
    let client = std::thread::spawn(move || std::fs::read(path));
    let data = join_within(client, connection, "client").expect("read after the fallback");
    assert_eq!(data, b"served through /dev/fuse");
    assert!(session.counters.count(sys::FUSE_LOOKUP) >= 1);
    assert!(session.counters.count(sys::FUSE_READ) >= 1);
    // The entries of the good queues stay registered and idle.
    for q in good {
        q.wait(Some(Duration::from_millis(20))).expect("wait");
        assert!(q.next_completion().is_none(), "a request went to the ring");
        assert_eq!(q.in_kernel(), DEPTH);
    }

    // Unmount: the /dev/fuse server ends, and every idle entry comes back (shutdown).
    let mappings: Vec<(usize, usize)> = queues
        .iter()
        .map(|q| {
            let (base, len) = q.buffers().mapping();
            (base.as_ptr() as usize, len)
        })
        .collect();
    session.finish().expect("unmount; the server ends cleanly");
    for q in good {
        let errors = drain(q);
        assert_eq!(errors.len(), DEPTH as usize);
        assert!(errors.iter().all(CmdError::is_shutdown), "{errors:?}");
    }
    drop(queues);
    for (base, len) in mappings {
        assert!(
            !mapped(base, len),
            "entry buffers at {base:#x} still mapped"
        );
    }
}
