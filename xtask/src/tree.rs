//! The one generator of source trees for the example to mirror: the demo's, the
//! benchmark's and the soak test's. A tree is an optional large file, `large.bin`, and small
//! files `small/dNN/fNNNNN` (`files_per_dir` in each of `dirs` directories) of random bytes
//! (from `/dev/urandom`: fast in a debug build, and different in every file and at every
//! offset, so a misplaced block is seen); optionally symbolic links and extended attributes.
//!
//! [`create`] makes a fresh tree; [`cached`] reuses one made earlier with the same
//! [`Spec`] (a stamp file, written last, names it, so an interrupted or different generation
//! is redone).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::proc::stop_requested;

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

    /// The path of small file number `i` relative to the root.
    pub(crate) fn relative(self, i: usize) -> PathBuf {
        PathBuf::from("small")
            .join(format!("d{:02}", i / self.files_per_dir))
            .join(format!("f{:05}", i % self.files_per_dir))
    }

    /// The path of small file number `i` under `root`.
    pub(crate) fn small_file(self, root: &Path, i: usize) -> PathBuf {
        root.join(self.relative(i))
    }
}

/// How big small file `i` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sizes {
    /// Spread over `min..=max` bytes.
    Spread { min: usize, max: usize },
    /// `sizes[i % sizes.len()]`: chosen edges (empty, page boundaries, several READs).
    Cycle(&'static [usize]),
}

impl Sizes {
    pub(crate) fn of(self, i: usize) -> usize {
        match self {
            Sizes::Spread { min, max } => min + (i * 7919) % (max.saturating_sub(min) + 1),
            Sizes::Cycle(sizes) => sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0),
        }
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Size of `large.bin` in MiB; 0 for none.
    pub(crate) large_mib: u64,
    pub(crate) layout: Layout,
    pub(crate) sizes: Sizes,
    /// Symbolic links (`link-to-large`, `small/d00/up-link`) and a `user.demo` extended
    /// attribute on the first five small files (skipped, with a note, where the file system
    /// has no user xattrs).
    pub(crate) links_and_xattrs: bool,
}

/// A generated tree.
#[derive(Debug, Clone)]
pub(crate) struct Tree {
    pub(crate) root: PathBuf,
    pub(crate) spec: Spec,
    /// Bytes in all small files.
    pub(crate) small_bytes: u64,
    /// Relative path and contents of every small file ([`create`] only; empty from
    /// [`cached`]).
    pub(crate) contents: Vec<(PathBuf, Vec<u8>)>,
}

pub(crate) const LARGE_NAME: &str = "large.bin";

impl Tree {
    /// The large file.
    pub(crate) fn large(&self) -> PathBuf {
        self.root.join(LARGE_NAME)
    }

    pub(crate) fn large_bytes(&self) -> u64 {
        self.spec.large_mib << 20
    }

    /// Every small file, absolute.
    pub(crate) fn small_files(&self) -> Vec<PathBuf> {
        let l = self.spec.layout;
        (0..l.count())
            .map(|i| l.small_file(&self.root, i))
            .collect()
    }

    pub(crate) fn describe(&self) -> String {
        let l = self.spec.layout;
        let mut s = format!("{}: ", self.root.display());
        if self.spec.large_mib > 0 {
            s.push_str(&format!(
                "{LARGE_NAME} ({} MiB of random bytes), ",
                self.spec.large_mib
            ));
        }
        s.push_str(&format!(
            "{} small files in {} directories ({:.1} MiB)",
            l.count(),
            l.dirs,
            self.small_bytes as f64 / f64::from(1 << 20),
        ));
        if self.spec.links_and_xattrs {
            s.push_str(", 2 symlinks, xattrs");
        }
        s
    }
}

fn io(what: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", what.display())
}

/// Creates a fresh tree under `dir` (which must not exist or be empty), keeping the small
/// files' contents for verification.
pub(crate) fn create(dir: &Path, spec: Spec) -> Result<Tree, String> {
    generate(dir, spec, true)
}

const STAMP: &str = ".source-tree";

/// Returns the tree at `dir` if it was made with `spec`, else (re)creates it there.
/// `Ok((tree, true))` when it was cached.
pub(crate) fn cached(dir: &Path, spec: Spec) -> Result<(Tree, bool), String> {
    let stamp = format!("v2 {spec:?}\n");
    let small_bytes = (0..spec.layout.count())
        .map(|i| spec.sizes.of(i) as u64)
        .sum();
    let tree = Tree {
        root: dir.to_owned(),
        spec,
        small_bytes,
        contents: Vec::new(),
    };
    let hit = std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == stamp)
        && std::fs::metadata(tree.large()).is_ok_and(|m| m.len() == tree.large_bytes());
    if hit {
        return Ok((tree, true));
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut tree = generate(dir, spec, false)?;
    rustix::fs::sync();
    std::fs::write(dir.join(STAMP), stamp).map_err(|e| io(dir, e))?;
    tree.contents.clear();
    Ok((tree, false))
}

