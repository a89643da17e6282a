//! The benchmark's reports: markdown tables (values with min-max and ratios to native, the
//! server's CPU time, the targets), the JSON results and an SVG bar chart of the ratios.

use std::fmt::Write as _;

use super::targets::targets;
use super::{BUSY_PERCENT, Cell, Kind, PAIRS, Run, Stack, SystemRun, WORKLOADS, Workload};

/// A ratio: two decimals, three below 0.1 (so that small ratios stay distinguishable).
pub(crate) fn fmt_ratio(r: f64) -> String {
    if r < 0.1 {
        format!("{r:.3}")
    } else {
        format!("{r:.2}")
    }
}

/// A number with as many digits as it deserves.
pub(crate) fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(super) fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// One table cell: `median [min-max] ratio`.
fn cell_text(run: &Run, sys: &SystemRun, w: &Workload, cell: Option<&Cell>) -> String {
    let Some(cell) = cell else {
        return if sys.error.is_some() {
            "failed".into()
        } else {
            "-".into()
        };
    };
    if cell.error.is_some() {
        return "failed".into();
    }
    let Some(m) = cell.median() else {
        return if sys.error.is_some() {
            "failed".into()
        } else {
            "-".into()
        };
    };
    let mut s = fmt_value(m);
    if cell.values.len() > 1 {
        let (lo, hi) = min_max(&cell.values);
        let _ = write!(s, " [{}-{}]", fmt_value(lo), fmt_value(hi));
    }
    if sys.system.transport.is_some() {
        match run.ratio(sys.system.name, "native", w.id) {
            Some(r) => {
                let _ = write!(s, " **{}x**", fmt_ratio(r));
            }
            None => s.push_str(" (no native)"),
        }
    }
    if !cell.notes.is_empty() {
        s.push_str(" (!)");
    }
    if busy(cell) {
        s.push_str(" (~)");
    }
    s
}

/// What the work of `w` is counted in.
pub(super) fn work_unit(w: &Workload) -> &'static str {
    match w.kind {
        Kind::Fio { rw: "randread", .. } => "I/O",
        Kind::Fio { .. } => "MiB",
        Kind::Meta { .. } => "op",
    }
}

/// Whether other processes took a noticeable share of the CPUs while `cell` was measured.
pub(super) fn busy(cell: &Cell) -> bool {
    super::median(&cell.other_load).is_some_and(|b| b >= BUSY_PERCENT)
}

/// The header of a table with one row per workload and one column per `columns`.
fn header<T: std::fmt::Display>(s: &mut String, columns: impl Iterator<Item = T> + Clone) {
    let _ = write!(s, "| workload |");
    for c in columns.clone() {
        let _ = write!(s, " {c} |");
    }
    let _ = writeln!(s);
    let _ = write!(s, "|---|");
    for _ in columns {
        let _ = write!(s, "---:|");
    }
    let _ = writeln!(s);
}

/// The table of ours / libfuse per mode, when both systems of a mode ran.
fn ours_vs_libfuse(run: &Run, s: &mut String) {
    let selected = |n: &str| run.systems.iter().any(|s| s.system.name == n);
    let pairs: Vec<(&str, &str)> = PAIRS
        .iter()
        .copied()
        .filter(|(a, b)| selected(a) && selected(b))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "**Ours / libfuse**: ratio of the medians, per mode (> 1: ours is faster). \
         (~) = other processes took {BUSY_PERCENT}% or more of the CPUs meanwhile."
    );
    let _ = writeln!(s);
    header(&mut *s, pairs.iter().map(|(a, b)| format!("{a} / {b}")));
    for w in WORKLOADS {
        let _ = write!(s, "| {} |", w.id);
        for (a, b) in &pairs {
            let text = run.ratio(a, b, w.id).map_or_else(
                || "-".to_owned(),
                |r| {
                    let noisy = [a, b].iter().any(|n| run.cell(n, w.id).is_some_and(busy));
                    format!("{}{}", fmt_ratio(r), if noisy { " (~)" } else { "" })
                },
            );
            let _ = write!(s, " {text} |");
        }
        let _ = writeln!(s);
    }
    if pairs.iter().any(|(_, b)| !b.ends_with("passthrough")) {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Served data workloads do not compare like for like: libfuse asks the kernel for \
             `FUSE_AUTO_INVAL_DATA`, so with timeouts 0 every served read is preceded by a GETATTR \
             request; ours does not ask (and does not notice a file changed under an open \
             page cache). Those ratios overstate ours."
        );
    }
}

