"""The actors error hierarchy: one root (`ActorError`), specific subclasses.

`TerminalError` is the one error users raise on purpose: it ends an invocation without retries
and reaches the caller. Every other exception a handler raises is retried under its
`RetryPolicy`.
"""

from __future__ import annotations


class ActorError(Exception):
    """Root of every error raised by the `actors` package."""


class TerminalError(ActorError):
    """Raise in a handler to fail the invocation for good: no retry, the caller gets it.

    Args:
        message: what went wrong, for the caller.
        code: an HTTP-like status code for ingress and tooling (default 500).

    When it reaches a caller across a durable boundary, `error_type` names the class of the
    error raised inside the handler (for example ``"TerminalError"`` or ``"UnsupportedType"``).
    """

    def __init__(self, message: str, *, code: int = 500, error_type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type or type(self).__name__

    def __reduce__(self) -> tuple[object, ...]:  # keeps `copy`/`pickle` of the exception sane
        return (TerminalError, (self.message,), {"code": self.code, "error_type": self.error_type})


class DefinitionError(ActorError):
    """An actor class, handler or instance passed to the node is not a valid definition."""


class UnknownHandler(ActorError):
    """The handler (or actor type) is not registered on this node; nothing was enqueued."""


class InvalidKey(ActorError):
    """An actor key is empty, not a string, or too long; nothing was enqueued."""


class InvalidArguments(ActorError):
    """The arguments do not fit the handler's signature; nothing was enqueued."""


class UsageError(ActorError):
    """A context method was used in a way it does not allow (for example `set` in a shared
    handler, or an invalid state name). Raised inside the handler; fails it terminally."""


class ReadOnlyState(UsageError, AttributeError):
    """A shared (read-only) handler tried to change state."""


class UnknownInvocation(ActorError):
    """No invocation with this id exists (never did, or its record has expired)."""


class InvocationPaused(ActorError):
    """The invocation used up its retry attempts and is paused until resumed or killed.

    Attributes:
        invocation_id: the paused invocation's id, for `Node.resume`/`Node.kill`.
        last_error: the error of the last attempt.
    """

    def __init__(self, invocation_id: str, last_error: str) -> None:
        super().__init__(
            f"invocation {invocation_id} is paused after its last retry failed with:"
            f" {last_error}. Fix the cause, then resume it with node.resume(id) or drop it"
            " with node.kill(id)"
        )
        self.invocation_id = invocation_id
        self.last_error = last_error


class InvocationCancelled(TerminalError):
    """Raised inside a handler at its next durable step or wait after `Node.cancel`: handler
    code may catch it to compensate (its `except`/`finally` blocks run and may take durable
    steps). Uncaught, it fails the invocation terminally (code 409)."""


class InvocationKilled(ActorError):
    """The invocation was killed by an operator; its handler did not complete."""


class InvocationTimeout(ActorError):
    """An attempt ran longer than `NodeOptions.attempt_timeout` (recorded as a retryable
    failure of that attempt)."""


class NonDeterministicHandler(ActorError):
    """A re-executed handler took a different step than its journal recorded (another step
    name or kind at the same position). The invocation is paused; the message names the
    handler, the journal index, and both steps."""


class CallCycle(UsageError):
    """A `ctx.call` would wait on an actor that is itself waiting for the caller (an exclusive
    call cycle such as A -> B -> A): it would deadlock, so it is refused. Fails the caller's
    invocation terminally unless caught."""


class CallAbandoned(ActorError):
    """The task that was running this call was cancelled before the invocation became
    durable, so it did not take effect. Retry it (with the same idempotency key)."""


class NodeClosed(ActorError):
    """The node is shutting down or closed; the request was not accepted."""
