//! Request decoding from hand-built kernel bytes, in both layouts (`/dev/fuse`: one buffer;
//! io_uring: header, op_in, payload). Expected values are written out, not computed by the
//! decoder.

use fuse_wire::{DecodeErrorKind, Errno, Operation, Protocol, Request, sys};

/// A `/dev/fuse` request: header (len computed from the parts), then `parts`.
fn request(opcode: u32, unique: u64, nodeid: u64, total_extlen: u16, parts: &[&[u8]]) -> Vec<u8> {
    let body: usize = parts.iter().map(|p| p.len()).sum();
    let mut b = Vec::new();
    b.extend_from_slice(&((40 + body) as u32).to_ne_bytes());
    b.extend_from_slice(&opcode.to_ne_bytes());
    b.extend_from_slice(&unique.to_ne_bytes());
    b.extend_from_slice(&nodeid.to_ne_bytes());
    b.extend_from_slice(&1000u32.to_ne_bytes()); // uid
    b.extend_from_slice(&100u32.to_ne_bytes()); // gid
    b.extend_from_slice(&4242u32.to_ne_bytes()); // pid
    b.extend_from_slice(&total_extlen.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    for p in parts {
        b.extend_from_slice(p);
    }
    b
}

fn u32s(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

fn u64s(values: &[u64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

/// The same request split as io_uring delivers it: fixed argument in op_in, rest in payload.
fn split(buf: &[u8], fixed: usize) -> (sys::fuse_in_header, Vec<u8>, Vec<u8>) {
    use sys::zerocopy::FromBytes;
    let (header, body) = sys::fuse_in_header::read_from_prefix(buf).unwrap();
    let mut op_in = vec![0u8; 128];
    op_in[..fixed].copy_from_slice(&body[..fixed]);
    (header, op_in, body[fixed..].to_vec())
}

#[test]
fn lookup_name_from_both_layouts() {
    let buf = request(sys::FUSE_LOOKUP, 7, 1, 0, &[b"hello\0"]);
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    assert_eq!((r.unique(), r.nodeid(), r.opcode()), (7, 1, 1));
    assert_eq!((r.uid(), r.gid(), r.pid()), (1000, 100, 4242));
    assert_eq!(*r.operation(), Operation::Lookup { name: c"hello" });
    let (header, op_in, payload) = split(&buf, 0);
    let s = Request::parse_split(&header, &op_in, &payload, Protocol::default()).unwrap();
    assert_eq!(s, r);
}

#[test]
fn write_data_and_read_arguments() {
    // fuse_write_in: fh 3, offset 4096, size 5, write_flags 0, lock_owner 0, flags 0, padding.
    let mut arg = u64s(&[3, 4096]);
    arg.extend(u32s(&[5, 0]));
    arg.extend(u64s(&[0]));
    arg.extend(u32s(&[0, 0]));
    assert_eq!(arg.len(), 40);
    let buf = request(sys::FUSE_WRITE, 9, 2, 0, &[&arg, b"abcde"]);
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    let Operation::Write { arg, data } = *r.operation() else {
        panic!("{r:?}")
    };
    assert_eq!((arg.fh, arg.offset, arg.size), (3, 4096, 5));
    assert_eq!(data, b"abcde");
    let (header, op_in, payload) = split(&buf, 40);
    assert_eq!(
        Request::parse_split(&header, &op_in, &payload, Protocol::default()).unwrap(),
        r
    );
    // A WRITE whose data is shorter than its size: an error, not a read past the end.
    let short = request(
        sys::FUSE_WRITE,
        9,
        2,
        0,
        &[&arg_bytes_with_size(6), b"abcde"],
    );
    let e = Request::parse(&short, Protocol::default()).unwrap_err();
    assert_eq!(
        e.kind(),
        DecodeErrorKind::Short {
            what: "WRITE data",
            need: 6,
            have: 5
        }
    );
    assert_eq!((e.unique(), e.opcode(), e.errno()), (9, 16, Errno::IO));
}

fn arg_bytes_with_size(size: u32) -> Vec<u8> {
    let mut arg = u64s(&[3, 4096]);
    arg.extend(u32s(&[size, 0]));
    arg.extend(u64s(&[0]));
    arg.extend(u32s(&[0, 0]));
    arg
}

#[test]
fn two_names() {
    let buf = request(sys::FUSE_SYMLINK, 1, 1, 0, &[b"link\0", b"../target\0"]);
    assert_eq!(
        *Request::parse(&buf, Protocol::default())
            .unwrap()
            .operation(),
        Operation::Symlink {
            name: c"link",
            target: c"../target"
        }
    );
    let buf = request(sys::FUSE_RENAME, 1, 1, 0, &[&u64s(&[5]), b"old\0new\0"]);
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    let Operation::Rename {
        arg,
        name,
        new_name,
    } = *r.operation()
    else {
        panic!()
    };
    assert_eq!((arg.newdir, name, new_name), (5, c"old", c"new"));
    // The second name without its NUL.
    let buf = request(sys::FUSE_RENAME, 1, 1, 0, &[&u64s(&[5]), b"old\0new"]);
    assert_eq!(
        Request::parse(&buf, Protocol::default())
            .unwrap_err()
            .kind(),
        DecodeErrorKind::MissingNul {
            what: "RENAME new name"
        }
    );
}

#[test]
fn setxattr_size_depends_on_setxattr_ext() {
    // Without FUSE_SETXATTR_EXT: the 8-byte compat argument {size, flags}.
    let buf = request(
        sys::FUSE_SETXATTR,
        1,
        1,
        0,
        &[&u32s(&[3, 0]), b"user.a\0xyz"],
    );
    let Operation::Setxattr { arg, name, value } = *Request::parse(&buf, Protocol::default())
        .unwrap()
        .operation()
    else {
        panic!()
    };
    assert_eq!(
        (arg.size, arg.setxattr_flags, name, value),
        (3, 0, c"user.a", &b"xyz"[..])
    );
    // With it: 16 bytes {size, flags, setxattr_flags, padding}.
    let ext = Protocol {
        setxattr_ext: true,
        ..Protocol::default()
    };
    let buf = request(
        sys::FUSE_SETXATTR,
        1,
        1,
        0,
        &[&u32s(&[2, 0, 1, 0]), b"user.b\0hi"],
    );
    let Operation::Setxattr { arg, name, value } = *Request::parse(&buf, ext).unwrap().operation()
    else {
        panic!()
    };
    assert_eq!(
        (arg.size, arg.setxattr_flags, name, value),
        (2, 1, c"user.b", &b"hi"[..])
    );
}

#[test]
fn batch_forget_lists_its_entries() {
    let mut arg = u32s(&[2, 0]);
    let entries = u64s(&[10, 1, 11, 3]);
    let buf = request(sys::FUSE_BATCH_FORGET, 0, 0, 0, &[&mut arg, &entries]);
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    let Operation::BatchForget(forgets) = *r.operation() else {
        panic!()
    };
    assert!(r.operation().is_no_reply());
    let got: Vec<(u64, u64)> = forgets.map(|f| (f.nodeid, f.nlookup)).collect();
    assert_eq!(got, [(10, 1), (11, 3)]);
    // A count larger than the entries delivered.
    let buf = request(sys::FUSE_BATCH_FORGET, 0, 0, 0, &[&u32s(&[3, 0]), &entries]);
    assert!(matches!(
        Request::parse(&buf, Protocol::default())
            .unwrap_err()
            .kind(),
        DecodeErrorKind::Short {
            need: 48,
            have: 32,
            ..
        }
    ));
}

#[test]
fn extensions_are_split_off_the_end() {
    // MKDIR {mode, umask} + name + one 8-byte extension (total_extlen 1).
    let ext = [0xE1u8; 8];
    let buf = request(
        sys::FUSE_MKDIR,
        3,
        1,
        1,
        &[&u32s(&[0o755, 0o022]), b"d\0", &ext],
    );
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    let Operation::Mkdir { arg, name } = *r.operation() else {
        panic!()
    };
    assert_eq!((arg.mode, arg.umask, name), (0o755, 0o022, c"d"));
    assert_eq!(r.extensions(), &ext);
    // Extensions longer than what follows the fixed argument.
    let buf = request(sys::FUSE_GETATTR, 3, 1, 2, &[&[0u8; 16]]);
    assert!(matches!(
        Request::parse(&buf, Protocol::default())
            .unwrap_err()
            .kind(),
        DecodeErrorKind::Short {
            what: "extensions",
            ..
        }
    ));
}

#[test]
fn bad_buffers_are_typed_errors() {
    // Shorter than a header: nothing to answer.
    let e = Request::parse(&[0u8; 39], Protocol::default()).unwrap_err();
    assert_eq!(e.unique(), 0);
    // len says more than was delivered.
    let mut buf = request(sys::FUSE_GETATTR, 5, 1, 0, &[&[0u8; 16]]);
    buf.truncate(50);
    assert_eq!(
        Request::parse(&buf, Protocol::default())
            .unwrap_err()
            .kind(),
        DecodeErrorKind::Length {
            header_len: 56,
            delivered: 50
        }
    );
    // len smaller than the header itself.
    let mut buf = request(sys::FUSE_GETATTR, 5, 1, 0, &[&[0u8; 16]]);
    buf[..4].copy_from_slice(&8u32.to_ne_bytes());
    assert!(Request::parse(&buf, Protocol::default()).is_err());
    // Fixed argument missing.
    let buf = request(sys::FUSE_READ, 5, 1, 0, &[&[0u8; 20]]);
    assert!(matches!(
        Request::parse(&buf, Protocol::default())
            .unwrap_err()
            .kind(),
        DecodeErrorKind::Short {
            need: 40,
            have: 20,
            ..
        }
    ));
    // Unknown opcode: ENOSYS, with the unique to answer.
    let buf = request(4096, 6, 1, 0, &[]);
    let e = Request::parse(&buf, Protocol::default()).unwrap_err();
    assert_eq!(
        (e.kind(), e.unique(), e.errno()),
        (DecodeErrorKind::UnknownOpcode, 6, Errno::NOSYS)
    );
    // An op_in area shorter than the fixed argument (io_uring layout).
    let (header, _, payload) = split(&request(sys::FUSE_READ, 5, 1, 0, &[&[0u8; 40]]), 40);
    assert!(Request::parse_split(&header, &[0u8; 8], &payload, Protocol::default()).is_err());
}

#[test]
fn init_from_the_kernel() {
    let mut arg = u32s(&[7, 45, 131072, 1 << 30, 1 << 9]);
    arg.resize(64, 0);
    let buf = request(sys::FUSE_INIT, 2, 0, 0, &[&arg]);
    let Operation::Init(init) = *Request::parse(&buf, Protocol::default())
        .unwrap()
        .operation()
    else {
        panic!()
    };
    assert_eq!(
        (init.major, init.minor, init.max_readahead),
        (7, 45, 131072)
    );
    assert_eq!(init.flags, (1 << 30) | (1 << 41));
    // A 7.26 kernel's 16-byte INIT still decodes (and is then refused by negotiate).
    let buf = request(sys::FUSE_INIT, 2, 0, 0, &[&u32s(&[7, 26, 65536, 0])]);
    let Operation::Init(init) = *Request::parse(&buf, Protocol::default())
        .unwrap()
        .operation()
    else {
        panic!()
    };
    assert_eq!(init.minor, 26);
}

#[test]
fn notify_reply_over_io_uring_has_its_argument_in_the_payload() {
    // fuse_notify_retrieve_in: dummy1, offset 8192, size 3, dummy2, dummy3, dummy4.
    let mut arg = u64s(&[0, 8192]);
    arg.extend(u32s(&[3, 0]));
    arg.extend(u64s(&[0, 0]));
    assert_eq!(arg.len(), 40);
    let buf = request(sys::FUSE_NOTIFY_REPLY, 77, 2, 0, &[&arg, b"xyz"]);
    let r = Request::parse(&buf, Protocol::default()).unwrap();
    let Operation::NotifyReply { arg: got, data } = *r.operation() else {
        panic!("{r:?}")
    };
    assert_eq!((got.offset, got.size, data), (8192, 3, &b"xyz"[..]));
    // What the kernel writes to a ring entry (seen on 6.18): op_in untouched (here: garbage
    // from an earlier request), the whole argument list in the payload.
    let (header, _, _) = split(&buf, 40);
    let stale_op_in = [0xAAu8; 128];
    let payload = buf[size_of::<sys::fuse_in_header>()..].to_vec();
    assert_eq!(
        Request::parse_split(&header, &stale_op_in, &payload, Protocol::default()).unwrap(),
        r
    );
}

/// The typed flag accessors give the kernel's bits of the decoded argument, unknown bits
/// kept; the expected bits are the kernel's numbers, written out.
#[test]
fn typed_flags_of_decoded_requests() {
    use fuse_wire::{FallocateFlags, RenameFlags, SetattrValid, XattrFlags};
    fn parse(buf: &[u8]) -> Operation<'_> {
        *Request::parse(buf, Protocol::default())
            .unwrap()
            .operation()
    }

    // RENAME2: fuse_rename2_in {newdir 5, flags RENAME_EXCHANGE (2) | bit 20, padding}.
    let mut arg = u64s(&[5]);
    arg.extend(u32s(&[2 | 1 << 20, 0]));
    let buf = request(sys::FUSE_RENAME2, 1, 1, 0, &[&arg, b"a\0b\0"]);
    let flags = parse(&buf).rename_flags().unwrap();
    assert!(flags.contains(RenameFlags::EXCHANGE));
    assert!(!flags.contains(RenameFlags::NOREPLACE));
    assert_eq!(flags.bits(), 2 | 1 << 20);
    // RENAME has no flags: the empty set, not None.
    let buf = request(sys::FUSE_RENAME, 1, 1, 0, &[&u64s(&[5]), b"a\0b\0"]);
    assert_eq!(parse(&buf).rename_flags(), Some(RenameFlags::empty()));

    // SETXATTR: {size 1, flags XATTR_REPLACE (2)}.
    let buf = request(sys::FUSE_SETXATTR, 1, 1, 0, &[&u32s(&[1, 2]), b"user.a\0x"]);
    let op = parse(&buf);
    assert_eq!(op.setxattr_flags(), Some(XattrFlags::REPLACE));
    assert_eq!(op.rename_flags(), None);

    // FALLOCATE: fuse_fallocate_in {fh 3, offset 0, length 4096, mode KEEP_SIZE | PUNCH_HOLE
    // (1 | 2), padding}.
    let mut arg = u64s(&[3, 0, 4096]);
    arg.extend(u32s(&[1 | 2, 0]));
    let buf = request(sys::FUSE_FALLOCATE, 1, 2, 0, &[&arg]);
    let mode = parse(&buf).fallocate_mode().unwrap();
    assert_eq!(mode, FallocateFlags::KEEP_SIZE | FallocateFlags::PUNCH_HOLE);

    // SETATTR: fuse_setattr_in (88 bytes) with valid SIZE | MTIME | MTIME_NOW (1<<3 | 1<<5 |
    // 1<<8) and size 10.
    let mut arg = u32s(&[1 << 3 | 1 << 5 | 1 << 8, 0]);
    arg.extend(u64s(&[0, 10, 0, 0, 0, 0]));
    arg.extend(u32s(&[0; 8]));
    assert_eq!(arg.len(), 88);
    let buf = request(sys::FUSE_SETATTR, 1, 2, 0, &[&arg]);
    let op = parse(&buf);
    let valid = op.setattr_valid().unwrap();
    assert_eq!(
        valid,
        SetattrValid::SIZE | SetattrValid::MTIME | SetattrValid::MTIME_NOW
    );
    assert!(valid.unknown().is_empty());
    let Operation::Setattr(arg) = op else {
        panic!("{op:?}")
    };
    assert_eq!(arg.size, 10);
    assert_eq!(op.fallocate_mode(), None);
    assert_eq!(op.setxattr_flags(), None);
}
