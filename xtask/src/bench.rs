//! `cargo xtask bench`: the end-to-end benchmark. The example server (`passthroughfs`) against
//! the native file system, across transports (`/dev/fuse`, FUSE-over-io_uring) and data paths
//! (served READ, passthrough), on the same files in the same run, with ratios to native.
//!
//! - Systems: `native` (the source directory itself: the limit), and the example mounted as
//!   `{dev,uring}-{served,passthrough}`, every one with the same options and timeouts
//!   (`--attr-timeout 0`: no attribute or entry caching, so that `stat` reaches the server).
//! - Workloads (fio for data, `xtask bench-client` processes for metadata): sequential read of
//!   the large file with 1 MiB blocks, page cache warm and with `O_DIRECT`; 4 KiB random reads
//!   with 1 and 2 jobs; `stat` of the small files with 1 and 2 processes; open+read+close.
//! - Each (system, workload) gets a fresh server, so that the server's request counts and CPU
//!   time (utime+stime from `/proc/<pid>/stat`, per repetition) belong to that workload alone.
//! - A system that cannot start (its error is printed) or a workload that fails is reported as
//!   such; the run goes on with the others. The exit status is non-zero if anything failed.
//! - Output: progress lines, a markdown table (value, min-max, ratio to native), the server's
//!   CPU time, the targets (met or not), and `results.json`, `results.md` and
//!   `ratios.svg` under `target/bench/` (or `--out DIR`).
//! - The source tree is cached in `target/bench/source` (`source-smoke` for `--smoke`); delete it
//!   to regenerate. Nothing is left mounted: each server is stopped by a guard, and SIGINT of
//!   the benchmark stops the current child and cleans up.

mod client;
mod json;
mod report;
pub(crate) mod source;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::{
    MachineTicks, children_cpu_ticks, clock_ticks_per_second, cpu_ticks, machine_ticks,
    stop_requested,
};
use testkit::example::ExampleServer;

use client::Op;
pub(crate) use client::main as client_main;
use source::{Layout, Source};

/// One system under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct System {
    pub(crate) name: &'static str,
    /// `None` for native; else the server's `--transport`.
    pub(crate) transport: Option<&'static str>,
    pub(crate) passthrough: bool,
}

pub(crate) const SYSTEMS: [System; 5] = [
    System {
        name: "native",
        transport: None,
        passthrough: false,
    },
    System {
        name: "dev-served",
        transport: Some("dev"),
        passthrough: false,
    },
    System {
        name: "dev-passthrough",
        transport: Some("dev"),
        passthrough: true,
    },
    System {
        name: "uring-served",
        transport: Some("uring"),
        passthrough: false,
    },
    System {
        name: "uring-passthrough",
        transport: Some("uring"),
        passthrough: true,
    },
];

/// The server options every mounted system shares (then `--transport` and the data path).
const COMMON_SERVER_ARGS: [&str; 3] = ["--attr-timeout", "0", "--stats"];

impl System {
    fn server_args(self) -> Vec<&'static str> {
        let mut args = vec!["--transport", self.transport.unwrap_or("dev")];
        if !self.passthrough {
            args.push("--no-passthrough");
        }
        args.extend(COMMON_SERVER_ARGS);
        args
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A fio job: `rw`, block size, O_DIRECT, jobs; timed (random) or whole-file passes.
    Fio {
        rw: &'static str,
        bs: &'static str,
        direct: bool,
        jobs: u32,
    },
    /// `procs` bench-client processes.
    Meta { op: Op, procs: usize },
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Workload {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) kind: Kind,
}

