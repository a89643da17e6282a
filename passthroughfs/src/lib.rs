//! The library half of the `passthroughfs` example: the file system and its two transports,
//! so that the binary (`src/main.rs`), the tests and the fuzz targets use the same code.
//!
//! - [`fs`]: the read-only mirror, answering requests decoded by `fuse-wire`;
//! - [`dev`]: the `/dev/fuse` request loop (one cloned fd per worker);
//! - [`uring`]: the FUSE-over-io_uring queues (`fuse-uring`);
//! - [`backing`]: passthrough backing ids, one per inode (`fuse-backing`);
//! - [`stats`]: request counters for `--stats`.
//!
//! Not a published API: copy from it.

#![allow(missing_docs, unreachable_pub)]

pub mod backing;
pub mod dev;
pub mod fs;
pub mod stats;
pub mod uring;
