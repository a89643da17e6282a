//! The one bindgen configuration of `fuse-kernel-sys`.
//!
//! This file ships in the `fuse-kernel-sys` package and is compiled into its build script with
//! `#[path]`; the workspace's unpublished `build-support` crate includes the same file for the
//! tools. Two callers use it and nothing else configures bindgen:
//! - `fuse-kernel-sys/build.rs` (cargo feature `bindgen`, on by default) generates the bindings
//!   into `OUT_DIR` for the target being built;
//! - `cargo xtask regen-bindings` writes the committed snapshot under
//!   `fuse-kernel-sys/src/generated/` (and `--check` compares it with a fresh generation).
//!
//! Because both go through [`generate`], the build-time bindings and the snapshot are
//! byte-identical for every snapshot target ([`TARGETS`]); a test in `fuse-kernel-sys`
//! proves it on every build with the `bindgen` feature.
//!
//! What the configuration guarantees:
//! - only items declared in the vendored header are emitted (`allowlist_file`);
//! - object-like macros that bindgen cannot fold itself (ioctl numbers, casts, `offsetof`) are
//!   evaluated by clang (`clang_macro_fallback`), so no number is ever computed by hand;
//! - `core::` types only, for a `#![no_std]` crate;
//! - `Debug, Default, Clone, Copy, PartialEq, Eq, Hash` derived wherever possible;
//! - bindgen's layout tests are kept, as compile-time `const` assertions;
//! - deterministic output: explicit `--target`, the bindgen of `Cargo.lock` and `prettyplease`
//!   (no rustfmt from the environment), header order, relative paths in the preamble;
//! - a preamble saying what generated the file, from which header (SHA-256), and how to
//!   regenerate it;
//! - generation fails, naming them, if any struct, enum value or object-like macro of the
//!   header ([`expected_items`]) is missing from the output.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::panic;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bindgen::callbacks::{DeriveInfo, IntKind, ParseCallbacks, TypeKind};

use sha2::{Digest, Sha256};

/// A target the committed snapshots cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The Rust target triple (cargo's `TARGET`).
    pub rust: &'static str,
    /// The directory under `src/generated/` holding its snapshot. Targets whose generated
    /// Rust is identical share one; `cargo xtask regen-bindings --check` generates every
    /// target on its own and compares it with its directory, which proves the sharing valid.
    pub snapshot: &'static str,
    /// Debian's architecture name: `linux-libc-dev-<arch>-cross` holds its uapi headers.
    pub debian_arch: &'static str,
    /// The multiarch triple under which that package installs them (`/usr/<triple>/include`).
    pub debian_triple: &'static str,
}

/// Every target with a committed snapshot, in the order `regen-bindings` generates them.
///
/// The snapshot directories group targets whose generated Rust comes out byte-identical
/// (same ioctl encoding, same layouts); which targets those are is a result of generation,
/// checked by `regen-bindings --check`, not an assumption.
pub const TARGETS: &[Target] = &[
    Target {
        rust: "x86_64-unknown-linux-gnu",
        snapshot: "generic",
        debian_arch: "amd64",
        debian_triple: "x86_64-linux-gnu",
    },
    Target {
        rust: "aarch64-unknown-linux-gnu",
        snapshot: "generic",
        debian_arch: "arm64",
        debian_triple: "aarch64-linux-gnu",
    },
    Target {
        rust: "riscv64gc-unknown-linux-gnu",
        snapshot: "generic",
        debian_arch: "riscv64",
        debian_triple: "riscv64-linux-gnu",
    },
    Target {
        rust: "loongarch64-unknown-linux-gnu",
        snapshot: "generic",
        debian_arch: "loong64",
        debian_triple: "loongarch64-linux-gnu",
    },
    Target {
        rust: "s390x-unknown-linux-gnu",
        snapshot: "generic",
        debian_arch: "s390x",
        debian_triple: "s390x-linux-gnu",
    },
    Target {
        rust: "armv7-unknown-linux-gnueabihf",
        snapshot: "generic",
        debian_arch: "armhf",
        debian_triple: "arm-linux-gnueabihf",
    },
    Target {
        rust: "powerpc64le-unknown-linux-gnu",
        snapshot: "ppc-mips-sparc",
        debian_arch: "ppc64el",
        debian_triple: "powerpc64le-linux-gnu",
    },
    Target {
        rust: "powerpc64-unknown-linux-gnu",
        snapshot: "ppc-mips-sparc",
        debian_arch: "ppc64",
        debian_triple: "powerpc64-linux-gnu",
    },
    Target {
        rust: "mips64el-unknown-linux-gnuabi64",
        snapshot: "ppc-mips-sparc",
        debian_arch: "mips64el",
        debian_triple: "mips64el-linux-gnuabi64",
    },
    Target {
        rust: "sparc64-unknown-linux-gnu",
        snapshot: "ppc-mips-sparc",
        debian_arch: "sparc64",
        debian_triple: "sparc64-linux-gnu",
    },
    Target {
        rust: "i686-unknown-linux-gnu",
        snapshot: "i386",
        debian_arch: "i386",
        debian_triple: "i686-linux-gnu",
    },
];

