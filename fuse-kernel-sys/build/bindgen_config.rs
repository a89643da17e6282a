//! The one bindgen configuration of `fuse-kernel-sys`.
//!
//! This file and its submodules in `bindgen_config/` ship in the `fuse-kernel-sys` package and
//! are compiled into its build script with `#[path]`; the workspace's unpublished
//! `build-support` crate includes the same file for the tools. Two callers use it and nothing else configures bindgen:
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
//!
//! Where things are: this file holds [`generate`], the preamble, [`Header`] and [`Error`];
//! `targets.rs` the targets and clang's arguments; `header_text.rs` what is read from the
//! header's text; `macro_types.rs` the typing of integer macros; `callbacks.rs` the bindgen
//! callbacks and derives. The submodules are named with explicit `#[path]`s, which resolve
//! alike whichever crate includes this file.

#[path = "bindgen_config/callbacks.rs"]
mod callbacks;
#[path = "bindgen_config/header_text.rs"]
mod header_text;
#[path = "bindgen_config/macro_types.rs"]
mod macro_types;
#[path = "bindgen_config/targets.rs"]
mod targets;

pub use header_text::{ExpectedItems, expected_items, header_docs, is_ident, strip_comments};
pub use macro_types::{CIntType, MACRO_RUST_TYPES, UNEVALUABLE_MACROS};
pub use targets::{
    ENV_VARS, TARGETS, Target, clang_target, libclang_available, snapshot_dirs, snapshot_target,
    snapshot_targets,
};

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use callbacks::SharedCallbacks;
use header_text::{add_docs, missing_items};
use macro_types::{MacroTypes, macro_c_types};
use targets::clang_args;

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

fn read(path: &Path) -> Result<String, Error> {
    fs::read_to_string(path).map_err(|e| Error::Io(path.to_owned(), e))
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

    #[test]
    fn regex_escape_anchors_and_escapes() {
        assert_eq!(regex_escape("/a.b/c+d.h"), "^/a\\.b/c\\+d\\.h$");
    }
}
