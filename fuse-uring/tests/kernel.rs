//! FUSE-over-io_uring against the running kernel, on real mounts: requests served entirely
//! through the ring, every entry back at unmount, and the kernel's errors for bad input.
//!
//! Each test starts with `testkit::kernel_test(Needs::Uring)` (root, /dev/fuse, enable_uring =
//! Y; not applicable before Linux 6.14), except the one that checks what the library says on
//! such a kernel (`Needs::Without(Feature::Uring)`).

// These tests drive the unsafe parts of the APIs (raw rings, raw memory) on purpose.
#![allow(unsafe_code)]

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use fuse_uring::{Command, Entry, FuseFd, Queue, QueueBuffers, QueueConfig, Ring};
use fuse_wire::init_flags;
use io_uring::{IoUring, cqueue, squeue, types};
use rustix::io::Errno;
use testkit::{Counters, Feature, Handler, InitOptions, MemFs, Needs, Reply, Request, Session};

/// The checked, shared `/dev/fuse` fd of a queue.
fn fuse_fd(dev: &Arc<OwnedFd>) -> FuseFd {
    FuseFd::new(dev.clone()).expect("/dev/fuse is the FUSE device")
}

/// The longest any single wait in these tests may take before the test aborts the connection.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Which ring setup a queue server uses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RingKind {
    /// `fuse_uring::ring_builder()`: SQE128 + SINGLE_ISSUER + DEFER_TASKRUN.
    Recommended,
    /// `IoUring::builder()` with only SQE128 (implied by Entry128).
    Basic,
}

/// What one queue server saw.
#[derive(Debug, Default)]
struct Report {
    qid: u16,
    /// Requests served through the ring.
    served: u64,
    /// Largest READ reply payload.
    max_read_reply: usize,
    /// Completions with an error: (command, errno, entry index).
    errors: Vec<(Command, Errno, u32)>,
    /// Entries the kernel still held when the server stopped (must be 0).
    in_kernel: u32,
    /// CQEs that did not decode (must be 0).
    foreign: u64,
}

fn record(counters: &Counters, opcode: u32) {
    let i = if (opcode as usize) < counters.by_opcode.len() {
        opcode as usize
    } else {
        0
    };
    counters.by_opcode[i].fetch_add(1, Ordering::Relaxed);
}

/// Which API a queue server uses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Api {
    /// `fuse_uring::Queue`: no `unsafe` in the server.
    Queue,
    /// Our own ring with the SQE builders and `QueueBuffers::complete`; holds one entry back
    /// on queue 0 and COMMITs it without it ever having received a request: the kernel must
    /// answer ENOENT (unknown commit id) while the ring keeps serving.
    Raw,
}

struct QueueServerConfig {
    qid: u16,
    depth: u32,
    payload_size: usize,
    dev: Arc<OwnedFd>,
    kind: RingKind,
    fixed_fd: bool,
    api: Api,
}

/// Starts a thread that serves one queue with `handler`, counting ring requests in `counters`.
/// Sends `Ok(())` on `ready` once every REGISTER has been submitted.
fn spawn_queue_server(
    config: QueueServerConfig,
    mut handler: impl Handler,
    counters: Arc<Counters>,
    ready: mpsc::Sender<Result<(), String>>,
) -> JoinHandle<Result<Report, String>> {
    std::thread::Builder::new()
        .name(format!("uring-q{}", config.qid))
        .spawn(move || {
            let result = serve_queue(&config, &mut handler, &counters, &ready);
            if let Err(e) = &result {
                let _ = ready.send(Err(e.clone()));
            }
            result
        })
        .expect("spawn queue server")
}

