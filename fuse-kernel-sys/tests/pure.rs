//! The run-time parts of fuse-kernel-sys: the record-size helpers (with their saturation at
//! the top of `usize`) and the plain-data property the whole ABI relies on, that a default
//! struct is all zero bytes and can be viewed as bytes. Pure, so `cargo xtask miri` runs it
//! under Miri.

use fuse_kernel_sys as sys;
use sys::zerocopy::{FromBytes, IntoBytes};

/// The bytes of an ABI struct, through the zerocopy derives the generator adds.
fn bytes_of<T: IntoBytes + sys::zerocopy::Immutable>(value: &T) -> &[u8] {
    value.as_bytes()
}

#[test]
fn record_sizes_align_to_8_and_saturate() {
    assert_eq!(sys::fuse_rec_align(0), 0);
    assert_eq!(sys::fuse_rec_align(1), 8);
    assert_eq!(sys::fuse_rec_align(8), 8);
    assert_eq!(sys::fuse_rec_align(9), 16);
    assert_eq!(sys::fuse_rec_align(usize::MAX), usize::MAX & !7);
    assert_eq!(sys::fuse_dirent_size(0), sys::FUSE_NAME_OFFSET);
    assert_eq!(sys::fuse_dirent_size(1), 32);
    assert_eq!(sys::fuse_dirent_size(8), 32);
    assert_eq!(sys::fuse_dirent_size(9), 40);
    assert_eq!(
        sys::fuse_direntplus_size(1),
        sys::FUSE_NAME_OFFSET_DIRENTPLUS + 8
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
fn constants_have_the_types_of_their_use() {
    // A node id is a u64 everywhere in the ABI (fuse_in_header.nodeid, fuse_entry_out.nodeid),
    // so the root's id is one too: no conversion at the use.
    let header = sys::fuse_in_header {
        nodeid: sys::FUSE_ROOT_ID,
        ..Default::default()
    };
    assert_eq!(header.nodeid, 1);
    // The name of a READDIR record starts after ino (8), off (8), namelen (4) and type (4);
    // the offset is a usize because it is added to lengths and indexes buffers.
    let name_at: usize = sys::FUSE_NAME_OFFSET;
    assert_eq!(name_at, 24);
    let record = [0u8; 64];
    assert_eq!(record[sys::FUSE_NAME_OFFSET..].len(), 40);
    // READDIRPLUS: a fuse_entry_out (128 bytes) before the dirent.
    let plus_name_at: usize = sys::FUSE_NAME_OFFSET_DIRENTPLUS;
    assert_eq!(plus_name_at, 128 + 24);
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

#[test]
fn structs_read_from_unaligned_kernel_bytes() {
    // A GETATTR request header as the kernel lays it out, one byte into the buffer so that the
    // struct is not aligned: len 56, opcode 3, unique 9, nodeid 1, uid 1000, gid 100, pid 42,
    // total_extlen 0.
    let mut buf = vec![0xAAu8];
    buf.extend_from_slice(&56u32.to_ne_bytes());
    buf.extend_from_slice(&3u32.to_ne_bytes());
    buf.extend_from_slice(&9u64.to_ne_bytes());
    buf.extend_from_slice(&1u64.to_ne_bytes());
    buf.extend_from_slice(&1000u32.to_ne_bytes());
    buf.extend_from_slice(&100u32.to_ne_bytes());
    buf.extend_from_slice(&42u32.to_ne_bytes());
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(&0u16.to_ne_bytes());
    buf.extend_from_slice(b"rest");
    let (header, rest) = sys::fuse_in_header::read_from_prefix(&buf[1..]).expect("40 bytes");
    assert_eq!(
        (header.len, header.opcode, header.unique, header.nodeid),
        (56, 3, 9, 1)
    );
    assert_eq!((header.uid, header.gid, header.pid), (1000, 100, 42));
    assert_eq!(rest, b"rest");
    // Too short: an error, not a panic or a read past the end.
    assert!(sys::fuse_in_header::read_from_prefix(&buf[1..40]).is_err());
    // Written back, the bytes are the ones read.
    assert_eq!(header.as_bytes(), &buf[1..41]);
}
