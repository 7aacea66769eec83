"""Placeholder until the console routes land (owned by the console work)."""

from __future__ import annotations

from .._node import Node
from ._wire import Route


def routes(node: Node) -> list[Route]:
    """The console routes."""
    del node
    return []
