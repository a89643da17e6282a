//! File handles (`name_to_handle_at` / `open_by_handle_at`) for inodes whose fd is closed.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;

/// A file handle (`struct file_handle`: `handle_bytes`, `handle_type`, then the bytes), in
/// 32-bit words for its alignment.
#[derive(Clone)]
pub(super) struct FileHandle(Box<[u32]>);

/// `MAX_HANDLE_SZ` of `<linux/exportfs.h>`.
const MAX_HANDLE_SZ: usize = 128;

#[allow(unsafe_code)] // name_to_handle_at / open_by_handle_at, which rustix does not wrap
impl FileHandle {
    /// The handle of what `fd` (any kind of fd, `O_PATH` included) refers to.
    pub(super) fn of(fd: BorrowedFd<'_>) -> Result<FileHandle, Errno> {
        let mut words = [0u32; 2 + MAX_HANDLE_SZ / 4];
        words[0] = MAX_HANDLE_SZ as u32;
        let mut mount_id: libc::c_int = 0;
        // SAFETY: `words` is a writable, 4-byte aligned `struct file_handle` whose
        // `handle_bytes` says how much room follows the header; the path is an empty
        // NUL-terminated string used with AT_EMPTY_PATH on a valid fd.
        let r = unsafe {
            libc::name_to_handle_at(
                fd.as_raw_fd(),
                c"".as_ptr(),
                words.as_mut_ptr().cast(),
                &mut mount_id,
                libc::AT_EMPTY_PATH,
            )
        };
        if r != 0 {
            return Err(last_errno());
        }
        let len = 2 + (words[0] as usize).min(MAX_HANDLE_SZ).div_ceil(4);
        Ok(FileHandle(words[..len].into()))
    }

    /// Opens the handle as an `O_PATH` fd; `mount` is any fd on the same file system.
    pub(super) fn open(&self, mount: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
        let mut words = self.0.clone();
        // SAFETY: `words` is a complete `struct file_handle` as name_to_handle_at wrote it
        // (the kernel reads `handle_bytes` bytes after the header, all present).
        let fd = unsafe {
            libc::open_by_handle_at(
                mount.as_raw_fd(),
                words.as_mut_ptr().cast(),
                libc::O_PATH | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: open_by_handle_at returned a new fd that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

pub(super) fn last_errno() -> Errno {
    Errno::from_io_error(&std::io::Error::last_os_error()).unwrap_or(Errno::IO)
}
