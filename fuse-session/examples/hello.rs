//! hello: one read-only file, `hello.txt`, served by a session: over FUSE-over-io_uring when
//! the kernel offers it and every queue can be set up, else (or with `hello MNT dev`) over
//! /dev/fuse. As root it mounts with mount(2), else through fusermount3; it ends when
//! unmounted (`umount MNT` or `fusermount3 -u MNT`) or on SIGINT/SIGTERM, unmounting.
use std::path::Path;
use std::time::Duration;

use fuse_session::{Reply, Report, Session, Transport};
use fuse_wire::{DirentBuf, Errno, OpenOut, Operation, Request, reply, sys};

const HELLO_INO: u64 = 2;
const DATA: &[u8] = b"Hello, world!\n";
const TTL: Duration = Duration::from_secs(1);

fn attr(ino: u64) -> sys::fuse_attr {
    let (mode, size, nlink) = if ino == HELLO_INO {
        (libc::S_IFREG | 0o444, DATA.len() as u64, 1)
    } else {
        (libc::S_IFDIR | 0o755, 0, 2)
    };
    sys::fuse_attr {
        ino,
        mode,
        size,
        nlink,
        ..Default::default()
    }
}

/// The whole file system: one answer per request.
fn handle(request: &Request<'_>, reply: Reply<'_>) {
    match request.operation() {
        Operation::Lookup { name } if name.to_bytes() == b"hello.txt" => {
            reply.entry(&reply::entry_out(HELLO_INO, 0, attr(HELLO_INO), TTL, TTL));
        }
        Operation::Lookup { .. } => reply.error(Errno::NOENT),
        Operation::Getattr(_) => reply.attr(&reply::attr_out(attr(request.nodeid()), TTL)),
        Operation::Open(_) | Operation::Opendir(_) => reply.open(&OpenOut::new(0)),
        Operation::Read(read) => {
            let rest = DATA.get(read.offset as usize..).unwrap_or_default();
            let size = rest.len().min(read.size as usize);
            reply.data(&rest[..size]);
        }
        Operation::Readdir(read) => {
            // Written straight into the transport's buffer.
            reply.with_buffer(read.size as usize, |out| {
                let mut dir = DirentBuf::new(out);
                if read.offset == 0 {
                    // The entry's offset (1) is where the next READDIR starts.
                    dir.push(HELLO_INO, 1, libc::DT_REG.into(), b"hello.txt")
                        .map_err(|_| Errno::OVERFLOW)?;
                }
                Ok(dir.len())
            });
        }
        Operation::Release(_) | Operation::Releasedir(_) => reply.ok(),
        _ => reply.error(Errno::NOSYS),
    }
}

/// Mounts at `mount_point` and serves until unmounted; says what served.
pub fn run(mount_point: &Path, transport: Transport) -> Result<Report, fuse_session::Error> {
    let options = fuse_dev::MountOptions::new().subtype("hello");
    Session::mount(mount_point, &options)?
        .transport(transport)
        .stop_on_signals(true)
        .serve(handle)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mount_point = std::env::args_os().nth(1).ok_or("usage: hello MNT [dev]")?;
    let transport = match std::env::args().nth(2).as_deref() {
        Some("dev") => Transport::Dev,
        _ => Transport::Auto,
    };
    let report = run(Path::new(&mount_point), transport)?;
    println!(
        "hello: served over {:?}: {:?}",
        report.transport, report.requests
    );
    Ok(())
}
