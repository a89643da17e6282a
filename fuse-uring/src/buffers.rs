//! The ring-entry allocator ([`QueueBuffers`]) and the entry token ([`Entry`]).

use std::fmt;
use std::marker::PhantomData;
use std::mem::{align_of, offset_of, size_of};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};

use fuse_kernel_sys as sys;
use io_uring::squeue::Entry128;
use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use crate::error::{BufferError, CmdError, Command, ReplyError};
use crate::plain::Plain;
use crate::sqe::{self, DevFd};

/// Bytes of one entry's slot record (its iovec pair plus who it belongs to). The records are
/// at the start of the page-aligned mapping, so every record address is 64-aligned and the low
/// bits of a `user_data` built from it are free: bit 0 says which command the SQE carried.
pub const SLOT_SIZE: usize = 64;
const KIND_COMMIT: u64 = 1;

/// Bytes of a `fuse_uring_req_header` slot (288).
pub const HEADER_SIZE: usize = size_of::<sys::fuse_uring_req_header>();

/// The smallest payload buffer the kernel accepts (`FUSE_MIN_READ_BUFFER`, 8192).
pub const MIN_PAYLOAD_SIZE: usize = sys::FUSE_MIN_READ_BUFFER as usize;

/// The largest payload buffer: `fuse_uring_ent_in_out.payload_sz` is a `u32`.
pub const MAX_PAYLOAD_SIZE: usize = u32::MAX as usize;

/// One entry's record in the mapping. `iov` is what REGISTER's `addr` points to; the kernel
/// reads it during REGISTER only. Written once when the buffers are created, never after.
#[repr(C, align(64))]
struct Slot {
    iov: [libc::iovec; 2],
    fd: DevFd,
    qid: u16,
    index: u32,
}

const _: () = {
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(offset_of!(Slot, iov) == 0);
    assert!(size_of::<libc::iovec>() == 16);
    // Header slots are packed at a multiple of 288 from a 64-aligned start: 8-aligned, enough
    // for every struct read from or written to them.
    assert!(HEADER_SIZE % align_of::<sys::fuse_uring_req_header>() == 0);
    assert!(align_of::<sys::fuse_uring_req_header>() >= align_of::<sys::fuse_in_header>());
    assert!(align_of::<sys::fuse_uring_req_header>() >= align_of::<sys::fuse_out_header>());
    assert!(SLOT_SIZE % align_of::<sys::fuse_uring_req_header>() == 0);
    assert!(size_of::<sys::fuse_in_header>() <= sys::FUSE_URING_IN_OUT_HEADER_SZ as usize);
    assert!(size_of::<sys::fuse_out_header>() <= sys::FUSE_URING_IN_OUT_HEADER_SZ as usize);
    assert!(offset_of!(sys::fuse_uring_req_header, in_out) == 0);
};

/// Where everything lies in the one mapping of a queue.
///
/// ```text
/// [0, headers_offset)                 depth slot records of 64 bytes (the iovec pairs)
/// [headers_offset, + depth * 288)     depth fuse_uring_req_header slots, packed
/// [payloads_offset, + depth * stride) depth payload slots, page-aligned, stride = payload
///                                     size rounded up to the page size
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    depth: u32,
    payload_size: usize,
    page_size: usize,
    headers_offset: usize,
    payloads_offset: usize,
    payload_stride: usize,
    len: usize,
}

impl Layout {
    /// Computes the layout of `depth` entries with `payload_size`-byte payload buffers for
    /// pages of `page_size` bytes.
    ///
    /// # Errors
    /// [`BufferError::ZeroDepth`], [`BufferError::PayloadTooSmall`] (below 8192),
    /// [`BufferError::PayloadTooLarge`] (above `u32::MAX`), [`BufferError::TooLarge`] when the
    /// total overflows, [`BufferError::BadPageSize`] when `page_size` is not a power of two of
    /// at least 4096.
    pub fn new(depth: u32, payload_size: usize, page_size: usize) -> Result<Layout, BufferError> {
        if depth == 0 {
            return Err(BufferError::ZeroDepth);
        }
        if payload_size < MIN_PAYLOAD_SIZE {
            return Err(BufferError::PayloadTooSmall {
                requested: payload_size,
                minimum: MIN_PAYLOAD_SIZE,
            });
        }
        if payload_size > MAX_PAYLOAD_SIZE {
            return Err(BufferError::PayloadTooLarge {
                requested: payload_size,
                maximum: MAX_PAYLOAD_SIZE,
            });
        }
        if !page_size.is_power_of_two() || page_size < 4096 {
            return Err(BufferError::BadPageSize(page_size));
        }
        let too_large = || BufferError::TooLarge {
            depth,
            payload_size,
        };
        let round_up = |x: usize| x.checked_add(page_size - 1).map(|x| x & !(page_size - 1));
        let n = depth as usize;
        let headers_offset = n.checked_mul(SLOT_SIZE).ok_or_else(too_large)?;
        let headers_end = n
            .checked_mul(HEADER_SIZE)
            .and_then(|h| h.checked_add(headers_offset))
            .ok_or_else(too_large)?;
        let payloads_offset = round_up(headers_end).ok_or_else(too_large)?;
        let payload_stride = round_up(payload_size).ok_or_else(too_large)?;
        let len = n
            .checked_mul(payload_stride)
            .and_then(|p| p.checked_add(payloads_offset))
            .filter(|&len| len <= isize::MAX as usize)
            .ok_or_else(too_large)?;
        Ok(Layout {
            depth,
            payload_size,
            page_size,
            headers_offset,
            payloads_offset,
            payload_stride,
            len,
        })
    }

    /// Number of entries.
    pub fn depth(&self) -> u32 {
        self.depth
    }

    /// Size of each payload buffer (`iov[1].iov_len`).
    pub fn payload_size(&self) -> usize {
        self.payload_size
    }

