"""Running the workloads: fresh data directories, repeats, derived ratios and medians."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from ._durable import run_concurrent_workflows, run_replay_journal, run_sequential_workflows
from ._floor import raw_lmdb_floor, run_store_floor
from ._http import run_http_concurrent, run_http_sequential
from ._idle import run_idle_actors
from ._sizes import Sizes
from ._stats import median_of_runs
from ._suspended import run_suspended_workflows
from ._workloads import run_concurrent, run_sequential

WORKLOADS: tuple[str, ...] = ("floor", "a", "b", "c", "d", "e", "f", "g", "h", "i")
"""Every workload, in the order a run measures them. The floor always runs: it is what the
other numbers are judged against."""

Metrics = dict[str, float]


def _floor(root: Path, sizes: Sizes) -> Metrics:
    raw = raw_lmdb_floor(root / "raw", sizes.floor_commits, sizes.floor_warmup)
    store = run_store_floor(root / "store", sizes.floor_commits, sizes.floor_warmup)
    metrics = {f"floor.raw.{name}": value for name, value in raw.items()}
    metrics.update({f"floor.store.{name}": value for name, value in store.items()})
    metrics["floor.store.p50_x_floor"] = store["p50_us"] / raw["p50_us"]
    return metrics


def _prefixed(workload: str, result: Metrics) -> Metrics:
    """A workload's metrics under its letter: ``a.call_p50_us``."""
    return {f"{workload}.{name}": value for name, value in result.items()}


def _a(root: Path, sizes: Sizes) -> Metrics:
    result = run_sequential(root, sizes.a_calls, sizes.a_warmup)
    return _prefixed("a", result)


def _b(root: Path, sizes: Sizes) -> Metrics:
    result = run_concurrent(root, sizes.b_calls, sizes.b_keys, sizes.b_warmup_per_key)
    return _prefixed("b", result)


def _c(root: Path, sizes: Sizes) -> Metrics:
    result = run_idle_actors(root, sizes.c_actors, sizes.c_concurrency)
    return _prefixed("c", result)


def _d(root: Path, sizes: Sizes) -> Metrics:
    result = run_sequential_workflows(root, sizes.d_workflows, sizes.d_warmup)
    return _prefixed("d", result)


def _e(root: Path, sizes: Sizes) -> Metrics:
    # The node and the bare loops each get a directory of their own inside the run's.
    result = run_concurrent_workflows(
        root / "node", sizes.e_workflows, sizes.e_keys, sizes.e_warmup_per_key
    )
    return _prefixed("e", result)


def _f(root: Path, sizes: Sizes) -> Metrics:
    result = run_replay_journal(root, sizes.f_entries)
    return _prefixed("f", result)


def _g(root: Path, sizes: Sizes) -> Metrics:
    result = run_suspended_workflows(root, sizes.g_workflows, sizes.g_concurrency)
    return _prefixed("g", result)


def _h(root: Path, sizes: Sizes) -> Metrics:
    result = run_http_sequential(root, sizes.h_calls, sizes.h_warmup)
    return _prefixed("h", result)


def _i(root: Path, sizes: Sizes) -> Metrics:
    result = run_http_concurrent(root, sizes.i_calls, sizes.i_clients, sizes.i_warmup_per_client)
    return _prefixed("i", result)


_RUNNERS: dict[str, Callable[[Path, Sizes], Metrics]] = {
    "floor": _floor,
    "a": _a,
    "b": _b,
    "c": _c,
    "d": _d,
    "e": _e,
    "f": _f,
    "g": _g,
    "h": _h,
    "i": _i,
}
"""The runner of every workload (a workload without one would be reported as not measured,
see `_report.RowSpec.not_measured`)."""


def _derive(metrics: Metrics) -> None:
    """Add the ratios to the floor of the same run."""
    floor = metrics.get("floor.raw.p50_us")
    if floor is None:
        return
    for workload in ("a", "h"):
        for name in ("p50_us", "p99_us"):
            measured = metrics.get(f"{workload}.{name}")
            if measured is not None:
                metrics[f"{workload}.{name.removesuffix('_us')}_x_floor"] = measured / floor
    ratios = {
        "d.step_x_floor": "d.step_p50_us",
        "d.run_p50_x_floor": "d.run_p50_us",
        "f.record_step_x_floor": "f.record_step_us",
    }
    for ratio, name in ratios.items():
        measured = metrics.get(name)
        if measured is not None:
            metrics[ratio] = measured / floor


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_all(
    data_root: Path, sizes: Sizes, workloads: Sequence[str], repeat: int
) -> tuple[Metrics, list[Metrics]]:
    """Run the chosen workloads `repeat` times, interleaved (floor, a, b, ..., floor, a, ...).

    Every workload run gets a fresh data directory under `data_root`, deleted when it ends.
    Returns the median of every metric over the runs, and the runs themselves.
    """
    chosen = [
        name for name in WORKLOADS if (name == "floor" or name in workloads) and name in _RUNNERS
    ]
    runs: list[Metrics] = []
    for index in range(repeat):
        metrics: Metrics = {}
        for name in chosen:
            directory = data_root / f"run{index + 1}-{name}"
            directory.mkdir()
            _progress(f"[run {index + 1}/{repeat}] {name} ...")
            started = time.perf_counter()
            try:
                metrics.update(_RUNNERS[name](directory, sizes))
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            _progress(
                f"[run {index + 1}/{repeat}] {name} took {time.perf_counter() - started:.1f} s"
            )
        _derive(metrics)
        runs.append(metrics)
    return median_of_runs(runs), runs
