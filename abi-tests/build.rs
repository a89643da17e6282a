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

use build_support::{is_ident, strip_comments};
use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use build_support::{ExpectedItems, MACRO_RUST_TYPES, UNEVALUABLE_MACROS, expected_items};

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
/// Unevaluable macros that `fuse-kernel-sys` replaces by a `const fn` of the page size.
const PAGE_SIZE_FUNCTIONS: [(&str, &str); 1] = [(
    "FUSE_REMOVEMAPPING_MAX_ENTRY",
    "fuse_removemapping_max_entry",
)];

/// Rust keywords: bindgen appends `_` to a C identifier that is one (C `type` -> `type_`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
];

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
    let distro_path = Path::new(DISTRO_FUSE_H);
    println!("cargo:rerun-if-changed={DISTRO_FUSE_H}");
    println!("cargo:rerun-if-changed={IO_URING_H}");
    let distro = if distro_path.exists() {
        Some(Header::read(
            distro_path,
            DISTRO_FUSE_H,
            "::fuse_kernel_sys",
        )?)
    } else {
        None
    };
    let io_uring_present = Path::new(IO_URING_H).exists();
    println!("cargo:rerun-if-env-changed={OFFICIAL_ENV}");
    let official_path = match env::var_os(OFFICIAL_ENV) {
        Some(p) => PathBuf::from(p),
        None => {
            let manifest = PathBuf::from(
                env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?,
            );
            manifest
                .parent()
                .ok_or("abi-tests has no parent directory")?
                .join(OFFICIAL_DEFAULT)
        }
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

    let mut rs = String::new();
    rs.push_str("// @generated by abi-tests/build.rs from the headers. DO NOT EDIT.\n\n");

    // --- ours: fuse_kernel.h + fuse_iomap.h -------------------------------------------------
    let mut ours = Table::new("abi_probe_ours");
    ours.c_prelude.push_str("#include \"fuse_iomap.h\"\n");
    for header in [&mainline, &iomap] {
        ours.add_header(header, None)?;
    }
    ours.write(&out_dir, &mut rs, "OURS")?;
    cross_check(&ours, &include_dir, &out_dir)?;

    let mut expected = String::from("pub const EXPECTED_OURS: &[HeaderItems] = &[\n");
    for header in [&mainline, &iomap] {
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

    // --- independent copies against fuse_kernel.h: the distro's and the official 7.46 ----------
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
            missing = table.add_header(copy, Some(&mainline))?;
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
        table.write(&out_dir, &mut rs, name)?;
        copies.push(table);
    }

    // --- io_uring_sqe -------------------------------------------------------------------------
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
    sqe.write(&out_dir, &mut rs, "SQE")?;

    // --- INIT flag names, in header order -----------------------------------------------------
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
    // (cross_check above), as its binaries cannot run here.
    if env::var("TARGET").ok() == env::var("HOST").ok() {
        build
            .try_compile("abi_probe")
            .map_err(|e| format!("compiling the C probes failed: {e}"))?;
    }

    let path = out_dir.join("tables.rs");
    fs::write(&path, rs).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

/// One header: its text, its items and its parsed structs.
struct Header {
    /// Name shown in messages.
    label: String,
    /// Rust path of the module holding its items.
    rust_module: &'static str,
    items: ExpectedItems,
    structs: Vec<CStruct>,
}

impl Header {
    fn read(path: &Path, label: &str, rust_module: &'static str) -> Result<Header, String> {
        println!("cargo:rerun-if-changed={}", path.display());
        let text =
            fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let items = expected_items(&text);
        let structs = parse_structs(&text).map_err(|e| format!("{label}: {e}"))?;
        let parsed: Vec<&str> = structs.iter().map(|s| s.name.as_str()).collect();
        if parsed != items.structs {
            return Err(format!(
                "{label}: the struct bodies parsed ({parsed:?}) differ from \
                 build_support::expected_items ({:?})",
                items.structs
            ));
        }
        Ok(Header {
            label: label.to_owned(),
            rust_module,
            items,
            structs,
        })
    }

    /// The `HeaderItems` literal of this header.
    fn items_literal(&self) -> String {
        let mut s = String::new();
        writeln!(s, "    HeaderItems {{\n        header: {:?},", self.label).ok();
        writeln!(s, "        structs: &{:?},", self.items.structs).ok();
        let enum_values: Vec<&str> = self
            .items
            .enum_values
            .iter()
            .map(|(_, v)| v.as_str())
            .collect();
        writeln!(s, "        enum_values: &{enum_values:?},").ok();
        writeln!(s, "        macros: &{:?},", self.items.macros).ok();
        s.push_str("    },\n");
        s
    }

    fn has_macro_or_value(&self, name: &str) -> bool {
        self.items.macros.iter().any(|m| m == name)
            || self.items.enum_values.iter().any(|(_, v)| v == name)
    }
}

/// A struct of the header and its fields, in declaration order.
struct CStruct {
    name: String,
    fields: Vec<CField>,
}

struct CField {
    /// The C member path from the struct (`qid`, or `bufpool.uaddr` for a member of an
    /// anonymous union's nested struct): what `offsetof` and `->` take.
    name: String,
    /// The matching Rust path (bindgen names the n-th anonymous member of a struct
    /// `__bindgen_anon_n`: `__bindgen_anon_1.bufpool.uaddr`), keywords with bindgen's `_`.
    rust_path: String,
    /// The C type without the declarator (`uint32_t`, `struct fuse_attr`, `struct` for an
    /// anonymous struct).
    ty: String,
    /// `Some("")` for a flexible array member, `Some(n)` for `[n]`, `None` for a scalar.
    array: Option<String>,
    /// Reached through a union: the Rust projection must be a raw pointer (`&raw const`),
    /// since a reference to a union field would need `unsafe`.
    via_union: bool,
}

impl CField {
    fn is_flexible(&self) -> bool {
        self.array.as_deref() == Some("")
    }

    /// Whether the field is a single integer (its signedness can be compared).
    fn is_integer(&self) -> bool {
        self.array.is_none() && !self.ty.starts_with("struct") && !self.ty.starts_with("union")
    }
}

/// A Rust field name: bindgen appends `_` to a C identifier that is a Rust keyword.
fn rust_ident(c: &str) -> String {
    if RUST_KEYWORDS.contains(&c) {
        format!("{c}_")
    } else {
        c.to_owned()
    }
}

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

/// Reads every `struct NAME { ... };` of the header, with its fields.
///
/// The headers declare one plain member per statement (`type name;`, `type name[N];`,
/// `type name[];`), and (since 7.46) anonymous unions whose members are plain or an unnamed
/// `struct { ... } name;`; every member of those is listed with its path. Anything else (named
/// nested types, bit fields, pointers, several declarators) is refused with an error naming
/// the struct, so that nothing is silently skipped.
fn parse_structs(text: &str) -> Result<Vec<CStruct>, String> {
    let text = strip_comments(text);
    let mut structs = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        let Some(name) = trimmed
            .strip_prefix("struct ")
            .and_then(|r| r.strip_suffix('{'))
            .map(str::trim)
        else {
            continue;
        };
        if !is_ident(name) {
            continue;
        }
        // The body up to the brace that closes the struct (nested braces counted).
        let mut body = String::new();
        let mut depth = 1usize;
        for l in lines.by_ref() {
            for c in l.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                body.push(c);
            }
            if depth == 0 {
                break;
            }
            body.push('\n');
        }
        if depth != 0 {
            return Err(format!("struct {name} is not closed"));
        }
        let mut fields = Vec::new();
        let mut anon = 0;
        parse_members(name, &body, "", "", false, &mut anon, &mut fields)?;
        if fields.is_empty() {
            return Err(format!("struct {name} has no members"));
        }
        structs.push(CStruct {
            name: name.to_owned(),
            fields,
        });
    }
    Ok(structs)
}

