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
    """A bound a measured value should meet (issues 2 and 3, "Performance")."""

    op: Comparison
    value: float

    def met_by(self, measured: float) -> bool:
        """Whether `measured` meets this target."""
        return _COMPARE[self.op](measured, self.value)


@attrs.frozen(kw_only=True)
class RowSpec:
    """One line of the table: which metric, how to show it, and its target if it has one.

    A row with `not_measured` set is a metric the benchmark cannot measure yet (the reason
    says why): it is reported as such whenever its workload is chosen, without a number.
    """

    id: str
    workload: str
    label: str
    unit: str
    digits: int = 1
    target: Target | None = None
    not_measured: str | None = None


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
    RowSpec(id="d.p50_us", workload="d", label="workflow p50", unit="µs"),
    RowSpec(id="d.p99_us", workload="d", label="workflow p99", unit="µs"),
    RowSpec(id="d.workflows_per_s", workload="d", label="workflows/s", unit="/s", digits=0),
    RowSpec(
        id="d.commits_per_workflow",
        workload="d",
        label="commits per workflow (measured)",
        unit="",
        digits=2,
    ),
    RowSpec(
        id="d.step_p50_us",
        workload="d",
        label="per-step cost (workflow p50 / 11 commits)",
        unit="µs",
    ),
    RowSpec(
        id="d.step_x_floor",
        workload="d",
        label="per-step cost / floor p50",
        unit="x",
        digits=2,
        target=Target(op="<=", value=2.2),
    ),
    RowSpec(
        id="d.run_p50_us", workload="d", label="one ctx.run p50 (timed in the handler)", unit="µs"
    ),
    RowSpec(
        id="d.run_p99_us", workload="d", label="one ctx.run p99 (timed in the handler)", unit="µs"
    ),
    RowSpec(
        id="d.run_p50_x_floor",
        workload="d",
        label="one ctx.run p50 / floor p50",
        unit="x",
        digits=2,
    ),
    RowSpec(
        id="d.batches_per_commit", workload="d", label="mean batches per commit", unit="", digits=2
    ),
    RowSpec(
        id="d.loop_cpu_per_step_us",
        workload="d",
        label="event-loop CPU per step (1/10 workflow)",
        unit="µs",
    ),
    RowSpec(
        id="d.process_cpu_per_step_us",
        workload="d",
        label="process CPU per step (1/10 workflow)",
        unit="µs",
    ),
    RowSpec(id="e.workflows_per_s", workload="e", label="workflows/s", unit="/s", digits=0),
    RowSpec(
        id="e.steps_per_s",
        workload="e",
        label="steps/s (10 ctx.run per workflow)",
        unit="/s",
        digits=0,
        target=Target(op=">=", value=50_000),
    ),
    RowSpec(id="e.commits_per_s", workload="e", label="commits/s", unit="/s", digits=0),
    RowSpec(id="e.batches_per_commit", workload="e", label="mean batches per commit", unit=""),
    RowSpec(
        id="e.batches_per_workflow",
        workload="e",
        label="batches per workflow",
        unit="",
        digits=2,
    ),
    RowSpec(id="e.p50_us", workload="e", label="workflow p50", unit="µs"),
    RowSpec(id="e.p99_us", workload="e", label="workflow p99", unit="µs"),
    RowSpec(
        id="e.loop_cpu_per_step_us",
        workload="e",
        label="event-loop CPU per step (1/10 workflow)",
        unit="µs",
    ),
    RowSpec(
        id="e.process_cpu_per_step_us",
        workload="e",
        label="process CPU per step (1/10 workflow)",
        unit="µs",
    ),
    RowSpec(
        id="e.loop_floor_us",
        workload="e",
        label="trio floor: event-loop CPU per park + wake, no work",
        unit="µs",
    ),
    RowSpec(
        id="e.loop_floor_steps_per_s",
        workload="e",
        label="steps/s if a step cost only that",
        unit="/s",
        digits=0,
    ),
    RowSpec(
        id="e.bare_steps_per_s",
        workload="e",
        label="bare loop, writer thread: steps/s (no runtime)",
        unit="/s",
        digits=0,
    ),
    RowSpec(
        id="e.bare_loop_cpu_per_step_us",
        workload="e",
        label="bare loop, writer thread: event-loop CPU per step",
        unit="µs",
    ),
    RowSpec(
        id="e.bare_commits_per_s",
        workload="e",
        label="bare loop, writer thread: commits/s",
        unit="/s",
        digits=0,
    ),
    RowSpec(
        id="e.bare_process_steps_per_s",
        workload="e",
        label="bare loop, writer process, 2 groups: steps/s",
        unit="/s",
        digits=0,
    ),
    RowSpec(
        id="e.bare_process_loop_cpu_per_step_us",
        workload="e",
        label="bare loop, writer process: event-loop CPU per step",
        unit="µs",
    ),
    RowSpec(
        id="e.bare_process_commits_per_s",
        workload="e",
        label="bare loop, writer process: commits/s",
        unit="/s",
        digits=0,
    ),
    RowSpec(
        id="e.steps_x_bare",
        workload="e",
        label="runtime steps/s / bare loop (writer thread)",
        unit="x",
        digits=2,
    ),
    RowSpec(
        id="e.steps_x_bare_process",
        workload="e",
        label="runtime steps/s / bare loop (writer process)",
        unit="x",
        digits=2,
    ),
    RowSpec(
        id="f.record_s",
        workload="f",
        label="first execution (records the journal)",
        unit="s",
        digits=3,
    ),
    RowSpec(id="f.record_step_us", workload="f", label="  per recorded step", unit="µs"),
    RowSpec(
        id="f.record_step_x_floor",
        workload="f",
        label="  per recorded step / floor p50",
        unit="x",
        digits=2,
    ),
    RowSpec(
        id="f.resume_s",
        workload="f",
        label="resume: failure to end of replayed steps",
        unit="s",
        digits=3,
        target=Target(op="<", value=1.0),
    ),
    RowSpec(
        id="f.reload_s",
        workload="f",
        label="  of which reload (record failure, read journal)",
        unit="s",
        digits=3,
    ),
    RowSpec(
        id="f.replay_s",
        workload="f",
        label="  of which replay (2nd handler entry to end)",
        unit="s",
        digits=3,
    ),
    RowSpec(id="f.replay_entry_us", workload="f", label="  replay per entry", unit="µs", digits=2),
    RowSpec(
        id="f.complete_s",
        workload="f",
        label="completion commit (deletes the journal)",
        unit="s",
        digits=3,
    ),
    RowSpec(
        id="g.rss_mb",
        workload="g",
        label="RSS (VmRSS) with the workflows suspended",
        unit="MB",
        target=Target(op="<", value=500),
    ),
    RowSpec(id="g.rss_anon_mb", workload="g", label="  of which anonymous", unit="MB"),
    RowSpec(id="g.rss_file_mb", workload="g", label="  of which file-backed", unit="MB"),
    RowSpec(id="g.maxrss_mb", workload="g", label="peak RSS (ru_maxrss)", unit="MB"),
    RowSpec(id="g.baseline_rss_mb", workload="g", label="RSS before the starts", unit="MB"),
    RowSpec(
        id="g.rss_growth_per_workflow_kb",
        workload="g",
        label="RSS growth per suspended workflow",
        unit="KiB",
        digits=2,
    ),
    RowSpec(
        id="g.suspended",
        workload="g",
        label="workflows SUSPENDED (list_invocations)",
        unit="",
        digits=0,
    ),
    RowSpec(
        id="g.tasks_living",
        workload="g",
        label="trio tasks living when suspended",
        unit="",
        digits=0,
    ),
    RowSpec(
        id="g.baseline_tasks_living",
        workload="g",
        label="trio tasks living before the starts",
        unit="",
        digits=0,
    ),
    RowSpec(
        id="g.invocations_in_memory",
        workload="g",
        label="invocations in memory (entries, no tasks)",
        unit="",
        digits=0,
    ),
    RowSpec(
        id="g.active_actors",
        workload="g",
        label="active actors (keys held by a suspended run)",
        unit="",
        digits=0,
    ),
    RowSpec(id="g.starts_per_s", workload="g", label="workflow starts/s", unit="/s", digits=0),
    RowSpec(
        id="g.settle_s",
        workload="g",
        label="last start returned to last task ended",
        unit="s",
        digits=3,
    ),
    RowSpec(
        id="g.commits_per_workflow",
        workload="g",
        label="commits per workflow (group commit)",
        unit="",
        digits=2,
    ),
    RowSpec(
        id="h.p50_us",
        workload="h",
        label="call p50 (client send to response read)",
        unit="µs",
        target=Target(op="<", value=1_000),
    ),
    RowSpec(id="h.p99_us", workload="h", label="call p99", unit="µs"),
    RowSpec(id="h.calls_per_s", workload="h", label="calls/s", unit="/s", digits=0),
    RowSpec(id="h.p50_x_floor", workload="h", label="call p50 / floor p50", unit="x", digits=2),
    RowSpec(
        id="h.node_cpu_per_call_us",
        workload="h",
        label="node process CPU per call",
        unit="µs",
    ),
    RowSpec(id="h.errors", workload="h", label="errors (non-2xx or lost)", unit="", digits=0),
    RowSpec(
        id="i.calls_per_s",
        workload="i",
        label="calls/s (every call durable)",
        unit="/s",
        digits=0,
        target=Target(op=">=", value=3_000),
    ),
    RowSpec(id="i.p50_us", workload="i", label="call p50", unit="µs"),
    RowSpec(id="i.p99_us", workload="i", label="call p99", unit="µs"),
    RowSpec(
        id="i.node_cpu_per_call_us",
        workload="i",
        label="node process CPU per call",
        unit="µs",
    ),
    RowSpec(
        id="i.client_cpu_per_call_us",
        workload="i",
        label="load client CPU per call",
        unit="µs",
    ),
    RowSpec(id="i.calls_per_commit", workload="i", label="mean calls per commit", unit=""),
    RowSpec(id="i.errors", workload="i", label="errors (non-2xx or lost)", unit="", digits=0),
)


