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

mod common;

use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use common::user::{self, User};
use fuse_dev::{MountOptions, UnmountOutcome};
use testkit::Needs;

fn main() -> ExitCode {
    if let Some((job, dir)) = user::child_mode() {
        return match child(&job, &dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("child {job}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    user::harness("unprivileged_mount_through_fusermount3", parent)
}

/// Runs as the unprivileged user.
fn child(job: &str, dir: &Path) -> Result<(), String> {
    if rustix::process::geteuid().is_root() {
        return Err("the child must not run as root".into());
    }
    let options = MountOptions::new()
        .subtype("fusedevuser")
        .auto_unmount(job == "auto_unmount");
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
    let getattrs = counts.getattr.load(Ordering::Relaxed);
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

fn parent() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let Some(user) = User::create() else {
        return;
    };
    let mut failures = Vec::new();
    for job in ["unmount", "auto_unmount"] {
        let dir = user.mount_dir("unpriv-mnt");
        let out = user.run(job, &dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let left = user::clean_up(&dir);
        if !out.status.success()
            || !stdout.contains("GETATTR served")
            || !stdout.contains("child: unmounted")
            || left
        {
            failures.push(format!(
                "{job}: status {}, mount left behind: {left}",
                out.status
            ));
        }
    }
    drop(user);
    assert!(failures.is_empty(), "{failures:#?}");
}
