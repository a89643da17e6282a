//! What a mount IS (device, mount id), decided with `statx(2)` and never by comparing path
//! strings with `/proc/self/mountinfo`; and the path checks made before mounting.

use std::fmt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Statx, StatxAttributes, StatxFlags};
use rustix::io::Errno;

use crate::error::MountError;

/// `STATX_MNT_ID_UNIQUE` (Linux 6.8): a 64-bit mount id that is never reused.
pub(crate) const STATX_MNT_ID_UNIQUE: StatxFlags =
    StatxFlags::from_bits_retain(linux_raw_sys::general::STATX_MNT_ID_UNIQUE);

/// A device number, split as the kernel shows it (`major:minor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceNumber {
    /// The major number (0 for the anonymous devices of FUSE, tmpfs, proc...).
    pub major: u32,
    /// The minor number (for a FUSE mount: the fusectl connection number).
    pub minor: u32,
}

impl fmt::Display for DeviceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// A file's identity on this machine: its device and inode number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    /// `st_dev`.
    pub dev: DeviceNumber,
    /// `st_ino`.
    pub ino: u64,
}

/// A mount id, as `statx(2)` gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MountId {
    /// `STATX_MNT_ID_UNIQUE` (Linux 6.8): never reused while the machine runs.
    Unique(u64),
    /// `STATX_MNT_ID` (Linux 5.8): the id of `/proc/self/mountinfo`, reused after unmount.
    Reusable(u64),
    /// The kernel gave no mount id (before 5.8): only the device number identifies the mount.
    Unknown,
}

/// What `statx(2)` says about one path, without asking a FUSE server (`AT_STATX_DONT_SYNC`)
/// and without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathFacts {
    pub(crate) id: FileId,
    pub(crate) mount_id: MountId,
    /// `STATX_ATTR_MOUNT_ROOT` when the kernel reports it (5.8+), else `None`.
    pub(crate) mount_root: Option<bool>,
    pub(crate) file_type: FileType,
}

/// `statx(path, AT_STATX_DONT_SYNC | AT_SYMLINK_NOFOLLOW)`: one syscall, no allocation beyond
/// the path's C string. `AT_STATX_DONT_SYNC` matters: on a FUSE mount it answers from the
/// kernel's cache instead of sending GETATTR, so checking our own mount never waits for our
/// own server (which may not have answered INIT yet, or may be gone).
pub(crate) fn facts(path: &Path) -> Result<PathFacts, Errno> {
    let st = rustix::fs::statx(
        CWD,
        path,
        AtFlags::STATX_DONT_SYNC | AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::INO | StatxFlags::MNT_ID | STATX_MNT_ID_UNIQUE,
    )?;
    Ok(facts_of(&st))
}

pub(crate) fn facts_of(st: &Statx) -> PathFacts {
    let mask = StatxFlags::from_bits_retain(st.stx_mask);
    let mount_id = if mask.contains(STATX_MNT_ID_UNIQUE) {
        MountId::Unique(st.stx_mnt_id)
    } else if mask.contains(StatxFlags::MNT_ID) {
        MountId::Reusable(st.stx_mnt_id)
    } else {
        MountId::Unknown
    };
    let mount_root = st
        .stx_attributes_mask
        .contains(StatxAttributes::MOUNT_ROOT)
        .then(|| st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT));
    PathFacts {
        id: FileId {
            dev: DeviceNumber {
                major: st.stx_dev_major,
                minor: st.stx_dev_minor,
            },
            ino: st.stx_ino,
        },
        mount_id,
        mount_root,
        file_type: FileType::from_raw_mode(u32::from(st.stx_mode)),
    }
}

/// Whether the path of `child` is the root of a mount other than the one of `parent`, its
/// parent directory: by mount id where the kernel gives one, by `STATX_ATTR_MOUNT_ROOT`, and
/// by device number. Never by path strings.
pub(crate) fn is_mount_root(child: &PathFacts, parent: &PathFacts) -> bool {
    if child.mount_root == Some(true) {
        return true;
    }
    if child.id.dev != parent.id.dev {
        return true;
    }
    match (child.mount_id, parent.mount_id) {
        (MountId::Unique(a), MountId::Unique(b)) | (MountId::Reusable(a), MountId::Reusable(b)) => {
            a != b
        }
        _ => false,
    }
}

/// Canonicalizes `path` and refuses it when it is already a mount point (the query of
/// [`is_mount_point`]; mounting holds the mount point by fd instead, see `point.rs`).
/// Syscalls: the `readlink`/`statx` calls of `canonicalize`, then two `statx`. Allocates the
/// canonical path.
fn check_mount_point(path: &Path) -> Result<(), MountError> {
    let canonical = std::fs::canonicalize(path).map_err(|e| MountError::Path {
        path: path.to_owned(),
        errno: io_errno(&e),
    })?;
    let here = facts(&canonical).map_err(|errno| MountError::Path {
        path: canonical.clone(),
        errno,
    })?;
    let Some(parent_path) = canonical.parent() else {
        // "/" is the root of the root mount.
        return Err(MountError::AlreadyMounted { path: canonical });
    };
    let parent = facts(parent_path).map_err(|errno| MountError::Path {
        path: parent_path.to_owned(),
        errno,
    })?;
    if is_mount_root(&here, &parent) {
        return Err(MountError::AlreadyMounted { path: canonical });
    }
    Ok(())
}

