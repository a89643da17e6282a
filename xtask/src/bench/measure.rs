//! Measuring one repetition: waiting for a quiet machine, sampling the CPU time of the server
//! and of the machine around it, and measuring again when other processes disturbed it.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::proc::{
    CpuTicks, MachineTicks, children_cpu_ticks, clock_ticks_per_second, context_switches,
    cpu_ticks, machine_ticks, stop_requested,
};

use super::plan::Plan;
use super::systems::Scratch;
use super::workloads::Measure;
use super::{Cell, Failure, Progress, System, Workload, report};
use crate::tree::Tree;

/// A repetition whose "other processes" share of the CPUs reaches this is flagged.
pub(crate) const BUSY_PERCENT: f64 = 10.0;

/// CPU time counters around a repetition, to find how much of the machine processes other
/// than the benchmark's (this one, its children, the server) used meanwhile.
#[derive(Debug, Clone, Copy)]
pub(super) struct Snapshot {
    machine: MachineTicks,
    children: u64,
    me: u64,
    server: Option<CpuTicks>,
    server_switches: Option<u64>,
}

impl Snapshot {
    pub(super) fn take(server: Option<u32>) -> Snapshot {
        Snapshot {
            machine: machine_ticks().unwrap_or_default(),
            children: children_cpu_ticks(),
            me: cpu_ticks(std::process::id()).map_or(0, |t| t.total()),
            server: server.and_then(|p| cpu_ticks(p).ok()),
            server_switches: server.and_then(|p| context_switches(p).ok()),
        }
    }

    /// The share (percent of all CPUs over `wall` seconds) used since `before` by others,
    /// hypervisor steal included.
    pub(super) fn others_share(&self, before: &Snapshot, wall: f64, cpus: usize) -> f64 {
        let all = (self.machine.busy + self.machine.steal)
            .saturating_sub(before.machine.busy + before.machine.steal);
        let ours = self.children.saturating_sub(before.children)
            + self.me.saturating_sub(before.me)
            + self
                .server
                .zip(before.server)
                .map_or(0, |(a, b)| a.since(b).total());
        let capacity = wall * cpus as f64 * clock_ticks_per_second() as f64;
        100.0 * all.saturating_sub(ours) as f64 / capacity.max(1.0)
    }
}

/// How many times one repetition is measured again when other processes disturbed it.
pub(super) const MAX_RETRIES: usize = 2;

/// The context of one run.
pub(super) struct Bench<'a> {
    pub(super) plan: Plan,
    /// Seconds the run may still spend waiting for a quiet machine or measuring again.
    pub(super) patience: std::cell::Cell<f64>,
    pub(super) cpus: usize,
    pub(super) source: &'a Tree,
    pub(super) server: Option<&'a Path>,
    /// libfuse's `passthrough_hp`, when built.
    pub(super) libfuse: Option<&'a super::libfuse::Build>,
    pub(super) scratch: &'a Scratch,
    pub(super) progress: &'a Progress,
}

impl Bench<'_> {
    /// Runs repetition `rep` of `w`, sampling the server's CPU time (`server`: its pid) and
    /// the machine's around it; measures again (within the patience) if others disturbed it.
    pub(super) fn measure_rep(
        &self,
        sys: System,
        w: &Workload,
        rep: usize,
        measure: &mut Measure<'_>,
        server: Option<u32>,
        cell: &mut Cell,
    ) -> Result<(), Failure> {
        let tck = clock_ticks_per_second() as f64;
        let mut retries = 0;
        loop {
            if stop_requested() {
                return Err(Failure::Stopped);
            }
            self.wait_quiet();
            let before = Snapshot::take(server);
            let t = Instant::now();
            let (value, work) = measure()?;
            let wall = t.elapsed().as_secs_f64();
            let after = Snapshot::take(server);
            let other = after.others_share(&before, wall, self.cpus);
            let mut msg = format!(
                "{} | {} | rep {}/{}: {} {}",
                sys.name,
                w.id,
                rep + 1,
                self.plan.reps,
                report::fmt_value(value),
                w.unit
            );
            let used = before.server.zip(after.server).map(|(a, b)| b.since(a));
            let switches = before
                .server_switches
                .zip(after.server_switches)
                .map(|(a, b)| b.saturating_sub(a));
            if let Some(used) = used {
                msg.push_str(&format!(
                    " (server CPU {:.2}s, user {:.2}s, in {wall:.1}s)",
                    used.total() as f64 / tck,
                    used.user as f64 / tck
                ));
            }
            if other >= BUSY_PERCENT {
                msg.push_str(&format!("; other processes took {other:.0}% of the CPUs"));
                if retries < MAX_RETRIES && self.patience.get() > 0.0 {
                    retries += 1;
                    self.patience.set(self.patience.get() - wall);
                    self.progress
                        .say(&format!("{msg}: discarded, measuring again"));
                    continue;
                }
                msg.push_str(": kept, flagged (~)");
            }
            cell.values.push(value);
            cell.wall_secs.push(wall);
            cell.work.push(work);
            cell.other_load.push(other);
            cell.cpu_ticks.extend(used.map(CpuTicks::total));
            cell.user_ticks.extend(used.map(|u| u.user));
            cell.switches.extend(switches);
            self.progress.say(&msg);
            return Ok(());
        }
    }

    /// Waits (within the run's patience) until other processes leave the CPUs alone.
    pub(super) fn wait_quiet(&self) {
        const STEP: f64 = 0.25;
        let start = Instant::now();
        let mut said = false;
        while self.patience.get() > 0.0 && !stop_requested() {
            let before = machine_ticks().unwrap_or_default();
            std::thread::sleep(Duration::from_secs_f64(STEP));
            let after = machine_ticks().unwrap_or_default();
            let used = (after.busy + after.steal).saturating_sub(before.busy + before.steal);
            let share =
                100.0 * used as f64 / (STEP * self.cpus as f64 * clock_ticks_per_second() as f64);
            if share < BUSY_PERCENT / 2.0 {
                break;
            }
            self.patience.set(self.patience.get() - STEP);
            if !said && start.elapsed() > Duration::from_secs(1) {
                self.progress.say(&format!(
                    "waiting for other processes to leave the CPUs (they use {share:.0}%; \
                     patience left {:.0}s)",
                    self.patience.get()
                ));
                said = true;
            }
        }
    }
}
