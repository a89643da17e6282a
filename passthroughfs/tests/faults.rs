//! Faults on real mounts of the example server: the server killed or the connection aborted
//! while clients are blocked in the kernel, unmount and SIGTERM under load, and the server's
//! own fds after the kernel forgot everything. Each test bounds every wait; none may hang.
//!
//! The server is stopped with `SIGSTOP` to get clients reliably blocked: their requests sit in
//! the connection (`/sys/fs/fuse/connections/<N>/waiting` counts them) until the fault.

use std::path::Path;
use std::time::{Duration, Instant};

use rustix::process::Signal;
use testkit::Needs;
use testkit::example::ExampleServer;
use testkit::fault::{self, Blocked, ContinueOnDrop, Load, Op, SourceTree};

const BIN: &str = env!("CARGO_BIN_EXE_passthroughfs");
/// How long anything may take before the test calls it a hang.
const DEADLINE: Duration = Duration::from_secs(20);

/// A source tree and a mount point for one test; both removed on drop (after the server,
/// which is declared later and so dropped first).
struct Setup {
    tree: SourceTree,
    mountpoint: std::path::PathBuf,
}

impl Setup {
    fn new(tag: &str) -> Setup {
        let tree = SourceTree::create(tag, 24, &[0, 1, 4096, 100_000, 1_500_000]).expect("tree");
        let mountpoint = testkit::temp_dir(tag).expect("mount point");
        Setup { tree, mountpoint }
    }

    fn start(&self, args: &[&str]) -> ExampleServer {
        ExampleServer::start(Path::new(BIN), self.tree.path(), &self.mountpoint, args)
            .expect("passthroughfs starts")
    }

    fn file(&self, i: usize) -> std::path::PathBuf {
        self.mountpoint.join(&self.tree.files[i].0)
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.mountpoint);
    }
}

/// The clients of the blocked-client tests: stats, whole-file reads and a listing, all of
/// which need the server (attribute timeout 0).
fn blocking_ops(setup: &Setup) -> Vec<Op> {
    vec![
        Op::Stat(setup.file(3)),
        Op::Stat(setup.file(8)),
        Op::Read(setup.file(4)),
        Op::Read(setup.file(9)),
        Op::List(setup.mountpoint.join("d1")),
    ]
}

/// Stops the server, starts the blocking clients and waits until the kernel holds all of
/// their requests. Returns the clients.
fn block_clients(server: &ExampleServer, setup: &Setup, connection: u32) -> Blocked {
    let pid = server.pid().expect("pid");
    fault::signal(pid, Signal::STOP).expect("SIGSTOP");
    assert!(
        fault::wait_until(DEADLINE, || fault::process_state(pid) == Some('T')),
        "the server did not stop"
    );
    let ops = blocking_ops(setup);
    let n = ops.len() as u64;
    let mut blocked = Blocked::start(&ops).expect("client threads");
    assert!(
        fault::wait_until(DEADLINE, || fault::connection_waiting(connection)
            .is_some_and(|w| w >= n)),
        "the clients' requests did not reach the connection (waiting: {:?})",
        fault::connection_waiting(connection)
    );
    if let Some((op, result)) = blocked.any_returned() {
        panic!("{op} returned while the server was stopped: {result:?}");
    }
    blocked
}

/// Collects the blocked clients, which must all return within the deadline with an error;
/// returns the errno names, sorted.
fn all_failed(mut blocked: Blocked) -> Vec<String> {
    let started = Instant::now();
    let (results, still) = blocked.collect(DEADLINE);
    assert_eq!(still, 0, "{still} clients still blocked after {DEADLINE:?}");
    let mut errors: Vec<String> = results
        .iter()
        .map(|(op, r)| match r {
            Ok(v) => panic!("{op} succeeded ({v}) on a dead connection"),
            Err(e) => fault::errno_name(e),
        })
        .collect();
    errors.sort();
    eprintln!(
        "clients returned within {:?}: {errors:?}",
        started.elapsed()
    );
    errors
}

fn wait_exit(server: &ExampleServer) {
    let pid = server.pid().expect("pid");
    assert!(
        fault::wait_until(DEADLINE, || fault::process_exited(pid)),
        "the server did not exit within {DEADLINE:?}"
    );
}

