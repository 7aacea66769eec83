"""The trio-actors benchmark: ``python -m bench`` (DESIGN §9, issues 2 and 3 "Performance").

One run measures the machine's durable-commit floor and the runtime's workloads, prints a table
with every number beside its target, and writes the same numbers as JSON:

- floor: one small put committed durably by raw py-lmdb, and through `storage`'s group-commit
  writer thread (so the store's own overhead shows separately);
- (a) one key, sequential ``node.call(Counter.add, "k", 1)``;
- (b) 64 keys, 64 concurrent callers;
- (c) resident memory after 100,000 actors were activated once and went idle (in a child
  process, so the number is that workload's alone);
- (d) a 10-step workflow (an exclusive handler taking 10 ``ctx.run`` steps; written before
  ``@actors.workflow`` existed), 200 invocations one after another: per-step cost against the
  floor;
- (e) the same workflow, 64 concurrent callers on 64 keys: steps/s under group commit, beside
  trio's own floor for a step (64 tasks parked and woken from a thread with no work at all:
  the event-loop CPU of that, and the steps/s it alone would allow) and two bare loops making
  the same durable writes with no runtime, one with a writer thread and one with a writer
  process (`bench._bare`);
- (f) replay of a 10,000-entry journal: an invocation fails once after its last step and its
  retry re-executes every step from the journal;
- (g) resident memory with 100,000 ``@actors.workflow`` runs suspended on a one-hour durable
  sleep (no task left per workflow; in a child process like (c)), and their start rate.

``python -m bench --ab OTHER`` compares this checkout with another one, running both in
alternation (see `bench._ab`). Run ``python -m bench --help`` for the options. The
implementation is private (``_modules``); this package exports nothing.
"""

__all__: list[str] = []
