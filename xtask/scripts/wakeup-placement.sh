#!/bin/bash
# Measures where the scheduler wakes a FUSE client, for one server, with its threads under
# their default policy and then under SCHED_IDLE: client operations per second and CPU
# migrations of the client (perf stat), for the benchmark's metadata loop.
#
# Why: on a machine with an idle CPU, a FUSE reply wakes the waiting client while the server
# thread that sent it is still running on the client's CPU, so the wakeup picks the idle CPU;
# the client's next request then goes to that CPU's io_uring queue, and the client moves
# again at the next reply. With the server threads under SCHED_IDLE the kernel counts their
# CPU as idle for this choice and the client stays where it is. Both servers are measured the
# same way; SCHED_IDLE is not a setting to run a server with (other work starves it).
#
# With `profile` as the fourth argument, each server's default-policy run is also recorded
# with `perf record -a -g`, and the share of its threads' samples spent in the kernel and the
# time the CPUs spent halted (idle) are printed.
#
# usage (as root, after `cargo xtask bench --quick` has built the example, the libfuse
# baseline and the source tree under target/bench/):
#   xtask/scripts/wakeup-placement.sh [stat|open-read-close] [SECONDS] [served|passthrough] [profile]
set -eu
op=${1:-stat}
secs=${2:-3}
mode=${3:-served}
profile=${4:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
src=$root/target/bench/source
ours=$root/target/release/passthroughfs
libfuse=$(ls -d "$root"/target/bench/libfuse-*/build/example/passthrough_hp 2>/dev/null | head -1)
client=$root/target/debug/xtask
for f in "$src" "$ours" "$libfuse" "$client"; do
    [ -e "$f" ] || { echo "missing $f: run cargo xtask bench --quick first" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "perf is missing (apt-get install linux-perf)" >&2; exit 2; }
work=$(mktemp -d /tmp/wakeup-placement.XXXXXX)
mnt=$work/mnt
mkdir "$mnt"
pid=
cleanup() {
    if mountpoint -q "$mnt"; then umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true; fi
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

run() { # server policy
    local server=$1 policy=$2
    local log=$work/$server-$policy.log
    if [ "$server" = ours ]; then
        local extra=()
        [ "$mode" = served ] && extra=(--no-passthrough)
        "$ours" --transport uring "${extra[@]}" --attr-timeout 0 "$src" "$mnt" >"$log" 2>&1 &
    else
        local extra=()
        [ "$mode" = served ] && extra=(--nopassthrough)
        "$libfuse" --foreground --nocache -o ro,allow_other "${extra[@]}" -o io_uring "$src" "$mnt" >"$log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
    if ! mountpoint -q "$mnt"; then
        echo "$server did not mount $mnt within 10 s:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.5
    if [ "$policy" = idle ]; then
        for t in /proc/$pid/task/*; do chrt -i -p 0 "${t##*/}" >/dev/null; done
    fi
    echo go | "$client" bench-client "$op" "$mnt" 10 1000 1 0 >/dev/null
    local out record=()
    if [ "$profile" = profile ] && [ "$policy" = default ]; then
        record=(perf record -q -a -g -o "$work/$server.data" --)
    fi
    out=$( (sleep 0.3; echo go) | perf stat -x, -e cpu-migrations -- "${record[@]}" \
        "$client" bench-client "$op" "$mnt" 10 1000 "$secs" 0 2>&1) || {
        echo "the client or perf failed:" >&2
        echo "$out" >&2
        exit 1
    }
    umount "$mnt"
    wait "$pid" || true
    pid=
    local ops nanos migr
    ops=$(sed -n 's/^ops=\([0-9]*\) .*/\1/p' <<<"$out")
    nanos=$(sed -n 's/.* nanos=\([0-9]*\)/\1/p' <<<"$out")
    migr=$(grep cpu-migrations <<<"$out" | cut -d, -f1)
    awk -v s="$server" -v p="$policy" -v o="$ops" -v n="$nanos" -v m="$migr" 'BEGIN {
        printf "| %s | %s | %.0f | %.2f |\n", s, p, o / (n / 1e9), m / o }'
}

echo "$op, $mode, io_uring, attribute and entry timeouts 0, ${secs} s, $(uname -r), $(nproc) CPUs"
echo "| server | server threads | ${op}/s | client CPU migrations per op |"
echo "|---|---|---:|---:|"
for policy in default idle; do
    run ours "$policy"
    run libfuse "$policy"
done
if [ "$profile" = profile ]; then
    echo
    echo "| server | its threads' samples in the kernel | samples in the idle task (a CPU halted) |"
    echo "|---|---:|---:|"
    for server in ours libfuse; do
        # comm,dso rows: percent, command, object. Server threads: fuse-uring-* (ours),
        # fuse-ring-* (libfuse).
        perf report -i "$work/$server.data" --no-children --sort comm,dso -q --stdio -g none \
            2>/dev/null | awk -v s="$server" '
            $2 ~ /^fuse-(uring|ring)-/ { t += $1; if ($3 == "[kernel.kallsyms]") k += $1 }
            $2 == "swapper" { idle += $1 }
            END { printf "| %s | %.0f %% | %.0f %% |\n", s, 100 * k / t, idle }'
    done
fi
