//! The baseline: libfuse's `passthrough_hp` example, the reference FUSE server in C++, built
//! on first use from Debian's `fuse3` source package of sid (the newest suite; 3.18 is the
//! first libfuse with FUSE-over-io_uring: `lib/fuse_uring.c`) and cached under
//! `target/bench/libfuse-<version>/`.
//!
//! - Fetching never touches the machine's apt configuration: a private sources list, lists
//!   directory and archive cache under `target/bench/libfuse-apt/` (`apt-get update`, then
//!   `apt-get source --download-only fuse3`, whose files apt checks against the signed
//!   Release file), unpacked with `dpkg-source -x`.
//! - Build tools from Debian, installed with apt-get when missing: meson, ninja, g++,
//!   pkg-config, liburing-dev and libnuma-dev (libfuse builds without io_uring, silently,
//!   when either library is missing: the build checks `HAVE_URING` and fails instead).
//! - How `passthrough_hp` 3.18 is driven (from its source): io_uring is a libfuse session
//!   option, `-o io_uring` (or `FUSE_URING_ENABLE=1`; default off, queue depth 8); passthrough
//!   is on by default (`--nopassthrough` turns it off; it also turns itself off, with a
//!   message on stderr, when the kernel refuses a backing file); `--nocache` sets attribute
//!   and entry timeouts to 0 (and answers read-only opens with `FOPEN_NOFLUSH`, without
//!   `FOPEN_KEEP_CACHE`); `--foreground` keeps it our child. It prints nothing when ready:
//!   the mount appearing in `/proc/self/mountinfo` and a first `stat` answered (which needs
//!   INIT done) mean ready. SIGTERM makes it leave its loop and unmount.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::proc::stop_requested;

use super::Failure;

/// The options every libfuse system gets (then `--nopassthrough` and `-o io_uring` by
/// system): the counterpart of the example's `--attr-timeout 0`, read-only like it, and the
/// same `allow_other` (passthrough_hp adds `default_permissions` itself, as the example has).
pub(crate) const COMMON_ARGS: [&str; 4] = ["--foreground", "--nocache", "-o", "ro,allow_other"];

/// The Debian suite the source comes from.
const SUITE: &str = "sid";

/// A built `passthrough_hp`.
#[derive(Debug, Clone)]
pub(crate) struct Build {
    pub(crate) binary: PathBuf,
    /// The Debian source version, for example `3.18.3-1`.
    pub(crate) version: String,
}

fn run_in(dir: &Path, cmd: &mut Command) -> Result<(), String> {
    cmd.current_dir(dir);
    crate::run(cmd)
}

/// The private apt options: sources list, lists and archive cache under `apt_dir`.
fn apt(apt_dir: &Path) -> Command {
    let mut cmd = Command::new("apt-get");
    let opt = |k: &str, v: &Path| format!("{k}={}", v.display());
    cmd.arg("-q")
        .arg("-o")
        .arg(opt("Dir::Etc::sourcelist", &apt_dir.join("sources.list")))
        .args(["-o", "Dir::Etc::sourceparts=-"])
        .arg("-o")
        .arg(opt("Dir::State::lists", &apt_dir.join("lists")))
        .arg("-o")
        .arg(opt("Dir::Cache::archives", &apt_dir.join("archives")))
        .args(["-o", "APT::Sandbox::User=root"]);
    cmd
}

