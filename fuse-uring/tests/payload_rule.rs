//! One rule for the io_uring payload size: `fuse-wire` owns it
//! (`Negotiated::uring_payload_size`, `fuse_wire::init::payload_size_for`); `fuse-uring`'s
//! `payload_size_for` / `payload_size` are the same formula for servers that hold a raw
//! `fuse_init_out`. This test keeps the two equal.

use fuse_kernel_sys as sys;

#[test]
fn payload_size_agrees_with_fuse_wire() {
    let page = rustix::param::page_size();
    assert_eq!(
        fuse_uring::KERNEL_DEFAULT_MAX_PAGES,
        u32::from(fuse_wire::init::KERNEL_DEFAULT_MAX_PAGES)
    );
    for max_write in [
        0,
        4096,
        8191,
        8192,
        65536,
        131_072,
        1 << 20,
        3 << 20,
        u32::MAX,
    ] {
        for max_pages in [0u16, 1, 2, 32, 256, 1024, u16::MAX] {
            for page_size in [4096, 16384, 65536, page] {
                assert_eq!(
                    fuse_uring::payload_size_for(max_write, u32::from(max_pages), page_size),
                    fuse_wire::init::payload_size_for(max_write, max_pages, page_size),
                    "max_write {max_write}, max_pages {max_pages}, page {page_size}"
                );
            }
            // From an INIT reply, with and without FUSE_MAX_PAGES negotiated.
            for flags in [0, sys::FUSE_MAX_PAGES] {
                let out = sys::fuse_init_out {
                    max_write,
                    max_pages,
                    flags,
                    ..Default::default()
                };
                let pages = if flags == 0 {
                    fuse_wire::init::KERNEL_DEFAULT_MAX_PAGES
                } else {
                    max_pages.max(1)
                };
                assert_eq!(
                    fuse_uring::payload_size(&out),
                    fuse_wire::init::payload_size_for(max_write, pages, page),
                    "{out:?}"
                );
            }
        }
    }
}
