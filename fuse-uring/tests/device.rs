//! The `/dev/fuse` fd of a queue: only the FUSE device is accepted (`/dev/null` accepts
//! io_uring commands and completes them with 0, which looked like a successful REGISTER with
//! an all-zero request), and the buffers keep the fd open for as long as they can build SQEs
//! for it (a queue must not outlive its fd).

// These tests drive the unsafe parts of the APIs (raw rings, raw memory) on purpose.
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;

use fuse_uring::{
    FUSE_DEV_MAJOR, FUSE_DEV_MINOR, FuseFd, NotFuseDevice, QueueBuffers, QueueConfig,
};
use testkit::Needs;

#[test]
fn dev_null_is_refused() {
    let null = Arc::new(File::open("/dev/null").expect("/dev/null"));
    let err = FuseFd::new(null).expect_err("/dev/null is not /dev/fuse");
    match &err {
        // /dev/null is character device 1:3.
        NotFuseDevice::Other { file_type, rdev } => {
            assert_eq!(*file_type, libc::S_IFCHR);
            assert_eq!(*rdev, (1, 3));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("not /dev/fuse"), "{err}");
    let io: std::io::Error = err.into();
    assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn regular_files_and_directories_are_refused() {
    let file = Arc::new(File::open("/proc/self/exe").expect("own executable"));
    assert!(matches!(
        FuseFd::new(file),
        Err(NotFuseDevice::Other { file_type, rdev: (0, 0) }) if file_type == libc::S_IFREG
    ));
    let dir = Arc::new(File::open("/").expect("/"));
    assert!(matches!(
        FuseFd::new(dir),
        Err(NotFuseDevice::Other { file_type, .. }) if file_type == libc::S_IFDIR
    ));
}

fn open_fuse() -> Option<OwnedFd> {
    let _t = testkit::kernel_test(Needs::Kernel)?;
    Some(testkit::open_dev().expect("open /dev/fuse"))
}

#[test]
fn dev_fuse_is_accepted_and_kept_open_by_the_buffers() {
    let Some(fd) = open_fuse() else { return };
    let st = rustix::fs::fstat(&fd).expect("fstat");
    assert_eq!(
        (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)),
        (FUSE_DEV_MAJOR, FUSE_DEV_MINOR),
        "/dev/fuse is 10:229"
    );
    let raw = fd.as_raw_fd();
    let dev = FuseFd::new(Arc::new(fd)).expect("/dev/fuse accepted");
    assert_eq!(dev.as_fd().as_raw_fd(), raw);
    assert_eq!(dev.dev_fd(), fuse_uring::DevFd::Fd(raw));
    assert_eq!(
        dev.clone().with_fixed_index(3).dev_fd(),
        fuse_uring::DevFd::Fixed(3)
    );
    let buffers = QueueBuffers::new(QueueConfig::new(0, 2, 8192, dev)).expect("buffers");
    // Our own handle is gone; the buffers still hold the fd, so the number their SQEs carry
    // still names /dev/fuse.
    let st = rustix::fs::fstat(buffers.dev().expect("bound").as_fd()).expect("still open");
    assert_eq!(rustix::fs::major(st.st_rdev), FUSE_DEV_MAJOR);
    let sqe = buffers
        .take_entries()
        .expect("fresh")
        .next()
        .expect("entry")
        .register();
    let fd_field = i32::from_ne_bytes(bytes_of_sqe(&sqe)[4..8].try_into().expect("4 bytes"));
    assert_eq!(fd_field, raw, "the SQE targets the kept fd");
    // SAFETY: the SQE was never pushed; decoding its user_data once gives the entry back.
    let _ = unsafe { buffers.complete(sqe.get_user_data(), -libc::ENOTCONN) };
    drop(buffers);
    // The last owner is gone: the fd is closed (or, if another test's thread reused the number
    // meanwhile, it names something else: only this test opens /dev/fuse here).
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat(2) on any fd number only writes the stat buffer, which is large enough.
    let rc = unsafe { libc::fstat(raw, st.as_mut_ptr()) };
    if rc == 0 {
        // SAFETY: fstat succeeded, so it initialised the buffer.
        let st = unsafe { st.assume_init() };
        let rdev = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
        assert_ne!(
            rdev,
            (FUSE_DEV_MAJOR, FUSE_DEV_MINOR),
            "fd {raw} still /dev/fuse"
        );
    } else {
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EBADF),
            "fd {raw} closed with the buffers"
        );
    }
}

/// The bytes of an SQE (io-uring's Entry128 is a 128-byte repr(C) struct of integers).
fn bytes_of_sqe(sqe: &io_uring::squeue::Entry128) -> [u8; 128] {
    // SAFETY: Entry128 is 128 initialised bytes (io-uring builds it from a zeroed SQE plus a
    // byte array); read_unaligned needs no alignment.
    unsafe { std::ptr::from_ref(sqe).cast::<[u8; 128]>().read_unaligned() }
}
