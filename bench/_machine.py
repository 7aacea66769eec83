"""Facts about the machine and the software a benchmark ran on, for the report's header."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import attrs
import lmdb


@attrs.frozen(kw_only=True)
class Filesystem:
    """The mount that holds a directory (from /proc/mounts)."""

    type: str
    device: str
    mount_point: str


@attrs.frozen(kw_only=True)
class MachineFacts:
    """What the numbers depend on besides the code under test."""

    cpu_count: int
    cpus_usable: int
    cpu_model: str
    platform: str
    python: str
    versions: dict[str, str]
    data_dir: str
    filesystem: Filesystem | None
    git_commit: str | None
    git_dirty: bool | None

    def header(self) -> list[str]:
        """Human-readable lines for the top of the table."""
        fs = self.filesystem
        where = f"{fs.type} ({fs.device} on {fs.mount_point})" if fs else "unknown filesystem"
        packages = ", ".join(f"{name} {version}" for name, version in self.versions.items())
        commit = "unknown commit"
        if self.git_commit:
            commit = self.git_commit[:12] + (" (uncommitted changes)" if self.git_dirty else "")
        return [
            f"machine : {self.cpu_count} CPUs ({self.cpus_usable} usable), {self.cpu_model},"
            f" {self.platform}",
            f"python  : {self.python}; {packages}",
            f"data dir: {self.data_dir} on {where}",
            f"code    : {commit}",
        ]


def _unescape_mount_field(field: str) -> str:
    # /proc/mounts escapes spaces, tabs, newlines and backslashes as octal (\040 and so on).
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def filesystem_of(path: str | os.PathLike[str]) -> Filesystem | None:
    """The mount holding `path`: the longest mount point that is a prefix of its real path."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as mounts:
            lines = mounts.readlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best: Filesystem | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = _unescape_mount_field(fields[1])
        prefix = mount_point.rstrip("/") + "/"
        if (real == mount_point or real.startswith(prefix)) and (
            best is None or len(mount_point) > len(best.mount_point)
        ):
            best = Filesystem(type=fields[2], device=fields[0], mount_point=mount_point)
    return best


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git(repo: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def machine_facts(data_dir: str | os.PathLike[str]) -> MachineFacts:
    """Collect the facts for a benchmark whose data lives under `data_dir`."""
    repo = Path(__file__).resolve().parent.parent
    lmdb_lib = ".".join(str(part) for part in lmdb.version())
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return MachineFacts(
        cpu_count=os.cpu_count() or 0,
        cpus_usable=len(os.sched_getaffinity(0)),
        cpu_model=_cpu_model(),
        platform=f"{platform.system()} {platform.release()} {platform.machine()}",
        python=f"{platform.python_implementation()} {sys.version.split()[0]}",
        versions={
            "trio": _version("trio"),
            "lmdb": f"{_version('lmdb')} (LMDB {lmdb_lib})",
            "msgpack": _version("msgpack"),
            "attrs": _version("attrs"),
        },
        data_dir=str(Path(data_dir).resolve()),
        filesystem=filesystem_of(data_dir),
        git_commit=_git(repo, "rev-parse", "HEAD"),
        git_dirty=None if status is None else bool(status),
    )
