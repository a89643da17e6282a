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

use std::ffi::c_ulonglong;
use std::fmt;

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

#[allow(unsafe_code)]
unsafe extern "C" {
    // Defined by the C probes (OUT_DIR/abi_probe_*.c) with exactly these lengths: the build
    // script writes the C definition and these lengths from the same list.
    static abi_probe_ours: [c_ulonglong; tables::OURS_C_SYMBOL_LEN];
    static abi_probe_distro: [c_ulonglong; tables::DISTRO_C_SYMBOL_LEN];
    static abi_probe_official: [c_ulonglong; tables::OFFICIAL_C_SYMBOL_LEN];
    static abi_probe_sqe: [c_ulonglong; tables::SQE_C_SYMBOL_LEN];
}

/// What an entry of a table compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `sizeof(struct S)`.
    Size,
    /// `_Alignof(struct S)`.
    Align,
    /// `offsetof(struct S, f)`.
    FieldOffset,
    /// `sizeof(s.f)`.
    FieldSize,
    /// `sizeof(s.f[0])` of a flexible array member.
    FlexElemSize,
    /// Whether the integer field `s.f` is signed.
    FieldSigned,
    /// `sizeof(enum E)`.
    EnumSize,
    /// An enum value or object-like macro: its value and its C type.
    Const,
    /// A macro that needs `PAGE_SIZE`, evaluated with the probe's page size.
    PageSizeMacro,
    /// An `io_uring_sqe` field: offset and size (the Rust side is resolved by the test).
    SqeField,
    /// An io_uring constant (the Rust side is resolved by the test).
    SqeConst,
}

impl Kind {
    /// How many values of the C array the entry takes.
    pub fn c_values(self) -> usize {
        match self {
            Kind::Const | Kind::SqeField => 2,
            _ => 1,
        }
    }

    /// What the figure is, for messages.
    pub fn what(self) -> &'static str {
        match self {
            Kind::Size | Kind::EnumSize => "size",
            Kind::Align => "alignment",
            Kind::FieldOffset => "offset",
            Kind::FieldSize => "size",
            Kind::FlexElemSize => "element size",
            Kind::FieldSigned => "signedness",
            Kind::Const | Kind::PageSizeMacro | Kind::SqeConst => "value",
            Kind::SqeField => "offset/size",
        }
    }
}

/// The Rust side of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rust {
    /// A size, alignment or offset.
    Layout(usize),
    /// A yes/no property (signedness).
    Flag(bool),
    /// A constant of `fuse-kernel-sys`.
    Const(ConstVal),
    /// A constant whose Rust type is chosen by its use (`build_support::MACRO_RUST_TYPES`):
    /// the value must be the C value and the type the one named.
    ConstAs(ConstVal, &'static str),
    /// Resolved by the test itself.
    None,
}

/// One item of a table: what is compared and the Rust figure.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// The C name: `struct`, `struct.field`, enum, enum value or macro.
    pub item: &'static str,
    /// What is compared.
    pub kind: Kind,
    /// The Rust figure.
    pub rust: Rust,
}

/// The items a header declares, as `build_support::expected_items` lists them.
#[derive(Debug, Clone, Copy)]
pub struct HeaderItems {
    /// The header's name.
    pub header: &'static str,
    /// Its structs.
    pub structs: &'static [&'static str],
    /// Its enum values.
    pub enum_values: &'static [&'static str],
    /// Its object-like macros.
    pub macros: &'static [&'static str],
}

/// An integer type a constant or field of `fuse-kernel-sys` can have.
pub trait Int: Copy {
    /// Whether the type is signed.
    const SIGNED: bool;
    /// The type's name.
    const NAME: &'static str;
    /// The value's bits, zero-extended from the type's width.
    fn bits(self) -> u64;
}

macro_rules! int {
    ($($t:ty => $u:ty),* $(,)?) => { $(
        impl Int for $t {
            const SIGNED: bool = <$t>::MIN != 0;
            const NAME: &'static str = stringify!($t);
            fn bits(self) -> u64 {
                // Reinterpret at the same width, then zero-extend.
                u64::from(self as $u)
            }
        }
    )* };
}
int!(u8 => u8, u16 => u16, u32 => u32, u64 => u64, i8 => u8, i16 => u16, i32 => u32, i64 => u64);

