"""Durable bytes for trio-actors: an LMDB table store with group commit, its in-memory twin,
a fault-injecting wrapper, placement-hash key helpers and the versioned msgpack codec.

This package knows nothing about actors.
"""

from ._codec import FORMAT_VERSION as FORMAT_VERSION
from ._codec import Codec as Codec
from ._errors import BatchConflict as BatchConflict
from ._errors import CodecError as CodecError
from ._errors import DataDirLocked as DataDirLocked
from ._errors import ForkedEnvironment as ForkedEnvironment
from ._errors import InjectedFault as InjectedFault
from ._errors import PayloadTooLarge as PayloadTooLarge
from ._errors import SimulatedCrash as SimulatedCrash
from ._errors import StorageCorrupted as StorageCorrupted
from ._errors import StorageError as StorageError
from ._errors import StorageFull as StorageFull
from ._errors import StoreClosed as StoreClosed
from ._errors import UnsupportedType as UnsupportedType
from ._faulty import FaultyStore as FaultyStore
from ._keys import HASH_SPACE as HASH_SPACE
from ._keys import MAX_KEY_SIZE as MAX_KEY_SIZE
from ._keys import HashRange as HashRange
from ._keys import hash_prefix as hash_prefix
from ._keys import key_hash as key_hash
from ._keys import stable_hash as stable_hash
from ._lmdb import LmdbOptions as LmdbOptions
from ._lmdb import LmdbStore as LmdbStore
from ._lmdb import open_lmdb_store as open_lmdb_store
from ._memory import MemoryStore as MemoryStore
from ._memory import open_memory_store as open_memory_store
from ._store import DEFAULT_MAX_VALUE_SIZE as DEFAULT_MAX_VALUE_SIZE
from ._store import Batch as Batch
from ._store import Precondition as Precondition
from ._store import Reader as Reader
from ._store import Record as Record
from ._store import Store as Store
from ._store import StoreStatistics as StoreStatistics

__all__ = [
    "DEFAULT_MAX_VALUE_SIZE",
    "FORMAT_VERSION",
    "HASH_SPACE",
    "MAX_KEY_SIZE",
    "Batch",
    "BatchConflict",
    "Codec",
    "CodecError",
    "DataDirLocked",
    "FaultyStore",
    "ForkedEnvironment",
    "HashRange",
    "InjectedFault",
    "LmdbOptions",
    "LmdbStore",
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