/// The snapshot target of a Rust target triple, if it has one.
pub fn snapshot_target(rust_target: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.rust == rust_target)
}

/// The targets that share the snapshot directory `snapshot`.
pub fn snapshot_targets(snapshot: &str) -> impl Iterator<Item = &'static Target> + '_ {
    TARGETS.iter().filter(move |t| t.snapshot == snapshot)
}

/// The snapshot directories, each once, in [`TARGETS`] order.
pub fn snapshot_dirs() -> Vec<&'static str> {
    let mut dirs: Vec<&'static str> = Vec::new();
    for t in TARGETS {
        if !dirs.contains(&t.snapshot) {
            dirs.push(t.snapshot);
        }
    }
    dirs
}

/// The clang spelling of a Rust target triple (`riscv64gc-...` is `riscv64-...` to clang).
pub fn clang_target(rust_target: &str) -> String {
    match rust_target.split_once('-') {
        Some(("riscv64gc", rest)) => format!("riscv64-{rest}"),
        Some(("riscv32gc" | "riscv32imac" | "riscv32imc" | "riscv32i", rest)) => {
            format!("riscv32-{rest}")
        }
        _ => rust_target.to_owned(),
    }
}

/// Environment variables that bindgen and clang-sys read while generating. Build scripts
/// declare them with `cargo:rerun-if-env-changed`.
pub const ENV_VARS: &[&str] = &[
    "LIBCLANG_PATH",
    "LLVM_CONFIG_PATH",
    "CLANG_PATH",
    "BINDGEN_EXTRA_CLANG_ARGS",
    "LD_LIBRARY_PATH",
];

/// Object-like macros of the headers that clang cannot evaluate on its own, with the reason.
/// They stay in the header (they are part of the ABI text) and are left out of the
/// "every macro must be generated" check; `fuse-kernel-sys` covers each by other means.
pub const UNEVALUABLE_MACROS: &[(&str, &str)] = &[(
    "FUSE_REMOVEMAPPING_MAX_ENTRY",
    "defined with PAGE_SIZE, which no uapi header defines; \
     fuse-kernel-sys offers fuse_removemapping_max_entry(page_size) instead",
)];

/// Object-like macros whose Rust type is chosen by their use rather than by their C type:
/// `(name, Rust type, why)`. Every other integer macro follows [`CIntType`]'s rule.
pub const MACRO_RUST_TYPES: &[(&str, &str, &str)] = &[
    (
        "FUSE_ROOT_ID",
        "u64",
        "a node id: compared with the u64 `nodeid` fields and stored where they are",
    ),
    (
        "FUSE_NAME_OFFSET",
        "usize",
        "an `offsetof` (C `size_t`): used as a byte count when packing directory records",
    ),
    (
        "FUSE_NAME_OFFSET_DIRENTPLUS",
        "usize",
        "an `offsetof` (C `size_t`): used as a byte count when packing directory records",
    ),
];

/// The bindgen integer kind of a Rust type named in [`MACRO_RUST_TYPES`].
fn int_kind_named(rust_type: &str) -> IntKind {
    match rust_type {
        "u64" => IntKind::U64,
        "u32" => IntKind::U32,
        "i32" => IntKind::I32,
        "i64" => IntKind::I64,
        other => IntKind::Custom {
            name: if other == "usize" { "usize" } else { "isize" },
            is_signed: other != "usize",
        },
    }
}

/// One vendored header and the Rust file generated from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Header {
    /// `fuse_kernel.h`: the mainline ABI, Linux 6.18, protocol 7.45.
    Mainline,
    /// `fuse_iomap.h`: the unstable fuse-iomap extension (2026-02-23 posting). It includes
    /// `fuse_kernel.h`; only its own items are generated.
    Iomap,
}

impl Header {
    /// Every header, in generation order.
    pub const ALL: [Header; 2] = [Header::Mainline, Header::Iomap];

