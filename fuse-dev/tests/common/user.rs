//! A throwaway unprivileged user that runs a copy of the current test binary: for the tests
//! that mount through `fusermount3`. Each test binary that uses it is `harness = false` and
//! starts with [`child_mode`].

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment variable naming the child's job.
pub(crate) const CHILD_ENV: &str = "FUSE_DEV_CHILD";
/// The environment variable naming the child's mount point.
pub(crate) const DIR_ENV: &str = "FUSE_DEV_CHILD_DIR";

/// `Some((job, dir))` when this process is a child started by [`User::run`].
pub(crate) fn child_mode() -> Option<(String, PathBuf)> {
    let job = std::env::var(CHILD_ENV).ok()?;
    Some((job, PathBuf::from(std::env::var_os(DIR_ENV)?)))
}

/// Whether a mount sits at `path` (an independent view: mountinfo).
pub(crate) fn mounted_at(path: &Path) -> bool {
    let want = path.to_str().unwrap();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want))
}

/// A user made with `useradd`, removed with `userdel` on drop, with a copy of this test
/// binary it can run.
pub(crate) struct User {
    name: String,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    bin_dir: PathBuf,
    exe: PathBuf,
}

impl User {
    /// Creates the user, or returns why it cannot run here (after `testkit::skip`, which
    /// panics under `FUSE_TESTS_REQUIRE_KERNEL=1`).
    pub(crate) fn create() -> Option<User> {
        if let Err(e) = fuse_dev::find_fusermount() {
            testkit::skip(&format!("{e} (cargo xtask setup installs it)"));
            return None;
        }
        for tool in ["useradd", "userdel", "setpriv"] {
            let found = Command::new(tool)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok();
            if !found {
                testkit::skip(&format!(
                    "{tool} is missing (apt-get install passwd util-linux)"
                ));
                return None;
            }
        }
        let mode = fs::metadata("/dev/fuse").unwrap().permissions().mode() & 0o777;
        if mode & 0o006 != 0o006 {
            testkit::skip(&format!(
                "/dev/fuse has mode {mode:o}: other users cannot open it (udev sets 0666; \
                 cargo xtask setup does it: chmod 666 /dev/fuse)"
            ));
            return None;
        }
        let name = format!("fdt{}", std::process::id());
        // useradd fails (exit status 10) while another process holds /etc/passwd's lock.
        let mut tries = 0;
        let status = loop {
            let status = Command::new("useradd")
                .args([
                    "--system",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                ])
                .arg(&name)
                .status()
                .expect("useradd");
            tries += 1;
            if status.success() || status.code() != Some(10) || tries == 20 {
                break status;
            }
            std::thread::sleep(Duration::from_millis(250));
        };
        assert!(status.success(), "useradd {name}: {status}");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8(out.stdout)
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        let bin_dir = testkit::temp_dir("user-bin").unwrap();
        let exe = bin_dir.join("child");
        let user = User {
            name,
            uid,
            gid,
            bin_dir,
            exe,
        };
        fs::set_permissions(&user.bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(std::env::current_exe().unwrap(), &user.exe).unwrap();
        fs::set_permissions(&user.exe, fs::Permissions::from_mode(0o755)).unwrap();
        Some(user)
    }

    /// A fresh directory owned by the user.
    pub(crate) fn mount_dir(&self, tag: &str) -> PathBuf {
        let dir = fs::canonicalize(testkit::temp_dir(tag).unwrap()).unwrap();
        std::os::unix::fs::chown(&dir, Some(self.uid), Some(self.gid)).unwrap();
        dir
    }

    /// Runs the test binary as the user with `job` on `dir` (killed after 60 s), prints its
    /// output, and returns it.
    pub(crate) fn run(&self, job: &str, dir: &Path) -> Output {
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .args(["--clear-groups", "--"])
            .arg(&self.exe)
            .env(CHILD_ENV, job)
            .env(DIR_ENV, dir)
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
        print!("{}", String::from_utf8_lossy(&out.stdout));
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        out
    }
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.exe);
        let _ = fs::remove_dir(&self.bin_dir);
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// Detaches whatever is left at `dir` (a fresh directory of the test: only a mount made by
/// the test's child can be there) and removes the directory; returns whether a mount was
/// left.
pub(crate) fn clean_up(dir: &Path) -> bool {
    let left = mounted_at(dir);
    if left {
        let _ = rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH);
    }
    let _ = fs::remove_dir(dir);
    left
}

/// Runs `test` in a harness-less test binary: prints the outcome in the plain
/// `N passed, N failed` form and returns the exit code.
pub(crate) fn harness(name: &str, test: fn()) -> std::process::ExitCode {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
        println!("0 passed, 0 failed");
        return std::process::ExitCode::SUCCESS;
    }
    println!("test {name} ...");
    if std::panic::catch_unwind(test).is_ok() {
        println!("test {name} ... ok\n1 passed, 0 failed");
        std::process::ExitCode::SUCCESS
    } else {
        println!("test {name} ... FAILED\n0 passed, 1 failed");
        std::process::ExitCode::FAILURE
    }
}
