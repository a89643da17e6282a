//! fuse-backing's caller-controlled inputs: the flags of `open_with_flags` (type field and
//! unknown bits, checked before any system call), raw ids (`BackingId::new`, `close_raw`),
//! and the OPEN reply built from an id. The "device" is `/dev/null`, so every flag set that
//! passes validation reaches the kernel and comes back `ENOTTY`.

#![no_main]

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::OnceLock;

use fuse_backing::{
    Backing, BackingId, BackingKind, Cause, Errno, IomapDevice, Operation, Passthrough, close_raw,
    open_with_flags,
};
use fuse_kernel_sys as sys;
use libfuzzer_sys::fuzz_target;

fn dev_null() -> &'static File {
    static NULL: OnceLock<File> = OnceLock::new();
    NULL.get_or_init(|| File::open("/dev/null").expect("/dev/null"))
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = data.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(b)
}

fn u64_at(data: &[u8], at: usize) -> u64 {
    u64::from(u32_at(data, at)) | u64::from(u32_at(data, at + 4)) << 32
}

fn check_flags<K: BackingKind>(flags: u32) {
    let null = dev_null();
    let invalid =
        flags & !sys::FUSE_BACKING_FLAGS_ALL != 0 || flags & sys::FUSE_BACKING_TYPE_MASK != 0;
    let e = match open_with_flags::<K>(null.as_fd(), null.as_fd(), flags) {
        Ok(id) => panic!("/dev/null gave backing id {id:?} for flags {flags:#x}"),
        Err(e) => e,
    };
    assert_eq!(e.operation(), Operation::BackingOpen(K::TYPE));
    if invalid {
        assert_eq!(
            (e.cause(), e.errno()),
            (Cause::InvalidFlags, Errno::INVAL),
            "{flags:#x}"
        );
        assert!(!e.is_unsupported());
    } else {
        assert_eq!(
            (e.cause(), e.errno()),
            (Cause::Kernel, Errno::NOTTY),
            "{flags:#x}"
        );
        assert!(e.is_unsupported());
    }
    let text = e.to_string();
    assert!(text.starts_with("FUSE_DEV_IOC_BACKING_OPEN"), "{text}");
    assert_eq!(
        std::io::Error::from(e).raw_os_error(),
        Some(e.raw_os_error())
    );
    // The guard type validates the same way and never owns an id here.
    let guarded = Backing::<K, _>::open_with_flags(null, null.as_fd(), flags)
        .map(|b| b.into_raw())
        .expect_err("no id from /dev/null");
    assert_eq!(guarded, e);
}

fn check_id<K: BackingKind>(raw: u32) {
    let id = BackingId::<K>::new(raw);
    assert_eq!(id.is_some(), (1..=i32::MAX as u32).contains(&raw), "{raw}");
    if let Some(id) = id {
        assert_eq!(id.get(), raw);
        assert_eq!(u32::from(id), raw);
        assert_eq!(id.backing_type(), K::TYPE);
        assert!(!format!("{id:?}").is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let flags = u32_at(data, 0);
    let raw = u32_at(data, 4);
    let fh = u64_at(data, 8);
    let open_flags = u32_at(data, 16);

    check_flags::<Passthrough>(flags);
    check_flags::<IomapDevice>(flags);
    check_id::<Passthrough>(raw);
    check_id::<IomapDevice>(raw);

    if let Some(id) = BackingId::<Passthrough>::new(raw) {
        let out = id.open_out(fh, open_flags);
        assert_eq!(out.fh, fh);
        assert_eq!(out.open_flags, open_flags | sys::FOPEN_PASSTHROUGH);
        assert!(out.backing_id > 0);
        assert_eq!(out.backing_id as u32, raw);
    }
    if let Some(id) = BackingId::<IomapDevice>::new(raw) {
        assert_ne!(id.device_cookie(), 0);
    }

    // Any raw id on a device that is not /dev/fuse: the kernel's answer, classified.
    let e = close_raw(dev_null().as_fd(), raw).expect_err("/dev/null closes nothing");
    assert_eq!(
        (e.operation(), e.errno()),
        (Operation::BackingClose, Errno::NOTTY)
    );
    assert!(e.is_unsupported());
});
