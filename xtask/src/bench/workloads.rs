//! The workloads: fio jobs for data, `xtask bench-client` processes for metadata.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::stop_requested;

use super::client::{self, Op};
use super::measure::Bench;
use super::plan::Plan;
use super::systems::Scratch;
use super::{Failure, tail};
use crate::tree;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A fio job: `rw`, block size, O_DIRECT, jobs; timed (random) or whole-file passes.
    Fio {
        rw: &'static str,
        bs: &'static str,
        direct: bool,
        jobs: u32,
    },
    /// `procs` bench-client processes.
    Meta { op: Op, procs: usize },
}

/// One workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Workload {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) kind: Kind,
}

pub(crate) const WORKLOADS: [Workload; 7] = [
    Workload {
        id: "seq-read-warm",
        label: "sequential read, 1 MiB blocks, page cache warm",
        unit: "MiB/s",
        kind: Kind::Fio {
            rw: "read",
            bs: "1M",
            direct: false,
            jobs: 1,
        },
    },
    Workload {
        id: "seq-read-direct",
        label: "sequential read, 1 MiB blocks, O_DIRECT",
        unit: "MiB/s",
        kind: Kind::Fio {
            rw: "read",
            bs: "1M",
            direct: true,
            jobs: 1,
        },
    },
    Workload {
        id: "rand-read-4k-1job",
        label: "4 KiB random read, 1 job",
        unit: "IOPS",
        kind: Kind::Fio {
            rw: "randread",
            bs: "4k",
            direct: false,
            jobs: 1,
        },
    },
    Workload {
        id: "rand-read-4k-2jobs",
        label: "4 KiB random read, 2 jobs",
        unit: "IOPS",
        kind: Kind::Fio {
            rw: "randread",
            bs: "4k",
            direct: false,
            jobs: 2,
        },
    },
    Workload {
        id: "stat-1proc",
        label: "stat (fstatat in its directory), no attr/entry caching, 1 process",
        unit: "stat/s",
        kind: Kind::Meta {
            op: Op::Stat,
            procs: 1,
        },
    },
    Workload {
        id: "stat-2procs",
        label: "stat (fstatat in its directory), no attr/entry caching, 2 processes",
        unit: "stat/s",
        kind: Kind::Meta {
            op: Op::Stat,
            procs: 2,
        },
    },
    Workload {
        id: "open-read-close",
        label: "open+read+close of small files, 1 process",
        unit: "files/s",
        kind: Kind::Meta {
            op: Op::OpenReadClose,
            procs: 1,
        },
    },
];

