//! [`Mount`]: a FUSE mount made by this process, identified by what it is, and an unmount
//! guard that only ever unmounts that mount.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Child;

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{FsMountFlags, FsOpenFlags, MoveMountFlags, UnmountFlags};

use crate::device::Device;
use crate::error::MountError;
use crate::fusectl::Connection;
use crate::fusermount;
use crate::identity::{self, MountIdentity, Presence};
use crate::options::MountOptions;
use crate::point::{self, HeldPoint};

/// How the mount was made, and so how it is unmounted.
#[derive(Debug)]
enum Method {
    /// As root, onto the held mount point fd (the new mount API, or `mount(2)` through
    /// `/proc/self/fd/N`); unmounted with `umount2(MNT_DETACH | UMOUNT_NOFOLLOW)` of the
    /// path once the identity check passes.
    Syscall,
    /// `fusermount3`; unmounted with `fusermount3 -u -z`.
    Fusermount {
        program: PathBuf,
        /// With `auto_unmount`: the socket whose closing makes `fusermount3` unmount, and
        /// the waiting `fusermount3` process.
        auto_unmount: Option<(OwnedFd, Child)>,
    },
}

/// What [`Mount::unmount`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum UnmountOutcome {
    /// Our mount was detached now.
    Unmounted,
    /// Nothing of ours is mounted at the path any more (already unmounted by this guard
    /// earlier, or by someone else, or moved): nothing was done.
    Gone,
    /// Another mount sits at the path (stacked on ours, or in the place of ours): it was left
    /// alone and nothing was unmounted. Ours may still be underneath; unmount the other one
    /// and call [`Mount::unmount`] again, or abort our connection through
    /// [`Mount::connection`].
    NotOurs(Presence),
}

/// A FUSE mount made by this process, with its identity ([`MountIdentity`]) recorded right
/// after mounting. Dropping it unmounts it, but only if the mount point still resolves to
/// exactly this mount ([`Mount::unmount`]); drop never panics and never unmounts anything
/// else. Call [`Mount::unmount`] to see what happened.
///
/// Linux: the new mount API (`fsopen`/`fsmount`/`move_mount`) since 5.2, else `mount(2)`
/// (FUSE since 2.6.14); `openat2` 5.6, else a walk per component; the mount id needs 5.8
/// (`STATX_MNT_ID`; unique ids 6.8), before which the device number alone identifies the
/// mount.
#[derive(Debug)]
pub struct Mount {
    identity: MountIdentity,
    method: Method,
    mounted: bool,
}

