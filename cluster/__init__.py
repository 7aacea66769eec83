"""Multi-node clustering for trio-actors (partitions, placement, membership, transport).

Not yet implemented: this package is reserved by the layering (cluster -> actors -> storage)
and currently exports nothing.
"""

__all__: list[str] = []
