//! Buffer pools and zero-copy (protocol 7.46, Linux 7.3) against the running kernel, and the
//! fallback on older kernels: the same server code (`QueueConfig::pool_if_offered`) uses a pool
//! when INIT offers `FUSE_HAS_IO_URING_BUFPOOL` and per-entry buffers otherwise.
//!
//! What each test proves depends on the kernel it finds (printed): on 7.46 the pool paths and
//! the documented errno of each misuse, on 7.45 and older (Linux 6.18 here) the fallback and
//! that the 7.46 commands are refused with `EINVAL`. `cargo xtask vm-test --kernel 7.3` runs
//! them on Linux 7.3.

// Raw ring tests push SQEs and mint tokens from their completions.
#![allow(unsafe_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use fuse_uring::{
    Command, Completion, Errno, FuseFd, Pool, Queue, QueueBuffers, QueueConfig, Ring, sqe,
};
use fuse_wire::init_flags;
use io_uring::{IoUring, cqueue, squeue};
use testkit::{Counters, Handler, InitOptions, MemFs, Needs, Reply, Request, Session};

const TIMEOUT: Duration = Duration::from_secs(20);
const DEPTH: u32 = 4;
/// `user_data` of the zero-copy reads (odd and small: never an entry's).
const ZC_READ: u64 = 5;

fn fuse_fd(dev: &Arc<OwnedFd>) -> FuseFd {
    FuseFd::new(dev.clone()).expect("/dev/fuse")
}

/// The kernel this test runs on, from its INIT request.
struct Kernel {
    minor: u32,
    offered: u64,
}

impl Kernel {
    fn of(session: &Session) -> Kernel {
        let k = Kernel {
            minor: session.negotiated.init_in.minor,
            offered: session.negotiated.offered,
        };
        let pools = k.pools();
        println!(
            "kernel: protocol 7.{}, FUSE_OVER_IO_URING {}, FUSE_HAS_IO_URING_BUFPOOL {pools}: {}",
            k.minor,
            k.offered & init_flags::OVER_IO_URING != 0,
            if pools {
                "testing buffer pools"
            } else {
                "testing the fallback to per-entry buffers"
            }
        );
        // 7.46 offers pools exactly with io_uring; older kernels never.
        assert_eq!(
            pools,
            k.minor >= 46,
            "FUSE_HAS_IO_URING_BUFPOOL on 7.{}",
            k.minor
        );
        k
    }

    fn pools(&self) -> bool {
        self.offered & init_flags::HAS_IO_URING_BUFPOOL != 0
    }
}

/// The test file system: MemFs, whose OPEN replies ask for zero-copy when `zero_copy`.
#[derive(Clone)]
struct Fs {
    mem: MemFs,
    zero_copy: bool,
}

impl Handler for Fs {
    fn handle(&mut self, request: &Request) -> Reply {
        let mut reply = self.mem.handle(request);
        if self.zero_copy && request.opcode() == sys::FUSE_OPEN {
            if let Reply::Data(out) = &mut reply {
                // fuse_open_out.open_flags is the u32 at offset 8.
                let flags = u32::from_ne_bytes(out[8..12].try_into().expect("open_out"));
                let flags = flags | sys::FOPEN_IO_URING_ZERO_COPY;
                out[8..12].copy_from_slice(&flags.to_ne_bytes());
            }
        }
        reply
    }
}

/// What one queue server saw.
#[derive(Debug, Default)]
struct Report {
    qid: u16,
    served: u64,
    pooled: bool,
    /// Requests whose payload buffer came from the pool.
    pool_payloads: u64,
    /// Offsets of those buffers in the pool.
    offsets: BTreeSet<u32>,
    /// Zero-copy READs answered through the entry's slot.
    zero_copy_reads: u64,
    /// Completions with an error: (command, errno).
    errors: Vec<(Command, Errno)>,
    in_kernel: u32,
}

struct Server {
    qid: u16,
    dev: Arc<OwnedFd>,
    payload: usize,
    offered: u64,
    zero_copy: bool,
    /// The file whose bytes zero-copy READs of nodeid `zc_node` are read from.
    backing: Option<(u64, Arc<File>)>,
}

