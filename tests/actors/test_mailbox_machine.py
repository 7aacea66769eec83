"""A model-based test of the mailbox rules (`actors._mailbox.Mailbox`, a sans-IO core).

Hypothesis drives the mailbox through the calls its driver makes (push, take, done, pause,
resume, remove, requeue, release, block) and checks it against a simple model: a FIFO queue,
one running slot, one paused (blocking) slot and the consumer claim.
"""

from __future__ import annotations

from collections import Counter, deque

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors._mailbox import Mailbox


@attrs.frozen
class Entry:
    """A mailbox entry: `key` is its arrival number; `origin` is how it got in."""

    key: int
    origin: str  # "push" (an arrival) or "block" (a stored paused invocation at start-up)


class MailboxMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.mailbox: Mailbox[Entry] = Mailbox()
        # The model.
        self.queue: deque[Entry] = deque()
        self.running: Entry | None = None
        self.blocked: Entry | None = None
        self.claimed = False  # a consumer holds the claim
        self.entries: list[Entry] = []
        self.done: list[Entry] = []
        self.removed: list[Entry] = []
        # The keys of pushed entries in the order they were first taken.
        self.first_takes: list[int] = []

    def _new(self, origin: str) -> Entry:
        entry = Entry(len(self.entries), origin)
        self.entries.append(entry)
        return entry

    # ------------------------------------------------------------------------- driver calls

    @rule()
    def push(self) -> None:
        entry = self._new("push")
        must_start = self.mailbox.push(entry)
        # A consumer must be started exactly when nobody holds the claim and nothing blocks.
        assert must_start == (not self.claimed and self.blocked is None)
        self.queue.append(entry)
        if must_start:
            self.claimed = True

    @precondition(lambda self: self.claimed and self.running is None)
    @rule()
    def take(self) -> None:
        taken = self.mailbox.take()
        if self.blocked is not None:
            assert taken is None  # a paused head blocks everything behind it
        if self.blocked is not None or not self.queue:
            assert taken is None
            self.claimed = False  # the consumer exits
            return
        assert taken is self.queue.popleft()
        self.running = taken
        if taken.origin == "push" and taken.key not in self.first_takes:
            self.first_takes.append(taken.key)

    @precondition(lambda self: self.running is not None)
    @rule()
    def done(self) -> None:
        assert self.running is not None
        self.mailbox.done(self.running)
        self.done.append(self.running)
        self.running = None

    @precondition(lambda self: self.running is not None)
    @rule()
    def pause(self) -> None:
        assert self.running is not None
        self.mailbox.pause(self.running)
        self.blocked, self.running = self.running, None

    @precondition(lambda self: self.running is not None)
    @rule()
    def requeue(self) -> None:
        assert self.running is not None
        self.mailbox.requeue(self.running)
        self.queue.appendleft(self.running)
        self.running = None

    @precondition(lambda self: self.claimed and self.running is None)
    @rule()
    def release(self) -> None:
        keep = self.mailbox.release()
        assert keep == (self.blocked is None and bool(self.queue))
        if not keep:
            self.claimed = False
        # else: the new consumer the caller starts inherits the claim

    @rule()
    def resume(self) -> None:
        must_start = self.mailbox.resume()
        if self.blocked is None:
            assert must_start is False
            return
        self.queue.appendleft(self.blocked)
        self.blocked = None
        assert must_start == (not self.claimed)
        if must_start:
            self.claimed = True

    @precondition(lambda self: self.queue or self.blocked is not None)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        candidates = ([self.blocked] if self.blocked is not None else []) + list(self.queue)
        entry = data.draw(st.sampled_from(candidates), label="remove")
        must_start = self.mailbox.remove(entry.key)
        if entry is self.blocked:
            self.blocked = None
            assert must_start == (not self.claimed and bool(self.queue))
            if must_start:
                self.claimed = True
        else:
            self.queue.remove(entry)
            assert must_start is False
        self.removed.append(entry)

    @rule()
    def remove_unknown(self) -> None:
        assert self.mailbox.remove(-1) is False

    @precondition(lambda self: self.running is None)
    @rule()
    def block(self) -> None:
        entry = self._new("block")
        self.mailbox.block(entry)
        if self.blocked is None:
            self.blocked = entry
        else:
            self.queue.appendleft(entry)

    # ------------------------------------------------------------------------- misuse

    @precondition(lambda self: self.running is not None)
    @rule()
    def take_or_release_while_running_is_refused(self) -> None:
        with pytest.raises(RuntimeError, match="still running"):
            self.mailbox.take()
        with pytest.raises(RuntimeError, match="still running"):
            self.mailbox.release()

    @rule()
    def finishing_an_entry_that_is_not_running_is_refused(self) -> None:
        stranger = Entry(-1, "push")
        for finish in (self.mailbox.done, self.mailbox.pause, self.mailbox.requeue):
            with pytest.raises(RuntimeError, match="is not the running entry"):
                finish(stranger)

    # ------------------------------------------------------------------------- invariants

    @invariant()
    def matches_the_model(self) -> None:
        assert self.mailbox.running is self.running
        assert self.mailbox.blocked_by is self.blocked
        waiting = ([self.blocked] if self.blocked is not None else []) + list(self.queue)
        assert list(self.mailbox) == waiting
        assert all(a is b for a, b in zip(self.mailbox, waiting, strict=True))
        assert len(self.mailbox) == len(waiting)

    @invariant()
    def at_most_one_running_and_never_while_paused(self) -> None:
        assert not (self.mailbox.running is not None and self.mailbox.blocked_by is not None)
        if self.mailbox.running is not None:
            assert self.mailbox.running not in list(self.mailbox)

    @invariant()
    def arrivals_are_taken_in_order(self) -> None:
        # Put-backs (resume, requeue) are retakes; block() entries are stored paused ones.
        assert self.first_takes == sorted(self.first_takes)
        waiting = [e.key for e in self.mailbox if e.origin == "push"]
        assert waiting == sorted(waiting)

    @invariant()
    def nothing_lost_or_duplicated(self) -> None:
        places = Counter(e.key for e in self.mailbox)
        if self.mailbox.running is not None:
            places[self.mailbox.running.key] += 1
        places.update(e.key for e in self.done)
        places.update(e.key for e in self.removed)
        assert places == Counter(e.key for e in self.entries)

    @invariant()
    def no_work_is_stranded(self) -> None:
        # Runnable work always has a consumer holding the claim to run it.
        if self.running is not None or (self.queue and self.blocked is None):
            assert self.claimed

    @invariant()
    def idle_iff_nothing_queued_running_or_paused(self) -> None:
        nothing = not self.queue and self.running is None and self.blocked is None
        assert self.mailbox.idle == nothing


MailboxMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=50, deadline=None)
TestMailbox = MailboxMachine.TestCase