impl Mount {
    /// Mounts the connection of `dev` (a fresh, unmounted `/dev/fuse` fd) on `mount_point`.
    /// Needs `CAP_SYS_ADMIN` in the mount's user namespace (root).
    ///
    /// The mount point is opened ONCE, without following any symlink
    /// (`openat2(RESOLVE_NO_SYMLINKS)` on Linux 5.6+, else `openat(O_PATH | O_NOFOLLOW)` one
    /// component at a time from `/`), and everything after works on that fd, so that nobody
    /// who can rename entries on the way (the owner of the parent directory) can redirect
    /// the mount between the checks and the mount:
    ///
    /// 1. checks on the fd: no symlink on the path, a directory (for a directory `rootmode`),
    ///    not already a mount point (device and mount id compared with its parent's, held by
    ///    fd too), empty unless [`MountOptions::allow_nonempty`];
    /// 2. the mount goes onto the fd: with the new mount API (Linux 5.2+: `fsopen("fuse")`,
    ///    `fsconfig` per option, `fsmount`, then `move_mount(MOVE_MOUNT_F_EMPTY_PATH |
    ///    MOVE_MOUNT_T_EMPTY_PATH)` onto the held fd). FUSE parses `fsconfig` keys itself
    ///    since Linux 5.4; on 5.2 and 5.3 the generic adapter passes them on as the old
    ///    option string, which has no `subtype`, so a refusal (`EINVAL`) there is retried
    ///    the old way. Kernels without the new mount API (`ENOSYS`, before 5.2) get
    ///    `mount(2)` on `/proc/self/fd/N` of the held fd, which the kernel follows to exactly
    ///    that directory (needs `/proc`);
    /// 3. the identity is recorded from the new mount's own fd (`fsmount`'s, before it is
    ///    attached: device and mount id) and the held fds (the covered directory, the
    ///    parent), never by resolving the path again. Once attached, the directory cannot be
    ///    renamed any more (`EBUSY`); the last component is then looked up once in the held
    ///    parent to make sure it still names this mount, so that the unmount by path finds
    ///    it. If the directory was renamed between the open and the attach, the new mount is
    ///    detached through its own fd (`umount2` of `/proc/self/fd/N`, exactly this mount)
    ///    and the error is [`MountError::Path`] with `ESTALE`. On the `mount(2)` fallback
    ///    there is no such fd: the identity comes from that lookup, and a mount on a
    ///    directory renamed meanwhile stays behind, a limit of kernels before 5.2.
    ///
    /// Every `statx` uses `AT_STATX_DONT_SYNC`, which sends nothing to the server: the caller
    /// answers INIT afterwards (the kernel queues it on `dev` while mounting).
    ///
    /// Costs: the open (one `openat2`, or one `openat` per component), two `statx`, one
    /// `openat` and `getdents64` for the emptiness check, then `fsopen`, one `fsconfig` per
    /// option (about seven), `fsmount`, one `statx`, `move_mount`; a few small allocations.
    ///
    /// # Errors
    ///
    /// - [`MountError::InvalidOption`] (`EINVAL`): see [`MountOptions::validate`];
    /// - [`MountError::Path`]: the mount point cannot be opened or inspected (`ENOENT`,
    ///   `EACCES`, `ENOTDIR` for a file on the way...);
    /// - [`MountError::Symlink`] (`ELOOP`): the mount point is a symlink or its path passes
    ///   through one;
    /// - [`MountError::NotADirectory`] (`ENOTDIR`), [`MountError::AlreadyMounted`] (`EBUSY`),
    ///   [`MountError::NotEmpty`] (`ENOTEMPTY`);
    /// - [`MountError::Mount`]: `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` for an option the
    ///   kernel refuses or a `dev` that is not a fresh `/dev/fuse` fd, `ENODEV` without the
    ///   fuse module;
    /// - [`MountError::Path`] with `ESTALE`: the mount point was renamed while mounting
    ///   (nothing stays mounted; try again).
    pub fn new(
        dev: &Device,
        mount_point: &Path,
        options: &MountOptions,
    ) -> Result<Mount, MountError> {
        let params = options.kernel_params(dev.as_raw_fd())?;
        // Checked before any syscall, as before: the data string must fit one page.
        let data = std::ffi::CString::new(options.kernel_data(dev.as_raw_fd())?).map_err(|_| {
            MountError::InvalidOption {
                option: "data",
                reason: "contains a NUL",
            }
        })?;
        let point = point::hold(mount_point, is_dir_mode(options), options.allows_nonempty())?;
        let identity = match mount_with_new_api(&point, options, &params)? {
            Some(identity) => identity,
            None => mount_with_syscall(&point, options, &data)?,
        };
        Ok(Mount {
            identity,
            method: Method::Syscall,
            mounted: true,
        })
    }

