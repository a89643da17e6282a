//! GETXATTR and LISTXATTR, symlinks included, with `trusted.*` hidden from unprivileged
//! callers.

use std::ffi::CStr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use fuse_wire::reply;
use rustix::fs::AtFlags;
use rustix::io::Errno;

use super::tables::Inode;
use super::{Fs, Outcome, proc_path, sent};

/// A path for xattr calls, and the fd it goes through (kept open while the path is used).
type XattrPath = (std::path::PathBuf, Option<Arc<OwnedFd>>);

impl Fs {
    /// GETXATTR: the size when `size` is 0, else the value.
    pub(super) fn getxattr(
        &self,
        id: u64,
        size: u32,
        name: &CStr,
        out: &mut [u8],
    ) -> Result<Outcome, Errno> {
        let inode = self.inode(id)?;
        let fd = self.path_fd(id, &inode)?;
        if size == 0 {
            let n = self.getxattr_fd(&inode, fd.as_fd(), name, &mut [])?;
            return sent(reply::xattr_size(
                out,
                u32::try_from(n).map_err(|_| Errno::RANGE)?,
            ));
        }
        let len = (size as usize).min(out.len());
        let n = self.getxattr_fd(&inode, fd.as_fd(), name, &mut out[..len])?;
        Ok(Outcome::Reply(n))
    }

    /// LISTXATTR: the names as the caller would see them on the source: `trusted.*` only for
    /// callers with `CAP_SYS_ADMIN` (in the initial user namespace), as ext4 and tmpfs list
    /// them.
    pub(super) fn listxattr(
        &self,
        id: u64,
        size: u32,
        pid: u32,
        out: &mut [u8],
    ) -> Result<Outcome, Errno> {
        let inode = self.inode(id)?;
        let fd = self.path_fd(id, &inode)?;
        let mut names = Vec::new();
        // The list can grow between the size query and the read: try a few times.
        for _ in 0..4 {
            let n = self.listxattr_fd(&inode, fd.as_fd(), &mut [])?;
            names.resize(n, 0);
            match self.listxattr_fd(&inode, fd.as_fd(), &mut names) {
                Ok(n) => {
                    names.truncate(n);
                    break;
                }
                Err(Errno::RANGE) => continue,
                Err(e) => return Err(e),
            }
        }
        let hidden = |n: &[u8]| n.starts_with(b"trusted.");
        if names.split(|&b| b == 0).any(hidden) && !caller_is_admin(pid) {
            let mut kept = Vec::with_capacity(names.len());
            for n in names
                .split(|&b| b == 0)
                .filter(|n| !n.is_empty() && !hidden(n))
            {
                kept.extend_from_slice(n);
                kept.push(0);
            }
            names = kept;
        }
        if size == 0 {
            return sent(reply::xattr_size(
                out,
                u32::try_from(names.len()).map_err(|_| Errno::RANGE)?,
            ));
        }
        if names.len() > (size as usize).min(out.len()) {
            return Err(Errno::RANGE);
        }
        out[..names.len()].copy_from_slice(&names);
        Ok(Outcome::Reply(names.len()))
    }

    /// A path for xattr calls on `inode` (whose `O_PATH` fd is `fd`): `/proc/self/fd/N` for
    /// everything but symlinks, to be used with the following calls; for a symlink,
    /// `/proc/self/fd/<parent>/<name>` to be used with the `l*xattr` calls, after checking
    /// that the name still is that symlink (`None` when it is not: no xattrs then). The
    /// parent's fd, returned too, must stay open while the path is used.
    fn xattr_path(&self, inode: &Inode, fd: BorrowedFd<'_>) -> Result<Option<XattrPath>, Errno> {
        use std::os::unix::ffi::OsStrExt;
        if inode.kind != libc::S_IFLNK {
            return Ok(Some((proc_path(fd).into(), None)));
        }
        let Some(link) = inode.link_name.as_deref() else {
            return Ok(None);
        };
        let (parent, name) = (link.0, &link.1);
        let Ok(dir) = self.inode(parent) else {
            return Ok(None);
        };
        let dirfd = self.path_fd(parent, &dir)?;
        match rustix::fs::statat(&*dirfd, &**name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if (st.st_dev, st.st_ino) == inode.key => {
                let mut path = std::path::PathBuf::from(proc_path(dirfd.as_fd()));
                path.push(std::ffi::OsStr::from_bytes(name));
                Ok(Some((path, Some(dirfd))))
            }
            _ => Ok(None),
        }
    }

    /// `getxattr` on what `fd` (the `O_PATH` fd of `inode`) refers to, symlinks included
    /// (see [`Fs::xattr_path`]); the size when `buf` is empty.
    fn getxattr_fd(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        name: &CStr,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let Some((path, _parent)) = self.xattr_path(inode, fd)? else {
            return Err(Errno::NODATA);
        };
        match (inode.kind == libc::S_IFLNK, buf.is_empty()) {
            (false, true) => rustix::fs::getxattr_query(&path, name),
            (false, false) => rustix::fs::getxattr(&path, name, buf),
            (true, true) => rustix::fs::lgetxattr_query(&path, name),
            (true, false) => rustix::fs::lgetxattr(&path, name, buf),
        }
    }

    /// `listxattr` on what `fd` refers to, as [`Fs::getxattr_fd`].
    fn listxattr_fd(
        &self,
        inode: &Inode,
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        let Some((path, _parent)) = self.xattr_path(inode, fd)? else {
            return Ok(0);
        };
        match (inode.kind == libc::S_IFLNK, buf.is_empty()) {
            (false, true) => rustix::fs::listxattr_query(&path),
            (false, false) => rustix::fs::listxattr(&path, buf),
            (true, true) => rustix::fs::llistxattr_query(&path),
            (true, false) => rustix::fs::llistxattr(&path, buf),
        }
    }
}

/// Whether the task `pid` (a request's caller) has `CAP_SYS_ADMIN` in the initial user
/// namespace (`capable(CAP_SYS_ADMIN)`, what ext4 asks before listing `trusted.*`). Unknown
/// callers (pid 0, or gone) are not.
fn caller_is_admin(pid: u32) -> bool {
    /// `CAP_SYS_ADMIN` of `<linux/capability.h>`.
    const CAP_SYS_ADMIN: u32 = 21;
    if pid == 0 {
        return false;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    if cap_eff & (1 << CAP_SYS_ADMIN) == 0 {
        return false;
    }
    // Capabilities count for the initial user namespace only if the caller is in it (the
    // server runs there: it mounted with CAP_SYS_ADMIN).
    let ns = |p: String| std::fs::read_link(p).ok();
    let theirs = ns(format!("/proc/{pid}/ns/user"));
    theirs.is_some() && theirs == ns("/proc/self/ns/user".into())
}
