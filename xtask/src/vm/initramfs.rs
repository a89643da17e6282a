//! The initramfs.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::Options;
use super::binaries::Tests;
use super::kernels::Kernel;
use super::tools::Tools;

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
    pub(super) entries: BTreeMap<String, Entry>,
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
    pub(super) fn write(&self, out: &Path, scratch: &Path) -> Result<u64, String> {
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

pub(super) fn write_cpio_entry(
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

pub(super) fn pack_initramfs(
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
