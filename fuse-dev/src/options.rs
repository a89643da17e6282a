//! [`MountOptions`]: what a FUSE mount is asked for, turned into the `mount(2)` data string or
//! the `fusermount3 -o` list, validated first.

use std::fmt::Write as _;

use rustix::fs::FileType;
use rustix::mount::{MountAttrFlags, MountFlags};

use crate::error::MountError;

/// The largest `mount(2)` data string the kernel reads (one page, NUL included).
const MAX_DATA: usize = 4095;

/// Options of a FUSE mount.
///
/// Built with chained setters from [`MountOptions::new`]; checked when mounting (or with
/// [`MountOptions::validate`]): a bad value is a [`MountError::InvalidOption`] before any
/// syscall. The defaults are those of `fusermount3`: a directory root, owned by the caller,
/// `nosuid` and `nodev`, no `allow_other`, no `default_permissions`; unlike `fusermount3`, a
/// non-empty mount point is refused unless [`MountOptions::allow_nonempty`] is set.
///
/// Building costs nothing; [`MountOptions::kernel_data`] and
/// [`MountOptions::fusermount_options`] allocate one `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    rootmode: u32,
    user_id: Option<u32>,
    group_id: Option<u32>,
    allow_other: bool,
    default_permissions: bool,
    read_only: bool,
    max_read: Option<u32>,
    blksize: Option<u32>,
    fsname: Option<String>,
    subtype: Option<String>,
    nosuid: bool,
    nodev: bool,
    noexec: bool,
    noatime: bool,
    auto_unmount: bool,
    allow_nonempty: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions::new()
    }
}

impl MountOptions {
    /// The defaults: `rootmode=040000` (a directory), `user_id`/`group_id` of the calling
    /// process (effective ids), `nosuid`, `nodev`, a mount point that must be empty; nothing
    /// else.
    pub fn new() -> MountOptions {
        MountOptions {
            rootmode: 0o040000,
            user_id: None,
            group_id: None,
            allow_other: false,
            default_permissions: false,
            read_only: false,
            max_read: None,
            blksize: None,
            fsname: None,
            subtype: None,
            nosuid: true,
            nodev: true,
            noexec: false,
            noatime: false,
            auto_unmount: false,
            allow_nonempty: false,
        }
    }

    /// `rootmode=`: the file type and mode bits of the root inode, as the kernel reports
    /// them before the server's first GETATTR answer (`040000`: a directory). Must carry a
    /// file type (`S_IFDIR`, `S_IFREG`...); mount(2) only: `fusermount3` takes the type of
    /// the mount point.
    pub fn rootmode(mut self, mode: u32) -> Self {
        self.rootmode = mode;
        self
    }

    /// `user_id=`: the user who owns the connection (only this user, and root, may access the
    /// mount without `allow_other`). Default: the caller's effective uid. With `fusermount3`
    /// it is always the caller's real uid; another value is refused.
    pub fn user_id(mut self, uid: u32) -> Self {
        self.user_id = Some(uid);
        self
    }

    /// `group_id=`: the group of the connection's owner. Default: the caller's effective gid.
    /// With `fusermount3` it is always the caller's real gid; another value is refused.
    pub fn group_id(mut self, gid: u32) -> Self {
        self.group_id = Some(gid);
        self
    }

    /// `allow_other`: let every user access the mount (not only `user_id`). Through
    /// `fusermount3` an unprivileged user needs `user_allow_other` in `/etc/fuse.conf`.
    pub fn allow_other(mut self, on: bool) -> Self {
        self.allow_other = on;
        self
    }

    /// `default_permissions`: the kernel checks file mode bits itself (from the attributes
    /// the server returns) before sending requests.
    pub fn default_permissions(mut self, on: bool) -> Self {
        self.default_permissions = on;
        self
    }

    /// `ro` (`MS_RDONLY`): mount read-only.
    pub fn read_only(mut self, on: bool) -> Self {
        self.read_only = on;
        self
    }

    /// `max_read=`: the largest READ the kernel sends (bytes).
    pub fn max_read(mut self, bytes: u32) -> Self {
        self.max_read = Some(bytes);
        self
    }

    /// `blksize=`: the block size of a `fuseblk` (block-device backed) mount. The kernel
    /// refuses it (`EINVAL`) for the plain `fuse` mounts this crate makes, so setting it makes
    /// mounting fail with [`MountError::InvalidOption`] before any syscall.
    pub fn blksize(mut self, bytes: u32) -> Self {
        self.blksize = Some(bytes);
        self
    }

    /// The source shown in `/proc/self/mountinfo` and `df` (default: the subtype, or
    /// `"fuse"`). No comma, backslash or NUL; not empty.
    pub fn fsname(mut self, name: impl Into<String>) -> Self {
        self.fsname = Some(name.into());
        self
    }

