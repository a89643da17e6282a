//! SIGTERM and SIGINT stop a session that asked for it (`Session::stop_on_signals`): the
//! hello example (built by `cargo test` next to this test) is started on a fresh mount point,
//! read, sent the signal, and must exit successfully within seconds, unmounted, over each
//! transport. Needs root and `/dev/fuse` (io_uring for that transport), else a printed skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use testkit::Needs;

/// `target/<profile>/examples/hello`, built with this test.
fn example() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.parent()?.join("examples/hello");
    path.is_file().then_some(path)
}

fn stops_on(signal: Signal, transport_arg: Option<&str>, expected: &str, tag: &str) {
    let Some(hello) = example() else {
        panic!("the hello example is not built next to this test (cargo test builds it)");
    };
    let dir = testkit::temp_dir(tag).expect("mount point");
    let mut child = Command::new(&hello)
        .arg(&dir)
        .args(transport_arg)
        .stdout(Stdio::piped())
        .spawn()
        .expect("hello starts");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !testkit::is_mount_point(&dir) {
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = std::fs::remove_dir(&dir);
            panic!("hello did not mount");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let text = std::fs::read_to_string(dir.join("hello.txt"));
    let pid = Pid::from_raw(child.id() as i32).expect("pid");
    kill_process(pid, signal).expect("signal");
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let exited = child.try_wait().ok().flatten().is_some();
    if !exited {
        let _ = child.kill();
        let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
    }
    let out = child.wait_with_output().expect("wait");
    let mounted = testkit::is_mount_point(Path::new(&dir));
    let _ = std::fs::remove_dir(&dir);
    assert_eq!(text.expect("hello.txt"), "Hello, world!\n");
    assert!(exited, "hello did not exit within 10 s of {signal:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{:?}: {stdout}", out.status);
    assert!(stdout.contains(expected), "{stdout}");
    assert!(!mounted, "left mounted");
}

#[test]
fn sigterm_stops_a_dev_session() {
    let Some(_test) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    stops_on(Signal::TERM, Some("dev"), "served over Dev", "signal-dev");
}

#[test]
fn sigint_stops_a_uring_session() {
    let Some(_test) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    stops_on(Signal::INT, None, "served over Uring", "signal-uring");
}