pub(crate) const WORKLOADS: [Workload; 7] = [
    Workload {
        id: "seq-read-warm",
        label: "sequential read, 1 MiB blocks, page cache warm",
        unit: "MiB/s",
        kind: Kind::Fio {
            rw: "read",
            bs: "1M",
            direct: false,
            jobs: 1,
        },
    },
    Workload {
        id: "seq-read-direct",
        label: "sequential read, 1 MiB blocks, O_DIRECT",
        unit: "MiB/s",
        kind: Kind::Fio {
            rw: "read",
            bs: "1M",
            direct: true,
            jobs: 1,
        },
    },
    Workload {
        id: "rand-read-4k-1job",
        label: "4 KiB random read, 1 job",
        unit: "IOPS",
        kind: Kind::Fio {
            rw: "randread",
            bs: "4k",
            direct: false,
            jobs: 1,
        },
    },
    Workload {
        id: "rand-read-4k-2jobs",
        label: "4 KiB random read, 2 jobs",
        unit: "IOPS",
        kind: Kind::Fio {
            rw: "randread",
            bs: "4k",
            direct: false,
            jobs: 2,
        },
    },
    Workload {
        id: "stat-1proc",
        label: "stat (fstatat in its directory), no attr/entry caching, 1 process",
        unit: "stat/s",
        kind: Kind::Meta {
            op: Op::Stat,
            procs: 1,
        },
    },
    Workload {
        id: "stat-2procs",
        label: "stat (fstatat in its directory), no attr/entry caching, 2 processes",
        unit: "stat/s",
        kind: Kind::Meta {
            op: Op::Stat,
            procs: 2,
        },
    },
    Workload {
        id: "open-read-close",
        label: "open+read+close of small files, 1 process",
        unit: "files/s",
        kind: Kind::Meta {
            op: Op::OpenReadClose,
            procs: 1,
        },
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Full,
    Quick,
    Smoke,
}

/// How much of everything: durations, repetitions, sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) mode: Mode,
    pub(crate) reps: usize,
    /// Duration of each random-read run.
    pub(crate) rand_secs: u32,
    /// Duration of each metadata run.
    pub(crate) meta_secs: f64,
    /// Whole-file passes per sequential-read repetition (each a fresh open).
    pub(crate) seq_passes: u32,
    pub(crate) large_mib: u64,
    pub(crate) layout: Layout,
    /// Seconds the run may spend in all waiting for other processes to leave the CPUs, or
    /// measuring disturbed repetitions again.
    pub(crate) patience_secs: f64,
}

impl Plan {
    fn new(mode: Mode) -> Plan {
        let full_layout = Layout {
            dirs: 10,
            files_per_dir: 1000,
        };
        match mode {
            Mode::Full => Plan {
                mode,
                reps: 3,
                rand_secs: 20,
                meta_secs: 3.0,
                seq_passes: 3,
                large_mib: 1024,
                layout: full_layout,
                patience_secs: 150.0,
            },
            Mode::Quick => Plan {
                mode,
                reps: 1,
                rand_secs: 5,
                meta_secs: 2.0,
                seq_passes: 2,
                large_mib: 1024,
                layout: full_layout,
                patience_secs: 60.0,
            },
            Mode::Smoke => Plan {
                mode,
                reps: 1,
                rand_secs: 2,
                meta_secs: 1.0,
                seq_passes: 2,
                large_mib: 64,
                layout: Layout {
                    dirs: 4,
                    files_per_dir: 250,
                },
                patience_secs: 15.0,
            },
        }
    }

    pub(crate) fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }

    pub(crate) fn describe(&self) -> String {
        let shortened = match self.mode {
            Mode::Full => String::new(),
            _ => " (shortened from the full run's 20 s)".to_owned(),
        };
        format!(
            "mode {}: {} repetition(s) per workload; sequential reads: {} whole-file passes of the {} MiB file \
             per repetition, each a fresh open; random reads: {} s{shortened}; metadata loops: {} s; \
             small files: {}; up to {:.0} s in all spent waiting for other processes to leave \
             the CPUs or measuring disturbed repetitions again",
            self.mode_name(),
            self.reps,
            self.seq_passes,
            self.large_mib,
            self.rand_secs,
            self.meta_secs,
            self.layout.count(),
            self.patience_secs,
        )
    }
}

#[derive(Debug)]
struct Options {
    plan: Plan,
    out: Option<PathBuf>,
    systems: Vec<System>,
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut mode = None;
    let mut out = None;
    let mut systems: Option<Vec<System>> = None;
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--quick" | "--smoke" | "--full" => {
                let m = match arg {
                    "--quick" => Mode::Quick,
                    "--smoke" => Mode::Smoke,
                    _ => Mode::Full,
                };
                if mode.is_some_and(|old| old != m) {
                    return Err("bench: give at most one of --quick, --smoke".into());
                }
                mode = Some(m);
            }
            "--out" => {
                let dir = it
                    .next()
                    .filter(|d| !d.is_empty())
                    .ok_or("bench: --out needs a directory")?;
                out = Some(PathBuf::from(dir));
            }
            "--systems" => {
                let list = it.next().ok_or("bench: --systems needs a list")?;
                let mut chosen = vec![SYSTEMS[0]];
                for name in list.split(',').filter(|n| !n.is_empty()) {
                    let s = SYSTEMS.iter().find(|s| s.name == name).ok_or_else(|| {
                        format!(
                            "bench: unknown system {name:?}; expected some of {}",
                            SYSTEMS.map(|s| s.name).join(",")
                        )
                    })?;
                    if !chosen.contains(s) {
                        chosen.push(*s);
                    }
                }
                systems = Some(chosen);
            }
            other => {
                return Err(format!(
                    "bench: unknown argument {other:?} (see `cargo xtask help`)"
                ));
            }
        }
    }
    Ok(Options {
        plan: Plan::new(mode.unwrap_or(Mode::Full)),
        out,
        // Keep the canonical order whatever the order given.
        systems: systems.map_or_else(
            || SYSTEMS.to_vec(),
            |chosen| {
                SYSTEMS
                    .iter()
                    .filter(|s| chosen.contains(s))
                    .copied()
                    .collect()
            },
        ),
    })
}

