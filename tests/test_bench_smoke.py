"""Smoke test of the benchmark harness: ``python -m bench --quick`` runs end to end and writes
a JSON document with every row. It checks shape only, never speed (that is the benchmark's
job, on a quiet machine)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

EXPECTED_ROWS = {
    "floor.raw.p50_us",
    "floor.raw.p99_us",
    "floor.raw.commits_per_s",
    "floor.store.p50_us",
    "floor.store.p99_us",
    "floor.store.p50_x_floor",
    "a.p50_us",
    "a.p99_us",
    "a.calls_per_s",
    "a.p50_x_floor",
    "a.p99_x_floor",
    "a.batches_per_call",
    "a.loop_cpu_per_call_us",
    "a.process_cpu_per_call_us",
    "b.calls_per_s",
    "b.p50_us",
    "b.p99_us",
    "b.commits_per_s",
    "b.calls_per_commit",
    "b.batches_per_call",
    "b.loop_cpu_per_call_us",
    "b.process_cpu_per_call_us",
    "c.rss_mb",
    "c.rss_anon_mb",
    "c.rss_file_mb",
    "c.maxrss_mb",
    "c.baseline_rss_mb",
    "c.active_actors",
    "c.invocations_in_memory",
    "c.calls_per_s",
}

TARGETED_ROWS = {"a.p50_x_floor", "a.p99_x_floor", "b.calls_per_s", "c.rss_mb", "c.active_actors"}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_bench_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--repeat",
        "2",
        "--floor-commits",
        "50",
        "--a-calls",
        "50",
        "--b-calls",
        "256",
        "--b-keys",
        "8",
        "--c-actors",
        "300",
        "--c-concurrency",
        "8",
        "--dir",
        str(tmp_path / "data"),
        "--json",
        str(out),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr

    document = json.loads(out.read_text())
    rows = {row["id"]: row for row in document["rows"]}
    assert set(rows) == EXPECTED_ROWS
    for row_id, row in rows.items():
        assert _is_number(row["value"]), row
        assert len(row["runs"]) == 2, row
        assert all(_is_number(run) for run in row["runs"]), row
        if row_id in TARGETED_ROWS:
            assert row["target"]["op"] in {"<=", "<", ">=", "=="}, row
            assert _is_number(row["target"]["value"]), row
            assert isinstance(row["met"], bool), row
        else:
            assert row["target"] is None and row["met"] is None, row
    assert document["settings"]["repeat"] == 2
    assert document["settings"]["sizes"]["a_calls"] == 50
    assert document["machine"]["cpu_count"] >= 1
    assert len(document["runs"]) == 2

    # The table names every workload and shows the targets; the data directories are gone.
    for heading in ("floor:", "(a) 1 key", "(b) 8 keys", "(c) 300 actors"):
        assert heading in done.stdout
    assert "≥ 30,000" in done.stdout
    assert list((tmp_path / "data").iterdir()) == []


def test_only_runs_the_chosen_workloads(tmp_path: Path) -> None:
    out = tmp_path / "only.json"
    command = [
        sys.executable,
        "-m",
        "bench",
        "--quick",
        "--only",
        "a",
        "--floor-commits",
        "20",
        "--a-calls",
        "20",
        "--dir",
        str(tmp_path),
        "--json",
        str(out),
    ]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    workloads = {row["workload"] for row in json.loads(out.read_text())["rows"]}
    assert workloads == {"floor", "a"}
