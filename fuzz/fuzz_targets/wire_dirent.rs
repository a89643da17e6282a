//! fuse-wire's READDIR and READDIRPLUS packers (`DirentBuf`, `DirentPlusBuf`) with arbitrary
//! sequences of names (any bytes, any length up to past `NAME_MAX`), inode numbers, offsets,
//! types and lookup replies, into a buffer of arbitrary size. Each push either writes exactly
//! one record where the previous one ended (the kernel's layout: fields, name, zero padding
//! to 8 bytes) and nothing else, or writes nothing: `Full` exactly when the record does not
//! fit (and `has_room` said so), `InvalidName` exactly for names the kernel refuses.
//! `resume_offset` is the `next_offset` of the last record written; the packed bytes walk
//! back into the same records.

#![no_main]

use fuse_kernel_blocks_fuzz::{Input, valid_name};
use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{FromBytes, IntoBytes};
use fuse_wire::{DirentBuf, DirentError, DirentPlusBuf};
use libfuzzer_sys::fuzz_target;

/// Bytes of a `fuse_dirent` before the name, and of a `fuse_entry_out`.
const DIRENT_HEAD: usize = 24;
const ENTRY: usize = 128;

fn ne_u64(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// One pushed record, as the test expects to read it back.
struct Pushed {
    entry: Option<sys::fuse_entry_out>,
    ino: u64,
    next_offset: u64,
    kind: u32,
    name: Vec<u8>,
}

/// Either packer, behind one interface.
enum Packer<'a> {
    Plain(DirentBuf<'a>),
    Plus(DirentPlusBuf<'a>),
}

impl Packer<'_> {
    fn len(&self) -> usize {
        match self {
            Packer::Plain(d) => d.len(),
            Packer::Plus(d) => d.len(),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Packer::Plain(d) => d.is_empty(),
            Packer::Plus(d) => d.is_empty(),
        }
    }

    fn resume_offset(&self) -> Option<u64> {
        match self {
            Packer::Plain(d) => d.resume_offset(),
            Packer::Plus(d) => d.resume_offset(),
        }
    }

    fn has_room(&self, name_len: usize) -> bool {
        match self {
            Packer::Plain(d) => d.has_room(name_len),
            Packer::Plus(d) => d.has_room(name_len),
        }
    }

    fn push(&mut self, p: &Pushed) -> Result<(), DirentError> {
        match self {
            Packer::Plain(d) => d.push(p.ino, p.next_offset, p.kind, &p.name),
            Packer::Plus(d) => d.push(
                p.entry.as_ref().expect("plus records have an entry"),
                p.next_offset,
                p.kind,
                &p.name,
            ),
        }
    }
}

/// A record's size, computed here from the kernel's formula (`None`: past `usize`).
fn record_size(plus: bool, name_len: usize) -> Option<usize> {
    let head = if plus {
        ENTRY + DIRENT_HEAD
    } else {
        DIRENT_HEAD
    };
    head.checked_add(name_len)?.checked_next_multiple_of(8)
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.u8();
    let plus = mode & 1 != 0;
    let size = match (mode >> 1) & 3 {
        0 => usize::from(input.u16()),
        1 => usize::from(input.u8()),
        _ => 4096,
    };
    // The buffer's old contents: a fill byte from the input (a packer must not rely on
    // zeroed memory, nor leave stale bytes in padding).
    let fill = input.u8();
    let mut buf = vec![fill; size];
    let mut shadow = buf.clone();
    let mut pushed: Vec<Pushed> = Vec::new();
    let mut last_resume = None;
    {
        let mut packer = if plus {
            Packer::Plus(DirentPlusBuf::new(&mut buf))
        } else {
            Packer::Plain(DirentBuf::new(&mut buf))
        };
        assert!(packer.is_empty() && packer.len() == 0 && packer.resume_offset().is_none());
        // has_room with any length, even absurd ones.
        let probe = input.u64() as usize;
        assert_eq!(
            packer.has_room(probe),
            record_size(plus, probe).is_some_and(|need| need <= size)
        );
        while !input.0.is_empty() {
            let ino = input.u64();
            let next_offset = input.u64();
            let kind = input.u32();
            let name = input.name(b'x');
            let entry = plus.then(|| {
                let mut e = sys::fuse_entry_out::read_from_prefix(&[0u8; ENTRY])
                    .expect("zeroes")
                    .0;
                e.nodeid = input.u64();
                e.generation = input.u64();
                e.entry_valid = u64::from(input.u8());
                e.attr.ino = ino;
                e.attr.mode = input.u32();
                e.attr.size = input.u64();
                e
            });
            let p = Pushed {
                entry,
                ino,
                next_offset,
                kind,
                name,
            };
            let before = packer.len();
            let need = record_size(plus, p.name.len()).expect("short name");
            let fits = before + need <= size;
            assert_eq!(packer.has_room(p.name.len()), fits);
            match packer.push(&p) {
                Ok(()) => {
                    assert!(valid_name(&p.name) && fits);
                    assert_eq!(packer.len(), before + need);
                    last_resume = Some(p.next_offset);
                    pushed.push(p);
                }
                Err(DirentError::Full) => {
                    assert!(
                        valid_name(&p.name) && !fits,
                        "{} + {need} in {size}",
                        before
                    );
                    assert_eq!(packer.len(), before);
                }
                Err(DirentError::InvalidName) => {
                    assert!(!valid_name(&p.name));
                    assert_eq!(packer.len(), before);
                }
            }
            assert_eq!(packer.len() % 8, 0, "records are 8-byte aligned");
            assert!(packer.len() <= size);
            assert_eq!(packer.is_empty(), packer.len() == 0);
            assert_eq!(packer.resume_offset(), last_resume);
        }
        let len = packer.len();
        // What the packer wrote, written here from the pushed records: the bytes must be
        // identical, and beyond `len` untouched (so Full and InvalidName wrote nothing).
        let mut at = 0;
        for p in &pushed {
            let start = at;
            if let Some(e) = &p.entry {
                shadow[at..at + ENTRY].copy_from_slice(e.as_bytes());
                at += ENTRY;
            }
            shadow[at..at + 8].copy_from_slice(&p.ino.to_ne_bytes());
            shadow[at + 8..at + 16].copy_from_slice(&p.next_offset.to_ne_bytes());
            shadow[at + 16..at + 20].copy_from_slice(&(p.name.len() as u32).to_ne_bytes());
            shadow[at + 20..at + 24].copy_from_slice(&p.kind.to_ne_bytes());
            at += DIRENT_HEAD;
            shadow[at..at + p.name.len()].copy_from_slice(&p.name);
            at += p.name.len();
            let end = start + record_size(plus, p.name.len()).expect("short name");
            shadow[at..end].fill(0);
            at = end;
        }
        assert_eq!(at, len);
    }
    assert!(buf == shadow, "packed bytes differ from the records pushed");

    // And the kernel's walk over the reply finds exactly those records.
    let mut at = 0;
    for p in &pushed {
        let rec = if plus { at + ENTRY } else { at };
        assert_eq!(ne_u64(&buf, rec), p.ino);
        assert_eq!(ne_u64(&buf, rec + 8), p.next_offset);
        let namelen = ne_u32(&buf, rec + 16) as usize;
        assert_eq!(
            &buf[rec + DIRENT_HEAD..rec + DIRENT_HEAD + namelen],
            &p.name[..]
        );
        at = rec + (DIRENT_HEAD + namelen).div_ceil(8) * 8;
        assert_eq!(at % 8, 0);
    }
});
