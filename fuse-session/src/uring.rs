//! The FUSE-over-io_uring transport: one thread per queue, each owning its ring and buffers.
//!
//! A queue thread creates its buffers and its ring (single issuer: only this thread submits),
//! says it is ready, and waits for the session's word: INIT is answered with
//! `FUSE_OVER_IO_URING` only once every queue is ready, and REGISTER is only accepted after
//! that answer. Then it registers every entry and serves: wait, answer each request in its
//! entry's payload buffer, COMMIT_AND_FETCH, all of one batch submitted with the next wait.
//!
//! Replies are written in place. A request's names and small data are first copied to a
//! buffer of the thread's (`INLINE`), so the decoded request does not borrow the buffer its
//! reply overwrites; a request with a larger payload (WRITE data, a large SETXATTR value)
//! is decoded where it lies and its reply, which is small for every such operation, is
//! written to a scratch buffer and copied in.
//!
//! A deferred request keeps its entry here, parked. Its answer comes from another thread
//! through the queue's [`Mailbox`]: a message, then a write to an eventfd that a poll on the
//! ring watches, which wakes this thread to commit it.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Mutex;
use std::sync::mpsc::Receiver;

use fuse_kernel_sys as sys;
use fuse_uring::{Entry, FuseFd, Pool, Queue, QueueBuffers, QueueConfig};
use fuse_wire::{Protocol, Request};
use rustix::event::{EventfdFlags, eventfd};
use rustix::io::Errno;

use crate::handler::{Handler, Outcome, ThreadCounts, dispatch};
use crate::inflight::lock;
use crate::reply::{Origin, RouteRef};
use crate::session::Shared;

/// Request payloads up to this size are copied out before the reply is written: names
/// (two of up to 255 bytes), a symlink target (up to a page), xattr names and small values.
const INLINE: usize = 4096 + 2 * 256;

/// Replies of requests with a larger payload are written here first. Every such operation
/// (WRITE, SETXATTR, IOCTL with input data) has a small reply.
const SCRATCH: usize = 4096;

/// `user_data` of the poll on the mailbox's eventfd (entries use buffer addresses).
const WAKE: u64 = 1;

/// How many failed commands in a row, with no request served in between, make a queue give
/// up (each failed entry is registered again first).
const FAILURES_IN_A_ROW: u32 = 64;

/// Deferred answers for one queue's parked entries, posted from any thread.
#[derive(Debug)]
pub(crate) struct Mailbox {
    messages: Mutex<Vec<Message>>,
    wake: OwnedFd,
}

#[derive(Debug)]
struct Message {
    index: u32,
    unique: u64,
    result: Result<Vec<u8>, Errno>,
}

impl Mailbox {
    pub(crate) fn new() -> std::io::Result<Mailbox> {
        Ok(Mailbox {
            messages: Mutex::new(Vec::new()),
            wake: eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?,
        })
    }

    /// Hands the answer of the request parked in entry `index` to the queue's thread.
    pub(crate) fn post(&self, index: u32, unique: u64, result: Result<&[u8], Errno>) {
        lock(&self.messages).push(Message {
            index,
            unique,
            result: result.map(<[u8]>::to_vec),
        });
        // The counter cannot overflow in practice (it is reset at every wake-up); an error
        // here would only delay the answer to the next wake-up.
        let _ = rustix::io::write(&self.wake, &1u64.to_ne_bytes());
    }

    fn take(&self) -> Vec<Message> {
        let mut counter = [0u8; 8];
        let _ = rustix::io::read(&self.wake, &mut counter);
        std::mem::take(&mut *lock(&self.messages))
    }
}

/// How a queue is set up, decided by the session before INIT is answered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSetup {
    pub(crate) qid: u16,
    pub(crate) depth: u32,
    pub(crate) payload: usize,
    /// The kernel's INIT flags: a buffer pool when they offer one (7.46).
    pub(crate) offered: u64,
    pub(crate) pin: bool,
    pub(crate) protocol: Protocol,
    /// This queue's slot in the session's in-flight table and counters.
    pub(crate) slot: usize,
}

