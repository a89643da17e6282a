//! The FUSE-over-io_uring transport, built from `fuse-uring`.
//!
//! One thread per queue (one queue per possible CPU), pinned to its CPU, owning a
//! [`fuse_uring::Queue`] (its ring and its buffers): register every entry, then loop — wait for
//! completions, answer each request in place in the entry's payload buffer, COMMIT_AND_FETCH.
//! All completions of one wait are answered and their SQEs submitted together with the next
//! wait (one syscall per batch). Nothing is allocated per request: the only copies are the fixed argument (at most
//! 128 bytes) and the request's names, which live in the same payload buffer as the reply.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use fuse_kernel_sys as sys;
use fuse_uring::{Errno, FuseFd, Pool, Queue, QueueBuffers, QueueConfig, Ring};
use fuse_wire::{Protocol, Request};

use crate::fs::{Fs, Outcome};
use crate::stats::Transport;

/// A ring of `depth` SQEs for one queue, with the task-work flags of `setup`.
fn build_ring(setup: RingSetup, depth: u32) -> io::Result<Ring> {
    match setup {
        RingSetup::Defer => fuse_uring::ring_builder().build(depth),
        RingSetup::Coop => Ring::builder()
            .setup_single_issuer()
            .setup_coop_taskrun()
            .setup_taskrun_flag()
            .build(depth),
        RingSetup::Plain => Ring::builder().build(depth),
    }
}

/// How the queues are served ([`Rings::start`]).
#[derive(Debug, Clone, Copy)]
pub struct RingOptions {
    /// Entries per queue: how many requests one queue holds at once.
    pub depth: u32,
    /// The ring's task-work flags.
    pub setup: RingSetup,
    /// Pin the thread of queue `q` to CPU `q`.
    pub pin: bool,
    /// Serve READs of files opened with `FOPEN_IO_URING_ZERO_COPY` into the client's pages
    /// (only with buffer pools).
    pub zero_copy: bool,
}

