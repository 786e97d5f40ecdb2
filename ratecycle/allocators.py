"""Allocator settings for batch runs: memory a step frees is kept for the next step.

Rating a bucket allocates and frees about a gigabyte of short-lived arrays. By default
glibc (numpy's arrays) maps every array over 128 KiB afresh and unmaps it when freed, and
jemalloc (Polars' columns) hands freed pages back to the kernel within seconds; each page
is then faulted in and zeroed again by the next bucket. On the 2-core VM of bench/RESULTS.md,
rating the 10M-event bench month bucket after bucket in one process took 3.4 s of system
time beside 7.3 s of user time; with these settings, 0.3 s. Kept for reuse, the process's
memory stays at its high-water mark, which is what a batch job is sized for anyway.

Buckets rated on two threads allocate from glibc's per-thread arenas, which unmap a whole
heap of theirs as soon as it is free, whatever the trim threshold; with one arena for all
threads, the 10 buckets of the 10M month rated two at a time took 0.19-0.29 s of system time
against 0.37-1.37 s, and 1.86-2.14 s of wall time against 2.10-2.51 s (4 runs each).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# Polars' jemalloc reads this when it starts: before Polars is imported.
JEMALLOC_ENV = "_RJEM_MALLOC_CONF"
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"  # never hand freed pages back

# glibc mallopt parameters (malloc.h) and their values
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
GLIBC_SETTINGS = (
    (M_MMAP_THRESHOLD, 32 << 20),  # glibc's maximum: arrays below it come from the heap
    (M_TRIM_THRESHOLD, 1 << 40),   # freed heap memory is kept, not trimmed
    (M_TOP_PAD, 64 << 20),         # the heap grows in steps of 64 MiB
    (M_ARENA_MAX, 1),              # threads share that heap: no arenas of their own
)


def keep_freed_memory() -> bool:
    """Apply the settings to this process and to the processes it starts (the environment
    passes them on; a spawned worker calls this again for glibc). Returns whether Polars'
    allocator will see them: only if Polars is not imported yet. A setting the user made
    in the environment is left as it is."""
    os.environ.setdefault(JEMALLOC_ENV, JEMALLOC_CONF)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):  # not glibc (musl has no mallopt): defaults stay
            pass
        else:
            for parameter, value in GLIBC_SETTINGS:
                mallopt(parameter, value)
    return "polars" not in sys.modules
