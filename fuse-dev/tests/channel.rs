//! Kernel tests of the channel: the read-buffer rule before and after INIT (ours and the
//! kernel's, observed with raw reads), errno 524 reaching a client as EIO, a cloned
//! worker fd, and the end of the connection.

mod common;

use std::fs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fuse_dev::fuse_wire::{self, InitConfig};
use fuse_dev::{Channel, ChannelError, Device, MountOptions, UnmountOutcome};
use rustix::io::Errno;
use testkit::Needs;

fn mount(tag: &str) -> (Channel, fuse_dev::Mount, std::path::PathBuf) {
    let dir = testkit::temp_dir(tag).unwrap();
    let dev = Device::open().unwrap();
    let mount = fuse_dev::Mount::new(&dev, &dir, &MountOptions::new().subtype("fusedevchan"))
        .expect("mount(2) as root");
    (Channel::new(dev), mount, dir)
}

/// Joins `server` within 5 s, aborting the connection if it has not ended.
fn join(
    server: std::thread::JoinHandle<Result<(), ChannelError>>,
    connection: Option<fuse_dev::Connection>,
) -> Result<(), ChannelError> {
    let connection = connection.map(|c| c.number());
    testkit::join_or_abort(server, Duration::from_secs(5), connection).expect("server panicked")
}

#[test]
fn read_buffers_are_checked_against_the_kernels_rule() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let (mut chan, mut mount, dir) = mount("bufsize");
    let conn = mount.connection();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // Before INIT: 8192 bytes. The kernel agrees: 8191 is EINVAL (it checks the size
        // before waiting for a request), and 8192 reads INIT.
        let mut small = vec![0u8; 8191];
        assert_eq!(
            chan.read_init(&mut small).unwrap_err().errno(),
            Errno::INVAL
        );
        assert!(matches!(
            chan.receive(&mut small),
            Err(ChannelError::BufferTooSmall {
                need: 8192,
                have: 8191
            })
        ));
        assert_eq!(rustix::io::read(&chan, &mut small), Err(Errno::INVAL));
        let mut buf = vec![0u8; 8192];
        let init = chan.read_init(&mut buf).expect("INIT fits in 8192 bytes");
        let mut config = InitConfig::default();
        config.max_write = 256 * 1024;
        config.max_pages = 64;
        let negotiated = fuse_wire::negotiate(&init.kernel, &config).unwrap();
        chan.reply_init(&init, &negotiated).unwrap();

        // After INIT: the negotiated size, named in the error.
        let need = negotiated.read_buffer_size();
        assert_eq!(chan.read_buffer_size(), need);
        let mut short = vec![0u8; need - 1];
        match chan.receive(&mut short) {
            Err(e @ ChannelError::BufferTooSmall { need: n, have }) => {
                assert_eq!((n, have), (need, need - 1));
                assert!(e.to_string().contains(&need.to_string()), "{e}");
            }
            other => panic!("expected BufferTooSmall, got {other:?}"),
        }
        // The kernel's own rule: 80 + max_write bytes (fuse_in_header + fuse_write_in +
        // max_write); one byte less is EINVAL.
        let kernel_min = 80 + negotiated.max_write() as usize;
        assert!(need >= kernel_min);
        let mut raw = vec![0u8; kernel_min - 1];
        assert_eq!(rustix::io::read(&chan, &mut raw), Err(Errno::INVAL));
        // And exactly that much is accepted: a client's GETATTR arrives.
        let path = dir.clone();
        let client = std::thread::spawn(move || fs::metadata(path).map(|m| m.is_dir()));
        let mut raw = vec![0u8; kernel_min];
        let req = loop {
            let n = rustix::io::read(&chan, &mut raw).expect("read of 80 + max_write bytes");
            let request = fuse_wire::Request::parse(&raw[..n], chan.protocol()).unwrap();
            match request.operation() {
                fuse_wire::Operation::Getattr(_) => break request.unique(),
                _ => chan.reply_error(request.unique(), Errno::NOSYS).unwrap(),
            }
        };
        let mut out = [0u8; 128];
        let attr = fuse_wire::sys::fuse_attr {
            ino: 1,
            mode: 0o040755,
            nlink: 2,
            ..Default::default()
        };
        let n = fuse_wire::reply::attr(&mut out, &fuse_wire::reply::attr_out(attr, Duration::ZERO))
            .unwrap();
        chan.reply(req, &[&out[..n]]).unwrap();
        assert!(client.join().unwrap().unwrap());
    }));
    let _ = mount.unmount();
    if let Some(c) = conn {
        let _ = c.abort();
    }
    let _ = fs::remove_dir(&dir);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn errno_524_reaches_the_client_as_eio_and_the_server_goes_on() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let (mut chan, mut mount, dir) = mount("eio");
    chan.handshake(&InitConfig::default()).unwrap();
    let counts = Arc::new(common::Counts::default());
    let server = {
        let counts = counts.clone();
        std::thread::spawn(move || common::serve(&chan, &counts))
    };
    let leaked = fs::metadata(dir.join("enotsupp")).unwrap_err();
    let after = fs::metadata(dir.join("missing")).unwrap_err();
    let root = fs::metadata(&dir).map(|m| m.is_dir());
    let conn = mount.connection();
    assert_eq!(mount.unmount().unwrap(), UnmountOutcome::Unmounted);
    let served = join(server, conn);
    let _ = fs::remove_dir(&dir);

    assert_eq!(
        leaked.raw_os_error(),
        Some(Errno::IO.raw_os_error()),
        "{leaked}"
    );
    assert_eq!(after.raw_os_error(), Some(Errno::NOENT.raw_os_error()));
    assert!(root.unwrap());
    assert!(counts.lookup.load(Ordering::Relaxed) >= 2);
    served.expect("the server ends cleanly on ENODEV");
}

