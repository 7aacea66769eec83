"""The quickstart demo (`actors demo`) runs and narrates what happened."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from examples.demo import run_demo

ROOT = Path(__file__).resolve().parents[2]


async def test_demo_in_process(tmp_path: Path) -> None:
    lines = await run_demo(tmp_path / "data")
    text = "\n".join(lines)
    assert "alice adds 'fig'    -> 3 item(s)" in text
    assert "alice's cart survived: ['apple', 'pear', 'fig']" in text
    assert "TerminalError('cart is empty', code=400)" in text
    assert lines[-1] == "done"


def test_actors_demo_command(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "actors", "demo", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "checkout -> ch_alice_1 for 3 item(s)" in result.stdout
    assert result.stdout.strip().endswith("done")
