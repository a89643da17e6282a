//! Leak checks for kernel tests: the process has the same open fds and the same memory
//! mappings after a test as before it.
//!
//! A test process is noisy: the test harness runs tests on parallel threads, glibc caches the
//! stacks of finished threads (up to 40 MiB) and creates a malloc arena per contending thread,
//! so counting `/proc/self/fd` and `/proc/self/maps` around a test inside `cargo test` would
//! measure the neighbours. [`isolate`] therefore runs the calling test again in a child
//! process of the same test binary, alone (`--exact NAME --test-threads=1`), with glibc told
//! to unmap stacks of joined threads and to keep one malloc arena
//! (`GLIBC_TUNABLES=glibc.pthread.stack_cache_size=0:glibc.malloc.arena_max=1`). In the
//! child, the returned [`Guard`] snapshots fds and mappings when created and compares when
//! dropped; any difference fails the test, naming each fd (with its target) and mapping.
//!
//! ```no_run
//! #[test]
//! fn my_kernel_test() {
//!     // The guard's checks, then `isolate`.
//!     let Some(_t) = testkit::kernel_test_leak_checked(testkit::Needs::Kernel) else {
//!         return;
//!     };
//!     // ... the test; everything it opens or maps must be gone when it returns
//! }
//! ```
//!
//! The parent waits for the child with a deadline ([`CHILD_TIMEOUT`], or
//! `TESTKIT_LEAK_TIMEOUT` seconds); on expiry it kills the child and removes the mounts it
//! left ([`cleanup_mounts_of`]). The child's output is printed by the parent (so the harness
//! captures it as usual), and the parent checks that exactly this one test ran and passed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to the test's name) in the child process that runs a test under the leak check.
pub const CHILD_ENV: &str = "TESTKIT_LEAK_CHILD";

/// Overrides [`CHILD_TIMEOUT`] (whole seconds).
pub const TIMEOUT_ENV: &str = "TESTKIT_LEAK_TIMEOUT";

/// When set to `1`, only fds are compared: for runs under a sanitizer (LeakSanitizer,
/// AddressSanitizer) or a tool whose own allocator maps memory as it goes, which would show
/// up as changed mappings. The sanitizer then checks memory itself.
pub const FDS_ONLY_ENV: &str = "TESTKIT_LEAK_FDS_ONLY";

/// Whether [`FDS_ONLY_ENV`] is set: mappings are not compared.
pub fn fds_only() -> bool {
    std::env::var(FDS_ONLY_ENV).is_ok_and(|v| v == "1")
}

/// How long the child may take by default.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The glibc tunables of the child: stacks of joined threads are unmapped at once, and all
/// threads share the main malloc arena, so neither shows up as a mapping that outlives a test.
pub const GLIBC_TUNABLES: &str = "glibc.pthread.stack_cache_size=0:glibc.malloc.arena_max=1";

/// One line of `/proc/self/maps`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mapping {
    /// Start address.
    pub start: u64,
    /// End address (exclusive).
    pub end: u64,
    /// Permissions, as in maps (`rw-p`).
    pub perms: String,
    /// The path or pseudo-path (`[heap]`, `anon_inode:[io_uring]`...); empty when anonymous.
    pub path: String,
}

impl Mapping {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the mapping is empty (never, for a real mapping).
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }

    /// Parses one line of `/proc/<pid>/maps`.
    pub fn parse(line: &str) -> Option<Mapping> {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let perms = fields.next()?.to_owned();
        // offset, dev, inode; then the path, which may contain spaces.
        for _ in 0..3 {
            fields.next()?;
        }
        let path = fields.collect::<Vec<_>>().join(" ");
        Some(Mapping {
            start: u64::from_str_radix(start, 16).ok()?,
            end: u64::from_str_radix(end, 16).ok()?,
            perms,
            path,
        })
    }

    /// Whether the mapping belongs to the main thread's stack or the brk heap, which grow and
    /// shrink in place.
    fn grows_in_place(&self) -> bool {
        self.path == "[heap]" || self.path == "[stack]"
    }
}

impl std::fmt::Display for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:x}-{:x} {} {} KiB {}",
            self.start,
            self.end,
            self.perms,
            self.len() / 1024,
            if self.path.is_empty() {
                "(anonymous)"
            } else {
                &self.path
            }
        )
    }
}