    /// The page size the layout was made for.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Total bytes of the mapping (a multiple of the page size).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a layout has at least one entry.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Offset of entry `index`'s slot record (its iovec pair).
    pub fn slot_offset(&self, index: u32) -> usize {
        index as usize * SLOT_SIZE
    }

    /// Offset of entry `index`'s `fuse_uring_req_header` (288 bytes).
    pub fn header_offset(&self, index: u32) -> usize {
        self.headers_offset + index as usize * HEADER_SIZE
    }

    /// Offset of entry `index`'s payload buffer (page-aligned).
    pub fn payload_offset(&self, index: u32) -> usize {
        self.payloads_offset + index as usize * self.payload_stride
    }

    /// Distance between consecutive payload buffers (payload size rounded up to pages).
    pub fn payload_stride(&self) -> usize {
        self.payload_stride
    }
}

/// How the memory of the buffers is faulted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Prefault {
    /// Touched lazily (the default): a page becomes resident when the kernel first writes a
    /// request into it or the server writes a reply. Allocation costs one `mmap(2)` and the
    /// slot records, whatever the depth and payload size.
    #[default]
    Lazy,
    /// `MAP_POPULATE`: the whole mapping is faulted in by `mmap(2)`, in small pages.
    MapPopulate,
    /// `madvise(MADV_POPULATE_WRITE)` (Linux 5.14+) after `MADV_HUGEPAGE` when huge pages are
    /// asked for, so the prefaulted memory can be huge pages.
    PopulateWrite,
}

/// Parameters of one queue's buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// The queue id (`0 .. number of possible CPUs`; see [`queue_ids`](crate::queue_ids)).
    pub qid: u16,
    /// Number of entries (at least 1; each one can hold one request at a time).
    pub depth: u32,
    /// Bytes of each payload buffer; at least the connection's
    /// [`payload_size`](crate::payload_size), else REGISTER fails with `EINVAL`.
    pub payload_size: usize,
    /// The `/dev/fuse` fd (or fixed-file index) every command of these entries targets.
    pub fd: DevFd,
    /// How memory is faulted in; [`Prefault::Lazy`] by default.
    pub prefault: Prefault,
    /// `madvise(MADV_HUGEPAGE)` on the mapping (transparent huge pages); off by default.
    pub huge_pages: bool,
}

impl QueueConfig {
    /// Lazily faulted buffers of `depth` entries for queue `qid` on `fd`, without huge pages.
    pub fn new(qid: u16, depth: u32, payload_size: usize, fd: impl Into<DevFd>) -> QueueConfig {
        QueueConfig {
            qid,
            depth,
            payload_size,
            fd: fd.into(),
            prefault: Prefault::Lazy,
            huge_pages: false,
        }
    }
}

/// The buffers of all entries of one FUSE io_uring queue, in one anonymous mapping.
///
/// Created with [`QueueBuffers::new`]; the entries are handed out once as [`Entry`] tokens by
/// [`take_entries`](QueueBuffers::take_entries) and come back from the kernel through
/// [`complete`](QueueBuffers::complete). The addresses given to the kernel never move; the
/// mapping is unmapped once, on drop.
///
/// # Keeping it alive
/// Dropping the buffers while the kernel still holds entries (commands without their CQE)
/// would let the kernel write into memory that may by then belong to something else. Pushing
/// an SQE to a ring is `unsafe` in io-uring precisely for this: the buffers must outlive the
/// command. Drain all entries first (at unmount every armed entry completes with `ENOTCONN`),
/// or, when bailing out early, leak the buffers with [`std::mem::forget`].
pub struct QueueBuffers {
    base: NonNull<u8>,
    layout: Layout,
    qid: u16,
    fd: DevFd,
    taken: AtomicBool,
}

// SAFETY: the mapping is owned by this value alone; after `new` the only shared state is the
// immutable slot records and the atomic `taken` flag. Entry memory is accessed only through
// `Entry` tokens, each of which grants exclusive access to its own entry.
unsafe impl Send for QueueBuffers {}
// SAFETY: as above: `&QueueBuffers` allows reading the immutable records, atomically taking
// the tokens once, and minting tokens from completions, which the push contract makes unique.
unsafe impl Sync for QueueBuffers {}

impl fmt::Debug for QueueBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueBuffers")
            .field("base", &self.base)
            .field("qid", &self.qid)
            .field("fd", &self.fd)
            .field("layout", &self.layout)
            .finish()
    }
}

impl QueueBuffers {
    /// Maps the buffers for `config.depth` entries (one `mmap(2)`), optionally advises huge
    /// pages and prefaults, and writes each entry's iovec pair. No other allocation.
    ///
    /// # Errors
    /// The size errors of [`Layout::new`] (before any system call), [`BufferError::Map`] when
    /// `mmap(2)` fails, [`BufferError::Advise`] when `madvise(2)` fails (the mapping is
    /// released again).
    pub fn new(config: QueueConfig) -> Result<QueueBuffers, BufferError> {
        let layout = Layout::new(
            config.depth,
            config.payload_size,
            rustix::param::page_size(),
        )?;
        let mut flags = MapFlags::PRIVATE;
        if config.prefault == Prefault::MapPopulate {
            flags |= MapFlags::POPULATE;
        }
        // SAFETY: a fresh anonymous mapping at an address of the kernel's choice (null hint)
        // cannot overlap or invalidate any existing memory.
        let base = unsafe {
            rustix::mm::mmap_anonymous(
                ptr::null_mut(),
                layout.len,
                ProtFlags::READ | ProtFlags::WRITE,
                flags,
            )
        }
        .map_err(|e| BufferError::Map(e.into()))?;
        let base = NonNull::new(base.cast::<u8>()).ok_or(BufferError::Map(Errno::NOMEM.into()))?;
        // From here on, drop unmaps.
        let buffers = QueueBuffers {
            base,
            layout,
            qid: config.qid,
            fd: config.fd,
            taken: AtomicBool::new(false),
        };
        if config.huge_pages {
            buffers.advise(Advice::LinuxHugepage, "MADV_HUGEPAGE")?;
        }
        if config.prefault == Prefault::PopulateWrite {
            buffers.advise(Advice::LinuxPopulateWrite, "MADV_POPULATE_WRITE")?;
        }
        for index in 0..layout.depth {
            let slot = Slot {
                iov: [
                    libc::iovec {
                        iov_base: buffers.at(layout.header_offset(index)).cast(),
                        iov_len: HEADER_SIZE,
                    },
                    libc::iovec {
                        iov_base: buffers.at(layout.payload_offset(index)).cast(),
                        iov_len: layout.payload_size,
                    },
                ],
                fd: config.fd,
                qid: config.qid,
                index,
            };
            // SAFETY: the slot record lies inside the mapping (offset < headers_offset <= len),
            // is 64-aligned (page-aligned base + multiple of 64), and nobody else can see the
            // mapping yet.
            unsafe {
                buffers
                    .at(layout.slot_offset(index))
                    .cast::<Slot>()
                    .write(slot)
            };
        }
        Ok(buffers)
    }

