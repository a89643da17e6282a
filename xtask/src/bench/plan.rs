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

pub(super) fn parse(args: &[&str]) -> Result<Options, String> {
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
    let mode = mode.unwrap_or(Mode::Full);
    Ok(Options {
        plan: Plan::new(mode),
        out,
        // Keep the canonical order whatever the order given.
        systems: systems.map_or_else(
            || default_systems(mode),
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
