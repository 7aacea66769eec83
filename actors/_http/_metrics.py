"""Placeholder until the metrics routes land (owned by the metrics work)."""

from __future__ import annotations

from .._node import Node
from ._wire import Route


def routes(node: Node) -> list[Route]:
    """The metrics routes."""
    del node
    return []
