//! What the running kernel offers, probed once per test process, so that a kernel test asserts
//! the right thing on every kernel from 6.1 on (the guard, [`kernel_test`](crate::kernel_test),
//! decides from it whether a test runs).
//!
//! A feature has two facts: whether the kernel **should** have it (by its version: passthrough
//! 6.9 / FUSE 7.40, FUSE-over-io_uring 6.14 / 7.42, `FUSE_DEV_IOC_SYNC_INIT` 6.18) and whether it
//! **does** (the INIT request's minor version and flags from a real mount, the `/dev/fuse`
//! ioctls' answers, `enable_uring`). The guard combines them:
//! - the kernel predates the feature: the test prints `not applicable on this kernel (...)` and
//!   returns, even under `FUSE_TESTS_REQUIRE_KERNEL=1` (tests that can assert the unsupported
//!   behaviour instead do so, with [`Needs::Without`](crate::Needs::Without) and
//!   [`Capabilities`]);
//! - the kernel should have it but does not (switched off, built without it):
//!   [`skip`](crate::skip), which is a failure under `FUSE_TESTS_REQUIRE_KERNEL=1`.
//!
//! `cargo xtask vm-test` counts the "not applicable" lines per test binary.

use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::OnceLock;

use fuse_kernel_sys as sys;

use crate::{InitOptions, Mount, handshake, open_dev};

/// The text that marks a test that does not apply to the running kernel (counted by
/// `cargo xtask vm-test`).
pub const NOT_APPLICABLE: &str = "not applicable on this kernel";

/// A kernel version `major.minor` (from `uname -r`, e.g. `6.12.117+deb13-amd64` is 6.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

impl Version {
    /// Parses the leading `major.minor` of a kernel release string.
    pub fn parse(release: &str) -> Option<Version> {
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(Version(major, minor))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// The first kernel with passthrough backing files (`FUSE_PASSTHROUGH`, FUSE 7.40).
pub const PASSTHROUGH_SINCE: Version = Version(6, 9);
/// The first kernel with FUSE-over-io_uring (`FUSE_OVER_IO_URING`, FUSE 7.42).
pub const URING_SINCE: Version = Version(6, 14);
/// The first kernel with `FUSE_DEV_IOC_SYNC_INIT` (`ENOTTY` before).
pub const SYNC_INIT_SINCE: Version = Version(6, 18);

/// What the running kernel offers.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// `uname -r`.
    pub release: String,
    /// Its `major.minor`.
    pub version: Version,
    /// The protocol minor version of the kernel's INIT request (7.38 on 6.1, 7.41 on 6.12,
    /// 7.45 on 6.18, 7.46 on 7.3).
    pub init_minor: u32,
    /// The 64-bit INIT flags the kernel offered (`flags2` counted with `FUSE_INIT_EXT`).
    pub init_flags: u64,
    /// `/sys/module/fuse/parameters/enable_uring`: `None` when the kernel has no such switch.
    pub enable_uring: Option<bool>,
    /// The errno of `FUSE_DEV_IOC_BACKING_OPEN` on a fresh, unmounted `/dev/fuse` fd: `ENOTTY`
    /// when the kernel does not know the ioctl, `EPERM` when it does.
    pub backing_open_errno: i32,
    /// `FUSE_DEV_IOC_SYNC_INIT` on a fresh `/dev/fuse` fd succeeded (`ENOTTY` before 6.18).
    pub sync_init: bool,
}

impl Capabilities {
    /// Whether the kernel is at least `version`.
    pub fn at_least(&self, version: Version) -> bool {
        self.version >= version
    }

    /// INIT offered `FUSE_PASSTHROUGH`.
    pub fn passthrough(&self) -> bool {
        self.init_flags & fuse_wire::init_flags::PASSTHROUGH != 0
    }

    /// INIT offered `FUSE_OVER_IO_URING` (only while `enable_uring` is on).
    pub fn uring(&self) -> bool {
        self.init_flags & fuse_wire::init_flags::OVER_IO_URING != 0
    }

    /// The kernel knows `FUSE_DEV_IOC_BACKING_OPEN` (it does not answer `ENOTTY`).
    pub fn backing_ioctls(&self) -> bool {
        self.backing_open_errno != libc::ENOTTY
    }

