//! Serve a FUSE connection in one call.
//!
//! `fuse-session` is the serve loop that every FUSE server would otherwise write on top of
//! [`fuse_dev`] and [`fuse_uring`]: it mounts (or takes an opened `/dev/fuse`), answers the
//! kernel's INIT in the order FUSE-over-io_uring needs, chooses the transport (io_uring with
//! one pinned queue thread per CPU and buffer pools when offered, else `/dev/fuse` with
//! workers on cloned fds), and calls your [`Handler`] for every request with a [`Reply`]
//! that writes the answer straight into the transport's buffer. It also owns what is easy to
//! get wrong: INTERRUPT ([`Reply::is_interrupted`], deferred replies answered `EINTR`),
//! deferred replies from any thread ([`Reply::defer`]), NOTIFY_REPLY for
//! [`Notifier::retrieve`], a handler that panics (its request gets `EIO`, serving goes on),
//! a queue that fails after INIT (the connection is aborted rather than left hanging), and
//! a bounded stop ([`SessionHandle::stop`]: unmount, grace, abort).
//!
//! No async runtime: the session runs on threads of its own. A handler that wants an
//! executor defers its replies and answers them from there.
//!
//! # Hello world
//!
//! A complete server in one file, without `unsafe` (this is `examples/hello.rs`; run it with
//! `cargo run -p fuse-session --example hello -- MOUNTPOINT`, stop it with
//! `fusermount3 -u MOUNTPOINT`). The kernel test `tests/hello.rs` runs this same file over
//! both transports, as root and as an unprivileged user; `cargo xtask hello-fresh` builds
//! and runs a copy of it in a new cargo project outside this workspace.
//!
#![doc = concat!("```no_run\n", include_str!("../examples/hello.rs"), "```")]
//!
//! Linux only. FUSE-over-io_uring needs Linux 6.14+ (protocol 7.42); buffer pools 7.46.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod bench;
mod dev;
mod error;
mod handler;
mod inflight;
mod notify;
mod reply;
mod session;
mod signals;
mod uring;

pub use error::Error;
pub use handler::Handler;
pub use notify::Notifier;
pub use reply::Reply;
pub use session::{BackgroundSession, Report, Session, SessionHandle, Transport};
