//! The scaffolding itself against the kernel: mount a MemFs, use it, tear it down.

use std::os::unix::fs::MetadataExt;

use testkit::{InitOptions, MemFs, Needs, Session};

#[test]
fn memfs_serves_stat_read_and_readdir_then_unmounts() {
    let Some(_t) = testkit::kernel_test_leak_checked(Needs::Kernel) else {
        return;
    };
    let mut fs = MemFs::new();
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    fs.add_file(1, "data.bin", content.clone());
    let sub = fs.add_dir(1, "sub");
    fs.add_file(sub, "empty", Vec::new());

    let session = Session::start(&InitOptions::default(), fs).expect("mount and INIT");
    let root = session.path().to_owned();
    assert_eq!(session.negotiated.init_in.major, 7);

    let meta = std::fs::metadata(root.join("data.bin")).expect("stat through the mount");
    assert_eq!(meta.len(), content.len() as u64);
    assert_eq!(meta.mode() & 0o170000, libc::S_IFREG);
    assert_eq!(std::fs::read(root.join("data.bin")).expect("read"), content);
    let mut names: Vec<String> = std::fs::read_dir(&root)
        .expect("readdir")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf8"))
        .collect();
    names.sort();
    assert_eq!(names, ["data.bin", "sub"]);
    assert!(std::fs::metadata(root.join("missing")).is_err());
    assert!(session.counters.count(fuse_kernel_sys::FUSE_READ) >= 1);

    session.finish().expect("server ends cleanly");
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    assert!(
        !mounts.contains(root.to_str().expect("utf8")),
        "mount left behind"
    );
}