    /// File name of the header in `fuse-kernel-sys/include/`.
    pub fn file_name(self) -> &'static str {
        match self {
            Header::Mainline => "fuse_kernel.h",
            Header::Iomap => "fuse_iomap.h",
        }
    }

    /// File name of the generated Rust file (in `OUT_DIR` or `src/generated/`).
    pub fn output_name(self) -> &'static str {
        match self {
            Header::Mainline => "fuse_kernel.rs",
            Header::Iomap => "fuse_iomap.rs",
        }
    }

    /// The headers this one reads (itself last), for hashes and `rerun-if-changed`.
    pub fn sources(self) -> &'static [&'static str] {
        match self {
            Header::Mainline => &["fuse_kernel.h"],
            Header::Iomap => &["fuse_kernel.h", "fuse_iomap.h"],
        }
    }
}

/// Why generation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// libclang could not be loaded (bindgen's `runtime` loading failed).
    LibclangMissing,
    /// Reading a header failed.
    Io(PathBuf, std::io::Error),
    /// bindgen or clang reported an error.
    Bindgen(Header, bindgen::BindgenError),
    /// Items of the header are missing from the generated Rust.
    MissingItems(Header, Vec<String>),
    /// The loaded libclang is too old for the target (loongarch64 needs clang 16).
    ClangTooOld {
        /// The target asked for.
        target: String,
        /// The oldest clang major version that knows it.
        needs: u32,
        /// What bindgen reports of the loaded libclang.
        found: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LibclangMissing => write!(
                f,
                "libclang could not be loaded, so the FUSE bindings cannot be generated.\n\
                 Fix one of:\n\
                 \x20 - install it: `apt-get install libclang-dev` (Debian/Ubuntu), \
                 `dnf install clang-devel` (Fedora);\n\
                 \x20 - point to it: `LIBCLANG_PATH=/usr/lib/llvm-14/lib` (the folder holding \
                 libclang.so);\n\
                 \x20 - do without it: build fuse-kernel-sys without its `bindgen` feature \
                 (`default-features = false`) to use the committed snapshot."
            ),
            Error::Io(p, e) => write!(f, "cannot read {}: {e}", p.display()),
            Error::Bindgen(h, e) => write!(f, "bindgen failed on {}: {e}", h.file_name()),
            Error::ClangTooOld {
                target,
                needs,
                found,
            } => write!(
                f,
                "the loaded libclang ({found}) does not know the target {target}: it needs \
                 clang {needs} or newer. Install one (`apt-get install libclang-19-dev`) and \
                 point to it: `LIBCLANG_PATH=/usr/lib/llvm-19/lib`."
            ),
            Error::MissingItems(h, names) => write!(
                f,
                "bindgen left out {} item(s) of {}: {}",
                names.len(),
                h.file_name(),
                names.join(", ")
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The items a header declares, derived from its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectedItems {
    /// `struct NAME {` definitions, in header order.
    pub structs: Vec<String>,
    /// Enumerators of every `enum`, in header order, as `(enum name, value name)`.
    pub enum_values: Vec<(String, String)>,
    /// Object-like macros with a value (include guards excluded), in header order.
    pub macros: Vec<String>,
}

/// Removes `/* ... */` and `// ...` comments and joins backslash-continued lines (keeping
/// line numbers of the rest), as [`expected_items`] reads a header. Also used by the ABI probes.
pub fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => {
                // Keep line structure so that `#define` lines stay lines.
                let comment = &rest[start..start + 2 + end + 2];
                out.extend(comment.chars().filter(|&c| c == '\n'));
                rest = &rest[start + 2 + end + 2..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out.replace("\\\n", " ")
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `s` is a C identifier.
pub fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Lists the structs, enum values and object-like macros a header declares.
///
/// This is the mechanical list that generation (and the ABI tests) check against, so a newly
/// added item is covered without anyone remembering to add it. It understands the plain style
/// the vendored headers are written in: one `#define` per line (continuations allowed),
/// `struct NAME {` and `enum NAME {` at the start of a line.
pub fn expected_items(header_text: &str) -> ExpectedItems {
    let text = strip_comments(header_text);
    let mut items = ExpectedItems::default();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if let Some(def) = trimmed.strip_prefix("#define") {
            let def = def.trim_start();
            let name_len = def
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(def.len());
            let (name, body) = def.split_at(name_len);
            // Function-like macros have '(' right after the name; guards have no body.
            if is_ident(name) && !body.starts_with('(') && !body.trim().is_empty() {
                items.macros.push(name.to_owned());
            }
        } else if let Some(rest) = trimmed.strip_prefix("struct ") {
            if let Some(name) = rest.strip_suffix('{').map(str::trim) {
                if is_ident(name) {
                    items.structs.push(name.to_owned());
                }
            }
        } else if let Some(rest) = trimmed.strip_prefix("enum ") {
            if let Some(name) = rest.strip_suffix('{').map(str::trim) {
                let mut body = String::new();
                for l in lines.by_ref() {
                    if l.trim_start().starts_with('}') {
                        break;
                    }
                    body.push_str(l);
                    body.push('\n');
                }
                for value in body.split(',') {
                    let value = value.split('=').next().unwrap_or("").trim();
                    if is_ident(value) {
                        items.enum_values.push((name.to_owned(), value.to_owned()));
                    }
                }
            }
        }
    }
    items
}

/// Names in `expected` that `rust` does not define, minus [`UNEVALUABLE_MACROS`].
fn missing_items(expected: &ExpectedItems, rust: &str) -> Vec<String> {
    let has = |kind: &str, name: &str| {
        let needle = format!("pub {kind} {name}");
        rust.match_indices(&needle)
            .any(|(i, _)| rust[i + needle.len()..].starts_with([':', ' ', '<']))
    };
    let mut missing = Vec::new();
    for s in &expected.structs {
        if !has("struct", s) {
            missing.push(format!("struct {s}"));
        }
    }
    for (e, v) in &expected.enum_values {
        if !has("const", v) {
            missing.push(format!("enum {e}::{v}"));
        }
    }
    for m in &expected.macros {
        if !has("const", m) && !UNEVALUABLE_MACROS.iter().any(|(n, _)| n == m) {
            missing.push(format!("macro {m}"));
        }
    }
    missing
}

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::Io(path.to_owned(), e))
}

/// The C type of an integer macro's expression, as clang's `_Generic` tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CIntType {
    /// `int`
    Int,
    /// `unsigned int`
    UInt,
    /// `long`
    Long,
    /// `unsigned long`
    ULong,
    /// `long long`
    LongLong,
    /// `unsigned long long`
    ULongLong,
}