/// The open fds (number -> target) and memory mappings of a process at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Open fds and what they point at (`/dev/fuse`, `anon_inode:[io_uring]`, a path...).
    pub fds: BTreeMap<i32, String>,
    /// Memory mappings, in address order.
    pub maps: Vec<Mapping>,
}

impl Snapshot {
    /// The calling process now.
    pub fn of_self() -> io::Result<Snapshot> {
        Snapshot::of("self")
    }

    /// Process `pid` now (`"self"` or a number): needs the right to read its `/proc` entry.
    pub fn of(pid: &str) -> io::Result<Snapshot> {
        let fd_dir = format!("/proc/{pid}/fd");
        // Our own fd for reading the directory is not part of the snapshot.
        let dir = rustix::fs::open(
            fd_dir.as_str(),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let own = if pid == "self" {
            Some(dir.as_raw_fd())
        } else {
            None
        };
        let mut fds = BTreeMap::new();
        for entry in rustix::fs::Dir::new(dir)? {
            let entry = entry?;
            let Ok(n) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if Some(n) == own {
                continue;
            }
            // The fd may be closed between listing and readlink (another thread).
            if let Ok(target) = std::fs::read_link(format!("{fd_dir}/{n}")) {
                fds.insert(n, target.to_string_lossy().into_owned());
            }
        }
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))?
            .lines()
            .filter_map(Mapping::parse)
            .collect();
        Ok(Snapshot { fds, maps })
    }

    /// Total size of the mappings that do not grow in place (all but `[heap]` and `[stack]`).
    pub fn fixed_mapped_bytes(&self) -> u64 {
        self.maps
            .iter()
            .filter(|m| !m.grows_in_place())
            .map(Mapping::len)
            .sum()
    }

    /// What differs between `self` (before) and `after`, or `None` when nothing leaked: the
    /// same fds with the same targets, the same number of mappings, the same named mappings,
    /// and the same total size of mappings other than the heap and the main stack.
    pub fn leaks_since(&self, after: &Snapshot) -> Option<String> {
        let mut report = String::new();
        for (fd, target) in &after.fds {
            match self.fds.get(fd) {
                None => {
                    let _ = writeln!(report, "  new fd {fd} -> {target}");
                }
                Some(before) if before != target => {
                    let _ = writeln!(report, "  fd {fd} was {before}, is now {target}");
                }
                Some(_) => {}
            }
        }
        for (fd, target) in &self.fds {
            if !after.fds.contains_key(fd) {
                let _ = writeln!(report, "  fd {fd} -> {target} was closed");
            }
        }
        let key = |m: &Mapping| (m.perms.clone(), m.path.clone(), m.start, m.end);
        let before: BTreeMap<_, _> = self.maps.iter().map(|m| (key(m), m)).collect();
        let now: BTreeMap<_, _> = after.maps.iter().map(|m| (key(m), m)).collect();
        let count_changed = self.maps.len() != after.maps.len();
        let named = |maps: &[Mapping]| {
            let mut v: Vec<(String, String)> = maps
                .iter()
                .filter(|m| !m.path.is_empty())
                .map(|m| (m.perms.clone(), m.path.clone()))
                .collect();
            v.sort();
            v
        };
        let named_changed = named(&self.maps) != named(&after.maps);
        let size_changed = self.fixed_mapped_bytes() != after.fixed_mapped_bytes();
        if count_changed || named_changed || size_changed {
            let _ = writeln!(
                report,
                "  mappings: {} before, {} after; {} KiB before, {} KiB after (heap and \
                 stack excluded)",
                self.maps.len(),
                after.maps.len(),
                self.fixed_mapped_bytes() / 1024,
                after.fixed_mapped_bytes() / 1024
            );
            for (k, m) in &now {
                if !before.contains_key(k) {
                    let _ = writeln!(report, "  + {m}");
                }
            }
            for (k, m) in &before {
                if !now.contains_key(k) {
                    let _ = writeln!(report, "  - {m}");
                }
            }
        }
        (!report.is_empty()).then_some(report)
    }
}

/// Compares the process with its state at creation when dropped, and panics (failing the
/// test) on any difference, unless the thread is already panicking.
#[derive(Debug)]
pub struct Guard {
    before: Snapshot,
}

impl Guard {
    /// Snapshots the calling process now.
    pub fn new() -> io::Result<Guard> {
        Ok(Guard {
            before: Snapshot::of_self()?,
        })
    }