/// The whole markdown report.
pub(crate) fn markdown(run: &Run) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### `{}`", run.command);
    let _ = writeln!(s);
    let _ = writeln!(s, "- date: {}", run.date);
    let _ = writeln!(
        s,
        "- machine: {}; load average before the run: {}",
        run.machine.describe(),
        run.machine.loadavg
    );
    let _ = writeln!(s, "- {}", run.plan.describe());
    if let Some(src) = &run.source {
        let _ = writeln!(s, "- source: {}", src.describe());
    }
    let _ = writeln!(
        s,
        "- every mounted system: `passthroughfs --transport dev|uring [--no-passthrough] --attr-timeout 0 --stats` \
         (attribute and entry timeouts 0 for all), one fresh mount per workload"
    );
    if run.systems.iter().any(|s| s.system.stack == Stack::Libfuse) {
        let _ = writeln!(
            s,
            "- every libfuse system: `passthrough_hp {} [--nopassthrough] [-o io_uring]` \
             (`--nocache`: attribute and entry timeouts 0, as ours), one fresh mount per workload",
            super::libfuse::COMMON_ARGS.join(" ")
        );
    }
    let mut opts: Vec<&str> = run
        .systems
        .iter()
        .filter_map(|s| s.mount_options.as_deref())
        .collect();
    opts.sort_unstable();
    opts.dedup();
    match opts.as_slice() {
        [] => {}
        [one] => {
            let _ = writeln!(
                s,
                "- mount options (identical for every mounted system): `{one}`"
            );
        }
        many => {
            let _ = writeln!(s, "- mount options DIFFER between systems: {many:?}");
        }
    }
    for sys in &run.systems {
        if let Some(r) = &sys.ready {
            let _ = writeln!(s, "- {}: `{r}`", sys.system.name);
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "Median of {} repetition(s){}; **ratio** to native (higher is better). (!) = see the notes; \
         (~) = other processes took {BUSY_PERCENT}% or more of the CPUs meanwhile (see the table below).",
        run.plan.reps,
        if run.plan.reps > 1 { " [min-max]" } else { "" }
    );
    let _ = writeln!(s);
    header(&mut s, run.systems.iter().map(|x| x.system.name));
    for (i, w) in WORKLOADS.iter().enumerate() {
        let _ = write!(s, "| {} ({}) |", w.label, w.unit);
        for sys in &run.systems {
            let _ = write!(s, " {} |", cell_text(run, sys, w, sys.cells[i].as_ref()));
        }
        let _ = writeln!(s);
    }

    ours_vs_libfuse(run, &mut s);

    // The server's CPU time.
    let mounted: Vec<&SystemRun> = run
        .systems
        .iter()
        .filter(|s| s.system.transport.is_some())
        .collect();
    if !mounted.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "Server CPU time (user+system, all threads, from /proc/<pid>/stat): median per repetition, \
             as a share of one CPU over the repetition's wall time, and per unit of work (MiB read, I/O \
             or operation; this cost depends little on other load), its user-space part in \
             parentheses, and the server's context switches (all threads, /proc/<pid>/task/*/status) \
             per unit of work:"
        );
        let _ = writeln!(s);
        header(&mut s, mounted.iter().map(|x| x.system.name));
        for (i, w) in WORKLOADS.iter().enumerate() {
            let _ = write!(s, "| {} |", w.id);
            for sys in &mounted {
                let text = sys.cells[i]
                    .as_ref()
                    .filter(|c| c.error.is_none() && !c.cpu_ticks.is_empty())
                    .map_or_else(
                        || "-".to_owned(),
                        |c| {
                            let secs: Vec<f64> = c
                                .cpu_ticks
                                .iter()
                                .map(|&t| t as f64 / run.clk_tck as f64)
                                .collect();
                            let share: Vec<f64> = secs
                                .iter()
                                .zip(&c.wall_secs)
                                .map(|(cpu, wall)| 100.0 * cpu / wall.max(1e-9))
                                .collect();
                            let per_unit: Vec<f64> = secs
                                .iter()
                                .zip(&c.work)
                                .map(|(cpu, work)| 1e6 * cpu / work.max(1e-9))
                                .collect();
                            let user_per_unit: Vec<f64> = c
                                .user_ticks
                                .iter()
                                .zip(&c.work)
                                .map(|(&t, work)| {
                                    1e6 * t as f64 / run.clk_tck as f64 / work.max(1e-9)
                                })
                                .collect();
                            // Only when every repetition has its count (they pair by index).
                            let switches_per_unit: Vec<f64> = if c.switches.len() == c.work.len() {
                                c.switches
                                    .iter()
                                    .zip(&c.work)
                                    .map(|(&n, work)| n as f64 / work.max(1e-9))
                                    .collect()
                            } else {
                                Vec::new()
                            };
                            let mut text = format!(
                                "{:.2} s ({:.0}%), {:.1} µs/{}",
                                super::median(&secs).unwrap_or(0.0),
                                super::median(&share).unwrap_or(0.0),
                                super::median(&per_unit).unwrap_or(0.0),
                                work_unit(w)
                            );
                            if let Some(user) = super::median(&user_per_unit) {
                                text.push_str(&format!(" (user {user:.1})"));
                            }
                            if let Some(n) = super::median(&switches_per_unit) {
                                text.push_str(&format!(", {n:.1} switches/{}", work_unit(w)));
                            }
                            text
                        },
                    );
                let _ = write!(s, " {text} |");
            }
            let _ = writeln!(s);
        }
    }

    // Machine load by others.
    if run
        .systems
        .iter()
        .flat_map(|s| s.cells.iter().flatten())
        .any(busy)
    {
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "**The machine was not quiet**: share of all CPUs that other processes (and the \
             hypervisor's steal) took during each measurement, median. Numbers marked (~) are not reliable; \
             run again on an idle machine."
        );
        let _ = writeln!(s);
        header(&mut s, run.systems.iter().map(|x| x.system.name));
        for (i, w) in WORKLOADS.iter().enumerate() {
            let _ = write!(s, "| {} |", w.id);
            for sys in &run.systems {
                let text = sys.cells[i]
                    .as_ref()
                    .and_then(|c| super::median(&c.other_load))
                    .map_or_else(|| "-".to_owned(), |b| format!("{b:.0}%"));
                let _ = write!(s, " {text} |");
            }
            let _ = writeln!(s);
        }
    }

    // Targets.
    let _ = writeln!(s);
    let _ = writeln!(s, "Targets (from the numbers above):");
    let _ = writeln!(s);
    for t in targets(run) {
        match (t.measured, &t.why_missing) {
            (Some(r), _) => {
                let _ = writeln!(
                    s,
                    "- {}: {}x, **{}**{}",
                    t.what,
                    fmt_ratio(r),
                    t.verdict(),
                    if t.busy {
                        " (~: measured on a busy machine)"
                    } else {
                        ""
                    }
                );
            }
            (None, why) => {
                let _ = writeln!(
                    s,
                    "- {}: **not measured** ({})",
                    t.what,
                    why.as_deref().unwrap_or("")
                );
            }
        }
    }

    // Failures and notes.
    let mut problems = Vec::new();
    for sys in &run.systems {
        if let Some(e) = &sys.error {
            problems.push(format!("{}: did not run: {e}", sys.system.name));
        }
        for (w, cell) in WORKLOADS.iter().zip(&sys.cells) {
            let Some(cell) = cell else { continue };
            if let Some(e) = &cell.error {
                problems.push(format!("{} {}: failed: {e}", sys.system.name, w.id));
            }
            for n in &cell.notes {
                problems.push(format!("{} {}: {n}", sys.system.name, w.id));
            }
        }
    }
    if !problems.is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "Failures and notes:");
        let _ = writeln!(s);
        for p in problems {
            let _ = writeln!(s, "- {}", p.replace('\n', " "));
        }
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Total time: {:.0} s.", run.total_secs);
    s
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::plan::{Mode, Plan};
    use super::super::svg::svg;
    use super::super::{Machine, SYSTEMS, SystemRun};
    use super::*;

    /// A run with made-up numbers: native, two mounted systems, one failed system.
    pub(in crate::bench) fn sample() -> Run {
        let cell = |values: &[f64]| Cell {
            values: values.to_vec(),
            cpu_ticks: vec![10; values.len()],
            wall_secs: vec![2.0; values.len()],
            work: vec![1000.0; values.len()],
            other_load: vec![0.0; values.len()],
            ..Cell::default()
        };
        let system = |i: usize, scale: f64, error: Option<&str>| SystemRun {
            system: SYSTEMS[i],
            error: error.map(str::to_owned),
            ready: None,
            mount_options: Some("rw".into()),
            cells: if error.is_some() {
                vec![None; WORKLOADS.len()]
            } else {
                WORKLOADS
                    .iter()
                    .map(|w| {
                        let base = if matches!(w.kind, Kind::Meta { .. }) && i > 0 {
                            1000.0 * scale / 50.0
                        } else {
                            1000.0 * scale
                        };
                        Some(cell(&[base, base * 1.1, base * 0.9]))
                    })
                    .collect()
            },
        };
        Run {
            plan: Plan::new(Mode::Full),
            command: "cargo xtask bench".into(),
            date: "2026-01-01 00:00 UTC".into(),
            machine: Machine {
                kernel: "6.18".into(),
                cpus: 2,
                cpu_model: "test".into(),
                mem_gib: 1.0,
                fs: "ext4".into(),
                loadavg: "0.00".into(),
            },
            source: None,
            clk_tck: 100,
            systems: vec![
                system(0, 1.0, None),
                system(1, 0.5, None),
                system(2, 0.97, None),
                system(3, 1.0, Some("failed to start: ENOSYS")),
            ],
            total_secs: 1.0,
        }
    }

    #[test]
    fn markdown_has_values_ratios_and_verdicts() {
        let run = sample();
        let md = markdown(&run);
        assert!(md.contains("| workload | native | dev-served | dev-passthrough | uring-served |"));
        assert!(md.contains("1000 [900-1100]"), "{md}");
        assert!(md.contains("500 [450-550] **0.50x**"), "{md}");
        assert!(md.contains("**0.010x**"), "{md}");
        assert!(
            md.contains("dev-passthrough: sequential read (warm) >= 0.95x native: 0.97x, **met**")
        );
        assert!(md.contains("dev-passthrough: rand-read-4k-1job >= 0.9x native: 0.97x, **met**"));
        assert!(md.contains("uring-served did not run"), "{md}");
        assert!(md.contains("uring-served: did not run: failed to start: ENOSYS"));
        assert!(!md.contains("not quiet"));
        // No libfuse system, no ours / libfuse table or targets.
        assert!(!md.contains("Ours / libfuse"));
        assert!(!md.contains("libfuse-dev"));
    }

    #[test]
    fn ours_against_libfuse_per_mode() {
        let mut run = sample();
        // libfuse-dev at a quarter of dev-served's numbers (every workload).
        let mut theirs = run.systems[1].clone();
        theirs.system = SYSTEMS[5];
        for cell in theirs.cells.iter_mut().flatten() {
            cell.values.iter_mut().for_each(|v| *v /= 4.0);
        }
        run.systems.push(theirs);
        let md = markdown(&run);
        assert!(
            md.contains("| workload | dev-served / libfuse-dev |"),
            "{md}"
        );
        assert!(md.contains("| stat-1proc | 4.00 |"), "{md}");
        assert!(md.contains("open-read-close: dev-served >= 1.0x libfuse-dev: 4.00x, **met**"));
        assert!(md.contains("passthrough_hp --foreground --nocache -o ro,allow_other"));
        // Only the mode whose two systems ran: no io_uring pair.
        assert!(!md.contains("uring-served / libfuse-uring"));
        assert!(!md.contains(">= 1.2x libfuse-uring"));
    }

    #[test]
    fn json_and_svg_are_well_formed() {
        let run = sample();
        let text = super::super::json::results(&run);
        let parsed: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed
                .pointer("/results/7/ratio_to_native")
                .and_then(serde_json::Value::as_f64),
            Some(0.5)
        );
        let svg = svg(&run);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // Background, 3 legend boxes, a bar per workload for the 2 mounted systems that ran.
        assert_eq!(svg.matches("<rect").count(), 1 + 3 + 2 * WORKLOADS.len());
        if let Ok(path) = std::env::var("BENCH_SVG_SAMPLE") {
            std::fs::write(path, &svg).unwrap();
        }
    }
}
