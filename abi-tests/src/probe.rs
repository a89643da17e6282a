//! The C probes' arrays paired with the generated tables, compared, and counted.

use std::ffi::c_ulonglong;

use crate::{Entry, Kind, Rust, check_const, check_const_as, tables};

#[allow(unsafe_code)]
unsafe extern "C" {
    // Defined by the C probes (OUT_DIR/abi_probe_*.c) with exactly these lengths: the build
    // script writes the C definition and these lengths from the same list.
    static abi_probe_ours: [c_ulonglong; tables::OURS_C_SYMBOL_LEN];
    static abi_probe_distro: [c_ulonglong; tables::DISTRO_C_SYMBOL_LEN];
    static abi_probe_official: [c_ulonglong; tables::OFFICIAL_C_SYMBOL_LEN];
    static abi_probe_sqe: [c_ulonglong; tables::SQE_C_SYMBOL_LEN];
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pair_with_their_c_arrays() {
        // The lengths the build script wrote agree with what the entries consume.
        assert!(!probed_ours().expect("ours pairs").is_empty());
        probed_distro().expect("distro pairs");
        probed_sqe().expect("sqe pairs");
    }
}
