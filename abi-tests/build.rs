//! Build script of abi-tests: writes the C probes, compiles them with `cc`, and writes the Rust
//! tables that the tests compare them with.
//!
//! Nothing here is a list typed by hand: the structs, enum values and object-like macros come
//! from `build_support::expected_items` (the same list that bindgen's output is checked
//! against), and the fields of every struct are read from the struct bodies of the header
//! text. For each item the build writes one C expression (`sizeof`, `_Alignof`, `offsetof`, the
//! macro itself...) into a `const unsigned long long` array of the probe, and the matching Rust
//! expression (`size_of`, `align_of`, `offset_of!`, the constant of `fuse-kernel-sys`) at the
//! same position of a Rust table (`OUT_DIR/tables.rs`). The C array is data the C compiler
//! computed from the header; the tests read it through `extern` statics and compare.
//!
//! Probes:
//! - `ours`: `fuse-kernel-sys/include/fuse_kernel.h` and `fuse_iomap.h`, the headers bindgen
//!   reads (`../fuse-kernel-sys/include`);
//! - `distro`: `/usr/include/linux/fuse.h` (Debian's linux-libc-dev), for the items it shares
//!   with `fuse_kernel.h`; the items it has and ours lacks are listed for the test to judge;
//! - `official`: the same for the official 7.46 header of Linux 7.3 (see `OFFICIAL_DEFAULT`);
//! - `sqe`: the `struct io_uring_sqe` fields fuse-uring writes, from `<linux/io_uring.h>`.
//!
//! Files: this one reads the headers and writes the probes; `build/header.rs` parses a
//! header's items and struct bodies; `build/table.rs` turns them into one probe (the C array,
//! the Rust table, and the compile-time assertions for another target).

#[path = "build/header.rs"]
mod header;
#[path = "build/table.rs"]
mod table;

use build_support::{CIntType, UNEVALUABLE_MACROS};
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use header::Header;
use table::Table;

/// The distro's copy of the FUSE ABI (linux-libc-dev).
const DISTRO_FUSE_H: &str = "/usr/include/linux/fuse.h";
/// The distro's io_uring uapi header.
const IO_URING_H: &str = "/usr/include/linux/io_uring.h";
/// The `io_uring_sqe` fields that fuse-uring writes (checked against the C compiler and
/// linux-raw-sys).
const SQE_FIELDS: [&str; 8] = [
    "opcode",
    "fd",
    "cmd_op",
    "addr",
    "len",
    "uring_cmd_flags",
    "user_data",
    "cmd",
];
/// The io_uring constants fuse-uring uses next to those fields.
const SQE_CONSTANTS: [&str; 2] = ["IORING_OP_URING_CMD", "IORING_SETUP_SQE128"];
/// The first and last INIT flag of `fuse_kernel.h`, in header order.
const INIT_FLAGS_RANGE: (&str, &str) = ("FUSE_ASYNC_READ", "FUSE_HAS_IO_URING_BUFPOOL");
/// The official 7.46 header (Linux 7.3's `include/uapi/linux/fuse.h`, as shipped in Debian's
/// linux-libc-dev 7.3~rc7 from experimental), fetched by `abi-tests/fetch-official-header.sh`
/// into the workspace's target directory; `FUSE_OFFICIAL_HEADER` names another copy.
const OFFICIAL_ENV: &str = "FUSE_OFFICIAL_HEADER";
const OFFICIAL_DEFAULT: &str = "target/official-headers/7.46/linux/fuse.h";
/// Page size used to evaluate `PAGE_SIZE`-dependent macros in the probe.
const PROBE_PAGE_SIZE: u32 = 4096;

