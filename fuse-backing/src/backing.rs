//! `FUSE_DEV_IOC_BACKING_OPEN` / `FUSE_DEV_IOC_BACKING_CLOSE`: thin functions and an owning
//! guard.

use std::fmt;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::ptr;

use fuse_kernel_sys as sys;
use rustix::ioctl::IoctlOutput;

use crate::error::{Error, Operation};
use crate::id::{BackingId, BackingKind};
use crate::sys_ioctl;

/// Builds the `fuse_backing_map` for a backing of kind `K` with the caller's extra `flags`,
/// or fails with `EINVAL` ([`Cause::InvalidFlags`](crate::Cause::InvalidFlags)) if `flags`
/// has bits outside `FUSE_BACKING_FLAGS_ALL` or in the type field (`FUSE_BACKING_TYPE_MASK`),
/// which belongs to `K`.
fn backing_map<K: BackingKind>(
    file: BorrowedFd<'_>,
    flags: u32,
) -> Result<sys::fuse_backing_map, Error> {
    if flags & !sys::FUSE_BACKING_FLAGS_ALL != 0 || flags & sys::FUSE_BACKING_TYPE_MASK != 0 {
        return Err(Error::invalid_flags(Operation::BackingOpen(K::TYPE)));
    }
    Ok(sys::fuse_backing_map {
        fd: file.as_raw_fd(),
        flags: K::TYPE.flags() | flags,
        padding: 0,
    })
}

/// Turns BACKING_OPEN's return value into an id: anything outside `1..=i32::MAX` (the kernel
/// never returns such a value) is `ERANGE`, and no id was allocated to leak.
fn id_from_return<K: BackingKind>(ret: IoctlOutput) -> Result<BackingId<K>, Error> {
    u32::try_from(ret)
        .ok()
        .and_then(BackingId::new)
        .ok_or(Error::bad_reply(Operation::BackingOpen(K::TYPE)))
}

/// Registers `file` as a backing object of kind `K` on the connection of `dev` and returns
/// its id: `ioctl(dev, FUSE_DEV_IOC_BACKING_OPEN, &fuse_backing_map { fd, flags: K::TYPE })`.
///
/// The kernel takes its own reference to the file (and the caller's credentials), so `file`
/// may be closed afterwards; the id stays valid until [`close`]d or until the connection ends.
/// The id is not closed automatically: use [`Backing`] for that.
///
/// - [`Passthrough`](crate::Passthrough): `file` is a regular file (an `O_PATH` fd is
///   accepted). Put the id into the OPEN reply with
///   [`BackingId::open_out`](crate::BackingId::open_out). Needs `FUSE_PASSTHROUGH` accepted in
///   INIT with a `max_stack_depth` of 1 or 2 and without `FUSE_WRITEBACK_CACHE`, and
///   `CAP_SYS_ADMIN` in the initial user namespace. Linux 6.9 (protocol 7.40).
/// - [`IomapDevice`](crate::IomapDevice): `file` is a block device. Only kernels with the
///   unmerged fuse-iomap series know this type; they need `FUSE_IOMAP` accepted in INIT.
///
/// # Errors
///
/// The kernel's errno, in the order the kernel checks (6.18):
/// - `EPERM`: `dev` is a `/dev/fuse` fd that is not mounted yet; passthrough was not
///   negotiated; the caller lacks `CAP_SYS_ADMIN`; for iomap, iomap was not negotiated.
///   *Unsupported.*
/// - `EOPNOTSUPP`: a kernel built without `CONFIG_FUSE_PASSTHROUGH`, or a backing type the
///   kernel does not know (iomap kernels). *Unsupported.*
/// - `EINVAL` for [`IomapDevice`](crate::IomapDevice) on mainline kernels, which refuse any
///   flag bit. *Unsupported.*
/// - `EBADF`: `file` is not an open fd.
/// - `EISDIR`: `file` is a directory.
/// - `EINVAL` (passthrough): `file` is neither a regular file nor a directory (for example
///   `/dev/null`).
/// - `ELOOP`: `file` lives on a stacked file system at least `max_stack_depth` deep (for
///   example on this FUSE mount itself with `max_stack_depth` 1).
/// - `ENODEV` (iomap kernels): `file` is not a block device; `ENOSPC`: 1024 devices in use.
/// - `ENOTTY`: `dev` is not a `/dev/fuse` fd, or the kernel predates 6.9. *Unsupported.*
/// - `ENOMEM`.
///
/// Those marked *unsupported* answer true to [`Error::is_unsupported`]. Without any system
/// call, `EINVAL` with [`Cause::InvalidFlags`](crate::Cause::InvalidFlags) is returned by
/// [`open_with_flags`] for bad flags; a kernel reply of 0 is `ERANGE`
/// ([`Cause::BadReply`](crate::Cause::BadReply)).
#[doc(alias = "FUSE_DEV_IOC_BACKING_OPEN")]
#[doc(alias = "fuse_passthrough_open")]
#[doc(alias = "fuse_lowlevel_iomap_device_add")]
pub fn open<K: BackingKind>(
    dev: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
) -> Result<BackingId<K>, Error> {
    open_with_flags(dev, file, 0)
}

