"""The report: which rows a run shows, their targets, the printed table and the JSON document."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._machine import MachineFacts

Comparison = Literal["<=", "<", ">=", "=="]

_COMPARE: dict[Comparison, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    "==": operator.eq,
}
_SHOW: dict[Comparison, str] = {"<=": "≤", "<": "<", ">=": "≥", "==": "="}


@attrs.frozen(kw_only=True)
class Target:
    """A bound a measured value should meet (issue 2, "Performance")."""

    op: Comparison
    value: float

    def met_by(self, measured: float) -> bool:
        """Whether `measured` meets this target."""
        return _COMPARE[self.op](measured, self.value)


@attrs.frozen(kw_only=True)
class RowSpec:
    """One line of the table: which metric, how to show it, and its target if it has one."""

    id: str
    workload: str
    label: str
    unit: str
    digits: int = 1
    target: Target | None = None


ROWS: tuple[RowSpec, ...] = (
    RowSpec(id="floor.raw.p50_us", workload="floor", label="raw py-lmdb commit p50", unit="µs"),
    RowSpec(id="floor.raw.p99_us", workload="floor", label="raw py-lmdb commit p99", unit="µs"),
    RowSpec(
        id="floor.raw.commits_per_s",
        workload="floor",
        label="raw py-lmdb commits/s",
        unit="/s",
        digits=0,
    ),
    RowSpec(id="floor.store.p50_us", workload="floor", label="LmdbStore.commit p50", unit="µs"),
    RowSpec(id="floor.store.p99_us", workload="floor", label="LmdbStore.commit p99", unit="µs"),
    RowSpec(
        id="floor.store.p50_x_floor",
        workload="floor",
        label="LmdbStore.commit p50 / floor p50",
        unit="x",
        digits=2,
    ),
    RowSpec(id="a.p50_us", workload="a", label="call p50", unit="µs"),
    RowSpec(id="a.p99_us", workload="a", label="call p99", unit="µs"),
    RowSpec(id="a.calls_per_s", workload="a", label="calls/s", unit="/s", digits=0),
    RowSpec(
        id="a.p50_x_floor",
        workload="a",
        label="call p50 / floor p50",
        unit="x",
        digits=2,
        target=Target(op="<=", value=2.5),
    ),
    RowSpec(
        id="a.p99_x_floor",
        workload="a",
        label="call p99 / floor p50",
        unit="x",
        digits=2,
        target=Target(op="<=", value=5.0),
    ),
    RowSpec(id="a.batches_per_call", workload="a", label="batches per call", unit="", digits=2),
    RowSpec(id="a.loop_cpu_per_call_us", workload="a", label="event-loop CPU per call", unit="µs"),
    RowSpec(id="a.process_cpu_per_call_us", workload="a", label="process CPU per call", unit="µs"),
    RowSpec(
        id="b.calls_per_s",
        workload="b",
        label="calls/s",
        unit="/s",
        digits=0,
        target=Target(op=">=", value=30_000),
    ),
    RowSpec(id="b.p50_us", workload="b", label="call p50", unit="µs"),
    RowSpec(id="b.p99_us", workload="b", label="call p99", unit="µs"),
    RowSpec(id="b.commits_per_s", workload="b", label="commits/s", unit="/s", digits=0),
    RowSpec(id="b.calls_per_commit", workload="b", label="mean calls per commit", unit=""),
    RowSpec(id="b.batches_per_call", workload="b", label="batches per call", unit="", digits=2),
    RowSpec(id="b.loop_cpu_per_call_us", workload="b", label="event-loop CPU per call", unit="µs"),
    RowSpec(id="b.process_cpu_per_call_us", workload="b", label="process CPU per call", unit="µs"),
    RowSpec(
        id="c.rss_mb",
        workload="c",
        label="RSS (VmRSS) when idle",
        unit="MB",
        target=Target(op="<", value=300),
    ),
    RowSpec(id="c.rss_anon_mb", workload="c", label="  of which anonymous", unit="MB"),
    RowSpec(id="c.rss_file_mb", workload="c", label="  of which file-backed", unit="MB"),
    RowSpec(id="c.maxrss_mb", workload="c", label="peak RSS (ru_maxrss)", unit="MB"),
    RowSpec(id="c.baseline_rss_mb", workload="c", label="RSS before the calls", unit="MB"),
    RowSpec(
        id="c.active_actors",
        workload="c",
        label="active actors when idle",
        unit="",
        digits=0,
        target=Target(op="==", value=0),
    ),
    RowSpec(
        id="c.invocations_in_memory",
        workload="c",
        label="invocations in memory when idle",
        unit="",
        digits=0,
    ),
    RowSpec(id="c.calls_per_s", workload="c", label="activation calls/s", unit="/s", digits=0),
)


@attrs.frozen(kw_only=True)
class Row:
    """A row with its measured value (the median over runs) and every run's value."""

    spec: RowSpec
    value: float
    runs: tuple[float, ...]

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None: this row has no target)."""
        if self.spec.target is None:
            return None
        return self.spec.target.met_by(self.value)

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object."""
        target = self.spec.target
        return {
            "id": self.spec.id,
            "workload": self.spec.workload,
            "label": self.spec.label.strip(),
            "unit": self.spec.unit,
            "value": self.value,
            "runs": list(self.runs),
            "target": None if target is None else {"op": target.op, "value": target.value},
            "met": self.met,
        }


