//! The mount point, held by an fd from the first look: opened once without following any
//! symlink, checked on that fd, mounted onto that fd, and its identity recorded from it (or
//! from the new mount's own fd). The path string is resolved once, here, and never again.
//!
//! Why: `mount(2)` on a path follows symlinks, and every further look at the path resolves it
//! anew. Whoever can rename entries in a directory on the way (an ordinary user who owns the
//! parent of the mount point) can exchange an empty directory and a symlink to another
//! directory between the checks and the mount (`renameat2(RENAME_EXCHANGE)` in a loop), and so
//! have a root mount land on a directory nobody checked, or have the identity recorded from
//! something that is not the mount.

use std::ffi::OsStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, StatxFlags};
use rustix::io::Errno;

use crate::error::MountError;
use crate::identity::{self, FileId, PathFacts};

/// A mount point held by an fd: what every check ran on, and what the mount goes onto.
#[derive(Debug)]
pub(crate) struct HeldPoint {
    /// `O_PATH` fd of the mount point itself (never a symlink).
    pub(crate) fd: OwnedFd,
    /// `O_PATH | O_DIRECTORY` fd of the directory that holds it.
    pub(crate) parent_fd: OwnedFd,
    /// The last component of [`HeldPoint::path`], looked up in `parent_fd`.
    pub(crate) name: std::ffi::OsString,
    /// The absolute path, `.` and `..` removed lexically (exact, since no component of it is a
    /// symlink): the name the identity keeps for later checks and the unmount.
    pub(crate) path: PathBuf,
    /// `statx` of `fd`.
    pub(crate) facts: PathFacts,
    /// `statx` of `parent_fd`.
    pub(crate) parent: FileId,
}

/// `path` made absolute against the working directory (`getcwd`, which has no symlinks) with
/// `.` and `..` removed by spelling. Because [`hold`] then refuses any symlink on the result,
/// removing `..` by spelling names the same directory the kernel would reach.
fn absolute(path: &Path) -> Result<PathBuf, MountError> {
    if path.as_os_str().is_empty() {
        return Err(MountError::Path {
            path: path.to_owned(),
            errno: Errno::NOENT,
        });
    }
    let base = if path.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|e| MountError::Path {
            path: PathBuf::from("."),
            errno: identity::io_errno(&e),
        })?
    };
    let mut out = base;
    for component in path.components() {
        match component {
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Ok(out)
}

/// Opens the directory `dir` (absolute) as `O_PATH | O_DIRECTORY` without following any
/// symlink on the way: `openat2(RESOLVE_NO_SYMLINKS)` (Linux 5.6), else (`ENOSYS`, or
/// `EPERM` from a seccomp filter that does not know `openat2`) one
/// `openat(O_PATH | O_DIRECTORY | O_NOFOLLOW)` per component from `/`. A symlink anywhere is
/// `ELOOP` (openat2) or `ENOTDIR` (the walk); both are reported by the caller as
/// [`MountError::Symlink`] when the component is one.
fn open_dir_nofollow(dir: &Path) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            rustix::fs::CWD,
            dir,
            flags,
            Mode::empty(),
            ResolveFlags::NO_SYMLINKS,
        ) {
            // A concurrent rename can make openat2 ask for a retry.
            Err(Errno::AGAIN) if tries < 8 => tries += 1,
            Err(Errno::NOSYS | Errno::PERM) => break,
            other => return other,
        }
    }
    let mut fd = rustix::fs::open("/", flags, Mode::empty())?;
    for component in dir.components() {
        if let Component::Normal(name) = component {
            fd = rustix::fs::openat(&fd, name, flags, Mode::empty())?;
        }
    }
    Ok(fd)
}

