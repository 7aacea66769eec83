"""The trio-actors benchmark: ``python -m bench`` (DESIGN §9, issue 2 "Performance").

One run measures the machine's durable-commit floor and the runtime's workloads, prints a table
with every number beside its target, and writes the same numbers as JSON:

- floor: one small put committed durably by raw py-lmdb, and through `storage`'s group-commit
  writer thread (so the store's own overhead shows separately);
- (a) one key, sequential ``node.call(Counter.add, "k", 1)``;
- (b) 64 keys, 64 concurrent callers;
- (c) resident memory after 100,000 actors were activated once and went idle (in a child
  process, so the number is that workload's alone).

Run ``python -m bench --help`` for the options. The implementation is private (``_modules``);
this package exports nothing.
"""

__all__: list[str] = []
