//! The one guard at the top of every kernel test.
//!
//! A kernel test states what it needs ([`Needs`]) in its first line, and returns when the
//! guard says it cannot run here:
//!
//! ```no_run
//! use testkit::Needs;
//!
//! #[test]
//! fn serves_requests_through_the_ring() {
//!     let Some(_t) = testkit::kernel_test_leak_checked(Needs::Uring) else {
//!         return;
//!     };
//!     // ... the test; with the leak check, everything it opens or maps must be gone when
//!     // it returns
//! }
//! ```
//!
//! [`kernel_test`] only checks; [`kernel_test_leak_checked`] also runs the test under the leak
//! check ([`leak::isolate`]: again, alone, in a child process), after the checks, so a test
//! that cannot run here starts no child. Bind the guard to a name (`_t`, not `_`): the leak
//! check compares when it is dropped.
//!
//! The rules, decided by [`host_verdict`] and [`kernel_verdict`] (pure functions, unit-tested):
//! - `/dev/fuse` missing, or not root (for everything but [`Needs::Device`]): [`skip`], which
//!   is a failure under `FUSE_TESTS_REQUIRE_KERNEL=1`;
//! - a feature the test needs, on a kernel that predates it: "not applicable" (never a
//!   failure; `cargo xtask vm-test` counts these lines);
//! - a feature the kernel should have by its version but does not offer (switched off, built
//!   without it): [`skip`];
//! - [`Needs::Without`] on a kernel that has the feature: "not applicable".

use std::path::Path;

use crate::kernel::{self, Capabilities, Version};
use crate::{is_root, leak, skip};

/// A kernel feature that appeared in a known Linux release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    /// Passthrough backing files (`FUSE_PASSTHROUGH`, FUSE 7.40, Linux 6.9).
    Passthrough,
    /// FUSE-over-io_uring (`FUSE_OVER_IO_URING`, FUSE 7.42, Linux 6.14).
    Uring,
    /// `FUSE_DEV_IOC_SYNC_INIT` (Linux 6.18; `ENOTTY` before).
    SyncInit,
}

impl Feature {
    /// The first Linux release with the feature.
    pub fn since(self) -> Version {
        match self {
            Feature::Passthrough => kernel::PASSTHROUGH_SINCE,
            Feature::Uring => kernel::URING_SINCE,
            Feature::SyncInit => kernel::SYNC_INIT_SINCE,
        }
    }

    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Passthrough => "passthrough (FUSE_PASSTHROUGH)",
            Feature::Uring => "FUSE-over-io_uring (FUSE_OVER_IO_URING)",
            Feature::SyncInit => "FUSE_DEV_IOC_SYNC_INIT",
        }
    }
}

/// What a kernel test needs from the machine. Each need includes the ones above it, except
/// that [`Needs::Device`] does not need root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// `/dev/fuse` exists (opening it needs no privilege).
    Device,
    /// `/dev/fuse` and root (`mount(2)` of a FUSE file system needs `CAP_SYS_ADMIN`).
    Kernel,
    /// [`Needs::Kernel`], and the running kernel probed once ([`KernelTest::caps`]), for tests
    /// that assert what each kernel does.
    Capabilities,
    /// Passthrough backing files offered in INIT. Not applicable before Linux 6.9.
    Passthrough,
    /// FUSE-over-io_uring offered in INIT. Not applicable before Linux 6.14; with
    /// `enable_uring` = N on a kernel that has it, a [`skip`].
    Uring,
    /// `FUSE_DEV_IOC_SYNC_INIT`. Not applicable before Linux 6.18.
    SyncInit,
    /// A kernel that predates the feature (tests of what the library says there); not
    /// applicable on kernels that have it, whose other tests use it.
    Without(Feature),
}

impl Needs {
    /// Whether the need is decided with the kernel's probed capabilities.
    fn probes(self) -> bool {
        !matches!(self, Needs::Device | Needs::Kernel)
    }
}

/// What the guard decided for one test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The test runs.
    Run,
    /// The test cannot run here although it should: [`skip`] with this reason (a failure under
    /// `FUSE_TESTS_REQUIRE_KERNEL=1`).
    Skip(String),
    /// The test does not apply to this kernel, for this reason (never a failure).
    NotApplicable(String),
}

/// The host part of the decision: whether `/dev/fuse` exists and whether we are root.
pub fn host_verdict(needs: Needs, dev_fuse: bool, root: bool) -> Verdict {
    if !dev_fuse {
        Verdict::Skip("/dev/fuse is missing (modprobe fuse)".into())
    } else if !root && needs != Needs::Device {
        Verdict::Skip("not root: mount(2) of a FUSE file system needs CAP_SYS_ADMIN".into())
    } else {
        Verdict::Run
    }
}

