//! `results.json`: the run's description, every (system, workload) cell with its raw
//! values, and the targets, written with serde so that the file is valid JSON by
//! construction (non-finite numbers become `null`).

use serde::{Serialize, Serializer};

use super::report::{min_max, work_unit};
use super::targets::targets;
use super::{Cell, Kind, Run, SystemRun, WORKLOADS, Workload};

#[derive(Serialize)]
struct Results<'a> {
    command: &'a str,
    date: &'a str,
    machine: MachineJson<'a>,
    plan: PlanJson,
    source: Option<String>,
    clock_ticks_per_second: u64,
    total_secs: f64,
    systems: Vec<SystemJson<'a>>,
    workloads: Vec<WorkloadJson>,
    results: Vec<CellJson<'a>>,
    targets: Vec<TargetJson>,
}

#[derive(Serialize)]
struct MachineJson<'a> {
    kernel: &'a str,
    cpus: usize,
    cpu_model: &'a str,
    mem_gib: f64,
    source_fs: &'a str,
    loadavg_at_start: &'a str,
}

#[derive(Serialize)]
struct PlanJson {
    mode: &'static str,
    repetitions: usize,
    random_read_secs: u32,
    metadata_secs: f64,
    sequential_passes: u32,
    large_file_mib: u64,
    small_files: usize,
    attr_entry_timeout_secs: u64,
}

#[derive(Serialize)]
struct SystemJson<'a> {
    name: &'static str,
    transport: Option<&'static str>,
    passthrough: bool,
    server_args: Option<String>,
    error: Option<&'a str>,
    ready: Option<&'a str>,
    mount_options: Option<&'a str>,
}

#[derive(Serialize)]
struct WorkloadJson {
    id: &'static str,
    label: &'static str,
    unit: &'static str,
    how: String,
}

#[derive(Serialize)]
struct CellJson<'a> {
    system: &'static str,
    workload: &'static str,
    unit: &'static str,
    values: &'a [f64],
    median: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
    ratio_to_native: Option<f64>,
    wall_secs: &'a [f64],
    work: &'a [f64],
    work_unit: &'static str,
    server_cpu_ticks: &'a [u64],
    server_user_ticks: &'a [u64],
    server_context_switches: &'a [u64],
    other_processes_cpu_percent: &'a [f64],
    /// In the order the server printed them.
    #[serde(serialize_with = "as_map")]
    server_stats: &'a [(String, u64)],
    error: Option<&'a str>,
    notes: &'a [String],
}

#[derive(Serialize)]
struct TargetJson {
    target: String,
    threshold: f64,
    measured: Option<f64>,
    verdict: &'static str,
    busy_machine: bool,
    why_not_measured: Option<String>,
}

fn as_map<S: Serializer>(pairs: &&[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

fn cell_json<'a>(run: &Run, sys: &SystemRun, w: &Workload, cell: &'a Cell) -> CellJson<'a> {
    let (min, max) = if cell.values.is_empty() {
        (None, None)
    } else {
        let (lo, hi) = min_max(&cell.values);
        (Some(lo), Some(hi))
    };
    CellJson {
        system: sys.system.name,
        workload: w.id,
        unit: w.unit,
        values: &cell.values,
        median: cell.median(),
        min,
        max,
        ratio_to_native: run.ratio(sys.system.name, "native", w.id),
        wall_secs: &cell.wall_secs,
        work: &cell.work,
        work_unit: work_unit(w),
        server_cpu_ticks: &cell.cpu_ticks,
        server_user_ticks: &cell.user_ticks,
        server_context_switches: &cell.switches,
        other_processes_cpu_percent: &cell.other_load,
        server_stats: &cell.stats,
        error: cell.error.as_deref(),
        notes: &cell.notes,
    }
}

/// How a workload is run, as a command line.
fn how(w: &Workload) -> String {
    match w.kind {
        Kind::Fio {
            rw,
            bs,
            direct,
            jobs,
        } => format!(
            "fio --rw={rw} --bs={bs} --direct={} --numjobs={jobs} --ioengine=psync --invalidate=0",
            u8::from(direct)
        ),
        Kind::Meta { op, procs } => {
            format!("xtask bench-client {} x {procs} process(es)", op.name())
        }
    }
}

/// The text of `results.json` (pretty-printed, ending with a newline).
pub(crate) fn results(run: &Run) -> String {
    let p = &run.plan;
    let m = &run.machine;
    let doc = Results {
        command: &run.command,
        date: &run.date,
        machine: MachineJson {
            kernel: &m.kernel,
            cpus: m.cpus,
            cpu_model: &m.cpu_model,
            mem_gib: m.mem_gib,
            source_fs: &m.fs,
            loadavg_at_start: &m.loadavg,
        },
        plan: PlanJson {
            mode: p.mode_name(),
            repetitions: p.reps,
            random_read_secs: p.rand_secs,
            metadata_secs: p.meta_secs,
            sequential_passes: p.seq_passes,
            large_file_mib: p.large_mib,
            small_files: p.layout.count(),
            attr_entry_timeout_secs: 0,
        },
        source: run.source.as_ref().map(crate::tree::Tree::describe),
        clock_ticks_per_second: run.clk_tck,
        total_secs: run.total_secs,
        systems: run
            .systems
            .iter()
            .map(|s| SystemJson {
                name: s.system.name,
                transport: s.system.transport,
                passthrough: s.system.passthrough,
                server_args: s.system.transport.map(|_| s.system.server_args().join(" ")),
                error: s.error.as_deref(),
                ready: s.ready.as_deref(),
                mount_options: s.mount_options.as_deref(),
            })
            .collect(),
        workloads: WORKLOADS
            .iter()
            .map(|w| WorkloadJson {
                id: w.id,
                label: w.label,
                unit: w.unit,
                how: how(w),
            })
            .collect(),
        results: run
            .systems
            .iter()
            .flat_map(|sys| {
                WORKLOADS
                    .iter()
                    .zip(&sys.cells)
                    .filter_map(move |(w, cell)| Some(cell_json(run, sys, w, cell.as_ref()?)))
            })
            .collect(),
        targets: targets(run)
            .into_iter()
            .map(|t| TargetJson {
                verdict: t.verdict(),
                target: t.what,
                threshold: t.threshold,
                measured: t.measured,
                busy_machine: t.busy,
                why_not_measured: t.why_missing,
            })
            .collect(),
    };
    // Serialising plain structs of strings, numbers and sequences cannot fail.
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn round_trips_text_numbers_and_missing_values() {
        let mut run = super::super::report::tests::sample();
        let cell = run.systems[1].cells[0].as_mut().unwrap();
        cell.error = Some("q\"\n".into());
        cell.stats = vec![("zeta".into(), 2), ("alpha".into(), 1)];
        cell.values.clear();
        let text = super::results(&run);
        let v: Value = serde_json::from_str(&text).unwrap();
        let first = &v["results"][super::WORKLOADS.len()];
        assert_eq!(first["system"], "dev-served");
        assert_eq!(first["error"], "q\"\n");
        assert_eq!(first["median"], Value::Null);
        assert_eq!(first["min"], Value::Null);
        // The server's counters keep the order it printed them in.
        assert_eq!(first["server_stats"]["zeta"], 2);
        assert!(text.find("\"zeta\"").unwrap() < text.find("\"alpha\"").unwrap());
        assert_eq!(v["machine"]["cpus"], 2);
        assert_eq!(v["systems"][3]["error"], "failed to start: ENOSYS");
    }
}