/// Whether `path` is the root of a mount right now (after resolving symlinks), decided by
/// comparing its device and mount id with those of its parent directory through `statx(2)`
/// with `AT_STATX_DONT_SYNC` (no request reaches a FUSE server). `/` is a mount point.
///
/// Costs `canonicalize` plus two `statx`; allocates the canonical path.
///
/// # Errors
///
/// [`MountError::Path`] with the errno of resolving or inspecting the path (`ENOENT`,
/// `EACCES`, `ELOOP`, `ENOTCONN` for a dead FUSE mount on the way...).
pub fn is_mount_point(path: &Path) -> Result<bool, MountError> {
    match check_mount_point(path) {
        Ok(_) => Ok(false),
        Err(MountError::AlreadyMounted { .. }) => Ok(true),
        Err(e) => Err(e),
    }
}

/// Source and mount point overlap: one is the other, or lies inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlap {
    /// They are the same directory.
    Same,
    /// The mount point lies inside the source (a server serving the source would see its
    /// own mount: deadlocks and loops).
    MountPointInsideSource,
    /// The source lies inside the mount point (mounting hides the source from the server,
    /// which would then serve itself).
    SourceInsideMountPoint,
}

impl fmt::Display for Overlap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Overlap::Same => "the source and the mount point are the same directory",
            Overlap::MountPointInsideSource => "the mount point lies inside the source",
            Overlap::SourceInsideMountPoint => "the source lies inside the mount point",
        })
    }
}

/// Checks that `source` (a directory a server will serve) and `mount_point` do not overlap
/// in either direction, comparing `(st_dev, st_ino)` of each path with those of every
/// ancestor of the other (after canonicalization, so symlinks, `..`, trailing slashes and
/// relative paths cannot hide an overlap). Returns `Ok(None)` when they are apart.
///
/// Limits: an overlap made through a bind mount (the same directory reachable under two
/// unrelated paths) is not seen by walking up parents; a server should also refuse to enter
/// its own mount at run time (compare `st_dev` with [`MountIdentity::device`]).
///
/// Costs two `canonicalize` calls and one `statx(AT_STATX_DONT_SYNC)` per path component;
/// allocates the canonical paths.
///
/// # Errors
///
/// [`MountError::Path`] when either path cannot be resolved or inspected.
pub fn check_overlap(source: &Path, mount_point: &Path) -> Result<Option<Overlap>, MountError> {
    let resolve = |p: &Path| {
        std::fs::canonicalize(p).map_err(|e| MountError::Path {
            path: p.to_owned(),
            errno: io_errno(&e),
        })
    };
    let source = resolve(source)?;
    let mount_point = resolve(mount_point)?;
    let ancestors = |p: &Path| -> Result<Vec<FileId>, MountError> {
        p.ancestors()
            .map(|a| {
                facts(a).map(|f| f.id).map_err(|errno| MountError::Path {
                    path: a.to_owned(),
                    errno,
                })
            })
            .collect()
    };
    let source_chain = ancestors(&source)?;
    let mount_chain = ancestors(&mount_point)?;
    let (source_id, mount_id) = (source_chain[0], mount_chain[0]);
    Ok(if source_id == mount_id {
        Some(Overlap::Same)
    } else if mount_chain.contains(&source_id) {
        Some(Overlap::MountPointInsideSource)
    } else if source_chain.contains(&mount_id) {
        Some(Overlap::SourceInsideMountPoint)
    } else {
        None
    })
}

/// What a mount IS, recorded right after mounting from file descriptors, never by resolving
/// the path again: the mount point (absolute, as checked), the device of the mount root
/// (`0:N` for FUSE, N being the fusectl connection number), the mount id, the identity of the
/// directory the mount covers and of the mount point's parent directory.
///
/// [`Mount`](crate::Mount) unmounts only while the mount point still resolves to exactly
/// this mount ([`MountIdentity::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountIdentity {
    pub(crate) mount_point: PathBuf,
    pub(crate) device: DeviceNumber,
    pub(crate) mount_id: MountId,
    pub(crate) parent: FileId,
    pub(crate) covered: FileId,
}

/// What the mount point resolves to now, compared with a [`MountIdentity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The path resolves to the root of exactly this mount (same mount id and device).
    Ours,
    /// The path is no mount point any more (ours was unmounted, or moved): nothing of ours
    /// is there.
    Gone,
    /// Another mount sits at the path (stacked on ours, or ours is gone and another took its
    /// place): its device and mount id.
    Other {
        /// The device of what the path resolves to now.
        device: DeviceNumber,
        /// Its mount id.
        mount_id: MountId,
    },
}