    /// Mounts without root through `fusermount3` (found by [`find_fusermount`]), which opens
    /// `/dev/fuse`, mounts it and passes the fd back; returns that fd as a [`Device`] and the
    /// mount. The kernel has queued INIT on the device: answer it next.
    ///
    /// `options` become `fusermount3 -o` ([`MountOptions::fusermount_options`]); with
    /// [`MountOptions::auto_unmount`], `fusermount3` stays alive and unmounts the file system
    /// when this process dies.
    ///
    /// The mount point is opened once and checked as by [`Mount::new`] (no symlink on the
    /// path, a directory, not a mount point, empty unless allowed), and `fusermount3` is
    /// given the path as checked (absolute, without symlinks). It cannot be handed the fd:
    /// it resolves the path itself. What `fusermount3` (libfuse 3) checks on its own, as the
    /// user: it `lstat`s the path (a symlink is refused), `chdir`s into the directory,
    /// `lstat`s `.` again, refuses a sticky directory the user does not own and one the user
    /// may not write (`access(W_OK)`), refuses mounting over file systems outside its list
    /// of known types, and then mounts on `.`: so it only ever mounts on a directory the user
    /// may write. After it returns, the new mount is looked up once in the held parent
    /// directory by the last component, without following symlinks, and must be the root
    /// of a mount there; otherwise (the entry was swapped meanwhile) `fusermount3 -u` is run
    /// and the error is [`MountError::Path`] with `ESTALE`.
    ///
    /// Costs: the checks of [`Mount::new`], a `socketpair`, a fork+exec of `fusermount3`,
    /// `recvmsg`, and (without `auto_unmount`) a `waitpid`.
    ///
    /// [`find_fusermount`]: crate::find_fusermount
    ///
    /// # Errors
    ///
    /// Those of [`find_fusermount`](crate::find_fusermount) (program missing or not setuid),
    /// the option and path checks of [`Mount::new`], [`MountError::FusermountIo`] when it
    /// cannot be started, and [`MountError::Fusermount`] with its exit status and stderr
    /// when it refuses (for example `allow_other` without `user_allow_other` in
    /// `/etc/fuse.conf`, or a mount point the user may not write).
    pub fn fusermount(
        mount_point: &Path,
        options: &MountOptions,
    ) -> Result<(Device, Mount), MountError> {
        let program = fusermount::find_fusermount()?;
        Self::fusermount_with(&program, mount_point, options)
    }

    /// [`Mount::fusermount`] with an explicit `fusermount3` program.
    ///
    /// # Errors
    ///
    /// As [`Mount::fusermount`].
    pub fn fusermount_with(
        program: &Path,
        mount_point: &Path,
        options: &MountOptions,
    ) -> Result<(Device, Mount), MountError> {
        let list = options.fusermount_options()?;
        let point = point::hold(mount_point, is_dir_mode(options), options.allows_nonempty())?;
        let mounted = fusermount::mount(program, &list, &point.path, options.wants_auto_unmount())?;
        let method = Method::Fusermount {
            program: program.to_owned(),
            auto_unmount: mounted.auto_unmount,
        };
        // Until the identity is known, the guard owns the mount: a failure or a panic in
        // between unmounts it (by path: only fusermount3 can, and it takes a path).
        let mut mount = Mount {
            identity: MountIdentity {
                mount_point: point.path.clone(),
                device: identity::DeviceNumber { major: 0, minor: 0 },
                mount_id: identity::MountId::Unknown,
                parent: point.parent,
                covered: point.facts.id,
            },
            method,
            mounted: true,
        };
        match identity_at_name(&point) {
            Ok(id) => mount.identity = id,
            Err(e) => {
                let _ = fusermount::unmount(program, &point.path);
                mount.mounted = false;
                return Err(e);
            }
        }
        Ok((Device::from_fd(mounted.dev), mount))
    }

    /// Mounts as root with `mount(2)` on a fresh [`Device`] when the effective uid is 0,
    /// else through `fusermount3`. Returns the device to serve and the mount.
    ///
    /// # Errors
    ///
    /// Those of [`Device::open`] (as [`MountError::Path`] on `/dev/fuse`), [`Mount::new`]
    /// or [`Mount::fusermount`].
    pub fn auto(mount_point: &Path, options: &MountOptions) -> Result<(Device, Mount), MountError> {
        if rustix::process::geteuid().is_root() {
            let dev = Device::open().map_err(|errno| MountError::Path {
                path: PathBuf::from(crate::DEVICE_PATH),
                errno,
            })?;
            let mount = Mount::new(&dev, mount_point, options)?;
            Ok((dev, mount))
        } else {
            Mount::fusermount(mount_point, options)
        }
    }

    /// What this mount is.
    pub fn identity(&self) -> &MountIdentity {
        &self.identity
    }

    /// The mount point, as checked (absolute, without `.`, `..` or symlinks).
    pub fn mount_point(&self) -> &Path {
        &self.identity.mount_point
    }

    /// The fusectl connection of this mount (its number is the minor of the mount's device).
    /// No syscall; see [`Connection`] for what it can do.
    pub fn connection(&self) -> Option<Connection> {
        self.identity.connection_number().map(Connection::new)
    }

    /// Whether it was made through `fusermount3`.
    pub fn is_fusermount(&self) -> bool {
        matches!(self.method, Method::Fusermount { .. })
    }

