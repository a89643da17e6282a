//! The systems under test: the native source directory, the example server and libfuse's
//! `passthrough_hp` mounted over each transport and data path; starting them on a fresh
//! mount, reading their counters.

use std::path::{Path, PathBuf};

use testkit::example::ExampleServer;

use super::libfuse;
use super::measure::Bench;
use super::{Cell, Failure, Kind, Workload, tail};

/// Which server a system runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stack {
    /// No server: the source directory itself, the limit.
    Native,
    /// The example server, `passthroughfs`.
    Example,
    /// libfuse's `passthrough_hp`, the baseline.
    Libfuse,
}

/// One system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct System {
    pub(crate) name: &'static str,
    pub(crate) stack: Stack,
    /// `None` for native; else the transport, `dev` or `uring`.
    pub(crate) transport: Option<&'static str>,
    pub(crate) passthrough: bool,
    /// Extra server options of a variant (`--variant`), after the common ones; empty for the
    /// systems of [`SYSTEMS`].
    pub(crate) extra: &'static [&'static str],
}

const fn system(
    name: &'static str,
    stack: Stack,
    transport: Option<&'static str>,
    passthrough: bool,
) -> System {
    System {
        name,
        stack,
        transport,
        passthrough,
        extra: &[],
    }
}

pub(crate) const SYSTEMS: [System; 8] = [
    system("native", Stack::Native, None, false),
    system("dev-served", Stack::Example, Some("dev"), false),
    system("dev-passthrough", Stack::Example, Some("dev"), true),
    system("uring-served", Stack::Example, Some("uring"), false),
    system("uring-passthrough", Stack::Example, Some("uring"), true),
    system("libfuse-dev", Stack::Libfuse, Some("dev"), false),
    system("libfuse-uring", Stack::Libfuse, Some("uring"), false),
    system(
        "libfuse-uring-passthrough",
        Stack::Libfuse,
        Some("uring"),
        true,
    ),
];

/// Ours and libfuse's system of each mode: (ours, libfuse), for the ours / libfuse table.
pub(crate) const PAIRS: [(&str, &str); 3] = [
    ("dev-served", "libfuse-dev"),
    ("uring-served", "libfuse-uring"),
    ("uring-passthrough", "libfuse-uring-passthrough"),
];

/// The server options every example system shares (then `--transport` and the data path).
pub(super) const COMMON_SERVER_ARGS: [&str; 3] = ["--attr-timeout", "0", "--stats"];

impl System {
    /// The server's options (before SOURCE MOUNTPOINT); none for native.
    pub(super) fn server_args(self) -> Vec<&'static str> {
        match self.stack {
            Stack::Native => Vec::new(),
            Stack::Example => {
                let mut args = vec!["--transport", self.transport.unwrap_or("dev")];
                if !self.passthrough {
                    args.push("--no-passthrough");
                }
                args.extend(COMMON_SERVER_ARGS);
                args.extend(self.extra);
                args
            }
            Stack::Libfuse => {
                let mut args = libfuse::COMMON_ARGS.to_vec();
                if !self.passthrough {
                    args.push("--nopassthrough");
                }
                if self.transport == Some("uring") {
                    args.extend(["-o", "io_uring"]);
                }
                args.extend(self.extra);
                args
            }
        }
    }
}

/// Mount options of the mount at `path`: per-mount options, and the super block's.
pub(super) fn mount_options(path: &Path) -> Option<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_str()?;
    info.lines().rev().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut l = left.split(' ');
        if l.nth(4)? != want {
            return None;
        }
        let opts = l.next()?;
        let mut r = right.split(' ');
        let fstype = r.next()?;
        let _source = r.next()?;
        let superopts = r.next()?;
        // The type (fuse.passthroughfs, fuse) is left out: the options must be equal.
        let _ = fstype;
        Some(format!("{opts}; {superopts}"))
    })
}

/// A scratch directory holding the mount point and fio's output files: on drop, detaches
/// whatever is still mounted there and removes it.
pub(super) struct Scratch {
    pub(super) dir: PathBuf,
    pub(super) mnt: PathBuf,
}