/// The fuse-iomap INIT flag has its own type (its bit 43 means FUSE_HAS_IO_URING_BUFPOOL on
/// mainline 7.46); its value is the `u64` of the series' header.
impl Int for fuse_kernel_sys::iomap::IomapInitFlag {
    const SIGNED: bool = false;
    const NAME: &'static str = "u64";
    fn bits(self) -> u64 {
        self.bits_on_iomap_kernel()
    }
}

impl Int for usize {
    const SIGNED: bool = false;
    const NAME: &'static str = "usize";
    fn bits(self) -> u64 {
        // usize is at most 64 bits wide on every target of this crate.
        self as u64
    }
}

/// Checks a constant of [`Rust::ConstAs`]: the type must be `want` and the value the C value.
pub fn check_const_as(c_bits: u64, rust: &ConstVal, want: &str) -> Result<(), String> {
    if rust.type_name != want {
        return Err(format!(
            "Rust has {rust}, the configuration says it is a {want}"
        ));
    }
    if c_bits != rust.bits {
        return Err(format!("C has {c_bits} ({c_bits:#x}), Rust has {rust}"));
    }
    Ok(())
}

/// A constant of `fuse-kernel-sys`: its bits at its type's width, and its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConstVal {
    /// The value's bits, zero-extended.
    pub bits: u64,
    /// Width of the type in bytes.
    pub width: usize,
    /// Whether the type is signed.
    pub signed: bool,
    /// The type's name.
    pub type_name: &'static str,
}

impl ConstVal {
    /// Describes a Rust constant.
    pub fn of<T: Int>(value: T) -> ConstVal {
        ConstVal {
            bits: value.bits(),
            width: size_of::<T>(),
            signed: T::SIGNED,
            type_name: T::NAME,
        }
    }

    fn value(&self) -> i128 {
        if self.signed && self.width < 16 {
            let shift = 128 - 8 * self.width as u32;
            ((self.bits as i128) << shift) >> shift
        } else {
            i128::from(self.bits)
        }
    }
}

impl fmt::Display for ConstVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:#x}, {})", self.value(), self.bits, self.type_name)
    }
}

/// The size of a field, from a projection `|s: &S| &s.field`.
pub const fn field_size<T, F>(_field: fn(&T) -> &F) -> usize {
    size_of::<F>()
}

/// The size of what a projection points to: the element of a flexible array member
/// (`|s: &S| s.field.as_ptr()`), or a union field (`|s: &S| &raw const s.u.field`).
pub const fn pointee_size<T, E>(_field: fn(&T) -> *const E) -> usize {
    size_of::<E>()
}

/// Whether an integer field is signed, from a projection `|s: &S| &s.field`.
pub const fn field_signed<T, F: Int>(_field: fn(&T) -> &F) -> bool {
    F::SIGNED
}

/// Whether an integer field reached through a union is signed, from a raw projection
/// `|s: &S| &raw const s.u.field` (a reference would need `unsafe`).
pub const fn pointee_signed<T, F: Int>(_field: fn(&T) -> *const F) -> bool {
    F::SIGNED
}

/// The C type of an integer expression, as the probe's `_Generic` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CType {
    /// `int`
    Int,
    /// `unsigned int`
    UInt,
    /// `long`
    Long,
    /// `unsigned long`
    ULong,
    /// `long long`
    LongLong,
    /// `unsigned long long`
    ULongLong,
}

impl CType {
    /// From the probe's code (1..=6, in the order above).
    pub fn from_code(code: u64) -> Option<CType> {
        Some(match code {
            1 => CType::Int,
            2 => CType::UInt,
            3 => CType::Long,
            4 => CType::ULong,
            5 => CType::LongLong,
            6 => CType::ULongLong,
            _ => return None,
        })
    }

