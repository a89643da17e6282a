//! The memfs example (`examples/memfs.rs`, included as a module) served to the running
//! kernel over each transport: the read-write operations a user's tools make, checked
//! against what POSIX says they do, then an unmount from outside while clients are busy,
//! after which every thread of the session has ended.
//!
//! The full proof of memfs is `cargo xtask conformance` (pjdfstest and fsx); this test is
//! the quick one that runs with `cargo xtask test`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fuse_session::{Session, Transport};
use fuse_wire::{InitConfig, sys};
use rustix::fs::{AtFlags, CWD, RenameFlags, XattrFlags};
use rustix::io::Errno;
use testkit::Needs;

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/memfs.rs"]
mod memfs;

/// The two tests count the session's threads by name: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Threads of this process whose name starts with `fuse-` (the session names its threads
/// `fuse-session`, `fuse-dev-N`, `fuse-uring-N`, ...).
fn session_threads() -> usize {
    let Ok(tasks) = fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("fuse-"))
        .count()
}

fn errno(result: std::io::Result<impl Sized>) -> Option<Errno> {
    result.err()?.raw_os_error().map(Errno::from_raw_os_error)
}

/// Create, write, read, rename (plain, NOREPLACE, EXCHANGE), links, truncate, chmod,
/// xattrs, FALLOCATE, a directory listing, STATFS.
fn file_system_operations(dir: &Path) {
    let a = dir.join("a");
    let b = dir.join("b");
    fs::write(&a, b"hello world").expect("create and write a");
    assert_eq!(fs::read(&a).expect("read a"), b"hello world");
    let meta = fs::metadata(&a).expect("stat a");
    assert_eq!((meta.len(), meta.nlink()), (11, 1));
    assert!(meta.file_type().is_file());

    // One write larger than any single request (the kernel splits it at max_write), with
    // a pattern that shows a misplaced chunk.
    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
    fs::write(&b, &big).expect("write 3 MiB");
    assert!(
        fs::read(&b).expect("read 3 MiB back") == big,
        "3 MiB read back differs"
    );

    // RENAME2: NOREPLACE refuses an existing target, EXCHANGE swaps the two names.
    let noreplace = rustix::fs::renameat_with(CWD, &a, CWD, &b, RenameFlags::NOREPLACE);
    assert_eq!(noreplace, Err(Errno::EXIST));
    rustix::fs::renameat_with(CWD, &a, CWD, &b, RenameFlags::EXCHANGE).expect("EXCHANGE");
    assert_eq!(fs::read(&b).expect("read b"), b"hello world");
    assert_eq!(fs::metadata(&a).expect("stat a").len(), big.len() as u64);
    fs::rename(&b, dir.join("c")).expect("rename b to c");
    assert_eq!(errno(fs::metadata(&b)), Some(Errno::NOENT));
    let c = dir.join("c");

    // Links: a hard link counts, a symlink reads back its target.
    fs::hard_link(&c, dir.join("c2")).expect("link");
    assert_eq!(fs::metadata(&c).expect("stat c").nlink(), 2);
    std::os::unix::fs::symlink("c", dir.join("s")).expect("symlink");
    assert_eq!(
        fs::read_link(dir.join("s")).expect("readlink"),
        Path::new("c")
    );
    assert_eq!(
        fs::read(dir.join("s")).expect("read through s"),
        b"hello world"
    );
    fs::remove_file(dir.join("c2")).expect("unlink c2");
    assert_eq!(fs::metadata(&c).expect("stat c").nlink(), 1);

    // SETATTR: size (through a path and through an open file), mode.
    fs::OpenOptions::new()
        .write(true)
        .open(&c)
        .and_then(|f| f.set_len(5))
        .expect("truncate c to 5");
    assert_eq!(fs::read(&c).expect("read c"), b"hello");
    fs::set_permissions(&c, fs::Permissions::from_mode(0o600)).expect("chmod");
    assert_eq!(fs::metadata(&c).expect("stat c").mode(), 0o100600);

    // Writes at an offset past the end leave a hole of zeros.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&c)
        .expect("open c");
    file.seek(SeekFrom::Start(8)).expect("seek");
    file.write_all(b"!").expect("write at 8");
    let mut all = Vec::new();
    file.seek(SeekFrom::Start(0)).expect("seek");
    file.read_to_end(&mut all).expect("read c");
    assert_eq!(all, b"hello\0\0\0!");

    // FALLOCATE: a punched hole reads as zeros and keeps the size; a reservation grows it.
    rustix::fs::fallocate(
        &file,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        1,
        2,
    )
    .expect("punch a hole");
    assert_eq!(fs::read(&c).expect("read c"), b"h\0\0lo\0\0\0!");
    rustix::fs::fallocate(&file, rustix::fs::FallocateFlags::empty(), 0, 4096)
        .expect("reserve 4096 bytes");
    assert_eq!(file.metadata().expect("fstat").len(), 4096);
    drop(file);

    // Extended attributes: create, read, create again (EEXIST), replace a missing one
    // (ENODATA), list, remove.
    rustix::fs::setxattr(&c, "user.colour", b"blue", XattrFlags::CREATE).expect("setxattr");
    let mut value = [0u8; 16];
    let n = rustix::fs::getxattr(&c, "user.colour", &mut value).expect("getxattr");
    assert_eq!(&value[..n], b"blue");
    let again = rustix::fs::setxattr(&c, "user.colour", b"red", XattrFlags::CREATE);
    assert_eq!(again, Err(Errno::EXIST));
    let missing = rustix::fs::setxattr(&c, "user.size", b"big", XattrFlags::REPLACE);
    assert_eq!(missing, Err(Errno::NODATA));
    let mut names = [0u8; 64];
    let n = rustix::fs::listxattr(&c, &mut names).expect("listxattr");
    assert_eq!(&names[..n], b"user.colour\0");
    rustix::fs::removexattr(&c, "user.colour").expect("removexattr");
    let gone = rustix::fs::getxattr(&c, "user.colour", &mut value);
    assert_eq!(gone, Err(Errno::NODATA));

    // Directories: link counts, a listing with types, a non-empty one refused by RMDIR.
    let before = fs::metadata(dir).expect("stat the root").nlink();
    fs::create_dir(dir.join("d")).expect("mkdir d");
    assert_eq!(
        fs::metadata(dir).expect("stat the root").nlink(),
        before + 1
    );
    File::create(dir.join("d/inner")).expect("create d/inner");
    assert_eq!(errno(fs::remove_dir(dir.join("d"))), Some(Errno::NOTEMPTY));
    let mut listed: Vec<(String, &str)> = fs::read_dir(dir)
        .expect("readdir")
        .map(|entry| {
            let entry = entry.expect("an entry");
            let kind = entry.file_type().expect("its type");
            let kind = if kind.is_dir() {
                "dir"
            } else if kind.is_symlink() {
                "symlink"
            } else if kind.is_fifo() {
                "fifo"
            } else {
                "file"
            };
            (entry.file_name().to_string_lossy().into_owned(), kind)
        })
        .collect();
    listed.sort();
    let expected = [("a", "file"), ("c", "file"), ("d", "dir"), ("s", "symlink")];
    let expected: Vec<(String, &str)> = expected.iter().map(|(n, k)| (n.to_string(), *k)).collect();
    assert_eq!(listed, expected);
    fs::remove_file(dir.join("d/inner")).expect("unlink d/inner");
    fs::remove_dir(dir.join("d")).expect("rmdir d");
    assert_eq!(fs::metadata(dir).expect("stat the root").nlink(), before);

    // A name longer than NAME_MAX (255) is refused.
    let long = dir.join("n".repeat(256));
    assert_eq!(errno(File::create(long)), Some(Errno::NAMETOOLONG));
    let st = rustix::fs::statvfs(dir).expect("statvfs");
    assert_eq!(st.f_namemax, 255);

    // Timestamps set explicitly come back.
    let stamp = rustix::fs::Timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 5,
    };
    let times = rustix::fs::Timestamps {
        last_access: stamp,
        last_modification: stamp,
    };
    rustix::fs::utimensat(CWD, &c, &times, AtFlags::empty()).expect("utimensat");
    let meta = fs::metadata(&c).expect("stat c");
    assert_eq!((meta.mtime(), meta.mtime_nsec()), (1_000_000_000, 5));
    assert_eq!((meta.atime(), meta.atime_nsec()), (1_000_000_000, 5));
}