    // Two raw ioctls on fresh /dev/fuse fds (testkit cannot use fuse-backing, which tests
    // with testkit).
    #[allow(unsafe_code)]
    fn probe() -> Result<Capabilities, String> {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map_err(|e| format!("/proc/sys/kernel/osrelease: {e}"))?
            .trim()
            .to_owned();
        let version = Version::parse(&release)
            .ok_or_else(|| format!("cannot parse kernel release {release:?}"))?;
        let enable_uring = crate::enable_uring_switch();

        // A real mount: the kernel's INIT request carries its minor version and flags.
        let dev = open_dev().map_err(|e| format!("open /dev/fuse: {e}"))?;
        let mut mount = Mount::new(dev.as_fd()).map_err(|e| format!("mount: {e}"))?;
        let negotiated =
            handshake(dev.as_fd(), &InitOptions::default()).map_err(|e| format!("INIT: {e}"))?;
        mount
            .unmount()
            .map_err(|e| format!("unmount of the probe: {e}"))?;
        drop(mount);
        drop(dev);

        let fresh = open_dev().map_err(|e| format!("open /dev/fuse: {e}"))?;
        let mut map = sys::fuse_backing_map::default();
        // SAFETY: `fresh` is an open fd; BACKING_OPEN reads a `fuse_backing_map` through the
        // pointer, which points to a live, initialised struct of that type for the whole call.
        let r = unsafe {
            libc::ioctl(
                fresh.as_raw_fd(),
                sys::FUSE_DEV_IOC_BACKING_OPEN as _,
                &mut map as *mut sys::fuse_backing_map,
            )
        };
        let backing_open_errno = if r < 0 {
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        } else {
            0
        };
        let fresh = open_dev().map_err(|e| format!("open /dev/fuse: {e}"))?;
        // SAFETY: `fresh` is an open fd; SYNC_INIT takes no argument. The fd is only marked
        // and closed below, never mounted.
        let r = unsafe { libc::ioctl(fresh.as_raw_fd(), sys::FUSE_DEV_IOC_SYNC_INIT as _, 0) };
        let sync_init = r == 0;
        Ok(Capabilities {
            release,
            version,
            init_minor: negotiated.init_in.minor,
            init_flags: negotiated.offered,
            enable_uring,
            backing_open_errno,
            sync_init,
        })
    }
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Linux {} (FUSE 7.{}): passthrough {}, io_uring {} (enable_uring {}), SYNC_INIT {}",
            self.release,
            self.init_minor,
            if self.passthrough() {
                "offered"
            } else {
                "not offered"
            },
            if self.uring() {
                "offered"
            } else {
                "not offered"
            },
            match self.enable_uring {
                Some(true) => "Y",
                Some(false) => "N",
                None => "absent",
            },
            if self.sync_init { "known" } else { "unknown" },
        )
    }
}

/// The running kernel's capabilities, probed once per process with a real mount; the caller
/// has checked for root and `/dev/fuse`.
///
/// # Panics
///
/// When the probe fails (no root, no `/dev/fuse`, the mount or INIT failed).
pub(crate) fn probed() -> &'static Capabilities {
    static CAPS: OnceLock<Result<Capabilities, String>> = OnceLock::new();
    match CAPS.get_or_init(|| {
        let caps = Capabilities::probe();
        if let Ok(c) = &caps {
            eprintln!("testkit::kernel: {c}");
        }
        caps
    }) {
        Ok(c) => c,
        Err(e) => panic!("testkit::kernel: cannot probe the kernel: {e}"),
    }
}

/// Prints that the calling test does not apply to this kernel, with the reason.
#[track_caller]
pub(crate) fn not_applicable(reason: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!(
        "NOT APPLICABLE ({}, {test}): {NOT_APPLICABLE} ({reason})",
        std::panic::Location::caller()
    );
}

/// What a FUSE-over-io_uring command (REGISTER or COMMIT_AND_FETCH) answers on a connection
/// where a REGISTER already failed (for example with `EINVAL` for a short payload buffer),
/// given what it `usually` answers (`EINVAL` for a bad REGISTER, `ENOENT` for an unknown
/// commit id).
///
/// Seen: Linux 6.18 checks the new command as usual; 7.2 and 7.3 answer `EOPNOTSUPP`: after
/// one failed REGISTER the connection takes no more io_uring commands (it has fallen back to
/// `/dev/fuse`). Kernels between were not run here: either answer.
pub fn uring_cmd_after_failed_register(
    caps: &Capabilities,
    usually: rustix::io::Errno,
) -> Vec<rustix::io::Errno> {
    use rustix::io::Errno;
    if caps.at_least(Version(7, 2)) {
        vec![Errno::OPNOTSUPP]
    } else if caps.at_least(Version(6, 19)) {
        vec![usually, Errno::OPNOTSUPP]
    } else {
        vec![usually]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_debian_release_strings() {
        assert_eq!(Version::parse("6.1.0-50-amd64"), Some(Version(6, 1)));
        assert_eq!(Version::parse("6.12.117+deb13-amd64"), Some(Version(6, 12)));
        assert_eq!(Version::parse("7.3-amd64"), Some(Version(7, 3)));
        assert_eq!(Version::parse("6.18.44"), Some(Version(6, 18)));
        assert_eq!(Version::parse("garbage"), None);
        assert!(Version(6, 12) < Version(6, 14));
        assert!(Version(7, 0) > Version(6, 18));
    }
}