/// The C figures of `ours` computed by clang for the target being built, against that
/// target's own uapi headers (Debian's `linux-libc-dev-<arch>-cross`, unpacked under
/// `$FUSE_ABI_UAPI_ROOT/usr/<triple>/include`), turned into compile-time assertions in
/// `OUT_DIR/cross.rs`. Without `FUSE_ABI_UAPI_ROOT` the file is empty (the run-time tests
/// compare the host's figures instead); `cargo xtask cross-check` sets it for every target.
fn cross_check(ours: &Table, include_dir: &Path, out_dir: &Path) -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=FUSE_ABI_UAPI_ROOT");
    let path = out_dir.join("cross.rs");
    let Some(root) = env::var_os("FUSE_ABI_UAPI_ROOT") else {
        return fs::write(
            &path,
            "// FUSE_ABI_UAPI_ROOT not set: no cross-architecture check.\n",
        )
        .map_err(|e| e.to_string());
    };
    let target = env::var("TARGET").map_err(|_| "TARGET is not set")?;
    let t = build_support::snapshot_target(&target).ok_or_else(|| {
        format!("{target} is not a target of fuse-kernel-sys's snapshots (TARGETS)")
    })?;
    let uapi = PathBuf::from(root)
        .join("usr")
        .join(t.debian_triple)
        .join("include");
    if !uapi.join("asm").join("ioctl.h").exists() {
        return Err(format!(
            "{} has no asm/ioctl.h: unpack linux-libc-dev-{}-cross there",
            uapi.display(),
            t.debian_arch
        ));
    }
    let prelude = format!(
        "#include <limits.h>\n#include <stddef.h>\n{}#define PAGE_SIZE {PROBE_PAGE_SIZE}\n",
        ours.c_prelude
    );
    let args = vec![
        "-ffreestanding".to_owned(),
        "-nostdlibinc".to_owned(),
        format!("-I{}", include_dir.display()),
        format!("-isystem{}", uapi.display()),
        "-std=gnu11".to_owned(),
    ];
    let values = build_support::eval_c_ints(&prelude, &ours.c_values, &target, &args, out_dir)?;
    let mut rs = format!(
        "// @generated by abi-tests/build.rs: {} figures of fuse_kernel.h and fuse_iomap.h \
         computed by clang for {target} with {}. DO NOT EDIT.\n",
        values.len(),
        uapi.display()
    );
    rs.push_str(&ours.cross_assertions(&values, &target)?);
    println!(
        "cargo:warning=abi-tests: {} C figures of {target} (clang, Debian's uapi headers) asserted at compile time",
        values.len()
    );
    fs::write(&path, rs).map_err(|e| e.to_string())
}

