"""Benchmark the tracker daemon end to end (issue 5): kernel -> daemon -> outputs.

1. lines/s from the kernel to one `sctlog` reader printing text lines (into a pipe this
   script reads and counts), a rule matching every getppid call of a C loop, run in
   rounds the kernel ring holds, so the rate is the daemon's and nothing is dropped;
2. events/s from the kernel to the JSON-lines file (no reader);
3. the daemon's RSS: idle with the rule loaded, and its peak (VmHWM) under load.

Targets: >= 300,000 lines/s to a reader; RSS under 60 MB.
Private run/state directories; the daemon is unloaded at the end.

    python bench/daemon.py [--calls 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from syscalltrack.daemon import client  # noqa: E402

BIN = Path(sys.executable).parent
COMM = "sctd-bench"
RULE = f"""rule
{{
syscall_name = getppid
rule_name = hot
filter_expression {{COMM == "{COMM}"}}
action {{ type = LOG }}
when = before
}}
"""
ROUND = 50_000  # calls per round: 8 MB of records in a 16 MB ring


def tool(*args: str) -> str:
    done = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)}: {done.stderr}")
    return done.stdout


def rss_kb(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)
                if k in ("VmRSS", "VmHWM")}


def rounds(hot: Path, calls: int, done) -> float:
    """Seconds to push ``calls`` getppid calls through, in rounds the 16 MB ring holds
    (so nothing is dropped in the kernel and the rate is the daemon's own);
    ``done()`` says how many arrived so far."""
    start = time.monotonic()
    sent = 0
    while sent < calls:
        batch = min(ROUND, calls - sent)
        subprocess.run([str(hot), "getppid", str(batch)], check=True, stdout=subprocess.DEVNULL)
        sent += batch
        while done() < sent:
            time.sleep(0.002)
    return time.monotonic() - start


def to_reader(hot: Path, calls: int) -> float:
    """Lines/s into one sctlog printing default-format lines."""
    proc = subprocess.Popen([str(BIN / "sctlog")], stdout=subprocess.PIPE)
    while not client.request("status")["readers"]:
        time.sleep(0.01)
    lines = [0]

    def count():
        for chunk in iter(lambda: proc.stdout.read1(1 << 16), b""):
            lines[0] += chunk.count(b"\n")

    threading.Thread(target=count, daemon=True).start()
    elapsed = rounds(hot, calls, lambda: lines[0])
    proc.terminate()
    proc.wait()
    return calls / elapsed


def to_json_file(hot: Path, calls: int) -> float:
    """Events/s appended to the JSON file, no reader connected."""
    base = client.request("status")["json_file"]["written"]
    elapsed = rounds(hot, calls, lambda: client.request("status")["json_file"]["written"] - base)
    return calls / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the daemon loads eBPF programs")
    with tempfile.TemporaryDirectory(prefix="sct-bench-") as tmp:
        work = Path(tmp)
        os.environ["SYSCALLTRACK_RUN_DIR"] = str(work / "run")
        os.environ["SYSCALLTRACK_STATE_DIR"] = str(work / "state")
        hot = work / COMM
        subprocess.run(["gcc", "-O2", "-pthread", "-o", str(hot), str(ROOT / "tests/helper.c")],
                       check=True)
        (work / "hot.conf").write_text(RULE)
        json_path = work / "events.json"
        tool("sct_load")
        try:
            pid = client.request("ping")["pid"]
            tool("sct_config", "upload", str(work / "hot.conf"))
            time.sleep(1)
            idle = rss_kb(pid)["VmRSS"]
            print(f"daemon RSS idle, rule loaded: {idle / 1024:.1f} MB")
            rate = to_reader(hot, args.calls)
            print(f"kernel -> one sctlog reader (text lines): {rate:,.0f} lines/s "
                  f"over {args.calls:,} events")
            mem = rss_kb(pid)
            print(f"daemon RSS after the run {mem['VmRSS'] / 1024:.1f} MB, peak "
                  f"{mem['VmHWM'] / 1024:.1f} MB; {client.request('status')['events']}")
        finally:
            tool("sct_unload", "--force")
        tool("sct_load", "--json-file", str(json_path), "--restore")
        try:
            pid = client.request("ping")["pid"]
            rate = to_json_file(hot, args.calls)
            print(f"kernel -> JSON file only: {rate:,.0f} events/s over {args.calls:,} events")
            mem = rss_kb(pid)
            print(f"daemon RSS after the run {mem['VmRSS'] / 1024:.1f} MB, peak "
                  f"{mem['VmHWM'] / 1024:.1f} MB; {client.request('status')['events']}")
        finally:
            tool("sct_unload", "--force")

if __name__ == "__main__":
    main()
