//! `cargo xtask cross-check [TRIPLE...]`: every snapshot target of fuse-kernel-sys, checked on
//! this machine although its binaries cannot run here.
//!
//! For each target (default: all of `build_support::TARGETS`):
//! 1. `cargo check --target T -p fuse-kernel-sys -p abi-tests --no-default-features` with
//!    `FUSE_ABI_UAPI_ROOT` set: the committed snapshot of T compiles with bindgen's layout
//!    assertions, and abi-tests' build script has clang compute every size, alignment, field
//!    offset, signedness and constant of `fuse_kernel.h` / `fuse_iomap.h` for T against T's
//!    own uapi headers (Debian's `linux-libc-dev-<arch>-cross`), asserted at compile time
//!    against the Rust items;
//! 2. `cargo check --target T` of the published crates above fuse-kernel-sys.
//!
//! The uapi headers are downloaded with apt-get into `target/uapi-cross/` through a private
//! sources list and state directory (the machine's apt configuration is not touched), unless
//! `FUSE_ABI_UAPI_ROOT` already points at unpacked packages. Rust targets without a prebuilt
//! standard library are checked with nightly `-Z build-std`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{run, workspace_root};

/// Where Debian's uapi headers for other architectures come from (the suite with every
/// architecture of `TARGETS`, loong64 included).
const DEBIAN_SUITE: &str = "sid";

/// Targets for which rustup has no prebuilt standard library.
const BUILD_STD: &[&str] = &["mips64el-unknown-linux-gnuabi64"];

/// The published crates above fuse-kernel-sys that are meant to build on every target.
const UPPER: &[&str] = &["fuse-backing", "fuse-wire", "fuse-dev"];

/// Targets where rustix (1.1.6, under nightly -Z build-std) does not compile, so no crate above
/// fuse-kernel-sys can: mips64el (its signal table names SIGEMT, which libc lacks there).
const NO_RUSTIX: &[&str] = &["mips64el-unknown-linux-gnuabi64"];

/// The targets where fuse-uring is meant to build: those for which the io-uring crate ships
/// prebuilt bindings (elsewhere it refuses to compile, with its own message).
const URING_TARGETS: &[&str] = &[
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "riscv64gc-unknown-linux-gnu",
    "loongarch64-unknown-linux-gnu",
    "powerpc64le-unknown-linux-gnu",
    "powerpc64-unknown-linux-gnu",
];

pub(crate) fn cross_check(only: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let targets: Vec<&build_support::Target> = build_support::TARGETS
        .iter()
        .filter(|t| only.is_empty() || only.iter().any(|o| o == t.rust))
        .collect();
    if let Some(unknown) = only
        .iter()
        .find(|o| build_support::snapshot_target(o).is_none())
    {
        return Err(format!("{unknown} is not a snapshot target (TARGETS)"));
    }
    if !build_support::libclang_available() {
        return Err("libclang is needed (apt-get install libclang-19-dev)".into());
    }
    let uapi = match std::env::var_os("FUSE_ABI_UAPI_ROOT") {
        Some(dir) => PathBuf::from(dir),
        None => fetch_uapi_headers(&root)?,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut failed = Vec::new();
    let mut summary = Vec::new();
    for t in targets {
        let started = Instant::now();
        // A prebuilt standard library where rustup has one (its download may also be
        // missing on a mirror); nightly -Z build-std otherwise.
        let build_std = BUILD_STD.contains(&t.rust)
            || (!installed(t.rust)
                && run(Command::new("rustup").args(["target", "add", t.rust])).is_err());
        if build_std {
            println!(
                "xtask: {}: no prebuilt standard library; nightly -Z build-std",
                t.rust
            );
            crate::ensure_nightly(&["rust-src"])?;
        }
        let check = |packages: &[&str], extra: &[&str]| {
            // Through rustup's proxy for nightly; the running toolchain's cargo otherwise.
            let mut cmd = if build_std {
                let mut c = Command::new("cargo");
                c.arg("+nightly");
                c
            } else {
                Command::new(&cargo)
            };
            cmd.current_dir(&root)
                .env("FUSE_ABI_UAPI_ROOT", &uapi)
                .args(["check", "--quiet", "--target", t.rust]);
            if build_std {
                cmd.args(["-Z", "build-std=std,panic_abort"]);
            }
            for p in packages {
                cmd.args(["-p", p]);
            }
            cmd.args(extra);
            run(&mut cmd)
        };
        let abi = check(
            &["fuse-kernel-sys", "abi-tests"],
            &["--no-default-features"],
        );
        let upper_present: Vec<&str> = UPPER
            .iter()
            .copied()
            .filter(|p| root.join(p).join("Cargo.toml").exists())
            .collect();
        let upper = if NO_RUSTIX.contains(&t.rust) {
            None
        } else {
            Some(check(&upper_present, &[]))
        };
        let uring = URING_TARGETS
            .contains(&t.rust)
            .then(|| check(&["fuse-uring"], &[]));
        let secs = started.elapsed().as_secs();
        let verdict = |r: &Result<(), String>| if r.is_ok() { "ok" } else { "FAILED" };
        summary.push(format!(
            "| {} | {} | {} | {} | {} | {secs} s |",
            t.rust,
            t.snapshot,
            verdict(&abi),
            upper
                .as_ref()
                .map_or("n/a (rustix does not build there)", verdict),
            uring.as_ref().map_or("n/a (no io-uring bindings)", verdict)
        ));
        if abi.is_err()
            || upper.as_ref().is_some_and(Result::is_err)
            || uring.as_ref().is_some_and(Result::is_err)
        {
            failed.push(t.rust);
        }
    }
    println!(
        "\n| target | snapshot | fuse-kernel-sys + C cross-check | {} | fuse-uring | time |",
        UPPER.join(", ")
    );
    println!("|---|---|---|---|---|---:|");
    for line in &summary {
        println!("{line}");
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("cross-check failed for: {}", failed.join(", ")))
    }
}