@attrs.frozen(kw_only=True)
class Row:
    """A row with its measured value (the median over runs) and every run's value.

    A row that is not measured (``spec.not_measured``) has no value and no runs.
    """

    spec: RowSpec
    value: float | None
    runs: tuple[float, ...]

    @property
    def measured(self) -> bool:
        """Whether this row has a number."""
        return self.value is not None

    @property
    def met(self) -> bool | None:
        """Whether the target is met (None: this row has no target, or no number)."""
        if self.spec.target is None or self.value is None:
            return None
        return self.spec.target.met_by(self.value)

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object."""
        target = self.spec.target
        row: dict[str, Any] = {
            "id": self.spec.id,
            "workload": self.spec.workload,
            "label": self.spec.label.strip(),
            "unit": self.spec.unit,
        }
        if self.value is None:
            row["status"] = "not_measured"
            row["reason"] = self.spec.not_measured
        else:
            row["status"] = "measured"
            row["value"] = self.value
            row["runs"] = list(self.runs)
        row["target"] = None if target is None else {"op": target.op, "value": target.value}
        row["met"] = self.met
        return row


def build_rows(
    median: Mapping[str, float],
    runs: Sequence[Mapping[str, float]],
    workloads: Sequence[str] = (),
) -> list[Row]:
    """The rows whose metric was measured, and the not-measured rows of the chosen
    `workloads`, in table order."""
    rows: list[Row] = []
    for spec in ROWS:
        if spec.not_measured is not None:
            if spec.workload in workloads:
                rows.append(Row(spec=spec, value=None, runs=()))
        elif spec.id in median:
            rows.append(
                Row(
                    spec=spec,
                    value=median[spec.id],
                    runs=tuple(run[spec.id] for run in runs if spec.id in run),
                )
            )
    return rows


def number_text(value: float, digits: int) -> str:
    """A metric's value as the table shows it."""
    if math.isnan(value) or math.isinf(value):
        return str(value)
    return f"{value:,.{digits}f}"


