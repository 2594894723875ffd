"""Which BPF objects processes hold: the leak check shared by every test folder."""

import os


def held_bpf_ids() -> set[tuple[str, int]]:
    """Every (prog_id | map_id | link_id, id) that some process holds an fd on."""
    found = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(":")
                if key in ("prog_id", "map_id", "link_id"):
                    found.add((key, int(value)))
    return found
