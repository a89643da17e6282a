//! The classic transport: a `fuse_dev::Channel` per worker thread reads one request at a
//! time from `/dev/fuse` and writes each reply with one `writev(2)`.
//!
//! Each worker owns its own channel, cloned from the session's with `FUSE_DEV_IOC_CLONE`, so
//! that the kernel can hand requests to all workers in parallel.

use fuse_dev::{Channel, ChannelError};
use fuse_wire::Request;

use crate::fs::{Fs, Outcome};
use crate::stats::Transport;

/// Serves requests from `channel` (after INIT) until the connection goes away (unmounted
/// or aborted), which is a clean end; any other error is returned.
pub fn serve(fs: &Fs, channel: &Channel) -> Result<(), ChannelError> {
    let mut request = vec![0u8; channel.read_buffer_size()];
    let mut reply = vec![0u8; channel.read_buffer_size()];
    let protocol = channel.protocol();
    while let Some(bytes) = channel.receive(&mut request)? {
        let (unique, outcome) = match Request::parse(bytes, protocol) {
            Ok(req) => {
                fs.stats.record(Transport::Dev, req.opcode());
                (req.unique(), fs.dispatch(&req, &mut reply))
            }
            Err(e) => {
                fs.stats.record(Transport::Dev, e.opcode());
                (e.unique(), Outcome::Error(e.errno()))
            }
        };
        match outcome {
            Outcome::NoReply => {}
            // A request without a readable header cannot be answered.
            _ if unique == 0 => {}
            Outcome::Reply(len) => channel.reply(unique, &[&reply[..len]])?,
            Outcome::Error(e) => channel.reply_error(unique, e)?,
        }
    }
    Ok(())
}
