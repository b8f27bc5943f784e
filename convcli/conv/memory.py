"""How much memory this process may still use, from what Linux tells it.

The command line checks a job's estimate (:func:`convcli.jobs.pipeline.estimate_bytes`)
against this before filtering, so that a job too big for the machine, the
process's address-space limit (``ulimit -v``) or its cgroup is refused with the
numbers instead of being killed part way; the library allocates its large
results through :func:`allocate`, which refuses what cannot fit before trying.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from convcli.errors import ResourceError


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


@functools.lru_cache(maxsize=1)
def _cgroup_directories() -> tuple[str, ...]:
    """Where this process's cgroup v2 may be mounted: read once (a batch checks memory
    before every image, and the mount table is most of what that took)."""
    try:
        with open("/proc/self/cgroup") as cgroups:
            path = next(
                (line.strip()[3:] for line in cgroups if line.startswith("0::")),
                None,
            )
        if path is None:
            return ()
        with open("/proc/self/mounts") as mounts:
            roots = [line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]]
    except (OSError, ValueError, IndexError):
        return ()
    return tuple(os.path.join(root, path.lstrip("/")) for root in roots)


def _cgroup_room() -> int | None:
    """memory.max - memory.current of this process's cgroup v2, if readable and limited."""
    try:
        for directory in _cgroup_directories():
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


def physical_bytes() -> int | None:
    """The machine's physical memory in bytes, if the OS says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def allocate(shape: tuple[int, ...], dtype, what: str) -> np.ndarray:
    """``numpy.empty(shape)``, or a ResourceError saying what could not be allocated.

    Sizes past the machine's physical memory are refused before trying: Linux may
    hand out such an array and then kill the process while it is being filled.
    NumPy's own MemoryError (and its "array is too big") become the same error.
    """
    size = 1
    for dim in shape:
        size *= int(dim)
    nbytes = size * np.dtype(dtype).itemsize
    memory = physical_bytes()
    message = f"{what} {tuple(shape)} of {np.dtype(dtype)} would take {nbytes / 2**30:.3g} GiB"
    if memory is not None and nbytes > memory:
        raise ResourceError(
            f"{message}, more than this machine's {memory / 2**30:.3g} GiB of memory; "
            f"use a larger stride, less padding or a smaller input"
        )
    try:
        return np.empty(shape, dtype)
    except (MemoryError, ValueError):
        raise ResourceError(f"{message}, which cannot be allocated") from None


# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
_KEEP_BELOW = 32 << 20  # arrays smaller than this come from the heap, and are reused
_TRIM_ABOVE = 128 << 20  # free heap kept for the next image, at most


def mallopt(parameter: int, value: int) -> bool:
    """glibc's ``mallopt`` for the whole process; False where there is none (musl,
    macOS) or it refused."""
    try:
        import ctypes

        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(function(parameter, value))


def reuse_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed arrays of under 32 MiB for reuse (and at most
    128 MiB of free heap); True when it took the setting.

    For a process that filters image after image: by default, arrays of a few MiB
    are mapped fresh and returned on every image, and each 4 KiB page of them faults
    again when first written. A batch of 120 1024x768 JPEGs made 66,000-200,000 page
    faults and spent a third of its CPU time in the kernel; with this, 16,000. Larger
    arrays are still mapped and returned at once, so a batch's peak memory is unchanged.
    Not for a library to call: it changes the allocator of the whole process (a Dask
    worker wants the opposite, see ``convcli.scale.blocks.return_freed_memory``).
    """
    return mallopt(M_MMAP_THRESHOLD, _KEEP_BELOW) and mallopt(M_TRIM_THRESHOLD, _TRIM_ABOVE)