fn serve_queue(
    config: &QueueServerConfig,
    handler: &mut dyn Handler,
    counters: &Counters,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<Report, String> {
    let dev = FuseFd::new(config.dev.clone()).map_err(|e| format!("device: {e}"))?;
    let fd = if config.fixed_fd {
        dev.with_fixed_index(0)
    } else {
        dev
    };
    let buffers = QueueBuffers::new(QueueConfig::new(
        config.qid,
        config.depth,
        config.payload_size,
        fd,
    ))
    .map_err(|e| format!("buffers: {e}"))?;
    // Created on this thread (SINGLE_ISSUER); declared after `buffers`, so dropped before it.
    let mut ring: Ring = match config.kind {
        RingKind::Recommended => fuse_uring::ring_builder().build(config.depth),
        RingKind::Basic => IoUring::builder().build(config.depth),
    }
    .map_err(|e| format!("ring: {e}"))?;
    if config.fixed_fd {
        ring.submitter()
            .register_files(&[config.dev.as_raw_fd()])
            .map_err(|e| format!("register_files: {e}"))?;
    }
    let mut report = Report {
        qid: config.qid,
        ..Report::default()
    };
    match config.api {
        Api::Queue => {
            let queue = Queue::new(buffers, ring).map_err(|e| format!("queue: {e}"))?;
            let outcome = run_queue(config, &queue, handler, counters, ready, &mut report);
            // Dropping the queue leaks the buffers if the kernel still holds entries.
            report.in_kernel = queue.in_kernel();
            outcome.map(|()| report)
        }
        Api::Raw => {
            let outcome = run_raw(
                config,
                &buffers,
                &mut ring,
                handler,
                counters,
                ready,
                &mut report,
            );
            if report.in_kernel != 0 {
                // The kernel may still write into these entries: never unmap them.
                std::mem::forget(buffers);
            }
            outcome.map(|()| report)
        }
    }
}

/// Answers the request in `entry` with `handler`, in place.
fn handle(
    entry: &mut Entry<'_>,
    handler: &mut dyn Handler,
    counters: &Counters,
    report: &mut Report,
) -> Result<(), String> {
    // The request, exactly as read(2) would have delivered its body.
    let request = Request {
        header: *entry.in_header(),
        body: [entry.op_in(), entry.payload()].concat(),
    };
    if request.body.len() + size_of::<sys::fuse_in_header>() != request.header.len as usize {
        return Err(format!(
            "request of {} bytes rebuilt as {}",
            request.header.len,
            request.body.len() + size_of::<sys::fuse_in_header>()
        ));
    }
    if entry.commit_id() != request.header.unique {
        return Err("commit id is not the request's unique".into());
    }
    record(counters, request.opcode());
    report.served += 1;
    let written = match handler.handle(&request) {
        Reply::Data(data) => {
            if request.opcode() == sys::FUSE_READ {
                report.max_read_reply = report.max_read_reply.max(data.len());
            }
            entry.reply(&data)
        }
        Reply::Error(errno) => {
            entry.set_error(Errno::from_raw_os_error(errno));
            Ok(())
        }
        Reply::None => {
            entry.set_error(Errno::NOSYS);
            Ok(())
        }
    };
    written.map_err(|e| format!("reply: {e}"))
}

/// The safe server loop, with `fuse_uring::Queue`.
fn run_queue(
    config: &QueueServerConfig,
    queue: &Queue,
    handler: &mut dyn Handler,
    counters: &Counters,
    ready: &mpsc::Sender<Result<(), String>>,
    report: &mut Report,
) -> Result<(), String> {
    queue.register_all().map_err(|e| format!("register: {e}"))?;
    let _ = ready.send(Ok(()));
    let deadline = Instant::now() + 3 * TIMEOUT;
    while queue.in_kernel() > 0 {
        if Instant::now() > deadline {
            return Err(format!(
                "queue {}: {} entries still in the kernel",
                config.qid,
                queue.in_kernel()
            ));
        }
        queue
            .wait(Some(Duration::from_millis(100)))
            .map_err(|e| format!("wait: {e}"))?;
        for done in queue.completions() {
            let mut entry = done.entry;
            if let Err(e) = done.result {
                report.errors.push((e.command(), e.errno(), entry.index()));
                continue;
            }
            handle(&mut entry, handler, counters, report)?;
            queue
                .commit_and_fetch(entry)
                .map_err(|e| format!("commit: {e}"))?;
        }
    }
    Ok(())
}

/// The same loop with our own ring, the SQE builders and `QueueBuffers::complete`.
fn run_raw(
    config: &QueueServerConfig,
    buffers: &QueueBuffers,
    ring: &mut Ring,
    handler: &mut dyn Handler,
    counters: &Counters,
    ready: &mpsc::Sender<Result<(), String>>,
    report: &mut Report,
) -> Result<(), String> {
    let (submitter, mut sq, mut cq) = ring.split();
    let mut entries = buffers.take_entries().ok_or("entries taken twice")?;
    let spare = if config.qid == 0 {
        entries.next()
    } else {
        None
    };
    for entry in entries {
        let sqe = entry.register();
        // SAFETY: `buffers` outlives the commands (it is leaked if any is still in the kernel
        // when we stop), each SQE is pushed once, unchanged, and its CQE decoded with
        // `buffers`.
        unsafe { sq.push(&sqe) }.map_err(|_| "submission queue full")?;
        report.in_kernel += 1;
    }
    if let Some(entry) = spare {
        assert_eq!(entry.commit_id(), 0, "never received a request");
        let sqe = entry.commit_and_fetch();
        // SAFETY: as above.
        unsafe { sq.push(&sqe) }.map_err(|_| "submission queue full")?;
        report.in_kernel += 1;
    }
    sq.sync();
    submitter.submit().map_err(|e| format!("submit: {e}"))?;
    let _ = ready.send(Ok(()));

    let deadline = Instant::now() + 3 * TIMEOUT;
    let wait = types::Timespec::new().nsec(100_000_000);
    let args = types::SubmitArgs::new().timespec(&wait);
    while report.in_kernel > 0 {
        if Instant::now() > deadline {
            return Err(format!(
                "queue {}: {} entries still in the kernel",
                config.qid, report.in_kernel
            ));
        }
        match submitter.submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => return Err(format!("submit_with_args: {e}")),
        }
        // Learn how far the kernel consumed the SQ (else it looks full) and what completed.
        sq.sync();
        cq.sync();
        for cqe in &mut cq {
            // SAFETY: every SQE on this ring was built from an entry of `buffers` and pushed
            // once; this CQE was just taken off the ring.
            let Some(done) = (unsafe { buffers.complete_cqe(&cqe) }) else {
                report.foreign += 1;
                continue;
            };
            report.in_kernel -= 1;
            let mut entry = done.entry;
            if let Err(e) = done.result {
                report.errors.push((e.command(), e.errno(), entry.index()));
                continue;
            }
            handle(&mut entry, handler, counters, report)?;
            let sqe = entry.commit_and_fetch();
            // SAFETY: as above.
            unsafe { sq.push(&sqe) }.map_err(|_| "submission queue full")?;
            report.in_kernel += 1;
        }
        sq.sync();
    }
    Ok(())
}

