"""The quickstart demo: an embedded node running the shopping cart, narrated.

Run it with ``actors demo`` (or ``python -m examples.demo``). It opens a node on a data
directory, adds items, reads them from a shared handler, checks out, shows the terminal error
of an empty checkout, then closes and reopens the node to show that the state survived.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import trio

import actors
from examples.cart import TYPES, Cart, PaymentClient


async def run_demo(data_dir: Path, out: list[str] | None = None) -> list[str]:
    """Run the demo on `data_dir`; returns (and prints) the lines it narrates."""
    lines: list[str] = [] if out is None else out

    def say(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    payments = PaymentClient()
    say(f"opening an embedded node on {data_dir}")
    async with actors.open_node(data_dir, [Cart(payments)], types=TYPES) as node:
        for item in ("apple", "pear", "fig"):
            count = await node.call(Cart.add_item, "alice", item)
            say(f"  alice adds {item!r:8} -> {count} item(s) in her cart")
        inv = await node.send(Cart.add_item, "bob", "plum")
        say(f"  bob's add_item was durably enqueued as {inv}")
        say(f"  bob's cart (attached to that invocation): {await node.attach(inv)} item(s)")
        say(f"  alice's cart, read by a shared handler: {await node.call(Cart.items, 'alice')}")
    say("node closed; reopening it on the same directory")
    async with actors.open_node(data_dir, [Cart(payments)], types=TYPES) as node:
        say(f"  alice's cart survived: {await node.call(Cart.items, 'alice')}")
        receipt = await node.call(Cart.checkout, "alice")
        say(f"  checkout -> {receipt.charge_id} for {len(receipt.items)} item(s)")
        try:
            await node.call(Cart.checkout, "alice")
        except actors.TerminalError as exc:
            say(f"  checkout again -> TerminalError({exc.message!r}, code={exc.code})")
        say(f"  alice's state now: {node.get_state(Cart, 'alice')}")
    say("done")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``actors demo [DATA_DIR]`` (default: a fresh temporary directory)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        trio.run(run_demo, Path(args[0]))
        return 0
    with tempfile.TemporaryDirectory(prefix="trio-actors-demo-") as tmp:
        trio.run(run_demo, Path(tmp) / "data")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