/// The measurements of one workload on one system.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cell {
    /// One value per repetition, in the workload's unit.
    pub(crate) values: Vec<f64>,
    /// The server's CPU ticks (user+system) per repetition (mounted systems).
    pub(crate) cpu_ticks: Vec<u64>,
    /// Wall time of each repetition, seconds.
    pub(crate) wall_secs: Vec<f64>,
    /// Work done per repetition: MiB read (sequential), I/Os (random) or operations.
    pub(crate) work: Vec<f64>,
    /// Percent of all CPUs used by other processes (and the hypervisor) per repetition.
    pub(crate) other_load: Vec<f64>,
    /// The server's `--stats` counters for the whole workload (warm-up included).
    pub(crate) stats: Vec<(String, u64)>,
    /// What went wrong, if the workload failed.
    pub(crate) error: Option<String>,
    /// Observations that qualify the numbers (for example passthrough fallbacks).
    pub(crate) notes: Vec<String>,
}

impl Cell {
    pub(crate) fn median(&self) -> Option<f64> {
        median(&self.values)
    }
}

pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Everything measured for one system.
#[derive(Debug, Clone)]
pub(crate) struct SystemRun {
    pub(crate) system: System,
    /// Why the system could not run (failed to start, ...).
    pub(crate) error: Option<String>,
    pub(crate) ready: Option<String>,
    pub(crate) mount_options: Option<String>,
    /// One per workload of [`WORKLOADS`], `None` when not run.
    pub(crate) cells: Vec<Option<Cell>>,
}

/// A whole run, for the reports.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) plan: Plan,
    pub(crate) command: String,
    pub(crate) date: String,
    pub(crate) machine: Machine,
    pub(crate) source: Option<Source>,
    pub(crate) clk_tck: u64,
    pub(crate) systems: Vec<SystemRun>,
    pub(crate) total_secs: f64,
}

impl Run {
    pub(crate) fn cell(&self, system: &str, workload: &str) -> Option<&Cell> {
        let w = WORKLOADS.iter().position(|w| w.id == workload)?;
        self.systems
            .iter()
            .find(|s| s.system.name == system)?
            .cells
            .get(w)?
            .as_ref()
    }

    /// The median of `system` divided by the median of `base` for `workload`.
    pub(crate) fn ratio(&self, system: &str, base: &str, workload: &str) -> Option<f64> {
        let a = self.cell(system, workload)?.median()?;
        let b = self.cell(base, workload)?.median()?;
        (b > 0.0).then(|| a / b)
    }
}

/// The machine the numbers come from.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) kernel: String,
    pub(crate) cpus: usize,
    pub(crate) cpu_model: String,
    pub(crate) mem_gib: f64,
    pub(crate) fs: String,
    /// `/proc/loadavg` when the benchmark started.
    pub(crate) loadavg: String,
}

impl Machine {
    fn probe(dir: &Path) -> Machine {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_default();
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kb| kb / f64::from(1 << 20));
        Machine {
            kernel,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            mem_gib,
            fs: fs_of(dir),
            loadavg: std::fs::read_to_string("/proc/loadavg")
                .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "Linux {}, {} CPUs ({}), {:.1} GiB RAM, source on {}",
            self.kernel, self.cpus, self.cpu_model, self.mem_gib, self.fs
        )
    }
}

/// The file system type and device of the mount holding `path` (longest matching mount point).
fn fs_of(path: &Path) -> String {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "?".into();
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    info.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mp = left.split(' ').nth(4)?;
            let mut r = right.split(' ');
            let (fstype, dev) = (r.next()?, r.next()?);
            path.starts_with(mp)
                .then(|| (mp.len(), format!("{fstype} ({dev})")))
        })
        .max_by_key(|(len, _)| *len)
        .map_or_else(|| "?".into(), |(_, d)| d)
}

