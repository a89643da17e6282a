//! The ring-entry allocator ([`QueueBuffers`]): one mapping per queue, handing out [`Entry`]
//! tokens and decoding completions back into them.

use std::fmt;
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::Errno;
use rustix::mm::{Advice, MapFlags, ProtFlags};

use crate::command::Command;
use crate::dev::{DevFd, FuseFd};
use crate::entry::Entry;
use crate::error::{BufferError, CmdError};
use crate::layout::{HEADER_SIZE, KIND_COMMIT, Layout, SLOT_SIZE, Slot};

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
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// The queue id (`0 .. number of possible CPUs`; see [`queue_ids`](crate::queue_ids)).
    pub qid: u16,
    /// Number of entries (at least 1; each one can hold one request at a time).
    pub depth: u32,
    /// Bytes of each payload buffer; at least the connection's
    /// [`payload_size`](crate::payload_size), else REGISTER fails with `EINVAL`.
    pub payload_size: usize,
    /// The `/dev/fuse` fd (or its fixed-file index) every command of these entries targets,
    /// kept open by the buffers; `None` for buffers bound to no device ([`QueueConfig::unbound`]).
    pub dev: Option<FuseFd>,
    /// How memory is faulted in; [`Prefault::Lazy`] by default.
    pub prefault: Prefault,
    /// `madvise(MADV_HUGEPAGE)` on the mapping (transparent huge pages); off by default.
    pub huge_pages: bool,
}

impl QueueConfig {
    /// Lazily faulted buffers of `depth` entries for queue `qid` of the connection of `dev`,
    /// without huge pages.
    pub fn new(qid: u16, depth: u32, payload_size: usize, dev: FuseFd) -> QueueConfig {
        QueueConfig {
            qid,
            depth,
            payload_size,
            dev: Some(dev),
            prefault: Prefault::Lazy,
            huge_pages: false,
        }
    }

    /// Buffers bound to no device: their SQEs target fd -1, so the kernel completes every
    /// command with `EBADF`. For tests, benchmarks and fuzzing of everything but the kernel.
    pub fn unbound(qid: u16, depth: u32, payload_size: usize) -> QueueConfig {
        QueueConfig {
            qid,
            depth,
            payload_size,
            dev: None,
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
    /// Keeps the fd `fd` names open for as long as anything can build an SQE for it.
    dev: Option<FuseFd>,
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
        let fd = config.dev.as_ref().map_or(DevFd::Fd(-1), FuseFd::dev_fd);
        let buffers = QueueBuffers {
            base,
            layout,
            qid: config.qid,
            fd,
            dev: config.dev,
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
                fd,
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

    /// The fd every command of these entries targets (fd -1 for unbound buffers).
    pub fn fd(&self) -> DevFd {
        self.fd
    }

    /// The `/dev/fuse` fd these buffers keep open, unless they are unbound.
    pub fn dev(&self) -> Option<&FuseFd> {
        self.dev.as_ref()
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sqe::tests::decode;
    use fuse_kernel_sys as sys;

    pub(crate) fn buffers(depth: u32) -> QueueBuffers {
        QueueBuffers::new(QueueConfig::unbound(2, depth, 3 * 4096)).unwrap()
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
        assert_eq!(d.fd, -1, "unbound buffers target fd -1");
        assert_eq!(d.flags, 0);
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
    fn lazy_allocation_touches_only_the_slot_records() {
        let b = QueueBuffers::new(QueueConfig::unbound(0, 64, 1 << 20)).unwrap();
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
            let mut config = QueueConfig::unbound(0, 4, 64 * 1024);
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
