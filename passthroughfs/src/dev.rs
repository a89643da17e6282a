//! The classic transport: `read(2)` a request from a `/dev/fuse` fd, `writev(2)` the reply.
//!
//! Each worker thread owns its own fd, cloned from the session's with `FUSE_DEV_IOC_CLONE`,
//! so that the kernel can hand requests to all workers in parallel.

use std::io::IoSlice;
use std::os::fd::BorrowedFd;

use fuse_kernel_sys as sys;
use rustix::io::Errno;
use testkit::{bytes_of, read_struct};

use crate::fs::{Fs, Outcome, Req, fixed_arg_size};
use crate::stats::Transport;

/// Serves requests from `dev` until the connection goes away (`ENODEV`: unmounted or
/// aborted), which is a clean end; any other error is returned.
pub fn serve(fs: &Fs, dev: BorrowedFd<'_>, buffer_size: usize) -> Result<(), Errno> {
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
        let Some(header) = read_struct::<sys::fuse_in_header>(&request[..n]) else {
            continue;
        };
        let end = (header.len as usize).clamp(size_of::<sys::fuse_in_header>(), n);
        let body = &request[size_of::<sys::fuse_in_header>()..end];
        let split = fixed_arg_size(header.opcode, body.len());
        let req = Req {
            header,
            arg: &body[..split],
            rest: &body[split..],
        };
        fs.stats.record(Transport::Dev, header.opcode);
        let (error, len) = match fs.dispatch(&req, &mut reply) {
            Outcome::NoReply => continue,
            Outcome::Reply(len) => (0, len),
            Outcome::Error(e) => (-e.raw_os_error(), 0),
        };
        let out = sys::fuse_out_header {
            len: (size_of::<sys::fuse_out_header>() + len) as u32,
            error,
            unique: header.unique,
        };
        match rustix::io::writev(
            dev,
            &[IoSlice::new(bytes_of(&out)), IoSlice::new(&reply[..len])],
        ) {
            Ok(_) | Err(Errno::NOENT) => {}
            Err(Errno::NODEV) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
