//! Why a request cannot be decoded.

use core::fmt;

use crate::Errno;
use fuse_kernel_sys as sys;

/// What is wrong with a request's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// A part is shorter than its type needs.
    Short {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes there.
        have: usize,
    },
    /// `fuse_in_header.len` disagrees with the bytes delivered.
    Length {
        /// The header's `len`.
        header_len: u32,
        /// The bytes delivered.
        delivered: usize,
    },
    /// A name is not NUL-terminated within the request.
    MissingNul {
        /// Which name.
        what: &'static str,
    },
    /// An opcode this crate does not know (answer `ENOSYS`).
    UnknownOpcode,
}

/// A request that cannot be decoded, with the request's `unique` and opcode where the header
/// could be read (so that the server can still answer it with [`DecodeError::errno`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeError {
    unique: u64,
    opcode: u32,
    kind: DecodeErrorKind,
}

impl DecodeError {
    pub(crate) const fn new(kind: DecodeErrorKind) -> Self {
        DecodeError {
            unique: 0,
            opcode: 0,
            kind,
        }
    }

    pub(crate) const fn short(what: &'static str, need: usize, have: usize) -> Self {
        Self::new(DecodeErrorKind::Short { what, need, have })
    }

    pub(crate) const fn of(mut self, header: &sys::fuse_in_header) -> Self {
        self.unique = header.unique;
        self.opcode = header.opcode;
        self
    }

    /// What is wrong.
    pub const fn kind(&self) -> DecodeErrorKind {
        self.kind
    }

    /// The request's `unique` (0 when not even the header could be read: then there is
    /// nothing to answer).
    pub const fn unique(&self) -> u64 {
        self.unique
    }

    /// The request's opcode (0 when the header could not be read).
    pub const fn opcode(&self) -> u32 {
        self.opcode
    }

    /// The errno to answer the request with: `ENOSYS` for an unknown opcode, `EIO` for
    /// malformed bytes.
    pub const fn errno(&self) -> Errno {
        match self.kind {
            DecodeErrorKind::UnknownOpcode => Errno::NOSYS,
            _ => Errno::IO,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            DecodeErrorKind::Short { what, need, have } => {
                write!(f, "{what}: {have} bytes where {need} are needed")?
            }
            DecodeErrorKind::Length {
                header_len,
                delivered,
            } => write!(
                f,
                "request header says {header_len} bytes, {delivered} were delivered"
            )?,
            DecodeErrorKind::MissingNul { what } => write!(f, "{what} is not NUL-terminated")?,
            DecodeErrorKind::UnknownOpcode => write!(f, "unknown opcode")?,
        }
        if self.unique != 0 {
            write!(f, " (opcode {}, unique {})", self.opcode, self.unique)?;
        }
        Ok(())
    }
}

impl std::error::Error for DecodeError {}