fn spawn(
    server: Server,
    mut fs: Fs,
    ready: mpsc::Sender<Result<(), String>>,
) -> JoinHandle<Result<Report, String>> {
    std::thread::spawn(move || {
        let result = serve(&server, &mut fs, &ready);
        if let Err(e) = &result {
            let _ = ready.send(Err(e.clone()));
        }
        result
    })
}

fn serve(
    s: &Server,
    fs: &mut Fs,
    ready: &mpsc::Sender<Result<(), String>>,
) -> Result<Report, String> {
    let config = QueueConfig::new(s.qid, DEPTH, s.payload, fuse_fd(&s.dev))
        .pool_if_offered(s.offered, Pool::standard(s.zero_copy));
    let buffers = QueueBuffers::new(config).map_err(|e| format!("buffers: {e}"))?;
    let mut report = Report {
        qid: s.qid,
        pooled: buffers.pool().is_some(),
        ..Report::default()
    };
    let ring: Ring = IoUring::builder()
        .build(2 * DEPTH)
        .map_err(|e| format!("ring: {e}"))?;
    let queue = Queue::new(buffers, ring).map_err(|e| format!("queue: {e}"))?;
    queue
        .register_all()
        .map_err(|e| format!("queue {}: register: {e}", s.qid))?;
    let _ = ready.send(Ok(()));
    // Zero-copy READs waiting for their fixed-buffer read: (user_data, entry).
    let mut pending = Vec::with_capacity(DEPTH as usize);
    let deadline = Instant::now() + 3 * TIMEOUT;
    while queue.in_kernel() > 0 || !pending.is_empty() {
        if Instant::now() > deadline {
            return Err(format!("queue {}: entries still in the kernel", s.qid));
        }
        queue
            .wait(Some(Duration::from_millis(100)))
            .map_err(|e| format!("wait: {e}"))?;
        for done in queue.completions() {
            let mut entry = done.entry;
            if let Err(e) = done.result {
                report.errors.push((e.command(), e.errno()));
                continue;
            }
            report.served += 1;
            if report.pooled {
                if let Ok((_, len)) = entry.payload_region() {
                    assert_eq!(len, s.payload, "pool buffers are one payload size");
                    report.pool_payloads += 1;
                    report.offsets.insert(entry.ent_in_out().offset);
                }
            }
            if let Some(zc) = entry.zero_copy() {
                let (node, file) = s
                    .backing
                    .as_ref()
                    .ok_or("zero-copy without a backing file")?;
                let read: sys::fuse_read_in =
                    entry.op_in_as().ok_or("READ without fuse_read_in")?;
                if zc.opcode != sys::FUSE_READ || entry.in_header().nodeid != *node {
                    return Err(format!("unexpected zero-copy request {zc:?}"));
                }
                let user_data = ZC_READ + 2 * u64::from(entry.index());
                queue
                    .zero_copy_read(&entry, file.as_fd(), read.offset, zc.len, user_data)
                    .map_err(|e| format!("zero_copy_read: {e}"))?;
                pending.push((user_data, entry));
                continue;
            }
            let request = Request {
                header: *entry.in_header(),
                body: [entry.op_in(), entry.payload()].concat(),
            };
            match fs.handle(&request) {
                Reply::Data(data) => entry.reply(&data).map_err(|e| format!("reply: {e}"))?,
                Reply::Error(errno) => entry.set_error(Errno::from_raw_os_error(errno)),
                Reply::None => entry.set_error(Errno::NOSYS),
            }
            queue
                .commit_and_fetch(entry)
                .map_err(|e| format!("commit: {e}"))?;
        }
        for (user_data, res) in queue.other_completions() {
            let at = pending
                .iter()
                .position(|(ud, _)| *ud == user_data)
                .ok_or_else(|| format!("unexpected completion {user_data}"))?;
            let (_, mut entry) = pending.swap_remove(at);
            let n = usize::try_from(res).map_err(|_| format!("zero-copy read failed: {res}"))?;
            entry
                .set_zero_copy_reply(n)
                .map_err(|e| format!("zero-copy reply: {e}"))?;
            report.zero_copy_reads += 1;
            queue
                .commit_and_fetch(entry)
                .map_err(|e| format!("commit: {e}"))?;
        }
    }
    report.in_kernel = queue.in_kernel();
    Ok(report)
}

