//! The FUSE-over-io_uring transport, through `fuse-uring`. (Being wired; until then `prepare`
//! reports ENOSYS and `auto` uses /dev/fuse.)

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use fuse_kernel_sys as sys;
use rustix::io::Errno;

use crate::fs::Fs;

/// Queue ids to register: one per possible CPU.
pub fn possible_queues() -> Vec<u16> {
    vec![0]
}

/// Payload buffer size for the negotiated limits.
pub fn payload_size(init_out: &sys::fuse_init_out) -> usize {
    (sys::FUSE_MIN_READ_BUFFER as usize)
        .max(init_out.max_write as usize)
        .max(usize::from(init_out.max_pages) * 4096)
}

/// Rings prepared before INIT is answered.
#[derive(Debug)]
pub struct Rings {}

impl Rings {
    /// Creates one ring per queue.
    pub fn prepare(_queues: &[u16]) -> Result<Rings, Errno> {
        Err(Errno::NOSYS)
    }

    /// Registers every entry and starts one thread per queue.
    pub fn start(
        self,
        _fs: Arc<Fs>,
        _dev: Arc<OwnedFd>,
        _payload: usize,
        _wake: fn(),
    ) -> Result<Vec<JoinHandle<Result<(), String>>>, Errno> {
        Err(Errno::NOSYS)
    }
}
