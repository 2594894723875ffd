"""Benchmark the system-wide engine against bare, bpftrace and auditd (issue 4).

1. cost per call of an unrelated hot syscall (getppid in C) with our unlink rule loaded
   (when = before, and the same rule when = after), against bare, bpftrace on the same
   tracepoints, bpftrace on raw_syscalls:sys_enter (the one tracepoint of its that, like our
   default, runs on every call and sees i386 calls), `auditctl -S unlink,unlinkat -F path=`,
   and an empty program on each attach point (what attaching there costs alone);
2. an unlink loop whose paths never match `PARAMS[1] == "/etc/passwd"`: added cost per call;
3. event throughput: a rule matching every getppid call; records/s our consumer unpacks
   from the ring, and Events/s it builds from them: alone (draining a full ring), then
   against a live producer on the other CPU, drops counted; then 500,000 events/s
   sustained with Events built.

The C loops are pinned to one CPU (taskset); in (3) the consumer runs on another one.
Installs bpftrace and auditd with apt-get when absent.

    python bench/systemwide.py [--calls 2000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from syscalltrack.bpf import asm
from syscalltrack.bpf.link import attach_raw_tracepoint, attach_tracepoint
from syscalltrack.bpf.prog import Program, ProgType
from syscalltrack.daemon.launch import GC_THRESHOLDS
from syscalltrack.engines.systemwide import SystemwideEngine
from syscalltrack.rules import load_rules

LOOP_C = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
                           return t.tv_sec * 1e9 + t.tv_nsec; }
int main(int argc, char **argv) {
    long n = atol(argv[2]), rate = argc > 3 ? atol(argv[3]) : 0;
    char path[64];
    double t0 = now();
    if (!strcmp(argv[1], "getppid")) {
        for (long i = 0; i < n; i++) {
            syscall(SYS_getppid);
            if (rate && (i & 1023) == 1023)  /* pace: i calls by t0 + i/rate seconds */
                while (now() - t0 < i * 1e9 / rate) ;
        }
    } else {
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "/tmp/sct-bench-none/f%ld", i & 1023);
            syscall(SYS_unlink, path);
        }
    }
    printf("%.2f\n", (now() - t0) / n);
    return 0;
}
"""
OUR_RULE = """rule {
syscall_name = unlink
rule_name = passwd
filter_expression {PARAMS[1] == "/etc/passwd"}
action {
type = LOG
}
when = before
}
"""
BATCH = 8192  # records per poll, as the daemon reads them: bounded memory and latency
EVERY_GETPPID = """rule {
syscall_name = getppid
rule_name = every
action {
type = LOG
}
when = before
}
"""
BPFTRACE = ('tracepoint:syscalls:sys_enter_unlink, tracepoint:syscalls:sys_enter_unlinkat '
            '/str(args->pathname) == "/etc/passwd"/ { printf("%s %d\\n", comm, pid); }')
# The same predicate on the tracepoint that, like our default dispatcher, runs on every
# call (and sees i386 ones); bpftrace 0.17 has no rawtracepoint probes, so it is the perf
# tracepoint raw_syscalls:sys_enter. The numbers: unlink 87, unlinkat 263 (x86_64).
BPFTRACE_RAW = ('tracepoint:raw_syscalls:sys_enter '
                '/(args->id == 87 && str(uptr(args->args[0])) == "/etc/passwd") || '
                '(args->id == 263 && str(uptr(args->args[1])) == "/etc/passwd")/ '
                '{ printf("%s %d\\n", comm, pid); }')


def ensure_tools() -> None:
    missing = [p for p, tool in (("bpftrace", "bpftrace"), ("auditd", "auditctl"))
               if shutil.which(tool) is None]
    if missing and subprocess.run(["apt-get", "install", "-y", *missing],
                                  capture_output=True).returncode:
        subprocess.run(["apt-get", "update"], capture_output=True)
        subprocess.run(["apt-get", "install", "-y", *missing], capture_output=True)


def build(tmp: Path) -> str:
    src = tmp / "loop.c"
    src.write_text(LOOP_C)
    exe = tmp / "loop"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(src)], check=True)
    return str(exe)


def run_loop(exe: str, cpu: int, kind: str, calls: int, rate: int = 0) -> float:
    cmd = ["taskset", "-c", str(cpu), exe, kind, str(calls)] + ([str(rate)] if rate else [])
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)