/// Mount options of the mount at `path`: per-mount options, and the super block's.
fn mount_options(path: &Path) -> Option<String> {
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
        Some(format!("type {fstype}, {opts}, {superopts}"))
    })
}

/// The date and time now, UTC, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let (h, m) = ((secs % 86_400) / 3600, (secs % 3600) / 60);
    // Civil from days (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// Progress output: elapsed time since the start of the benchmark, then the message.
struct Progress(Instant);

impl Progress {
    fn say(&self, msg: &str) {
        println!("bench [{:6.1}s] {msg}", self.0.elapsed().as_secs_f64());
        let _ = std::io::stdout().flush();
    }
}

/// A scratch directory holding the mount point and fio's output files: on drop, detaches
/// whatever is still mounted there and removes it.
struct Scratch {
    dir: PathBuf,
    mnt: PathBuf,
}

impl Scratch {
    fn new() -> Result<Scratch, String> {
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

/// Why a workload did not produce numbers.
#[derive(Debug)]
enum Failure {
    /// A stop signal arrived: abandon the run.
    Stopped,
    /// The system cannot run (the server failed to start): skip its other workloads.
    System(String),
    /// This workload failed; the others may work.
    Workload(String),
}

/// Checks that `--out` is a directory we can write, creating it.
fn prepare_out(out: &Path) -> Result<(), String> {
    std::fs::create_dir_all(out)
        .map_err(|e| format!("bench: --out {}: cannot create it: {e}", out.display()))?;
    let probe = out.join(".bench-write-test");
    std::fs::write(&probe, b"")
        .map_err(|e| format!("bench: --out {}: cannot write there: {e}", out.display()))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// Makes sure fio is installed (installing it when root on Debian), and returns its version.
fn ensure_fio() -> Result<String, String> {
    let version = || {
        Command::new("fio")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    crate::apt_install("fio", "fio (the load generator of the data workloads)")?;
    version().ok_or_else(|| "bench: fio was installed but `fio --version` fails".into())
}

/// Waits for `child`, polling so that a stop signal or the timeout kills it.
fn wait_child(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, Failure> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(Failure::Workload(format!("wait: {e}"))),
        }
        if stop_requested() || start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if stop_requested() {
                Failure::Stopped
            } else {
                Failure::Workload(format!("timed out after {}s", timeout.as_secs()))
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `text` on one line: line breaks become ` | `, surrounding blanks go.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The last non-empty lines of a process's error output, on one line.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// One measurement: the value in the workload's unit, and the work done (MiB read, I/Os, or
/// operations), for the server's CPU time per unit of work.
type Measure<'a> = dyn FnMut() -> Result<(f64, f64), Failure> + 'a;

/// Runs one fio job on `file` and returns MiB/s (sequential) or IOPS (random).
fn run_fio(
    scratch: &Scratch,
    file: &Path,
    size: u64,
    w: &Workload,
    plan: &Plan,
) -> Result<(f64, f64), Failure> {
    let Kind::Fio {
        rw,
        bs,
        direct,
        jobs,
    } = w.kind
    else {
        return Err(Failure::Workload("not a fio workload".into()));
    };
    let output = scratch.dir.join("fio.json");
    let errors = scratch.dir.join("fio.err");
    let _ = std::fs::remove_file(&output);
    let mut cmd = Command::new("fio");
    cmd.arg(format!("--name={}", w.id))
        .arg(format!("--filename={}", file.display()))
        .args([
            "--readonly",
            "--invalidate=0",
            "--ioengine=psync",
            "--group_reporting",
            "--output-format=json",
        ])
        .arg(format!("--output={}", output.display()))
        .arg(format!("--size={size}"))
        .arg(format!("--rw={rw}"))
        .arg(format!("--bs={bs}"))
        .arg(format!("--direct={}", u8::from(direct)))
        .arg(format!("--numjobs={jobs}"));
    let timeout = if rw == "randread" {
        cmd.args(["--time_based", "--norandommap", "--randrepeat=0"])
            .arg(format!("--runtime={}s", plan.rand_secs));
        Duration::from_secs(u64::from(plan.rand_secs) + 60)
    } else {
        // fio closes and reopens the file between loops: each pass is a fresh open.
        cmd.arg(format!("--loops={}", plan.seq_passes));
        Duration::from_secs(600)
    };
    let err_file =
        std::fs::File::create(&errors).map_err(|e| Failure::Workload(format!("fio.err: {e}")))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .map_err(|e| Failure::Workload(format!("cannot start fio: {e}")))?;
    let status = wait_child(&mut child, timeout)?;
    let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    if !status.success() {
        return Err(Failure::Workload(format!(
            "fio failed ({status}): {}",
            tail(&stderr)
        )));
    }
    let report = json::Json::parse(&text)
        .map_err(|e| Failure::Workload(format!("fio output: {e}; stderr: {}", tail(&stderr))))?;
    let num = |p: &str| report.path(p).and_then(json::Json::as_f64);
    if num("jobs.0.error").is_some_and(|e| e != 0.0) {
        return Err(Failure::Workload(format!(
            "fio job error {:?}: {}",
            num("jobs.0.error"),
            tail(&stderr)
        )));
    }
    let (value, work) = if rw == "randread" {
        (num("jobs.0.read.iops"), num("jobs.0.read.total_ios"))
    } else {
        let mib = |b: f64| b / f64::from(1 << 20);
        (
            num("jobs.0.read.bw_bytes").map(mib),
            num("jobs.0.read.io_bytes").map(mib),
        )
    };
    value
        .filter(|v| *v > 0.0)
        .zip(work)
        .ok_or_else(|| Failure::Workload(format!("fio reported no reads: {}", tail(&stderr))))
}

/// A started set of bench-client processes, waiting for "go".
struct Clients {
    children: Vec<Child>,
    outs: Vec<BufReader<std::process::ChildStdout>>,
}

impl Clients {
    fn start(op: Op, root: &Path, plan: &Plan, procs: usize) -> Result<Clients, Failure> {
        let exe =
            std::env::current_exe().map_err(|e| Failure::Workload(format!("current_exe: {e}")))?;
        let mut clients = Clients {
            children: Vec::new(),
            outs: Vec::new(),
        };
        let count = plan.layout.count();
        for k in 0..procs {
            let mut child = Command::new(&exe)
                .args(client::args(
                    op,
                    root,
                    plan.layout,
                    plan.meta_secs,
                    k * count / procs,
                ))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Failure::Workload(format!("cannot start the client: {e}")))?;
            let out = child.stdout.take().map(BufReader::new);
            clients.children.push(child);
            clients
                .outs
                .push(out.ok_or_else(|| Failure::Workload("no stdout".into()))?);
        }
        for i in 0..procs {
            let line = clients.line(i)?;
            if line.trim() != "ready" {
                return Err(clients.fail(i, &line));
            }
        }
        Ok(clients)
    }

    fn line(&mut self, i: usize) -> Result<String, Failure> {
        let mut line = String::new();
        match self.outs[i].read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line),
            _ if stop_requested() => Err(Failure::Stopped),
            _ => Err(self.fail(i, "")),
        }
    }

    fn fail(&mut self, i: usize, line: &str) -> Failure {
        let child = &mut self.children[i];
        let _ = child.kill();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = child.wait();
        Failure::Workload(format!("client failed: {} {}", line.trim(), tail(&err)))
    }

    /// Starts every client and returns their summed rate (operations per second) and the
    /// operations done.
    fn go(mut self) -> Result<(f64, f64), Failure> {
        for child in &mut self.children {
            if let Some(stdin) = child.stdin.as_mut() {
                let _ = stdin.write_all(b"go\n");
                let _ = stdin.flush();
            }
        }
        let mut rate = 0.0;
        let mut total = 0.0;
        for i in 0..self.children.len() {
            let line = self.line(i)?;
            let field = |k: &str| -> Option<f64> {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            let (Some(ops), Some(nanos)) = (field("ops"), field("nanos")) else {
                return Err(self.fail(i, &line));
            };
            rate += ops / (nanos / 1e9);
            total += ops;
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        Ok((rate, total))
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A repetition whose "other processes" share of the CPUs reaches this is flagged.
pub(crate) const BUSY_PERCENT: f64 = 10.0;

/// CPU time counters around a repetition, to find how much of the machine processes other
/// than the benchmark's (this one, its children, the server) used meanwhile.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    machine: MachineTicks,
    children: u64,
    me: u64,
    server: Option<u64>,
}

impl Snapshot {
    fn take(server: Option<u32>) -> Snapshot {
        Snapshot {
            machine: machine_ticks().unwrap_or_default(),
            children: children_cpu_ticks(),
            me: cpu_ticks(std::process::id()).map_or(0, |t| t.total()),
            server: server.and_then(|p| cpu_ticks(p).ok()).map(|t| t.total()),
        }
    }

    /// The share (percent of all CPUs over `wall` seconds) used since `before` by others,
    /// hypervisor steal included.
    fn others_share(&self, before: &Snapshot, wall: f64, cpus: usize) -> f64 {
        let all = (self.machine.busy + self.machine.steal)
            .saturating_sub(before.machine.busy + before.machine.steal);
        let ours = self.children.saturating_sub(before.children)
            + self.me.saturating_sub(before.me)
            + self
                .server
                .zip(before.server)
                .map_or(0, |(a, b)| a.saturating_sub(b));
        let capacity = wall * cpus as f64 * clock_ticks_per_second() as f64;
        100.0 * all.saturating_sub(ours) as f64 / capacity.max(1.0)
    }
}

/// How many times one repetition is measured again when other processes disturbed it.
const MAX_RETRIES: usize = 2;

/// The context of one run.
struct Bench<'a> {
    plan: Plan,
    /// Seconds the run may still spend waiting for a quiet machine or measuring again.
    patience: std::cell::Cell<f64>,
    cpus: usize,
    source: &'a Source,
    server: Option<&'a Path>,
    scratch: &'a Scratch,
    progress: &'a Progress,
}

impl Bench<'_> {
    /// Makes the native side warm: the large file in the page cache (data workloads) or the
    /// small files in the dentry, inode and page caches (metadata workloads).
    fn warm(&self, w: &Workload) -> Result<(), Failure> {
        match w.kind {
            Kind::Fio { .. } => source::read_through(&self.source.large()).map(|_| ()),
            Kind::Meta { .. } => source::warm_small(self.source),
        }
        .map_err(Failure::Workload)
    }

    /// One measurement of `w` on the tree at `root`.
    fn measure(&self, w: &Workload, root: &Path) -> Result<(f64, f64), Failure> {
        match w.kind {
            Kind::Fio { .. } => run_fio(
                self.scratch,
                &root.join(self.source.large_name),
                self.source.large_bytes,
                w,
                &self.plan,
            ),
            Kind::Meta { op, procs } => Clients::start(op, root, &self.plan, procs)?.go(),
        }
    }

    /// Runs repetition `rep` of `w`, sampling the server's CPU time (`server`: its pid) and
    /// the machine's around it; measures again (within the patience) if others disturbed it.
    fn measure_rep(
        &self,
        sys: System,
        w: &Workload,
        rep: usize,
        measure: &mut Measure<'_>,
        server: Option<u32>,
        cell: &mut Cell,
    ) -> Result<(), Failure> {
        let tck = clock_ticks_per_second() as f64;
        let mut retries = 0;
        loop {
            if stop_requested() {
                return Err(Failure::Stopped);
            }
            self.wait_quiet();
            let before = Snapshot::take(server);
            let t = Instant::now();
            let (value, work) = measure()?;
            let wall = t.elapsed().as_secs_f64();
            let after = Snapshot::take(server);
            let other = after.others_share(&before, wall, self.cpus);
            let mut msg = format!(
                "{} | {} | rep {}/{}: {} {}",
                sys.name,
                w.id,
                rep + 1,
                self.plan.reps,
                report::fmt_value(value),
                w.unit
            );
            let ticks = before
                .server
                .zip(after.server)
                .map(|(a, b)| b.saturating_sub(a));
            if let Some(ticks) = ticks {
                msg.push_str(&format!(
                    " (server CPU {:.2}s in {wall:.1}s)",
                    ticks as f64 / tck
                ));
            }
            if other >= BUSY_PERCENT {
                msg.push_str(&format!("; other processes took {other:.0}% of the CPUs"));
                if retries < MAX_RETRIES && self.patience.get() > 0.0 {
                    retries += 1;
                    self.patience.set(self.patience.get() - wall);
                    self.progress
                        .say(&format!("{msg}: discarded, measuring again"));
                    continue;
                }
                msg.push_str(": kept, flagged (~)");
            }
            cell.values.push(value);
            cell.wall_secs.push(wall);
            cell.work.push(work);
            cell.other_load.push(other);
            cell.cpu_ticks.extend(ticks);
            self.progress.say(&msg);
            return Ok(());
        }
    }

    /// Waits (within the run's patience) until other processes leave the CPUs alone.
    fn wait_quiet(&self) {
        const STEP: f64 = 0.25;
        let start = Instant::now();
        let mut said = false;
        while self.patience.get() > 0.0 && !stop_requested() {
            let before = machine_ticks().unwrap_or_default();
            std::thread::sleep(Duration::from_secs_f64(STEP));
            let after = machine_ticks().unwrap_or_default();
            let used = (after.busy + after.steal).saturating_sub(before.busy + before.steal);
            let share =
                100.0 * used as f64 / (STEP * self.cpus as f64 * clock_ticks_per_second() as f64);
            if share < BUSY_PERCENT / 2.0 {
                break;
            }
            self.patience.set(self.patience.get() - STEP);
            if !said && start.elapsed() > Duration::from_secs(1) {
                self.progress.say(&format!(
                    "waiting for other processes to leave the CPUs (they use {share:.0}%; \
                     patience left {:.0}s)",
                    self.patience.get()
                ));
                said = true;
            }
        }
    }

    /// Runs repetition `rep` of workload `w` on the native source.
    fn native(&self, w: &Workload, rep: usize, cell: &mut Cell) -> Result<(), Failure> {
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

    /// Runs repetition `rep` of workload `w` on a fresh mount of the example as system `sys`.
    /// Returns the server's ready line and the mount's options.
    fn mounted(
        &self,
        sys: System,
        w: &Workload,
        rep: usize,
        cell: &mut Cell,
    ) -> Result<(String, Option<String>), Failure> {
        let binary = self
            .server
            .ok_or_else(|| Failure::System("the example server was not built".into()))?;
        self.warm(w)?;
        let mnt = &self.scratch.mnt;
        let server = ExampleServer::start(binary, &self.source.root, mnt, &sys.server_args())
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
        let mounted = (server.ready.clone(), mount_options(mnt));
        let measured = self.measure_rep(
            sys,
            w,
            rep,
            &mut || self.measure(w, mnt),
            server.pid(),
            cell,
        );
        let stopped = server.stop();
        if testkit::is_mount_point(mnt) {
            let _ = rustix::mount::unmount(mnt, rustix::mount::UnmountFlags::DETACH);
            cell.notes
                .push("the mount was still there after the server stopped".into());
        }
        measured?;
        match stopped {
            Ok((true, stats, _)) => {
                for (k, v) in parse_stats(&stats) {
                    match cell.stats.iter_mut().find(|(key, _)| *key == k) {
                        Some((_, sum)) => *sum += v,
                        None => cell.stats.push((k, v)),
                    }
                }
                Ok(mounted)
            }
            Ok((false, _, stderr)) => Err(Failure::Workload(format!(
                "the server exited with an error: {}",
                tail(&stderr)
            ))),
            Err(e) => Err(Failure::Workload(format!("stopping the server: {e}"))),
        }
    }

    /// Notes where the server's counters contradict what the system is meant to be.
    fn check_stats(&self, sys: System, w: &Workload, cell: &mut Cell) {
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
fn parse_stats(text: &str) -> Vec<(String, u64)> {
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

/// `cargo xtask bench ...`.
pub(crate) fn bench(root: &Path, args: &[&str]) -> Result<(), String> {
    let opts = parse(args)?;
    let plan = opts.plan;
    let bench_dir = root.join("target").join("bench");
    let out = opts.out.clone().unwrap_or_else(|| bench_dir.clone());
    prepare_out(&out)?;
    let mounted_wanted = opts.systems.iter().any(|s| s.transport.is_some());
    if mounted_wanted && !testkit::is_root() {
        return Err(
            "bench: mounting the example needs root (CAP_SYS_ADMIN): run it as root, \
             or measure only the native system with --systems native"
                .into(),
        );
    }
    crate::proc::install_stop_handler().map_err(|e| format!("bench: signals: {e}"))?;
    let command = std::iter::once("cargo xtask bench")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let progress = Progress(Instant::now());
    progress.say(&format!("{command}: {}", plan.describe()));

    let fio = ensure_fio()?;
    let mut build_error = None;
    let server = if mounted_wanted {
        crate::setup()?;
        match crate::build_example(root) {
            Ok(p) => Some(p),
            Err(e) => {
                println!("bench: cannot build the example server: {e}");
                build_error = Some(format!("cannot build the example server: {e}"));
                None
            }
        }
    } else {
        None
    };
    let source_dir = bench_dir.join(if plan.mode == Mode::Smoke {
        "source-smoke"
    } else {
        "source"
    });
    if stop_requested() {
        return Err("bench: interrupted".into());
    }
    let source = source::prepare(&source_dir, plan.large_mib, plan.layout)?;
    let machine = Machine::probe(&source.root);
    progress.say(&format!("machine: {}; {fio}", machine.describe()));
    progress.say(&format!(
        "every mounted system: passthroughfs --transport dev|uring [--no-passthrough] {} SOURCE MNT \
         (attribute and entry timeouts 0: no caching, so every stat reaches the server; \
         the dev transport runs its default of one worker per CPU, uring one ring per CPU); \
         mount options are printed per system and must be identical",
        COMMON_SERVER_ARGS.join(" ")
    ));

    let scratch = Scratch::new()?;
    let ctx = Bench {
        plan,
        patience: std::cell::Cell::new(plan.patience_secs),
        cpus: machine.cpus,
        source: &source,
        server: server.as_deref(),
        scratch: &scratch,
        progress: &progress,
    };
    let mut runs: Vec<SystemRun> = opts
        .systems
        .iter()
        .map(|&sys| SystemRun {
            system: sys,
            error: sys.transport.and(build_error.clone()),
            ready: None,
            mount_options: None,
            cells: vec![None; WORKLOADS.len()],
        })
        .collect();
    for run in &runs {
        if let Some(e) = &run.error {
            progress.say(&format!("{}: FAILED: {e}", run.system.name));
        }
    }
    // Rounds: every system runs every workload once per round, so that a slow drift of the
    // machine (other guests, page cache reclaim) weighs on all systems alike.
    let mut stopped = false;
    'rounds: for rep in 0..plan.reps {
        for run in &mut runs {
            if run.error.is_some() {
                continue;
            }
            let sys = run.system;
            progress.say(&format!("{}: round {}/{}", sys.name, rep + 1, plan.reps));
            for (i, w) in WORKLOADS.iter().enumerate() {
                if stop_requested() {
                    stopped = true;
                    break 'rounds;
                }
                let cell = run.cells[i].get_or_insert_with(Cell::default);
                if cell.error.is_some() {
                    continue;
                }
                let result = if sys.transport.is_none() {
                    ctx.native(w, rep, cell).map(|()| None)
                } else {
                    ctx.mounted(sys, w, rep, cell).map(Some)
                };
                match result {
                    Ok(Some((ready, opts))) if run.ready.is_none() => {
                        progress.say(&format!(
                            "{}: mounted: {ready}; mount: {}",
                            sys.name,
                            opts.as_deref().unwrap_or("?")
                        ));
                        run.ready = Some(ready);
                        run.mount_options = opts;
                    }
                    Ok(_) => {}
                    Err(Failure::Stopped) => {
                        stopped = true;
                        break 'rounds;
                    }
                    Err(Failure::System(e)) => {
                        let e = one_line(&e);
                        progress.say(&format!("{}: FAILED: {e}", sys.name));
                        run.error = Some(e);
                        break;
                    }
                    Err(Failure::Workload(e)) => {
                        let e = one_line(&e);
                        progress.say(&format!("{} | {} | FAILED: {e}", sys.name, w.id));
                        cell.error = Some(e);
                    }
                }
            }
        }
    }
    for run in &mut runs {
        for (w, cell) in WORKLOADS.iter().zip(&mut run.cells) {
            if let Some(cell) = cell {
                ctx.check_stats(run.system, w, cell);
            }
        }
    }
    let left_mounted = testkit::is_mount_point(&scratch.mnt);
    drop(scratch);
    if stopped {
        return Err("bench: interrupted; nothing is left mounted".into());
    }

    let run = Run {
        plan,
        command,
        date: utc_now(),
        machine,
        source: Some(source),
        clk_tck: clock_ticks_per_second(),
        systems: runs,
        total_secs: progress.0.elapsed().as_secs_f64(),
    };
    let md = report::markdown(&run);
    println!();
    print!("{md}");
    let mut json_text = String::new();
    report::json(&run).write(&mut json_text, 0);
    json_text.push('\n');
    for (name, text) in [
        ("results.md", md.as_str()),
        ("results.json", json_text.as_str()),
        ("ratios.svg", report::svg(&run).as_str()),
    ] {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("bench: {}: {e}", path.display()))?;
    }
    println!(
        "bench: wrote {}/results.md, results.json, ratios.svg ({:.0}s in all)",
        out.display(),
        run.total_secs
    );
    if left_mounted {
        return Err("bench: the mount point was still mounted at the end (detached now)".into());
    }
    let failed: Vec<String> = run
        .systems
        .iter()
        .filter_map(|s| {
            let bad: Vec<&str> = WORKLOADS
                .iter()
                .zip(&s.cells)
                .filter(|(_, c)| c.as_ref().is_some_and(|c| c.error.is_some()))
                .map(|(w, _)| w.id)
                .collect();
            if s.error.is_some() {
                Some(format!("{} (did not run)", s.system.name))
            } else if !bad.is_empty() {
                Some(format!("{} ({})", s.system.name, bad.join(", ")))
            } else {
                None
            }
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "bench: finished, but not everything ran (see \"Failures and notes\" above): {}",
            failed.join("; ")
        ))
    }
}
