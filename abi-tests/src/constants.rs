//! Constants: the C type codes of the probe and the rule that pairs a C constant with
//! its Rust type.

use crate::{ConstVal, tables};

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
    pub fn from_code(code: u64) -> Option<CType> {
        tables::C_INT_TYPES.iter().find(|row| row.0 == code).map(
            |&(code, name, signed, long_long)| CType {
                code,
                name,
                signed,
                long_long,
            },
        )
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
    let c_value: i128 = if c_type.signed() {
        i128::from(c_bits as i64)
    } else {
        i128::from(c_bits)
    };
    let fits_32 = (i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&c_value);
    let want_width = if c_type.is_long_long() || !fits_32 {
        8
    } else {
        4
    };
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
    fn different_values_are_named() {
        let e = check_const(5, 1, &ConstVal::of(6u32)).unwrap_err();
        assert!(e.contains("C has 5") && e.contains("Rust has 6"), "{e}");
        assert!(check_const(5, 0, &ConstVal::of(5u32)).is_err());
    }
}