    /// Unmounts lazily (`MNT_DETACH`: the mount disappears from the tree now; the connection
    /// ends when the last open file on it is closed), but only if the mount point still
    /// resolves to exactly this mount ([`MountIdentity::check`]). Otherwise nothing is done
    /// and the outcome says why; never is another file system detached.
    ///
    /// Made as root: `umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)` (needs `CAP_SYS_ADMIN`).
    /// Through `fusermount3`: `fusermount3 -u -z -- path`, then, with `auto_unmount`, the
    /// socket is closed and that `fusermount3` reaped.
    ///
    /// The guard does not keep the new mount's own fd: an fd on a mount keeps its file
    /// system alive after an outside `umount -l`, and the connection would then never end.
    /// So a short window remains between the check and the unmount syscall, in which a mount
    /// stacked on the same directory by another root process would be the one detached; the
    /// kernel has no "unmount this mount id" call to close it. (The directory itself cannot
    /// be renamed away while it is a mount point: `EBUSY`.)
    ///
    /// Costs: two `statx(AT_STATX_DONT_SYNC)` (no request reaches a FUSE server) and one
    /// `umount2`, or a fork+exec of `fusermount3`.
    ///
    /// # Errors
    ///
    /// [`MountError::Path`] when the mount point cannot be inspected (other than `ENOENT`,
    /// which means ours is gone); [`MountError::Unmount`] when `umount2` fails (`EPERM`);
    /// [`MountError::Fusermount`] when `fusermount3 -u` fails. The guard stays armed after an
    /// error.
    pub fn unmount(&mut self) -> Result<UnmountOutcome, MountError> {
        if !self.mounted {
            return Ok(UnmountOutcome::Gone);
        }
        let outcome = match &self.method {
            Method::Syscall => self.identity.unmount_if_ours()?,
            Method::Fusermount { program, .. } => match self.identity.check() {
                Ok(Presence::Ours) => {
                    fusermount::unmount(program, &self.identity.mount_point)?;
                    UnmountOutcome::Unmounted
                }
                Ok(Presence::Gone) | Err(rustix::io::Errno::NOENT) => UnmountOutcome::Gone,
                Ok(other @ Presence::Other { .. }) => UnmountOutcome::NotOurs(other),
                Err(errno) => {
                    return Err(MountError::Path {
                        path: self.identity.mount_point.clone(),
                        errno,
                    });
                }
            },
        };
        match outcome {
            UnmountOutcome::NotOurs(_) => return Ok(outcome),
            UnmountOutcome::Unmounted | UnmountOutcome::Gone => {
                self.mounted = false;
            }
        }
        self.release_fusermount();
        Ok(outcome)
    }

    /// With `auto_unmount`: closes the socket and reaps `fusermount3`, which finds nothing
    /// of ours mounted any more (it also checks that a FUSE file system is at the path).
    fn release_fusermount(&mut self) {
        if let Method::Fusermount { auto_unmount, .. } = &mut self.method {
            if let Some((socket, mut child)) = auto_unmount.take() {
                drop(socket);
                let _ = child.wait();
            }
        }
    }

    /// Forgets the mount without unmounting it (the guard is disarmed). With `auto_unmount`,
    /// `fusermount3` still unmounts when this process exits.
    pub fn forget(mut self) -> MountIdentity {
        self.mounted = false;
        if let Method::Fusermount { auto_unmount, .. } = &mut self.method {
            if let Some((socket, child)) = auto_unmount.take() {
                // Keep the socket open for the life of the process: closing it would unmount.
                std::mem::forget(socket);
                drop(child);
            }
        }
        self.identity.clone()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        // Never panics: errors and "not ours" outcomes are dropped here; call
        // `Mount::unmount` to see them.
        let _ = self.unmount();
        self.release_fusermount();
    }
}

fn is_dir_mode(options: &MountOptions) -> bool {
    options.root_is_dir()
}

