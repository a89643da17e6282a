//! Comparing a directory tree with its mirror: names, types, sizes, modes, link targets,
//! extended attributes and file contents (hashed), as the demo and the example's tests need.

use std::collections::BTreeMap;
use std::fs;
use std::hash::Hasher;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What was compared.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compared {
    /// Directories walked.
    pub dirs: u64,
    /// Regular files whose contents were hashed on both sides.
    pub files: u64,
    /// Symbolic links whose targets were compared.
    pub symlinks: u64,
    /// Extended attributes compared.
    pub xattrs: u64,
    /// Bytes read from each side.
    pub bytes: u64,
}

/// A 64-bit FNV-1a hash of a file's contents, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> io::Result<(u64, u64)> {
    let mut file = fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = Fnv1a::default();
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finish(), total));
        }
        hasher.write(&buf[..n]);
        total += n as u64;
    }
}

/// FNV-1a, 64-bit: simple, stable across runs and platforms.
#[derive(Debug)]
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

fn xattrs(path: &Path) -> io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 64 * 1024];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let cname = std::ffi::CString::new(name)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidData))?;
        let mut value = vec![0u8; 64 * 1024];
        let len = rustix::fs::lgetxattr(path, cname.as_c_str(), &mut value[..])?;
        value.truncate(len);
        out.insert(name.to_vec(), value);
    }
    Ok(out)
}

fn mismatch(
    what: &str,
    path: &Path,
    a: impl std::fmt::Debug,
    b: impl std::fmt::Debug,
) -> io::Error {
    io::Error::other(format!(
        "{}: {what} differs: native {a:?}, mirror {b:?}",
        path.display()
    ))
}

/// Compares `native` with its mirror `mirror`, recursively; names in `skip` (at any depth) are
/// not descended into on either side. Fails on the first difference, naming it.
pub fn compare(native: &Path, mirror: &Path, skip: &[&str]) -> io::Result<Compared> {
    let mut c = Compared::default();
    compare_dir(native, mirror, skip, &mut c)?;
    Ok(c)
}

fn list(dir: &Path, skip: &[&str]) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(dir)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !skip.contains(&name.as_str()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn compare_dir(native: &Path, mirror: &Path, skip: &[&str], c: &mut Compared) -> io::Result<()> {
    c.dirs += 1;
    let a = list(native, skip)?;
    let b = list(mirror, skip)?;
    if a != b {
        return Err(mismatch("directory listing", native, &a, &b));
    }
    for name in a {
        let (pa, pb) = (native.join(&name), mirror.join(&name));
        let (ma, mb) = (fs::symlink_metadata(&pa)?, fs::symlink_metadata(&pb)?);
        if ma.mode() != mb.mode() {
            return Err(mismatch("mode", &pa, ma.mode(), mb.mode()));
        }
        if (ma.uid(), ma.gid()) != (mb.uid(), mb.gid()) {
            return Err(mismatch(
                "owner",
                &pa,
                (ma.uid(), ma.gid()),
                (mb.uid(), mb.gid()),
            ));
        }
        let xa = xattrs(&pa)?;
        let xb = xattrs(&pb)?;
        if xa != xb {
            return Err(mismatch("xattrs", &pa, &xa, &xb));
        }
        c.xattrs += xa.len() as u64;
        if ma.file_type().is_symlink() {
            let (ta, tb) = (fs::read_link(&pa)?, fs::read_link(&pb)?);
            if ta != tb {
                return Err(mismatch("link target", &pa, ta, tb));
            }
            c.symlinks += 1;
        } else if ma.is_dir() {
            compare_dir(&pa, &pb, skip, c)?;
        } else if ma.is_file() {
            if ma.len() != mb.len() {
                return Err(mismatch("size", &pa, ma.len(), mb.len()));
            }
            let (ha, la) = hash_file(&pa)?;
            let (hb, lb) = hash_file(&pb)?;
            if (ha, la) != (hb, lb) {
                return Err(mismatch("contents (hash, length)", &pa, (ha, la), (hb, lb)));
            }
            c.files += 1;
            c.bytes += la;
        }
    }
    Ok(())
}
