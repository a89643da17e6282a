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
use crate::pool::PoolState;

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
    /// Hand the payload region to the kernel as one buffer pool (7.46, Linux 7.3) instead of
    /// one payload buffer per entry. `None` (the default): per-entry buffers, which every
    /// kernel since 7.42 takes. Set it with [`QueueConfig::pool_if_offered`] so that the choice
    /// follows what the kernel offered.
    pub pool: Option<Pool>,
}

/// How a queue's buffer pool is set up (7.46, Linux 7.3).
///
/// With a pool, `payload_size` must be exactly the connection's payload size
/// ([`payload_size`](crate::payload_size)): the kernel cuts the pool into buffers of that size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pool {
    /// Register the pool with the ring as fixed buffer `index` and add it with
    /// `IORING_URING_CMD_FIXED` (the kernel then pins it once instead of per request, and the
    /// same registered buffer can serve the server's own fixed-buffer I/O). Every REGISTER and
    /// COMMIT_AND_FETCH of the queue then carries the flag and the index.
    pub registered_index: Option<u16>,
    /// A zero-copy queue (`FUSE_URING_ZERO_COPY`, needs `CAP_SYS_ADMIN`): entry `i` lends the
    /// kernel registered-buffer slot `first + i` for the pages of its zero-copy requests.
    pub zero_copy_first_slot: Option<u16>,
}

impl Pool {
    /// The setup [`Queue`](crate::Queue) uses: the pool registered as fixed buffer 0, and, with
    /// `zero_copy`, entry `i`'s zero-copy slot at `1 + i`.
    pub const fn standard(zero_copy: bool) -> Pool {
        Pool {
            registered_index: Some(0),
            zero_copy_first_slot: if zero_copy { Some(1) } else { None },
        }
    }
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
            pool: None,
        }
    }

    /// Uses `pool` when the kernel offered `FUSE_HAS_IO_URING_BUFPOOL` in the INIT flags
    /// `offered` (its 64-bit flags, `fuse_wire::KernelInit::flags`: `flags | flags2 << 32`
    /// with `FUSE_INIT_EXT`), and per-entry buffers otherwise: the one call that makes the
    /// same server code right on 7.46 kernels and on older ones, without looking at the minor.
    pub fn pool_if_offered(mut self, offered: u64, pool: Pool) -> QueueConfig {
        self.pool = (offered & fuse_wire::init_flags::HAS_IO_URING_BUFPOOL != 0).then_some(pool);
        self
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
            pool: None,
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
    /// The pool, when the payload region is one (boxed: the slot records point to it).
    pool: Option<Box<PoolState>>,
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
        // A pool is the payload region, from the first payload slot to the end of the mapping;
        // ADD_BUFPOOL carries its length in a u32.
        let pool_len = layout.len - layout.payloads_offset;
        if config.pool.is_some() && u32::try_from(pool_len).is_err() {
            return Err(BufferError::PoolTooLarge { len: pool_len });
        }
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
        let mut buffers = QueueBuffers {
            base,
            layout,
            qid: config.qid,
            fd,
            dev: config.dev,
            pool: None,
            taken: AtomicBool::new(false),
        };
        if let Some(pool) = config.pool {
            buffers.pool = Some(Box::new(PoolState::new(
                buffers.at(layout.payloads_offset),
                pool_len,
                layout.payload_size,
                pool.registered_index,
                pool.zero_copy_first_slot,
            )));
        }
        let pool = buffers.pool.as_deref().map_or(ptr::null(), ptr::from_ref);
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
                    // With a pool, REGISTER carries no payload buffer (the kernel requires an
                    // empty iovec and picks pool buffers per request).
                    if pool.is_null() {
                        libc::iovec {
                            iov_base: buffers.at(layout.payload_offset(index)).cast(),
                            iov_len: layout.payload_size,
                        }
                    } else {
                        libc::iovec {
                            iov_base: ptr::null_mut(),
                            iov_len: 0,
                        }
                    },
                ],
                fd,
                qid: config.qid,
                index,
                pool,
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

    /// The pool (7.46), when the payload region is one: its start, its length (what
    /// ADD_BUFPOOL carries, and the iovec to register with the ring for a registered pool),
    /// and the indices of [`Pool`].
    pub fn pool(&self) -> Option<PoolInfo> {
        self.pool.as_deref().map(|p| PoolInfo {
            iovec: libc::iovec {
                iov_base: p.base.cast(),
                iov_len: p.len,
            },
            buf_size: p.buf_size,
            buffers: p.nr_bufs,
            setup: Pool {
                registered_index: p.registered,
                zero_copy_first_slot: p.zero_copy_first,
            },
        })
    }

    /// The `ADD_QUEUE` SQE of this queue (zero-copy when the pool asks for it), for servers
    /// with their own ring; [`Queue`](crate::Queue) sends it itself. `None` without a pool.
    pub fn add_queue_sqe(&self, user_data: u64) -> Option<io_uring::squeue::Entry128> {
        let pool = self.pool.as_deref()?;
        Some(crate::sqe::add_queue(
            self.fd,
            self.qid,
            pool.zero_copy_first.is_some(),
            user_data,
        ))
    }

    /// The `ADD_BUFPOOL` SQE handing this queue's pool to the kernel (with
    /// `IORING_URING_CMD_FIXED` and the index when the pool is registered). `None` without a
    /// pool. Pushing it is `unsafe` like every SQE of these buffers: they must outlive the
    /// connection's use of the pool (see the type docs).
    pub fn add_bufpool_sqe(&self, user_data: u64) -> Option<io_uring::squeue::Entry128> {
        let pool = self.pool.as_deref()?;
        Some(crate::sqe::add_bufpool(
            self.fd,
            self.qid,
            pool.base,
            // Checked to fit in `new`.
            pool.len as u32,
            pool.registered,
            user_data,
        ))
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
        let entry = Entry {
            slot,
            _buffers: PhantomData,
        };
        if result.is_ok() {
            // A request was just written into the entry: claim its pool buffer, if any.
            entry.claim_pool_buffer();
        }
        Some(Completion {
            entry,
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

/// A queue's buffer pool, from [`QueueBuffers::pool`].
#[derive(Debug, Clone, Copy)]
pub struct PoolInfo {
    /// The pool region: what `ADD_BUFPOOL` carries, and the buffer to register with the ring
    /// (`register_buffers_update`) when the pool is registered.
    pub iovec: libc::iovec,
    /// The size of one kernel buffer (the payload size).
    pub buf_size: usize,
    /// How many buffers the kernel cuts the pool into.
    pub buffers: usize,
    /// The indices the pool was set up with.
    pub setup: Pool,
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
pub(crate) mod tests;