/// Waits for `handle` to finish; after `timeout`, aborts FUSE connection `connection` (which
/// makes every blocked party return) and then joins.
fn join_within<T>(handle: JoinHandle<T>, connection: Option<u32>, what: &str) -> T {
    testkit::join_or_abort(handle, TIMEOUT, connection)
        .unwrap_or_else(|_| panic!("{what} panicked"))
}

fn uring_opts() -> InitOptions {
    InitOptions::uring()
}

fn test_tree() -> (MemFs, Vec<u8>) {
    let mut fs = MemFs::new();
    // Several READs of 128 KiB: payloads far larger than one page.
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs.add_file(1, "data.bin", content.clone());
    let sub = fs.add_dir(1, "sub");
    fs.add_file(sub, "small", b"hello, ring".to_vec());
    (fs, content)
}

/// What the client saw.
#[derive(Debug)]
struct ClientResult {
    size: u64,
    mode: u32,
    data: Vec<u8>,
    fstat_size: u64,
    small: Vec<u8>,
    statfs_bsize: u64,
    statfs_namelen: u64,
    missing: io::ErrorKind,
}

fn client(root: PathBuf) -> io::Result<ClientResult> {
    let meta = std::fs::metadata(root.join("data.bin"))?;
    let mut file = File::open(root.join("data.bin"))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)?;
    let fstat_size = file.metadata()?.len();
    drop(file);
    let small = std::fs::read(root.join("sub/small"))?;
    let statfs = rustix::fs::statvfs(&root)?;
    let missing = std::fs::metadata(root.join("missing"))
        .map(|_| io::ErrorKind::Other)
        .unwrap_or_else(|e| e.kind());
    Ok(ClientResult {
        size: meta.len(),
        mode: meta.mode(),
        data,
        fstat_size,
        small,
        statfs_bsize: statfs.f_bsize,
        statfs_namelen: statfs.f_namemax,
        missing,
    })
}