impl CIntType {
    const GENERIC: &'static str = "int: 1, unsigned int: 2, long: 3, unsigned long: 4, \
                                   long long: 5, unsigned long long: 6, default: 0";

    fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => CIntType::Int,
            2 => CIntType::UInt,
            3 => CIntType::Long,
            4 => CIntType::ULong,
            5 => CIntType::LongLong,
            6 => CIntType::ULongLong,
            _ => return None,
        })
    }

    /// The Rust type a macro of this C type and value gets.
    ///
    /// The rule: `long long` expressions (an `ULL` literal) are 64-bit in Rust, whatever
    /// their value, because they belong in 64-bit fields (`-1ULL` is `u64::MAX`, not `-1`).
    /// Everything else (`int` flags, `unsigned long` ioctl numbers) is `u32` when the value
    /// fits, as in linux-raw-sys; `(1 << 31)` is therefore `0x8000_0000u32`.
    fn rust_kind(self, value: i64) -> IntKind {
        match self {
            CIntType::ULongLong => IntKind::U64,
            CIntType::LongLong if value < 0 => IntKind::I64,
            CIntType::LongLong => IntKind::U64,
            _ if u32::try_from(value).is_ok() => IntKind::U32,
            _ if i32::try_from(value).is_ok() => IntKind::I32,
            _ if value < 0 => IntKind::I64,
            _ => IntKind::U64,
        }
    }
}

const CTYPE_PREFIX: &str = "FUSE_KERNEL_SYS_CTYPE_OF_";

/// Records the C types of the probe macros, and types the real macros from them.
#[derive(Debug, Default)]
struct MacroTypes {
    probed: Mutex<BTreeMap<String, CIntType>>,
    unknown: Mutex<Vec<String>>,
    use_types: Option<BTreeMap<String, CIntType>>,
}

impl ParseCallbacks for MacroTypes {
    fn int_macro(&self, name: &str, value: i64) -> Option<IntKind> {
        if let Some(of) = name.strip_prefix(CTYPE_PREFIX) {
            if let (Some(ty), Ok(mut map)) = (CIntType::from_code(value), self.probed.lock()) {
                map.insert(of.to_owned(), ty);
            }
            return None;
        }
        let types = self.use_types.as_ref()?;
        if let Some((_, rust_type, _)) = MACRO_RUST_TYPES.iter().find(|(n, _, _)| *n == name) {
            return Some(int_kind_named(rust_type));
        }
        match types.get(name) {
            Some(ty) => Some(ty.rust_kind(value)),
            None => {
                if let Ok(mut unknown) = self.unknown.lock() {
                    unknown.push(name.to_owned());
                }
                None
            }
        }
    }
}

