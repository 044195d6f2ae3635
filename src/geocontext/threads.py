"""How many CPU threads the kit's arithmetic uses, and how they wait for work.

Why: torch runs its CPU kernels on OpenMP threads (GNU libgomp), which by default spin for a while at
the end of every parallel region before they sleep. When another process keeps one of the cores busy, a
spinning thread holds the core the thread it waits for needs, so each of the thousands of small parallel
regions of an epoch waits for a scheduler time slice: a linear head took 42.7 s instead of 0.4 s beside
one busy process (issue 25; BENCHMARKS.md section 12). Threads that sleep at once (OMP_WAIT_POLICY=PASSIVE)
remove that, at a few microseconds per region on an idle machine. libgomp reads the policy when it is
loaded, so it is set before torch is imported (geocontext/__init__.py), unless the user chose one
(OMP_WAIT_POLICY or GOMP_SPINCOUNT).

How many: the cores this process may use, i.e. its CPU affinity capped by its cgroup's CPU quota (a
container's --cpus, a Kubernetes CPU limit), which torch's own default (every core the machine has)
ignores; or the number given by `geocontext --threads N` or GEOCONTEXT_THREADS.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

ENV = "GEOCONTEXT_THREADS"


def prepare_environment(environ=os.environ) -> None:
    """Threads that sleep when they have no work, unless the user chose otherwise. Call before torch loads."""
    if "OMP_WAIT_POLICY" not in environ and "GOMP_SPINCOUNT" not in environ:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _cgroup_folders(root: Path, membership: Path) -> list[Path]:
    """The cgroup folders whose CPU limits bind this process: its own and their parents (cgroup v2, and
    v1's cpu controller), and the mount's top (inside a container the own path is often not visible)."""
    folders = [root, root / "cpu", root / "cpu,cpuacct"]
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return folders
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        names = controllers.split(",")
        if controllers and "cpu" not in names:
            continue
        base = root if not controllers else root / controllers
        folder = base / path.strip().lstrip("/")
        while folder != base and base in folder.parents:
            folders.append(folder)
            folder = folder.parent
    return folders


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup", membership: str | Path = "/proc/self/cgroup") -> float | None:
    """The CPU quota (in cores) of this process's cgroups, the tightest one; None without one."""
    limits = []
    for folder in _cgroup_folders(Path(root), Path(membership)):
        try:
            if (folder / "cpu.max").is_file():  # cgroup v2: "QUOTA PERIOD" or "max PERIOD"
                quota, period = (folder / "cpu.max").read_text().split()[:2]
                if quota != "max":
                    limits.append(int(quota) / int(period))
            elif (folder / "cpu.cfs_quota_us").is_file():  # cgroup v1: quota -1 means none
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                if quota > 0:
                    limits.append(quota / int((folder / "cpu.cfs_period_us").read_text()))
        except (OSError, ValueError):
            continue
    return min(limits) if limits else None


def usable_cores(root: str | Path = "/sys/fs/cgroup", membership: str | Path = "/proc/self/cgroup") -> int:
    """The cores this process may run on (affinity), capped by its cgroup's CPU quota, at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root, membership)
    if limit is not None:
        cores = min(cores, math.ceil(limit - 1e-9))
    return max(1, cores)


def chosen(requested: int | None = None) -> int:
    """--threads, else GEOCONTEXT_THREADS, else the usable cores."""
    if requested is None and os.environ.get(ENV, "").strip():
        text = os.environ[ENV].strip()
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{ENV} must be a whole number of threads >= 1, got {text!r}")
        requested = int(text)
    if requested is None:
        return usable_cores()
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"--threads must be a whole number >= 1, got {requested!r}")
    return requested


def configure(requested: int | None = None) -> int | None:
    """Give torch `chosen(requested)` threads: through OMP_NUM_THREADS when torch is not loaded yet (the
    verbs load it later, or never: no start-up cost for those that do not), else set directly. A user's
    own OMP_NUM_THREADS stands when nothing was requested. torch's inter-op pool is left alone: its idle
    threads block, they never spin."""
    if requested is None and not os.environ.get(ENV, "").strip() and os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    n = chosen(requested)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)
    return n