/// Installs the build tools that are missing (as root, from Debian).
fn ensure_tools() -> Result<(), String> {
    let has = |cmd: &str, args: &[&str]| crate::succeeds(Command::new(cmd).args(args));
    let mut missing = Vec::new();
    for (ok, package) in [
        (has("meson", &["--version"]), "meson"),
        (has("ninja", &["--version"]), "ninja-build"),
        (has("g++", &["--version"]), "g++"),
        (has("pkg-config", &["--version"]), "pkg-config"),
        (has("dpkg-source", &["--version"]), "dpkg-dev"),
        (has("pkg-config", &["--exists", "liburing"]), "liburing-dev"),
        (has("pkg-config", &["--exists", "numa"]), "libnuma-dev"),
    ] {
        if !ok {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    crate::apt_install(&missing, "the build tools of the libfuse baseline")
}

/// Returns the cached build, or fetches and builds it (about half a minute).
pub(crate) fn ensure_built(bench_dir: &Path) -> Result<Build, String> {
    if let Some(build) = cached(bench_dir) {
        return Ok(build);
    }
    if !crate::is_root() {
        return Err("building it needs root (apt-get)".into());
    }
    let t = Instant::now();
    ensure_tools()?;
    let apt_dir = bench_dir.join("libfuse-apt");
    let fetch = apt_dir.join("fetch");
    for d in [
        apt_dir.join("lists/partial"),
        apt_dir.join("archives/partial"),
    ] {
        std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    if fetch.exists() {
        std::fs::remove_dir_all(&fetch).map_err(|e| format!("{}: {e}", fetch.display()))?;
    }
    std::fs::create_dir_all(&fetch).map_err(|e| format!("{}: {e}", fetch.display()))?;
    std::fs::write(
        apt_dir.join("sources.list"),
        format!(
            "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {SUITE} main\n"
        ),
    )
    .map_err(|e| format!("{}: {e}", apt_dir.display()))?;
    crate::run(apt(&apt_dir).arg("update"))?;
    run_in(
        &fetch,
        apt(&apt_dir).args(["source", "--download-only", "fuse3"]),
    )?;
    let dsc = std::fs::read_dir(&fetch)
        .map_err(|e| format!("{}: {e}", fetch.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "dsc"))
        .ok_or("apt-get source fetched no .dsc")?;
    // fuse3_3.18.3-1.dsc
    let version = dsc
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.strip_prefix("fuse3_"))
        .ok_or_else(|| format!("unexpected source file {}", dsc.display()))?
        .to_owned();
    let upstream = version.split('-').next().unwrap_or(&version);
    let dir = bench_dir.join(format!("libfuse-{upstream}"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // dpkg-source copies the tarballs next to the directory it unpacks into.
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let src = dir.join("src");
    run_in(
        &fetch,
        Command::new("dpkg-source")
            .args(["--no-check", "-x"])
            .arg(&dsc)
            .arg(&src),
    )?;
    if !src.join("lib/fuse_uring.c").exists() {
        return Err(format!(
            "fuse3 {version} of {SUITE} has no lib/fuse_uring.c: no io_uring support"
        ));
    }
    let build = dir.join("build");
    run_in(
        &src,
        Command::new("meson")
            .args(["setup", "--buildtype=debugoptimized"])
            .args([
                "-Dexamples=true",
                "-Dutils=false",
                "-Dtests=false",
                "-Denable-io-uring=true",
            ])
            .arg(&build),
    )?;
    let config = std::fs::read_to_string(build.join("fuse_config.h")).unwrap_or_default();
    if !config.contains("#define HAVE_URING") {
        return Err(
            "libfuse was configured without io_uring (liburing with SQE128 or libnuma not found)"
                .into(),
        );
    }
    run_in(
        &build,
        Command::new("ninja").args(["-C", ".", "example/passthrough_hp"]),
    )?;
    std::fs::write(dir.join("version"), format!("{version}\n"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let _ = std::fs::remove_dir_all(&fetch);
    println!(
        "bench: built libfuse {version} passthrough_hp in {:.0}s (cached in {})",
        t.elapsed().as_secs_f64(),
        dir.display()
    );
    cached(bench_dir).ok_or_else(|| "the build left no passthrough_hp".into())
}

/// A build made earlier: the newest `target/bench/libfuse-*/` with a binary and a version.
fn cached(bench_dir: &Path) -> Option<Build> {
    let mut builds: Vec<Build> = std::fs::read_dir(bench_dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libfuse-") && n != "libfuse-apt")
        })
        .filter_map(|dir| {
            let version = std::fs::read_to_string(dir.join("version")).ok()?;
            let binary = dir.join("build/example/passthrough_hp");
            binary.exists().then(|| Build {
                binary,
                version: version.trim().to_owned(),
            })
        })
        .collect();
    builds.sort_by_key(|b| version_key(&b.version));
    builds.pop()
}

/// `3.18.3-1` as `[3, 18, 3, 1]`, so that 3.18 sorts after 3.9.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect()
}

/// The `anon_inode:[io_uring]` descriptors of process `pid`: one per ring.
fn io_uring_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| {
                std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().contains("io_uring"))
            })
            .count()
    })
}

/// A running `passthrough_hp` mounted on a mount point; stopped (SIGTERM, then SIGKILL) and
/// the mount detached if still there, on drop.
pub(crate) struct Server {
    child: Option<Child>,
    mountpoint: PathBuf,
    stderr_path: PathBuf,
    /// What it runs as, for the report: version, arguments, rings.
    pub(crate) ready: String,
}

