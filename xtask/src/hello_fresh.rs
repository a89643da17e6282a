//! `cargo xtask hello-fresh`: the hello-world server of fuse-session's crate docs
//! (`fuse-session/examples/hello.rs`), copied into a new cargo project outside the workspace
//! with path dependencies on `fuse-session`, `fuse-dev` and `fuse-wire`, as a user would
//! start; built with
//! the crates' default features; and, as root, run for real: mounted on a temporary
//! directory, listed and read, unmounted, its exit and transport checked.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{is_root, run};

const EXPECTED: &str = "Hello, world!\n";

pub(crate) fn hello_fresh(root: &Path) -> Result<(), String> {
    let example = root.join("fuse-session/examples/hello.rs");
    let source = fs::read_to_string(&example)
        .map_err(|e| format!("cannot read {}: {e}", example.display()))?;
    // What the user's code must be: short, and free of `unsafe`.
    let lines = source.lines().count();
    if lines >= 120 {
        return Err(format!(
            "{} has {lines} lines; the limit is under 120",
            example.display()
        ));
    }
    if source.contains("unsafe") {
        return Err(format!("{} contains `unsafe`", example.display()));
    }
    println!("xtask: hello-fresh: {} lines, no unsafe", lines);

    let project = std::env::temp_dir().join(format!("fuse-hello-fresh-{}", std::process::id()));
    let result = build_and_run(root, &project, &source);
    let _ = fs::remove_dir_all(&project);
    result
}

fn build_and_run(root: &Path, project: &Path, source: &str) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    fs::create_dir_all(project.join("src")).map_err(|e| io("create the project", e))?;
    let manifest = format!(
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n\
         [dependencies]\nfuse-session = {{ path = {:?} }}\nfuse-dev = {{ path = {:?} }}\n\
         fuse-wire = {{ path = {:?} }}\nlibc = \"0.2\"\n\n\
         # Not part of any workspace.\n[workspace]\n",
        root.join("fuse-session"),
        root.join("fuse-dev"),
        root.join("fuse-wire"),
    );
    fs::write(project.join("Cargo.toml"), manifest).map_err(|e| io("write Cargo.toml", e))?;
    fs::write(project.join("src/main.rs"), source).map_err(|e| io("write main.rs", e))?;
    // The workspace's lock file: the versions the workspace tests, and no network needed.
    fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock"))
        .map_err(|e| io("copy Cargo.lock", e))?;
    let target = root.join("target/hello-fresh");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo)
        .current_dir(project)
        .args(["build", "--offline"])
        .env("CARGO_TARGET_DIR", &target))?;
    let binary = target.join("debug/hello");
    println!("xtask: hello-fresh: built {}", binary.display());

    if !is_root() || !Path::new("/dev/fuse").exists() {
        println!("xtask: hello-fresh: not root or no /dev/fuse: built, not run");
        return Ok(());
    }
    let uring = testkit::uring_enabled();
    // As the example prints them (`Transport`'s Debug names).
    let mut transports = vec![("Dev", true)];
    if uring {
        transports.push(("Uring", false));
    }
    for (transport, dev_only) in transports {
        serve_once(project, &binary, transport, dev_only)?;
    }
    Ok(())
}

/// Runs the built server on a fresh mount point (`dev_only`: with its `dev` argument),
/// lists and reads the mount, unmounts it, and checks the server's exit and transport.
fn serve_once(
    project: &Path,
    binary: &Path,
    transport: &str,
    dev_only: bool,
) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    let mnt = project.join("mnt");
    fs::create_dir_all(&mnt).map_err(|e| io("create the mount point", e))?;
    let parent_dev = fs::metadata(project).map_err(|e| io("stat", e))?.dev();
    let mut child = Command::new(binary)
        .arg(&mnt)
        .args(dev_only.then_some("dev"))
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| io("start hello", e))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mounted = loop {
        if fs::metadata(&mnt).is_ok_and(|m| m.dev() != parent_dev) {
            break true;
        }
        if Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let listing = fs::read_dir(&mnt).map(|d| {
        d.filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Vec<_>>()
    });
    let text = fs::read_to_string(mnt.join("hello.txt"));
    if mounted {
        let _ = rustix::mount::unmount(&mnt, rustix::mount::UnmountFlags::DETACH);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
    }
    let out = child
        .wait_with_output()
        .map_err(|e| io("wait for hello", e))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    if !mounted {
        return Err("hello did not mount within 10 s".into());
    }
    if listing.as_deref().map_err(|e| e.to_string()) != Ok(&["hello.txt".to_owned()][..]) {
        return Err(format!("listing of the mount: {listing:?}"));
    }
    if text.as_deref().map_err(|e| e.to_string()) != Ok(EXPECTED) {
        return Err(format!("hello.txt: {text:?}"));
    }
    if !out.status.success() || !stdout.contains(&format!("served over {transport}")) {
        return Err(format!(
            "hello ended with {} and printed {stdout:?}",
            out.status
        ));
    }
    println!("xtask: hello-fresh: a fresh project served hello.txt over {transport}");
    Ok(())
}