    /// Whether the type is signed.
    pub fn signed(self) -> bool {
        matches!(self, CType::Int | CType::Long | CType::LongLong)
    }

    /// The C spelling.
    pub fn name(self) -> &'static str {
        match self {
            CType::Int => "int",
            CType::UInt => "unsigned int",
            CType::Long => "long",
            CType::ULong => "unsigned long",
            CType::LongLong => "long long",
            CType::ULongLong => "unsigned long long",
        }
    }
}

/// Checks a Rust constant against the C value (`(unsigned long long)(X)`) and C type code.
///
/// The rule of `fuse-kernel-sys` (build-support's `CIntType::rust_kind`): a `long long` /
/// `unsigned long long` expression is 64-bit in Rust; any other expression is 32-bit when its
/// value fits in 32 bits (as `u32`, or as `i32` for a negative value), 64-bit otherwise. The
/// value must then be the same bits at the Rust type's width: `(1 << 31)` is `int`
/// -2147483648 in C and `0x8000_0000u32` in Rust.
pub fn check_const(c_bits: u64, c_type_code: u64, rust: &ConstVal) -> Result<(), String> {
    let Some(c_type) = CType::from_code(c_type_code) else {
        return Err(format!(
            "the C expression has no integer type the probe knows (code {c_type_code}); \
             Rust has {rust}"
        ));
    };
    let c_value: i128 = if c_type.signed() {
        i128::from(c_bits as i64)
    } else {
        i128::from(c_bits)
    };
    let fits_32 = (i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&c_value);
    let c_is_long_long = matches!(c_type, CType::LongLong | CType::ULongLong);
    let want_width = if c_is_long_long || !fits_32 { 8 } else { 4 };
    let c_text = format!("{c_value} ({c_bits:#x}, C {})", c_type.name());
    if rust.width != want_width {
        return Err(format!(
            "C has {c_text}, which needs a {}-bit Rust type; Rust has {rust}",
            want_width * 8
        ));
    }
    let mask = if rust.width >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * rust.width)) - 1
    };
    if c_bits & mask != rust.bits {
        return Err(format!("C has {c_text}, Rust has {rust}"));
    }
    Ok(())
}

/// A table entry with the C compiler's figures.
#[derive(Debug, Clone, Copy)]
pub struct Probed {
    /// The entry (item, kind, Rust figure).
    pub entry: Entry,
    /// The C figures (one, or two for [`Kind::Const`] and [`Kind::SqeField`]).
    pub c: [u64; 2],
}

impl Probed {
    /// Compares the C and Rust figures; the error names the item and both values.
    ///
    /// `c_source` names where the C figure comes from, for the message.
    pub fn check(&self, c_source: &str) -> Result<(), String> {
        let Entry { item, kind, rust } = self.entry;
        let what = kind.what();
        match (kind, rust) {
            (Kind::Const, Rust::Const(r)) => check_const(self.c[0], self.c[1], &r)
                .map_err(|e| format!("{item}: {e} (C: {c_source})")),
            (Kind::Const, Rust::ConstAs(r, want)) => check_const_as(self.c[0], &r, want)
                .map_err(|e| format!("{item}: {e} (C: {c_source})")),
            (Kind::FieldSigned, Rust::Flag(r)) => {
                if self.c[0] > 1 {
                    return Err(format!(
                        "{item}: C ({c_source}) gives it a type that is not a plain integer"
                    ));
                }
                let c = self.c[0] == 1;
                let name = |s: bool| if s { "signed" } else { "unsigned" };
                if c == r {
                    Ok(())
                } else {
                    Err(format!(
                        "{item}: {} in C ({c_source}), {} in Rust",
                        name(c),
                        name(r)
                    ))
                }
            }
            (_, Rust::Layout(r)) => {
                if self.c[0] == r as u64 {
                    Ok(())
                } else {
                    Err(format!(
                        "{item}: {what} is {} in C ({c_source}), {r} in Rust",
                        self.c[0]
                    ))
                }
            }
            (_, other) => Err(format!(
                "{item}: {what} cannot be compared here (Rust side {other:?})"
            )),
        }
    }
}

