//! Fault injection and load for kernel tests and `cargo xtask soak`: a deterministic source
//! tree, client threads that load a mount with byte verification, clients that block on one
//! operation, and the probes that tell when the kernel, a process or a client has reached a
//! state (`/sys/fs/fuse/connections/<N>/waiting`, `/proc/<pid>/stat`, `VmHWM`).
//!
//! Nothing here waits without a deadline: every wait returns (or reports) when it expires, so
//! a hung mount fails the test instead of hanging it.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Polls `condition` every 10 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Requests of FUSE connection `n` that are waiting for an answer (sent to the server or
/// queued), from `/sys/fs/fuse/connections/<n>/waiting`.
pub fn connection_waiting(n: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/sys/fs/fuse/connections/{n}/waiting"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether FUSE connection `n` still exists (`/sys/fs/fuse/connections/<n>`).
pub fn connection_exists(n: u32) -> bool {
    Path::new(&format!("/sys/fs/fuse/connections/{n}")).exists()
}

/// The state letter of process `pid` (`R`, `S`, `D`, `T`, `Z`...), or `None` once it is
/// gone (reaped).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything; the state follows it.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether process `pid` has exited (a zombie waiting to be reaped, or gone).
pub fn process_exited(pid: u32) -> bool {
    matches!(process_state(pid), None | Some('Z' | 'X'))
}

/// Sends `signal` to process `pid`.
pub fn signal(pid: u32, signal: rustix::process::Signal) -> io::Result<()> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::kill_process(pid, signal)?)
}

/// Sends `SIGCONT` to a process when dropped: declare it after the process's owner (for
/// example an [`ExampleServer`](crate::example::ExampleServer)) whenever a test stops the
/// process with `SIGSTOP`, so that a failing test does not leave a stopped server whose
/// shutdown would wait forever.
#[derive(Debug)]
pub struct ContinueOnDrop(pub u32);

