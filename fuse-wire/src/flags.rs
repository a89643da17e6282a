//! Typed flag words of decoded requests and file types, so that a handler writes no FUSE or
//! VFS constant by hand.
//!
//! The VFS flag words that FUSE passes through unchanged are rustix's types, re-exported:
//! their bits are the kernel's own (`RENAME_*`, `XATTR_*`, `FALLOC_FL_*`, `S_IF*`), which the
//! tests below check against the numbers of the kernel's headers. SETATTR's `valid` word is
//! FUSE's own (`FATTR_*`): [`SetattrValid`].

use core::fmt;
use core::ops::{BitAnd, BitAndAssign, BitOr, BitOrAssign, Not, Sub};

use fuse_kernel_sys as sys;

pub use rustix::fs::{FallocateFlags, FileType, RenameFlags, XattrFlags};

/// Which fields of a SETATTR (`fuse_setattr_in`) are valid: its `valid` word, with the
/// `FATTR_*` bits named.
///
/// Get it from a request with [`Operation::setattr_valid`](crate::Operation::setattr_valid)
/// or [`SetattrValid::from_bits_retain`]. Bits this type does not name are kept (a newer
/// kernel may send them); [`SetattrValid::unknown`] shows them, so that a server can refuse
/// what it does not understand. A bit without a minor dates from the first protocol
/// versions; every bit here exists on every kernel this crate serves (7.36 and newer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SetattrValid(u32);

impl SetattrValid {
    /// `FATTR_MODE`: `mode` (permission bits; the file type never changes).
    pub const MODE: Self = Self(sys::FATTR_MODE);
    /// `FATTR_UID`: `uid` (chown).
    pub const UID: Self = Self(sys::FATTR_UID);
    /// `FATTR_GID`: `gid` (chown).
    pub const GID: Self = Self(sys::FATTR_GID);
    /// `FATTR_SIZE`: `size` (truncate).
    pub const SIZE: Self = Self(sys::FATTR_SIZE);
    /// `FATTR_ATIME`: `atime` and `atimensec`.
    pub const ATIME: Self = Self(sys::FATTR_ATIME);
    /// `FATTR_MTIME`: `mtime` and `mtimensec`.
    pub const MTIME: Self = Self(sys::FATTR_MTIME);
    /// `FATTR_FH`: `fh` names the open file the change is made through.
    pub const FH: Self = Self(sys::FATTR_FH);
    /// `FATTR_ATIME_NOW` (7.9): set atime to the server's current time (with
    /// [`SetattrValid::ATIME`]).
    pub const ATIME_NOW: Self = Self(sys::FATTR_ATIME_NOW);
    /// `FATTR_MTIME_NOW` (7.9): set mtime to the server's current time (with
    /// [`SetattrValid::MTIME`]).
    pub const MTIME_NOW: Self = Self(sys::FATTR_MTIME_NOW);
    /// `FATTR_LOCKOWNER` (7.9): `lock_owner` is valid (a truncate through an open file).
    pub const LOCKOWNER: Self = Self(sys::FATTR_LOCKOWNER);
    /// `FATTR_CTIME` (7.23): `ctime` and `ctimensec` (sent with `FUSE_WRITEBACK_CACHE`).
    pub const CTIME: Self = Self(sys::FATTR_CTIME);
    /// `FATTR_KILL_SUIDGID` (7.33): clear setuid and setgid (with
    /// `FUSE_HANDLE_KILLPRIV_V2`, on truncate and chown by a caller without `CAP_FSETID`).
    pub const KILL_SUIDGID: Self = Self(sys::FATTR_KILL_SUIDGID);

    /// Every bit this type names.
    pub const ALL: Self = Self(
        sys::FATTR_MODE
            | sys::FATTR_UID
            | sys::FATTR_GID
            | sys::FATTR_SIZE
            | sys::FATTR_ATIME
            | sys::FATTR_MTIME
            | sys::FATTR_FH
            | sys::FATTR_ATIME_NOW
            | sys::FATTR_MTIME_NOW
            | sys::FATTR_LOCKOWNER
            | sys::FATTR_CTIME
            | sys::FATTR_KILL_SUIDGID,
    );

