"""Tests specific to the LMDB store: durability, group commit, map growth, full disks,
checksums, locking, fork safety and damaged files (RELIABILITY §3 and §4)."""

from __future__ import annotations

import logging
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
import trio.testing

from storage import (
    Batch,
    BatchConflict,
    DataDirLocked,
    ForkedEnvironment,
    HashRange,
    LmdbOptions,
    LmdbStore,
    StorageCorrupted,
    StorageError,
    StorageFull,
    open_lmdb_store,
)

TABLES = ("a", "b")
REPO_ROOT = Path(__file__).resolve().parents[2]
KIB = 1024
MIB = 1024 * KIB


async def put_many(store: LmdbStore, table: str, items: dict[bytes, bytes]) -> None:
    batch = Batch()
    for key, value in items.items():
        batch.put(table, key, value)
    await store.commit(batch)


async def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k1": b"v1", b"k2": b"v2"})
        await put_many(store, "b", {b"k3": b"v3"})
        batch = Batch()
        batch.delete("a", b"k2")
        await store.commit(batch)
    assert (tmp_path / "data.mdb").exists()
    async with open_lmdb_store(tmp_path, TABLES) as store:
        assert store.scan("a") == [(b"k1", b"v1")]
        assert store.scan("b") == [(b"k3", b"v3")]
        assert store.statistics().stale_readers_cleared == 0
    # Tables can be added on a later open; existing ones keep their data.
    async with open_lmdb_store(tmp_path, (*TABLES, "c")) as store:
        assert store.tables == ("a", "b", "c")
        assert store.get("a", b"k1") == b"v1"
        assert store.scan("c") == []


async def test_environment_flags_are_durable(tmp_path: Path) -> None:
    """RELIABILITY §4 rule 1: the flags LMDB applied, not only the ones we asked for."""
    async with open_lmdb_store(tmp_path, TABLES) as store:
        flags = store._env.flags()  # white-box: there is no public accessor for the env
        assert flags["sync"] and flags["metasync"] and flags["lock"] and flags["subdir"]
        assert not flags["writemap"] and not flags["map_async"] and not flags["readonly"]
        assert store.statistics().map_size == 64 * MIB


async def test_group_commit_merges_concurrent_batches(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:

        async def one(i: int) -> None:
            await put_many(store, "a", {b"key %03d" % i: b"value %d" % i})

        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(one, i)
        stats = store.statistics()
        assert stats.batches == 50
        assert stats.records == 50
        assert stats.commits < 50
        assert len(store.scan("a")) == 50


async def test_committers_of_one_scheduler_tick_share_one_commit(tmp_path: Path) -> None:
    """Under a real clock, tasks that reach `commit` in the same tick gather behind the first
    one's schedule point and are written as one group, in the order they arrived: the first
    batch that claims a key wins, the later ones in the group get `BatchConflict`."""
    async with open_lmdb_store(tmp_path, TABLES) as store:
        go = trio.Event()
        outcomes: dict[int, str] = {}
        arrived: list[int] = []

        async def one(i: int) -> None:
            batch = Batch()
            batch.require("a", b"claimed", None)
            batch.put("a", b"claimed", b"by %d" % i)
            batch.put("a", b"key %03d" % i, b"value %d" % i)
            await go.wait()
            arrived.append(i)  # no checkpoint between this and `commit` taking the batch
            try:
                await store.commit(batch)
            except BatchConflict:
                outcomes[i] = "conflict"
            else:
                outcomes[i] = "written"

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, i)
            await trio.testing.wait_all_tasks_blocked()
            before = store.statistics()
            go.set()  # every waiter is rescheduled into the same tick
        stats = store.statistics()
        assert stats.commits - before.commits == 1
        assert stats.batches - before.batches == 1
        first = arrived[0]
        assert sorted(arrived) == list(range(20))
        assert outcomes == {i: "written" if i == first else "conflict" for i in range(20)}
        assert store.get("a", b"claimed") == b"by %d" % first
        assert [k for k, _ in store.scan("a")] == [b"claimed", b"key %03d" % first]


