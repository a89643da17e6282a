//! Mounting without root through `fusermount3`, the set-user-ID helper of libfuse 3.
//!
//! The protocol: the caller makes a Unix stream socket pair and runs
//! `fusermount3 -o OPTIONS -- MOUNTPOINT` with the environment variable `_FUSE_COMMFD` naming
//! the child's end. `fusermount3` opens `/dev/fuse`, mounts it (checking the caller's rights
//! to the mount point and the options), and sends the open fd back over the socket as
//! `SCM_RIGHTS` ancillary data with one byte of payload. With `auto_unmount` it then stays
//! alive until the socket is closed, and unmounts the file system when it is. Unmounting is
//! `fusermount3 -u -z -- MOUNTPOINT` (`-z`: lazily, `MNT_DETACH`).
//!
//! The child's end is given to `fusermount3` as its standard input (so `_FUSE_COMMFD=0`): the
//! standard library then duplicates it into the child only, and no fd without close-on-exec
//! ever exists in this process, where another thread's fork could leak it.

use std::io::{IoSliceMut, Read as _};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SocketFlags, SocketType,
};

use crate::error::MountError;

/// The program name.
pub const FUSERMOUNT: &str = "fusermount3";

/// The environment variable that tells `fusermount3` which fd is the socket.
const COMMFD_ENV: &str = "_FUSE_COMMFD";

/// Directories searched after `PATH` (where distributions install it; `PATH` of a service
/// often lacks `/usr/bin` or `/bin`).
const FALLBACK_DIRS: [&str; 3] = ["/usr/bin", "/bin", "/usr/local/bin"];

/// Finds `fusermount3`: the directories of `PATH` in order, then `/usr/bin`, `/bin`,
/// `/usr/local/bin`; the first regular, executable file wins. Costs one `stat` per place
/// looked at; allocates the candidate paths.
///
/// # Errors
///
/// - [`MountError::FusermountNotFound`] listing every place looked at (install `fuse3`);
/// - [`MountError::FusermountNotSetuid`] when the program found is not set-user-ID root
///   and the caller is not root (it could not mount).
pub fn find_fusermount() -> Result<PathBuf, MountError> {
    let path_dirs = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path_dirs)
        .filter(|d| d.is_absolute())
        .chain(FALLBACK_DIRS.iter().map(PathBuf::from));
    find_in(dirs, rustix::process::geteuid().is_root())
}

/// The first regular, executable `fusermount3` in `dirs`; it must be setuid root unless
/// `as_root`.
fn find_in(dirs: impl Iterator<Item = PathBuf>, as_root: bool) -> Result<PathBuf, MountError> {
    use std::os::unix::fs::MetadataExt as _;
    let mut searched = Vec::new();
    for dir in dirs {
        let candidate = dir.join(FUSERMOUNT);
        if searched.contains(&candidate) {
            continue;
        }
        if let Ok(meta) = std::fs::metadata(&candidate) {
            let mode = meta.permissions().mode();
            if meta.is_file() && mode & 0o111 != 0 {
                let setuid_root = mode & 0o4000 != 0 && meta.uid() == 0;
                if !setuid_root && !as_root {
                    return Err(MountError::FusermountNotSetuid { program: candidate });
                }
                return Ok(candidate);
            }
        }
        searched.push(candidate);
    }
    Err(MountError::FusermountNotFound { searched })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fuse-dev-find-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_missing_program_names_every_place_looked_at_and_the_fix() {
        let (a, b) = (scratch("a"), scratch("b"));
        // Not executable: not a candidate.
        std::fs::write(a.join(FUSERMOUNT), b"").unwrap();
        let err = find_in([a.clone(), b.clone(), a.clone()].into_iter(), true).unwrap_err();
        match &err {
            MountError::FusermountNotFound { searched } => {
                assert_eq!(searched, &[a.join(FUSERMOUNT), b.join(FUSERMOUNT)]);
            }
            other => panic!("{other:?}"),
        }
        let text = err.to_string();
        assert!(
            text.contains(&b.join(FUSERMOUNT).display().to_string()),
            "{text}"
        );
        assert!(text.contains("apt-get install fuse3"), "{text}");
        assert_eq!(err.errno(), Some(Errno::NOENT));
        let _ = std::fs::remove_dir_all(&a);
        let _ = std::fs::remove_dir_all(&b);
    }

    #[test]
    fn an_executable_that_is_not_setuid_root_is_refused_for_users_only() {
        let dir = scratch("plain");
        let program = dir.join(FUSERMOUNT);
        std::fs::write(&program, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let as_user = find_in(std::iter::once(dir.clone()), false);
        let as_root = find_in(std::iter::once(dir.clone()), true);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            matches!(as_user, Err(MountError::FusermountNotSetuid { program: p }) if p == program)
        );
        assert_eq!(as_root.unwrap(), program);
    }
}

