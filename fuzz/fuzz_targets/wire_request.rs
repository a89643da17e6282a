//! fuse-wire's request decoding on bytes the kernel (or anyone with the fd) controls, under
//! both `Protocol` settings (with and without `FUSE_SETXATTR_EXT`):
//!
//! - `Request::parse` on arbitrary bytes (`/dev/fuse` layout, optionally with `len` made to
//!   match, and trailing bytes after `len`, which must be ignored);
//! - `Request::parse_split` on an arbitrary header, `op_in` area and payload (io_uring
//!   layout).
//!
//! Neither panics; every decoded request's names, data and extensions lie inside the bytes
//! given (within the request's body, names and data before the extensions, the extensions
//! its last `total_extlen * 8` bytes); lengths in the fixed argument match the slices; an
//! error carries the header's `unique` whenever there was a header. And the two layouts
//! agree: a request decoded from one buffer decodes to the same request when split as the
//! kernel splits it for io_uring (fixed argument in a 128-byte `op_in`, the rest as
//! payload), and a split request decodes the same when laid out contiguously (NOTIFY_REPLY,
//! whose fixed argument the kernel puts in the payload, when the header's `len` says so).

#![no_main]

use core::ffi::CStr;

use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::{FromBytes, IntoBytes};
use fuse_wire::{
    DecodeError, DecodeErrorKind, Errno, Operation, Protocol, Request, fixed_arg_size,
};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = size_of::<sys::fuse_in_header>();
/// The io_uring `op_in` area of a ring entry's header slot.
const OP_IN: usize = sys::FUSE_URING_OP_IN_OUT_SZ as usize;