/// Splits a member list at the `;` that are not inside braces.
fn split_members(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut cur = String::new();
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ';' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter()
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect()
}

/// Parses the members of a struct (or of a nested anonymous union/struct) into `fields`,
/// with C paths prefixed by `c_prefix` and Rust paths by `rust_prefix`.
fn parse_members(
    owner: &str,
    body: &str,
    c_prefix: &str,
    rust_prefix: &str,
    via_union: bool,
    anon: &mut usize,
    fields: &mut Vec<CField>,
) -> Result<(), String> {
    for decl in split_members(body) {
        if let Some(open) = decl.find('{') {
            // `union { ... }` (anonymous member) or `struct { ... } name` (unnamed type).
            let close = decl
                .rfind('}')
                .ok_or_else(|| format!("struct {owner}: unbalanced `{decl}`"))?;
            let keyword = decl[..open].trim();
            let inner = &decl[open + 1..close];
            let declarator = decl[close + 1..].trim();
            match (keyword, declarator.is_empty()) {
                ("union", true) => {
                    *anon += 1;
                    let rust = format!("{rust_prefix}__bindgen_anon_{anon}.");
                    let mut inner_anon = 0;
                    parse_members(owner, inner, c_prefix, &rust, true, &mut inner_anon, fields)?;
                }
                ("struct", false) if is_ident(declarator) => {
                    let c_path = format!("{c_prefix}{declarator}");
                    let rust_path = format!("{rust_prefix}{}", rust_ident(declarator));
                    fields.push(CField {
                        name: c_path.clone(),
                        rust_path: rust_path.clone(),
                        ty: "struct".to_owned(),
                        array: None,
                        via_union,
                    });
                    let mut inner_anon = 0;
                    parse_members(
                        owner,
                        inner,
                        &format!("{c_path}."),
                        &format!("{rust_path}."),
                        via_union,
                        &mut inner_anon,
                        fields,
                    )?;
                }
                _ => {
                    return Err(format!(
                        "struct {owner}: member `{decl}` is neither an anonymous union nor an \
                         unnamed struct member; teach abi-tests/build.rs about it"
                    ));
                }
            }
            continue;
        }
        if decl.contains(['}', ',', ':', '(', '*', '=']) {
            return Err(format!(
                "struct {owner}: member `{decl}` is not a plain declaration; \
                 teach abi-tests/build.rs about it"
            ));
        }
        let tokens: Vec<&str> = decl.split_whitespace().collect();
        let Some((declarator, ty)) = tokens.split_last() else {
            continue;
        };
        let (field, array) = match declarator.split_once('[') {
            Some((f, rest)) => {
                let n = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("struct {owner}: cannot read `{decl}`"))?;
                (f, Some(n.trim().to_owned()))
            }
            None => (*declarator, None),
        };
        if !is_ident(field) || ty.is_empty() {
            return Err(format!("struct {owner}: cannot read member `{decl}`"));
        }
        fields.push(CField {
            name: format!("{c_prefix}{field}"),
            rust_path: format!("{rust_prefix}{}", rust_ident(field)),
            ty: ty.join(" "),
            array,
            via_union,
        });
    }
    Ok(())
}