/// Pairs the entries of a table with the values of its C array.
fn pair(entries: Vec<Entry>, c: &[u64], c_len: usize) -> Result<Vec<Probed>, String> {
    let c = c.get(..c_len).ok_or("C array shorter than its table")?;
    let mut rest = c;
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        let n = entry.kind.c_values();
        let (values, tail) = rest
            .split_at_checked(n)
            .ok_or_else(|| format!("C array ends before entry {}", entry.item))?;
        let mut pair = [0; 2];
        pair[..n].copy_from_slice(values);
        out.push(Probed { entry, c: pair });
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(format!("{} C values left over", rest.len()));
    }
    Ok(out)
}

/// `fuse_kernel.h` and `fuse_iomap.h` as the C compiler sees them, paired with the Rust items.
#[allow(unsafe_code)] // reads a C probe's array
pub fn probed_ours() -> Result<Vec<Probed>, String> {
    // SAFETY: `abi_probe_ours` is an immutable `const unsigned long long[OURS_C_SYMBOL_LEN]`
    // defined by the C probe; `c_ulonglong` is `u64` on every Linux target.
    let c: &'static [u64; tables::OURS_C_SYMBOL_LEN] = unsafe { &abi_probe_ours };
    pair(tables::ours(), c, tables::OURS_C_LEN)
}

/// The distro's `<linux/fuse.h>` as the C compiler sees it, for the items `fuse_kernel.h`
/// also has, paired with the Rust items (empty when the header was absent at build time).
#[allow(unsafe_code)] // reads a C probe's array
pub fn probed_distro() -> Result<Vec<Probed>, String> {
    // SAFETY: as in `probed_ours`, for the distro probe's array.
    let c: &'static [u64; tables::DISTRO_C_SYMBOL_LEN] = unsafe { &abi_probe_distro };
    pair(tables::distro(), c, tables::DISTRO_C_LEN)
}

/// The official 7.46 `<linux/fuse.h>` (Linux 7.3) as the C compiler sees it, for the items
/// `fuse_kernel.h` also has (empty when the header was absent at build time; fetch it with
/// `abi-tests/fetch-official-header.sh`).
#[allow(unsafe_code)] // reads a C probe's array
pub fn probed_official() -> Result<Vec<Probed>, String> {
    // SAFETY: as in `probed_ours`, for the official probe's array.
    let c: &'static [u64; tables::OFFICIAL_C_SYMBOL_LEN] = unsafe { &abi_probe_official };
    pair(tables::official(), c, tables::OFFICIAL_C_LEN)
}

/// The `io_uring_sqe` fields and constants as the C compiler sees `<linux/io_uring.h>`.
#[allow(unsafe_code)] // reads a C probe's array
pub fn probed_sqe() -> Result<Vec<Probed>, String> {
    // SAFETY: as in `probed_ours`, for the io_uring probe's array.
    let c: &'static [u64; tables::SQE_C_SYMBOL_LEN] = unsafe { &abi_probe_sqe };
    pair(tables::sqe(), c, tables::SQE_C_LEN)
}

/// Compares every entry; returns the failures' messages.
pub fn mismatches(probed: &[Probed], c_source: &str) -> Vec<String> {
    probed
        .iter()
        .filter_map(|p| p.check(c_source).err())
        .collect()
}

/// How many distinct items of each kind a table compares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Structs (size and alignment).
    pub structs: usize,
    /// Fields (offset, size, and signedness of integers).
    pub fields: usize,
    /// Enums (size).
    pub enums: usize,
    /// Enum values and macros (value and type).
    pub constants: usize,
}

/// Counts the distinct items of `probed`.
pub fn counts(probed: &[Probed]) -> Counts {
    let n = |kind: Kind| {
        let mut items: Vec<&str> = probed
            .iter()
            .filter(|p| p.entry.kind == kind)
            .map(|p| p.entry.item)
            .collect();
        items.sort_unstable();
        items.dedup();
        items.len()
    };
    Counts {
        structs: n(Kind::Size),
        fields: n(Kind::FieldOffset),
        enums: n(Kind::EnumSize),
        constants: n(Kind::Const),
    }
}