fn join_within<T>(handle: JoinHandle<T>, connection: Option<u32>, what: &str) -> T {
    let deadline = Instant::now() + TIMEOUT;
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if !handle.is_finished() {
        eprintln!("{what} did not finish in time: aborting the connection");
        if let Some(n) = connection {
            let _ = testkit::abort_connection(n);
        }
    }
    handle.join().unwrap_or_else(|_| panic!("{what} panicked"))
}

fn content() -> Vec<u8> {
    // Several 128 KiB READs: payloads far larger than a page.
    content_of(300_000)
}

fn content_of(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(7) % 251) as u8)
        .collect()
}

/// How the queues are set up.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Per-entry buffers even where the kernel offers pools.
    PerEntry,
    /// A pool where offered (`pool_if_offered`), registered with the ring.
    Pool,
    /// A pool with zero-copy where offered.
    ZeroCopy,
}

/// Runs one client thread per possible CPU, pinned there (the kernel queues a request on the
/// queue of the CPU its task runs on), each reading `data.bin` whole.
fn clients_on_every_cpu(root: PathBuf, queues: u16) -> Vec<JoinHandle<std::io::Result<Vec<u8>>>> {
    (0..queues)
        .map(|cpu| {
            let path = root.join("data.bin");
            let small = root.join("sub/small");
            std::thread::spawn(move || {
                let mut set = rustix::thread::CpuSet::new();
                set.set(usize::from(cpu));
                rustix::thread::sched_setaffinity(None, &set)?;
                let mut data = Vec::new();
                File::open(&path)?.read_to_end(&mut data)?;
                // A second file and a stat, so each CPU's queue sees several requests.
                std::fs::metadata(&small)?;
                Ok(data)
            })
        })
        .collect()
}

/// Mounts, serves every queue with `pool_if_offered`, reads through the mount from every CPU,
/// unmounts, and returns the reports.
/// What a run saw: the kernel, each queue's report, each client's bytes, the clients' time.
type Run = (Kernel, Vec<Report>, Vec<Vec<u8>>, Duration);

fn run(mode: Mode, data: &[u8]) -> Option<Run> {
    let zero_copy = mode == Mode::ZeroCopy;
    let data = data.to_vec();
    let mut mem = MemFs::new();
    let node = mem.add_file(1, "data.bin", data.clone());
    let sub = mem.add_dir(1, "sub");
    mem.add_file(sub, "small", b"hello, pool".to_vec());
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &InitOptions::uring()).expect("mount, INIT");
    let connection = session.mount().and_then(testkit::Mount::connection);
    let kernel = Kernel::of(&session);
    if zero_copy && !kernel.pools() {
        println!("no buffer pools on this kernel: zero-copy is not offered either");
        session.finish().expect("unmount");
        return None;
    }
    let backing = if zero_copy {
        let dir = testkit::temp_dir("zc").expect("temp dir");
        let path = dir.join("backing");
        File::create(&path)
            .and_then(|mut f| f.write_all(&data))
            .expect("backing file");
        Some((node, Arc::new(File::open(&path).expect("open backing"))))
    } else {
        None
    };
    let fs = Fs { mem, zero_copy };
    // FORGET and INTERRUPT still come through read(2).
    let reader = {
        let dev = dev.clone();
        let mut fs = fs.clone();
        let counters = Arc::new(Counters::default());
        std::thread::spawn(move || testkit::serve(dev.as_fd(), &mut fs, &counters))
    };
    let payload = fuse_uring::payload_size(&session.negotiated.init_out);
    let (ready_tx, ready_rx) = mpsc::channel();
    let queues = fuse_uring::queue_count().expect("possible CPUs");
    let servers: Vec<_> = (0..queues)
        .map(|qid| {
            spawn(
                Server {
                    qid,
                    dev: dev.clone(),
                    payload,
                    offered: if mode == Mode::PerEntry {
                        kernel.offered & !init_flags::HAS_IO_URING_BUFPOOL
                    } else {
                        kernel.offered
                    },
                    zero_copy,
                    backing: backing.clone(),
                },
                fs.clone(),
                ready_tx.clone(),
            )
        })
        .collect();
    for _ in 0..queues {
        match ready_rx.recv_timeout(TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("queue server failed to start: {e}"),
            Err(e) => panic!("queue server not ready: {e}"),
        }
    }
    let started = Instant::now();
    let clients = clients_on_every_cpu(session.path().to_owned(), queues);
    let read: Vec<Vec<u8>> = clients
        .into_iter()
        .map(|c| join_within(c, connection, "client").expect("read through the mount"))
        .collect();
    let elapsed = started.elapsed();
    session.finish().expect("unmount");
    let reports: Vec<Report> = servers
        .into_iter()
        .map(|s| join_within(s, connection, "queue server").expect("queue server"))
        .collect();
    join_within(reader, connection, "reader").expect("reader ends");
    for r in &reports {
        println!(
            "queue {}: {} requests, pool {}, {} from pool buffers at offsets {:?}, {} zero-copy \
             READs",
            r.qid, r.served, r.pooled, r.pool_payloads, r.offsets, r.zero_copy_reads
        );
        // Unmount gives every entry back, with ENOTCONN.
        assert_eq!(r.in_kernel, 0, "queue {}: entries lost", r.qid);
        let shutdown = r
            .errors
            .iter()
            .filter(|(_, e)| *e == Errno::NOTCONN)
            .count();
        assert_eq!(
            shutdown, DEPTH as usize,
            "queue {}: every entry back: {:?}",
            r.qid, r.errors
        );
        assert_eq!(r.errors.len(), shutdown, "queue {}: {:?}", r.qid, r.errors);
    }
    Some((kernel, reports, read, elapsed))
}