/// Whether `name` in `dir` is a symlink right now (to tell `ELOOP`/`ENOTDIR` apart when an
/// open failed; the answer only chooses the error).
fn names_a_symlink(dir: BorrowedFd<'_>, name: &OsStr) -> bool {
    rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

/// Whether some component of `path` (absolute) is a symlink, looked at component by component
/// without following any (for the error only).
fn passes_a_symlink(path: &Path) -> bool {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let Ok(mut fd) = rustix::fs::open("/", flags, Mode::empty()) else {
        return false;
    };
    for component in path.components() {
        let Component::Normal(name) = component else {
            continue;
        };
        if names_a_symlink(fd.as_fd(), name) {
            return true;
        }
        match rustix::fs::openat(&fd, name, flags, Mode::empty()) {
            Ok(next) => fd = next,
            Err(_) => return false,
        }
    }
    false
}

/// Opens `path` once without following any symlink and runs every check on what was opened:
///
/// - it is no symlink and passes through none ([`MountError::Symlink`]);
/// - a directory when `want_dir` ([`MountError::NotADirectory`]);
/// - not already the root of a mount ([`MountError::AlreadyMounted`]; `/` is one);
/// - empty unless `allow_nonempty` ([`MountError::NotEmpty`]; read through `openat(fd, ".")`,
///   which stays on the held directory).
///
/// Syscalls: one `openat2` (or one `openat` per component), one `openat` of the last
/// component, two `statx(AT_STATX_DONT_SYNC)`, and for the emptiness check one `openat` and
/// one or two `getdents64`. Allocates the absolute path.
pub(crate) fn hold(
    path: &Path,
    want_dir: bool,
    allow_nonempty: bool,
) -> Result<HeldPoint, MountError> {
    let abs = absolute(path)?;
    let (Some(parent_path), Some(name)) = (abs.parent(), abs.file_name()) else {
        // "/" is the root of the root mount.
        return Err(MountError::AlreadyMounted { path: abs });
    };
    let path_error = |errno| {
        if matches!(errno, Errno::LOOP | Errno::NOTDIR) && passes_a_symlink(&abs) {
            MountError::Symlink {
                path: path.to_owned(),
            }
        } else {
            MountError::Path {
                path: path.to_owned(),
                errno,
            }
        }
    };
    let parent_fd = open_dir_nofollow(parent_path).map_err(path_error)?;
    // O_PATH | O_NOFOLLOW on the last component: a symlink is opened as itself (and refused
    // below), never followed.
    let fd = rustix::fs::openat(
        &parent_fd,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(path_error)?;
    let facts = fd_facts(fd.as_fd()).map_err(|errno| MountError::Path {
        path: abs.clone(),
        errno,
    })?;
    if facts.file_type == FileType::Symlink {
        return Err(MountError::Symlink {
            path: path.to_owned(),
        });
    }
    if want_dir && facts.file_type != FileType::Directory {
        return Err(MountError::NotADirectory { path: abs });
    }
    let parent = fd_facts(parent_fd.as_fd()).map_err(|errno| MountError::Path {
        path: parent_path.to_owned(),
        errno,
    })?;
    if identity::is_mount_root(&facts, &parent) {
        return Err(MountError::AlreadyMounted { path: abs });
    }
    if facts.file_type == FileType::Directory && !allow_nonempty {
        let empty = is_empty_dir(fd.as_fd()).map_err(|errno| MountError::Path {
            path: abs.clone(),
            errno,
        })?;
        if !empty {
            return Err(MountError::NotEmpty { path: abs });
        }
    }
    Ok(HeldPoint {
        fd,
        parent_fd,
        name: name.to_owned(),
        path: abs,
        facts,
        parent: parent.id,
    })
}

/// `statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC)`: the facts of what `fd` is, without a
/// path lookup and without a request to a FUSE server.
pub(crate) fn fd_facts(fd: BorrowedFd<'_>) -> Result<PathFacts, Errno> {
    let st = rustix::fs::statx(
        fd,
        "",
        AtFlags::EMPTY_PATH | AtFlags::STATX_DONT_SYNC | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID | identity::STATX_MNT_ID_UNIQUE,
    )?;
    Ok(identity::facts_of(&st))
}

/// Whether the directory held by `fd` has no entry besides `.` and `..`.
fn is_empty_dir(fd: BorrowedFd<'_>) -> Result<bool, Errno> {
    let readable = rustix::fs::openat(
        fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = rustix::fs::Dir::new(readable)?;
    for entry in dir.by_ref() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The path through which `mount(2)` reaches the held fd: `/proc/self/fd/N`, a link the
/// kernel follows to exactly the open file (the fallback for kernels without the new mount
/// API; needs `/proc`).
pub(crate) fn proc_fd_path(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_removed_by_spelling_and_relative_paths_made_absolute() {
        assert_eq!(
            absolute(Path::new("/a/./b/../c/")).unwrap(),
            Path::new("/a/c")
        );
        assert_eq!(absolute(Path::new("/..")).unwrap(), Path::new("/"));
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(absolute(Path::new("x/y")).unwrap(), cwd.join("x/y"));
        assert!(matches!(
            absolute(Path::new("")),
            Err(MountError::Path {
                errno: Errno::NOENT,
                ..
            })
        ));
    }
}