/// The whole life of a FUSE-over-io_uring connection, with the given ring setup.
fn serve_through_the_ring(api: Api, kind: RingKind, fixed_fd: bool) {
    let (fs, content) = test_tree();
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &uring_opts()).expect("mount and INIT");
    let connection = session.mount().and_then(testkit::Mount::connection);
    let root = session.path().to_owned();

    // INIT agreed on FUSE_OVER_IO_URING; the payload size follows from the reply.
    fuse_uring::check_init(&session.negotiated.kernel).expect("kernel offers io_uring");
    assert_ne!(session.negotiated.accepted & init_flags::OVER_IO_URING, 0);
    let init_out = session.negotiated.init_out;
    assert_eq!((init_out.max_write, init_out.max_pages), (128 * 1024, 32));
    let payload_size = fuse_uring::payload_size(&init_out);
    assert_eq!(payload_size, 32 * rustix::param::page_size());

    // Requests that still come through read(2) (FORGET, INTERRUPT) are counted here.
    let dev_counters = Arc::new(Counters::default());
    let reader = {
        let dev = dev.clone();
        let counters = dev_counters.clone();
        let mut fs = fs.clone();
        std::thread::spawn(move || testkit::serve(dev.as_fd(), &mut fs, &counters))
    };

    // One server per possible CPU, registered before any request is made.
    let ring_counters = Arc::new(Counters::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let qids = fuse_uring::queue_ids().expect("possible CPUs");
    assert_eq!(
        qids.len(),
        testkit_possible_cpus(),
        "one queue per possible CPU"
    );
    let depth = 4;
    let servers: Vec<_> = qids
        .clone()
        .map(|qid| {
            spawn_queue_server(
                QueueServerConfig {
                    qid,
                    depth,
                    payload_size,
                    dev: dev.clone(),
                    kind,
                    fixed_fd,
                    api,
                },
                fs.clone(),
                ring_counters.clone(),
                ready_tx.clone(),
            )
        })
        .collect();
    for _ in qids.clone() {
        match ready_rx.recv_timeout(TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("queue server failed to start: {e}"),
            Err(e) => panic!("queue server not ready: {e}"),
        }
    }

    // The client, on its own thread, bounded in time.
    let client = {
        let root = root.clone();
        std::thread::spawn(move || client(root))
    };
    let seen = join_within(client, connection, "client").expect("client I/O through the mount");
    assert_eq!(seen.size, content.len() as u64);
    assert_eq!(seen.mode & libc::S_IFMT, libc::S_IFREG);
    assert_eq!(seen.fstat_size, content.len() as u64);
    assert!(seen.data == content, "file bytes differ");
    assert_eq!(seen.small, b"hello, ring");
    assert_eq!((seen.statfs_bsize, seen.statfs_namelen), (4096, 255));
    assert_eq!(seen.missing, io::ErrorKind::NotFound);

    // RELEASE is sent in the background after close(2): give it a moment.
    let deadline = Instant::now() + TIMEOUT;
    while ring_counters.count(sys::FUSE_RELEASE) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    for (op, name) in [
        (sys::FUSE_LOOKUP, "LOOKUP"),
        (sys::FUSE_GETATTR, "GETATTR"),
        (sys::FUSE_OPEN, "OPEN"),
        (sys::FUSE_READ, "READ"),
        (sys::FUSE_FLUSH, "FLUSH"),
        (sys::FUSE_RELEASE, "RELEASE"),
        (sys::FUSE_STATFS, "STATFS"),
    ] {
        assert!(
            ring_counters.count(op) >= 1,
            "{name} did not arrive through the ring"
        );
        assert_eq!(dev_counters.count(op), 0, "{name} arrived through read(2)");
    }
    // LOOKUP of data.bin, sub, small and missing.
    assert!(ring_counters.count(sys::FUSE_LOOKUP) >= 4);
    assert!(ring_counters.count(sys::FUSE_OPEN) >= 2);
    assert!(ring_counters.count(sys::FUSE_RELEASE) >= 2);
    let ring_total: u64 = (0..64).map(|op| ring_counters.count(op)).sum();
    let dev_total: u64 = (0..64).map(|op| dev_counters.count(op)).sum();
    eprintln!(
        "{api:?}, {kind:?}, fixed fd {fixed_fd}: {ring_total} requests through the ring, {dev_total} \
         through read(2) (FORGET {}, BATCH_FORGET {}, INTERRUPT {})",
        dev_counters.count(sys::FUSE_FORGET),
        dev_counters.count(sys::FUSE_BATCH_FORGET),
        dev_counters.count(sys::FUSE_INTERRUPT)
    );
    let other_on_dev = dev_total
        - dev_counters.count(sys::FUSE_FORGET)
        - dev_counters.count(sys::FUSE_BATCH_FORGET)
        - dev_counters.count(sys::FUSE_INTERRUPT);
    assert_eq!(other_on_dev, 0, "only FORGET/INTERRUPT may use read(2)");

    // Unmount while every entry is registered: each comes back with ENOTCONN.
    session.finish().expect("unmount");
    let mut reports = Vec::new();
    for server in servers {
        reports.push(join_within(server, connection, "queue server").expect("queue server"));
    }
    let reader_result = join_within(reader, connection, "/dev/fuse reader");
    reader_result.expect("reader ends with ENODEV");

    let mut served = 0;
    let mut max_read = 0;
    for report in &reports {
        assert_eq!(report.in_kernel, 0, "queue {}: entries lost", report.qid);
        assert_eq!(report.foreign, 0);
        served += report.served;
        max_read = max_read.max(report.max_read_reply);
        let spare = u32::from(api == Api::Raw && report.qid == 0);
        let mut shutdown = 0;
        let mut unknown = 0;
        for &(command, errno, index) in &report.errors {
            match (command, errno) {
                (_, Errno::NOTCONN) => shutdown += 1,
                (Command::CommitAndFetch, Errno::NOENT) => {
                    assert_eq!(index, 0, "only the never-fetched entry");
                    unknown += 1;
                }
                other => panic!("queue {}: unexpected completion {other:?}", report.qid),
            }
        }
        assert_eq!(
            unknown, spare,
            "queue {}: ENOENT for the unknown commit id",
            report.qid
        );
        assert_eq!(
            shutdown,
            depth - spare,
            "queue {}: every entry back",
            report.qid
        );
    }
    assert_eq!(served, ring_total);
    assert!(
        max_read > rustix::param::page_size(),
        "READ payload {max_read} fits a page"
    );
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    assert!(
        !mounts.contains(root.to_str().expect("utf8")),
        "mount left behind"
    );
}

