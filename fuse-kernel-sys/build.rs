//! Build script of fuse-kernel-sys.
//!
//! With the `bindgen` feature (default) it generates the bindings of `include/*.h` into
//! `OUT_DIR` through `build/bindgen_config.rs`, the one bindgen configuration (the same file
//! `cargo xtask regen-bindings` uses for the committed snapshot). Without it, it does nothing
//! but tell cargo what to watch: `src/lib.rs` then includes the committed snapshot from
//! `src/generated/`. It never writes into `src/`.

#[cfg(feature = "bindgen")]
use std::env;
#[cfg(feature = "bindgen")]
use std::path::PathBuf;

// The build script uses only part of the configuration's API (the rest serves xtask).
#[cfg(feature = "bindgen")]
#[allow(dead_code, unreachable_pub, unused_imports)]
#[path = "build/bindgen_config.rs"]
mod build_support;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "bindgen")]
    {
        println!("cargo:rerun-if-changed=build/bindgen_config.rs");
        println!("cargo:rerun-if-changed=build/bindgen_config");
        let manifest_dir = PathBuf::from(
            env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
        );
        generate(&manifest_dir);
    }
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
    println!(
        "cargo:rerun-if-changed={}",
        include_dir.join(build_support::IOCTL_SHIM).display()
    );
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
