//! The committed snapshot and the build-time bindings are the same bytes.
//!
//! Both come from `build-support`; this proves that building with the `bindgen` feature and
//! building without it give the same Rust on the snapshot's target. (Drift between the header
//! and the snapshot is caught the same way: the build-time file is made from the header.)

#![cfg(all(
    feature = "bindgen",
    target_arch = "x86_64",
    target_os = "linux",
    target_env = "gnu"
))]

#[test]
fn mainline_snapshot_matches_build_time_bindings() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/fuse_kernel.rs"));
    let snapshot = include_str!("../src/generated/generic/fuse_kernel.rs");
    assert!(
        built == snapshot,
        "src/generated/generic/fuse_kernel.rs differs from what include/fuse_kernel.h generates; \
         run `cargo xtask regen-bindings`"
    );
}

#[test]
fn iomap_snapshot_matches_build_time_bindings() {
    let built = include_str!(concat!(env!("OUT_DIR"), "/fuse_iomap.rs"));
    let snapshot = include_str!("../src/generated/generic/fuse_iomap.rs");
    assert!(
        built == snapshot,
        "src/generated/generic/fuse_iomap.rs differs from what include/fuse_iomap.h generates; \
         run `cargo xtask regen-bindings`"
    );
}
