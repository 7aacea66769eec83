"""The public surfaces, snapshotted (STYLE rule 1): adding, removing or renaming an export is a
deliberate change that shows up here."""

from __future__ import annotations

import inspect
import types

import pytest

import actors
import actors.testing
import storage

ACTORS = [
    "ActorError",
    "App",
    "Awakeable",
    "CallAbandoned",
    "CallCycle",
    "CallStep",
    "CodecError",
    "DataDirLocked",
    "DefinitionError",
    "DurablePromise",
    "InvalidArguments",
    "InvalidKey",
    "InvocationCancelled",
    "InvocationKilled",
    "InvocationPaused",
    "InvocationRecord",
    "InvocationStatus",
    "InvocationTimeout",
    "JournalEntry",
    "Node",
    "NodeClosed",
    "NodeOptions",
    "NodeStatistics",
    "NonDeterministicHandler",
    "ObjectContext",
    "PayloadTooLarge",
    "PromiseHandle",
    "ReadOnlyState",
    "RetryPolicy",
    "ServerLimits",
    "ServiceContext",
    "SharedContext",
    "Step",
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
    "WorkflowContext",
    "WorkflowSharedContext",
    "asgi_app",
    "exclusive",
    "handler",
    "open_node",
    "run",
    "serve_http",
    "service",
    "shared",
    "virtual_object",
    "workflow",
]

STORAGE = [
    "Batch",
    "BatchConflict",
    "Codec",
    "CodecError",
    "DEFAULT_MAX_VALUE_SIZE",
    "DataDirLocked",
    "FORMAT_VERSION",
    "FaultyStore",
    "ForkedEnvironment",
    "HASH_SPACE",
    "HashRange",
    "InjectedFault",
    "LmdbOptions",
    "LmdbStore",
    "MAX_KEY_SIZE",
    "MemoryStore",
    "PayloadTooLarge",
    "Precondition",
    "Reader",
    "Record",
    "SimulatedCrash",
    "StorageCorrupted",
    "StorageError",
    "StorageFull",
    "Store",
    "StoreClosed",
    "StoreStatistics",
    "UnsupportedType",
    "hash_prefix",
    "key_hash",
    "open_lmdb_store",
    "open_memory_store",
    "stable_hash",
]

ACTORS_TESTING = ["CrashReport", "open_memory_node", "open_test_node", "run_until_crash"]

MODULES = [(actors, ACTORS), (storage, STORAGE), (actors.testing, ACTORS_TESTING)]
IDS = [module.__name__ for module, _ in MODULES]


@pytest.mark.parametrize(("module", "expected"), MODULES, ids=IDS)
def test_all_is_the_snapshot(module: types.ModuleType, expected: list[str]) -> None:
    assert sorted(module.__all__) == sorted(expected)
    assert len(set(module.__all__)) == len(module.__all__), "duplicates in __all__"


@pytest.mark.parametrize(("module", "expected"), MODULES, ids=IDS)
def test_every_export_exists_and_is_documented(
    module: types.ModuleType, expected: list[str]
) -> None:
    assert module.__doc__, f"{module.__name__} has no module docstring"
    for name in module.__all__:
        assert hasattr(module, name), f"{module.__name__}.{name} is in __all__ but missing"
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.isroutine(value):
            # Its own docstring: `inspect.getdoc` would fall back to a base class's.
            doc = value.__doc__
            assert doc and doc.strip(), f"{module.__name__}.{name} has no docstring"


@pytest.mark.parametrize(("module", "expected"), MODULES, ids=IDS)
def test_no_private_names_leak(module: types.ModuleType, expected: list[str]) -> None:
    assert [name for name in module.__all__ if name.startswith("_")] == []
    # Nothing public is defined in a module but missing from its __all__ (private modules,
    # `__future__` annotations and submodules aside).
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public - set(module.__all__) == set()


@pytest.mark.parametrize(("module", "expected"), MODULES, ids=IDS)
def test_exports_are_defined_in_private_modules(
    module: types.ModuleType, expected: list[str]
) -> None:
    # Re-exported classes and functions come from the package's private `_modules`, and the
    # package is where users find them: `from actors import Node`, never `actors._node`.
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            owner = value.__module__
            assert owner.split(".")[0] in ("actors", "storage"), (name, owner)
            assert any(part.startswith("_") for part in owner.split(".")[1:]), (name, owner)


def test_actors_reexports_the_storage_errors_it_raises() -> None:
    for name in (
        "CodecError",
        "DataDirLocked",
        "PayloadTooLarge",
        "StorageCorrupted",
        "StorageError",
        "StorageFull",
        "UnsupportedType",
    ):
        assert getattr(actors, name) is getattr(storage, name)


def test_error_hierarchies_have_one_root() -> None:
    own = [getattr(actors, n) for n in actors.__all__]
    for value in own:
        if inspect.isclass(value) and issubclass(value, BaseException):
            assert issubclass(value, actors.ActorError | storage.StorageError), value
    for name in storage.__all__:
        value = getattr(storage, name)
        if inspect.isclass(value) and issubclass(value, BaseException):
            # SimulatedCrash is a control-flow signal (a BaseException), like trio.Cancelled.
            assert issubclass(value, storage.StorageError) or value is storage.SimulatedCrash