fn killed_server_fails_blocked_clients_and_its_mount_goes_away(transport: &str) {
    let setup = Setup::new("fault-kill");
    let server = setup.start(&[
        "--transport",
        transport,
        "--no-passthrough",
        "--attr-timeout",
        "0",
    ]);
    assert_eq!(server.ready_field("transport"), Some(transport));
    let _cont = ContinueOnDrop(server.pid().expect("pid"));
    let connection = testkit::connection_of(&setup.mountpoint).expect("connection number");
    assert_eq!(
        std::fs::read(setup.file(4)).expect("read before the fault"),
        setup.tree.files[4].1
    );

    let blocked = block_clients(&server, &setup, connection);
    fault::signal(server.pid().expect("pid"), Signal::KILL).expect("SIGKILL");
    let errors = all_failed(blocked);
    // The last /dev/fuse fd closing aborts the connection: over /dev/fuse every request the
    // kernel held (sent or still queued) ends with ECONNABORTED (observed on 6.18). Over
    // io_uring, requests already handed to the dead server's ring end with ECANCELED when
    // its io_uring is torn down, the others with ECONNABORTED or ENOTCONN.
    let expected: &[&str] = match transport {
        "dev" => &["ECONNABORTED"],
        _ => &["ECANCELED", "ECONNABORTED", "ENOTCONN"],
    };
    assert!(
        errors.iter().all(|e| expected.contains(&e.as_str())),
        "{errors:?}"
    );
    wait_exit(&server);

    // The server's watchdog removes the mount; the connection is gone.
    assert!(
        fault::wait_until(DEADLINE, || !testkit::is_mount_point(&setup.mountpoint)),
        "the mount of the killed server is still there"
    );
    assert!(fault::wait_until(DEADLINE, || !fault::connection_exists(
        connection
    )));
    assert_eq!(
        std::fs::read_dir(&setup.mountpoint)
            .expect("plain directory")
            .count(),
        0
    );
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(!ok, "a SIGKILLed server cannot exit successfully");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn fusectl_abort_fails_blocked_clients_and_the_server_exits_cleanly(transport: &str) {
    let setup = Setup::new("fault-abort");
    let server = setup.start(&[
        "--transport",
        transport,
        "--no-passthrough",
        "--attr-timeout",
        "0",
    ]);
    assert_eq!(server.ready_field("transport"), Some(transport));
    let pid = server.pid().expect("pid");
    let _cont = ContinueOnDrop(pid);
    let connection = testkit::connection_of(&setup.mountpoint).expect("connection number");

    let mut blocked = block_clients(&server, &setup, connection);
    testkit::abort_connection(connection).expect("abort through fusectl");
    // A new request on the aborted connection fails at once with ENOTCONN.
    let e = std::fs::metadata(setup.file(5)).expect_err("stat after abort");
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    // Over /dev/fuse every blocked client fails while the server is still stopped
    // (ECONNABORTED). Over io_uring, requests still queued fail at once (ENOTCONN), but a
    // request the kernel already dispatched to a ring entry is delivered by task work of the
    // stopped ring thread (DEFER_TASKRUN), and fails only once that thread runs (6.18).
    let (early, still) = blocked.collect(Duration::from_secs(2));
    eprintln!(
        "{} clients failed during the stop, {still} wait for the server",
        early.len()
    );
    if transport == "dev" {
        assert_eq!(
            still, 0,
            "clients blocked on an aborted /dev/fuse connection"
        );
    }
    // Resumed, the server sees the end on every /dev/fuse fd (ENODEV) and every ring entry
    // (ENOTCONN), unmounts and exits cleanly; every client has failed by then.
    fault::signal(pid, Signal::CONT).expect("SIGCONT");
    let mut errors: Vec<String> = early
        .iter()
        .map(|(op, r)| match r {
            Ok(v) => panic!("{op} succeeded ({v}) on an aborted connection"),
            Err(e) => fault::errno_name(e),
        })
        .collect();
    errors.extend(all_failed(blocked));
    let expected: &[&str] = match transport {
        "dev" => &["ECONNABORTED"],
        _ => &["ENOTCONN", "ECONNABORTED"],
    };
    assert!(
        errors.iter().all(|e| expected.contains(&e.as_str())),
        "{errors:?}"
    );

    wait_exit(&server);
    assert!(
        !testkit::is_mount_point(&setup.mountpoint),
        "mount left behind"
    );
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(ok, "the server failed after an abort: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Loads the mount with 6 clients for a while, then applies `fault` (which must make the
/// server exit) and checks that clients and server end within the deadline, the server with
/// success. Returns the load report and the server's stderr.
fn fault_under_load(
    setup: &Setup,
    server: ExampleServer,
    fault: impl FnOnce(&ExampleServer),
) -> (fault::LoadReport, String) {
    let load = Load::start(&setup.mountpoint, &setup.tree.files, 6, 64 * 1024).expect("load");
    std::thread::sleep(Duration::from_millis(700));
    // On a slow machine (an emulated CPU under `cargo xtask vm-test`, a busy host) the clients
    // get more time to do real work before the fault; a mount that serves nothing still fails
    // the check below.
    fault::wait_until(Duration::from_secs(20), || load.rounds() > 50);
    assert!(load.all_running(), "a client ended early");
    fault(&server);
    let report = load.stop(DEADLINE).unwrap_or_else(|e| panic!("{e}"));
    wait_exit(&server);
    assert!(
        !testkit::is_mount_point(&setup.mountpoint),
        "mount left behind"
    );
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(ok, "the server did not exit cleanly: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(report.rounds > 50, "the load barely ran: {report:?}");
    assert_eq!(report.errors.get("corrupt"), None, "{report:?}");
    assert_eq!(report.errors.get("size"), None, "{report:?}");
    eprintln!("load: {report:?}");
    (report, stderr)
}

/// Errors a client may see when the mount goes away under it: the path no longer exists
/// (the mount point is an empty directory again) or the connection ended mid-request.
fn only_unmount_errors(report: &fault::LoadReport) {
    for kind in report.errors.keys() {
        assert!(
            ["ENOENT", "ENOTCONN", "ECONNABORTED", "ENODEV"].contains(&kind.as_str()),
            "unexpected client error {kind}: {report:?}"
        );
    }
}

fn unmount_under_load_ends_clients_and_server_cleanly(transport: &str) {
    let variants: [&[&str]; 2] = [&["--no-passthrough"], &["--attr-timeout", "0"]];
    for extra in variants {
        let setup = Setup::new("fault-umount");
        let mut args = vec!["--transport", transport];
        args.extend_from_slice(extra);
        let server = setup.start(&args);
        assert_eq!(server.ready_field("transport"), Some(transport));
        let mountpoint = setup.mountpoint.clone();
        let (report, _) = fault_under_load(&setup, server, |_| {
            // `umount -l` from outside, as an administrator would.
            rustix::mount::unmount(&mountpoint, rustix::mount::UnmountFlags::DETACH)
                .expect("detach the mount");
        });
        only_unmount_errors(&report);
    }
}

fn sigterm_under_load_unmounts_and_exits_cleanly(transport: &str) {
    let setup = Setup::new("fault-term");
    let server = setup.start(&["--transport", transport, "--no-passthrough"]);
    assert_eq!(server.ready_field("transport"), Some(transport));
    let (report, stderr) = fault_under_load(&setup, server, |server| {
        fault::signal(server.pid().expect("pid"), Signal::TERM).expect("SIGTERM");
    });
    only_unmount_errors(&report);
    assert!(stderr.contains("unmounting"), "{stderr}");
}

fn the_servers_fds_return_to_their_baseline_once_the_kernel_forgets(transport: &str) {
    let variants: [&[&str]; 2] = [&["--no-passthrough"], &["--attr-timeout", "1"]];
    for extra in variants {
        let setup = Setup::new("fault-fds");
        let mut args = vec!["--transport", transport];
        args.extend_from_slice(extra);
        let server = setup.start(&args);
        assert_eq!(server.ready_field("transport"), Some(transport));
        let pid = server.pid().expect("pid");
        // A first answered request: every queue thread has registered its ring by now (the
        // kernel holds requests until all queues are registered).
        std::fs::metadata(&setup.mountpoint).expect("stat the root");
        let baseline = fault::fd_count(pid).expect("fd count");
        let load = Load::start(&setup.mountpoint, &setup.tree.files, 4, 64 * 1024).expect("load");
        // The peak while loading (other tests may drop caches at any time).
        let mut busy = 0;
        for _ in 0..50 {
            busy = busy.max(fault::fd_count(pid).unwrap_or(0));
            std::thread::sleep(Duration::from_millis(10));
        }
        let report = load.stop(DEADLINE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report.error_count(), 0, "{report:?}");
        assert!(busy > baseline, "the load opened no inode ({busy} fds)");
        // Evict the mount's dentries and inodes: the kernel sends FORGET for each, and the
        // server must close every inode fd (and, with passthrough, every backing id).
        let settled = fault::wait_until(DEADLINE, || {
            let _ = std::fs::write("/proc/sys/vm/drop_caches", "2");
            fault::fd_count(pid) == Some(baseline)
        });
        assert!(
            settled,
            "{args:?}: the server holds {:?} fds after FORGET, {baseline} at start",
            fault::fd_count(pid)
        );
        let (ok, _, stderr) = server.stop().expect("stop");
        assert!(ok, "{stderr}");
    }
}

/// One test per fault and transport: `<fault>_over_dev` and `<fault>_over_uring`.
macro_rules! per_transport {
    ($($fault:ident => $dev:ident, $uring:ident;)*) => {$(
        #[test]
        fn $dev() {
            let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
                return;
            };
            $fault("dev");
        }

        #[test]
        fn $uring() {
            let Some(_t) = testkit::kernel_test(Needs::Uring) else {
                return;
            };
            $fault("uring");
        }
    )*};
}

per_transport! {
    killed_server_fails_blocked_clients_and_its_mount_goes_away =>
        killed_server_over_dev, killed_server_over_uring;
    fusectl_abort_fails_blocked_clients_and_the_server_exits_cleanly =>
        fusectl_abort_over_dev, fusectl_abort_over_uring;
    unmount_under_load_ends_clients_and_server_cleanly =>
        unmount_under_load_over_dev, unmount_under_load_over_uring;
    sigterm_under_load_unmounts_and_exits_cleanly =>
        sigterm_under_load_over_dev, sigterm_under_load_over_uring;
    the_servers_fds_return_to_their_baseline_once_the_kernel_forgets =>
        fds_back_to_baseline_after_forget_over_dev, fds_back_to_baseline_after_forget_over_uring;
}

#[test]
fn register_failing_for_one_queue_ends_the_server_with_a_clear_error() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let setup = Setup::new("fault-register");
    let queues = fuse_uring::queue_count().expect("possible CPUs");
    let bad = (queues - 1).to_string();
    // The example's fault switch: queue `bad` registers payload buffers one page short.
    let server = ExampleServer::start_with_env(
        Path::new(BIN),
        setup.tree.path(),
        &setup.mountpoint,
        &["--transport", "uring", "--no-passthrough"],
        &[("PASSTHROUGHFS_FAULT_SHORT_PAYLOAD_QID", bad.as_str())],
    )
    .expect("passthroughfs starts");
    // Clients keep going while the server notices; none may hang.
    let load = Load::start(&setup.mountpoint, &setup.tree.files, 3, 64 * 1024).expect("load");
    wait_exit(&server);
    let report = load.stop(DEADLINE).unwrap_or_else(|e| panic!("{e}"));
    eprintln!("load: {report:?}");
    only_unmount_errors(&report);
    assert_eq!(report.errors.get("corrupt"), None, "{report:?}");
    assert!(
        !testkit::is_mount_point(&setup.mountpoint),
        "mount left behind"
    );
    let (ok, _, stderr) = server.stop().expect("reap");
    eprintln!("{stderr}");
    assert!(!ok, "the server must fail when a queue cannot register");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("queue {bad}"))
            && stderr.contains("FUSE_IO_URING_CMD_REGISTER")
            && stderr.contains("os error 22"),
        "the error does not say which queue failed and why: {stderr}"
    );
}
