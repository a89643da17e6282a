//! The run-time parts of fuse-kernel-sys: the record-size helpers (with their saturation at
//! the top of `usize`) and the plain-data property the whole ABI relies on, that a default
//! struct is all zero bytes and can be viewed as bytes. Pure, so `cargo xtask miri` runs it
//! under Miri.

use fuse_kernel_sys as sys;

/// The bytes of a plain ABI struct, as servers view them to write replies.
fn bytes_of<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: the fuse ABI structs are integers without padding (checked against the C
    // compiler by abi-tests), so every byte is initialised; the slice borrows `value`.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

#[test]
fn record_sizes_align_to_8_and_saturate() {
    assert_eq!(sys::fuse_rec_align(0), 0);
    assert_eq!(sys::fuse_rec_align(1), 8);
    assert_eq!(sys::fuse_rec_align(8), 8);
    assert_eq!(sys::fuse_rec_align(9), 16);
    assert_eq!(sys::fuse_rec_align(usize::MAX), usize::MAX & !7);
    assert_eq!(sys::fuse_dirent_size(0), sys::FUSE_NAME_OFFSET as usize);
    assert_eq!(sys::fuse_dirent_size(1), 32);
    assert_eq!(sys::fuse_dirent_size(8), 32);
    assert_eq!(sys::fuse_dirent_size(9), 40);
    assert_eq!(
        sys::fuse_direntplus_size(1),
        sys::FUSE_NAME_OFFSET_DIRENTPLUS as usize + 8
    );
    for n in [0, 1, 255, 4096, usize::MAX - 30, usize::MAX] {
        assert_eq!(sys::fuse_dirent_size(n) % 8, 0, "{n}");
        assert!(sys::fuse_dirent_size(n) >= n.min(usize::MAX & !7), "{n}");
        assert!(
            sys::fuse_direntplus_size(n) >= sys::fuse_dirent_size(n),
            "{n}"
        );
    }
    assert_eq!(sys::fuse_removemapping_max_entry(4096), 256);
}

#[test]
fn default_structs_are_zero_bytes() {
    assert!(
        bytes_of(&sys::fuse_in_header::default())
            .iter()
            .all(|&b| b == 0)
    );
    assert!(
        bytes_of(&sys::fuse_init_out::default())
            .iter()
            .all(|&b| b == 0)
    );
    assert!(
        bytes_of(&sys::fuse_uring_req_header::default())
            .iter()
            .all(|&b| b == 0)
    );
    assert!(
        bytes_of(&sys::fuse_backing_map::default())
            .iter()
            .all(|&b| b == 0)
    );
    let header = sys::fuse_out_header {
        len: 16,
        error: -2,
        unique: 7,
    };
    let b = bytes_of(&header);
    assert_eq!(b.len(), 16);
    assert_eq!(b[..4], 16u32.to_ne_bytes());
    assert_eq!(b[4..8], (-2i32).to_ne_bytes());
    assert_eq!(b[8..], 7u64.to_ne_bytes());
}
