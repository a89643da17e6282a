//! The official 7.46 `<linux/fuse.h>` of Linux 7.3 (Debian's linux-libc-dev 7.3~rc7 from
//! experimental, fetched by `abi-tests/fetch-official-header.sh`), an independent copy of the
//! ABI our `fuse_kernel.h` is written to, against `fuse-kernel-sys`: every struct, field
//! (including the members of 7.46's anonymous union in `fuse_uring_cmd_req`), enum value and
//! macro the two share has the same layout, size, signedness, value and C type, and every item
//! of the official header exists in ours, except the differences listed here with their
//! reason.

use std::collections::BTreeSet;

use abi_tests::tables::{EXPECTED_OFFICIAL, OFFICIAL_FUSE_H, OFFICIAL_MISSING, OFFICIAL_PRESENT};
use abi_tests::{Kind, counts, probed_official};

/// Items of the official 7.46 header that differ from, or are missing in, ours, and why. Each
/// entry must still apply (a stale entry fails the test).
const DIFFERENCES: &[(&str, &str)] = &[];

/// The skip (or, with FUSE_TESTS_REQUIRE_KERNEL=1, failure) when the header is absent.
fn official_header_present() -> bool {
    if !OFFICIAL_PRESENT {
        testkit::skip(&format!(
            "{OFFICIAL_FUSE_H} was absent when abi-tests was built (run \
             abi-tests/fetch-official-header.sh, or set FUSE_OFFICIAL_HEADER)"
        ));
        return false;
    }
    true
}

#[test]
fn official_7_46_header_agrees_with_fuse_kernel_sys() {
    if !official_header_present() {
        return;
    }
    let probed = probed_official().expect("the official probe pairs with its table");
    let source = format!("official {OFFICIAL_FUSE_H}");
    let mut explained = BTreeSet::new();
    let mut unexplained = Vec::new();
    for p in &probed {
        if let Err(e) = p.check(&source) {
            match DIFFERENCES.iter().find(|(item, _)| *item == p.entry.item) {
                Some((item, reason)) => {
                    println!("accepted difference: {e}\n    because: {reason}");
                    explained.insert(*item);
                }
                None => unexplained.push(e),
            }
        }
    }
    for (kind, item) in OFFICIAL_MISSING {
        match DIFFERENCES.iter().find(|(i, _)| i == item) {
            Some((item, reason)) => {
                println!(
                    "accepted: {kind} {item} of the official header is not in ours\n    because: {reason}"
                );
                explained.insert(*item);
            }
            None => unexplained.push(format!(
                "{kind} {item} is in {OFFICIAL_FUSE_H} but missing from fuse_kernel.h"
            )),
        }
    }
    let n = counts(&probed);
    println!(
        "compared with {OFFICIAL_FUSE_H}: {} structs, {} fields, {} enums, {} constants \
         ({} figures); {} official item(s) missing from ours",
        n.structs,
        n.fields,
        n.enums,
        n.constants,
        probed.len(),
        OFFICIAL_MISSING.len()
    );
    assert!(
        unexplained.is_empty(),
        "{} disagreement(s) with the official 7.46 header:\n  {}",
        unexplained.len(),
        unexplained.join("\n  ")
    );
    let stale: Vec<&str> = DIFFERENCES
        .iter()
        .map(|(item, _)| *item)
        .filter(|item| !explained.contains(item))
        .collect();
    assert!(
        stale.is_empty(),
        "DIFFERENCES entries that no longer apply (remove them): {stale:?}"
    );
}

#[test]
fn every_item_of_the_official_header_is_compared_or_listed_missing() {
    if !official_header_present() {
        return;
    }
    let probed = probed_official().expect("the official probe pairs with its table");
    let compared = |kind: Kind| -> BTreeSet<&str> {
        probed
            .iter()
            .filter(|p| p.entry.kind == kind)
            .map(|p| p.entry.item)
            .collect()
    };
    let structs = compared(Kind::Size);
    let constants = compared(Kind::Const);
    let fields = compared(Kind::FieldOffset);
    let page_size_macros = compared(Kind::PageSizeMacro);
    let missing: BTreeSet<&str> = OFFICIAL_MISSING
        .iter()
        .map(|(_, item)| item.rsplit("::").next().unwrap_or(item))
        .collect();
    let mut uncovered = Vec::new();
    for h in EXPECTED_OFFICIAL {
        for s in h.structs {
            if !structs.contains(s) && !missing.contains(s) {
                uncovered.push(format!("struct {s}"));
            }
        }
        for c in h.enum_values.iter().chain(h.macros) {
            let by_page_size = page_size_macros
                .iter()
                .any(|p| p.starts_with(&format!("{c} ")));
            if !constants.contains(c) && !missing.contains(c) && !by_page_size {
                uncovered.push(c.to_string());
            }
        }
    }
    assert!(
        uncovered.is_empty(),
        "items of {OFFICIAL_FUSE_H} neither compared nor listed missing:\n  {}",
        uncovered.join("\n  ")
    );
    // The 7.46 items themselves are among those compared (a parser that skipped the union
    // would drop them silently).
    for item in [
        "fuse_uring_cmd_req.bufpool",
        "fuse_uring_cmd_req.bufpool.uaddr",
        "fuse_uring_cmd_req.bufpool.len",
        "fuse_uring_cmd_req.bufpool.reserved",
        "fuse_uring_cmd_req.ent_zero_copy_buf_index",
        "fuse_uring_ent_in_out.offset",
    ] {
        assert!(fields.contains(item), "field {item} not compared");
    }
    for c in [
        "FUSE_KERNEL_MINOR_VERSION",
        "FUSE_HAS_IO_URING_BUFPOOL",
        "FUSE_IO_URING_CMD_ADD_QUEUE",
        "FUSE_IO_URING_CMD_ADD_BUFPOOL",
        "FUSE_URING_ZERO_COPY",
        "FUSE_URING_ENT_ZERO_COPY",
        "FOPEN_IO_URING_ZERO_COPY",
    ] {
        assert!(constants.contains(c), "constant {c} not compared");
    }
    assert!(structs.contains("fuse_uring_cmd_req"));
}
