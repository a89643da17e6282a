//! INIT negotiation: the kernel's `fuse_init_in` as arbitrary bytes of any length (or a
//! `KernelInit` built by hand with arbitrary fields), the server's wishes as an arbitrary
//! `InitConfig`. `fuse_wire::KernelInit::parse` reads what every kernel sends and refuses
//! less; `fuse_wire::negotiate` refuses exactly what it documents and otherwise accepts only
//! offered and wanted flags (plus `FUSE_INIT_EXT`), sends `flags2` only with `FUSE_INIT_EXT`,
//! answers with the smaller minor and gives buffer sizes of at least 8192 bytes that the
//! kernel accepts; fuse-uring's `check_init` and `payload_size` classify and size without
//! panicking and agree with fuse-wire's one sizing rule.

#![no_main]

use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{FromBytes, IntoBytes};
use fuse_uring::Unsupported;
use fuse_wire::init::{InitError, MAX_STACK_DEPTH, WRITE_REQUEST_HEAD};
use fuse_wire::{DecodeErrorKind, InitConfig, KernelInit, MIN_KERNEL_MINOR, negotiate};
use libfuzzer_sys::fuzz_target;

/// Where the parts of the input are.
const INIT_IN: usize = 2;
const CONFIG: usize = INIT_IN + 64;

