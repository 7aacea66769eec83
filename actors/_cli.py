"""The ``actors`` command line."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable


def _load(target: str) -> Callable[[list[str]], int]:
    """Import ``module:function`` (the demo is an app module like any other)."""
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    fn: Callable[[list[str]], int] = getattr(module, attr or "main")
    return fn


def main(argv: list[str] | None = None) -> int:
    """Run the ``actors`` command line."""
    parser = argparse.ArgumentParser(prog="actors", description="trio-actors command line")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the shopping-cart example on an embedded node")
    demo.add_argument("data_dir", nargs="?", help="data directory (default: a temporary one)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    assert args.command == "demo"
    run = _load("examples.demo:main")
    return run([args.data_dir] if args.data_dir else [])


if __name__ == "__main__":
    raise SystemExit(main())
