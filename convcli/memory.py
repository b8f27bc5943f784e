"""How much memory this process may still use, from what Linux tells it.

The command line checks a job's estimate (:func:`convcli.pipeline.estimate_bytes`)
against this before filtering, so that a job too big for the machine, the
process's address-space limit (``ulimit -v``) or its cgroup is refused with the
numbers instead of being killed part way.
"""

from __future__ import annotations

import os


def available_bytes() -> int | None:
    """Bytes this process may still allocate: the least of the machine's MemAvailable,
    the address-space limit (ulimit -v, RLIMIT_AS) less what is mapped, and the
    cgroup v2 memory.max less memory.current; None when nothing is known."""
    found = []
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            found.append(max(0, soft - _mapped_bytes()))
    except (ImportError, OSError, ValueError):
        pass
    cgroup = _cgroup_room()
    if cgroup is not None:
        found.append(cgroup)
    return min(found) if found else None


def _mapped_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup v2, if readable and limited."""
    try:
        with open("/proc/self/cgroup") as cgroups:
            path = next(
                (line.strip()[3:] for line in cgroups if line.startswith("0::")),
                None,
            )
        if path is None:
            return None
        with open("/proc/self/mounts") as mounts:
            roots = [line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]]
        for root in roots:
            directory = os.path.join(root, path.lstrip("/"))
            try:
                with open(os.path.join(directory, "memory.max")) as f:
                    limit = f.read().strip()
                with open(os.path.join(directory, "memory.current")) as f:
                    current = int(f.read().strip())
            except OSError:
                continue
            if limit == "max":
                return None
            return max(0, int(limit) - current)
    except (OSError, ValueError, IndexError):
        pass
    return None
