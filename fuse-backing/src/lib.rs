//! Typed, safe wrappers for the `/dev/fuse` backing ioctls (work in progress).
#![deny(missing_docs)]
