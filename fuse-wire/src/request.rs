//! Request decoding: a typed view of one kernel-to-server request, from either transport's
//! layout.
//!
//! A request is a `fuse_in_header`, then the opcode's arguments: a fixed-size struct (for most
//! opcodes), then names (NUL-terminated) or data, then optional extensions
//! (`total_extlen * 8` bytes). `/dev/fuse` delivers all of it in one buffer; FUSE-over-io_uring
//! puts the header and the fixed struct (`op_in`) in the entry's header slot and the rest in
//! its payload buffer. [`Request::parse`] and [`Request::parse_split`] decode both into the
//! same [`Operation`].
//!
//! Fixed argument structs are copied out by value (at most 104 bytes, no alignment needed);
//! names and data borrow the caller's buffer. Decoding allocates nothing, makes no syscall,
//! and never panics: short buffers, missing NULs, lengths past the end and unknown opcodes are
//! [`DecodeError`]s.

use core::ffi::CStr;

use fuse_kernel_sys as sys;
use sys::zerocopy::FromBytes;

use crate::decode_error::{DecodeError, DecodeErrorKind};
use crate::init::KernelInit;
use crate::operation::{Forgets, Operation, RemoveMappings};

/// How a connection's requests are laid out: what INIT agreed that changes decoding.
///
/// From [`crate::Negotiated::protocol`]; [`Protocol::default`] is the newest minor without
/// `FUSE_SETXATTR_EXT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protocol {
    /// The agreed minor version.
    pub minor: u32,
    /// Whether `FUSE_SETXATTR_EXT` was accepted (SETXATTR then carries the 16-byte
    /// `fuse_setxattr_in`, else its first 8 bytes).
    pub setxattr_ext: bool,
}

impl Default for Protocol {
    fn default() -> Self {
        Protocol {
            minor: sys::FUSE_KERNEL_MINOR_VERSION,
            setxattr_ext: false,
        }
    }
}

/// One request: its header, its operation and its extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request<'a> {
    header: sys::fuse_in_header,
    op: Operation<'a>,
    extensions: &'a [u8],
}

/// The size of the fixed argument struct of `opcode` under `protocol` (0 for opcodes whose
/// first argument is a name or that have none), or `None` for an unknown opcode.
///
/// This is also the size of the io_uring `op_in` the kernel fills for that opcode.
pub const fn fixed_arg_size(opcode: u32, protocol: Protocol) -> Option<usize> {
    use sys::*;
    Some(match opcode {
        FUSE_LOOKUP | FUSE_READLINK | FUSE_SYMLINK | FUSE_UNLINK | FUSE_RMDIR | FUSE_STATFS
        | FUSE_REMOVEXATTR | FUSE_DESTROY => 0,
        FUSE_FORGET => size_of::<fuse_forget_in>(),
        FUSE_GETATTR => size_of::<fuse_getattr_in>(),
        FUSE_SETATTR => size_of::<fuse_setattr_in>(),
        FUSE_MKNOD => size_of::<fuse_mknod_in>(),
        FUSE_MKDIR => size_of::<fuse_mkdir_in>(),
        FUSE_RENAME => size_of::<fuse_rename_in>(),
        FUSE_LINK => size_of::<fuse_link_in>(),
        FUSE_OPEN | FUSE_OPENDIR => size_of::<fuse_open_in>(),
        FUSE_READ | FUSE_READDIR | FUSE_READDIRPLUS => size_of::<fuse_read_in>(),
        FUSE_WRITE => size_of::<fuse_write_in>(),
        FUSE_RELEASE | FUSE_RELEASEDIR => size_of::<fuse_release_in>(),
        FUSE_FSYNC | FUSE_FSYNCDIR => size_of::<fuse_fsync_in>(),
        FUSE_SETXATTR => {
            if protocol.setxattr_ext {
                size_of::<fuse_setxattr_in>()
            } else {
                FUSE_COMPAT_SETXATTR_IN_SIZE as usize
            }
        }
        FUSE_GETXATTR | FUSE_LISTXATTR => size_of::<fuse_getxattr_in>(),
        FUSE_FLUSH => size_of::<fuse_flush_in>(),
        FUSE_INIT => size_of::<fuse_init_in>(),
        FUSE_GETLK | FUSE_SETLK | FUSE_SETLKW => size_of::<fuse_lk_in>(),
        FUSE_ACCESS => size_of::<fuse_access_in>(),
        FUSE_CREATE | FUSE_TMPFILE => size_of::<fuse_create_in>(),
        FUSE_INTERRUPT => size_of::<fuse_interrupt_in>(),
        FUSE_BMAP => size_of::<fuse_bmap_in>(),
        FUSE_IOCTL => size_of::<fuse_ioctl_in>(),
        FUSE_POLL => size_of::<fuse_poll_in>(),
        FUSE_NOTIFY_REPLY => size_of::<fuse_notify_retrieve_in>(),
        FUSE_BATCH_FORGET => size_of::<fuse_batch_forget_in>(),
        FUSE_FALLOCATE => size_of::<fuse_fallocate_in>(),
        FUSE_RENAME2 => size_of::<fuse_rename2_in>(),
        FUSE_LSEEK => size_of::<fuse_lseek_in>(),
        FUSE_COPY_FILE_RANGE | FUSE_COPY_FILE_RANGE_64 => size_of::<fuse_copy_file_range_in>(),
        FUSE_SETUPMAPPING => size_of::<fuse_setupmapping_in>(),
        FUSE_REMOVEMAPPING => size_of::<fuse_removemapping_in>(),
        FUSE_SYNCFS => size_of::<fuse_syncfs_in>(),
        FUSE_STATX => size_of::<fuse_statx_in>(),
        _ => return None,
    })
}