/// Four clients keep reading and listing; the file system is unmounted from outside under
/// them. The session must end by itself, every one of its threads with it.
fn unmounted_under_load(dir: &Path, session: fuse_session::BackgroundSession) {
    let busy = AtomicBool::new(true);
    /// Ends the clients also when an assertion fails (the scope waits for them).
    struct Quiet<'a>(&'a AtomicBool);
    impl Drop for Quiet<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }
    let report = std::thread::scope(|scope| {
        let _quiet = Quiet(&busy);
        for _ in 0..4 {
            scope.spawn(|| {
                while busy.load(Ordering::Relaxed) {
                    // Errors are expected once the mount is gone (the temporary directory
                    // underneath is empty).
                    let _ = fs::read(dir.join("a"));
                    let _ = fs::read_dir(dir).map(|d| d.count());
                }
            });
        }
        std::thread::sleep(Duration::from_millis(300));
        // A lazy unmount (`umount -l`), as a plain one is refused while a client has the
        // directory open: the connection ends once the clients' open files are closed.
        rustix::mount::unmount(dir, rustix::mount::UnmountFlags::DETACH).expect("umount -l");
        // Outside the scope: a session that never ends fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(session.join());
        });
        rx.recv_timeout(Duration::from_secs(10))
    });
    let report = report
        .expect("the session ended within 10 s of the unmount")
        .expect("a clean end");
    let writes = report
        .requests
        .iter()
        .find(|(opcode, _)| *opcode == sys::FUSE_WRITE)
        .map_or(0, |(_, n)| *n);
    assert!(writes >= 4, "WRITEs counted: {report:?}");
    assert!(!testkit::is_mount_point(dir));
    assert_eq!(session_threads(), 0, "a thread of the session is left");
}

fn serve_memfs(transport: Transport, tag: &str) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    assert_eq!(session_threads(), 0, "threads left by an earlier test");
    let dir: PathBuf = testkit::temp_dir(tag).expect("temporary mount point");
    let options = fuse_dev::MountOptions::new().subtype("memfs-test");
    let mut init = InitConfig::default();
    init.want |= fuse_wire::init_flags::DO_READDIRPLUS;
    let session = Session::mount(&dir, &options)
        .expect("mount")
        .transport(transport)
        .init(init)
        .spawn(memfs::MemFs::new())
        .expect("the session starts");
    // On a failed assertion the session is dropped, which unmounts it.
    file_system_operations(&dir);
    unmounted_under_load(&dir, session);
    let _ = fs::remove_dir(&dir);
}

#[test]
fn memfs_over_dev_fuse() {
    let Some(_test) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    serve_memfs(Transport::Dev, "memfs-dev");
}

#[test]
fn memfs_over_io_uring() {
    let Some(_test) = testkit::kernel_test(Needs::Uring) else {
        return;
    };
    serve_memfs(Transport::Uring, "memfs-uring");
}