/// The number of possible CPUs, counted independently of fuse_uring's parser.
fn testkit_possible_cpus() -> usize {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible").expect("possible");
    text.trim()
        .split(',')
        .map(|part| match part.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn queue_serves_requests_then_unmount_returns_every_entry() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    serve_through_the_ring(Api::Queue, RingKind::Recommended, false);
}

#[test]
fn raw_ring_with_fixed_fd_serves_requests_and_rejects_unknown_commit_id() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    serve_through_the_ring(Api::Raw, RingKind::Basic, true);
}

/// Pushes one SQE and submits it.
fn submit_one(ring: &mut IoUring<squeue::Entry128, cqueue::Entry>, sqe: squeue::Entry128) {
    // SAFETY: the tests below keep the entry's buffers alive until the command's CQE, which
    // they wait for with `next_completion`; each SQE is pushed once, unchanged.
    unsafe { ring.submission().push(&sqe) }.expect("SQ space");
    ring.submit().expect("submit");
}

/// Waits (at most `TIMEOUT`) for the next CQE and decodes it with `buffers`.
fn next_completion<'b>(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    buffers: &'b QueueBuffers,
) -> fuse_uring::Completion<'b> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(cqe) = ring.completion().next() {
            // SAFETY: the tests push only SQEs built from entries of `buffers`, each once;
            // this CQE was just taken off the ring.
            return unsafe { buffers.complete_cqe(&cqe) }.expect("our entry");
        }
        assert!(Instant::now() < deadline, "no CQE within {TIMEOUT:?}");
        let wait = types::Timespec::new().nsec(100_000_000);
        let args = types::SubmitArgs::new().timespec(&wait);
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(e) => panic!("wait for CQE: {e}"),
        }
    }
}

