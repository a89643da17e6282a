//! Hardening regressions of the example server, on real mounts, each over both
//! transports where the transport matters: a hostile or careless user must not make the
//! mirror write the source, bypass its permissions, see what it hides, exhaust the server's
//! fds or memory, stall it on another user's lease, or confuse inode numbers across mounts.
//!
//! Tests that need an unprivileged user create a throwaway one (`useradd`) and remove it
//! after; their clients run in a forked child with that user's ids.

#![allow(unsafe_code)] // fork, fcntl(F_SETLEASE), pause, _exit in the client children

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirEntryExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::Needs;
use testkit::example::ExampleServer;

const BIN: &str = env!("CARGO_BIN_EXE_passthroughfs");

/// A source directory and a mount point, removed on drop (after the server, declared later).
struct Dirs {
    source: PathBuf,
    mountpoint: PathBuf,
}

impl Dirs {
    fn new(tag: &str) -> Dirs {
        Dirs {
            source: testkit::temp_dir(&format!("{tag}-src")).expect("source"),
            mountpoint: testkit::temp_dir(&format!("{tag}-mnt")).expect("mount point"),
        }
    }

    fn start(&self, args: &[&str]) -> ExampleServer {
        ExampleServer::start(Path::new(BIN), &self.source, &self.mountpoint, args)
            .expect("passthroughfs starts")
    }
}

impl Drop for Dirs {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
        let _ = std::fs::remove_dir(&self.mountpoint);
        let _ = std::fs::remove_dir_all(&self.source);
    }
}

/// A throwaway system user (and its group), deleted on drop.
struct TempUser {
    name: String,
    uid: u32,
    gid: u32,
}