fn main() {
    if let Err(e) = run() {
        for line in e.lines() {
            println!("cargo:warning={line}");
        }
        eprintln!("error: abi-tests build script: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=build");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    // The workspace's fuse-kernel-sys, next to this crate (abi-tests is not published).
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").ok_or("no CARGO_MANIFEST_DIR")?);
    let include_dir = manifest_dir.join("../fuse-kernel-sys/include");
    println!("cargo:rerun-if-changed={}", include_dir.display());

    let mainline = Header::read(
        &include_dir.join("fuse_kernel.h"),
        "fuse_kernel.h",
        "::fuse_kernel_sys",
    )?;
    let iomap = Header::read(
        &include_dir.join("fuse_iomap.h"),
        "fuse_iomap.h",
        "::fuse_kernel_sys::iomap",
    )?;

    let mut rs = String::new();
    rs.push_str("// @generated by abi-tests/build.rs from the headers. DO NOT EDIT.\n\n");
    let ours = ours_table(&mainline, &iomap, &include_dir, &out_dir, &mut rs)?;
    let copies = copy_tables(&mainline, &manifest_dir, &out_dir, &mut rs)?;
    let sqe = sqe_table(&out_dir, &mut rs)?;
    init_flags(&mainline, &mut rs)?;

    let mut build = cc::Build::new();
    build
        .include(&include_dir)
        .std("gnu11")
        .warnings(true)
        .warnings_into_errors(true);
    for table in [&ours, &sqe].into_iter().chain(&copies) {
        build.file(out_dir.join(format!("{}.c", table.c_name)));
    }
    // The run-time probes run on the host only; another target is checked at compile time
    // (cross_check), as its binaries cannot run here.
    if env::var("TARGET").ok() == env::var("HOST").ok() {
        build
            .try_compile("abi_probe")
            .map_err(|e| format!("compiling the C probes failed: {e}"))?;
    }

    let path = out_dir.join("tables.rs");
    fs::write(&path, rs).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// The probe of `fuse_kernel.h` and `fuse_iomap.h` (and its cross-architecture assertions),
/// with the items of both headers, the unevaluable macros and the C integer types.
fn ours_table(
    mainline: &Header,
    iomap: &Header,
    include_dir: &Path,
    out_dir: &Path,
    rs: &mut String,
) -> Result<Table, String> {
    let mut ours = Table::new("abi_probe_ours");
    ours.c_prelude.push_str("#include \"fuse_iomap.h\"\n");
    for header in [mainline, iomap] {
        ours.add_header(header, None)?;
    }
    ours.write(out_dir, rs, "OURS")?;
    cross_check(&ours, include_dir, out_dir)?;

    let mut expected = String::from("pub const EXPECTED_OURS: &[HeaderItems] = &[\n");
    for header in [mainline, iomap] {
        expected.push_str(&header.items_literal());
    }
    expected.push_str("];\n\n");
    rs.push_str(&expected);
    rs.push_str(
        "/// Macros clang cannot evaluate (build_support::UNEVALUABLE_MACROS), with the reason.\n",
    );
    rs.push_str("pub const UNEVALUABLE: &[(&str, &str)] = &[\n");
    for (name, reason) in UNEVALUABLE_MACROS {
        writeln!(rs, "    ({name:?}, {reason:?}),").ok();
    }
    rs.push_str("];\n\n");
    rs.push_str(
        "/// The C integer types the probes' `_Generic` tells apart (build_support::CIntType): \
         code, C name, signed, `long long`.\n",
    );
    rs.push_str("pub const C_INT_TYPES: &[(u64, &str, bool, bool)] = &[\n");
    for t in CIntType::ALL {
        writeln!(
            rs,
            "    ({}, {:?}, {}, {}),",
            t.code(),
            t.c_name(),
            t.signed(),
            t.is_long_long()
        )
        .ok();
    }
    rs.push_str("];\n\n");
    Ok(ours)
}

/// The probes of the independent copies, compared with `fuse_kernel.h`: the distro's and the
/// official 7.46 header (each an empty table when absent).
fn copy_tables(
    mainline: &Header,
    manifest_dir: &Path,
    out_dir: &Path,
    rs: &mut String,
) -> Result<Vec<Table>, String> {
    let distro_path = Path::new(DISTRO_FUSE_H);
    println!("cargo:rerun-if-changed={DISTRO_FUSE_H}");
    let distro = if distro_path.exists() {
        Some(Header::read(
            distro_path,
            DISTRO_FUSE_H,
            "::fuse_kernel_sys",
        )?)
    } else {
        None
    };
    println!("cargo:rerun-if-env-changed={OFFICIAL_ENV}");
    let official_path = match env::var_os(OFFICIAL_ENV) {
        Some(p) => PathBuf::from(p),
        None => manifest_dir
            .parent()
            .ok_or("abi-tests has no parent directory")?
            .join(OFFICIAL_DEFAULT),
    };
    // Watched even while absent, so that fetching it rebuilds the probes.
    println!("cargo:rerun-if-changed={}", official_path.display());
    let official_label = official_path.display().to_string();
    let official = if official_path.exists() {
        Some(Header::read(
            &official_path,
            &official_label,
            "::fuse_kernel_sys",
        )?)
    } else {
        None
    };

    let mut copies = Vec::new();
    for (name, c_name, copy, path) in [
        (
            "DISTRO",
            "abi_probe_distro",
            &distro,
            DISTRO_FUSE_H.to_owned(),
        ),
        (
            "OFFICIAL",
            "abi_probe_official",
            &official,
            official_label.clone(),
        ),
    ] {
        let mut table = Table::new(c_name);
        let mut missing: Vec<(String, String)> = Vec::new();
        if let Some(copy) = copy {
            table.c_prelude.push_str(&format!(
                // The uapi header uses `_IOR` without including <linux/ioctl.h>.
                "#include <linux/ioctl.h>\n#include \"{path}\"\n"
            ));
            missing = table.add_header(copy, Some(mainline))?;
            writeln!(rs, "pub const {name}_PRESENT: bool = true;").ok();
            writeln!(rs, "pub const EXPECTED_{name}: &[HeaderItems] = &[").ok();
            rs.push_str(&copy.items_literal());
            rs.push_str("];\n");
        } else {
            writeln!(rs, "pub const {name}_PRESENT: bool = false;").ok();
            writeln!(rs, "pub const EXPECTED_{name}: &[HeaderItems] = &[];").ok();
        }
        writeln!(rs, "pub const {name}_FUSE_H: &str = {path:?};").ok();
        writeln!(
            rs,
            "/// Items of the {name} header that `fuse_kernel.h` lacks: (kind, name)."
        )
        .ok();
        writeln!(rs, "pub const {name}_MISSING: &[(&str, &str)] = &[").ok();
        for (kind, item) in &missing {
            writeln!(rs, "    ({kind:?}, {item:?}),").ok();
        }
        rs.push_str("];\n");
        table.write(out_dir, rs, name)?;
        copies.push(table);
    }
    Ok(copies)
}

/// The probe of the `io_uring_sqe` fields and constants fuse-uring uses (empty when the
/// distro has no `<linux/io_uring.h>`).
fn sqe_table(out_dir: &Path, rs: &mut String) -> Result<Table, String> {
    println!("cargo:rerun-if-changed={IO_URING_H}");
    let io_uring_present = Path::new(IO_URING_H).exists();
    let mut sqe = Table::new("abi_probe_sqe");
    if io_uring_present {
        sqe.c_prelude
            .push_str(&format!("#include \"{IO_URING_H}\"\n"));
        sqe.push(
            "io_uring_sqe",
            "Kind::Size",
            vec!["sizeof(struct io_uring_sqe)".into()],
            "Rust::None".into(),
        );
        for f in SQE_FIELDS {
            // The Rust side (linux-raw-sys nests the anonymous unions) is resolved by name in
            // the test; here only the C side is computed.
            sqe.push(
                &format!("io_uring_sqe.{f}"),
                "Kind::SqeField",
                vec![
                    format!("offsetof(struct io_uring_sqe, {f})"),
                    format!("sizeof(((struct io_uring_sqe *)0)->{f})"),
                ],
                "Rust::None".into(),
            );
        }
        for c in SQE_CONSTANTS {
            sqe.push(
                c,
                "Kind::SqeConst",
                vec![format!("(unsigned long long)({c})")],
                "Rust::None".into(),
            );
        }
    }
    writeln!(rs, "pub const IO_URING_PRESENT: bool = {io_uring_present};").ok();
    writeln!(rs, "pub const IO_URING_H: &str = {IO_URING_H:?};").ok();
    sqe.write(out_dir, rs, "SQE")?;
    Ok(sqe)
}

/// `tables::init_flags()`: the INIT flag names of `fuse_kernel.h`, in header order.
fn init_flags(mainline: &Header, rs: &mut String) -> Result<(), String> {
    let macros = &mainline.items.macros;
    let position = |name: &str| {
        macros
            .iter()
            .position(|m| m == name)
            .ok_or_else(|| format!("fuse_kernel.h has no macro {name}"))
    };
    let (first, last) = (position(INIT_FLAGS_RANGE.0)?, position(INIT_FLAGS_RANGE.1)?);
    rs.push_str("/// The INIT flags of fuse_kernel.h (header order) as 64-bit values.\n");
    rs.push_str("pub fn init_flags() -> ::std::vec::Vec<(&'static str, u64)> {\n    vec![\n");
    for m in macros.get(first..=last).unwrap_or_default() {
        writeln!(rs, "        ({m:?}, u64::from(::fuse_kernel_sys::{m})),").ok();
    }
    rs.push_str("    ]\n}\n");
    Ok(())
}