    /// A pointer `offset` bytes into the mapping (with the mapping's provenance).
    fn at(&self, offset: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(offset)
    }

    fn advise(&self, advice: Advice, name: &'static str) -> Result<(), BufferError> {
        // SAFETY: the range is exactly our own mapping; hugepage and populate advice change
        // neither its contents (it is still all zero) nor its addresses.
        unsafe { rustix::mm::madvise(self.base.as_ptr().cast(), self.layout.len, advice) }.map_err(
            |e| BufferError::Advise {
                advice: name,
                error: e.into(),
            },
        )
    }

    /// The layout of the mapping.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The queue id of these entries.
    pub fn qid(&self) -> u16 {
        self.qid
    }

    /// The fd every command of these entries targets.
    pub fn fd(&self) -> DevFd {
        self.fd
    }

    /// Start and length of the mapping, for example to `mbind(2)` it to a NUMA node or to
    /// measure residency with `mincore(2)`. Using the pointer to access memory of entries the
    /// kernel holds is a data race.
    pub fn mapping(&self) -> (NonNull<u8>, usize) {
        (self.base, self.layout.len)
    }

    /// Hands out the tokens of all entries, once: `None` on every later call.
    ///
    /// Each [`Entry`] is then typically registered with [`Entry::register`].
    pub fn take_entries(&self) -> Option<Entries<'_>> {
        if self.taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(Entries {
            buffers: self,
            next: 0,
        })
    }

    /// Whether the entries were handed out by [`take_entries`](QueueBuffers::take_entries).
    pub fn entries_taken(&self) -> bool {
        self.taken.load(Ordering::Acquire)
    }

    /// Whether `entry` is one of these buffers' entries.
    #[inline]
    pub fn owns_entry(&self, entry: &Entry<'_>) -> bool {
        self.slot_of(entry.slot.as_ptr() as u64).is_some()
    }

    /// Whether `user_data` is the `user_data` of an SQE built for one of these entries.
    #[inline]
    pub fn owns(&self, user_data: u64) -> bool {
        self.slot_of(user_data).is_some()
    }

    #[inline]
    fn slot_of(&self, user_data: u64) -> Option<NonNull<Slot>> {
        let offset = (user_data & !KIND_COMMIT).wrapping_sub(self.base.as_ptr() as u64);
        if offset >= self.layout.headers_offset as u64 || offset % SLOT_SIZE as u64 != 0 {
            return None;
        }
        NonNull::new(self.at(offset as usize).cast::<Slot>())
    }

    /// Decodes a completion (`cqe.user_data()`, `cqe.result()`) of one of these entries into
    /// the entry and the kernel's verdict, or `None` when `user_data` is not one of ours (it
    /// may belong to another `QueueBuffers` or to an unrelated SQE on the same ring).
    ///
    /// `Ok(())` means a request has been written into the entry's buffers (after REGISTER or
    /// COMMIT_AND_FETCH): read it with [`Entry::in_header`] and friends. An error keeps the
    /// kernel's errno ([`CmdError`]); the entry is back in the caller's hands either way.
    ///
    /// [`Queue`](crate::Queue) does this (and the pushing) for you, safely.
    ///
    /// # Safety
    /// This mints the token of the entry `user_data` names, so it must be the completion of
    /// an SQE built by [`Entry::register`] or [`Entry::commit_and_fetch`] for an entry of
    /// these buffers, pushed once and unchanged, and each such completion must be decoded
    /// once. A made-up or repeated `user_data` would create a second token for an entry that
    /// the kernel or another token owns. (Foreign values that are not ours return `None`.)
    #[inline]
    pub unsafe fn complete(&self, user_data: u64, result: i32) -> Option<Completion<'_>> {
        let slot = self.slot_of(user_data)?;
        let command = if user_data & KIND_COMMIT != 0 {
            Command::CommitAndFetch
        } else {
            Command::Register
        };
        let result = if result < 0 {
            // The kernel's errors are -4095..=-1; anything else in a CQE is not an errno
            // (rustix refuses to build one from it) and is reported as EIO.
            let errno = match result.checked_neg() {
                Some(e @ 1..=4095) => Errno::from_raw_os_error(e),
                _ => Errno::IO,
            };
            Err(CmdError::new(command, errno))
        } else {
            Ok(())
        };
        Some(Completion {
            entry: Entry {
                slot,
                _buffers: PhantomData,
            },
            command,
            result,
        })
    }

    /// [`complete`](QueueBuffers::complete) for an io-uring CQE.
    ///
    /// # Safety
    /// As for [`complete`](QueueBuffers::complete): `cqe` is the completion of an SQE built
    /// for one of these entries, pushed once, and it is decoded once.
    #[inline]
    pub unsafe fn complete_cqe(&self, cqe: &io_uring::cqueue::Entry) -> Option<Completion<'_>> {
        // SAFETY: the caller's contract is ours.
        unsafe { self.complete(cqe.user_data(), cqe.result()) }
    }
}

