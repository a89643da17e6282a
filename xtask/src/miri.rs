//! `cargo xtask miri`: the pure parts of the three published crates under Miri (undefined
//! behaviour, aliasing, data races, out-of-bounds accesses, leaks). Installs what it needs:
//! `rustup component add --toolchain nightly miri rust-src`.
//!
//! What runs, and why the rest does not:
//! - `fuse-kernel-sys`: `tests/pure.rs` (record-size helpers, plain-data views of the ABI
//!   structs); the layout assertions are compile-time and are evaluated by the same engine.
//! - `fuse-backing`: its unit tests (flag validation, id range, errno classification); the
//!   kernel tests need real ioctls.
//! - `fuse-uring`: its unit tests (SQE building, command-area encoding, arena layout, entry
//!   accessors and writers, ownership round trips) and `tests/ownership.rs` (tokens across
//!   threads), in an arena that Miri maps with its own anonymous `mmap`. Skipped, because
//!   Miri cannot emulate the system calls they exist to test: tests that create io_uring
//!   rings (`queue::tests`, `ring_builder_rings_have_sqe128`: `io_uring_setup`) and those
//!   that measure residency (`lazy_allocation...`, `prefault_options...`: `mincore`,
//!   `MAP_POPULATE`, `madvise`). Also skipped: `cpu_lists_parse`, plain string parsing without
//!   `unsafe` that takes over two minutes under Miri (a 65536-CPU list).
//!   Under Tree Borrows: io-uring 0.7.15's `UringCmd80::build` writes the command area
//!   through a reference to a zero-length array, which the stricter Stacked Borrows model
//!   rejects (in io-uring's code, not ours).
//!
//! Isolation is off (`-Zmiri-disable-isolation`) because some pure functions read sysfs
//! (`enable_uring`, the possible CPUs).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

struct Run {
    what: &'static str,
    args: &'static [&'static str],
    miriflags: &'static str,
    skip: &'static [&'static str],
}

const RUNS: &[Run] = &[
    Run {
        what: "fuse-kernel-sys: record sizes, plain-data views",
        args: &["-p", "fuse-kernel-sys", "--test", "pure"],
        miriflags: "",
        skip: &[],
    },
    Run {
        what: "fuse-backing: flag validation, ids, errors",
        args: &["-p", "fuse-backing", "--lib"],
        miriflags: "",
        skip: &[],
    },
    Run {
        what: "fuse-uring: SQEs, command area, arena layout, entries",
        args: &["-p", "fuse-uring", "--lib"],
        miriflags: "-Zmiri-tree-borrows -Zmiri-disable-isolation",
        skip: &[
            "queue::tests",
            "ring_builder_rings_have_sqe128",
            "lazy_allocation_touches_only_the_slot_records",
            "prefault_options_make_memory_resident",
            // 134 s under Miri (a 65536-CPU list), string parsing without unsafe code.
            "cpu_lists_parse",
        ],
    },
    Run {
        what: "fuse-uring: entry ownership across threads",
        args: &["-p", "fuse-uring", "--test", "ownership"],
        miriflags: "-Zmiri-tree-borrows -Zmiri-disable-isolation",
        skip: &[],
    },
];

pub(crate) fn miri(root: &Path, args: &[&str]) -> Result<(), String> {
    if let Some(other) = args.first() {
        return Err(format!("miri: unknown argument {other}"));
    }
    ensure_miri()?;
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for run in RUNS {
        println!("\nxtask miri: {}", run.what);
        let mut cmd = Command::new("cargo");
        cmd.current_dir(root)
            .args(["+nightly", "miri", "test", "--no-default-features"])
            .args(run.args)
            .arg("--");
        for s in run.skip {
            cmd.args(["--skip", s]);
        }
        if !run.miriflags.is_empty() {
            cmd.env("MIRIFLAGS", run.miriflags);
        }
        let started = Instant::now();
        let ok = crate::run(&mut cmd).is_ok();
        summary.push(format!(
            "  {:<55} {:>5.0} s  {}",
            run.what,
            started.elapsed().as_secs_f64(),
            if ok { "ok" } else { "FAILED" }
        ));
        if !ok {
            failed.push(run.what);
        }
    }
    println!("\nxtask miri: summary\n{}", summary.join("\n"));
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("Miri found problems in: {}", failed.join("; ")))
    }
}

/// Installs Miri and the standard library sources for nightly when missing.
fn ensure_miri() -> Result<(), String> {
    if !crate::succeeds(Command::new("cargo").args(["+nightly", "miri", "--version"])) {
        crate::ensure_nightly(&["miri", "rust-src"])?;
    }
    crate::run(Command::new("cargo").args(["+nightly", "miri", "setup"]))
}
