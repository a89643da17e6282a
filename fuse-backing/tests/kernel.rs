//! fuse-backing against the running kernel: real mounts through `/dev/fuse` + mount(2), with
//! passthrough negotiated in INIT (testkit), as root.
//!
//! Each test starts with the testkit guard (`testkit::kernel_test(Needs::...)`) and
//! asserts what the running kernel should do (6.1 has no passthrough and no SYNC_INIT, 6.12 no
//! SYNC_INIT); every mount is a testkit `Session`,
//! unmounted (and its server thread joined) on success, failure and panic.

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fuse_backing::{
    Backing, BackingId, Cause, Errno, IomapDevice, Operation, Passthrough, PassthroughSlot,
    attach_to_session, clone_device, close, close_raw, open, open_with_flags, sync_init,
};
use fuse_kernel_sys as sys;
use testkit::{Feature, InitOptions, MemFs, Needs, Session};

/// A mounted session with passthrough accepted in INIT (`max_stack_depth` 1) and no server
/// thread yet.
fn passthrough_session() -> Session {
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev, &InitOptions::passthrough(1)).expect("mount + INIT");
    assert_ne!(
        session.negotiated.accepted & sys::FUSE_PASSTHROUGH,
        0,
        "the kernel did not offer FUSE_PASSTHROUGH (offered {:#x})",
        session.negotiated.offered
    );
    assert_eq!(session.negotiated.init_out.max_stack_depth, 1);
    session
}

/// A mounted session whose INIT reply did not accept passthrough.
fn plain_session() -> Session {
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let session = Session::mount_only(dev, &InitOptions::default()).expect("mount + INIT");
    assert_eq!(session.negotiated.accepted & sys::FUSE_PASSTHROUGH, 0);
    session
}

/// Bytes that differ at every position of a page and between pages.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
        .collect()
}

/// A regular file with `content` in a fresh directory on the (non-FUSE) temporary file
/// system, open read-only; the directory goes when the returned guard drops.
struct BackingFile {
    dir: PathBuf,
    file: File,
}

impl BackingFile {
    fn new(content: &[u8]) -> BackingFile {
        let dir = testkit::temp_dir("backing").expect("temp dir");
        let path = dir.join("data");
        std::fs::write(&path, content).expect("write backing file");
        let file = File::open(&path).expect("open backing file");
        BackingFile { dir, file }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dev_null() -> File {
    File::open("/dev/null").expect("open /dev/null")
}

/// An fd number that cannot be open: above the kernel's largest possible `nr_open`
/// (`INT_MAX & -BITS_PER_LONG`), so every fd lookup of it fails with `EBADF`.
#[allow(unsafe_code)]
fn never_open_fd() -> BorrowedFd<'static> {
    // SAFETY: nothing is ever read or written through this fd by our code; it is only passed
    // to the kernel, which looks the number up and finds nothing (no fd this high can exist),
    // and it is never closed.
    unsafe { BorrowedFd::borrow_raw(i32::MAX) }
}

#[test]
fn open_gives_an_id_and_close_releases_it_once() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let session = passthrough_session();
    let dev = session.dev.as_fd();
    let backing = BackingFile::new(b"backing bytes");

    let id = open::<Passthrough>(dev, backing.fd()).expect("BACKING_OPEN");
    assert!(id.get() >= 1);
    assert!(id.open_out_backing_id() >= 1);
    let second = open::<Passthrough>(dev, backing.fd()).expect("second BACKING_OPEN");
    assert_ne!(second, id, "two live ids of one connection are distinct");

    close(dev, id).expect("BACKING_CLOSE");
    let again = close(dev, id).expect_err("closing twice");
    assert_eq!(again.errno(), Errno::NOENT);
    assert_eq!(again.operation(), Operation::BackingClose);
    assert_eq!(again.cause(), Cause::Kernel);
    assert!(!again.is_unsupported());
    close(dev, second).expect("closing the second id");

    // An O_PATH fd is enough (the kernel takes the file with fget_raw).
    let o_path = rustix::fs::open(
        backing.dir.join("data"),
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .expect("O_PATH open");
    let id = open::<Passthrough>(dev, o_path.as_fd()).expect("BACKING_OPEN of an O_PATH fd");
    close(dev, id).unwrap();

    session.finish().expect("session ends cleanly");
}

#[test]
fn the_guard_closes_on_drop_and_only_once() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let session = passthrough_session();
    let dev: &OwnedFd = &session.dev;
    let backing = BackingFile::new(b"guarded");