#[test]
fn pool_when_offered_else_per_entry_buffers_serve_every_queue() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let data = content();
    let (kernel, reports, read, _) = run(Mode::Pool, &data).expect("a run");
    for (cpu, bytes) in read.iter().enumerate() {
        assert!(*bytes == data, "client on CPU {cpu}: file bytes differ");
    }
    for r in &reports {
        assert!(r.served >= 1, "queue {} served nothing", r.qid);
        assert_eq!(
            r.pooled,
            kernel.pools(),
            "queue {}: pool exactly when offered",
            r.qid
        );
        if kernel.pools() {
            // Every request with payload (the READs, LOOKUP's name...) was in a pool buffer.
            assert!(
                r.pool_payloads >= 1,
                "queue {}: no request used the pool",
                r.qid
            );
        } else {
            assert_eq!(r.pool_payloads, 0);
        }
    }
}

#[test]
fn zero_copy_reads_are_hash_equal_and_flagged() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let data = content();
    let Some((_, reports, read, _)) = run(Mode::ZeroCopy, &data) else {
        // Printed by `run`: a kernel before 7.46; the fallback test covers it.
        return;
    };
    for (cpu, bytes) in read.iter().enumerate() {
        assert!(
            *bytes == data,
            "client on CPU {cpu}: zero-copy file bytes differ"
        );
    }
    let zero_copy: u64 = reports.iter().map(|r| r.zero_copy_reads).sum();
    assert!(zero_copy >= 1, "no READ came with FUSE_URING_ENT_ZERO_COPY");
}

/// A measurement, not a target: served reads (one 16 MiB file per CPU, read once through a
/// fresh mount, so every byte is a READ the server answers) with per-entry buffers, a pool,
/// and a pool with zero-copy. Prints the throughput ratios; asserts only that every byte is
/// right. On kernels before 7.46 there is nothing to compare (printed).
#[test]
fn measure_served_reads_per_entry_pool_and_zero_copy() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let data = content_of(16 << 20);
    let mut rates = Vec::new();
    for mode in [Mode::PerEntry, Mode::Pool, Mode::ZeroCopy] {
        let Some((kernel, reports, read, elapsed)) = run(mode, &data) else {
            println!("measurement: no buffer pools on this kernel, nothing to compare");
            return;
        };
        if !kernel.pools() {
            println!("measurement: no buffer pools on this kernel, nothing to compare");
            return;
        }
        for bytes in &read {
            assert!(*bytes == data, "{mode:?}: file bytes differ");
        }
        let zc: u64 = reports.iter().map(|r| r.zero_copy_reads).sum();
        let mib = (read.len() * data.len()) as f64 / f64::from(1 << 20);
        let rate = mib / elapsed.as_secs_f64();
        println!(
            "measurement: {mode:?}: {mib:.0} MiB in {elapsed:?} ({rate:.1} MiB/s), {zc} zero-copy READs"
        );
        rates.push((mode, rate));
    }
    let base = rates[0].1;
    for (mode, rate) in &rates {
        println!("measurement: {mode:?} / PerEntry = {:.2}x", rate / base);
    }
}