/// Reads a fixed struct from exactly the fixed argument bytes (shorter ones are zero-extended:
/// SETXATTR without `FUSE_SETXATTR_EXT` and INIT from old kernels send a prefix).
fn fixed<T: FromBytes + Default + sys::zerocopy::IntoBytes>(
    arg: &[u8],
    what: &'static str,
) -> Result<T, DecodeError> {
    let mut value = T::default();
    let dst = value.as_mut_bytes();
    if arg.len() > dst.len() || arg.is_empty() {
        return Err(DecodeError::short(what, dst.len(), arg.len()));
    }
    dst[..arg.len()].copy_from_slice(arg);
    Ok(value)
}

/// Splits a NUL-terminated name off the front of `bytes`.
fn name<'a>(bytes: &'a [u8], what: &'static str) -> Result<(&'a CStr, &'a [u8]), DecodeError> {
    let name = CStr::from_bytes_until_nul(bytes)
        .map_err(|_| DecodeError::new(DecodeErrorKind::MissingNul { what }))?;
    Ok((name, &bytes[name.count_bytes() + 1..]))
}

/// The first `len` bytes of `bytes`.
fn data<'a>(bytes: &'a [u8], len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
    bytes
        .get(..len)
        .ok_or(DecodeError::short(what, len, bytes.len()))
}