    // Borrowing guard: dropped, so a manual close finds nothing.
    let guard = Backing::<Passthrough, _>::open(dev, backing.fd()).expect("open guard");
    let id = guard.id();
    assert!(id.get() >= 1);
    assert_eq!(guard.device().as_raw_fd(), dev.as_raw_fd());
    drop(guard);
    assert_eq!(close(dev.as_fd(), id).unwrap_err().errno(), Errno::NOENT);

    // Owning guard (Arc of the device fd).
    let guard =
        Backing::<Passthrough, Arc<OwnedFd>>::open(session.dev.clone(), backing.fd()).unwrap();
    let id = guard.id();
    drop(guard);
    assert_eq!(close(dev.as_fd(), id).unwrap_err().errno(), Errno::NOENT);

    // Explicit close reports success, then the id is gone (and the guard's drop did not run
    // a second close that could hit a recycled id).
    let guard = Backing::<Passthrough, _>::open(dev, backing.fd()).unwrap();
    let id = guard.id();
    guard.close().expect("explicit close");
    assert_eq!(close(dev.as_fd(), id).unwrap_err().errno(), Errno::NOENT);

    // into_raw gives the id up without closing it: the manual close succeeds.
    let id = Backing::<Passthrough, _>::open(dev, backing.fd())
        .unwrap()
        .into_raw();
    close(dev.as_fd(), id).expect("the id survived into_raw");

    // from_raw takes ownership: its drop closes.
    let id = open::<Passthrough>(dev.as_fd(), backing.fd()).unwrap();
    drop(Backing::from_raw(dev, id));
    assert_eq!(close(dev.as_fd(), id).unwrap_err().errno(), Errno::NOENT);

    session.finish().expect("session ends cleanly");
}

#[test]
fn bad_backing_files_get_the_kernels_errno() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let session = passthrough_session();
    let dev = session.dev.as_fd();

    let e = open::<Passthrough>(dev, never_open_fd()).unwrap_err();
    assert_eq!((e.errno(), e.cause()), (Errno::BADF, Cause::Kernel));
    assert!(!e.is_unsupported());

    let dir = File::open(std::env::temp_dir()).expect("open a directory");
    let e = open::<Passthrough>(dev, dir.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::ISDIR);
    assert!(!e.is_unsupported());

    let null = dev_null();
    let e = open::<Passthrough>(dev, null.as_fd()).unwrap_err();
    assert_eq!((e.errno(), e.cause()), (Errno::INVAL, Cause::Kernel));
    assert_eq!(
        e.operation(),
        Operation::BackingOpen(fuse_backing::BackingType::Passthrough)
    );
    assert!(!e.is_unsupported(), "a non-regular file is a real failure");

    // Ids the kernel never allocates are refused by the kernel; unknown ones are ENOENT.
    for raw in [0, u32::MAX, 1 << 31] {
        let e = close_raw(dev, raw).unwrap_err();
        assert_eq!(e.errno(), Errno::INVAL, "close of {raw}");
        assert!(BackingId::<Passthrough>::new(raw).is_none());
    }
    let unknown = BackingId::<Passthrough>::new(i32::MAX as u32).unwrap();
    assert_eq!(close(dev, unknown).unwrap_err().errno(), Errno::NOENT);

    // The connection is still fine.
    let backing = BackingFile::new(b"ok");
    let id = open::<Passthrough>(dev, backing.fd()).expect("good open after bad ones");
    close(dev, id).unwrap();

    session.finish().expect("session ends cleanly");
}

#[test]
fn bad_flags_are_rejected_before_the_system_call() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    let backing = BackingFile::new(b"flags");
    let null = dev_null();

    // With /dev/null as the "device", the kernel would answer ENOTTY ...
    let e = open::<Passthrough>(null.as_fd(), backing.fd()).unwrap_err();
    assert_eq!((e.errno(), e.cause()), (Errno::NOTTY, Cause::Kernel));
    // ... so EINVAL with Cause::InvalidFlags proves that no ioctl was made.
    for flags in [1, 1 << 7, 1 << 8, 1 << 31] {
        let e = open_with_flags::<Passthrough>(null.as_fd(), backing.fd(), flags).unwrap_err();
        assert_eq!(e.errno(), Errno::INVAL, "flags {flags:#x}");
        assert_eq!(e.cause(), Cause::InvalidFlags, "flags {flags:#x}");
        assert!(!e.is_unsupported());
        let e = Backing::<IomapDevice, _>::open_with_flags(&null, backing.fd(), flags).unwrap_err();
        assert_eq!(e.cause(), Cause::InvalidFlags, "flags {flags:#x}");
    }

    // The same on a real connection (with passthrough where the kernel has it).
    let session = if caps.passthrough() {
        passthrough_session()
    } else {
        plain_session()
    };
    let e = open_with_flags::<Passthrough>(session.dev.as_fd(), backing.fd(), 1 << 8).unwrap_err();
    assert_eq!((e.errno(), e.cause()), (Errno::INVAL, Cause::InvalidFlags));
    session.finish().expect("session ends cleanly");
}

