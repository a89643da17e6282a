//! `cargo xtask vm-test`: the kernel tests inside virtual machines running Debian's kernels.
//!
//! For each kernel asked for (6.1 from bookworm, 6.12 from trixie, 7.2 from sid, 7.3 from
//! experimental) it:
//! 1. finds the newest `linux-image-<version>-amd64` package of the suite through a private
//!    apt configuration under `target/vm-test/apt/<suite>` (the machine's own apt sources,
//!    lists and caches are not touched), downloads it (and, for the split packages of newer
//!    suites, its `linux-binary-*` and `linux-modules-*`), and extracts only the kernel image,
//!    its config, `modules.builtin` and `fuse.ko*` into `target/vm-test/kernels/`;
//! 2. packs the kernel-test binaries (built once, by `cargo test --no-run`), the example
//!    server, the workspace sources (the example's mirror test mirrors them), their shared
//!    libraries, busybox and a generated `/init` into an initramfs (newc cpio, written here);
//! 3. boots it with `qemu-system-x86_64` (TCG, serial console), where `/init` loads `fuse.ko`
//!    if FUSE is a module, switches `enable_uring` on where the kernel has it, runs every test
//!    binary as root with `FUSE_TESTS_REQUIRE_KERNEL=1`, and powers off;
//! 4. reads the console: `@@VM` markers around each binary, its exit code, the libtest summary
//!    line, and the tests' "not applicable on this kernel" lines; a guest that does not finish
//!    in time is killed and reported as hung.
//!
//! The matrix (test binary x kernel) is printed and written to `target/vm-test/results.md`
//! and `results.json`; each console log stays in `target/vm-test/<kernel>/console.log`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

mod binaries;
mod boot;
mod initramfs;
mod kernels;
mod matrix;
mod tools;

use binaries::build_tests;
use boot::{KernelRun, boot};
use initramfs::pack_initramfs;
use kernels::fetch_kernel;
use matrix::{matrix_json, matrix_markdown};
use tools::ensure_tools;

/// A kernel of the matrix: its short name and the Debian suite it comes from.
struct KernelSpec {
    name: &'static str,
    suite: &'static str,
}

const KERNELS: [KernelSpec; 4] = [
    KernelSpec {
        name: "6.1",
        suite: "bookworm",
    },
    KernelSpec {
        name: "6.12",
        suite: "trixie",
    },
    KernelSpec {
        name: "7.2",
        suite: "sid",
    },
    KernelSpec {
        name: "7.3",
        suite: "experimental",
    },
];

/// The kernel-test binaries: (package, integration-test target). Not here: passthroughfs's
/// `harden`, fuse-session's `hello` and fuse-dev's `unprivileged`, which need `useradd`, `setpriv`,
/// `prlimit` and `fusermount3` (the guest has busybox only).
const TEST_BINARIES: [(&str, &str); 16] = [
    ("abi-tests", "live_kernel"),
    ("testkit", "memfs_mount"),
    ("testkit", "leak_check"),
    ("fuse-dev", "channel"),
    ("fuse-dev", "mount"),
    ("fuse-dev", "leaks"),
    ("fuse-backing", "kernel"),
    ("fuse-backing", "leaks"),
    ("fuse-uring", "kernel"),
    ("fuse-uring", "faults"),
    ("fuse-uring", "device"),
    ("fuse-uring", "pool"),
    ("fuse-session", "serve"),
    ("passthroughfs", "mirror"),
    ("passthroughfs", "faults"),
    ("passthroughfs", "uring_off"),
];
/// The line prefix of the guest's markers on the console.
const MARK: &str = "@@VM ";

/// What the tests print (through `testkit::kernel`) for a test that does not apply.
const NOT_APPLICABLE: &str = "not applicable on this kernel";

const USAGE: &str = "usage: cargo xtask vm-test [--kernel 6.1|6.12|7.2|7.3|all|LIST] [--filter TEST] \
[--bins LIST] [--timeout SECONDS] [--memory MIB]";

struct Options {
    kernels: Vec<&'static KernelSpec>,
    filter: Option<String>,
    bins: Vec<String>,
    /// Limit for one test binary inside the guest.
    binary_timeout: u64,
    memory_mib: u32,
}

