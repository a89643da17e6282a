//! The FUSE wire protocol, without I/O: what a FUSE server reads and writes, typed.
//!
//! - [`Request::parse`] / [`Request::parse_split`]: one request, decoded once into an
//!   [`Operation`] whichever transport carried it (`/dev/fuse` gives one contiguous buffer;
//!   FUSE-over-io_uring splits the fixed argument, `op_in`, from the payload). Fixed argument
//!   structs are copied by value, names and data borrow the buffer; malformed bytes are a
//!   [`DecodeError`], never a panic.
//! - [`reply`]: reply payloads written into the caller's buffer (an io_uring payload slot or a
//!   `/dev/fuse` write buffer) without allocation; [`out_error`] keeps errno values in the
//!   range the kernel accepts; [`OpenOut`] takes only a passthrough backing id.
//! - [`DirentBuf`] / [`DirentPlusBuf`]: READDIR and READDIRPLUS records, 8-byte aligned,
//!   stopping when the buffer is full and telling where to resume.
//! - [`negotiate`]: INIT in one place, from the kernel's `fuse_init_in` and an
//!   [`InitConfig`] to the reply, and from the result the `/dev/fuse` read buffer size and
//!   the io_uring payload size ([`Negotiated::read_buffer_size`],
//!   [`Negotiated::uring_payload_size`]: one rule for both).
//! - [`init_flags`]: every INIT flag as a `u64`, the one type of every flag word of the INIT
//!   API; [`InitConfig`]'s documentation tells which flag turns on which request or behaviour
//!   (READDIRPLUS, for one, comes only when asked for).
//! - typed flag words of decoded requests, so that a handler writes no constant by hand:
//!   [`RenameFlags`], [`XattrFlags`], [`FallocateFlags`] and [`FileType`] (rustix's types,
//!   the kernel's values), [`SetattrValid`] (`FATTR_*`), from accessors such as
//!   [`Operation::rename_flags`], and [`dirent_type`] for READDIR records.
//! - [`notify`]: the server-to-kernel notifications.
//!
//! Byte views of the ABI structs come from `fuse-kernel-sys` (zerocopy derives, proven at
//! compile time); this crate has no `unsafe` code.
//!
//! # Protocol versions
//!
//! Requests of protocol 7.36 (Linux 5.17) up to 7.46 (Linux 7.3, the ABI of
//! `fuse-kernel-sys`) are decoded; INIT from an older kernel is refused with `EPROTO`
//! ([`MIN_KERNEL_MINOR`]). A newer kernel is answered with our minor
//! ([`sys::FUSE_KERNEL_MINOR_VERSION`]), and speaks it.
//!
//! # A server's request loop
//!
//! ```
//! use std::time::Duration;
//! use fuse_wire::{Errno, Operation, Request, reply, sys};
//!
//! /// Answers one request into `out`; returns the payload length or the errno.
//! fn answer(buf: &[u8], out: &mut [u8]) -> Option<(u64, Result<usize, Errno>)> {
//!     let request = match Request::parse(buf, fuse_wire::Protocol::default()) {
//!         Ok(request) => request,
//!         // Answer what can be answered; a request without a header cannot be.
//!         Err(e) => return (e.unique() != 0).then(|| (e.unique(), Err(e.errno()))),
//!     };
//!     if request.operation().is_no_reply() {
//!         return None;
//!     }
//!     let result = match request.operation() {
//!         Operation::Getattr(_) if request.nodeid() == fuse_wire::ROOT_ID => {
//!             let attr = sys::fuse_attr { ino: 1, mode: 0o040755, nlink: 2, ..Default::default() };
//!             reply::attr(out, &reply::attr_out(attr, Duration::from_secs(1)))
//!                 .map_err(|e| e.errno())
//!         }
//!         Operation::Lookup { .. } => Err(Errno::NOENT),
//!         _ => Err(Errno::NOSYS),
//!     };
//!     Some((request.unique(), result))
//! }
//! # let mut req = Vec::new();
//! # for v in [56u32, 3] { req.extend_from_slice(&v.to_ne_bytes()); }
//! # for v in [7u64, 1] { req.extend_from_slice(&v.to_ne_bytes()); }
//! # req.resize(56, 0);
//! # let mut out = [0u8; 256];
//! # assert_eq!(answer(&req, &mut out), Some((7, Ok(104))));
//! ```
//!
//! The transports that carry these bytes are `fuse-dev` (`/dev/fuse`) and `fuse-uring`
//! (FUSE-over-io_uring).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod decode_error;
pub mod dirent;
mod flags;
pub mod init;
pub mod init_flags;
pub mod notify;
mod operation;
pub mod reply;
pub mod request;

pub use fuse_kernel_sys as sys;
pub use rustix::io::Errno;

/// The node id of the root directory (`FUSE_ROOT_ID`), as the `u64` that `nodeid` fields are.
#[allow(clippy::unnecessary_cast)] // the generated constant's type has changed before
pub const ROOT_ID: u64 = sys::FUSE_ROOT_ID as u64;

pub use decode_error::{DecodeError, DecodeErrorKind};
pub use dirent::{DirentBuf, DirentError, DirentPlusBuf};
pub use flags::{
    FallocateFlags, FileType, RenameFlags, SetattrValid, XattrFlags, dirent_type,
    file_type_of_dirent,
};
pub use init::{InitConfig, InitError, KernelInit, MIN_KERNEL_MINOR, Negotiated, negotiate};
pub use operation::{Forgets, Operation, RemoveMappings};
pub use reply::{BufferTooSmall, OpenOut, out_error, out_header};
pub use request::{Protocol, Request, fixed_arg_size};
