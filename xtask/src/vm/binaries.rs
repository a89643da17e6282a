//! Test binaries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Options, TEST_BINARIES};

pub(super) struct TestBinary {
    /// `<package>/<test target>`.
    pub(super) label: String,
    pub(super) executable: PathBuf,
}

pub(super) struct Tests {
    pub(super) binaries: Vec<TestBinary>,
    /// Other executables the tests start by their absolute path (the example server).
    pub(super) helpers: Vec<PathBuf>,
}

/// Builds the kernel-test binaries with `cargo test --no-run` and collects their paths from
/// cargo's JSON messages.
pub(super) fn build_tests(root: &Path, opts: &Options) -> Result<Tests, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root).args([
        "test",
        "--no-run",
        "--no-default-features",
        "--message-format=json-render-diagnostics",
    ]);
    let mut packages: Vec<&str> = TEST_BINARIES.iter().map(|(p, _)| *p).collect();
    packages.dedup();
    for p in &packages {
        cmd.args(["-p", p]);
    }
    println!("vm-test: building the kernel tests: {cmd:?}");
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!("building the kernel tests failed: {}", out.status));
    }
    let mut binaries = Vec::new();
    let mut helpers = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let Some(exe) = msg["executable"].as_str() else {
            continue;
        };
        let target = msg["target"]["name"].as_str().unwrap_or("");
        let kinds: Vec<&str> = msg["target"]["kind"]
            .as_array()
            .map(|a| a.iter().filter_map(|k| k.as_str()).collect())
            .unwrap_or_default();
        let package = msg["package_id"]
            .as_str()
            .and_then(package_name)
            .unwrap_or_default();
        if kinds.contains(&"bin") && package == "passthroughfs" {
            helpers.push(PathBuf::from(exe));
        }
        if kinds.contains(&"test") && TEST_BINARIES.contains(&(package.as_str(), target)) {
            let label = format!("{package}/{target}");
            let selected =
                opts.bins.is_empty() || opts.bins.iter().any(|b| label.contains(b.as_str()));
            if selected {
                binaries.push(TestBinary {
                    label,
                    executable: PathBuf::from(exe),
                });
            }
        }
    }
    // In the order of TEST_BINARIES.
    binaries.sort_by_key(|b| {
        TEST_BINARIES
            .iter()
            .position(|(p, t)| b.label == format!("{p}/{t}"))
    });
    for (p, t) in TEST_BINARIES {
        let label = format!("{p}/{t}");
        if !binaries.iter().any(|b| b.label == label)
            && (opts.bins.is_empty() || opts.bins.iter().any(|b| label.contains(b.as_str())))
        {
            return Err(format!("cargo built no test binary {label}"));
        }
    }
    if helpers.is_empty() {
        return Err("cargo built no passthroughfs binary".into());
    }
    Ok(Tests { binaries, helpers })
}

/// The package name in a cargo package id (`path+file:///x/fuse-uring#0.1.0` or
/// `path+file:///x/y#fuse-backing@0.1.0`).
pub(super) fn package_name(id: &str) -> Option<String> {
    let (path, frag) = id.rsplit_once('#')?;
    match frag.split_once('@') {
        Some((name, _)) => Some(name.to_owned()),
        None => Some(path.rsplit('/').next()?.to_owned()),
    }
}
