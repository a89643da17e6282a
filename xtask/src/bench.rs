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

// The benchmark client calls libc directly (fstatat, openat, read, close), like any C client.
#[allow(unsafe_code)]
mod client;
mod json;
mod libfuse;
mod measure;
mod plan;
mod report;
mod results;
mod svg;
mod systems;
mod targets;
mod workloads;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::proc::{clock_ticks_per_second, stop_requested};
use crate::tree::{self, Sizes, Tree};

pub(crate) use client::main as client_main;
pub(crate) use measure::BUSY_PERCENT;
use measure::Bench;
use plan::{Mode, Plan, parse};
use results::utc_now;
pub(crate) use results::{Cell, Machine, Run, SystemRun, median};
use systems::{COMMON_SERVER_ARGS, Scratch};
pub(crate) use systems::{PAIRS, SYSTEMS, Stack, System};
use workloads::ensure_fio;
pub(crate) use workloads::{Kind, WORKLOADS, Workload};

/// Progress output: elapsed time since the start of the benchmark, then the message.
pub(crate) struct Progress(Instant);

impl Progress {
    pub(crate) fn say(&self, msg: &str) {
        println!("bench [{:6.1}s] {msg}", self.0.elapsed().as_secs_f64());
        let _ = std::io::stdout().flush();
    }
}

/// Why a workload did not produce numbers.
#[derive(Debug)]
pub(crate) enum Failure {
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

/// `text` on one line: line breaks become ` | `, surrounding blanks go.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The last non-empty lines of a process's error output, on one line.
pub(crate) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// The sizes of the small files: 1 KiB .. 8 KiB.
const SMALL_SIZES: Sizes = Sizes::Spread {
    min: 1024,
    max: 8192,
};

/// The source tree of `plan`, cached at `dir` (generation costs time).
fn prepare_source(dir: &Path, plan: &Plan) -> Result<Tree, String> {
    let spec = tree::Spec {
        large_mib: plan.large_mib,
        layout: plan.layout,
        sizes: SMALL_SIZES,
        links_and_xattrs: false,
    };
    let t = Instant::now();
    let (source, was_cached) = tree::cached(dir, spec).map_err(|e| format!("bench: {e}"))?;
    if was_cached {
        println!(
            "bench: source (cached; delete the directory to regenerate): {}",
            source.describe()
        );
    } else {
        println!(
            "bench: source generated in {:.1}s (cached for later runs): {}",
            t.elapsed().as_secs_f64(),
            source.describe()
        );
    }
    Ok(source)
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
    let server = if opts.systems.iter().any(|s| s.stack == Stack::Example) {
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
    let mut libfuse_error = None;
    let libfuse = if opts.systems.iter().any(|s| s.stack == Stack::Libfuse) {
        let t = Instant::now();
        match libfuse::ensure_built(&bench_dir) {
            Ok(b) => {
                progress.say(&format!(
                    "libfuse baseline: {} {} ({:.0}s)",
                    b.version,
                    b.binary.display(),
                    t.elapsed().as_secs_f64()
                ));
                Some(b)
            }
            Err(e) => {
                let e = format!("cannot build the libfuse baseline: {}", one_line(&e));
                progress.say(&format!("bench: {e}; measuring the other systems"));
                libfuse_error = Some(e);
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
    let source = prepare_source(&source_dir, &plan)?;
    let machine = Machine::probe(&source.root);
    progress.say(&format!("machine: {}; {fio}", machine.describe()));
    progress.say(&format!(
        "every mounted system: passthroughfs --transport dev|uring [--no-passthrough] {} SOURCE MNT \
         (attribute and entry timeouts 0: no caching, so every stat reaches the server; \
         the dev transport runs its default of one worker per CPU, uring one ring per CPU); \
         mount options are printed per system and must be identical",
        COMMON_SERVER_ARGS.join(" ")
    ));
    if libfuse.is_some() {
        progress.say(&format!(
            "every libfuse system: passthrough_hp {} [--nopassthrough] [-o io_uring] SOURCE MNT \
             (its defaults otherwise: up to 10 worker threads sharing one /dev/fuse fd, one \
             io_uring queue per CPU of depth 8; --nocache: attribute and entry timeouts 0, as \
             ours; it adds default_permissions, as ours has)",
            libfuse::COMMON_ARGS.join(" ")
        ));
    }

    let scratch = Scratch::new()?;
    let ctx = Bench {
        plan,
        patience: std::cell::Cell::new(plan.patience_secs),
        cpus: machine.cpus,
        source: &source,
        server: server.as_deref(),
        libfuse: libfuse.as_ref(),
        scratch: &scratch,
        progress: &progress,
    };
    let mut runs: Vec<SystemRun> = opts
        .systems
        .iter()
        .map(|&sys| SystemRun {
            system: sys,
            error: match sys.stack {
                Stack::Native => None,
                Stack::Example => build_error.clone(),
                Stack::Libfuse => libfuse_error.clone(),
            },
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
                if !opts.workloads[i] {
                    continue;
                }
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
    let json_text = json::results(&run);
    for (name, text) in [
        ("results.md", md.as_str()),
        ("results.json", json_text.as_str()),
        ("ratios.svg", svg::svg(&run).as_str()),
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