class Bpftrace:
    def __init__(self, script: str = BPFTRACE):
        self.script = script

    def __enter__(self):
        self.proc = subprocess.Popen(["bpftrace", "-e", self.script], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        seen = []
        for line in self.proc.stdout:  # warnings (RLIMIT_MEMLOCK, address spaces), then
            seen.append(line)       # "Attaching N probes"
            if "Attaching" in line or len(seen) > 50:
                break
        if not seen or "Attaching" not in seen[-1]:
            self.proc.kill()
            raise RuntimeError(f"bpftrace did not start: {''.join(seen)}")
        time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait()


class EmptyProgram:
    """A program that only returns 0, on one attach point: the floor of what attaching
    there costs every call, whatever a program does (the engine's default uses the raw
    sys_enter tracepoint, the only one that sees i386 calls; --no-compat and bpftrace
    use syscalls:sys_enter_unlink and _unlinkat)."""

    def __init__(self, raw: bool):
        self.raw = raw

    def __enter__(self):
        kind = ProgType.RAW_TRACEPOINT if self.raw else ProgType.TRACEPOINT
        self.programs = [Program.load(kind, [asm.mov(asm.Reg.R0, 0), asm.exit()])
                         for _ in range(1 if self.raw else 2)]
        self.links = ([attach_raw_tracepoint(self.programs[0], "sys_enter")] if self.raw
                      else [attach_tracepoint(p, "syscalls", f"sys_enter_{name}")
                            for p, name in zip(self.programs, ("unlink", "unlinkat"),
                                               strict=True)])
        return self

    def __exit__(self, *exc):
        for fd in (*self.links, *self.programs):
            fd.close()


class Audit:
    RULE = ["-F", "arch=b64", "-S", "unlink", "-S", "unlinkat", "-F", "path=/etc/passwd",
            "-k", "sctbench"]

    def __enter__(self):
        """Our rule in, auditd started and auditing enabled if they were not: __exit__
        leaves the machine as it found it."""
        status = subprocess.run(["auditctl", "-s"], capture_output=True, text=True).stdout
        self.was_enabled = "enabled 1" in status.splitlines()  # (auditd enables it)
        self.started = subprocess.run(["pidof", "auditd"], capture_output=True).returncode != 0
        if self.started:
            subprocess.run(["auditd"], capture_output=True)
        subprocess.run(["auditctl", "-e", "1"], capture_output=True, check=True)
        subprocess.run(["auditctl", "-a", "always,exit", *self.RULE], capture_output=True,
                       check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run(["auditctl", "-d", "always,exit", *self.RULE], capture_output=True)
        if self.started:  # it sets auditing as it goes: stop it first
            subprocess.run(["pkill", "-x", "auditd"], capture_output=True)
            for _ in range(100):
                if subprocess.run(["pidof", "auditd"], capture_output=True).returncode:
                    break
                time.sleep(0.05)
        if not self.was_enabled:
            subprocess.run(["auditctl", "-e", "0"], capture_output=True)


def cost_table(exe, cpu, calls, runs) -> list[tuple[str, float, float, float, float]]:
    """Per tool: (label, getppid ns, added ns, unlink ns, added ns), medians over ``runs``
    rounds. Each round sets every tool up in turn and measures bare right before it, so
    an added cost is a difference between neighbouring runs: on a shared VM whose speed
    drifts by tens of percent over a minute, that is what keeps tools comparable."""
    tools = (("syscalltrack", lambda: SystemwideEngine(load_rules(OUR_RULE), compat=True)),
             ("syscalltrack --no-compat",
              lambda: SystemwideEngine(load_rules(OUR_RULE), compat=False)),
             ("syscalltrack, rule when=after",
              lambda: SystemwideEngine(load_rules(OUR_RULE.replace("before", "after")))),
             ("bpftrace", Bpftrace),
             ("bpftrace, raw_syscalls", lambda: Bpftrace(BPFTRACE_RAW)),
             ("auditd", Audit),
             ("empty prog, raw sys_enter", lambda: EmptyProgram(raw=True)),
             ("empty prog, syscalls:*", lambda: EmptyProgram(raw=False)))
    kinds = ("getppid", "unlink")
    samples: dict[str, list[tuple[float, float, float, float]]] = {}
    failed: set[str] = set()
    for _round in range(runs):
        for label, setup in tools:
            if label in failed:
                continue
            bare = [run_loop(exe, cpu, k, calls) for k in kinds]
            try:
                with setup():
                    got = [run_loop(exe, cpu, k, calls) for k in kinds]
            except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
                print(f"  {label}: not measured ({e})")
                failed.add(label)
                continue
            samples.setdefault("bare", []).append((bare[0], 0.0, bare[1], 0.0))
            samples.setdefault(label, []).append(
                (got[0], got[0] - bare[0], got[1], got[1] - bare[1]))
    return [(label, *(statistics.median(s[i] for s in rows) for i in range(4)))
            for label, rows in samples.items()]


def throughput(exe, cpus, calls, rate=0, decode=True) -> tuple[float, float, int, int, int]:
    """(calls/s produced, records/s consumed, records consumed, drops, matches) for one
    loop run; with ``decode`` every record is turned into an Event, else only unpacked."""
    producer, consumer = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {consumer})
    with SystemwideEngine(load_rules(EVERY_GETPPID), ring_size=64 << 20) as engine:
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault(
            "ns", run_loop(exe, producer, "getppid", calls, rate)))
        consumed = 0
        start = time.perf_counter()
        thread.start()
        while True:
            alive = thread.is_alive()
            batch = engine.poll_records(0.05, BATCH)
            _ = batch.decoded() if decode else batch.rows  # built or unpacked: what is timed
            consumed += batch.record_count
            if not alive and not len(batch):
                break
        elapsed = time.perf_counter() - start
        dropped = sum(s.lost for s in engine.stats())
        matches = sum(s.matches for s in engine.stats())
    thread.join()
    produced = 1e9 / result["ns"]
    return produced, consumed / elapsed, consumed, dropped, matches