def with_unit(text: str, unit: str) -> str:
    """`text` followed by `unit`, if there is one."""
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
    width = max((len(row.spec.label) for row in rows if row.measured), default=10)
    heading = f"  {'metric':<{width}}  {'measured':>16}  {'target':>12}  met"
    current = None
    for row in rows:
        spec = row.spec
        if spec.workload != current:
            current = spec.workload
            title = titles.get(current, current)
            if row.value is None:
                # A workload not measured yet: its title and the reason, without numbers.
                lines += ["", f"{title}: not measured — {spec.not_measured}"]
                continue
            lines += ["", title, heading]
        target = ""
        if spec.target is not None:
            shown = number_text(spec.target.value, 1 if spec.unit == "x" else 0)
            target = with_unit(f"{_SHOW[spec.target.op]} {shown}", spec.unit)
        if row.value is None:
            lines.append(f"  {spec.label:<{width}}  not measured — {spec.not_measured}")
            continue
        measured = with_unit(number_text(row.value, spec.digits), spec.unit)
        met = "" if spec.target is None else ("yes" if row.met else "NO")
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
    (including those the table leaves out) of every run.

    ``targets_met`` covers the measured rows; the ids of targeted rows that could not be
    measured are listed in ``targets_not_measured``."""
    return {
        "schema": 1,
        **timing,
        "settings": dict(settings),
        "machine": attrs.asdict(facts),
        "workloads": dict(titles),
        "rows": [row.to_json() for row in rows],
        "targets_met": all(row.met is not False for row in rows),
        "targets_not_measured": [
            row.spec.id for row in rows if not row.measured and row.spec.target is not None
        ],
        "runs": [dict(run) for run in runs],
    }