/// Makes sure fio is installed (installing it when root on Debian), and returns its version.
pub(super) fn ensure_fio() -> Result<String, String> {
    let version = || {
        Command::new("fio")
            .arg("--version")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(v) = version() {
        return Ok(v);
    }
    crate::apt_install(&["fio"], "fio (the load generator of the data workloads)")?;
    version().ok_or_else(|| "bench: fio was installed but `fio --version` fails".into())
}

/// Waits for `child`, polling so that a stop signal or the timeout kills it.
pub(super) fn wait_child(
    child: &mut Child,
    timeout: Duration,
) -> Result<std::process::ExitStatus, Failure> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(e) => return Err(Failure::Workload(format!("wait: {e}"))),
        }
        if stop_requested() || start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if stop_requested() {
                Failure::Stopped
            } else {
                Failure::Workload(format!("timed out after {}s", timeout.as_secs()))
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One measurement: the value in the workload's unit, and the work done (MiB read, I/Os, or
/// operations), for the server's CPU time per unit of work.
pub(super) type Measure<'a> = dyn FnMut() -> Result<(f64, f64), Failure> + 'a;

/// Runs one fio job on `file` and returns MiB/s (sequential) or IOPS (random).
pub(super) fn run_fio(
    scratch: &Scratch,
    file: &Path,
    size: u64,
    w: &Workload,
    plan: &Plan,
) -> Result<(f64, f64), Failure> {
    let Kind::Fio {
        rw,
        bs,
        direct,
        jobs,
    } = w.kind
    else {
        return Err(Failure::Workload("not a fio workload".into()));
    };
    let output = scratch.dir.join("fio.json");
    let errors = scratch.dir.join("fio.err");
    let _ = std::fs::remove_file(&output);
    let mut cmd = Command::new("fio");
    cmd.arg(format!("--name={}", w.id))
        .arg(format!("--filename={}", file.display()))
        .args([
            "--readonly",
            "--invalidate=0",
            "--ioengine=psync",
            "--group_reporting",
            "--output-format=json",
        ])
        .arg(format!("--output={}", output.display()))
        .arg(format!("--size={size}"))
        .arg(format!("--rw={rw}"))
        .arg(format!("--bs={bs}"))
        .arg(format!("--direct={}", u8::from(direct)))
        .arg(format!("--numjobs={jobs}"));
    let timeout = if rw == "randread" {
        cmd.args(["--time_based", "--norandommap", "--randrepeat=0"])
            .arg(format!("--runtime={}s", plan.rand_secs));
        Duration::from_secs(u64::from(plan.rand_secs) + 60)
    } else {
        // fio closes and reopens the file between loops: each pass is a fresh open.
        cmd.arg(format!("--loops={}", plan.seq_passes));
        Duration::from_secs(600)
    };
    let err_file =
        std::fs::File::create(&errors).map_err(|e| Failure::Workload(format!("fio.err: {e}")))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_file)
        .spawn()
        .map_err(|e| Failure::Workload(format!("cannot start fio: {e}")))?;
    let status = wait_child(&mut child, timeout)?;
    let stderr = std::fs::read_to_string(&errors).unwrap_or_default();
    let text = std::fs::read_to_string(&output).unwrap_or_default();
    if !status.success() {
        return Err(Failure::Workload(format!(
            "fio failed ({status}): {}",
            tail(&stderr)
        )));
    }
    let report = fio_report(&text)
        .map_err(|e| Failure::Workload(format!("fio output: {e}; stderr: {}", tail(&stderr))))?;
    let num = |p: &str| report.pointer(p).and_then(serde_json::Value::as_f64);
    if num("/jobs/0/error").is_some_and(|e| e != 0.0) {
        return Err(Failure::Workload(format!(
            "fio job error {:?}: {}",
            num("/jobs/0/error"),
            tail(&stderr)
        )));
    }
    let (value, work) = if rw == "randread" {
        (num("/jobs/0/read/iops"), num("/jobs/0/read/total_ios"))
    } else {
        let mib = |b: f64| b / f64::from(1 << 20);
        (
            num("/jobs/0/read/bw_bytes").map(mib),
            num("/jobs/0/read/io_bytes").map(mib),
        )
    };
    value
        .filter(|v| *v > 0.0)
        .zip(work)
        .ok_or_else(|| Failure::Workload(format!("fio reported no reads: {}", tail(&stderr))))
}

/// Parses fio's `--output-format=json` report: the first JSON value in `text`; warnings fio
/// prints before it and anything after it are ignored.
fn fio_report(text: &str) -> Result<serde_json::Value, String> {
    let start = text
        .find(['{', '['])
        .ok_or_else(|| "no JSON value in the output".to_owned())?;
    serde_json::Deserializer::from_str(&text[start..])
        .into_iter()
        .next()
        .ok_or_else(|| "no JSON value in the output".to_owned())?
        .map_err(|e| e.to_string())
}

/// A started set of bench-client processes, waiting for "go".
pub(super) struct Clients {
    children: Vec<Child>,
    outs: Vec<BufReader<std::process::ChildStdout>>,
}

