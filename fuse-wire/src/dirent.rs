//! READDIR and READDIRPLUS packers: directory records in the kernel's layout, each padded to
//! 8 bytes, written into the reply buffer until it is full.
//!
//! The kernel asks for at most `fuse_read_in.size` bytes: give the packer exactly that much
//! of the reply buffer. Each record carries the offset of the *next* entry (`next_offset`);
//! the kernel sends it back as `fuse_read_in.offset` of the next READDIR, which is where the
//! listing resumes. When [`DirentError::Full`] comes back, that entry was not written: the
//! reply is complete, and the next READDIR will start at the offset of the refused entry
//! (the `next_offset` of the last written one, [`DirentBuf::resume_offset`]).

use core::fmt;
use core::mem::offset_of;

use fuse_kernel_sys as sys;
use sys::zerocopy::IntoBytes;

/// The longest name the kernel accepts in a directory record (`FUSE_NAME_MAX` of the kernel's
/// `fs/fuse/fuse_i.h`, not part of the uapi header); longer ones make it fail the READDIR with
/// `EIO`.
pub const NAME_MAX: usize = 1024;

/// Why a record was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirentError {
    /// The buffer has no room for this record: send what was packed so far.
    Full,
    /// The name is empty, longer than [`NAME_MAX`], or contains `/` or NUL: the kernel would
    /// reject the whole reply with `EIO`.
    InvalidName,
}

impl fmt::Display for DirentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DirentError::Full => "the directory reply buffer is full",
            DirentError::InvalidName => "invalid directory entry name",
        })
    }
}

impl std::error::Error for DirentError {}

fn check_name(name: &[u8]) -> Result<(), DirentError> {
    if name.is_empty() || name.len() > NAME_MAX || name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(DirentError::InvalidName);
    }
    Ok(())
}

/// Writes one `fuse_dirent` (fields, name, zero padding) at `buf[at..]`; returns its size.
fn write_dirent(
    buf: &mut [u8],
    at: usize,
    ino: u64,
    next_offset: u64,
    kind: u32,
    name: &[u8],
) -> Result<usize, DirentError> {
    check_name(name)?;
    let name_at = offset_of!(sys::fuse_dirent, name);
    let size = sys::fuse_dirent_size(name.len());
    let rec = buf
        .get_mut(at..)
        .and_then(|b| b.get_mut(..size))
        .ok_or(DirentError::Full)?;
    rec[..8].copy_from_slice(ino.as_bytes());
    rec[8..16].copy_from_slice(next_offset.as_bytes());
    // The length fits: it is at most NAME_MAX.
    rec[16..20].copy_from_slice((name.len() as u32).as_bytes());
    rec[20..24].copy_from_slice(kind.as_bytes());
    rec[name_at..name_at + name.len()].copy_from_slice(name);
    rec[name_at + name.len()..].fill(0);
    Ok(size)
}

/// The two record formats: [`Readdir`] and [`ReaddirPlus`].
pub trait RecordKind: sealed::Sealed {
    /// The size of one record with a name of `name_len` bytes, 8-byte aligned.
    fn record_size(name_len: usize) -> usize;
}

mod sealed {
    pub trait Sealed {}
}

/// READDIR records: `fuse_dirent` (ino, next offset, name length, type, name).
#[derive(Debug)]
pub enum Readdir {}

/// READDIRPLUS records: `fuse_entry_out` then `fuse_dirent`.
#[derive(Debug)]
pub enum ReaddirPlus {}

impl sealed::Sealed for Readdir {}
impl sealed::Sealed for ReaddirPlus {}

impl RecordKind for Readdir {
    fn record_size(name_len: usize) -> usize {
        sys::fuse_dirent_size(name_len)
    }
}

impl RecordKind for ReaddirPlus {
    fn record_size(name_len: usize) -> usize {
        sys::fuse_direntplus_size(name_len)
    }
}

/// A directory reply being packed, of READDIR ([`DirentBuf`]) or READDIRPLUS
/// ([`DirentPlusBuf`]) records.
#[derive(Debug)]
pub struct Dirents<'a, K: RecordKind> {
    buf: &'a mut [u8],
    len: usize,
    resume: Option<u64>,
    kind: core::marker::PhantomData<K>,
}

/// A READDIR reply being packed.
pub type DirentBuf<'a> = Dirents<'a, Readdir>;

/// A READDIRPLUS reply being packed: each record is a `fuse_entry_out` then a `fuse_dirent`.
///
/// Each entry with a non-zero `nodeid` counts as a LOOKUP for the kernel (it will FORGET it),
/// so count a lookup only for entries that [`DirentPlusBuf::push`] wrote.
pub type DirentPlusBuf<'a> = Dirents<'a, ReaddirPlus>;

