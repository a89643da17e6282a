//! Opening the source: a private, read-only, `noatime` copy of its mount tree.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::file_type_bits;
use super::handle::last_errno;

/// How [`open_source`] opened the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceView {
    /// A private, detached, read-only, `noatime` copy of the source's mount tree.
    Private,
    /// The source itself (the copy failed with this errno, for example `EPERM` without
    /// `CAP_SYS_ADMIN` or `ENOSYS` before Linux 5.12): atimes may change, and a mount of the
    /// mirror inside the source is visible to the server.
    Shared(Errno),
}

/// `struct mount_attr` of `mount_setattr(2)` (Linux 5.12).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Makes the detached mount tree `tree` private, read-only, `nosuid`, `nodev` and `noatime`,
/// recursively.
#[allow(unsafe_code)] // mount_setattr(2), which neither rustix nor libc wraps
fn seal(tree: BorrowedFd<'_>) -> Result<(), Errno> {
    use rustix::mount::MountAttrFlags as A;
    let attr = MountAttr {
        attr_set: u64::from(
            (A::MOUNT_ATTR_RDONLY
                | A::MOUNT_ATTR_NOSUID
                | A::MOUNT_ATTR_NODEV
                | A::MOUNT_ATTR_NOATIME)
                .bits(),
        ),
        attr_clr: u64::from(A::MOUNT_ATTR__ATIME.bits()),
        propagation: libc::MS_PRIVATE,
        userns_fd: 0,
    };
    // SAFETY: `tree` is a valid fd, the path is a NUL-terminated empty string, and `attr`
    // points to a properly laid out `struct mount_attr` of the size passed.
    let r = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_RECURSIVE,
            &attr as *const MountAttr,
            size_of::<MountAttr>(),
        )
    };
    if r == 0 { Ok(()) } else { Err(last_errno()) }
}

/// Fault injection for the tests: with this variable set, [`open_source`] acts as if the
/// private copy were not permitted (`EPERM`), as on kernels before 5.12.
pub const FAULT_NO_PRIVATE_COPY: &str = "PASSTHROUGHFS_FAULT_NO_PRIVATE_COPY";

/// Opens the source directory as the server will see it, before anything is mounted: a
/// private, detached, read-only, `noatime` copy of its mount tree ([`SourceView::Private`]),
/// or, when that is not permitted here, the directory itself ([`SourceView::Shared`]).
/// With `submounts` false, the copy holds the source's own mount only: file systems mounted
/// under it show as the directories they cover (`--one-file-system`: nothing mounted there,
/// a FUSE mount of another user for instance, can make the server wait).
/// Fails with the errno of `open` (`ENOENT`, `EACCES`, ...) or `ENOTDIR`.
pub fn open_source(
    path: &std::path::Path,
    submounts: bool,
) -> Result<(OwnedFd, SourceView), Errno> {
    use rustix::mount::OpenTreeFlags as T;
    let mut flags = T::OPEN_TREE_CLONE | T::OPEN_TREE_CLOEXEC;
    if submounts {
        flags |= T::AT_RECURSIVE;
    }
    let copy = if std::env::var_os(FAULT_NO_PRIVATE_COPY).is_some() {
        Err(Errno::PERM)
    } else {
        rustix::mount::open_tree(rustix::fs::CWD, path, flags)
    }
    .and_then(|tree| seal(tree.as_fd()).map(|()| tree));
    let (fd, view) = match copy {
        Ok(tree) => (tree, SourceView::Private),
        Err(e) => (
            rustix::fs::open(
                path,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            SourceView::Shared(e),
        ),
    };
    let st = rustix::fs::fstat(&fd)?;
    if file_type_bits(&st) != libc::S_IFDIR {
        return Err(Errno::NOTDIR);
    }
    Ok((fd, view))
}
