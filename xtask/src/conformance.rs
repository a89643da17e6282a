//! `cargo xtask conformance [--targets LIST] [--suites LIST] [--ops N] [--smoke]`: the POSIX
//! file system test suites on FUSE file systems beside the native file system, in one run.
//!
//! Suites (third-party, installed on first use with `cargo install --locked` into
//! `target/conformance/tools/`, versions pinned in [`PJDFSTEST`] and [`FSX`]):
//!
//! - `pjdfstest` (the Rust rewrite): every test case, in a fresh directory on the target, as
//!   root, naptime [`NAPTIME`] s; users are switched to the existing `nobody`/`nogroup` and
//!   `daemon`/`daemon` (no users are created). A native target passes with 0 failures; a
//!   FUSE target passes with 0 failures and exactly the skipped set of the native tmpfs of
//!   the same run (the difference is printed otherwise).
//! - `fsx` (the File System eXerciser): N operations (default 100,000) with mmap reads and
//!   writes, truncates, fsyncs and reopens on one file in the target, seed [`FSX_SEED`]
//!   (printed, with the command to replay it); passes when it exits 0.
//!
//! Targets: `native-tmpfs` (a fresh tmpfs the harness mounts; always run as the baseline
//! when pjdfstest runs), `native-root` (a directory on the root file system, ext4 here),
//! `native` (both), `memfs-dev` and `memfs-uring` (`fuse-session/examples/memfs.rs`, built
//! here, over `/dev/fuse` and FUSE-over-io_uring; the latter is skipped with a reason when
//! io_uring for FUSE is off, a failure with `FUSE_TESTS_REQUIRE_KERNEL=1`), and
//! `passthroughfs-ro` (the read-only mirror over an empty directory: it fails pjdfstest and
//! fsx, which exercises the server machinery and the failure path).
//!
//! The full form (no options) runs both suites on native, memfs-dev and memfs-uring with
//! 100,000 fsx operations; `--smoke` (CI) is the same with 20,000 operations.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned suite versions: (crate, version).
const PJDFSTEST: (&str, &str) = ("pjdfstest", "0.2.2");
const FSX: (&str, &str) = ("fsx", "0.3.2");
/// pjdfstest's short sleeps: on this machine 0.001 s fails tmpfs's timestamp tests.
const NAPTIME: f64 = 0.02;
/// The fixed fsx seed (replay a failure with the printed command).
const FSX_SEED: u64 = 20_261_207;
const DEFAULT_OPS: u64 = 100_000;
const SMOKE_OPS: u64 = 20_000;
/// How long pjdfstest may run on one target before it is killed (tmpfs: 2 s, ext4: 3 s).
const PJDFSTEST_TIMEOUT: Duration = Duration::from_secs(300);

/// How long fsx may run: 2 minutes plus 10 ms per operation (ext4 here: 1 ms per operation).
fn fsx_timeout(ops: u64) -> Duration {
    Duration::from_secs(120)
        + Duration::from_millis(10).saturating_mul(u32::try_from(ops).unwrap_or(u32::MAX))
}
/// How long a server may take to mount, and to exit after its unmount.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
const SERVER_STOP_TIMEOUT: Duration = Duration::from_secs(10);

const PJDFSTEST_CONFIG: &str = r#"# written by cargo xtask conformance
[features]
posix_fallocate = {}
rename_ctime = {}
utime_now = {}
utimensat = {}

[settings]
naptime = NAPTIME
allow_remount = false

[dummy_auth]
entries = [["nobody", "nogroup"], ["daemon", "daemon"]]
"#;

const FSX_CONFIG: &str = "# written by cargo xtask conformance
[weights]
close_open = 1
read = 10
write = 10
mapread = 10
mapwrite = 10
invalidate = 1
truncate = 1
fsync = 1
fdatasync = 1
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Pjdfstest,
    Fsx,
}

impl Suite {
    fn name(self) -> &'static str {
        match self {
            Suite::Pjdfstest => "pjdfstest",
            Suite::Fsx => "fsx",
        }
    }
}

/// How a target's file system comes to be.
#[derive(Debug, Clone)]
enum Kind {
    /// A tmpfs mounted by the harness.
    Tmpfs,
    /// A temporary directory on the file system of `std::env::temp_dir()`.
    RootDir,
    /// A FUSE server.
    Server(ServerSpec),
}

/// A FUSE server: how to build, start, recognise and stop it.
#[derive(Debug, Clone)]
pub(crate) struct ServerSpec {
    /// The server's main source file, relative to the workspace root.
    source: &'static str,
    /// `cargo build` arguments that build the binary.
    build: &'static [&'static str],
    /// The binary, relative to the cargo target directory.
    binary: &'static str,
    /// The arguments; `{mnt}` is the mount point, `{src}` an empty directory beside it.
    args: &'static [&'static str],
    /// The file system type in /proc/self/mountinfo once it is mounted (`fuse.NAME`).
    fstype: &'static str,
    /// Whether it needs FUSE-over-io_uring switched on.
    needs_uring: bool,
}

