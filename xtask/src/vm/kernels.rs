//! Kernels from Debian's archive.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::{is_root, run};

use super::KernelSpec;

/// A kernel extracted from Debian's packages.
pub(super) struct Kernel {
    pub(super) package: String,
    pub(super) version: String,
    /// `uname -r` (the modules directory's name).
    pub(super) release: String,
    pub(super) vmlinuz: PathBuf,
    /// `fuse.ko` (uncompressed), when FUSE is a module of this kernel.
    pub(super) fuse_module: Option<PathBuf>,
}

/// An `apt-get`/`apt-cache` command that uses only the private configuration in `dir`.
pub(super) fn apt(dir: &Path, tool: &str) -> Command {
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

pub(super) fn output(cmd: &mut Command) -> Result<String, String> {
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
pub(super) fn version_key(s: &str) -> Vec<u64> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// The kernel version part of `linux-image-<v>-amd64[-unsigned]` when `<v>` is kernel
/// `series` (for example `6.1` matches `6.1.0-50` but not `6.12.117+deb13`); flavours other than
/// the plain amd64 one (cloud, rt, dbg) do not match.
pub(super) fn image_version<'a>(name: &'a str, series: &str) -> Option<&'a str> {
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
pub(super) fn fetch_kernel(work: &Path, spec: &KernelSpec) -> Result<Kernel, String> {
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
