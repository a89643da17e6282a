//! The example server against a real tree (this workspace's own sources), for each transport
//! and data path: contents, metadata and listings equal, and `--stats` shows that reads went
//! through passthrough and requests through the ring.

use std::path::{Path, PathBuf};

use testkit::example::{ExampleServer, stat_value};
use testkit::{Feature, Needs};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// Mounts the workspace at a temporary directory with `args`, compares the trees, stops the
/// server and returns (ready line, stats output).
fn mirror_and_compare(args: &[&str]) -> (String, String) {
    let source = workspace_root();
    let mountpoint = testkit::temp_dir("mirror").expect("mount point");
    let server = ExampleServer::start(
        Path::new(env!("CARGO_BIN_EXE_passthroughfs")),
        &source,
        &mountpoint,
        args,
    )
    .expect("passthroughfs starts");
    let ready = server.ready.clone();
    let compared = testkit::tree::compare(&source, &mountpoint, &["target", ".git"])
        .unwrap_or_else(|e| panic!("mirror differs ({ready}): {e}"));
    assert!(compared.files > 20, "too few files compared: {compared:?}");
    assert!(
        compared.dirs > 5,
        "too few directories compared: {compared:?}"
    );
    let (ok, stdout, stderr) = server.stop().expect("stop");
    assert!(ok, "passthroughfs failed: {stderr}");
    let _ = std::fs::remove_dir(&mountpoint);
    assert!(
        !std::fs::read_to_string("/proc/self/mounts")
            .expect("mounts")
            .contains(mountpoint.to_str().expect("utf8")),
        "mount left behind"
    );
    eprintln!("{ready}\n{compared:?}\n{stdout}");
    // Every file was opened and closed, read-only: FOPEN_NOFLUSH spares the FLUSHes.
    assert_eq!(stat_value(&stdout, "flush_requests"), Some(0), "{stdout}");
    (ready, stdout)
}

fn field<'a>(ready: &'a str, key: &str) -> &'a str {
    ready
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or("")
}

#[test]
fn dev_transport_with_passthrough() {
    let Some(t) = testkit::kernel_test(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    let (ready, stats) = mirror_and_compare(&["--transport", "dev", "--stats"]);
    assert_eq!(field(&ready, "transport"), "dev");
    assert_eq!(
        field(&ready, "minor"),
        caps.init_minor.to_string(),
        "{ready}"
    );
    if !caps.at_least(testkit::kernel::PASSTHROUGH_SINCE) {
        // Before Linux 6.9: passthrough asked for but not offered, so every read is served.
        assert_eq!(field(&ready, "passthrough"), "off", "{ready}");
        assert!(
            stat_value(&stats, "read_requests").unwrap_or(0) > 20,
            "{stats}"
        );
        assert_eq!(stat_value(&stats, "passthrough_opens"), Some(0), "{stats}");
        return;
    }
    if !t.check(Needs::Passthrough) {
        return;
    }
    assert_eq!(field(&ready, "passthrough"), "on", "{ready}");
    assert_eq!(stat_value(&stats, "read_requests"), Some(0), "{stats}");
    assert!(
        stat_value(&stats, "passthrough_opens").unwrap_or(0) > 20,
        "{stats}"
    );
    assert_eq!(
        stat_value(&stats, "passthrough_fallbacks"),
        Some(0),
        "{stats}"
    );
}

#[test]
fn dev_transport_served_reads() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let (ready, stats) = mirror_and_compare(&["--transport", "dev", "--no-passthrough", "--stats"]);
    assert_eq!(field(&ready, "transport"), "dev");
    assert_eq!(field(&ready, "passthrough"), "off");
    assert!(
        stat_value(&stats, "read_requests").unwrap_or(0) > 20,
        "{stats}"
    );
    assert_eq!(stat_value(&stats, "passthrough_opens"), Some(0), "{stats}");
}

#[test]
fn uring_transport_with_passthrough() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let (ready, stats) = mirror_and_compare(&["--transport", "uring", "--stats"]);
    assert_eq!(field(&ready, "transport"), "uring");
    assert_eq!(field(&ready, "passthrough"), "on");
    assert_eq!(
        stat_value(&stats, "dev_ordinary_requests"),
        Some(0),
        "{stats}"
    );
    assert!(
        stat_value(&stats, "uring_requests").unwrap_or(0) > 50,
        "{stats}"
    );
    assert_eq!(stat_value(&stats, "read_requests"), Some(0), "{stats}");
    assert!(
        stat_value(&stats, "passthrough_opens").unwrap_or(0) > 20,
        "{stats}"
    );
}

