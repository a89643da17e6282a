//! What the session itself costs per request, in process, without the kernel: a GETATTR in
//! `/dev/fuse` layout decoded, its slot in the in-flight table taken and released, the
//! opcode counted, a handler run under `catch_unwind` with a `Reply` that encodes a
//! `fuse_attr_out` into the reply buffer. Beside it, the same decode and encode done by hand
//! with fuse-wire (what a hand-written loop pays), so that the difference is the session's.
//!
//! `cargo bench -p fuse-session`.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::IntoBytes;
use fuse_session::Reply;
use fuse_session::bench::Dispatcher;
use fuse_wire::{Operation, Protocol, Request, reply};

fn getattr_request() -> Vec<u8> {
    let arg = sys::fuse_getattr_in::default();
    let header = sys::fuse_in_header {
        len: (size_of::<sys::fuse_in_header>() + size_of::<sys::fuse_getattr_in>()) as u32,
        opcode: sys::FUSE_GETATTR,
        unique: 2,
        nodeid: 1,
        ..Default::default()
    };
    let mut bytes = header.as_bytes().to_vec();
    bytes.extend_from_slice(arg.as_bytes());
    bytes
}

fn attr() -> sys::fuse_attr_out {
    let attr = sys::fuse_attr {
        ino: 1,
        mode: libc::S_IFDIR | 0o755,
        nlink: 2,
        ..Default::default()
    };
    reply::attr_out(attr, Duration::from_secs(1))
}

fn handler(request: &Request<'_>, reply: Reply<'_>) {
    match request.operation() {
        Operation::Getattr(_) => reply.attr(&attr()),
        _ => reply.error(rustix::io::Errno::NOSYS),
    }
}

fn main() {
    let mut c = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .configure_from_args();
    let request = getattr_request();
    let mut out = vec![0u8; 4096];
    let dispatcher = Dispatcher::new(handler).expect("eventfd");
    assert_eq!(
        dispatcher.dispatch(&request, &mut out),
        Some(Ok(size_of::<sys::fuse_attr_out>()))
    );
    c.bench_function("session dispatch: GETATTR through Handler and Reply", |b| {
        b.iter(|| dispatcher.dispatch(black_box(&request), black_box(&mut out)))
    });
    c.bench_function("by hand: GETATTR parse + reply::attr", |b| {
        b.iter(|| {
            let r = Request::parse(black_box(&request), Protocol::default()).ok()?;
            match r.operation() {
                Operation::Getattr(_) => reply::attr(black_box(&mut out), &attr()).ok(),
                _ => None,
            }
        })
    });
    c.final_summary();
}