#[test]
fn a_cloned_channel_serves_and_abort_ends_it() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let (mut chan, mut mount, dir) = mount("clone");
    let negotiated = chan.handshake(&InitConfig::default()).unwrap();
    let worker = chan.try_clone().expect("FUSE_DEV_IOC_CLONE after mounting");
    assert_eq!(worker.read_buffer_size(), negotiated.read_buffer_size());
    assert_eq!(worker.protocol(), negotiated.protocol());
    let counts = Arc::new(common::Counts::default());
    let server = {
        let counts = counts.clone();
        // Only the clone reads: every request is answered on the fd it came from.
        std::thread::spawn(move || common::serve(&worker, &counts))
    };
    let root = fs::metadata(&dir).map(|m| m.is_dir());
    let conn = mount.connection().unwrap();
    conn.abort().unwrap();
    let served = join(server, None);
    let after_abort = fs::metadata(dir.join("x")).unwrap_err();
    assert_eq!(mount.unmount().unwrap(), UnmountOutcome::Unmounted);
    let _ = fs::remove_dir(&dir);
    drop(chan);

    assert!(root.unwrap());
    assert!(counts.getattr.load(Ordering::Relaxed) >= 1);
    served.expect("receive returns None after abort (ENODEV)");
    assert_eq!(
        after_abort.raw_os_error(),
        Some(Errno::NOTCONN.raw_os_error())
    );
}

#[test]
fn notifications_are_written_and_the_kernels_answer_is_kept() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let (mut chan, mut mount, dir) = mount("notify");
    chan.handshake(&InitConfig::default()).unwrap();
    // Notifications may go out on any fd of the connection: a clone, while the original
    // serves.
    let notifier = chan.try_clone().unwrap();
    let server = std::thread::spawn(move || common::serve(&chan, &common::Counts::default()));
    assert!(fs::metadata(&dir).unwrap().is_dir()); // the root inode is known to the kernel
    let mut msg = [0u8; 256];
    let n = fuse_wire::notify::inval_inode(&mut msg, 1, 0, 0).unwrap();
    let root = notifier.notify(&msg[..n]);
    let n = fuse_wire::notify::inval_inode(&mut msg, 12345, 0, 0).unwrap();
    let unknown_inode = notifier.notify(&msg[..n]);
    let n = fuse_wire::notify::inval_entry(&mut msg, 1, b"not-cached", false).unwrap();
    let unknown_name = notifier.notify(&msg[..n]);
    let conn = mount.connection();
    assert_eq!(mount.unmount().unwrap(), UnmountOutcome::Unmounted);
    let served = join(server, conn);
    let _ = fs::remove_dir(&dir);

    assert_eq!(root, Ok(()));
    assert_eq!(unknown_inode, Err(ChannelError::Kernel(Errno::NOENT)));
    assert_eq!(unknown_name, Err(ChannelError::Kernel(Errno::NOENT)));
    served.unwrap();
}
