//! `cargo xtask fuzz [--seconds N | --smoke] [TARGET...]`: every cargo-fuzz target of
//! `fuzz/` for a bounded time, after replaying the inputs that once crashed it
//! (`fuzz/regressions/<target>/`). Installs what it needs: the nightly toolchain and
//! `cargo-fuzz` (`cargo install cargo-fuzz --locked`).
//!
//! The corpus grows in `fuzz/corpus/<target>/` (not committed) and is minimised at the end;
//! a crash leaves its input in `fuzz/artifacts/<target>/` and fails the command, naming it.
//! Copy such an input to `fuzz/regressions/<target>/` once the bug is fixed, and add a unit
//! test for it in the crate.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Seconds per target by default, and with `--smoke` (CI).
const DEFAULT_SECONDS: u64 = 60;
const SMOKE_SECONDS: u64 = 10;

struct Outcome {
    target: String,
    seconds: f64,
    runs: Option<u64>,
    corpus_files: usize,
    corpus_bytes: u64,
    failure: Option<String>,
}

pub(crate) fn fuzz(root: &Path, args: &[&str]) -> Result<(), String> {
    let mut seconds = DEFAULT_SECONDS;
    let mut only = Vec::new();
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--smoke" => seconds = SMOKE_SECONDS,
            "--seconds" => {
                seconds = crate::positive_seconds(it.next().copied())?;
            }
            t if !t.starts_with('-') => only.push(t.to_owned()),
            other => return Err(format!("fuzz: unknown option {other}")),
        }
    }
    let fuzz_dir = root.join("fuzz");
    ensure_tools()?;
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("fuzz");
    let fuzz_cmd = |sub: &str| {
        let mut c = Command::new("cargo");
        c.current_dir(root)
            .args(["+nightly", "fuzz", sub, "--fuzz-dir"])
            .arg(&fuzz_dir);
        c
    };
    let listed = fuzz_cmd("list")
        .output()
        .map_err(|e| format!("cargo fuzz list: {e}"))?;
    let all: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if all.is_empty() {
        return Err("fuzz: `cargo fuzz list` found no targets".into());
    }
    let targets: Vec<String> = if only.is_empty() {
        all
    } else {
        for t in &only {
            if !all.contains(t) {
                return Err(format!("fuzz: no target {t}; targets: {}", all.join(", ")));
            }
        }
        only
    };
    crate::run(fuzz_cmd("build").arg("--target-dir").arg(&target_dir))?;

    let mut outcomes = Vec::new();
    for target in &targets {
        println!("\nxtask fuzz: {target}: {seconds} s");
        let mut outcome = Outcome {
            target: target.clone(),
            seconds: 0.0,
            runs: None,
            corpus_files: 0,
            corpus_bytes: 0,
            failure: None,
        };
        let regressions = fuzz_dir.join("regressions").join(target);
        if regressions.is_dir() {
            let status = fuzz_cmd("run")
                .arg("--target-dir")
                .arg(&target_dir)
                .arg(target)
                .arg(&regressions)
                .args(["--", "-runs=0"])
                .status()
                .map_err(|e| format!("cargo fuzz run: {e}"))?;
            if !status.success() {
                outcome.failure = Some(format!(
                    "a known crash input in {} still crashes",
                    regressions.display()
                ));
            }
        }
        if outcome.failure.is_none() {
            let corpus = fuzz_dir.join("corpus").join(target);
            std::fs::create_dir_all(&corpus).map_err(|e| e.to_string())?;
            let started = Instant::now();
            let output = fuzz_cmd("run")
                .arg("--target-dir")
                .arg(&target_dir)
                .arg(target)
                .arg(&corpus)
                .arg("--")
                .arg(format!("-max_total_time={seconds}"))
                .args(["-timeout=10", "-rss_limit_mb=4096", "-print_final_stats=1"])
                .stdout(Stdio::inherit())
                .stderr(Stdio::piped())
                .output()
                .map_err(|e| format!("cargo fuzz run: {e}"))?;
            outcome.seconds = started.elapsed().as_secs_f64();
            let log = String::from_utf8_lossy(&output.stderr);
            outcome.runs = log.lines().rev().find_map(|l| {
                l.strip_prefix("Done ")?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            });
            if !output.status.success() {
                let tail: Vec<&str> = log.lines().rev().take(40).collect();
                eprintln!("{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
                let artifacts = fuzz_dir.join("artifacts").join(target);
                outcome.failure = Some(format!(
                    "crashed ({}); input in {}",
                    output.status,
                    artifacts.display()
                ));
            } else {
                // Keep the corpus small: only inputs that add coverage.
                let _ = fuzz_cmd("cmin")
                    .arg("--target-dir")
                    .arg(&target_dir)
                    .arg(target)
                    .arg(&corpus)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            (outcome.corpus_files, outcome.corpus_bytes) = dir_size(&corpus);
        }
        outcomes.push(outcome);
    }

    println!("\nxtask fuzz: summary ({seconds} s per target)");
    println!(
        "{:<18} {:>8} {:>12} {:>8} {:>10}  result",
        "target", "seconds", "runs", "corpus", "bytes"
    );
    let mut failed = Vec::new();
    for o in &outcomes {
        println!(
            "{:<18} {:>8.0} {:>12} {:>8} {:>10}  {}",
            o.target,
            o.seconds,
            o.runs.map_or_else(|| "-".into(), |r| r.to_string()),
            o.corpus_files,
            o.corpus_bytes,
            o.failure.as_deref().unwrap_or("ok")
        );
        if let Some(f) = &o.failure {
            failed.push(format!("{}: {f}", o.target));
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing failed:\n  {}", failed.join("\n  ")))
    }
}

/// Installs the nightly toolchain and cargo-fuzz when missing.
fn ensure_tools() -> Result<(), String> {
    if !crate::succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        crate::ensure_nightly(&["rust-src"])?;
    }
    if !crate::succeeds(Command::new("cargo").args(["+nightly", "fuzz", "--version"])) {
        crate::run(Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]))?;
    }
    Ok(())
}

/// Number of files and total bytes directly in `dir`.
pub(crate) fn dir_size(dir: &Path) -> (usize, u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}
