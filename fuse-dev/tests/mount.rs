//! Kernel tests of mounting as root: identity, refusing stacked mounts and overlaps,
//! unmounting only our own mount, fusectl. They mount for real; each mount is unmounted on
//! success, failure and panic (the guards), and every server thread is joined.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod common;

use fuse_dev::fuse_wire::InitConfig;
use fuse_dev::{
    Channel, Device, MountError, MountId, MountOptions, Overlap, Presence, UnmountOutcome,
    check_overlap, is_mount_point,
};
use rustix::mount::{MountFlags, UnmountFlags};
use testkit::Needs;

const SUBTYPE: &str = "fusedevtest";

/// A mount served by a background thread (the tests' small server), torn down in
/// order: unmount (our guard), then the server sees ENODEV; aborted through fusectl if not.
struct Served {
    mount: Option<fuse_dev::Mount>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    dir: PathBuf,
}

impl Served {
    fn start(tag: &str) -> Served {
        let dir = testkit::temp_dir(tag).unwrap();
        let dev = Device::open().unwrap();
        let mount = fuse_dev::Mount::new(&dev, &dir, &MountOptions::new().subtype(SUBTYPE))
            .expect("mount(2) as root");
        let mut chan = Channel::new(dev);
        let mut config = InitConfig::default();
        config.max_background = 16;
        config.congestion_threshold = 12;
        chan.handshake(&config).unwrap();
        let server = std::thread::spawn(move || {
            common::serve(&chan, &common::Counts::default()).map_err(std::io::Error::from)
        });
        Served {
            mount: Some(mount),
            server: Some(server),
            dir,
        }
    }

    fn mount(&mut self) -> &mut fuse_dev::Mount {
        self.mount.as_mut().unwrap()
    }

    /// Waits for the server thread to end (up to 5 s), aborting the connection if it does
    /// not; returns the server's result.
    fn stop_server(&mut self, connection: Option<fuse_dev::Connection>) -> std::io::Result<()> {
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        let connection = connection.map(|c| c.number());
        testkit::join_or_abort(server, Duration::from_secs(5), connection)
            .expect("server thread panicked")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let connection = self.mount.as_ref().and_then(|m| m.connection());
        drop(self.mount.take());
        let _ = self.stop_server(connection);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// `(mount id, major:minor, fstype)` of the mount at `path` in /proc/self/mountinfo: an
/// independent view of what the crate records with statx (the last entry wins: the top of a
/// stack).
fn mountinfo_entry(path: &Path) -> Option<(u64, String, String)> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_str().unwrap();
    info.lines().rev().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.get(4) != Some(&want) {
            return None;
        }
        let sep = fields.iter().position(|f| *f == "-")?;
        Some((
            fields[0].parse().ok()?,
            fields[2].to_owned(),
            fields[sep + 1].to_owned(),
        ))
    })
}

#[test]
fn mount_records_what_the_mount_is() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut served = Served::start("identity");
    let canonical = fs::canonicalize(&served.dir).unwrap();
    let identity = served.mount().identity().clone();
    assert_eq!(identity.mount_point(), canonical);

    let (mnt_id, dev, fstype) = mountinfo_entry(&canonical).expect("in mountinfo");
    assert_eq!(fstype, format!("fuse.{SUBTYPE}"));
    assert_eq!(identity.device().to_string(), dev);
    assert_eq!(identity.device().major, 0, "FUSE devices are anonymous");
    let n = identity.connection_number().unwrap();
    assert!(
        Path::new(&format!("/sys/fs/fuse/connections/{n}")).exists()
            || served.mount().connection().unwrap().dir().is_ok()
    );
    match identity.mount_id() {
        MountId::Reusable(id) => assert_eq!(id, mnt_id),
        // 6.8+: the unique id is a different number space; it must differ from the parent's.
        MountId::Unique(id) => assert_ne!(id, 0),
        MountId::Unknown => panic!("Linux 5.8+ gives a mount id"),
    }
    let parent = fs::metadata(canonical.parent().unwrap()).unwrap();
    assert_eq!(identity.parent().ino, parent.ino());
    assert_eq!(
        rustix::fs::makedev(identity.parent().dev.major, identity.parent().dev.minor),
        parent.dev()
    );
    // The mount is served: a client sees the root directory, on our device.
    let root = fs::metadata(&canonical).unwrap();
    assert!(root.is_dir());
    assert_eq!(
        root.dev(),
        rustix::fs::makedev(0, identity.device().minor),
        "st_dev of the mount root is 0:N"
    );
    assert_eq!(identity.check().unwrap(), Presence::Ours);
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Unmounted);
    assert!(mountinfo_entry(&canonical).is_none(), "unmounted");
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Gone);
    served
        .stop_server(None)
        .expect("server ends cleanly on ENODEV");
}

