//! The `/dev/fuse` transport: one worker thread per channel (cloned fds), each reading a
//! request into its read buffer and writing the reply into a second buffer of its own, so a
//! decoded request and its reply never share memory.

use std::sync::Arc;

use fuse_dev::Channel;
use fuse_wire::Request;
use rustix::io::Errno;

use crate::handler::{Handler, Outcome, dispatch};
use crate::reply::{Origin, RouteRef};
use crate::session::Shared;

/// Serves `channel` until the connection ends (`Ok`) or reading fails (`Err`). `slot` is
/// this thread's place in the session's in-flight table and counters.
pub(crate) fn serve_channel<H: Handler>(
    handler: &H,
    shared: &Shared,
    channel: &Arc<Channel>,
    slot: usize,
) -> Result<(), fuse_dev::ChannelError> {
    let size = channel.read_buffer_size();
    let mut input = vec![0u8; size];
    // The largest reply is a READ of max_read bytes, which the read buffer size covers.
    let mut out = vec![0u8; size];
    let protocol = channel.protocol();
    let counts = shared.counts(slot);
    loop {
        let Some(bytes) = channel.receive(&mut input)? else {
            return Ok(());
        };
        let request = Request::parse(bytes, protocol);
        let unique = match &request {
            Ok(request) => request.unique(),
            Err(e) => e.unique(),
        };
        let origin = Origin {
            inflight: &shared.inflight,
            slot,
            route: RouteRef::Dev(channel),
            limit: out.len(),
        };
        match dispatch(handler, shared, counts, request, &mut out, origin) {
            Outcome::Reply(n) => {
                // A reply the kernel refuses (EINVAL: a payload of the wrong size for the
                // request) is the handler's bug: that request is answered EIO instead, so its
                // caller does not wait forever, and the refusal is counted.
                if channel.reply(unique, &[&out[..n]]).is_err() {
                    shared.count_refused_reply();
                    let _ = channel.reply_error(unique, Errno::IO);
                }
            }
            Outcome::Error(errno) => {
                let _ = channel.reply_error(unique, errno);
            }
            Outcome::NoReply | Outcome::Deferred => {}
        }
    }
}
