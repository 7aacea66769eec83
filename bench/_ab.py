"""``python -m bench --ab OTHER``: this checkout against another, run in alternation.

On a shared machine the same code can run 1.5x faster or slower from one quarter hour to the
next, so two benchmark runs made at different times compare the machine as much as the code.
An A/B run interleaves them: each round runs the chosen workloads once in this checkout and
once in `OTHER` (another checkout of the project, e.g. ``git worktree add ../base main~3``),
in a fresh process each, swapping which goes first every round; then it reports the median of
each metric per side and their ratio.

Each side runs its own ``python -m bench`` (so `OTHER`'s own workloads and runtime) with
`OTHER` first on the import path; the options that shape the workloads (``--only``,
``--quick``, sizes, ``--dir``) are passed to both.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._report import ROWS, number_text, with_unit

THIS = Path(__file__).resolve().parents[1]
"""The checkout this benchmark belongs to."""


class AbError(Exception):
    """An A/B run could not be made (the message says why)."""


def check_other(other: Path) -> Path:
    """`other`, resolved, if it looks like a checkout of this project.

    Raises:
        AbError: it is not a directory holding the ``bench``, ``actors`` and ``storage``
            packages.
    """
    resolved = other.expanduser().resolve()
    missing = [name for name in ("bench", "actors", "storage") if not (resolved / name).is_dir()]
    if missing:
        raise AbError(
            f"{other} is not a checkout of trio-actors (no {', '.join(missing)} in it); make"
            " one with e.g. `git worktree add ../base main~1`"
        )
    if resolved == THIS:
        raise AbError(f"{other} is this checkout; compare against another one")
    return resolved


def _run_side(tree: Path, bench_args: Sequence[str], json_path: Path) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "bench", *bench_args, "--json", str(json_path)]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise AbError(
            f"the benchmark in {tree} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    document: dict[str, Any] = json.loads(json_path.read_text())
    return document


def run_ab(other: Path, bench_args: Sequence[str], rounds: int) -> dict[str, Any]:
    """Run `rounds` alternating rounds; return the per-side documents and the comparison.

    Raises:
        AbError: a side's benchmark failed.
    """
    sides: dict[str, list[dict[str, Any]]] = {"this": [], "other": []}
    trees = {"this": THIS, "other": other}
    with tempfile.TemporaryDirectory(prefix="trio-actors-ab-") as tmp:
        for round_index in range(rounds):
            order = ("this", "other") if round_index % 2 == 0 else ("other", "this")
            for side in order:
                print(f"[round {round_index + 1}/{rounds}] {side} ...", file=sys.stderr)
                json_path = Path(tmp) / f"{side}-{round_index}.json"
                sides[side].append(_run_side(trees[side], bench_args, json_path))
    return {
        "rounds": rounds,
        "this": {"path": str(THIS), "code": _code(sides["this"][0])},
        "other": {"path": str(other), "code": _code(sides["other"][0])},
        "rows": compare(sides["this"], sides["other"]),
    }


def _code(document: dict[str, Any]) -> str:
    machine = document.get("machine", {})
    commit = machine.get("git_commit") or "unknown commit"
    return str(commit)[:12] + (" (uncommitted changes)" if machine.get("git_dirty") else "")


def compare(
    this: Sequence[dict[str, Any]], other: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per row measured on both sides: the median of each side's runs and their ratio, in the
    order of this side's table."""
    this_values = _values(this)
    other_values = _values(other)
    labels: dict[str, tuple[str, str]] = {}
    for document in this:
        for row in document["rows"]:
            labels.setdefault(row["id"], (row["label"], row["unit"]))
    rows = []
    for row_id, (label, unit) in labels.items():
        mine, theirs = this_values.get(row_id), other_values.get(row_id)
        if not mine or not theirs:
            continue
        a, b = statistics.median(mine), statistics.median(theirs)
        rows.append(
            {
                "id": row_id,
                "label": label,
                "unit": unit,
                "this": a,
                "other": b,
                "this_runs": mine,
                "other_runs": theirs,
                "ratio": a / b if b else None,
            }
        )
    return rows


def _values(documents: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    values: dict[str, list[float]] = {}
    for document in documents:
        for row in document["rows"]:
            if row.get("status") == "measured":
                values.setdefault(row["id"], []).append(float(row["value"]))
    return values


def format_ab(result: dict[str, Any]) -> str:
    """The comparison as a table."""
    lines = [
        f"A/B: this checkout ({result['this']['code']}) against {result['other']['path']}"
        f" ({result['other']['code']}), {result['rounds']} alternating round(s), medians",
        f"  {'metric':<52} {'this':>14} {'other':>14} {'this/other':>11}",
    ]
    digits = {spec.id: spec.digits for spec in ROWS}
    for row in result["rows"]:
        shown = [
            with_unit(number_text(row[side], digits.get(row["id"], 1)), row["unit"])
            for side in ("this", "other")
        ]
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(f"  {row['label'][:52]:<52} {shown[0]:>14} {shown[1]:>14} {ratio:>11}")
    return "\n".join(lines)