#[derive(Debug, Clone)]
struct Target {
    name: &'static str,
    kind: Kind,
}

fn known_targets() -> Vec<Target> {
    let memfs = |transport| ServerSpec {
        source: "fuse-session/examples/memfs.rs",
        build: &[
            "build",
            "--quiet",
            "--example",
            "memfs",
            "-p",
            "fuse-session",
        ],
        binary: "debug/examples/memfs",
        args: match transport {
            "dev" => &["{mnt}", "dev"],
            _ => &["{mnt}", "uring"],
        },
        fstype: "fuse.memfs",
        needs_uring: transport == "uring",
    };
    vec![
        Target {
            name: "native-tmpfs",
            kind: Kind::Tmpfs,
        },
        Target {
            name: "native-root",
            kind: Kind::RootDir,
        },
        Target {
            name: "memfs-dev",
            kind: Kind::Server(memfs("dev")),
        },
        Target {
            name: "memfs-uring",
            kind: Kind::Server(memfs("uring")),
        },
        Target {
            name: "passthroughfs-ro",
            kind: Kind::Server(ServerSpec {
                source: "passthroughfs/src/main.rs",
                build: &["build", "--quiet", "-p", "passthroughfs"],
                binary: "debug/passthroughfs",
                args: &["--transport", "dev", "{src}", "{mnt}"],
                fstype: "fuse.passthroughfs",
                needs_uring: false,
            }),
        },
    ]
}

struct Options {
    targets: Vec<Target>,
    suites: Vec<Suite>,
    ops: u64,
}

