//! ABI cross-checks of fuse-kernel-sys (see the tests); this library is empty.
