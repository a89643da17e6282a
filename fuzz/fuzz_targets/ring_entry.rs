//! fuse-uring's ring-entry accessors and reply writers on bytes the kernel controls: the
//! 288-byte `fuse_uring_req_header` of an entry (with arbitrary `fuse_in_header.len`,
//! `opcode` and `payload_sz`) and its payload buffer are filled from the input, as the kernel
//! would before completing a command; then every accessor must stay inside the entry, and
//! every writer must refuse what does not fit and write exactly what does. The entry goes
//! through COMMIT_AND_FETCH / REGISTER SQEs and back through `complete`, as on a ring.

#![no_main]

use std::sync::{Mutex, OnceLock};

use fuse_kernel_sys as sys;
use fuse_kernel_sys::zerocopy::FromBytes;
use fuse_uring::{Command, Entry, QueueBuffers, QueueConfig, ReplyError};
use libfuzzer_sys::fuzz_target;

const HEADER: usize = size_of::<sys::fuse_uring_req_header>();
const PAYLOAD: usize = 12 * 1024;

struct State {
    buffers: &'static QueueBuffers,
    entry: Option<Entry<'static>>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let buffers: &'static QueueBuffers = Box::leak(Box::new(
            QueueBuffers::new(QueueConfig::unbound(3, 2, PAYLOAD)).expect("buffers"),
        ));
        let mut entries = buffers.take_entries().expect("fresh buffers");
        let _first = entries.next();
        Mutex::new(State {
            buffers,
            entry: entries.next(),
        })
    })
}

fn header_bytes(buffers: &QueueBuffers, entry: &Entry<'_>) -> [u8; HEADER] {
    let (base, _) = buffers.mapping();
    let at = buffers.layout().header_offset(entry.index());
    let mut out = [0u8; HEADER];
    // SAFETY: the header slot of `entry` is HEADER bytes inside the mapping; we hold the
    // entry's token (no command is in flight, nothing else writes it) and no reference into
    // the slot is alive during the copy.
    unsafe { std::ptr::copy_nonoverlapping(base.as_ptr().add(at), out.as_mut_ptr(), HEADER) };
    out
}

/// Plays the kernel: writes the request header slot, as the kernel does before completing.
fn kernel_writes_header(buffers: &QueueBuffers, entry: &mut Entry<'_>, bytes: &[u8; HEADER]) {
    let (base, _) = buffers.mapping();
    let at = buffers.layout().header_offset(entry.index());
    // SAFETY: as in `header_bytes`, for a write; `&mut Entry` proves exclusive access.
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.as_ptr().add(at), HEADER) };
}

