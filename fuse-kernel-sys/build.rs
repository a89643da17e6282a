//! Build script of fuse-kernel-sys.
//!
//! With the `bindgen` feature (default) it generates the bindings of `include/*.h` into
//! `OUT_DIR` through `build-support`, the one bindgen configuration of the workspace. Without
//! it, it does nothing but tell cargo what to watch: `src/lib.rs` then includes the committed
//! snapshot from `src/generated/`. It never writes into `src/`.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    // Lets dependents find the headers (`DEP_FUSE_KERNEL_INCLUDE`), e.g. for C probes.
    println!("cargo:include={}", manifest_dir.join("include").display());
    #[cfg(feature = "bindgen")]
    generate(&manifest_dir);
}

#[cfg(feature = "bindgen")]
fn generate(manifest_dir: &std::path::Path) {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let include_dir = manifest_dir.join("include");

    println!("cargo:rerun-if-env-changed=TARGET");
    for var in build_support::ENV_VARS {
        println!("cargo:rerun-if-env-changed={var}");
        println!("cargo:rerun-if-env-changed={var}_{target}");
        println!(
            "cargo:rerun-if-env-changed={var}_{}",
            target.replace('-', "_")
        );
    }
    for header in build_support::Header::ALL {
        for src in header.sources() {
            println!("cargo:rerun-if-changed={}", include_dir.join(src).display());
        }
    }
    for header in build_support::Header::ALL {
        match build_support::generate(&include_dir, header, &target, &out_dir) {
            Ok(rust) => {
                let path = out_dir.join(header.output_name());
                if let Err(e) = std::fs::write(&path, rust) {
                    fail(&format!("cannot write {}: {e}", path.display()));
                }
            }
            Err(e) => fail(&e.to_string()),
        }
    }
}

#[cfg(feature = "bindgen")]
fn fail(message: &str) -> ! {
    for line in message.lines() {
        println!("cargo:warning={line}");
    }
    eprintln!("error: fuse-kernel-sys: {message}");
    std::process::exit(1);
}
