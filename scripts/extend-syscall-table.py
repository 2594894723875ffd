#!/usr/bin/env python3
"""Append the calls numbered after the shared table's end (x86_64 336, 424-469).

shared/data/syscalls.tsv stops at x86_64 335 and i386 423, but today's programs
use openat2, faccessat2, fchmodat2, clone3 and close_range.  Numbers from 424 on
are the same on both ABIs.  Argument names and types are read from this kernel's
tracefs format files, as the shared table's were.  Run once, as root:
    scripts/extend-syscall-table.py src/syscalltrack/syscalls/data/syscalls.tsv
"""

import sys
from pathlib import Path

EVENTS = Path("/sys/kernel/tracing/events/syscalls")
# (nr, name, classes, x86_64 only)
EXTRA = [
    (336, "uprobe", "", True),
    (424, "pidfd_send_signal", "desc,signal", False), (425, "io_uring_setup", "desc", False),
    (426, "io_uring_enter", "desc,signal", False), (427, "io_uring_register", "desc,memory", False),
    (428, "open_tree", "desc,file", False), (429, "move_mount", "desc,file", False),
    (430, "fsopen", "desc", False), (431, "fsconfig", "desc,file", False),
    (432, "fsmount", "desc", False), (433, "fspick", "desc,file", False),
    (434, "pidfd_open", "desc", False), (435, "clone3", "process", False),
    (436, "close_range", "desc", False), (437, "openat2", "desc,file", False),
    (438, "pidfd_getfd", "desc", False), (439, "faccessat2", "desc,file", False),
    (440, "process_madvise", "desc", False), (441, "epoll_pwait2", "desc", False),
    (442, "mount_setattr", "desc,file", False), (443, "quotactl_fd", "desc", False),
    (444, "landlock_create_ruleset", "desc", False), (445, "landlock_add_rule", "desc", False),
    (446, "landlock_restrict_self", "desc", False), (447, "memfd_secret", "desc", True),
    (448, "process_mrelease", "desc", False), (449, "futex_waitv", "", False),
    (450, "set_mempolicy_home_node", "memory", False), (451, "cachestat", "desc", False),
    (452, "fchmodat2", "desc,file", False), (453, "map_shadow_stack", "memory", True),
    (454, "futex_wake", "", False), (455, "futex_wait", "", False),
    (456, "futex_requeue", "", False), (457, "statmount", "", False),
    (458, "listmount", "", False), (459, "lsm_get_self_attr", "", False),
    (460, "lsm_set_self_attr", "", False), (461, "lsm_list_modules", "", False),
    (462, "mseal", "memory", False), (463, "setxattrat", "desc,file", False),
    (464, "getxattrat", "desc,file", False), (465, "listxattrat", "desc,file", False),
    (466, "removexattrat", "desc,file", False), (467, "open_tree_attr", "desc,file", False),
    (468, "file_getattr", "desc,file", False), (469, "file_setattr", "desc,file", False),
]
# Calls this kernel has no tracepoint for (shadow stacks are not configured).
NARGS_WITHOUT_EVENT = {"map_shadow_stack": 3}


def tracepoint_args(name: str) -> list[str] | None:
    """The declared arguments, or None where this kernel has no event for the call."""
    fmt = EVENTS / f"sys_enter_{name}" / "format"
    if not fmt.exists():
        return None
    args = []
    for line in fmt.read_text().splitlines():
        line = line.strip()
        if not line.startswith("field:") or "common_" in line or "__syscall_nr" in line:
            continue
        decl = line.split(";")[0].removeprefix("field:")
        args.append(" ".join(decl.split()))
    return args


def main(path: str) -> None:
    table = Path(path)
    known = {tuple(line.split("\t")[:2]) for line in table.read_text().splitlines()}
    rows = []
    for nr, name, classes, native_only in EXTRA:
        args = tracepoint_args(name)
        nargs = str(len(args)) if args is not None else str(NARGS_WITHOUT_EVENT[name])
        if ("x86_64", str(nr)) not in known:
            event = name if args is not None else ""
            rows.append(["x86_64", str(nr), name, nargs, classes, event, "; ".join(args or ())])
        if not native_only and ("i386", str(nr)) not in known:
            rows.append(["i386", str(nr), name, nargs, classes, "", ""])
    with table.open("a") as out:
        out.writelines("\t".join(row) + "\n" for row in rows)
    print(f"appended {len(rows)} rows to {table}")


if __name__ == "__main__":
    main(sys.argv[1])