def build_rows(median: Mapping[str, float], runs: Sequence[Mapping[str, float]]) -> list[Row]:
    """The rows whose metric was measured, in table order."""
    return [
        Row(
            spec=spec,
            value=median[spec.id],
            runs=tuple(run[spec.id] for run in runs if spec.id in run),
        )
        for spec in ROWS
        if spec.id in median
    ]


def _number(value: float, digits: int) -> str:
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:,.{digits}f}"


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}" if unit else text


def format_table(
    rows: Sequence[Row],
    facts: MachineFacts,
    titles: Mapping[str, str],
    repeat: int,
) -> str:
    """The table as printed: header with the machine facts, then one block per workload."""
    lines = ["trio-actors benchmark", *facts.header()]
    if repeat > 1:
        lines.append(f"values : median of {repeat} runs (each metric on its own)")
    width = max(len(row.spec.label) for row in rows) if rows else 10
    heading = f"  {'metric':<{width}}  {'measured':>16}  {'target':>12}  met"
    current = None
    for row in rows:
        if row.spec.workload != current:
            current = row.spec.workload
            lines += ["", titles.get(current, current), heading]
        spec = row.spec
        measured = _with_unit(_number(row.value, spec.digits), spec.unit)
        target = ""
        met = ""
        if spec.target is not None:
            shown = _number(spec.target.value, 1 if spec.unit == "x" else 0)
            target = _with_unit(f"{_SHOW[spec.target.op]} {shown}", spec.unit)
            met = "yes" if row.met else "NO"
        lines.append(f"  {spec.label:<{width}}  {measured:>16}  {target:>12}  {met}".rstrip())
    return "\n".join(lines)


def json_document(
    rows: Sequence[Row],
    facts: MachineFacts,
    settings: Mapping[str, Any],
    titles: Mapping[str, str],
    timing: Mapping[str, Any],
    runs: Sequence[Mapping[str, float]],
) -> dict[str, Any]:
    """Everything a run measured, for ``--json``: the rows of the table, then every metric
    (including those the table leaves out) of every run."""
    return {
        "schema": 1,
        **timing,
        "settings": dict(settings),
        "machine": attrs.asdict(facts),
        "workloads": dict(titles),
        "rows": [row.to_json() for row in rows],
        "targets_met": all(row.met is not False for row in rows),
        "runs": [dict(run) for run in runs],
    }