/// Asks clang for the C type of every object-like macro of `header` (through bindgen's clang
/// macro evaluation of a `_Generic` selection per macro).
fn macro_c_types(
    include_dir: &Path,
    header: Header,
    target: &str,
    scratch_dir: &Path,
    macros: &[String],
) -> Result<BTreeMap<String, CIntType>, Error> {
    let probe_path = scratch_dir.join(format!("ctype_probe_{}", header.file_name()));
    let mut probe = format!("#include \"{}\"\n", header.file_name());
    for m in macros {
        if UNEVALUABLE_MACROS.iter().any(|(n, _)| n == m) {
            continue;
        }
        probe.push_str(&format!(
            "#define {CTYPE_PREFIX}{m} (_Generic(({m}), {}))\n",
            CIntType::GENERIC
        ));
    }
    fs::write(&probe_path, probe).map_err(|e| Error::Io(probe_path.clone(), e))?;
    let types = Arc::new(MacroTypes::default());
    let builder = bindgen::Builder::default()
        .header(probe_path.to_string_lossy().into_owned())
        .clang_args(clang_args(include_dir, target))
        .allowlist_var(format!("{CTYPE_PREFIX}.*"))
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(scratch_dir)
        .parse_callbacks(Box::new(SharedCallbacks(types.clone())));
    builder.generate().map_err(|e| Error::Bindgen(header, e))?;
    let probed = types.probed.lock().map(|m| m.clone()).unwrap_or_default();
    let unknown: Vec<String> = macros
        .iter()
        .filter(|m| !probed.contains_key(*m) && !UNEVALUABLE_MACROS.iter().any(|(n, _)| n == *m))
        .map(|m| format!("C type of macro {m}"))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::MissingItems(header, unknown));
    }
    Ok(probed)
}

/// Lets one `MacroTypes` be shared between bindgen and the caller.
#[derive(Debug)]
struct SharedCallbacks(Arc<MacroTypes>);

/// Structs whose last member is a C flexible array (or that embed one): they have no fixed
/// size, so they get no byte-view derives; their fixed parts are read field by field.
const FLEXIBLE_ARRAY_STRUCTS: &[&str] = &["fuse_dirent", "fuse_direntplus", "fuse_supp_groups"];

/// Structs with implicit padding: readable from bytes, but never written as bytes (their
/// padding would be uninitialised). Only the unmerged fuse-iomap series has one
/// (`fuse_iomap_config_out`, 4 bytes of tail padding); zerocopy's `IntoBytes` derive rejects
/// any other padded struct at compile time, so this list cannot hide one by accident.
const PADDED_STRUCTS: &[&str] = &["fuse_iomap_config_out"];

/// Structs that hold a union whose members differ in size (7.46's `fuse_uring_cmd_req`: its
/// union is the 16-byte `bufpool` or the 2-byte `ent_zero_copy_buf_index`, so a value built
/// through the small member has 14 uninitialised bytes). Readable from bytes, never viewed as
/// bytes: their writers (fuse-uring's SQE builders) put the fields into a zeroed command area
/// one by one. Unions themselves never get `IntoBytes` (see [`zerocopy_derives`]), and
/// zerocopy's `IntoBytes` derive rejects a struct with a union field, so a struct that gains
/// one fails to compile until it is listed here.
const UNION_HOLDING_STRUCTS: &[&str] = &["fuse_uring_cmd_req"];

/// The zerocopy derives put on every other struct (and `FromBytes` only on unions, whose
/// variants may leave bytes uninitialised).
///
/// `IntoBytes` makes zerocopy prove at compile time that the struct has no padding, and
/// `FromBytes` that every field accepts every bit pattern: together they are the soundness
/// proof for reading an ABI struct from kernel bytes and writing it back, in safe code.
fn zerocopy_derives(info: &DeriveInfo<'_>) -> Vec<String> {
    if FLEXIBLE_ARRAY_STRUCTS.contains(&info.name) {
        return Vec::new();
    }
    let mut derives = vec![
        "::zerocopy::FromBytes".to_owned(),
        "::zerocopy::Immutable".to_owned(),
        "::zerocopy::KnownLayout".to_owned(),
    ];
    if info.kind == TypeKind::Struct
        && !PADDED_STRUCTS.contains(&info.name)
        && !UNION_HOLDING_STRUCTS.contains(&info.name)
    {
        derives.push("::zerocopy::IntoBytes".to_owned());
    }
    derives
}

impl ParseCallbacks for SharedCallbacks {
    fn int_macro(&self, name: &str, value: i64) -> Option<IntKind> {
        self.0.int_macro(name, value)
    }

    fn add_derives(&self, info: &DeriveInfo<'_>) -> Vec<String> {
        zerocopy_derives(info)
    }
}

