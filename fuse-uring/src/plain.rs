//! [`Plain`]: the FUSE ABI structs that may be read from and written to entry buffers as bytes.

use fuse_kernel_sys::*;

mod sealed {
    pub trait Sealed {}
}

/// A `fuse-kernel-sys` struct made only of integers, without padding: every bit pattern is a
/// valid value and all of its bytes are initialised, so it can be read from a request buffer
/// ([`Entry::op_in_as`](crate::Entry::op_in_as)) and copied into a reply
/// ([`Entry::reply_value`](crate::Entry::reply_value)).
///
/// Sealed: implemented for the request and reply structs of the 7.45 ABI. That no struct of
/// the header has padding is checked against the C compiler by the workspace's ABI tests.
///
/// # Safety
/// Only for such structs (the trait is sealed, so only this crate implements it).
pub unsafe trait Plain: Copy + sealed::Sealed {}

macro_rules! plain {
    ($($t:ident),* $(,)?) => { $(
        impl sealed::Sealed for $t {}
        // SAFETY: a fuse ABI struct of integer fields (and arrays and structs of them) without
        // implicit padding (ABI_FACTS 1: no struct of 7.45 has a hole or tail padding).
        unsafe impl Plain for $t {}
    )* };
}

plain!(
    fuse_attr,
    fuse_sx_time,
    fuse_statx,
    fuse_kstatfs,
    fuse_file_lock,
    fuse_entry_out,
    fuse_forget_in,
    fuse_forget_one,
    fuse_batch_forget_in,
    fuse_getattr_in,
    fuse_attr_out,
    fuse_statx_in,
    fuse_statx_out,
    fuse_mknod_in,
    fuse_mkdir_in,
    fuse_rename_in,
    fuse_rename2_in,
    fuse_link_in,
    fuse_setattr_in,
    fuse_open_in,
    fuse_create_in,
    fuse_open_out,
    fuse_release_in,
    fuse_flush_in,
    fuse_read_in,
    fuse_write_in,
    fuse_write_out,
    fuse_statfs_out,
    fuse_fsync_in,
    fuse_setxattr_in,
    fuse_getxattr_in,
    fuse_getxattr_out,
    fuse_lk_in,
    fuse_lk_out,
    fuse_access_in,
    fuse_init_in,
    fuse_init_out,
    fuse_interrupt_in,
    fuse_bmap_in,
    fuse_bmap_out,
    fuse_ioctl_in,
    fuse_ioctl_out,
    fuse_poll_in,
    fuse_poll_out,
    fuse_fallocate_in,
    fuse_in_header,
    fuse_out_header,
    fuse_lseek_in,
    fuse_lseek_out,
    fuse_copy_file_range_in,
    fuse_copy_file_range_out,
    fuse_syncfs_in,
    fuse_uring_ent_in_out,
);
