//! No fd or mapping outlives a mount, a channel or its clones: a whole session (mount,
//! INIT, a cloned worker, client requests, a notification, the mount checks, unmount) runs
//! alone in a child process under testkit's leak check.

mod common;

use std::fs;

use fuse_dev::fuse_wire::{self, InitConfig};
use fuse_dev::{Channel, Device, MountOptions, UnmountOutcome};
use testkit::Needs;

#[test]
fn a_whole_session_leaves_no_fd_or_mapping_behind() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Kernel) else {
        return;
    };
    let dir = testkit::temp_dir("leaks").unwrap();
    for _ in 0..3 {
        let dev = Device::open().unwrap();
        let mut mount =
            fuse_dev::Mount::new(&dev, &dir, &MountOptions::new().subtype("fusedevleak")).unwrap();
        let mut chan = Channel::new(dev);
        chan.handshake(&InitConfig::default()).unwrap();
        let worker = chan.try_clone().unwrap();
        let server = std::thread::spawn(move || common::serve(&worker, &common::Counts::default()));
        assert!(fs::metadata(&dir).unwrap().is_dir());
        assert!(fs::metadata(dir.join("missing")).is_err());
        let mut msg = [0u8; 64];
        let n = fuse_wire::notify::inval_inode(&mut msg, 1, 0, 0).unwrap();
        chan.notify(&msg[..n]).unwrap();
        assert!(fuse_dev::is_mount_point(&dir).unwrap());
        assert_eq!(
            fuse_dev::check_overlap(&dir, &std::env::temp_dir()).unwrap(),
            Some(fuse_dev::Overlap::SourceInsideMountPoint)
        );
        assert_eq!(mount.unmount().unwrap(), UnmountOutcome::Unmounted);
        server.join().unwrap().unwrap();
        drop((chan, mount));
    }
    fs::remove_dir(&dir).unwrap();
}