/// Submits one SQE whose command the kernel completes at once, and returns its completion.
fn one_completion<'b>(
    ring: &mut IoUring<squeue::Entry128, cqueue::Entry>,
    buffers: &'b QueueBuffers,
    sqe: squeue::Entry128,
) -> fuse_uring::Completion<'b> {
    submit_one(ring, sqe);
    next_completion(ring, buffers)
}

fn expect_error(done: &fuse_uring::Completion<'_>, command: Command, errno: Errno) {
    assert_eq!(done.command, command);
    let err = done
        .result
        .expect_err("the kernel must refuse this command");
    assert_eq!(err.command(), command);
    assert_eq!(err.errno(), errno, "{err}");
}

/// Checks a command that failed on a connection where a REGISTER already failed: `usually`,
/// or what this kernel answers instead (`testkit::kernel::uring_cmd_after_failed_register`).
fn expect_error_after_failed_register(
    done: &fuse_uring::Completion<'_>,
    command: Command,
    usually: Errno,
    caps: &testkit::kernel::Capabilities,
) -> Errno {
    assert_eq!(done.command, command);
    let err = done
        .result
        .as_ref()
        .expect_err("the kernel must refuse this command");
    assert_eq!(err.command(), command);
    let allowed = testkit::kernel::uring_cmd_after_failed_register(caps, usually);
    assert!(
        allowed.contains(&err.errno()),
        "{err} (expected {allowed:?} on Linux {})",
        caps.release
    );
    err.errno()
}

#[test]
fn register_on_unmounted_fd_and_before_init_fail_then_retry_succeeds() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    let mut ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .build(4)
        .expect("ring");

    // A /dev/fuse fd that no mount uses: EPERM on 6.18 (ENOTCONN on 6.14-6.17).
    let loose = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let buffers =
        QueueBuffers::new(QueueConfig::new(0, 1, 128 * 1024, fuse_fd(&loose))).expect("buffers");
    let entry = buffers.take_entries().unwrap().next().unwrap();
    let done = one_completion(&mut ring, &buffers, entry.register());
    let errno = done.result.expect_err("unmounted fd").errno();
    assert!(
        errno == Errno::PERM || errno == Errno::NOTCONN,
        "unexpected {errno:?}"
    );

    // Mounted, but INIT not answered yet: EAGAIN.
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let mut mount = testkit::Mount::new(dev.as_fd()).expect("mount");
    let early =
        QueueBuffers::new(QueueConfig::new(0, 1, 128 * 1024, fuse_fd(&dev))).expect("buffers");
    let entry = early.take_entries().unwrap().next().unwrap();
    let done = one_completion(&mut ring, &early, entry.register());
    expect_error(&done, Command::Register, Errno::AGAIN);
    // The entry is ours again. After INIT, registering it again is accepted (no CQE until a
    // request arrives), and unmounting gives it back with ENOTCONN.
    let entry = done.entry;
    let negotiated = testkit::handshake(dev.as_fd(), &uring_opts()).expect("INIT");
    fuse_uring::check_init(&negotiated.kernel).expect("io_uring offered");
    submit_one(&mut ring, entry.register());
    assert!(
        ring.completion().next().is_none(),
        "a good REGISTER completes later"
    );
    mount.unmount().expect("unmount");
    let done = next_completion(&mut ring, &early);
    expect_error(&done, Command::Register, Errno::NOTCONN);
    assert!(done.result.unwrap_err().is_shutdown());
}

