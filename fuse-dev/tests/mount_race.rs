//! Kernel tests of the mount point held by fd: a racer thread exchanges the mount point (an
//! empty directory) with a symlink to a non-empty directory (`renameat2(RENAME_EXCHANGE)` in
//! a loop, what the owner of the parent directory can do to a root server) while mounts and
//! unmounts repeat; and the typed refusals of symlinks, non-directories and non-empty
//! directories.
//!
//! The race runs `FUSE_DEV_RACE_SECS` seconds (default 5; the long form is 60).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fuse_dev::fuse_wire::InitConfig;
use fuse_dev::{Channel, Device, Errno, MountError, MountOptions, UnmountOutcome};
use rustix::fs::{AtFlags, CWD, RenameFlags, StatxAttributes, StatxFlags};
use testkit::Needs;

const SUBTYPE: &str = "fusedevrace";

/// How long the race runs: `FUSE_DEV_RACE_SECS`, else 5 s.
fn race_duration() -> Duration {
    let secs = std::env::var("FUSE_DEV_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    Duration::from_secs(secs)
}

/// `statx` of `path` itself (no symlink followed) with `AT_STATX_DONT_SYNC`: a FUSE mount
/// answers from the kernel's cache, so no request waits for a server (ours has no thread).
fn stat_cached(path: &Path) -> rustix::fs::Statx {
    rustix::fs::statx(
        CWD,
        path,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::STATX_DONT_SYNC,
        StatxFlags::BASIC_STATS,
    )
    .unwrap()
}

/// `(st_dev, st_ino)` of `path` itself.
fn id_of(path: &Path) -> (u64, u64) {
    let st = stat_cached(path);
    (
        rustix::fs::makedev(st.stx_dev_major, st.stx_dev_minor),
        st.stx_ino,
    )
}

/// `(st_dev, st_ino)` of the directory at `path` as it is underneath any mount on it: the
/// identity a mount point had before it was mounted on, read from its parent's listing
/// (`d_ino`) and the parent's device.
fn id_of_dir(path: &Path) -> (u64, u64) {
    let parent = path.parent().unwrap();
    let name = path.file_name().unwrap();
    let entry = fs::read_dir(parent)
        .unwrap()
        .map(Result::unwrap)
        .find(|e| e.file_name() == name)
        .unwrap();
    (id_of(parent).0, std::os::unix::fs::DirEntryExt::ino(&entry))
}

/// Whether `path` itself is a symlink.
fn is_symlink(path: &Path) -> bool {
    u32::from(stat_cached(path).stx_mode) & 0o170000 == 0o120000
}

/// Whether `path` (not followed) is the root of a mount.
fn is_mount_root(path: &Path) -> bool {
    let st = stat_cached(path);
    assert!(
        st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT),
        "the kernel reports STATX_ATTR_MOUNT_ROOT since 5.8"
    );
    st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT)
}

/// The attacker: exchanges `mnt` and `other` in `parent` as fast as it can, unless paused.
/// Pausing takes the lock, so after [`Racer::pause`] returns no exchange is under way.
struct Racer {
    stop: Arc<AtomicBool>,
    paused: Arc<AtomicBool>,
    lock: Arc<Mutex<()>>,
    swaps: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Racer {
    fn start(parent: &Path) -> Racer {
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(true));
        let lock = Arc::new(Mutex::new(()));
        let swaps = Arc::new(AtomicU64::new(0));
        let dir = fs::File::open(parent).unwrap();
        let thread = {
            let (stop, paused, lock, swaps) =
                (stop.clone(), paused.clone(), lock.clone(), swaps.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if paused.load(Ordering::Relaxed) {
                        std::thread::yield_now();
                        continue;
                    }
                    let _held = lock.lock().unwrap();
                    if paused.load(Ordering::Relaxed) {
                        continue;
                    }
                    match rustix::fs::renameat_with(
                        &dir,
                        "mnt",
                        &dir,
                        "other",
                        RenameFlags::EXCHANGE,
                    ) {
                        Ok(()) => {
                            swaps.fetch_add(1, Ordering::Relaxed);
                        }
                        // A mount point cannot be renamed: once mounted, the directory stays.
                        Err(rustix::io::Errno::BUSY) => {}
                        Err(e) => panic!("renameat2(RENAME_EXCHANGE): {e}"),
                    }
                }
            })
        };
        Racer {
            stop,
            paused,
            lock,
            swaps,
            thread: Some(thread),
        }
    }

    fn run(&self) {
        self.paused.store(false, Ordering::Relaxed);
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::Relaxed);
        drop(self.lock.lock().unwrap());
    }
}

