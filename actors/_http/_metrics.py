"""``GET /metrics``: the node's counters in the Prometheus text format.

Each app gets its own `CollectorRegistry` (never the process-global one: several nodes can
live in one process). Its one collector asks the node for an `Observation` at scrape time and
turns it into metric families, so the node's hot path never touches ``prometheus_client``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .._node import Node
from .._observe import OUTCOMES, Observation
from .._records import InvocationStatus
from ._wire import Request, Response, Route

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format that `generate_latest` writes."""


def _bound(value: float) -> str:
    return "+Inf" if value == float("inf") else repr(float(value))


def families(observation: Observation) -> Iterator[Metric]:
    """The metric families of one observation (names prefixed ``actors_``)."""
    counters = observation.counters
    by_status = GaugeMetricFamily(
        "actors_invocations",
        "Invocations in memory (accepted and not finished), by status.",
        labels=["status"],
    )
    for status, count in observation.by_status.items():
        by_status.add_metric([status.value], count)
    yield by_status

    finished = CounterMetricFamily(
        "actors_invocations_finished",
        "Invocations that finished (or failed before they were accepted), by outcome.",
        labels=["type", "handler", "outcome"],
    )
    failed_attempts = CounterMetricFamily(
        "actors_failed_attempts",
        "Handler attempts that failed with a retryable error (retried, or paused).",
        labels=["type", "handler"],
    )
    duration = HistogramMetricFamily(
        "actors_handler_duration_seconds",
        "Seconds from an invocation's admission to its completion.",
        labels=["type", "handler"],
    )
    for (type_name, handler), per in sorted(counters.handlers.items()):
        labels = [type_name, handler]
        for outcome in OUTCOMES:
            finished.add_metric([*labels, outcome], per.finished[outcome])
        failed_attempts.add_metric(labels, per.failed_attempts)
        histogram = per.duration
        cumulative = histogram.cumulative()
        bounds = [*histogram.bounds, float("inf")]
        duration.add_metric(
            labels,
            [(_bound(b), count) for b, count in zip(bounds, cumulative, strict=True)],
            histogram.total,
        )
    yield finished
    yield failed_attempts
    yield duration

    yield CounterMetricFamily(
        "actors_replays",
        "Handler attempts that began by replaying committed journal entries.",
        value=counters.replays,
    )
    yield CounterMetricFamily(
        "actors_suspensions",
        "Times an invocation was suspended (taken out of memory until a timer or slot).",
        value=counters.suspensions,
    )
    yield GaugeMetricFamily(
        "actors_suspended_invocations",
        "Invocations suspended now.",
        value=observation.by_status[InvocationStatus.SUSPENDED],
    )
    yield GaugeMetricFamily(
        "actors_active_actors",
        "Keys with a mailbox in memory (queued, running, paused or suspended work).",
        value=observation.active_actors,
    )
    yield GaugeMetricFamily(
        "actors_mailbox_depth",
        "Invocations waiting in mailboxes over all keys (running ones not counted).",
        value=observation.mailbox_depth,
    )
    yield GaugeMetricFamily(
        "actors_mailbox_depth_max",
        "Invocations waiting in the deepest single mailbox.",
        value=observation.mailbox_depth_max,
    )
    yield GaugeMetricFamily(
        "actors_timers_pending",
        "Durable timers not yet fired: delayed sends, and suspended invocations with a"
        " wake-up time.",
        value=observation.timers_pending,
    )
    yield CounterMetricFamily(
        "actors_commits", "Durable store commits (one fsync each).", value=observation.commits
    )
    yield CounterMetricFamily(
        "actors_batches",
        "Batches committed (group commit merges several into one commit).",
        value=observation.batches,
    )
    yield GaugeMetricFamily(
        "actors_batch_size",
        "Mean batches per durable commit since the node opened.",
        value=observation.batches / observation.commits if observation.commits else 0.0,
    )
    yield CounterMetricFamily(
        "actors_storage_records", "Puts and deletes written.", value=observation.records
    )
    yield GaugeMetricFamily(
        "actors_storage_map_size_bytes",
        "Size of the LMDB map (0 for the in-memory store).",
        value=observation.map_size,
    )
    yield CounterMetricFamily(
        "actors_storage_map_grows",
        "Times the LMDB map was grown after filling up.",
        value=observation.map_grows,
    )


class NodeCollector(Collector):
    """A collector that reads `node` at every scrape."""

    def __init__(self, node: Node) -> None:
        self._node = node

    def collect(self) -> Iterator[Metric]:
        """The node's metric families now."""
        return families(self._node.observation())


def registry_for(node: Node) -> CollectorRegistry:
    """A registry of its own holding `node`'s collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def routes(node: Node) -> list[Route]:
    """``GET /metrics`` (behind the bearer token, like every route but ``/health``)."""
    registry = registry_for(node)

    async def metrics(request: Request, params: dict[str, str]) -> Response:
        return Response(status=200, body=generate_latest(registry), content_type=CONTENT_TYPE)

    return [Route(method="GET", pattern="/metrics", handler=metrics)]