fn installed(target: &str) -> bool {
    Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == target)
        })
}

/// Downloads and unpacks `linux-libc-dev-<arch>-cross` of every target (and
/// `linux-libc-dev`, which holds the per-architecture files they link to) into
/// `target/uapi-cross/root`, with a private apt state. Returns that root.
fn fetch_uapi_headers(root: &Path) -> Result<PathBuf, String> {
    let base = root.join("target").join("uapi-cross");
    let unpacked = base.join("root");
    let want: Vec<String> = build_support::TARGETS
        .iter()
        .map(|t| t.debian_triple)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|triple| format!("usr/{triple}/include/asm/ioctl.h"))
        .collect();
    if want.iter().all(|f| unpacked.join(f).exists()) {
        return Ok(unpacked);
    }
    if !Path::new("/usr/bin/apt-get").exists() {
        return Err("apt-get is needed to fetch Debian's uapi headers, or set \
                    FUSE_ABI_UAPI_ROOT to unpacked linux-libc-dev-<arch>-cross packages"
            .into());
    }
    for dir in ["lists/partial", "archives/partial", "cache", "etc", "debs"] {
        std::fs::create_dir_all(base.join(dir)).map_err(|e| e.to_string())?;
    }
    let sources = base.join("etc").join("sources.list");
    std::fs::write(
        &sources,
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {DEBIAN_SUITE} main\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(base.join("debs"))
            .arg("-q")
            .arg(format!("-o=Dir::Etc::sourcelist={}", sources.display()))
            .arg("-o=Dir::Etc::sourceparts=-")
            .arg(format!(
                "-o=Dir::State::lists={}",
                base.join("lists").display()
            ))
            .arg(format!("-o=Dir::Cache={}", base.join("cache").display()))
            .arg(format!(
                "-o=Dir::Cache::archives={}",
                base.join("archives").display()
            ))
            .arg("-o=APT::Sandbox::User=root")
            .args(args);
        run(&mut cmd)
    };
    apt(&["update"])?;
    let mut packages: Vec<String> = build_support::TARGETS
        .iter()
        .map(|t| format!("linux-libc-dev-{}-cross", t.debian_arch))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    packages.push("linux-libc-dev".into());
    let mut args = vec!["download"];
    args.extend(packages.iter().map(String::as_str));
    apt(&args)?;
    for entry in std::fs::read_dir(base.join("debs")).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "deb") {
            run(Command::new("dpkg-deb").arg("-x").arg(&path).arg(&unpacked))?;
        }
    }
    match want.iter().find(|f| !unpacked.join(f).exists()) {
        Some(missing) => Err(format!("{missing} is missing after unpacking")),
        None => Ok(unpacked),
    }
}