impl Drop for Racer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The scene: `parent/mnt` (an empty directory, the one checked) and `parent/other` (a
/// symlink to `target`, a non-empty directory), exchanged by the racer.
struct Scene {
    base: PathBuf,
    parent: PathBuf,
    target: PathBuf,
}

impl Scene {
    fn new() -> Scene {
        let base = testkit::temp_dir("race").unwrap();
        let parent = base.join("parent");
        let target = base.join("target");
        fs::create_dir(&parent).unwrap();
        fs::create_dir(&target).unwrap();
        fs::write(target.join("precious"), b"not to be covered").unwrap();
        fs::create_dir(parent.join("mnt")).unwrap();
        std::os::unix::fs::symlink(&target, parent.join("other")).unwrap();
        Scene {
            base,
            parent,
            target,
        }
    }

    fn mnt(&self) -> PathBuf {
        self.parent.join("mnt")
    }

    /// Puts the empty directory back at `mnt` (the racer is paused). Fails (`EBUSY`) only
    /// if a mount still sits on it under the other name.
    fn settle(&self) {
        if is_symlink(&self.mnt()) {
            let dir = fs::File::open(&self.parent).unwrap();
            rustix::fs::renameat_with(&dir, "mnt", &dir, "other", RenameFlags::EXCHANGE)
                .expect("the directory moves back (no mount on it)");
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        // A safety net for a failing run: a mount of ours left anywhere under our own
        // directory is aborted (fusectl) and detached, so that nothing stays behind.
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let base = self.base.to_str().unwrap_or("/nonexistent");
        for line in info.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(sep) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            let ours = fields.get(sep + 1) == Some(&format!("fuse.{SUBTYPE}").as_str());
            if !ours || !fields.get(4).is_some_and(|p| p.starts_with(base)) {
                continue;
            }
            if let Some(minor) = fields[2].strip_prefix("0:") {
                let _ = fs::write(format!("/sys/fs/fuse/connections/{minor}/abort"), "1");
            }
            eprintln!("cleaning up a mount left at {}", fields[4]);
            let _ = rustix::mount::unmount(fields[4], rustix::mount::UnmountFlags::DETACH);
        }
        let _ = fs::remove_dir_all(&self.base);
    }
}

#[test]
fn a_racing_symlink_never_redirects_the_mount() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let scene = Scene::new();
    let checked = id_of(&scene.mnt());
    let target_id = id_of(&scene.target);
    let racer = Racer::start(&scene.parent);
    let start = Instant::now();
    let (mut mounted, mut refused, mut detached) = (0u64, 0u64, 0u64);
    // The race runs for its duration, and on past it (up to a minute) until the racer has
    // won the open at least once: on a loaded machine that can take longer, and a run in
    // which it never won proves nothing.
    let raced = |refused: u64| {
        let elapsed = start.elapsed();
        elapsed < race_duration() || (refused == 0 && elapsed < Duration::from_secs(60))
    };
    while raced(refused) {
        let dev = Device::open().unwrap();
        racer.run();
        let result =
            fuse_dev::Mount::new(&dev, &scene.mnt(), &MountOptions::new().subtype(SUBTYPE));
        racer.pause();
        // Before anything else: the non-empty target is never covered, whatever happened.
        let target_covered = is_mount_root(&scene.target);
        assert!(
            !target_covered,
            "the non-empty target is a mount root: {result:?}"
        );
        assert_eq!(
            fs::read(scene.target.join("precious")).unwrap(),
            b"not to be covered"
        );
        // Where the checked directory is now: `mnt`, or `other` when the racer moved it. Once
        // a mount sits on it the kernel refuses to rename it (EBUSY), but an exchange already
        // under way when the mount was attached can still finish.
        let here = if is_symlink(&scene.mnt()) {
            scene.parent.join("other")
        } else {
            scene.mnt()
        };
        assert_eq!(id_of_dir(&here), checked);
        let mut mount = match result {
            Ok(mount) => mount,
            Err(e) => {
                assert!(!is_mount_root(&here), "refused, yet mounted");
                match e {
                    // The symlink seen at the one open.
                    MountError::Symlink { .. } => {
                        assert_eq!(e.errno(), Some(Errno::LOOP));
                        refused += 1;
                    }
                    // The directory renamed between the open and the attach: detached again.
                    MountError::Path {
                        errno: Errno::STALE,
                        ..
                    } => detached += 1,
                    other => panic!("unexpected refusal: {other:?}"),
                }
                scene.settle();
                continue;
            }
        };
        mounted += 1;
        // A live mount: INIT answered.
        let mut chan = Channel::new(dev);
        chan.handshake(&InitConfig::default()).expect("INIT");
        let identity = mount.identity().clone();
        assert_eq!(identity.mount_point(), scene.mnt());
        assert_eq!(
            (
                rustix::fs::makedev(identity.covered().dev.major, identity.covered().dev.minor),
                identity.covered().ino
            ),
            checked,
            "the identity names the checked directory as the one covered"
        );
        assert_eq!(identity.parent().ino, id_of(&scene.parent).1);
        // The checked directory, wherever it is, carries exactly this mount.
        assert!(is_mount_root(&here));
        assert_eq!(
            id_of(&here).0,
            rustix::fs::makedev(identity.device().major, identity.device().minor)
        );
        // A rename under way at the attach has finished before the mount is returned (the
        // checks wait for it), so a returned mount is where the path says.
        assert_eq!(here, scene.mnt(), "the mount ended up under another name");
        assert_eq!(mount.unmount().unwrap(), UnmountOutcome::Unmounted);
        drop(chan);
        // No dead mount: the checked directory is bare again, and the target untouched.
        assert!(!is_mount_root(&here), "left mounted");
        assert_eq!(id_of(&here), checked);
        scene.settle();
        assert!(!is_mount_root(&scene.target));
    }
    let swaps = racer.swaps.load(Ordering::Relaxed);
    drop(racer);
    eprintln!(
        "race for {:.1?}: {mounted} mounts on the checked directory, {refused} refused (symlink \
         at the open), {detached} detached again (renamed before the attach), {swaps} exchanges",
        start.elapsed()
    );
    // Both outcomes happened, so the racer really raced the mounts.
    assert!(mounted > 0, "no mount succeeded");
    assert!(refused > 0, "the racer never won the open: no race was run");
    assert!(!is_mount_root(&scene.target));
    assert_eq!(id_of(&scene.target), target_id);
}