/// Mounts onto the held fd with the new mount API (Linux 5.2+) and returns the identity,
/// recorded from the new mount's fd before it is attached (the fd is closed on return).
/// `Ok(None)`: this kernel cannot
/// (no `fsopen`: `ENOSYS`; or `EINVAL` from `FSCONFIG_CMD_CREATE`, which is what 5.2 and
/// 5.3 say to the `subtype` key FUSE only parses since 5.4); the caller falls back to
/// `mount(2)`, whose answer is then the one reported.
///
/// Nothing is attached until `move_mount`, the last step: a failure before it leaves nothing
/// behind (the detached mount goes away with its fd).
fn mount_with_new_api(
    point: &HeldPoint,
    options: &MountOptions,
    params: &[(&'static str, Option<String>)],
) -> Result<Option<MountIdentity>, MountError> {
    use rustix::mount::{fsconfig_create, fsconfig_set_flag, fsconfig_set_string};
    let fail = |errno| MountError::Mount {
        path: point.path.clone(),
        errno,
    };
    let fs = match rustix::mount::fsopen("fuse", FsOpenFlags::FSOPEN_CLOEXEC) {
        Ok(fs) => fs,
        Err(Errno::NOSYS) => return Ok(None),
        Err(errno) => return Err(fail(errno)),
    };
    fsconfig_set_string(fs.as_fd(), "source", options.source()).map_err(fail)?;
    if let Some(subtype) = options.subtype_name() {
        fsconfig_set_string(fs.as_fd(), "subtype", subtype).map_err(fail)?;
    }
    for (key, value) in params {
        match value {
            Some(value) => fsconfig_set_string(fs.as_fd(), *key, value.as_str()),
            None => fsconfig_set_flag(fs.as_fd(), *key),
        }
        .map_err(fail)?;
    }
    if options.is_read_only() {
        // The superblock's read-only flag; the mount's is MOUNT_ATTR_RDONLY below. mount(2)
        // with MS_RDONLY sets both.
        fsconfig_set_flag(fs.as_fd(), "ro").map_err(fail)?;
    }
    match fsconfig_create(fs.as_fd()) {
        Ok(()) => {}
        Err(Errno::INVAL) => return Ok(None),
        Err(errno) => return Err(fail(errno)),
    }
    let mnt = rustix::mount::fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        options.mount_attrs(),
    )
    .map_err(fail)?;
    let root = point::fd_facts(mnt.as_fd()).map_err(fail)?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        point.fd.as_fd(),
        "",
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH | MoveMountFlags::MOVE_MOUNT_T_EMPTY_PATH,
    )
    .map_err(fail)?;
    let identity = MountIdentity {
        mount_point: point.path.clone(),
        device: root.id.dev,
        mount_id: root.mount_id,
        parent: point.parent,
        covered: point.facts.id,
    };
    // The mount sits on the held directory wherever it is; from now on the kernel refuses to
    // rename it (EBUSY). Make sure it is still the entry the path names, or a later unmount by
    // path would miss it: if it was renamed between the open and move_mount, detach exactly
    // this mount through its own fd and refuse.
    match identity_at_name(point) {
        // The mount's fd is closed here: held for the life of the mount, it would keep the
        // file system alive after an administrator's `umount -l`, and the connection would
        // never end.
        Ok(there) if there.device == identity.device && there.mount_id == identity.mount_id => {
            Ok(Some(identity))
        }
        Ok(_) | Err(_) => {
            let _ = rustix::mount::unmount(point::proc_fd_path(mnt.as_fd()), UnmountFlags::DETACH);
            Err(MountError::Path {
                path: point.path.clone(),
                errno: Errno::STALE,
            })
        }
    }
}

/// The fallback for kernels without the new mount API (before 5.2): `mount(2)` on
/// `/proc/self/fd/N` of the held fd, which the kernel follows to exactly the held directory
/// (no name is resolved), then the identity of what the last component names in the held
/// parent now ([`identity_at_name`]).
fn mount_with_syscall(
    point: &HeldPoint,
    options: &MountOptions,
    data: &std::ffi::CStr,
) -> Result<MountIdentity, MountError> {
    rustix::mount::mount(
        options.source(),
        point::proc_fd_path(point.fd.as_fd()),
        options.fs_type().as_str(),
        options.mount_flags(),
        data,
    )
    .map_err(|errno| MountError::Mount {
        path: point.path.clone(),
        errno,
    })?;
    identity_at_name(point)
}