impl TempUser {
    fn create(tag: &str) -> TempUser {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("pfs{tag}{}x{n}", std::process::id() % 100_000);
        let status = Command::new("useradd")
            .args(["--system", "--no-create-home", "--user-group"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        TempUser { name, uid, gid }
    }

    /// Runs `f` in a forked child with this user's ids (no supplementary groups, no
    /// capabilities) and returns its exit code (`f`'s value; 100 when the ids could not be
    /// set).
    fn run(&self, f: impl FnOnce() -> i32) -> i32 {
        let child = self.spawn(f);
        child.wait()
    }

    fn spawn(&self, f: impl FnOnce() -> i32) -> Child {
        // SAFETY: the child only makes system calls and then _exits; it never returns into
        // the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // Single-threaded after fork: the per-thread id calls set the process's ids.
            use rustix::thread::{Gid, Uid};
            let gid = Gid::from_raw(self.gid);
            let uid = Uid::from_raw(self.uid);
            let ok = rustix::thread::set_thread_groups(&[]).is_ok()
                && rustix::thread::set_thread_res_gid(gid, gid, gid).is_ok()
                && rustix::thread::set_thread_res_uid(uid, uid, uid).is_ok();
            let code = if ok { f() } else { 100 };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Child(pid)
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// A forked child; killed and reaped on drop if still running.
struct Child(libc::pid_t);

impl Child {
    fn pid(&self) -> rustix::process::Pid {
        rustix::process::Pid::from_raw(self.0).expect("a child pid is positive")
    }

    fn wait(self) -> i32 {
        let status =
            rustix::process::waitpid(Some(self.pid()), rustix::process::WaitOptions::empty());
        std::mem::forget(self);
        match status {
            Ok(Some((_, status))) => status.exit_status().unwrap_or(-1),
            _ => -1,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(self.pid(), rustix::process::Signal::KILL);
        let _ = rustix::process::waitpid(Some(self.pid()), rustix::process::WaitOptions::empty());
    }
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

/// The errno of `r` as an exit code for a child (0 on success).
fn code<T>(r: Result<T, rustix::io::Errno>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.raw_os_error(),
    }
}

/// Sets the atime of `path` to 2001-09-09 (older than its mtime, so relatime would update it).
fn set_old_atime(path: &Path) {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        },
        last_modification: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        path,
        &times,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .expect("utimensat");
}

fn atime(path: &Path) -> i64 {
    std::fs::symlink_metadata(path).expect("stat").atime()
}

/// Finding 10 (atime): reading files (passthrough and served) and listing directories through
/// the mirror leaves every atime of the source as it was.
fn the_source_atimes_never_change(transport: &str) {
    for passthrough in [true, false] {
        let dirs = Dirs::new("atime");
        let sub = dirs.source.join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let file = sub.join("file");
        std::fs::write(&file, vec![7u8; 100_000]).expect("write");
        set_old_atime(&file);
        set_old_atime(&sub);
        set_old_atime(&dirs.source);
        let before = [atime(&file), atime(&sub), atime(&dirs.source)];
        let mut args = vec!["--transport", transport, "--attr-timeout", "0"];
        if !passthrough {
            args.push("--no-passthrough");
        }
        let server = dirs.start(&args);
        assert_eq!(
            std::fs::read(dirs.mountpoint.join("sub/file")).expect("read through the mount"),
            vec![7u8; 100_000]
        );
        let listed: Vec<_> = std::fs::read_dir(dirs.mountpoint.join("sub"))
            .expect("list")
            .collect();
        assert_eq!(listed.len(), 1);
        // A DirEntry keeps its directory open: close it before stopping the server.
        drop(listed);
        assert_eq!(
            std::fs::read_dir(&dirs.mountpoint).expect("list").count(),
            1
        );
        let (ok, _, stderr) = server.stop().expect("stop");
        assert!(ok, "{stderr}");
        let after = [atime(&file), atime(&sub), atime(&dirs.source)];
        assert_eq!(
            after, before,
            "passthrough={passthrough}: atimes of [file, sub, root] changed"
        );
    }
}

/// Finding 1 (the server enters its own mount): once the mirror is bind-mounted into the
/// source, a lookup there must show the source's own directory, not the mirror again (over
/// io_uring the server would wait for itself on its own queue; over /dev/fuse it would hold
/// an fd into its own mount).
fn the_server_never_enters_its_own_mount(transport: &str) {
    // With the private copy of the source (the default), and without it (as on kernels
    // before 5.12), where LOOKUP refuses to enter our own mount.
    for private in [true, false] {
        let dirs = Dirs::new("ownmount");
        let inner = dirs.source.join("inner");
        std::fs::create_dir(&inner).expect("mkdir");
        std::fs::write(inner.join("marker"), b"source").expect("marker");
        std::fs::write(dirs.source.join("top"), b"top").expect("top");
        let env: &[(&str, &str)] = if private {
            &[]
        } else {
            &[("PASSTHROUGHFS_FAULT_NO_PRIVATE_COPY", "1")]
        };
        let server = ExampleServer::start_with_env(
            Path::new(BIN),
            &dirs.source,
            &dirs.mountpoint,
            &["--transport", transport, "--attr-timeout", "0"],
            env,
        )
        .expect("passthroughfs starts");
        // The mirror, bind-mounted over a directory of its own source.
        rustix::mount::mount_bind(&dirs.mountpoint, &inner)
            .expect("bind the mirror into the source");
        let _unbind = testkit::UnmountOnDrop(inner.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        let through = dirs.mountpoint.join("inner");
        std::thread::spawn(move || {
            let names: Result<Vec<String>, i32> = std::fs::read_dir(&through)
                .and_then(|d| {
                    d.map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                        .collect()
                })
                .map_err(|e| e.raw_os_error().unwrap_or(0));
            let _ = tx.send(names);
        });
        let names = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("listing MNT/inner hangs: the server waits for its own mount");
        if private {
            // The private copy has the source's own `inner`, not the mirror.
            assert_eq!(
                names,
                Ok(vec!["marker".to_string()]),
                "MNT/inner is not the source's"
            );
        } else {
            assert_eq!(
                names,
                Err(libc::EXDEV),
                "LOOKUP must refuse to enter our own mount"
            );
        }
        assert_eq!(
            std::fs::read(dirs.mountpoint.join("top")).expect("still serving"),
            b"top"
        );
        rustix::mount::unmount(&inner, rustix::mount::UnmountFlags::DETACH).expect("unbind");
        let (ok, _, stderr) = server.stop().expect("stop");
        assert!(ok, "{stderr}");
        assert_eq!(
            stderr.contains("cannot make a private read-only noatime copy"),
            !private,
            "{stderr}"
        );
    }
}

/// `system.posix_acl_access` bytes: version 2, then (tag, perm, id) entries.
fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for &(tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

const ACL_USER_OBJ: u16 = 0x01;
const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_MASK: u16 = 0x10;
const ACL_OTHER: u16 = 0x20;
const ACL_UNDEFINED_ID: u32 = u32::MAX;

/// Finding 3 (POSIX ACLs): a user whom the source's ACL denies cannot read through the
/// mount, and a user whom it allows can.
fn posix_acls_are_enforced_as_the_source_does(transport: &str) {
    let user = TempUser::create("acl");
    let dirs = Dirs::new("acl");
    let denied = dirs.source.join("denied");
    let allowed = dirs.source.join("allowed");
    std::fs::write(&denied, b"secret").expect("write");
    std::fs::write(&allowed, b"shared").expect("write");
    let set = |path: &Path, mode: u32, entries: &[(u16, u16, u32)]| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod");
        rustix::fs::setxattr(
            path,
            "system.posix_acl_access",
            &acl(entries),
            rustix::fs::XattrFlags::empty(),
        )
        .expect("set the ACL on the source (needs ACL support in /tmp's file system)");
    };
    // Mode 0644 (everyone may read), but the ACL names the user with no rights.
    set(
        &denied,
        0o644,
        &[
            (ACL_USER_OBJ, 6, ACL_UNDEFINED_ID),
            (ACL_USER, 0, user.uid),
            (ACL_GROUP_OBJ, 4, ACL_UNDEFINED_ID),
            (ACL_MASK, 4, ACL_UNDEFINED_ID),
            (ACL_OTHER, 4, ACL_UNDEFINED_ID),
        ],
    );
    // Mode 0600 (only root), but the ACL lets the user read.
    set(
        &allowed,
        0o600,
        &[
            (ACL_USER_OBJ, 6, ACL_UNDEFINED_ID),
            (ACL_USER, 4, user.uid),
            (ACL_GROUP_OBJ, 0, ACL_UNDEFINED_ID),
            (ACL_MASK, 4, ACL_UNDEFINED_ID),
            (ACL_OTHER, 0, ACL_UNDEFINED_ID),
        ],
    );
    let read_as_user = |path: &Path| {
        let path = cpath(path);
        user.run(|| {
            code(rustix::fs::open(
                path.as_c_str(),
                rustix::fs::OFlags::RDONLY,
                rustix::fs::Mode::empty(),
            ))
        })
    };
    // The source itself, as the reference.
    assert_eq!(read_as_user(&denied), libc::EACCES, "source: denied");
    assert_eq!(read_as_user(&allowed), 0, "source: allowed");
    for extra in [&[][..], &["--no-passthrough"][..]] {
        let mut args = vec!["--transport", transport];
        args.extend_from_slice(extra);
        let server = dirs.start(&args);
        assert_eq!(
            read_as_user(&dirs.mountpoint.join("denied")),
            libc::EACCES,
            "{args:?}: the ACL denies the user, the mirror let them read"
        );
        assert_eq!(
            read_as_user(&dirs.mountpoint.join("allowed")),
            0,
            "{args:?}: the ACL allows the user, the mirror refused"
        );
        let (ok, _, stderr) = server.stop().expect("stop");
        assert!(ok, "{stderr}");
    }
}

/// Finding 4 (`trusted.*` listed to everyone): LISTXATTR through the mount shows `trusted.*`
/// names to root only, as the source does; `user.*` to both.
fn trusted_xattrs_are_listed_to_admins_only(transport: &str) {
    let user = TempUser::create("xat");
    let dirs = Dirs::new("xattr");
    let file = dirs.source.join("file");
    std::fs::write(&file, b"x").expect("write");
    for (name, value) in [("trusted.hidden", &b"t"[..]), ("user.visible", &b"u"[..])] {
        rustix::fs::setxattr(&file, name, value, rustix::fs::XattrFlags::empty())
            .expect("setxattr on the source");
    }
    // Child exit code: bit 0 = user.visible listed, bit 1 = trusted.hidden listed, 64 + errno
    // on failure.
    let list_as_user = |path: &Path| {
        let path = cpath(path);
        user.run(|| {
            let mut buf = [0u8; 1024];
            match rustix::fs::listxattr(path.as_c_str(), &mut buf) {
                Ok(n) => {
                    let names = &buf[..n];
                    let has = |x: &[u8]| names.split(|&b| b == 0).any(|n| n == x);
                    i32::from(has(b"user.visible")) | i32::from(has(b"trusted.hidden")) << 1
                }
                Err(e) => 64 + e.raw_os_error(),
            }
        })
    };
    assert_eq!(
        list_as_user(&file),
        1,
        "the source itself hides trusted.* from users"
    );
    let server = dirs.start(&["--transport", transport]);
    let through = dirs.mountpoint.join("file");
    assert_eq!(
        list_as_user(&through),
        1,
        "the mirror lists trusted.* to an unprivileged user"
    );
    let mut buf = [0u8; 1024];
    let n = rustix::fs::listxattr(&through, &mut buf).expect("listxattr as root");
    let names: Vec<&[u8]> = buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    assert!(
        names.contains(&&b"trusted.hidden"[..]),
        "root must see trusted.*: {names:?}"
    );
    assert!(names.contains(&&b"user.visible"[..]), "{names:?}");
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
}

/// Finding 8 (inode numbers collide across submounts): a source on one tmpfs with a second
/// tmpfs mounted inside; every file seen through the mirror has its own `st_ino`.
fn inode_numbers_are_unique_across_source_submounts(transport: &str) {
    let dirs = Dirs::new("ino");
    rustix::mount::mount(
        "tmpfs",
        &dirs.source,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("tmpfs source");
    let _outer = testkit::UnmountOnDrop(dirs.source.clone());
    let sub = dirs.source.join("sub");
    std::fs::create_dir(&sub).expect("mkdir");
    rustix::mount::mount(
        "tmpfs",
        &sub,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("tmpfs submount");
    let _inner = testkit::UnmountOnDrop(sub.clone());
    let mut natively = std::collections::HashSet::new();
    for i in 0..20 {
        for dir in [&dirs.source, &sub] {
            let path = dir.join(format!("f{i}"));
            std::fs::write(&path, format!("{i}")).expect("write");
            let m = std::fs::metadata(&path).expect("stat");
            natively.insert((m.dev(), m.ino()));
        }
    }
    assert_eq!(natively.len(), 40);
    let server = dirs.start(&["--transport", transport]);
    let mut seen = std::collections::HashMap::new();
    for i in 0..20 {
        for dir in ["", "sub/"] {
            let name = format!("{dir}f{i}");
            let m = std::fs::metadata(dirs.mountpoint.join(&name)).expect("stat through the mount");
            if let Some(other) = seen.insert((m.dev(), m.ino()), name.clone()) {
                panic!("{name} and {other} share st_ino {} on the mount", m.ino());
            }
        }
    }
    // Listings agree with stat.
    for dir in ["", "sub"] {
        for entry in std::fs::read_dir(dirs.mountpoint.join(dir)).expect("list") {
            let entry = entry.expect("entry");
            let m = entry.metadata().expect("stat");
            if m.is_file() {
                assert_eq!(entry.ino(), m.ino(), "{:?}: d_ino != st_ino", entry.path());
            }
        }
    }
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    // --one-file-system: the submount is not entered; `sub` is the directory it covers.
    let server = dirs.start(&["--transport", transport, "--one-file-system"]);
    let root = std::fs::metadata(&dirs.mountpoint).expect("stat root");
    let sub_through = std::fs::metadata(dirs.mountpoint.join("sub")).expect("stat sub");
    assert_eq!(sub_through.dev(), root.dev());
    assert_eq!(
        std::fs::read_dir(dirs.mountpoint.join("sub"))
            .expect("list sub")
            .count(),
        0,
        "--one-file-system entered the submount"
    );
    assert_eq!(
        std::fs::read(dirs.mountpoint.join("f3")).expect("read"),
        b"3"
    );
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    drop(_inner);
    drop(_outer);
}

/// Finding 11 (errno >= 512 from the source): such an errno reaches the caller as EIO, and
/// the server keeps serving.
fn an_errno_outside_the_kernel_range_becomes_eio(transport: &str) {
    let dirs = Dirs::new("errno");
    std::fs::write(dirs.source.join("file"), b"content").expect("write");
    let server = ExampleServer::start_with_env(
        Path::new(BIN),
        &dirs.source,
        &dirs.mountpoint,
        &["--transport", transport],
        &[("PASSTHROUGHFS_FAULT_ERRNO", "524")],
    )
    .expect("passthroughfs starts");
    let file = dirs.mountpoint.join("file");
    for _ in 0..3 {
        let e = rustix::fs::getxattr(&file, "user.passthroughfs.fault", &mut [0u8; 64])
            .expect_err("the fault xattr fails");
        assert_eq!(
            e,
            rustix::io::Errno::IO,
            "errno 524 must reach the caller as EIO"
        );
    }
    assert_eq!(
        std::fs::read(&file).expect("the server still serves"),
        b"content"
    );
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "the server failed: {stderr}");
}

/// Finding 7 (a lease holder stalls the server): an unprivileged user holding a write lease
/// on their file in the source makes an open through the mirror fail at once with EAGAIN
/// (instead of waiting up to lease-break-time, 45 s, on a worker or a whole io_uring queue),
/// while other requests go on; once the lease is gone the open works.
fn a_lease_holder_does_not_stall_the_server(transport: &str) {
    let user = TempUser::create("lse");
    let dirs = Dirs::new("lease");
    let file = dirs.source.join("leased");
    std::fs::write(&file, b"data").expect("write");
    std::fs::write(dirs.source.join("other"), b"other").expect("write");
    std::os::unix::fs::chown(&file, Some(user.uid), Some(user.gid)).expect("chown");
    let server = dirs.start(&["--transport", transport, "--attr-timeout", "0"]);
    let (ready_r, ready_w) = rustix::pipe::pipe().expect("pipe");
    let source = cpath(&file);
    let holder = user.spawn(move || {
        let Ok(fd) = rustix::fs::open(
            source.as_c_str(),
            rustix::fs::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        ) else {
            return 1;
        };
        // The lease break signal (SIGIO) would kill the holder and end the lease at once:
        // a holder that ignores it keeps the lease for lease-break-time (45 s by default).
        // SAFETY: sets the disposition of SIGIO to "ignore"; no handler code involved.
        unsafe { libc::signal(libc::SIGIO, libc::SIG_IGN) };
        // SAFETY: fcntl on a valid fd with F_SETLEASE/F_WRLCK.
        if unsafe {
            libc::fcntl(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::F_SETLEASE,
                libc::F_WRLCK,
            )
        } != 0
        {
            return 2;
        }
        let _ = rustix::io::write(&ready_w, b"y");
        loop {
            // SAFETY: waits for a signal.
            unsafe { libc::pause() };
        }
    });
    let mut byte = [0u8; 1];
    assert_eq!(
        rustix::io::read(&ready_r, &mut byte).expect("holder ready"),
        1,
        "the lease could not be taken"
    );

    // On every CPU (a queue per CPU over io_uring): the open returns promptly.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    for cpu in 0..cpus {
        let through = dirs.mountpoint.join("leased");
        let other = dirs.mountpoint.join("other");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = testkit::fault::pin_current_thread(cpu);
            let started = Instant::now();
            let r = std::fs::File::open(&through).map(|_| ());
            let other = std::fs::read(&other).map(|_| ());
            let _ = tx.send((r, other, started.elapsed()));
        });
        let (r, other, took) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("open through the mirror blocked on another user's lease");
        eprintln!("cpu {cpu}: open of the leased file: {r:?} after {took:?}");
        assert!(
            took < Duration::from_secs(5),
            "cpu {cpu}: open took {took:?}"
        );
        // The open starts the lease break and fails with EAGAIN; the holder keeps the lease.
        let e = r.expect_err("open of a leased file must not wait");
        assert_eq!(e.raw_os_error(), Some(libc::EAGAIN), "cpu {cpu}: {e}");
        other.expect("another file on the same CPU");
    }
    drop(holder);
    // The lease is gone with its holder: the open works.
    assert_eq!(
        std::fs::read(dirs.mountpoint.join("leased")).expect("read after the lease"),
        b"data"
    );
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
}

/// Creates `n` empty files in `dir`.
fn populate(dir: &Path, n: usize) {
    std::fs::create_dir(dir).expect("mkdir");
    for i in 0..n {
        std::fs::File::create(dir.join(format!("entry-{i:06}"))).expect("create");
    }
}

const BIG: usize = 100_000;

/// Finding 5 (fd exhaustion): the server started under `ulimit -n 1024` (soft and hard);
/// `ls -l` of a 100,000-entry directory gives no error and the mount keeps working.
fn ls_l_of_a_huge_directory_under_a_low_fd_limit(transport: &str) {
    let dirs = Dirs::new("fdlimit");
    let big = dirs.source.join("big");
    populate(&big, BIG);
    std::fs::write(dirs.source.join("after"), b"still here").expect("write");
    let nofile = "--nofile=1024:1024";
    let server = ExampleServer::start(
        Path::new("prlimit"),
        &dirs.source,
        &dirs.mountpoint,
        &[nofile, BIN, "--transport", transport, "--stats"],
    )
    .expect("passthroughfs starts under prlimit");
    let pid = server.pid().expect("pid");
    let out = Command::new("ls")
        .arg("-l")
        .arg(dirs.mountpoint.join("big"))
        .output()
        .expect("ls");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    let errors = stderr.lines().count();
    eprintln!(
        "ls -l: {lines} lines, {errors} error lines, status {:?}",
        out.status
    );
    assert_eq!(
        errors,
        0,
        "ls -l errors (first: {:?})",
        stderr.lines().next()
    );
    assert!(out.status.success());
    assert_eq!(lines, BIG + 1, "ls -l lines (total + entries)");
    let fds = testkit::fault::fd_count(pid).expect("fd count");
    let rss = testkit::fault::status_kib(pid, "VmRSS").unwrap_or(0);
    eprintln!("server fds after ls -l: {fds}, resident {rss} KiB");
    assert!(fds < 1024);
    // The mount keeps working: new lookups and opens, and stats of the listed entries.
    assert_eq!(
        std::fs::read(dirs.mountpoint.join("after")).expect("read"),
        b"still here"
    );
    for i in (0..BIG).step_by(997) {
        std::fs::metadata(big.join(format!("entry-{i:06}"))).expect("source stat");
        std::fs::File::open(dirs.mountpoint.join("big").join(format!("entry-{i:06}")))
            .expect("open through the mount after ls -l");
    }
    let (ok, stats, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    let closed = testkit::example::stat_value(&stats, "inode_fds_closed").unwrap_or(0);
    let reopened = testkit::example::stat_value(&stats, "inode_fds_reopened").unwrap_or(0);
    eprintln!("inode fds closed to file handles: {closed}, reopened: {reopened}");
    assert!(closed > 50_000, "the fd budget was never enforced: {stats}");
}

/// Finding 6 (memory): 500 directory handles open at once on a 100,000-entry directory keep
/// the server under 64 MiB resident, and it still answers.
fn many_handles_on_a_huge_directory_stay_small(transport: &str) {
    let dirs = Dirs::new("dirmem");
    let big = dirs.source.join("big");
    populate(&big, BIG);
    let server = dirs.start(&["--transport", transport]);
    let pid = server.pid().expect("pid");
    let mut handles = Vec::new();
    for _ in 0..500 {
        let mut d = std::fs::read_dir(dirs.mountpoint.join("big")).expect("opendir");
        // The first READDIR of each handle.
        d.next().expect("an entry").expect("entry");
        handles.push(d);
    }
    let rss = testkit::fault::status_kib(pid, "VmRSS").expect("VmRSS");
    eprintln!("server resident with 500 handles: {rss} KiB");
    assert!(
        rss < 64 * 1024,
        "server resident {rss} KiB with 500 handles"
    );
    // One handle read to the end: all entries, in order of the source's cookies.
    let count = handles.pop().expect("handle").count() + 1;
    assert_eq!(count, BIG);
    drop(handles);
    let rss = testkit::fault::status_kib(pid, "VmRSS").expect("VmRSS");
    eprintln!("server resident after one full listing: {rss} KiB");
    assert!(rss < 64 * 1024, "server resident {rss} KiB");
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
}

fn wait_exit(server: &ExampleServer, within: Duration) -> bool {
    let pid = server.pid().expect("pid");
    testkit::fault::wait_until(within, || testkit::fault::process_exited(pid))
}

/// Finding 9 (SIGTERM while a client holds the mount): the server unmounts, and when the
/// detached mount stays busy it aborts the connection and exits within a few seconds; the
/// client then gets ENOTCONN.
fn sigterm_while_a_client_holds_the_mount(transport: &str) {
    let dirs = Dirs::new("busy");
    std::fs::write(dirs.source.join("file"), b"x").expect("write");
    let server = dirs.start(&["--transport", transport]);
    let held = std::fs::File::open(dirs.mountpoint.join("file")).expect("open through the mount");
    let started = Instant::now();
    testkit::fault::signal(server.pid().expect("pid"), rustix::process::Signal::TERM)
        .expect("SIGTERM");
    assert!(
        wait_exit(&server, Duration::from_secs(10)),
        "the server did not exit while a client held the mount"
    );
    eprintln!("exited {:?} after SIGTERM", started.elapsed());
    assert!(
        !testkit::is_mount_point(&dirs.mountpoint),
        "mount left behind"
    );
    let e = held.metadata().expect_err("the aborted mount");
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "{e}");
    drop(held);
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("aborting the connection"), "{stderr}");
}

/// Finding 9 (a second signal is ignored): a second SIGTERM aborts at once.
fn a_second_signal_stops_at_once(transport: &str) {
    let dirs = Dirs::new("second");
    std::fs::write(dirs.source.join("file"), b"x").expect("write");
    let server = dirs.start(&["--transport", transport]);
    let pid = server.pid().expect("pid");
    let held = std::fs::File::open(dirs.mountpoint.join("file")).expect("open through the mount");
    testkit::fault::signal(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    std::thread::sleep(Duration::from_millis(300));
    let second = Instant::now();
    testkit::fault::signal(pid, rustix::process::Signal::TERM).expect("second SIGTERM");
    assert!(
        wait_exit(&server, Duration::from_secs(10)),
        "the server did not exit"
    );
    let took = second.elapsed();
    eprintln!("exited {took:?} after the second signal");
    assert!(
        took < Duration::from_millis(1500),
        "the second signal waited the grace period"
    );
    drop(held);
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("second signal"), "{stderr}");
}

/// Finding 9 (an external SIGUSR1 silently unmounts): it is ignored, and said.
fn an_external_sigusr1_is_ignored(transport: &str) {
    let dirs = Dirs::new("usr1");
    std::fs::write(dirs.source.join("file"), b"still").expect("write");
    let server = dirs.start(&["--transport", transport]);
    testkit::fault::signal(server.pid().expect("pid"), rustix::process::Signal::USR1)
        .expect("SIGUSR1");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        testkit::is_mount_point(&dirs.mountpoint),
        "SIGUSR1 unmounted the mirror"
    );
    assert_eq!(
        std::fs::read(dirs.mountpoint.join("file")).expect("read"),
        b"still"
    );
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("ignoring SIGUSR1"), "{stderr}");
}

