//! The distro's `/usr/include/linux/fuse.h` (Debian 12: linux-libc-dev 6.1, protocol 7.38), an
//! independent copy of the ABI, against `fuse-kernel-sys`: every struct, field, enum value and
//! macro the two share has the same layout and value, and every item of the distro header
//! exists in ours, except the upstream changes listed here with their reason.

use std::collections::BTreeSet;

use abi_tests::tables::{DISTRO_FUSE_H, DISTRO_MISSING, DISTRO_PRESENT, EXPECTED_DISTRO};
use abi_tests::{Kind, counts, probed_distro};

/// Items of the distro header that differ from, or are missing in, protocol 7.45, and why.
/// Each entry must still apply (a stale entry fails the test).
const UPSTREAM_CHANGES: &[(&str, &str)] = &[
    (
        "FUSE_KERNEL_MINOR_VERSION",
        "the protocol minor itself: the distro's copy is 7.38, ours is 7.46",
    ),
    (
        "fuse_open_out.padding",
        "renamed: 7.40 (passthrough) turned `uint32_t padding` into `int32_t backing_id`, \
         same offset and size",
    ),
    (
        "fuse_init_out.unused",
        "shrunk: 7.38 had `uint32_t unused[7]` at 36; 7.40 took 4 bytes for `max_stack_depth` \
         and 7.43 2 bytes for `request_timeout`, leaving `uint16_t unused[11]` at 42",
    ),
    (
        "fuse_notify_code::FUSE_NOTIFY_CODE_MAX",
        "removed in 7.45: the enum grew past it (RESEND 7, INC_EPOCH 8, PRUNE 9) and upstream \
         dropped the sentinel",
    ),
];

/// The skip (or, with FUSE_TESTS_REQUIRE_KERNEL=1, failure) when the header is absent.
fn distro_header_present() -> bool {
    if !DISTRO_PRESENT {
        testkit::skip(&format!(
            "{DISTRO_FUSE_H} was absent when abi-tests was built (apt-get install linux-libc-dev)"
        ));
        return false;
    }
    true
}

#[test]
fn distro_header_agrees_with_fuse_kernel_sys() {
    if !distro_header_present() {
        return;
    }
    let probed = probed_distro().expect("the distro probe pairs with its table");
    let source = format!("distro {DISTRO_FUSE_H}");
    let mut explained = BTreeSet::new();
    let mut unexplained = Vec::new();
    for p in &probed {
        if let Err(e) = p.check(&source) {
            match UPSTREAM_CHANGES
                .iter()
                .find(|(item, _)| *item == p.entry.item)
            {
                Some((item, reason)) => {
                    println!("accepted difference: {e}\n    because: {reason}");
                    explained.insert(*item);
                }
                None => unexplained.push(e),
            }
        }
    }
    for (kind, item) in DISTRO_MISSING {
        match UPSTREAM_CHANGES.iter().find(|(i, _)| i == item) {
            Some((item, reason)) => {
                println!(
                    "accepted: {kind} {item} of the distro header is not in ours\n    because: {reason}"
                );
                explained.insert(*item);
            }
            None => unexplained.push(format!(
                "{kind} {item} is in {DISTRO_FUSE_H} but missing from fuse_kernel.h"
            )),
        }
    }
    let n = counts(&probed);
    println!(
        "compared with {DISTRO_FUSE_H}: {} structs, {} fields, {} enums, {} constants \
         ({} figures); {} distro item(s) missing from ours",
        n.structs,
        n.fields,
        n.enums,
        n.constants,
        probed.len(),
        DISTRO_MISSING.len()
    );
    assert!(
        unexplained.is_empty(),
        "{} disagreement(s) with the distro's header:\n  {}",
        unexplained.len(),
        unexplained.join("\n  ")
    );
    let stale: Vec<&str> = UPSTREAM_CHANGES
        .iter()
        .map(|(item, _)| *item)
        .filter(|item| !explained.contains(item))
        .collect();
    assert!(
        stale.is_empty(),
        "UPSTREAM_CHANGES entries that no longer apply (remove them): {stale:?}"
    );
}

#[test]
fn every_item_of_the_distro_header_is_compared_or_listed_missing() {
    if !distro_header_present() {
        return;
    }
    let probed = probed_distro().expect("the distro probe pairs with its table");
    let compared = |kind: Kind| -> BTreeSet<&str> {
        probed
            .iter()
            .filter(|p| p.entry.kind == kind)
            .map(|p| p.entry.item)
            .collect()
    };
    let structs = compared(Kind::Size);
    let constants = compared(Kind::Const);
    let page_size_macros = compared(Kind::PageSizeMacro);
    let missing: BTreeSet<&str> = DISTRO_MISSING
        .iter()
        .map(|(_, item)| item.rsplit("::").next().unwrap_or(item))
        .collect();
    let mut uncovered = Vec::new();
    let mut declared = 0;
    for h in EXPECTED_DISTRO {
        declared += h.structs.len() + h.enum_values.len() + h.macros.len();
        for s in h.structs {
            if !structs.contains(s) && !missing.contains(s) {
                uncovered.push(format!("struct {s}"));
            }
        }
        for c in h.enum_values.iter().chain(h.macros) {
            // A macro clang cannot evaluate alone is compared through its Rust replacement.
            let by_page_size = page_size_macros
                .iter()
                .any(|p| p.starts_with(&format!("{c} ")));
            if !constants.contains(c) && !missing.contains(c) && !by_page_size {
                uncovered.push(c.to_string());
            }
        }
    }
    let n = counts(&probed);
    let covered = n.structs
        + n.constants
        + page_size_macros.len()
        + DISTRO_MISSING.iter().filter(|(k, _)| *k != "field").count();
    println!(
        "{DISTRO_FUSE_H} declares {declared} structs, enum values and macros; \
         {covered} compared or listed missing"
    );
    assert!(
        uncovered.is_empty(),
        "items of {DISTRO_FUSE_H} neither compared nor listed missing:\n  {}",
        uncovered.join("\n  ")
    );
    assert!(
        covered >= declared,
        "{covered} items compared or listed missing, {DISTRO_FUSE_H} declares {declared}"
    );
}
