//! What a server needs before the first REGISTER: is FUSE-over-io_uring available, how big
//! the payload buffers must be, how to set up the ring, and which queues to register.

use std::fmt;
use std::io;
use std::ops::Range;

use fuse_kernel_sys as sys;
use io_uring::{IoUring, cqueue, squeue};

/// The module parameter that switches FUSE-over-io_uring on (root: `echo Y > ...`). It exists
/// since Linux 6.14 when the kernel is built with `CONFIG_FUSE_IO_URING`, and is `N` by default.
pub const ENABLE_URING_PARAM: &str = "/sys/module/fuse/parameters/enable_uring";

/// The list of possible CPUs: one FUSE io_uring queue exists per possible CPU.
pub const POSSIBLE_CPUS_PATH: &str = "/sys/devices/system/cpu/possible";

/// The first protocol minor version with FUSE-over-io_uring (7.42, Linux 6.14).
pub const URING_MIN_MINOR: u32 = 42;

/// The number of pages the kernel allows per request when the INIT reply does not negotiate
/// `FUSE_MAX_PAGES` (`FUSE_DEFAULT_MAX_PAGES_PER_REQ` in the kernel's `fs/fuse/fuse_i.h`; not
/// part of the uapi header, so not in `fuse-kernel-sys`).
pub const KERNEL_DEFAULT_MAX_PAGES: u32 = 32;

/// What `/sys/module/fuse/parameters/enable_uring` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UringSupport {
    /// `Y`: new connections are offered `FUSE_OVER_IO_URING` in INIT.
    Enabled,
    /// `N` (the default): switch it on with `echo Y > /sys/module/fuse/parameters/enable_uring`.
    Disabled,
    /// No such parameter: the kernel predates 6.14, was built without `CONFIG_FUSE_IO_URING`,
    /// or the fuse module is not loaded.
    Unavailable,
}

impl fmt::Display for UringSupport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UringSupport::Enabled => write!(
                f,
                "FUSE-over-io_uring is enabled ({ENABLE_URING_PARAM} = Y)"
            ),
            UringSupport::Disabled => write!(
                f,
                "FUSE-over-io_uring is disabled: echo Y > {ENABLE_URING_PARAM}"
            ),
            UringSupport::Unavailable => write!(
                f,
                "FUSE-over-io_uring is unavailable: no {ENABLE_URING_PARAM} (Linux < 6.14, \
                 CONFIG_FUSE_IO_URING off, or fuse not loaded)"
            ),
        }
    }
}

/// Reads [`ENABLE_URING_PARAM`].
pub fn uring_support() -> UringSupport {
    match std::fs::read_to_string(ENABLE_URING_PARAM) {
        Ok(s) if s.trim() == "Y" || s.trim() == "1" => UringSupport::Enabled,
        Ok(_) => UringSupport::Disabled,
        Err(_) => UringSupport::Unavailable,
    }
}

/// The 64-bit INIT flags of a message (`flags2` counts only with `FUSE_INIT_EXT`).
fn init_flags(flags: u32, flags2: u32) -> u64 {
    let high = if flags & sys::FUSE_INIT_EXT != 0 {
        u64::from(flags2) << 32
    } else {
        0
    };
    u64::from(flags) | high
}

/// Checks the kernel's INIT request: may this connection use FUSE-over-io_uring?
///
/// `kernel` is the decoded request as `fuse-dev` hands it back before INIT is answered
/// (`fuse_dev::Channel::read_init` gives an `InitRequest` whose `kernel` this is), or as
/// `fuse_wire::KernelInit::parse` decodes it. For a raw `fuse_init_in`, [`check_init_in`].
///
/// The kernel offers `FUSE_OVER_IO_URING` only when it speaks 7.42 or later (Linux 6.14) and
/// `enable_uring` is on. The server must then set the flag in its INIT reply, and must
/// register at least one entry on every queue promptly afterwards: while the flag is agreed
/// and the ring is not complete, new FUSE requests wait.
///
/// ```
/// use fuse_wire::{KernelInit, init_flags};
///
/// let offered = KernelInit {
///     major: 7,
///     minor: 46,
///     max_readahead: 131072,
///     flags: init_flags::INIT_EXT | init_flags::OVER_IO_URING,
/// };
/// assert_eq!(fuse_uring::check_init(&offered), Ok(()));
/// let old = KernelInit { minor: 41, ..offered };
/// assert_eq!(
///     fuse_uring::check_init(&old),
///     Err(fuse_uring::Unsupported::KernelTooOld { minor: 41 })
/// );
/// ```
///
/// # Errors
/// [`Unsupported`] naming the reason; its message names the `enable_uring` knob. Which of
/// [`Unsupported::Disabled`] and [`Unsupported::NotBuilt`] is told when a 7.42+ kernel did
/// not offer the flag depends on this machine's [`ENABLE_URING_PARAM`].
pub fn check_init(kernel: &fuse_wire::KernelInit) -> Result<(), Unsupported> {
    check(kernel.major, kernel.minor, kernel.flags)
}

