//! fuse-wire's notification encoders (`fuse_wire::notify`) with arbitrary arguments (node
//! ids, offsets, names of any bytes and length, data, prune lists) into buffers of arbitrary
//! size. Each call either writes exactly the message the kernel reads (a `fuse_out_header`
//! with `unique` 0, the notification code in `error` and `len` the message length, then the
//! argument struct and names or data) and nothing past it, or writes nothing: a
//! `BufferTooSmall` naming the real need and the buffer's size, or `InvalidName` exactly for
//! names the kernel refuses.

#![no_main]

use fuse_kernel_blocks_fuzz::{Input, valid_name};
use fuse_kernel_sys as sys;
use fuse_wire::BufferTooSmall;
use fuse_wire::notify::{self, NotifyError};
use libfuzzer_sys::fuzz_target;

/// The message as the kernel reads it, built here field by field.
fn message(code: u32, fields: &[&[u8]]) -> Vec<u8> {
    let payload: usize = fields.iter().map(|f| f.len()).sum();
    let mut m = Vec::new();
    m.extend_from_slice(&((16 + payload) as u32).to_ne_bytes());
    m.extend_from_slice(&(code as i32).to_ne_bytes());
    m.extend_from_slice(&0u64.to_ne_bytes());
    for f in fields {
        m.extend_from_slice(f);
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let which = input.u8() % 9;
    let size = match input.u8() % 4 {
        0 => usize::from(input.u8()),
        1 => usize::from(input.u16()),
        _ => 16 + usize::from(input.u8() % 64),
    };
    let fill = input.u8();
    let mut buf = vec![fill; size];
    let before = buf.clone();

    // (result, expected message, whether a name was involved and valid)
    let (result, expected, name_ok) = match which {
        0 => {
            let (ino, off, len) = (input.u64(), input.u64() as i64, input.u64() as i64);
            let m = message(
                sys::FUSE_NOTIFY_INVAL_INODE,
                &[&ino.to_ne_bytes(), &off.to_ne_bytes(), &len.to_ne_bytes()],
            );
            (notify::inval_inode(&mut buf, ino, off, len), m, true)
        }
        1 => {
            let (parent, expire) = (input.u64(), input.u8() & 1 == 1);
            let name = input.name(b'n');
            let flags = if expire { sys::FUSE_EXPIRE_ONLY } else { 0 };
            let m = message(
                sys::FUSE_NOTIFY_INVAL_ENTRY,
                &[
                    &parent.to_ne_bytes(),
                    &(name.len() as u32).to_ne_bytes(),
                    &flags.to_ne_bytes(),
                    &name,
                    b"\0",
                ],
            );
            let r = notify::inval_entry(&mut buf, parent, &name, expire);
            (r, m, valid_name(&name))
        }
        2 => {
            let (parent, child) = (input.u64(), input.u64());
            let name = input.name(b'n');
            let m = message(
                sys::FUSE_NOTIFY_DELETE,
                &[
                    &parent.to_ne_bytes(),
                    &child.to_ne_bytes(),
                    &(name.len() as u32).to_ne_bytes(),
                    &0u32.to_ne_bytes(),
                    &name,
                    b"\0",
                ],
            );
            let r = notify::delete(&mut buf, parent, child, &name);
            (r, m, valid_name(&name))
        }
        3 => {
            let (nodeid, offset) = (input.u64(), input.u64());
            let len = usize::from(input.u16());
            let data = input.bytes(len).to_vec();
            let m = message(
                sys::FUSE_NOTIFY_STORE,
                &[
                    &nodeid.to_ne_bytes(),
                    &offset.to_ne_bytes(),
                    &(data.len() as u32).to_ne_bytes(),
                    &0u32.to_ne_bytes(),
                    &data,
                ],
            );
            (notify::store(&mut buf, nodeid, offset, &data), m, true)
        }
        4 => {
            let (unique, nodeid, offset, len) =
                (input.u64(), input.u64(), input.u64(), input.u32());
            let m = message(
                sys::FUSE_NOTIFY_RETRIEVE,
                &[
                    &unique.to_ne_bytes(),
                    &nodeid.to_ne_bytes(),
                    &offset.to_ne_bytes(),
                    &len.to_ne_bytes(),
                    &0u32.to_ne_bytes(),
                ],
            );
            let r = notify::retrieve(&mut buf, unique, nodeid, offset, len);
            (r, m, true)
        }
        5 => {
            let kh = input.u64();
            let m = message(sys::FUSE_NOTIFY_POLL, &[&kh.to_ne_bytes()]);
            (notify::poll_wakeup(&mut buf, kh), m, true)
        }
        6 => (
            notify::resend(&mut buf),
            message(sys::FUSE_NOTIFY_RESEND, &[]),
            true,
        ),
        7 => (
            notify::inc_epoch(&mut buf),
            message(sys::FUSE_NOTIFY_INC_EPOCH, &[]),
            true,
        ),
        _ => {
            let count = usize::from(input.u16()) % 1024;
            let ids: Vec<u64> = (0..count).map(|_| input.u64()).collect();
            let list: Vec<u8> = ids.iter().flat_map(|id| id.to_ne_bytes()).collect();
            let m = message(
                sys::FUSE_NOTIFY_PRUNE,
                &[
                    &(count as u32).to_ne_bytes(),
                    &0u32.to_ne_bytes(),
                    &0u64.to_ne_bytes(),
                    &list,
                ],
            );
            (notify::prune(&mut buf, &ids), m, true)
        }
    };
    match result {
        Ok(n) => {
            assert!(name_ok);
            assert_eq!(n, expected.len());
            assert!(n <= size);
            assert_eq!(&buf[..n], &expected[..], "notification {which}");
            assert_eq!(&buf[n..], &before[n..], "wrote past the message");
        }
        Err(NotifyError::BufferTooSmall(BufferTooSmall { need, have })) => {
            assert!(name_ok, "a bad name is reported first");
            assert_eq!((need, have), (expected.len(), size));
            assert!(need > have);
            assert!(buf == before, "a refused notification wrote");
        }
        Err(NotifyError::InvalidName) => {
            assert!(!name_ok);
            assert!(buf == before, "a refused notification wrote");
        }
    }
});
