//! [`Notifier`]: messages from the server to the kernel (cache invalidation, page-cache
//! stores and retrievals, poll wake-ups, resend, epochs, pruning).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use fuse_dev::Channel;
use fuse_wire::notify::{self, NotifyError};
use rustix::io::Errno;

use crate::inflight::lock;

/// Room for a notification's header and fixed argument (at most 40 bytes today).
const HEAD: usize = 64;

/// Sends notifications on a session's connection, from any thread (`Clone`, `Send`,
/// `Sync`). Get one from [`SessionHandle::notifier`](crate::SessionHandle::notifier) once INIT
/// is answered. Each call is one `write(2)` to `/dev/fuse` (notifications always go that way,
/// also when requests come through io_uring) and allocates the message.
///
/// # Errors
///
/// Every method returns the kernel's errno: `ENOENT` (the inode or name is not in the
/// kernel's cache: often harmless), `ENOSYS` (a notification this kernel does not know),
/// `EINVAL` (a name that is empty, longer than 255 bytes or contains `/` or NUL, or a
/// malformed message), `ENODEV` (the connection is gone).
#[derive(Debug, Clone)]
pub struct Notifier {
    channel: Arc<Channel>,
    replies: Arc<NotifyReplies>,
}

impl Notifier {
    pub(crate) fn new(channel: Arc<Channel>, replies: Arc<NotifyReplies>) -> Notifier {
        Notifier { channel, replies }
    }

    fn send(
        &self,
        extra: usize,
        build: impl FnOnce(&mut [u8]) -> Result<usize, NotifyError>,
    ) -> Result<(), Errno> {
        let mut message = vec![0u8; HEAD + extra];
        let n = build(&mut message).map_err(|e| match e {
            NotifyError::InvalidName => Errno::INVAL,
            NotifyError::BufferTooSmall(e) => e.errno(),
        })?;
        self.channel.notify(&message[..n]).map_err(|e| e.errno())
    }

    /// INVAL_INODE: the kernel drops its cached attributes of `nodeid` and its cached data in
    /// `offset..offset + len` (`len` 0: to the end of the file; `offset` negative: only the
    /// attributes).
    pub fn inval_inode(&self, nodeid: u64, offset: i64, len: i64) -> Result<(), Errno> {
        self.send(0, |out| notify::inval_inode(out, nodeid, offset, len))
    }

    /// INVAL_ENTRY: the kernel drops its cached lookup of `name` in directory `parent`
    /// (the next access looks it up again).
    pub fn inval_entry(&self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.send(name.len() + 1, |out| {
            notify::inval_entry(out, parent, name, false)
        })
    }

    /// INVAL_ENTRY with `FUSE_EXPIRE_ONLY` (7.38, Linux 6.2): the cached lookup of `name` in
    /// `parent` is only marked stale, not dropped (mounts on it stay). `EINVAL` before 7.38.
    pub fn expire_entry(&self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.send(name.len() + 1, |out| {
            notify::inval_entry(out, parent, name, true)
        })
    }

    /// DELETE (7.18): `name` in `parent`, inode `child`, is gone: the kernel drops the entry
    /// and, if it has the inode, marks it deleted.
    pub fn delete(&self, parent: u64, child: u64, name: &[u8]) -> Result<(), Errno> {
        self.send(name.len() + 1, |out| {
            notify::delete(out, parent, child, name)
        })
    }

    /// STORE (7.15): writes `data` into the kernel's page cache of `nodeid` at `offset`
    /// (and extends the cached size if it ends past it).
    pub fn store(&self, nodeid: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.send(data.len(), |out| notify::store(out, nodeid, offset, data))
    }

    /// RETRIEVE (7.15): asks the kernel for up to `size` bytes of `nodeid`'s page cache at
    /// `offset` and waits up to `timeout` for its answer (a NOTIFY_REPLY request, which the
    /// session routes back here). Returns the offset the data starts at and the data: only
    /// pages that are cached, so possibly less than asked.
    ///
    /// Call it from a thread that is not one of the session's transport threads (one of
    /// those reads the answer). `ETIMEDOUT` when no answer came in time; `ENOENT` when the
    /// kernel has no such inode.
    pub fn retrieve(
        &self,
        nodeid: u64,
        offset: u64,
        size: u32,
        timeout: Duration,
    ) -> Result<(u64, Vec<u8>), Errno> {
        let notify_unique = self.replies.expect();
        let sent = self.send(0, |out| {
            notify::retrieve(out, notify_unique, nodeid, offset, size)
        });
        if let Err(e) = sent {
            self.replies.abandon(notify_unique);
            return Err(e);
        }
        self.replies.wait(notify_unique, timeout)
    }

