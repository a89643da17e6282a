//! The bindgen callbacks every generation shares: integer macros are typed by
//! [`MacroTypes`], and each struct and union gets its zerocopy derives.

use std::sync::Arc;

use bindgen::callbacks::{DeriveInfo, IntKind, ParseCallbacks, TypeKind};

use super::macro_types::MacroTypes;

/// Lets one `MacroTypes` be shared between bindgen and the caller.
#[derive(Debug)]
pub(super) struct SharedCallbacks(pub(super) Arc<MacroTypes>);

/// Structs whose last member is a C flexible array (or that embed one): they have no fixed
/// size, so they get no byte-view derives; their fixed parts are read field by field.
const FLEXIBLE_ARRAY_STRUCTS: &[&str] = &["fuse_dirent", "fuse_direntplus", "fuse_supp_groups"];

/// Structs with implicit padding: readable from bytes, but never written as bytes (their
/// padding would be uninitialised). Only the unmerged fuse-iomap series has one
/// (`fuse_iomap_config_out`, 4 bytes of tail padding); zerocopy's `IntoBytes` derive rejects
/// any other padded struct at compile time, so this list cannot hide one by accident.
const PADDED_STRUCTS: &[&str] = &["fuse_iomap_config_out"];

/// Structs that hold a union whose members differ in size (7.46's `fuse_uring_cmd_req`: its
/// union is the 16-byte `bufpool` or the 2-byte `ent_zero_copy_buf_index`, so a value built
/// through the small member has 14 uninitialised bytes). Readable from bytes, never viewed as
/// bytes: their writers (fuse-uring's SQE builders) put the fields into a zeroed command area
/// one by one. Unions themselves never get `IntoBytes` (see [`zerocopy_derives`]), and
/// zerocopy's `IntoBytes` derive rejects a struct with a union field, so a struct that gains
/// one fails to compile until it is listed here.
const UNION_HOLDING_STRUCTS: &[&str] = &["fuse_uring_cmd_req"];

/// The zerocopy derives put on every other struct (and `FromBytes` only on unions, whose
/// variants may leave bytes uninitialised).
///
/// `IntoBytes` makes zerocopy prove at compile time that the struct has no padding, and
/// `FromBytes` that every field accepts every bit pattern: together they are the soundness
/// proof for reading an ABI struct from kernel bytes and writing it back, in safe code.
fn zerocopy_derives(info: &DeriveInfo<'_>) -> Vec<String> {
    if FLEXIBLE_ARRAY_STRUCTS.contains(&info.name) {
        return Vec::new();
    }
    let mut derives = vec![
        "::zerocopy::FromBytes".to_owned(),
        "::zerocopy::Immutable".to_owned(),
        "::zerocopy::KnownLayout".to_owned(),
    ];
    if info.kind == TypeKind::Struct
        && !PADDED_STRUCTS.contains(&info.name)
        && !UNION_HOLDING_STRUCTS.contains(&info.name)
    {
        derives.push("::zerocopy::IntoBytes".to_owned());
    }
    derives
}

impl ParseCallbacks for SharedCallbacks {
    fn int_macro(&self, name: &str, value: i64) -> Option<IntKind> {
        self.0.int_macro(name, value)
    }

    fn add_derives(&self, info: &DeriveInfo<'_>) -> Vec<String> {
        zerocopy_derives(info)
    }
}
