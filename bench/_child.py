"""Running a memory workload in a child process of its own (``python -m bench._<module>``).

RSS is a property of the whole process, so the memory workloads run in a fresh interpreter:
what earlier workloads allocated does not count, and ru_maxrss is that workload's peak alone.
The child prints its results as one JSON object on the last line of its stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def child_env() -> dict[str, str]:
    """The environment for a ``python -m bench.<module>`` child: this checkout first on its
    path, whatever the current directory."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_child(module: str, workload: str, arguments: Sequence[str]) -> dict[str, float]:
    """Run ``python -m <module> <arguments>`` and return the JSON object it printed last.

    Raises:
        RuntimeError: the child failed or printed nothing (its stderr is in the message).
    """
    env = child_env()
    command = [sys.executable, "-m", module, *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"workload ({workload}) child exited with {done.returncode}:\n{done.stderr.strip()}"
        )
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise RuntimeError(f"workload ({workload}) child printed nothing:\n{done.stderr.strip()}")
    result: dict[str, float] = {name: float(value) for name, value in json.loads(lines[-1]).items()}
    return result
