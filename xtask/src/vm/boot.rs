//! Booting and reading the console.

use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::binaries::Tests;
use super::kernels::Kernel;
use super::tools::Tools;
use super::{KernelSpec, MARK, NOT_APPLICABLE, Options};

#[derive(Clone, PartialEq)]
pub(super) enum Status {
    Passed,
    /// Every test of the binary said it does not apply to this kernel.
    NotApplicable,
    Failed(i32),
    Hung,
    /// The guest stopped (panic, crash) before the binary finished.
    NoResult,
    NotRun,
}

impl Status {
    pub(super) fn is_ok(&self) -> bool {
        matches!(self, Status::Passed | Status::NotApplicable)
    }

    pub(super) fn word(&self) -> String {
        match self {
            Status::Passed => "passed".into(),
            Status::NotApplicable => "not applicable".into(),
            Status::Failed(rc) => format!("FAILED (exit {rc})"),
            Status::Hung => "HUNG".into(),
            Status::NoResult => "NO RESULT (guest stopped)".into(),
            Status::NotRun => "not run".into(),
        }
    }
}

pub(super) struct BinaryRun {
    pub(super) label: String,
    pub(super) status: Status,
    pub(super) passed: u32,
    pub(super) failed: u32,
    pub(super) ignored: u32,
    pub(super) not_applicable: u32,
    pub(super) seconds: f64,
    pub(super) summary: String,
}

pub(super) struct KernelRun {
    pub(super) name: String,
    pub(super) suite: String,
    pub(super) package: String,
    pub(super) version: String,
    pub(super) release: String,
    pub(super) proc_version: String,
    pub(super) fuse: String,
    pub(super) enable_uring: String,
    pub(super) seconds: f64,
    /// completed, hung, or stopped early.
    pub(super) outcome: String,
    pub(super) error: Option<String>,
    pub(super) binaries: Vec<BinaryRun>,
}

impl KernelRun {
    pub(super) fn failed(spec: &KernelSpec, error: String, took: Duration) -> KernelRun {
        KernelRun {
            name: spec.name.into(),
            suite: spec.suite.into(),
            package: String::new(),
            version: String::new(),
            release: String::new(),
            proc_version: String::new(),
            fuse: String::new(),
            enable_uring: String::new(),
            seconds: took.as_secs_f64(),
            outcome: "error".into(),
            error: Some(error),
            binaries: Vec::new(),
        }
    }
}

/// Parses `test result: ok. 7 passed; 0 failed; 1 ignored; ...`.
pub(super) fn parse_summary(line: &str) -> Option<(u32, u32, u32)> {
    let rest = line.split("test result:").nth(1)?;
    let num = |word: &str| -> Option<u32> {
        rest.split(';').find_map(|part| {
            let part = part
                .trim()
                .trim_start_matches(['o', 'k', 'F', 'A', 'I', 'L', 'E', 'D', '.'])
                .trim();
            let (n, w) = part.split_once(' ')?;
            (w.trim() == word).then(|| n.parse().ok()).flatten()
        })
    };
    Some((num("passed")?, num("failed")?, num("ignored").unwrap_or(0)))
}

