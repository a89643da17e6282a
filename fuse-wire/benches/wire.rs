//! What fuse-wire costs per request (decode + encode), beside one real request round trip.
//!
//! Per request, from the `/dev/fuse` layout (`Request::parse` of one buffer) and from the
//! io_uring layout (the `fuse_in_header` read from a 288-byte header slot, then
//! `Request::parse_split` of its `op_in` and the payload):
//!
//! - LOOKUP: parse + `reply::entry_out` / `reply::entry` (the name lookup itself is the
//!   file system's and not measured);
//! - GETATTR: parse + `reply::attr_out` / `reply::attr`;
//! - READ 4 KiB: parse alone (the data copy excluded), and parse + copying the 4 KiB of data
//!   into the reply buffer with `reply::data` (included), on separate lines;
//! - READDIRPLUS filling 4 KiB: parse + `DirentPlusBuf::push` of 11-byte names with their
//!   `fuse_entry_out` until `Full` (24 records, 4032 bytes).
//!
//! Then, in the same run, one request round trip on this machine: `fstat(2)` of an open file
//! on a FUSE mount served over `/dev/fuse` by testkit's in-process server (`MemFs`, attribute
//! timeout 0, so each call is one GETATTR request and reply; the count is checked), and
//! `stat(2)` of a path on it (LOOKUP + GETATTR), each as the mean over many calls. Needs root
//! (`mount(2)`); otherwise that part is skipped with the reason printed.
//!
//! `cargo bench -p fuse-wire` (short measurement times: the machine is shared). The table at
//! the end is plain means (many iterations, `Instant`), so that the two sides are measured the
//! same way; criterion's own estimates come first.

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fuse_kernel_sys as sys;
use fuse_wire::{DirentError, DirentPlusBuf, Operation, Protocol, Request, reply};
use sys::zerocopy::{FromBytes, IntoBytes};

const HEADER: usize = size_of::<sys::fuse_in_header>();
/// `fuse_uring_req_header`: `in_out` (the `fuse_in_header` at its start), `op_in`,
/// `ring_ent_in_out`.
const SLOT: usize = size_of::<sys::fuse_uring_req_header>();
const OP_IN_AT: usize = 128;
const OP_IN: usize = sys::FUSE_URING_OP_IN_OUT_SZ as usize;
const NODE: u64 = 42;
const TIMEOUT: Duration = Duration::from_secs(1);

/// One request in both layouts.
struct Wire {
    /// `/dev/fuse`: header, fixed argument, names / data.
    dev: Vec<u8>,
    /// io_uring: the header slot (header and op_in) ...
    slot: [u8; SLOT],
    /// ... and the payload buffer's bytes.
    payload: Vec<u8>,
}

impl Wire {
    fn new(opcode: u32, arg: &[u8], rest: &[u8]) -> Wire {
        let header = sys::fuse_in_header {
            len: (HEADER + arg.len() + rest.len()) as u32,
            opcode,
            unique: 7,
            nodeid: NODE,
            uid: 1000,
            gid: 1000,
            pid: 4242,
            ..Default::default()
        };
        let mut dev = header.as_bytes().to_vec();
        dev.extend_from_slice(arg);
        dev.extend_from_slice(rest);
        let mut slot = [0u8; SLOT];
        slot[..HEADER].copy_from_slice(header.as_bytes());
        slot[OP_IN_AT..OP_IN_AT + arg.len()].copy_from_slice(arg);
        Wire {
            dev,
            slot,
            payload: rest.to_vec(),
        }
    }

    /// Decodes the `/dev/fuse` layout.
    fn dev(&self) -> Request<'_> {
        Request::parse(black_box(&self.dev), Protocol::default()).expect("a valid request")
    }

    /// Decodes the io_uring layout, reading the header out of the slot as a server does.
    fn uring(&self) -> Request<'_> {
        let slot = black_box(&self.slot);
        let (header, _) = sys::fuse_in_header::read_from_prefix(slot).expect("288 bytes");
        let op_in = &slot[OP_IN_AT..OP_IN_AT + OP_IN];
        Request::parse_split(
            &header,
            op_in,
            black_box(&self.payload),
            Protocol::default(),
        )
        .expect("a valid request")
    }
}

fn attr(ino: u64) -> sys::fuse_attr {
    sys::fuse_attr {
        ino,
        size: 4096,
        blocks: 8,
        mode: libc::S_IFREG | 0o644,
        nlink: 1,
        uid: 1000,
        gid: 1000,
        blksize: 4096,
        ..Default::default()
    }
}

fn read_in(offset: u64, size: u32) -> sys::fuse_read_in {
    sys::fuse_read_in {
        fh: 3,
        offset,
        size,
        ..Default::default()
    }
}

