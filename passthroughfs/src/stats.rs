//! Request counters, printed by `--stats` on exit.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// The transport a request arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// `read(2)` on a `/dev/fuse` fd.
    Dev = 0,
    /// A FUSE-over-io_uring ring entry.
    Uring = 1,
}

impl Transport {
    /// The name used in the `ready:` line, `--stats` and `--transport`.
    pub const fn name(self) -> &'static str {
        match self {
            Transport::Dev => "dev",
            Transport::Uring => "uring",
        }
    }
}

const OPCODES: usize = 64;

/// Shards of the request counters: each worker thread adds to its own shard (threads are
/// given shards in turn), so that workers on different CPUs do not write the same cache line
/// at every request. Reading sums the shards.
const SHARDS: usize = 8;

/// One shard of the request counters, on cache lines of its own.
#[derive(Debug)]
#[repr(align(128))]
struct Shard([[AtomicU64; OPCODES]; 2]);

/// The shard of the calling thread.
fn my_shard() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// Counters shared by all workers (relaxed atomics: one add per request, to the calling
/// thread's shard).
#[derive(Debug)]
pub struct Stats {
    by_opcode: Box<[Shard; SHARDS]>,
    /// OPENs answered with `FOPEN_PASSTHROUGH`.
    pub passthrough_opens: AtomicU64,
    /// OPENs that wanted passthrough but got a served file (BACKING_OPEN failed).
    pub passthrough_fallbacks: AtomicU64,
    /// Bytes returned by READ requests served by this process.
    pub served_read_bytes: AtomicU64,
    /// Inode fds closed (kept as file handles) to stay within the fd budget.
    pub inode_fds_closed: AtomicU64,
    /// Inode fds reopened from their file handles (`open_by_handle_at`).
    pub inode_fds_reopened: AtomicU64,
    /// READ requests answered through io_uring zero-copy (the data read straight into the
    /// client's pages).
    pub zero_copy_reads: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            by_opcode: Box::new(std::array::from_fn(|_| {
                Shard(std::array::from_fn(|_| {
                    std::array::from_fn(|_| AtomicU64::new(0))
                }))
            })),
            passthrough_opens: AtomicU64::new(0),
            passthrough_fallbacks: AtomicU64::new(0),
            served_read_bytes: AtomicU64::new(0),
            inode_fds_closed: AtomicU64::new(0),
            inode_fds_reopened: AtomicU64::new(0),
            zero_copy_reads: AtomicU64::new(0),
        }
    }
}

/// The opcode names this server knows, for the report.
fn opcode_name(op: u32) -> Option<&'static str> {
    use fuse_kernel_sys as s;
    Some(match op {
        s::FUSE_LOOKUP => "LOOKUP",
        s::FUSE_FORGET => "FORGET",
        s::FUSE_GETATTR => "GETATTR",
        s::FUSE_SETATTR => "SETATTR",
        s::FUSE_READLINK => "READLINK",
        s::FUSE_OPEN => "OPEN",
        s::FUSE_READ => "READ",
        s::FUSE_WRITE => "WRITE",
        s::FUSE_STATFS => "STATFS",
        s::FUSE_RELEASE => "RELEASE",
        s::FUSE_GETXATTR => "GETXATTR",
        s::FUSE_LISTXATTR => "LISTXATTR",
        s::FUSE_FLUSH => "FLUSH",
        s::FUSE_INIT => "INIT",
        s::FUSE_OPENDIR => "OPENDIR",
        s::FUSE_READDIR => "READDIR",
        s::FUSE_RELEASEDIR => "RELEASEDIR",
        s::FUSE_ACCESS => "ACCESS",
        s::FUSE_INTERRUPT => "INTERRUPT",
        s::FUSE_DESTROY => "DESTROY",
        s::FUSE_BATCH_FORGET => "BATCH_FORGET",
        s::FUSE_READDIRPLUS => "READDIRPLUS",
        s::FUSE_STATX => "STATX",
        s::FUSE_SYMLINK => "SYMLINK",
        s::FUSE_MKNOD => "MKNOD",
        s::FUSE_MKDIR => "MKDIR",
        s::FUSE_UNLINK => "UNLINK",
        s::FUSE_RMDIR => "RMDIR",
        s::FUSE_RENAME => "RENAME",
        s::FUSE_LINK => "LINK",
        s::FUSE_FSYNC => "FSYNC",
        s::FUSE_SETXATTR => "SETXATTR",
        s::FUSE_REMOVEXATTR => "REMOVEXATTR",
        s::FUSE_FSYNCDIR => "FSYNCDIR",
        s::FUSE_GETLK => "GETLK",
        s::FUSE_SETLK => "SETLK",
        s::FUSE_SETLKW => "SETLKW",
        s::FUSE_CREATE => "CREATE",
        s::FUSE_BMAP => "BMAP",
        s::FUSE_IOCTL => "IOCTL",
        s::FUSE_POLL => "POLL",
        s::FUSE_FALLOCATE => "FALLOCATE",
        s::FUSE_RENAME2 => "RENAME2",
        s::FUSE_LSEEK => "LSEEK",
        s::FUSE_COPY_FILE_RANGE => "COPY_FILE_RANGE",
        s::FUSE_SYNCFS => "SYNCFS",
        s::FUSE_TMPFILE => "TMPFILE",
        s::FUSE_COPY_FILE_RANGE_64 => "COPY_FILE_RANGE_64",
        _ => return None,
    })
}