/// Whether libclang can be loaded (as bindgen would load it, honouring `LIBCLANG_PATH`).
///
/// bindgen panics when it cannot; this turns that into a value.
pub fn libclang_available() -> bool {
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let ok = panic::catch_unwind(bindgen::clang_version).is_ok();
    panic::set_hook(hook);
    ok
}

/// The preamble that starts every generated file.
///
/// It names the targets the file is for: every target sharing the snapshot directory of
/// `target` when it has one (so that the build-time bindings of a snapshot target are the
/// snapshot's bytes), else `target` alone.
fn preamble(include_dir: &Path, header: Header, target: &str) -> Result<String, Error> {
    let mut p = String::new();
    p.push_str(
        "// @generated by fuse-kernel-sys/build/bindgen_config.rs (the one bindgen configuration)\n",
    );
    p.push_str(&format!(
        "// with bindgen {}. DO NOT EDIT.\n",
        bindgen_version()
    ));
    p.push_str("//\n// Source headers (fuse-kernel-sys/include/), SHA-256:\n");
    let mut sources: Vec<&str> = header.sources().to_vec();
    sources.push(IOCTL_SHIM);
    for src in sources {
        let bytes =
            fs::read(include_dir.join(src)).map_err(|e| Error::Io(include_dir.join(src), e))?;
        let digest = Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        p.push_str(&format!("//   {hex}  {src}\n"));
    }
    match snapshot_target(target) {
        Some(t) => {
            p.push_str(&format!(
                "// Snapshot `{}`, generated alike for each of these targets:\n",
                t.snapshot
            ));
            for t in snapshot_targets(t.snapshot) {
                p.push_str(&format!("//   {}\n", t.rust));
            }
        }
        None => p.push_str(&format!("// Target: {target}\n")),
    }
    p.push_str("//\n// Regenerate the committed snapshots with `cargo xtask regen-bindings`;\n");
    p.push_str("// check them with `cargo xtask regen-bindings --check`.\n\n");
    Ok(p)
}

/// The ioctl encoding header the generator reads instead of the system's `<linux/ioctl.h>`
/// (relative to `include/`).
pub const IOCTL_SHIM: &str = "uapi/linux/ioctl.h";

/// The bindgen release series this configuration is written for (the exact version of a
/// committed snapshot is the one in the workspace's `Cargo.lock`).
pub fn bindgen_version() -> &'static str {
    "0.73"
}

/// Generates the Rust bindings of one header for `target` (a Rust/clang target triple).
///
/// `include_dir` is `fuse-kernel-sys/include`. `scratch_dir` receives the temporary files of
/// clang's macro evaluation (for example `OUT_DIR`); it must exist.
///
/// Fails with [`Error::LibclangMissing`] when libclang cannot be loaded, with
/// [`Error::Bindgen`] on a clang error, and with [`Error::MissingItems`] when the output lacks
/// an item of the header.
pub fn generate(
    include_dir: &Path,
    header: Header,
    target: &str,
    scratch_dir: &Path,
) -> Result<String, Error> {
    if !libclang_available() {
        return Err(Error::LibclangMissing);
    }
    // clang before 16 does not know loongarch64 and bindgen would panic on it.
    if target.starts_with("loongarch") {
        let version = bindgen::clang_version();
        if version.parsed.is_some_and(|(major, _)| major < 16) {
            return Err(Error::ClangTooOld {
                target: target.to_owned(),
                needs: 16,
                found: version.full,
            });
        }
    }
    let header_path = include_dir.join(header.file_name());
    let header_text = read(&header_path)?;
    let expected = expected_items(&header_text);
    let c_types = macro_c_types(include_dir, header, target, scratch_dir, &expected.macros)?;
    let types = Arc::new(MacroTypes {
        use_types: Some(c_types),
        ..MacroTypes::default()
    });
    let header_str = header_path.to_string_lossy().into_owned();
    let builder = bindgen::Builder::default()
        .header(header_str.clone())
        .clang_args(clang_args(include_dir, target))
        .allowlist_file(regex_escape(&header_str))
        .use_core()
        .ctypes_prefix("::core::ffi")
        .default_enum_style(bindgen::EnumVariation::Consts)
        .prepend_enum_name(false)
        .default_macro_constant_type(bindgen::MacroTypeVariation::Unsigned)
        .derive_debug(true)
        .derive_default(true)
        .derive_copy(true)
        .derive_hash(true)
        .derive_partialeq(true)
        .derive_eq(true)
        .layout_tests(true)
        .generate_comments(false)
        .clang_macro_fallback()
        .clang_macro_fallback_build_dir(scratch_dir)
        .parse_callbacks(Box::new(SharedCallbacks(types.clone())))
        .formatter(bindgen::Formatter::Prettyplease)
        // The workspace's rust-version; 1.85 is far above bindgen's earliest target.
        .rust_target(bindgen::RustTarget::stable(85, 0).unwrap_or_default())
        .rust_edition(bindgen::RustEdition::Edition2024);
    let bindings = builder.generate().map_err(|e| Error::Bindgen(header, e))?;
    let rust = bindings.to_string();
    let mut missing = missing_items(&expected, &rust);
    if let Ok(unknown) = types.unknown.lock() {
        // A macro of an included system header would land here; ours must all be typed.
        missing.extend(
            unknown
                .iter()
                .filter(|m| expected.macros.contains(m))
                .map(|m| format!("C type of macro {m}")),
        );
    }
    if !missing.is_empty() {
        return Err(Error::MissingItems(header, missing));
    }
    let rust = add_docs(&rust, &header_docs(&header_text));
    Ok(preamble(include_dir, header, target)? + &rust)
}