#[test]
fn devices_that_cannot_do_passthrough_are_reported_as_unsupported() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    // Before Linux 6.9 the kernel does not know the backing ioctls at all: ENOTTY, also on a
    // real /dev/fuse fd. From 6.9 on, a fd that cannot do passthrough gets EPERM.
    let refused = if caps.at_least(testkit::kernel::PASSTHROUGH_SINCE) {
        Errno::PERM
    } else {
        Errno::NOTTY
    };
    let backing = BackingFile::new(b"unsupported");

    // Not a FUSE device at all: the ioctl is unknown.
    for not_fuse in [dev_null(), backing.file.try_clone().unwrap()] {
        let e = open::<Passthrough>(not_fuse.as_fd(), backing.fd()).unwrap_err();
        assert_eq!(e.errno(), Errno::NOTTY);
        assert!(e.is_unsupported());
        let e = close_raw(not_fuse.as_fd(), 1).unwrap_err();
        assert_eq!(e.errno(), Errno::NOTTY);
        assert!(e.is_unsupported());
    }

    // A /dev/fuse fd that is not mounted.
    let unmounted = testkit::open_dev().unwrap();
    let e = open::<Passthrough>(unmounted.as_fd(), backing.fd()).unwrap_err();
    assert_eq!(e.errno(), refused);
    assert!(e.is_unsupported());
    let e = close_raw(unmounted.as_fd(), 1).unwrap_err();
    assert_eq!(e.errno(), refused);
    assert!(e.is_unsupported());

    // A mounted connection whose INIT reply did not accept FUSE_PASSTHROUGH.
    let session = plain_session();
    let e = open::<Passthrough>(session.dev.as_fd(), backing.fd()).unwrap_err();
    assert_eq!(e.errno(), refused);
    assert!(e.is_unsupported());
    let hint = if refused == Errno::PERM {
        "not negotiated"
    } else {
        "does not know this ioctl"
    };
    assert!(e.to_string().contains(hint), "{e}");
    session.finish().expect("session ends cleanly");
}

#[test]
fn the_iomap_kind_fails_cleanly_on_mainline() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    let backing = BackingFile::new(b"not a block device");

    // Nothing negotiated: EPERM, also unsupported (ENOTTY before Linux 6.9, which does not
    // know the ioctl).
    let session = plain_session();
    let e = open::<IomapDevice>(session.dev.as_fd(), backing.fd()).unwrap_err();
    let refused = if caps.at_least(testkit::kernel::PASSTHROUGH_SINCE) {
        Errno::PERM
    } else {
        Errno::NOTTY
    };
    assert_eq!(e.errno(), refused);
    assert!(e.is_unsupported());
    session.finish().expect("session ends cleanly");
    if !t.check(Needs::Passthrough) {
        return;
    }

    // Passthrough negotiated: mainline refuses any type bit with EINVAL.
    let session = passthrough_session();
    let dev = session.dev.as_fd();
    let e = open::<IomapDevice>(dev, backing.fd()).expect_err("mainline has no iomap type");
    assert_eq!(e.errno(), Errno::INVAL);
    assert_eq!(e.cause(), Cause::Kernel);
    assert_eq!(
        e.operation(),
        Operation::BackingOpen(fuse_backing::BackingType::Iomap)
    );
    assert!(e.is_unsupported(), "{e}");
    let e = Backing::<IomapDevice, _>::open(&session.dev, backing.fd()).unwrap_err();
    assert!(e.is_unsupported());
    // The refusal left the connection usable for passthrough.
    let id = open::<Passthrough>(dev, backing.fd()).expect("passthrough still works");
    close(dev, id).unwrap();
    session.finish().expect("session ends cleanly");
}

