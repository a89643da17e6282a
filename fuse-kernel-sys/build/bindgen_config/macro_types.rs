//! The Rust type of each integer macro: clang tells the C type of its expression
//! ([`CIntType`], through a `_Generic` probe), and a fixed rule (or [`MACRO_RUST_TYPES`])
//! turns that into the Rust type.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};

use bindgen::callbacks::{IntKind, ParseCallbacks};

use super::callbacks::SharedCallbacks;
use super::targets::clang_args;
use super::{Error, Header};

/// Object-like macros of the headers that clang cannot evaluate on its own, with the reason.
/// They stay in the header (they are part of the ABI text) and are left out of the
/// "every macro must be generated" check; `fuse-kernel-sys` covers each by other means.
pub const UNEVALUABLE_MACROS: &[(&str, &str)] = &[(
    "FUSE_REMOVEMAPPING_MAX_ENTRY",
    "defined with PAGE_SIZE, which no uapi header defines; \
     fuse-kernel-sys offers fuse_removemapping_max_entry(page_size) instead",
)];

/// Object-like macros whose Rust type is chosen by their use rather than by their C type:
/// `(name, Rust type, why)`. Every other integer macro follows [`CIntType`]'s rule.
pub const MACRO_RUST_TYPES: &[(&str, &str, &str)] = &[
    (
        "FUSE_ROOT_ID",
        "u64",
        "a node id: compared with the u64 `nodeid` fields and stored where they are",
    ),
    (
        "FUSE_NAME_OFFSET",
        "usize",
        "an `offsetof` (C `size_t`): used as a byte count when packing directory records",
    ),
    (
        "FUSE_NAME_OFFSET_DIRENTPLUS",
        "usize",
        "an `offsetof` (C `size_t`): used as a byte count when packing directory records",
    ),
];

/// The bindgen integer kind of a Rust type named in [`MACRO_RUST_TYPES`].
fn int_kind_named(rust_type: &str) -> IntKind {
    match rust_type {
        "u64" => IntKind::U64,
        "u32" => IntKind::U32,
        "i32" => IntKind::I32,
        "i64" => IntKind::I64,
        other => IntKind::Custom {
            name: if other == "usize" { "usize" } else { "isize" },
            is_signed: other != "usize",
        },
    }
}

/// The C type of an integer macro's expression, as clang's `_Generic` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CIntType {
    /// `int`
    Int = 1,
    /// `unsigned int`
    UInt = 2,
    /// `long`
    Long = 3,
    /// `unsigned long`
    ULong = 4,
    /// `long long`
    LongLong = 5,
    /// `unsigned long long`
    ULongLong = 6,
}

impl CIntType {
    /// Every type, in the order of their codes. The codes and C names are defined here only:
    /// the `_Generic` probes of this configuration and of abi-tests use these.
    pub const ALL: [CIntType; 6] = [
        CIntType::Int,
        CIntType::UInt,
        CIntType::Long,
        CIntType::ULong,
        CIntType::LongLong,
        CIntType::ULongLong,
    ];

    /// The associations of a `_Generic` selection that gives an integer expression the code
    /// of its type, and 0 for any other type.
    pub fn generic_associations() -> String {
        let mut list: String = Self::ALL
            .iter()
            .map(|t| format!("{}: {}, ", t.c_name(), t.code()))
            .collect();
        list.push_str("default: 0");
        list
    }

    /// The type of a code of [`CIntType::generic_associations`]; `None` for 0 and unknown codes.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The code `_Generic` gives this type (1..=6).
    pub fn code(self) -> i64 {
        self as i64
    }

