"""trio-actors: durable virtual objects and services on trio, msgpack and LMDB.

Define actor classes with `virtual_object` (keyed, durable state, exclusive and shared
handlers) or `service` (stateless), host instances of them on a node opened with `open_node`,
and call their handlers by function object: ``await node.call(Cart.add_item, "alice", "apple")``.
"""

from storage import CodecError as CodecError
from storage import DataDirLocked as DataDirLocked
from storage import PayloadTooLarge as PayloadTooLarge
from storage import StorageCorrupted as StorageCorrupted
from storage import StorageError as StorageError
from storage import StorageFull as StorageFull
from storage import UnsupportedType as UnsupportedType

from ._app_spec import App as App
from ._clock import TrioWallClock as TrioWallClock
from ._clock import WallClock as WallClock
from ._context import Awakeable as Awakeable
from ._context import CallStep as CallStep
from ._context import DurablePromise as DurablePromise
from ._context import ObjectContext as ObjectContext
from ._context import PromiseHandle as PromiseHandle
from ._context import ServiceContext as ServiceContext
from ._context import SharedContext as SharedContext
from ._context import Step as Step
from ._context import WorkflowContext as WorkflowContext
from ._context import WorkflowSharedContext as WorkflowSharedContext
from ._definitions import exclusive as exclusive
from ._definitions import handler as handler
from ._definitions import run as run
from ._definitions import service as service
from ._definitions import shared as shared
from ._definitions import virtual_object as virtual_object
from ._definitions import workflow as workflow
from ._errors import ActorError as ActorError
from ._errors import CallAbandoned as CallAbandoned
from ._errors import CallCycle as CallCycle
from ._errors import DefinitionError as DefinitionError
from ._errors import InvalidArguments as InvalidArguments
from ._errors import InvalidKey as InvalidKey
from ._errors import InvocationCancelled as InvocationCancelled
from ._errors import InvocationKilled as InvocationKilled
from ._errors import InvocationPaused as InvocationPaused
from ._errors import InvocationTimeout as InvocationTimeout
from ._errors import NodeClosed as NodeClosed
from ._errors import NonDeterministicHandler as NonDeterministicHandler
from ._errors import ReadOnlyState as ReadOnlyState
from ._errors import TerminalError as TerminalError
from ._errors import UnknownHandler as UnknownHandler
from ._errors import UnknownInvocation as UnknownInvocation
from ._errors import UsageError as UsageError
from ._http._asgi import asgi_app as asgi_app
from ._http._server import ServerLimits as ServerLimits
from ._http._site import serve_node as serve_http
from ._journal import JournalEntry as JournalEntry
from ._node import Node as Node
from ._node import NodeStatistics as NodeStatistics
from ._open import open_node as open_node
from ._options import NodeOptions as NodeOptions
from ._records import InvocationRecord as InvocationRecord
from ._records import InvocationStatus as InvocationStatus
from ._retry import RetryPolicy as RetryPolicy

__all__ = [
    "Step",
    "CallStep",
    "JournalEntry",
    "InvocationCancelled",
    "NonDeterministicHandler",
    "CallCycle",
    "workflow",
    "run",
    "WorkflowSharedContext",
    "WorkflowContext",
    "PromiseHandle",
    "DurablePromise",
    "Awakeable",
    "ActorError",
    "App",
    "CallAbandoned",
    "CodecError",
    "DataDirLocked",
    "DefinitionError",
    "InvalidArguments",
    "InvalidKey",
    "InvocationKilled",
    "InvocationPaused",
    "InvocationRecord",
    "InvocationStatus",
    "InvocationTimeout",
    "Node",
    "NodeClosed",
    "NodeOptions",
    "NodeStatistics",
    "ObjectContext",
    "PayloadTooLarge",
    "ReadOnlyState",
    "RetryPolicy",
    "ServiceContext",
    "SharedContext",
    "StorageCorrupted",
    "StorageError",
    "StorageFull",
    "TerminalError",
    "TrioWallClock",
    "UnknownHandler",
    "UnknownInvocation",
    "UnsupportedType",
    "UsageError",
    "WallClock",
    "exclusive",
    "handler",
    "open_node",
    "serve_http",
    "asgi_app",
    "ServerLimits",
    "service",
    "shared",
    "virtual_object",
]
