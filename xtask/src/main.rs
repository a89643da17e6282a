//! `cargo xtask`: the workspace's maintenance and demo commands.

mod bench;
mod conformance;
mod cross;
mod demo;
mod fuzz;
mod hello_fresh;
mod miri;
// getrusage and sigaction, which rustix does not offer safely.
#[allow(unsafe_code)]
mod proc;
mod soak;
mod tree;
mod vm;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  demo                       the main job: build the example server, mirror a fresh tree
                             through FUSE, verify it byte for byte, measure it beside the
                             native file system, unmount and clean up (needs root)
  bench [--quick | --smoke] [--out DIR] [--systems LIST] [--workloads LIST] [--reps N]
        [--variant NAME=ARGS]...
                             the end-to-end benchmark (needs root and fio): the example
                             server over /dev/fuse and io_uring, served and passthrough,
                             against the native file system and libfuse's passthrough_hp
                             (built on first use from Debian sid's fuse3 source, cached in
                             target/bench/libfuse-*) in the same run, with ratios.
                             Full: 3 repetitions (about 25 min); --quick: 1 repetition,
                             5 s random reads (about 5 min); --smoke: small files, about
                             2 min (CI). Writes results.md, results.json and ratios.svg to
                             target/bench/ (or DIR). LIST: comma-separated, of native,
                             dev-served, dev-passthrough, uring-served, uring-passthrough,
                             libfuse-dev, libfuse-uring, libfuse-uring-passthrough (native
                             is always measured; without LIST, --smoke runs all but
                             libfuse-dev and libfuse-uring-passthrough). The source tree is cached in
                             target/bench/source*; delete it to regenerate.
                             --workloads: a subset of seq-read-warm, seq-read-direct,
                             rand-read-4k-1job, rand-read-4k-2jobs, stat-1proc, stat-2procs,
                             open-read-close. --reps N overrides the repetitions.
                             A/B runs: --variant NAME=ARGS names extra server options, and
                             SYSTEM@NAME in LIST is SYSTEM with them, measured in the same
                             rounds (e.g. --variant d8='--queue-depth 8' --systems
                             uring-served,uring-served@d8,libfuse-uring)
  conformance [--targets LIST] [--suites pjdfstest,fsx] [--ops N] [--smoke]
                             the POSIX suites pjdfstest and fsx (installed on first use into
                             target/conformance/tools/) on FUSE file systems beside the
                             native ones in one run (needs root). LIST: native (= native-tmpfs,
                             native-root), memfs-dev, memfs-uring, passthroughfs-ro (default:
                             native,memfs-dev,memfs-uring); a FUSE target passes pjdfstest
                             with 0 failures and the native tmpfs's skipped set. --ops: fsx
                             operations (default 100000; --smoke: 20000, CI)
  fuzz [--seconds N | --smoke] [TARGET...]
                             every cargo-fuzz target of fuzz/ (nightly; installs cargo-fuzz
                             when missing) for N seconds each (default 60; --smoke: 10, CI),
                             after replaying fuzz/regressions/; prints runs and corpus sizes
  hello-fresh                fuse-session's hello-world server copied into a new cargo project
                             outside the workspace (path dependencies), built, and as
                             root run for real: mounted, read, unmounted
  miri                       the pure parts of fuse-kernel-sys, fuse-backing and fuse-uring
                             under Miri (nightly; installs miri and rust-src when missing)
  soak [--seconds N] [--transport uring|dev] [--passthrough]
                             load the example (io_uring, passthrough off by default) from 8
                             byte-verifying clients for N seconds (default 30; needs root);
                             reports operations, errors (must be 0), server peak memory
  setup                      install and enable what builds and tests need on this machine
                             (libclang-dev when missing, FUSE-over-io_uring when root)
  test                       setup, then the full test suite in both build modes
                             (bindgen at build time, and the committed snapshot)
  regen-bindings [--check]   regenerate fuse-kernel-sys/src/generated/ from include/*.h;
                             with --check, regenerate in memory and fail if the committed
                             snapshot differs
  vm-test [--kernel 6.1|6.12|7.2|7.3|all] [--filter TEST] [--bins LIST] [--timeout S]
                             the kernel tests inside QEMU (TCG) virtual machines running
                             Debian's kernels: 6.1 (bookworm), 6.12 (trixie), 7.2 (sid),
                             7.3 (experimental), the newest of each picked at run time
                             (default: all); installs qemu-system-x86 and busybox-static
                             when root. --filter: libtest name filter for every binary;
                             --bins: only test binaries whose name contains one of LIST;
                             --timeout: limit per test binary (default 900 s). Prints the
                             matrix and writes target/vm-test/results.{md,json}
  cross-check [TRIPLE...]    every snapshot target (default all): the snapshot compiles
                             for it, the C cross-check (clang for that target, Debian's
                             uapi headers) holds at compile time, and the published crates
                             build (downloads linux-libc-dev-<arch>-cross into target/)
  help                       this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["demo"] => demo::demo(&workspace_root()),
        ["bench", rest @ ..] => bench::bench(&workspace_root(), rest),
        ["bench-client", rest @ ..] => bench::client_main(rest),
        ["conformance", rest @ ..] => conformance::conformance(&workspace_root(), rest),
        ["fuzz", rest @ ..] => fuzz::fuzz(&workspace_root(), rest),
        ["hello-fresh"] => hello_fresh::hello_fresh(&workspace_root()),
        ["miri", rest @ ..] => miri::miri(&workspace_root(), rest),
        ["soak", rest @ ..] => soak::soak(&workspace_root(), rest),
        ["vm-test", rest @ ..] => vm::vm_test(&workspace_root(), rest),
        ["setup"] => setup(),
        ["test"] => test(),
        ["regen-bindings"] => regen_bindings(false),
        ["regen-bindings", "--check"] => regen_bindings(true),
        ["cross-check", targets @ ..] => {
            cross::cross_check(&targets.iter().map(|t| (*t).to_owned()).collect::<Vec<_>>())
        }
        [] | ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown arguments {args:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (this crate lives in `<root>/xtask`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The value of a `--seconds` option: a whole number above zero.
pub(crate) fn positive_seconds(value: Option<&str>) -> Result<u64, String> {
    value
        .and_then(|v| v.parse().ok())
        .filter(|&s| s > 0)
        .ok_or_else(|| "--seconds needs a positive number".into())
}

/// Runs a command, inheriting stdio; fails with its exit status.
pub(crate) fn run(cmd: &mut Command) -> Result<(), String> {
    println!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {status}"))
    }
}

/// Builds the example server (`passthroughfs`) in release mode and returns its path; used by
/// the demo, the benchmark and the soak.
pub(crate) fn build_example(root: &Path) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(root).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "passthroughfs",
    ]))?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    Ok(target.join("release").join("passthroughfs"))
}

/// Whether `cmd` runs and exits 0 (its output discarded): probes for installed tools.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs the nightly toolchain (minimal profile) with `components` when it is missing, or
/// adds the components to it; for `xtask fuzz` and `xtask miri`.
pub(crate) fn ensure_nightly(components: &[&str]) -> Result<(), String> {
    if succeeds(Command::new("rustup").args(["run", "nightly", "rustc", "--version"])) {
        run(Command::new("rustup")
            .args(["component", "add", "--toolchain", "nightly"])
            .args(components))
    } else {
        run(Command::new("rustup")
            .args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
                "--component",
            ])
            .arg(components.join(",")))
    }
}

/// Installs Debian `packages` when root and apt-get exists; otherwise explains.
pub(crate) fn apt_install(packages: &[&str], why: &str) -> Result<(), String> {
    if !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!(
            "{why} is missing. Install it as root: `apt-get install {}` \
             (Debian/Ubuntu; other distributions name it differently)",
            packages.join(" ")
        ));
    }
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}

/// The first `name` in a directory of `PATH`, or in `/usr/bin` or `/bin`.
fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Makes `/dev/fuse` readable and writable by every user (mode 0666, what udev's default
/// rules set), as root, when it is not.
fn fuse_device_mode_for_users() {
    use std::os::unix::fs::PermissionsExt as _;
    let dev = Path::new("/dev/fuse");
    let Ok(meta) = std::fs::metadata(dev) else {
        return;
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o666 == 0o666 {
        println!("xtask: /dev/fuse: mode {mode:o}, usable by every user");
    } else if is_root() {
        match std::fs::set_permissions(dev, std::fs::Permissions::from_mode(0o666)) {
            Ok(()) => println!(
                "xtask: /dev/fuse: mode {mode:o} -> 666 (as udev sets it; unprivileged mounts need it)"
            ),
            Err(e) => println!("xtask: /dev/fuse: mode {mode:o}, chmod 666 failed: {e}"),
        }
    } else {
        println!("xtask: /dev/fuse: mode {mode:o}; unprivileged mounts need: chmod 666 /dev/fuse");
    }
}

pub(crate) fn setup() -> Result<(), String> {
    // libclang, for the default (bindgen) build of fuse-kernel-sys.
    if build_support::libclang_available() {
        println!("xtask: libclang: found");
    } else {
        apt_install(
            &["libclang-dev"],
            "libclang (needed to generate the FUSE bindings)",
        )?;
        if !build_support::libclang_available() {
            return Err(
                "libclang-dev was installed but libclang still cannot be loaded; \
                        set LIBCLANG_PATH to the folder that holds libclang.so"
                    .into(),
            );
        }
    }
    // /dev/fuse and FUSE-over-io_uring, for the kernel tests.
    if !Path::new("/dev/fuse").exists() && is_root() {
        let _ = run(Command::new("modprobe").arg("fuse"));
    }
    if Path::new("/dev/fuse").exists() {
        println!("xtask: /dev/fuse: present");
    } else {
        println!(
            "xtask: /dev/fuse: missing (kernel tests will skip or, with FUSE_TESTS_REQUIRE_KERNEL=1, fail)"
        );
    }
    // fusermount3 (package fuse3) and a /dev/fuse that every user may open, for the
    // unprivileged mount test of fuse-dev. udev makes /dev/fuse 0666 on a normal system; a
    // machine without udev leaves it 0600, and fusermount3 opens it as the calling user.
    if find_in_path("fusermount3").is_some() {
        println!("xtask: fusermount3: found");
    } else {
        apt_install(&["fuse3"], "fusermount3 (mounting without root)")?;
    }
    fuse_device_mode_for_users();
    let knob = Path::new("/sys/module/fuse/parameters/enable_uring");
    match std::fs::read_to_string(knob) {
        Ok(v) if v.trim() == "Y" => println!("xtask: FUSE-over-io_uring: enabled"),
        Ok(_) if is_root() => {
            std::fs::write(knob, "Y").map_err(|e| {
                format!("cannot enable FUSE-over-io_uring ({}): {e}", knob.display())
            })?;
            println!(
                "xtask: FUSE-over-io_uring: enabled now (echo Y > {})",
                knob.display()
            );
        }
        Ok(_) => println!(
            "xtask: FUSE-over-io_uring: off; as root: echo Y > {}",
            knob.display()
        ),
        Err(_) => println!(
            "xtask: FUSE-over-io_uring: this kernel has no {} (needs Linux 6.14+ with CONFIG_FUSE_IO_URING)",
            knob.display()
        ),
    }
    // The official 7.46 <linux/fuse.h>, for abi-tests' cross-check (about 2 MB from Debian's
    // experimental suite, cached under target/; the machine's apt configuration is untouched).
    let fetch = workspace_root().join("abi-tests/fetch-official-header.sh");
    if let Err(e) = run(Command::new("bash").arg(&fetch)) {
        println!(
            "xtask: official 7.46 header: not fetched ({e}); abi-tests' cross-check against it \
             will skip (or, with FUSE_TESTS_REQUIRE_KERNEL=1, fail)"
        );
    }
    Ok(())
}

fn test() -> Result<(), String> {
    setup()?;
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("xtask: test mode 1/2: bindings generated at build time (feature `bindgen`)");
    run(Command::new(&cargo)
        .current_dir(&root)
        .args(["test", "--workspace"]))?;
    println!("xtask: test mode 2/2: committed snapshot (--no-default-features)");
    run(Command::new(&cargo).current_dir(&root).args([
        "test",
        "--workspace",
        "--no-default-features",
    ]))?;
    Ok(())
}

fn regen_bindings(check: bool) -> Result<(), String> {
    let crate_dir = workspace_root().join("fuse-kernel-sys");
    let include_dir = crate_dir.join("include");
    let generated_dir = crate_dir.join("src").join("generated");
    let scratch =
        std::env::temp_dir().join(format!("fuse-kernel-sys-regen-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let mut drifted = Vec::new();
    let result = (|| {
        for dir in build_support::snapshot_dirs() {
            for header in build_support::Header::ALL {
                let path = generated_dir.join(dir).join(header.output_name());
                let committed = std::fs::read_to_string(&path).unwrap_or_default();
                // Every target of the directory is generated on its own: the sharing holds
                // only if each comes out as the same bytes.
                let mut first: Option<(&str, String)> = None;
                for target in build_support::snapshot_targets(dir) {
                    let fresh =
                        build_support::generate(&include_dir, header, target.rust, &scratch)
                            .map_err(|e| format!("{}: {e}", target.rust))?;
                    match &first {
                        None => first = Some((target.rust, fresh)),
                        Some((first_target, first_fresh)) => {
                            if *first_fresh != fresh {
                                return Err(format!(
                                    "{} and {first_target} share src/generated/{dir}/ but \
                                     generate different {}: give {} a snapshot directory of \
                                     its own (TARGETS in fuse-kernel-sys/build/bindgen_config/targets.rs)",
                                    target.rust,
                                    header.output_name(),
                                    target.rust
                                ));
                            }
                        }
                    }
                }
                let Some((_, fresh)) = first else { continue };
                if committed == fresh {
                    println!("up to date: {}", path.display());
                } else if check {
                    drifted.push(path.display().to_string());
                } else {
                    std::fs::create_dir_all(generated_dir.join(dir))
                        .map_err(|e| format!("cannot create {dir}: {e}"))?;
                    std::fs::write(&path, fresh)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                    println!("rewrote: {}", path.display());
                }
            }
        }
        Ok::<(), String>(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    if drifted.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the committed bindings differ from what include/*.h generates:\n  {}\n\
             run `cargo xtask regen-bindings` and commit the result",
            drifted.join("\n  ")
        ))
    }
}