/// [`check_init`] for callers that hold the kernel's raw `fuse_init_in` (the 64 bytes after
/// the INIT request's header) instead of a decoded `fuse_wire::KernelInit`: `flags2` counts
/// only when `flags` has `FUSE_INIT_EXT`, as the kernel means it.
///
/// # Errors
/// As [`check_init`].
pub fn check_init_in(init_in: &sys::fuse_init_in) -> Result<(), Unsupported> {
    check(
        init_in.major,
        init_in.minor,
        init_flags(init_in.flags, init_in.flags2),
    )
}

/// The one check behind [`check_init`] and [`check_init_in`]: `flags` are the 64-bit INIT
/// flags the kernel offered.
fn check(major: u32, minor: u32, flags: u64) -> Result<(), Unsupported> {
    if major == sys::FUSE_KERNEL_VERSION && minor < URING_MIN_MINOR {
        return Err(Unsupported::KernelTooOld { minor });
    }
    if flags & fuse_wire::init_flags::OVER_IO_URING != 0 {
        return Ok(());
    }
    Err(match uring_support() {
        UringSupport::Unavailable => Unsupported::NotBuilt,
        // Enabled now but the connection was made while it was off: it is the same fix.
        UringSupport::Disabled | UringSupport::Enabled => Unsupported::Disabled,
    })
}

/// The payload buffer size the kernel requires of every REGISTER:
/// `max(FUSE_MIN_READ_BUFFER, max_write, max_pages * page_size)`.
///
/// The rule has one home: `fuse-wire`'s `Negotiated::uring_payload_size()` (and its
/// `init::payload_size_for`), which servers built on `fuse-wire` should use. This function and
/// [`payload_size`] are the same formula for servers that only hold a raw `fuse_init_out`; a
/// test (`tests/payload_rule.rs`) keeps them equal. With a buffer pool (7.46) the kernel cuts
/// the pool into buffers of exactly this size.
///
/// `max_pages` is the number of pages per request the kernel uses: the INIT reply's
/// `max_pages` when it negotiates `FUSE_MAX_PAGES`, else [`KERNEL_DEFAULT_MAX_PAGES`]. A larger
/// buffer is always accepted. Saturates instead of overflowing.
#[inline]
pub const fn payload_size_for(max_write: u32, max_pages: u32, page_size: usize) -> usize {
    let min = sys::FUSE_MIN_READ_BUFFER as usize;
    let write = max_write as usize;
    let pages = (max_pages as usize).saturating_mul(page_size);
    let size = if write > min { write } else { min };
    if pages > size { pages } else { size }
}

/// The payload buffer size for a connection, from the INIT reply the server sent.
///
/// Mirrors the kernel: `max_pages` counts only when the reply sets `FUSE_MAX_PAGES` (then at
/// least 1), otherwise the kernel default of [`KERNEL_DEFAULT_MAX_PAGES`] pages applies. The
/// kernel may clamp `max_pages` further (`/proc/sys/fs/fuse/max_pages_limit`); the size here
/// is then larger than needed, which the kernel accepts. Uses the system page size.
pub fn payload_size(init_out: &sys::fuse_init_out) -> usize {
    let max_pages = if init_out.flags & sys::FUSE_MAX_PAGES != 0 {
        u32::from(init_out.max_pages).max(1)
    } else {
        KERNEL_DEFAULT_MAX_PAGES
    };
    payload_size_for(init_out.max_write, max_pages, rustix::param::page_size())
}

/// A ring builder with the recommended setup for one FUSE queue served by one thread.
///
/// - `IORING_SETUP_SQE128` is mandatory (the FUSE command needs the 80-byte command area);
///   the `Entry128` SQE type sets it, so every ring of this type has it.
/// - `IORING_SETUP_SINGLE_ISSUER` and `IORING_SETUP_DEFER_TASKRUN`: the kernel copies each
///   request into the entry's buffers in task work of the thread that owns the ring; with
///   deferred task work that happens when the thread waits for completions
///   (`submit_and_wait`, `submit_with_args`), in a batch, without interrupting it. Both need
///   the ring to be created, submitted to and waited on by the same thread (Linux 6.1+).
///   The kernel tests of this crate serve real requests with this setup.
///
/// Size the ring with `build(depth)` (at least the queue depth, so that all REGISTERs fit in
/// one submission). For a ring shared between threads use `IoUring::builder()` without these
/// flags instead (also tested).
pub fn ring_builder() -> io_uring::Builder<squeue::Entry128, cqueue::Entry> {
    let mut builder = IoUring::<squeue::Entry128, cqueue::Entry>::builder();
    builder.setup_single_issuer().setup_defer_taskrun();
    builder
}