#[test]
fn bad_register_and_commit_input_yield_kernel_errno() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
        return;
    };
    let (fs, _) = test_tree();
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &uring_opts()).expect("mount and INIT");
    let connection = session.mount().and_then(testkit::Mount::connection);
    let payload_size = fuse_uring::payload_size(&session.negotiated.init_out);
    let nr_queues = fuse_uring::queue_count().expect("possible CPUs");
    let mut ring = IoUring::<squeue::Entry128, cqueue::Entry>::builder()
        .build(8)
        .expect("ring");

    // qid out of range: EINVAL, and the entry comes back.
    let out_of_range =
        QueueBuffers::new(QueueConfig::new(nr_queues, 1, payload_size, fuse_fd(&dev)))
            .expect("buffers");
    let entry = out_of_range.take_entries().unwrap().next().unwrap();
    let done = one_completion(&mut ring, &out_of_range, entry.register());
    expect_error(&done, Command::Register, Errno::INVAL);
    assert!(
        done.result
            .unwrap_err()
            .to_string()
            .contains("qid out of range")
    );
    // The entry is ours again (the token is dropped here; `Entry` has a destructor).
    drop(done.entry);

    // Payload buffer below the negotiated maximum (but above the kernel's 8192 minimum, which
    // QueueBuffers itself enforces): EINVAL, or EOPNOTSUPP on kernels that stop taking
    // io_uring commands after the failed REGISTER above.
    let caps = t.caps();
    let small = QueueBuffers::new(QueueConfig::new(0, 2, payload_size - 4096, fuse_fd(&dev)))
        .expect("buffers");
    let mut entries = small.take_entries().unwrap();
    let done = one_completion(&mut ring, &small, entries.next().unwrap().register());
    let errno = expect_error_after_failed_register(&done, Command::Register, Errno::INVAL, caps);
    assert_eq!(done.entry.index(), 0);
    drop(done);

    // COMMIT_AND_FETCH of an entry that holds no request: its commit id (0) is unknown
    // (ENOENT), or again EOPNOTSUPP.
    let done = one_completion(
        &mut ring,
        &small,
        entries.next().unwrap().commit_and_fetch(),
    );
    let errno2 =
        expect_error_after_failed_register(&done, Command::CommitAndFetch, Errno::NOENT, caps);
    if errno2 == Errno::NOENT {
        assert!(done.result.unwrap_err().is_unknown_commit_id());
    } else {
        assert!(done.result.unwrap_err().is_uring_unavailable());
    }
    assert_eq!(done.entry.index(), 1);
    drop(done.entry);
    eprintln!("after a failed REGISTER: REGISTER {errno:?}, COMMIT_AND_FETCH {errno2:?}");

    // After a failed REGISTER the kernel falls back to read(2): the mount still works.
    let counters = Arc::new(Counters::default());
    let reader = {
        let dev = dev.clone();
        let counters = counters.clone();
        let mut fs = fs.clone();
        std::thread::spawn(move || testkit::serve(dev.as_fd(), &mut fs, &counters))
    };
    let root = session.path().join("sub/small");
    let client = std::thread::spawn(move || std::fs::read(root));
    let data = join_within(client, connection, "client").expect("read through read(2)");
    assert_eq!(data, b"hello, ring");
    assert!(counters.count(sys::FUSE_LOOKUP) >= 2);
    assert!(counters.count(sys::FUSE_READ) >= 1);

    session.finish().expect("unmount");
    join_within(reader, connection, "/dev/fuse reader").expect("reader ends with ENODEV");
    // Every entry is back in our hands: the buffers, dropped at the end of this function
    // (after the completions, which were declared later), unmap with nothing in the kernel.
}