    /// The subtype: the file system type becomes `fuse.<subtype>`. No comma, backslash, NUL,
    /// `/` or whitespace; not empty.
    pub fn subtype(mut self, name: impl Into<String>) -> Self {
        self.subtype = Some(name.into());
        self
    }

    /// `MS_NOSUID` (default on).
    pub fn nosuid(mut self, on: bool) -> Self {
        self.nosuid = on;
        self
    }

    /// `MS_NODEV` (default on).
    pub fn nodev(mut self, on: bool) -> Self {
        self.nodev = on;
        self
    }

    /// `MS_NOEXEC`.
    pub fn noexec(mut self, on: bool) -> Self {
        self.noexec = on;
        self
    }

    /// `MS_NOATIME`.
    pub fn noatime(mut self, on: bool) -> Self {
        self.noatime = on;
        self
    }

    /// `auto_unmount` (`fusermount3` only): `fusermount3` stays alive beside the server and
    /// unmounts the file system when the server's socket closes (the process died without
    /// unmounting). Ignored by `mount(2)`.
    ///
    /// Limit observed with `fusermount3` 3.14 on Linux 6.18: it unmounts only when opening
    /// the mount point fails with `ENOTCONN`, and it opens it as root; without
    /// [`allow_other`](MountOptions::allow_other) the kernel refuses root with `EACCES`
    /// first, so a dead mount stays. Unmount explicitly ([`Mount::unmount`](crate::Mount::unmount),
    /// or the guard's drop) on every path you control.
    pub fn auto_unmount(mut self, on: bool) -> Self {
        self.auto_unmount = on;
        self
    }

    /// Mount even when the mount point directory has entries (they stay hidden until the
    /// unmount). Off by default: [`Mount::new`](crate::Mount::new) and
    /// [`Mount::fusermount`](crate::Mount::fusermount) then refuse a non-empty directory with
    /// [`MountError::NotEmpty`], checked on the directory they mount on (the fd held from the
    /// first look, see [`Mount::new`](crate::Mount::new)). Not passed to `fusermount3`, which
    /// (libfuse 3) mounts over non-empty directories itself.
    pub fn allow_nonempty(mut self, on: bool) -> Self {
        self.allow_nonempty = on;
        self
    }

    /// Whether [`MountOptions::allow_nonempty`] was set.
    pub fn allows_nonempty(&self) -> bool {
        self.allow_nonempty
    }

    /// Whether the root mode is a directory (then the mount point must be one).
    pub(crate) fn root_is_dir(&self) -> bool {
        FileType::from_raw_mode(self.rootmode) == FileType::Directory
    }

    /// Whether `auto_unmount` was asked for.
    pub fn wants_auto_unmount(&self) -> bool {
        self.auto_unmount
    }

