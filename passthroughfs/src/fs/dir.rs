//! Directories: OPENDIR's fd and the READDIR and READDIRPLUS listings.

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::PoisonError;

use fuse_wire::{DirentBuf, DirentPlusBuf, sys};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use super::Fs;
use super::budget::retry_fds;
use super::tables::{DirHandle, Inode};

impl Fs {
    /// Opens directory inode `id` for reading.
    pub(super) fn open_dir(&self, id: u64, inode: &Inode) -> Result<OwnedFd, Errno> {
        let fd = self.path_fd(id, inode)?;
        retry_fds(
            || self.shed(),
            || {
                rustix::fs::openat(
                    &*fd,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
            },
        )
    }

    /// READDIR: the entries from `offset` (0, or a `d_off` cookie of the source directory,
    /// which each record carries as its next offset), as many as fit in `out`.
    pub(super) fn readdir(
        &self,
        dir: &DirHandle,
        offset: u64,
        out: &mut [u8],
    ) -> Result<usize, Errno> {
        let cap = out.len();
        let mut buf = DirentBuf::new(out);
        each_entry(dir, offset, cap, |entry| {
            let name = entry.file_name().to_bytes();
            let ino = self.ino_of(dir.dev, entry.ino());
            let kind = dirent_type(entry.file_type());
            buf.push(ino, entry.next_entry_cookie(), kind, name).is_ok()
        })?;
        Ok(buf.len())
    }

    /// READDIRPLUS: like [`Fs::readdir`], each entry with its lookup (counted only for the
    /// entries that fit).
    pub(super) fn readdirplus(
        &self,
        parent: u64,
        dir: &DirHandle,
        offset: u64,
        out: &mut [u8],
    ) -> Result<usize, Errno> {
        // A direntplus record is about 150 bytes larger than the source's dirent.
        let cap = out.len() / 4;
        let mut buf = DirentPlusBuf::new(out);
        each_entry(dir, offset, cap, |entry| {
            let name = entry.file_name().to_bytes();
            if !buf.has_room(name.len()) {
                return false;
            }
            let kind = dirent_type(entry.file_type());
            let dot = name == b"." || name == b"..";
            let record = if dot {
                // No lookup for . and ..: the kernel only lists them.
                sys::fuse_entry_out {
                    attr: sys::fuse_attr {
                        ino: self.ino_of(dir.dev, entry.ino()),
                        mode: kind << 12,
                        ..Default::default()
                    },
                    ..Default::default()
                }
            } else {
                // Vanished since it was listed: an entry without attributes (nodeid 0).
                self.do_lookup(parent, name).unwrap_or_default()
            };
            if buf
                .push(&record, entry.next_entry_cookie(), kind, name)
                .is_err()
            {
                if record.nodeid != 0 {
                    self.forget(record.nodeid, 1);
                }
                return false;
            }
            true
        })?;
        Ok(buf.len())
    }
}

/// Hands the entries of `dir` from `offset` to `each` (reading at most `cap` bytes of them,
/// clamped to 1 KiB .. 8 KiB, at a time) until it returns false, having packed nothing more.
/// A read error before `each` has packed anything is the listing's error; a later one ends the
/// listing with what was packed.
fn each_entry(
    dir: &DirHandle,
    offset: u64,
    cap: usize,
    mut each: impl FnMut(&rustix::fs::RawDirEntry<'_>) -> bool,
) -> Result<(), Errno> {
    let fd = dir.fd.lock().unwrap_or_else(PoisonError::into_inner);
    rustix::fs::seek(&*fd, rustix::fs::SeekFrom::Start(offset))?;
    let mut raw = [MaybeUninit::<u8>::uninit(); 8192];
    let cap = cap.clamp(1024, raw.len());
    let mut entries = rustix::fs::RawDir::new(&*fd, &mut raw[..cap]);
    let mut packed = false;
    while let Some(entry) = entries.next() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if !packed => return Err(e),
            Err(_) => break,
        };
        if !each(&entry) {
            break;
        }
        packed = true;
    }
    Ok(())
}

/// `DT_*` of a directory entry (`st_mode >> 12`).
fn dirent_type(kind: rustix::fs::FileType) -> u32 {
    (kind.as_raw_mode() & libc::S_IFMT) >> 12
}
