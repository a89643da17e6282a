//! [`Connection`]: a FUSE connection's control files in fusectl
//! (`/sys/fs/fuse/connections/N/`) and its readahead in `/sys/class/bdi/0:N/`.

use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

/// Where fusectl is mounted.
pub const FUSECTL_DIR: &str = "/sys/fs/fuse/connections";

/// A FUSE connection, by number: the minor of the mount's device (`st_dev` = `0:N`), which
/// names its directory in fusectl. Get one from [`Mount::connection`](crate::Mount::connection).
///
/// Every call reads or writes one small sysfs/fusectl file (`open`, `read`/`write`, `close`,
/// one `String`), mounting fusectl at [`FUSECTL_DIR`] first if the connection's directory is
/// missing there (Linux 2.6.23; fusectl is normally mounted by systemd). Writes need root
/// (the files are 0600/0644 root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Connection {
    number: u32,
}

impl Connection {
    /// The connection with this number (no syscall; nothing is checked).
    pub fn new(number: u32) -> Connection {
        Connection { number }
    }

    /// The number (`N` of `/sys/fs/fuse/connections/N` and of the device `0:N`).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// The connection's fusectl directory, mounting fusectl first if it is not there.
    ///
    /// # Errors
    ///
    /// `ENOENT` when the directory is still missing after mounting fusectl (the connection
    /// is gone, or fusectl cannot be mounted: not root, no sysfs).
    pub fn dir(&self) -> io::Result<PathBuf> {
        let dir = Path::new(FUSECTL_DIR).join(self.number.to_string());
        if !dir.exists() {
            // EBUSY (already mounted) and EPERM (not root) both leave the check below to
            // decide.
            let _ = rustix::mount::mount(
                "fusectl",
                FUSECTL_DIR,
                "fusectl",
                rustix::mount::MountFlags::empty(),
                None,
            );
            if !dir.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "{}: no such FUSE connection (gone, or fusectl is not mounted at {FUSECTL_DIR}: \
                         mount -t fusectl none {FUSECTL_DIR})",
                        dir.display()
                    ),
                ));
            }
        }
        Ok(dir)
    }

    /// Aborts the connection (writes `abort`): every pending and future request of the mount
    /// fails with `ENOTCONN`, and reads of the server's `/dev/fuse` fds fail with `ENODEV`
    /// (the channel then reports the end). The mount stays until unmounted. Linux 2.6.23.
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`]; `EACCES`/`EPERM` when not root.
    pub fn abort(&self) -> io::Result<()> {
        std::fs::write(self.dir()?.join("abort"), "1")
    }

    /// Requests waiting to be read or answered (`waiting`).
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`]; `EINVAL` for an unreadable value.
    pub fn waiting(&self) -> io::Result<u32> {
        self.read_number("waiting")
    }

    /// `max_background`: how many background requests (readahead, async direct I/O...) may
    /// be in flight; the INIT reply sets it, root may change it here. Linux 4.19 for writing.
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`].
    pub fn max_background(&self) -> io::Result<u32> {
        self.read_number("max_background")
    }

    /// Sets `max_background` (root; the kernel refuses 0 and values above its limit with
    /// `EINVAL`).
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`]; `EINVAL`; `EACCES` when not root.
    pub fn set_max_background(&self, value: u32) -> io::Result<()> {
        self.write_number("max_background", value)
    }

    /// `congestion_threshold`: the number of background requests above which the connection
    /// is reported congested. Linux 4.19 for writing.
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`].
    pub fn congestion_threshold(&self) -> io::Result<u32> {
        self.read_number("congestion_threshold")
    }

    /// Sets `congestion_threshold` (root).
    ///
    /// # Errors
    ///
    /// Those of [`Connection::dir`]; `EINVAL`; `EACCES` when not root.
    pub fn set_congestion_threshold(&self, value: u32) -> io::Result<()> {
        self.write_number("congestion_threshold", value)
    }

    /// The mount's readahead in KiB (`/sys/class/bdi/0:N/read_ahead_kb`; the kernel starts at
    /// 128 or at the INIT reply's `max_readahead` if smaller).
    ///
    /// # Errors
    ///
    /// `ENOENT` when the connection (its backing device info) is gone.
    pub fn readahead_kb(&self) -> io::Result<u32> {
        parse_number(&self.bdi_file(), std::fs::read_to_string(self.bdi_file())?)
    }

    /// Sets the mount's readahead in KiB (root). The INIT reply can only lower readahead
    /// below 128 KiB; this raises it (larger sequential READs).
    ///
    /// # Errors
    ///
    /// `ENOENT` when the connection is gone; `EACCES` when not root.
    pub fn set_readahead_kb(&self, kib: u32) -> io::Result<()> {
        std::fs::write(self.bdi_file(), kib.to_string())
    }

    fn bdi_file(&self) -> PathBuf {
        PathBuf::from(format!("/sys/class/bdi/0:{}/read_ahead_kb", self.number))
    }

    fn read_number(&self, name: &str) -> io::Result<u32> {
        let file = self.dir()?.join(name);
        let text = std::fs::read_to_string(&file)?;
        parse_number(&file, text)
    }

    fn write_number(&self, name: &str, value: u32) -> io::Result<()> {
        std::fs::write(self.dir()?.join(name), value.to_string())
    }
}

fn parse_number(file: &Path, text: String) -> io::Result<u32> {
    text.trim().parse().map_err(|_| {
        io::Error::new(
            io::Error::from(Errno::INVAL).kind(),
            format!("{}: not a number: {:?}", file.display(), text.trim()),
        )
    })
}