// --- the documented errors, on a raw ring -----------------------------------------------------

struct Raw {
    session: Session,
    dev: Arc<OwnedFd>,
    ring: IoUring<squeue::Entry128, cqueue::Entry>,
    payload: usize,
    kernel: Kernel,
}

impl Raw {
    fn mount() -> Raw {
        let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
        let session = Session::mount_only(dev.clone(), &InitOptions::uring()).expect("mount");
        let kernel = Kernel::of(&session);
        let payload = fuse_uring::payload_size(&session.negotiated.init_out);
        Raw {
            session,
            dev,
            ring: IoUring::builder().build(8).expect("ring"),
            payload,
            kernel,
        }
    }

    fn buffers(&self, pool: Option<Pool>) -> QueueBuffers {
        let mut config = QueueConfig::new(0, 2, self.payload, fuse_fd(&self.dev));
        config.pool = pool;
        QueueBuffers::new(config).expect("buffers")
    }

    /// Pushes one SQE that completes at once and returns its result.
    fn result_of(&mut self, sqe: squeue::Entry128) -> i32 {
        // SAFETY: the SQEs of these tests point into buffers that outlive the ring's use of
        // them (kept until after unmount), or into nothing.
        unsafe { self.ring.submission().push(&sqe) }.expect("SQ space");
        self.ring.submit_and_wait(1).expect("submit");
        self.ring.completion().next().expect("a CQE").result()
    }

    /// A command on `buffers` that completes at once, decoded.
    fn complete<'b>(&mut self, buffers: &'b QueueBuffers, sqe: squeue::Entry128) -> Completion<'b> {
        // SAFETY: as in `result_of`.
        unsafe { self.ring.submission().push(&sqe) }.expect("SQ space");
        self.ring.submit_and_wait(1).expect("submit");
        let cqe = self.ring.completion().next().expect("a CQE");
        // SAFETY: the SQE was built from an entry of `buffers` (or carries its user_data) and
        // pushed once; this CQE was just taken off the ring.
        unsafe { buffers.complete_cqe(&cqe) }.expect("our entry")
    }

    fn fd(&self) -> fuse_uring::DevFd {
        fuse_fd(&self.dev).dev_fd()
    }
}

fn expect_errno(done: &Completion<'_>, command: Command, errno: Errno, what: &str) {
    let err = done.result.expect_err(what);
    assert_eq!(
        (err.command(), err.errno()),
        (command, errno),
        "{what}: {err}"
    );
    println!("{what}: {err}");
}

fn errno_of(res: i32) -> Errno {
    Errno::from_raw_os_error(-res)
}

