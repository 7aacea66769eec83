"""Helpers for testing actors: nodes on temporary directories, in-memory nodes, and
in-process crashes at a chosen commit.

Use them under pytest-trio with the `autojump_clock` fixture (or `trio.testing.MockClock`):
durable time follows trio's clock, so retries, backoff and timeouts take no real time.
"""

from ._helpers import CrashReport as CrashReport
from ._helpers import open_memory_node as open_memory_node
from ._helpers import open_test_node as open_test_node
from ._helpers import run_until_crash as run_until_crash

__all__ = ["CrashReport", "open_memory_node", "open_test_node", "run_until_crash"]