#[test]
fn backing_ioctls_are_unsupported_before_linux_6_9() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Without(Feature::Passthrough)) else {
        return;
    };
    // The kernel neither offers passthrough in INIT nor knows the ioctls.
    let session = plain_session();
    assert_eq!(session.negotiated.offered & sys::FUSE_PASSTHROUGH, 0);
    let backing = BackingFile::new(b"old kernel");
    let dev = session.dev.as_fd();
    let e = open::<Passthrough>(dev, backing.fd()).unwrap_err();
    assert_eq!((e.errno(), e.cause()), (Errno::NOTTY, Cause::Kernel));
    assert!(e.is_unsupported(), "{e}");
    let e = Backing::<Passthrough, _>::open(&session.dev, backing.fd()).unwrap_err();
    assert!(e.is_unsupported(), "{e}");
    let e = close_raw(dev, 1).unwrap_err();
    assert_eq!(
        (e.errno(), e.operation()),
        (Errno::NOTTY, Operation::BackingClose)
    );
    assert!(e.is_unsupported(), "{e}");
    // CLONE (Linux 4.2) works on the same kernel.
    let clone = clone_device(dev).expect("CLONE");
    drop(clone);
    session.finish().expect("session ends cleanly");
}

#[test]
fn passthrough_reads_come_from_the_backing_file_without_read_requests() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let mut session = passthrough_session();
    // Not a multiple of the page size, larger than one READ (max_pages 32 = 128 KiB).
    let content = pattern(3 * 1024 * 1024 + 123);
    let backing_file = BackingFile::new(&content);
    let backing =
        Backing::<Passthrough, Arc<OwnedFd>>::open(session.dev.clone(), backing_file.fd())
            .expect("BACKING_OPEN on a negotiated connection");

    let served = b"served by the FUSE server itself".to_vec();
    let mut fs = MemFs::new();
    fs.add_passthrough_file(
        1,
        "passthrough.bin",
        backing.id().open_out_backing_id(),
        content.len() as u64,
    );
    fs.add_file(1, "served.bin", served.clone());
    session
        .spawn_server(session.dev.clone(), fs)
        .expect("server thread");
    let root = session.path().to_owned();

    // A client thread reads the passthrough file through the mount.
    let read_back = std::thread::scope(|s| {
        s.spawn(|| std::fs::read(root.join("passthrough.bin")))
            .join()
            .expect("client thread")
    })
    .expect("read through the mount");
    assert_eq!(read_back.len(), content.len());
    assert!(
        read_back == content,
        "passthrough read returned other bytes"
    );
    assert!(
        session.counters.count(sys::FUSE_OPEN) >= 1,
        "OPEN went to the server"
    );
    assert_eq!(
        session.counters.count(sys::FUSE_READ),
        0,
        "no READ for passthrough"
    );

    // An open file keeps working after its id is closed (the kernel holds the backing file).
    let mut open_file = File::open(root.join("passthrough.bin")).expect("open through mount");
    let id = backing.id();
    backing.close().expect("BACKING_CLOSE");
    assert_eq!(
        close(session.dev.as_fd(), id).unwrap_err().errno(),
        Errno::NOENT
    );
    let mut again = Vec::new();
    open_file.read_to_end(&mut again).expect("read after close");
    assert!(again == content, "read after close returned other bytes");
    drop(open_file);
    assert_eq!(session.counters.count(sys::FUSE_READ), 0);

    // The counter does count: a file without passthrough is read through READ requests.
    assert_eq!(
        std::fs::read(root.join("served.bin")).expect("served read"),
        served
    );
    assert!(session.counters.count(sys::FUSE_READ) >= 1);

    // A file on this FUSE mount (stacking depth 1) cannot back passthrough with a
    // max_stack_depth of 1: ELOOP, a real failure.
    let on_mount = File::open(root.join("served.bin")).expect("open on mount");
    let e = open::<Passthrough>(session.dev.as_fd(), on_mount.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::LOOP);
    assert!(!e.is_unsupported());
    drop(on_mount);

    session.finish().expect("server ends cleanly");
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        !mounts.contains(root.to_str().unwrap()),
        "mount left behind"
    );
}