    const NAMES: [(Self, &'static str); 12] = [
        (Self::MODE, "MODE"),
        (Self::UID, "UID"),
        (Self::GID, "GID"),
        (Self::SIZE, "SIZE"),
        (Self::ATIME, "ATIME"),
        (Self::MTIME, "MTIME"),
        (Self::FH, "FH"),
        (Self::ATIME_NOW, "ATIME_NOW"),
        (Self::MTIME_NOW, "MTIME_NOW"),
        (Self::LOCKOWNER, "LOCKOWNER"),
        (Self::CTIME, "CTIME"),
        (Self::KILL_SUIDGID, "KILL_SUIDGID"),
    ];

    /// No bit set.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The `valid` word as the kernel sent it, every bit kept (named or not).
    pub const fn from_bits_retain(bits: u32) -> Self {
        Self(bits)
    }

    /// The raw `valid` word.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether no bit is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any bit of `other` is set.
    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    /// The bits of both.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The bits of `self` that `other` does not have.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The set bits this type does not name (empty for every kernel up to 7.46).
    pub const fn unknown(self) -> Self {
        self.difference(Self::ALL)
    }
}

impl BitOr for SetattrValid {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl BitOrAssign for SetattrValid {
    fn bitor_assign(&mut self, rhs: Self) {
        *self = self.union(rhs);
    }
}

impl BitAnd for SetattrValid {
    type Output = Self;
    fn bitand(self, rhs: Self) -> Self {
        Self(self.0 & rhs.0)
    }
}

impl BitAndAssign for SetattrValid {
    fn bitand_assign(&mut self, rhs: Self) {
        self.0 &= rhs.0;
    }
}

impl Sub for SetattrValid {
    type Output = Self;
    fn sub(self, rhs: Self) -> Self {
        self.difference(rhs)
    }
}

impl Not for SetattrValid {
    type Output = Self;
    /// The complement within the named bits ([`SetattrValid::ALL`]).
    fn not(self) -> Self {
        Self::ALL.difference(self)
    }
}

impl fmt::Debug for SetattrValid {
    /// `SetattrValid(MODE | SIZE)`, unnamed bits in hex (`SetattrValid(MODE | 0x8000)`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetattrValid(")?;
        let mut first = true;
        let mut sep = |f: &mut fmt::Formatter<'_>| {
            let s = if first { "" } else { " | " };
            first = false;
            f.write_str(s)
        };
        for (flag, name) in Self::NAMES {
            if self.contains(flag) {
                sep(f)?;
                f.write_str(name)?;
            }
        }
        let unknown = self.unknown();
        if !unknown.is_empty() {
            sep(f)?;
            write!(f, "{:#x}", unknown.0)?;
        }
        f.write_str(")")
    }
}

/// The `DT_*` type of a directory entry for a file of type `kind`: what
/// [`DirentBuf::push`](crate::DirentBuf::push) and
/// [`DirentPlusBuf::push`](crate::DirentPlusBuf::push) take (`S_IF*` shifted right by 12;
/// [`FileType::Unknown`] is `DT_UNKNOWN`, 0).
///
/// ```
/// use fuse_wire::{FileType, dirent_type};
/// assert_eq!(dirent_type(FileType::Directory), 4); // DT_DIR
/// assert_eq!(dirent_type(FileType::from_raw_mode(0o100644)), 8); // DT_REG
/// ```
pub const fn dirent_type(kind: FileType) -> u32 {
    match kind {
        FileType::Unknown => 0,
        known => known.as_raw_mode() >> 12,
    }
}