fn parse_args(args: &[&str]) -> Result<Options, String> {
    let mut targets: Option<Vec<String>> = None;
    let mut suites = vec![Suite::Pjdfstest, Suite::Fsx];
    let mut ops = None;
    let mut smoke = false;
    let mut it = args.iter();
    while let Some(&arg) = it.next() {
        match arg {
            "--targets" => {
                let list = it.next().ok_or("--targets needs a list")?;
                targets = Some(list.split(',').map(str::to_owned).collect());
            }
            "--suites" => {
                let list = it.next().ok_or("--suites needs a list")?;
                suites = list
                    .split(',')
                    .map(|s| match s {
                        "pjdfstest" => Ok(Suite::Pjdfstest),
                        "fsx" => Ok(Suite::Fsx),
                        other => Err(format!("unknown suite {other} (pjdfstest, fsx)")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            "--ops" => {
                ops = Some(
                    it.next()
                        .and_then(|v| v.parse::<u64>().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--ops needs a positive number")?,
                );
            }
            "--smoke" => smoke = true,
            other => return Err(format!("conformance: unknown argument {other}")),
        }
    }
    let known = known_targets();
    let names =
        targets.unwrap_or_else(|| vec!["native".into(), "memfs-dev".into(), "memfs-uring".into()]);
    let mut chosen: Vec<Target> = Vec::new();
    for name in &names {
        let expanded: Vec<&str> = if name == "native" {
            vec!["native-tmpfs", "native-root"]
        } else {
            vec![name.as_str()]
        };
        for n in expanded {
            let t = known.iter().find(|t| t.name == n).ok_or_else(|| {
                let all: Vec<&str> = known.iter().map(|t| t.name).collect();
                format!("unknown target {n} (native, {})", all.join(", "))
            })?;
            if !chosen.iter().any(|c| c.name == t.name) {
                chosen.push(t.clone());
            }
        }
    }
    // pjdfstest compares every FUSE target with the native tmpfs of the same run.
    if suites.contains(&Suite::Pjdfstest) && !chosen.iter().any(|t| t.name == "native-tmpfs") {
        println!("conformance: adding native-tmpfs, the pjdfstest baseline");
        chosen.insert(0, known[0].clone());
    }
    chosen.sort_by_key(|t| !matches!(t.kind, Kind::Tmpfs));
    Ok(Options {
        targets: chosen,
        suites,
        ops: ops.unwrap_or(if smoke { SMOKE_OPS } else { DEFAULT_OPS }),
    })
}

/// One row of the summary.
#[derive(Debug)]
struct Row {
    target: String,
    suite: &'static str,
    passed: String,
    failed: String,
    skipped: String,
    seconds: f64,
    result: Verdict,
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Pass,
    Fail(String),
    Skipped(String),
}

pub(crate) fn conformance(root: &Path, args: &[&str]) -> Result<(), String> {
    let opts = parse_args(args)?;
    if !crate::is_root() {
        return Err("conformance mounts file systems and switches users: run it as root".into());
    }
    crate::proc::install_stop_handler().map_err(|e| format!("signal handlers: {e}"))?;
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let tools = target_dir.join("conformance").join("tools");
    let mut bins = Vec::new();
    for suite in &opts.suites {
        let (krate, version) = match suite {
            Suite::Pjdfstest => PJDFSTEST,
            Suite::Fsx => FSX,
        };
        bins.push((*suite, install_tool(root, &tools, krate, version)?));
    }
    let work = TempDir::new("xconf")?;
    // The configurations and logs stay after the run (for a replay), the targets do not.
    let logs = target_dir.join("conformance").join("last-run");
    let _ = fs::remove_dir_all(&logs);
    fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    println!("conformance: configurations and logs in {}", logs.display());
    fs::write(
        logs.join("pjdfstest.toml"),
        PJDFSTEST_CONFIG.replace("NAPTIME", &NAPTIME.to_string()),
    )
    .map_err(|e| format!("writing pjdfstest.toml: {e}"))?;
    fs::write(logs.join("fsx.toml"), FSX_CONFIG).map_err(|e| format!("writing fsx.toml: {e}"))?;

    let mut rows = Vec::new();
    let mut baseline_skipped: Option<Vec<String>> = None;
    for (index, target) in opts.targets.iter().enumerate() {
        if crate::proc::stop_requested() {
            rows.push(Row::error(target.name, "-", "not run: stopped by a signal"));
            break;
        }
        println!("\n=== conformance: target {}", target.name);
        // Short names (sockets, see TempDir::new): t0, t1, ...
        let tdir = work.path().join(format!("t{index}"));
        fs::create_dir(&tdir).map_err(|e| format!("{}: {e}", tdir.display()))?;
        let mounted = match prepare(root, &target_dir, target, &tdir) {
            Ok(Some(m)) => m,
            Ok(None) => {
                // Skipped with a printed reason (io_uring off).
                let reason = "FUSE-over-io_uring is off or missing \
                              (/sys/module/fuse/parameters/enable_uring; cargo xtask setup)";
                println!("conformance: skipping {}: {reason}", target.name);
                for (suite, _) in &bins {
                    rows.push(Row::skipped(target.name, suite.name(), reason));
                }
                continue;
            }
            Err(e) => {
                rows.push(Row::error(target.name, "(setup)", &e));
                println!("conformance: {}: {e}", target.name);
                continue;
            }
        };
        let label = format!("{} ({})", target.name, mounted.fstype());
        for (suite, bin) in &bins {
            let started = Instant::now();
            let mut row = match suite {
                Suite::Pjdfstest => {
                    let is_baseline = matches!(target.kind, Kind::Tmpfs);
                    let strict = matches!(target.kind, Kind::Server(_));
                    if strict && baseline_skipped.is_none() {
                        Err(
                            "no native-tmpfs pjdfstest result in this run to compare with \
                             (see its row)"
                                .to_owned(),
                        )
                    } else {
                        run_pjdfstest(bin, &logs, mounted.path(), &label)
                    }
                    .map(|run| {
                        let row = judge_pjdfstest(
                            &label,
                            &run,
                            strict.then_some(baseline_skipped.as_deref()).flatten(),
                        );
                        if is_baseline {
                            baseline_skipped = Some(run.skipped.clone());
                        }
                        row
                    })
                }
                Suite::Fsx => run_fsx(bin, &logs, mounted.path(), opts.ops, &label),
            }
            .unwrap_or_else(|e| Row::error(&label, suite.name(), &e));
            row.seconds = started.elapsed().as_secs_f64();
            rows.push(row);
        }
        if let Err(e) = mounted.finish() {
            println!("conformance: {}: {e}", target.name);
            rows.push(Row::error(target.name, "server", &e));
        }
    }
    print_summary(&rows);
    let failed: Vec<String> = rows
        .iter()
        .filter_map(|r| match &r.result {
            Verdict::Fail(why) => Some(format!("{} {}: {why}", r.target, r.suite)),
            Verdict::Skipped(why) if testkit::kernel_required() => Some(format!(
                "{} {}: skipped but {}=1: {why}",
                r.target,
                r.suite,
                testkit::REQUIRE_ENV
            )),
            _ => None,
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "conformance failed on {} row(s):\n  {}",
            failed.len(),
            failed.join("\n  ")
        ))
    }
}

impl Row {
    fn error(target: &str, suite: &'static str, why: &str) -> Row {
        Row {
            target: target.into(),
            suite,
            passed: "-".into(),
            failed: "-".into(),
            skipped: "-".into(),
            seconds: 0.0,
            result: Verdict::Fail(why.into()),
        }
    }

    fn skipped(target: &str, suite: &'static str, why: &str) -> Row {
        Row {
            result: Verdict::Skipped(why.into()),
            ..Row::error(target, suite, why)
        }
    }
}

fn print_summary(rows: &[Row]) {
    let mut out = String::from("\n=== conformance summary\n");
    let _ = writeln!(
        out,
        "{:<38} {:<9} {:>8} {:>6} {:>7} {:>8}  result",
        "target", "suite", "passed", "failed", "skipped", "seconds"
    );
    for r in rows {
        let result = match &r.result {
            Verdict::Pass => "PASS".to_owned(),
            Verdict::Fail(why) => format!("FAIL: {}", why.lines().next().unwrap_or("")),
            Verdict::Skipped(why) => format!("skipped: {why}"),
        };
        let _ = writeln!(
            out,
            "{:<38} {:<9} {:>8} {:>6} {:>7} {:>8.1}  {result}",
            r.target, r.suite, r.passed, r.failed, r.skipped, r.seconds
        );
    }
    print!("{out}");
}

/// `cargo install --locked --version V --root DIR CRATE`, unless `DIR/bin/CRATE` already
/// reports version V.
fn install_tool(root: &Path, tools: &Path, krate: &str, version: &str) -> Result<PathBuf, String> {
    let bin = tools.join("bin").join(krate);
    let installed = Command::new(&bin)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .is_some_and(|o| String::from_utf8_lossy(&o.stdout).contains(version));
    if installed {
        println!(
            "conformance: {krate} {version}: installed in {}",
            tools.display()
        );
        return Ok(bin);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    crate::run(
        Command::new(cargo)
            .current_dir(root)
            .args(["install", "--locked", "--version", version, "--root"])
            .arg(tools)
            .arg(krate),
    )?;
    Ok(bin)
}

/// A temporary directory, removed (with what is left in it) on drop.
struct TempDir(PathBuf);

impl TempDir {
    /// A short path on purpose: pjdfstest binds sockets under it, and a socket path longer
    /// than `sun_path` (108 bytes) fails with ENAMETOOLONG.
    fn new(tag: &str) -> Result<TempDir, String> {
        let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
        fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0) {
            eprintln!("conformance: cannot remove {}: {e}", self.0.display());
        }
    }
}

/// The file system type mounted at exactly `path` (the last such line of
/// /proc/self/mountinfo: the top of the stack), or `None` when `path` is no mount point.
fn mount_type_at(path: &Path) -> Option<String> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_type_in(&info, path)
}

fn mount_type_in(mountinfo: &str, path: &Path) -> Option<String> {
    let want = path.to_str()?;
    // The last matching line is the top of the stack.
    mountinfo.lines().rev().find_map(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
        let fields: Vec<&str> = line.split(' ').collect();
        let mountpoint = unescape_mountinfo(fields.get(4)?);
        let dash = fields.iter().position(|f| *f == "-")?;
        (mountpoint == want).then(|| fields.get(dash + 1).map(|s| (*s).to_owned()))?
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        if let Some(c) = code {
            out.push(char::from(c));
            rest = &rest[i + 4..];
        } else {
            out.push('\\');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// The type of the file system that holds `path` (the longest mount point above it).
fn fs_type_holding(path: &Path) -> String {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return "?".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(mp), Some(dash)) = (fields.get(4), fields.iter().position(|f| *f == "-")) else {
            continue;
        };
        let mp = unescape_mountinfo(mp);
        if path.starts_with(&mp) && best.as_ref().is_none_or(|(len, _)| mp.len() >= *len) {
            if let Some(t) = fields.get(dash + 1) {
                best = Some((mp.len(), (*t).to_owned()));
            }
        }
    }
    best.map_or_else(|| "?".into(), |(_, t)| t)
}

/// A prepared target: where the suites run, and what must be undone afterwards.
enum Mounted {
    Tmpfs(TmpfsGuard),
    Dir(PathBuf, String),
    Server(ServerGuard),
}

impl Mounted {
    fn path(&self) -> &Path {
        match self {
            Mounted::Tmpfs(g) => &g.path,
            Mounted::Dir(p, _) => p,
            Mounted::Server(s) => &s.mountpoint,
        }
    }

    fn fstype(&self) -> String {
        match self {
            Mounted::Tmpfs(_) => "tmpfs".into(),
            Mounted::Dir(_, t) => t.clone(),
            Mounted::Server(s) => s.fstype.into(),
        }
    }

    /// Undoes the target; for a server: unmounts it and checks that it exited 0.
    fn finish(self) -> Result<(), String> {
        match self {
            Mounted::Tmpfs(g) => g.unmount(),
            Mounted::Dir(..) => Ok(()),
            Mounted::Server(s) => s.stop(),
        }
    }
}

/// Sets `target` up in `tdir`; `Ok(None)` when it is skipped (io_uring off, not required).
fn prepare(
    root: &Path,
    target_dir: &Path,
    target: &Target,
    tdir: &Path,
) -> Result<Option<Mounted>, String> {
    match &target.kind {
        Kind::Tmpfs => {
            let path = tdir.join("m");
            fs::create_dir(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            rustix::mount::mount(
                "tmpfs",
                &path,
                "tmpfs",
                rustix::mount::MountFlags::empty(),
                c"mode=0755",
            )
            .map_err(|e| format!("mount tmpfs on {}: {e}", path.display()))?;
            Ok(Some(Mounted::Tmpfs(TmpfsGuard {
                path,
                mounted: true,
            })))
        }
        Kind::RootDir => {
            let t = fs_type_holding(tdir);
            Ok(Some(Mounted::Dir(tdir.to_path_buf(), t)))
        }
        Kind::Server(spec) => {
            if spec.needs_uring && !testkit::uring_enabled() {
                if testkit::kernel_required() {
                    return Err(format!(
                        "FUSE-over-io_uring is off or missing and {}=1",
                        testkit::REQUIRE_ENV
                    ));
                }
                return Ok(None);
            }
            if !root.join(spec.source).is_file() {
                return Err(format!("{} does not exist (yet)", spec.source));
            }
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            crate::run(Command::new(cargo).current_dir(root).args(spec.build))?;
            let binary = target_dir.join(spec.binary);
            ServerGuard::start(&binary, spec, tdir).map(|s| Some(Mounted::Server(s)))
        }
    }
}

/// A tmpfs mounted by the harness: unmounted on drop (lazily if it is busy).
struct TmpfsGuard {
    path: PathBuf,
    mounted: bool,
}

impl TmpfsGuard {
    fn unmount(mut self) -> Result<(), String> {
        self.mounted = false;
        rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::empty())
            .map_err(|e| format!("umount {}: {e}", self.path.display()))
    }
}

impl Drop for TmpfsGuard {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// A running FUSE server and its mount. [`ServerGuard::stop`] unmounts and waits for a
/// clean exit; dropping it without `stop` (an error, a panic) does the same and, if the server
/// does not exit in time, kills it, aborts its connection and detaches the mount.
struct ServerGuard {
    child: Option<Child>,
    mountpoint: PathBuf,
    fstype: &'static str,
    connection: Option<u32>,
    log: PathBuf,
}

impl ServerGuard {
    fn start(binary: &Path, spec: &ServerSpec, tdir: &Path) -> Result<ServerGuard, String> {
        if !binary.is_file() {
            return Err(format!("the server binary {} is missing", binary.display()));
        }
        let mountpoint = tdir.join("m");
        let src = tdir.join("s");
        // The suites' directories exist in the source, for a read-only mirror of it.
        for d in [&mountpoint, &src, &src.join("p"), &src.join("fsx")] {
            fs::create_dir(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let args: Vec<String> = spec
            .args
            .iter()
            .map(|a| {
                a.replace("{mnt}", &mountpoint.to_string_lossy())
                    .replace("{src}", &src.to_string_lossy())
            })
            .collect();
        let log = tdir.join("server.log");
        let out = fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        println!(
            "conformance: starting {} {}",
            binary.display(),
            args.join(" ")
        );
        let child = Command::new(binary)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut guard = ServerGuard {
            child: Some(child),
            mountpoint,
            fstype: spec.fstype,
            connection: None,
            log,
        };
        let deadline = Instant::now() + SERVER_START_TIMEOUT;
        loop {
            if mount_type_at(&guard.mountpoint).as_deref() == Some(spec.fstype) {
                guard.connection = testkit::connection_of(&guard.mountpoint);
                return Ok(guard);
            }
            if let Some(child) = guard.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    guard.child = None;
                    return Err(format!(
                        "the server exited before mounting ({status}); its output:\n{}",
                        guard.log_tail()
                    ));
                }
            }
            if Instant::now() > deadline || crate::proc::stop_requested() {
                return Err(format!(
                    "{} did not become a {} mount within {SERVER_START_TIMEOUT:?}; server output:\n{}",
                    guard.mountpoint.display(),
                    spec.fstype,
                    guard.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Unmounts, then waits for the server to exit 0; on a timeout kills it, aborts the
    /// connection and detaches the mount (and fails).
    fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let mut problems = Vec::new();
        if mount_type_at(&self.mountpoint).as_deref() == Some(self.fstype) {
            if let Err(e) =
                rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::empty())
            {
                problems.push(format!("umount {}: {e}", self.mountpoint.display()));
            }
        }
        let deadline = Instant::now() + SERVER_STOP_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break None,
            }
        };
        match status {
            Some(s) if s.success() => {}
            Some(s) => problems.push(format!("the server exited with {s}")),
            None => {
                problems.push(format!(
                    "the server did not exit within {SERVER_STOP_TIMEOUT:?} of its unmount: killed"
                ));
                let _ = child.kill();
                if let Some(n) = self.connection {
                    let _ = testkit::abort_connection(n);
                }
                let _ = child.wait();
            }
        }
        if mount_type_at(&self.mountpoint).as_deref() == Some(self.fstype) {
            let _ = rustix::mount::unmount(&self.mountpoint, rustix::mount::UnmountFlags::DETACH);
            problems.push("the mount was still there: detached (umount -l)".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}; server output:\n{}",
                problems.join("; "),
                self.log_tail()
            ))
        }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            eprintln!("conformance: stopping the server: {e}");
        }
    }
}

/// Runs `cmd` with stdout and stderr into `out`, killing it after `timeout`; its exit code
/// (`None` when killed).
fn run_logged(cmd: &mut Command, out: &Path, timeout: Duration) -> Result<Option<i32>, String> {
    let file = fs::File::create(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    println!("conformance: running {cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status.code());
        }
        if Instant::now() > deadline || crate::proc::stop_requested() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(if crate::proc::stop_requested() {
                "stopped by a signal".into()
            } else {
                format!("killed after {timeout:?}")
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What one pjdfstest run reported.
#[derive(Debug, Default, PartialEq)]
struct PjdfstestRun {
    passed: Vec<String>,
    /// Failed test cases with the first line of their message.
    failed: Vec<(String, String)>,
    skipped: Vec<String>,
    expected_failures: usize,
}

fn run_pjdfstest(bin: &Path, work: &Path, mnt: &Path, label: &str) -> Result<PjdfstestRun, String> {
    let dir = mnt.join("p");
    // A read-only mirror has it already (ServerGuard::start makes it in the source).
    if !dir.is_dir() {
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    }
    let log = work.join(format!(
        "pjdfstest-{}.log",
        label.split(' ').next().unwrap_or(label)
    ));
    let code = run_logged(
        Command::new(bin)
            .arg("-c")
            .arg(work.join("pjdfstest.toml"))
            .arg("-p")
            .arg(&dir)
            .env("NO_COLOR", "1"),
        &log,
        PJDFSTEST_TIMEOUT,
    )?;
    let text = fs::read_to_string(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let run = parse_pjdfstest(&text).map_err(|e| {
        // An error that stops pjdfstest comes first; a truncated run ends in the middle.
        let head: Vec<&str> = text.lines().take(3).collect();
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        format!(
            "pjdfstest exited {code:?}, {e}: {}\n  ...\n  {}\n  (log: {})",
            head.join("\n  "),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n  "),
            log.display(),
        )
    })?;
    if (code == Some(0)) != run.failed.is_empty() {
        return Err(format!(
            "pjdfstest exited {code:?} with {} failures reported",
            run.failed.len()
        ));
    }
    println!(
        "conformance: {label}: pjdfstest: {} passed, {} failed, {} skipped",
        run.passed.len(),
        run.failed.len(),
        run.skipped.len()
    );
    let _ = fs::remove_dir_all(&dir);
    Ok(run)
}

/// Parses pjdfstest's output: one line per test case, `NAME <padding> ok|skipped|FAILED|...`,
/// details indented with a tab, and the `Summary:` line, whose counts must match.
fn parse_pjdfstest(text: &str) -> Result<PjdfstestRun, String> {
    let mut run = PjdfstestRun::default();
    let mut summary = None;
    let mut last_failed: Option<usize> = None;
    for raw in text.lines() {
        let line = strip_ansi(raw);
        if let Some(rest) = line.strip_prefix("Summary: ") {
            summary = Some(rest.to_owned());
            continue;
        }
        if line.starts_with('\t') || line.starts_with(' ') {
            if let Some(i) = last_failed {
                if run.failed[i].1.is_empty() {
                    run.failed[i].1 = line.trim().to_owned();
                }
            }
            continue;
        }
        last_failed = None;
        let Some((name, status)) = line.split_once(' ') else {
            continue;
        };
        if !name.contains("::") {
            continue;
        }
        match status.trim() {
            "ok" => run.passed.push(name.into()),
            "skipped" => run.skipped.push(name.into()),
            "FAILED" | "PASSED UNEXPECTEDLY" => {
                run.failed.push((name.into(), String::new()));
                last_failed = Some(run.failed.len() - 1);
            }
            "failed as expected" => run.expected_failures += 1,
            other => return Err(format!("unknown status {other:?} of {name}")),
        }
    }
    let summary = summary.ok_or("no Summary line")?;
    // "0 failed, 16 skipped, 382 passed, 0 expected failures, 398 total"
    let count = |what: &str| -> Option<usize> {
        summary
            .split(", ")
            .find_map(|part| part.strip_suffix(what)?.trim().parse().ok())
    };
    let expect = [
        ("failed", run.failed.len()),
        ("skipped", run.skipped.len()),
        ("passed", run.passed.len()),
    ];
    for (what, have) in expect {
        match count(&format!(" {what}")) {
            Some(n) if n == have => {}
            Some(n) => return Err(format!("Summary says {n} {what}, the lines say {have}")),
            None => return Err(format!("Summary line without a {what} count: {summary}")),
        }
    }
    if run.passed.is_empty() {
        return Err("no test case passed: did pjdfstest run at all?".into());
    }
    run.skipped.sort();
    Ok(run)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ ... final byte in @..~
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) && c != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The verdict on one pjdfstest run: 0 failures, and (for a FUSE target, given the baseline)
/// the native tmpfs's skipped set exactly.
fn judge_pjdfstest(label: &str, run: &PjdfstestRun, baseline: Option<&[String]>) -> Row {
    let mut problems = Vec::new();
    if !run.failed.is_empty() {
        println!("conformance: {label}: failed test cases:");
        for (name, why) in &run.failed {
            println!("  {name}: {why}");
        }
        let names: Vec<&str> = run.failed.iter().map(|(n, _)| n.as_str()).collect();
        problems.push(format!("{} failed ({})", names.len(), abbreviate(&names)));
    }
    if !run.skipped.is_empty() {
        println!("conformance: {label}: skipped: {}", run.skipped.join(" "));
    }
    if let Some(base) = baseline {
        let extra: Vec<&str> = run
            .skipped
            .iter()
            .filter(|s| !base.contains(s))
            .map(String::as_str)
            .collect();
        let missing: Vec<&str> = base
            .iter()
            .filter(|s| !run.skipped.contains(s))
            .map(String::as_str)
            .collect();
        if !extra.is_empty() || !missing.is_empty() {
            println!(
                "conformance: {label}: skipped set differs from native-tmpfs:\n  \
                 skipped here only: {extra:?}\n  skipped on tmpfs only: {missing:?}"
            );
            problems.push(format!(
                "skipped set differs from native-tmpfs (+{} -{})",
                extra.len(),
                missing.len()
            ));
        }
    }
    Row {
        target: label.into(),
        suite: "pjdfstest",
        passed: run.passed.len().to_string(),
        failed: run.failed.len().to_string(),
        skipped: run.skipped.len().to_string(),
        seconds: 0.0,
        result: if problems.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(problems.join("; "))
        },
    }
}

fn abbreviate(names: &[&str]) -> String {
    let mut s = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
    if names.len() > 3 {
        let _ = write!(s, ", ... {} more", names.len() - 3);
    }
    s
}

fn run_fsx(bin: &Path, work: &Path, mnt: &Path, ops: u64, label: &str) -> Result<Row, String> {
    let dir = mnt.join("fsx");
    // A read-only mirror has it already (ServerGuard::start makes it in the source).
    if !dir.is_dir() {
        fs::create_dir(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    }
    let artifacts = work.join(format!("fsx-{}", label.split(' ').next().unwrap_or(label)));
    fs::create_dir_all(&artifacts).map_err(|e| format!("{}: {e}", artifacts.display()))?;
    let file = dir.join("fsx.data");
    let log = artifacts.join("fsx.log");
    let mut cmd = Command::new(bin);
    cmd.arg("-N")
        .arg(ops.to_string())
        .arg("-S")
        .arg(FSX_SEED.to_string())
        .arg("-f")
        .arg(work.join("fsx.toml"))
        .arg("-P")
        .arg(&artifacts)
        .arg(&file);
    println!("conformance: {label}: fsx seed {FSX_SEED}, {ops} operations");
    let code = run_logged(&mut cmd, &log, fsx_timeout(ops))?;
    let text = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    let ok = code == Some(0);
    if !ok {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        println!(
            "conformance: {label}: fsx exited {code:?} (log and artifacts in {}); replay: \
             {} -N {ops} -S {FSX_SEED} -f {} FILE\n{}",
            artifacts.display(),
            bin.display(),
            work.join("fsx.toml").display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(Row {
        target: label.into(),
        suite: "fsx",
        passed: if ok { ops.to_string() } else { "-".into() },
        failed: if ok { "0".into() } else { "1".into() },
        skipped: "-".into(),
        seconds: 0.0,
        result: if ok {
            Verdict::Pass
        } else {
            Verdict::Fail(format!("fsx exited {code:?} (seed {FSX_SEED})"))
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
chmod::eloop_comp                                                             ok
unlink::erofs_named                                                      skipped
\tRemounts (allow_remount) are not allowed in the configuration file
\x1b[34mrename::ctime\x1b[0m                                                         \x1b[31mFAILED\x1b[0m
\tctime of rename
\tassertion failed: left == right
utimensat::y2038                                             failed as expected
link::exdev_target                                                       skipped
\tNo secondary file-system has been configured.

Summary: 1 failed, 2 skipped, 1 passed, 1 expected failures, 5 total
";

    #[test]
    fn parses_pjdfstest_output() {
        let run = parse_pjdfstest(SAMPLE).unwrap();
        assert_eq!(run.passed, ["chmod::eloop_comp"]);
        assert_eq!(
            run.failed,
            [("rename::ctime".to_owned(), "ctime of rename".to_owned())]
        );
        assert_eq!(run.skipped, ["link::exdev_target", "unlink::erofs_named"]);
        assert_eq!(run.expected_failures, 1);
        // stderr shares the log, and the Summary line has no newline before pjdfstest's
        // final error.
        let joined = SAMPLE.replace("5 total\n", "5 totalError: Some tests have failed\n");
        assert_eq!(parse_pjdfstest(&joined).unwrap(), run);
    }

    #[test]
    fn rejects_inconsistent_or_truncated_output() {
        let wrong = SAMPLE.replace("2 skipped", "3 skipped");
        assert!(parse_pjdfstest(&wrong).unwrap_err().contains("skipped"));
        let cut = SAMPLE.replace("Summary", "Sum");
        assert_eq!(parse_pjdfstest(&cut).unwrap_err(), "no Summary line");
        assert!(parse_pjdfstest("weird::case   maybe\nSummary: 0 failed").is_err());
    }

    #[test]
    fn judges_against_the_baseline() {
        let run = PjdfstestRun {
            passed: vec!["a::b".into()],
            failed: vec![],
            skipped: vec!["x::y".into()],
            expected_failures: 0,
        };
        let same = ["x::y".to_owned()];
        assert_eq!(
            judge_pjdfstest("t", &run, Some(&same)).result,
            Verdict::Pass
        );
        let other = ["z::w".to_owned()];
        let Verdict::Fail(why) = judge_pjdfstest("t", &run, Some(&other)).result else {
            panic!("a different skipped set passed");
        };
        assert!(why.contains("+1 -1"), "{why}");
        assert_eq!(judge_pjdfstest("t", &run, None).result, Verdict::Pass);
    }

    #[test]
    fn finds_mount_types() {
        let info = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:50 / /tmp/a\\040b rw - tmpfs tmpfs rw
41 40 0:51 / /tmp/a\\040b rw,nosuid - fuse.memfs memfs rw
";
        assert_eq!(
            mount_type_in(info, Path::new("/tmp/a b")).as_deref(),
            Some("fuse.memfs")
        );
        assert_eq!(mount_type_in(info, Path::new("/")).as_deref(), Some("ext4"));
        assert_eq!(mount_type_in(info, Path::new("/tmp")), None);
    }

    /// The stop path of a server that does not exit after its unmount (stopped with
    /// SIGSTOP): killed after the timeout, reaped, nothing left mounted. Root and the
    /// passthroughfs binary (`cargo build -p passthroughfs`) are needed.
    #[test]
    fn a_server_that_hangs_is_killed_and_its_mount_removed() {
        let target_dir = crate::workspace_root().join("target");
        let binary = target_dir.join("debug/passthroughfs");
        if !crate::is_root() {
            testkit::skip("needs root (mount(2))");
            return;
        }
        if !binary.is_file() {
            // Not a kernel skip: `cargo build -p passthroughfs` makes it.
            eprintln!(
                "SKIP: no {} (cargo build -p passthroughfs)",
                binary.display()
            );
            return;
        }
        let Some(Kind::Server(spec)) = known_targets()
            .into_iter()
            .find(|t| t.name == "passthroughfs-ro")
            .map(|t| t.kind)
        else {
            panic!("no passthroughfs-ro target");
        };
        let work = TempDir::new("xconf-test").unwrap();
        let server = ServerGuard::start(&binary, &spec, work.path()).unwrap();
        let mnt = server.mountpoint.clone();
        assert_eq!(mount_type_at(&mnt).as_deref(), Some("fuse.passthroughfs"));
        assert!(fs::metadata(mnt.join("p")).unwrap().is_dir());
        let pid = server.child.as_ref().unwrap().id();
        crate::run(Command::new("kill").args(["-STOP", &pid.to_string()])).unwrap();
        let started = Instant::now();
        let err = server.stop().unwrap_err();
        assert!(err.contains("did not exit"), "{err}");
        assert!(started.elapsed() >= SERVER_STOP_TIMEOUT);
        assert_eq!(mount_type_at(&mnt), None);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} left behind"
        );
    }

    #[test]
    fn parses_arguments() {
        let o = parse_args(&["--targets", "memfs-dev", "--smoke", "--suites", "fsx"]).unwrap();
        let names: Vec<&str> = o.targets.iter().map(|t| t.name).collect();
        assert_eq!(names, ["memfs-dev"]);
        assert_eq!(o.ops, SMOKE_OPS);
        let o = parse_args(&["--targets", "memfs-uring,native", "--ops", "7"]).unwrap();
        let names: Vec<&str> = o.targets.iter().map(|t| t.name).collect();
        assert_eq!(names, ["native-tmpfs", "memfs-uring", "native-root"]);
        assert_eq!(o.ops, 7);
        assert!(parse_args(&["--targets", "nfs"]).is_err());
        assert!(parse_args(&["--ops", "0"]).is_err());
    }
}
