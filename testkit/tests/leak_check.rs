//! The leak check itself: it must fail a test that leaves an fd or a mapping behind, and
//! pass one that cleans up.

// These tests drive the unsafe parts of the APIs (raw rings, raw memory) on purpose.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

/// Leaks one fd and one anonymous mapping on purpose, but only in the leak-check child
/// started by `a_leaking_test_fails_the_check`; run directly, it does nothing.
#[test]
#[ignore = "helper of a_leaking_test_fails_the_check; leaks on purpose in its child"]
fn leaks_on_purpose() {
    if std::env::var(testkit::leak::CHILD_ENV).is_err() {
        return;
    }
    let Some(_leaks) = testkit::leak::isolate() else {
        return;
    };
    let file = std::fs::File::open("/proc/self/status").expect("open");
    println!("leaking fd {}", file.as_raw_fd());
    std::mem::forget(file);
    // SAFETY: a fresh anonymous private mapping; it is never accessed, only left mapped.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            5 * 4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
}

/// Opens and maps the same, but cleans up.
#[test]
fn a_clean_test_passes_the_check() {
    let Some(_leaks) = testkit::leak::isolate() else {
        return;
    };
    let file = std::fs::File::open("/proc/self/status").expect("open");
    // SAFETY: a fresh anonymous private mapping, unmapped below with its own address and
    // length.
    let addr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            5 * 4096,
            libc::PROT_READ,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(addr, libc::MAP_FAILED);
    // SAFETY: `addr` is the mapping made above, of this length, and nothing refers to it.
    assert_eq!(unsafe { libc::munmap(addr, 5 * 4096) }, 0);
    // A thread that is joined leaves no stack mapping behind (stack cache off in the child).
    std::thread::spawn(|| std::hint::black_box(vec![0u8; 1 << 20]).len())
        .join()
        .expect("thread");
    drop(file);
}

#[test]
fn a_leaking_test_fails_the_check() {
    let e = testkit::leak::run_isolated("leaks_on_purpose").expect_err("the leak is caught");
    assert!(e.contains("failed"), "{e}");
    assert!(e.contains("new fd") && e.contains("/status"), "{e}");
    if !testkit::leak::fds_only() {
        assert!(e.contains("r--p 20 KiB (anonymous)"), "{e}");
    }
}