impl MountIdentity {
    /// The mount point: absolute, without `.`, `..` or symlinks (a path with a symlink is
    /// never mounted on).
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// The device of the mount's root (`st_dev`): `0:N` for a FUSE mount.
    pub fn device(&self) -> DeviceNumber {
        self.device
    }

    /// The fusectl connection number (`/sys/fs/fuse/connections/N`): the minor of
    /// [`MountIdentity::device`] (FUSE devices are anonymous, major 0). `None` if the major is
    /// not 0, which a FUSE mount never has.
    pub fn connection_number(&self) -> Option<u32> {
        (self.device.major == 0).then_some(self.device.minor)
    }

    /// The mount id from `statx(2)`.
    pub fn mount_id(&self) -> MountId {
        self.mount_id
    }

    /// The identity of the mount point's parent directory.
    pub fn parent(&self) -> FileId {
        self.parent
    }

    /// The identity of the directory (or file) the mount sits on: the one every check before
    /// mounting ran on, held by an fd from the first look until the mount was attached to it.
    /// Through `fusermount3`, which mounts by itself, it is the directory this process checked
    /// before starting it (see [`Mount::fusermount`](crate::Mount::fusermount)).
    pub fn covered(&self) -> FileId {
        self.covered
    }

    /// What the mount point resolves to now: one `statx(AT_STATX_DONT_SYNC |
    /// AT_SYMLINK_NOFOLLOW)` of the path and one of its parent (no request reaches a FUSE
    /// server, so this does not hang on a dead or busy server).
    ///
    /// It is [`Presence::Ours`] only when the path is a mount root with our mount id (where
    /// the kernel gives one) and our device; [`Presence::Gone`] when the path is no mount
    /// point; else [`Presence::Other`].
    ///
    /// # Errors
    ///
    /// The errno of `statx` (`ENOENT`: the mount point was removed, which also means ours is
    /// not there; `EACCES`...).
    pub fn check(&self) -> Result<Presence, Errno> {
        let here = facts(&self.mount_point)?;
        let parent_path = self.mount_point.parent().unwrap_or(Path::new("/"));
        let parent = facts(parent_path)?;
        if !is_mount_root(&here, &parent) {
            return Ok(Presence::Gone);
        }
        let same_id = match (here.mount_id, self.mount_id) {
            (MountId::Unknown, _) | (_, MountId::Unknown) => true,
            (a, b) => a == b,
        };
        if same_id && here.id.dev == self.device {
            Ok(Presence::Ours)
        } else {
            Ok(Presence::Other {
                device: here.id.dev,
                mount_id: here.mount_id,
            })
        }
    }
}

impl MountIdentity {
    /// Detaches the mount at the mount point if the path still resolves to exactly this
    /// mount ([`MountIdentity::check`]): `umount2(MNT_DETACH | UMOUNT_NOFOLLOW)`, which needs
    /// `CAP_SYS_ADMIN` (mounts made with `mount(2)`; a `fusermount3` mount is unmounted
    /// with `fusermount3 -u`, see [`Mount::unmount`](crate::Mount::unmount)). Otherwise
    /// nothing is done and the outcome says what is there.
    ///
    /// For a process that outlives the server, such as a watchdog that cleans up after the
    /// server dies: it keeps a copy of the identity (taken after mounting) and calls this,
    /// instead of detaching whatever the path names by then. Two `statx` and one `umount2`;
    /// no allocation.
    ///
    /// # Errors
    ///
    /// [`MountError::Path`] when the mount point cannot be inspected (other than `ENOENT`,
    /// which means [`UnmountOutcome::Gone`](crate::UnmountOutcome::Gone));
    /// [`MountError::Unmount`] when `umount2` fails (`EPERM` without `CAP_SYS_ADMIN`).
    pub fn unmount_if_ours(&self) -> Result<crate::UnmountOutcome, MountError> {
        use crate::UnmountOutcome;
        let presence = match self.check() {
            Ok(p) => p,
            Err(Errno::NOENT) => Presence::Gone,
            Err(errno) => {
                return Err(MountError::Path {
                    path: self.mount_point.clone(),
                    errno,
                });
            }
        };
        match presence {
            Presence::Gone => Ok(UnmountOutcome::Gone),
            Presence::Other { .. } => Ok(UnmountOutcome::NotOurs(presence)),
            Presence::Ours => {
                let flags =
                    rustix::mount::UnmountFlags::DETACH | rustix::mount::UnmountFlags::NOFOLLOW;
                rustix::mount::unmount(&self.mount_point, flags).map_err(|errno| {
                    MountError::Unmount {
                        path: self.mount_point.clone(),
                        errno,
                    }
                })?;
                Ok(UnmountOutcome::Unmounted)
            }
        }
    }
}

pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    e.raw_os_error().map_or(Errno::IO, Errno::from_raw_os_error)
}
