"""Smoke test of the benchmark harness: ``python -m bench --quick`` runs end to end and writes
a JSON document with every row. It checks shape only, never speed (that is the benchmark's
job, on a quiet machine)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import _machine, _report

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
    "d.p50_us",
    "d.p99_us",
    "d.workflows_per_s",
    "d.commits_per_workflow",
    "d.step_p50_us",
    "d.step_x_floor",
    "d.run_p50_us",
    "d.run_p99_us",
    "d.run_p50_x_floor",
    "d.batches_per_commit",
    "d.loop_cpu_per_step_us",
    "d.process_cpu_per_step_us",
    "e.workflows_per_s",
    "e.steps_per_s",
    "e.commits_per_s",
    "e.batches_per_commit",
    "e.batches_per_workflow",
    "e.p50_us",
    "e.p99_us",
    "e.loop_cpu_per_step_us",
    "e.process_cpu_per_step_us",
    "e.loop_floor_us",
    "e.loop_floor_steps_per_s",
    "e.bare_steps_per_s",
    "e.bare_loop_cpu_per_step_us",
    "e.bare_commits_per_s",
    "e.bare_process_steps_per_s",
    "e.bare_process_loop_cpu_per_step_us",
    "e.bare_process_commits_per_s",
    "e.steps_x_bare",
    "e.steps_x_bare_process",
    "f.record_s",
    "f.record_step_us",
    "f.record_step_x_floor",
    "f.resume_s",
    "f.reload_s",
    "f.replay_s",
    "f.replay_entry_us",
    "f.complete_s",
    "g.rss_mb",
    "g.rss_anon_mb",
    "g.rss_file_mb",
    "g.maxrss_mb",
    "g.baseline_rss_mb",
    "g.rss_growth_per_workflow_kb",
    "g.suspended",
    "g.tasks_living",
    "g.baseline_tasks_living",
    "g.invocations_in_memory",
    "g.active_actors",
    "g.starts_per_s",
    "g.settle_s",
    "g.commits_per_workflow",
    "h.p50_us",
    "h.p99_us",
    "h.calls_per_s",
    "h.p50_x_floor",
    "h.node_cpu_per_call_us",
    "h.errors",
    "i.calls_per_s",
    "i.p50_us",
    "i.p99_us",
    "i.node_cpu_per_call_us",
    "i.client_cpu_per_call_us",
    "i.calls_per_commit",
    "i.errors",
}

TARGETED_ROWS = {
    "a.p50_x_floor",
    "a.p99_x_floor",
    "b.calls_per_s",
    "c.rss_mb",
    "c.active_actors",
    "d.step_x_floor",
    "e.steps_per_s",
    "f.resume_s",
    "g.rss_mb",
    "h.p50_us",
    "i.calls_per_s",
}


def _bench(args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` from the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_quick_bench_writes_every_row(tmp_path: Path) -> None:
    out = tmp_path / "x.json"
    args = [
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
        "--d-workflows",
        "5",
        "--e-workflows",
        "16",
        "--e-keys",
        "4",
        "--f-entries",
        "100",
        "--g-workflows",
        "300",
        "--g-concurrency",
        "8",
        "--h-calls",
        "50",
        "--i-calls",
        "256",
        "--i-clients",
        "8",
        "--dir",
        str(tmp_path / "data"),
        "--json",
        str(out),
    ]
    done = _bench(args, timeout=120)
    assert done.returncode == 0, done.stderr

    document = json.loads(out.read_text())
    rows = {row["id"]: row for row in document["rows"]}
    assert set(rows) == EXPECTED_ROWS
    assert document["targets_not_measured"] == []
    for row_id, row in rows.items():
        assert row["status"] == "measured", row
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
    for heading in (
        "floor:",
        "(a) 1 key",
        "(b) 8 keys",
        "(c) 300 actors",
        "(d) 10-step workflow, sequential: 5 invocations",
        "(e) 10-step workflow, 4 concurrent: 4 callers on 4 keys, 16 invocations",
        "(f) replay of a 100-entry journal",
        "(g) 300 workflows suspended on a 1-hour durable sleep (8 concurrent starters",
        "(h) HTTP, 1 key, 50 sequential POST /call/Counter/k/add [1]",
        "(i) HTTP, 8 concurrent clients on 8 keys, 256 POST /call",
    ):
        assert heading in done.stdout
    assert "≥ 30,000" in done.stdout
    assert "≥ 50,000" in done.stdout
    assert "≤ 2.2 x" in done.stdout
    assert "< 500 MB" in done.stdout
    assert "< 1,000 µs" in done.stdout
    assert "≥ 3,000 /s" in done.stdout
    assert "not measured" not in done.stdout
    # The workflow workloads measure their commits instead of assuming them.
    assert rows["d.commits_per_workflow"]["value"] == 11
    # Every workflow of (g) was suspended, and no task per workflow was left.
    assert all(run["g.suspended"] == 300 for run in document["runs"])
    assert all(run["g.workflows"] == 300 for run in document["runs"])
    assert all(run["g.handler_entries"] == 300 for run in document["runs"])
    assert all(run["g.tasks_living"] <= run["g.baseline_tasks_living"] for run in document["runs"])
    # Every HTTP call was answered 200 (and, checked by the workload, is in its counter).
    assert all(run["h.calls"] == 50 and run["h.errors"] == 0 for run in document["runs"])
    assert all(run["i.calls"] == 256 and run["i.errors"] == 0 for run in document["runs"])
    assert list((tmp_path / "data").iterdir()) == []


def _small_a(tmp_path: Path, out: Path) -> list[str]:
    """Arguments for a small run of the floor and (a) only, its JSON written to `out`."""
    return [
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


def test_only_runs_the_chosen_workloads(tmp_path: Path) -> None:
    out = tmp_path / "only.json"
    done = _bench(_small_a(tmp_path, out), timeout=60)
    assert done.returncode == 0, done.stderr
    workloads = {row["workload"] for row in json.loads(out.read_text())["rows"]}
    assert workloads == {"floor", "a"}


def test_only_g_measures_suspended_workflows(tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    args = [
        "--quick",
        "--only",
        "g",
        "--floor-commits",
        "20",
        "--g-workflows",
        "200",
        "--dir",
        str(tmp_path / "data"),
        "--json",
        str(out),
    ]
    done = _bench(args, timeout=60)
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    rows = {row["id"]: row for row in document["rows"]}
    assert {row["workload"] for row in rows.values()} == {"floor", "g"}
    assert rows["g.rss_mb"]["status"] == "measured"
    assert rows["g.rss_mb"]["target"] == {"op": "<", "value": 500}
    assert isinstance(rows["g.rss_mb"]["met"], bool)
    assert rows["g.suspended"]["value"] == 200
    assert rows["g.invocations_in_memory"]["value"] == 200
    assert document["settings"]["sizes"]["g_workflows"] == 200
    assert document["settings"]["sizes"]["g_concurrency"] == 64
    assert "(g) 200 workflows suspended on a 1-hour durable sleep" in done.stdout


def test_a_row_not_measured_is_reported_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The report's path for a metric the benchmark cannot measure (no workload uses it now)."""
    spec = _report.RowSpec(
        id="z.rss_mb",
        workload="z",
        label="RSS",
        unit="MB",
        target=_report.Target(op="<", value=1),
        not_measured="needs something",
    )
    monkeypatch.setattr(_report, "ROWS", (*_report.ROWS, spec))
    rows = _report.build_rows({"a.p50_us": 1.0}, [{"a.p50_us": 1.0}], ["floor", "a", "z"])
    assert [row.spec.id for row in rows] == ["a.p50_us", "z.rss_mb"]
    row = rows[1].to_json()
    assert row["status"] == "not_measured" and row["reason"] == "needs something"
    assert "value" not in row and "runs" not in row and row["met"] is None
    facts = _machine.machine_facts(tmp_path)
    table = _report.format_table(rows, facts, {"z": "(z) title"}, 1)
    assert "(z) title: not measured — needs something" in table
    document = _report.json_document(rows, facts, {}, {}, {}, [])
    assert document["targets_not_measured"] == ["z.rss_mb"]
    assert document["targets_met"] is True


