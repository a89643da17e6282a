//! [`Reply`]: the answer to one request, written straight into the transport's buffer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use fuse_dev::Channel;
use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{Immutable, IntoBytes};
use fuse_wire::{BufferTooSmall, OpenOut, reply};
use rustix::io::Errno;

use crate::inflight::{DeferredState, Inflight};
use crate::uring::Mailbox;

/// What an in-place reply left for the transport to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing: the handler dropped the reply (or panicked). Sent as `EIO`.
    Nothing,
    /// A success with this many payload bytes at the start of the buffer.
    Data(usize),
    /// An error.
    Error(Errno),
    /// Deferred: answered later through the request's route.
    Deferred,
}

/// Where a deferred reply goes: the fd the request was read from, or its io_uring entry.
#[derive(Debug, Clone)]
pub(crate) enum Route {
    Dev(Arc<Channel>),
    Uring { mailbox: Arc<Mailbox>, index: u32 },
}

/// What a request's reply needs to know about where the request came from.
#[derive(Debug)]
pub(crate) struct Origin<'a> {
    pub(crate) inflight: &'a Arc<Inflight<Route>>,
    /// The request's slot in `inflight`.
    pub(crate) slot: usize,
    /// Built only if the handler defers.
    pub(crate) route: RouteRef<'a>,
    /// The largest payload the transport takes for this request.
    pub(crate) limit: usize,
}

/// A borrowed [`Route`], so that the common case clones no `Arc`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RouteRef<'a> {
    Dev(&'a Arc<Channel>),
    Uring(&'a Arc<Mailbox>, u32),
}

impl RouteRef<'_> {
    fn to_owned(self) -> Route {
        match self {
            RouteRef::Dev(channel) => Route::Dev(channel.clone()),
            RouteRef::Uring(mailbox, index) => Route::Uring {
                mailbox: mailbox.clone(),
                index,
            },
        }
    }
}

/// The answer to one request. Every method that answers consumes it; a `Reply` dropped
/// without an answer (or left behind by a handler that panicked) answers `EIO`, so no
/// request is ever left waiting.
///
/// A reply handed to the handler writes **in place**: the payload goes straight into the
/// transport's buffer (the io_uring entry's payload buffer, or the `/dev/fuse` worker's
/// write buffer) and is sent when the handler returns. [`Reply::defer`] turns it into a
/// `Reply<'static>` that can be moved to any thread and answered later (one allocation for
/// the bookkeeping, one for the payload: deferring is the slow path).
///
/// Payload encoders come from `fuse_wire::reply`; each typed method here is one of them.
/// A payload larger than what the kernel asked for (the `size` of a READ, say) is the
/// handler's mistake and is answered `ERANGE` instead, as the encoders' `BufferTooSmall`
/// says.
pub struct Reply<'a> {
    unique: u64,
    inner: Inner<'a>,
}

enum Inner<'a> {
    InPlace {
        out: &'a mut [u8],
        answer: &'a mut Answer,
        origin: Origin<'a>,
    },
    Later(Later),
    Done,
}

/// A deferred reply's state.
struct Later {
    state: Arc<DeferredState<Route>>,
    inflight: Arc<Inflight<Route>>,
    limit: usize,
}

impl fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.inner {
            Inner::InPlace { .. } => "in place",
            Inner::Later(_) => "deferred",
            Inner::Done => "answered",
        };
        f.debug_struct("Reply")
            .field("unique", &self.unique)
            .field("kind", &kind)
            .finish()
    }
}

