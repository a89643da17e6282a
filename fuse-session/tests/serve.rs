//! A session served to the running kernel over each transport: requests answered in place,
//! a handler that panics, a deferred reply dropped unanswered, a deferred request
//! interrupted by a signal (answered EINTR), a reader killed while its request is deferred,
//! notifications, and a stop that ends every thread.
//!
//! Each test starts with `testkit::kernel_test`: root and `/dev/fuse` (and FUSE-over-io_uring
//! for the io_uring tests), else a printed skip (a failure under
//! `FUSE_TESTS_REQUIRE_KERNEL=1` where the kernel should support it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fuse_session::{BackgroundSession, Reply, Session, Transport};
use fuse_wire::{OpenOut, Operation, Request, reply, sys};
use rustix::io::Errno;
use testkit::Needs;

const HELLO: &[u8] = b"Hello from a session\n";
const ROOT: u64 = sys::FUSE_ROOT_ID;
const HELLO_INO: u64 = 2;
/// READ defers and waits (up to a minute) for an INTERRUPT.
const SLOW_INO: u64 = 3;
/// READ defers and drops the reply.
const DROPPED_INO: u64 = 4;

/// What the handler saw, for the tests to check.
#[derive(Debug, Default)]
struct Seen {
    slow_started: AtomicU64,
    slow_interrupted: AtomicU64,
}

fn attr(ino: u64) -> sys::fuse_attr {
    let (mode, size, nlink) = match ino {
        ROOT => (libc::S_IFDIR | 0o755, 0, 2),
        HELLO_INO => (libc::S_IFREG | 0o444, HELLO.len() as u64, 1),
        _ => (libc::S_IFREG | 0o444, 4096, 1),
    };
    sys::fuse_attr {
        ino,
        mode,
        size,
        nlink,
        ..Default::default()
    }
}

fn handle(seen: &Arc<Seen>, request: &Request<'_>, reply: Reply<'_>) {
    let ino = request.nodeid();
    match request.operation() {
        Operation::Lookup { name } if ino == ROOT => {
            let child = match name.to_bytes() {
                b"hello" => HELLO_INO,
                b"slow" => SLOW_INO,
                b"dropped" => DROPPED_INO,
                b"panic" => panic!("a handler bug"),
                _ => return reply.error(Errno::NOENT),
            };
            let timeout = Duration::ZERO;
            reply.entry(&reply::entry_out(child, 0, attr(child), timeout, timeout));
        }
        Operation::Getattr(_) => reply.attr(&reply::attr_out(attr(ino), Duration::ZERO)),
        Operation::Open(_) => reply.open(&OpenOut::new(ino).flags(sys::FOPEN_DIRECT_IO)),
        Operation::Read(read) if ino == HELLO_INO => {
            let start = (read.offset as usize).min(HELLO.len());
            let end = (start + read.size as usize).min(HELLO.len());
            reply.with_buffer(read.size as usize, |out| {
                out[..end - start].copy_from_slice(&HELLO[start..end]);
                Ok(end - start)
            });
        }
        Operation::Read(_) if ino == SLOW_INO => {
            let reply = reply.defer();
            let seen = seen.clone();
            std::thread::spawn(move || {
                seen.slow_started.fetch_add(1, Ordering::SeqCst);
                if reply.wait_interrupted(Duration::from_secs(30)) {
                    seen.slow_interrupted.fetch_add(1, Ordering::SeqCst);
                }
                // Already answered EINTR by the session when interrupted: this is dropped.
                reply.data(b"too late\n");
            });
        }
        Operation::Read(_) if ino == DROPPED_INO => drop(reply.defer()),
        Operation::Flush(_) | Operation::Release(_) => reply.ok(),
        _ => reply.error(Errno::NOSYS),
    }
}

struct Served {
    session: Option<BackgroundSession>,
    dir: PathBuf,
    seen: Arc<Seen>,
}

