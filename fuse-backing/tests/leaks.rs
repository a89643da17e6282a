//! No backing id and no backing file outlives its owner: ids closed by their guards are gone
//! (closing them again gives `ENOENT`), and the kernel's reference to the backing file goes
//! with them, which shows as the backing file's own file system becoming unmountable.
//!
//! The backing files live on a private tmpfs mounted for the test: `umount(2)` without
//! `MNT_DETACH` fails with `EBUSY` while any `struct file` of it is open, the kernel's
//! backing references included, and succeeds once none is.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fuse_backing::{Backing, BackingId, Errno, Passthrough, close};
use fuse_kernel_sys as sys;
use rustix::mount::{MountFlags, UnmountFlags};
use testkit::{InitOptions, MemFs, Needs, Session};

/// A tmpfs mounted on a fresh directory; detached on drop if still mounted.
struct Tmpfs {
    path: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    fn new() -> Tmpfs {
        let path = testkit::temp_dir("backing-tmpfs").expect("temp dir");
        rustix::mount::mount("testkit", &path, "tmpfs", MountFlags::empty(), c"size=16m")
            .expect("mount tmpfs");
        Tmpfs {
            path,
            mounted: true,
        }
    }

    /// Plain `umount(2)`: `EBUSY` while anything holds a file of it.
    fn try_unmount(&mut self) -> Result<(), Errno> {
        rustix::mount::unmount(&self.path, UnmountFlags::empty())?;
        self.mounted = false;
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = rustix::mount::unmount(&self.path, UnmountFlags::DETACH);
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}

fn content(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 253) as u8).collect()
}

/// An owning backing guard, as a server keeps one per open file.
type Guard = Backing<Passthrough, Arc<std::os::fd::OwnedFd>>;

/// A passthrough session serving `count` passthrough files `f0`, `f1`..., each backed by
/// its own registered id on `dir`; returns the session (served), the guards and the files'
/// contents (all the same).
fn serve_passthrough(dir: &Path, count: usize) -> (Session, Vec<Guard>, Vec<u8>) {
    let data = content(200_000);
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    let mut session = Session::mount_only(dev, &InitOptions::passthrough(1)).expect("mount");
    assert_ne!(session.negotiated.accepted & sys::FUSE_PASSTHROUGH, 0);
    let mut fs = MemFs::new();
    let mut guards = Vec::new();
    for i in 0..count {
        let path = dir.join(format!("backing{i}"));
        std::fs::write(&path, &data).expect("write backing file");
        let file = File::open(&path).expect("open backing file");
        let guard = Backing::<Passthrough, _>::open(session.dev.clone(), file.as_fd())
            .expect("BACKING_OPEN");
        // The kernel holds its own reference; ours goes now.
        drop(file);
        fs.add_passthrough_file(
            1,
            &format!("f{i}"),
            guard.id().open_out_backing_id(),
            data.len() as u64,
        );
        guards.push(guard);
    }
    session
        .spawn_server(session.dev.clone(), fs)
        .expect("server thread");
    (session, guards, data)
}

#[test]
fn closed_ids_are_gone_and_release_their_backing_files() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let mut tmpfs = Tmpfs::new();
    let (session, guards, data) = serve_passthrough(&tmpfs.path, 4);
    for i in 0..guards.len() {
        let read = std::fs::read(session.path().join(format!("f{i}"))).expect("read");
        assert!(read == data, "passthrough file {i} returned other bytes");
    }
    assert_eq!(
        session.counters.count(sys::FUSE_READ),
        0,
        "reads were passthrough"
    );

    // The kernel holds the backing files: their file system cannot be unmounted.
    assert_eq!(tmpfs.try_unmount(), Err(Errno::BUSY));

    let ids: Vec<BackingId<Passthrough>> = guards.iter().map(Backing::id).collect();
    drop(guards);
    for id in &ids {
        let e = close(session.dev.as_fd(), *id).expect_err("id closed by its guard");
        assert_eq!(e.errno(), Errno::NOENT, "{id:?}");
    }
    // The connection is still up, and nothing holds the backing files any more.
    assert!(testkit::is_mount_point(session.path()));
    tmpfs
        .try_unmount()
        .expect("backing files released once their ids are closed");
    session.finish().expect("session ends cleanly");
}

#[test]
fn ids_left_open_are_released_with_the_connection() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Passthrough) else {
        return;
    };
    let mut tmpfs = Tmpfs::new();
    let (session, guards, data) = serve_passthrough(&tmpfs.path, 3);
    let read = std::fs::read(session.path().join("f1")).expect("read");
    assert!(read == data);
    // A server that loses track of its ids (or dies): they are never closed by it.
    let ids: Vec<BackingId<Passthrough>> = guards.into_iter().map(Backing::into_raw).collect();
    let dev = session.dev.clone();
    assert_eq!(tmpfs.try_unmount(), Err(Errno::BUSY));

    // Unmounted, but our handle keeps the device fd and so the connection object alive: the
    // ids are still registered on it.
    session.finish().expect("session ends cleanly");
    assert_eq!(tmpfs.try_unmount(), Err(Errno::BUSY));
    // The last fd of the connection closes: the kernel frees every backing id with it.
    drop(dev);
    assert!(
        testkit::fault::wait_until(std::time::Duration::from_secs(10), || tmpfs
            .try_unmount()
            .is_ok()),
        "backing files of {} ids still referenced after the connection ended",
        ids.len()
    );
}