#[test]
fn refuses_to_mount_on_a_mount_point_however_it_is_named() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let served = Served::start("stack");
    let dir = fs::canonicalize(&served.dir).unwrap();
    let link = dir.with_extension("link");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let cwd = std::env::current_dir().unwrap();
    let relative = PathBuf::from(
        "../".repeat(cwd.components().count() - 1)
            + dir.strip_prefix("/").unwrap().to_str().unwrap(),
    );
    let name = dir.file_name().unwrap().to_str().unwrap();
    let spellings = [
        dir.clone(),
        PathBuf::from(format!("{}/", dir.display())),
        dir.join("."),
        PathBuf::from(format!("{}/../{name}", dir.display())),
        relative,
    ];
    for path in &spellings {
        assert!(is_mount_point(path).unwrap(), "{}", path.display());
        let dev = Device::open().unwrap();
        match fuse_dev::Mount::new(&dev, path, &MountOptions::new().subtype(SUBTYPE)) {
            Err(MountError::AlreadyMounted { path: p }) => assert_eq!(p, dir),
            other => panic!("{}: expected AlreadyMounted, got {other:?}", path.display()),
        }
    }
    // Through a symlink, the query still sees the mount point, and mounting refuses the
    // symlink itself (mounting follows none).
    assert!(is_mount_point(&link).unwrap());
    let via_link = fuse_dev::Mount::new(
        &Device::open().unwrap(),
        &link,
        &MountOptions::new().subtype(SUBTYPE),
    );
    let _ = fs::remove_file(&link);
    match via_link {
        Err(MountError::Symlink { path }) => assert_eq!(path, link),
        other => panic!("{}: expected Symlink, got {other:?}", link.display()),
    }
    // A tmpfs is refused the same way, and "/" too; a plain directory is not a mount point.
    let tmp = testkit::temp_dir("stack-tmpfs").unwrap();
    rustix::mount::mount("fusedevtest", &tmp, "tmpfs", MountFlags::empty(), None).unwrap();
    let tmpfs_refused = matches!(
        fuse_dev::Mount::new(&Device::open().unwrap(), &tmp, &MountOptions::new()),
        Err(MountError::AlreadyMounted { .. })
    );
    rustix::mount::unmount(&tmp, UnmountFlags::empty()).unwrap();
    let _ = fs::remove_dir(&tmp);
    assert!(tmpfs_refused);
    assert!(is_mount_point(Path::new("/")).unwrap());
    let plain = testkit::temp_dir("plain").unwrap();
    let plain_is_mount_point = is_mount_point(&plain).unwrap();
    let _ = fs::remove_dir(&plain);
    assert!(!plain_is_mount_point);
}

#[test]
fn overlapping_source_and_mount_point_are_found_both_ways() {
    let base = testkit::temp_dir("overlap").unwrap();
    let src = base.join("src");
    let inner = src.join("sub").join("mnt");
    let apart = base.join("apart");
    fs::create_dir_all(&inner).unwrap();
    fs::create_dir_all(&apart).unwrap();
    let link = base.join("link-to-src");
    std::os::unix::fs::symlink(&src, &link).unwrap();

    assert_eq!(
        check_overlap(&src, &inner).unwrap(),
        Some(Overlap::MountPointInsideSource)
    );
    assert_eq!(
        check_overlap(&inner, &src).unwrap(),
        Some(Overlap::SourceInsideMountPoint)
    );
    assert_eq!(check_overlap(&src, &link).unwrap(), Some(Overlap::Same));
    assert_eq!(
        check_overlap(&src, &src.join("sub/../")).unwrap(),
        Some(Overlap::Same)
    );
    assert_eq!(
        check_overlap(&link.join("sub"), &inner).unwrap(),
        Some(Overlap::MountPointInsideSource)
    );
    assert_eq!(
        check_overlap(Path::new("/"), &apart).unwrap(),
        Some(Overlap::MountPointInsideSource)
    );
    assert_eq!(check_overlap(&src, &apart).unwrap(), None);
    assert!(matches!(
        check_overlap(&base.join("missing"), &apart),
        Err(MountError::Path { errno, .. }) if errno == rustix::io::Errno::NOENT
    ));
    fs::remove_dir_all(&base).unwrap();
}

/// Mounts a tmpfs on top of `dir` with one file in it.
fn stack_tmpfs(dir: &Path) {
    rustix::mount::mount("fusedevtest-top", dir, "tmpfs", MountFlags::empty(), None).unwrap();
    fs::write(dir.join("precious"), b"data someone else owns").unwrap();
}

#[test]
fn unmount_leaves_a_stacked_tmpfs_alone_and_says_so() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut served = Served::start("covered");
    let dir = served.mount().mount_point().to_owned();
    let ours = served.mount().identity().device();
    stack_tmpfs(&dir);
    let outcome = served.mount().unmount().unwrap();
    let still_there = fs::read(dir.join("precious"));
    // Clean up the tmpfs (the test's own) before asserting, so a failure leaves nothing.
    rustix::mount::unmount(&dir, UnmountFlags::empty()).unwrap();
    match outcome {
        UnmountOutcome::NotOurs(Presence::Other { device, .. }) => assert_ne!(device, ours),
        other => panic!("expected NotOurs, got {other:?}"),
    }
    assert_eq!(still_there.unwrap(), b"data someone else owns");
    // Ours is visible again: now the guard unmounts it.
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Unmounted);
    assert!(mountinfo_entry(&dir).is_none());
}

