//! `cargo xtask soak [--seconds N] [--transport uring|dev] [--passthrough]`: load the example
//! server for N seconds (default 30) from 8 client threads doing stat, open, read to the end
//! with byte verification, and close, over FUSE-over-io_uring with passthrough off unless
//! told otherwise. Reports operations, errors (must be 0), and the server's peak memory
//! (`VmHWM`), fds and CPU time; fails on any error, on a client or server that hangs, on a
//! server that does not exit cleanly, and if the requests did not go through the transport
//! asked for. Needs root.

use std::path::Path;
use std::time::{Duration, Instant};

use testkit::example::{ExampleServer, stat_value};
use testkit::fault::{self, Load};

use crate::tree;

const CLIENTS: usize = 8;
/// 96 files in 4 directories; sizes: empty, sub-page, page edges, several READs, a large one.
const TREE: tree::Spec = tree::Spec {
    large_mib: 0,
    layout: tree::Layout {
        dirs: 4,
        files_per_dir: 24,
    },
    sizes: tree::Sizes::Cycle(&[
        0, 1, 4095, 4096, 4097, 65_536, 200_003, 1_048_583, 3_000_017,
    ]),
    links_and_xattrs: false,
};

pub(crate) fn soak(root: &Path, args: &[&str]) -> Result<(), String> {
    let mut seconds = 30u64;
    let mut transport = "uring";
    let mut passthrough = false;
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--seconds" => {
                seconds = crate::positive_seconds(it.next().copied())?;
            }
            "--transport" => {
                transport = match it.next() {
                    Some(&"uring") => "uring",
                    Some(&"dev") => "dev",
                    _ => return Err("--transport needs uring or dev".into()),
                };
            }
            "--passthrough" => passthrough = true,
            other => return Err(format!("soak: unknown argument {other}")),
        }
    }
    if !testkit::is_root() {
        return Err("the soak test mounts a FUSE file system: run it as root".into());
    }
    crate::setup()?;
    if transport == "uring" && !testkit::uring_enabled() {
        return Err(
            "FUSE-over-io_uring is off: echo Y > /sys/module/fuse/parameters/enable_uring \
             (or --transport dev)"
                .into(),
        );
    }
    let binary = crate::build_example(root)?;
    let work = testkit::temp_dir("soak").map_err(|e| e.to_string())?;
    let mountpoint = work.join("mnt");
    let result = std::fs::create_dir(&mountpoint)
        .map_err(|e| e.to_string())
        .and_then(|()| tree::create(&work.join("source"), TREE))
        .and_then(|tree| run(&binary, tree, &mountpoint, seconds, transport, passthrough));
    let _ = rustix::mount::unmount(&mountpoint, rustix::mount::UnmountFlags::DETACH);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn run(
    binary: &Path,
    tree: tree::Tree,
    mountpoint: &Path,
    seconds: u64,
    transport: &str,
    passthrough: bool,
) -> Result<(), String> {
    let mut args = vec!["--transport", transport, "--attr-timeout", "0", "--stats"];
    if !passthrough {
        args.push("--no-passthrough");
    }
    let server = ExampleServer::start(binary, &tree.root, mountpoint, &args)
        .map_err(|e| format!("starting the example: {e}"))?;
    println!("soak: {}", server.ready);
    if server.ready_field("transport") != Some(transport) {
        return Err(format!(
            "the server did not use {transport}: {}",
            server.ready
        ));
    }
    let pid = server.pid().ok_or("no server pid")?;
    // A first answered request: every queue thread has its ring by now.
    std::fs::metadata(mountpoint).map_err(|e| format!("stat of the mount: {e}"))?;
    let cpu_before = crate::proc::cpu_ticks(pid).map_err(|e| e.to_string())?;
    let fds_start = fault::fd_count(pid).unwrap_or(0);
    let file_count = tree.contents.len();
    let files = std::sync::Arc::new(tree.contents);
    let load = Load::start(mountpoint, &files, CLIENTS, 128 * 1024)
        .map_err(|e| format!("starting the clients: {e}"))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let mut peak_rss = 0;
    let mut peak_fds = fds_start;
    let mut next_report = started + Duration::from_secs(10);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        peak_rss = peak_rss.max(fault::status_kib(pid, "VmRSS").unwrap_or(0));
        peak_fds = peak_fds.max(fault::fd_count(pid).unwrap_or(0));
        if fault::process_exited(pid) {
            let _ = load.stop(Duration::from_secs(10));
            return Err("the server exited during the soak".into());
        }
        if !load.all_running() {
            let _ = load.stop(Duration::from_secs(10));
            return Err("a client thread ended during the soak".into());
        }
        if Instant::now() >= next_report {
            println!(
                "soak: {:>4} s, server RSS {} KiB, {} fds",
                started.elapsed().as_secs(),
                fault::status_kib(pid, "VmRSS").unwrap_or(0),
                fault::fd_count(pid).unwrap_or(0)
            );
            next_report += Duration::from_secs(10);
        }
    }
    let report = load.stop(Duration::from_secs(30))?;
    let elapsed = started.elapsed().as_secs_f64();
    let hwm = fault::status_kib(pid, "VmHWM").unwrap_or(0);
    let cpu = crate::proc::cpu_ticks(pid)
        .map(|c| c.since(cpu_before))
        .unwrap_or_default();
    let (ok, stats, stderr) = server.stop().map_err(|e| e.to_string())?;
    let ticks = crate::proc::clock_ticks_per_second().max(1) as f64;
    println!(
        "soak: {elapsed:.1} s over {transport} (passthrough {}), {CLIENTS} clients, {} files",
        if passthrough { "on" } else { "off" },
        file_count
    );
    println!(
        "soak: operations: {} ({:.0}/s); rounds (stat+open+read all+close) verified: {}; \
         bytes verified: {} MiB",
        report.operations,
        report.operations as f64 / elapsed,
        report.rounds,
        report.bytes >> 20
    );
    println!("soak: errors: {} {:?}", report.error_count(), report.errors);
    println!(
        "soak: server peak memory: VmHWM {hwm} KiB (max sampled VmRSS {peak_rss} KiB); fds: \
         {fds_start} at start, {peak_fds} at most; CPU: {:.1} s user, {:.1} s system",
        cpu.user as f64 / ticks,
        cpu.system as f64 / ticks
    );
    let requests = stat_value(&stats, &format!("{transport}_requests"));
    println!(
        "soak: requests through {transport}: {}",
        requests.map_or_else(|| "?".into(), |n| n.to_string())
    );
    let mut problems = Vec::new();
    if report.error_count() != 0 {
        problems.push(format!("{} client errors", report.error_count()));
    }
    if report.rounds == 0 {
        problems.push("no verified round".into());
    }
    if !ok || stderr.contains("panicked") {
        problems.push(format!("the server did not exit cleanly: {stderr}"));
    }
    if transport == "uring" && stat_value(&stats, "dev_ordinary_requests") != Some(0) {
        problems.push(format!("requests bypassed the ring:\n{stats}"));
    }
    if testkit::is_mount_point(mountpoint) {
        problems.push("mount left behind".into());
    }
    if problems.is_empty() {
        println!("soak: ok");
        Ok(())
    } else {
        Err(format!("soak failed: {}", problems.join("; ")))
    }
}
