//! ABI cross-checks of `fuse-kernel-sys`: every item against the C compiler and against
//! independent copies of the kernel header. Not published.
//!
//! The build script (`build.rs`) reads the vendored headers (and the distro's
//! `<linux/fuse.h>` and `<linux/io_uring.h>`), writes one C probe per header that records,
//! as computed by the C compiler, every struct's size and alignment, every field's offset,
//! size and signedness, every enum's size and every enum value's and object-like macro's
//! value and C type, and compiles the probes with `cc`. Next to each C value it writes the
//! matching Rust expression (`size_of`, `align_of`, `offset_of!`, the constant of
//! `fuse-kernel-sys`). This library pairs the two ([`probed_ours`], [`probed_distro`],
//! [`probed_sqe`]) and says whether they agree ([`Probed::check`]); the tests in `tests/` run
//! the comparisons and report.
//!
//! The lists of items are derived from the header text (`build_support::expected_items` and
//! the struct bodies), so an item added to a header is checked without anyone adding it here.

mod constants;
mod entry;
mod figures;
mod holes;
mod probe;

pub use constants::{CType, check_const, check_const_as, const_agrees};
pub use entry::{Entry, HeaderItems, Kind, Rust};
pub use figures::{ConstVal, Int, field_signed, field_size, pointee_signed, pointee_size};
pub use holes::{Hole, holes};
pub use probe::{
    Counts, Probed, counts, mismatches, probed_distro, probed_official, probed_ours, probed_sqe,
};

/// Compile-time assertions of every size, alignment, offset, signedness and constant against
/// the figures clang computes for the target being built (empty unless `FUSE_ABI_UAPI_ROOT`
/// is set; see `cargo xtask cross-check`). Generated from the same Rust figures as the tables.
#[allow(unsafe_code, clippy::all)]
mod cross {
    include!(concat!(env!("OUT_DIR"), "/cross.rs"));
}

/// The tables the build script generated from the headers (union fields are addressed with
/// `&raw const` in `unsafe` blocks: generated code, allowed here only).
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod tables {
    use crate::{Entry, HeaderItems, Kind, Rust};
    include!(concat!(env!("OUT_DIR"), "/tables.rs"));
}
