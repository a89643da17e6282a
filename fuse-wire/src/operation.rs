//! The typed operation of one request: every kernel-to-server opcode with its arguments.

use core::ffi::CStr;

use fuse_kernel_sys as sys;
use sys::zerocopy::FromBytes;

use crate::flags::{FallocateFlags, RenameFlags, SetattrValid, XattrFlags};
use crate::init::KernelInit;

/// The `FORGET`s of a BATCH_FORGET, read lazily from the request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgets<'a> {
    pub(crate) bytes: &'a [u8],
}

impl<'a> Forgets<'a> {
    /// How many forgets there are.
    pub const fn len(&self) -> usize {
        self.bytes.len() / size_of::<sys::fuse_forget_one>()
    }

    /// Whether there are none.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Iterator for Forgets<'_> {
    type Item = sys::fuse_forget_one;

    fn next(&mut self) -> Option<Self::Item> {
        let (one, rest) = sys::fuse_forget_one::read_from_prefix(self.bytes).ok()?;
        self.bytes = rest;
        Some(one)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.len(), Some(self.len()))
    }
}

impl ExactSizeIterator for Forgets<'_> {}

/// The ranges of a REMOVEMAPPING (DAX), read lazily.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveMappings<'a> {
    pub(crate) bytes: &'a [u8],
}

impl Iterator for RemoveMappings<'_> {
    type Item = sys::fuse_removemapping_one;

    fn next(&mut self) -> Option<Self::Item> {
        let (one, rest) = sys::fuse_removemapping_one::read_from_prefix(self.bytes).ok()?;
        self.bytes = rest;
        Some(one)
    }
}

/// One decoded request's operation: the opcode with its typed arguments.
///
/// Every kernel-to-server opcode of protocol 7.46 has a variant. Fixed argument structs are
/// copies; names and data borrow the request buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
#[allow(missing_docs)] // the variants are the kernel's opcodes, documented in fuse-kernel-sys
pub enum Operation<'a> {
    Lookup {
        name: &'a CStr,
    },
    /// No reply.
    Forget(sys::fuse_forget_in),
    Getattr(sys::fuse_getattr_in),
    Setattr(sys::fuse_setattr_in),
    Readlink,
    Symlink {
        name: &'a CStr,
        target: &'a CStr,
    },
    Mknod {
        arg: sys::fuse_mknod_in,
        name: &'a CStr,
    },
    Mkdir {
        arg: sys::fuse_mkdir_in,
        name: &'a CStr,
    },
    Unlink {
        name: &'a CStr,
    },
    Rmdir {
        name: &'a CStr,
    },
    Rename {
        arg: sys::fuse_rename_in,
        name: &'a CStr,
        new_name: &'a CStr,
    },
    Link {
        arg: sys::fuse_link_in,
        name: &'a CStr,
    },
    Open(sys::fuse_open_in),
    Read(sys::fuse_read_in),
    Write {
        arg: sys::fuse_write_in,
        data: &'a [u8],
    },
    Statfs,
    Release(sys::fuse_release_in),
    Fsync(sys::fuse_fsync_in),
    /// `arg`'s last two fields are 0 unless `FUSE_SETXATTR_EXT` was agreed.
    Setxattr {
        arg: sys::fuse_setxattr_in,
        name: &'a CStr,
        value: &'a [u8],
    },
    Getxattr {
        arg: sys::fuse_getxattr_in,
        name: &'a CStr,
    },
    Listxattr(sys::fuse_getxattr_in),
    Removexattr {
        name: &'a CStr,
    },
    Flush(sys::fuse_flush_in),
    Init(KernelInit),
    Opendir(sys::fuse_open_in),
    Readdir(sys::fuse_read_in),
    Releasedir(sys::fuse_release_in),
    Fsyncdir(sys::fuse_fsync_in),
    Getlk(sys::fuse_lk_in),
    Setlk(sys::fuse_lk_in),
    Setlkw(sys::fuse_lk_in),
    Access(sys::fuse_access_in),
    Create {
        arg: sys::fuse_create_in,
        name: &'a CStr,
    },
    /// No reply; arrives on `/dev/fuse` even with io_uring.
    Interrupt(sys::fuse_interrupt_in),
    Bmap(sys::fuse_bmap_in),
    Destroy,
    Ioctl {
        arg: sys::fuse_ioctl_in,
        data: &'a [u8],
    },
    Poll(sys::fuse_poll_in),
    /// The answer to a RETRIEVE notification; no reply.
    NotifyReply {
        arg: sys::fuse_notify_retrieve_in,
        data: &'a [u8],
    },
    /// No reply.
    BatchForget(Forgets<'a>),
    Fallocate(sys::fuse_fallocate_in),
    Readdirplus(sys::fuse_read_in),
    Rename2 {
        arg: sys::fuse_rename2_in,
        name: &'a CStr,
        new_name: &'a CStr,
    },
    Lseek(sys::fuse_lseek_in),
    CopyFileRange(sys::fuse_copy_file_range_in),
    /// 7.45: as COPY_FILE_RANGE, answered with a 64-bit count.
    CopyFileRange64(sys::fuse_copy_file_range_in),
    SetupMapping(sys::fuse_setupmapping_in),
    RemoveMapping(RemoveMappings<'a>),
    Syncfs(sys::fuse_syncfs_in),
    Tmpfile {
        arg: sys::fuse_create_in,
        name: &'a CStr,
    },
    Statx(sys::fuse_statx_in),
}

impl Operation<'_> {
    /// Whether the kernel expects no reply (FORGET, BATCH_FORGET, INTERRUPT, NOTIFY_REPLY).
    pub const fn is_no_reply(&self) -> bool {
        matches!(
            self,
            Operation::Forget(_)
                | Operation::BatchForget(_)
                | Operation::Interrupt(_)
                | Operation::NotifyReply { .. }
        )
    }

    /// The flags of a rename, typed (`RENAME_NOREPLACE`, `RENAME_EXCHANGE`,
    /// `RENAME_WHITEOUT`): RENAME2's `flags` (7.23), every bit kept; RENAME, which has none,
    /// gives the empty set. `None` for every other operation.
    pub const fn rename_flags(&self) -> Option<RenameFlags> {
        match self {
            Operation::Rename { .. } => Some(RenameFlags::empty()),
            Operation::Rename2 { arg, .. } => Some(RenameFlags::from_bits_retain(arg.flags)),
            _ => None,
        }
    }

    /// SETXATTR's `flags`, typed (`XATTR_CREATE`, `XATTR_REPLACE`), every bit kept. `None`
    /// for every other operation.
    pub const fn setxattr_flags(&self) -> Option<XattrFlags> {
        match self {
            Operation::Setxattr { arg, .. } => Some(XattrFlags::from_bits_retain(arg.flags)),
            _ => None,
        }
    }

    /// FALLOCATE's `mode` (7.19), typed (`FALLOC_FL_KEEP_SIZE`, `PUNCH_HOLE`, `ZERO_RANGE`,
    /// ...), every bit kept. `None` for every other operation.
    pub const fn fallocate_mode(&self) -> Option<FallocateFlags> {
        match self {
            Operation::Fallocate(arg) => Some(FallocateFlags::from_bits_retain(arg.mode)),
            _ => None,
        }
    }

    /// SETATTR's `valid`, typed (which fields of `fuse_setattr_in` to apply), every bit
    /// kept. `None` for every other operation.
    pub const fn setattr_valid(&self) -> Option<SetattrValid> {
        match self {
            Operation::Setattr(arg) => Some(SetattrValid::from_bits_retain(arg.valid)),
            _ => None,
        }
    }
}