/// The cases: name, request, and the server's work after decoding (encode into `out`).
struct Case {
    name: &'static str,
    wire: Wire,
    answer: fn(&Request<'_>, &mut [u8], &Names) -> usize,
}

/// What the READ and READDIRPLUS answers draw from: 4 KiB of file data, directory names.
struct Names {
    data: Vec<u8>,
    names: Vec<Vec<u8>>,
}

fn lookup(req: &Request<'_>, out: &mut [u8], _: &Names) -> usize {
    let Operation::Lookup { name } = *req.operation() else {
        unreachable!()
    };
    black_box(name);
    let entry = reply::entry_out(NODE + 1, 0, attr(NODE + 1), TIMEOUT, TIMEOUT);
    reply::entry(out, &entry).expect("fits")
}

fn getattr(req: &Request<'_>, out: &mut [u8], _: &Names) -> usize {
    let Operation::Getattr(_) = *req.operation() else {
        unreachable!()
    };
    reply::attr(out, &reply::attr_out(attr(req.nodeid()), TIMEOUT)).expect("fits")
}

fn read_parse_only(req: &Request<'_>, _: &mut [u8], _: &Names) -> usize {
    let Operation::Read(arg) = *req.operation() else {
        unreachable!()
    };
    arg.size as usize
}

fn read_with_copy(req: &Request<'_>, out: &mut [u8], n: &Names) -> usize {
    let Operation::Read(arg) = *req.operation() else {
        unreachable!()
    };
    let size = (arg.size as usize).min(n.data.len());
    reply::data(out, &n.data[..size]).expect("fits")
}

fn readdirplus(req: &Request<'_>, out: &mut [u8], n: &Names) -> usize {
    let Operation::Readdirplus(arg) = *req.operation() else {
        unreachable!()
    };
    let size = (arg.size as usize).min(out.len());
    let mut dir = DirentPlusBuf::new(&mut out[..size]);
    for (i, name) in n.names.iter().enumerate().skip(arg.offset as usize) {
        let ino = 100 + i as u64;
        let entry = reply::entry_out(ino, 0, attr(ino), TIMEOUT, TIMEOUT);
        match dir.push(&entry, i as u64 + 1, libc::DT_REG.into(), name) {
            Ok(()) => {}
            Err(DirentError::Full) => break,
            Err(e) => panic!("{e}"),
        }
    }
    dir.len()
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "LOOKUP: parse + entry reply",
            wire: Wire::new(sys::FUSE_LOOKUP, &[], b"file-000001\0"),
            answer: lookup,
        },
        Case {
            name: "GETATTR: parse + attr reply",
            wire: Wire::new(
                sys::FUSE_GETATTR,
                sys::fuse_getattr_in::default().as_bytes(),
                &[],
            ),
            answer: getattr,
        },
        Case {
            name: "READ 4 KiB: parse (data copy excluded)",
            wire: Wire::new(sys::FUSE_READ, read_in(0, 4096).as_bytes(), &[]),
            answer: read_parse_only,
        },
        Case {
            name: "READ 4 KiB: parse + 4 KiB data copy",
            wire: Wire::new(sys::FUSE_READ, read_in(0, 4096).as_bytes(), &[]),
            answer: read_with_copy,
        },
        Case {
            name: "READDIRPLUS: parse + fill 4 KiB",
            wire: Wire::new(sys::FUSE_READDIRPLUS, read_in(0, 4096).as_bytes(), &[]),
            answer: readdirplus,
        },
    ]
}

fn names() -> Names {
    Names {
        data: (0..4096u32).map(|i| i as u8).collect(),
        names: (1..=64)
            .map(|i| format!("file-{i:06}").into_bytes())
            .collect(),
    }
}

/// Time per call of `f`, measured as the mean of each of `batches` batches of `per_batch`
/// calls: the median batch, the fastest and slowest, and the mean over all calls. On a busy
/// machine the median resists the batches in which this thread was preempted.
#[derive(Clone, Copy)]
struct Timing {
    median: Duration,
    min: Duration,
    max: Duration,
    mean: Duration,
}

fn timing(batches: u32, per_batch: u32, mut f: impl FnMut()) -> Timing {
    let mut means: Vec<Duration> = (0..batches)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_batch {
                f();
            }
            start.elapsed() / per_batch
        })
        .collect();
    means.sort();
    Timing {
        median: means[means.len() / 2],
        min: means[0],
        max: means[means.len() - 1],
        mean: means.iter().sum::<Duration>() / batches,
    }
}

fn span(t: Timing) -> String {
    format!("{} ({} - {})", fmt(t.median), fmt(t.min), fmt(t.max))
}

