"""The storage error hierarchy: one root, specific subclasses."""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error raised by the `storage` package."""


class CodecError(StorageError):
    """A value could not be encoded or decoded by the codec."""


class UnsupportedType(CodecError):
    """A value of a type the codec does not know was given to encode, or met while decoding."""


class PayloadTooLarge(CodecError):
    """An encoded value, key or batch is larger than the configured limit."""


class StorageFull(StorageError):
    """The disk or the configured maximum map size is full; nothing in the batch was written."""


class StorageCorrupted(StorageError):
    """Stored bytes failed their checksum, or the data files cannot be opened as LMDB."""


class DataDirLocked(StorageError):
    """Another process (or another store in this process) has the data directory open."""


class StoreClosed(StorageError):
    """The store was used after it was closed, or after a simulated crash."""


class BatchConflict(StorageError):
    """A precondition of a batch did not hold at commit time; nothing in that batch was written."""


class ForkedEnvironment(StorageError):
    """A store opened in a parent process was used in a forked child, which LMDB forbids."""


class InjectedFault(StorageError):
    """A failure injected by `FaultyStore` in tests (an I/O error at a chosen commit)."""


class SimulatedCrash(BaseException):
    """Raised by `FaultyStore` to simulate the process dying at a chosen commit.

    It is a `BaseException` so that no `except Exception` in user or runtime code can swallow it:
    the crash must tear down the node exactly like a `SIGKILL` would stop it.
    """