    /// Compares now, without waiting for the drop.
    pub fn check(&self) -> Result<(), String> {
        let mut after = Snapshot::of_self().map_err(|e| format!("cannot read /proc/self: {e}"))?;
        let mut before = self.before.clone();
        if fds_only() {
            before.maps.clear();
            after.maps.clear();
        }
        match before.leaks_since(&after) {
            None => Ok(()),
            Some(report) => Err(format!(
                "leaked (fds and mappings after the test differ from before):\n{report}"
            )),
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        if let Err(e) = self.check() {
            panic!("{e}");
        }
        if fds_only() {
            eprintln!(
                "testkit::leak: no leak ({} fds before and after; mappings not compared: \
                 {FDS_ONLY_ENV}=1)",
                self.before.fds.len()
            );
        } else {
            eprintln!(
                "testkit::leak: no leak ({} fds, {} mappings before and after)",
                self.before.fds.len(),
                self.before.maps.len()
            );
        }
    }
}

/// Whether this process is the leak-check child of test `name`.
fn is_child_for(name: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == name)
}

/// Runs the calling test under the leak check (see the module docs).
///
/// In the test process: runs the same test alone in a child process, waits for it (with a
/// deadline), prints its output, panics if it failed, timed out, or did not run exactly this
/// test, and returns `None`: the caller returns. In the child: returns the [`Guard`] that
/// checks fds and mappings when dropped; the caller runs the test body and keeps the guard
/// alive to the end (`let Some(_leaks) = testkit::leak::isolate() else { return };`).
///
/// The test's name is the name of the current thread, which the test harness sets.
#[track_caller]
#[must_use = "keep the guard alive until the end of the test"]
pub fn isolate() -> Option<Guard> {
    let current = std::thread::current();
    let name = match current.name() {
        Some(n) if n != "main" => n.to_owned(),
        _ => panic!(
            "testkit::leak::isolate: the current thread has no test name; call it from the \
             test's own thread"
        ),
    };
    if is_child_for(&name) {
        return match Guard::new() {
            Ok(guard) => Some(guard),
            Err(e) => panic!("testkit::leak: cannot snapshot /proc/self: {e}"),
        };
    }
    if let Err(e) = run_isolated(&name) {
        panic!("{e}");
    }
    None
}

fn child_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(CHILD_TIMEOUT, Duration::from_secs)
}

/// Runs test `name` of the current test binary alone in a child process under the leak
/// check (what [`isolate`] does in the test process), prints its output, and reports whether
/// it ran exactly once and passed.
///
/// # Errors
///
/// The child failed (a leak, a failed assertion), timed out, or did not run exactly `name`.
pub fn run_isolated(name: &str) -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let tunables = match std::env::var("GLIBC_TUNABLES") {
        Ok(existing) if !existing.is_empty() => format!("{existing}:{GLIBC_TUNABLES}"),
        _ => GLIBC_TUNABLES.to_owned(),
    };
    let mut child = Command::new(&exe)
        .args([
            name,
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "--include-ignored",
        ])
        .env(CHILD_ENV, name)
        .env("GLIBC_TUNABLES", tunables)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id();
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + child_timeout();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => break None,
            Err(e) => return Err(format!("waiting for the leak-check child: {e}")),
        }
    };
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
        cleanup_mounts_of(pid);
    }
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    print!("{out}");
    eprint!("{err}");
    if timed_out {
        return Err(format!(
            "the leak-check child for {name} did not finish within {:?} and was killed",
            child_timeout()
        ));
    }
    let summary = out
        .lines()
        .rev()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or("");
    let ran_once = summary.contains(" 1 passed; 0 failed;");
    match status {
        Some(s) if s.success() && ran_once => Ok(()),
        Some(s) => {
            // The leak report, if that is why it failed.
            let report: Vec<&str> = err
                .lines()
                .skip_while(|l| !l.starts_with("leaked ("))
                .take_while(|l| !l.trim().is_empty())
                .collect();
            Err(format!(
                "the leak-check child for {name} failed ({s}; summary: {summary:?})\n{}",
                report.join("\n")
            ))
        }
        None => Err(format!("the leak-check child for {name} vanished")),
    }
}

