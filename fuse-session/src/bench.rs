//! In-process access to the session's dispatch, for `benches/dispatch.rs` only: not part of
//! the API (hidden, may change in any release).

use std::sync::Arc;

use fuse_wire::{Protocol, Request};
use rustix::io::Errno;

use crate::handler::{Handler, Outcome, ThreadCounts, dispatch};
use crate::reply::{Origin, RouteRef};
use crate::session::{Shared, Transport};
use crate::uring::Mailbox;

/// A handler with the bookkeeping of one transport thread around it.
#[derive(Debug)]
pub struct Dispatcher<H> {
    handler: H,
    shared: Shared,
    counts: ThreadCounts,
    mailbox: Arc<Mailbox>,
}

impl<H: Handler> Dispatcher<H> {
    /// One slot, an io_uring route (its eventfd is created here).
    ///
    /// # Errors
    ///
    /// The eventfd's.
    pub fn new(handler: H) -> std::io::Result<Dispatcher<H>> {
        Ok(Dispatcher {
            handler,
            shared: Shared::new(1, Transport::Uring, 1, 1),
            counts: ThreadCounts::default(),
            mailbox: Arc::new(Mailbox::new()?),
        })
    }

    /// Decodes `request` (`/dev/fuse` layout), runs the handler with a reply into `out`, and
    /// returns what the transport would send: the payload length or the errno.
    pub fn dispatch(&self, request: &[u8], out: &mut [u8]) -> Option<Result<usize, Errno>> {
        let origin = Origin {
            inflight: &self.shared.inflight,
            slot: 0,
            route: RouteRef::Uring(&self.mailbox, 0),
            limit: out.len(),
        };
        let request = Request::parse(request, Protocol::default());
        match dispatch(
            &self.handler,
            &self.shared,
            &self.counts,
            request,
            out,
            origin,
        ) {
            Outcome::Reply(n) => Some(Ok(n)),
            Outcome::Error(e) => Some(Err(e)),
            Outcome::NoReply | Outcome::Deferred => None,
        }
    }
}
