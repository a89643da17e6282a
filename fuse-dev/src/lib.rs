//! The `/dev/fuse` transport of a FUSE server: open the device, mount it (with `mount(2)` as
//! root, through `fusermount3` without), know what the mount IS and unmount only that, reach
//! the connection's fusectl files, and move requests and replies over the device.
//!
//! | what | here | syscalls | Linux |
//! |---|---|---|---|
//! | open `/dev/fuse` | [`Device::open`] | `open` | 2.6.14 |
//! | one fd per worker | [`Device::try_clone`] (`FUSE_DEV_IOC_CLONE`, from `fuse-backing`) | `open`, `ioctl` | 4.2 |
//! | mount as root, onto the mount point held by fd | [`Mount::new`] with [`MountOptions`] | `openat2`, `statx` ×3, `fsopen`, `fsconfig`, `fsmount`, `move_mount` (or `mount` on `/proc/self/fd/N`) | 5.2 (new mount API), else 2.6.14; `openat2` 5.6; mount ids 5.8 |
//! | mount without root | [`Mount::fusermount`] (`fusermount3`, fd passed over a socket) | `socketpair`, fork+exec, `recvmsg` | any, with fuse3 installed |
//! | unmount only ours | [`Mount::unmount`], and on drop | `statx` ×2, `umount2` or `fusermount3 -u -z` | |
//! | checks before mounting | [`is_mount_point`], [`check_overlap`] | `statx` | 5.8 for mount ids |
//! | fusectl, readahead | [`Connection`] | sysfs reads/writes | 2.6.23; writes 4.19 |
//! | read a request | [`Channel::receive`] (buffer size checked) | `read` | 2.6.14 |
//! | reply, notify | [`Channel::reply`], [`Channel::reply_error`], [`Channel::notify`] | one `writev`/`write` | 2.6.14 |
//! | INIT | [`Channel::handshake`], or [`Channel::read_init`] + [`Channel::reply_init`] (io_uring order) | `read`, `writev` | 7.36+ served (5.17) |
//!
//! # Serving a connection
//!
//! A server does not need to write its serve loop on these pieces: the `fuse-session` crate
//! serves a connection in one call (INIT in the order FUSE-over-io_uring needs, the choice
//! of transport, worker and queue threads, INTERRUPT, deferred replies, notifications,
//! shutdown), around a handler; its crate docs hold a complete hello-world server. This
//! crate is for servers and libraries that drive `/dev/fuse` themselves. The INIT order they
//! must follow is the one of [`Channel::read_init`].
//!
//! # Mounts are identified by what they are
//!
//! Right after mounting, [`Mount`] records a [`MountIdentity`]: the device of the mount root
//! (`0:N`, N being the fusectl connection number), the mount id (`statx` `STATX_MNT_ID_UNIQUE`
//! on 6.8+, `STATX_MNT_ID` on 5.8+, else the device alone) and the parent directory's
//! device and inode. Path strings are never compared with `/proc/self/mountinfo`: a trailing
//! slash, a relative path, a symlink or a name with a space cannot fool the checks. Before
//! mounting, a path that already is a mount point is refused (its device or mount id differs
//! from its parent's); at unmount time, the mount point must still resolve to exactly our
//! mount, or nothing is unmounted and [`UnmountOutcome`] says what sits there instead. Every
//! `statx` uses `AT_STATX_DONT_SYNC`, so no check sends a request to a FUSE server (ours
//! may not have answered INIT yet, and someone else's may hang).
//!
//! # The mount point is held by fd
//!
//! [`Mount::new`] and [`Mount::fusermount`] open the mount point once, without following any
//! symlink (a symlink on the path is [`MountError::Symlink`]), run every check on that fd
//! (directory, not a mount point, empty unless [`MountOptions::allow_nonempty`]) and, as
//! root, attach the new mount to that same fd (`move_mount`). Nobody who can rename entries
//! on the way can swap another directory in between the checks and the mount.
//!
//! # Safety
//!
//! No `unsafe` (`#![deny(unsafe_code)]`): the syscalls go through `rustix`.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod channel;
mod device;
mod error;
mod fusectl;
mod fusermount;
mod identity;
mod mount;
mod options;
mod point;

pub use channel::{Channel, InitRequest, MAX_PARTS, MIN_READ_BUFFER};
pub use device::{DEVICE_PATH, Device};
pub use error::{ChannelError, HandshakeError, MountError};
pub use fusectl::{Connection, FUSECTL_DIR};
pub use fusermount::{FUSERMOUNT, find_fusermount};
pub use identity::{
    DeviceNumber, FileId, MountId, MountIdentity, Overlap, Presence, check_overlap, is_mount_point,
};
pub use mount::{Mount, UnmountOutcome};
pub use options::MountOptions;

pub use fuse_wire;
pub use rustix::io::Errno;