/// The file type of a directory entry's `DT_*` type ([`FileType::Unknown`] for `DT_UNKNOWN`
/// and for values no file type has).
pub const fn file_type_of_dirent(d_type: u32) -> FileType {
    if d_type > 0xf {
        return FileType::Unknown;
    }
    FileType::from_raw_mode(d_type << 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The numbers below are the kernel's, written out from its headers
    // (include/uapi/linux/fs.h, xattr.h, falloc.h, stat.h, fuse.h), not computed.

    #[test]
    fn vfs_flags_are_the_kernels() {
        assert_eq!(RenameFlags::NOREPLACE.bits(), 1);
        assert_eq!(RenameFlags::EXCHANGE.bits(), 2);
        assert_eq!(RenameFlags::WHITEOUT.bits(), 4);
        assert_eq!(XattrFlags::CREATE.bits(), 1);
        assert_eq!(XattrFlags::REPLACE.bits(), 2);
        assert_eq!(FallocateFlags::KEEP_SIZE.bits(), 0x01);
        assert_eq!(FallocateFlags::PUNCH_HOLE.bits(), 0x02);
        assert_eq!(FallocateFlags::COLLAPSE_RANGE.bits(), 0x08);
        assert_eq!(FallocateFlags::ZERO_RANGE.bits(), 0x10);
        assert_eq!(FallocateFlags::INSERT_RANGE.bits(), 0x20);
        assert_eq!(FallocateFlags::UNSHARE_RANGE.bits(), 0x40);
        // Unknown bits survive the round trip (a newer kernel's flag is not lost).
        assert_eq!(RenameFlags::from_bits_retain(1 << 20).bits(), 1 << 20);
    }

    #[test]
    fn file_types_are_the_kernels() {
        let types = [
            (FileType::Fifo, 0o010000, 1),
            (FileType::CharacterDevice, 0o020000, 2),
            (FileType::Directory, 0o040000, 4),
            (FileType::BlockDevice, 0o060000, 6),
            (FileType::RegularFile, 0o100000, 8),
            (FileType::Symlink, 0o120000, 10),
            (FileType::Socket, 0o140000, 12),
        ];
        for (kind, mode, dt) in types {
            assert_eq!(kind.as_raw_mode(), mode, "{kind:?}");
            assert_eq!(FileType::from_raw_mode(mode | 0o755), kind);
            assert_eq!(dirent_type(kind), dt, "{kind:?}");
            assert_eq!(file_type_of_dirent(dt), kind);
        }
        assert_eq!(dirent_type(FileType::Unknown), 0);
        assert_eq!(file_type_of_dirent(0), FileType::Unknown);
        assert_eq!(file_type_of_dirent(3), FileType::Unknown);
        assert_eq!(file_type_of_dirent(u32::MAX), FileType::Unknown);
    }

    #[test]
    fn setattr_bits_are_the_kernels() {
        let bits = [
            (SetattrValid::MODE, 1 << 0),
            (SetattrValid::UID, 1 << 1),
            (SetattrValid::GID, 1 << 2),
            (SetattrValid::SIZE, 1 << 3),
            (SetattrValid::ATIME, 1 << 4),
            (SetattrValid::MTIME, 1 << 5),
            (SetattrValid::FH, 1 << 6),
            (SetattrValid::ATIME_NOW, 1 << 7),
            (SetattrValid::MTIME_NOW, 1 << 8),
            (SetattrValid::LOCKOWNER, 1 << 9),
            (SetattrValid::CTIME, 1 << 10),
            (SetattrValid::KILL_SUIDGID, 1 << 11),
        ];
        for (flag, bit) in bits {
            assert_eq!(flag.bits(), bit, "{flag:?}");
        }
        assert_eq!(SetattrValid::ALL.bits(), 0xfff);
    }

    #[test]
    fn setattr_valid_operations() {
        let v = SetattrValid::from_bits_retain(1 << 3 | 1 << 5 | 1 << 8 | 1 << 15);
        assert!(v.contains(SetattrValid::SIZE | SetattrValid::MTIME_NOW));
        assert!(!v.contains(SetattrValid::SIZE | SetattrValid::MODE));
        assert!(v.intersects(SetattrValid::MODE | SetattrValid::MTIME));
        assert!(!v.intersects(SetattrValid::MODE | SetattrValid::UID));
        assert_eq!(v.unknown().bits(), 1 << 15);
        assert_eq!((v - SetattrValid::SIZE).bits(), 1 << 5 | 1 << 8 | 1 << 15);
        assert_eq!((v & SetattrValid::ALL).bits(), 1 << 3 | 1 << 5 | 1 << 8);
        assert_eq!((!SetattrValid::MODE).bits(), 0xffe);
        let mut w = SetattrValid::empty();
        assert!(w.is_empty());
        w |= SetattrValid::GID;
        w &= SetattrValid::GID | SetattrValid::UID;
        assert_eq!(w, SetattrValid::GID);
        assert_eq!(
            format!("{v:?}"),
            "SetattrValid(SIZE | MTIME | MTIME_NOW | 0x8000)"
        );
        assert_eq!(format!("{:?}", SetattrValid::empty()), "SetattrValid()");
    }
}
