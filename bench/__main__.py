"""``python -m bench``: run the benchmark, print the table, write the JSON.

Examples::

    python -m bench                      # every workload at full size, once
    python -m bench --repeat 3           # medians of three runs
    python -m bench --quick --only a,b   # a quick look at (a) and (b)
    python -m bench --only d,e,f,g       # the durable-execution workloads
    python -m bench --only h,i           # the HTTP workloads
    python -m bench --ab ../base --only e --repeat 3
                                         # this checkout against ../base, alternating
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import attrs

from ._ab import AbError, check_other, format_ab, run_ab
from ._machine import machine_facts
from ._report import build_rows, format_table, json_document
from ._runner import WORKLOADS, run_all
from ._sizes import Sizes

_DEFAULT_JSON = Path("bench/results/latest.json")

# Command-line flags that override one field of `Sizes`.
_SIZE_FLAGS = {
    "floor_commits": "commits timed for each floor",
    "a_calls": "calls timed in (a)",
    "b_calls": "calls in total in (b)",
    "b_keys": "keys (and concurrent callers) in (b)",
    "c_actors": "actors activated in (c)",
    "c_concurrency": "concurrent callers in (c)",
    "d_workflows": "10-step workflows timed in (d)",
    "e_workflows": "10-step workflows in total in (e)",
    "e_keys": "keys (and concurrent callers) in (e)",
    "f_entries": "journal entries recorded and replayed in (f)",
    "g_workflows": "workflows started and suspended in (g)",
    "g_concurrency": "concurrent starters in (g)",
    "h_calls": "sequential HTTP calls timed in (h)",
    "i_calls": "HTTP calls in total in (i)",
    "i_clients": "concurrent HTTP clients (and keys) in (i)",
}


def _workload_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"choose among {', '.join(WORKLOADS)} (comma-separated), got {text!r}"
        )
    return names


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure trio-actors against the machine's durable-commit floor.",
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=_DEFAULT_JSON,
        metavar="PATH",
        help=f"where to write the results as JSON (default: {_DEFAULT_JSON})",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path.cwd(),
        metavar="DIR",
        help="create the temporary data directories under DIR (default: the current"
        " directory); the floor is measured on the same filesystem",
    )
    parser.add_argument(
        "--quick", action="store_true", help="scale every workload down about 10x (smoke run)"
    )
    parser.add_argument(
        "--only",
        type=_workload_list,
        default=list(WORKLOADS),
        metavar="a,b,c",
        help="run only these workloads (the floor always runs)",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run every workload N times and report the median of each metric",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit with status 1 if a target is missed"
    )
    parser.add_argument(
        "--ab",
        type=Path,
        metavar="OTHER",
        help="compare this checkout with the checkout OTHER: run the chosen workloads in both,"
        " alternating, --repeat rounds (at least 2), and print the medians side by side"
        " (JSON to --json)",
    )
    sizes = parser.add_argument_group("sizes (override the defaults of full or --quick)")
    for field, help_text in _SIZE_FLAGS.items():
        sizes.add_argument(
            "--" + field.replace("_", "-"), type=_positive_int, metavar="N", help=help_text
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = _parser().parse_args(argv)
    if args.ab is not None:
        return _main_ab(args)
    sizes = Sizes.quick() if args.quick else Sizes.full()
    overrides = {f: getattr(args, f) for f in _SIZE_FLAGS if getattr(args, f) is not None}
    sizes = attrs.evolve(sizes, **overrides)
    args.dir.mkdir(parents=True, exist_ok=True)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=".trio-actors-bench-", dir=args.dir) as tmp:
        data_root = Path(tmp)
        facts = machine_facts(data_root)
        median, runs = run_all(data_root, sizes, args.only, args.repeat)
    chosen = [name for name in WORKLOADS if name == "floor" or name in args.only]
    rows = build_rows(median, runs, chosen)
    titles = sizes.titles()
    print(format_table(rows, facts, titles, args.repeat))
    settings = {
        "quick": args.quick,
        "repeat": args.repeat,
        "workloads": chosen,
        "sizes": attrs.asdict(sizes),
    }
    timing = {
        "started_at": started_at.isoformat(),
        "duration_s": time.perf_counter() - started,
        "command": [sys.executable, "-m", "bench", *(sys.argv[1:] if argv is None else argv)],
    }
    document = json_document(rows, facts, settings, titles, timing, runs)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.json}")
    if args.check and not document["targets_met"]:
        return 1
    return 0


def _main_ab(args: argparse.Namespace) -> int:
    try:
        other = check_other(args.ab)
    except AbError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    bench_args = ["--only", ",".join(args.only), "--dir", str(args.dir.resolve())]
    if args.quick:
        bench_args.append("--quick")
    for field in _SIZE_FLAGS:
        value = getattr(args, field)
        if value is not None:
            bench_args += ["--" + field.replace("_", "-"), str(value)]
    rounds = max(2, args.repeat)
    try:
        result = run_ab(other, bench_args, rounds)
    except AbError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 1
    print(format_ab(result))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