/// A running or finished `fusermount3` that mounted for us.
#[derive(Debug)]
pub(crate) struct Mounted {
    /// The `/dev/fuse` fd it passed.
    pub(crate) dev: OwnedFd,
    /// With `auto_unmount`: our end of the socket (closing it makes `fusermount3` unmount)
    /// and the still-running `fusermount3`, to be reaped once it ends.
    pub(crate) auto_unmount: Option<(OwnedFd, Child)>,
}

/// Runs `program -o options -- mount_point` and receives the `/dev/fuse` fd.
///
/// Syscalls: `socketpair`, `fork`+`exec` (through `std::process::Command`), `recvmsg`, two
/// `stat` ([`Device::check`](crate::Device::check) of the fd received), and, without
/// `auto_unmount`, `waitpid`. Allocates the command line and the captured stderr.
pub(crate) fn mount(
    program: &Path,
    options: &str,
    mount_point: &Path,
    auto_unmount: bool,
) -> Result<Mounted, MountError> {
    let io_err = |error: std::io::Error| MountError::FusermountIo {
        program: program.to_owned(),
        error,
    };
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| io_err(e.into()))?;
    let mut command = Command::new(program);
    if !options.is_empty() {
        command.arg("-o").arg(options);
    }
    command
        .arg("--")
        .arg(mount_point)
        .env(COMMFD_ENV, "0")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(io_err)?;
    // `command` holds the parent's copy of the child's end: drop it so that the socket
    // reports end-of-file once `fusermount3` exits without sending an fd.
    drop(command);

    let received = receive_fd(&ours);
    match received {
        Ok(Some(dev)) if crate::Device::check(std::os::fd::AsFd::as_fd(&dev)).is_err() => {
            let _ = child.kill();
            let _ = finish(program, child);
            Err(MountError::Fusermount {
                program: program.to_owned(),
                status: None,
                stderr: "passed an fd that is not /dev/fuse".into(),
            })
        }
        Ok(Some(dev)) => {
            if auto_unmount {
                // It stays alive until `ours` is closed; its stderr is not read any more.
                drop(child.stderr.take());
                Ok(Mounted {
                    dev,
                    auto_unmount: Some((ours, child)),
                })
            } else {
                let _ = finish(program, child);
                Ok(Mounted {
                    dev,
                    auto_unmount: None,
                })
            }
        }
        Ok(None) => Err(match finish(program, child) {
            Err(e) => e,
            Ok(()) => MountError::Fusermount {
                program: program.to_owned(),
                status: Some(0),
                stderr: "exited without passing a /dev/fuse fd".into(),
            },
        }),
        Err(errno) => {
            let _ = child.kill();
            let _ = finish(program, child);
            Err(io_err(errno.into()))
        }
    }
}

/// Runs `program -u -z -- mount_point` and waits for it (`fork`+`exec`, `waitpid`).
pub(crate) fn unmount(program: &Path, mount_point: &Path) -> Result<(), MountError> {
    let child = Command::new(program)
        .args(["-u", "-z", "--"])
        .arg(mount_point)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| MountError::FusermountIo {
            program: program.to_owned(),
            error,
        })?;
    finish(program, child)
}

/// Waits for `child`, reading its stderr; a failed exit is [`MountError::Fusermount`].
fn finish(program: &Path, mut child: Child) -> Result<(), MountError> {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let status = child.wait().map_err(|error| MountError::FusermountIo {
        program: program.to_owned(),
        error,
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(MountError::Fusermount {
            program: program.to_owned(),
            status: status.code(),
            stderr: stderr.trim().to_owned(),
        })
    }
}

/// Receives one fd sent with `SCM_RIGHTS`; `Ok(None)` at end of file (the sender exited
/// without sending one). Retries `EINTR`.
fn receive_fd(socket: &OwnedFd) -> Result<Option<OwnedFd>, Errno> {
    let mut byte = [0u8; 1];
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    loop {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let mut iov = [IoSliceMut::new(&mut byte)];
        match rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(msg) => {
                let mut fd = None;
                for message in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(fds) = message {
                        for received in fds {
                            // Keep the first; any extra fd is closed when dropped.
                            if fd.is_none() {
                                fd = Some(received);
                            }
                        }
                    }
                }
                if fd.is_some() || msg.bytes == 0 {
                    return Ok(fd);
                }
                // One byte without an fd: keep reading until an fd or end of file.
            }
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}