    /// POLL (7.11): wakes the pollers of poll handle `kh` (from a POLL request that asked
    /// with `FUSE_POLL_SCHEDULE_NOTIFY`).
    pub fn poll_wakeup(&self, kh: u64) -> Result<(), Errno> {
        self.send(0, |out| notify::poll_wakeup(out, kh))
    }

    /// RESEND (7.40, Linux 6.9, with `FUSE_HAS_RESEND` agreed): the kernel sends again
    /// every request that was read but not answered yet (for example after the server
    /// restarted and lost them).
    pub fn resend(&self) -> Result<(), Errno> {
        self.send(0, notify::resend)
    }

    /// INC_EPOCH (7.44, Linux 6.16): every cached lookup made before now becomes stale.
    pub fn inc_epoch(&self) -> Result<(), Errno> {
        self.send(0, notify::inc_epoch)
    }

    /// PRUNE (7.45, Linux 6.18): asks the kernel to forget the given inodes if they are not
    /// in use (they come back as FORGETs).
    pub fn prune(&self, nodeids: &[u64]) -> Result<(), Errno> {
        self.send(8 * nodeids.len(), |out| notify::prune(out, nodeids))
    }
}

/// A RETRIEVE's answer: the offset its data starts at, and the data.
type Retrieved = (u64, Vec<u8>);

/// RETRIEVE answers waited for, by their `notify_unique`.
#[derive(Debug, Default)]
pub(crate) struct NotifyReplies {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, Option<Retrieved>>>,
    arrived: Condvar,
}

/// At most this many RETRIEVEs wait at once (each keeps its answer until taken).
const MAX_WAITING: usize = 1024;

impl NotifyReplies {
    fn expect(&self) -> u64 {
        let unique = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut waiting = lock(&self.waiting);
        if waiting.len() < MAX_WAITING {
            waiting.insert(unique, None);
        }
        unique
    }

    fn abandon(&self, unique: u64) {
        lock(&self.waiting).remove(&unique);
    }

    fn wait(&self, unique: u64, timeout: Duration) -> Result<Retrieved, Errno> {
        let deadline = Instant::now() + timeout;
        let mut waiting = lock(&self.waiting);
        loop {
            match waiting.get_mut(&unique) {
                None => return Err(Errno::AGAIN),
                Some(answer @ Some(_)) => {
                    let answer = answer.take();
                    waiting.remove(&unique);
                    return answer.ok_or(Errno::IO);
                }
                Some(None) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                waiting.remove(&unique);
                return Err(Errno::TIMEDOUT);
            }
            waiting = match self.arrived.wait_timeout(waiting, left) {
                Ok((w, _)) => w,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    /// A NOTIFY_REPLY came: hands its data to the waiting [`Notifier::retrieve`], if any.
    pub(crate) fn deliver(&self, unique: u64, offset: u64, data: &[u8]) {
        let mut waiting = lock(&self.waiting);
        if let Some(answer) = waiting.get_mut(&unique) {
            *answer = Some((offset, data.to_vec()));
            self.arrived.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retrieve_answer_reaches_its_waiter_only() {
        let replies = Arc::new(NotifyReplies::default());
        let first = replies.expect();
        let second = replies.expect();
        assert_ne!(first, second);
        let other = replies.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            other.deliver(second, 4096, b"abc");
            other.deliver(999, 0, b"nobody waits for this");
        });
        assert_eq!(
            replies.wait(second, Duration::from_secs(10)),
            Ok((4096, b"abc".to_vec()))
        );
        t.join().unwrap();
        assert_eq!(
            replies.wait(first, Duration::from_millis(10)),
            Err(Errno::TIMEDOUT)
        );
        // Nothing is left behind.
        assert!(lock(&replies.waiting).is_empty());
    }
}
