"""How big each workload is: the full sizes of issues 2 and 3 and the ~10x smaller ``--quick``
ones."""

from __future__ import annotations

import attrs


def _positive(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _not_negative(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative, got {value}")


@attrs.frozen(kw_only=True)
class Sizes:
    """Workload sizes. Warm-up operations run before the clock starts and are not counted."""

    floor_commits: int = attrs.field(default=2_000, validator=_positive)
    floor_warmup: int = attrs.field(default=100, validator=_not_negative)
    a_calls: int = attrs.field(default=2_000, validator=_positive)
    a_warmup: int = attrs.field(default=100, validator=_not_negative)
    b_calls: int = attrs.field(default=20_000, validator=_positive)
    b_keys: int = attrs.field(default=64, validator=_positive)
    b_warmup_per_key: int = attrs.field(default=2, validator=_not_negative)
    c_actors: int = attrs.field(default=100_000, validator=_positive)
    c_concurrency: int = attrs.field(default=64, validator=_positive)
    d_workflows: int = attrs.field(default=200, validator=_positive)
    d_warmup: int = attrs.field(default=10, validator=_not_negative)
    e_workflows: int = attrs.field(default=640, validator=_positive)
    e_keys: int = attrs.field(default=64, validator=_positive)
    e_warmup_per_key: int = attrs.field(default=1, validator=_not_negative)
    f_entries: int = attrs.field(default=10_000, validator=_positive)
    g_workflows: int = attrs.field(default=100_000, validator=_positive)
    g_concurrency: int = attrs.field(default=64, validator=_positive)
    h_calls: int = attrs.field(default=2_000, validator=_positive)
    h_warmup: int = attrs.field(default=100, validator=_not_negative)
    i_calls: int = attrs.field(default=20_000, validator=_positive)
    i_clients: int = attrs.field(default=64, validator=_positive)
    i_warmup_per_client: int = attrs.field(default=2, validator=_not_negative)

    @classmethod
    def full(cls) -> Sizes:
        """The sizes issues 2 and 3 ask for."""
        return cls()

    @classmethod
    def quick(cls) -> Sizes:
        """Every workload about 10x smaller (a smoke run; the numbers are not comparable)."""
        return cls(
            floor_commits=200,
            floor_warmup=20,
            a_calls=200,
            a_warmup=20,
            b_calls=2_000,
            c_actors=10_000,
            d_workflows=20,
            d_warmup=2,
            e_workflows=128,
            f_entries=1_000,
            g_workflows=2_000,
            h_calls=200,
            h_warmup=20,
            i_calls=2_000,
        )

    def titles(self) -> dict[str, str]:
        """The heading of each workload's block in the table."""
        return {
            "floor": f"floor: one durable commit of one small put ({self.floor_commits:,} commits)",
            "a": (f'(a) 1 key, {self.a_calls:,} sequential node.call(Counter.add, "k", 1)'),
            "b": (
                f"(b) {self.b_keys} keys, {self.b_keys} concurrent callers, {self.b_calls:,} calls"
            ),
            "c": (
                f"(c) {self.c_actors:,} actors activated once, then idle"
                f" ({self.c_concurrency} concurrent callers, separate process)"
            ),
            "d": (
                f"(d) 10-step workflow, sequential: {self.d_workflows:,} invocations on 1 key"
                " (10 ctx.run steps + completion = 11 commits)"
            ),
            "e": (
                f"(e) 10-step workflow, {self.e_keys} concurrent: {self.e_keys} callers on"
                f" {self.e_keys} keys, {self.e_workflows:,} invocations"
            ),
            "f": (
                f"(f) replay of a {self.f_entries:,}-entry journal"
                " (fails once after its last step; the retry replays)"
            ),
            "g": (
                f"(g) {self.g_workflows:,} workflows suspended on a 1-hour durable sleep"
                f" ({self.g_concurrency} concurrent starters, separate process)"
            ),
            "h": (
                f"(h) HTTP, 1 key, {self.h_calls:,} sequential POST /call/Counter/k/add [1]"
                " (node in a subprocess, one keep-alive connection)"
            ),
            "i": (
                f"(i) HTTP, {self.i_clients} concurrent clients on {self.i_clients} keys,"
                f" {self.i_calls:,} POST /call (one keep-alive connection each)"
            ),
        }
