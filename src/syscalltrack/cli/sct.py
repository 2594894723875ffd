"""sct: one command for every syscalltrack tool (`sct check`, `sct config upload`, ...)."""

from __future__ import annotations

import argparse
import json
import os

from ..bpf import features
from ..daemon import client, launch
from ..daemon.server import Options
from ..rules.errors import printable
from . import sct_config, sct_load, sct_unload, sctlog, sctrace
from .common import run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sct", description=__doc__)
    sub = parser.add_subparsers(dest="tool", required=True, metavar="COMMAND")
    chk = sub.add_parser("check", help="validate a rule file (same as 'sct_config check')")
    chk.add_argument("file")
    chk.set_defaults(run=sct_config.check)
    for name, module, help_ in [
        ("config", sct_config, "upload, download, delete or check rules (sct_config)"),
        ("load", sct_load, "start the system-wide tracker (sct_load)"),
        ("unload", sct_unload, "stop the system-wide tracker (sct_unload)"),
        ("log", sctlog, "follow the log (sctlog)"),
        ("trace", sctrace, "run or attach to commands under rules (sctrace)"),
    ]:
        module.add_arguments(sub.add_parser(name, help=help_, description=module.__doc__))
    daemon = sub.add_parser("daemon", help="run the system-wide tracker in the foreground",
                            description="Run the tracker daemon in the foreground (for "
                                        "service managers; sct_load starts it in the "
                                        "background). SIGHUP reopens the JSON file.")
    sct_load.add_daemon_options(daemon)
    daemon.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
    daemon.set_defaults(run=run_daemon)
    status = sub.add_parser("status", help="what the tracker is doing: rules and counters, "
                                           "readers, kernel capabilities, uptime")
    status.add_argument("--json", action="store_true", help="the daemon's answer as JSON")
    status.set_defaults(run=show_status)
    probe = sub.add_parser("probe", help="what this kernel allows (BPF program types, maps, "
                                         "helpers, attach methods, ways to FAIL a call)")
    probe.set_defaults(run=show_probe)
    return parser


def run_daemon(args: argparse.Namespace) -> int:
    options = Options(restore=args.restore, json_file=args.json_file,
                      syslog_socket=None if args.no_syslog else args.syslog_socket,
                      syslog_facility=args.syslog_facility, compat=not args.no_compat,
                      ring_mb=args.ring_mb)
    return launch.run(options, args.ready_fd)


def show_probe(_args: argparse.Namespace) -> int:
    if os.geteuid() != 0:  # every load would fail with EPERM, which says nothing of the kernel
        raise SystemExit(f"sct probe: run it as root: it answers by loading programs, which "
                         f"needs root (CAP_BPF, CAP_PERFMON); as uid {os.geteuid()} every "
                         "answer would be 'not permitted', whatever the kernel allows")
    print(features.probe().render())
    return 0


def show_status(args: argparse.Namespace) -> int:
    answer = client.request("status")
    if args.json:
        print(json.dumps(answer, indent=2))
        return 0
    print(render_status(answer))
    return 0


def render_status(s: dict) -> str:
    """The daemon's status answer for people."""
    hours, rest = divmod(int(s["uptime"]), 3600)
    out = [f"syscalltrack loaded: pid {s['pid']}, up {hours}:{rest // 60:02d}:{rest % 60:02d}"]
    engine = s["engine"]
    if engine is None:
        out.append("engine: systemwide (eBPF), idle: no rules loaded, no kernel objects")
    else:
        watched = "x86_64 and i386" if engine["i386_calls_watched"] else "x86_64 only"
        out.append(f"engine: {engine['name']}, calls watched: {watched}, programs "
                   f"{engine['programs']}, maps {engine['maps']}")
    ev = s["events"]
    out.append(f"events: {ev['delivered']} delivered, {ev['kernel_lost']} lost in the kernel "
               "(ring buffer full)")
    out.append(f"rules ({len(s['rules'])}):")
    for r in s["rules"]:
        out.append(f"  {printable(r['name'])}: {r['syscall']} {r['when']} -> {r['action']}: "
                   f"{r['matches']} matches, {r['lost']} lost, {r['undecided']} undecided")
    out.append(f"readers ({len(s['readers'])}):")
    for r in s["readers"]:
        how = "json" if r["json"] else (f"format {r['format']!r}" if r["format"] else "rules' "
                                        "formats")
        out.append(f"  {how}: {r['events_sent']} sent, {r['events_lost']} lost, "
                   f"{r['backlog']} bytes waiting")
    sl = s["syslog"]
    out.append("syslog: off" if sl is None else
               f"syslog: {sl['socket']} facility {sl['facility']}: {sl['sent']} sent, "
               f"{sl['failed']} failed")
    jf = s["json_file"]
    if jf is not None:
        out.append(f"json file: {jf['path']}: {jf['written']} written, "
                   f"{jf.get('failed', 0)} not written"
                   + (f", error: {jf['error']}" if jf["error"] else ""))
    out.append("kernel:")
    out.extend(f"  {line}" for line in s["kernel"].splitlines())
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    return run("sct", build_parser(), argv)


if __name__ == "__main__":
    from .launch import exit_now

    exit_now(main(), "sct")