async def test_a_lone_committer_commits_inline_unless_the_writer_woke_a_group_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a real clock a lone committer writes on the trio thread (no hand-off). If the
    writer delivered a group while it was at its schedule point, the woken tasks are runnable
    and an inline fsync would hold them up, so its batch goes to the writer thread instead;
    either way the commit lands."""
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k": b"inline"})
        assert store._inline_commits == 1
        schedule_point = trio.lowlevel.cancel_shielded_checkpoint

        async def writer_delivers_meanwhile() -> None:
            store._deliver([])  # what the writer's `run_sync_soon` runs after a group commit
            await schedule_point()

        monkeypatch.setattr(trio.lowlevel, "cancel_shielded_checkpoint", writer_delivers_meanwhile)
        before = store.statistics()
        await put_many(store, "a", {b"k": b"by the writer"})
        assert store._inline_commits == 1
        assert store.statistics().commits == before.commits + 1
        assert store.get("a", b"k") == b"by the writer"
        monkeypatch.undo()
        await put_many(store, "a", {b"k": b"inline again"})
        assert store._inline_commits == 2
        assert store.get("a", b"k") == b"inline again"


async def test_map_grows_under_load_with_concurrent_readers(tmp_path: Path) -> None:
    options = LmdbOptions(map_size=64 * KIB)
    value = bytes(range(256)) * 8  # 2 KiB
    batches, per_batch = 200, 10  # about 4 MiB in all
    async with open_lmdb_store(tmp_path, TABLES, options) as store:
        written = 0
        reads = 0

        async def writer() -> None:
            nonlocal written
            for b in range(batches):
                await put_many(store, "a", {b"%05d-%02d" % (b, i): value for i in range(per_batch)})
                written += per_batch

        async def reader() -> None:
            nonlocal reads
            while written < batches * per_batch:
                # Every committed record is visible and intact while the map moves.
                assert len(store.scan("a")) >= written
                with store.snapshot() as snapshot:
                    assert snapshot.get("a", b"00000-00") in (None, value)
                reads += 1
                await trio.lowlevel.checkpoint()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(writer)
            nursery.start_soon(reader)
            nursery.start_soon(reader)
        stats = store.statistics()
        assert stats.map_grows > 0
        assert stats.map_size > 64 * KIB
        assert reads > 0
    async with open_lmdb_store(tmp_path, TABLES, options) as store:
        items = store.scan("a")
        assert len(items) == batches * per_batch
        assert all(v == value for _, v in items)


async def test_max_map_size_gives_storage_full_and_stays_usable(tmp_path: Path) -> None:
    options = LmdbOptions(map_size=64 * KIB, max_map_size=256 * KIB)
    async with open_lmdb_store(tmp_path, TABLES, options) as store:
        await put_many(store, "a", {b"early": b"data"})
        with pytest.raises(StorageFull, match="maximum"):
            await put_many(store, "a", {b"huge": b"x" * MIB})
        assert store.get("a", b"huge") is None
        assert store.get("a", b"early") == b"data"
        assert store.statistics().map_size == 256 * KIB
        await put_many(store, "a", {b"later": b"small"})
        assert store.scan("a") == [(b"early", b"data"), (b"later", b"small")]
    async with open_lmdb_store(tmp_path, TABLES, options) as store:
        assert store.scan("a") == [(b"early", b"data"), (b"later", b"small")]


def flip_payload(data_file: Path, payload: bytes) -> int:
    """Flip one byte of every copy of `payload` in the file; return how many copies."""
    content = bytearray(data_file.read_bytes())
    copies = 0
    at = content.find(payload)
    while at != -1:
        content[at + len(payload) // 2] ^= 0xFF
        copies += 1
        at = content.find(payload, at + 1)
    data_file.write_bytes(bytes(content))
    return copies


async def test_checksum_detects_a_flipped_value_byte(tmp_path: Path) -> None:
    values = {b"key-%d" % i: b"payload number %d of the checksum test" % i for i in range(20)}
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", values)
    assert flip_payload(tmp_path / "data.mdb", values[b"key-7"]) >= 1

    async with open_lmdb_store(tmp_path, TABLES) as store:
        with pytest.raises(StorageCorrupted, match=r"table 'a' key 6b65792d37.*damaged"):
            store.get("a", b"key-7")
        for key, value in values.items():
            if key != b"key-7":
                assert store.get("a", key) == value
        with pytest.raises(StorageCorrupted, match="key 6b65792d37"):
            store.scan("a")
        with pytest.raises(StorageCorrupted):
            list(store.export_range(HashRange.everything()))
        with pytest.raises(StorageCorrupted), store.snapshot() as snapshot:
            snapshot.get("a", b"key-7")
        assert store.scan("a", stop=b"key-7") == [
            (key, values[key]) for key in sorted(values) if key < b"key-7"
        ]


async def test_second_open_in_the_same_process_is_refused(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k": b"v"})
        with pytest.raises(DataDirLocked, match=rf"{os.getpid()}.*stop the other node"):
            async with open_lmdb_store(tmp_path, TABLES):
                pass  # pragma: no cover
        # The refused open must not have disturbed the first one.
        await put_many(store, "a", {b"k2": b"v2"})
        assert store.get("a", b"k") == b"v"
    # Closing released the lock.
    async with open_lmdb_store(tmp_path, TABLES) as store:
        assert store.get("a", b"k2") == b"v2"


async def test_second_open_from_another_process_is_refused(tmp_path: Path) -> None:
    script = (
        "import sys, trio, storage\n"
        "async def main():\n"
        "    async with storage.open_lmdb_store(sys.argv[1], ['a']):\n"
        "        pass\n"
        "trio.run(main)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    async with open_lmdb_store(tmp_path, TABLES):
        result = await trio.run_process(
            [sys.executable, "-c", script, str(tmp_path)],
            env=env,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    stderr = result.stderr.decode()
    assert result.returncode != 0
    assert "DataDirLocked" in stderr
    assert f"another process (pid {os.getpid()})" in stderr


async def test_use_after_fork_is_refused(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k": b"v"})
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                store.get("a", b"k")
            except ForkedEnvironment:
                code = 0
            except BaseException:
                code = 2
            os._exit(code)
        _, status = await trio.to_thread.run_sync(os.waitpid, pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent is unaffected.
        assert store.get("a", b"k") == b"v"


def test_unsafe_options_are_refused() -> None:
    with pytest.raises(ValueError, match="i_accept_data_loss"):
        LmdbOptions(sync=False)
    with pytest.raises(ValueError, match="max_map_size"):
        LmdbOptions(map_size=MIB, max_map_size=MIB // 2)
    with pytest.raises(ValueError, match="positive"):
        LmdbOptions(max_readers=0)
    assert not LmdbOptions(sync=False, i_accept_data_loss=True).sync


async def test_data_loss_mode_opens_without_sync(tmp_path: Path) -> None:
    options = LmdbOptions(sync=False, i_accept_data_loss=True)
    async with open_lmdb_store(tmp_path, TABLES, options) as store:
        assert not store._env.flags()["sync"]  # white-box, as above
        await put_many(store, "a", {b"k": b"v"})
        assert store.get("a", b"k") == b"v"


async def test_damaged_meta_pages_refuse_to_open_and_touch_nothing(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k": b"v" * 1000})
    data_file = tmp_path / "data.mdb"
    content = bytearray(data_file.read_bytes())
    content[: 8 * KIB] = bytes((i * 7 + 3) % 251 for i in range(8 * KIB))
    data_file.write_bytes(bytes(content))
    damaged = data_file.read_bytes()

    for _ in range(2):  # the failed open released the lock, so the second attempt gets here too
        with pytest.raises(StorageCorrupted, match="damaged"):
            async with open_lmdb_store(tmp_path, TABLES):
                pass  # pragma: no cover
    assert data_file.read_bytes() == damaged


async def test_full_disk_gives_storage_full_and_stays_usable(tmp_path: Path) -> None:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command to make a size-limited tmpfs")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        options = LmdbOptions(map_size=64 * KIB)  # no max_map_size: grow until the disk is full
        acked: dict[bytes, bytes] = {}
        async with open_lmdb_store(mount_point / "data", TABLES, options) as store:
            with pytest.raises(StorageFull, match=r"disk holding .* is full"):
                for i in range(100):
                    items = {b"%03d" % i: bytes([i]) * (64 * KIB)}
                    await put_many(store, "a", items)
                    acked.update(items)
            assert 0 < len(acked) < 100
            # Reads still work and every acknowledged record is intact.
            assert dict(store.scan("a")) == acked
            assert store.statistics().map_grows > 0
        async with open_lmdb_store(mount_point / "data", TABLES, options) as store:
            assert dict(store.scan("a")) == acked
            # Once space is freed (deleting reuses pages inside the file), writes go on.
            batch = Batch()
            for key in list(acked)[:3]:
                batch.delete("a", key)
            await store.commit(batch)
            await put_many(store, "a", {b"after": b"small"})
            assert store.get("a", b"after") == b"small"
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


async def test_commit_cancelled_while_in_flight_still_lands(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        returned = False

        async def committer(*, task_status: trio.TaskStatus[trio.CancelScope]) -> None:
            nonlocal returned
            with trio.CancelScope() as scope:
                task_status.started(scope)
                # started() does not yield: this runs until commit() parks in the writer.
                await put_many(store, "a", {b"k": b"v"})
                returned = True
                await trio.lowlevel.checkpoint()  # the cancellation arrives here
            assert scope.cancelled_caught

        async with trio.open_nursery() as nursery:
            scope = await nursery.start(committer)
            scope.cancel()
        assert returned
        assert store.get("a", b"k") == b"v"


async def test_commit_in_a_cancelled_scope_writes_nothing(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES) as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await put_many(store, "a", {b"k": b"v"})
        assert scope.cancelled_caught
        assert store.get("a", b"k") is None
        assert store.statistics().batches == 0


async def test_readers_table_full_is_an_error_not_a_crash(tmp_path: Path) -> None:
    async with open_lmdb_store(tmp_path, TABLES, LmdbOptions(max_readers=2)) as store:
        await put_many(store, "a", {b"k": b"v"})
        with store.snapshot() as first, store.snapshot() as second:
            assert first.get("a", b"k") == second.get("a", b"k") == b"v"
            with pytest.raises(StorageError, match="reader slots"):
                store.get("a", b"k")
            with pytest.raises(StorageError, match="reader slots"), store.snapshot():
                pass  # pragma: no cover
        # The slots came back.
        assert store.get("a", b"k") == b"v"
        with store.snapshot() as snapshot:
            assert snapshot.scan("a") == [(b"k", b"v")]


async def test_reopen_after_the_holder_was_killed_with_a_read_open(tmp_path: Path) -> None:
    """SIGKILL a node holding a read transaction: the lock dies with it and the reader slot
    does not leak."""
    async with open_lmdb_store(tmp_path, TABLES) as store:
        await put_many(store, "a", {b"k": b"v"})
    script = (
        "import sys, trio, storage\n"
        "async def main():\n"
        "    async with storage.open_lmdb_store(sys.argv[1], ['a', 'b']) as store:\n"
        "        with store.snapshot() as snapshot:\n"
        "            assert snapshot.get('a', b'k') == b'v'\n"
        "            print('ready', flush=True)\n"
        "            sys.stdin.read()  # hold the read transaction until killed\n"
        "trio.run(main)\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
    )
    process = await trio.lowlevel.open_process(
        [sys.executable, "-c", script, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stdout is not None
        output = b""
        while b"ready" not in output:
            chunk = await process.stdout.receive_some()
            assert chunk, "the holder exited before it was ready"
            output += chunk
        with pytest.raises(DataDirLocked):
            async with open_lmdb_store(tmp_path, TABLES):
                pass  # pragma: no cover
    finally:
        process.kill()
        await process.wait()
        if process.stdin is not None:
            await process.stdin.aclose()
        if process.stdout is not None:
            await process.stdout.aclose()
    async with open_lmdb_store(tmp_path, TABLES) as store:
        # LMDB resets the reader table when the first process opens the environment, so the
        # dead reader is gone before reader_check() runs; either way no slot leaks.
        assert store.statistics().stale_readers_cleared >= 0
        assert "(no active readers)" in store._env.readers()  # white-box, as above
        await put_many(store, "a", {b"k2": b"v2"})
        assert store.scan("a") == [(b"k", b"v"), (b"k2", b"v2")]


async def test_network_filesystem_gives_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import storage._lmdb as lmdb_module

    monkeypatch.setattr(lmdb_module, "_filesystem_type", lambda path: "nfs4")
    with caplog.at_level(logging.WARNING, logger=lmdb_module.__name__):
        async with open_lmdb_store(tmp_path, TABLES) as store:
            await put_many(store, "a", {b"k": b"v"})
    assert any("nfs4 filesystem" in record.getMessage() for record in caplog.records)


def test_filesystem_type_of_a_local_directory(tmp_path: Path) -> None:
    import storage._lmdb as lmdb_module

    fstype = lmdb_module._filesystem_type(str(tmp_path))
    if not Path("/proc/mounts").exists():
        assert fstype is None
    else:
        assert fstype is not None
        assert fstype not in lmdb_module._NETWORK_FS


def test_checksum_catches_every_single_byte_flip() -> None:
    """RELIABILITY §3: bit rot in a value is detected every time (CRC32 catches any error
    confined to one byte, including in the checksum itself)."""
    from storage._lmdb import _seal, _unseal

    rng = random.Random(20240601)
    for _ in range(1000):
        payload = rng.randbytes(rng.randrange(0, 200))
        stored = bytearray(_seal(payload))
        assert _unseal(bytes(stored), "a", b"k") == payload
        at = rng.randrange(len(stored))
        stored[at] ^= rng.randrange(1, 256)
        with pytest.raises(StorageCorrupted, match="table 'a' key 6b"):
            _unseal(bytes(stored), "a", b"k")
    with pytest.raises(StorageCorrupted):
        _unseal(b"abc", "a", b"k")  # shorter than a checksum
