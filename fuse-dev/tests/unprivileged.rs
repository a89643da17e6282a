//! Kernel test of mounting without root through `fusermount3`.
//!
//! The test (as root) creates a throwaway user, copies this test binary where that user can
//! run it, and runs it again as the user (`setpriv`, util-linux). The child mounts through
//! `fusermount3`, answers INIT, serves a GETATTR that one of its own threads causes, and
//! unmounts through `fusermount3 -u -z`; a second child does the same with `auto_unmount`
//! (`fusermount3` stays alive beside it until the guard releases it). The parent checks both
//! from `/proc/self/mountinfo`, cleans up whatever is left, and removes the user.
//!
//! Not tested: `auto_unmount` after the server dies. `fusermount3` 3.14 then unmounts only if
//! opening the mount point fails with `ENOTCONN`, but it opens it as root, and without
//! `allow_other` the kernel answers root `EACCES` first (observed on 6.18): the dead mount
//! stays.
//!
//! `harness = false`: one binary that is either the parent or, with `FUSE_DEV_CHILD` set, a
//! child.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use fuse_dev::{MountOptions, UnmountOutcome};

const CHILD_ENV: &str = "FUSE_DEV_CHILD";
const SUBTYPE: &str = "fusedevuser";

fn main() -> ExitCode {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        let dir = PathBuf::from(std::env::var_os("FUSE_DEV_CHILD_DIR").expect("dir"));
        return match child(&mode, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child {mode}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // Arguments from cargo test (filters, --nocapture...) are accepted and ignored, except
    // that a filter which does not match our name runs nothing.
    let name = "unprivileged_mount_through_fusermount3";
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
        println!("0 passed, 0 failed");
        return ExitCode::SUCCESS;
    }
    println!("test {name} ...");
    let result = std::panic::catch_unwind(parent);
    match result {
        Ok(()) => {
            println!("test {name} ... ok\n1 passed, 0 failed");
            ExitCode::SUCCESS
        }
        Err(_) => {
            println!("test {name} ... FAILED\n0 passed, 1 failed");
            ExitCode::FAILURE
        }
    }
}

/// Runs as the unprivileged user.
fn child(mode: &str, dir: &Path) -> Result<(), String> {
    if rustix::process::geteuid().is_root() {
        return Err("the child must not run as root".into());
    }
    let auto = mode == "auto_unmount";
    let options = MountOptions::new().subtype(SUBTYPE).auto_unmount(auto);
    let (dev, mut mount) =
        fuse_dev::Mount::fusermount(dir, &options).map_err(|e| format!("mount: {e}"))?;
    if !mount.is_fusermount() || mount.identity().device().major != 0 {
        return Err(format!("unexpected mount {:?}", mount.identity()));
    }
    println!(
        "child: mounted {} as {} (connection {:?})",
        mount.mount_point().display(),
        mount.identity().device(),
        mount.identity().connection_number()
    );
    let mut chan = fuse_dev::Channel::new(dev);
    let negotiated = chan
        .handshake(&fuse_dev::fuse_wire::InitConfig::default())
        .map_err(|e| format!("INIT: {e}"))?;
    println!("child: INIT answered (minor {})", negotiated.minor());
    let counts = Arc::new(common::Counts::default());
    let server = {
        let counts = counts.clone();
        std::thread::spawn(move || common::serve(&chan, &counts))
    };
    let meta = fs::metadata(mount.mount_point()).map_err(|e| format!("stat: {e}"))?;
    let getattrs = counts.getattr.load(std::sync::atomic::Ordering::Relaxed);
    if !meta.is_dir() || getattrs == 0 {
        return Err(format!(
            "stat: is_dir {} after {getattrs} GETATTR",
            meta.is_dir()
        ));
    }
    println!("child: GETATTR served ({getattrs})");
    match mount.unmount() {
        Ok(UnmountOutcome::Unmounted) => println!("child: unmounted"),
        other => return Err(format!("unmount: {other:?}")),
    }
    match server.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("server: {e}")),
        Err(_) => Err("server panicked".into()),
    }
}

/// Removes the user on drop.
struct User(String);

impl Drop for User {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

/// Whether a mount sits at `path` (an independent view: mountinfo).
fn mounted_at(path: &Path) -> bool {
    let want = path.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

fn parent() {
    if !testkit::require_kernel() {
        return;
    }
    let program = match fuse_dev::find_fusermount() {
        Ok(p) => p,
        Err(e) => {
            testkit::skip(&format!("{e} (cargo xtask setup installs it)"));
            return;
        }
    };
    for tool in ["useradd", "userdel", "setpriv"] {
        if Command::new(tool)
            .arg("--help")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_err()
        {
            testkit::skip(&format!(
                "{tool} is missing (apt-get install passwd util-linux)"
            ));
            return;
        }
    }
    let dev_mode = fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o777;
    if dev_mode & 0o006 != 0o006 {
        testkit::skip(&format!(
            "/dev/fuse has mode {dev_mode:o}: other users cannot open it (udev sets 0666; \
             cargo xtask setup does it: chmod 666 /dev/fuse)"
        ));
        return;
    }
    println!("fusermount3: {}", program.display());
    let name = format!("fdt{}", std::process::id());
    let status = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            &name,
        ])
        .status()
        .expect("useradd");
    assert!(status.success(), "useradd {name}: {status}");
    let user = User(name);
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, &user.0]).output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (uid, gid) = (id("-u"), id("-g"));

    // The test binary, where the user can run it.
    let bin_dir = testkit::temp_dir("unpriv-bin").unwrap();
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let exe = bin_dir.join("child");
    fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();

    let mut failures = Vec::new();
    for mode in ["unmount", "auto_unmount"] {
        let dir = testkit::temp_dir("unpriv-mnt").unwrap();
        let dir = fs::canonicalize(dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(&exe)
            .env(CHILD_ENV, mode)
            .env("FUSE_DEV_CHILD_DIR", &dir)
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("setpriv");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        print!("{stdout}");
        eprint!("{stderr}");
        let left = mounted_at(&dir);
        if left {
            // Clean up: only a FUSE mount of ours can be here (the directory is fresh).
            let _ = rustix::mount::unmount(&dir, rustix::mount::UnmountFlags::DETACH);
        }
        let _ = fs::remove_dir(&dir);
        let expected = "child: unmounted";
        if !out.status.success()
            || !stdout.contains("GETATTR served")
            || !stdout.contains(expected)
            || left
        {
            failures.push(format!(
                "{mode}: status {}, mount left behind: {left}",
                out.status
            ));
        }
    }
    let _ = fs::remove_file(&exe);
    let _ = fs::remove_dir(&bin_dir);
    drop(user);
    assert!(failures.is_empty(), "{failures:#?}");
}