/// [`open`] with extra flag bits for `fuse_backing_map.flags`, outside the type field.
///
/// `flags` must not touch the type field (`FUSE_BACKING_TYPE_MASK`, set from `K`) and must
/// stay inside `FUSE_BACKING_FLAGS_ALL`; otherwise the call fails with `EINVAL`
/// ([`Cause::InvalidFlags`](crate::Cause::InvalidFlags)) **before** any system call. No such
/// flag is defined yet (the ABI's `FUSE_BACKING_FLAGS_ALL` equals the type mask), so today
/// only 0 passes; the check follows the header when it defines some.
///
/// # Errors
///
/// As [`open`], plus the flag check above.
#[doc(alias = "FUSE_DEV_IOC_BACKING_OPEN")]
#[doc(alias = "FUSE_BACKING_FLAGS_ALL")]
pub fn open_with_flags<K: BackingKind>(
    dev: BorrowedFd<'_>,
    file: BorrowedFd<'_>,
    flags: u32,
) -> Result<BackingId<K>, Error> {
    let map = backing_map::<K>(file, flags)?;
    let ret = sys_ioctl::backing_open(dev, map)
        .map_err(|errno| Error::kernel(Operation::BackingOpen(K::TYPE), errno))?;
    id_from_return(ret)
}

/// Unregisters backing id `id` on the connection of `dev`:
/// `ioctl(dev, FUSE_DEV_IOC_BACKING_CLOSE, &id)`.
///
/// Files already opened with this id keep working (they hold their own reference to the
/// backing file); new OPEN replies must not use it any more. The kernel may hand the number
/// out again later.
///
/// # Errors
///
/// - `ENOENT`: no backing id with this number on this connection (already closed, or never
///   allocated here).
/// - `EBUSY` (iomap kernels): iomap inodes still use this device.
/// - `EPERM`: `dev` not mounted yet, passthrough not negotiated, or no `CAP_SYS_ADMIN`.
///   *Unsupported.*
/// - `EOPNOTSUPP`: a kernel without `CONFIG_FUSE_PASSTHROUGH`. *Unsupported.*
/// - `ENOTTY`: `dev` is not a `/dev/fuse` fd, or the kernel predates 6.9. *Unsupported.*
///
/// Linux 6.9 (protocol 7.40).
#[doc(alias = "FUSE_DEV_IOC_BACKING_CLOSE")]
#[doc(alias = "fuse_passthrough_close")]
#[doc(alias = "fuse_lowlevel_iomap_device_remove")]
pub fn close<K: BackingKind>(dev: BorrowedFd<'_>, id: BackingId<K>) -> Result<(), Error> {
    close_raw(dev, id.get())
}

/// [`close`] for a raw id number, passed to the kernel unchecked: for servers that keep ids
/// in their own form.
///
/// # Errors
///
/// As [`close`], and `EINVAL` for numbers the kernel never allocates: 0 and anything above
/// `i32::MAX` (the kernel reads the id as a C `int` and rejects `id <= 0`).
#[doc(alias = "FUSE_DEV_IOC_BACKING_CLOSE")]
pub fn close_raw(dev: BorrowedFd<'_>, id: u32) -> Result<(), Error> {
    sys_ioctl::backing_close(dev, id).map_err(|errno| Error::kernel(Operation::BackingClose, errno))
}

/// An owned backing id of kind `K` on the connection of the `/dev/fuse` fd `D`: closed
/// (`FUSE_DEV_IOC_BACKING_CLOSE`) when dropped.
///
/// `D` is anything that gives the device fd: `BorrowedFd<'dev>` or `&'dev OwnedFd` (the guard
/// then cannot outlive the fd), or an owned handle such as `Arc<OwnedFd>` or a clone of the
/// session fd (see [`clone_device`](crate::clone_device)) that keeps it open. Either way the
/// fd, and with it the connection, is alive for as long as the guard is, so a guard never
/// closes an id on a connection that is gone, or a number the kernel has recycled for another
/// connection. (An fd stays attached to one connection for its whole life; `D` must give the
/// same fd every time, as every `AsFd` type of std does.)
///
/// Dropping closes the id and ignores errors (a drop cannot report them, and never panics);
/// [`Backing::close`] reports them. [`Backing::into_raw`] gives the id up without closing it;
/// [`Backing::from_raw`] takes ownership of one.
///
/// ```no_run
/// use std::fs::File;
/// use std::os::fd::{AsFd, OwnedFd};
/// use fuse_backing::{Backing, Passthrough};
///
/// fn register<'d>(
///     dev: &'d OwnedFd,
///     path: &str,
/// ) -> Result<Backing<Passthrough, &'d OwnedFd>, Box<dyn std::error::Error>> {
///     let file = File::open(path)?;
///     let backing = Backing::<Passthrough, _>::open(dev, file.as_fd())?;
///     // `file` may be closed now: the kernel holds its own reference.
///     Ok(backing)
/// }
/// ```
#[doc(alias = "fuse_backing")]
pub struct Backing<K: BackingKind, D: AsFd> {
    dev: D,
    id: BackingId<K>,
}