impl Drop for QueueBuffers {
    fn drop(&mut self) {
        // SAFETY: `base`/`len` are exactly the mapping made in `new`, unmapped only here. No
        // Rust reference into it can exist: every `Entry` borrows `self`. The kernel must not
        // hold entries any more (the contract of pushing their SQEs, see the type docs).
        let _ = unsafe { rustix::mm::munmap(self.base.as_ptr().cast(), self.layout.len) };
    }
}

/// The tokens of all entries of a [`QueueBuffers`], from [`QueueBuffers::take_entries`].
#[derive(Debug)]
pub struct Entries<'a> {
    buffers: &'a QueueBuffers,
    next: u32,
}

impl<'a> Iterator for Entries<'a> {
    type Item = Entry<'a>;

    fn next(&mut self) -> Option<Entry<'a>> {
        if self.next >= self.buffers.layout.depth {
            return None;
        }
        let offset = self.buffers.layout.slot_offset(self.next);
        self.next += 1;
        let slot = NonNull::new(self.buffers.at(offset).cast::<Slot>())?;
        Some(Entry {
            slot,
            _buffers: PhantomData,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.buffers.layout.depth - self.next) as usize;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Entries<'_> {}

/// What a CQE of one of our SQEs says: the entry (back in the caller's hands), which command
/// completed, and the kernel's verdict.
#[derive(Debug)]
pub struct Completion<'a> {
    /// The entry the command was for.
    pub entry: Entry<'a>,
    /// REGISTER or COMMIT_AND_FETCH.
    pub command: Command,
    /// `Ok(())`: a request is in the entry's buffers. `Err`: the kernel's errno.
    pub result: Result<(), CmdError>,
}

/// The token of one ring entry: a pointer-sized value whose possession is the right to read
/// and write the entry's buffers.
///
/// # Ownership, and why it is sound
/// An entry's buffers (its `fuse_uring_req_header` slot and its payload buffer) are written
/// by the kernel only while a command for the entry is in flight: the kernel copies a request
/// into them just before it completes REGISTER or COMMIT_AND_FETCH with `res = 0`, and reads
/// the reply from them while processing COMMIT_AND_FETCH. It touches them at no other time
/// (at teardown, armed entries complete with `ENOTCONN` without a copy).
///
/// - The token is not `Clone`. Building an SQE ([`register`](Entry::register),
///   [`commit_and_fetch`](Entry::commit_and_fetch)) consumes it: while the command is in
///   flight no safe code can reach the buffers.
/// - The SQE's `user_data` names the entry; decoding the CQE turns it back into the one
///   token, after the kernel is done with the buffers (the CQE is read with acquire
///   ordering, so the kernel's writes are visible).
/// - While you hold the token, the accessors give shared (`&self`) or exclusive (`&mut self`)
///   access to the buffers, checked by the borrow checker. The token borrows the
///   [`QueueBuffers`], so the memory cannot be unmapped under it.
/// - COMMIT_AND_FETCH takes the commit id from the entry's own header, where the kernel put
///   it, and the writers never change it; so a commit always refers to the request in *this*
///   entry (the kernel picks the buffers by commit id, not by `user_data`).
///
/// What the token cannot see is the ring. With [`Queue`](crate::Queue), which owns the ring,
/// pushes the SQEs, decodes the CQEs and counts the entries in the kernel, all of it is safe.
/// With your own ring, two `unsafe` steps carry the rest of the contract: io-uring's `push`
/// (push each SQE built here **once**, unchanged, `user_data` included, and keep the
/// `QueueBuffers` alive until its CQE) and [`QueueBuffers::complete`] (decode each of those
/// CQEs once, with the same `QueueBuffers`).
pub struct Entry<'a> {
    slot: NonNull<Slot>,
    _buffers: PhantomData<&'a QueueBuffers>,
}

// SAFETY: an `Entry` is exclusive access to one entry's buffers (like `&mut [u8]`) plus shared
// access to its immutable slot record; `QueueBuffers` is `Sync`.
unsafe impl Send for Entry<'_> {}
// SAFETY: `&Entry` only reads (the slot record and the buffers); writes need `&mut Entry`.
unsafe impl Sync for Entry<'_> {}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("qid", &self.qid())
            .field("index", &self.index())
            .field("commit_id", &self.commit_id())
            .finish()
    }
}

impl<'a> Entry<'a> {
    #[inline(always)]
    fn slot(&self) -> &Slot {
        // SAFETY: `slot` points to an initialised, 64-aligned record inside the mapping, which
        // lives at least as long as 'a (the token borrows the `QueueBuffers`); records are never
        // written after `QueueBuffers::new` (the kernel only reads the iovec pair).
        unsafe { self.slot.as_ref() }
    }

    #[inline(always)]
    fn header_ptr(&self) -> *mut sys::fuse_uring_req_header {
        self.slot().iov[0].iov_base.cast()
    }

    #[inline(always)]
    fn header(&self) -> &sys::fuse_uring_req_header {
        // SAFETY: the header slot is 288 bytes inside the mapping, 8-aligned, of a type valid
        // for every bit pattern (integers and byte arrays; the mapping is zero-initialised).
        // Holding the token means the kernel does not write it (see the type docs), and `&self`
        // excludes writes through this token.
        unsafe { &*self.header_ptr() }
    }

    #[inline(always)]
    fn header_mut(&mut self) -> &mut sys::fuse_uring_req_header {
        // SAFETY: as in `header`, and `&mut self` makes this the only reference.
        unsafe { &mut *self.header_ptr() }
    }

    /// The entry's index in its [`QueueBuffers`] (`0..depth`), for side tables.
    #[inline]
    pub fn index(&self) -> u32 {
        self.slot().index
    }

    /// The queue id the entry belongs to.
    #[inline]
    pub fn qid(&self) -> u16 {
        self.slot().qid
    }