impl Clients {
    pub(super) fn start(
        op: Op,
        root: &Path,
        plan: &Plan,
        procs: usize,
    ) -> Result<Clients, Failure> {
        let exe =
            std::env::current_exe().map_err(|e| Failure::Workload(format!("current_exe: {e}")))?;
        let mut clients = Clients {
            children: Vec::new(),
            outs: Vec::new(),
        };
        let count = plan.layout.count();
        for k in 0..procs {
            let mut child = Command::new(&exe)
                .args(client::args(
                    op,
                    root,
                    plan.layout,
                    plan.meta_secs,
                    k * count / procs,
                ))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| Failure::Workload(format!("cannot start the client: {e}")))?;
            let out = child.stdout.take().map(BufReader::new);
            clients.children.push(child);
            clients
                .outs
                .push(out.ok_or_else(|| Failure::Workload("no stdout".into()))?);
        }
        for i in 0..procs {
            let line = clients.line(i)?;
            if line.trim() != "ready" {
                return Err(clients.fail(i, &line));
            }
        }
        Ok(clients)
    }

    pub(super) fn line(&mut self, i: usize) -> Result<String, Failure> {
        let mut line = String::new();
        match self.outs[i].read_line(&mut line) {
            Ok(n) if n > 0 => Ok(line),
            _ if stop_requested() => Err(Failure::Stopped),
            _ => Err(self.fail(i, "")),
        }
    }

    pub(super) fn fail(&mut self, i: usize, line: &str) -> Failure {
        let child = &mut self.children[i];
        let _ = child.kill();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        let _ = child.wait();
        Failure::Workload(format!("client failed: {} {}", line.trim(), tail(&err)))
    }

    /// Starts every client and returns their summed rate (operations per second) and the
    /// operations done.
    pub(super) fn go(mut self) -> Result<(f64, f64), Failure> {
        for child in &mut self.children {
            if let Some(stdin) = child.stdin.as_mut() {
                let _ = stdin.write_all(b"go\n");
                let _ = stdin.flush();
            }
        }
        let mut rate = 0.0;
        let mut total = 0.0;
        for i in 0..self.children.len() {
            let line = self.line(i)?;
            let field = |k: &str| -> Option<f64> {
                line.split_whitespace()
                    .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))?
                    .parse()
                    .ok()
            };
            let (Some(ops), Some(nanos)) = (field("ops"), field("nanos")) else {
                return Err(self.fail(i, &line));
            };
            rate += ops / (nanos / 1e9);
            total += ops;
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        Ok((rate, total))
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        for child in &mut self.children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

impl Bench<'_> {
    /// Makes the native side warm: the large file in the page cache (data workloads) or the
    /// small files in the dentry, inode and page caches (metadata workloads).
    pub(super) fn warm(&self, w: &Workload) -> Result<(), Failure> {
        match w.kind {
            Kind::Fio { .. } => tree::read_through(&self.source.large()).map(|_| ()),
            Kind::Meta { .. } => tree::warm_small(self.source),
        }
        .map_err(Failure::Workload)
    }

    /// One measurement of `w` on the tree at `root`.
    pub(super) fn measure(&self, w: &Workload, root: &Path) -> Result<(f64, f64), Failure> {
        match w.kind {
            Kind::Fio { .. } => run_fio(
                self.scratch,
                &root.join(tree::LARGE_NAME),
                self.source.large_bytes(),
                w,
                &self.plan,
            ),
            Kind::Meta { op, procs } => Clients::start(op, root, &self.plan, procs)?.go(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fio_report;

    #[test]
    fn parses_fio_like_output() {
        let text = "fio: some warning\n{\"jobs\": [{\"read\": {\"iops\": 12.5, \"bw_bytes\": 1048576}, \
                    \"error\": 0, \"name\": \"a\\\"b\"}], \"x\": [true, false, null, -1e3]}\ntrailing";
        let v = fio_report(text).unwrap();
        let num = |p: &str| v.pointer(p).and_then(serde_json::Value::as_f64);
        assert_eq!(num("/jobs/0/read/iops"), Some(12.5));
        assert_eq!(num("/jobs/0/read/bw_bytes"), Some(1048576.0));
        assert_eq!(
            v.pointer("/jobs/0/name")
                .and_then(serde_json::Value::as_str),
            Some("a\"b")
        );
        assert_eq!(num("/x/3"), Some(-1000.0));
        assert!(fio_report("{\"a\": }").is_err());
        assert!(fio_report("fio: no output").is_err());
    }
}
