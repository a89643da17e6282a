//! Constants: the C type codes of the probe and the rule that pairs a C constant with
//! its Rust type.

use crate::{ConstVal, tables};

/// Checks a constant of [`Rust::ConstAs`](crate::Rust::ConstAs): the type must be `want` and the value the C value.
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

/// The C type of an integer expression, as the probe's `_Generic` reports it: one of
/// build-support's `CIntType`, whose codes, names and properties the build script writes into
/// [`tables::C_INT_TYPES`](crate::tables::C_INT_TYPES).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CType {
    code: u64,
    name: &'static str,
    signed: bool,
    long_long: bool,
}

impl CType {
    /// From the probe's code; `None` for 0 (no integer type) and unknown codes.
    pub const fn from_code(code: u64) -> Option<CType> {
        let mut i = 0;
        while i < tables::C_INT_TYPES.len() {
            let (c, name, signed, long_long) = tables::C_INT_TYPES[i];
            if c == code {
                return Some(CType {
                    code,
                    name,
                    signed,
                    long_long,
                });
            }
            i += 1;
        }
        None
    }

    /// The value of an expression of this type from the probe's `(unsigned long long)(X)`.
    pub const fn value(self, c_bits: u64) -> i128 {
        if self.signed {
            c_bits as i64 as i128
        } else {
            c_bits as i128
        }
    }

    /// The width in bytes of the Rust constant for a C constant of this type and these bits,
    /// by the rule of `fuse-kernel-sys` (see [`check_const`]).
    pub const fn rust_width(self, c_bits: u64) -> usize {
        let value = self.value(c_bits);
        let fits_32 = value >= i32::MIN as i128 && value <= u32::MAX as i128;
        if self.long_long || !fits_32 { 8 } else { 4 }
    }

    /// The probe's code.
    pub fn code(self) -> u64 {
        self.code
    }

    /// Whether the type is signed.
    pub fn signed(self) -> bool {
        self.signed
    }

    /// Whether the type is `long long` or `unsigned long long`.
    pub fn is_long_long(self) -> bool {
        self.long_long
    }

    /// The C spelling.
    pub fn name(self) -> &'static str {
        self.name
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
    let c_value = c_type.value(c_bits);
    let want_width = c_type.rust_width(c_bits);
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

/// [`check_const`] at compile time, for the cross-architecture assertions: whether a Rust
/// constant of `rust_width` bytes with `rust_bits` (its value as `u64`) is the C constant.
pub const fn const_agrees(
    c_bits: u64,
    c_type_code: u64,
    rust_width: usize,
    rust_bits: u64,
) -> bool {
    let Some(c_type) = CType::from_code(c_type_code) else {
        return false;
    };
    let width = c_type.rust_width(c_bits);
    let mask = if width == 8 {
        u64::MAX
    } else {
        u32::MAX as u64
    };
    rust_width == width && rust_bits & mask == c_bits & mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_six_c_integer_types() {
        // The probe's codes as the tests here write them (1 int ... 6 unsigned long long).
        let types: Vec<_> = (0..=7)
            .map(|code| CType::from_code(code).map(|t| (t.name(), t.signed(), t.is_long_long())))
            .collect();
        assert_eq!(
            types,
            [
                None,
                Some(("int", true, false)),
                Some(("unsigned int", false, false)),
                Some(("long", true, false)),
                Some(("unsigned long", false, false)),
                Some(("long long", true, true)),
                Some(("unsigned long long", false, true)),
                None,
            ]
        );
    }

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
    fn the_compile_time_check_follows_the_same_rule() {
        // `(1 << 31)`: int -2147483648 in C, u32 0x8000_0000 in Rust.
        let int_min = (-2_147_483_648i64) as u64;
        const _: () = assert!(const_agrees(7, 2, 4, 7), "the generated assertions' form");
        assert!(const_agrees(int_min, 1, 4, 0x8000_0000));
        assert!(!const_agrees(int_min, 1, 8, 0x8000_0000));
        // A negative i32 reaches the check sign-extended (`as u64`).
        assert!(const_agrees(u64::MAX, 1, 4, u64::MAX));
        // `long long` 1 needs 64 bits; a wide `unsigned long` too.
        assert!(const_agrees(1, 6, 8, 1));
        assert!(!const_agrees(1, 6, 4, 1));
        assert!(const_agrees(1 << 40, 4, 8, 1 << 40));
        assert!(!const_agrees(1 << 40, 4, 4, 0));
        // Other values and unknown codes disagree.
        assert!(!const_agrees(5, 1, 4, 6));
        assert!(!const_agrees(5, 0, 4, 5));
    }

    #[test]
    fn different_values_are_named() {
        let e = check_const(5, 1, &ConstVal::of(6u32)).unwrap_err();
        assert!(e.contains("C has 5") && e.contains("Rust has 6"), "{e}");
        assert!(check_const(5, 0, &ConstVal::of(5u32)).is_err());
    }
}
