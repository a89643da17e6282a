//! Host tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{is_root, run};

pub(super) struct Tools {
    pub(super) qemu: PathBuf,
    pub(super) busybox: PathBuf,
}

/// Finds qemu-system-x86_64 and a busybox; installs `qemu-system-x86` and `busybox-static`
/// with apt-get when root, or says exactly what is missing.
pub(super) fn ensure_tools() -> Result<Tools, String> {
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
