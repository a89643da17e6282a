//! The bindgen configuration of `fuse-kernel-sys`, for the workspace's tools.
//!
//! The configuration itself ships inside the published `fuse-kernel-sys` package as
//! `fuse-kernel-sys/build/bindgen_config.rs`, where its build script reads it with `#[path]`.
//! This unpublished crate includes the same file so that `xtask` (`regen-bindings`) and the
//! build script of `abi-tests` use the very same code: one configuration, no second copy.

#[path = "../../fuse-kernel-sys/build/bindgen_config.rs"]
mod config;

pub use config::*;
