//! The project's performance targets (ratios to native, io_uring against /dev/fuse, ours against
//! libfuse), checked against a run's numbers.

use super::report::busy;
use super::{PAIRS, Run, WORKLOADS};

/// A performance target, checked against this run's numbers.
#[derive(Debug)]
pub(crate) struct Target {
    pub(crate) what: String,
    pub(crate) threshold: f64,
    pub(crate) measured: Option<f64>,
    pub(crate) why_missing: Option<String>,
    /// Other processes were busy while one of the two numbers was measured.
    pub(crate) busy: bool,
}

impl Target {
    pub(super) fn verdict(&self) -> &'static str {
        match self.measured {
            Some(r) if r >= self.threshold => "met",
            Some(_) => "NOT met",
            None => "not measured",
        }
    }
}

fn missing(run: &Run, names: &[&str], workload: &str) -> String {
    names
        .iter()
        .filter_map(|n| {
            let Some(sys) = run.systems.iter().find(|s| s.system.name == *n) else {
                return Some(format!("{n} not selected"));
            };
            if sys.error.is_some() {
                return Some(format!("{n} did not run"));
            }
            match run.cell(n, workload) {
                Some(c) if c.error.is_some() => Some(format!("{n} {workload} failed")),
                Some(_) => None,
                None => Some(format!("{n} {workload} not run")),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The targets, one line per (system pair, workload) they apply to.
pub(crate) fn targets(run: &Run) -> Vec<Target> {
    let mut out = Vec::new();
    let selected = |n: &str| run.systems.iter().any(|s| s.system.name == n);
    // A target is listed when both its systems were selected (`--systems`) and its workload
    // was run by at least one system (`--workloads`).
    let mut add = |what: String, threshold: f64, sys: &str, base: &str, workload: &str| {
        let workload_ran = run
            .systems
            .iter()
            .any(|s| run.cell(s.system.name, workload).is_some());
        if !(selected(sys) && selected(base) && workload_ran) {
            return;
        }
        let measured = run.ratio(sys, base, workload);
        let busy = [sys, base]
            .iter()
            .any(|n| run.cell(n, workload).is_some_and(busy));
        out.push(Target {
            busy,
            what,
            threshold,
            measured,
            why_missing: measured
                .is_none()
                .then(|| missing(run, &[sys, base], workload)),
        });
    };
    for sys in ["dev-passthrough", "uring-passthrough"] {
        add(
            format!("{sys}: sequential read (warm) >= 0.95x native"),
            0.95,
            sys,
            "native",
            "seq-read-warm",
        );
        for w in ["rand-read-4k-1job", "rand-read-4k-2jobs"] {
            add(format!("{sys}: {w} >= 0.9x native"), 0.9, sys, "native", w);
        }
    }
    for path in ["served", "passthrough"] {
        for w in ["stat-1proc", "stat-2procs"] {
            add(
                format!("{w}: uring-{path} >= 2x dev-{path}"),
                2.0,
                &format!("uring-{path}"),
                &format!("dev-{path}"),
                w,
            );
        }
    }
    add(
        "sequential read (warm), served: uring-served >= 1.3x dev-served".into(),
        1.3,
        "uring-served",
        "dev-served",
        "seq-read-warm",
    );
    // Ahead of libfuse: over io_uring >= 1.2x for the latency-bound workloads, >= 1.0x for
    // everything else.
    for (ours, theirs) in PAIRS {
        for w in WORKLOADS {
            let uring = ours.starts_with("uring");
            let threshold = if uring
                && matches!(
                    w.id,
                    "stat-1proc" | "stat-2procs" | "open-read-close" | "rand-read-4k-1job"
                ) {
                1.2
            } else {
                1.0
            };
            add(
                format!("{}: {ours} >= {threshold:.1}x {theirs}", w.id),
                threshold,
                ours,
                theirs,
                w.id,
            );
        }
    }
    out
}
