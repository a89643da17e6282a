//! `cargo xtask demo`: the project's main job. Builds the example server, mirrors a fresh tree
//! through it, proves the mirror is exact, measures it beside the native file system, and
//! cleans up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use testkit::example::{ExampleServer, stat_value};

const LARGE_FILE_MIB: usize = 256;
const SMALL_DIRS: usize = 12;
const SMALL_FILES_PER_DIR: usize = 40;

/// A small, fast, deterministic generator for file contents (xorshift64*).
struct Rng(u64);

impl Rng {
    fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let v = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Creates the demo's source tree: nested directories with hundreds of small files, one large
/// file, a symlink, a nested symlink and extended attributes. Returns the small files.
fn make_tree(root: &Path) -> Result<Vec<PathBuf>, String> {
    let io = |e: std::io::Error| e.to_string();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut small = Vec::new();
    for d in 0..SMALL_DIRS {
        let dir = root
            .join(format!("dir{d:02}"))
            .join(format!("nested{}", d % 3));
        std::fs::create_dir_all(&dir).map_err(io)?;
        for f in 0..SMALL_FILES_PER_DIR {
            let path = dir.join(format!("file{f:03}.dat"));
            let mut data = vec![0u8; 100 + (f * 397 + d * 13) % 12_000];
            rng.fill(&mut data);
            std::fs::write(&path, &data).map_err(io)?;
            small.push(path);
        }
    }
    let mut large = std::fs::File::create(root.join("large.bin")).map_err(io)?;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..LARGE_FILE_MIB {
        rng.fill(&mut block);
        large.write_all(&block).map_err(io)?;
    }
    std::os::unix::fs::symlink("large.bin", root.join("link-to-large")).map_err(io)?;
    std::os::unix::fs::symlink("../../large.bin", root.join("dir00/nested0/up-link"))
        .map_err(io)?;
    for (i, path) in small.iter().take(5).enumerate() {
        let value = format!("demo value {i}");
        if let Err(e) = rustix::fs::setxattr(
            path,
            c"user.demo",
            value.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        ) {
            println!(
                "demo: note: cannot set xattrs on {} ({e}); xattrs are not compared",
                root.display()
            );
            break;
        }
    }
    Ok(small)
}

/// Sequential read throughput in MiB/s, page cache warm (one read first, then timed).
fn seq_read_mib_s(path: &Path) -> Result<f64, String> {
    crate::bench::source::read_through(path)?;
    let start = Instant::now();
    let mut bytes = 0;
    while start.elapsed() < Duration::from_secs(2) {
        bytes += crate::bench::source::read_through(path)?;
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
        std::fs::create_dir_all(&source).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(&mountpoint).map_err(|e| e.to_string())?;
        let t = Instant::now();
        let small = make_tree(&source)?;
        println!(
            "demo: source tree: {} small files in {} directories, a {LARGE_FILE_MIB} MiB file, 2 symlinks, xattrs ({:.1}s)",
            small.len(),
            SMALL_DIRS * 2,
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
