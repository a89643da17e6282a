//! Typed, safe wrappers for the `/dev/fuse` ioctls: passthrough backing files, iomap backing
//! devices, session clones and synchronous INIT.
//!
//! | ioctl | here | Linux |
//! |---|---|---|
//! | `FUSE_DEV_IOC_BACKING_OPEN` | [`open`], [`open_with_flags`], [`Backing::open`] | 6.9 |
//! | `FUSE_DEV_IOC_BACKING_CLOSE` | [`close`], [`close_raw`], [`Backing`] (on drop), [`Backing::close`] | 6.9 |
//! | `FUSE_DEV_IOC_CLONE` | [`attach_to_session`], [`clone_device`] | 4.2 |
//! | `FUSE_DEV_IOC_SYNC_INIT` | [`sync_init`] | 6.18 |
//!
//! # Kinds
//!
//! A backing id stands either for a passthrough **file** ([`Passthrough`]) or, on kernels with
//! the unmerged fuse-iomap series, for an iomap **block device** ([`IomapDevice`]). They are
//! different types, [`BackingId<Passthrough>`] and [`BackingId<IomapDevice>`]: only the first
//! can go into an OPEN reply ([`BackingId::open_out`]), only the second is a device cookie.
//! The kind is written into the type field of `fuse_backing_map.flags`
//! (`FUSE_BACKING_TYPE_MASK`); other flag bits are checked against `FUSE_BACKING_FLAGS_ALL`
//! and refused with `EINVAL` before any system call. Ids are [`NonZeroU32`](core::num::NonZeroU32)
//! inside (the kernel allocates from 1), so `Option<BackingId<_>>` is 4 bytes; a kernel reply
//! of 0 is an `ERANGE` error, never an id.
//!
//! # Ownership
//!
//! [`open`] and [`close`] are thin functions over borrowed fds. [`Backing`] owns an id and
//! closes it when dropped. It holds the device fd (borrowed or owned), so it can never close
//! an id after its connection is gone, when the kernel might have given the same number to
//! someone else. [`Backing::into_raw`] and [`Backing::from_raw`] are for servers that manage
//! ids themselves.
//!
//! # Errors
//!
//! Every function returns [`Error`]: the kernel's errno as is ([`Error::errno`]; converts into
//! [`std::io::Error`] with `raw_os_error` set), the [`Operation`], and [`Error::is_unsupported`]
//! to tell "this kernel or this connection cannot do it" (`ENOTTY`; `EPERM` when passthrough
//! was not negotiated or `CAP_SYS_ADMIN` is missing; `EINVAL` for the iomap type on mainline;
//! `EOPNOTSUPP`) from real failures (`EBADF`, `EISDIR`, `ELOOP`, `ENOENT`...). Each function
//! lists its errno values.
//!
//! # The passthrough flow
//!
//! 1. **Negotiate**: answer INIT with `FUSE_PASSTHROUGH` (in `flags2`, with `FUSE_INIT_EXT`)
//!    where the kernel offers it, a `max_stack_depth` of 1 or 2, and without
//!    `FUSE_WRITEBACK_CACHE`. The server needs `CAP_SYS_ADMIN`.
//! 2. **Open backing, once per inode**: at the first OPEN (or CREATE) of an inode, open the
//!    real file and register it; every later OPEN of the same inode answers with the same id.
//!    The kernel allows **one backing file per inode** at a time: an OPEN reply naming a
//!    second, different id while the inode is open in passthrough mode makes that `open(2)`
//!    fail with `EIO`. So ids live per inode, not per open: [`PassthroughSlot`] is that
//!    per-inode slot (the workspace's `passthroughfs` example keeps one in each inode).
//! 3. **Reply OPEN** with `FOPEN_PASSTHROUGH` and the id: [`BackingId::open_out`]. The kernel
//!    now serves read, write, splice and mmap of that open file from the backing file; the
//!    server sees no READ or WRITE for it.
//! 4. **Close** the id when the kernel forgets the inode (FORGET down to 0), not at RELEASE:
//!    another open of the inode may be answered with it at any time until then. Files still
//!    open keep working after the close (the kernel holds the backing file).
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::fs::File;
//! use std::io::{self, IoSlice, Read, Write};
//! use std::os::fd::AsFd;
//!
//! use fuse_backing::{Errno, PassthroughSlot};
//! use fuse_kernel_sys as sys;
//! use sys::zerocopy::{FromBytes, Immutable, IntoBytes};
//!
//! /// Step 1: the INIT reply, with passthrough where the kernel offers it.
//! fn init_reply(init_in: &sys::fuse_init_in) -> sys::fuse_init_out {
//!     // flags2 counts only when the kernel sets FUSE_INIT_EXT (7.36+).
//!     let ext = init_in.flags & sys::FUSE_INIT_EXT != 0;
//!     let offered = u64::from(init_in.flags) | if ext { u64::from(init_in.flags2) << 32 } else { 0 };
//!     let wanted = u64::from(sys::FUSE_INIT_EXT | sys::FUSE_ASYNC_READ) | sys::FUSE_PASSTHROUGH;
//!     let accepted = offered & wanted;
//!     sys::fuse_init_out {
//!         major: sys::FUSE_KERNEL_VERSION,
//!         minor: sys::FUSE_KERNEL_MINOR_VERSION.min(init_in.minor),
//!         max_readahead: init_in.max_readahead,
//!         flags: accepted as u32,
//!         flags2: (accepted >> 32) as u32,
//!         max_write: 128 * 1024,
//!         max_stack_depth: 1,
//!         ..Default::default()
//!     }
//! }
//!
//! /// Serves one file system whose files are backed by `backing_path(nodeid)`.
//! /// `dev` is the `/dev/fuse` fd given to mount(2).
//! fn serve(dev: &File, backing_path: &dyn Fn(u64) -> String) -> io::Result<()> {
//!     // Inode -> its backing id, shared by all opens of the inode and closed when the kernel
//!     // forgets the inode (the guard borrows `dev`).
//!     let mut inodes: HashMap<u64, PassthroughSlot<&File>> = HashMap::new();
//!     let mut next_fh = 1;
//!     let mut buf = vec![0u8; (1 << 20) + 4096];
//!     loop {
//!         let n = match (&*dev).read(&mut buf) {
//!             Ok(n) => n,
//!             // ENODEV: the file system was unmounted.
//!             Err(e) if e.raw_os_error() == Some(Errno::NODEV.raw_os_error()) => return Ok(()),
//!             Err(e) => return Err(e),
//!         };
//!         let header: sys::fuse_in_header = read_struct(&buf[..n]);
//!         let body = &buf[size_of::<sys::fuse_in_header>()..n];
//!         match header.opcode {
//!             sys::FUSE_INIT => {
//!                 let init_in: sys::fuse_init_in = read_struct(body);
//!                 send(dev, header.unique, 0, bytes_of(&init_reply(&init_in)))?;
//!             }
//!             sys::FUSE_OPEN => {
//!                 // Step 2: the inode's backing id, registered at its first open.
//!                 let file = File::open(backing_path(header.nodeid))?;
//!                 let fh = next_fh;
//!                 next_fh += 1;
//!                 let slot = inodes.entry(header.nodeid).or_default();
//!                 match slot.get_or_open(&dev, file.as_fd()) {
//!                     Ok(id) => {
//!                         // Step 3: FOPEN_PASSTHROUGH with the id.
//!                         send(dev, header.unique, 0, bytes_of(&id.open_out(fh, 0)))?;
//!                     }
//!                     // Passthrough not negotiated, or an old kernel: serve READ ourselves.
//!                     Err(e) if e.is_unsupported() => {
//!                         let out = sys::fuse_open_out { fh, ..Default::default() };
//!                         send(dev, header.unique, 0, bytes_of(&out))?;
//!                     }
//!                     Err(e) => send(dev, header.unique, e.raw_os_error(), &[])?,
//!                 }
//!             }
//!             sys::FUSE_RELEASE => send(dev, header.unique, 0, &[])?,
//!             sys::FUSE_FORGET => {
//!                 // Step 4: the kernel forgot the inode (a real server counts lookups and
//!                 // forgets at 0); dropping its slot closes the id. FORGET has no reply.
//!                 inodes.remove(&header.nodeid);
//!             }
//!             // LOOKUP, GETATTR and the rest of a real server go here.
//!             _ => send(dev, header.unique, Errno::NOSYS.raw_os_error(), &[])?,
//!         }
//!     }
//! }
//!
//! /// Writes a reply: `fuse_out_header` then `payload`; `errno` is 0 or positive.
//! fn send(dev: &File, unique: u64, errno: i32, payload: &[u8]) -> io::Result<()> {
//!     let len = size_of::<sys::fuse_out_header>() + payload.len();
//!     let header = sys::fuse_out_header { len: len as u32, error: -errno, unique };
//!     (&*dev).write_vectored(&[IoSlice::new(bytes_of(&header)), IoSlice::new(payload)])?;
//!     Ok(())
//! }
//!
//! /// Reads a fuse ABI struct from the start of `bytes`, zeroes where `bytes` is short (older
//! /// kernels send a shorter `fuse_init_in`). Safe code: zerocopy's `FromBytes` proves at
//! /// compile time that every bit pattern is a valid `T`.
//! fn read_struct<T: FromBytes + IntoBytes + Default>(bytes: &[u8]) -> T {
//!     let mut value = T::default();
//!     let n = bytes.len().min(size_of::<T>());
//!     value.as_mut_bytes()[..n].copy_from_slice(&bytes[..n]);
//!     value
//! }
//!
//! /// The bytes of a fuse ABI struct (`IntoBytes` proves it has no padding).
//! fn bytes_of<T: IntoBytes + Immutable>(value: &T) -> &[u8] {
//!     value.as_bytes()
//! }
//! # let _ = serve;
//! ```
//!
//! `read_struct` accepts only types for which any bytes are a valid value, so it cannot be
//! misused to make, say, a `bool` out of the byte 2:
//!
//! ```compile_fail
//! use fuse_kernel_sys::zerocopy::{FromBytes, IntoBytes};
//! fn read_struct<T: FromBytes + IntoBytes + Default>(bytes: &[u8]) -> T {
//!     let mut value = T::default();
//!     let n = bytes.len().min(size_of::<T>());
//!     value.as_mut_bytes()[..n].copy_from_slice(&bytes[..n]);
//!     value
//! }
//! let b: bool = read_struct(&[2]); // bool is not FromBytes
//! ```
//!
//! # Kernel versions
//!
//! Passthrough needs Linux 6.9 (protocol 7.40), CLONE 4.2, SYNC_INIT 6.18 (no protocol bump;
//! older kernels answer `ENOTTY`). The iomap backing type exists only in the unmerged
//! fuse-iomap series; mainline kernels refuse it (`EINVAL`, or `EPERM` when passthrough was
//! not negotiated either), which [`Error::is_unsupported`] reports as unsupported.
//!
//! The ioctl numbers come from `fuse-kernel-sys` (evaluated from the vendored ABI header);
//! their direction and argument size are checked at compile time against the argument types
//! this crate passes.

#![deny(missing_docs)]

// The two modules with unsafe code (the workspace denies it elsewhere): the ioctl calls, and
// the guard's destructuring in `Backing::into_parts`.
#[allow(unsafe_code)]
mod backing;
mod device;
mod error;
mod id;
mod slot;
#[allow(unsafe_code)]
mod sys_ioctl;

pub use backing::{Backing, close, close_raw, open, open_with_flags};
pub use device::{attach_to_session, clone_device, sync_init};
pub use error::{Cause, Error, Operation};
pub use id::{BackingId, BackingKind, BackingType, IomapDevice, Passthrough};
pub use rustix::io::Errno;
pub use slot::PassthroughSlot;
