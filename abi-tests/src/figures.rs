//! The Rust side of the figures: integer types of constants and fields, and the projections
//! through which the generated tables name a field's size and signedness.

use std::fmt;

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
