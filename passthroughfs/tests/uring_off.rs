//! FUSE-over-io_uring switched off (`/sys/module/fuse/parameters/enable_uring` = N): the
//! library and the example say so, naming the switch, and the `/dev/fuse` path works.
//!
//! The switch is global: while it is off, every FUSE connection on the machine is set up
//! without io_uring. This is its own test binary (cargo runs test binaries one after the
//! other, so nothing else of the workspace's tests runs meanwhile), it holds an exclusive
//! lock on `/tmp/fuse-testkit-enable_uring.lock` while the switch is off, keeps it off for
//! the few INITs that need it (well under a second), and turns it back on when dropped,
//! also on failure.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fuse_uring::{Queue, QueueBuffers, QueueConfig, Unsupported, UringSupport};
use fuse_wire::init_flags;
use testkit::example::ExampleServer;
use testkit::fault::SourceTree;
use testkit::{InitOptions, Needs, Session};

const BIN: &str = env!("CARGO_BIN_EXE_passthroughfs");
const KNOB: &str = "/sys/module/fuse/parameters/enable_uring";

/// `enable_uring` = N while alive (under the lock); back to Y when dropped.
struct UringOff {
    _lock: std::fs::File,
    on: bool,
}

impl UringOff {
    fn new() -> UringOff {
        let lock = std::fs::File::create("/tmp/fuse-testkit-enable_uring.lock").expect("lock");
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).expect("flock");
        std::fs::write(KNOB, "N").expect("switch io_uring off");
        UringOff {
            _lock: lock,
            on: false,
        }
    }

    fn restore(&mut self) {
        if !self.on {
            std::fs::write(KNOB, "Y").expect("switch io_uring back on");
            self.on = true;
        }
    }
}

impl Drop for UringOff {
    fn drop(&mut self) {
        if !self.on {
            let _ = std::fs::write(KNOB, "Y");
        }
    }
}

#[test]
fn with_enable_uring_off_library_and_example_say_so_and_dev_fuse_works() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let tree = SourceTree::create("uring-off", 6, &[10, 100_000]).expect("tree");
    let mp_uring = testkit::temp_dir("uring-off-u").expect("mount point");
    let mp_auto = testkit::temp_dir("uring-off-a").expect("mount point");
    let mut off = UringOff::new();

    // --- the library --------------------------------------------------------------------
    assert_eq!(fuse_uring::uring_support(), UringSupport::Disabled);
    assert!(
        fuse_uring::uring_support()
            .to_string()
            .contains("echo Y > /sys/module/fuse/parameters/enable_uring")
    );
    let mut opts = InitOptions::default();
    opts.want |= init_flags::OVER_IO_URING;
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev.clone(), &opts).expect("mount and INIT");
    assert_eq!(session.negotiated.offered & init_flags::OVER_IO_URING, 0);
    let e = fuse_uring::check_init(&session.negotiated.kernel).expect_err("not offered");
    assert_eq!(e, Unsupported::Disabled);
    assert!(e.to_string().contains("enable_uring"), "{e}");
    // A server that registers anyway gets EOPNOTSUPP, reported as "unavailable".
    let payload = fuse_uring::payload_size(&session.negotiated.init_out);
    let dev = fuse_uring::FuseFd::dup(dev.as_fd()).expect("/dev/fuse");
    let buffers = QueueBuffers::new(QueueConfig::new(0, 1, payload, dev)).expect("buffers");
    let queue =
        Queue::new(buffers, fuse_uring::ring_builder().build(1).expect("ring")).expect("queue");
    queue.register_all().expect("submit REGISTER");
    let mut done = None;
    for _ in 0..100 {
        queue.wait(Some(Duration::from_millis(50))).expect("wait");
        if let Some(d) = queue.next_completion() {
            done = Some(d);
            break;
        }
    }
    let e = done
        .expect("REGISTER completes")
        .result
        .expect_err("io_uring is off");
    assert!(e.is_uring_unavailable(), "{e}");
    assert!(e.to_string().contains("enable_uring"), "{e}");
    drop(queue);
    session.finish().expect("unmount");

    // --- the example --------------------------------------------------------------------
    let out = std::process::Command::new(BIN)
        .args(["--transport", "uring"])
        .arg(tree.path())
        .arg(&mp_uring)
        .output()
        .expect("run passthroughfs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("--transport uring with io_uring off: {stderr}");
    assert!(
        !out.status.success(),
        "--transport uring must fail: {stderr}"
    );
    assert!(
        stderr.contains("echo Y > /sys/module/fuse/parameters/enable_uring"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(!testkit::is_mount_point(&mp_uring), "mount left behind");

    let server = ExampleServer::start(Path::new(BIN), tree.path(), &mp_auto, &["--stats"])
        .expect("passthroughfs --transport auto starts");
    // Its INIT is done: the switch can go back on; this connection stays on /dev/fuse.
    off.restore();
    eprintln!("--transport auto with io_uring off: {}", server.ready);
    assert_eq!(
        server.ready_field("transport"),
        Some("dev"),
        "{}",
        server.ready
    );
    for (rel, data) in tree.files.iter() {
        assert!(
            std::fs::read(mp_auto.join(rel)).expect("read through /dev/fuse") == *data,
            "{} differs",
            rel.display()
        );
    }
    let (ok, stats, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    assert_eq!(
        testkit::example::stat_value(&stats, "uring_requests"),
        Some(0),
        "{stats}"
    );
    assert!(!testkit::is_mount_point(&mp_auto));
    let _ = std::fs::remove_dir(&mp_uring);
    let _ = std::fs::remove_dir(&mp_auto);
}
