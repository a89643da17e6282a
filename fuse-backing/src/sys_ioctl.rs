//! The four `/dev/fuse` ioctls as `rustix::ioctl` calls; the only `unsafe` of the crate.
//!
//! Opcodes come from `fuse-kernel-sys` (evaluated by clang from the vendored header); no
//! number is written here. Their direction and argument size are checked at compile time
//! against the argument types passed below, re-encoded by rustix's `_IOW`/`_IOR`/`_IO`.

use core::ffi::c_void;
use std::os::fd::BorrowedFd;

use fuse_kernel_sys as sys;
use rustix::ioctl::{Ioctl, IoctlOutput, NoArg, Opcode, Setter, ioctl, opcode};

/// The header's ioctl number as rustix's opcode type (`u32`, `c_ulong` or `c_int` depending
/// on the backend); `as` keeps the bit pattern, exactly what C does with the same number.
const fn to_opcode(number: u32) -> Opcode {
    number as Opcode
}

/// `FUSE_DEV_IOC_CLONE`: `_IOR(FUSE_DEV_IOC_MAGIC, 0, uint32_t)`.
pub(crate) const CLONE: Opcode = to_opcode(sys::FUSE_DEV_IOC_CLONE);
/// `FUSE_DEV_IOC_BACKING_OPEN`: `_IOW(FUSE_DEV_IOC_MAGIC, 1, struct fuse_backing_map)`.
pub(crate) const BACKING_OPEN: Opcode = to_opcode(sys::FUSE_DEV_IOC_BACKING_OPEN);
/// `FUSE_DEV_IOC_BACKING_CLOSE`: `_IOW(FUSE_DEV_IOC_MAGIC, 2, uint32_t)`.
pub(crate) const BACKING_CLOSE: Opcode = to_opcode(sys::FUSE_DEV_IOC_BACKING_CLOSE);
/// `FUSE_DEV_IOC_SYNC_INIT`: `_IO(FUSE_DEV_IOC_MAGIC, 3)`.
pub(crate) const SYNC_INIT: Opcode = to_opcode(sys::FUSE_DEV_IOC_SYNC_INIT);

/// The ioctl type ("magic") of `/dev/fuse`.
// Used only by the const assertions below, which Rust before 1.86 does not count as uses.
#[allow(dead_code)]
const MAGIC: u8 = sys::FUSE_DEV_IOC_MAGIC as u8;
const _: () = assert!(MAGIC as u32 == sys::FUSE_DEV_IOC_MAGIC);

/// The sequence number of an opcode: its low 8 bits on every Linux architecture.
#[allow(dead_code)] // as MAGIC
const fn nr(number: u32) -> u8 {
    number as u8
}

// Each number must carry the direction, the magic and the size of the argument that we pass
// (a peer got exactly this wrong: `_IOWR` for BACKING_OPEN, 16 bytes for BACKING_CLOSE).
const _: () = {
    assert!(
        BACKING_OPEN
            == opcode::write::<sys::fuse_backing_map>(MAGIC, nr(sys::FUSE_DEV_IOC_BACKING_OPEN))
    );
    assert!(BACKING_CLOSE == opcode::write::<u32>(MAGIC, nr(sys::FUSE_DEV_IOC_BACKING_CLOSE)));
    assert!(CLONE == opcode::read::<u32>(MAGIC, nr(sys::FUSE_DEV_IOC_CLONE)));
    assert!(SYNC_INIT == opcode::none(MAGIC, nr(sys::FUSE_DEV_IOC_SYNC_INIT)));
    // Four distinct requests.
    assert!(BACKING_OPEN != BACKING_CLOSE && BACKING_OPEN != CLONE && BACKING_OPEN != SYNC_INIT);
    assert!(BACKING_CLOSE != CLONE && BACKING_CLOSE != SYNC_INIT && CLONE != SYNC_INIT);
};