/// Backing ids belong to inodes: two opens of one inode answered with one id (a
/// `PassthroughSlot`) both read the backing file; answered with two different ids, the second
/// concurrent open fails with `EIO` (the kernel keeps one backing file per inode).
#[test]
fn one_backing_file_per_inode_a_second_id_fails_the_open_with_eio() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let mut session = passthrough_session();
    let content = pattern(200 * 1024 + 7);
    let (file_a, file_b, file_c) = (
        BackingFile::new(&content),
        BackingFile::new(&content),
        BackingFile::new(&content),
    );
    let slot = PassthroughSlot::<Arc<OwnedFd>>::default();
    assert_eq!(slot.id(), None);
    let id = slot
        .get_or_open(&session.dev, file_a.fd())
        .expect("BACKING_OPEN on a negotiated connection");
    // Later opens of the inode reuse the id: no second registration.
    assert_eq!(slot.get_or_open(&session.dev, file_b.fd()).unwrap(), id);
    assert_eq!(slot.id(), Some(id));
    // The per-open mistake: two ids for one inode.
    let b = Backing::<Passthrough, Arc<OwnedFd>>::open(session.dev.clone(), file_b.fd()).unwrap();
    let c = Backing::<Passthrough, Arc<OwnedFd>>::open(session.dev.clone(), file_c.fd()).unwrap();
    assert!(b.id() != id && c.id() != id && b.id() != c.id());
    let mut fs = MemFs::new();
    let size = content.len() as u64;
    fs.add_passthrough_file(1, "one-id.bin", id.open_out_backing_id(), size);
    let ids = [b.id().open_out_backing_id(), c.id().open_out_backing_id()];
    fs.add_passthrough_file_ids(1, "two-ids.bin", &ids, size);
    session
        .spawn_server(session.dev.clone(), fs)
        .expect("server thread");
    let root = session.path().to_owned();

    let read_all = |mut f: &File| {
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).map(|_| bytes)
    };
    let first = File::open(root.join("one-id.bin")).expect("first open, one id");
    let second = File::open(root.join("one-id.bin")).expect("second open, the same id");
    assert!(read_all(&first).unwrap() == content);
    assert!(read_all(&second).unwrap() == content);
    drop((first, second));

    let first = File::open(root.join("two-ids.bin")).expect("first open, first id");
    let e = File::open(root.join("two-ids.bin")).expect_err("a second backing file for the inode");
    assert_eq!(e.raw_os_error(), Some(Errno::IO.raw_os_error()), "{e}");
    assert!(
        read_all(&first).unwrap() == content,
        "the first open still works"
    );
    drop(first);
    assert_eq!(session.counters.count(sys::FUSE_READ), 0);

    slot.close().expect("BACKING_CLOSE of the slot's id");
    assert_eq!(slot.id(), None);
    assert_eq!(
        close(session.dev.as_fd(), id).unwrap_err().errno(),
        Errno::NOENT
    );
    drop((b, c));
    session.finish().expect("server ends cleanly");
}

#[test]
fn a_cloned_fd_receives_and_answers_requests_of_the_session() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    let mut session = plain_session();
    let clone = clone_device(session.dev.as_fd()).expect("FUSE_DEV_IOC_CLONE");

    // Attach errors, on the side.
    let fresh = testkit::open_dev().unwrap();
    let e = attach_to_session(fresh.as_fd(), clone.as_fd()).map(|()| "attached");
    assert_eq!(e, Ok("attached"), "a clone can itself be cloned");
    let e = attach_to_session(fresh.as_fd(), session.dev.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::INVAL, "the new fd is already attached");
    assert!(!e.is_unsupported());
    let unmounted = testkit::open_dev().unwrap();
    let e = attach_to_session(testkit::open_dev().unwrap().as_fd(), unmounted.as_fd()).unwrap_err();
    // Seen: EINVAL on 6.1 and 6.12, EPERM on 6.18, 7.2 and 7.3 (the kernel's device lookup
    // tells "not mounted yet" apart since then); untested kernels between may answer either.
    let not_mounted: &[Errno] = if caps.at_least(testkit::kernel::SYNC_INIT_SINCE) {
        &[Errno::PERM]
    } else if caps.at_least(testkit::kernel::Version(6, 13)) {
        &[Errno::PERM, Errno::INVAL]
    } else {
        &[Errno::INVAL]
    };
    assert!(
        not_mounted.contains(&e.errno()),
        "session fd not mounted: {e} (expected {not_mounted:?} on {})",
        caps.release
    );
    assert!(!e.is_unsupported());
    let null = dev_null();
    let e = attach_to_session(testkit::open_dev().unwrap().as_fd(), null.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::INVAL, "session fd not /dev/fuse");
    let e = attach_to_session(null.as_fd(), session.dev.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::NOTTY, "new fd not /dev/fuse");
    assert!(e.is_unsupported());
    drop(fresh);

    // Only the clone is served: every answer the client gets went through it.
    let content = pattern(300_000);
    let mut fs = MemFs::new();
    fs.add_file(1, "through-clone.bin", content.clone());
    session
        .spawn_server(Arc::new(clone), fs)
        .expect("server thread on the clone");
    let root = session.path().to_owned();
    let read_back = std::thread::scope(|s| {
        s.spawn(|| std::fs::read(root.join("through-clone.bin")))
            .join()
            .expect("client thread")
    })
    .expect("read through the mount");
    assert!(
        read_back == content,
        "read through the clone returned other bytes"
    );
    assert!(session.counters.count(sys::FUSE_LOOKUP) >= 1);
    assert!(session.counters.count(sys::FUSE_READ) >= 1);

    session
        .finish()
        .expect("clone server ends cleanly at unmount");
}

