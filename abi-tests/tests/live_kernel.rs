//! The running kernel speaks our layouts: mount a FUSE file system with mount(2), decode the
//! kernel's INIT request with `fuse_in_header` and `fuse_init_in`, answer with our
//! `fuse_init_out`, then `stat` the mount point and decode the GETATTR it causes with
//! `fuse_getattr_in`; the attributes we answer with `fuse_attr_out` must come back from
//! `stat` unchanged.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use fuse_kernel_sys as sys;
use testkit::{InitOptions, Mount, Needs, bytes_of, init_reply, read_request, read_struct, reply};

/// How long the kernel gets to send GETATTR after the stat started.
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn kernel_init_and_getattr_decode_with_our_layouts() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Kernel) else {
        return;
    };
    let dev = Arc::new(testkit::open_dev().expect("open /dev/fuse"));
    // Declared after `dev`, so dropped (unmounted) first, on success and on panic alike.
    let mount = Mount::new(dev.as_fd()).expect("mount(2) of a FUSE file system");
    let mut buf = vec![0u8; (1 << 20) + 4096];

    // --- INIT ----------------------------------------------------------------------------
    let n = loop {
        match rustix::io::read(dev.as_fd(), &mut buf) {
            Ok(n) => break n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => panic!("reading INIT from /dev/fuse: {e}"),
        }
    };
    let header: sys::fuse_in_header = read_struct(&buf[..n]).expect("a whole fuse_in_header");
    let init_in: sys::fuse_init_in =
        read_struct(&buf[size_of::<sys::fuse_in_header>()..n]).expect("a whole fuse_init_in");
    println!("INIT header: {header:?}");
    println!("INIT request: {init_in:?}");
    assert_eq!(
        header.len as usize, n,
        "fuse_in_header.len is the bytes read"
    );
    assert_eq!(
        header.len as usize,
        size_of::<sys::fuse_in_header>() + size_of::<sys::fuse_init_in>(),
        "INIT carries exactly one fuse_init_in"
    );
    assert_eq!(header.opcode, sys::FUSE_INIT, "fuse_in_header.opcode");
    assert_ne!(header.unique, 0, "fuse_in_header.unique");
    assert_eq!(header.nodeid, 0, "INIT concerns no inode");
    assert_eq!(header.total_extlen, 0, "INIT has no extensions");
    assert_eq!(header.padding, 0);
    assert_eq!(
        init_in.major,
        sys::FUSE_KERNEL_VERSION,
        "fuse_init_in.major"
    );
    assert!(init_in.minor >= 1, "fuse_init_in.minor {}", init_in.minor);
    assert!(
        init_in.max_readahead != 0 && init_in.max_readahead % 4096 == 0,
        "fuse_init_in.max_readahead {} decodes as a whole number of pages",
        init_in.max_readahead
    );
    assert_eq!(init_in.unused, [0; 11], "fuse_init_in.unused is zero");
    let ext = init_in.flags & sys::FUSE_INIT_EXT != 0;
    if init_in.minor >= 36 {
        assert!(ext, "a 7.36+ kernel offers FUSE_INIT_EXT");
    }
    let offered = u64::from(init_in.flags)
        | if ext {
            u64::from(init_in.flags2) << 32
        } else {
            0
        };
    let names: Vec<&str> = abi_tests::tables::init_flags()
        .into_iter()
        .filter(|(_, bit)| offered & bit != 0)
        .map(|(name, _)| name)
        .collect();
    let known = abi_tests::tables::init_flags()
        .iter()
        .fold(0u64, |all, (_, bit)| all | bit);
    println!(
        "kernel protocol {}.{}; INIT flags offered ({offered:#x}): {}",
        init_in.major,
        init_in.minor,
        names.join(" ")
    );
    // 7.46 (Linux 7.3) offers io_uring buffer pools exactly when it offers io_uring; older
    // kernels never set bit 43 (a kernel running the unmerged fuse-iomap series would, for
    // FUSE_IOMAP; none is tested here).
    let uring = offered & sys::FUSE_OVER_IO_URING != 0;
    let bufpool = offered & sys::FUSE_HAS_IO_URING_BUFPOOL != 0;
    if init_in.minor >= 46 {
        assert_eq!(
            bufpool, uring,
            "7.46: FUSE_HAS_IO_URING_BUFPOOL is offered with FUSE_OVER_IO_URING"
        );
    } else {
        assert!(!bufpool, "7.{} offers bit 43", init_in.minor);
    }
    println!(
        "FUSE_OVER_IO_URING offered: {uring}; FUSE_HAS_IO_URING_BUFPOOL offered: {bufpool} (minor {})",
        init_in.minor
    );
    if offered & !known != 0 {
        println!(
            "offered flags without a name in fuse-kernel-sys: {:#x}",
            offered & !known
        );
    }

    let negotiated = init_reply(&init_in, &InitOptions::default()).expect("INIT agreed");
    reply(
        dev.as_fd(),
        header.unique,
        0,
        &[bytes_of(&negotiated.init_out)],
    )
    .expect("INIT reply");

    // --- stat -> GETATTR -------------------------------------------------------------------
    let attr = sys::fuse_attr {
        ino: sys::FUSE_ROOT_ID,
        size: 12_345,
        blocks: 7,
        atime: 1_600_000_001,
        mtime: 1_600_000_002,
        ctime: 1_600_000_003,
        atimensec: 11,
        mtimensec: 22,
        ctimensec: 33,
        mode: libc::S_IFDIR | 0o751,
        nlink: 3,
        uid: 1234,
        gid: 5678,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    };
    let attr_out = sys::fuse_attr_out {
        attr_valid: 0,
        attr_valid_nsec: 0,
        dummy: 0,
        attr,
    };

    let done = Arc::new(AtomicBool::new(false));
    let stat_tid = Arc::new(AtomicU32::new(0));
    let path = mount.path().to_owned();
    let stat_thread = {
        let done = done.clone();
        let stat_tid = stat_tid.clone();
        std::thread::spawn(move || {
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            stat_tid.store(tid.unsigned_abs(), Ordering::SeqCst);
            let result = rustix::fs::stat(&path);
            done.store(true, Ordering::SeqCst);
            result
        })
    };
    // If the kernel never sends GETATTR, abort the connection so that our read returns.
    let watchdog = {
        let done = done.clone();
        let connection = mount.connection();
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > DEADLINE {
                    if let Some(n) = connection {
                        let _ = testkit::abort_connection(n);
                    }
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        })
    };

    let mut getattr = None;
    let mut others = Vec::new();
    while getattr.is_none() {
        let request = read_request(dev.as_fd(), &mut buf)
            .expect("read from /dev/fuse")
            .expect("connection ended before GETATTR (watchdog abort?)");
        if request.opcode() != sys::FUSE_GETATTR {
            // STATX and anything else: not implemented, the kernel falls back to GETATTR.
            others.push(request.opcode());
            reply(dev.as_fd(), request.header.unique, libc::ENOSYS, &[]).expect("reply");
            continue;
        }
        let arg: sys::fuse_getattr_in = request.arg().expect("a whole fuse_getattr_in");
        println!("GETATTR header: {:?}", request.header);
        println!("GETATTR request: {arg:?}");
        assert_eq!(
            request.header.len as usize,
            size_of::<sys::fuse_in_header>() + size_of::<sys::fuse_getattr_in>(),
            "GETATTR carries exactly one fuse_getattr_in"
        );
        assert_eq!(request.header.nodeid, sys::FUSE_ROOT_ID);
        assert_eq!(request.header.uid, rustix::process::geteuid().as_raw());
        assert_eq!(
            request.header.pid,
            stat_tid.load(Ordering::SeqCst),
            "fuse_in_header.pid is the calling thread's id"
        );
        assert_eq!(arg.getattr_flags & !sys::FUSE_GETATTR_FH, 0);
        assert_eq!(arg.dummy, 0, "fuse_getattr_in.dummy");
        if arg.getattr_flags & sys::FUSE_GETATTR_FH == 0 {
            assert_eq!(arg.fh, 0, "no file handle for a path stat");
        }
        reply(
            dev.as_fd(),
            request.header.unique,
            0,
            &[bytes_of(&attr_out)],
        )
        .expect("GETATTR reply");
        getattr = Some(arg);
    }
    let st = stat_thread
        .join()
        .expect("stat thread")
        .expect("stat of the mount point");
    let timed_out = watchdog.join().expect("watchdog");
    assert!(!timed_out, "the watchdog aborted the connection");
    println!("other requests before GETATTR: {others:?}");

    // The kernel decoded our fuse_attr_out: stat reports what we sent.
    assert_eq!(st.st_ino, attr.ino);
    assert_eq!(st.st_size as u64, attr.size);
    assert_eq!(st.st_blocks as u64, attr.blocks);
    assert_eq!(st.st_mode, attr.mode);
    assert_eq!(st.st_nlink as u32, attr.nlink);
    assert_eq!(st.st_uid, attr.uid);
    assert_eq!(st.st_gid, attr.gid);
    assert_eq!(st.st_blksize as u32, attr.blksize);
    assert_eq!(st.st_mtime as u64, attr.mtime);
    assert_eq!(st.st_mtime_nsec as u32, attr.mtimensec);
    assert_eq!(st.st_ctime as u64, attr.ctime);
    assert_eq!(st.st_atime as u64, attr.atime);

    let mount_point = mount.path().to_owned();
    drop(mount);
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read /proc/self/mounts");
    assert!(
        !mounts.contains(mount_point.to_str().expect("UTF-8 temp path")),
        "mount left behind"
    );
}