impl Server {
    /// Starts `binary ARGS SOURCE MOUNTPOINT`, waits until it is mounted and has answered
    /// INIT, and checks that it uses io_uring exactly when `uring`.
    pub(crate) fn start(
        build: &Build,
        args: &[&str],
        uring: bool,
        source: &Path,
        mountpoint: &Path,
        scratch: &Path,
    ) -> Result<Server, Failure> {
        let stderr_path = scratch.join("libfuse.err");
        let err = std::fs::File::create(&stderr_path)
            .map_err(|e| Failure::System(format!("{}: {e}", stderr_path.display())))?;
        let child = Command::new(&build.binary)
            .args(args)
            .arg(source)
            .arg(mountpoint)
            // The session option decides (`-o io_uring`), not an inherited environment.
            .env_remove("FUSE_URING_ENABLE")
            .env_remove("FUSE_URING_QUEUE_DEPTH")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .map_err(|e| Failure::System(format!("cannot start passthrough_hp: {e}")))?;
        let pid = child.id();
        let mut server = Server {
            child: Some(child),
            mountpoint: mountpoint.to_owned(),
            stderr_path,
            ready: String::new(),
        };
        let start = Instant::now();
        while !testkit::is_mount_point(mountpoint) {
            if stop_requested() {
                return Err(Failure::Stopped);
            }
            let exited = server
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || start.elapsed() > Duration::from_secs(30) {
                return Err(Failure::System(format!(
                    "passthrough_hp did not mount: {}",
                    server.stderr()
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Answered only after INIT (which starts the rings). In a thread: a server stuck in
        // INIT would block the stat; killing it (on drop) aborts the connection and frees it.
        let (tx, rx) = std::sync::mpsc::channel();
        let probe = mountpoint.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::metadata(&probe).map(|_| ()));
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(())) => break,
                Ok(Err(e)) => {
                    return Err(Failure::System(format!(
                        "stat of the libfuse mount: {e}: {}",
                        server.stderr()
                    )));
                }
                Err(_) if stop_requested() => return Err(Failure::Stopped),
                Err(_) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(Failure::System(format!(
                        "passthrough_hp did not answer the first request within 30 s: {}",
                        server.stderr()
                    )));
                }
                Err(_) => {}
            }
        }
        let mut rings = io_uring_fds(pid);
        while uring && rings == 0 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
            rings = io_uring_fds(pid);
        }
        if uring != (rings > 0) {
            return Err(Failure::System(format!(
                "asked for io_uring {}, but passthrough_hp has {rings} io_uring rings: {}",
                if uring { "on" } else { "off" },
                server.stderr()
            )));
        }
        server.ready = format!(
            "libfuse {} passthrough_hp {} (io_uring rings: {rings})",
            build.version,
            args.join(" ")
        );
        Ok(server)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What it wrote to stderr, on one line.
    pub(crate) fn stderr(&self) -> String {
        super::one_line(&std::fs::read_to_string(&self.stderr_path).unwrap_or_default())
    }

    /// Stops it (SIGTERM: it unmounts and exits), waiting up to 10 s before SIGKILL; returns
    /// whether it exited by itself and took its mount away, and its stderr.
    pub(crate) fn stop(mut self) -> (bool, String) {
        let clean = self.stop_child();
        (clean, self.stderr())
    }

    fn stop_child(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return false;
        };
        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let start = Instant::now();
        let mut clean = false;
        loop {
            match child.try_wait() {
                // On SIGTERM it exits with status 1 (the signal is its session's error).
                Ok(Some(_)) => {
                    clean = true;
                    break;
                }
                Ok(None) if start.elapsed() < Duration::from_secs(10) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
            }
        }
        if testkit::is_mount_point(&self.mountpoint) {
            let _ = rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
            clean = false;
        }
        clean
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_child();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_complete_build_is_used() {
        let dir = testkit::temp_dir("libfuse-cache").unwrap();
        assert!(cached(&dir).is_none());
        let make = |name: &str, version: &str, binary: bool| {
            let d = dir.join(name);
            std::fs::create_dir_all(d.join("build/example")).unwrap();
            std::fs::write(d.join("version"), format!("{version}\n")).unwrap();
            if binary {
                std::fs::write(d.join("build/example/passthrough_hp"), b"").unwrap();
            }
        };
        make("libfuse-3.9.1", "3.9.1-2", true);
        make("libfuse-3.18.3", "3.18.3-1", true);
        // Interrupted builds (no binary) and the apt directory do not count.
        make("libfuse-3.19.0", "3.19.0-1", false);
        make("libfuse-apt", "9.9.9-9", true);
        let build = cached(&dir).unwrap();
        assert_eq!(build.version, "3.18.3-1");
        assert!(
            build
                .binary
                .ends_with("libfuse-3.18.3/build/example/passthrough_hp")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
