//! Micro benchmarks of fuse-uring, each beside its baseline in the same run.
//!
//! (a) Allocating one queue of 256 entries with 1 MiB payload buffers: `QueueBuffers::new`
//!     (lazy, and with `MAP_POPULATE`) versus the common approach of two `mmap(MAP_POPULATE)`
//!     calls per entry (header page + payload). Time of the allocation (the release is not
//!     timed), and resident memory right after it, measured with `mincore(2)` over the
//!     mappings and with `/proc/self/statm`.
//! (b) Building the REGISTER and COMMIT_AND_FETCH SQEs from an entry token versus io-uring's
//!     `UringCmd80` builder with the command area filled by hand plus a manual `len` write.
//!
//! `cargo bench -p fuse-uring` (short measurement times: the machine is shared).

// These tests drive the unsafe parts of the APIs (raw rings, raw memory) on purpose.
#![allow(unsafe_code)]

use std::hint::black_box;
use std::mem::{offset_of, size_of};
use std::ptr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use fuse_kernel_sys as sys;
use fuse_uring::{Prefault, QueueBuffers, QueueConfig};
use io_uring::{opcode, squeue::Entry128, types};
use rustix::mm::{MapFlags, ProtFlags};

const DEPTH: u32 = 256;
const PAYLOAD: usize = 1 << 20;

fn ours(prefault: Prefault) -> QueueBuffers {
    let mut config = QueueConfig::unbound(0, DEPTH, PAYLOAD);
    config.prefault = prefault;
    QueueBuffers::new(config).expect("QueueBuffers::new")
}

/// The common approach: per entry, one populated mapping for the 288-byte header (a page) and
/// one for the payload.
struct PerEntryMaps(Vec<(*mut u8, usize)>);

impl PerEntryMaps {
    fn new() -> PerEntryMaps {
        let page = rustix::param::page_size();
        let mut maps = Vec::with_capacity(2 * DEPTH as usize);
        for _ in 0..DEPTH {
            for len in [page, PAYLOAD] {
                // SAFETY: a fresh anonymous mapping at an address of the kernel's choice.
                let p = unsafe {
                    rustix::mm::mmap_anonymous(
                        ptr::null_mut(),
                        len,
                        ProtFlags::READ | ProtFlags::WRITE,
                        MapFlags::PRIVATE | MapFlags::POPULATE,
                    )
                }
                .expect("mmap");
                maps.push((p.cast::<u8>(), len));
            }
        }
        PerEntryMaps(maps)
    }
}

impl Drop for PerEntryMaps {
    fn drop(&mut self) {
        for &(p, len) in &self.0 {
            // SAFETY: each (p, len) is a mapping made in `new` and unmapped only here.
            let _ = unsafe { rustix::mm::munmap(p.cast(), len) };
        }
    }
}

/// Resident bytes of a mapping, by mincore(2).
fn resident(p: *mut u8, len: usize) -> usize {
    let page = rustix::param::page_size();
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: `p..p+len` is one live mapping of ours; `vec` has one byte per page.
    let rc = unsafe { libc::mincore(p.cast(), len, vec.as_mut_ptr()) };
    assert_eq!(rc, 0, "mincore");
    vec.iter().filter(|&&v| v & 1 != 0).count() * page
}

/// Resident set size of the process (`/proc/self/statm`, second field, in pages).
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("statm resident field");
    pages * rustix::param::page_size()
}

fn kib(bytes: usize) -> String {
    format!("{:.0} KiB", bytes as f64 / 1024.0)
}

fn report_memory() {
    let before = rss();
    let lazy = ours(Prefault::Lazy);
    let lazy_rss = rss() - before;
    let (p, len) = lazy.mapping();
    let lazy_resident = resident(p.as_ptr(), len);

    let before = rss();
    let populated = ours(Prefault::MapPopulate);
    let populated_rss = rss() - before;
    let (p, len) = populated.mapping();
    let populated_resident = resident(p.as_ptr(), len);
    drop(populated);

    let before = rss();
    let baseline = PerEntryMaps::new();
    let baseline_rss = rss() - before;
    let baseline_resident: usize = baseline.0.iter().map(|&(p, len)| resident(p, len)).sum();
    drop(baseline);
    drop(lazy);

    println!("\nresident memory after allocating {DEPTH} entries x {PAYLOAD} B payload:");
    println!("| allocation | mincore resident | RSS delta (statm) |");
    println!("|---|---:|---:|");
    println!(
        "| QueueBuffers, lazy | {} | {} |",
        kib(lazy_resident),
        kib(lazy_rss)
    );
    println!(
        "| QueueBuffers, MAP_POPULATE | {} | {} |",
        kib(populated_resident),
        kib(populated_rss)
    );
    println!(
        "| 2 x mmap(MAP_POPULATE) per entry | {} | {} |",
        kib(baseline_resident),
        kib(baseline_rss)
    );
    println!(
        "baseline / lazy resident: {:.0}x\n",
        baseline_resident as f64 / lazy_resident.max(1) as f64
    );
}

