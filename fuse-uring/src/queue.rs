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
}

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
        Ok(Queue {
            ring: ManuallyDrop::new(ring),
            buffers: ManuallyDrop::new(buffers),
            in_kernel: Cell::new(0),
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
    /// # Errors
    /// `InvalidInput` on a second call; the `io_uring_enter(2)` error if submitting fails
    /// (the REGISTERs stay queued and go with the next submission). Errors of the REGISTER
    /// commands themselves come back as completions.
    pub fn register_all(&self) -> io::Result<()> {
        let entries = self.buffers.take_entries().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "entries already registered")
        })?;
        for entry in entries {
            self.push(&entry.register())?;
        }
        self.submit().map(drop)
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
            // Not ours: impossible, as only this type pushes; skip it.
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