impl Drop for Served {
    fn drop(&mut self) {
        drop(self.session.take());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn start(transport: Transport, tag: &str) -> Served {
    start_with_grace(transport, tag, Duration::from_secs(2))
}

fn start_with_grace(transport: Transport, tag: &str, grace: Duration) -> Served {
    let dir = testkit::temp_dir(tag).expect("temporary mount point");
    let seen = Arc::new(Seen::default());
    let options = fuse_dev::MountOptions::new().subtype("session-test");
    let for_handler = seen.clone();
    let session = Session::mount(&dir, &options)
        .expect("mount")
        .transport(transport)
        .workers(2)
        .shutdown_grace(grace)
        .spawn(move |request: &Request<'_>, reply: Reply<'_>| handle(&for_handler, request, reply))
        .expect("the session starts");
    Served {
        session: Some(session),
        dir,
        seen,
    }
}

fn errno_of(e: &std::io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw_os_error)
}

fn served_in_place_and_after_a_panic(served: &Served) {
    let hello = served.dir.join("hello");
    assert_eq!(std::fs::read(&hello).expect("read hello"), HELLO);
    let panicked = std::fs::metadata(served.dir.join("panic")).expect_err("a panic is an error");
    assert_eq!(errno_of(&panicked), Some(Errno::IO), "{panicked}");
    // The session serves on.
    assert_eq!(std::fs::read(&hello).expect("read hello again"), HELLO);
    let dropped = std::fs::read(served.dir.join("dropped")).expect_err("a dropped reply");
    assert_eq!(errno_of(&dropped), Some(Errno::IO), "{dropped}");
}

/// A caught signal (SIGUSR1, with a handler) to a thread blocked in a deferred READ: the
/// kernel sends INTERRUPT, the session answers EINTR at once, the handler sees it.
fn interrupted_by_a_signal(served: &Served) {
    let before = served.seen.slow_started.load(Ordering::SeqCst);
    let interrupted_before = served.seen.slow_interrupted.load(Ordering::SeqCst);
    catch_sigusr1();
    let slow = served.dir.join("slow");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let file = std::fs::File::open(&slow).expect("open slow");
        let mut buf = [0u8; 64];
        let _ = tx.send(rustix::io::read(&file, &mut buf));
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.seen.slow_started.load(Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the slow READ never reached the handler"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal_thread(&reader, libc::SIGUSR1);
    let result = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the interrupted READ was answered within 10 s");
    assert_eq!(result, Err(Errno::INTR));
    reader.join().unwrap();
    let start = Instant::now();
    while served.seen.slow_interrupted.load(Ordering::SeqCst) == interrupted_before {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the handler never saw it"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A reader killed by SIGINT while its READ is deferred ends within seconds. (Whether the
/// kernel sends INTERRUPT first differs: 6.18 does, 7.3 does not; printed, not asserted.)
fn killed_while_deferred(served: &Served) {
    let before = served.seen.slow_started.load(Ordering::SeqCst);
    let interrupted_before = served.seen.slow_interrupted.load(Ordering::SeqCst);
    let mut reader = std::process::Command::new("cat")
        .arg(served.dir.join("slow"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("cat starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while served.seen.slow_started.load(Ordering::SeqCst) == before {
        assert!(
            Instant::now() < deadline,
            "the slow READ never reached the handler"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = rustix::process::Pid::from_raw(reader.id() as i32).expect("a pid");
    rustix::process::kill_process(pid, rustix::process::Signal::INT).expect("SIGINT");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = reader.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the killed reader did not end"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    assert!(!status.success(), "cat was killed by SIGINT: {status:?}");
    std::thread::sleep(Duration::from_millis(100));
    let saw = served.seen.slow_interrupted.load(Ordering::SeqCst) > interrupted_before;
    println!("killed reader: ended in {took:?}; INTERRUPT seen by the handler: {saw}");
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Installs a handler for SIGUSR1 that does nothing (so the signal interrupts system calls
/// instead of ending the process).
#[allow(unsafe_code)]
fn catch_sigusr1() {
    // SAFETY: sigaction is plain data; all-zero bytes are a valid value (empty mask, no flags:
    // no SA_RESTART, so the interrupted read returns EINTR).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = ignore_signal as *const () as libc::sighandler_t;
    // SAFETY: `action` is initialised, the handler is async-signal-safe (it does nothing), and a
    // null old-action pointer is allowed.
    let rc = unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "sigaction");
}

/// Sends `signal` to the thread of `handle`.
#[allow(unsafe_code)]
fn signal_thread(handle: &std::thread::JoinHandle<()>, signal: libc::c_int) {
    use std::os::unix::thread::JoinHandleExt;
    // SAFETY: the thread has not been joined, so its pthread_t is valid.
    let rc = unsafe { libc::pthread_kill(handle.as_pthread_t(), signal) };
    assert_eq!(rc, 0, "pthread_kill");
}

fn stopped(mut served: Served, transport: Transport) {
    let session = served.session.take().expect("running");
    let report = session.stop().expect("the session ends cleanly");
    assert_eq!(report.transport, transport);
    let lookups = report
        .requests
        .iter()
        .find(|(opcode, _)| *opcode == sys::FUSE_LOOKUP)
        .map_or(0, |(_, n)| *n);
    assert!(lookups >= 4, "LOOKUPs counted: {report:?}");
    assert!(!testkit::is_mount_point(Path::new(&served.dir)));
}

#[test]
fn dev_transport_serves_a_handler() {
    let Some(_test) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let served = start(Transport::Dev, "session-dev");
    served_in_place_and_after_a_panic(&served);
    interrupted_by_a_signal(&served);
    killed_while_deferred(&served);
    stopped(served, Transport::Dev);
}

#[test]
fn uring_transport_serves_a_handler() {
    let Some(_test) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let served = start(Transport::Uring, "session-uring");
    served_in_place_and_after_a_panic(&served);
    interrupted_by_a_signal(&served);
    killed_while_deferred(&served);
    stopped(served, Transport::Uring);
}

/// STORE puts data in the kernel's page cache of an inode; RETRIEVE gets it back through a
/// NOTIFY_REPLY that the session routes to the waiting caller.
fn notifications_reach_the_kernel(served: &Served) {
    // The kernel must know the inode: look it up.
    assert_eq!(
        std::fs::read(served.dir.join("hello")).expect("read"),
        HELLO
    );
    let notifier = served
        .session
        .as_ref()
        .and_then(|s| s.handle().notifier())
        .expect("a notifier after INIT");
    // The whole file, so that the kernel marks the page up to date.
    let stored = b"Stored over a notify\n";
    assert_eq!(stored.len(), HELLO.len());
    notifier.store(HELLO_INO, 0, stored).expect("STORE");
    let (offset, data) = notifier
        .retrieve(HELLO_INO, 0, 4096, Duration::from_secs(10))
        .expect("RETRIEVE answered");
    assert_eq!(offset, 0);
    assert_eq!(data, stored);
    // An inode the kernel does not have.
    assert_eq!(notifier.inval_inode(999_999, 0, 0), Err(Errno::NOENT));
    assert_eq!(notifier.inval_entry(ROOT, b"a/b"), Err(Errno::INVAL));
}

/// A file held open keeps a lazily unmounted connection alive: stop aborts it after the
/// grace, so the session still ends, and the holder then gets ENOTCONN.
fn stop_is_bounded_with_a_file_held_open(transport: Transport, tag: &str) {
    let mut served = start_with_grace(transport, tag, Duration::from_millis(300));
    let held = std::fs::File::open(served.dir.join("hello")).expect("open");
    let session = served.session.take().expect("running");
    let start = Instant::now();
    let report = session.stop().expect("the session ends");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250),
        "the grace was not waited for: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    assert_eq!(report.transport, transport);
    let mut buf = [0u8; 8];
    let after = std::io::Read::read(&mut &held, &mut buf).expect_err("the connection is gone");
    assert_eq!(errno_of(&after), Some(Errno::NOTCONN), "{after}");
}

#[test]
fn dev_transport_notifies_and_stops_in_bounded_time() {
    let Some(_test) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let served = start(Transport::Dev, "session-dev-notify");
    notifications_reach_the_kernel(&served);
    drop(served);
    stop_is_bounded_with_a_file_held_open(Transport::Dev, "session-dev-stop");
}

#[test]
fn uring_transport_notifies_and_stops_in_bounded_time() {
    let Some(_test) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let served = start(Transport::Uring, "session-uring-notify");
    notifications_reach_the_kernel(&served);
    drop(served);
    stop_is_bounded_with_a_file_held_open(Transport::Uring, "session-uring-stop");
}