/// Removes the FUSE mounts that process `pid` made with [`temp_dir`](crate::temp_dir) mount
/// points and left behind (it was killed): aborts each connection through fusectl, then
/// detaches the mount. Returns how many it removed.
pub fn cleanup_mounts_of(pid: u32) -> usize {
    let marker = format!("-{pid}-");
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return 0;
    };
    let mut removed = 0;
    for line in info.lines() {
        let mut fields = line.split(' ');
        let dev = fields.nth(2);
        let mount_point = fields.nth(1);
        let (Some(dev), Some(mount_point)) = (dev, mount_point) else {
            continue;
        };
        if !mount_point.contains("fuse-testkit-") || !mount_point.contains(&marker) {
            continue;
        }
        if let Some(n) = dev.split_once(':').and_then(|(_, m)| m.parse().ok()) {
            let _ = crate::abort_connection(n);
        }
        if rustix::mount::unmount(mount_point, rustix::mount::UnmountFlags::DETACH).is_ok() {
            removed += 1;
        }
        let _ = std::fs::remove_dir(mount_point);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_parse_with_and_without_paths() {
        let m = Mapping::parse(
            "7f00aa000000-7f00aa021000 rw-p 00000000 00:00 0                          [heap]",
        )
        .unwrap();
        assert_eq!(
            (m.start, m.end, m.len()),
            (0x7f00_aa00_0000, 0x7f00_aa02_1000, 0x21000)
        );
        assert_eq!((m.perms.as_str(), m.path.as_str()), ("rw-p", "[heap]"));
        let anon = Mapping::parse("7f00aa000000-7f00aa001000 ---p 00000000 00:00 0").unwrap();
        assert_eq!(anon.path, "");
        let spaced =
            Mapping::parse("1000-2000 r--p 00000000 08:01 1234 /tmp/a b (deleted)").unwrap();
        assert_eq!(spaced.path, "/tmp/a b (deleted)");
        assert!(Mapping::parse("garbage").is_none());
    }

    fn snap(fds: &[(i32, &str)], maps: &[(u64, u64, &str)]) -> Snapshot {
        Snapshot {
            fds: fds.iter().map(|&(n, t)| (n, t.to_owned())).collect(),
            maps: maps
                .iter()
                .map(|&(start, end, path)| Mapping {
                    start,
                    end,
                    perms: "rw-p".into(),
                    path: path.into(),
                })
                .collect(),
        }
    }

    #[test]
    fn differences_are_reported_and_equal_snapshots_are_clean() {
        let base = snap(
            &[(0, "/dev/null"), (3, "/dev/fuse")],
            &[(0x1000, 0x3000, "")],
        );
        assert_eq!(base.leaks_since(&base.clone()), None);

        let new_fd = snap(
            &[
                (0, "/dev/null"),
                (3, "/dev/fuse"),
                (4, "anon_inode:[io_uring]"),
            ],
            &[(0x1000, 0x3000, "")],
        );
        let report = base.leaks_since(&new_fd).unwrap();
        assert!(
            report.contains("new fd 4 -> anon_inode:[io_uring]"),
            "{report}"
        );

        let closed = snap(&[(0, "/dev/null")], &[(0x1000, 0x3000, "")]);
        assert!(base.leaks_since(&closed).unwrap().contains("was closed"));

        // A mapping that merged into its neighbour: same count, more bytes.
        let grown = snap(
            &[(0, "/dev/null"), (3, "/dev/fuse")],
            &[(0x1000, 0x9000, "")],
        );
        let report = base.leaks_since(&grown).unwrap();
        assert!(report.contains("+ 1000-9000"), "{report}");

        // The heap may grow in place.
        let heap = snap(&[], &[(0x1000, 0x2000, "[heap]")]);
        let heap_grown = snap(&[], &[(0x1000, 0x8000, "[heap]")]);
        assert_eq!(heap.leaks_since(&heap_grown), None);

        let extra_map = snap(&[], &[(0x1000, 0x2000, "[heap]"), (0x5000, 0x6000, "")]);
        assert!(
            heap.leaks_since(&extra_map)
                .unwrap()
                .contains("1 before, 2 after")
        );
    }

    #[test]
    fn a_snapshot_of_self_sees_a_new_fd() {
        let before = Snapshot::of_self().unwrap();
        let file = std::fs::File::open("/proc/self/maps").unwrap();
        let after = Snapshot::of_self().unwrap();
        let report = before.leaks_since(&after).expect("the new fd is seen");
        let target = format!("/proc/{}/maps", std::process::id());
        assert!(report.contains(&target), "{report}");
        drop(file);
    }
}