/// `FUSE_DEV_IOC_BACKING_OPEN`, whose result is the syscall's return value (the new id);
/// rustix's ready-made patterns all discard it, hence this small `Ioctl` impl.
struct BackingOpen {
    map: sys::fuse_backing_map,
}

// SAFETY:
// - the opcode is FUSE_DEV_IOC_BACKING_OPEN from the ABI header, `_IOW` with the size of
//   `struct fuse_backing_map` (checked above); the `/dev/fuse` handler copies exactly that
//   struct in from the pointer returned by `as_ptr`, which points at `self.map`, a live,
//   initialised `fuse_backing_map` that outlives the call (rustix holds `self` across it);
// - the kernel only reads the argument (copy_from_user), so IS_MUTATING is false;
// - the output is the syscall's return value only; the pointer is not read afterwards;
// - the FUSE_DEV_IOC_MAGIC ioctl type is registered to FUSE (Linux's
//   Documentation/userspace-api/ioctl/ioctl-number.rst), so another driver given this
//   number answers ENOTTY rather than interpreting the pointer.
unsafe impl Ioctl for BackingOpen {
    type Output = IoctlOutput;

    const IS_MUTATING: bool = false;

    fn opcode(&self) -> Opcode {
        BACKING_OPEN
    }

    fn as_ptr(&mut self) -> *mut c_void {
        (&raw mut self.map).cast()
    }

    unsafe fn output_from_ptr(
        out: IoctlOutput,
        _extract_output: *mut c_void,
    ) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(dev, FUSE_DEV_IOC_BACKING_OPEN, &map)`: the raw return value (the id on success).
pub(crate) fn backing_open(
    dev: BorrowedFd<'_>,
    map: sys::fuse_backing_map,
) -> rustix::io::Result<IoctlOutput> {
    // SAFETY: `BackingOpen` describes this ioctl exactly (see its `Ioctl` impl); the call
    // reads the map and returns an int, with no other effect on our memory.
    unsafe { ioctl(dev, BackingOpen { map }) }
}

/// `ioctl(dev, FUSE_DEV_IOC_BACKING_CLOSE, &id)`.
pub(crate) fn backing_close(dev: BorrowedFd<'_>, id: u32) -> rustix::io::Result<()> {
    // SAFETY: the opcode is FUSE_DEV_IOC_BACKING_CLOSE, `_IOW` of a `uint32_t` (checked
    // above), and `u32` is that argument type; the kernel reads it through the pointer to the
    // setter's own copy and writes nothing.
    let request = unsafe { Setter::<BACKING_CLOSE, u32>::new(id) };
    // SAFETY: as above: a read-only ioctl whose argument matches the opcode.
    unsafe { ioctl(dev, request) }
}

/// `ioctl(new_dev, FUSE_DEV_IOC_CLONE, &session_fd)`.
pub(crate) fn clone(new_dev: BorrowedFd<'_>, session_fd: u32) -> rustix::io::Result<()> {
    // SAFETY: the opcode is FUSE_DEV_IOC_CLONE, whose argument is a pointer to a `uint32_t`
    // holding an fd number (the size is checked above). Although the macro says `_IOR`, the
    // kernel only reads it (`get_user`), so a read-only setter of a `u32` is exact.
    let request = unsafe { Setter::<CLONE, u32>::new(session_fd) };
    // SAFETY: as above: the kernel reads a `u32` through the pointer and writes nothing.
    unsafe { ioctl(new_dev, request) }
}

/// `ioctl(dev, FUSE_DEV_IOC_SYNC_INIT)`.
pub(crate) fn sync_init(dev: BorrowedFd<'_>) -> rustix::io::Result<()> {
    // SAFETY: the opcode is FUSE_DEV_IOC_SYNC_INIT, `_IO` (checked above): no argument.
    let request = unsafe { NoArg::<SYNC_INIT>::new() };
    // SAFETY: as above: the kernel ignores the (null) argument and touches no user memory.
    unsafe { ioctl(dev, request) }
}