impl<K: BackingKind, D: AsFd> Backing<K, D> {
    /// Registers `file` on the connection of `dev` ([`open`]) and owns the new id.
    ///
    /// # Errors
    ///
    /// As [`open`].
    #[doc(alias = "FUSE_DEV_IOC_BACKING_OPEN")]
    pub fn open(dev: D, file: BorrowedFd<'_>) -> Result<Self, Error> {
        Self::open_with_flags(dev, file, 0)
    }

    /// Registers `file` with extra flags ([`open_with_flags`]) and owns the new id.
    ///
    /// # Errors
    ///
    /// As [`open_with_flags`].
    #[doc(alias = "FUSE_DEV_IOC_BACKING_OPEN")]
    pub fn open_with_flags(dev: D, file: BorrowedFd<'_>, flags: u32) -> Result<Self, Error> {
        let id = open_with_flags::<K>(dev.as_fd(), file, flags)?;
        Ok(Backing { dev, id })
    }

    /// Takes ownership of `id`, which must have been allocated on the connection of `dev` and
    /// must not be owned by anything else (it will be closed when the guard drops).
    ///
    /// Getting this wrong cannot cause memory unsafety, only a wrong close (`ENOENT`, which
    /// the drop ignores, or closing an id someone else still hands out).
    pub fn from_raw(dev: D, id: BackingId<K>) -> Self {
        Backing { dev, id }
    }

    /// Gives the id up without closing it; the caller now owns it (close it with [`close`]).
    pub fn into_raw(self) -> BackingId<K> {
        self.into_parts().1
    }

    /// Gives the device handle and the id up without closing the id.
    pub fn into_parts(self) -> (D, BackingId<K>) {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never dropped and not used after this read, so `dev` is moved out
        // exactly once (the guard's Drop does not run).
        let dev = unsafe { ptr::read(&this.dev) };
        (dev, this.id)
    }

    /// The id.
    pub fn id(&self) -> BackingId<K> {
        self.id
    }

    /// The `/dev/fuse` fd the id belongs to.
    pub fn device(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }

    /// Closes the id now and reports the kernel's answer (see [`close`]); the id is closed
    /// at most once whatever the outcome.
    ///
    /// # Errors
    ///
    /// As [`close`].
    #[doc(alias = "FUSE_DEV_IOC_BACKING_CLOSE")]
    pub fn close(self) -> Result<(), Error> {
        let (dev, id) = self.into_parts();
        close(dev.as_fd(), id)
    }
}

impl<K: BackingKind, D: AsFd> Drop for Backing<K, D> {
    fn drop(&mut self) {
        // Errors cannot be reported from drop; `Backing::close` reports them.
        let _ = close(self.dev.as_fd(), self.id);
    }
}

impl<K: BackingKind, D: AsFd> fmt::Debug for Backing<K, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backing")
            .field("id", &self.id)
            .field("dev", &self.dev.as_fd().as_raw_fd())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Cause, IomapDevice, Passthrough};
    use rustix::io::Errno;
    use std::os::fd::AsFd;

    #[test]
    fn backing_map_puts_the_kind_into_the_type_field() {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        let map = backing_map::<Passthrough>(fd, 0).unwrap();
        assert_eq!(
            map,
            sys::fuse_backing_map {
                fd: 0,
                flags: 0,
                padding: 0
            }
        );
        let map = backing_map::<IomapDevice>(fd, 0).unwrap();
        assert_eq!(map.flags, 1);
        assert_eq!(map.padding, 0);
    }

    #[test]
    fn backing_map_rejects_type_bits_and_unknown_bits() {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd();
        for flags in [
            1,
            1 << 7,
            sys::FUSE_BACKING_TYPE_MASK,
            1 << 8,
            1 << 31,
            u32::MAX,
        ] {
            let e = backing_map::<Passthrough>(fd, flags).unwrap_err();
            assert_eq!(e.errno(), Errno::INVAL, "flags {flags:#x}");
            assert_eq!(e.cause(), Cause::InvalidFlags);
            let e = backing_map::<IomapDevice>(fd, flags).unwrap_err();
            assert_eq!(e.errno(), Errno::INVAL, "flags {flags:#x}");
        }
    }

    #[test]
    fn a_return_of_zero_or_less_is_erange_not_an_id() {
        for ret in [0, -1, i32::MIN] {
            let e = id_from_return::<Passthrough>(ret).unwrap_err();
            assert_eq!(e.errno(), Errno::RANGE);
            assert_eq!(e.cause(), Cause::BadReply);
            assert!(!e.is_unsupported());
        }
        assert_eq!(id_from_return::<Passthrough>(1).unwrap().get(), 1);
        assert_eq!(
            id_from_return::<IomapDevice>(i32::MAX).unwrap().get(),
            2_147_483_647
        );
    }
}