pub(super) fn boot(
    tools: &Tools,
    spec: &KernelSpec,
    kernel: Kernel,
    initramfs: &Path,
    dir: &Path,
    opts: &Options,
    tests: &Tests,
) -> Result<KernelRun, String> {
    let log_path = dir.join("console.log");
    let mut log = BufWriter::new(
        fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?,
    );
    let mut cmd = Command::new(&tools.qemu);
    cmd.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
    ])
    .args(["-m", &opts.memory_mib.to_string()])
    .arg("-kernel")
    .arg(&kernel.vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    .args([
        "-append",
        "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 mitigations=off",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    println!("vm-test: booting {:?}", cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let stderr = child.stderr.take().ok_or("no qemu stderr")?;
    for stream in [
        Box::new(stdout) as Box<dyn io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    // The whole guest gets every binary's limit plus time to boot.
    let limit = Duration::from_secs(opts.binary_timeout * tests.binaries.len() as u64 + 300);
    let mut run = KernelRun {
        name: spec.name.into(),
        suite: spec.suite.into(),
        package: kernel.package.clone(),
        version: kernel.version.clone(),
        release: kernel.release.clone(),
        proc_version: String::new(),
        fuse: String::new(),
        enable_uring: String::new(),
        seconds: 0.0,
        outcome: "stopped early".into(),
        error: None,
        binaries: Vec::new(),
    };
    let mut current: Option<(BinaryRun, Instant)> = None;
    let mut hung = false;
    let echo = std::env::var_os("VM_TEST_ECHO").is_some();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hung = true;
                let _ = child.kill();
                break;
            }
        };
        let _ = writeln!(log, "{line}");
        if echo {
            println!("  | {line}");
        }
        if let Some((b, _)) = current.as_mut() {
            if line.contains(NOT_APPLICABLE) {
                b.not_applicable += 1;
            }
            if let Some((p, f, i)) = parse_summary(&line) {
                b.passed = p;
                b.failed = f;
                b.ignored = i;
                b.summary = line.trim().to_owned();
            }
        }
        let Some(mark) = line.find(MARK).map(|i| &line[i + MARK.len()..]) else {
            continue;
        };
        let (key, value) = mark.split_once(' ').unwrap_or((mark, ""));
        match key {
            "version" => run.proc_version = value.to_owned(),
            "kernel" => println!(
                "vm-test: guest up after {:.1}s: uname -r = {value}",
                started.elapsed().as_secs_f64()
            ),
            "fuse" => run.fuse = value.to_owned(),
            "enable_uring" => run.enable_uring = value.to_owned(),
            "begin" => {
                current = Some((
                    BinaryRun {
                        label: value.to_owned(),
                        status: Status::NoResult,
                        passed: 0,
                        failed: 0,
                        ignored: 0,
                        not_applicable: 0,
                        seconds: 0.0,
                        summary: String::new(),
                    },
                    Instant::now(),
                ));
            }
            "end" => {
                if let Some((mut b, t)) = current.take() {
                    b.seconds = t.elapsed().as_secs_f64();
                    let rc: i32 = value
                        .rsplit_once("rc=")
                        .and_then(|(_, rc)| rc.trim().parse().ok())
                        .unwrap_or(-1);
                    b.status = if rc == 0 {
                        if b.passed > 0 && b.not_applicable >= b.passed {
                            Status::NotApplicable
                        } else {
                            Status::Passed
                        }
                    } else if rc == 137 && b.seconds + 2.0 >= opts.binary_timeout as f64 {
                        Status::Hung
                    } else {
                        Status::Failed(rc)
                    };
                    println!(
                        "vm-test: {} {}: {} {} ({:.1}s)",
                        spec.name,
                        b.label,
                        b.status.word(),
                        b.summary,
                        b.seconds
                    );
                    run.binaries.push(b);
                }
            }
            "done" => run.outcome = "completed".into(),
            _ => {}
        }
    }
    let _ = child.wait();
    let _ = log.flush();
    run.seconds = started.elapsed().as_secs_f64();
    if let Some((mut b, t)) = current.take() {
        b.seconds = t.elapsed().as_secs_f64();
        b.status = if hung { Status::Hung } else { Status::NoResult };
        run.binaries.push(b);
    }
    if hung {
        run.outcome = format!("hung (killed after {}s)", limit.as_secs());
    }
    for b in &tests.binaries {
        if !run.binaries.iter().any(|r| r.label == b.label) {
            run.binaries.push(BinaryRun {
                label: b.label.clone(),
                status: Status::NotRun,
                passed: 0,
                failed: 0,
                ignored: 0,
                not_applicable: 0,
                seconds: 0.0,
                summary: String::new(),
            });
        }
    }
    println!(
        "vm-test: kernel {} ({} {}): {} in {:.0}s; console log {}",
        spec.name,
        run.package,
        run.version,
        run.outcome,
        run.seconds,
        log_path.display()
    );
    Ok(run)
}
