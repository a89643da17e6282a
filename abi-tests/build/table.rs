//! One probe: the C array the C compiler fills and the Rust table that explains it, plus the
//! compile-time assertions of the same figures for another target.

use build_support::{CIntType, MACRO_RUST_TYPES, UNEVALUABLE_MACROS};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::PROBE_PAGE_SIZE;
use crate::header::Header;

/// Unevaluable macros that `fuse-kernel-sys` replaces by a `const fn` of the page size.
const PAGE_SIZE_FUNCTIONS: [(&str, &str); 1] = [(
    "FUSE_REMOVEMAPPING_MAX_ENTRY",
    "fuse_removemapping_max_entry",
)];

/// A raw pointer to `s.{path}` for a path through a union. Naming a union field itself
/// (`&raw const s.u.f`) is safe; a projection past it (`s.u.f.g`) is not, though it only
/// computes an address and reads nothing.
fn raw_projection(path: &str) -> String {
    if path.matches('.').count() <= 1 {
        return format!("&raw const s.{path}");
    }
    format!(
        "{{\n            // SAFETY: `&raw const` computes the address of a field of a live \
         value; nothing is read, so which union member is initialised does not matter.\n            \
         unsafe {{ &raw const s.{path} }}\n        }}"
    )
}

/// One probe: a C array of `unsigned long long` and the Rust entries that explain it.
pub(crate) struct Table {
    pub(crate) c_name: &'static str,
    pub(crate) c_prelude: String,
    pub(crate) c_values: Vec<String>,
    rust_entries: String,
    /// Per entry: the item, what is compared, the Rust figure, and how many C values it uses
    /// (for the compile-time cross-architecture assertions).
    entries: Vec<(String, String, String, usize)>,
}

impl Table {
    pub(crate) fn new(c_name: &'static str) -> Table {
        Table {
            c_name,
            c_prelude: String::new(),
            c_values: Vec::new(),
            rust_entries: String::new(),
            entries: Vec::new(),
        }
    }

    /// Adds one entry: `c_exprs` are the C values it consumes, in order.
    pub(crate) fn push(&mut self, item: &str, kind: &str, c_exprs: Vec<String>, rust: String) {
        writeln!(
            self.rust_entries,
            "        Entry {{ item: {item:?}, kind: {kind}, rust: {rust} }},"
        )
        .ok();
        self.entries
            .push((item.to_owned(), kind.to_owned(), rust, c_exprs.len()));
        self.c_values.extend(c_exprs);
    }

    /// Compile-time assertions of every entry against `values`, the C figures clang computed
    /// for another target (in `c_values` order): `const _: () = assert!(...)` items, so that
    /// `cargo check --target <triple>` proves the Rust layouts and constants of that target.
    pub(crate) fn cross_assertions(&self, values: &[u64], target: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut at = 0;
        for (item, kind, rust, n) in &self.entries {
            let c = &values[at..at + n];
            at += n;
            let what = kind.trim_start_matches("Kind::");
            let msg = format!("{item} ({what}) differs from C (clang, {target})");
            if let Some(expr) = rust
                .strip_prefix("Rust::Layout(")
                .and_then(|r| r.strip_suffix(')'))
            {
                writeln!(out, "const _: () = assert!({expr} == {}, {msg:?});", c[0]).ok();
            } else if let Some(expr) = rust
                .strip_prefix("Rust::Flag(")
                .and_then(|r| r.strip_suffix(')'))
            {
                if c[0] > 1 {
                    return Err(format!("{item}: not an integer in C for {target}"));
                }
                writeln!(
                    out,
                    "const _: () = assert!({expr} == {}, {msg:?});",
                    c[0] == 1
                )
                .ok();
            } else if let Some(path) = rust
                .strip_prefix("Rust::Const(crate::ConstVal::of(")
                .and_then(|r| r.strip_suffix("))"))
            {
                // The rule of fuse-kernel-sys, as the run-time check applies it
                // (`crate::const_agrees`).
                let (bits, code) = (c[0], c[1]);
                // fuse-iomap's INIT flag is a newtype of u64 (its bit collides with 7.46).
                let value_of = if path == "::fuse_kernel_sys::iomap::FUSE_IOMAP" {
                    format!("{path}.bits_on_iomap_kernel()")
                } else {
                    format!("{path} as u64")
                };
                writeln!(
                    out,
                    "const _: () = assert!(crate::const_agrees({bits:#x}, {code}, \
                     ::core::mem::size_of_val(&{path}), {value_of}), {msg:?});"
                )
                .ok();
            } else if let Some(rest) = rust.strip_prefix("Rust::ConstAs(crate::ConstVal::of(") {
                let (path, ty) = rest
                    .split_once("), ")
                    .ok_or_else(|| format!("{item}: cannot read {rust}"))?;
                let ty = ty.trim_end_matches(')').trim_matches('"');
                writeln!(out, "const _: {ty} = {path};").ok();
                writeln!(
                    out,
                    "const _: () = assert!({path} as u64 == {:#x}, {msg:?});",
                    c[0]
                )
                .ok();
            } else if rust != "Rust::None" {
                return Err(format!("{item}: no compile-time form for {rust}"));
            }
        }
        Ok(out)
    }