#[test]
fn dropping_the_guard_leaves_a_stacked_tmpfs_alone() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut served = Served::start("covered-drop");
    let dir = served.mount().mount_point().to_owned();
    let ours = served.mount().identity().device();
    let connection = served.mount().connection();
    stack_tmpfs(&dir);
    drop(served.mount.take());
    let still_there = fs::read(dir.join("precious"));
    rustix::mount::unmount(&dir, UnmountFlags::empty()).unwrap();
    // Ours is still underneath (the guard left everything alone): clean it up by hand,
    // after checking that it is ours.
    let under = mountinfo_entry(&dir);
    if under
        .as_ref()
        .is_some_and(|(_, dev, _)| *dev == ours.to_string())
    {
        rustix::mount::unmount(&dir, UnmountFlags::DETACH).unwrap();
    }
    served.stop_server(connection).unwrap();
    assert_eq!(still_there.unwrap(), b"data someone else owns");
    assert_eq!(under.map(|(_, dev, _)| dev), Some(ours.to_string()));
}

#[test]
fn unmount_after_an_external_umount_reports_gone() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut served = Served::start("gone");
    let dir = served.mount().mount_point().to_owned();
    rustix::mount::unmount(&dir, UnmountFlags::DETACH).unwrap();
    assert_eq!(served.mount().identity().check().unwrap(), Presence::Gone);
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Gone);
}

#[test]
fn fusectl_reads_writes_and_aborts_the_connection() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let mut served = Served::start("fusectl");
    let dir = served.mount().mount_point().to_owned();
    let conn = served.mount().connection().unwrap();
    // The INIT reply asked for max_background 16 and congestion_threshold 12.
    assert_eq!(conn.max_background().unwrap(), 16);
    assert_eq!(conn.congestion_threshold().unwrap(), 12);
    conn.set_max_background(40).unwrap();
    conn.set_congestion_threshold(30).unwrap();
    assert_eq!(conn.max_background().unwrap(), 40);
    assert_eq!(conn.congestion_threshold().unwrap(), 30);
    assert_eq!(conn.waiting().unwrap(), 0);
    conn.set_readahead_kb(1024).unwrap();
    assert_eq!(conn.readahead_kb().unwrap(), 1024);
    assert!(fs::metadata(&dir).unwrap().is_dir());

    conn.abort().unwrap();
    // The server's read sees ENODEV: it ends by itself, cleanly.
    let started = Instant::now();
    served
        .stop_server(None)
        .expect("server ends cleanly after abort");
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = fs::metadata(dir.join("x")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_enotconn()));
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Unmounted);
}

fn libc_enotconn() -> i32 {
    rustix::io::Errno::NOTCONN.raw_os_error()
}

#[test]
fn blksize_is_refused_before_the_syscall_as_the_kernel_would() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let dir = testkit::temp_dir("blksize").unwrap();
    let dev = Device::open().unwrap();
    let refused = fuse_dev::Mount::new(&dev, &dir, &MountOptions::new().blksize(4096));
    // What the kernel says to the same option on a plain fuse mount.
    let data = MountOptions::new()
        .kernel_data(std::os::fd::AsRawFd::as_raw_fd(&dev))
        .unwrap()
        + ",blksize=4096";
    let data = std::ffi::CString::new(data).unwrap();
    let kernel = rustix::mount::mount("fuse", &dir, "fuse", MountFlags::empty(), data.as_c_str());
    if kernel.is_ok() {
        let _ = rustix::mount::unmount(&dir, UnmountFlags::DETACH);
    }
    let _ = fs::remove_dir(&dir);
    assert!(matches!(
        refused,
        Err(MountError::InvalidOption {
            option: "blksize",
            ..
        })
    ));
    assert_eq!(kernel, Err(rustix::io::Errno::INVAL));
}

#[test]
fn a_copy_of_the_identity_unmounts_only_its_own_mount() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    // What a watchdog process does after the server died: it has only the identity.
    let mut served = Served::start("watchdog");
    let identity = served.mount().identity().clone();
    let dir = identity.mount_point().to_owned();
    stack_tmpfs(&dir);
    let covered = identity.unmount_if_ours();
    let still_there = fs::read(dir.join("precious"));
    rustix::mount::unmount(&dir, UnmountFlags::empty()).unwrap();
    let uncovered = identity.unmount_if_ours();
    let again = identity.unmount_if_ours();
    assert!(matches!(
        covered,
        Ok(UnmountOutcome::NotOurs(Presence::Other { .. }))
    ));
    assert_eq!(still_there.unwrap(), b"data someone else owns");
    assert_eq!(uncovered.unwrap(), UnmountOutcome::Unmounted);
    assert_eq!(again.unwrap(), UnmountOutcome::Gone);
    assert!(mountinfo_entry(&dir).is_none());
    assert_eq!(served.mount().unmount().unwrap(), UnmountOutcome::Gone);
}