/// What a queue thread tells the session before INIT is answered.
pub(crate) type Ready = Result<(), std::io::Error>;

/// A queue thread: sets up and reports through `ready` (a setup failure is reported there
/// and ends the thread with `Ok`: nothing was agreed with the kernel yet), waits for `go`
/// (false: INIT was answered without io_uring; end), then registers and serves until the
/// connection ends. An `Err` is a failure after INIT: the caller aborts the connection.
pub(crate) fn run_queue<H: Handler>(
    handler: &H,
    shared: &Shared,
    dev: &OwnedFd,
    setup: QueueSetup,
    ready: impl FnOnce(Ready),
    go: &Receiver<bool>,
) -> std::io::Result<()> {
    if setup.pin {
        let mut cpus = rustix::thread::CpuSet::new();
        cpus.set(usize::from(setup.qid));
        // Not fatal: the queue still works from another CPU, only slower.
        let _ = rustix::thread::sched_setaffinity(None, &cpus);
    }
    let (queue, mailbox) = match prepare(dev, setup) {
        Ok(parts) => {
            ready(Ok(()));
            parts
        }
        Err(e) => {
            ready(Err(e));
            return Ok(());
        }
    };
    if !go.recv().unwrap_or(false) {
        return Ok(());
    }
    queue.register_all()?;
    queue.poll_readable(mailbox.wake.as_fd(), WAKE)?;
    serve(handler, shared, &queue, &mailbox, setup)
}

fn prepare(dev: &OwnedFd, setup: QueueSetup) -> std::io::Result<(Queue, std::sync::Arc<Mailbox>)> {
    let config = QueueConfig::new(
        setup.qid,
        setup.depth,
        setup.payload,
        FuseFd::dup(dev.as_fd())?,
    )
    .pool_if_offered(setup.offered, Pool::standard(false));
    let buffers = QueueBuffers::new(config).map_err(std::io::Error::other)?;
    // Room for a COMMIT_AND_FETCH per entry and the mailbox's poll.
    let ring = fuse_uring::ring_builder().build(2 * setup.depth.max(1))?;
    let queue = Queue::new(buffers, ring)?;
    Ok((queue, std::sync::Arc::new(Mailbox::new()?)))
}

fn serve<H: Handler>(
    handler: &H,
    shared: &Shared,
    queue: &Queue,
    mailbox: &std::sync::Arc<Mailbox>,
    setup: QueueSetup,
) -> std::io::Result<()> {
    let mut inline = vec![0u8; INLINE];
    let mut scratch = vec![0u8; SCRATCH];
    let mut parked: Vec<Option<Entry<'_>>> = (0..setup.depth).map(|_| None).collect();
    let counts = shared.counts(setup.slot);
    let mut shutdown = false;
    let mut failures = 0u32;
    loop {
        if queue.in_kernel() == 0 && (shutdown || parked.iter().all(Option::is_none)) {
            // Requests still parked at the end belong to a connection that is gone: their
            // answers, if they come, are dropped with the mailbox.
            return Ok(());
        }
        queue.wait(None)?;
        for done in queue.completions() {
            let mut entry = done.entry;
            match done.result {
                Ok(()) => {
                    failures = 0;
                    let index = entry.index() as usize;
                    let served = serve_entry(
                        handler,
                        shared,
                        counts,
                        &mut entry,
                        mailbox,
                        setup,
                        &mut inline,
                        &mut scratch,
                    );
                    if served == Outcome::Deferred {
                        if let Some(slot) = parked.get_mut(index) {
                            *slot = Some(entry);
                        }
                    } else {
                        commit(queue, entry)?;
                    }
                }
                Err(e) if e.is_shutdown() => shutdown = true,
                Err(e) => {
                    // The entry is ours again: offer it to the kernel once more, and give up
                    // (the session aborts the connection) if nothing but failures come back.
                    failures += 1;
                    if failures >= FAILURES_IN_A_ROW {
                        return Err(std::io::Error::other(format!(
                            "{failures} commands failed in a row, the last with {e}"
                        )));
                    }
                    if queue.register(entry).is_err() {
                        return Err(std::io::Error::other("an entry of another queue"));
                    }
                }
            }
        }
        let woken = queue
            .other_completions()
            .any(|(user_data, _)| user_data == WAKE);
        if woken {
            for message in mailbox.take() {
                let Some(slot) = parked.get_mut(message.index as usize) else {
                    continue;
                };
                let matches = slot
                    .as_ref()
                    .is_some_and(|entry| entry.in_header().unique == message.unique);
                if !matches {
                    continue;
                }
                let Some(mut entry) = slot.take() else {
                    continue;
                };
                match message.result {
                    Ok(payload) => {
                        if entry.reply(&payload).is_err() {
                            entry.set_error(Errno::IO);
                        }
                    }
                    Err(errno) => entry.set_error(errno),
                }
                commit(queue, entry)?;
            }
            if !shutdown {
                queue.poll_readable(mailbox.wake.as_fd(), WAKE)?;
            }
        }
    }
}

