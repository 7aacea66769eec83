"""The HTTP workloads (h) and (i): ``POST /call/Counter/<key>/add`` with body ``[1]`` against a
node served in a subprocess of its own (`bench._http_node`), driven by the lean keep-alive
client of `bench._load`.

(h) is one key, sequential: the latency of one durable call over HTTP. (i) is 64 clients on 64
keys, each a closed loop on its own keep-alive connection: the node's HTTP throughput.

Every acknowledged call is durable (``/call`` answers after the commit); each workload checks
it by reading the counters back (``GET /state/Counter/<key>``) and fails if a counter differs
from the calls acknowledged on its key. The node's CPU time is read from /proc around the timed
part (and the load client's own, to show it is not the bottleneck), and its commit counters
from ``GET /metrics``.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import attrs
from prometheus_client.parser import text_string_to_metric_families

from ._child import child_env
from ._load import LoadResult, build_request, request_once, run_load
from ._stats import Latencies

HOST = "127.0.0.1"
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 10.0


@attrs.frozen
class _Node:
    pid: int
    port: int


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited after a timeout (by pid, never by name)."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def serving_node(directory: Path) -> Iterator[_Node]:
    """Run `bench._http_node` on ``directory/node`` until the block ends.

    Raises:
        RuntimeError: the node did not report its port in time (its stderr is in the message).
    """
    env = child_env()
    log_path = directory / "node.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench._http_node", str(directory / "node")],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
        )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=_START_TIMEOUT)
        line = process.stdout.readline() if ready else b""
        if not line:
            _stop(process)
            raise RuntimeError(
                f"the HTTP node did not start (exit status {process.poll()}):\n"
                + log_path.read_text(errors="replace").strip()
            )
        yield _Node(pid=process.pid, port=int(json.loads(line)["port"]))
    finally:
        _stop(process)
        if process.stdout is not None:
            process.stdout.close()


def _call(key: str) -> bytes:
    return build_request("POST", f"/call/Counter/{key}/add", b"[1]", host=HOST)


def _counter(node: _Node, key: str) -> int:
    status, body = request_once(HOST, node.port, build_request("GET", f"/state/Counter/{key}"))
    if status != 200:
        raise RuntimeError(f"GET /state/Counter/{key} answered {status}: {body[:200]!r}")
    value: int = json.loads(body)["state"].get("value", 0)
    return value


def _commits(node: _Node) -> tuple[float, float]:
    """The node's ``actors_commits_total`` and ``actors_batches_total``."""
    status, body = request_once(HOST, node.port, build_request("GET", "/metrics"))
    if status != 200:
        raise RuntimeError(f"GET /metrics answered {status}")
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            found[sample.name] = sample.value
    return found["actors_commits_total"], found["actors_batches_total"]


def _warm(node: _Node, keys: Sequence[str], shares: Sequence[int], workload: str) -> None:
    result = run_load(HOST, node.port, [_call(key) for key in keys], shares)
    if result.ok != sum(shares):
        raise RuntimeError(
            f"workload ({workload}): {sum(shares) - result.ok} warm-up calls failed:"
            f" {result.errors}, {result.lost} lost"
        )


def _measure(
    node: _Node, keys: Sequence[str], shares: Sequence[int], workload: str
) -> tuple[LoadResult, dict[str, float]]:
    """Run the timed load and check durability; the result and node-side counters."""
    commits_before, batches_before = _commits(node)
    cpu_before = _cpu_seconds(node.pid)
    client_before = time.process_time()
    result = run_load(HOST, node.port, [_call(key) for key in keys], shares)
    client_cpu = time.process_time() - client_before
    cpu = _cpu_seconds(node.pid) - cpu_before
    commits_after, batches_after = _commits(node)
    calls = max(result.ok, 1)
    commits = commits_after - commits_before
    counters = {
        "node_cpu_per_call_us": cpu / calls * 1e6,
        "client_cpu_per_call_us": client_cpu / calls * 1e6,
        "commits_per_s": commits / result.elapsed,
        "calls_per_commit": result.ok / commits if commits else 0.0,
        "batches_per_commit": (batches_after - batches_before) / commits if commits else 0.0,
    }
    if result.ok == 0:
        raise RuntimeError(f"workload ({workload}): no call succeeded: errors {result.errors}")
    return result, counters


def _check_durable(
    node: _Node, keys: Sequence[str], acked: Sequence[int], lost: int, workload: str
) -> None:
    """Every acknowledged call is in its counter (a call lost in flight may or may not be)."""
    for key, count in zip(keys, acked, strict=True):
        value = _counter(node, key)
        if not count <= value <= count + lost:
            raise RuntimeError(
                f"workload ({workload}): counter {key} is {value} after {count} acknowledged"
                f" calls ({lost} lost in flight)"
            )


def _summary(result: LoadResult) -> dict[str, float]:
    latencies = Latencies.from_seconds(result.latencies)
    return {
        "calls": float(result.ok),
        "calls_per_s": result.ok / result.elapsed,
        "p50_us": latencies.p50_us,
        "p99_us": latencies.p99_us,
        "max_us": latencies.max_us,
        "errors": float(sum(result.errors.values()) + result.lost),
    }


def run_http_sequential(directory: Path, calls: int, warmup: int) -> dict[str, float]:
    """Workload (h): `calls` sequential ``POST /call/Counter/k/add`` on one keep-alive
    connection (after `warmup` untimed ones)."""
    with serving_node(directory) as node:
        if warmup:
            _warm(node, ["k"], [warmup], "h")
        result, counters = _measure(node, ["k"], [calls], "h")
        _check_durable(node, ["k"], [warmup + result.ok], result.lost, "h")
        last = json.loads(result.last_bodies[0])
        if result.lost == 0 and last != warmup + calls:
            raise RuntimeError(f"workload (h): the last call returned {last}, not {warmup + calls}")
    return {**_summary(result), **counters}


def run_http_concurrent(
    directory: Path, calls: int, clients: int, warmup_per_client: int
) -> dict[str, float]:
    """Workload (i): `clients` keep-alive connections, one key each, `calls` calls in total
    split evenly, all sent back to back (after `warmup_per_client` untimed calls each)."""
    keys = [f"k{i}" for i in range(clients)]
    shares = [calls // clients + (1 if i < calls % clients else 0) for i in range(clients)]
    with serving_node(directory) as node:
        if warmup_per_client:
            _warm(node, keys, [warmup_per_client] * clients, "i")
        result, counters = _measure(node, keys, shares, "i")
        acked = [warmup_per_client + ok for ok in result.ok_per_connection]
        _check_durable(node, keys, acked, result.lost, "i")
    return {**_summary(result), **counters}