    /// The `mount(2)` flags: `MS_NOSUID`, `MS_NODEV`, `MS_NOEXEC`, `MS_NOATIME`,
    /// `MS_RDONLY` as set.
    pub fn mount_flags(&self) -> MountFlags {
        let mut flags = MountFlags::empty();
        for (on, flag) in [
            (self.nosuid, MountFlags::NOSUID),
            (self.nodev, MountFlags::NODEV),
            (self.noexec, MountFlags::NOEXEC),
            (self.noatime, MountFlags::NOATIME),
            (self.read_only, MountFlags::RDONLY),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }

    /// The same switches as [`MountOptions::mount_flags`], as `MOUNT_ATTR_*` of `fsmount(2)`
    /// (the new mount API, Linux 5.2).
    pub(crate) fn mount_attrs(&self) -> MountAttrFlags {
        let mut flags = MountAttrFlags::empty();
        for (on, flag) in [
            (self.nosuid, MountAttrFlags::MOUNT_ATTR_NOSUID),
            (self.nodev, MountAttrFlags::MOUNT_ATTR_NODEV),
            (self.noexec, MountAttrFlags::MOUNT_ATTR_NOEXEC),
            (self.noatime, MountAttrFlags::MOUNT_ATTR_NOATIME),
            (self.read_only, MountAttrFlags::MOUNT_ATTR_RDONLY),
        ] {
            if on {
                flags |= flag;
            }
        }
        flags
    }

    /// Whether the file system is read-only (`ro`: the superblock flag, set through
    /// `fsconfig(2)` on the new mount API).
    pub(crate) fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The subtype, if any (`fsconfig(2)` key `subtype`).
    pub(crate) fn subtype_name(&self) -> Option<&str> {
        self.subtype.as_deref()
    }

    /// The file system type for `mount(2)`: `fuse` or `fuse.<subtype>`.
    pub fn fs_type(&self) -> String {
        match &self.subtype {
            Some(s) => format!("fuse.{s}"),
            None => "fuse".to_owned(),
        }
    }

    /// The source for `mount(2)`: the fsname, else the subtype, else `"fuse"`.
    pub fn source(&self) -> &str {
        self.fsname
            .as_deref()
            .or(self.subtype.as_deref())
            .unwrap_or("fuse")
    }

    /// Checks every option without any syscall.
    ///
    /// # Errors
    ///
    /// [`MountError::InvalidOption`] naming the option: an empty fsname or subtype, or one
    /// with a comma, backslash or NUL (they would split or escape the option list); a
    /// subtype with `/` or whitespace; a `rootmode` without a valid file type; `blksize`
    /// (fuseblk only).
    pub fn validate(&self) -> Result<(), MountError> {
        let invalid = |option: &'static str, reason: &'static str| {
            Err(MountError::InvalidOption { option, reason })
        };
        for (option, value) in [("fsname", &self.fsname), ("subtype", &self.subtype)] {
            let Some(value) = value else { continue };
            if value.is_empty() {
                return invalid(option, "is empty");
            }
            if value.contains([',', '\\', '\0']) {
                return invalid(
                    option,
                    "contains a comma, backslash or NUL, which would split the option list",
                );
            }
            if option == "subtype" && value.contains(|c: char| c == '/' || c.is_whitespace()) {
                return invalid(option, "contains '/' or whitespace");
            }
        }
        if matches!(FileType::from_raw_mode(self.rootmode), FileType::Unknown)
            || self.rootmode & !0o177777 != 0
        {
            return invalid(
                "rootmode",
                "needs a file type (S_IFDIR 040000, S_IFREG 0100000, ...) and no other bits",
            );
        }
        if self.blksize.is_some() {
            return invalid(
                "blksize",
                "the kernel accepts it only for fuseblk (block-device) mounts, which this crate \
                 does not make (mount(2) would fail with EINVAL)",
            );
        }
        Ok(())
    }

    /// The `mount(2)` data string for `/dev/fuse` fd number `fd`:
    /// `fd=N,rootmode=O,user_id=U,group_id=G[,default_permissions][,allow_other][,max_read=N]`.
    /// Missing ids are the caller's effective ids (`geteuid`/`getegid`, no syscall cost of
    /// note). A few small allocations (the pairs of `kernel_params`, joined).
    ///
    /// # Errors
    ///
    /// Those of [`MountOptions::validate`], and [`MountError::InvalidOption`] when the string
    /// would not fit the kernel's one page.
    pub fn kernel_data(&self, fd: i32) -> Result<String, MountError> {
        let mut data = String::new();
        for (key, value) in self.kernel_params(fd)? {
            if !data.is_empty() {
                data.push(',');
            }
            data.push_str(key);
            if let Some(value) = value {
                let _ = write!(data, "={value}");
            }
        }
        if data.len() > MAX_DATA {
            return Err(MountError::InvalidOption {
                option: "data",
                reason: "longer than the page the kernel reads",
            });
        }
        Ok(data)
    }

    /// The options FUSE itself parses, as `(key, value)` pairs (`None`: a flag): the words of
    /// [`MountOptions::kernel_data`], and the keys of `fsconfig(2)` on the new mount API.
    /// Validated first.
    pub(crate) fn kernel_params(
        &self,
        fd: i32,
    ) -> Result<Vec<(&'static str, Option<String>)>, MountError> {
        self.validate()?;
        let uid = self
            .user_id
            .unwrap_or_else(|| rustix::process::geteuid().as_raw());
        let gid = self
            .group_id
            .unwrap_or_else(|| rustix::process::getegid().as_raw());
        let mut params = vec![
            ("fd", Some(fd.to_string())),
            ("rootmode", Some(format!("{:o}", self.rootmode))),
            ("user_id", Some(uid.to_string())),
            ("group_id", Some(gid.to_string())),
        ];
        if self.default_permissions {
            params.push(("default_permissions", None));
        }
        if self.allow_other {
            params.push(("allow_other", None));
        }
        if let Some(n) = self.max_read {
            params.push(("max_read", Some(n.to_string())));
        }
        Ok(params)
    }

    /// The option list given to `fusermount3 -o`: the same options in `fusermount3`'s words
    /// (mount flags by name, `fsname=`, `subtype=`, `auto_unmount`), without `fd`,
    /// `rootmode`, `user_id`, `group_id`, which `fusermount3` sets itself. One allocation.
    ///
    /// # Errors
    ///
    /// Those of [`MountOptions::validate`], and [`MountError::InvalidOption`] when `user_id`
    /// or `group_id` was set to something other than the caller's real ids.
    pub fn fusermount_options(&self) -> Result<String, MountError> {
        self.validate()?;
        if self
            .user_id
            .is_some_and(|u| u != rustix::process::getuid().as_raw())
        {
            return Err(MountError::InvalidOption {
                option: "user_id",
                reason: "fusermount3 always mounts for the caller's real uid",
            });
        }
        if self
            .group_id
            .is_some_and(|g| g != rustix::process::getgid().as_raw())
        {
            return Err(MountError::InvalidOption {
                option: "group_id",
                reason: "fusermount3 always mounts for the caller's real gid",
            });
        }
        let mut parts: Vec<String> = Vec::new();
        for (on, name) in [
            (self.default_permissions, "default_permissions"),
            (self.allow_other, "allow_other"),
            (self.read_only, "ro"),
            (self.nosuid, "nosuid"),
            (self.nodev, "nodev"),
            (self.noexec, "noexec"),
            (self.noatime, "noatime"),
            (self.auto_unmount, "auto_unmount"),
        ] {
            if on {
                parts.push(name.to_owned());
            }
        }
        if let Some(n) = self.max_read {
            parts.push(format!("max_read={n}"));
        }
        if let Some(s) = &self.fsname {
            parts.push(format!("fsname={s}"));
        }
        if let Some(s) = &self.subtype {
            parts.push(format!("subtype={s}"));
        }
        Ok(parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_data_lists_the_options_in_the_kernels_words() {
        let opts = MountOptions::new()
            .user_id(1000)
            .group_id(100)
            .allow_other(true)
            .default_permissions(true)
            .max_read(131072);
        assert_eq!(
            opts.kernel_data(7).unwrap(),
            "fd=7,rootmode=40000,user_id=1000,group_id=100,default_permissions,allow_other,max_read=131072"
        );
        assert_eq!(opts.fs_type(), "fuse");
        assert_eq!(opts.source(), "fuse");
        let named = MountOptions::new().subtype("hello").fsname("src");
        assert_eq!(named.fs_type(), "fuse.hello");
        assert_eq!(named.source(), "src");
        assert_eq!(MountOptions::new().subtype("hello").source(), "hello");
    }

    #[test]
    fn mount_flags_follow_the_switches() {
        assert_eq!(
            MountOptions::new().mount_flags(),
            MountFlags::NOSUID | MountFlags::NODEV
        );
        let all = MountOptions::new()
            .nosuid(false)
            .nodev(false)
            .noexec(true)
            .noatime(true)
            .read_only(true);
        assert_eq!(
            all.mount_flags(),
            MountFlags::NOEXEC | MountFlags::NOATIME | MountFlags::RDONLY
        );
    }

    #[test]
    fn names_that_would_split_the_option_list_are_refused() {
        for bad in ["a,b", "a\0b", "a\\b", ""] {
            for opts in [
                MountOptions::new().fsname(bad),
                MountOptions::new().subtype(bad),
            ] {
                let err = opts.kernel_data(3).unwrap_err();
                assert!(
                    matches!(err, MountError::InvalidOption { option, .. } if option == "fsname" || option == "subtype"),
                    "{bad:?}: {err:?}"
                );
                assert!(opts.fusermount_options().is_err());
            }
        }
        assert!(MountOptions::new().subtype("a b").validate().is_err());
        assert!(MountOptions::new().subtype("a/b").validate().is_err());
        assert!(MountOptions::new().fsname("a b/c").validate().is_ok());
    }

    #[test]
    fn rootmode_needs_a_file_type_and_blksize_is_refused() {
        assert!(MountOptions::new().rootmode(0o755).validate().is_err());
        assert!(
            MountOptions::new()
                .rootmode(0o1_000_000)
                .validate()
                .is_err()
        );
        assert!(MountOptions::new().rootmode(0o100644).validate().is_ok());
        assert_eq!(
            MountOptions::new()
                .rootmode(0o100644)
                .kernel_data(4)
                .unwrap(),
            format!(
                "fd=4,rootmode=100644,user_id={},group_id={}",
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw()
            )
        );
        assert!(matches!(
            MountOptions::new().blksize(4096).validate(),
            Err(MountError::InvalidOption {
                option: "blksize",
                ..
            })
        ));
    }

    #[test]
    fn fusermount_options_leave_the_reserved_ones_out() {
        let opts = MountOptions::new()
            .read_only(true)
            .auto_unmount(true)
            .fsname("src")
            .subtype("hello")
            .max_read(65536);
        assert_eq!(
            opts.fusermount_options().unwrap(),
            "ro,nosuid,nodev,auto_unmount,max_read=65536,fsname=src,subtype=hello"
        );
        let other_uid = rustix::process::getuid().as_raw().wrapping_add(1);
        assert!(matches!(
            MountOptions::new().user_id(other_uid).fusermount_options(),
            Err(MountError::InvalidOption {
                option: "user_id",
                ..
            })
        ));
    }
}