def test_ab_compares_two_checkouts_in_alternation(tmp_path: Path) -> None:
    other = tmp_path / "other"
    for package in ("bench", "actors", "storage"):
        shutil.copytree(REPO / package, other / package)
    out = tmp_path / "ab.json"
    done = _bench(["--ab", str(other), "--repeat", "2", *_small_a(tmp_path, out)], timeout=120)
    assert done.returncode == 0, done.stderr
    assert "this/other" in done.stdout
    # Both sides ran twice, alternating, each in its own process.
    assert done.stderr.count("] this ...") == 2 and done.stderr.count("] other ...") == 2
    result = json.loads(out.read_text())
    assert result["rounds"] == 2
    assert result["other"]["path"] == str(other.resolve())
    rows = {row["id"]: row for row in result["rows"]}
    assert {"floor.raw.p50_us", "a.calls_per_s", "a.p50_x_floor"} <= set(rows)
    calls = rows["a.calls_per_s"]
    assert len(calls["this_runs"]) == 2 and len(calls["other_runs"]) == 2
    assert calls["this"] > 0 and calls["other"] > 0
    assert math.isclose(calls["ratio"], calls["this"] / calls["other"])


def test_ab_refuses_a_directory_that_is_not_a_checkout(tmp_path: Path) -> None:
    done = _bench(["--ab", str(tmp_path), "--quick", "--only", "a"], timeout=60)
    assert done.returncode == 2
    assert "is not a checkout of trio-actors" in done.stderr
    assert "git worktree add" in done.stderr


async def test_bare_loop_with_a_failing_writer_process_raises(tmp_path: Path) -> None:
    # The writer process cannot open an environment over a plain file: the loop must report
    # it, not wait for acknowledgements that never come.
    from bench._bare import bare_step_loop_process

    target = tmp_path / "not-a-directory"
    target.write_bytes(b"x")
    with pytest.raises(RuntimeError, match="writer process closed its output"):
        await bare_step_loop_process(target, invocations=4, keys=2, steps=2)


async def test_bare_loops_commit_every_workflow(tmp_path: Path) -> None:
    import lmdb

    from bench._bare import bare_step_loop, bare_step_loop_process

    await bare_step_loop(tmp_path / "thread", invocations=8, keys=4, steps=3)
    await bare_step_loop_process(tmp_path / "process", invocations=8, keys=4, steps=3)
    for name in ("thread", "process"):
        env = lmdb.open(str(tmp_path / name), max_dbs=3, readonly=True)
        try:
            # Each key's 2 workflows commit 3 steps and a completion one after another, so
            # at least 8 write transactions; every completion deleted all its workflow wrote.
            assert env.info()["last_txnid"] >= 8, name
            with env.begin() as txn:
                for table in (b"journal", b"inbox", b"invocations"):
                    db = env.open_db(table, txn=txn, create=False)
                    assert txn.stat(db)["entries"] == 0, (name, table)
        finally:
            env.close()