/// One probe: a C array of `unsigned long long` and the Rust entries that explain it.
struct Table {
    c_name: &'static str,
    c_prelude: String,
    c_values: Vec<String>,
    rust_entries: String,
    /// Per entry: the item, what is compared, the Rust figure, and how many C values it uses
    /// (for the compile-time cross-architecture assertions).
    entries: Vec<(String, String, String, usize)>,
}

impl Table {
    fn new(c_name: &'static str) -> Table {
        Table {
            c_name,
            c_prelude: String::new(),
            c_values: Vec::new(),
            rust_entries: String::new(),
            entries: Vec::new(),
        }
    }

    /// Adds one entry: `c_exprs` are the C values it consumes, in order.
    fn push(&mut self, item: &str, kind: &str, c_exprs: Vec<String>, rust: String) {
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
    fn cross_assertions(&self, values: &[u64], target: &str) -> Result<String, String> {
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
                // The rule of fuse-kernel-sys: `long long` is 64-bit in Rust; any other C
                // type is 32-bit when the value fits (u32, or i32 when negative).
                let (bits, code) = (c[0], c[1]);
                // fuse-iomap's INIT flag is a newtype of u64 (its bit collides with 7.46).
                let value_of = if path == "::fuse_kernel_sys::iomap::FUSE_IOMAP" {
                    format!("{path}.bits_on_iomap_kernel()")
                } else {
                    format!("({path} as u64)")
                };
                let signed = matches!(code, 1 | 3 | 5);
                let value = if signed {
                    i128::from(bits as i64)
                } else {
                    i128::from(bits)
                };
                let fits_32 = (i128::from(i32::MIN)..=i128::from(u32::MAX)).contains(&value);
                let width = if matches!(code, 5 | 6) || !fits_32 {
                    8
                } else {
                    4
                };
                let mask = if width == 8 {
                    u64::MAX
                } else {
                    u64::from(u32::MAX)
                };
                writeln!(
                    out,
                    "const _: () = assert!(::core::mem::size_of_val(&{path}) == {width} \
                     && {value_of} & {mask:#x} == {:#x}, {msg:?});",
                    bits & mask
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
    fn add_header(
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
                format!(
                    "_Generic(({name}), int: 1, unsigned int: 2, long: 3, unsigned long: 4, \
                     long long: 5, unsigned long long: 6, default: 0)"
                ),
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
    fn write(&self, out_dir: &Path, rs: &mut String, name: &str) -> Result<(), String> {
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