#[test]
fn a_symlink_as_mount_point_or_on_its_path_is_a_typed_error() {
    let Some(_t) = testkit::kernel_test(Needs::Device) else {
        return;
    };
    let base = testkit::temp_dir("symlink").unwrap();
    let real = base.join("real");
    fs::create_dir_all(real.join("mnt")).unwrap();
    let link = base.join("link");
    std::os::unix::fs::symlink(real.join("mnt"), &link).unwrap();
    let via = base.join("via");
    std::os::unix::fs::symlink(&real, &via).unwrap();
    let dangling = base.join("dangling");
    std::os::unix::fs::symlink(base.join("nowhere"), &dangling).unwrap();
    let options = MountOptions::new().subtype(SUBTYPE);
    let results: Vec<_> = [&link, &via.join("mnt"), &dangling]
        .into_iter()
        .map(|p| {
            (
                p.clone(),
                fuse_dev::Mount::new(&Device::open().unwrap(), p, &options),
            )
        })
        .collect();
    let mnt_is_mounted = is_mount_root(&real.join("mnt"));
    let _ = fs::remove_dir_all(&base);
    assert!(!mnt_is_mounted);
    for (path, result) in results {
        match result {
            Err(e @ MountError::Symlink { .. }) => {
                assert_eq!(e.errno(), Some(Errno::LOOP));
                let text = e.to_string();
                assert!(text.contains("symbolic link"), "{text}");
                assert!(text.contains(&path.display().to_string()), "{text}");
                assert!(matches!(&e, MountError::Symlink { path: p } if *p == path));
            }
            other => panic!(
                "{}: expected MountError::Symlink, got {other:?}",
                path.display()
            ),
        }
    }
}

#[test]
fn a_file_and_a_non_empty_directory_are_refused_with_their_own_errors() {
    let Some(_t) = testkit::kernel_test(Needs::Device) else {
        return;
    };
    let base = testkit::temp_dir("kinds").unwrap();
    let file = base.join("file");
    fs::write(&file, b"x").unwrap();
    let full = base.join("full");
    fs::create_dir(&full).unwrap();
    fs::write(full.join("entry"), b"").unwrap();
    let options = MountOptions::new().subtype(SUBTYPE);
    let on_file = fuse_dev::Mount::new(&Device::open().unwrap(), &file, &options);
    let on_full = fuse_dev::Mount::new(&Device::open().unwrap(), &full, &options);
    let covered = is_mount_root(&full);
    let _ = fs::remove_dir_all(&base);
    assert!(!covered);
    match on_file {
        Err(e @ MountError::NotADirectory { .. }) => {
            assert_eq!(e.errno(), Some(Errno::NOTDIR));
            assert!(e.to_string().contains("is not a directory"), "{e}");
        }
        other => panic!("expected NotADirectory, got {other:?}"),
    }
    match on_full {
        Err(e @ MountError::NotEmpty { .. }) => {
            assert_eq!(e.errno(), Some(Errno::NOTEMPTY));
            assert!(e.to_string().contains("allow_nonempty"), "{e}");
        }
        other => panic!("expected NotEmpty, got {other:?}"),
    }
}

#[test]
fn a_non_empty_directory_is_mounted_when_allowed() {
    let Some(_t) = testkit::kernel_test(Needs::Kernel) else {
        return;
    };
    let dir = testkit::temp_dir("nonempty").unwrap();
    fs::write(dir.join("hidden"), b"").unwrap();
    let dev = Device::open().unwrap();
    let options = MountOptions::new().subtype(SUBTYPE).allow_nonempty(true);
    let mut mount = fuse_dev::Mount::new(&dev, &dir, &options).expect("allowed");
    let mut chan = Channel::new(dev);
    let init = chan.handshake(&InitConfig::default());
    let mounted = is_mount_root(&dir);
    let outcome = mount.unmount();
    drop(chan);
    let hidden_back = dir.join("hidden").exists();
    let _ = fs::remove_dir_all(&dir);
    init.expect("INIT");
    assert!(mounted);
    assert_eq!(outcome.unwrap(), UnmountOutcome::Unmounted);
    assert!(hidden_back);
}
