//! testkit's request loop and its MemFs handler, the server side of the kernel tests:
//! arbitrary bytes arrive as one `read(2)` from a file descriptor (a pipe standing in for
//! `/dev/fuse`) through `testkit::read_request` (a `fuse_dev::Channel`), which takes exactly
//! the reads that are one whole request (`fuse_in_header.len` equal to the bytes read) and
//! refuses the rest with `EIO`; what it takes is answered without panicking.

#![no_main]

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use fuse_kernel_sys as sys;
use libfuzzer_sys::fuzz_target;
use testkit::{Handler, MemFs, Reply, read_request};

struct State {
    read_end: OwnedFd,
    write_end: OwnedFd,
    fs: MemFs,
    buf: Vec<u8>,
}

fn state() -> &'static Mutex<State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    STATE.get_or_init(|| {
        let (read_end, write_end) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).expect("pipe");
        let mut fs = MemFs::new();
        fs.add_file(1, "a", b"hello".to_vec());
        let dir = fs.add_dir(1, "d");
        fs.add_file(dir, "b", vec![7u8; 70_000]);
        fs.add_passthrough_file(1, "p", 1, 4096);
        Mutex::new(State {
            read_end,
            write_end,
            fs,
            buf: vec![0u8; 1 << 16],
        })
    })
}

fuzz_target!(|data: &[u8]| {
    // A pipe holds 64 KiB; an empty write would leave the read blocking.
    if data.is_empty() || data.len() > 60_000 {
        return;
    }
    let mut guard = state().lock().unwrap_or_else(|e| e.into_inner());
    let st = &mut *guard;
    let written = rustix::io::write(&st.write_end, data).expect("write to pipe");
    assert_eq!(written, data.len());
    let header_len = size_of::<sys::fuse_in_header>();
    match read_request(st.read_end.as_fd(), &mut st.buf) {
        Ok(Some(request)) => {
            assert!(data.len() >= header_len);
            assert_eq!(request.header.len as usize, data.len());
            assert_eq!(request.body, &data[header_len..]);
            match st.fs.handle(&request) {
                Reply::Data(d) => assert!(d.len() <= 1 << 24),
                Reply::Error(errno) => assert!(errno > 0, "errno {errno}"),
                Reply::None => {}
            }
        }
        Ok(None) => panic!("a pipe is not an unmounted connection"),
        Err(e) => {
            let claimed = data
                .get(..4)
                .map(|b| u32::from_ne_bytes(b.try_into().expect("4 bytes")) as usize);
            assert!(
                data.len() < header_len || claimed != Some(data.len()),
                "refused a whole request: {e}"
            );
            assert_eq!(
                e.kind(),
                std::io::Error::from_raw_os_error(libc::EIO).kind(),
                "{e}"
            );
        }
    }
});