    /// The request's `fuse_in_header` (`in_out[0..40)` of the header slot).
    ///
    /// Meaningful after a successful completion; zero in an entry that never received a
    /// request, and overwritten by the reply's `fuse_out_header` once one is set.
    #[inline]
    pub fn in_header(&self) -> &sys::fuse_in_header {
        // SAFETY: `in_out` is at offset 0 of the 8-aligned header slot and is 128 bytes, more
        // than the 40 of `fuse_in_header` (both asserted at compile time); `fuse_in_header` is
        // valid for every bit pattern; aliasing as in `header`.
        unsafe { &*self.header_ptr().cast::<sys::fuse_in_header>() }
    }

    /// The `fuse_uring_ent_in_out` the kernel wrote with the request (commit id, payload size).
    #[inline]
    pub fn ent_in_out(&self) -> &sys::fuse_uring_ent_in_out {
        &self.header().ring_ent_in_out
    }

    /// The commit id of the request in the entry (the kernel sets it to the request's
    /// `unique`); [`commit_and_fetch`](Entry::commit_and_fetch) sends it back.
    #[inline]
    pub fn commit_id(&self) -> u64 {
        self.ent_in_out().commit_id
    }

    /// The opcode's fixed argument (`op_in`), such as `fuse_getattr_in` for GETATTR or
    /// `fuse_read_in` for READ: `in_header.len - 40 - payload_sz` bytes, at most 128. Empty for
    /// opcodes whose first argument is empty or is a name (LOOKUP: the name is in the payload).
    #[inline]
    pub fn op_in(&self) -> &[u8] {
        let header = self.header();
        let len = (self.in_header().len as usize)
            .saturating_sub(size_of::<sys::fuse_in_header>())
            .saturating_sub(header.ring_ent_in_out.payload_sz as usize)
            .min(header.op_in.len());
        let op_in = ptr::from_ref(&header.op_in).cast::<u8>();
        // SAFETY: `op_in` is a 128-byte array inside the header, `len` <= 128, and c_char and
        // u8 have the same size and validity; aliasing as in `header`.
        unsafe { std::slice::from_raw_parts(op_in, len) }
    }

    /// The opcode's fixed argument as a struct (an unaligned copy), or `None` when `op_in` is
    /// shorter than `T`.
    #[inline]
    pub fn op_in_as<T: Plain>(&self) -> Option<T> {
        let bytes = self.op_in();
        if bytes.len() < size_of::<T>() {
            return None;
        }
        // SAFETY: `bytes` has at least size_of::<T>() readable bytes, and `T: Plain` is valid
        // for every bit pattern; `read_unaligned` needs no alignment.
        Some(unsafe { bytes.as_ptr().cast::<T>().read_unaligned() })
    }

    /// The size of the payload buffer (what REGISTER announced in `iov[1].iov_len`).
    #[inline]
    pub fn payload_capacity(&self) -> usize {
        self.slot().iov[1].iov_len
    }