impl Drop for ContinueOnDrop {
    fn drop(&mut self) {
        let _ = signal(self.0, rustix::process::Signal::CONT);
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmHWM`: peak resident memory, `VmRSS`...).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// The number of open fds of process `pid`.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Pins the calling thread to `cpu`: with FUSE-over-io_uring, the kernel queues the FUSE
/// requests of a task on the queue of the CPU it runs on.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= rustix::thread::CpuSet::MAX_CPU {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let mut set = rustix::thread::CpuSet::new();
    set.set(cpu);
    Ok(rustix::thread::sched_setaffinity(None, &set)?)
}

/// The errno of an `io::Error` as a name (`ENOTCONN`...), for reports.
pub fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let name = match n {
                libc::ENOTCONN => "ENOTCONN",
                libc::ECONNABORTED => "ECONNABORTED",
                libc::ECANCELED => "ECANCELED",
                libc::ENOENT => "ENOENT",
                libc::EIO => "EIO",
                libc::EINTR => "EINTR",
                libc::ENODEV => "ENODEV",
                libc::EBADF => "EBADF",
                libc::EINVAL => "EINVAL",
                libc::EBUSY => "EBUSY",
                libc::ESTALE => "ESTALE",
                libc::EACCES => "EACCES",
                libc::EPERM => "EPERM",
                _ => return format!("errno {n}"),
            };
            name.to_owned()
        }
        None => format!("{:?}", e.kind()),
    }
}

/// The bytes of file `index` of a [`SourceTree`]: different in every file and at every
/// offset, so a misplaced or stale block is seen.
pub fn file_content(index: usize, len: usize) -> Vec<u8> {
    let mut state = (index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A directory of regular files with known contents ([`file_content`]), spread over a few
/// subdirectories, for load and fault tests. Removed on drop.
#[derive(Debug)]
pub struct SourceTree {
    root: PathBuf,
    /// Relative path and contents of each file.
    pub files: Arc<Vec<(PathBuf, Vec<u8>)>>,
}

impl SourceTree {
    /// Creates `count` files under a fresh temporary directory; file `i` has
    /// `sizes[i % sizes.len()]` bytes.
    pub fn create(tag: &str, count: usize, sizes: &[usize]) -> io::Result<SourceTree> {
        let root = crate::temp_dir(tag)?;
        let mut files = Vec::with_capacity(count);
        for i in 0..count {
            let rel = PathBuf::from(format!("d{}", i % 4)).join(format!("f{i:04}.bin"));
            let len = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0);
            let data = file_content(i, len);
            let path = root.join(&rel);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, &data)?;
            files.push((rel, data));
        }
        Ok(SourceTree {
            root,
            files: Arc::new(files),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }
}

impl Drop for SourceTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What a [`Load`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Completed rounds of stat, open, read all, compare, close.
    pub rounds: u64,
    /// Operations (each stat, open, read call and close counts one).
    pub operations: u64,
    /// Bytes read and verified.
    pub bytes: u64,
    /// Errors by kind (errno name, or `corrupt` for bytes that differ, `size` for a wrong
    /// `st_size`).
    pub errors: BTreeMap<String, u64>,
}

impl LoadReport {
    /// All errors.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: &LoadReport) {
        self.rounds += other.rounds;
        self.operations += other.operations;
        self.bytes += other.bytes;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// Client threads that loop over the files of a [`SourceTree`] as seen through a mount:
/// `stat` (size checked), `open`, `read` to the end (bytes compared), `close`.
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    threads: Vec<JoinHandle<LoadReport>>,
}

impl Load {
    /// Starts `threads` clients on `mountpoint`, which mirrors `files`. `buffer` is the size
    /// of each `read` call.
    pub fn start(
        mountpoint: &Path,
        files: &Arc<Vec<(PathBuf, Vec<u8>)>>,
        threads: usize,
        buffer: usize,
    ) -> io::Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let mut handles = Vec::new();
        for t in 0..threads {
            let stop = stop.clone();
            let rounds = rounds.clone();
            let files = files.clone();
            let mountpoint = mountpoint.to_owned();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn(move || client_loop(t, &mountpoint, &files, buffer, &stop, &rounds))?,
            );
        }
        Ok(Load {
            stop,
            rounds,
            threads: handles,
        })
    }

    /// Rounds completed so far by all clients together (while they run).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Whether every client is still running.
    pub fn all_running(&self) -> bool {
        self.threads.iter().all(|t| !t.is_finished())
    }

    /// Tells the clients to stop after their current operation and joins them; fails naming
    /// the clients still running after `timeout` (they are left behind: a hung mount).
    pub fn stop(self, timeout: Duration) -> Result<LoadReport, String> {
        self.stop.store(true, Ordering::SeqCst);
        let done = wait_until(timeout, || self.threads.iter().all(JoinHandle::is_finished));
        if !done {
            let hung = self.threads.iter().filter(|t| !t.is_finished()).count();
            return Err(format!(
                "{hung} of {} client threads still blocked {timeout:?} after stop",
                self.threads.len()
            ));
        }
        let mut total = LoadReport::default();
        for t in self.threads {
            match t.join() {
                Ok(r) => total.merge(&r),
                Err(_) => return Err("a client thread panicked".into()),
            }
        }
        Ok(total)
    }
}

fn client_loop(
    thread: usize,
    mountpoint: &Path,
    files: &[(PathBuf, Vec<u8>)],
    buffer: usize,
    stop: &AtomicBool,
    rounds: &AtomicU64,
) -> LoadReport {
    let mut report = LoadReport::default();
    let mut buf = vec![0u8; buffer.max(1)];
    let mut next = thread.wrapping_mul(7919);
    let fail = |report: &mut LoadReport, what: String| {
        *report.errors.entry(what).or_default() += 1;
    };
    while !stop.load(Ordering::Relaxed) && !files.is_empty() {
        next = next.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let (rel, data) = &files[(next >> 33) % files.len()];
        let path = mountpoint.join(rel);
        report.operations += 1;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.size() == data.len() as u64 => {}
            Ok(_) => {
                fail(&mut report, "size".into());
                continue;
            }
            Err(e) => {
                fail(&mut report, errno_name(&e));
                continue;
            }
        }
        report.operations += 1;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                fail(&mut report, errno_name(&e));
                continue;
            }
        };
        let mut at = 0;
        let mut ok = true;
        loop {
            report.operations += 1;
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if data.get(at..at + n) != Some(&buf[..n]) {
                        fail(&mut report, "corrupt".into());
                        ok = false;
                        break;
                    }
                    at += n;
                    report.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    fail(&mut report, errno_name(&e));
                    ok = false;
                    break;
                }
            }
        }
        report.operations += 1;
        drop(file);
        if ok && at != data.len() {
            fail(&mut report, "short".into());
            ok = false;
        }
        if ok {
            report.rounds += 1;
            rounds.fetch_add(1, Ordering::Relaxed);
        }
    }
    report
}

/// Client threads that each start one operation on a mount and report its result: for
/// tests that need clients blocked inside the kernel when a fault strikes.
#[derive(Debug)]
pub struct Blocked {
    results: mpsc::Receiver<(String, io::Result<u64>)>,
    started: usize,
    returned: usize,
}

/// One operation of a [`Blocked`] client.
#[derive(Debug, Clone)]
pub enum Op {
    /// `stat(path)`; the result is the size.
    Stat(PathBuf),
    /// `open(path)` and `read` to the end; the result is the bytes read.
    Read(PathBuf),
    /// `read_dir(path)` to the end; the result is the number of entries.
    List(PathBuf),
}

impl Op {
    fn run(&self) -> io::Result<u64> {
        match self {
            Op::Stat(p) => std::fs::symlink_metadata(p).map(|m| m.size()),
            Op::Read(p) => std::fs::read(p).map(|d| d.len() as u64),
            Op::List(p) => std::fs::read_dir(p)?.try_fold(0u64, |n, e| e.map(|_| n + 1)),
        }
    }

    fn name(&self) -> String {
        match self {
            Op::Stat(p) => format!("stat {}", p.display()),
            Op::Read(p) => format!("read {}", p.display()),
            Op::List(p) => format!("readdir {}", p.display()),
        }
    }
}

impl Blocked {
    /// Starts one detached thread per operation. A thread that stays blocked forever (a hung
    /// mount) is leaked, which is the failure the caller reports from [`Blocked::collect`].
    pub fn start(ops: &[Op]) -> io::Result<Blocked> {
        let (tx, rx) = mpsc::channel();
        for (i, op) in ops.iter().enumerate() {
            let tx = tx.clone();
            let op = op.clone();
            std::thread::Builder::new()
                .name(format!("blocked-{i}"))
                .spawn(move || {
                    let _ = tx.send((op.name(), op.run()));
                })?;
        }
        Ok(Blocked {
            results: rx,
            started: ops.len(),
            returned: 0,
        })
    }

    /// A client that has already returned (then it was not blocked), if any.
    pub fn any_returned(&mut self) -> Option<(String, io::Result<u64>)> {
        let r = self.results.try_recv().ok()?;
        self.returned += 1;
        Some(r)
    }

    /// Waits until every client returned or `timeout` passed; returns the results that came
    /// in during this call and how many clients are still blocked. May be called again.
    pub fn collect(&mut self, timeout: Duration) -> (Vec<(String, io::Result<u64>)>, usize) {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        while self.returned < self.started {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(left) {
                Ok(r) => {
                    self.returned += 1;
                    out.push(r);
                }
                Err(_) => break,
            }
        }
        (out, self.started - self.returned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contents_differ_between_files_and_offsets() {
        let a = file_content(0, 4096);
        let b = file_content(1, 4096);
        assert_eq!(a.len(), 4096);
        assert_ne!(a, b);
        assert_ne!(a[..8], a[8..16]);
        assert_eq!(file_content(3, 10), file_content(3, 20)[..10]);
    }

    #[test]
    fn own_process_probes() {
        let me = std::process::id();
        assert!(matches!(process_state(me), Some('R' | 'S')));
        assert!(!process_exited(me));
        assert!(status_kib(me, "VmHWM").is_some_and(|k| k > 0));
        assert!(fd_count(me).is_some_and(|n| n >= 3));
        assert!(wait_until(Duration::from_secs(1), || true));
        assert!(!wait_until(Duration::from_millis(30), || false));
    }

    #[test]
    fn load_and_blocked_clients_on_a_plain_directory() {
        let tree = SourceTree::create("fault-unit", 6, &[0, 1, 5000, 70_000]).unwrap();
        let load = Load::start(tree.path(), &tree.files, 3, 4096).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(load.all_running());
        let report = load.stop(Duration::from_secs(10)).unwrap();
        assert!(report.rounds > 0, "{report:?}");
        assert_eq!(report.error_count(), 0, "{report:?}");

        // A file that changed under the clients is reported, not accepted.
        std::fs::write(tree.path().join(&tree.files[2].0), vec![0u8; 5000]).unwrap();
        let load = Load::start(tree.path(), &tree.files, 2, 4096).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        let report = load.stop(Duration::from_secs(10)).unwrap();
        assert!(
            report.errors.get("corrupt").is_some_and(|&n| n > 0),
            "{report:?}"
        );

        let mut blocked = Blocked::start(&[
            Op::Stat(tree.path().join(&tree.files[3].0)),
            Op::Read(tree.path().join(&tree.files[3].0)),
            Op::List(tree.path().join("d0")),
            Op::Stat(tree.path().join("missing")),
        ])
        .unwrap();
        let (mut results, still) = blocked.collect(Duration::from_secs(10));
        assert_eq!(still, 0);
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let sizes: Vec<_> = results
            .iter()
            .map(|(_, r)| r.as_ref().ok().copied())
            .collect();
        assert_eq!(
            sizes,
            [Some(70_000), Some(2), Some(70_000), None],
            "{results:?}"
        );
    }
}