/// Finding 9 (SIGKILL of the process group kills the watchdog too): the watchdog is in its
/// own session and removes the mount of the killed server.
fn killing_the_process_group_leaves_no_mount(transport: &str) {
    let dirs = Dirs::new("pgkill");
    std::fs::write(dirs.source.join("file"), b"x").expect("write");
    // `setsid` makes the server a process group leader (pgid = its pid); it execs in place.
    let server = ExampleServer::start(
        Path::new("setsid"),
        &dirs.source,
        &dirs.mountpoint,
        &[BIN, "--transport", transport],
    )
    .expect("passthroughfs starts under setsid");
    let pid = server.pid().expect("pid");
    assert_eq!(
        rustix::process::getpgid(rustix::process::Pid::from_raw(pid as i32))
            .expect("pgid")
            .as_raw_nonzero()
            .get(),
        pid as i32
    );
    let group = rustix::process::Pid::from_raw(pid as i32).expect("pid");
    rustix::process::kill_process_group(group, rustix::process::Signal::KILL)
        .expect("kill -9 -PGID");
    assert!(
        testkit::fault::wait_until(Duration::from_secs(10), || !testkit::is_mount_point(
            &dirs.mountpoint
        )),
        "a stale mount is left after the process group was killed"
    );
    let (ok, _, _) = server.stop().expect("reap");
    assert!(!ok);
}