impl<'a> Reply<'a> {
    pub(crate) fn in_place(
        unique: u64,
        out: &'a mut [u8],
        answer: &'a mut Answer,
        origin: Origin<'a>,
    ) -> Reply<'a> {
        let limit = origin.limit.min(out.len());
        let out = &mut out[..limit];
        Reply {
            unique,
            inner: Inner::InPlace {
                out,
                answer,
                origin,
            },
        }
    }

    /// The request's `unique`.
    pub fn unique(&self) -> u64 {
        self.unique
    }

    /// Whether the kernel sent an INTERRUPT for this request (its caller got a signal). A
    /// handler that takes long should look now and then and answer `EINTR`; a deferred
    /// request that is interrupted has already been answered `EINTR` by the session (its
    /// later answer is dropped). One atomic load.
    pub fn is_interrupted(&self) -> bool {
        match &self.inner {
            Inner::InPlace { origin, .. } => origin.inflight.slot(origin.slot).interrupted(),
            Inner::Later(later) => later.state.interrupted(),
            Inner::Done => false,
        }
    }

    /// Sleeps until this request is interrupted or `timeout` passes; returns
    /// [`is_interrupted`](Reply::is_interrupted). For handlers that wait (a lock, a remote
    /// answer) on a thread of their own: the thread of an in-place reply is a transport
    /// thread, which serves no other request while it sleeps.
    pub fn wait_interrupted(&self, timeout: Duration) -> bool {
        match &self.inner {
            Inner::InPlace { origin, .. } => {
                let slot = origin.inflight.slot(origin.slot);
                origin.inflight.wait(timeout, || slot.interrupted())
            }
            Inner::Later(later) => later.inflight.wait(timeout, || later.state.interrupted()),
            Inner::Done => false,
        }
    }

    /// Keeps the request to answer it later, from any thread: the returned reply is `Send`
    /// and `'static`. Until it answers, the request holds its io_uring entry (one of the
    /// queue's `depth`) or nothing at all over `/dev/fuse`, whose worker goes on reading. If
    /// the request is interrupted meanwhile, the session answers `EINTR` at once and the
    /// later answer is dropped; a deferred reply dropped unanswered answers `EIO`.
    pub fn defer(mut self) -> Reply<'static> {
        let unique = self.unique;
        match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::InPlace { answer, origin, .. } => {
                *answer = Answer::Deferred;
                let route = origin.route.to_owned();
                let state = origin.inflight.defer(origin.slot, unique, route);
                Reply {
                    unique,
                    inner: Inner::Later(Later {
                        state,
                        inflight: origin.inflight.clone(),
                        limit: origin.limit,
                    }),
                }
            }
            Inner::Later(later) => Reply {
                unique,
                inner: Inner::Later(later),
            },
            Inner::Done => Reply {
                unique,
                inner: Inner::Done,
            },
        }
    }

    /// Answers with an error. An errno outside `1..=511` is sent as `EIO` (the kernel
    /// refuses others).
    pub fn error(mut self, errno: Errno) {
        self.finish(Err(errno), &[]);
    }

    /// Answers with success and no payload (RELEASE, FLUSH, FSYNC, UNLINK, SETXATTR...).
    pub fn ok(self) {
        self.data(&[]);
    }

    /// Answers with `bytes` as the payload (READ, READLINK, GETXATTR, LISTXATTR data).
    pub fn data(self, bytes: &[u8]) {
        self.encode(bytes.len(), |out| reply::data(out, bytes));
    }

    /// Answers with any ABI struct as the payload.
    pub fn value<T: IntoBytes + Immutable>(self, value: &T) {
        self.encode(size_of::<T>(), |out| reply::put(out, value));
    }

    /// LOOKUP, MKNOD, MKDIR, SYMLINK, LINK: the entry (see `fuse_wire::reply::entry_out`).
    pub fn entry(self, entry: &sys::fuse_entry_out) {
        self.value(entry);
    }

    /// GETATTR, SETATTR: the attributes (see `fuse_wire::reply::attr_out`).
    pub fn attr(self, attr: &sys::fuse_attr_out) {
        self.value(attr);
    }

    /// STATX (7.44).
    pub fn statx(self, statx: &sys::fuse_statx_out) {
        self.value(statx);
    }

    /// OPEN, OPENDIR.
    pub fn open(self, open: &OpenOut) {
        self.value(&open.to_sys());
    }

    /// CREATE: the new entry and its open file.
    pub fn create(self, entry: &sys::fuse_entry_out, open: &OpenOut) {
        let need = size_of::<sys::fuse_entry_out>() + size_of::<sys::fuse_open_out>();
        self.encode(need, |out| reply::create(out, entry, open));
    }

    /// WRITE: `size` bytes were written.
    pub fn write(self, size: u32) {
        self.encode(8, |out| reply::write(out, size));
    }

    /// STATFS.
    pub fn statfs(self, st: &sys::fuse_kstatfs) {
        self.value(&sys::fuse_statfs_out { st: *st });
    }

    /// GETXATTR / LISTXATTR with `size` 0: how large the value or list is.
    pub fn xattr_size(self, size: u32) {
        self.encode(8, |out| reply::xattr_size(out, size));
    }

    /// LSEEK: the resulting offset.
    pub fn lseek(self, offset: u64) {
        self.encode(8, |out| reply::lseek(out, offset));
    }

    /// GETLK: the conflicting lock (or one of type `F_UNLCK`).
    pub fn lock(self, lock: &sys::fuse_file_lock) {
        self.value(&sys::fuse_lk_out { lk: *lock });
    }

    /// BMAP.
    pub fn bmap(self, block: u64) {
        self.encode(8, |out| reply::bmap(out, block));
    }

    /// POLL: the ready events.
    pub fn poll(self, revents: u32) {
        self.encode(8, |out| reply::poll(out, revents));
    }

    /// COPY_FILE_RANGE: bytes copied.
    pub fn copy_file_range(self, size: u32) {
        self.encode(8, |out| reply::copy_file_range(out, size));
    }

    /// Answers with a payload of at most `max` bytes that `fill` writes at the start of the
    /// buffer it is given (at most `max` bytes long, and never more than the transport
    /// takes), returning the length written or an errno. This is how READ data read from a
    /// file, READDIR / READDIRPLUS records (`fuse_wire::DirentBuf`) and other variable
    /// payloads are written without a copy.
    pub fn with_buffer(self, max: usize, fill: impl FnOnce(&mut [u8]) -> Result<usize, Errno>) {
        self.build(max, fill);
    }

    fn encode(self, need: usize, f: impl FnOnce(&mut [u8]) -> Result<usize, BufferTooSmall>) {
        self.build(need, |out| f(out).map_err(|e| e.errno()));
    }

    fn build(mut self, max: usize, fill: impl FnOnce(&mut [u8]) -> Result<usize, Errno>) {
        match &mut self.inner {
            Inner::InPlace { out, answer, .. } => {
                let cap = max.min(out.len());
                **answer = match fill(&mut out[..cap]) {
                    Ok(n) if n <= cap => Answer::Data(n),
                    Ok(_) => Answer::Error(Errno::RANGE),
                    Err(e) => Answer::Error(e),
                };
                self.inner = Inner::Done;
            }
            Inner::Later(later) => {
                let mut buf = vec![0u8; max.min(later.limit)];
                match fill(&mut buf) {
                    Ok(n) if n <= buf.len() => {
                        buf.truncate(n);
                        self.finish(Ok(()), &buf);
                    }
                    Ok(_) => self.finish(Err(Errno::RANGE), &[]),
                    Err(e) => self.finish(Err(e), &[]),
                }
            }
            Inner::Done => {}
        }
    }

    /// Sends the answer of a deferred reply, or records an in-place one.
    fn finish(&mut self, result: Result<(), Errno>, payload: &[u8]) {
        match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::InPlace { answer, .. } => {
                *answer = match result {
                    Ok(()) if payload.is_empty() => Answer::Data(0),
                    // Only deferred replies call `finish` with a payload.
                    Ok(()) => Answer::Error(Errno::IO),
                    Err(e) => Answer::Error(e),
                };
            }
            Inner::Later(later) => {
                if later.state.claim() {
                    later.inflight.forget_deferred(self.unique);
                    send_later(&later.state.route, self.unique, result.map(|()| payload));
                }
            }
            Inner::Done => {}
        }
    }
}

impl Drop for Reply<'_> {
    fn drop(&mut self) {
        // An in-place reply left unanswered stays `Answer::Nothing`, which the transport
        // sends as EIO; a deferred one is answered here.
        if matches!(self.inner, Inner::Later(_)) {
            self.finish(Err(Errno::IO), &[]);
        }
    }
}

/// Sends the answer of a deferred request through its route. Errors are the connection's
/// (gone, aborted): nobody is left to tell.
pub(crate) fn send_later(route: &Route, unique: u64, result: Result<&[u8], Errno>) {
    match route {
        Route::Dev(channel) => {
            let _ = channel.reply_result(unique, result);
        }
        Route::Uring { mailbox, index } => mailbox.post(*index, unique, result),
    }
}
