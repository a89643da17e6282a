//! Zero-cost building blocks for FUSE-over-io_uring (Linux 6.14+, protocol 7.42+).
//!
//! With FUSE-over-io_uring the server does not `read(2)` requests from `/dev/fuse` and
//! `write(2)` replies: it hands the kernel *ring entries* — a 288-byte
//! `fuse_uring_req_header` buffer and a payload buffer each — with `IORING_OP_URING_CMD`
//! SQEs, and the kernel writes each request into an entry's buffers and completes its
//! command. The server writes the reply into the same buffers and submits
//! COMMIT_AND_FETCH, which delivers the reply and re-arms the entry for the next request.
//!
//! This crate provides:
//! - [`QueueBuffers`]: the buffers of all entries of one queue in **one** anonymous mapping
//!   (iovec pairs, packed header slots, page-aligned payload slots), touched lazily unless
//!   you ask for prefaulting or huge pages, unmapped once on drop;
//! - [`Entry`]: a pointer-sized token that *is* the right to access one entry's buffers;
//!   building its SQE consumes it and decoding the CQE gives it back, so while the kernel
//!   owns an entry no safe code can touch it — at no run-time cost;
//! - the SQE builders ([`Entry::register`], [`Entry::commit_and_fetch`], and the raw
//!   [`sqe::register`] / [`sqe::commit_and_fetch`]) producing `io_uring::squeue::Entry128`;
//! - [`Queue`]: buffers and ring owned together, so that serving a queue needs no `unsafe`;
//! - the helpers every server needs: [`check_init`] (with a clear error when `enable_uring`
//!   is off or the kernel is too old), [`payload_size`] from the INIT reply,
//!   [`ring_builder`], [`queue_ids`], and [`QueueBuffers::complete`] decoding a CQE into
//!   the entry and the kernel's errno ([`CmdError`]).
//!
//! # A request's life
//!
//! One queue, served by one thread with [`Queue`] (which owns the buffers and the ring, so
//! no `unsafe` is needed): register the entries, wait for a completion, read the request,
//! write the reply, commit and fetch the next one. This is the whole protocol.
//!
//! ```no_run
//! use std::io;
//!
//! use fuse_kernel_sys as sys;
//! use fuse_uring::{Errno, FuseFd, Queue, QueueBuffers, QueueConfig};
//!
//! /// Serves queue `qid` of a mounted connection whose INIT reply (with FUSE_OVER_IO_URING)
//! /// was `init_out`, until the connection goes away. `dev` is the connection's `/dev/fuse` fd
//! /// (`FuseFd::new(Arc::new(fd))?`, checked once); the queue keeps it open.
//! fn serve_queue(dev: FuseFd, qid: u16, init_out: &sys::fuse_init_out) -> io::Result<()> {
//!     const DEPTH: u32 = 16;
//!     // All entries of the queue in one mapping, payload buffers sized from INIT.
//!     let size = fuse_uring::payload_size(init_out);
//!     let buffers = QueueBuffers::new(QueueConfig::new(qid, DEPTH, size, dev))?;
//!     // An SQE128 ring created on this thread (single issuer, deferred task work).
//!     let ring = fuse_uring::ring_builder().build(DEPTH)?;
//!     let queue = Queue::new(buffers, ring)?;
//!
//!     // 1. REGISTER every entry: the kernel keeps each until a request arrives for it.
//!     queue.register_all()?;
//!     let mut first_error = None;
//!     while queue.in_kernel() > 0 {
//!         // 2. Wait for CQEs; each completion gives an entry back.
//!         queue.wait(None)?;
//!         for done in queue.completions() {
//!             let mut entry = done.entry;
//!             if let Err(e) = done.result {
//!                 // Unmounted (ENOTCONN) or a failure: the kernel is done with this entry.
//!                 if !e.is_shutdown() {
//!                     first_error.get_or_insert(e);
//!                 }
//!                 continue;
//!             }
//!             // 3. Read the request: header, fixed argument (`op_in`), payload.
//!             let header = *entry.in_header();
//!             // 4. Write the reply into the same buffers.
//!             match header.opcode {
//!                 sys::FUSE_READ => {
//!                     let read: sys::fuse_read_in = entry.op_in_as().expect("READ has its argument");
//!                     let n = (read.size as usize).min(entry.payload_capacity());
//!                     entry.payload_mut()[..n].fill(b'x');
//!                     entry.set_reply(n)?;
//!                 }
//!                 _ => entry.set_error(Errno::NOSYS),
//!             }
//!             // 5. COMMIT_AND_FETCH: deliver the reply and wait for the next request here.
//!             queue.commit_and_fetch(entry)?;
//!         }
//!     }
//!     first_error.map_or(Ok(()), |e| Err(e.into()))
//! }
//! ```
//!
//! # Bring your own ring
//!
//! The same loop on a ring you own (shared with other work, say) uses the SQE builders and
//! [`QueueBuffers::complete_cqe`] directly; then two steps are `unsafe` and carry the
//! ownership contract (see [`Entry`]):
//!
//! ```no_run
//! # use std::io;
//! # fn handle(_: &mut fuse_uring::Entry<'_>) {}
//! # fn main() -> io::Result<()> {
//! # let buffers: fuse_uring::QueueBuffers = todo!();
//! # let mut ring: fuse_uring::Ring = todo!();
//! let (submitter, mut sq, mut cq) = ring.split();
//! for entry in buffers.take_entries().expect("fresh buffers") {
//!     // SAFETY: `buffers` outlives every command (we drain them all below, or leak it), each
//!     // SQE is pushed once and unchanged, and its CQE is decoded with `buffers`.
//!     unsafe { sq.push(&entry.register()) }.map_err(|_| io::Error::other("SQ full"))?;
//! }
//! sq.sync();
//! let mut in_kernel = buffers.layout().depth();
//! while in_kernel > 0 {
//!     submitter.submit_and_wait(1)?;
//!     // io-uring's split queues cache the ring indices: sync after every submit.
//!     sq.sync();
//!     cq.sync();
//!     for cqe in &mut cq {
//!         // SAFETY: every SQE on this ring comes from an entry of `buffers`, pushed once, and
//!         // this CQE was just taken off the ring.
//!         let Some(done) = (unsafe { buffers.complete_cqe(&cqe) }) else { continue };
//!         in_kernel -= 1;
//!         let mut entry = done.entry;
//!         if done.result.is_err() {
//!             continue;
//!         }
//!         handle(&mut entry);
//!         // SAFETY: as above.
//!         unsafe { sq.push(&entry.commit_and_fetch()) }.map_err(|_| io::Error::other("SQ full"))?;
//!         in_kernel += 1;
//!     }
//!     sq.sync();
//! }
//! # Ok(()) }
//! ```
//!
//! # Serving a connection: the intended pattern
//!
//! The `fuse-session` crate does all of this for a handler; this is the order it follows,
//! and the one `fuse-dev`'s `Channel::read_init` documents:
//!
//! 1. Mount, read INIT from `/dev/fuse` without answering it (`fuse_dev::Channel::read_init`)
//!    and pass the request it hands back (its `kernel`, a `fuse_wire::KernelInit`) to
//!    [`check_init`].
//! 2. Start one thread per queue id of [`queue_ids`] (one per *possible* CPU), pinned to its
//!    CPU (the kernel puts a request on the queue of the CPU the requesting task runs on).
//!    Each thread creates its own [`QueueBuffers`] (with the payload size that the INIT reply
//!    will carry: `fuse_wire::Negotiated::uring_payload_size`) and its own ring
//!    ([`ring_builder`]: single issuer, so it must be created on the thread that submits),
//!    puts them in a [`Queue`], says it is ready, and waits. Nothing is registered yet: the
//!    kernel refuses REGISTER before INIT is answered (`EAGAIN`).
//! 3. Only if every queue is ready, answer INIT with `FUSE_OVER_IO_URING`
//!    (`fuse_wire::init_flags::OVER_IO_URING` in `InitConfig::want`; `fuse_wire::negotiate`
//!    adds `FUSE_INIT_EXT`, as it is a `flags2` bit); if one is not, answer without it, end
//!    the threads and serve `/dev/fuse`.
//! 4. Let every thread register all its entries, then loop as above. **Every** queue needs
//!    a registered entry before the kernel switches the connection to the ring, and until
//!    then new requests *block*: a queue that fails after INIT must abort the connection
//!    (fusectl `abort`), or the mount hangs.
//! 5. Keep one thread reading `/dev/fuse`: FORGET, BATCH_FORGET and INTERRUPT still arrive
//!    there, and notifications (`unique = 0`) must still be written there.
//! 6. Nothing is allocated on the request path: tokens are moved, SQEs built on the stack,
//!    replies written in place. The depth bounds the requests a queue serves concurrently; a
//!    thread may hand entries (which are `Send`) to workers, for example scoped threads, and
//!    commit them when they come back, as long as the ring's thread does the committing.
//! 7. Shutdown: at unmount (or fusectl abort) every armed entry completes with `ENOTCONN`;
//!    a thread is done when [`Queue::in_kernel`] is 0. A `Queue` dropped earlier closes its
//!    ring and leaks its buffers rather than unmapping memory the kernel may still write; with
//!    your own ring, do the same (`std::mem::forget` the buffers).
//!
//! # Buffer pools and zero-copy (protocol 7.46, Linux 7.3)
//!
//! One API for both kinds of kernel: build the config with
//! [`QueueConfig::pool_if_offered`]`(offered, Pool::standard(zero_copy))`, where `offered` is
//! the kernel's 64-bit INIT flags (`fuse_wire::KernelInit::flags`). When the kernel offered `FUSE_HAS_IO_URING_BUFPOOL`, the
//! queue's payload region becomes one pool: [`Queue::register_all`] registers it with the ring
//! as fixed buffer 0, sends `ADD_QUEUE` and `ADD_BUFPOOL`, then REGISTERs every entry with an
//! empty payload iovec; each request's payload is found at `fuse_uring_ent_in_out.offset`
//! ([`Entry::payload_region`]; an offset outside the pool or held by another entry gives no
//! access, never an out-of-bounds one). Otherwise every entry keeps its own payload buffer,
//! as on 7.42-7.45. The accessors ([`Entry::payload`], [`Entry::reply`]...) are the same in
//! both cases. With `zero_copy` (root: `CAP_SYS_ADMIN`), READ and WRITE of files opened with
//! `FOPEN_IO_URING_ZERO_COPY` lend the client's pages to the entry ([`Entry::zero_copy`]);
//! [`Queue::zero_copy_read`] fills them from a file and [`Entry::set_zero_copy_reply`] answers.
//! The raw builders are [`sqe::add_queue`], [`sqe::add_bufpool`], [`sqe::register_with`] and
//! [`sqe::commit_and_fetch_with`].
//!
//! # Ownership
//!
//! See [`Entry`] for who may write an entry's memory when and why the token makes that
//! sound. In short: the kernel accesses an entry's buffers only while a command for it is in
//! flight; the token is consumed by the SQE and returned by the CQE. [`Queue`] owns the ring,
//! so it can guarantee the rest (each SQE pushed once, each CQE decoded once, buffers alive
//! while anything is in the kernel); with your own ring, the `unsafe` `push` and
//! [`QueueBuffers::complete`] are where you promise it.
//!
//! # Kernel versions and errors
//!
//! FUSE-over-io_uring needs Linux 6.14 (protocol 7.42) built with `CONFIG_FUSE_IO_URING` and
//! the module parameter `/sys/module/fuse/parameters/enable_uring` set to `Y` (it is off by
//! default); see [`uring_support`]. [`CmdError`] lists every errno the kernel returns
//! through the CQE and what it means. Tested on Linux 6.18 and, in the workspace's kernel
//! matrix (`cargo xtask vm-test`), on 7.2 and 7.3 (7.3 with buffer pools and zero-copy) and
//! on 6.1 and 6.12, which have no FUSE-over-io_uring ([`check_init`] says
//! [`Unsupported::KernelTooOld`]).