#[test]
fn uring_transport_served_reads() {
    let Some(_t) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    let (ready, stats) =
        mirror_and_compare(&["--transport", "uring", "--no-passthrough", "--stats"]);
    assert_eq!(field(&ready, "transport"), "uring");
    assert_eq!(
        stat_value(&stats, "dev_ordinary_requests"),
        Some(0),
        "{stats}"
    );
    assert!(
        stat_value(&stats, "read_requests").unwrap_or(0) > 20,
        "{stats}"
    );
}

/// `--transport auto` (the default) takes io_uring where the kernel offers it and `/dev/fuse`
/// elsewhere, and passthrough where the kernel has it; the mirror is exact either way.
#[test]
fn auto_transport_uses_what_the_kernel_offers() {
    let Some(t) = testkit::kernel_test(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    let uring = caps.init_minor >= 42 && testkit::uring_enabled();
    let (ready, stats) = mirror_and_compare(&["--transport", "auto", "--stats"]);
    assert_eq!(
        field(&ready, "transport"),
        if uring { "uring" } else { "dev" },
        "{ready} ({caps})"
    );
    assert_eq!(
        field(&ready, "minor"),
        caps.init_minor.to_string(),
        "{ready}"
    );
    if caps.passthrough() {
        assert_eq!(field(&ready, "passthrough"), "on", "{ready}");
        assert_eq!(stat_value(&stats, "read_requests"), Some(0), "{stats}");
    } else {
        assert_eq!(field(&ready, "passthrough"), "off", "{ready}");
        assert!(
            stat_value(&stats, "read_requests").unwrap_or(0) > 20,
            "{stats}"
        );
    }
    if uring {
        assert_eq!(
            stat_value(&stats, "dev_ordinary_requests"),
            Some(0),
            "{stats}"
        );
    } else {
        assert_eq!(
            stat_value(&stats, "uring_requests").unwrap_or(0),
            0,
            "{stats}"
        );
    }
}

/// Before Linux 6.14, `--transport uring` is a one-line error naming what is needed, and
/// nothing stays mounted.
#[test]
fn uring_transport_on_a_kernel_without_it_is_a_clear_error() {
    let Some(_t) = testkit::kernel_test(Needs::Without(Feature::Uring)) else {
        return;
    };
    let mountpoint = testkit::temp_dir("mirror-no-uring").expect("mount point");
    let _guard = testkit::UnmountOnDrop(mountpoint.clone());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_passthroughfs"))
        .args(["--transport", "uring"])
        .arg(workspace_root())
        .arg(&mountpoint)
        .output()
        .expect("run passthroughfs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("does not offer FUSE-over-io_uring"),
        "{stderr}"
    );
    assert!(stderr.contains("6.14"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(!testkit::is_mount_point(&mountpoint), "left mounted");
    let _ = std::fs::remove_dir(&mountpoint);
}

#[test]
fn bad_input_is_a_one_line_error_and_mounts_nothing() {
    let bin = env!("CARGO_BIN_EXE_passthroughfs");
    let tmp = testkit::temp_dir("badinput").expect("tmp");
    let file = tmp.join("file");
    std::fs::write(&file, b"x").expect("file");
    let cases: [(&[&str], &str); 5] = [
        (
            &["/nonexistent-source", tmp.to_str().expect("utf8")],
            "source /nonexistent-source",
        ),
        (
            &[tmp.to_str().expect("utf8"), file.to_str().expect("utf8")],
            "is not a directory",
        ),
        (
            &[tmp.to_str().expect("utf8")],
            "expected SOURCE and MOUNTPOINT",
        ),
        (
            &["--transport", "carrier-pigeon", "a", "b"],
            "expected uring, dev or auto",
        ),
        (&["--attr-timeout", "-1", "a", "b"], "expected seconds >= 0"),
    ];
    for (args, expected) in cases {
        let out = std::process::Command::new(bin)
            .args(args)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: not one line: {stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
