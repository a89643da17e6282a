//! Kernel test of the hello-world server of the crate docs (`examples/hello.rs`, compiled
//! into this test as a module: the same code), for real, over both transports of a session: as root
//! (mount(2)) and as a throwaway unprivileged user (fusermount3). Each run mounts, lists the
//! directory, reads the file, unmounts (umount2 as root, `fusermount3 -u -z` as the user)
//! and checks that the server ended on its own and said which transport carried the
//! requests.
//!
//! `harness = false`: the unprivileged runs are this binary again, run as the user.

// The unprivileged-user harness is fuse-dev's (the same workspace).
#[path = "../../fuse-dev/tests/common/mod.rs"]
mod common;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/hello.rs"]
mod hello;

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use common::user::{self, User};
use fuse_session::Transport;
use testkit::Needs;

fn main() -> ExitCode {
    if let Some((job, dir)) = user::child_mode() {
        return match exercise(&dir, &job, true) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child {job}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    user::harness("hello_world_over_both_transports", parent)
}

/// Serves `hello` at `dir` over `transport` (`io_uring` or `/dev/fuse`), checks what a
/// client sees, unmounts (`fusermount` true: through fusermount3), and checks the server's
/// end and transport.
fn exercise(dir: &Path, transport: &str, fusermount: bool) -> Result<(), String> {
    let server = {
        let dir = dir.to_owned();
        let chosen = if transport == "io_uring" {
            Transport::Uring
        } else {
            Transport::Dev
        };
        std::thread::spawn(move || hello::run(&dir, chosen).map_err(|e| e.to_string()))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fuse_dev::is_mount_point(dir).unwrap_or(false) && !server.is_finished() {
        if Instant::now() > deadline {
            return Err("not mounted after 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let names = fs::read_dir(dir).map(|d| {
        d.map(|e| e.map(|e| e.file_name().into_string().unwrap()))
            .collect::<Result<Vec<_>, _>>()
    });
    let text = fs::read_to_string(dir.join("hello.txt"));
    let missing = fs::metadata(dir.join("missing"))
        .map(drop)
        .map_err(|e| e.raw_os_error());
    let unmounted = if fusermount {
        Command::new("fusermount3")
            .args(["-u", "-z", "--"])
            .arg(dir)
            .status()
            .map_err(|e| e.to_string())
            .and_then(|s| s.success().then_some(()).ok_or(s.to_string()))
    } else {
        rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH).map_err(|e| e.to_string())
    };
    let served = server.join().map_err(|_| "server panicked".to_string())?;
    println!("{transport}: names {names:?}, text {text:?}, served {served:?}");
    unmounted.map_err(|e| format!("unmount: {e}"))?;
    if names
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?
        != ["hello.txt"]
    {
        return Err("wrong listing".into());
    }
    if text.map_err(|e| e.to_string())? != "Hello, world!\n" {
        return Err("wrong content".into());
    }
    if missing != Err(Some(rustix::io::Errno::NOENT.raw_os_error())) {
        return Err(format!("missing name: {missing:?}"));
    }
    let served = match served?.transport {
        Transport::Uring => "io_uring",
        Transport::Dev => "/dev/fuse",
        Transport::Auto => "neither",
    };
    if served == transport {
        Ok(())
    } else {
        Err(format!("served over {served}, expected {transport}"))
    }
}

fn parent() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut transports = vec!["/dev/fuse"];
    if testkit::uring_enabled() {
        transports.push("io_uring");
    } else {
        testkit::skip("FUSE-over-io_uring is off: the hello world runs over /dev/fuse only");
    }
    let mut failures = Vec::new();
    for transport in &transports {
        let dir = fs::canonicalize(testkit::temp_dir("hello-root").unwrap()).unwrap();
        let result = exercise(&dir, transport, false);
        let left = user::clean_up(&dir);
        if result.is_err() || left {
            failures.push(format!(
                "root, {transport}: {result:?}, left mounted: {left}"
            ));
        }
    }
    if let Some(user) = User::create() {
        for transport in &transports {
            let dir = user.mount_dir("hello-user");
            let out = user.run(transport, &dir);
            let left = user::clean_up(&dir);
            if !out.status.success() || left {
                failures.push(format!(
                    "user, {transport}: {}, left mounted: {left}",
                    out.status
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
