//! The benchmark's source directory: one large file of random bytes and many small files in a
//! few directories. Generated once and cached (generation costs time): a stamp file written
//! last names the parameters, so that an interrupted or different generation is redone.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where the small files are: `small/dNN/fNNNNN`, `files_per_dir` in each of `dirs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) dirs: usize,
    pub(crate) files_per_dir: usize,
}

impl Layout {
    pub(crate) fn count(self) -> usize {
        self.dirs * self.files_per_dir
    }

    /// The path of small file number `i` under `root`.
    pub(crate) fn small_file(self, root: &Path, i: usize) -> PathBuf {
        root.join("small")
            .join(format!("d{:02}", i / self.files_per_dir))
            .join(format!("f{:05}", i % self.files_per_dir))
    }

    /// The size of small file `i`: spread over 1 KiB .. 8 KiB.
    fn size(i: usize) -> usize {
        1024 + (i * 7919) % (7 * 1024 + 1)
    }
}

/// A prepared source directory.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) root: PathBuf,
    pub(crate) large_name: &'static str,
    pub(crate) large_bytes: u64,
    pub(crate) layout: Layout,
    pub(crate) small_bytes: u64,
}

impl Source {
    pub(crate) fn large(&self) -> PathBuf {
        self.root.join(self.large_name)
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "{}: {} ({} MiB of random bytes), {} small files of 1-8 KiB in {} directories ({:.1} MiB)",
            self.root.display(),
            self.large_name,
            self.large_bytes >> 20,
            self.layout.count(),
            self.layout.dirs,
            self.small_bytes as f64 / f64::from(1 << 20),
        )
    }
}

const STAMP: &str = ".bench-source";

/// Returns the cached source at `dir` if it was made with these parameters, else (re)creates
/// it there.
pub(crate) fn prepare(dir: &Path, large_mib: u64, layout: Layout) -> Result<Source, String> {
    let small_bytes = (0..layout.count()).map(|i| Layout::size(i) as u64).sum();
    let source = Source {
        root: dir.to_owned(),
        large_name: "large.bin",
        large_bytes: large_mib << 20,
        layout,
        small_bytes,
    };
    let stamp = format!(
        "v1 large_mib={large_mib} dirs={} files_per_dir={}\n",
        layout.dirs, layout.files_per_dir
    );
    let cached = std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == stamp)
        && std::fs::metadata(source.large()).is_ok_and(|m| m.len() == source.large_bytes);
    if cached {
        println!(
            "bench: source (cached; delete the directory to regenerate): {}",
            source.describe()
        );
        return Ok(source);
    }
    let io = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let t = Instant::now();
    println!(
        "bench: generating the source in {} ({large_mib} MiB file, {} small files; cached for later runs)",
        dir.display(),
        layout.count()
    );
    let mut random =
        std::fs::File::open("/dev/urandom").map_err(|e| io(Path::new("/dev/urandom"), e))?;
    let mut block = vec![0u8; 1 << 20];
    let large = source.large();
    let mut f = std::fs::File::create(&large).map_err(|e| io(&large, e))?;
    for mib in 0..large_mib {
        if mib % 64 == 0 && crate::proc::stop_requested() {
            return Err("bench: interrupted while generating the source".into());
        }
        random.read_exact(&mut block).map_err(|e| io(&large, e))?;
        f.write_all(&block).map_err(|e| io(&large, e))?;
    }
    f.sync_all().map_err(|e| io(&large, e))?;
    drop(f);
    for d in 0..layout.dirs {
        let sub = layout
            .small_file(dir, d * layout.files_per_dir)
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default();
        std::fs::create_dir_all(&sub).map_err(|e| io(&sub, e))?;
    }
    for i in 0..layout.count() {
        let path = layout.small_file(dir, i);
        let data = &mut block[..Layout::size(i)];
        random.read_exact(data).map_err(|e| io(&path, e))?;
        std::fs::write(&path, data).map_err(|e| io(&path, e))?;
    }
    rustix::fs::sync();
    std::fs::write(dir.join(STAMP), stamp).map_err(|e| io(dir, e))?;
    println!(
        "bench: source ready in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        source.describe()
    );
    Ok(source)
}

/// Reads `path` to the end in 1 MiB blocks (to make its page cache warm).
pub(crate) fn read_through(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
}

/// Stats every small file (to make the dentry and inode caches of the source warm).
pub(crate) fn warm_small(source: &Source) -> Result<(), String> {
    for i in 0..source.layout.count() {
        let p = source.layout.small_file(&source.root, i);
        std::fs::metadata(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    Ok(())
}
