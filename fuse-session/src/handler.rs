//! The file system's side: [`Handler`], and the one dispatch both transports call.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use fuse_wire::{DecodeError, Negotiated, Operation, Request};
use rustix::io::Errno;

use crate::inflight::Found;
use crate::reply::{Answer, Origin, Reply, send_later};
use crate::session::Shared;

/// A file system: answers each request with its [`Reply`].
///
/// `handle` is called on the session's transport threads, several at once (one per
/// io_uring queue or `/dev/fuse` worker), so the handler is `Sync` and keeps its state
/// behind locks or atomics. It must not block for long on the thread it is called on: a
/// request that waits (a lock, a remote answer) is [deferred](Reply::defer) and answered
/// from elsewhere.
///
/// The session handles INIT, INTERRUPT, NOTIFY_REPLY and DESTROY itself; FORGET and
/// BATCH_FORGET, which get no reply, go to [`forget`](Handler::forget). A handler that
/// panics gets its request answered `EIO`, and the session serves on.
///
/// Closures `Fn(&Request<'_>, Reply<'_>)` are handlers.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request. `request.operation()` is the decoded operation (names and data
    /// borrow the transport's buffer); `reply` is consumed by its answer.
    fn handle(&self, request: &Request<'_>, reply: Reply<'_>);

    /// The kernel forgets `nlookup` lookups of `nodeid` (FORGET, each entry of
    /// BATCH_FORGET). No reply. Default: nothing.
    fn forget(&self, nodeid: u64, nlookup: u64) {
        let _ = (nodeid, nlookup);
    }

    /// INIT has been answered with `negotiated`, before the first request. Default: nothing.
    fn init(&self, negotiated: &Negotiated) {
        let _ = negotiated;
    }

    /// DESTROY: the connection is being torn down (unmount of a `fuseblk` or the end of a
    /// session). Default: nothing.
    fn destroy(&self) {}
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>, Reply<'_>) + Send + Sync + 'static,
{
    fn handle(&self, request: &Request<'_>, reply: Reply<'_>) {
        self(request, reply)
    }
}

/// Requests counted per opcode by one transport thread (its own cache lines).
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ThreadCounts {
    pub(crate) by_opcode: [AtomicU64; 64],
}

impl Default for ThreadCounts {
    fn default() -> Self {
        ThreadCounts {
            by_opcode: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl ThreadCounts {
    fn record(&self, opcode: u32) {
        // Opcodes above 63 (CUSE_INIT 4096, unknown ones) share the last bucket.
        let i = (opcode as usize).min(63);
        let c = &self.by_opcode[i];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// What the transport sends for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Success with this many payload bytes in the reply buffer.
    Reply(usize),
    Error(Errno),
    /// No reply (FORGET, NOTIFY_REPLY, INTERRUPT that found its request).
    NoReply,
    /// The handler deferred the request: answered later through its route.
    Deferred,
}

/// Decodes nothing (the transport did), answers what the session answers itself, and hands
/// everything else to the handler with a reply that writes into `out`.
pub(crate) fn dispatch<H: Handler>(
    handler: &H,
    shared: &Shared,
    counts: &ThreadCounts,
    request: Result<Request<'_>, DecodeError>,
    out: &mut [u8],
    origin: Origin<'_>,
) -> Outcome {
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            counts.record(e.opcode());
            return Outcome::Error(e.errno());
        }
    };
    counts.record(request.opcode());
    match request.operation() {
        Operation::Forget(f) => {
            handler.forget(request.nodeid(), f.nlookup);
            return Outcome::NoReply;
        }
        Operation::BatchForget(forgets) => {
            for one in *forgets {
                handler.forget(one.nodeid, one.nlookup);
            }
            return Outcome::NoReply;
        }
        Operation::Interrupt(i) => return interrupt(shared, i.unique),
        Operation::NotifyReply { arg, data } => {
            shared
                .notify_replies
                .deliver(request.unique(), arg.offset, data);
            return Outcome::NoReply;
        }
        Operation::Destroy => {
            let _ = catch_unwind(AssertUnwindSafe(|| handler.destroy()));
            return Outcome::Reply(0);
        }
        // A second INIT is a protocol error.
        Operation::Init(_) => return Outcome::Error(Errno::PROTO),
        _ => {}
    }
    let inflight = origin.inflight;
    let slot = origin.slot;
    inflight.begin(slot, request.unique());
    let mut answer = Answer::Nothing;
    let reply = Reply::in_place(request.unique(), out, &mut answer, origin);
    // A panicking handler leaves `answer` as it was: EIO below (or its deferred reply is
    // answered EIO when dropped during the unwinding).
    let _ = catch_unwind(AssertUnwindSafe(|| handler.handle(&request, reply)));
    inflight.end(slot);
    match answer {
        Answer::Nothing => Outcome::Error(Errno::IO),
        Answer::Data(n) => Outcome::Reply(n),
        Answer::Error(e) => Outcome::Error(e),
        Answer::Deferred => Outcome::Deferred,
    }
}

/// INTERRUPT of request `unique`: mark it, answer a deferred one `EINTR`, or tell the kernel
/// `EAGAIN` (it sends the INTERRUPT again) when the request is not seen yet.
fn interrupt(shared: &Shared, unique: u64) -> Outcome {
    match shared.inflight.interrupt(unique) {
        Found::InPlace => Outcome::NoReply,
        Found::Deferred(state) => {
            shared.inflight.forget_deferred(state.unique);
            send_later(&state.route, state.unique, Err(Errno::INTR));
            Outcome::NoReply
        }
        Found::Nothing => Outcome::Error(Errno::AGAIN),
    }
}