def drain(exe, cpus, calls) -> tuple[float, float, int]:
    """The consumer alone: ``calls`` records produced into a ring big enough to hold them
    all, then drained (timed) twice over the same kind of content: (records unpacked/s,
    Events built/s, records per pass). No producer competes for the CPU or the ring."""
    os.sched_setaffinity(0, {cpus[-1]})
    rates = []
    for decode in (False, True):
        with SystemwideEngine(load_rules(EVERY_GETPPID), ring_size=512 << 20) as engine:
            run_loop(exe, cpus[0], "getppid", calls)
            consumed = 0
            start = time.perf_counter()
            while batch := engine.poll_records(0, BATCH):
                _ = batch.decoded() if decode else batch.rows  # built or unpacked: what is timed
                consumed += batch.record_count
            rates.append(consumed / (time.perf_counter() - start))
            if sum(s.lost for s in engine.stats()):
                raise RuntimeError("the ring overflowed: the drain measured less than it says")
    return rates[0], rates[1], consumed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    if os.geteuid():
        sys.exit("run as root")
    ensure_tools()
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(Path(tmp))
        print(f"pinned to CPU {cpus[0]}; {args.calls} calls per run, median of {args.runs}")
        rows = cost_table(exe, cpus[0], args.calls, args.runs)
        print("\n(1) getppid (unrelated) and (2) unlink of non-matching paths, ns per call;"
              "\n    added: median over rounds of (with the tool - bare just before)")
        print(f"{'':31}{'getppid':>10}{'added':>8}{'unlink':>10}{'added':>8}")
        for label, g, g_added, u, u_added in rows:
            print(f"{label:31}{g:10.1f}{g_added:+8.1f}{u:10.1f}{u_added:+8.1f}")
        print("    (the 'empty prog' rows: a program returning 0 at once, on the attach point"
              "\n    the default engine uses and on the one --no-compat and bpftrace use)")
        # This process consumes as the daemon does: start-up frozen, young objects
        # collected every 100,000 allocations (daemon.launch.GC_THRESHOLDS explains why).
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        unpacked, built, records = drain(exe, cpus, args.calls)
        print(f"\n(3) consumer alone, draining {records:,} records from a full ring: "
              f"{unpacked:,.0f} records/s unpacked, {built:,.0f} Events/s built")
        print("\n    throughput: a rule matching every getppid; consumer on CPU "
              f"{cpus[-1]}, producer on CPU {cpus[0]}")
        print(f"{'':30}{'calls/s':>12}{'consumed/s':>12}{'consumed':>10}{'matched':>10}"
              f"{'dropped':>9}")
        for label, rate, decode in (("records unpacked, full speed", 0, False),
                                    ("Events built, full speed", 0, True),
                                    ("Events built, 500k/s paced", 500_000, True)):
            calls = args.calls if rate == 0 else rate * 3
            produced, rate_out, consumed, dropped, matches = throughput(exe, cpus, calls, rate,
                                                                        decode)
            print(f"{label:30}{produced:12,.0f}{rate_out:12,.0f}{consumed:10}{matches:10}"
                  f"{dropped:9}")


if __name__ == "__main__":
    main()
