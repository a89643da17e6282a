//! The metadata load generator: `xtask bench-client` (hidden), one process per client so that
//! "1 and 2 client processes" are real processes, as separate as two users' programs.
//!
//! Protocol with the benchmark: the client builds its list of paths, prints `ready`, waits for
//! a line on stdin (so that all clients start together, after the server's CPU time was
//! sampled), runs its loop for the given time, and prints `ops=N nanos=T`.

use std::ffi::CString;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::os::fd::AsRawFd;

use rustix::fs::{Mode, OFlags};

use crate::tree::Layout;

/// What a client does to each small file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// `fstatat(2)` of the file in its directory (opened once).
    Stat,
    /// `openat(2)` in its directory, `read(2)` to the end, `close(2)`.
    OpenReadClose,
}

impl Op {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::Stat => "stat",
            Op::OpenReadClose => "open-read-close",
        }
    }
}

/// The command line of a client (after `xtask`).
pub(crate) fn args(
    op: Op,
    root: &std::path::Path,
    layout: Layout,
    secs: f64,
    offset: usize,
) -> Vec<String> {
    vec![
        "bench-client".into(),
        op.name().into(),
        root.display().to_string(),
        layout.dirs.to_string(),
        layout.files_per_dir.to_string(),
        secs.to_string(),
        offset.to_string(),
    ]
}

/// `xtask bench-client OP ROOT DIRS FILES_PER_DIR SECS OFFSET`.
pub(crate) fn main(args: &[&str]) -> Result<(), String> {
    let [op, root, dirs, files, secs, offset] = args else {
        return Err(
            "bench-client: expected OP ROOT DIRS FILES_PER_DIR SECS OFFSET (used by `cargo xtask bench`)"
                .into(),
        );
    };
    let num = |s: &str| -> Result<usize, String> {
        s.parse()
            .map_err(|_| format!("bench-client: bad number {s}"))
    };
    let op = match *op {
        "stat" => Op::Stat,
        "open-read-close" => Op::OpenReadClose,
        other => return Err(format!("bench-client: unknown operation {other}")),
    };
    let layout = Layout {
        dirs: num(dirs)?,
        files_per_dir: num(files)?,
    };
    let secs: f64 = secs
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0)
        .ok_or_else(|| format!("bench-client: bad duration {secs}"))?;
    let root = PathBuf::from(root);
    // Each directory is opened once; the loop then works on (directory fd, name), as `ls -l`,
    // `find` or a build tool do: one path component looked up per operation.
    let mut dirs = Vec::with_capacity(layout.dirs);
    let mut files = Vec::with_capacity(layout.count());
    for i in 0..layout.count() {
        let p = layout.small_file(&root, i);
        let (Some(dir), Some(name)) = (p.parent(), p.file_name()) else {
            return Err(format!("bench-client: bad path {}", p.display()));
        };
        if i % layout.files_per_dir == 0 {
            dirs.push(
                rustix::fs::open(
                    dir,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| format!("bench-client: {}: {e}", dir.display()))?,
            );
        }
        let name = CString::new(name.as_encoded_bytes())
            .map_err(|_| "bench-client: NUL in a path".to_owned())?;
        files.push((dirs.len() - 1, name));
    }
    if files.is_empty() {
        return Err("bench-client: no files".into());
    }
    let start = num(offset)? % files.len();
    files.rotate_left(start);
    let files: Vec<(i32, &CString)> = files
        .iter()
        .map(|(d, name)| (dirs[*d].as_raw_fd(), name))
        .collect();
    let mut buf = vec![0u8; 64 * 1024];

    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;

    let limit = Duration::from_secs_f64(secs);
    let start = Instant::now();
    let mut ops = 0u64;
    'outer: loop {
        // Check the clock every 64 files: cheap next to a system call.
        for chunk in files.chunks(64) {
            for &(dir, name) in chunk {
                match op {
                    Op::Stat => stat(dir, name)?,
                    Op::OpenReadClose => open_read_close(dir, name, &mut buf)?,
                }
            }
            ops += chunk.len() as u64;
            if start.elapsed() >= limit {
                break 'outer;
            }
        }
    }
    let nanos = start.elapsed().as_nanos();
    println!("ops={ops} nanos={nanos}");
    Ok(())
}

// The loop calls libc directly: xtask usually runs as a debug build, where rustix's layers of
// wrappers would cost a measurable share of a native (page-cache) operation.

fn os_error(what: &str, name: &CString) -> String {
    format!("{what} {name:?}: {}", std::io::Error::last_os_error())
}

fn stat(dir: i32, name: &CString) -> Result<(), String> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated, `st` is writable memory for one `struct stat`.
    if unsafe { libc::fstatat(dir, name.as_ptr(), st.as_mut_ptr(), 0) } != 0 {
        return Err(os_error("stat", name));
    }
    Ok(())
}

fn open_read_close(dir: i32, name: &CString, buf: &mut [u8]) -> Result<(), String> {
    // SAFETY: `name` is NUL-terminated.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(os_error("open", name));
    }
    let result = loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes; `fd` is open.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n == 0 {
            break Ok(());
        }
        if n < 0 {
            break Err(os_error("read", name));
        }
    };
    // SAFETY: `fd` was opened above and is closed once.
    unsafe { libc::close(fd) };
    result
}