/// The clang arguments of every generation: the target, and only our headers plus clang's
/// own (`stddef.h`, `stdint.h`): no system include directory, so the output does not depend
/// on the machine, and any target can be generated anywhere.
fn clang_args(include_dir: &Path, target: &str) -> Vec<String> {
    vec![
        format!("--target={}", clang_target(target)),
        "-ffreestanding".to_owned(),
        "-nostdlibinc".to_owned(),
        format!("-I{}", include_dir.display()),
        format!("-isystem{}", include_dir.join("uapi").display()),
        "-std=gnu11".to_owned(),
    ]
}

/// The comments of a header, by the item they document: `NAME` for a struct, enum value or
/// macro, `struct.field` for a field of a struct (direct members only).
///
/// A comment documents an item when it ends on the line just above it (a blank line or any
/// other code in between detaches it) or when it follows the item on the item's own line;
/// a comment that does both is used whole. Lines of dashes (section banners) are dropped.
/// Clang's own comment attachment is not used: it would give a trailing `/* ... */` to the
/// *next* declaration, and it never documents macros.
pub fn header_docs(text: &str) -> BTreeMap<String, Vec<String>> {
    fn clean(comment: &str) -> Vec<String> {
        let body = comment
            .trim()
            .trim_start_matches("/*")
            .trim_end_matches("*/");
        body.lines()
            .map(|l| {
                let l = l.trim();
                let l = l.strip_prefix('*').unwrap_or(l);
                l.trim().to_owned()
            })
            .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '-' || c == '='))
            .collect()
    }
    let mut docs = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    let mut pending: Vec<String> = Vec::new();
    let mut current_struct: Option<String> = None;
    let mut depth = 0usize;
    let mut in_enum = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        i += 1;
        if trimmed.is_empty() {
            pending.clear();
            continue;
        }
        if trimmed.starts_with("/*") {
            // A comment on lines of its own (maybe several).
            let mut comment = String::from(trimmed);
            while !comment.contains("*/") && i < lines.len() {
                comment.push('\n');
                comment.push_str(lines[i]);
                i += 1;
            }
            pending = clean(&comment);
            continue;
        }
        // A code line, maybe with a trailing comment (which may continue on the next lines).
        let (code, trailing) = match line.find("/*") {
            Some(at) => {
                let mut comment = String::from(&line[at..]);
                while !comment.contains("*/") && i < lines.len() {
                    comment.push('\n');
                    comment.push_str(lines[i]);
                    i += 1;
                }
                (&line[..at], clean(&comment))
            }
            None => (line, Vec::new()),
        };
        let code = code.trim();
        let mut doc = std::mem::take(&mut pending);
        doc.extend(trailing);
        let name: Option<String> = if let Some(def) = code.strip_prefix("#define") {
            let def = def.trim_start();
            let end = def
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(def.len());
            Some(def[..end].to_owned())
        } else if let Some(name) = code
            .strip_prefix("struct ")
            .and_then(|r| r.strip_suffix('{'))
            .map(str::trim)
            .filter(|n| is_ident(n) && depth == 0)
        {
            current_struct = Some(name.to_owned());
            Some(name.to_owned())
        } else if code.starts_with("enum ") && code.ends_with('{') && depth == 0 {
            in_enum = true;
            None
        } else if in_enum {
            let value = code.split(['=', ',']).next().unwrap_or("").trim();
            is_ident(value).then(|| value.to_owned())
        } else if let (Some(s), 1) = (&current_struct, depth) {
            // `type name;` or `type name[N];` (direct members only).
            code.strip_suffix(';')
                .map(|d| d.split('[').next().unwrap_or(d))
                .and_then(|d| d.split_whitespace().last())
                .filter(|n| is_ident(n))
                .map(|n| format!("{s}.{n}"))
        } else {
            None
        };
        for c in code.chars() {
            match c {
                '{' => depth += 1,
                '}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        if depth == 0 {
            current_struct = None;
            in_enum = false;
        }
        if let Some(name) = name {
            if !doc.is_empty() {
                docs.insert(name, doc);
            }
        }
    }
    docs
}