impl<'a> Request<'a> {
    /// Decodes a request in `/dev/fuse` layout: `buf` is what one `read(2)` returned.
    ///
    /// Fails when `buf` is shorter than the header or than `fuse_in_header.len`, or the
    /// arguments do not fit (see [`DecodeErrorKind`]). Bytes after `len` are ignored.
    pub fn parse(buf: &'a [u8], protocol: Protocol) -> Result<Request<'a>, DecodeError> {
        let (header, _) = sys::fuse_in_header::read_from_prefix(buf).map_err(|_| {
            DecodeError::short(
                "fuse_in_header",
                size_of::<sys::fuse_in_header>(),
                buf.len(),
            )
        })?;
        let len = header.len as usize;
        let body = buf
            .get(size_of::<sys::fuse_in_header>()..len)
            .ok_or_else(|| {
                DecodeError::new(DecodeErrorKind::Length {
                    header_len: header.len,
                    delivered: buf.len(),
                })
                .of(&header)
            })?;
        let fixed = fixed_arg_size(header.opcode, protocol)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownOpcode).of(&header))?;
        if body.len() < fixed {
            // INIT from kernels before 7.36 is shorter; KernelInit::parse copes with that.
            if header.opcode != sys::FUSE_INIT {
                return Err(DecodeError::short("fixed argument", fixed, body.len()).of(&header));
            }
        }
        let (arg, rest) = body.split_at(fixed.min(body.len()));
        Self::decode(header, arg, rest, protocol)
    }

    /// Decodes a request in FUSE-over-io_uring layout: the header from the entry's header
    /// slot, its `op_in` area (the fixed argument, at its start) and the payload bytes the
    /// kernel wrote (`payload_sz` of `fuse_uring_ent_in_out`).
    pub fn parse_split(
        header: &sys::fuse_in_header,
        op_in: &'a [u8],
        payload: &'a [u8],
        protocol: Protocol,
    ) -> Result<Request<'a>, DecodeError> {
        let fixed = fixed_arg_size(header.opcode, protocol)
            .ok_or_else(|| DecodeError::new(DecodeErrorKind::UnknownOpcode).of(header))?;
        // NOTIFY_REPLY's first argument is empty in the kernel (6.14 to at least 6.18), so
        // over io_uring its fuse_notify_retrieve_in is not in op_in but at the start of the
        // payload, which then holds everything after the header.
        let whole = (header.len as usize).checked_sub(size_of::<sys::fuse_in_header>());
        if header.opcode == sys::FUSE_NOTIFY_REPLY && fixed > 0 && whole == Some(payload.len()) {
            let (arg, rest) = payload.split_at_checked(fixed).ok_or_else(|| {
                DecodeError::short("fixed argument", fixed, payload.len()).of(header)
            })?;
            return Self::decode(*header, arg, rest, protocol);
        }
        let arg = op_in
            .get(..fixed)
            .ok_or_else(|| DecodeError::short("op_in", fixed, op_in.len()).of(header))?;
        Self::decode(*header, arg, payload, protocol)
    }

    fn decode(
        header: sys::fuse_in_header,
        arg: &'a [u8],
        rest: &'a [u8],
        protocol: Protocol,
    ) -> Result<Request<'a>, DecodeError> {
        let ext_len = usize::from(header.total_extlen) * 8;
        let split = rest
            .len()
            .checked_sub(ext_len)
            .ok_or_else(|| DecodeError::short("extensions", ext_len, rest.len()).of(&header))?;
        let (rest, extensions) = rest.split_at(split);
        let op = Self::decode_operation(header.opcode, arg, rest, protocol)
            .map_err(|e| e.of(&header))?;
        Ok(Request {
            header,
            op,
            extensions,
        })
    }

    fn decode_operation(
        opcode: u32,
        arg: &'a [u8],
        rest: &'a [u8],
        protocol: Protocol,
    ) -> Result<Operation<'a>, DecodeError> {
        use Operation as O;
        use sys::*;
        let _ = protocol;
        Ok(match opcode {
            FUSE_LOOKUP => O::Lookup {
                name: name(rest, "LOOKUP name")?.0,
            },
            FUSE_FORGET => O::Forget(fixed(arg, "fuse_forget_in")?),
            FUSE_GETATTR => O::Getattr(fixed(arg, "fuse_getattr_in")?),
            FUSE_SETATTR => O::Setattr(fixed(arg, "fuse_setattr_in")?),
            FUSE_READLINK => O::Readlink,
            FUSE_SYMLINK => {
                let (name, rest) = name(rest, "SYMLINK name")?;
                let (target, _) = self::name(rest, "SYMLINK target")?;
                O::Symlink { name, target }
            }
            FUSE_MKNOD => O::Mknod {
                arg: fixed(arg, "fuse_mknod_in")?,
                name: name(rest, "MKNOD name")?.0,
            },
            FUSE_MKDIR => O::Mkdir {
                arg: fixed(arg, "fuse_mkdir_in")?,
                name: name(rest, "MKDIR name")?.0,
            },
            FUSE_UNLINK => O::Unlink {
                name: name(rest, "UNLINK name")?.0,
            },
            FUSE_RMDIR => O::Rmdir {
                name: name(rest, "RMDIR name")?.0,
            },
            FUSE_RENAME | FUSE_RENAME2 => {
                let (old, rest) = name(rest, "RENAME name")?;
                let (new, _) = self::name(rest, "RENAME new name")?;
                if opcode == FUSE_RENAME {
                    O::Rename {
                        arg: fixed(arg, "fuse_rename_in")?,
                        name: old,
                        new_name: new,
                    }
                } else {
                    O::Rename2 {
                        arg: fixed(arg, "fuse_rename2_in")?,
                        name: old,
                        new_name: new,
                    }
                }
            }
            FUSE_LINK => O::Link {
                arg: fixed(arg, "fuse_link_in")?,
                name: name(rest, "LINK name")?.0,
            },
            FUSE_OPEN => O::Open(fixed(arg, "fuse_open_in")?),
            FUSE_READ => O::Read(fixed(arg, "fuse_read_in")?),
            FUSE_WRITE => {
                let arg: fuse_write_in = fixed(arg, "fuse_write_in")?;
                O::Write {
                    arg,
                    data: data(rest, arg.size as usize, "WRITE data")?,
                }
            }
            FUSE_STATFS => O::Statfs,
            FUSE_RELEASE => O::Release(fixed(arg, "fuse_release_in")?),
            FUSE_FSYNC => O::Fsync(fixed(arg, "fuse_fsync_in")?),
            FUSE_SETXATTR => {
                let arg: fuse_setxattr_in = fixed(arg, "fuse_setxattr_in")?;
                let (name, rest) = name(rest, "SETXATTR name")?;
                O::Setxattr {
                    arg,
                    name,
                    value: data(rest, arg.size as usize, "SETXATTR value")?,
                }
            }
            FUSE_GETXATTR => O::Getxattr {
                arg: fixed(arg, "fuse_getxattr_in")?,
                name: name(rest, "GETXATTR name")?.0,
            },
            FUSE_LISTXATTR => O::Listxattr(fixed(arg, "fuse_getxattr_in")?),
            FUSE_REMOVEXATTR => O::Removexattr {
                name: name(rest, "REMOVEXATTR name")?.0,
            },
            FUSE_FLUSH => O::Flush(fixed(arg, "fuse_flush_in")?),
            FUSE_INIT => O::Init(KernelInit::parse(arg)?),
            FUSE_OPENDIR => O::Opendir(fixed(arg, "fuse_open_in")?),
            FUSE_READDIR => O::Readdir(fixed(arg, "fuse_read_in")?),
            FUSE_RELEASEDIR => O::Releasedir(fixed(arg, "fuse_release_in")?),
            FUSE_FSYNCDIR => O::Fsyncdir(fixed(arg, "fuse_fsync_in")?),
            FUSE_GETLK => O::Getlk(fixed(arg, "fuse_lk_in")?),
            FUSE_SETLK => O::Setlk(fixed(arg, "fuse_lk_in")?),
            FUSE_SETLKW => O::Setlkw(fixed(arg, "fuse_lk_in")?),
            FUSE_ACCESS => O::Access(fixed(arg, "fuse_access_in")?),
            FUSE_CREATE => O::Create {
                arg: fixed(arg, "fuse_create_in")?,
                name: name(rest, "CREATE name")?.0,
            },
            FUSE_INTERRUPT => O::Interrupt(fixed(arg, "fuse_interrupt_in")?),
            FUSE_BMAP => O::Bmap(fixed(arg, "fuse_bmap_in")?),
            FUSE_DESTROY => O::Destroy,
            FUSE_IOCTL => {
                let arg: fuse_ioctl_in = fixed(arg, "fuse_ioctl_in")?;
                O::Ioctl {
                    arg,
                    data: data(rest, arg.in_size as usize, "IOCTL data")?,
                }
            }
            FUSE_POLL => O::Poll(fixed(arg, "fuse_poll_in")?),
            FUSE_NOTIFY_REPLY => {
                let arg: fuse_notify_retrieve_in = fixed(arg, "fuse_notify_retrieve_in")?;
                O::NotifyReply {
                    arg,
                    data: data(rest, arg.size as usize, "NOTIFY_REPLY data")?,
                }
            }
            FUSE_BATCH_FORGET => {
                let head: fuse_batch_forget_in = fixed(arg, "fuse_batch_forget_in")?;
                let len = (head.count as usize).saturating_mul(size_of::<fuse_forget_one>());
                O::BatchForget(Forgets {
                    bytes: data(rest, len, "BATCH_FORGET entries")?,
                })
            }
            FUSE_FALLOCATE => O::Fallocate(fixed(arg, "fuse_fallocate_in")?),
            FUSE_READDIRPLUS => O::Readdirplus(fixed(arg, "fuse_read_in")?),
            FUSE_LSEEK => O::Lseek(fixed(arg, "fuse_lseek_in")?),
            FUSE_COPY_FILE_RANGE => O::CopyFileRange(fixed(arg, "fuse_copy_file_range_in")?),
            FUSE_COPY_FILE_RANGE_64 => O::CopyFileRange64(fixed(arg, "fuse_copy_file_range_in")?),
            FUSE_SETUPMAPPING => O::SetupMapping(fixed(arg, "fuse_setupmapping_in")?),
            FUSE_REMOVEMAPPING => {
                let head: fuse_removemapping_in = fixed(arg, "fuse_removemapping_in")?;
                let len = (head.count as usize).saturating_mul(size_of::<fuse_removemapping_one>());
                O::RemoveMapping(RemoveMappings {
                    bytes: data(rest, len, "REMOVEMAPPING entries")?,
                })
            }
            FUSE_SYNCFS => O::Syncfs(fixed(arg, "fuse_syncfs_in")?),
            FUSE_TMPFILE => O::Tmpfile {
                arg: fixed(arg, "fuse_create_in")?,
                name: name(rest, "TMPFILE name")?.0,
            },
            FUSE_STATX => O::Statx(fixed(arg, "fuse_statx_in")?),
            _ => return Err(DecodeError::new(DecodeErrorKind::UnknownOpcode)),
        })
    }

    /// The request header.
    pub const fn header(&self) -> &sys::fuse_in_header {
        &self.header
    }

    /// The operation and its arguments.
    pub const fn operation(&self) -> &Operation<'a> {
        &self.op
    }

    /// The request id, echoed in the reply.
    pub const fn unique(&self) -> u64 {
        self.header.unique
    }

    /// The inode the request is about (`FUSE_ROOT_ID` is the root).
    pub const fn nodeid(&self) -> u64 {
        self.header.nodeid
    }

    /// The opcode.
    pub const fn opcode(&self) -> u32 {
        self.header.opcode
    }

    /// The caller's user id (in the server's user namespace).
    pub const fn uid(&self) -> u32 {
        self.header.uid
    }

    /// The caller's group id.
    pub const fn gid(&self) -> u32 {
        self.header.gid
    }

    /// The caller's thread id (0 for requests the kernel makes on its own).
    pub const fn pid(&self) -> u32 {
        self.header.pid
    }

    /// The request extensions (`total_extlen * 8` bytes after the arguments: security
    /// contexts with `FUSE_SECURITY_CTX`, supplementary groups with `FUSE_CREATE_SUPP_GROUP`),
    /// each a `fuse_ext_header` followed by its data. Empty for most requests.
    pub const fn extensions(&self) -> &'a [u8] {
        self.extensions
    }
}