/// `IORING_SETUP_SQE128` (from `linux-raw-sys`): the setup flag every FUSE ring must have.
pub const REQUIRED_SETUP_FLAGS: u32 = linux_raw_sys::io_uring::IORING_SETUP_SQE128;

/// A malformed CPU list (the format of `/sys/devices/system/cpu/possible`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuListError {
    text: String,
}

impl fmt::Display for CpuListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed CPU list {:?} (expected e.g. \"0-3\" or \"0,2-3\")",
            self.text
        )
    }
}

impl std::error::Error for CpuListError {}

impl From<CpuListError> for io::Error {
    fn from(e: CpuListError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Parses a kernel CPU list such as `"0-1"`, `"0,2-3"` or `"5"` (trailing newline allowed)
/// into the sorted, de-duplicated CPU numbers.
///
/// # Errors
/// [`CpuListError`] for empty input, a non-number, a reversed range or more than 65536 CPUs.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u32>, CpuListError> {
    let err = || CpuListError {
        text: text.to_owned(),
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(err());
    }
    let mut cpus = Vec::new();
    for part in trimmed.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>(), b.parse::<u32>()),
            None => (part.parse::<u32>(), part.parse::<u32>()),
        };
        let (Ok(first), Ok(last)) = (first, last) else {
            return Err(err());
        };
        if first > last || cpus.len() + (last - first) as usize >= 1 << 16 {
            return Err(err());
        }
        cpus.extend(first..=last);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The possible CPUs, from [`POSSIBLE_CPUS_PATH`].
///
/// # Errors
/// The file cannot be read, or [`CpuListError`] as `InvalidData`.
pub fn possible_cpus() -> io::Result<Vec<u32>> {
    Ok(parse_cpu_list(&std::fs::read_to_string(
        POSSIBLE_CPUS_PATH,
    )?)?)
}

/// The number of FUSE io_uring queues of every connection: the number of possible CPUs
/// (`num_possible_cpus()` in the kernel), not of online ones.
///
/// # Errors
/// As [`possible_cpus`]; more than 65536 CPUs are `InvalidData` (qid is a `u16`).
pub fn queue_count() -> io::Result<u16> {
    let n = possible_cpus()?.len();
    u16::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "too many CPUs"))
}

/// The queue ids to register, `0..queue_count()`: every one needs at least one entry before
/// the kernel routes requests to the ring.
///
/// The kernel queues a request on the queue whose id is the number of the CPU the requesting
/// task runs on (so pinning the thread of queue `q` to CPU `q` keeps requests local). With
/// gaps in the possible-CPU list, CPUs numbered `>= queue_count()` fall back to queue 0.
///
/// # Errors
/// As [`queue_count`].
pub fn queue_ids() -> io::Result<Range<u16>> {
    Ok(0..queue_count()?)
}

/// FUSE-over-io_uring cannot be used on this connection; see [`check_init`](crate::check_init).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unsupported {
    /// The kernel speaks a protocol older than 7.42 (Linux 6.14), the first with
    /// FUSE-over-io_uring.
    KernelTooOld {
        /// The protocol minor version of the kernel's INIT request.
        minor: u32,
    },
    /// The kernel supports it but `/sys/module/fuse/parameters/enable_uring` is `N`.
    Disabled,
    /// The kernel did not offer `FUSE_OVER_IO_URING` and has no `enable_uring` parameter
    /// (built without `CONFIG_FUSE_IO_URING`).
    NotBuilt,
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsupported::KernelTooOld { minor } => write!(
                f,
                "the kernel speaks FUSE 7.{minor}; FUSE-over-io_uring needs 7.42 (Linux 6.14) \
                 or later, with {ENABLE_URING_PARAM} set to Y"
            ),
            Unsupported::Disabled => write!(
                f,
                "FUSE-over-io_uring is disabled: run `echo Y > {ENABLE_URING_PARAM}` as root \
                 (and mount again)"
            ),
            Unsupported::NotBuilt => write!(
                f,
                "the kernel did not offer FUSE_OVER_IO_URING and has no {ENABLE_URING_PARAM}: \
                 it was built without CONFIG_FUSE_IO_URING"
            ),
        }
    }
}

impl std::error::Error for Unsupported {}

