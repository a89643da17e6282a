//! Process accounting for the benchmark and the soak test (`cargo xtask bench`, `soak`): a process's CPU time from
//! `/proc/<pid>/stat`, the machine's and the children's CPU time (to tell how much of the
//! machine other processes took during a measurement), and a stop flag raised by
//! SIGINT/SIGTERM/SIGHUP so that the benchmark can stop its children and remove its mounts
//! instead of dying with them in place.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// The CPU time a process has used so far, user and system, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CpuTicks {
    /// `utime`: field 14 of `/proc/<pid>/stat`, all threads of the process.
    pub(crate) user: u64,
    /// `stime`: field 15.
    pub(crate) system: u64,
}

impl CpuTicks {
    /// User plus system ticks.
    pub(crate) fn total(self) -> u64 {
        self.user + self.system
    }

    /// The ticks used since `earlier` (saturating).
    pub(crate) fn since(self, earlier: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// Reads the CPU time of process `pid` (every thread of it) from `/proc/<pid>/stat`.
pub(crate) fn cpu_ticks(pid: u32) -> io::Result<CpuTicks> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("/proc/{pid}/stat: unexpected format"),
        )
    })
}

/// Parses `utime` and `stime` out of the text of `/proc/<pid>/stat`. The command name (field
/// 2, in parentheses) may contain spaces and parentheses, so fields are counted after the last
/// `)`: the field after it is field 3.
fn parse_stat(stat: &str) -> Option<CpuTicks> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(14 - 3);
    let user = fields.next()?.parse().ok()?;
    let system = fields.next()?.parse().ok()?;
    Some(CpuTicks { user, system })
}

/// Context switches of process `pid` so far, summed over its threads: `voluntary_ctxt_switches`
/// plus `nonvoluntary_ctxt_switches` of every `/proc/<pid>/task/<tid>/status`: the threads
/// alive now (unlike the CPU time of `/proc/<pid>/stat`, a thread that ended no longer counts,
/// so a difference across a thread's exit undercounts). A FUSE server thread switches at least once per request it
/// waits for, so this counts how often the server slept and was woken.
pub(crate) fn context_switches(pid: u32) -> io::Result<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
            continue;
        };
        total += parse_switches(&status);
    }
    Ok(total)
}

/// The sum of the `*_ctxt_switches` lines of a `/proc/.../status` text.
fn parse_switches(status: &str) -> u64 {
    status
        .lines()
        .filter_map(|l| {
            let (key, value) = l.split_once(':')?;
            key.ends_with("ctxt_switches")
                .then(|| value.trim().parse::<u64>().ok())
                .flatten()
        })
        .sum()
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, the unit of [`CpuTicks`]).
pub(crate) fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// CPU time of the whole machine so far, in clock ticks summed over all CPUs, from the `cpu`
/// line of `/proc/stat`: `busy` (user, nice, system) and `steal` (taken by the
/// hypervisor for other guests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MachineTicks {
    pub(crate) busy: u64,
    pub(crate) steal: u64,
}

/// Reads [`MachineTicks`] from `/proc/stat`.
pub(crate) fn machine_ticks() -> io::Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    parse_machine(&stat)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "/proc/stat: unexpected format"))
}

fn parse_machine(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: at(0) + at(1) + at(2),
        steal: at(7),
    })
}

/// CPU time (user+system) of this process's terminated and waited-for children, and of their
/// own waited-for descendants (`getrusage(RUSAGE_CHILDREN)`), in clock ticks.
pub(crate) fn children_cpu_ticks() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` is writable memory for one `struct rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()) } != 0 {
        return 0;
    }
    // SAFETY: getrusage succeeded, so it initialised `usage`.
    let usage = unsafe { usage.assume_init() };
    let tck = clock_ticks_per_second();
    let ticks = |tv: libc::timeval| {
        let us = u64::try_from(tv.tv_sec).unwrap_or(0) * 1_000_000
            + u64::try_from(tv.tv_usec).unwrap_or(0);
        us * tck / 1_000_000
    };
    ticks(usage.ru_utime) + ticks(usage.ru_stime)
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_sig: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP that only raise the flag read by
/// [`stop_requested`]. Children started afterwards get the default dispositions back at exec.
pub(crate) fn install_stop_handler() -> io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: sigaction is plain data for which all-zero bytes are a valid value.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        // The handler only stores to an atomic, which is async-signal-safe. No SA_RESTART:
        // blocking calls return EINTR so that waits notice the flag (std retries where it must).
        action.sa_sigaction = on_stop_signal as extern "C" fn(libc::c_int) as usize;
        // SAFETY: `action.sa_mask` is a valid, exclusively borrowed sigset.
        unsafe { libc::sigemptyset(&mut action.sa_mask) };
        // SAFETY: `action` is initialised and outlives the call; the old action is not wanted.
        let r = unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a stop signal arrived since [`install_stop_handler`].
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (a b) c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat(line), Some(CpuTicks { user: 7, system: 3 }));
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t7\n";
        assert_eq!(parse_switches(status), 127);
        assert_eq!(parse_stat("garbage"), None);
        let m = parse_machine("cpu  10 1 5 100 7 2 3 4 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(m, MachineTicks { busy: 16, steal: 4 });
    }

    #[test]
    fn reads_own_cpu_time() {
        let t = cpu_ticks(std::process::id()).unwrap();
        let _ = t.total();
        let _ = machine_ticks().unwrap();
        let _ = children_cpu_ticks();
        assert!(clock_ticks_per_second() > 0);
    }
}