    /// The C spelling.
    pub fn c_name(self) -> &'static str {
        match self {
            CIntType::Int => "int",
            CIntType::UInt => "unsigned int",
            CIntType::Long => "long",
            CIntType::ULong => "unsigned long",
            CIntType::LongLong => "long long",
            CIntType::ULongLong => "unsigned long long",
        }
    }

    /// Whether the type is signed.
    pub fn signed(self) -> bool {
        matches!(self, CIntType::Int | CIntType::Long | CIntType::LongLong)
    }

    /// Whether the type is `long long` or `unsigned long long`.
    pub fn is_long_long(self) -> bool {
        matches!(self, CIntType::LongLong | CIntType::ULongLong)
    }

    /// The Rust type a macro of this C type and value gets.
    ///
    /// The rule: `long long` expressions (an `ULL` literal) are 64-bit in Rust, whatever
    /// their value, because they belong in 64-bit fields (`-1ULL` is `u64::MAX`, not `-1`).
    /// Everything else (`int` flags, `unsigned long` ioctl numbers) is `u32` when the value
    /// fits, as in linux-raw-sys; `(1 << 31)` is therefore `0x8000_0000u32`.
    fn rust_kind(self, value: i64) -> IntKind {
        match self {
            CIntType::ULongLong => IntKind::U64,
            CIntType::LongLong if value < 0 => IntKind::I64,
            CIntType::LongLong => IntKind::U64,
            _ if u32::try_from(value).is_ok() => IntKind::U32,
            _ if i32::try_from(value).is_ok() => IntKind::I32,
            _ if value < 0 => IntKind::I64,
            _ => IntKind::U64,
        }
    }
}

const CTYPE_PREFIX: &str = "FUSE_KERNEL_SYS_CTYPE_OF_";

/// Records the C types of the probe macros, and types the real macros from them.
#[derive(Debug, Default)]
pub(super) struct MacroTypes {
    pub(super) probed: Mutex<BTreeMap<String, CIntType>>,
    pub(super) unknown: Mutex<Vec<String>>,
    pub(super) use_types: Option<BTreeMap<String, CIntType>>,
}

impl ParseCallbacks for MacroTypes {
    fn int_macro(&self, name: &str, value: i64) -> Option<IntKind> {
        if let Some(of) = name.strip_prefix(CTYPE_PREFIX) {
            if let (Some(ty), Ok(mut map)) = (CIntType::from_code(value), self.probed.lock()) {
                map.insert(of.to_owned(), ty);
            }
            return None;
        }
        let types = self.use_types.as_ref()?;
        if let Some((_, rust_type, _)) = MACRO_RUST_TYPES.iter().find(|(n, _, _)| *n == name) {
            return Some(int_kind_named(rust_type));
        }
        match types.get(name) {
            Some(ty) => Some(ty.rust_kind(value)),
            None => {
                if let Ok(mut unknown) = self.unknown.lock() {
                    unknown.push(name.to_owned());
                }
                None
            }
        }
    }
}

/// Asks clang for the C type of every object-like macro of `header` (through bindgen's clang
/// macro evaluation of a `_Generic` selection per macro).
pub(super) fn macro_c_types(
    include_dir: &Path,
    header: Header,
    target: &str,
    scratch_dir: &Path,
    macros: &[String],
) -> Result<BTreeMap<String, CIntType>, Error> {
    let probe_path = scratch_dir.join(format!("ctype_probe_{}", header.file_name()));
    let mut probe = format!("#include \"{}\"\n", header.file_name());
    for m in macros {
        if UNEVALUABLE_MACROS.iter().any(|(n, _)| n == m) {
            continue;
        }
        probe.push_str(&format!(
            "#define {CTYPE_PREFIX}{m} (_Generic(({m}), {}))\n",
            CIntType::generic_associations()
        ));
    }
    fs::write(&probe_path, probe).map_err(|e| Error::Io(probe_path.clone(), e))?;
    let types = Arc::new(MacroTypes::default());
    let builder = bindgen::Builder::default()
        .header(probe_path.to_string_lossy().into_owned())
        .clang_args(clang_args(include_dir, target))
        .allowlist_var(format!("{CTYPE_PREFIX}.*"))
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(scratch_dir)
        .parse_callbacks(Box::new(SharedCallbacks(types.clone())));
    builder.generate().map_err(|e| Error::Bindgen(header, e))?;
    let probed = types.probed.lock().map(|m| m.clone()).unwrap_or_default();
    let unknown: Vec<String> = macros
        .iter()
        .filter(|m| !probed.contains_key(*m) && !UNEVALUABLE_MACROS.iter().any(|(n, _)| n == *m))
        .map(|m| format!("C type of macro {m}"))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::MissingItems(header, unknown));
    }
    Ok(probed)
}
