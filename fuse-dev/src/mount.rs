//! [`Mount`]: a FUSE mount made by this process, identified by what it is, and an unmount
//! guard that only ever unmounts that mount.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Child;

use rustix::mount::UnmountFlags;

use crate::device::Device;
use crate::error::MountError;
use crate::fusectl::Connection;
use crate::fusermount;
use crate::identity::{self, MountIdentity, Presence};
use crate::options::MountOptions;

/// How the mount was made, and so how it is unmounted.
#[derive(Debug)]
enum Method {
    /// `mount(2)`; unmounted with `umount2(MNT_DETACH | UMOUNT_NOFOLLOW)`.
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
/// Linux: `mount(2)` of FUSE since 2.6.14; the mount id needs 5.8 (`STATX_MNT_ID`; unique
/// ids 6.8), before which the device number alone identifies the mount.
#[derive(Debug)]
pub struct Mount {
    identity: MountIdentity,
    method: Method,
    mounted: bool,
}

impl Mount {
    /// Mounts the connection of `dev` (a fresh, unmounted `/dev/fuse` fd) on `mount_point`
    /// with `mount(2)`. Needs `CAP_SYS_ADMIN` in the mount's user namespace (root).
    ///
    /// Before the syscall: options are validated, the path is canonicalized (symlinks,
    /// relative paths and trailing slashes resolved) and refused when it is not a directory
    /// (for a directory `rootmode`) or already a mount point (device and mount id compared
    /// with its parent's). After it, the identity of the new mount is recorded with
    /// `statx(AT_STATX_DONT_SYNC)`, which sends nothing to the server: the caller answers
    /// INIT afterwards (the kernel queues it on `dev` during `mount(2)`).
    ///
    /// Costs: `canonicalize`, four `statx`, one `mount`; a few small allocations (paths, the
    /// data string).
    ///
    /// # Errors
    ///
    /// - [`MountError::InvalidOption`] (`EINVAL`): see [`MountOptions::validate`];
    /// - [`MountError::Path`]: the mount point cannot be resolved (`ENOENT`, `EACCES`...);
    /// - [`MountError::NotADirectory`], [`MountError::AlreadyMounted`];
    /// - [`MountError::Mount`]: `EPERM` without `CAP_SYS_ADMIN`, `EINVAL` for an option the
    ///   kernel refuses or a `dev` that is not a fresh `/dev/fuse` fd, `ENODEV` without the
    ///   fuse module.
    pub fn new(
        dev: &Device,
        mount_point: &Path,
        options: &MountOptions,
    ) -> Result<Mount, MountError> {
        let data = std::ffi::CString::new(options.kernel_data(dev.as_raw_fd())?).map_err(|_| {
            MountError::InvalidOption {
                option: "data",
                reason: "contains a NUL",
            }
        })?;
        let point = identity::check_mount_point(mount_point, is_dir_mode(options))?;
        rustix::mount::mount(
            options.source(),
            &point.path,
            options.fs_type().as_str(),
            options.mount_flags(),
            data.as_c_str(),
        )
        .map_err(|errno| MountError::Mount {
            path: point.path.clone(),
            errno,
        })?;
        Mount::recorded(&point, Method::Syscall, || {
            // We cannot tell what we mounted: detach what sits there now, which is ours
            // unless someone stacked a mount in the microseconds since mount(2).
            let _ =
                rustix::mount::unmount(&point.path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW);
        })
    }

    /// The mount just made on `point` by `method`, with its identity recorded. When that
    /// fails, `undo` takes the mount away again and the error is returned; until the identity
    /// is known, the value already owns the mount (a panic in between unmounts it).
    fn recorded(
        point: &identity::MountPointFacts,
        method: Method,
        undo: impl FnOnce(),
    ) -> Result<Mount, MountError> {
        let mut mount = Mount {
            identity: MountIdentity {
                mount_point: point.path.clone(),
                device: identity::DeviceNumber { major: 0, minor: 0 },
                mount_id: identity::MountId::Unknown,
                parent: point.parent,
            },
            method,
            mounted: true,
        };
        match MountIdentity::record(point) {
            Ok(id) => mount.identity = id,
            Err(e) => {
                undo();
                mount.mounted = false;
                return Err(e);
            }
        }
        Ok(mount)
    }

    /// Mounts without root through `fusermount3` (found by [`find_fusermount`]), which opens
    /// `/dev/fuse`, mounts it and passes the fd back; returns that fd as a [`Device`] and the
    /// mount. The kernel has queued INIT on the device: answer it next.
    ///
    /// `options` become `fusermount3 -o` ([`MountOptions::fusermount_options`]); with
    /// [`MountOptions::auto_unmount`], `fusermount3` stays alive and unmounts the file system
    /// when this process dies. The same checks as [`Mount::new`] run before (canonical
    /// path, not a mount point), and the identity is recorded after.
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
        let point = identity::check_mount_point(mount_point, is_dir_mode(options))?;
        let mounted = fusermount::mount(program, &list, &point.path, options.wants_auto_unmount())?;
        let method = Method::Fusermount {
            program: program.to_owned(),
            auto_unmount: mounted.auto_unmount,
        };
        let mount = Mount::recorded(&point, method, || {
            let _ = fusermount::unmount(program, &point.path);
        })?;
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

    /// The canonical mount point.
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
    /// Made with `mount(2)`: `umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW)` (needs
    /// `CAP_SYS_ADMIN`). Through `fusermount3`: `fusermount3 -u -z -- path`, then, with
    /// `auto_unmount`, the socket is closed and that `fusermount3` reaped.
    ///
    /// A short window remains between the check and the unmount syscall, in which a mount
    /// stacked by another root process would be the one detached; the kernel has no
    /// "unmount this mount id" call to close it.
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
            UnmountOutcome::Unmounted | UnmountOutcome::Gone => self.mounted = false,
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
