//! How much the benchmark does (`--smoke`, `--quick`, full) and its command line.

use std::path::PathBuf;

use super::{SYSTEMS, Stack, System};
use crate::tree::Layout;

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
    pub(super) fn new(mode: Mode) -> Plan {
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
pub(super) struct Options {
    pub(super) plan: Plan,
    pub(super) out: Option<PathBuf>,
    pub(super) systems: Vec<System>,
    /// Which workloads run (one per [`WORKLOADS`](super::WORKLOADS)): all by default.
    pub(super) workloads: Vec<bool>,
}

/// What runs without `--systems`: everything; with `--smoke` (CI), of the libfuse systems only
/// `libfuse-uring`, so that the baseline's fetch and build cannot rot while CI stays short.
pub(super) fn default_systems(mode: Mode) -> Vec<System> {
    SYSTEMS
        .iter()
        .filter(|s| mode != Mode::Smoke || s.stack != Stack::Libfuse || s.name == "libfuse-uring")
        .copied()
        .collect()
}

/// A named set of extra server options (`--variant NAME=ARGS`), for A/B runs of one system
/// with and without a change in the same run (`--systems uring-served,uring-served@NAME`).
#[derive(Debug)]
struct Variant {
    name: String,
    args: Vec<String>,
}

fn parse_variant(spec: &str) -> Result<Variant, String> {
    let (name, args) = spec
        .split_once('=')
        .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .ok_or_else(|| {
            format!("bench: --variant {spec:?}: expected NAME=ARGS (NAME of letters, digits, '-')")
        })?;
    Ok(Variant {
        name: name.to_owned(),
        args: args.split_whitespace().map(str::to_owned).collect(),
    })
}

/// Resolves `base` or `base@variant` to a system (a variant's name and options are leaked:
/// they live as long as the run).
fn resolve_system(spec: &str, variants: &[Variant]) -> Result<(usize, System), String> {
    let (base, variant) = match spec.split_once('@') {
        Some((b, v)) => (b, Some(v)),
        None => (spec, None),
    };
    let index = SYSTEMS.iter().position(|s| s.name == base).ok_or_else(|| {
        format!(
            "bench: unknown system {base:?}; expected some of {}",
            SYSTEMS.map(|s| s.name).join(",")
        )
    })?;
    let mut system = SYSTEMS[index];
    if let Some(v) = variant {
        let v = variants
            .iter()
            .find(|x| x.name == v)
            .ok_or_else(|| format!("bench: system {spec:?}: no --variant {v}=... given"))?;
        if system.stack == Stack::Native {
            return Err(format!("bench: {spec:?}: native has no server options"));
        }
        system.name = Box::leak(spec.to_owned().into_boxed_str());
        let args: Vec<&'static str> = v
            .args
            .iter()
            .map(|a| &*Box::leak(a.clone().into_boxed_str()))
            .collect();
        system.extra = Box::leak(args.into_boxed_slice());
    }
    Ok((index, system))
}

pub(super) fn parse(args: &[&str]) -> Result<Options, String> {
    let mut mode = None;
    let mut out = None;
    let mut systems: Option<&str> = None;
    let mut workloads: Option<&str> = None;
    let mut reps = None;
    let mut variants = Vec::new();
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
            "--systems" => systems = Some(*it.next().ok_or("bench: --systems needs a list")?),
            "--workloads" => {
                workloads = Some(*it.next().ok_or("bench: --workloads needs a list")?);
            }
            "--reps" => {
                let v = it.next().ok_or("bench: --reps needs a number")?;
                reps = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=20).contains(n))
                        .ok_or_else(|| format!("bench: --reps {v}: expected 1..20"))?,
                );
            }
            "--variant" => {
                let v = parse_variant(it.next().ok_or("bench: --variant needs NAME=ARGS")?)?;
                if variants.iter().any(|x: &Variant| x.name == v.name) {
                    return Err(format!("bench: --variant {} given twice", v.name));
                }
                variants.push(v);
            }
            other => {
                return Err(format!(
                    "bench: unknown argument {other:?} (see `cargo xtask help`)"
                ));
            }
        }
    }
    let mode = mode.unwrap_or(Mode::Full);
    if let Some(v) = variants.iter().find(|v| {
        !systems.is_some_and(|list| {
            list.split(',')
                .any(|s| s.ends_with(&format!("@{}", v.name)))
        })
    }) {
        return Err(format!(
            "bench: --variant {} is used by no SYSTEM@{} in --systems",
            v.name, v.name
        ));
    }
    let systems = match systems {
        None => default_systems(mode),
        Some(list) => {
            let mut chosen: Vec<(usize, System)> = vec![(0, SYSTEMS[0])];
            for spec in list.split(',').filter(|n| !n.is_empty()) {
                let (index, system) = resolve_system(spec, &variants)?;
                if !chosen.iter().any(|(_, s)| s.name == system.name) {
                    chosen.push((index, system));
                }
            }
            // The canonical order whatever the order given; variants after their base system.
            chosen.sort_by_key(|(index, _)| *index);
            chosen.into_iter().map(|(_, s)| s).collect()
        }
    };
    let workloads = match workloads {
        None => vec![true; super::WORKLOADS.len()],
        Some(list) => {
            let ids: Vec<&str> = list.split(',').filter(|n| !n.is_empty()).collect();
            if ids.is_empty() {
                return Err("bench: --workloads needs at least one workload".into());
            }
            for id in &ids {
                if !super::WORKLOADS.iter().any(|w| w.id == *id) {
                    return Err(format!(
                        "bench: unknown workload {id:?}; expected some of {}",
                        super::WORKLOADS.map(|w| w.id).join(",")
                    ));
                }
            }
            super::WORKLOADS
                .iter()
                .map(|w| ids.contains(&w.id))
                .collect()
        }
    };
    let mut plan = Plan::new(mode);
    if let Some(reps) = reps {
        plan.reps = reps;
    }
    Ok(Options {
        plan,
        out,
        systems,
        workloads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_workloads_and_reps_parse_and_bad_ones_are_refused() {
        let o = parse(&[
            "--quick",
            "--reps",
            "3",
            "--workloads",
            "stat-1proc,open-read-close",
            "--variant",
            "d8=--queue-depth 8",
            "--systems",
            "libfuse-uring,uring-served@d8,uring-served",
        ])
        .unwrap();
        assert_eq!(o.plan.reps, 3);
        let names: Vec<&str> = o.systems.iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            ["native", "uring-served@d8", "uring-served", "libfuse-uring"]
        );
        let d8 = o.systems[1];
        assert_eq!(d8.extra, ["--queue-depth", "8"]);
        assert!(d8.server_args().ends_with(&["--queue-depth", "8"]));
        let chosen: Vec<&str> = super::super::WORKLOADS
            .iter()
            .zip(&o.workloads)
            .filter(|(_, on)| **on)
            .map(|(w, _)| w.id)
            .collect();
        assert_eq!(chosen, ["stat-1proc", "open-read-close"]);

        for (args, want) in [
            (&["--workloads", ","][..], "at least one workload"),
            (&["--workloads", "stat"][..], "unknown workload \"stat\""),
            (&["--reps", "0"][..], "expected 1..20"),
            (
                &[
                    "--variant",
                    "a=x",
                    "--variant",
                    "a=y",
                    "--systems",
                    "uring-served@a",
                ][..],
                "given twice",
            ),
            (
                &["--variant", "a=x", "--systems", "uring-served"][..],
                "used by no SYSTEM@a",
            ),
            (
                &["--systems", "uring-served@b"][..],
                "no --variant b=... given",
            ),
            (
                &["--variant", "n=x", "--systems", "native@n"][..],
                "native has no server",
            ),
            (&["--variant", "=x"][..], "expected NAME=ARGS"),
        ] {
            let e = parse(args).unwrap_err();
            assert!(e.contains(want), "{args:?}: {e}");
        }
    }
}