/// Puts the header's comments ([`header_docs`]) on the generated items as `#[doc]`
/// attributes: structs, their direct fields, and constants (macros and enum values).
fn add_docs(rust: &str, docs: &BTreeMap<String, Vec<String>>) -> String {
    let mut out = String::with_capacity(rust.len() + rust.len() / 4);
    let mut current_struct: Option<String> = None;
    let attrs = |indent: &str, lines: &[String], out: &mut String| {
        for l in lines {
            out.push_str(&format!("{indent}#[doc = {:?}]\n", format!(" {l}")));
        }
    };
    for line in rust.lines() {
        let item = |prefix: &str| {
            line.strip_prefix(prefix).map(|r| {
                r.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
        };
        if let Some(name) = item("pub struct ") {
            if let Some(d) = docs.get(&name) {
                attrs("", d, &mut out);
            }
            current_struct = line.ends_with('{').then_some(name);
        } else if let Some(name) = item("pub const ") {
            if let Some(d) = docs.get(&name) {
                attrs("", d, &mut out);
            }
        } else if line == "}" {
            current_struct = None;
        } else if let (Some(s), Some(field)) = (&current_struct, item("    pub ")) {
            if let Some(d) = docs.get(&format!("{s}.{field}")) {
                attrs("    ", d, &mut out);
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('^');
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('$');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
#ifndef GUARD_H
#define GUARD_H
/* #define NOT_A_MACRO 1 */
#define ONE 1 /* one */
#define FUNC(x) ((x) + 1)
#define LONG_ONE \\
\t(1ULL << 40)
struct a {
\tint x; /* struct not_a_struct { */
};
enum e {
\tE_A = 1, /* E_NOT, */
\tE_B,
\tE_C = 3,
};
#endif
";

    #[test]
    fn expected_items_are_read_from_the_text() {
        let items = expected_items(SAMPLE);
        assert_eq!(items.structs, ["a"]);
        assert_eq!(
            items.enum_values,
            [("e", "E_A"), ("e", "E_B"), ("e", "E_C")].map(|(a, b)| (a.to_owned(), b.to_owned()))
        );
        assert_eq!(items.macros, ["ONE", "LONG_ONE"]);
    }

    #[test]
    fn missing_items_are_named() {
        let items = expected_items(SAMPLE);
        let rust = "pub struct a { }\npub const E_A: e = 1;\npub const E_C: e = 3;\n\
                    pub const ONE_AND_MORE: u32 = 1;\npub const LONG_ONE: u64 = 0;\n";
        assert_eq!(missing_items(&items, rust), ["enum e::E_B", "macro ONE"]);
    }

    #[test]
    fn header_docs_attach_leading_and_same_line_comments() {
        let text = "/* ------\n * Section\n * ------ */\n\n/* Leading of s. */\nstruct s {\n\
                    \tuint32_t a;\t/* trailing of a */\n\tuint32_t b;\n\
                    \tuint32_t c;\t/* first\n\t\t\t * second */\n};\n\
                    #define M 1 /* of M */\nenum e {\n\tE_A = 1, /* of E_A */\n};\n";
        let d = header_docs(text);
        assert_eq!(d["s"], ["Leading of s."]);
        assert_eq!(d["s.a"], ["trailing of a"]);
        // The trailing comment of `a` is not `b`'s (clang's attachment would give it to b).
        assert!(!d.contains_key("s.b"));
        assert_eq!(d["s.c"], ["first", "second"]);
        assert_eq!(d["M"], ["of M"]);
        assert_eq!(d["E_A"], ["of E_A"]);
        let rust = "pub struct s {\n    pub a: u32,\n    pub b: u32,\n}\npub const M: u32 = 1;\n";
        assert_eq!(
            add_docs(rust, &d),
            "#[doc = \" Leading of s.\"]\npub struct s {\n    #[doc = \" trailing of a\"]\n    \
             pub a: u32,\n    pub b: u32,\n}\n#[doc = \" of M\"]\npub const M: u32 = 1;\n"
        );
    }

    #[test]
    fn regex_escape_anchors_and_escapes() {
        assert_eq!(regex_escape("/a.b/c+d.h"), "^/a\\.b/c\\+d\\.h$");
    }
}