fn padded(data: &[u8], at: usize, len: usize) -> Vec<u8> {
    let mut v = data.get(at..).unwrap_or(&[]).to_vec();
    v.resize(v.len().max(len), 0);
    v
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn valid_gran(g: u32) -> bool {
    [
        1,
        10,
        100,
        1_000,
        10_000,
        100_000,
        1_000_000,
        10_000_000,
        100_000_000,
        1_000_000_000,
    ]
    .contains(&g)
}

fuzz_target!(|data: &[u8]| {
    let mode = data.first().copied().unwrap_or(0);
    let raw = padded(data, INIT_IN, 64);
    let raw = &raw[..64];

    // --- KernelInit::parse on a prefix of any length (old kernels send 16 bytes) ----------
    let arg_len = usize::from(data.get(1).copied().unwrap_or(64)) % 80;
    let arg = padded(&raw[..arg_len.min(64)], 0, arg_len);
    let parsed = KernelInit::parse(&arg);
    let kernel = match parsed {
        Err(e) => {
            assert!(arg.len() < 16, "refused {} bytes: {e}", arg.len());
            assert_eq!(
                e.kind(),
                DecodeErrorKind::Short {
                    what: "fuse_init_in",
                    need: 16,
                    have: arg.len()
                }
            );
            return;
        }
        Ok(k) => {
            assert!(arg.len() >= 16);
            let low = ne_u32(&arg, 12);
            let high = if low & sys::FUSE_INIT_EXT != 0 && arg.len() >= 20 {
                ne_u32(&arg, 16)
            } else {
                0
            };
            assert_eq!(
                (k.major, k.minor, k.max_readahead, k.flags),
                (
                    ne_u32(&arg, 0),
                    ne_u32(&arg, 4),
                    ne_u32(&arg, 8),
                    u64::from(low) | u64::from(high) << 32
                )
            );
            if mode & 1 == 0 {
                k
            } else {
                // Fields are public: a caller can build one the kernel never would (flags2
                // bits without FUSE_INIT_EXT, say).
                KernelInit {
                    major: k.major,
                    minor: k.minor,
                    max_readahead: k.max_readahead,
                    flags: u64_at(raw, 12),
                }
            }
        }
    };

    // KernelInit back to the kernel's struct: the same request again, whenever its flags are
    // ones a kernel could send (bits 32..63 only with FUSE_INIT_EXT).
    let back = KernelInit::parse(kernel.to_init_in().as_bytes()).expect("64 bytes");
    if kernel.flags & u64::from(sys::FUSE_INIT_EXT) != 0 || kernel.flags >> 32 == 0 {
        assert_eq!(back, kernel);
    } else {
        assert_eq!(back.flags, kernel.flags & u64::from(u32::MAX));
    }

    // --- the server's wishes -----------------------------------------------------------
    let c = padded(data, CONFIG, 26);
    let mut config = InitConfig::default();
    config.want = u64_at(&c, 0);
    config.max_write = u32_at(&c, 8);
    config.max_pages = u16_at(&c, 12);
    config.max_readahead = (mode & 2 != 0).then(|| u32_at(&c, 14));
    config.max_background = u16_at(&c, 18);
    config.congestion_threshold = u16_at(&c, 20);
    config.time_gran = match c[22] % 4 {
        0 => u32_at(&c, 22),
        _ => 10u32.saturating_pow(u32::from(c[23] % 11)),
    };
    config.max_stack_depth = match c[24] % 4 {
        0 => u32::from_le_bytes([c[24], c[25], c[23], c[22]]),
        n => u32::from(n - 1),
    };
    config.request_timeout = u16_at(&c, 24);

    // --- negotiate ------------------------------------------------------------------------
    let ext = u64::from(sys::FUSE_INIT_EXT);
    let offered = kernel.flags;
    let n = match negotiate(&kernel, &config) {
        Err(e) => {
            let expected = if kernel.major != sys::FUSE_KERNEL_VERSION {
                InitError::UnsupportedMajor {
                    kernel: kernel.major,
                }
            } else if kernel.minor < MIN_KERNEL_MINOR {
                InitError::MinorTooOld {
                    kernel: kernel.minor,
                }
            } else if config.max_stack_depth > MAX_STACK_DEPTH {
                InitError::StackDepth {
                    configured: config.max_stack_depth,
                }
            } else {
                assert!(!valid_gran(config.time_gran), "refused {config:?}: {e}");
                InitError::TimeGranularity {
                    configured: config.time_gran,
                }
            };
            assert_eq!(e, expected);
            assert!(matches!(
                e.errno().raw_os_error(),
                libc::EPROTO | libc::EINVAL
            ));
            assert!(!e.to_string().is_empty());
            return;
        }
        Ok(n) => n,
    };
    assert_eq!(kernel.major, sys::FUSE_KERNEL_VERSION);
    assert!(kernel.minor >= MIN_KERNEL_MINOR);
    assert!(config.max_stack_depth <= MAX_STACK_DEPTH && valid_gran(config.time_gran));
    assert_eq!(n.kernel(), &kernel);
    assert_eq!(n.offered(), offered);

    let accepted = n.accepted();
    let allowed = (offered & config.want) | (offered & ext);
    assert_eq!(
        accepted & !allowed,
        0,
        "agreed to {:#x}, not offered ({offered:#x}) and wanted ({:#x})",
        accepted & !allowed,
        config.want
    );
    let out = n.init_out();
    assert_eq!(
        u64::from(out.flags) | u64::from(out.flags2) << 32,
        accepted,
        "the reply says what was accepted"
    );
    if out.flags2 != 0 {
        assert_ne!(out.flags & sys::FUSE_INIT_EXT, 0, "flags2 without INIT_EXT");
    }
    // Everything offered and wanted is accepted, but passthrough without a stack depth and
    // bits 32..63 the kernel cannot read (no INIT_EXT).
    let mut expect = offered & config.want & !ext;
    if config.max_stack_depth == 0 {
        expect &= !sys::FUSE_PASSTHROUGH;
    }
    if offered & ext == 0 {
        expect &= u64::from(u32::MAX);
    }
    assert_eq!(accepted & !ext, expect);
    assert_eq!(accepted & ext != 0, expect >> 32 != 0);
    for flag in [
        sys::FUSE_PASSTHROUGH,
        u64::from(sys::FUSE_MAX_PAGES),
        1 << 63,
    ] {
        assert_eq!(n.has(flag), accepted & flag == flag);
    }

    assert_eq!(out.major, sys::FUSE_KERNEL_VERSION);
    assert_eq!(out.minor, kernel.minor.min(sys::FUSE_KERNEL_MINOR_VERSION));
    assert_eq!(n.minor(), out.minor);
    assert_eq!(out.max_write, config.max_write.max(4096));
    assert_eq!(n.max_write(), out.max_write);
    assert!(out.max_readahead <= kernel.max_readahead);
    assert_eq!(
        out.max_readahead,
        config
            .max_readahead
            .map_or(kernel.max_readahead, |r| r.min(kernel.max_readahead))
    );
    assert_eq!(out.max_pages, config.max_pages);
    assert_eq!(out.time_gran, config.time_gran);
    assert_eq!(
        (out.max_background, out.congestion_threshold),
        (config.max_background, config.congestion_threshold)
    );
    if n.has(sys::FUSE_PASSTHROUGH) {
        assert_eq!(out.max_stack_depth, config.max_stack_depth);
        assert!((1..=MAX_STACK_DEPTH).contains(&out.max_stack_depth));
    } else {
        assert_eq!(out.max_stack_depth, 0, "stack depth without passthrough");
    }
    if n.has(sys::FUSE_REQUEST_TIMEOUT) {
        assert_eq!(out.request_timeout, config.request_timeout);
    } else {
        assert_eq!(
            out.request_timeout, 0,
            "timeout without FUSE_REQUEST_TIMEOUT"
        );
    }
    assert!(out.unused.iter().all(|&b| b == 0));
    assert_eq!(n.reply_bytes(), out.as_bytes());
    assert_eq!(n.reply_bytes().len(), size_of::<sys::fuse_init_out>());
    let protocol = n.protocol();
    assert_eq!(protocol.minor, out.minor);
    assert_eq!(
        protocol.setxattr_ext,
        n.has(u64::from(sys::FUSE_SETXATTR_EXT))
    );

    // --- buffer sizes: one rule, at least what the kernel checks ----------------------------
    let page = rustix::param::page_size();
    let pages = if n.has(u64::from(sys::FUSE_MAX_PAGES)) {
        usize::from(out.max_pages.max(1))
    } else {
        32
    };
    assert_eq!(usize::from(n.max_pages()), pages);
    let payload = n.uring_payload_size();
    assert!(payload >= 8192);
    assert!(payload >= out.max_write as usize);
    assert!(payload >= pages * page);
    assert_eq!(payload, fuse_uring::payload_size(out), "one rule for both");
    let read = n.read_buffer_size();
    assert!(read >= 8192);
    // The kernel's check on every read(2) of /dev/fuse.
    assert!(read >= WRITE_REQUEST_HEAD + out.max_write as usize);
    assert_eq!(read, WRITE_REQUEST_HEAD + payload);

    // --- fuse_uring::check_init on the same request bytes ----------------------------------
    let init_in = sys::fuse_init_in::read_from_bytes(raw).expect("64 bytes");
    let wire_offered = KernelInit::parse(raw).expect("64 bytes").flags;
    let too_old = init_in.major == sys::FUSE_KERNEL_VERSION && init_in.minor < 42;
    let checked = fuse_uring::check_init_in(&init_in);
    // The decoded request (what fuse-dev hands back) gets the same answer as the raw one.
    let decoded = KernelInit::parse(raw).expect("64 bytes");
    assert_eq!(fuse_uring::check_init(&decoded), checked);
    match checked {
        Ok(()) => {
            assert!(!too_old);
            assert_ne!(wire_offered & sys::FUSE_OVER_IO_URING, 0);
        }
        Err(Unsupported::KernelTooOld { minor }) => {
            assert!(too_old);
            assert_eq!(minor, init_in.minor);
        }
        Err(e) => {
            assert!(!too_old);
            assert_eq!(wire_offered & sys::FUSE_OVER_IO_URING, 0, "{e}");
            assert!(e.to_string().contains("enable_uring"), "{e}");
        }
    }

    // --- fuse_uring::payload_size on arbitrary reply bytes --------------------------------
    let raw_out = sys::fuse_init_out::read_from_bytes(raw).expect("64 bytes");
    let size = fuse_uring::payload_size(&raw_out);
    assert!(size >= sys::FUSE_MIN_READ_BUFFER as usize);
    assert!(size >= raw_out.max_write as usize);
    let a = u32_at(&c, 0);
    let b = u32_at(&c, 4);
    let size = fuse_uring::payload_size_for(a, b, usize::MAX >> (c[8] % 64));
    assert!(size >= a as usize && size >= sys::FUSE_MIN_READ_BUFFER as usize);
});