/// Waits until every rename in the held parent directory that was under way when the mount
/// was attached has finished: `renameat` of the last component onto itself, which takes the
/// directory's lock as every rename there does (held from the rename's lookups to its end)
/// and then changes nothing (a rename of an entry onto itself succeeds at once). Once the new
/// mount sits on the directory, a rename that starts later is refused (`EBUSY`); one that
/// had passed that check already still moves the directory, and after this call the lookup
/// that follows sees where it went. Errors are ignored (a read-only parent, for one): the
/// lookup then only sees what it sees, as before.
fn wait_for_renames_under_way(point: &HeldPoint) {
    let _ = rustix::fs::renameat(
        point.parent_fd.as_fd(),
        &point.name,
        point.parent_fd.as_fd(),
        &point.name,
    );
}

/// The identity of the mount that the last component names in the held parent directory,
/// looked up once without following a symlink (`openat(O_PATH | O_NOFOLLOW)`, which enters
/// the topmost mount on the entry). Used where this process did not make the mount's fd
/// itself (`fusermount3`, the `mount(2)` fallback).
///
/// # Errors
///
/// [`MountError::Path`] with `ESTALE` when the entry is not the root of a mount any more (it
/// was renamed or replaced since the checks), or with the errno of `openat`/`statx`.
fn identity_at_name(point: &HeldPoint) -> Result<MountIdentity, MountError> {
    let fail = |errno| MountError::Path {
        path: point.path.clone(),
        errno,
    };
    wait_for_renames_under_way(point);
    let root_fd = rustix::fs::openat(
        &point.parent_fd,
        &point.name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(fail)?;
    let root = point::fd_facts(root_fd.as_fd()).map_err(fail)?;
    let parent = point::fd_facts(point.parent_fd.as_fd()).map_err(fail)?;
    if !identity::is_mount_root(&root, &parent) {
        return Err(fail(Errno::STALE));
    }
    Ok(MountIdentity {
        mount_point: point.path.clone(),
        device: root.id.dev,
        mount_id: root.mount_id,
        parent: point.parent,
        covered: point.facts.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fuse_wire::InitConfig;

    /// The path for kernels without the new mount API (before 5.2), taken by hand here since
    /// this kernel has it: `mount(2)` through `/proc/self/fd/N` lands on the held directory,
    /// and the identity found in the held parent is that mount.
    #[test]
    fn the_mount2_fallback_mounts_onto_the_held_fd() {
        // No testkit here: unit tests also build from the packaged crate, without it.
        if !rustix::process::geteuid().is_root() || !Path::new("/dev/fuse").exists() {
            assert!(
                std::env::var_os("FUSE_TESTS_REQUIRE_KERNEL").is_none(),
                "FUSE_TESTS_REQUIRE_KERNEL is set, but this needs root and /dev/fuse"
            );
            eprintln!("skipped: needs root and /dev/fuse");
            return;
        }
        let dir = std::env::temp_dir().join(format!("fuse-dev-fallback-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = Device::open().unwrap();
        let options = MountOptions::new().subtype("fusedevfallback");
        let data = std::ffi::CString::new(options.kernel_data(dev.as_raw_fd()).unwrap()).unwrap();
        let point = point::hold(&dir, true, false).unwrap();
        let covered = point.facts.id;
        let mounted = mount_with_syscall(&point, &options, &data).map(|identity| Mount {
            identity,
            method: Method::Syscall,
            mounted: true,
        });
        let mut chan = crate::Channel::new(dev);
        let init = mounted
            .as_ref()
            .ok()
            .map(|_| chan.handshake(&InitConfig::default()));
        let mut mount = mounted.unwrap();
        let presence = mount.identity().check();
        let root = point::fd_facts(
            rustix::fs::open(&dir, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
                .unwrap()
                .as_fd(),
        )
        .unwrap();
        let outcome = mount.unmount();
        drop(chan);
        let _ = std::fs::remove_dir(&dir);
        init.unwrap().expect("INIT");
        assert_eq!(presence, Ok(Presence::Ours));
        assert_eq!(mount.identity().covered(), covered);
        assert_eq!(root.id.dev, mount.identity().device());
        assert_ne!(root.id.dev, covered.dev);
        assert_eq!(outcome.unwrap(), UnmountOutcome::Unmounted);
    }
}
