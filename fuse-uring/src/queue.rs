//! [`Queue`]: one queue's buffers and its ring, served without `unsafe`.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::time::Duration;

use io_uring::{IoUring, cqueue, squeue, types};

use crate::buffers::{Completion, QueueBuffers};
use crate::entry::Entry;

/// The ring type of a FUSE queue: 128-byte SQEs (`IORING_SETUP_SQE128`), 16-byte CQEs.
pub type Ring = IoUring<squeue::Entry128, cqueue::Entry>;

/// An entry handed to a [`Queue`] it does not belong to; the entry is given back.
#[derive(Debug)]
pub struct ForeignEntry<'a> {
    /// The entry, still yours.
    pub entry: Entry<'a>,
}

impl fmt::Display for ForeignEntry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "entry {} of queue {} does not belong to this Queue's buffers",
            self.entry.index(),
            self.entry.qid()
        )
    }
}

impl std::error::Error for ForeignEntry<'_> {}

impl From<ForeignEntry<'_>> for io::Error {
    fn from(e: ForeignEntry<'_>) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
    }
}

/// One FUSE io_uring queue: its [`QueueBuffers`] and the ring that carries its commands,
/// owned together so that the whole protocol is safe.
///
/// Because the `Queue` owns the ring, it alone pushes SQEs (each once, built from its own
/// entries) and decodes CQEs (each once, with its own buffers), and it counts the entries the
/// kernel holds. Dropping it closes the ring first and unmaps the buffers only if no entry is
/// still in the kernel; otherwise the buffers are leaked rather than unmapped under the
/// kernel. The cost is a counter update per command.
///
/// Methods take `&self`, so a completion's [`Entry`] (which borrows the buffers) can be
/// committed while you iterate. A `Queue` is `Send` but not `Sync`: one thread serves it.
///
/// ```no_run
/// # fn handle(_: &mut fuse_uring::Entry<'_>) {}
/// # fn main() -> std::io::Result<()> {
/// # let (buffers, ring): (fuse_uring::QueueBuffers, fuse_uring::Ring) = todo!();
/// let queue = fuse_uring::Queue::new(buffers, ring)?;
/// queue.register_all()?;
/// while queue.in_kernel() > 0 {
///     queue.wait(None)?;
///     for done in queue.completions() {
///         let mut entry = done.entry;
///         match done.result {
///             Ok(()) => {
///                 handle(&mut entry); // read the request, write the reply
///                 queue.commit_and_fetch(entry)?;
///             }
///             Err(e) if e.is_shutdown() => {} // unmounted
///             Err(e) => return Err(e.into()),
///         }
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Queue {
    // Dropped explicitly in `Drop`: the ring first, the buffers only when nothing is in the
    // kernel.
    ring: ManuallyDrop<Ring>,
    buffers: ManuallyDrop<QueueBuffers>,
    in_kernel: Cell<u32>,
    /// Completions of SQEs that are not entry commands (zero-copy I/O): `(user_data, result)`,
    /// kept in order until [`Queue::other_completions`] takes them. Allocated once, with room
    /// for one per entry.
    others: std::cell::RefCell<std::collections::VecDeque<(u64, i32)>>,
}

/// Why setting a pool queue up failed: a system call, or the kernel's answer to a command.
enum SetupError {
    Io(io::Error),
    Cmd(crate::CmdError),
}

impl From<io::Error> for SetupError {
    fn from(e: io::Error) -> SetupError {
        SetupError::Io(e)
    }
}

/// `user_data` of the ADD_QUEUE / ADD_BUFPOOL SQEs of [`Queue::register_all`] (odd, below any
/// mapping: never an entry's).
const SETUP_ADD_QUEUE: u64 = 1;
const SETUP_ADD_BUFPOOL: u64 = 3;

impl fmt::Debug for Queue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("buffers", &*self.buffers)
            .field("in_kernel", &self.in_kernel.get())
            .finish_non_exhaustive()
    }
}

