//! The classic transport: `read(2)` a request from a `/dev/fuse` fd, `writev(2)` the reply.
//!
//! Each worker thread owns its own fd, cloned from the session's with `FUSE_DEV_IOC_CLONE`,
//! so that the kernel can hand requests to all workers in parallel.

use std::io::IoSlice;
use std::os::fd::BorrowedFd;

use fuse_wire::sys::zerocopy::IntoBytes;
use fuse_wire::{Protocol, Request, out_error, out_header};
use rustix::io::Errno;

use crate::fs::{Fs, Outcome};
use crate::stats::Transport;

/// Serves requests from `dev` until the connection goes away (`ENODEV`: unmounted or
/// aborted), which is a clean end; any other error is returned.
pub fn serve(
    fs: &Fs,
    dev: BorrowedFd<'_>,
    buffer_size: usize,
    protocol: Protocol,
) -> Result<(), Errno> {
    let mut request = vec![0u8; buffer_size];
    let mut reply = vec![0u8; buffer_size];
    loop {
        let n = match rustix::io::read(dev, &mut request) {
            Ok(n) => n,
            Err(Errno::NODEV) => return Ok(()),
            // Interrupted, or the request was withdrawn before we read it.
            Err(Errno::INTR | Errno::NOENT | Errno::AGAIN) => continue,
            Err(e) => return Err(e),
        };
        let (unique, outcome) = match Request::parse(&request[..n], protocol) {
            Ok(req) => {
                fs.stats.record(Transport::Dev, req.opcode());
                (req.unique(), fs.dispatch(&req, &mut reply))
            }
            Err(e) => {
                fs.stats.record(Transport::Dev, e.opcode());
                (e.unique(), Outcome::Error(e.errno()))
            }
        };
        let (error, len) = match outcome {
            Outcome::NoReply => continue,
            _ if unique == 0 => continue,
            Outcome::Reply(len) => (0, len),
            Outcome::Error(e) => (out_error(e), 0),
        };
        let header = out_header(unique, error, len);
        match rustix::io::writev(
            dev,
            &[IoSlice::new(header.as_bytes()), IoSlice::new(&reply[..len])],
        ) {
            Ok(_) | Err(Errno::NOENT) => {}
            Err(Errno::NODEV) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
