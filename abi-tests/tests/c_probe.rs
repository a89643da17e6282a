//! Every struct, field, enum and constant of `fuse_kernel.h` and `fuse_iomap.h`, as the C
//! compiler lays it out and evaluates it, against `fuse-kernel-sys` (in the build mode this
//! test is built in: bindings generated at build time, or the committed snapshot).

use std::collections::BTreeSet;

use abi_tests::tables::{EXPECTED_OURS, UNEVALUABLE};
use abi_tests::{Kind, counts, holes, mismatches, probed_ours};

const C_SOURCE: &str = "fuse-kernel-sys/include/fuse_kernel.h + fuse_iomap.h";

/// Structs that have implicit padding, with how many bytes and why that is accepted.
/// testkit's `Plain` trait (no padding bytes) must never be implemented for these.
const PADDED: &[(&str, u64, &str)] = &[
    (
        "fuse_iomap_config_out",
        4,
        "the fuse-iomap series as posted: sizeof 104, its last field ends at 100 \
         (measured with the C compiler on the series' header); the header says to zero the whole record before sending",
    ),
    (
        "fuse_uring_cmd_req",
        14,
        "7.46's union: ent_zero_copy_buf_index covers 2 of the union's 16 bytes (bufpool \
         covers all 16); the generator gives the struct no IntoBytes and fuse-uring writes the \
         command area field by field into zeroed bytes",
    ),
];

#[test]
fn every_item_of_our_headers_matches_the_c_compiler() {
    let probed = probed_ours().expect("the C probe pairs with its table");
    let bad = mismatches(&probed, C_SOURCE);
    let n = counts(&probed);
    println!(
        "compared with the C compiler ({C_SOURCE}): {} structs, {} fields, {} enums, \
         {} constants ({} figures)",
        n.structs,
        n.fields,
        n.enums,
        n.constants,
        probed.len()
    );
    assert!(
        bad.is_empty(),
        "{} mismatch(es) between the C compiler and fuse-kernel-sys:\n  {}",
        bad.len(),
        bad.join("\n  ")
    );
}

#[test]
fn every_item_the_headers_declare_is_compared() {
    let probed = probed_ours().expect("the C probe pairs with its table");
    let compared = |kinds: &[Kind]| -> BTreeSet<&str> {
        probed
            .iter()
            .filter(|p| kinds.contains(&p.entry.kind))
            .map(|p| p.entry.item)
            .collect()
    };
    let structs = compared(&[Kind::Size]);
    let constants = compared(&[Kind::Const]);
    let page_size_macros = compared(&[Kind::PageSizeMacro]);

    let mut missing = Vec::new();
    let (mut want_structs, mut want_constants) = (0, 0);
    for h in EXPECTED_OURS {
        want_structs += h.structs.len();
        want_constants += h.enum_values.len() + h.macros.len();
        for s in h.structs {
            if !structs.contains(s) {
                missing.push(format!("{}: struct {s}", h.header));
            }
        }
        for c in h.enum_values.iter().chain(h.macros) {
            let unevaluable = UNEVALUABLE.iter().any(|(n, _)| n == c);
            if unevaluable {
                // Checked through its Rust replacement with a fixed page size instead.
                if !page_size_macros
                    .iter()
                    .any(|p| p.starts_with(&format!("{c} ")))
                {
                    missing.push(format!(
                        "{}: {c} (unevaluable, and not checked otherwise)",
                        h.header
                    ));
                }
            } else if !constants.contains(c) {
                missing.push(format!("{}: {c}", h.header));
            }
        }
    }
    let n = counts(&probed);
    let compared_constants = n.constants + page_size_macros.len();
    println!(
        "the headers declare {want_structs} structs and {want_constants} enum values and \
         macros; compared: {} structs ({} fields), {compared_constants} constants",
        n.structs, n.fields
    );
    assert!(
        missing.is_empty(),
        "items never compared:\n  {}",
        missing.join("\n  ")
    );
    assert!(
        n.structs >= want_structs,
        "compared {} structs, the headers declare {want_structs}",
        n.structs
    );
    assert!(
        compared_constants >= want_constants,
        "compared {compared_constants} constants, the headers declare {want_constants}"
    );
    assert!(
        n.fields >= n.structs,
        "fewer fields ({}) than structs",
        n.fields
    );
}

#[test]
fn no_struct_has_implicit_padding_except_the_listed_ones() {
    let probed = probed_ours().expect("the C probe pairs with its table");
    let found = holes(&probed).expect("C layouts are consistent");
    let mut unexplained = Vec::new();
    for h in &found {
        let listed = PADDED
            .iter()
            .any(|(s, bytes, _)| *s == h.structure && *bytes == h.bytes);
        if !listed {
            unexplained.push(format!(
                "{}: {} byte(s) of implicit padding at offset {} (after {})",
                h.structure, h.bytes, h.offset, h.after
            ));
        }
    }
    assert!(
        unexplained.is_empty(),
        "implicit padding (testkit's Plain relies on there being none):\n  {}",
        unexplained.join("\n  ")
    );
    for (s, bytes, reason) in PADDED {
        assert!(
            found.iter().any(|h| h.structure == *s && h.bytes == *bytes),
            "PADDED lists {s} ({bytes} bytes: {reason}) but the C compiler finds no such padding; \
             remove the entry"
        );
        println!("accepted padding: {s}, {bytes} bytes: {reason}");
    }
}