fn fmt(d: Duration) -> String {
    let ns = d.as_secs_f64() * 1e9;
    if ns < 1000.0 {
        format!("{ns:.0} ns")
    } else {
        format!("{:.2} µs", ns / 1000.0)
    }
}

/// One round trip measured on a real mount, or why it could not be.
struct RoundTrip {
    what: &'static str,
    time: Timing,
    requests_per_call: f64,
}

fn round_trips(batches: u32, per_batch: u32) -> Result<Vec<RoundTrip>, String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse is missing (modprobe fuse)".into());
    }
    if !testkit::is_root() {
        return Err("not root: mount(2) of a FUSE file system needs CAP_SYS_ADMIN".into());
    }
    let mut fs = testkit::MemFs::new();
    fs.add_file(1, "file", vec![7u8; 4096]);
    // Timeout 0: the kernel caches nothing, every call reaches the server.
    fs.timeout = 0;
    let session = testkit::Session::start(&testkit::InitOptions::default(), fs)
        .map_err(|e| format!("mounting the test server: {e}"))?;
    let path = session.path().join("file");
    let file = std::fs::File::open(&path).map_err(|e| format!("open: {e}"))?;
    let counters = session.counters.clone();
    let requests = || -> u64 {
        counters
            .by_opcode
            .iter()
            .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
            .sum()
    };
    let mut out = Vec::new();
    let mut measure = |what, f: &mut dyn FnMut()| {
        for _ in 0..per_batch {
            f();
        }
        let before = requests();
        let time = timing(batches, per_batch, &mut *f);
        out.push(RoundTrip {
            what,
            time,
            requests_per_call: (requests() - before) as f64 / f64::from(batches * per_batch),
        });
    };
    measure("fstat(2) of an open file (GETATTR)", &mut || {
        black_box(rustix::fs::fstat(&file).expect("fstat"));
    });
    measure("stat(2) of its path (LOOKUP + GETATTR)", &mut || {
        black_box(rustix::fs::stat(&path).expect("stat"));
    });
    drop(file);
    session
        .finish()
        .map_err(|e| format!("the test server failed: {e}"))?;
    Ok(out)
}

fn main() {
    // `cargo bench` passes --bench; without it (cargo test --benches) run everything once.
    let bench = std::env::args().any(|a| a == "--bench");
    let names = names();
    let cases = cases();
    let mut out = vec![0u8; 8192];

    let mut c = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    {
        let mut group = c.benchmark_group("fuse-wire");
        for case in &cases {
            group.bench_function(format!("{} (/dev/fuse)", case.name), |b| {
                b.iter(|| (case.answer)(&case.wire.dev(), black_box(&mut out), &names))
            });
            group.bench_function(format!("{} (io_uring)", case.name), |b| {
                b.iter(|| (case.answer)(&case.wire.uring(), black_box(&mut out), &names))
            });
        }
        group.finish();
    }
    c.final_summary();

    // The same work timed by hand, then the round trips the same way, in one table.
    let (batches, per_batch, calls_per_batch) = if bench { (25, 40_000, 800) } else { (3, 3, 3) };
    println!();
    println!(
        "fuse-wire per request: median of {batches} batch means of {per_batch} iterations \
         (fastest - slowest batch)"
    );
    println!("| request | /dev/fuse layout | io_uring layout |");
    println!("|---|---:|---:|");
    let mut getattr = Duration::ZERO;
    for case in &cases {
        let dev = timing(batches, per_batch, || {
            black_box((case.answer)(&case.wire.dev(), black_box(&mut out), &names));
        });
        let uring = timing(batches, per_batch, || {
            black_box((case.answer)(
                &case.wire.uring(),
                black_box(&mut out),
                &names,
            ));
        });
        if case.name.starts_with("GETATTR") {
            getattr = dev.median.max(uring.median);
        }
        println!("| {} | {} | {} |", case.name, span(dev), span(uring));
    }
    println!();
    match round_trips(batches, calls_per_batch) {
        Ok(trips) => {
            println!(
                "one request round trip on this machine (/dev/fuse, testkit's in-process \
                 server): median of {batches} batch means of {calls_per_batch} calls \
                 (fastest - slowest batch), and the mean of all calls"
            );
            println!(
                "| round trip | median | mean | requests per call | GETATTR decode + encode \
                 as a share of the median |"
            );
            println!("|---|---:|---:|---:|---:|");
            for t in &trips {
                println!(
                    "| {} | {} | {} | {:.2} | {:.2} % |",
                    t.what,
                    span(t.time),
                    fmt(t.time.mean),
                    t.requests_per_call,
                    100.0 * getattr.as_secs_f64() / t.time.median.as_secs_f64()
                );
            }
        }
        Err(reason) => println!("round trip: SKIPPED: {reason}"),
    }
}