/// An ABI struct from the front of `bytes` (unaligned), as the kernel's reader sees it.
fn read_struct<T: FromBytes>(bytes: &[u8]) -> Option<T> {
    T::read_from_prefix(bytes).ok().map(|(value, _)| value)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn sqe_bytes(sqe: &io_uring::squeue::Entry128) -> [u8; 128] {
    // SAFETY: Entry128 is a 128-byte repr(C) struct of integers built from zeroed memory, all
    // bytes initialised; read_unaligned needs no alignment.
    unsafe { std::ptr::from_ref(sqe).cast::<[u8; 128]>().read_unaligned() }
}

fuzz_target!(|data: &[u8]| {
    let mut st = state().lock().unwrap_or_else(|e| e.into_inner());
    let buffers = st.buffers;
    let mut entry = st.entry.take().expect("the entry is always put back");

    // --- the request, as the kernel writes it -----------------------------------------------
    let mut hdr = [0u8; HEADER];
    let n = data.len().min(HEADER);
    hdr[..n].copy_from_slice(&data[..n]);
    kernel_writes_header(buffers, &mut entry, &hdr);
    let rest = data.get(HEADER..).unwrap_or(&[]);
    let (control, payload_in) = rest.split_at(rest.len().min(12));
    let mut control = control.to_vec();
    control.resize(12, 0);
    let written = payload_in.len().min(PAYLOAD);
    entry.payload_mut()[..written].copy_from_slice(&payload_in[..written]);

    // --- accessors --------------------------------------------------------------------------
    let in_header: sys::fuse_in_header = read_struct(&hdr).expect("40 bytes");
    assert_eq!(*entry.in_header(), in_header);
    let ent: sys::fuse_uring_ent_in_out = read_struct(&hdr[256..]).expect("32 bytes");
    assert_eq!(*entry.ent_in_out(), ent);
    assert_eq!(entry.commit_id(), ent.commit_id);
    let op_in_len = (in_header.len as usize)
        .saturating_sub(40)
        .saturating_sub(ent.payload_sz as usize)
        .min(128);
    assert_eq!(entry.op_in(), &hdr[128..128 + op_in_len]);
    assert_eq!(
        entry.op_in_as::<sys::fuse_read_in>().is_some(),
        op_in_len >= size_of::<sys::fuse_read_in>()
    );
    let capacity = entry.payload_capacity();
    assert_eq!(capacity, PAYLOAD);
    let payload_len = (ent.payload_sz as usize).min(capacity);
    assert_eq!(entry.payload().len(), payload_len);
    let common = payload_len.min(written);
    assert_eq!(entry.payload()[..common], payload_in[..common]);
    assert_eq!(entry.payload_mut().len(), capacity);

    // --- reply writers with caller-chosen sizes ---------------------------------------------
    let reply_len = u32_at(&control, 0) as usize % (3 * PAYLOAD);
    let errno = u32_at(&control, 4) as i32;
    let data_len = (u32_at(&control, 8) as usize) % (2 * PAYLOAD + 2);
    let out_header = |e: &Entry<'_>| -> (sys::fuse_out_header, u32) {
        let b = header_bytes(buffers, e);
        let ent: sys::fuse_uring_ent_in_out = read_struct(&b[256..]).expect("32 bytes");
        (read_struct(&b).expect("16 bytes"), ent.payload_sz)
    };
    let before = header_bytes(buffers, &entry);
    match entry.set_reply(reply_len) {
        Ok(()) => {
            assert!(reply_len <= capacity);
            let (out, psz) = out_header(&entry);
            assert_eq!(
                (out.len as usize, out.error, out.unique),
                (16 + reply_len, 0, ent.commit_id)
            );
            assert_eq!(psz as usize, reply_len);
        }
        Err(ReplyError::TooLong { len, capacity: c }) => {
            assert!(reply_len > capacity);
            assert_eq!((len, c), (reply_len, capacity));
            assert_eq!(
                header_bytes(buffers, &entry),
                before,
                "a refused reply wrote"
            );
        }
        Err(e) => panic!("unexpected {e}"),
    }
    // Errno values are 1..=4095 (rustix's range); the kernel takes 1..=511, the rest is EIO.
    let raw = (errno.unsigned_abs() % 4095 + 1) as i32;
    entry.set_error(fuse_uring::Errno::from_raw_os_error(raw));
    let sent = if raw <= 511 { raw } else { libc::EIO };
    let (out, psz) = out_header(&entry);
    assert_eq!(
        (out.len, out.error, out.unique, psz),
        (16, -sent, ent.commit_id, 0)
    );
    let body: Vec<u8> = (0..data_len).map(|i| (i as u8) ^ control[0]).collect();
    match entry.reply(&body) {
        Ok(()) => {
            assert!(data_len <= capacity);
            assert_eq!(entry.payload(), &body[..]);
            assert_eq!(out_header(&entry).0.len as usize, 16 + data_len);
        }
        Err(ReplyError::TooLong { len, .. }) => {
            assert!(data_len > capacity);
            assert_eq!(len, data_len);
        }
        Err(e) => panic!("unexpected {e}"),
    }
    entry
        .reply_value(&sys::fuse_attr_out::default())
        .expect("a struct fits");

    // --- the entry goes to the "kernel" and comes back ----------------------------------------
    let index = entry.index();
    let result = u32_at(&control, 4) as i32;
    let sqe = if control[1] & 1 == 0 {
        entry.commit_and_fetch()
    } else {
        entry.register()
    };
    let b = sqe_bytes(&sqe);
    let user_data = u64_at(&b, 32);
    assert!(buffers.owns(user_data));
    assert_eq!(b[0], 46, "IORING_OP_URING_CMD");
    assert_eq!(u32_at(&b, 4) as i32, -1, "fd");
    assert_eq!(
        u64_at(&b, 48 + 8),
        if control[1] & 1 == 0 {
            ent.commit_id
        } else {
            0
        }
    );
    assert_eq!(u16::from_ne_bytes([b[64], b[65]]), 3, "qid");
    // SAFETY: `user_data` is that of the SQE just built from our entry, which was never
    // pushed anywhere, and it is decoded exactly once: this mints the entry's one token.
    let done = unsafe { buffers.complete(user_data, result) }.expect("our own user_data");
    let command = if control[1] & 1 == 0 {
        Command::CommitAndFetch
    } else {
        Command::Register
    };
    assert_eq!(done.command, command);
    assert_eq!(done.entry.index(), index);
    match done.result {
        Ok(()) => assert!(result >= 0),
        Err(e) => {
            assert!(result < 0);
            // The kernel's errnos are 1..=4095; anything else is reported as EIO.
            let expected = match result.checked_neg() {
                Some(errno @ 1..=4095) => errno,
                _ => libc::EIO,
            };
            assert_eq!(e.raw_os_error(), expected);
            assert_eq!(e.command(), command);
            assert!(!e.to_string().is_empty());
        }
    }
    // A value that is not one of ours is never decoded (checked without minting a token).
    let foreign = u64_at(&hdr, 8) ^ user_data;
    let (base, _) = buffers.mapping();
    let offset = (foreign & !1).wrapping_sub(base.as_ptr() as u64);
    let slots = 2 * 64;
    assert_eq!(
        buffers.owns(foreign),
        offset < slots && offset.is_multiple_of(64),
        "{foreign:#x}"
    );
    st.entry = Some(done.entry);
});