#[test]
fn dropping_a_queue_with_entries_in_the_kernel_leaks_its_buffers() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    // No leak check here: this test leaves the buffers mapped on purpose (the kernel
    // still holds their entries when the queues are dropped).
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &uring_opts()).expect("mount and INIT");
    let payload_size = fuse_uring::payload_size(&session.negotiated.init_out);
    let mut mappings = Vec::new();
    for qid in fuse_uring::queue_ids().expect("possible CPUs") {
        let buffers = QueueBuffers::new(QueueConfig::new(qid, 2, payload_size, fuse_fd(&dev)))
            .expect("buffers");
        let queue = Queue::new(buffers, IoUring::builder().build(2).expect("ring")).expect("queue");
        queue.register_all().expect("register");
        // A good REGISTER has no completion until a request arrives.
        queue.wait(Some(Duration::from_millis(50))).expect("wait");
        assert!(queue.next_completion().is_none());
        assert_eq!(queue.in_kernel(), 2);
        let (base, len) = queue.buffers().mapping();
        mappings.push((base.as_ptr() as usize, len));
        drop(queue);
    }
    // The kernel held the entries when their queues were dropped: the buffers must still be
    // mapped (mincore fails with ENOMEM on unmapped memory).
    let page = rustix::param::page_size();
    for (base, len) in mappings {
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: mincore only reports on the range; `vec` has one byte per page.
        let rc = unsafe { libc::mincore(base as *mut libc::c_void, len, vec.as_mut_ptr()) };
        assert_eq!(
            rc,
            0,
            "buffers unmapped under the kernel: {}",
            io::Error::last_os_error()
        );
    }
    // The rings are gone (their commands were cancelled): unmounting does not hang.
    let root = session.path().to_owned();
    session.finish().expect("unmount");
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    assert!(
        !mounts.contains(root.to_str().expect("utf8")),
        "mount left behind"
    );
}

#[test]
fn before_linux_6_14_the_library_says_why_io_uring_is_unavailable() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Without(Feature::Uring)) else {
        return;
    };
    let caps = t.caps();
    assert_eq!(
        fuse_uring::uring_support(),
        fuse_uring::UringSupport::Unavailable
    );
    assert!(
        fuse_uring::uring_support().to_string().contains("6.14"),
        "{}",
        fuse_uring::uring_support()
    );

    // INIT does not offer it, and check_init says the kernel is too old, by its minor version.
    let mut opts = InitOptions::default();
    opts.want |= init_flags::OVER_IO_URING;
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &opts).expect("mount and INIT");
    let connection = session.mount().and_then(testkit::Mount::connection);
    assert_eq!(session.negotiated.offered & init_flags::OVER_IO_URING, 0);
    assert_eq!(session.negotiated.init_in.minor, caps.init_minor);
    assert!(caps.init_minor < 42, "FUSE-over-io_uring came with 7.42");
    let e = fuse_uring::check_init(&session.negotiated.kernel).expect_err("not offered");
    assert_eq!(
        e,
        fuse_uring::Unsupported::KernelTooOld {
            minor: caps.init_minor
        }
    );
    assert!(e.to_string().contains("7.42"), "{e}");

    // A server that registers anyway: this kernel's /dev/fuse has no io_uring commands, and
    // the completion says "unavailable".
    let payload = fuse_uring::payload_size(&session.negotiated.init_out);
    let buffers =
        QueueBuffers::new(QueueConfig::new(0, 1, payload, fuse_fd(&dev))).expect("buffers");
    let queue =
        Queue::new(buffers, fuse_uring::ring_builder().build(1).expect("ring")).expect("queue");
    queue.register_all().expect("submit REGISTER");
    let mut done = None;
    for _ in 0..100 {
        queue.wait(Some(Duration::from_millis(50))).expect("wait");
        if let Some(d) = queue.next_completion() {
            done = Some(d);
            break;
        }
    }
    let e = done
        .expect("REGISTER completes")
        .result
        .expect_err("no io_uring on this kernel");
    assert_eq!(e.errno(), Errno::OPNOTSUPP, "{e}");
    assert!(e.is_uring_unavailable(), "{e}");
    drop(queue);

    // /dev/fuse serves the mount.
    let (fs, _) = test_tree();
    let counters = Arc::new(Counters::default());
    let reader = {
        let dev = dev.clone();
        let counters = counters.clone();
        let mut fs = fs.clone();
        std::thread::spawn(move || testkit::serve(dev.as_fd(), &mut fs, &counters))
    };
    let path = session.path().join("sub/small");
    let client = std::thread::spawn(move || std::fs::read(path));
    let data = join_within(client, connection, "client").expect("read over /dev/fuse");
    assert_eq!(data, b"hello, ring");
    assert!(counters.count(sys::FUSE_READ) >= 1);
    session.finish().expect("unmount");
    join_within(reader, connection, "/dev/fuse reader").expect("reader ends with ENODEV");
}