/// Bytes of a struct that no field covers, as the C compiler lays it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hole {
    /// The struct.
    pub structure: &'static str,
    /// Where: `after <field>` (tail padding is `after` the last field).
    pub after: String,
    /// Offset of the first uncovered byte.
    pub offset: u64,
    /// How many bytes.
    pub bytes: u64,
}

/// Every implicit hole and tail padding of the structs of `probed`, from the C figures.
///
/// A flexible array member covers no bytes. Fields that overlap (which plain C structs
/// cannot have) are reported as errors.
pub fn holes(probed: &[Probed]) -> Result<Vec<Hole>, String> {
    // (struct, sizeof, [(field, offset, bytes)]) in table order: a struct's size entry comes
    // first, then each field's offset followed by its size.
    type Fields = Vec<(&'static str, u64, u64)>;
    let mut layouts: Vec<(&'static str, u64, Fields)> = Vec::new();
    let mut offset = None;
    for p in probed {
        let item = p.entry.item;
        match p.entry.kind {
            Kind::Size => layouts.push((item, p.c[0], Vec::new())),
            Kind::FieldOffset => offset = Some((item, p.c[0])),
            Kind::FieldSize | Kind::FlexElemSize => {
                let at = match offset.take() {
                    Some((i, at)) if i == item => at,
                    _ => return Err(format!("{item}: size without offset")),
                };
                let bytes = if p.entry.kind == Kind::FlexElemSize {
                    0
                } else {
                    p.c[0]
                };
                match layouts.last_mut() {
                    Some((s, _, fields)) if item.split_once('.').map(|(x, _)| x) == Some(*s) => {
                        fields.push((item, at, bytes));
                    }
                    _ => return Err(format!("{item}: field outside its struct")),
                }
            }
            _ => {}
        }
    }
    let mut holes = Vec::new();
    for (name, size, fields) in layouts {
        // Members of nested types (`s.bufpool.uaddr`) lie inside their parent, which is
        // checked here as a whole; the nested types are structs of the table themselves or
        // (anonymous) covered by the parent's size.
        let fields: Vec<_> = fields
            .into_iter()
            .filter(|(f, _, _)| f.matches('.').count() == 1)
            .collect();
        let mut end = 0u64;
        let mut last = "the start";
        // The members of an anonymous union share their start: (start, members so far).
        let mut union: Option<(u64, Vec<(&'static str, u64)>)> = None;
        let mut prev_start = None;
        for (field, offset, bytes) in fields {
            if offset < end && Some(offset) == prev_start {
                // Another member of a union: the union reaches as far as its largest member;
                // a smaller member leaves the rest uninitialised when it is the one written.
                let members = &mut union.get_or_insert_with(|| (offset, vec![(last, end)])).1;
                members.push((field, offset + bytes));
                end = end.max(offset + bytes);
                continue;
            }
            if let Some((_, members)) = union.take() {
                for (member, member_end) in members {
                    if member_end < end {
                        holes.push(Hole {
                            structure: name,
                            after: format!("union member {member}"),
                            offset: member_end,
                            bytes: end - member_end,
                        });
                    }
                }
            }
            if offset < end {
                return Err(format!(
                    "{field} at offset {offset} overlaps {last}, which ends at {end}"
                ));
            }
            prev_start = Some(offset);
            if offset > end {
                holes.push(Hole {
                    structure: name,
                    after: last.to_owned(),
                    offset: end,
                    bytes: offset - end,
                });
            }
            end = offset + bytes;
            last = field;
        }
        if let Some((_, members)) = union.take() {
            for (member, member_end) in members {
                if member_end < end {
                    holes.push(Hole {
                        structure: name,
                        after: format!("union member {member}"),
                        offset: member_end,
                        bytes: end - member_end,
                    });
                }
            }
        }
        if size > end {
            holes.push(Hole {
                structure: name,
                after: last.to_owned(),
                offset: end,
                bytes: size - end,
            });
        } else if size < end {
            return Err(format!("{name}: fields end at {end}, beyond sizeof {size}"));
        }
    }
    Ok(holes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_min_flag_is_u32_0x8000_0000() {
        // `(1 << 31)`: int -2147483648 in C.
        let c_bits = (-2_147_483_648i64) as u64;
        assert_eq!(
            check_const(c_bits, 1, &ConstVal::of(0x8000_0000u32)),
            Ok(())
        );
        let wrong = check_const(c_bits, 1, &ConstVal::of(0x8000_0000u64)).unwrap_err();
        assert!(wrong.contains("32-bit"), "{wrong}");
    }

    #[test]
    fn typed_constants_need_the_named_type_and_the_c_value() {
        // FUSE_ROOT_ID is `int` 1 in C and must be a u64 in Rust (a node id).
        assert_eq!(check_const_as(1, &ConstVal::of(1u64), "u64"), Ok(()));
        let e = check_const_as(1, &ConstVal::of(1u32), "u64").unwrap_err();
        assert!(e.contains("u32") && e.contains("u64"), "{e}");
        let e = check_const_as(2, &ConstVal::of(1u64), "u64").unwrap_err();
        assert!(e.contains("C has 2"), "{e}");
        assert_eq!(check_const_as(24, &ConstVal::of(24usize), "usize"), Ok(()));
    }

    #[test]
    fn long_long_needs_64_bits_even_when_small() {
        assert_eq!(check_const(1, 6, &ConstVal::of(1u64)), Ok(()));
        let e = check_const(1, 6, &ConstVal::of(1u32)).unwrap_err();
        assert!(e.contains("64-bit") && e.contains("u32"), "{e}");
        // -1ULL is u64::MAX.
        assert_eq!(check_const(u64::MAX, 6, &ConstVal::of(u64::MAX)), Ok(()));
    }

    #[test]
    fn wide_unsigned_long_needs_64_bits() {
        assert_eq!(check_const(1 << 40, 4, &ConstVal::of(1u64 << 40)), Ok(()));
        assert!(check_const(1 << 40, 4, &ConstVal::of(0u32)).is_err());
    }

    #[test]
    fn different_values_are_named() {
        let e = check_const(5, 1, &ConstVal::of(6u32)).unwrap_err();
        assert!(e.contains("C has 5") && e.contains("Rust has 6"), "{e}");
        assert!(check_const(5, 0, &ConstVal::of(5u32)).is_err());
    }

    #[test]
    fn holes_are_found_and_flexible_arrays_cover_nothing() {
        let e = |item, kind, c| Probed {
            entry: Entry {
                item,
                kind,
                rust: Rust::None,
            },
            c: [c, 0],
        };
        let probed = [
            e("s", Kind::Size, 24),
            e("s.a", Kind::FieldOffset, 0),
            e("s.a", Kind::FieldSize, 4),
            e("s.b", Kind::FieldOffset, 8),
            e("s.b", Kind::FieldSize, 8),
            e("s.c", Kind::FieldOffset, 16),
            e("s.c", Kind::FieldSize, 4),
            e("t", Kind::Size, 8),
            e("t.n", Kind::FieldOffset, 0),
            e("t.n", Kind::FieldSize, 8),
            e("t.x", Kind::FieldOffset, 8),
            e("t.x", Kind::FlexElemSize, 4),
        ];
        let found = holes(&probed).expect("consistent");
        assert_eq!(
            found,
            [
                Hole {
                    structure: "s",
                    after: "s.a".into(),
                    offset: 4,
                    bytes: 4
                },
                Hole {
                    structure: "s",
                    after: "s.c".into(),
                    offset: 20,
                    bytes: 4
                },
            ]
        );
    }

    #[test]
    fn tables_pair_with_their_c_arrays() {
        // The lengths the build script wrote agree with what the entries consume.
        assert!(!probed_ours().expect("ours pairs").is_empty());
        probed_distro().expect("distro pairs");
        probed_sqe().expect("sqe pairs");
    }
}
