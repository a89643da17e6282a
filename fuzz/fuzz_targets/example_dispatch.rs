//! The example server's request dispatcher (`passthroughfs/src/fs.rs`, compiled here from its
//! source file) fed arbitrary request sequences: opcodes, node ids, file handles, offsets,
//! sizes, names and flags as the kernel could send them, against a small real source tree.
//! Each input gets a fresh file system (so open files and inodes do not pile up); the
//! request body is split into fixed argument and rest exactly as the `/dev/fuse` transport
//! splits it. Replies must fit the reply buffer and errors must be positive errnos.

#![no_main]
#![allow(dead_code)]

#[allow(clippy::all)]
#[path = "../../passthroughfs/src/backing.rs"]
mod backing;
// The example's own code, linted by the main workspace's (stable) clippy.
#[allow(clippy::all)]
#[path = "../../passthroughfs/src/fs.rs"]
mod fs;
#[allow(clippy::all)]
#[path = "../../passthroughfs/src/stats.rs"]
mod stats;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fuse_kernel_sys as sys;
use libfuzzer_sys::fuzz_target;

use fs::{Fs, Options, Outcome, Req, fixed_arg_size};

/// Opcodes worth hitting; an index past the table takes the opcode from the input.
const OPCODES: &[u32] = &[
    sys::FUSE_LOOKUP,
    sys::FUSE_FORGET,
    sys::FUSE_BATCH_FORGET,
    sys::FUSE_GETATTR,
    sys::FUSE_READLINK,
    sys::FUSE_ACCESS,
    sys::FUSE_OPEN,
    sys::FUSE_READ,
    sys::FUSE_RELEASE,
    sys::FUSE_FLUSH,
    sys::FUSE_OPENDIR,
    sys::FUSE_READDIR,
    sys::FUSE_READDIRPLUS,
    sys::FUSE_RELEASEDIR,
    sys::FUSE_STATFS,
    sys::FUSE_GETXATTR,
    sys::FUSE_LISTXATTR,
    sys::FUSE_INTERRUPT,
    sys::FUSE_STATX,
    sys::FUSE_WRITE,
    sys::FUSE_DESTROY,
];

fn source() -> &'static PathBuf {
    static SOURCE: OnceLock<PathBuf> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("fuzz-dispatch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("d/e")).expect("source dirs");
        std::fs::write(dir.join("a"), b"alpha").expect("file");
        std::fs::write(dir.join("d/b"), vec![9u8; 70_000]).expect("file");
        std::fs::write(dir.join("d/e/c"), b"").expect("file");
        let _ = std::os::unix::fs::symlink("d/b", dir.join("l"));
        let _ = rustix::fs::setxattr(
            dir.join("a").as_path(),
            c"user.k",
            b"v",
            rustix::fs::XattrFlags::empty(),
        );
        dir
    })
}

/// Little-endian reader that yields zeros past the end.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        head
    }

    fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }

    fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }

    fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }

    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(fs) = Fs::new(
        source(),
        Options {
            attr_timeout: Duration::from_secs(1),
            passthrough: false,
        },
        None,
    ) else {
        panic!("cannot open the source tree");
    };
    let mut out = vec![0u8; 128 * 1024];
    let mut input = Input(data);
    let mut unique = 0u64;
    while !input.0.is_empty() {
        let pick = usize::from(input.u8());
        let opcode = OPCODES.get(pick).copied().unwrap_or_else(|| input.u32());
        let node = input.u8();
        let nodeid = if node & 0x80 == 0 {
            u64::from(node)
        } else {
            input.u64()
        };
        let out_len = usize::from(input.u16()).min(out.len());
        let body_len = usize::from(input.u8());
        let body = input.bytes(body_len).to_vec();
        unique += 1;
        let header = sys::fuse_in_header {
            len: (size_of::<sys::fuse_in_header>() + body.len()) as u32,
            opcode,
            unique,
            nodeid,
            ..Default::default()
        };
        let split = fixed_arg_size(opcode, body.len());
        let req = Req {
            header,
            arg: &body[..split],
            rest: &body[split..],
        };
        match fs.dispatch(&req, &mut out[..out_len]) {
            Outcome::Reply(n) => assert!(n <= out_len, "reply of {n} bytes in {out_len}"),
            Outcome::Error(e) => assert!(e.raw_os_error() > 0),
            Outcome::NoReply => {}
        }
    }
});
