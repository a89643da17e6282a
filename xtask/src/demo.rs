//! `cargo xtask demo`: the project's main job. Builds the example server, mirrors a fresh tree
//! through it, proves the mirror is exact, measures it beside the native file system, and
//! cleans up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::example::{ExampleServer, stat_value};

use crate::tree;

/// The demo's tree: hundreds of small files of 100 B .. 12 KiB in 12 directories, a 256 MiB
/// file, two symbolic links and extended attributes.
const TREE: tree::Spec = tree::Spec {
    large_mib: 256,
    layout: tree::Layout {
        dirs: 12,
        files_per_dir: 40,
    },
    sizes: tree::Sizes::Spread {
        min: 100,
        max: 12_100,
    },
    links_and_xattrs: true,
};

/// Sequential read throughput in MiB/s, page cache warm (one read first, then timed).
fn seq_read_mib_s(path: &Path) -> Result<f64, String> {
    tree::read_through(path)?;
    let start = Instant::now();
    let mut bytes = 0;
    while start.elapsed() < Duration::from_secs(2) {
        bytes += tree::read_through(path)?;
    }
    Ok(bytes as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64())
}

/// `stat` calls per second over `files`, for about a second.
fn stat_rate(files: &[PathBuf]) -> Result<f64, String> {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(1) {
        for f in files {
            std::fs::metadata(f).map_err(|e| format!("{}: {e}", f.display()))?;
            n += 1;
        }
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Runs the demo; `binary` builds the example first.
pub(crate) fn demo(root: &Path) -> Result<(), String> {
    if !testkit::is_root() {
        return Err(
            "the demo mounts a FUSE file system with mount(2), which needs root \
                    (CAP_SYS_ADMIN). Run it as root: sudo cargo xtask demo"
                .into(),
        );
    }
    crate::setup()?;
    let uring = testkit::uring_enabled();
    let binary = crate::build_example(root)?;

    let work = testkit::temp_dir("demo").map_err(|e| e.to_string())?;
    let result = (|| {
        let source = work.join("source");
        let mountpoint = work.join("mnt");
        std::fs::create_dir_all(&mountpoint).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let generated = tree::create(&source, TREE)?;
        let small = generated.small_files();
        println!(
            "demo: source tree: {} ({:.1}s)",
            generated.describe(),
            t.elapsed().as_secs_f64()
        );
        if !uring {
            println!(
                "demo: FUSE-over-io_uring is off, so the mirror runs over /dev/fuse. To use io_uring: \
                 echo Y > /sys/module/fuse/parameters/enable_uring (Linux 6.14+)"
            );
        }
        let server = ExampleServer::start(&binary, &source, &mountpoint, &["--stats"])
            .map_err(|e| e.to_string())?;
        println!(
            "demo: mounted {} -> {}",
            source.display(),
            mountpoint.display()
        );
        println!("demo: {}", server.ready);

        let t = Instant::now();
        let compared = testkit::tree::compare(&source, &mountpoint, &[])
            .map_err(|e| format!("MIRROR DIFFERS: {e}"))?;
        println!(
            "demo: verified: {} directories listed alike, {} files hash-equal ({} MiB each side), {} symlink targets, \
             {} xattrs, modes/sizes/owners equal ({:.1}s)",
            compared.dirs,
            compared.files,
            compared.bytes >> 20,
            compared.symlinks,
            compared.xattrs,
            t.elapsed().as_secs_f64()
        );

        let mounted_small: Vec<PathBuf> = small
            .iter()
            .filter_map(|p| p.strip_prefix(&source).ok().map(|r| mountpoint.join(r)))
            .collect();
        let native_seq = seq_read_mib_s(&source.join("large.bin"))?;
        let mounted_seq = seq_read_mib_s(&mountpoint.join("large.bin"))?;
        let native_stat = stat_rate(&small)?;
        let mounted_stat = stat_rate(&mounted_small)?;
        let (ok, stats, stderr) = server.stop().map_err(|e| e.to_string())?;
        if !ok {
            return Err(format!("the server failed: {stderr}"));
        }
        println!("demo: throughput (same run, same files):");
        println!("| workload | native | mounted | ratio |");
        println!("|---|---:|---:|---:|");
        println!(
            "| sequential read of large.bin, 1 MiB blocks, page cache warm | {native_seq:.0} MiB/s | {mounted_seq:.0} MiB/s | {:.2}x |",
            mounted_seq / native_seq
        );
        println!(
            "| stat of {} small files (attr timeout 1 s) | {native_stat:.0}/s | {mounted_stat:.0}/s | {:.2}x |",
            small.len(),
            mounted_stat / native_stat
        );
        print!("{stats}");
        let transport = server_field(&stats, "transport").unwrap_or_default();
        println!(
            "demo: transport {transport}; {} READ requests reached the server ({} opens went through passthrough); \
             {} ordinary requests came through /dev/fuse, {} through io_uring",
            stat_value(&stats, "read_requests").unwrap_or(0),
            stat_value(&stats, "passthrough_opens").unwrap_or(0),
            stat_value(&stats, "dev_ordinary_requests").unwrap_or(0),
            stat_value(&stats, "uring_requests").unwrap_or(0),
        );
        if testkit::is_mount_point(&mountpoint) {
            return Err(format!("{} is still mounted", mountpoint.display()));
        }
        println!("demo: unmounted; nothing left mounted");
        Ok(())
    })();
    let _ = rustix::mount::unmount(work.join("mnt"), rustix::mount::UnmountFlags::DETACH);
    let cleanup = std::fs::remove_dir_all(&work);
    result?;
    cleanup.map_err(|e| format!("cannot remove {}: {e}", work.display()))?;
    println!("demo: removed {}", work.display());
    Ok(())
}

fn server_field(stats: &str, key: &str) -> Option<String> {
    stats.lines().find_map(|l| {
        l.strip_prefix("stats: ")?
            .strip_prefix(key)?
            .strip_prefix(": ")
            .map(str::to_owned)
    })
}
