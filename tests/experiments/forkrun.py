"""Runs many ``python -m experiments.<module> ARGS`` commands for the tests, each in its own
process, without paying for Python's and JAX's imports once per command.

One process imports what the command lines import (JAX, Haiku, optax, orbax, matplotlib and
the experiment modules) without creating a JAX backend, then forks once per command; the child
redirects its stdout and stderr to files, sets ``sys.argv`` and runs the module as
``__main__``, as ``python -m`` does. Exit status, stdout and stderr are the command's own: an
uncaught exception prints its traceback and exits 1, ``SystemExit`` exits with its code.

  python -m tests.experiments.forkrun < commands.json > statuses.json

where ``commands.json`` is a list of ``{"module": ..., "args": [...], "stdout": PATH,
"stderr": PATH}`` and the answer is the list of exit statuses in the same order.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback

# Imported before forking: the children share them.
PRELOAD = (
    "experiments.two_colors.train",
    "experiments.two_colors.plot",
    "experiments.minatar.train",
    "experiments.minatar.sweep",
    "experiments.minatar.plot",
    "experiments.fewshot.train",
    "experiments.fewshot.plot",
    "matplotlib.pyplot",
)


def _child(command: dict) -> None:
    """Runs in the forked child; never returns."""
    status = 1
    try:
        for fd, path in ((1, command["stdout"]), (2, command["stderr"])):
            out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(out, fd)
            os.close(out)
        module = f"experiments.{command['module']}"
        sys.argv = [module, *command["args"]]
        sys.modules.pop(module, None)  # preloaded for its imports; run afresh, as by -m
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
            status = 0
        except SystemExit as done:
            code = done.code
            if code is None:
                status = 0
            elif isinstance(code, int):
                status = code
            else:
                print(code, file=sys.stderr)
                status = 1
        except BaseException:  # noqa: BLE001 (what the interpreter does with an uncaught one)
            traceback.print_exc()
            status = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


def run(commands: list[dict], workers: int) -> list[int]:
    """Forks one child per command, at most ``workers`` at a time; their exit statuses."""
    statuses: list[int | None] = [None] * len(commands)
    running: dict[int, int] = {}
    pending = list(enumerate(commands))
    while pending or running:
        while pending and len(running) < workers:
            index, command = pending.pop(0)
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(command)
            running[pid] = index
        pid, wait_status = os.wait()
        statuses[running.pop(pid)] = os.waitstatus_to_exitcode(wait_status)
    return statuses  # type: ignore[return-value]


def main() -> None:
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from jax._src import xla_bridge

    if xla_bridge._backends:  # a backend's threads do not survive a fork
        raise SystemExit("forkrun: importing the experiments created a JAX backend")
    commands = json.load(sys.stdin)
    workers = max(2, os.cpu_count() or 1)
    json.dump(run(commands, workers), sys.stdout)


if __name__ == "__main__":
    main()