/// Times only the allocation; the release happens outside the timed region.
fn time_allocation<T>(iters: u64, mut alloc: impl FnMut() -> T) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        let value = black_box(alloc());
        total += start.elapsed();
        drop(value);
    }
    total
}

fn allocation(c: &mut Criterion) {
    report_memory();
    let mut group = c.benchmark_group("alloc_256x1MiB");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("QueueBuffers_lazy", |b| {
        b.iter_custom(|iters| time_allocation(iters, || ours(Prefault::Lazy)))
    });
    group.bench_function("QueueBuffers_MAP_POPULATE", |b| {
        b.iter_custom(|iters| time_allocation(iters, || ours(Prefault::MapPopulate)))
    });
    group.bench_function("baseline_2x_mmap_populate_per_entry", |b| {
        b.iter_custom(|iters| time_allocation(iters, PerEntryMaps::new))
    });
    group.finish();
}

/// The command area by hand, as a server without this crate would fill it.
#[inline]
fn cmd_by_hand(commit_id: u64, qid: u16) -> [u8; 80] {
    let mut cmd = [0u8; 80];
    let c = offset_of!(sys::fuse_uring_cmd_req, commit_id);
    cmd[c..c + 8].copy_from_slice(&commit_id.to_ne_bytes());
    let q = offset_of!(sys::fuse_uring_cmd_req, qid);
    cmd[q..q + 2].copy_from_slice(&qid.to_ne_bytes());
    cmd
}

#[inline]
fn baseline_register(fd: i32, qid: u16, iov: u64, user_data: u64) -> Entry128 {
    let mut sqe = opcode::UringCmd80::new(types::Fd(fd), sys::FUSE_IO_URING_CMD_REGISTER)
        .cmd(cmd_by_hand(0, qid))
        .addr(Some(iov))
        .build()
        .user_data(user_data);
    // The manual len write: UringCmd80 has no setter for it.
    let len_at = offset_of!(linux_raw_sys::io_uring::io_uring_sqe, len);
    assert!(len_at + size_of::<u32>() <= size_of::<Entry128>());
    // SAFETY: `len` (u32) lies inside the 128-byte repr(C) Entry128 (checked above); every
    // bit pattern is valid there; the pointer comes from a unique reference.
    unsafe {
        ptr::from_mut(&mut sqe)
            .cast::<u8>()
            .wrapping_add(len_at)
            .cast::<u32>()
            .write_unaligned(2)
    };
    sqe
}

#[inline]
fn baseline_commit(fd: i32, qid: u16, commit_id: u64, user_data: u64) -> Entry128 {
    opcode::UringCmd80::new(types::Fd(fd), sys::FUSE_IO_URING_CMD_COMMIT_AND_FETCH)
        .cmd(cmd_by_hand(commit_id, qid))
        .build()
        .user_data(user_data)
}

fn sqe_builders(c: &mut Criterion) {
    let buffers = QueueBuffers::new(QueueConfig::unbound(3, 4, 8192)).expect("buffers");
    let entry = buffers
        .take_entries()
        .expect("entries")
        .next()
        .expect("entry");
    // The user_data of entry 0's REGISTER and COMMIT_AND_FETCH, to mint its token the way a
    // completion does (outside the timed region).
    let register_ud = entry.register().get_user_data();
    let commit_ud = register_ud | 1;
    let iov = register_ud;

    let mut group = c.benchmark_group("sqe");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    // Ours includes minting the token from the CQE's user_data (the real request path); the
    // baseline gets its inputs for free.
    group.bench_function("register_fuse_uring", |b| {
        b.iter(|| {
            // SAFETY: benchmark only: the SQEs are never pushed, and each minted token is
            // consumed into its SQE before the next one is minted, so no two tokens coexist.
            let done = unsafe { buffers.complete(black_box(register_ud), 0) }.expect("ours");
            done.entry.register()
        })
    });
    group.bench_function("register_baseline_UringCmd80_manual_len", |b| {
        b.iter(|| {
            let (fd, qid, iov, ud) = black_box((5, 3u16, iov, register_ud));
            baseline_register(fd, qid, iov, ud)
        })
    });
    group.bench_function("commit_and_fetch_fuse_uring", |b| {
        b.iter(|| {
            // SAFETY: as above.
            let done = unsafe { buffers.complete(black_box(commit_ud), 0) }.expect("ours");
            done.entry.commit_and_fetch()
        })
    });
    group.bench_function("commit_and_fetch_baseline_UringCmd80", |b| {
        b.iter(|| {
            let (fd, qid, commit_id, ud) = black_box((5, 3u16, 0x1234u64, commit_ud));
            baseline_commit(fd, qid, commit_id, ud)
        })
    });
    group.finish();
}

criterion_group!(benches, allocation, sqe_builders);
criterion_main!(benches);
