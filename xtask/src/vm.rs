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

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{is_root, run};

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
/// `harden` and fuse-dev's `hello` and `unprivileged`, which need `useradd`, `setpriv`,
/// `prlimit` and `fusermount3` (the guest has busybox only).
const TEST_BINARIES: [(&str, &str); 15] = [
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

// ---------------------------------------------------------------------------------------------
// Host tools

struct Tools {
    qemu: PathBuf,
    busybox: PathBuf,
}

/// Finds qemu-system-x86_64 and a busybox; installs `qemu-system-x86` and `busybox-static`
/// with apt-get when root, or says exactly what is missing.
fn ensure_tools() -> Result<Tools, String> {
    let find = |name: &str| -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    let mut missing = Vec::new();
    if find("qemu-system-x86_64").is_none() {
        missing.push("qemu-system-x86");
    }
    if !Path::new("/bin/busybox").is_file() {
        missing.push("busybox-static");
    }
    for tool in ["apt-get", "dpkg-deb", "tar", "ldd"] {
        if find(tool).is_none() {
            return Err(format!(
                "vm-test needs `{tool}` (a Debian-like host with apt and dpkg)"
            ));
        }
    }
    if !missing.is_empty() {
        if !is_root() {
            return Err(format!(
                "missing: {}. As root: apt-get install --no-install-recommends {}",
                missing.join(", "),
                missing.join(" ")
            ));
        }
        run(Command::new("apt-get").args(["update", "-qq"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(Tools {
        qemu: find("qemu-system-x86_64").ok_or("qemu-system-x86_64 still missing")?,
        busybox: PathBuf::from("/bin/busybox"),
    })
}

// ---------------------------------------------------------------------------------------------
// Kernels from Debian's archive

/// A kernel extracted from Debian's packages.
struct Kernel {
    package: String,
    version: String,
    /// `uname -r` (the modules directory's name).
    release: String,
    vmlinuz: PathBuf,
    /// `fuse.ko` (uncompressed), when FUSE is a module of this kernel.
    fuse_module: Option<PathBuf>,
}

/// An `apt-get`/`apt-cache` command that uses only the private configuration in `dir`.
fn apt(dir: &Path, tool: &str) -> Command {
    let mut cmd = Command::new(tool);
    for (key, value) in [
        ("Dir::Etc::sourcelist", dir.join("sources.list")),
        ("Dir::Etc::sourceparts", PathBuf::from("-")),
        ("Dir::State::lists", dir.join("lists")),
        ("Dir::Cache", dir.join("cache")),
    ] {
        cmd.arg("-o").arg(format!("{key}={}", value.display()));
    }
    if is_root() {
        // The private directories belong to root; apt's download sandbox user could not write
        // them.
        cmd.args(["-o", "APT::Sandbox::User=root"]);
    }
    cmd
}

fn output(cmd: &mut Command) -> Result<String, String> {
    let out = cmd
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The numbers in a version string, for ordering package names (`6.1.0-50` > `6.1.0-47`).
fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The kernel version part of `linux-image-<v>-amd64[-unsigned]` when `<v>` is kernel
/// `series` (for example `6.1` matches `6.1.0-50` but not `6.12.117+deb13`); flavours other than
/// the plain amd64 one (cloud, rt, dbg) do not match.
fn image_version<'a>(name: &'a str, series: &str) -> Option<&'a str> {
    let rest = name.strip_prefix("linux-image-")?;
    let v = rest
        .strip_suffix("-amd64-unsigned")
        .or_else(|| rest.strip_suffix("-amd64"))?;
    let after = v.strip_prefix(series)?;
    let ok_boundary = after.is_empty() || after.starts_with(['.', '-', '+', '~']);
    let plain_flavour = !v.contains("cloud") && !v.contains("-rt") && !v.contains("dbg");
    (ok_boundary && plain_flavour && v.starts_with(|c: char| c.is_ascii_digit())).then_some(v)
}

/// Finds, downloads (if not cached) and extracts the newest kernel of `spec`'s suite.
fn fetch_kernel(work: &Path, spec: &KernelSpec) -> Result<Kernel, String> {
    let apt_dir = work.join("apt").join(spec.suite);
    for sub in ["lists/partial", "cache/archives/partial"] {
        fs::create_dir_all(apt_dir.join(sub)).map_err(|e| format!("{}: {e}", apt_dir.display()))?;
    }
    fs::write(
        apt_dir.join("sources.list"),
        format!(
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://deb.debian.org/debian {} main\n",
            spec.suite
        ),
    )
    .map_err(|e| format!("{}: {e}", apt_dir.display()))?;
    // Refresh the suite's package list so that the newest kernel is picked; without network,
    // fall back to the newest one cached before.
    let kernels_dir = work.join("kernels");
    if let Err(e) = output(apt(&apt_dir, "apt-get").args(["update", "-qq"])) {
        eprintln!("vm-test: apt-get update for {} failed: {e}", spec.suite);
        return cached_kernel(&kernels_dir, spec)
            .ok_or_else(|| format!("no {} kernel cached and apt-get update failed", spec.name));
    }
    let names = output(apt(&apt_dir, "apt-cache").args(["pkgnames", "linux-image-"]))?;
    let mut candidates: Vec<(&str, &str)> = names
        .lines()
        .filter_map(|n| image_version(n, spec.name).map(|v| (n, v)))
        .collect();
    // Newest version first; for the same version the unsigned image (no signature needed
    // under QEMU's firmware, and the same kernel).
    candidates.sort_by(|a, b| {
        version_key(b.1)
            .cmp(&version_key(a.1))
            .then_with(|| b.0.ends_with("-unsigned").cmp(&a.0.ends_with("-unsigned")))
    });
    let mut chosen = None;
    for (name, _) in &candidates {
        // `pkgnames` also lists names only referred to; a real package has a record.
        let Ok(record) =
            output(apt(&apt_dir, "apt-cache").args(["show", "--no-all-versions", name]))
        else {
            continue;
        };
        if let Some(version) = field(&record, "Version") {
            chosen = Some((name.to_string(), version.to_owned(), record.clone()));
            break;
        }
    }
    let (package, version, record) = chosen.ok_or_else(|| {
        format!(
            "no linux-image-{}*-amd64 package in Debian {}",
            spec.name, spec.suite
        )
    })?;
    let dir = kernels_dir.join(format!("{package}_{version}"));
    let done = dir.join(".complete");
    if !done.exists() {
        // The newer suites split the kernel: the image package depends on linux-binary-*
        // (vmlinuz) and linux-modules-* of the same version.
        let mut packages = vec![package.clone()];
        for dep in field(&record, "Depends").unwrap_or("").split(',') {
            let name = dep.split_whitespace().next().unwrap_or("");
            if name.starts_with("linux-binary-") || name.starts_with("linux-modules-") {
                packages.push(name.to_owned());
            }
        }
        let _ = fs::remove_dir_all(&dir);
        let debs = dir.join("debs");
        fs::create_dir_all(&debs).map_err(|e| format!("{}: {e}", debs.display()))?;
        println!("vm-test: downloading {}", packages.join(" "));
        run(apt(&apt_dir, "apt-get")
            .current_dir(&debs)
            .args(["download", "-qq"])
            .args(&packages))?;
        let root = dir.join("root");
        fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        for deb in fs::read_dir(&debs).map_err(|e| format!("{}: {e}", debs.display()))? {
            let deb = deb.map_err(|e| e.to_string())?.path();
            // Only what the VM needs: the kernel, its config and the FUSE module if any.
            let script = format!(
                "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards --no-anchored \
                 'vmlinuz*' 'config-*' 'modules.builtin' 'fuse.ko*' 2>/dev/null; \
                 s=(${{PIPESTATUS[@]}}); [ \"${{s[0]}}\" = 0 ]",
                deb.display(),
                root.display()
            );
            run(Command::new("bash").args(["-c", &script]))?;
        }
        let _ = fs::remove_dir_all(&debs);
        fs::write(dir.join("package"), format!("{package}\n{version}\n"))
            .and_then(|()| fs::write(&done, ""))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    } else {
        println!(
            "vm-test: {package} {version} is cached in {}",
            dir.display()
        );
    }
    load_kernel(&dir, package, version)
}

/// The newest kernel of `spec` already extracted under `kernels_dir`.
fn cached_kernel(kernels_dir: &Path, spec: &KernelSpec) -> Option<Kernel> {
    let mut found: Vec<(Vec<u64>, PathBuf, String, String)> = fs::read_dir(kernels_dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let dir = e.path();
            if !dir.join(".complete").exists() {
                return None;
            }
            let info = fs::read_to_string(dir.join("package")).ok()?;
            let mut lines = info.lines();
            let package = lines.next()?.to_owned();
            let version = lines.next()?.to_owned();
            let v = image_version(&package, spec.name)?;
            Some((version_key(v), dir, package, version))
        })
        .collect();
    found.sort();
    let (_, dir, package, version) = found.pop()?;
    println!("vm-test: using the cached {package} {version}");
    load_kernel(&dir, package, version).ok()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(_) => out.push(path),
            Err(_) => {}
        }
    }
}

fn load_kernel(dir: &Path, package: String, version: String) -> Result<Kernel, String> {
    let mut files = Vec::new();
    walk(&dir.join("root"), &mut files);
    let name_of = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned()
    };
    let vmlinuz = files
        .iter()
        .find(|p| name_of(p).starts_with("vmlinuz"))
        .cloned()
        .ok_or_else(|| format!("no vmlinuz in {}", dir.display()))?;
    // The release: /boot/vmlinuz-<release> or /usr/lib/modules/<release>/vmlinuz.
    let release = match name_of(&vmlinuz).strip_prefix("vmlinuz-") {
        Some(r) => r.to_owned(),
        None => vmlinuz
            .parent()
            .map(|p| name_of(&p.to_path_buf()))
            .unwrap_or_default(),
    };
    let module = files.iter().find(|p| name_of(p).starts_with("fuse.ko"));
    let fuse_module = match module {
        None => None,
        Some(m) => {
            let plain = dir.join("fuse.ko");
            if !plain.exists() {
                let name = name_of(m);
                let tool = if name.ends_with(".xz") {
                    Some("xz")
                } else if name.ends_with(".zst") {
                    Some("zstd")
                } else if name.ends_with(".gz") {
                    Some("gzip")
                } else {
                    None
                };
                match tool {
                    None => {
                        fs::copy(m, &plain).map_err(|e| format!("{}: {e}", m.display()))?;
                    }
                    Some(tool) => {
                        let out =
                            Command::new(tool).arg("-dc").arg(m).output().map_err(|e| {
                                format!("cannot run {tool} for {}: {e}", m.display())
                            })?;
                        if !out.status.success() {
                            return Err(format!("{tool} -dc {} failed", m.display()));
                        }
                        fs::write(&plain, out.stdout).map_err(|e| e.to_string())?;
                    }
                }
            }
            Some(plain)
        }
    };
    Ok(Kernel {
        package,
        version,
        release,
        vmlinuz,
        fuse_module,
    })
}

