//! What a run measured, for the reports: per (system, workload) cells, the machine, the run.

use std::path::Path;

use super::plan::Plan;
use super::{System, WORKLOADS};
use crate::tree::Tree;

/// The measurements of one workload on one system.
#[derive(Debug, Default, Clone)]
pub(crate) struct Cell {
    /// One value per repetition, in the workload's unit.
    pub(crate) values: Vec<f64>,
    /// The server's CPU ticks (user+system) per repetition (mounted systems).
    pub(crate) cpu_ticks: Vec<u64>,
    /// The user part of `cpu_ticks`, per repetition.
    pub(crate) user_ticks: Vec<u64>,
    /// The server's context switches (all threads, voluntary and not) per repetition.
    pub(crate) switches: Vec<u64>,
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
    pub(crate) source: Option<Tree>,
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
    pub(super) fn probe(dir: &Path) -> Machine {
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
pub(super) fn fs_of(path: &Path) -> String {
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

/// The date and time now, UTC, as `YYYY-MM-DD HH:MM UTC`.
pub(super) fn utc_now() -> String {
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