impl Queue {
    /// Puts `buffers` and `ring` together. The ring should be fresh (nothing of its own in
    /// flight) and is used by this `Queue` only; a fixed-file index
    /// ([`FuseFd::with_fixed_index`](crate::FuseFd::with_fixed_index)) must
    /// already be registered with it.
    ///
    /// # Errors
    /// `InvalidInput` when the entries of `buffers` were already taken (they could be in the
    /// kernel through another ring), or when the ring's submission queue is smaller than the
    /// depth (then every SQE always fits).
    pub fn new(buffers: QueueBuffers, ring: Ring) -> io::Result<Queue> {
        if ring.params().sq_entries() < buffers.layout().depth() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "ring of {} SQEs is smaller than the queue depth {}",
                    ring.params().sq_entries(),
                    buffers.layout().depth()
                ),
            ));
        }
        if buffers.entries_taken() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the entries of these buffers were already taken",
            ));
        }
        let others = std::collections::VecDeque::with_capacity(buffers.layout().depth() as usize);
        Ok(Queue {
            ring: ManuallyDrop::new(ring),
            buffers: ManuallyDrop::new(buffers),
            in_kernel: Cell::new(0),
            others: std::cell::RefCell::new(others),
        })
    }

    /// The buffers.
    pub fn buffers(&self) -> &QueueBuffers {
        &self.buffers
    }

    /// The ring, for example to use its [`Submitter`](io_uring::Submitter) for
    /// `register_files`. Pushing to it needs `unsafe` and is not what this type expects.
    pub fn ring(&self) -> &Ring {
        &self.ring
    }

    /// Entries whose command is pushed and whose completion has not been decoded yet. When
    /// it drops to 0 after unmount, the queue is done.
    pub fn in_kernel(&self) -> u32 {
        self.in_kernel.get()
    }

    /// Pushes REGISTER for every entry and submits them.
    ///
    /// With a pool ([`QueueConfig::pool`](crate::QueueConfig::pool), 7.46) it first sets the
    /// queue up and waits for that: the ring's buffer table (a sparse table with the pool at
    /// its registered index and the entries' zero-copy slots, when asked for), then
    /// `ADD_QUEUE` and `ADD_BUFPOOL`, whose errors are returned here.
    ///
    /// # Errors
    /// `InvalidInput` on a second call; the `io_uring_enter(2)` error if submitting fails
    /// (the REGISTERs stay queued and go with the next submission); with a pool, the error of
    /// registering the buffer table (`io_uring_register(2)`) or the [`CmdError`] of ADD_QUEUE
    /// or ADD_BUFPOOL (as `io::Error`; see [`CmdError`] for the errno values), except that
    /// when the connection is already gone ([`CmdError::is_shutdown`](crate::CmdError::is_shutdown)) it returns `Ok` with
    /// nothing in the kernel, so the serving loop ends as at unmount. Errors of the REGISTER
    /// commands themselves come back as completions.
    ///
    /// [`CmdError`]: crate::CmdError
    pub fn register_all(&self) -> io::Result<()> {
        let entries = self.buffers.take_entries().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "entries already registered")
        })?;
        if let Some(pool) = self.buffers.pool() {
            match self.set_up_pool(&pool) {
                Ok(()) => {}
                // The connection is already gone (unmounted or aborted): nothing to register,
                // and the queue is done, as when every REGISTER completes with ENOTCONN.
                Err(SetupError::Cmd(e)) if e.is_shutdown() => return Ok(()),
                Err(SetupError::Cmd(e)) => return Err(e.into()),
                Err(SetupError::Io(e)) => return Err(e),
            }
        }
        for entry in entries {
            self.push(&entry.register())?;
        }
        self.submit().map(drop)
    }

    /// The buffer table, ADD_QUEUE and ADD_BUFPOOL of a pool queue, each waited for.
    fn set_up_pool(&self, pool: &crate::PoolInfo) -> Result<(), SetupError> {
        let depth = self.buffers.layout().depth();
        let mut table = pool.setup.registered_index.map_or(0, |i| u32::from(i) + 1);
        if let Some(first) = pool.setup.zero_copy_first_slot {
            table = table.max(u32::from(first) + depth);
        }
        if table > 0 {
            let submitter = self.ring.submitter();
            submitter.register_buffers_sparse(table)?;
            if let Some(index) = pool.setup.registered_index {
                // SAFETY: the pool lies in the mapping of our buffers, which outlive the ring
                // (`Drop` closes the ring first, which unregisters the table, and leaks the
                // buffers if entries are still in the kernel).
                unsafe {
                    submitter.register_buffers_update(u32::from(index), &[pool.iovec], None)
                }?;
            }
        }
        let add_queue = self.buffers.add_queue_sqe(SETUP_ADD_QUEUE);
        let add_bufpool = self.buffers.add_bufpool_sqe(SETUP_ADD_BUFPOOL);
        for (sqe, command) in [
            (add_queue, crate::Command::AddQueue),
            (add_bufpool, crate::Command::AddBufpool),
        ] {
            let Some(sqe) = sqe else { continue };
            {
                // SAFETY: no other `SubmissionQueue` of this ring exists (as in `push`).
                let mut sq = unsafe { self.ring.submission_shared() };
                // SAFETY: ADD_QUEUE points to no memory; ADD_BUFPOOL points to the pool in our
                // buffers, which live as long as the connection can use it (see `Drop`).
                unsafe { sq.push(&sqe) }
                    .map_err(|_| io::Error::other("io_uring submission queue full"))?;
            }
            self.ring.submit_and_wait(1)?;
            let result = loop {
                let cqe = {
                    // SAFETY: no other `CompletionQueue` of this ring exists (as in
                    // `next_completion`).
                    let mut cq = unsafe { self.ring.completion_shared() };
                    cq.next()
                };
                match cqe {
                    Some(cqe) if cqe.user_data() == sqe.get_user_data() => break cqe.result(),
                    // Nothing else is in flight before the REGISTERs: keep it for the caller.
                    Some(cqe) => self
                        .others
                        .borrow_mut()
                        .push_back((cqe.user_data(), cqe.result())),
                    None => {
                        self.ring.submit_and_wait(1)?;
                    }
                }
            };
            if result < 0 {
                let errno = rustix::io::Errno::from_raw_os_error(
                    result
                        .checked_neg()
                        .filter(|e| (1..=4095).contains(e))
                        .unwrap_or(libc::EIO),
                );
                return Err(SetupError::Cmd(crate::CmdError::new(command, errno)));
            }
        }
        Ok(())
    }

    /// Pushes a fixed-buffer read of `len` bytes at `file_offset` of `file` into the pages a
    /// zero-copy READ request lent `entry` ([`Entry::zero_copy`]), with `user_data`, to be
    /// submitted by the next [`submit`](Queue::submit) or [`wait`](Queue::wait). Its
    /// completion comes back through [`other_completions`](Queue::other_completions) (the
    /// bytes read, or `-errno`); reply with [`Entry::set_zero_copy_reply`] after it, then
    /// commit. `user_data` must not be one of an entry's (any value the buffers do not
    /// [`own`](QueueBuffers::owns), such as small integers).
    ///
    /// Safe: the read writes only into the client's pages (registered by the kernel in the
    /// entry's slot for this request), never into memory of this process, and io_uring holds
    /// the file and the buffer until it completes.
    ///
    /// # Errors
    /// `InvalidInput` when the entry holds no zero-copy READ, `len` exceeds what it lent, or
    /// `user_data` is an entry's; the `io_uring_enter(2)` error when the submission queue is
    /// full and submitting fails.
    pub fn zero_copy_read(
        &self,
        entry: &Entry<'_>,
        file: std::os::fd::BorrowedFd<'_>,
        file_offset: u64,
        len: u32,
        user_data: u64,
    ) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_owned());
        let zc = entry
            .zero_copy()
            .ok_or_else(|| invalid("no zero-copy request in the entry"))?;
        if zc.opcode != fuse_kernel_sys::FUSE_READ || len > zc.len {
            return Err(invalid("not a zero-copy READ of at least len bytes"));
        }
        if self.buffers.owns(user_data) {
            return Err(invalid("user_data of an entry"));
        }
        // The address of a kernel-registered buffer is an offset into it: 0 is its start.
        let sqe: squeue::Entry128 = io_uring::opcode::ReadFixed::new(
            types::Fd(file.as_raw_fd()),
            std::ptr::null_mut(),
            len,
            zc.slot,
        )
        .offset(file_offset)
        .build()
        .user_data(user_data)
        .into();
        // The read targets a kernel-registered buffer (the client's pages, no memory of
        // ours) and `file`, which io_uring takes a reference to when it issues the read.
        self.push_other(&sqe)
    }

    /// Pushes an SQE that is not an entry command and refers to no memory of this process
    /// (zero-copy reads into kernel-registered buffers, polls), submitting once if the
    /// submission queue is full.
    fn push_other(&self, sqe: &squeue::Entry128) -> io::Result<()> {
        for _ in 0..2 {
            let pushed = {
                // SAFETY: no other `SubmissionQueue` of this ring exists (as in `push`).
                let mut sq = unsafe { self.ring.submission_shared() };
                // SAFETY: the callers build SQEs that touch no memory of this process (a
                // fixed-buffer read into the client's pages, a poll), and io_uring holds a
                // reference to their files while they are in flight.
                unsafe { sq.push(sqe) }.is_ok()
            };
            if pushed {
                return Ok(());
            }
            self.submit()?;
        }
        Err(io::Error::other("io_uring submission queue full"))
    }

    /// Pushes a one-shot poll for `fd` becoming readable (`IORING_OP_POLL_ADD` with
    /// `POLLIN`), with `user_data`, to be submitted by the next [`submit`](Queue::submit) or
    /// [`wait`](Queue::wait). Its completion (the ready events, or `-errno`) comes back through
    /// [`other_completions`](Queue::other_completions), and it wakes a thread blocked in
    /// [`wait`](Queue::wait): this is how another thread wakes a queue's thread (an eventfd
    /// written from anywhere), for example to hand it a deferred reply or to stop it. Poll
    /// again after each completion. Linux 5.1.
    ///
    /// Safe: a poll names an fd and touches no memory of this process; io_uring holds a
    /// reference to the file until the poll completes or the ring is closed.
    ///
    /// # Errors
    /// `InvalidInput` when `user_data` is an entry's (use a small integer); the
    /// `io_uring_enter(2)` error when the submission queue is full and submitting fails.
    pub fn poll_readable(&self, fd: std::os::fd::BorrowedFd<'_>, user_data: u64) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.buffers.owns(user_data) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "user_data of an entry",
            ));
        }
        let sqe: squeue::Entry128 =
            io_uring::opcode::PollAdd::new(types::Fd(fd.as_raw_fd()), libc::POLLIN as u32)
                .build()
                .user_data(user_data)
                .into();
        self.push_other(&sqe)
    }

    /// Takes the completions of SQEs that were not entry commands (for example
    /// [`zero_copy_read`](Queue::zero_copy_read) and [`poll_readable`](Queue::poll_readable)):
    /// `(user_data, result)`, in order. They are set aside while
    /// [`completions`](Queue::completions) drains the completion queue, so take them after
    /// draining it.
    pub fn other_completions(&self) -> impl Iterator<Item = (u64, i32)> + '_ {
        std::iter::from_fn(|| self.others.borrow_mut().pop_front())
    }

    /// Pushes REGISTER for `entry` (for example again after a REGISTER failed with
    /// `EAGAIN`). Submitted by the next [`submit`](Queue::submit) or [`wait`](Queue::wait).
    ///
    /// # Errors
    /// [`ForeignEntry`] when `entry` belongs to other buffers (it is handed back).
    pub fn register<'e>(&self, entry: Entry<'e>) -> Result<(), ForeignEntry<'e>> {
        if !self.buffers.owns_entry(&entry) {
            return Err(ForeignEntry { entry });
        }
        self.push_own(&entry.register());
        Ok(())
    }

    /// Pushes COMMIT_AND_FETCH for `entry`, whose reply you have written. Submitted by the
    /// next [`submit`](Queue::submit) or [`wait`](Queue::wait).
    ///
    /// # Errors
    /// [`ForeignEntry`] when `entry` belongs to other buffers (it is handed back).
    pub fn commit_and_fetch<'e>(&self, entry: Entry<'e>) -> Result<(), ForeignEntry<'e>> {
        if !self.buffers.owns_entry(&entry) {
            return Err(ForeignEntry { entry });
        }
        self.push_own(&entry.commit_and_fetch());
        Ok(())
    }

    /// Submits the pushed commands without waiting.
    ///
    /// # Errors
    /// The error of `io_uring_enter(2)`.
    pub fn submit(&self) -> io::Result<usize> {
        self.ring.submit()
    }

    /// Submits the pushed commands and waits until at least one completion is ready, or
    /// `timeout` passes (then returns `Ok` with nothing ready). `EINTR` also returns `Ok`.
    ///
    /// # Errors
    /// The error of `io_uring_enter(2)`.
    pub fn wait(&self, timeout: Option<Duration>) -> io::Result<()> {
        let result = match timeout {
            None => self.ring.submit_and_wait(1),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The next ready completion, decoded, or `None`.
    pub fn next_completion(&self) -> Option<Completion<'_>> {
        loop {
            let cqe = {
                // SAFETY: no other `CompletionQueue` of this ring exists: the ring is private
                // (only `&Ring` is lent out, which cannot make one safely), `Queue` is not
                // `Sync`, and no method keeps one beyond its own body.
                let mut cq = unsafe { self.ring.completion_shared() };
                cq.next()?
            };
            // SAFETY: every SQE on this ring was built by this `Queue` from an entry of its
            // buffers and pushed once (`push`), and this CQE has just been taken off the
            // completion queue, so it is decoded once.
            if let Some(done) = unsafe { self.buffers.complete_cqe(&cqe) } {
                self.in_kernel.set(self.in_kernel.get().saturating_sub(1));
                return Some(done);
            }
            // Not an entry command (zero-copy I/O): kept for `other_completions`.
            self.others
                .borrow_mut()
                .push_back((cqe.user_data(), cqe.result()));
        }
    }

    /// Iterates over the ready completions ([`next_completion`](Queue::next_completion)).
    pub fn completions(&self) -> Completions<'_> {
        Completions { queue: self }
    }

    /// Pushes an SQE built from one of our entries, submitting first if the SQ is full
    /// (which cannot happen, as the SQ holds at least `depth` entries and every SQE consumes
    /// a token).
    fn push_own(&self, sqe: &squeue::Entry128) {
        if self.push(sqe).is_err() {
            // Unreachable by construction; if it ever happened the entry is lost, which is
            // safe (its buffers stay mapped until the queue is dropped).
            debug_assert!(false, "submission queue full");
        }
    }

    fn push(&self, sqe: &squeue::Entry128) -> io::Result<()> {
        for _ in 0..2 {
            let pushed = {
                // SAFETY: no other `SubmissionQueue` of this ring exists (as in
                // `next_completion`).
                let mut sq = unsafe { self.ring.submission_shared() };
                // SAFETY: `sqe` was built from an entry of our buffers, which live until its
                // CQE (`Drop` leaks them while anything is in the kernel); it is pushed once;
                // its CQE is decoded by `next_completion` with the same buffers.
                unsafe { sq.push(sqe) }.is_ok()
            };
            if pushed {
                self.in_kernel.set(self.in_kernel.get() + 1);
                return Ok(());
            }
            self.submit()?;
        }
        Err(io::Error::other("io_uring submission queue full"))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: `ring` is dropped exactly once, here, and not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.ring) };
        if self.in_kernel.get() == 0 {
            // SAFETY: dropped exactly once, here; no entry is in the kernel and no `Entry`
            // can exist (they borrow `self`).
            unsafe { ManuallyDrop::drop(&mut self.buffers) };
        }
        // Otherwise the buffers are leaked: the kernel may still write into them.
    }
}

