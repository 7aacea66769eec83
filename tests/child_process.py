"""Running a node in a child process that a test kills with SIGKILL (tier B of RELIABILITY)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import pytest

REPO = Path(__file__).resolve().parents[1]


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    """Copy the child's stdout lines into `lines`, then None at end of file."""
    try:
        for line in stream:
            lines.put(line.rstrip("\n"))
    except (OSError, ValueError):
        pass  # the pipe was closed under us because the test failed; it reports why
    finally:
        lines.put(None)


def run_killable_child(
    script: Path,
    args: Sequence[str],
    *,
    on_line: Callable[[str], bool],
    stderr_path: Path,
    line_timeout: float = 30.0,
) -> tuple[int, bool]:
    """Run ``python script args...`` from the repository root and feed each line it prints
    to `on_line`; when `on_line` returns True the child is killed with SIGKILL, by its pid.
    Every line it wrote is read, including those still in the pipe after the kill.

    Returns:
        The child's return code and whether it was killed.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    killed = False
    command = [sys.executable, str(script), *args]
    with (
        stderr_path.open("w") as stderr,
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            lines: queue.Queue[str | None] = queue.Queue()
            reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
            reader.start()
            while True:
                try:
                    line = lines.get(timeout=line_timeout)
                except queue.Empty:
                    pytest.fail(f"child {proc.pid} printed nothing for {line_timeout} s")
                if line is None:
                    break
                if on_line(line) and not killed:
                    proc.send_signal(signal.SIGKILL)  # by pid; a no-op if it has exited
                    killed = True
            returncode = proc.wait(timeout=line_timeout)
            reader.join(timeout=line_timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"child exited with {returncode}:\n{stderr_path.read_text()[-3000:]}")
    return returncode, killed
