//! INIT request and reply handling: the kernel's `fuse_init_in` as arbitrary bytes, the
//! server's wishes as arbitrary options. testkit's `init_reply` (the INIT decoder of the
//! tests, the demo and the example) must agree only to what was offered and wanted, and
//! fuse-uring's `check_init` and `payload_size` must classify and size without panicking.

#![no_main]

use fuse_kernel_sys as sys;
use fuse_uring::Unsupported;
use libfuzzer_sys::fuzz_target;
use testkit::{InitOptions, init_reply, read_struct};

fn padded(data: &[u8], at: usize, len: usize) -> Vec<u8> {
    let mut v = data.get(at..).unwrap_or(&[]).to_vec();
    v.resize(v.len().max(len), 0);
    v
}

fuzz_target!(|data: &[u8]| {
    let in_size = size_of::<sys::fuse_init_in>();
    let init_in: sys::fuse_init_in =
        read_struct(&padded(data, 0, in_size)).expect("padded to size");
    let tail = padded(data, in_size, 18);
    let opts = InitOptions {
        want: u64::from_le_bytes(tail[0..8].try_into().expect("8 bytes")),
        max_write: u32::from_le_bytes(tail[8..12].try_into().expect("4 bytes")),
        max_pages: u16::from_le_bytes(tail[12..14].try_into().expect("2 bytes")),
        max_stack_depth: u32::from_le_bytes(tail[14..18].try_into().expect("4 bytes")),
    };

    // --- testkit::init_reply ------------------------------------------------------------
    let neg = init_reply(&init_in, &opts);
    let high = if init_in.flags & sys::FUSE_INIT_EXT != 0 {
        u64::from(init_in.flags2) << 32
    } else {
        0
    };
    let offered = u64::from(init_in.flags) | high;
    assert_eq!(neg.offered, offered);
    let allowed = (offered & opts.want) | u64::from(sys::FUSE_INIT_EXT);
    assert_eq!(
        neg.accepted & !allowed,
        0,
        "agreed to something not offered or wanted"
    );
    assert_eq!(neg.accepted & offered & opts.want, offered & opts.want);
    if neg.accepted >> 32 != 0 {
        assert_ne!(
            neg.accepted & u64::from(sys::FUSE_INIT_EXT),
            0,
            "flags2 without INIT_EXT"
        );
    }
    let out = neg.init_out;
    assert_eq!(
        u64::from(out.flags) | u64::from(out.flags2) << 32,
        neg.accepted
    );
    assert_eq!(out.major, sys::FUSE_KERNEL_VERSION);
    assert_eq!(out.minor, sys::FUSE_KERNEL_MINOR_VERSION.min(init_in.minor));
    assert_eq!(
        (out.max_write, out.max_pages),
        (opts.max_write, opts.max_pages)
    );
    if neg.accepted & sys::FUSE_PASSTHROUGH == 0 {
        assert_eq!(out.max_stack_depth, 0, "stack depth without passthrough");
    }
    assert!(out.unused.iter().all(|&b| b == 0));

    // --- fuse_uring::check_init ---------------------------------------------------------
    let too_old = init_in.major == sys::FUSE_KERNEL_VERSION && init_in.minor < 42;
    match fuse_uring::check_init(&init_in) {
        Ok(()) => {
            assert!(!too_old);
            assert_ne!(offered & sys::FUSE_OVER_IO_URING, 0);
        }
        Err(Unsupported::KernelTooOld { minor }) => {
            assert!(too_old);
            assert_eq!(minor, init_in.minor);
        }
        Err(e) => {
            assert!(!too_old);
            assert_eq!(offered & sys::FUSE_OVER_IO_URING, 0, "{e}");
            assert!(e.to_string().contains("enable_uring"), "{e}");
        }
    }

    // --- fuse_uring::payload_size, on our reply and on arbitrary reply bytes --------------
    let page = rustix::param::page_size();
    let check_payload = |o: &sys::fuse_init_out| {
        let size = fuse_uring::payload_size(o);
        assert!(size >= sys::FUSE_MIN_READ_BUFFER as usize);
        assert!(size >= o.max_write as usize);
        let pages = if o.flags & sys::FUSE_MAX_PAGES != 0 {
            usize::from(o.max_pages).max(1)
        } else {
            32
        };
        assert!(size >= pages * page);
    };
    check_payload(&out);
    let raw_out: sys::fuse_init_out =
        read_struct(&padded(data, 0, size_of::<sys::fuse_init_out>())).expect("padded");
    check_payload(&raw_out);
    let a = u32::from_le_bytes(tail[0..4].try_into().expect("4"));
    let b = u32::from_le_bytes(tail[4..8].try_into().expect("4"));
    let size = fuse_uring::payload_size_for(a, b, usize::MAX >> (tail[8] % 64));
    assert!(size >= a as usize && size >= sys::FUSE_MIN_READ_BUFFER as usize);
});