fn parse(args: &[&str]) -> Result<Options, String> {
    let mut opts = Options {
        kernels: KERNELS.iter().collect(),
        filter: None,
        bins: Vec::new(),
        binary_timeout: 900,
        memory_mib: 2048,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .map(|v| v.to_string())
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match *arg {
            "--kernel" => {
                let v = value()?;
                opts.kernels = if v == "all" {
                    KERNELS.iter().collect()
                } else {
                    v.split(',')
                        .map(|k| {
                            KERNELS.iter().find(|s| s.name == k).ok_or_else(|| {
                                format!("--kernel {k}: expected 6.1, 6.12, 7.2, 7.3 or all")
                            })
                        })
                        .collect::<Result<_, _>>()?
                };
            }
            "--filter" => opts.filter = Some(value()?),
            "--bins" => opts.bins = value()?.split(',').map(str::to_owned).collect(),
            "--timeout" => {
                opts.binary_timeout = value()?
                    .parse()
                    .map_err(|_| format!("--timeout: expected whole seconds\n{USAGE}"))?;
            }
            "--memory" => {
                opts.memory_mib = value()?
                    .parse()
                    .map_err(|_| format!("--memory: expected MiB\n{USAGE}"))?;
            }
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(opts)
}

pub(crate) fn vm_test(root: &Path, args: &[&str]) -> Result<(), String> {
    let opts = parse(args)?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let work = target.join("vm-test");
    fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;

    let tools = ensure_tools()?;
    let tests = build_tests(root, &opts)?;
    if tests.binaries.is_empty() {
        return Err(format!("--bins {:?} matches no test binary", opts.bins));
    }

    let mut results = Vec::new();
    for spec in &opts.kernels {
        println!("\nvm-test: kernel {} (Debian {})", spec.name, spec.suite);
        let started = Instant::now();
        let result = fetch_kernel(&work, spec).and_then(|kernel| {
            println!(
                "vm-test: {} {} (release {}), FUSE {}",
                kernel.package,
                kernel.version,
                kernel.release,
                match &kernel.fuse_module {
                    Some(m) => format!("is a module ({})", m.display()),
                    None => "is built in".into(),
                }
            );
            let dir = work.join(spec.name);
            fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let initramfs = dir.join("initramfs.cpio");
            pack_initramfs(root, &tools, &tests, &kernel, &opts, &initramfs)?;
            boot(&tools, spec, kernel, &initramfs, &dir, &opts, &tests)
        });
        match result {
            Ok(run) => results.push(run),
            Err(e) => {
                eprintln!("vm-test: kernel {}: {e}", spec.name);
                results.push(KernelRun::failed(spec, e, started.elapsed()));
            }
        }
    }

    let labels: Vec<String> = tests.binaries.iter().map(|b| b.label.clone()).collect();
    let markdown = matrix_markdown(&results, &labels);
    println!("\n{markdown}");
    let json = matrix_json(&results);
    fs::write(work.join("results.md"), &markdown)
        .and_then(|()| fs::write(work.join("results.json"), json))
        .map_err(|e| format!("cannot write results to {}: {e}", work.display()))?;
    println!(
        "vm-test: wrote {} and {}",
        work.join("results.md").display(),
        work.join("results.json").display()
    );
    let bad: Vec<String> = results
        .iter()
        .flat_map(|k| {
            let mut v: Vec<String> = k
                .binaries
                .iter()
                .filter(|b| !b.status.is_ok())
                .map(|b| format!("{} on {}: {}", b.label, k.name, b.status.word()))
                .collect();
            if let Some(e) = &k.error {
                v.push(format!("kernel {}: {e}", k.name));
            }
            v
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "vm-test: not everything passed:\n  {}",
            bad.join("\n  ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::binaries::package_name;
    use super::boot::parse_summary;
    use super::initramfs::write_cpio_entry;
    use super::kernels::{image_version, version_key};

    #[test]
    fn image_names_match_their_series_only() {
        assert_eq!(
            image_version("linux-image-6.1.0-50-amd64", "6.1"),
            Some("6.1.0-50")
        );
        assert_eq!(
            image_version("linux-image-6.1.0-50-amd64-unsigned", "6.1"),
            Some("6.1.0-50")
        );
        assert_eq!(
            image_version("linux-image-6.12.117+deb13-amd64", "6.1"),
            None
        );
        assert_eq!(
            image_version("linux-image-6.12.117+deb13-amd64", "6.12"),
            Some("6.12.117+deb13")
        );
        assert_eq!(image_version("linux-image-7.3-amd64", "7.3"), Some("7.3"));
        assert_eq!(
            image_version("linux-image-6.1.0-50-cloud-amd64", "6.1"),
            None
        );
        assert_eq!(image_version("linux-image-6.1.0-50-rt-amd64", "6.1"), None);
        assert_eq!(image_version("linux-image-7.3-amd64-dbg", "7.3"), None);
        assert_eq!(image_version("linux-image-amd64", "7.3"), None);
        assert!(version_key("6.1.0-50") > version_key("6.1.0-47"));
        assert!(version_key("6.12.117+deb13") > version_key("6.12.107+deb13"));
    }

    #[test]
    fn summaries_parse() {
        assert_eq!(
            parse_summary(
                "test result: ok. 7 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 3.2s"
            ),
            Some((7, 0, 1))
        );
        assert_eq!(
            parse_summary(
                "test result: FAILED. 5 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out"
            ),
            Some((5, 2, 0))
        );
        assert_eq!(parse_summary("running 3 tests"), None);
    }

    #[test]
    fn package_ids_give_names() {
        assert_eq!(
            package_name("path+file:///work/x/fuse-uring#0.1.0").as_deref(),
            Some("fuse-uring")
        );
        assert_eq!(
            package_name("path+file:///work/x/passthroughfs#passthroughfs@0.1.0").as_deref(),
            Some("passthroughfs")
        );
    }

    #[test]
    fn cpio_entries_are_padded_to_four_bytes() {
        let mut out = Vec::new();
        write_cpio_entry(&mut out, 1, 0o100644, "init", b"hello", (0, 0)).unwrap();
        // 110-byte header + "init\0" = 115 -> 116; 5 data bytes -> 8.
        assert_eq!(out.len(), 116 + 8);
        assert!(out.starts_with(b"070701"));
        assert_eq!(&out[110..115], b"init\0");
        assert_eq!(&out[116..121], b"hello");
    }
}