impl Scratch {
    pub(super) fn new() -> Result<Scratch, String> {
        let dir = testkit::temp_dir("bench").map_err(|e| format!("bench: temp dir: {e}"))?;
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        let mnt = dir.join("mnt");
        std::fs::create_dir_all(&mnt).map_err(|e| format!("{}: {e}", mnt.display()))?;
        Ok(Scratch { dir, mnt })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if testkit::is_mount_point(&self.mnt) {
            let _ = rustix::mount::unmount(&self.mnt, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bench<'_> {
    /// Runs repetition `rep` of workload `w` on the native source.
    pub(super) fn native(&self, w: &Workload, rep: usize, cell: &mut Cell) -> Result<(), Failure> {
        self.warm(w)?;
        let root = self.source.root.clone();
        self.measure_rep(
            SYSTEMS[0],
            w,
            rep,
            &mut || self.measure(w, &root),
            None,
            cell,
        )
    }

    /// Runs repetition `rep` of workload `w` on a fresh mount of system `sys`. Returns the
    /// server's ready line and the mount's options.
    pub(super) fn mounted(
        &self,
        sys: System,
        w: &Workload,
        rep: usize,
        cell: &mut Cell,
    ) -> Result<(String, Option<String>), Failure> {
        self.warm(w)?;
        let mnt = &self.scratch.mnt;
        let server = match sys.stack {
            Stack::Libfuse => Running::Libfuse(self.start_libfuse(sys)?),
            _ => Running::Example(self.start_example(sys)?),
        };
        let (ready, pid) = match &server {
            Running::Example(s) => (s.ready.clone(), s.pid()),
            Running::Libfuse(s) => (s.ready.clone(), s.pid()),
        };
        let mounted = (ready, mount_options(mnt));
        let measured = self.measure_rep(sys, w, rep, &mut || self.measure(w, mnt), pid, cell);
        let stopped = match server {
            Running::Example(s) => stop_example(s, mnt, cell),
            Running::Libfuse(s) => stop_libfuse(sys, s, cell),
        };
        measured?;
        stopped.map(|()| mounted)
    }

    /// Starts libfuse's `passthrough_hp` as `sys` on the mount point.
    fn start_libfuse(&self, sys: System) -> Result<libfuse::Server, Failure> {
        let build = self
            .libfuse
            .ok_or_else(|| Failure::System("the libfuse baseline was not built".into()))?;
        libfuse::Server::start(
            build,
            &sys.server_args(),
            sys.transport == Some("uring"),
            &self.source.root,
            &self.scratch.mnt,
            &self.scratch.dir,
        )
    }

    /// Starts the example as `sys` on the mount point and checks it runs as asked.
    fn start_example(&self, sys: System) -> Result<ExampleServer, Failure> {
        let binary = self
            .server
            .ok_or_else(|| Failure::System("the example server was not built".into()))?;
        let server = ExampleServer::start(
            binary,
            &self.source.root,
            &self.scratch.mnt,
            &sys.server_args(),
        )
        .map_err(|e| Failure::System(format!("failed to start: {e}")))?;
        let want_transport = sys.transport.unwrap_or("dev");
        let want_passthrough = if sys.passthrough { "on" } else { "off" };
        if server.ready_field("transport") != Some(want_transport)
            || server.ready_field("passthrough") != Some(want_passthrough)
        {
            return Err(Failure::System(format!(
                "asked for transport={want_transport} passthrough={want_passthrough}, but the server says: {}",
                server.ready
            )));
        }
        Ok(server)
    }

    /// Notes where the server's counters contradict what the system is meant to be.
    pub(super) fn check_stats(&self, sys: System, w: &Workload, cell: &mut Cell) {
        if sys.stack != Stack::Example {
            return;
        }
        let stat = |k: &str| {
            cell.stats
                .iter()
                .find(|(key, _)| key == k)
                .map_or(0, |(_, v)| *v)
        };
        let mut notes = Vec::new();
        if sys.passthrough {
            if stat("passthrough_fallbacks") > 0 {
                notes.push(format!(
                    "{} opens fell back to served reads",
                    stat("passthrough_fallbacks")
                ));
            }
            if matches!(w.kind, Kind::Fio { .. }) && stat("read_requests") > 0 {
                notes.push(format!(
                    "{} READ requests reached the server despite passthrough",
                    stat("read_requests")
                ));
            }
        }
        if sys.transport == Some("uring") && stat("dev_ordinary_requests") > 16 {
            notes.push(format!(
                "{} ordinary requests came through /dev/fuse instead of io_uring",
                stat("dev_ordinary_requests")
            ));
        }
        for n in notes {
            self.progress
                .say(&format!("{} | {} | note: {n}", sys.name, w.id));
            cell.notes.push(n);
        }
    }
}

/// `stats: key: value` lines and the per-opcode lines (`stats:   NAME  dev  uring`).
pub(super) fn parse_stats(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("stats:") else {
            continue;
        };
        if let Some((k, v)) = rest.trim().split_once(": ") {
            if let Ok(v) = v.trim().parse() {
                out.push((k.trim().to_owned(), v));
            }
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let [name, dev, uring] = f.as_slice() {
            if let (Ok(d), Ok(u)) = (dev.parse::<u64>(), uring.parse::<u64>()) {
                out.push((format!("{name}.dev"), d));
                out.push((format!("{name}.uring"), u));
            }
        }
    }
    out
}

/// A server under measurement.
enum Running {
    Example(ExampleServer),
    Libfuse(libfuse::Server),
}

/// Stops the example, adds its `--stats` counters to `cell`; fails if it exited with an error.
fn stop_example(server: ExampleServer, mnt: &Path, cell: &mut Cell) -> Result<(), Failure> {
    let stopped = server.stop();
    if testkit::is_mount_point(mnt) {
        let _ = rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::DETACH);
        cell.notes
            .push("the mount was still there after the server stopped".into());
    }
    match stopped {
        Ok((true, stats, _)) => {
            for (k, v) in parse_stats(&stats) {
                match cell.stats.iter_mut().find(|(key, _)| *key == k) {
                    Some((_, sum)) => *sum += v,
                    None => cell.stats.push((k, v)),
                }
            }
            Ok(())
        }
        Ok((false, _, stderr)) => Err(Failure::Workload(format!(
            "the server exited with an error: {}",
            tail(&stderr)
        ))),
        Err(e) => Err(Failure::Workload(format!("stopping the server: {e}"))),
    }
}

/// Stops `passthrough_hp`; notes a passthrough it gave up; fails if it did not stop by itself.
fn stop_libfuse(sys: System, server: libfuse::Server, cell: &mut Cell) -> Result<(), Failure> {
    let (clean, stderr) = server.stop();
    // passthrough_hp turns passthrough off for good after one refused backing file.
    if sys.passthrough && stderr.contains("passthrough_open failed") {
        let note = "passthrough_hp could not open a backing file and served reads instead";
        if !cell.notes.iter().any(|n| n == note) {
            cell.notes.push(note.into());
        }
    }
    if clean {
        Ok(())
    } else {
        Err(Failure::Workload(format!(
            "passthrough_hp did not stop within 10 s of SIGTERM or left its mount: {}",
            tail(&stderr)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{Mode, default_systems, parse};
    use super::*;

    fn named(name: &str) -> System {
        *SYSTEMS.iter().find(|s| s.name == name).unwrap()
    }

    #[test]
    fn libfuse_command_lines_differ_only_in_transport_and_data_path() {
        let base = ["--foreground", "--nocache", "-o", "ro,allow_other"];
        let with = |extra: &[&'static str]| [&base[..], extra].concat();
        assert_eq!(
            named("libfuse-dev").server_args(),
            with(&["--nopassthrough"])
        );
        assert_eq!(
            named("libfuse-uring").server_args(),
            with(&["--nopassthrough", "-o", "io_uring"])
        );
        assert_eq!(
            named("libfuse-uring-passthrough").server_args(),
            with(&["-o", "io_uring"])
        );
        assert_eq!(
            named("uring-served").server_args(),
            [
                "--transport",
                "uring",
                "--no-passthrough",
                "--attr-timeout",
                "0",
                "--stats"
            ]
        );
        assert!(named("native").server_args().is_empty());
        // Every pair is one of ours against one of libfuse's, on the same transport and path.
        for (ours, theirs) in PAIRS {
            let (a, b) = (named(ours), named(theirs));
            assert_eq!((a.stack, b.stack), (Stack::Example, Stack::Libfuse));
            assert_eq!((a.transport, a.passthrough), (b.transport, b.passthrough));
        }
    }

    #[test]
    fn smoke_keeps_one_libfuse_system_and_systems_select() {
        let names = |v: Vec<System>| v.iter().map(|s| s.name).collect::<Vec<_>>();
        let smoke = names(default_systems(Mode::Smoke));
        assert_eq!(smoke.iter().filter(|n| n.starts_with("libfuse")).count(), 1);
        assert!(smoke.contains(&"libfuse-uring") && smoke.contains(&"uring-passthrough"));
        assert_eq!(default_systems(Mode::Full).len(), SYSTEMS.len());
        let chosen = parse(&["--smoke", "--systems", "libfuse-dev,dev-served"]).unwrap();
        assert_eq!(
            names(chosen.systems),
            ["native", "dev-served", "libfuse-dev"]
        );
        assert!(parse(&["--systems", "libfuse"]).is_err());
    }
}
