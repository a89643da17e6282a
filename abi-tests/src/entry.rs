//! The shape of the tables the build script generates: what an entry compares and the
//! Rust figure it holds.

use crate::ConstVal;

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