#[test]
fn sync_init_marks_fresh_fds_and_refuses_mounted_ones() {
    let Some(t) = testkit::kernel_test_leak_checked(Needs::Capabilities) else {
        return;
    };
    let caps = t.caps();
    if !caps.at_least(testkit::kernel::SYNC_INIT_SINCE) {
        // Before Linux 6.18 the ioctl is unknown: ENOTTY, reported as unsupported.
        let fresh = testkit::open_dev().unwrap();
        let e = sync_init(fresh.as_fd()).unwrap_err();
        assert_eq!(
            (e.errno(), e.operation()),
            (Errno::NOTTY, Operation::SyncInit)
        );
        assert!(e.is_unsupported(), "{e}");
        return;
    }
    if !t.check(Needs::SyncInit) {
        return;
    }
    let fresh = testkit::open_dev().unwrap();
    sync_init(fresh.as_fd()).expect("SYNC_INIT on a fresh fd (Linux 6.18)");
    sync_init(fresh.as_fd()).expect("SYNC_INIT is repeatable");
    drop(fresh);

    let null = dev_null();
    let e = sync_init(null.as_fd()).unwrap_err();
    assert_eq!(e.errno(), Errno::NOTTY);
    assert!(e.is_unsupported());

    let session = plain_session();
    let e = sync_init(session.dev.as_fd()).unwrap_err();
    assert_eq!(
        (e.errno(), e.operation()),
        (Errno::INVAL, Operation::SyncInit)
    );
    assert!(!e.is_unsupported());
    session.finish().expect("session ends cleanly");
}

#[test]
fn after_sync_init_mount_returns_only_once_init_is_answered() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::SyncInit) else {
        return;
    };
    let dev = Arc::new(testkit::open_dev().unwrap());
    sync_init(dev.as_fd()).expect("SYNC_INIT");
    let replied = Arc::new(AtomicBool::new(false));

    // The server must read before mount(2) is called: the mount waits for the INIT reply.
    let server = {
        let dev = dev.clone();
        let replied = replied.clone();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut buf = vec![0u8; 1 << 20];
            let request = testkit::read_request(dev.as_fd(), &mut buf)?
                .ok_or_else(|| std::io::Error::other("no INIT"))?;
            let Some(init_in) = request
                .arg::<sys::fuse_init_in>()
                .filter(|_| request.opcode() == sys::FUSE_INIT)
            else {
                // Fail the INIT (and with it the mount) rather than leave mount(2) waiting.
                let eproto = Errno::PROTO.raw_os_error();
                testkit::reply(dev.as_fd(), request.header.unique, eproto, &[])?;
                return Err(std::io::Error::other("first request is not INIT"));
            };
            std::thread::sleep(Duration::from_millis(300));
            replied.store(true, Ordering::SeqCst);
            let negotiated = testkit::init_reply(&init_in, &InitOptions::default())?;
            testkit::reply(
                dev.as_fd(),
                request.header.unique,
                0,
                &[testkit::bytes_of(&negotiated.init_out)],
            )
        })
    };
    // If mount(2) failed here, the reader above would stay blocked until the test process
    // exits; it holds no mount.
    let mount = testkit::Mount::new(dev.as_fd()).expect("mount with a SYNC_INIT fd");
    let answered_before_mount_returned = replied.load(Ordering::SeqCst);
    drop(mount);
    server
        .join()
        .expect("server thread")
        .expect("INIT answered");
    assert!(
        answered_before_mount_returned,
        "mount(2) returned before the INIT reply was written"
    );
}
