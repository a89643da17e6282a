//! The tests' small server: a root directory, served over a [`Channel`] with fuse-wire.
//! LOOKUP of `enotsupp` fails with errno 524 (`ENOTSUPP`, outside the range the kernel
//! accepts), every other name with `ENOENT`; GETATTR answers the root; the rest `ENOSYS`.

#![allow(dead_code)]

pub(crate) mod user;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fuse_dev::fuse_wire::{Errno, Operation, Request, reply, sys};
use fuse_dev::{Channel, ChannelError};

/// What the server saw.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) getattr: AtomicU64,
    pub(crate) lookup: AtomicU64,
}

/// The errno the kernel does not accept in a reply (Linux's internal ENOTSUPP).
pub(crate) const ENOTSUPP: i32 = 524;

fn root_attr() -> sys::fuse_attr {
    sys::fuse_attr {
        ino: 1,
        mode: 0o040755,
        nlink: 2,
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        ..Default::default()
    }
}

/// Serves until the connection is gone (`Ok`) or the channel fails.
pub(crate) fn serve(chan: &Channel, counts: &Counts) -> Result<(), ChannelError> {
    let mut buf = vec![0u8; chan.read_buffer_size()];
    let mut out = [0u8; 256];
    while let Some(bytes) = chan.receive(&mut buf)? {
        let request = match Request::parse(bytes, chan.protocol()) {
            Ok(r) => r,
            Err(e) => {
                if e.unique() != 0 {
                    chan.reply_error(e.unique(), e.errno())?;
                }
                continue;
            }
        };
        if request.operation().is_no_reply() {
            continue;
        }
        let result = match request.operation() {
            Operation::Getattr(_) if request.nodeid() == 1 => {
                counts.getattr.fetch_add(1, Ordering::Relaxed);
                reply::attr(&mut out, &reply::attr_out(root_attr(), Duration::ZERO))
                    .map_err(|e| e.errno())
            }
            Operation::Lookup { name } => {
                counts.lookup.fetch_add(1, Ordering::Relaxed);
                if name.to_bytes() == b"enotsupp" {
                    Err(Errno::from_raw_os_error(ENOTSUPP))
                } else {
                    Err(Errno::NOENT)
                }
            }
            _ => Err(Errno::NOSYS),
        };
        match result {
            Ok(n) => chan.reply(request.unique(), &[&out[..n]])?,
            Err(errno) => chan.reply_error(request.unique(), errno)?,
        }
    }
    Ok(())
}
