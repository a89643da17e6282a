//! [`Command`]: which FUSE io_uring command an SQE carried.

use std::fmt;

/// Which FUSE io_uring command an SQE carried, recovered from the CQE's `user_data`.
///
/// Non-exhaustive: a new protocol minor may add commands (7.46 added `ADD_QUEUE` and
/// `ADD_BUFPOOL`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[doc(alias = "fuse_uring_cmd")]
pub enum Command {
    /// `FUSE_IO_URING_CMD_REGISTER`: hand an entry's buffers to the kernel.
    #[doc(alias = "FUSE_IO_URING_CMD_REGISTER")]
    Register,
    /// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`: send the reply in the entry's buffers and wait for
    /// the next request in the same buffers.
    #[doc(alias = "FUSE_IO_URING_CMD_COMMIT_AND_FETCH")]
    CommitAndFetch,
    /// `FUSE_IO_URING_CMD_ADD_QUEUE` (7.46): create a queue (with zero-copy or not).
    #[doc(alias = "FUSE_IO_URING_CMD_ADD_QUEUE")]
    AddQueue,
    /// `FUSE_IO_URING_CMD_ADD_BUFPOOL` (7.46): give a queue its payload pool.
    #[doc(alias = "FUSE_IO_URING_CMD_ADD_BUFPOOL")]
    AddBufpool,
}

impl Command {
    /// The `cmd_op` value of the SQE (from `fuse-kernel-sys`).
    pub const fn cmd_op(self) -> u32 {
        match self {
            Command::Register => fuse_kernel_sys::FUSE_IO_URING_CMD_REGISTER,
            Command::CommitAndFetch => fuse_kernel_sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH,
            Command::AddQueue => fuse_kernel_sys::FUSE_IO_URING_CMD_ADD_QUEUE,
            Command::AddBufpool => fuse_kernel_sys::FUSE_IO_URING_CMD_ADD_BUFPOOL,
        }
    }

    /// The command's name as the kernel header spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Command::Register => "FUSE_IO_URING_CMD_REGISTER",
            Command::CommitAndFetch => "FUSE_IO_URING_CMD_COMMIT_AND_FETCH",
            Command::AddQueue => "FUSE_IO_URING_CMD_ADD_QUEUE",
            Command::AddBufpool => "FUSE_IO_URING_CMD_ADD_BUFPOOL",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