    /// The request's remaining arguments (names, write data...): `payload_sz` bytes of the
    /// payload buffer, cut at the buffer's size if `payload_sz` claims more.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let len = (self.ent_in_out().payload_sz as usize).min(self.payload_capacity());
        // SAFETY: the payload buffer is `payload_capacity()` bytes inside the mapping and
        // `len` is at most that; u8 is valid for every bit pattern (the memory is initialised:
        // zero from mmap or written by the kernel or by us); the token excludes kernel writes
        // and `&self` excludes our own.
        unsafe { std::slice::from_raw_parts(self.slot().iov[1].iov_base.cast::<u8>(), len) }
    }

    /// The whole payload buffer, to write a reply in place (then call
    /// [`set_reply`](Entry::set_reply) with its length). It still holds the request's payload
    /// until overwritten.
    #[inline]
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let len = self.payload_capacity();
        let base = self.slot().iov[1].iov_base.cast::<u8>();
        // SAFETY: as in `payload`, for the whole buffer, and `&mut self` makes it exclusive.
        unsafe { std::slice::from_raw_parts_mut(base, len) }
    }

    /// Writes the reply header for a successful reply whose `len` payload bytes are already
    /// in [`payload_mut`](Entry::payload_mut): `fuse_out_header { len: 16 + len, error: 0,
    /// unique }` at `in_out[0..16)` and `payload_sz = len`. `unique` is the commit id (the
    /// request's `unique`).
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] when `len` exceeds the payload buffer (nothing is written).
    #[inline]
    pub fn set_reply(&mut self, len: usize) -> Result<(), ReplyError> {
        let capacity = self.payload_capacity();
        if len > capacity {
            return Err(ReplyError::TooLong { len, capacity });
        }
        // Both fit: len <= capacity <= u32::MAX (checked by `Layout::new`).
        let out_len = u32::try_from(size_of::<sys::fuse_out_header>() + len)
            .map_err(|_| ReplyError::TooLong { len, capacity })?;
        self.write_out_header(out_len, 0, len as u32);
        Ok(())
    }

    /// Writes an error reply: `fuse_out_header { len: 16, error: -errno, unique }` and
    /// `payload_sz = 0`.
    ///
    /// # Errors
    /// [`ReplyError::InvalidErrno`] unless `1 <= errno <= 511` (nothing is written).
    #[inline]
    pub fn set_error(&mut self, errno: i32) -> Result<(), ReplyError> {
        if !(1..=511).contains(&errno) {
            return Err(ReplyError::InvalidErrno(errno));
        }
        self.write_out_header(size_of::<sys::fuse_out_header>() as u32, -errno, 0);
        Ok(())
    }

    /// Copies `data` into the payload buffer and sets the reply header
    /// ([`set_reply`](Entry::set_reply)).
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] when `data` does not fit (nothing is written).
    #[inline]
    pub fn reply(&mut self, data: &[u8]) -> Result<(), ReplyError> {
        let capacity = self.payload_capacity();
        let Some(dst) = self.payload_mut().get_mut(..data.len()) else {
            return Err(ReplyError::TooLong {
                len: data.len(),
                capacity,
            });
        };
        dst.copy_from_slice(data);
        self.set_reply(data.len())
    }

    /// Copies a reply struct (for example `fuse_attr_out`) into the payload buffer and sets
    /// the reply header.
    ///
    /// # Errors
    /// [`ReplyError::TooLong`] when it does not fit (never for a ≥ 8192-byte buffer).
    #[inline]
    pub fn reply_value<T: Plain>(&mut self, value: &T) -> Result<(), ReplyError> {
        // SAFETY: `T: Plain` has no padding, so all size_of::<T>() bytes behind the reference
        // are initialised; the slice borrows `value`.
        let bytes = unsafe {
            std::slice::from_raw_parts(ptr::from_ref(value).cast::<u8>(), size_of::<T>())
        };
        self.reply(bytes)
    }

    #[inline(always)]
    fn write_out_header(&mut self, len: u32, error: i32, payload_sz: u32) {
        let out = sys::fuse_out_header {
            len,
            error,
            unique: self.commit_id(),
        };
        let header = self.header_mut();
        header.ring_ent_in_out.payload_sz = payload_sz;
        let dst = ptr::from_mut(&mut header.in_out).cast::<sys::fuse_out_header>();
        // SAFETY: `in_out` is 128 bytes at offset 0 of the 8-aligned header slot, enough for the
        // 16-byte, 8-aligned `fuse_out_header` (asserted at compile time); the pointer comes
        // from a unique reference.
        unsafe { dst.write(out) };
    }

    #[inline(always)]
    fn user_data(&self, command: Command) -> u64 {
        let kind = match command {
            Command::Register => 0,
            Command::CommitAndFetch => KIND_COMMIT,
        };
        self.slot.as_ptr() as u64 | kind
    }

    /// Builds the REGISTER SQE for this entry (its iovec pair, its queue, its fd), consuming
    /// the token until the CQE gives it back: when a request has been written into the
    /// buffers (`Ok`), or with the kernel's error.
    ///
    /// Register an entry once per connection; afterwards use
    /// [`commit_and_fetch`](Entry::commit_and_fetch). An entry whose REGISTER failed may be
    /// registered again.
    #[inline]
    #[must_use = "the entry is lost unless the SQE is pushed to the ring"]
    pub fn register(self) -> Entry128 {
        let slot = self.slot();
        sqe::register(
            slot.fd,
            slot.qid,
            ptr::from_ref(&slot.iov),
            self.user_data(Command::Register),
        )
    }

    /// Builds the COMMIT_AND_FETCH SQE for this entry: the kernel reads the reply you wrote
    /// (header with [`set_reply`](Entry::set_reply) / [`set_error`](Entry::set_error) /
    /// [`reply`](Entry::reply), payload), finishes the request, and waits for the next request
    /// in the same buffers. Consumes the token until the CQE gives it back.
    ///
    /// The commit id is the one in the entry's header. Committing an entry that holds no
    /// request (never fetched) completes with `ENOENT`.
    #[inline]
    #[must_use = "the entry is lost unless the SQE is pushed to the ring"]
    pub fn commit_and_fetch(self) -> Entry128 {
        let slot = self.slot();
        sqe::commit_and_fetch(
            slot.fd,
            slot.qid,
            self.commit_id(),
            self.user_data(Command::CommitAndFetch),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqe::tests::{IOSQE_FIXED_FILE_BIT, decode};

    #[test]
    fn layout_errors_before_any_mmap() {
        assert!(matches!(
            Layout::new(0, 8192, 4096),
            Err(BufferError::ZeroDepth)
        ));
        assert!(matches!(
            Layout::new(1, 8191, 4096),
            Err(BufferError::PayloadTooSmall {
                requested: 8191,
                minimum: 8192
            })
        ));
        assert!(matches!(
            Layout::new(1, u32::MAX as usize + 1, 4096),
            Err(BufferError::PayloadTooLarge { .. })
        ));
        assert!(matches!(
            Layout::new(u32::MAX, u32::MAX as usize, 4096),
            Err(BufferError::TooLarge { .. })
        ));
        assert!(matches!(
            Layout::new(1, 8192, 3000),
            Err(BufferError::BadPageSize(3000))
        ));
        // QueueBuffers::new reports the same errors.
        assert!(matches!(
            QueueBuffers::new(QueueConfig::new(0, 0, 1 << 20, DevFd::Fd(-1))),
            Err(BufferError::ZeroDepth)
        ));
        assert!(matches!(
            QueueBuffers::new(QueueConfig::new(0, 4, 4096, DevFd::Fd(-1))),
            Err(BufferError::PayloadTooSmall { .. })
        ));
    }

    /// Regions of one layout: (start, end) of every slot record, header and payload.
    fn regions(l: &Layout) -> Vec<(usize, usize, &'static str)> {
        let mut r = Vec::new();
        for i in 0..l.depth() {
            r.push((l.slot_offset(i), l.slot_offset(i) + 64, "slot"));
            r.push((l.header_offset(i), l.header_offset(i) + 288, "header"));
            r.push((
                l.payload_offset(i),
                l.payload_offset(i) + l.payload_size(),
                "payload",
            ));
        }
        r.sort();
        r
    }

    #[test]
    fn layout_is_aligned_packed_and_disjoint() {
        for (depth, payload, page) in [
            (1, 8192, 4096),
            (3, 8193, 4096),
            (256, 1 << 20, 4096),
            (7, 135_168, 65536),
            (100, 12_288, 16384),
        ] {
            let l = Layout::new(depth, payload, page).unwrap();
            // Sizes: 64-byte records, 288-byte headers back to back, page-rounded payloads.
            assert_eq!(l.slot_offset(0), 0);
            assert_eq!(l.header_offset(0), depth as usize * 64);
            assert_eq!(l.payload_stride(), payload.div_ceil(page) * page);
            assert_eq!(
                l.payload_offset(0),
                (depth as usize * (64 + 288)).div_ceil(page) * page
            );
            assert_eq!(
                l.len(),
                l.payload_offset(0) + depth as usize * l.payload_stride()
            );
            assert_eq!(l.len() % page, 0);
            for i in 0..depth {
                assert_eq!(l.slot_offset(i) % 64, 0);
                assert_eq!(l.header_offset(i) % 8, 0);
                assert_eq!(l.payload_offset(i) % page, 0);
                if i > 0 {
                    assert_eq!(l.header_offset(i) - l.header_offset(i - 1), 288, "packed");
                }
            }
            // No overlap, everything inside the mapping.
            let r = regions(&l);
            for w in r.windows(2) {
                assert!(w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
            }
            assert!(r.last().unwrap().1 <= l.len());
        }
    }

    fn buffers(depth: u32) -> QueueBuffers {
        QueueBuffers::new(QueueConfig::new(2, depth, 3 * 4096, DevFd::Fixed(1))).unwrap()
    }

    #[test]
    fn entries_are_handed_out_once_with_their_buffers() {
        let b = buffers(4);
        let (base, len) = b.mapping();
        let base = base.as_ptr() as usize;
        let entries: Vec<Entry<'_>> = b.take_entries().unwrap().collect();
        assert!(b.take_entries().is_none(), "tokens are handed out once");
        assert_eq!(entries.len(), 4);
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.index(), i as u32);
            assert_eq!(e.qid(), 2);
            assert_eq!(e.payload_capacity(), 3 * 4096);
            let slot = e.slot();
            assert_eq!(
                slot.iov[0].iov_base as usize,
                base + b.layout().header_offset(i as u32)
            );
            assert_eq!(slot.iov[0].iov_len, 288);
            assert_eq!(
                slot.iov[1].iov_base as usize,
                base + b.layout().payload_offset(i as u32)
            );
            assert!(slot.iov[1].iov_base as usize + slot.iov[1].iov_len <= base + len);
            // Fresh memory: no request, empty accessors.
            assert_eq!(e.commit_id(), 0);
            assert!(e.op_in().is_empty());
            assert!(e.payload().is_empty());
        }
    }

    #[test]
    fn register_sqe_points_at_the_entry_iovecs_and_round_trips() {
        let b = buffers(3);
        let mut entries = b.take_entries().unwrap();
        let _first = entries.next().unwrap();
        let second = entries.next().unwrap();
        let iov_addr = ptr::from_ref(&second.slot().iov) as u64;
        let sqe = second.register();
        let d = decode(&sqe);
        assert_eq!(d.cmd_op, sys::FUSE_IO_URING_CMD_REGISTER);
        assert_eq!(d.addr, iov_addr);
        assert_eq!(d.len, 2);
        assert_eq!(d.cmd_qid, 2);
        assert_eq!(d.fd, 1);
        assert_eq!(d.flags, 1 << IOSQE_FIXED_FILE_BIT);
        assert_eq!(
            d.user_data, iov_addr,
            "REGISTER user_data is the slot address"
        );

        // The CQE gives the same entry back, with the kernel's errno.
        // SAFETY: the SQEs of these tests are never pushed; each minted token is the only one
        // of its entry while it lives.
        let done = unsafe { b.complete(d.user_data, -libc::EINVAL) }.unwrap();
        assert_eq!(done.entry.index(), 1);
        assert_eq!(done.command, Command::Register);
        let err = done.result.unwrap_err();
        assert_eq!(err.raw_os_error(), libc::EINVAL);
        assert_eq!(err.command(), Command::Register);
        // Registering it again consumes the token again; its completion gives it back.
        let again = done.entry.register();
        assert_eq!(again.get_user_data(), d.user_data);
        // SAFETY: as above, the previous token was consumed by `register`.
        let ok = unsafe { b.complete(again.get_user_data(), 0) }.unwrap();
        assert!(ok.result.is_ok());
        assert_eq!(ok.entry.index(), 1);
    }

    #[test]
    fn commit_sqe_carries_the_entry_commit_id() {
        let b = buffers(2);
        let mut entry = b.take_entries().unwrap().nth(1).unwrap();
        // Pretend the kernel delivered a request with unique 0x1234 (what it writes on fetch).
        entry.header_mut().ring_ent_in_out.commit_id = 0x1234;
        let sqe = entry.commit_and_fetch();
        let d = decode(&sqe);
        assert_eq!(d.cmd_op, sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH);
        assert_eq!(d.cmd_commit_id, 0x1234);
        assert_eq!(d.cmd_qid, 2);
        assert_eq!(d.addr, 0);
        assert_eq!(d.len, 0);
        assert_eq!(d.user_data & 1, 1, "bit 0 marks COMMIT_AND_FETCH");
        // SAFETY: the SQE is never pushed; this is the only token of entry 1.
        let done = unsafe { b.complete(d.user_data, -libc::ENOENT) }.unwrap();
        assert_eq!(done.command, Command::CommitAndFetch);
        assert_eq!(done.entry.index(), 1);
        assert!(done.result.unwrap_err().is_unknown_commit_id());
    }

    #[test]
    fn foreign_user_data_is_not_decoded() {
        let a = buffers(2);
        let b = buffers(2);
        let (base, _) = a.mapping();
        let base = base.as_ptr() as u64;
        assert!(a.owns(base));
        assert!(a.owns(base + 64 + 1));
        assert!(!a.owns(base + 128), "past the last slot");
        assert!(!a.owns(base + 8), "not a slot boundary");
        assert!(!a.owns(base + 2), "unused low bits set");
        assert!(!a.owns(base.wrapping_sub(64)));
        assert!(!a.owns(0));
        assert!(!a.owns(u64::MAX));
        // SAFETY: not a user_data of ours: no token is minted.
        assert!(unsafe { a.complete(42, 0) }.is_none());
        let (b_base, _) = b.mapping();
        assert!(!a.owns(b_base.as_ptr() as u64), "another queue's entry");
        assert!(b.owns(b_base.as_ptr() as u64));
    }

    #[test]
    fn request_accessors_are_bounded() {
        let b = buffers(1);
        let mut e = b.take_entries().unwrap().next().unwrap();
        // A GETATTR as the kernel lays it out: header, 16-byte op_in, no payload.
        let h = e.header_mut();
        let in_header = sys::fuse_in_header {
            len: 56,
            opcode: sys::FUSE_GETATTR,
            unique: 10,
            nodeid: 1,
            ..Default::default()
        };
        // SAFETY: test-only write of a plain struct into the 8-aligned in_out area.
        unsafe {
            ptr::from_mut(&mut h.in_out)
                .cast::<sys::fuse_in_header>()
                .write(in_header)
        };
        h.op_in[0] = 7;
        h.ring_ent_in_out.commit_id = 10;
        assert_eq!(e.in_header().opcode, sys::FUSE_GETATTR);
        assert_eq!(e.op_in().len(), 16);
        assert_eq!(e.op_in()[0], 7);
        let getattr: sys::fuse_getattr_in = e.op_in_as().unwrap();
        assert_eq!(getattr.getattr_flags, 7);
        assert!(e.op_in_as::<sys::fuse_read_in>().is_none(), "40 > 16 bytes");
        assert!(e.payload().is_empty());

        // A lying payload_sz is cut at the buffer size; a lying len at 128.
        e.header_mut().ring_ent_in_out.payload_sz = u32::MAX;
        assert_eq!(e.payload().len(), 3 * 4096);
        assert!(e.op_in().is_empty(), "len - 40 - payload_sz saturates at 0");
        e.header_mut().ring_ent_in_out.payload_sz = 5;
        // SAFETY: test-only write of the 4-byte len field at offset 0 of in_out.
        unsafe {
            ptr::from_mut(&mut e.header_mut().in_out)
                .cast::<u32>()
                .write(u32::MAX)
        };
        assert_eq!(e.op_in().len(), 128);
        assert_eq!(e.payload().len(), 5);
    }

    #[test]
    fn reply_writers_fill_out_header_and_payload_sz() {
        let b = buffers(1);
        let mut e = b.take_entries().unwrap().next().unwrap();
        e.header_mut().ring_ent_in_out.commit_id = 0xabc;
        e.reply(b"hello").unwrap();
        let out: sys::fuse_out_header = read(&e);
        assert_eq!((out.len, out.error, out.unique), (16 + 5, 0, 0xabc));
        assert_eq!(e.ent_in_out().payload_sz, 5);
        assert_eq!(e.payload(), b"hello");

        e.set_error(libc::ENOENT).unwrap();
        let out: sys::fuse_out_header = read(&e);
        assert_eq!((out.len, out.error, out.unique), (16, -libc::ENOENT, 0xabc));
        assert_eq!(e.ent_in_out().payload_sz, 0);
        assert_eq!(e.commit_id(), 0xabc, "writers never touch the commit id");

        let attr = sys::fuse_attr_out {
            attr_valid: 3,
            ..Default::default()
        };
        e.reply_value(&attr).unwrap();
        assert_eq!(e.ent_in_out().payload_sz, 104);
        assert_eq!(e.payload()[..8], 3u64.to_ne_bytes());

        // Bad input: typed errors, nothing written.
        assert_eq!(e.set_error(0), Err(ReplyError::InvalidErrno(0)));
        assert_eq!(e.set_error(512), Err(ReplyError::InvalidErrno(512)));
        assert_eq!(e.set_error(-2), Err(ReplyError::InvalidErrno(-2)));
        let too_long = vec![0u8; 3 * 4096 + 1];
        assert_eq!(
            e.reply(&too_long),
            Err(ReplyError::TooLong {
                len: 3 * 4096 + 1,
                capacity: 3 * 4096
            })
        );
        assert_eq!(
            e.set_reply(3 * 4096 + 1),
            Err(ReplyError::TooLong {
                len: 3 * 4096 + 1,
                capacity: 3 * 4096
            })
        );
        assert_eq!(e.ent_in_out().payload_sz, 104, "unchanged by failed writes");
        e.set_reply(3 * 4096).unwrap();
        assert_eq!(e.ent_in_out().payload_sz, 3 * 4096);
    }

    fn read<T: Plain>(e: &Entry<'_>) -> T {
        // SAFETY: test-only unaligned read of a plain struct from the start of the header slot.
        unsafe { e.header_ptr().cast::<T>().read_unaligned() }
    }

    #[test]
    fn lazy_allocation_touches_only_the_slot_records() {
        let b = QueueBuffers::new(QueueConfig::new(0, 64, 1 << 20, DevFd::Fd(-1))).unwrap();
        let (base, len) = b.mapping();
        let resident = resident_pages(base.as_ptr(), len);
        let records_pages = (64 * 64usize).div_ceil(rustix::param::page_size());
        assert_eq!(
            resident, records_pages,
            "only the iovec records are written"
        );
    }

    #[test]
    fn prefault_options_make_memory_resident() {
        let page = rustix::param::page_size();
        for prefault in [Prefault::MapPopulate, Prefault::PopulateWrite] {
            let mut config = QueueConfig::new(0, 4, 64 * 1024, DevFd::Fd(-1));
            config.prefault = prefault;
            config.huge_pages = prefault == Prefault::PopulateWrite;
            let b = QueueBuffers::new(config).unwrap();
            let (base, len) = b.mapping();
            assert_eq!(
                resident_pages(base.as_ptr(), len),
                len / page,
                "{prefault:?}"
            );
        }
    }

    /// Resident pages of a range, by mincore(2).
    fn resident_pages(base: *mut u8, len: usize) -> usize {
        let page = rustix::param::page_size();
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: test-only: `base..base+len` is one mapping we own; `vec` has one byte per page.
        let rc = unsafe { libc::mincore(base.cast(), len, vec.as_mut_ptr()) };
        assert_eq!(rc, 0);
        vec.iter().filter(|&&v| v & 1 != 0).count()
    }
}