#![deny(missing_docs)]
// `unsafe` only where it is needed, each module saying why; everything else is checked to
// have none.
#![deny(unsafe_code)]

// The mapping (mmap/madvise/munmap), the slot records, and minting tokens from completions.
#[allow(unsafe_code)]
mod buffers;
mod command;
mod dev;
// Access to the entry's buffers through the token.
#[allow(unsafe_code)]
mod entry;
mod error;
mod layout;
mod pool;
// Pushing SQEs to and popping CQEs from the ring it owns.
#[allow(unsafe_code)]
mod queue;
mod setup;
// Writing `addr`/`len` into the SQE at their ABI offsets.
#[allow(unsafe_code)]
pub mod sqe;

pub use buffers::{Completion, Entries, Pool, PoolInfo, Prefault, QueueBuffers, QueueConfig};
pub use command::Command;
pub use dev::{DevFd, FUSE_DEV_MAJOR, FUSE_DEV_MINOR, FuseFd, NotFuseDevice};
pub use entry::{Entry, ZeroCopy};
pub use error::{BufferError, CmdError, ReplyError};
pub use layout::{HEADER_SIZE, Layout, MAX_PAYLOAD_SIZE, MIN_PAYLOAD_SIZE, SLOT_SIZE};
pub use pool::PoolError;
pub use queue::{Completions, ForeignEntry, Queue, Ring};
/// rustix's errno type, which [`Entry::set_error`] and [`CmdError::errno`] use (re-exported so
/// that users name the same version: `fuse_uring::Errno::NOSYS`).
pub use rustix::io::Errno;
pub use setup::{
    CpuListError, ENABLE_URING_PARAM, KERNEL_DEFAULT_MAX_PAGES, POSSIBLE_CPUS_PATH,
    REQUIRED_SETUP_FLAGS, URING_MIN_MINOR, Unsupported, UringSupport, check_init, check_init_in,
    parse_cpu_list, payload_size, payload_size_for, possible_cpus, queue_count, queue_ids,
    ring_builder, uring_support,
};