/// Whether `inner` lies within `outer` (by address).
fn inside(inner: &[u8], outer: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fn name_inside(name: &CStr, region: &[u8]) -> bool {
    inside(name.to_bytes_with_nul(), region)
}

/// Checks a decoded request against its bytes: `arg` is the fixed argument as delivered
/// (zero-extended where shorter), `rest` what follows it (names, data, extensions).
fn check_ok(req: &Request<'_>, header: &sys::fuse_in_header, arg: &[u8], rest: &[u8]) {
    let h = req.header();
    assert_eq!(
        (
            h.opcode,
            h.unique,
            h.nodeid,
            h.uid,
            h.gid,
            h.pid,
            h.total_extlen
        ),
        (
            header.opcode,
            header.unique,
            header.nodeid,
            header.uid,
            header.gid,
            header.pid,
            header.total_extlen
        )
    );
    assert_eq!(
        (req.opcode(), req.unique(), req.nodeid()),
        (h.opcode, h.unique, h.nodeid)
    );
    let ext_len = usize::from(header.total_extlen) * 8;
    let ext = req.extensions();
    assert_eq!(ext.len(), ext_len);
    assert!(rest.len() >= ext_len);
    let (names, tail) = rest.split_at(rest.len() - ext_len);
    assert!(
        inside(ext, tail) && ext.len() == tail.len(),
        "extensions are the last total_extlen * 8 bytes"
    );
    let mut arg_bytes = [0u8; OP_IN];
    arg_bytes[..arg.len().min(OP_IN)].copy_from_slice(&arg[..arg.len().min(OP_IN)]);
    let u32_arg = |at: usize| u32::from_ne_bytes(arg_bytes[at..at + 4].try_into().expect("4"));
    match *req.operation() {
        Operation::Lookup { name }
        | Operation::Unlink { name }
        | Operation::Rmdir { name }
        | Operation::Removexattr { name }
        | Operation::Mknod { name, .. }
        | Operation::Mkdir { name, .. }
        | Operation::Link { name, .. }
        | Operation::Getxattr { name, .. }
        | Operation::Create { name, .. }
        | Operation::Tmpfile { name, .. } => {
            assert!(name_inside(name, names));
            assert_eq!(name.to_bytes_with_nul().as_ptr(), names.as_ptr());
        }
        Operation::Symlink {
            name,
            target: second,
        }
        | Operation::Rename {
            name,
            new_name: second,
            ..
        }
        | Operation::Rename2 {
            name,
            new_name: second,
            ..
        } => {
            assert!(name_inside(name, names) && name_inside(second, names));
            assert_eq!(
                second.to_bytes_with_nul().as_ptr() as usize,
                name.to_bytes_with_nul().as_ptr() as usize + name.count_bytes() + 1,
                "the second name follows the first"
            );
        }
        Operation::Write { arg, data } => {
            assert!(inside(data, names));
            assert_eq!(data.len(), arg.size as usize);
        }
        Operation::Setxattr { arg, name, value } => {
            assert!(name_inside(name, names) && inside(value, names));
            assert_eq!(value.len(), arg.size as usize);
            assert_eq!(
                value.as_ptr() as usize,
                name.to_bytes_with_nul().as_ptr() as usize + name.count_bytes() + 1
            );
        }
        Operation::Ioctl { arg, data } => {
            assert!(inside(data, names));
            assert_eq!(data.len(), arg.in_size as usize);
        }
        Operation::NotifyReply { arg, data } => {
            assert!(inside(data, names));
            assert_eq!(data.len(), arg.size as usize);
        }
        Operation::BatchForget(forgets) => {
            let count = u32_arg(0) as usize;
            assert_eq!(forgets.len(), count);
            assert!(count * 16 <= names.len());
            for (i, one) in forgets.enumerate() {
                let (want, _) =
                    sys::fuse_forget_one::read_from_prefix(&names[i * 16..]).expect("inside");
                assert_eq!(one, want);
            }
        }
        Operation::RemoveMapping(ranges) => {
            let count = u32_arg(0) as usize;
            let one = size_of::<sys::fuse_removemapping_one>();
            assert!(count * one <= names.len());
            let mut seen = 0;
            for (i, range) in ranges.enumerate() {
                let (want, _) = sys::fuse_removemapping_one::read_from_prefix(&names[i * one..])
                    .expect("inside");
                assert_eq!(range, want);
                seen += 1;
            }
            assert_eq!(seen, count);
        }
        Operation::Read(a) | Operation::Readdir(a) | Operation::Readdirplus(a) => {
            assert_eq!(a.as_bytes()[..arg.len()], arg[..]);
        }
        Operation::Getattr(a) => assert_eq!(a.as_bytes()[..arg.len()], arg[..]),
        Operation::Init(init) => {
            assert!(arg.len() >= 16);
            assert_eq!((init.major, init.minor), (u32_arg(0), u32_arg(4)));
        }
        _ => {}
    }
}

fn check_err(e: &DecodeError, header: Option<&sys::fuse_in_header>) {
    match header {
        Some(h) => assert_eq!((e.unique(), e.opcode()), (h.unique, h.opcode), "{e}"),
        None => assert_eq!((e.unique(), e.opcode()), (0, 0)),
    }
    let expect = if e.kind() == DecodeErrorKind::UnknownOpcode {
        Errno::NOSYS
    } else {
        Errno::IO
    };
    assert_eq!(e.errno(), expect);
    assert!(!e.to_string().is_empty());
}

/// Decodes `buf` in `/dev/fuse` layout and, if that works, split as io_uring splits it.
fn contiguous(buf: &[u8], protocol: Protocol) {
    let parsed = Request::parse(buf, protocol);
    let Ok((header, _)) = sys::fuse_in_header::read_from_prefix(buf) else {
        let e = parsed.expect_err("no header");
        check_err(&e, None);
        assert!(matches!(
            e.kind(),
            DecodeErrorKind::Short { need: HEADER, .. }
        ));
        return;
    };
    let len = header.len as usize;
    let Some(body) = buf.get(HEADER..len) else {
        let e = parsed.expect_err("len past the end, or shorter than the header");
        check_err(&e, Some(&header));
        assert_eq!(
            e.kind(),
            DecodeErrorKind::Length {
                header_len: header.len,
                delivered: buf.len()
            }
        );
        return;
    };
    // Bytes after `len` are not part of the request.
    assert_eq!(Request::parse(&buf[..len], protocol), parsed);
    let Some(fixed) = fixed_arg_size(header.opcode, protocol) else {
        let e = parsed.expect_err("unknown opcode");
        check_err(&e, Some(&header));
        assert_eq!(e.kind(), DecodeErrorKind::UnknownOpcode);
        return;
    };
    assert!(fixed <= OP_IN);
    let (arg, rest) = body.split_at(fixed.min(body.len()));
    let mut op_in = [0u8; OP_IN];
    op_in[..arg.len()].copy_from_slice(arg);
    let split = Request::parse_split(&header, &op_in, rest, protocol);
    match &parsed {
        Ok(req) => {
            check_ok(req, &header, arg, rest);
            if body.len() >= fixed {
                assert_eq!(split.as_ref(), Ok(req), "the two layouts disagree");
            } else {
                // Only INIT decodes from less than its struct (old kernels' 16-byte form);
                // INIT never comes over io_uring, and a zero-padded op_in is not what the
                // kernel sent (a partial flags2 would read as flags2).
                assert_eq!(header.opcode, sys::FUSE_INIT);
            }
        }
        Err(e) => {
            check_err(e, Some(&header));
            if body.len() >= fixed {
                assert_eq!(split.as_ref(), Err(e), "the two layouts disagree");
            } else if header.opcode == sys::FUSE_INIT {
                // Old kernels' INIT is shorter than fuse_init_in: decoded down to 16 bytes.
                let too_short = DecodeErrorKind::Short {
                    what: "fuse_init_in",
                    need: 16,
                    have: body.len(),
                };
                if e.kind() != too_short {
                    assert_eq!(split.as_ref(), Err(e), "the two layouts disagree");
                }
            } else {
                // A fixed argument shorter than its struct: only /dev/fuse can deliver that
                // (io_uring's op_in always has the room).
                assert_eq!(
                    e.kind(),
                    DecodeErrorKind::Short {
                        what: "fixed argument",
                        need: fixed,
                        have: body.len()
                    }
                );
            }
        }
    }
}

/// Decodes the io_uring layout and, if that works, the same request laid out contiguously.
fn split(header: &sys::fuse_in_header, op_in: &[u8], payload: &[u8], protocol: Protocol) {
    let parsed = Request::parse_split(header, op_in, payload, protocol);
    let Some(fixed) = fixed_arg_size(header.opcode, protocol) else {
        let e = parsed.expect_err("unknown opcode");
        check_err(&e, Some(header));
        assert_eq!(e.kind(), DecodeErrorKind::UnknownOpcode);
        return;
    };
    // NOTIFY_REPLY's first argument is empty in the kernel, so over io_uring its whole body
    // (fuse_notify_retrieve_in, then the data) is the payload, and the header's `len` says
    // so: it then decodes exactly as the header and the payload laid out contiguously.
    if header.opcode == sys::FUSE_NOTIFY_REPLY
        && (header.len as usize).checked_sub(HEADER) == Some(payload.len())
    {
        let mut whole = header.as_bytes().to_vec();
        whole.extend_from_slice(payload);
        let again = Request::parse(&whole, protocol);
        match &parsed {
            Ok(req) => {
                let (arg, rest) = payload.split_at(fixed);
                check_ok(req, header, arg, rest);
                assert_eq!(again.as_ref(), Ok(req), "the two layouts disagree");
            }
            Err(e) => {
                check_err(e, Some(header));
                assert_eq!(again.as_ref().err(), Some(e), "the two layouts disagree");
            }
        }
        return;
    }
    let Some(arg) = op_in.get(..fixed) else {
        let e = parsed.expect_err("op_in too short");
        check_err(&e, Some(header));
        assert_eq!(
            e.kind(),
            DecodeErrorKind::Short {
                what: "op_in",
                need: fixed,
                have: op_in.len()
            }
        );
        return;
    };
    let mut whole = sys::fuse_in_header {
        len: (HEADER + fixed + payload.len()) as u32,
        ..*header
    }
    .as_bytes()
    .to_vec();
    whole.extend_from_slice(arg);
    whole.extend_from_slice(payload);
    let again = Request::parse(&whole, protocol);
    match &parsed {
        Ok(req) => {
            check_ok(req, header, arg, payload);
            let other = again.expect("the contiguous layout decodes too");
            assert_eq!(
                (other.operation(), other.extensions()),
                (req.operation(), req.extensions()),
                "the two layouts disagree"
            );
        }
        Err(e) => {
            check_err(e, Some(header));
            assert_eq!(again.as_ref().err(), Some(e), "the two layouts disagree");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else {
        return;
    };
    for setxattr_ext in [false, true] {
        let protocol = Protocol {
            minor: 36 + u32::from(mode >> 5),
            setxattr_ext,
        };
        if mode & 1 == 0 {
            // One buffer as read(2) returns it; bit 1: make `len` match, bits 2..4: that many
            // bytes of trailing garbage beyond `len`.
            let mut buf = data.to_vec();
            if mode & 2 != 0 && buf.len() >= HEADER {
                let trailing = usize::from((mode >> 2) & 7).min(buf.len() - HEADER);
                let len = (buf.len() - trailing) as u32;
                buf[..4].copy_from_slice(&len.to_ne_bytes());
            }
            contiguous(&buf, protocol);
        } else {
            // Header slot, op_in and payload; bits 1..4 pick op_in's length (128 as on a
            // ring, or shorter).
            let mut head = [0u8; HEADER];
            let n = data.len().min(HEADER);
            head[..n].copy_from_slice(&data[..n]);
            let header = sys::fuse_in_header::read_from_bytes(&head).expect("40 bytes");
            let rest = data.get(HEADER..).unwrap_or(&[]);
            let op_in_len = match (mode >> 1) & 15 {
                0..=11 => OP_IN,
                k => usize::from(k - 12) * 24,
            };
            let mut op_in = [0u8; OP_IN];
            let n = rest.len().min(op_in_len);
            op_in[..n].copy_from_slice(&rest[..n]);
            split(&header, &op_in[..op_in_len], &rest[n..], protocol);
        }
    }
});
