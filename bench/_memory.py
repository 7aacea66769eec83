"""Resident memory of this process, as the kernel reports it."""

from __future__ import annotations

import resource

import attrs

_MIB = 1024 * 1024


@attrs.frozen(kw_only=True)
class Memory:
    """A reading of this process's memory, in MiB.

    `rss_mb` is VmRSS (what the process holds now), split into anonymous memory (the Python
    heap) and file-backed pages (mostly the LMDB memory map, which the kernel can drop at will).
    `peak_rss_mb` is VmHWM and `maxrss_mb` is `getrusage`'s ru_maxrss: the high-water mark of the
    whole process so far.
    """

    rss_mb: float
    rss_anon_mb: float
    rss_file_mb: float
    peak_rss_mb: float
    maxrss_mb: float


def _status_fields() -> dict[str, float]:
    """The ``kB`` fields of /proc/self/status, in MiB."""
    fields: dict[str, float] = {}
    with open("/proc/self/status", encoding="ascii", errors="replace") as status:
        for line in status:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                fields[name] = int(parts[0]) * 1024 / _MIB
    return fields


def read_memory() -> Memory:
    """Read the current memory figures (Linux)."""
    fields = _status_fields()
    # ru_maxrss is in KiB on Linux.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / _MIB
    return Memory(
        rss_mb=fields["VmRSS"],
        rss_anon_mb=fields.get("RssAnon", 0.0),
        rss_file_mb=fields.get("RssFile", 0.0) + fields.get("RssShmem", 0.0),
        peak_rss_mb=fields.get("VmHWM", fields["VmRSS"]),
        maxrss_mb=maxrss,
    )