impl<'a, K: RecordKind> Dirents<'a, K> {
    /// A packer over `buf` (give it `fuse_read_in.size` bytes at most).
    pub fn new(buf: &'a mut [u8]) -> Self {
        Dirents {
            buf,
            len: 0,
            resume: None,
            kind: core::marker::PhantomData,
        }
    }

    /// The bytes packed: the reply's payload length.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was packed (an empty reply means the end of the directory).
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `next_offset` of the last entry written: where the next request resumes.
    pub const fn resume_offset(&self) -> Option<u64> {
        self.resume
    }

    /// Whether a record with a name of `name_len` bytes still fits. With READDIRPLUS, check
    /// it before a lookup whose count the kernel only takes over if the record is written.
    pub fn has_room(&self, name_len: usize) -> bool {
        self.buf.len() - self.len >= K::record_size(name_len)
    }

    /// Writes one record of `name` at the end: `head` (the entry, for READDIRPLUS), then the
    /// `fuse_dirent`. Nothing is written when it does not fit or the name is invalid.
    fn append(
        &mut self,
        head: &[u8],
        ino: u64,
        next_offset: u64,
        kind: u32,
        name: &[u8],
    ) -> Result<(), DirentError> {
        check_name(name)?;
        if !self.has_room(name.len()) {
            return Err(DirentError::Full);
        }
        self.buf[self.len..self.len + head.len()].copy_from_slice(head);
        let size = write_dirent(
            self.buf,
            self.len + head.len(),
            ino,
            next_offset,
            kind,
            name,
        )?;
        self.len += head.len() + size;
        self.resume = Some(next_offset);
        Ok(())
    }
}

impl Dirents<'_, Readdir> {
    /// Appends an entry: inode number `ino` (as `st_ino` shows it), the offset of the entry
    /// after it, its type (`DT_*`, i.e. `st_mode >> 12`) and its name. Fails with
    /// [`DirentError::Full`] (nothing written) when it does not fit.
    pub fn push(
        &mut self,
        ino: u64,
        next_offset: u64,
        kind: u32,
        name: &[u8],
    ) -> Result<(), DirentError> {
        self.append(&[], ino, next_offset, kind, name)
    }
}

impl Dirents<'_, ReaddirPlus> {
    /// Appends an entry with its lookup reply `entry` (`nodeid` 0: no lookup, the kernel only
    /// lists the name). Fails with [`DirentError::Full`] (nothing written) when it does not
    /// fit.
    pub fn push(
        &mut self,
        entry: &sys::fuse_entry_out,
        next_offset: u64,
        kind: u32,
        name: &[u8],
    ) -> Result<(), DirentError> {
        self.append(entry.as_bytes(), entry.attr.ino, next_offset, kind, name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_8_byte_aligned_and_stop_when_full() {
        let mut buf = [0xEEu8; 64];
        let mut d = DirentBuf::new(&mut buf);
        // 24 + 1 = 25 -> 32 bytes.
        d.push(10, 1, 4, b"a").unwrap();
        assert_eq!(d.len(), 32);
        // 24 + 8 = 32 bytes exactly.
        d.push(11, 2, 8, b"12345678").unwrap();
        assert_eq!(d.len(), 64);
        assert!(!d.has_room(1));
        assert_eq!(d.push(12, 3, 8, b"b"), Err(DirentError::Full));
        assert_eq!(d.resume_offset(), Some(2));
        assert_eq!(d.push(12, 3, 8, b"a/b"), Err(DirentError::InvalidName));
        assert_eq!(d.push(12, 3, 8, b""), Err(DirentError::InvalidName));
        assert_eq!(buf[..8], 10u64.to_ne_bytes());
        assert_eq!(buf[8..16], 1u64.to_ne_bytes());
        assert_eq!(buf[16..20], 1u32.to_ne_bytes());
        assert_eq!(buf[20..24], 4u32.to_ne_bytes());
        assert_eq!(buf[24..32], *b"a\0\0\0\0\0\0\0");
        assert_eq!(buf[56..64], *b"12345678");
    }

    #[test]
    fn plus_records_carry_the_entry_first() {
        let mut buf = [0u8; 300];
        let mut d = DirentPlusBuf::new(&mut buf);
        let mut entry = sys::fuse_entry_out {
            nodeid: 5,
            ..Default::default()
        };
        entry.attr.ino = 77;
        d.push(&entry, 9, 8, b"file").unwrap();
        // 152 + 4 -> 160.
        assert_eq!(d.len(), 160);
        // 140 bytes left: no record (at least 160 bytes) fits.
        assert!(!d.has_room(1));
        assert_eq!(d.push(&entry, 10, 8, b"x"), Err(DirentError::Full));
        assert_eq!(d.resume_offset(), Some(9));
        assert_eq!(buf[..8], 5u64.to_ne_bytes());
        assert_eq!(buf[128..136], 77u64.to_ne_bytes());
        assert_eq!(buf[136..144], 9u64.to_ne_bytes());
        assert_eq!(buf[152..156], *b"file");
    }
}