impl Stats {
    /// Counts one request.
    pub fn record(&self, transport: Transport, opcode: u32) {
        let i = (opcode as usize).min(OPCODES - 1);
        self.by_opcode[my_shard()].0[transport as usize][i].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests of `opcode` through `transport` so far.
    pub fn count(&self, transport: Transport, opcode: u32) -> u64 {
        let i = (opcode as usize).min(OPCODES - 1);
        self.by_opcode
            .iter()
            .map(|shard| shard.0[transport as usize][i].load(Ordering::Relaxed))
            .sum()
    }

    /// All requests through `transport`, and those of them that are not FORGET,
    /// BATCH_FORGET or INTERRUPT (which the kernel always sends through `/dev/fuse`).
    pub fn totals(&self, transport: Transport) -> (u64, u64) {
        use fuse_kernel_sys as s;
        let mut all = 0;
        let mut ordinary = 0;
        for op in 0..OPCODES {
            let n = self.count(transport, op as u32);
            all += n;
            if ![s::FUSE_FORGET, s::FUSE_BATCH_FORGET, s::FUSE_INTERRUPT].contains(&(op as u32)) {
                ordinary += n;
            }
        }
        (all, ordinary)
    }

    /// The report printed by `--stats`: one line per opcode with counts per transport, then
    /// totals, in a stable `key: value` form that tests and the demo parse.
    pub fn report(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "stats: requests by opcode (dev / uring):");
        for op in 0..OPCODES as u32 {
            let d = self.count(Transport::Dev, op);
            let u = self.count(Transport::Uring, op);
            if d + u == 0 {
                continue;
            }
            let name = opcode_name(op).map_or_else(|| format!("OPCODE_{op}"), str::to_owned);
            let _ = writeln!(s, "stats:   {name:<13} {d:>10} {u:>10}");
        }
        let (dev_all, dev_ordinary) = self.totals(Transport::Dev);
        let (uring_all, _) = self.totals(Transport::Uring);
        let _ = writeln!(s, "stats: dev_requests: {dev_all}");
        let _ = writeln!(s, "stats: dev_ordinary_requests: {dev_ordinary}");
        let _ = writeln!(s, "stats: uring_requests: {uring_all}");
        let reads = self.count(Transport::Dev, fuse_kernel_sys::FUSE_READ)
            + self.count(Transport::Uring, fuse_kernel_sys::FUSE_READ);
        let _ = writeln!(s, "stats: read_requests: {reads}");
        let flushes = self.count(Transport::Dev, fuse_kernel_sys::FUSE_FLUSH)
            + self.count(Transport::Uring, fuse_kernel_sys::FUSE_FLUSH);
        let _ = writeln!(s, "stats: flush_requests: {flushes}");
        let counters = [
            ("served_read_bytes", &self.served_read_bytes),
            ("zero_copy_reads", &self.zero_copy_reads),
            ("passthrough_opens", &self.passthrough_opens),
            ("passthrough_fallbacks", &self.passthrough_fallbacks),
            ("inode_fds_closed", &self.inode_fds_closed),
            ("inode_fds_reopened", &self.inode_fds_reopened),
        ];
        for (name, counter) in counters {
            let _ = writeln!(s, "stats: {name}: {}", counter.load(Ordering::Relaxed));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up_across_shards() {
        let stats = std::sync::Arc::new(Stats::default());
        let threads: Vec<_> = (0..SHARDS + 3)
            .map(|_| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        stats.record(Transport::Uring, fuse_kernel_sys::FUSE_GETATTR);
                    }
                    stats.record(Transport::Dev, fuse_kernel_sys::FUSE_FORGET);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let n = (SHARDS + 3) as u64;
        assert_eq!(
            stats.count(Transport::Uring, fuse_kernel_sys::FUSE_GETATTR),
            1000 * n
        );
        assert_eq!(stats.count(Transport::Dev, fuse_kernel_sys::FUSE_FORGET), n);
        assert_eq!(stats.totals(Transport::Uring), (1000 * n, 1000 * n));
        assert_eq!(stats.totals(Transport::Dev), (n, 0));
    }
}