impl From<Unsupported> for io::Error {
    fn from(e: Unsupported) -> io::Error {
        io::Error::new(io::ErrorKind::Unsupported, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sys::zerocopy::IntoBytes;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-1\n").unwrap(), [0, 1]);
        assert_eq!(parse_cpu_list("0").unwrap(), [0]);
        assert_eq!(parse_cpu_list("0,2-3").unwrap(), [0, 2, 3]);
        assert_eq!(parse_cpu_list("4-5,0-1,1").unwrap(), [0, 1, 4, 5]);
        assert_eq!(parse_cpu_list("0-65535").unwrap().len(), 65536);
        for bad in [
            "", "\n", "a", "1-", "-1", "3-1", "0,,1", "0-1-2", "0-65536", " 1 , 2",
        ] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
        let e: io::Error = parse_cpu_list("x").unwrap_err().into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn this_machine_has_queues() {
        let cpus = possible_cpus().unwrap();
        assert!(!cpus.is_empty());
        assert_eq!(queue_ids().unwrap(), 0..cpus.len() as u16);
    }

    #[test]
    fn payload_size_is_the_largest_of_the_three() {
        // The minimum wins for tiny values.
        assert_eq!(payload_size_for(4096, 1, 4096), 8192);
        // max_write wins.
        assert_eq!(payload_size_for(1 << 20, 32, 4096), 1 << 20);
        // max_pages * page_size wins (a 6.18 kernel with 128 KiB max_write and the default 32
        // pages of 4 KiB asked for exactly 128 KiB).
        assert_eq!(payload_size_for(128 * 1024, 32, 4096), 128 * 1024);
        assert_eq!(payload_size_for(65536, 256, 4096), 1 << 20);
        assert_eq!(payload_size_for(65536, 4, 65536), 4 * 65536);
        assert_eq!(payload_size_for(0, u32::MAX, usize::MAX), usize::MAX);
    }

    #[test]
    fn payload_size_from_init_reply_follows_the_kernel() {
        let page = rustix::param::page_size();
        let mut out = sys::fuse_init_out {
            max_write: 4096,
            max_pages: 256,
            ..Default::default()
        };
        // Without FUSE_MAX_PAGES the kernel keeps its default of 32 pages.
        assert_eq!(payload_size(&out), (32 * page).max(8192));
        out.flags = sys::FUSE_MAX_PAGES;
        assert_eq!(payload_size(&out), 256 * page);
        // max_pages 0 counts as 1.
        out.max_pages = 0;
        assert_eq!(payload_size(&out), page.max(8192));
        out.max_write = 3 << 20;
        assert_eq!(payload_size(&out), 3 << 20);
    }

    fn init_in(minor: u32, flags: u32, flags2: u32) -> sys::fuse_init_in {
        sys::fuse_init_in {
            major: sys::FUSE_KERNEL_VERSION,
            minor,
            flags,
            flags2,
            ..Default::default()
        }
    }

    #[test]
    fn init_check_names_the_reason() {
        // FUSE_INIT_EXT is bit 30 of flags, FUSE_OVER_IO_URING bit 41 (bit 9 of flags2).
        let (ext, uring_hi) = (1 << 30, 1 << 9);
        let expected_off = match uring_support() {
            UringSupport::Unavailable => Unsupported::NotBuilt,
            _ => Unsupported::Disabled,
        };
        for (minor, flags, flags2, expected) in [
            (45, ext, uring_hi, Ok(())),
            (
                41,
                ext,
                uring_hi,
                Err(Unsupported::KernelTooOld { minor: 41 }),
            ),
            (45, ext, 0, Err(expected_off)),
            // flags2 does not count without FUSE_INIT_EXT.
            (45, 0, uring_hi, Err(expected_off)),
        ] {
            let raw = init_in(minor, flags, flags2);
            assert_eq!(
                check_init_in(&raw),
                expected,
                "raw {minor} {flags:#x} {flags2:#x}"
            );
            // The decoded request, as fuse-dev hands it back, says the same.
            let kernel = fuse_wire::KernelInit::parse(raw.as_bytes()).unwrap();
            assert_eq!(check_init(&kernel), expected, "decoded {kernel:?}");
        }
    }

    #[test]
    fn ring_builder_rings_have_sqe128() {
        let ring = ring_builder().build(4).unwrap();
        assert!(ring.params().is_setup_single_issuer());
        // The Entry128 ring type sets exactly the flag linux-raw-sys names SQE128.
        assert_eq!(
            <squeue::Entry128 as squeue::EntryMarker>::BUILD_FLAGS,
            REQUIRED_SETUP_FLAGS
        );
    }
}