fn commit<'q>(queue: &'q Queue, entry: Entry<'q>) -> std::io::Result<()> {
    queue
        .commit_and_fetch(entry)
        .map_err(|_| std::io::Error::other("an entry of another queue came back here"))
}

/// Decodes the request in `entry`, dispatches it and sets its reply (unless deferred).
#[allow(clippy::too_many_arguments)]
fn serve_entry<H: Handler>(
    handler: &H,
    shared: &Shared,
    counts: &ThreadCounts,
    entry: &mut Entry<'_>,
    mailbox: &std::sync::Arc<Mailbox>,
    setup: QueueSetup,
    inline: &mut [u8],
    scratch: &mut [u8],
) -> Outcome {
    let header = *entry.in_header();
    let mut op_in = [0u8; sys::FUSE_URING_OP_IN_OUT_SZ as usize];
    let from = entry.op_in();
    op_in[..from.len()].copy_from_slice(from);
    let index = entry.index();
    let payload_len = entry.payload().len();
    let outcome = if payload_len <= inline.len() {
        inline[..payload_len].copy_from_slice(entry.payload());
        let request = Request::parse_split(&header, &op_in, &inline[..payload_len], setup.protocol);
        let out = entry.payload_mut();
        let origin = Origin {
            inflight: &shared.inflight,
            slot: setup.slot,
            route: RouteRef::Uring(mailbox, index),
            limit: out.len(),
        };
        dispatch(handler, shared, counts, request, out, origin)
    } else {
        let outcome = {
            let request = Request::parse_split(&header, &op_in, entry.payload(), setup.protocol);
            let origin = Origin {
                inflight: &shared.inflight,
                slot: setup.slot,
                route: RouteRef::Uring(mailbox, index),
                limit: scratch.len(),
            };
            dispatch(handler, shared, counts, request, scratch, origin)
        };
        match outcome {
            Outcome::Reply(n) => match entry.payload_mut().get_mut(..n) {
                Some(out) => {
                    out.copy_from_slice(&scratch[..n]);
                    outcome
                }
                None => Outcome::Error(Errno::IO),
            },
            other => other,
        }
    };
    match outcome {
        Outcome::Reply(n) => {
            if entry.set_reply(n).is_err() {
                entry.set_error(Errno::IO);
            }
        }
        Outcome::Error(errno) => entry.set_error(errno),
        // FORGET, INTERRUPT and NOTIFY_REPLY come over /dev/fuse; should one come here,
        // the entry still has to go back to the kernel.
        Outcome::NoReply => entry.set_error(Errno::NOSYS),
        Outcome::Deferred => {}
    }
    outcome
}
