//! `Device::check` tells /dev/fuse from other files (moved out of the crate's unit tests so
//! that the packaged crate's tests build without the unpublished testkit).

use std::os::fd::AsFd;

use fuse_dev::Device;
use rustix::io::Errno;
use testkit::Needs;

#[test]
fn check_tells_dev_fuse_from_other_files() {
    let Some(_t) = testkit::kernel_test(Needs::Device) else {
        return;
    };
    let null = std::fs::File::open("/dev/null").unwrap();
    assert_eq!(Device::check(null.as_fd()), Err(Errno::NODEV));
    let file = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(Device::check(file.as_fd()), Err(Errno::NODEV));
    if let Ok(dev) = Device::open() {
        assert_eq!(Device::check(dev.as_fd()), Ok(()));
    }
}
