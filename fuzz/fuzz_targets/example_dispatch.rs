//! The example server's request dispatcher (`passthroughfs::fs::Fs::dispatch`, the library
//! half of the example) fed arbitrary request sequences: opcodes, node ids, offsets, sizes,
//! names and flags as the kernel could send them, against a small real source tree. Each
//! input gets a fresh file system (so open files and inodes do not pile up). Every request
//! is built as kernel bytes and decoded by `fuse-wire` exactly as the transports do it:
//! `Request::parse` on the `/dev/fuse` layout, or `Request::parse_split` on the io_uring
//! layout (fixed argument in a 128-byte `op_in`, the rest as payload), both `Protocol`
//! settings. Replies must fit the reply buffer, errors must be errnos the kernel accepts
//! (1..=511 after `fuse_wire::out_error`), and only the no-reply opcodes go unanswered.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use fuse_kernel_blocks_fuzz::Input;
use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::IntoBytes;
use fuse_wire::{Protocol, Request, fixed_arg_size, out_error};
use libfuzzer_sys::fuzz_target;
use passthroughfs::fs::{Fs, Options, Outcome};

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
    sys::FUSE_SETXATTR,
    sys::FUSE_LSEEK,
    sys::FUSE_DESTROY,
];

/// The io_uring `op_in` area of a ring entry's header slot.
const OP_IN: usize = sys::FUSE_URING_OP_IN_OUT_SZ as usize;

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

fn check(fs: &Fs, req: &Request<'_>, out: &mut [u8]) {
    let out_len = out.len();
    match fs.dispatch(req, out) {
        Outcome::Reply(n) => assert!(n <= out_len, "reply of {n} bytes in {out_len}"),
        Outcome::Error(e) => {
            assert!((1..=4095).contains(&e.raw_os_error()), "{e:?}");
            let sent = -out_error(e);
            assert!((1..=511).contains(&sent), "{e:?} sent as {sent}");
        }
        Outcome::NoReply => assert!(
            req.operation().is_no_reply(),
            "no reply to {:?}",
            req.operation()
        ),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(fs) = Fs::new(
        source(),
        Options {
            attr_timeout: Duration::from_secs(1),
            passthrough: false,
            // What OPEN asks for on zero-copy io_uring queues: either way (the input's last
            // bit), as both layouts are fed.
            zero_copy: data.last().is_some_and(|b| b & 1 == 1),
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
        // Layout and protocol: bit 0 io_uring, bit 1 FUSE_SETXATTR_EXT.
        let mode = input.u8();
        let protocol = Protocol {
            setxattr_ext: mode & 2 != 0,
            ..Protocol::default()
        };
        let body_len = usize::from(input.u8());
        let body = input.bytes(body_len);
        unique += 1;
        let header = sys::fuse_in_header {
            len: (size_of::<sys::fuse_in_header>() + body.len()) as u32,
            opcode,
            unique,
            nodeid,
            ..Default::default()
        };
        let out = &mut out[..out_len];
        if mode & 1 == 0 {
            let mut buf = header.as_bytes().to_vec();
            buf.extend_from_slice(body);
            match Request::parse(&buf, protocol) {
                Ok(req) => check(&fs, &req, out),
                Err(e) => assert_ne!(e.unique(), 0, "the header was there: {e}"),
            }
        } else {
            // As the kernel fills a ring entry: the fixed argument at the start of op_in
            // (the rest of op_in zero), names and data in the payload buffer.
            let fixed = fixed_arg_size(opcode, protocol)
                .unwrap_or(0)
                .min(body.len());
            let mut op_in = [0u8; OP_IN];
            op_in[..fixed].copy_from_slice(&body[..fixed]);
            match Request::parse_split(&header, &op_in, &body[fixed..], protocol) {
                Ok(req) => check(&fs, &req, out),
                Err(e) => assert_ne!(e.unique(), 0, "the header was there: {e}"),
            }
        }
    }
});