/// The kernel part of the decision, from its probed capabilities and the `enable_uring`
/// switch as it reads now (`uring_on`: a test may have turned it on since the probe).
pub fn kernel_verdict(needs: Needs, caps: &Capabilities, uring_on: bool) -> Verdict {
    match needs {
        Needs::Device | Needs::Kernel | Needs::Capabilities => Verdict::Run,
        Needs::Passthrough => feature_verdict(
            caps,
            Feature::Passthrough,
            caps.passthrough() && caps.backing_ioctls(),
            "INIT did not offer FUSE_PASSTHROUGH (CONFIG_FUSE_PASSTHROUGH off?)",
        ),
        Needs::Uring => {
            let why = match caps.enable_uring {
                None => {
                    "it has no /sys/module/fuse/parameters/enable_uring (CONFIG_FUSE_IO_URING off?)"
                }
                Some(false) => {
                    "FUSE-over-io_uring is off: echo Y > /sys/module/fuse/parameters/enable_uring"
                }
                Some(true) => "INIT did not offer FUSE_OVER_IO_URING although enable_uring is Y",
            };
            feature_verdict(caps, Feature::Uring, uring_on && caps.init_minor >= 42, why)
        }
        Needs::SyncInit => feature_verdict(
            caps,
            Feature::SyncInit,
            caps.sync_init,
            "the ioctl answered an error on a fresh /dev/fuse fd",
        ),
        Needs::Without(feature) if caps.at_least(feature.since()) => {
            Verdict::NotApplicable(format!(
                "Linux {} has {} (since {}); the tests that use it run here",
                caps.release,
                feature.name(),
                feature.since()
            ))
        }
        Needs::Without(_) => Verdict::Run,
    }
}

/// A feature the test needs: present runs; otherwise the kernel predates it (not applicable)
/// or should have it but does not (skip).
fn feature_verdict(
    caps: &Capabilities,
    feature: Feature,
    present: bool,
    why_missing: &str,
) -> Verdict {
    let since = feature.since();
    if present {
        Verdict::Run
    } else if caps.at_least(since) {
        Verdict::Skip(format!(
            "Linux {} should offer {} (since {since}) but {why_missing}",
            caps.release,
            feature.name()
        ))
    } else {
        Verdict::NotApplicable(format!(
            "Linux {}, FUSE 7.{}: {} needs Linux {since}",
            caps.release,
            caps.init_minor,
            feature.name()
        ))
    }
}

/// Acts on a verdict: prints the skip (or panics under `FUSE_TESTS_REQUIRE_KERNEL=1`) or the
/// "not applicable" line; true only for [`Verdict::Run`].
#[track_caller]
fn act(verdict: Verdict) -> bool {
    match verdict {
        Verdict::Run => true,
        Verdict::Skip(reason) => {
            skip(&reason);
            false
        }
        Verdict::NotApplicable(reason) => {
            kernel::not_applicable(&reason);
            false
        }
    }
}

/// Decides `needs` on this machine and acts on the verdict (see the module docs).
#[track_caller]
fn check(needs: Needs) -> bool {
    if !act(host_verdict(
        needs,
        Path::new("/dev/fuse").exists(),
        is_root(),
    )) {
        return false;
    }
    !needs.probes()
        || act(kernel_verdict(
            needs,
            kernel::probed(),
            crate::uring_enabled(),
        ))
}

/// A kernel test that may run: what [`kernel_test`] and [`kernel_test_leak_checked`] return.
/// With the leak check, dropping it compares the process with its state when it was made.
#[derive(Debug)]
#[must_use = "bind it to a name (`_t`): the test's guard lives until the end of the test"]
pub struct KernelTest {
    /// Dropped last: the leak check compares when the test is over.
    _leaks: Option<leak::Guard>,
}

impl KernelTest {
    /// The running kernel's capabilities, probed once per process with a real mount.
    ///
    /// # Panics
    ///
    /// When the probe fails (for example under [`Needs::Device`] without root: it mounts).
    pub fn caps(&self) -> &'static Capabilities {
        kernel::probed()
    }

    /// Decides a further need part-way through a test, with the same rules and messages as
    /// the guard; false means the caller returns (after asserting what it could).
    #[track_caller]
    pub fn check(&self, needs: Needs) -> bool {
        check(needs)
    }
}

/// The guard of a kernel test: `None` when the test cannot run here, after printing why (a
/// skip, which panics under `FUSE_TESTS_REQUIRE_KERNEL=1`, or "not applicable").
///
/// `let Some(_t) = testkit::kernel_test(Needs::Kernel) else { return };`
#[track_caller]
pub fn kernel_test(needs: Needs) -> Option<KernelTest> {
    check(needs).then_some(KernelTest { _leaks: None })
}