    /// Adds every struct, field, enum and constant of `header`.
    ///
    /// With `ours = Some(h)`, `header` is an independent copy (the distro's) and only the
    /// items `h` also declares are added, compared with `h`'s Rust items; the items `h` lacks
    /// are returned as `(kind, name)`.
    pub(crate) fn add_header(
        &mut self,
        header: &Header,
        ours: Option<&Header>,
    ) -> Result<Vec<(String, String)>, String> {
        let module = ours.map_or(header.rust_module, |o| o.rust_module);
        let mut missing = Vec::new();
        for s in &header.structs {
            let our_struct = match ours {
                Some(o) => match o.structs.iter().find(|x| x.name == s.name) {
                    Some(x) => Some(x),
                    None => {
                        missing.push(("struct".to_owned(), s.name.clone()));
                        continue;
                    }
                },
                None => None,
            };
            let ty = format!("{module}::{}", s.name);
            let cs = format!("struct {}", s.name);
            self.push(
                &s.name,
                "Kind::Size",
                vec![format!("sizeof({cs})")],
                format!("Rust::Layout(::core::mem::size_of::<{ty}>())"),
            );
            self.push(
                &s.name,
                "Kind::Align",
                vec![format!("_Alignof({cs})")],
                format!("Rust::Layout(::core::mem::align_of::<{ty}>())"),
            );
            for f in &s.fields {
                let item = format!("{}.{}", s.name, f.name);
                if let Some(o) = our_struct {
                    if !o.fields.iter().any(|x| x.name == f.name) {
                        missing.push(("field".to_owned(), item));
                        continue;
                    }
                }
                let rf = &f.rust_path;
                let member = format!("(({cs} *)0)->{}", f.name);
                self.push(
                    &item,
                    "Kind::FieldOffset",
                    vec![format!("offsetof({cs}, {})", f.name)],
                    format!("Rust::Layout(::core::mem::offset_of!({ty}, {rf}))"),
                );
                if f.via_union {
                    // A reference to a union field needs `unsafe`; a raw pointer does not.
                    self.push(
                        &item,
                        "Kind::FieldSize",
                        vec![format!("sizeof({member})")],
                        format!(
                            "Rust::Layout(crate::pointee_size(|s: &{ty}| {}))",
                            raw_projection(rf)
                        ),
                    );
                } else if f.is_flexible() {
                    self.push(
                        &item,
                        "Kind::FlexElemSize",
                        vec![format!("sizeof({member}[0])")],
                        format!("Rust::Layout(crate::pointee_size(|s: &{ty}| s.{rf}.as_ptr()))"),
                    );
                } else {
                    self.push(
                        &item,
                        "Kind::FieldSize",
                        vec![format!("sizeof({member})")],
                        format!("Rust::Layout(crate::field_size(|s: &{ty}| &s.{rf}))"),
                    );
                }
                if f.is_integer() {
                    self.push(
                        &item,
                        "Kind::FieldSigned",
                        vec![format!(
                            "_Generic(({member}), char: CHAR_MIN < 0, signed char: 1, \
                             short: 1, int: 1, long: 1, long long: 1, unsigned char: 0, \
                             unsigned short: 0, unsigned int: 0, unsigned long: 0, \
                             unsigned long long: 0, default: 2)"
                        )],
                        if f.via_union {
                            format!(
                                "Rust::Flag(crate::pointee_signed(|s: &{ty}| {}))",
                                raw_projection(rf)
                            )
                        } else {
                            format!("Rust::Flag(crate::field_signed(|s: &{ty}| &s.{rf}))")
                        },
                    );
                }
            }
        }
        let mut enums = BTreeSet::new();
        for (e, v) in &header.items.enum_values {
            if let Some(o) = ours {
                if !o.has_macro_or_value(v) {
                    missing.push(("enum value".to_owned(), format!("{e}::{v}")));
                    continue;
                }
            }
            if enums.insert(e.clone()) {
                self.push(
                    e,
                    "Kind::EnumSize",
                    vec![format!("sizeof(enum {e})")],
                    format!("Rust::Layout(::core::mem::size_of::<{module}::{e}>())"),
                );
            }
            self.push_const(v, module);
        }
        let unevaluable: BTreeMap<&str, &str> = UNEVALUABLE_MACROS.iter().copied().collect();
        for m in &header.items.macros {
            if let Some(o) = ours {
                if !o.has_macro_or_value(m) {
                    missing.push(("macro".to_owned(), m.clone()));
                    continue;
                }
            }
            if !unevaluable.contains_key(m.as_str()) {
                self.push_const(m, module);
                continue;
            }
            // clang cannot evaluate it alone; the ones that only lack PAGE_SIZE are compared
            // with their Rust replacement at the probe's page size. The others are left to
            // the test, which fails on an unevaluable macro nothing checks.
            if let Some((_, rust_fn)) = PAGE_SIZE_FUNCTIONS.iter().find(|(c, _)| c == m) {
                self.push(
                    &format!("{m} with PAGE_SIZE {PROBE_PAGE_SIZE}"),
                    "Kind::PageSizeMacro",
                    vec![format!("(unsigned long long)({m})")],
                    format!("Rust::Layout(::fuse_kernel_sys::{rust_fn}({PROBE_PAGE_SIZE}))"),
                );
            }
        }
        Ok(missing)
    }