/// How each io_uring ring runs the kernel's task work (`--ring-setup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSetup {
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN` (Linux 6.1+).
    Defer,
    /// `IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG`.
    Coop,
    /// No task-work flags.
    Plain,
}

impl RingSetup {
    /// The name used on the command line and in the `ready:` line.
    pub fn name(self) -> &'static str {
        match self {
            RingSetup::Defer => "defer",
            RingSetup::Coop => "coop",
            RingSetup::Plain => "plain",
        }
    }
}

/// Room for a request's names/data copied out of the payload buffer before the reply is
/// written there. Larger payloads only come with write requests, which are refused anyway.
const SCRATCH: usize = 64 * 1024;

/// Queue ids to register: one per possible CPU (`/sys/devices/system/cpu/possible`). The
/// kernel switches to the ring only once every one of them has an entry, so a list that
/// cannot be read is an error, never a guess.
pub fn possible_queues() -> io::Result<Vec<u16>> {
    Ok(fuse_uring::queue_ids()?.collect())
}

/// What was checked before `FUSE_OVER_IO_URING` is agreed in the INIT reply.
#[derive(Debug)]
pub struct Rings {
    queues: Vec<u16>,
    /// The kernel's INIT flags: buffer pools are used when they offer them (7.46).
    offered: u64,
    options: RingOptions,
}

impl Rings {
    /// Checks that io_uring can really be used before agreeing to it (agreeing and then
    /// failing to register would leave requests waiting): the kernel offers it for this
    /// connection, and a ring with the FUSE setup can be created here.
    pub fn prepare(
        queues: &[u16],
        kernel: &fuse_wire::KernelInit,
        options: RingOptions,
    ) -> io::Result<Rings> {
        fuse_uring::check_init(kernel).map_err(io::Error::other)?;
        if queues.is_empty() {
            return Err(io::Error::other("no possible CPUs found"));
        }
        // The real rings are created by their own threads (single issuer); this one proves
        // that the setup flags are accepted here.
        drop(build_ring(options.setup, options.depth)?);
        Ok(Rings {
            queues: queues.to_vec(),
            offered: kernel.flags,
            options,
        })
    }

    /// The same rings with zero-copy READs on or off (decided after INIT: it needs pools and
    /// CAP_SYS_ADMIN).
    pub fn with_zero_copy(mut self, zero_copy: bool) -> Rings {
        self.options.zero_copy = zero_copy;
        self
    }

    /// Whether the queues get buffer pools (the kernel offers them: Linux 7.3, 7.46).
    pub fn pools(&self) -> bool {
        self.offered & fuse_wire::init_flags::HAS_IO_URING_BUFPOOL != 0
    }

    /// Starts one thread per queue; each registers its entries and serves until unmount.
    /// With `options.pin` (the default), the thread of queue `q` runs only on CPU `q`, where the
    /// kernel queues the requests of that CPU's tasks: measured with `cargo xtask bench`,
    /// unpinned threads woken across CPUs cut 4 KiB random reads and open+read+close several
    /// times over on this 2-CPU machine, more than sharing the CPU with the caller costs.
    /// `wake` is called when a thread ends.
    /// Queues use a buffer pool when the kernel offers one, and with `options.zero_copy` (only with
    /// pools) serve READs of files opened with `FOPEN_IO_URING_ZERO_COPY` straight into the
    /// client's pages.
    pub fn start(
        self,
        fs: Arc<Fs>,
        dev: Arc<OwnedFd>,
        payload: usize,
        protocol: Protocol,
        wake: fn(),
    ) -> io::Result<Vec<JoinHandle<Result<(), String>>>> {
        let offered = self.offered;
        let options = self.options;
        let mut threads = Vec::with_capacity(self.queues.len());
        // Each thread says when its REGISTERs are submitted (or drops its sender on failure):
        // `start` returns once every queue is served, so that `ready:` is true when printed.
        let (registered, all_registered) = std::sync::mpsc::channel::<()>();
        for qid in self.queues {
            let fs = fs.clone();
            let dev = dev.clone();
            let registered = registered.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("fuse-uring-{qid}"))
                    .spawn(move || {
                        let setup = Setup { offered, options };
                        let r = serve_queue(&fs, &dev, qid, payload, setup, protocol, registered)
                            .map_err(|e| format!("queue {qid}: {e}"));
                        if let Err(e) = &r {
                            eprintln!("passthroughfs: io_uring {e}");
                        }
                        wake();
                        r
                    })?,
            );
        }
        drop(registered);
        // Ends when every thread has sent or dropped its sender.
        while all_registered.recv().is_ok() {}
        Ok(threads)
    }
}

/// Pins the calling thread to `cpu` (requests of CPU `q` are queued on queue `q`).
fn pin_to_cpu(cpu: u16) {
    let mut set = rustix::thread::CpuSet::new();
    set.set(usize::from(cpu));
    let _ = rustix::thread::sched_setaffinity(None, &set);
}

/// Fault injection for the tests (`tests/faults.rs`): with
/// `PASSTHROUGHFS_FAULT_SHORT_PAYLOAD_QID=<qid>`, that queue's payload buffers are one page
/// shorter than INIT negotiated, so the kernel refuses its REGISTER (`EINVAL`).
const FAULT_SHORT_PAYLOAD_QID: &str = "PASSTHROUGHFS_FAULT_SHORT_PAYLOAD_QID";

fn faulty_queue(qid: u16) -> bool {
    let faulty = std::env::var(FAULT_SHORT_PAYLOAD_QID)
        .ok()
        .and_then(|v| v.parse::<u16>().ok());
    faulty == Some(qid)
}

fn payload_for_queue(qid: u16, payload: usize) -> usize {
    if faulty_queue(qid) {
        payload
            .saturating_sub(4096)
            .max(fuse_uring::MIN_PAYLOAD_SIZE)
    } else {
        payload
    }
}

/// How a queue is set up.
#[derive(Debug, Clone, Copy)]
struct Setup {
    offered: u64,
    options: RingOptions,
}

/// `user_data` of a zero-copy read for entry `index` (odd and small: never an entry's).
fn zero_copy_user_data(index: u32) -> u64 {
    1 + 2 * u64::from(index)
}

fn serve_queue(
    fs: &Fs,
    dev: &OwnedFd,
    qid: u16,
    payload: usize,
    setup: Setup,
    protocol: Protocol,
    registered: std::sync::mpsc::Sender<()>,
) -> io::Result<()> {
    let RingOptions {
        depth,
        setup: ring_setup,
        pin,
        zero_copy,
    } = setup.options;
    if pin {
        pin_to_cpu(qid);
    }
    let payload = payload_for_queue(qid, payload);
    let dev = FuseFd::dup(dev.as_fd())?;
    // A pool (registered with the ring) when the kernel offers one; per-entry buffers else.
    // (The fault injection needs the queue's own short payload buffers: no pool there.)
    let offered = if faulty_queue(qid) {
        setup.offered & !fuse_wire::init_flags::HAS_IO_URING_BUFPOOL
    } else {
        setup.offered
    };
    let config = QueueConfig::new(qid, depth, payload, dev)
        .pool_if_offered(offered, Pool::standard(zero_copy));
    let buffers = QueueBuffers::new(config)?;
    let ring = build_ring(ring_setup, depth)?;
    // The queue owns buffers and ring: no unsafe here, and if it is dropped while the kernel
    // still holds entries it leaks the buffers instead of unmapping them.
    let queue = Queue::new(buffers, ring)?;
    queue.register_all()?;
    let _ = registered.send(());
    drop(registered);

    let mut scratch = vec![0u8; SCRATCH];
    let mut first_error = None;
    // Zero-copy READs waiting for their read into the client's pages.
    let mut pending = Vec::with_capacity(depth as usize);
    while queue.in_kernel() > 0 || !pending.is_empty() {
        // Submits the commits of the previous batch and waits for the next requests.
        queue.wait(None)?;
        for done in queue.completions() {
            let mut entry = done.entry;
            if let Err(e) = done.result {
                // Unmounted or aborted (ENOTCONN, ECANCELED), or a real failure.
                if !e.is_shutdown() {
                    first_error.get_or_insert(e);
                }
                continue;
            }
            let header = *entry.in_header();
            if let Some(zc) = entry.zero_copy() {
                // A READ of a file opened with FOPEN_IO_URING_ZERO_COPY: read the source file
                // straight into the client's pages, answer when that read completes.
                fs.stats.record(Transport::Uring, header.opcode);
                let read = entry.op_in_as::<sys::fuse_read_in>();
                let file = read.and_then(|r| fs.file(r.fh));
                match (read, file) {
                    (Some(read), Some(file)) if zc.opcode == sys::FUSE_READ => {
                        let user_data = zero_copy_user_data(entry.index());
                        queue.zero_copy_read(
                            &entry,
                            file.as_fd(),
                            read.offset,
                            zc.len,
                            user_data,
                        )?;
                        pending.push((user_data, entry));
                        continue;
                    }
                    _ => entry.set_error(Errno::BADF),
                }
                if queue.commit_and_fetch(entry).is_err() {
                    return Err(io::Error::other("an entry of another queue came back here"));
                }
                continue;
            }
            answer(fs, &mut entry, &mut scratch, protocol);
            if queue.commit_and_fetch(entry).is_err() {
                return Err(io::Error::other("an entry of another queue came back here"));
            }
        }
        for (user_data, res) in queue.other_completions() {
            let Some(at) = pending.iter().position(|(ud, _)| *ud == user_data) else {
                continue;
            };
            let (_, mut entry) = pending.swap_remove(at);
            finish_zero_copy_read(fs, &mut entry, res);
            if queue.commit_and_fetch(entry).is_err() {
                return Err(io::Error::other("an entry of another queue came back here"));
            }
        }
    }
    match first_error {
        Some(e) => Err(io::Error::from(e)),
        None => Ok(()),
    }
}

/// Answers an ordinary request in `entry`: its names and data are copied out of the payload
/// buffer into `scratch` (the reply then overwrites the buffer in place), then it is decoded,
/// dispatched, and the reply or error set.
fn answer(fs: &Fs, entry: &mut fuse_uring::Entry<'_>, scratch: &mut [u8], protocol: Protocol) {
    let header = *entry.in_header();
    let mut op_in = [0u8; sys::FUSE_URING_OP_IN_OUT_SZ as usize];
    let from = entry.op_in();
    op_in[..from.len()].copy_from_slice(from);
    let rest = entry.payload();
    let rest_len = if rest.len() <= scratch.len() {
        scratch[..rest.len()].copy_from_slice(rest);
        rest.len()
    } else {
        0
    };
    fs.stats.record(Transport::Uring, header.opcode);
    let outcome = match Request::parse_split(&header, &op_in, &scratch[..rest_len], protocol) {
        Ok(req) => fs.dispatch(&req, entry.payload_mut()),
        Err(e) => Outcome::Error(e.errno()),
    };
    match outcome {
        Outcome::Reply(n) => {
            if entry.set_reply(n).is_err() {
                // Unreachable with replies bounded by the payload buffer; fail the request.
                entry.set_error(Errno::IO);
            }
        }
        Outcome::Error(e) => entry.set_error(e),
        // FORGET and INTERRUPT never come through the ring; answer defensively.
        Outcome::NoReply => entry.set_error(Errno::NOSYS),
    }
}

/// Sets the reply of a zero-copy READ whose read into the client's pages completed with
/// `res` (bytes read, or `-errno`).
fn finish_zero_copy_read(fs: &Fs, entry: &mut fuse_uring::Entry<'_>, res: i32) {
    match usize::try_from(res) {
        Ok(n) => {
            if entry.set_zero_copy_reply(n).is_err() {
                entry.set_error(Errno::IO);
            } else {
                fs.stats.zero_copy_reads.fetch_add(1, Ordering::Relaxed);
                fs.stats
                    .served_read_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        Err(_) => entry.set_error(Errno::from_raw_os_error(
            res.checked_neg()
                .filter(|e| (1..4096).contains(e))
                .unwrap_or(libc::EIO),
        )),
    }
}
