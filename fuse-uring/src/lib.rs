//! Building blocks for FUSE-over-io_uring (work in progress).
#![deny(missing_docs)]