fn generate(dir: &Path, spec: Spec, keep: bool) -> Result<Tree, String> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let urandom = Path::new("/dev/urandom");
    let mut random = std::fs::File::open(urandom).map_err(|e| io(urandom, e))?;
    let mut tree = Tree {
        root: dir.to_owned(),
        spec,
        small_bytes: 0,
        contents: Vec::new(),
    };
    if spec.large_mib > 0 {
        let mut block = vec![0u8; 1 << 20];
        let large = tree.large();
        let mut f = std::fs::File::create(&large).map_err(|e| io(&large, e))?;
        for mib in 0..spec.large_mib {
            if mib % 64 == 0 && stop_requested() {
                return Err("interrupted while generating the source tree".into());
            }
            random.read_exact(&mut block).map_err(|e| io(&large, e))?;
            f.write_all(&block).map_err(|e| io(&large, e))?;
        }
        f.sync_all().map_err(|e| io(&large, e))?;
    }
    let l = spec.layout;
    for d in 0..l.dirs {
        let sub = dir.join("small").join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).map_err(|e| io(&sub, e))?;
    }
    for i in 0..l.count() {
        let rel = l.relative(i);
        let path = dir.join(&rel);
        let mut data = vec![0u8; spec.sizes.of(i)];
        random.read_exact(&mut data).map_err(|e| io(&path, e))?;
        std::fs::write(&path, &data).map_err(|e| io(&path, e))?;
        tree.small_bytes += data.len() as u64;
        if keep {
            tree.contents.push((rel, data));
        }
    }
    if spec.links_and_xattrs {
        links_and_xattrs(&tree)?;
    }
    Ok(tree)
}

fn links_and_xattrs(tree: &Tree) -> Result<(), String> {
    let root = &tree.root;
    let link = root.join("link-to-large");
    std::os::unix::fs::symlink(LARGE_NAME, &link).map_err(|e| io(&link, e))?;
    let up = root.join("small/d00/up-link");
    std::os::unix::fs::symlink(format!("../../{LARGE_NAME}"), &up).map_err(|e| io(&up, e))?;
    for (i, path) in tree.small_files().iter().take(5).enumerate() {
        let value = format!("demo value {i}");
        if let Err(e) = rustix::fs::setxattr(
            path,
            c"user.demo",
            value.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        ) {
            println!(
                "note: cannot set xattrs on {} ({e}); xattrs are not compared",
                root.display()
            );
            break;
        }
    }
    Ok(())
}

/// Reads `path` to the end in 1 MiB blocks (to make its page cache warm); returns the bytes.
pub(crate) fn read_through(path: &Path) -> Result<u64, String> {
    let mut f = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match f.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(path, e)),
        }
    }
}

/// Stats every small file (to make the dentry and inode caches of the source warm).
pub(crate) fn warm_small(tree: &Tree) -> Result<(), String> {
    for p in tree.small_files() {
        std::fs::metadata(&p).map_err(|e| io(&p, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_caches_and_regenerates() {
        let dir = testkit::temp_dir("tree-unit").unwrap();
        let spec = Spec {
            large_mib: 1,
            layout: Layout {
                dirs: 2,
                files_per_dir: 3,
            },
            sizes: Sizes::Cycle(&[0, 1, 4097]),
            links_and_xattrs: true,
        };
        let fresh = create(&dir.join("a"), spec).unwrap();
        assert_eq!(fresh.contents.len(), 6);
        assert_eq!(fresh.small_bytes, 2 * (1 + 4097));
        let (rel, data) = &fresh.contents[5];
        assert_eq!(rel, Path::new("small/d01/f00002"));
        assert_eq!(&std::fs::read(dir.join("a").join(rel)).unwrap(), data);
        assert_eq!(std::fs::metadata(fresh.large()).unwrap().len(), 1 << 20);
        assert_eq!(
            std::fs::read_link(dir.join("a/small/d00/up-link")).unwrap(),
            Path::new("../../large.bin")
        );
        // Two files of 4097 random bytes differ.
        assert_ne!(fresh.contents[2].1, fresh.contents[5].1);

        let (first, was_cached) = cached(&dir.join("b"), spec).unwrap();
        assert!(!was_cached);
        let mark = first.small_files()[0].clone();
        let (_, was_cached) = cached(&dir.join("b"), spec).unwrap();
        assert!(was_cached);
        assert!(mark.exists());
        let other = Spec {
            large_mib: 2,
            ..spec
        };
        let (second, was_cached) = cached(&dir.join("b"), other).unwrap();
        assert!(!was_cached);
        assert_eq!(std::fs::metadata(second.large()).unwrap().len(), 2 << 20);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sizes_spread_and_cycle() {
        let spread = Sizes::Spread {
            min: 1024,
            max: 8192,
        };
        assert!((0..1000).all(|i| (1024..=8192).contains(&spread.of(i))));
        assert_eq!(spread.of(0), 1024);
        assert_eq!(Sizes::Cycle(&[5, 7]).of(3), 7);
        assert_eq!(Sizes::Cycle(&[]).of(3), 0);
    }
}
