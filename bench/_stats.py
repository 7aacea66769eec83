"""Summaries of samples: percentiles of latencies and medians over repeated runs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence

import attrs


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted samples (``fraction`` in (0, 1]).

    Nearest rank returns a measured sample, never an interpolation between two, so a p99 over
    2,000 calls is the 1,980th fastest call.
    """
    if not ordered:
        raise ValueError("no samples")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rank = math.ceil(fraction * len(ordered))
    return ordered[rank - 1]


@attrs.frozen(kw_only=True)
class Latencies:
    """Latency percentiles of one run, in microseconds."""

    count: int
    p50_us: float
    p99_us: float
    max_us: float
    mean_us: float

    @classmethod
    def from_seconds(cls, samples: Iterable[float]) -> Latencies:
        """Summarise samples measured in seconds (as `time.perf_counter` differences)."""
        ordered = sorted(samples)
        return cls(
            count=len(ordered),
            p50_us=percentile(ordered, 0.50) * 1e6,
            p99_us=percentile(ordered, 0.99) * 1e6,
            max_us=ordered[-1] * 1e6,
            mean_us=statistics.fmean(ordered) * 1e6,
        )


def median_of_runs(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per metric, the median over the runs that reported it.

    Each metric is taken on its own: the median p50 and the median p99 may come from different
    runs. With an even number of runs the median is the mean of the middle two.
    """
    names = dict.fromkeys(name for run in runs for name in run)
    return {name: statistics.median([run[name] for run in runs if name in run]) for name in names}