/// Finding 2 (the watchdog unmounts what is not ours): with a tmpfs stacked on the mirror,
/// killing the server leaves the tmpfs (and its data) alone.
fn the_watchdog_unmounts_only_our_mount(transport: &str) {
    let dirs = Dirs::new("stack");
    std::fs::write(dirs.source.join("file"), b"x").expect("write");
    let server = dirs.start(&["--transport", transport]);
    rustix::mount::mount(
        "tmpfs",
        &dirs.mountpoint,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("stack a tmpfs on the mirror");
    std::fs::write(dirs.mountpoint.join("precious"), b"data").expect("write to the tmpfs");
    testkit::fault::signal(server.pid().expect("pid"), rustix::process::Signal::KILL)
        .expect("SIGKILL");
    assert!(wait_exit(&server, Duration::from_secs(10)));
    // Give the watchdog time to act.
    std::thread::sleep(Duration::from_millis(500));
    let kept = std::fs::read(dirs.mountpoint.join("precious"));
    // Clean up both mounts (tmpfs on top, then the dead mirror) before asserting.
    let _ = rustix::mount::unmount(&dirs.mountpoint, rustix::mount::UnmountFlags::DETACH);
    let _ = rustix::mount::unmount(&dirs.mountpoint, rustix::mount::UnmountFlags::DETACH);
    assert_eq!(
        kept.expect("the stacked tmpfs was unmounted by the server's watchdog"),
        b"data"
    );
    let (ok, _, _) = server.stop().expect("reap");
    assert!(!ok);
}

/// Finding 10 (symlink xattrs always reported empty): a symlink's xattrs are listed and read
/// through the mirror as on the source (without following it).
fn symlink_xattrs_are_served(transport: &str) {
    let dirs = Dirs::new("lnkxattr");
    std::fs::write(dirs.source.join("target"), b"t").expect("write");
    let link = dirs.source.join("link");
    std::os::unix::fs::symlink("target", &link).expect("symlink");
    rustix::fs::lsetxattr(
        &link,
        "trusted.onlink",
        b"L",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("lsetxattr on the source's symlink");
    rustix::fs::setxattr(
        dirs.source.join("target"),
        "user.ontarget",
        b"T",
        rustix::fs::XattrFlags::empty(),
    )
    .expect("setxattr on the target");
    let server = dirs.start(&["--transport", transport, "--attr-timeout", "0"]);
    let through = dirs.mountpoint.join("link");
    let mut buf = [0u8; 256];
    let n = rustix::fs::llistxattr(&through, &mut buf).expect("llistxattr through the mount");
    let names: Vec<&[u8]> = buf[..n]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .collect();
    assert_eq!(
        names,
        vec![&b"trusted.onlink"[..]],
        "the link's own xattrs, not the target's"
    );
    let mut value = [0u8; 16];
    let n = rustix::fs::lgetxattr(&through, "trusted.onlink", &mut value).expect("lgetxattr");
    assert_eq!(&value[..n], b"L");
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
}

/// io_uring instances among the fds of process `pid`.
fn uring_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().contains("io_uring"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Finding 10 (smaller): `--` ends the options; `ready:` comes after every io_uring queue is
/// set up; `--threads` with io_uring is not ignored silently; a normal external `umount`
/// ends the server without an error message.
fn command_line_and_lifecycle_details(transport: &str) {
    let dirs = Dirs::new("details");
    std::fs::write(dirs.source.join("file"), b"x").expect("write");
    // `--` then SOURCE MOUNTPOINT (appended by ExampleServer).
    let server = dirs.start(&["--transport", transport, "--threads", "3", "--"]);
    let pid = server.pid().expect("pid");
    if transport == "uring" {
        let queues: usize = server
            .ready_field("queues")
            .and_then(|q| q.parse().ok())
            .expect("queues in the ready line");
        assert_eq!(
            uring_fds(pid),
            queues,
            "ready: printed before every ring was set up"
        );
    }
    assert_eq!(
        std::fs::read(dirs.mountpoint.join("file")).expect("read"),
        b"x"
    );
    // umount(8) as an administrator would, without -l.
    rustix::mount::unmount(&dirs.mountpoint, rustix::mount::UnmountFlags::empty()).expect("umount");
    assert!(
        wait_exit(&server, Duration::from_secs(10)),
        "the server did not exit after umount"
    );
    let (ok, _, stderr) = server.stop().expect("reap");
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("failed") && !stderr.contains("Invalid argument"),
        "{stderr}"
    );
    if transport == "uring" {
        assert!(
            stderr.contains("--threads applies to the dev transport only"),
            "{stderr}"
        );
    }
}

/// Finding 10 (a non-empty mount point is used silently): refused with a one-line error,
/// accepted with `--nonempty`.
#[test]
fn a_non_empty_mount_point_is_refused_unless_asked() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let dirs = Dirs::new("nonempty");
    std::fs::write(dirs.mountpoint.join("hidden"), b"x").expect("write");
    let mut child = Command::new(BIN)
        .arg(&dirs.source)
        .arg(&dirs.mountpoint)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let ended = testkit::fault::wait_until(Duration::from_secs(10), || {
        child.try_wait().is_ok_and(|s| s.is_some())
    });
    if !ended {
        // It mounted and serves: stop it (SIGINT) before failing.
        let _ = testkit::fault::signal(child.id(), rustix::process::Signal::INT);
        let _ = child.wait();
        panic!("a non-empty mount point was used");
    }
    let out = child.wait_with_output().expect("collect");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a non-empty mount point was used");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(!testkit::is_mount_point(&dirs.mountpoint));
    let server = dirs.start(&["--nonempty"]);
    assert!(testkit::is_mount_point(&dirs.mountpoint));
    let (ok, _, stderr) = server.stop().expect("stop");
    assert!(ok, "{stderr}");
    let _ = std::fs::remove_file(dirs.mountpoint.join("hidden"));
}

/// Runs the server with `args` in `cwd` expecting a refusal before mounting: returns its one-line
/// stderr. Fails if it mounted (it is then stopped).
fn refused(args: &[&std::ffi::OsStr], cwd: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run");
    let ended = testkit::fault::wait_until(Duration::from_secs(10), || {
        child.try_wait().is_ok_and(|s| s.is_some())
    });
    if !ended {
        let _ = testkit::fault::signal(child.id(), rustix::process::Signal::INT);
        let _ = child.wait();
        panic!("{args:?} was accepted and mounted");
    }
    let out = child.wait_with_output().expect("collect");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    stderr
}

/// Findings 1 and 2 at the command line: every overlap of source and mount point (`/` as the
/// source included) is refused with one line, and a mount point that is already mounted is
/// refused however it is spelled (trailing slash, relative, `./`, a symlink, a space in the
/// name), leaving the file system there untouched.
#[test]
fn overlaps_and_stacked_mounts_are_refused_whatever_the_spelling() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let base = testkit::temp_dir("refuse").expect("tmp");
    let src = base.join("src");
    let inner = src.join("inner");
    std::fs::create_dir_all(&inner).expect("mkdir");
    let os = |p: &Path| p.as_os_str().to_owned();
    let cases: [(std::ffi::OsString, std::ffi::OsString); 4] = [
        ("/".into(), os(&inner)),
        (os(&src), os(&src)),
        (os(&src), os(&inner)),
        (os(&inner), os(&src)),
    ];
    for (source, mountpoint) in &cases {
        let stderr = refused(&[source, mountpoint], &base);
        assert!(
            stderr.contains("overlap"),
            "{source:?} {mountpoint:?}: {stderr}"
        );
    }
    // A tmpfs with data at "mnt dir" (a space in the name); every spelling is refused.
    let mnt = base.join("mnt dir");
    std::fs::create_dir(&mnt).expect("mkdir");
    let other = base.join("other");
    std::fs::create_dir(&other).expect("mkdir");
    rustix::mount::mount(
        "tmpfs",
        &mnt,
        "tmpfs",
        rustix::mount::MountFlags::empty(),
        None,
    )
    .expect("tmpfs");
    let _tmpfs = testkit::UnmountOnDrop(mnt.clone());
    std::fs::write(mnt.join("precious"), b"data").expect("write");
    let link = base.join("link");
    std::os::unix::fs::symlink(&mnt, &link).expect("symlink");
    let mut slash = mnt.as_os_str().to_owned();
    slash.push("/");
    let spellings: [std::ffi::OsString; 5] = [
        os(&mnt),
        slash,
        "mnt dir".into(),
        "./mnt dir/.".into(),
        os(&link),
    ];
    for spelling in &spellings {
        let stderr = refused(&[other.as_os_str(), spelling], &base);
        assert!(
            stderr.contains("already a mount point"),
            "{spelling:?}: {stderr}"
        );
    }
    assert_eq!(
        std::fs::read(mnt.join("precious")).expect("the tmpfs is still there"),
        b"data"
    );
    drop(_tmpfs);
    let _ = std::fs::remove_dir_all(&base);
}