/// The value of `Name:` in a Debian control record.
fn field<'a>(record: &'a str, name: &str) -> Option<&'a str> {
    record.lines().find_map(|l| {
        l.strip_prefix(name)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::trim)
    })
}

// ---------------------------------------------------------------------------------------------
// Test binaries

struct TestBinary {
    /// `<package>/<test target>`.
    label: String,
    executable: PathBuf,
}

struct Tests {
    binaries: Vec<TestBinary>,
    /// Other executables the tests start by their absolute path (the example server).
    helpers: Vec<PathBuf>,
}

/// Builds the kernel-test binaries with `cargo test --no-run` and collects their paths from
/// cargo's JSON messages.
fn build_tests(root: &Path, opts: &Options) -> Result<Tests, String> {
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
fn package_name(id: &str) -> Option<String> {
    let (path, frag) = id.rsplit_once('#')?;
    match frag.split_once('@') {
        Some((name, _)) => Some(name.to_owned()),
        None => Some(path.rsplit('/').next()?.to_owned()),
    }
}

// ---------------------------------------------------------------------------------------------
// The initramfs

enum Entry {
    Dir,
    /// A host file; executables keep their mode; ELF files are stripped of debug info.
    File(PathBuf),
    Bytes(Vec<u8>, u32),
    Symlink(String),
    CharDev(u32, u32),
}

/// The guest's files, by path without the leading `/`.
#[derive(Default)]
struct Image {
    entries: BTreeMap<String, Entry>,
}

impl Image {
    fn add(&mut self, guest: &str, entry: Entry) {
        let guest = guest.trim_start_matches('/').to_owned();
        let mut parent = Path::new(&guest).parent();
        while let Some(p) = parent {
            if p.as_os_str().is_empty() {
                break;
            }
            self.entries
                .entry(p.to_string_lossy().into_owned())
                .or_insert(Entry::Dir);
            parent = p.parent();
        }
        self.entries.insert(guest, entry);
    }

    /// Adds an ELF file at its own path plus every shared library `ldd` names.
    fn add_elf(&mut self, host: &Path, guest: &str) -> Result<(), String> {
        self.add(guest, Entry::File(host.to_owned()));
        let out = Command::new("ldd")
            .arg(host)
            .output()
            .map_err(|e| format!("cannot run ldd: {e}"))?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
            // "/lib64/ld-linux-x86-64.so.2 (0x...)"; "linux-vdso.so.1 (0x...)" has no file.
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next(),
                None => line.split_whitespace().next(),
            };
            if let Some(path) = path.filter(|p| p.starts_with('/')) {
                self.add(path, Entry::File(PathBuf::from(path)));
            }
        }
        Ok(())
    }

    /// Adds the files under `host` at the same absolute path, skipping `skip` directory names.
    fn add_tree(&mut self, host: &Path, skip: &[&str]) -> Result<(), String> {
        let entries = fs::read_dir(host).map_err(|e| format!("{}: {e}", host.display()))?;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let name = entry.file_name();
            if skip.iter().any(|s| name == *s) {
                continue;
            }
            let guest = path.to_string_lossy().into_owned();
            let kind = entry.file_type().map_err(|e| e.to_string())?;
            if kind.is_dir() {
                self.add(&guest, Entry::Dir);
                self.add_tree(&path, skip)?;
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).map_err(|e| e.to_string())?;
                self.add(
                    &guest,
                    Entry::Symlink(target.to_string_lossy().into_owned()),
                );
            } else if kind.is_file() {
                self.add(&guest, Entry::File(path));
            }
        }
        Ok(())
    }

    /// Writes a newc cpio archive (what the kernel unpacks as initramfs).
    fn write(&self, out: &Path, scratch: &Path) -> Result<u64, String> {
        let file = fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
        let mut w = BufWriter::new(file);
        let strip = Path::new("/usr/bin/strip").exists();
        for (ino, (name, entry)) in (1u32..).zip(&self.entries) {
            let (mode, data, rdev) = match entry {
                Entry::Dir => (0o040755, Vec::new(), (0, 0)),
                Entry::Symlink(t) => (0o120777, t.clone().into_bytes(), (0, 0)),
                Entry::CharDev(major, minor) => (0o020600, Vec::new(), (*major, *minor)),
                Entry::Bytes(b, mode) => (0o100000 | mode, b.clone(), (0, 0)),
                Entry::File(host) => {
                    let meta =
                        fs::metadata(host).map_err(|e| format!("{}: {e}", host.display()))?;
                    let perm = meta.permissions().mode() & 0o7777;
                    let data = read_stripped(host, perm, strip, scratch)?;
                    (0o100000 | perm, data, (0, 0))
                }
            };
            write_cpio_entry(&mut w, ino, mode, name, &data, rdev)
                .map_err(|e| format!("{}: {e}", out.display()))?;
        }
        write_cpio_entry(&mut w, 0, 0, "TRAILER!!!", &[], (0, 0))
            .and_then(|()| w.flush())
            .map_err(|e| format!("{}: {e}", out.display()))?;
        Ok(fs::metadata(out).map(|m| m.size()).unwrap_or(0))
    }
}

