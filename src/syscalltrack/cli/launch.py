"""The processes' entry points: every console script, and `python -m` of each tool.

What a process running one tool needs besides the tool itself, kept out of the tools
so that their `main()` stays a plain function that tests call in-process:

- (console scripts, `launch`) the cyclic garbage collector stays off while the tool's
  modules are imported: they make thousands of long-lived objects and no garbage, and it
  ran ~50 times there for nothing (~9 ms of sctrace's start-up); what they made is then
  frozen out of later collections (`gc.freeze`), as for a pre-fork server;
- (both, `exit_now`) once `main()` has returned (its files closed, its tracees gone,
  its daemon stopped), the process ends with `os._exit` after flushing stdout and
  stderr, skipping the interpreter's teardown of every module, which cost ~40 ms of
  each sctrace run here.
  An exception (argparse's SystemExit included) still ends it the usual way.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib
import os
import sys
from typing import NoReturn


def launch(tool: str) -> NoReturn:
    """Run `syscalltrack.cli.<tool>`'s main() as this process's whole life."""
    gc.disable()
    try:
        main = importlib.import_module(f"{__package__}.{tool}").main
    finally:
        gc.freeze()
        gc.enable()
    exit_now(main(), tool)


def exit_now(code: int, tool: str) -> NoReturn:
    """End `tool`'s process with `code` once stdout and stderr are flushed, without
    tearing the interpreter down (`python -m` of a tool ends with this too).

    A profiler, a coverage tracer or `-X dev` watching the interpreter gets the usual
    exit, which it reports at.  A failed flush is said as the interpreter says it
    (status 120), except a closed pipe (`| head`), which is nobody's to hear.
    """
    if sys.gettrace() is not None or sys.getprofile() is not None or sys.flags.dev_mode:
        raise SystemExit(code)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            code = code or 120
        except (OSError, ValueError) as err:
            code = code or 120
            with contextlib.suppress(OSError, ValueError):
                os.write(2, f"{tool}: cannot write {name}: {err}\n"
                         .encode(errors="backslashreplace"))
    os._exit(code)


# The console scripts (pyproject.toml), one per tool.
sct = functools.partial(launch, "sct")
sct_config = functools.partial(launch, "sct_config")
sctlog = functools.partial(launch, "sctlog")
sct_load = functools.partial(launch, "sct_load")
sct_unload = functools.partial(launch, "sct_unload")
sctrace = functools.partial(launch, "sctrace")
