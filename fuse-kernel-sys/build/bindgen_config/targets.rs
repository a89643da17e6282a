//! The targets: the snapshot targets and their directories, clang's spelling of a target,
//! loading libclang, and the clang arguments of a generation.

use std::panic;
use std::path::Path;

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

/// The clang arguments of every generation: the target, and only our headers plus clang's
/// own (`stddef.h`, `stdint.h`): no system include directory, so the output does not depend
/// on the machine, and any target can be generated anywhere.
pub(super) fn clang_args(include_dir: &Path, target: &str) -> Vec<String> {
    vec![
        format!("--target={}", clang_target(target)),
        "-ffreestanding".to_owned(),
        "-nostdlibinc".to_owned(),
        format!("-I{}", include_dir.display()),
        format!("-isystem{}", include_dir.join("uapi").display()),
        "-std=gnu11".to_owned(),
    ]
}