/// The bytes of `host`; executables that are ELF files lose their debug sections (symbols
/// stay, for backtraces), which shrinks test binaries several times.
fn read_stripped(host: &Path, perm: u32, strip: bool, scratch: &Path) -> Result<Vec<u8>, String> {
    let data = fs::read(host).map_err(|e| format!("{}: {e}", host.display()))?;
    if !strip || perm & 0o111 == 0 || !data.starts_with(b"\x7fELF") || data.len() < (1 << 20) {
        return Ok(data);
    }
    let tmp = scratch.join("stripped");
    let ok = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&tmp)
        .arg(host)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        fs::read(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))
    } else {
        Ok(data)
    }
}

fn write_cpio_entry(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    name: &str,
    data: &[u8],
    rdev: (u32, u32),
) -> io::Result<()> {
    let size = u32::try_from(data.len()).map_err(|_| io::Error::other("file over 4 GiB"))?;
    let name_size = name.len() + 1;
    let nlink = if mode & 0o170000 == 0o040000 { 2 } else { 1 };
    let header = format!(
        "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
         {maj:08x}{min:08x}{rmaj:08x}{rmin:08x}{name_size:08x}{check:08x}",
        uid = 0,
        gid = 0,
        mtime = 0,
        maj = 0,
        min = 0,
        rmaj = rdev.0,
        rmin = rdev.1,
        check = 0,
    );
    w.write_all(header.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    let pad = |n: usize| (4 - n % 4) % 4;
    w.write_all(&[0; 3][..pad(110 + name_size)])?;
    w.write_all(data)?;
    w.write_all(&[0; 3][..pad(data.len())])
}

/// The guest's `/init`: mounts, FUSE module and switch, then each test binary between markers.
///
/// `/tmp` is the initramfs's own directory, not a new tmpfs: the workspace (and the example
/// binary the tests start by its absolute path) sits at its host path, which may be under
/// `/tmp` (a CI clone, say); a tmpfs mounted there would hide it.
fn init_script(kernel: &Kernel, tests: &Tests, opts: &Options) -> String {
    let mut s = String::from(
        "#!/bin/busybox sh\n\
         /bin/busybox --install -s\n\
         export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root TMPDIR=/tmp RUST_BACKTRACE=1\n\
         mount -t proc proc /proc\n\
         mount -t sysfs sysfs /sys\n\
         mount -t devtmpfs devtmpfs /dev\n\
         mkdir -p /dev/pts /dev/shm\n\
         mount -t devpts devpts /dev/pts\n\
         mount -t tmpfs tmpfs /dev/shm\n\
         mkdir -p /tmp && chmod 1777 /tmp\n\
         echo \"@@VM kernel $(uname -r)\"\n\
         echo \"@@VM version $(cat /proc/version)\"\n",
    );
    if kernel.fuse_module.is_some() {
        s.push_str(
            "if [ ! -d /sys/module/fuse ]; then\n\
             \x20 if insmod /lib/fuse.ko; then echo '@@VM fuse module'; else echo '@@VM fuse insmod-failed'; fi\n\
             else echo '@@VM fuse built-in'; fi\n",
        );
    } else {
        s.push_str(
            "if [ -d /sys/module/fuse ]; then echo '@@VM fuse built-in'; else echo '@@VM fuse missing'; fi\n",
        );
    }
    s.push_str(
        "mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null\n\
         K=/sys/module/fuse/parameters/enable_uring\n\
         if [ -e $K ]; then echo Y > $K; echo \"@@VM enable_uring $(cat $K)\"; \
         else echo '@@VM enable_uring absent'; fi\n\
         cpus=$(grep -c ^processor /proc/cpuinfo); echo \"@@VM cpus $cpus\"\n\
         export FUSE_TESTS_REQUIRE_KERNEL=1\n\
         cd /tmp\n",
    );
    let filter = opts
        .filter
        .as_deref()
        .map(|f| format!(" '{}'", f.replace('\'', "")))
        .unwrap_or_default();
    for (i, b) in tests.binaries.iter().enumerate() {
        let _ = write!(
            s,
            "echo '@@VM begin {label}'\n\
             timeout -s KILL {t} /tests/{i} --test-threads=1 --nocapture{filter} </dev/null 2>&1\n\
             echo \"@@VM end {label} rc=$?\"\n",
            label = b.label,
            t = opts.binary_timeout,
        );
    }
    s.push_str("echo '@@VM done'\nsync\npoweroff -f\n");
    s
}

fn pack_initramfs(
    root: &Path,
    tools: &Tools,
    tests: &Tests,
    kernel: &Kernel,
    opts: &Options,
    out: &Path,
) -> Result<(), String> {
    let started = Instant::now();
    let mut image = Image::default();
    for dir in [
        "proc", "sys", "dev", "tmp", "root", "run", "bin", "sbin", "usr/bin", "usr/sbin", "etc",
        "tests",
    ] {
        image.add(dir, Entry::Dir);
    }
    image.add("dev/console", Entry::CharDev(5, 1));
    image.add("dev/null", Entry::CharDev(1, 3));
    image.add(
        "etc/passwd",
        Entry::Bytes(b"root:x:0:0:root:/root:/bin/sh\n".to_vec(), 0o644),
    );
    image.add("etc/group", Entry::Bytes(b"root:x:0:\n".to_vec(), 0o644));
    image.add_elf(&tools.busybox, "bin/busybox")?;
    for (i, b) in tests.binaries.iter().enumerate() {
        image.add_elf(&b.executable, &format!("tests/{i}"))?;
    }
    // The example server where the tests look for it (CARGO_BIN_EXE_passthroughfs is an
    // absolute path compiled into them), and the workspace sources where CARGO_MANIFEST_DIR
    // points (the mirror test mirrors them).
    for helper in &tests.helpers {
        image.add_elf(helper, &helper.to_string_lossy())?;
    }
    image.add_tree(root, &["target", ".git"])?;
    if let Some(m) = &kernel.fuse_module {
        image.add("lib/fuse.ko", Entry::File(m.clone()));
    }
    image.add(
        "init",
        Entry::Bytes(init_script(kernel, tests, opts).into_bytes(), 0o755),
    );
    let scratch = out.parent().unwrap_or(Path::new("."));
    let size = image.write(out, scratch)?;
    println!(
        "vm-test: initramfs {} ({} files, {:.1} MiB, {:.1}s)",
        out.display(),
        image.entries.len(),
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Booting and reading the console

#[derive(Clone, PartialEq)]
enum Status {
    Passed,
    /// Every test of the binary said it does not apply to this kernel.
    NotApplicable,
    Failed(i32),
    Hung,
    /// The guest stopped (panic, crash) before the binary finished.
    NoResult,
    NotRun,
}

impl Status {
    fn is_ok(&self) -> bool {
        matches!(self, Status::Passed | Status::NotApplicable)
    }

    fn word(&self) -> String {
        match self {
            Status::Passed => "passed".into(),
            Status::NotApplicable => "not applicable".into(),
            Status::Failed(rc) => format!("FAILED (exit {rc})"),
            Status::Hung => "HUNG".into(),
            Status::NoResult => "NO RESULT (guest stopped)".into(),
            Status::NotRun => "not run".into(),
        }
    }
}

struct BinaryRun {
    label: String,
    status: Status,
    passed: u32,
    failed: u32,
    ignored: u32,
    not_applicable: u32,
    seconds: f64,
    summary: String,
}

struct KernelRun {
    name: String,
    suite: String,
    package: String,
    version: String,
    release: String,
    proc_version: String,
    fuse: String,
    enable_uring: String,
    seconds: f64,
    /// completed, hung, or stopped early.
    outcome: String,
    error: Option<String>,
    binaries: Vec<BinaryRun>,
}

impl KernelRun {
    fn failed(spec: &KernelSpec, error: String, took: Duration) -> KernelRun {
        KernelRun {
            name: spec.name.into(),
            suite: spec.suite.into(),
            package: String::new(),
            version: String::new(),
            release: String::new(),
            proc_version: String::new(),
            fuse: String::new(),
            enable_uring: String::new(),
            seconds: took.as_secs_f64(),
            outcome: "error".into(),
            error: Some(error),
            binaries: Vec::new(),
        }
    }
}

/// Parses `test result: ok. 7 passed; 0 failed; 1 ignored; ...`.
fn parse_summary(line: &str) -> Option<(u32, u32, u32)> {
    let rest = line.split("test result:").nth(1)?;
    let num = |word: &str| -> Option<u32> {
        rest.split(';').find_map(|part| {
            let part = part
                .trim()
                .trim_start_matches(['o', 'k', 'F', 'A', 'I', 'L', 'E', 'D', '.'])
                .trim();
            let (n, w) = part.split_once(' ')?;
            (w.trim() == word).then(|| n.parse().ok()).flatten()
        })
    };
    Some((num("passed")?, num("failed")?, num("ignored").unwrap_or(0)))
}

fn boot(
    tools: &Tools,
    spec: &KernelSpec,
    kernel: Kernel,
    initramfs: &Path,
    dir: &Path,
    opts: &Options,
    tests: &Tests,
) -> Result<KernelRun, String> {
    let log_path = dir.join("console.log");
    let mut log = BufWriter::new(
        fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?,
    );
    let mut cmd = Command::new(&tools.qemu);
    cmd.args([
        "-accel",
        "tcg",
        "-cpu",
        "max",
        "-smp",
        "2",
        "-nographic",
        "-no-reboot",
    ])
    .args(["-m", &opts.memory_mib.to_string()])
    .arg("-kernel")
    .arg(&kernel.vmlinuz)
    .arg("-initrd")
    .arg(initramfs)
    .args([
        "-append",
        "console=ttyS0 rdinit=/init panic=-1 quiet loglevel=4 mitigations=off",
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    println!("vm-test: booting {:?}", cmd);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("cannot start qemu: {e}"))?;
    let (tx, rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().ok_or("no qemu stdout")?;
    let stderr = child.stderr.take().ok_or("no qemu stderr")?;
    for stream in [
        Box::new(stdout) as Box<dyn io::Read + Send>,
        Box::new(stderr),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buf = Vec::new();
            while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                buf.clear();
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    // The whole guest gets every binary's limit plus time to boot.
    let limit = Duration::from_secs(opts.binary_timeout * tests.binaries.len() as u64 + 300);
    let mut run = KernelRun {
        name: spec.name.into(),
        suite: spec.suite.into(),
        package: kernel.package.clone(),
        version: kernel.version.clone(),
        release: kernel.release.clone(),
        proc_version: String::new(),
        fuse: String::new(),
        enable_uring: String::new(),
        seconds: 0.0,
        outcome: "stopped early".into(),
        error: None,
        binaries: Vec::new(),
    };
    let mut current: Option<(BinaryRun, Instant)> = None;
    let mut hung = false;
    let echo = std::env::var_os("VM_TEST_ECHO").is_some();
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let line = match rx.recv_timeout(left) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                hung = true;
                let _ = child.kill();
                break;
            }
        };
        let _ = writeln!(log, "{line}");
        if echo {
            println!("  | {line}");
        }
        if let Some((b, _)) = current.as_mut() {
            if line.contains(NOT_APPLICABLE) {
                b.not_applicable += 1;
            }
            if let Some((p, f, i)) = parse_summary(&line) {
                b.passed = p;
                b.failed = f;
                b.ignored = i;
                b.summary = line.trim().to_owned();
            }
        }
        let Some(mark) = line.find(MARK).map(|i| &line[i + MARK.len()..]) else {
            continue;
        };
        let (key, value) = mark.split_once(' ').unwrap_or((mark, ""));
        match key {
            "version" => run.proc_version = value.to_owned(),
            "kernel" => println!(
                "vm-test: guest up after {:.1}s: uname -r = {value}",
                started.elapsed().as_secs_f64()
            ),
            "fuse" => run.fuse = value.to_owned(),
            "enable_uring" => run.enable_uring = value.to_owned(),
            "begin" => {
                current = Some((
                    BinaryRun {
                        label: value.to_owned(),
                        status: Status::NoResult,
                        passed: 0,
                        failed: 0,
                        ignored: 0,
                        not_applicable: 0,
                        seconds: 0.0,
                        summary: String::new(),
                    },
                    Instant::now(),
                ));
            }
            "end" => {
                if let Some((mut b, t)) = current.take() {
                    b.seconds = t.elapsed().as_secs_f64();
                    let rc: i32 = value
                        .rsplit_once("rc=")
                        .and_then(|(_, rc)| rc.trim().parse().ok())
                        .unwrap_or(-1);
                    b.status = if rc == 0 {
                        if b.passed > 0 && b.not_applicable >= b.passed {
                            Status::NotApplicable
                        } else {
                            Status::Passed
                        }
                    } else if rc == 137 && b.seconds + 2.0 >= opts.binary_timeout as f64 {
                        Status::Hung
                    } else {
                        Status::Failed(rc)
                    };
                    println!(
                        "vm-test: {} {}: {} {} ({:.1}s)",
                        spec.name,
                        b.label,
                        b.status.word(),
                        b.summary,
                        b.seconds
                    );
                    run.binaries.push(b);
                }
            }
            "done" => run.outcome = "completed".into(),
            _ => {}
        }
    }
    let _ = child.wait();
    let _ = log.flush();
    run.seconds = started.elapsed().as_secs_f64();
    if let Some((mut b, t)) = current.take() {
        b.seconds = t.elapsed().as_secs_f64();
        b.status = if hung { Status::Hung } else { Status::NoResult };
        run.binaries.push(b);
    }
    if hung {
        run.outcome = format!("hung (killed after {}s)", limit.as_secs());
    }
    for b in &tests.binaries {
        if !run.binaries.iter().any(|r| r.label == b.label) {
            run.binaries.push(BinaryRun {
                label: b.label.clone(),
                status: Status::NotRun,
                passed: 0,
                failed: 0,
                ignored: 0,
                not_applicable: 0,
                seconds: 0.0,
                summary: String::new(),
            });
        }
    }
    println!(
        "vm-test: kernel {} ({} {}): {} in {:.0}s; console log {}",
        spec.name,
        run.package,
        run.version,
        run.outcome,
        run.seconds,
        log_path.display()
    );
    Ok(run)
}

// ---------------------------------------------------------------------------------------------
// The matrix

fn cell(b: &BinaryRun) -> String {
    let counts = if b.not_applicable > 0 {
        format!("{} passed ({} n/a)", b.passed, b.not_applicable)
    } else {
        format!("{} passed", b.passed)
    };
    match &b.status {
        Status::Passed => format!("ok: {counts}, {:.0}s", b.seconds),
        Status::NotApplicable => {
            format!("not applicable ({}), {:.0}s", b.not_applicable, b.seconds)
        }
        Status::Failed(_) => format!(
            "**{}**: {} failed, {counts}, {:.0}s",
            b.status.word(),
            b.failed,
            b.seconds
        ),
        Status::Hung | Status::NoResult => {
            format!("**{}** after {:.0}s", b.status.word(), b.seconds)
        }
        Status::NotRun => "not run".into(),
    }
}

fn matrix_markdown(results: &[KernelRun], labels: &[String]) -> String {
    let mut s = String::from("| test binary |");
    for k in results {
        let _ = write!(s, " {} |", k.name);
    }
    s.push_str("\n|---|");
    for _ in results {
        s.push_str("---|");
    }
    s.push('\n');
    let mut row = |name: &str, f: &dyn Fn(&KernelRun) -> String| {
        let _ = write!(s, "| {name} |");
        for k in results {
            let _ = write!(s, " {} |", f(k));
        }
        s.push('\n');
    };
    row("kernel package", &|k| {
        if k.package.is_empty() {
            "-".into()
        } else {
            format!("{} {}", k.package, k.version)
        }
    });
    row("uname -r", &|k| k.release.clone());
    row("FUSE", &|k| k.fuse.clone());
    row("enable_uring", &|k| k.enable_uring.clone());
    for label in labels {
        row(label, &|k| {
            k.binaries
                .iter()
                .find(|b| &b.label == label)
                .map_or_else(|| "-".into(), cell)
        });
    }
    row("guest", &|k| match &k.error {
        Some(e) => format!("**error**: {e}"),
        None => format!("{}, {:.0}s", k.outcome, k.seconds),
    });
    s
}

fn matrix_json(results: &[KernelRun]) -> String {
    use serde_json::json;
    let kernels: Vec<serde_json::Value> = results
        .iter()
        .map(|k| {
            json!({
                "kernel": k.name,
                "suite": k.suite,
                "package": k.package,
                "version": k.version,
                "release": k.release,
                "proc_version": k.proc_version,
                "fuse": k.fuse,
                "enable_uring": k.enable_uring,
                "seconds": (k.seconds * 10.0).round() / 10.0,
                "outcome": k.outcome,
                "error": k.error,
                "binaries": k.binaries.iter().map(|b| json!({
                    "binary": b.label,
                    "status": b.status.word(),
                    "ok": b.status.is_ok(),
                    "passed": b.passed,
                    "failed": b.failed,
                    "ignored": b.ignored,
                    "not_applicable": b.not_applicable,
                    "seconds": (b.seconds * 10.0).round() / 10.0,
                    "summary": b.summary,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut s = serde_json::to_string_pretty(&json!({ "kernels": kernels })).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

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
