//! fuse-uring's arena arithmetic on caller-controlled sizes: `Layout::new` with any depth,
//! payload size and page size either refuses with an error or gives a layout whose slot
//! records, header slots and payload buffers are aligned, disjoint and inside the mapping;
//! `payload_size_for` never overflows.

#![no_main]

use fuse_uring::{BufferError, HEADER_SIZE, Layout, MAX_PAYLOAD_SIZE, MIN_PAYLOAD_SIZE, SLOT_SIZE};
use libfuzzer_sys::fuzz_target;

fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = data.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    let depth = u64_at(data, 0) as u32;
    // Small values are the interesting ones; the top bits pick huge ones.
    let payload = match data.get(12).copied().unwrap_or(0) % 4 {
        0 => u64_at(data, 4) as usize % (1 << 22),
        1 => u64_at(data, 4) as usize,
        _ => MIN_PAYLOAD_SIZE + u64_at(data, 4) as usize % 70_000,
    };
    let page = match data.get(13).copied().unwrap_or(0) % 3 {
        0 => 4096,
        1 => 1 << (data.get(14).copied().unwrap_or(0) % 64),
        _ => u64_at(data, 15) as usize,
    };
    match Layout::new(depth, payload, page) {
        Err(BufferError::ZeroDepth) => assert_eq!(depth, 0),
        Err(BufferError::PayloadTooSmall { requested, minimum }) => {
            assert_eq!((requested, minimum), (payload, MIN_PAYLOAD_SIZE));
            assert!(payload < MIN_PAYLOAD_SIZE);
        }
        Err(BufferError::PayloadTooLarge { requested, .. }) => {
            assert!(requested > MAX_PAYLOAD_SIZE);
        }
        Err(BufferError::BadPageSize(p)) => {
            assert!(!p.is_power_of_two() || p < 4096);
        }
        Err(BufferError::TooLarge { .. }) => {}
        Err(e) => panic!("unexpected error {e}"),
        Ok(l) => {
            assert!(depth > 0 && payload >= MIN_PAYLOAD_SIZE && page.is_power_of_two());
            assert_eq!(
                (l.depth(), l.payload_size(), l.page_size()),
                (depth, payload, page)
            );
            assert!(l.len() <= isize::MAX as usize);
            assert_eq!(l.len() % page, 0);
            assert!(l.payload_stride() >= payload && l.payload_stride() % page == 0);
            let last = depth - 1;
            for i in [0, last / 2, last] {
                assert_eq!(l.slot_offset(i) % SLOT_SIZE, 0);
                assert!(l.slot_offset(i) + SLOT_SIZE <= l.header_offset(0));
                assert_eq!(l.header_offset(i) % 8, 0);
                assert!(l.header_offset(i) + HEADER_SIZE <= l.payload_offset(0));
                assert_eq!(l.payload_offset(i) % page, 0);
                assert!(l.payload_offset(i) + payload <= l.len());
            }
            if depth > 1 {
                assert!(l.payload_offset(last - 1) + payload <= l.payload_offset(last));
                assert_eq!(
                    l.header_offset(last) - l.header_offset(last - 1),
                    HEADER_SIZE
                );
            }
        }
    }
    let a = u64_at(data, 20) as u32;
    let b = u64_at(data, 24) as u32;
    let size = fuse_uring::payload_size_for(a, b, page);
    assert!(size >= a as usize && size >= MIN_PAYLOAD_SIZE);
    assert!(size >= (b as usize).saturating_mul(page));
});