/// [`kernel_test`], then the leak check ([`leak::isolate`]): in the test process the test runs
/// again, alone, in a child process, and this returns `None` once the child passed (it panics
/// if the child failed or leaked); in the child it returns the guard that compares fds and
/// mappings when dropped.
#[track_caller]
pub fn kernel_test_leak_checked(needs: Needs) -> Option<KernelTest> {
    if !check(needs) {
        return None;
    }
    Some(KernelTest {
        _leaks: Some(leak::isolate()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(version: Version, init_minor: u32) -> Capabilities {
        Capabilities {
            release: format!("{version}.0-test"),
            version,
            init_minor,
            init_flags: 0,
            enable_uring: None,
            backing_open_errno: libc::ENOTTY,
            sync_init: false,
        }
    }

    fn is_skip(v: &Verdict, text: &str) -> bool {
        matches!(v, Verdict::Skip(r) if r.contains(text))
    }

    fn is_not_applicable(v: &Verdict, text: &str) -> bool {
        matches!(v, Verdict::NotApplicable(r) if r.contains(text))
    }

    #[test]
    fn no_device_or_no_root_is_a_skip_and_device_alone_needs_no_root() {
        let all = [
            Needs::Device,
            Needs::Kernel,
            Needs::Capabilities,
            Needs::Passthrough,
            Needs::Uring,
            Needs::SyncInit,
            Needs::Without(Feature::Uring),
        ];
        for needs in all {
            let v = host_verdict(needs, false, true);
            assert!(is_skip(&v, "/dev/fuse is missing"), "{needs:?}: {v:?}");
            assert_eq!(host_verdict(needs, true, true), Verdict::Run, "{needs:?}");
            let v = host_verdict(needs, true, false);
            if needs == Needs::Device {
                assert_eq!(v, Verdict::Run);
            } else {
                assert!(is_skip(&v, "not root"), "{needs:?}: {v:?}");
            }
        }
    }

    #[test]
    fn a_feature_is_not_applicable_before_its_release_and_a_skip_when_missing_after() {
        // Linux 6.1 (FUSE 7.38): none of the three.
        let old = caps(Version(6, 1), 38);
        for needs in [Needs::Passthrough, Needs::Uring, Needs::SyncInit] {
            let v = kernel_verdict(needs, &old, false);
            assert!(is_not_applicable(&v, "needs Linux 6."), "{needs:?}: {v:?}");
        }
        assert!(is_not_applicable(
            &kernel_verdict(Needs::Uring, &old, true),
            "FUSE 7.38: FUSE-over-io_uring (FUSE_OVER_IO_URING) needs Linux 6.14"
        ));
        assert_eq!(kernel_verdict(Needs::Kernel, &old, false), Verdict::Run);
        assert_eq!(
            kernel_verdict(Needs::Capabilities, &old, false),
            Verdict::Run
        );

        // Linux 6.18 (FUSE 7.45) that offers nothing: each is a skip, saying why.
        let mut new = caps(Version(6, 18), 45);
        assert!(is_skip(
            &kernel_verdict(Needs::Passthrough, &new, true),
            "should offer passthrough (FUSE_PASSTHROUGH) (since 6.9) but INIT did not offer"
        ));
        assert!(is_skip(
            &kernel_verdict(Needs::Uring, &new, false),
            "no /sys/module/fuse/parameters/enable_uring"
        ));
        new.enable_uring = Some(false);
        assert!(is_skip(
            &kernel_verdict(Needs::Uring, &new, false),
            "echo Y > /sys/module/fuse/parameters/enable_uring"
        ));
        assert!(is_skip(
            &kernel_verdict(Needs::SyncInit, &new, true),
            "FUSE_DEV_IOC_SYNC_INIT (since 6.18)"
        ));

        // The same kernel offering everything runs; io_uring by the switch as it reads now.
        new.init_flags = fuse_wire::init_flags::PASSTHROUGH | fuse_wire::init_flags::OVER_IO_URING;
        new.backing_open_errno = libc::EPERM;
        new.sync_init = true;
        new.enable_uring = Some(false);
        assert_eq!(
            kernel_verdict(Needs::Passthrough, &new, false),
            Verdict::Run
        );
        assert_eq!(kernel_verdict(Needs::SyncInit, &new, false), Verdict::Run);
        assert_eq!(kernel_verdict(Needs::Uring, &new, true), Verdict::Run);
        assert!(is_skip(
            &kernel_verdict(Needs::Uring, &new, false),
            "FUSE-over-io_uring is off"
        ));

        // Passthrough offered in INIT but the ioctls unknown: not passthrough.
        new.backing_open_errno = libc::ENOTTY;
        assert!(is_skip(
            &kernel_verdict(Needs::Passthrough, &new, false),
            "should offer passthrough"
        ));
    }

    #[test]
    fn without_a_feature_runs_only_on_kernels_before_it() {
        let k6_12 = caps(Version(6, 12), 41);
        assert_eq!(
            kernel_verdict(Needs::Without(Feature::Uring), &k6_12, false),
            Verdict::Run
        );
        assert!(is_not_applicable(
            &kernel_verdict(Needs::Without(Feature::Passthrough), &k6_12, false),
            "Linux 6.12.0-test has passthrough (FUSE_PASSTHROUGH) (since 6.9)"
        ));
        // By version alone: a 6.14 kernel with io_uring switched off still "has" it.
        let k6_14 = caps(Version(6, 14), 42);
        assert!(is_not_applicable(
            &kernel_verdict(Needs::Without(Feature::Uring), &k6_14, false),
            "since 6.14"
        ));
        assert_eq!(
            kernel_verdict(Needs::Without(Feature::SyncInit), &k6_14, false),
            Verdict::Run
        );
    }
}