/// The ready completions of a [`Queue`].
#[derive(Debug)]
pub struct Completions<'q> {
    queue: &'q Queue,
}

impl<'q> Iterator for Completions<'q> {
    type Item = Completion<'q>;

    fn next(&mut self) -> Option<Completion<'q>> {
        self.queue.next_completion()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, QueueConfig};
    use rustix::io::Errno;

    fn buffers(depth: u32) -> QueueBuffers {
        QueueBuffers::new(QueueConfig::unbound(0, depth, 8192)).unwrap()
    }

    #[test]
    fn new_refuses_taken_entries_and_small_rings() {
        let taken = buffers(2);
        let _entries = taken.take_entries().unwrap();
        let ring = Ring::builder().build(2).unwrap();
        let e = Queue::new(taken, ring).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);

        let ring = Ring::builder().build(4).unwrap();
        let e = Queue::new(buffers(8), ring).unwrap_err();
        assert!(
            e.to_string().contains("smaller than the queue depth"),
            "{e}"
        );
    }

    /// Without a FUSE connection the commands fail at once (EBADF for fd -1): the whole
    /// accounting is observable without root.
    #[test]
    fn every_pushed_command_comes_back_once() {
        let queue = Queue::new(buffers(3), Ring::builder().build(4).unwrap()).unwrap();
        queue.register_all().unwrap();
        assert_eq!(queue.in_kernel(), 3);
        assert!(queue.register_all().is_err(), "entries are registered once");
        let mut back = Vec::new();
        while back.len() < 3 {
            queue.wait(Some(Duration::from_secs(5))).unwrap();
            back.extend(queue.completions());
        }
        assert_eq!(queue.in_kernel(), 0);
        let mut indexes: Vec<u32> = back.iter().map(|d| d.entry.index()).collect();
        indexes.sort_unstable();
        assert_eq!(indexes, [0, 1, 2]);
        for done in &back {
            assert_eq!(done.command, Command::Register);
            let err = done.result.unwrap_err();
            assert_eq!(err.errno(), Errno::BADF, "{err}");
        }

        // Retrying and committing go through the same accounting.
        let mut back = back.into_iter();
        queue.register(back.next().unwrap().entry).unwrap();
        queue.commit_and_fetch(back.next().unwrap().entry).unwrap();
        assert_eq!(queue.in_kernel(), 2);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            queue.wait(Some(Duration::from_secs(5))).unwrap();
            seen.extend(queue.completions().map(|d| d.command));
        }
        seen.sort_by_key(|c| *c == Command::CommitAndFetch);
        assert_eq!(seen, [Command::Register, Command::CommitAndFetch]);
        assert_eq!(queue.in_kernel(), 0);
        assert!(queue.next_completion().is_none());
    }

    /// A poll on an eventfd completes only once the eventfd is written, and comes back as an
    /// "other" completion with its user_data, waking `wait`.
    #[test]
    fn poll_readable_wakes_wait_when_written() {
        use std::os::fd::AsFd;
        let queue = Queue::new(buffers(1), Ring::builder().build(2).unwrap()).unwrap();
        let efd = rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC).unwrap();
        assert!(queue.poll_readable(efd.as_fd(), 2).is_ok());
        queue.wait(Some(Duration::from_millis(50))).unwrap();
        assert_eq!(queue.completions().count(), 0);
        assert_eq!(queue.other_completions().count(), 0, "not readable yet");
        rustix::io::write(&efd, &1u64.to_ne_bytes()).unwrap();
        let mut got = Vec::new();
        for _ in 0..50 {
            queue.wait(Some(Duration::from_millis(100))).unwrap();
            assert_eq!(queue.completions().count(), 0, "no entry was registered");
            got.extend(queue.other_completions());
            if !got.is_empty() {
                break;
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1 & libc::POLLIN as i32, libc::POLLIN as i32);
        // An entry's user_data is refused.
        let own = queue.buffers().take_entries().unwrap().next().unwrap();
        let ud = own.register().get_user_data();
        assert!(queue.poll_readable(efd.as_fd(), ud).is_err());
    }

    #[test]
    fn foreign_entries_are_handed_back() {
        let queue = Queue::new(buffers(1), Ring::builder().build(1).unwrap()).unwrap();
        let other = buffers(1);
        let entry = other.take_entries().unwrap().next().unwrap();
        let err = queue.commit_and_fetch(entry).unwrap_err();
        assert!(err.to_string().contains("does not belong"), "{err}");
        let err = queue.register(err.entry).unwrap_err();
        assert_eq!(err.entry.index(), 0);
        assert_eq!(queue.in_kernel(), 0);
    }
}