    fn push_const(&mut self, name: &str, module: &str) {
        self.push(
            name,
            "Kind::Const",
            vec![
                format!("(unsigned long long)({name})"),
                format!("_Generic(({name}), {})", CIntType::generic_associations()),
            ],
            match MACRO_RUST_TYPES.iter().find(|(n, _, _)| *n == name) {
                Some((_, ty, _)) => {
                    format!("Rust::ConstAs(crate::ConstVal::of({module}::{name}), {ty:?})")
                }
                None => format!("Rust::Const(crate::ConstVal::of({module}::{name}))"),
            },
        );
    }

    /// Writes the C file and appends the Rust table `NAME` (and `NAME_C_LEN`) to `rs`.
    pub(crate) fn write(&self, out_dir: &Path, rs: &mut String, name: &str) -> Result<(), String> {
        let mut c = String::new();
        c.push_str("/* @generated by abi-tests/build.rs. DO NOT EDIT. */\n");
        c.push_str("#include <limits.h>\n#include <stddef.h>\n");
        c.push_str(&self.c_prelude);
        // Only the PAGE_SIZE-dependent macros use it (in the array initializer below).
        writeln!(c, "#define PAGE_SIZE {PROBE_PAGE_SIZE}").ok();
        // At least one element: C has no empty arrays.
        let len = self.c_values.len().max(1);
        writeln!(c, "extern const unsigned long long {}[{len}];", self.c_name).ok();
        writeln!(c, "const unsigned long long {}[{len}] = {{", self.c_name).ok();
        if self.c_values.is_empty() {
            c.push_str("\t0,\n");
        }
        for v in &self.c_values {
            writeln!(c, "\t{v},").ok();
        }
        c.push_str("};\n");
        let path = out_dir.join(format!("{}.c", self.c_name));
        fs::write(&path, c).map_err(|e| format!("cannot write {}: {e}", path.display()))?;

        writeln!(
            rs,
            "\npub const {name}_C_LEN: usize = {};",
            self.c_values.len()
        )
        .ok();
        writeln!(rs, "pub const {name}_C_SYMBOL_LEN: usize = {len};").ok();
        writeln!(
            rs,
            "pub fn {}() -> ::std::vec::Vec<Entry> {{",
            name.to_lowercase()
        )
        .ok();
        writeln!(rs, "    vec![").ok();
        rs.push_str(&self.rust_entries);
        rs.push_str("    ]\n}\n");
        Ok(())
    }
}