#[test]
fn each_misuse_of_pools_gets_its_documented_errno() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let mut raw = Raw::mount();
    if !raw.kernel.pools() {
        // Before 7.46 the kernel does not know the commands: EINVAL, and the connection keeps
        // working with per-entry buffers (shown by the serving test).
        let fd = raw.fd();
        let pooled = raw.buffers(Some(Pool::default()));
        let res = raw.result_of(sqe::add_queue(fd, 0, false, 1));
        assert_eq!(errno_of(res), Errno::INVAL, "ADD_QUEUE before 7.46");
        let res = raw.result_of(pooled.add_bufpool_sqe(3).expect("pool"));
        assert_eq!(errno_of(res), Errno::INVAL, "ADD_BUFPOOL before 7.46");
        println!(
            "7.{}: ADD_QUEUE and ADD_BUFPOOL are EINVAL",
            raw.kernel.minor
        );
        raw.session.finish().expect("unmount");
        return;
    }

    // ADD_QUEUE twice: EEXIST. ADD_BUFPOOL after a REGISTER: EINVAL.
    {
        let fd = raw.fd();
        let plain = raw.buffers(None);
        let pooled = raw.buffers(Some(Pool::default()));
        assert_eq!(
            raw.result_of(sqe::add_queue(fd, 0, false, 1)),
            0,
            "ADD_QUEUE"
        );
        assert_eq!(
            errno_of(raw.result_of(sqe::add_queue(fd, 0, false, 1))),
            Errno::EXIST,
            "ADD_QUEUE twice"
        );
        // A good REGISTER stays in the kernel (no CQE until a request or the unmount).
        let entry = plain.take_entries().expect("fresh").next().expect("entry");
        // SAFETY: `plain` outlives the command: its CQE (ENOTCONN) is awaited below.
        unsafe { raw.ring.submission().push(&entry.register()) }.expect("SQ");
        raw.ring.submit().expect("submit");
        let res = raw.result_of(pooled.add_bufpool_sqe(3).expect("pool"));
        assert_eq!(errno_of(res), Errno::INVAL, "ADD_BUFPOOL after REGISTER");
        println!("ADD_QUEUE twice: EEXIST; ADD_BUFPOOL after REGISTER: EINVAL");
        let Raw {
            session, mut ring, ..
        } = raw;
        session.finish().expect("unmount");
        ring.submit_and_wait(1).expect("wait for the REGISTER");
        let cqe = ring.completion().next();
        assert_eq!(
            cqe.map(|c| c.result()),
            Some(-libc::ENOTCONN),
            "REGISTER back at unmount"
        );
    }

    // A REGISTER with a payload iovec on a pool queue: EINVAL.
    {
        let mut raw = Raw::mount();
        let fd = raw.fd();
        let pooled = raw.buffers(Some(Pool::default()));
        let plain = raw.buffers(None);
        assert_eq!(raw.result_of(pooled.add_queue_sqe(1).expect("pool")), 0);
        assert_eq!(
            raw.result_of(pooled.add_bufpool_sqe(3).expect("pool")),
            0,
            "ADD_BUFPOOL"
        );
        let entry = plain.take_entries().expect("fresh").next().expect("entry");
        let done = raw.complete(&plain, entry.register());
        expect_errno(
            &done,
            Command::Register,
            Errno::INVAL,
            "REGISTER with a payload iovec on a pool queue",
        );
        drop(done);
        let _ = fd;
        raw.session.finish().expect("unmount");
    }

    // Zero-copy without a pool: EINVAL at REGISTER.
    {
        let mut raw = Raw::mount();
        let fd = raw.fd();
        let plain = raw.buffers(None);
        assert_eq!(
            raw.result_of(sqe::add_queue(fd, 0, true, 1)),
            0,
            "ADD_QUEUE zero-copy"
        );
        let entry = plain.take_entries().expect("fresh").next().expect("entry");
        let done = raw.complete(&plain, entry.register());
        expect_errno(
            &done,
            Command::Register,
            Errno::INVAL,
            "zero-copy without a pool",
        );
        drop(done);
        raw.session.finish().expect("unmount");
    }

    // A registered pool, then a REGISTER with the wrong buf_index: EINVAL.
    {
        let mut raw = Raw::mount();
        let fd = raw.fd();
        let pooled = raw.buffers(Some(Pool {
            registered_index: Some(0),
            zero_copy_first_slot: None,
        }));
        let iov = pooled.pool().expect("pool").iovec;
        // SAFETY: the pool lives in `pooled`, which outlives the ring's use of it (the ring is
        // dropped at the end of this block, after the unmount).
        unsafe { raw.ring.submitter().register_buffers(&[iov]) }.expect("register the pool");
        assert_eq!(raw.result_of(pooled.add_queue_sqe(1).expect("pool")), 0);
        assert_eq!(
            raw.result_of(pooled.add_bufpool_sqe(3).expect("pool")),
            0,
            "ADD_BUFPOOL fixed"
        );
        let entry = pooled.take_entries().expect("fresh").next().expect("entry");
        // The entry's own REGISTER carries buf_index 0; this one says 1.
        let user_data = entry.register().get_user_data();
        let wrong = sqe::register_with(
            fd,
            0,
            user_data as *const [libc::iovec; 2],
            sqe::PoolArgs {
                registered_pool: Some(1),
                zero_copy_slot: None,
            },
            user_data,
        );
        let done = raw.complete(&pooled, wrong);
        expect_errno(
            &done,
            Command::Register,
            Errno::INVAL,
            "REGISTER with the wrong buf_index",
        );
        drop(done);
        raw.session.finish().expect("unmount");
    }
}