/// One test per finding and transport: `<name>_over_dev` and `<name>_over_uring`.
macro_rules! per_transport {
    ($($test:ident => $dev:ident, $uring:ident;)*) => {$(
        #[test]
        fn $dev() {
            let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
                return;
            };
            $test("dev");
        }

        #[test]
        fn $uring() {
            let Some(_t) = testkit::kernel_test(Needs::Uring) else {
                return;
            };
            $test("uring");
        }
    )*};
}

per_transport! {
    the_source_atimes_never_change => atime_over_dev, atime_over_uring;
    the_server_never_enters_its_own_mount => own_mount_over_dev, own_mount_over_uring;
    posix_acls_are_enforced_as_the_source_does => acl_over_dev, acl_over_uring;
    trusted_xattrs_are_listed_to_admins_only => trusted_xattrs_over_dev, trusted_xattrs_over_uring;
    inode_numbers_are_unique_across_source_submounts =>
        unique_inos_over_dev, unique_inos_over_uring;
    an_errno_outside_the_kernel_range_becomes_eio => big_errno_over_dev, big_errno_over_uring;
    a_lease_holder_does_not_stall_the_server => lease_over_dev, lease_over_uring;
    ls_l_of_a_huge_directory_under_a_low_fd_limit =>
        fd_limit_over_dev, fd_limit_over_uring;
    many_handles_on_a_huge_directory_stay_small => dir_memory_over_dev, dir_memory_over_uring;
    sigterm_while_a_client_holds_the_mount => busy_sigterm_over_dev, busy_sigterm_over_uring;
    a_second_signal_stops_at_once => second_signal_over_dev, second_signal_over_uring;
    an_external_sigusr1_is_ignored => external_usr1_over_dev, external_usr1_over_uring;
    killing_the_process_group_leaves_no_mount => pgroup_kill_over_dev, pgroup_kill_over_uring;
    the_watchdog_unmounts_only_our_mount => stacked_watchdog_over_dev, stacked_watchdog_over_uring;
    command_line_and_lifecycle_details => details_over_dev, details_over_uring;
    symlink_xattrs_are_served => symlink_xattrs_over_dev, symlink_xattrs_over_uring;
}
