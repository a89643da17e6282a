//! hello: one read-only file, `hello.txt`, over FUSE-over-io_uring when the kernel offers it
//! and every queue can be set up, else (or with `hello MNT dev`) over /dev/fuse. As root it
//! mounts with mount(2), else through fusermount3; it ends when unmounted (`umount MNT`).
use fuse_dev::fuse_wire::{self, DecodeError, DirentBuf, Errno, InitConfig, OpenOut};
use fuse_dev::fuse_wire::{BufferTooSmall, Operation as Op, Protocol, Request, reply, sys};
use fuse_dev::{Channel, Mount, MountOptions};
use fuse_uring::{FuseFd, Queue, QueueBuffers, QueueConfig, Ring, queue_ids};
use std::{error::Error, os::fd::AsFd, path::Path, time::Duration};

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;
const DATA: &[u8] = b"Hello, world!\n";
const TTL: Duration = Duration::from_secs(1);

fn attr(ino: u64) -> sys::fuse_attr {
    let mut attr = sys::fuse_attr::default();
    let (mode, size) = [(0o040755, 0), (0o100444, DATA.len() as u64)][(ino == 2) as usize];
    (attr.ino, attr.mode, attr.size, attr.nlink) = (ino, mode, size, 1);
    attr
}

/// The file system: writes the reply payload for `req` into `out` and returns its length,
/// or the errno; `None` when the request gets no reply (FORGET).
fn answer(req: Result<Request<'_>, DecodeError>, out: &mut [u8]) -> Option<Result<usize, Errno>> {
    let req = match req {
        Ok(req) if req.operation().is_no_reply() => return None,
        Ok(req) => req,
        Err(e) => return Some(Err(e.errno())),
    };
    let ok = |r: Result<_, BufferTooSmall>| r.map_err(|e| e.errno());
    Some(match req.operation() {
        Op::Lookup { name } if *name == c"hello.txt" => ok(reply::entry(
            out,
            &reply::entry_out(2, 0, attr(2), TTL, TTL),
        )),
        Op::Getattr(_) => ok(reply::attr(out, &reply::attr_out(attr(req.nodeid()), TTL))),
        Op::Open(_) | Op::Opendir(_) => ok(reply::open(out, &OpenOut::new(0))),
        Op::Read(r) => {
            let data = DATA.get(r.offset as usize..).unwrap_or_default();
            ok(reply::data(out, &data[..data.len().min(r.size as usize)]))
        }
        Op::Readdir(r) => {
            let mut dir = DirentBuf::new(out.split_at_mut(out.len().min(r.size as usize)).0);
            let fits = r.offset > 0 || dir.push(2, 1, 8, b"hello.txt").is_ok();
            fits.then(|| dir.len()).ok_or(Errno::OVERFLOW)
        }
        Op::Release(_) | Op::Releasedir(_) => Ok(0),
        Op::Lookup { .. } => Err(Errno::NOENT),
        _ => Err(Errno::NOSYS),
    })
}

/// Serves one io_uring queue until unmount (every entry then completes with an error).
fn serve_queue(queue: Queue, protocol: Protocol) -> Res<()> {
    queue.register_all()?;
    let mut out = [0; 4096];
    while queue.in_kernel() > 0 {
        queue.wait(None)?;
        for done in queue.completions() {
            let Ok(()) = done.result else { continue };
            let mut entry = done.entry;
            let (head, arg, payload) = (entry.in_header(), entry.op_in(), entry.payload());
            match answer(Request::parse_split(head, arg, payload, protocol), &mut out) {
                Some(Ok(n)) => entry.reply(&out[..n])?,
                Some(Err(e)) => entry.set_error(e),
                None => continue,
            }
            queue.commit_and_fetch(entry).map_err(|_| "foreign")?;
        }
    }
    Ok(())
}

/// Mounts at `mount_point` and serves until unmounted; returns the transport used.
pub fn run(mount_point: &Path, allow_uring: bool) -> Res<&'static str> {
    let (dev, _mount) = Mount::auto(mount_point, &MountOptions::new().subtype("hello"))?;
    let mut chan = Channel::new(dev);
    let init = chan.read_init(&mut vec![0; fuse_dev::MIN_READ_BUFFER])?; // INIT, step 1 of 2
    let mut config = InitConfig::default();
    let size = fuse_wire::negotiate(&init.kernel, &config)?.uring_payload_size();
    let setup = |qid| -> Res<Queue> {
        let dev = FuseFd::dup(chan.device().as_fd())?;
        let buffers = QueueBuffers::new(QueueConfig::new(qid, 8, size, dev))?;
        Ok(Queue::new(buffers, Ring::builder().build(8)?)?)
    };
    let offered = allow_uring && init.kernel.offers(sys::FUSE_OVER_IO_URING);
    let ids = if offered { queue_ids()? } else { 0..0 };
    let queues: Vec<Queue> = ids.map(setup).collect::<Res<_>>().unwrap_or_default();
    if !queues.is_empty() {
        config.want |= sys::FUSE_OVER_IO_URING;
    }
    let negotiated = fuse_wire::negotiate(&init.kernel, &config)?;
    chan.reply_init(&init, &negotiated)?; // io_uring only once every queue is set up
    std::thread::scope(|s| {
        let threads: Vec<_> = (queues.into_iter())
            .map(|q| s.spawn(move || serve_queue(q, negotiated.protocol())))
            .collect();
        // FORGET and INTERRUPT keep coming over /dev/fuse with io_uring too.
        let (mut buf, mut out) = (vec![0; chan.read_buffer_size()], [0; 4096]);
        while let Some(bytes) = chan.receive(&mut buf)? {
            let req = Request::parse(bytes, chan.protocol());
            let unique = req.as_ref().map_or_else(|e| e.unique(), |r| r.unique());
            if let Some(result) = answer(req, &mut out) {
                chan.reply_result(unique, result.map(|n| &out[..n]))?;
            }
        }
        let uring = !threads.is_empty();
        for t in threads {
            t.join().map_err(|_| "queue thread panicked")??;
        }
        Ok(if uring { "io_uring" } else { "/dev/fuse" })
    })
}

fn main() -> Res<()> {
    let mnt = std::env::args_os().nth(1).ok_or("usage: hello MNT [dev]")?;
    let served = run(Path::new(&mnt), std::env::args_os().len() < 3)?;
    println!("hello: served over {served}");
    Ok(())
}
