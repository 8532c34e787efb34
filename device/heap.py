"""glibc's heap, tuned for a daemon that runs for months on a small board.

Two habits of glibc's malloc cost the daemon RSS it never uses again:
- every thread that allocates gets its own arena (up to 8 per core), and what one arena frees the
  others do not reuse: with 8 request threads and request bodies from bytes to 256 KiB, RSS kept
  climbing through an HTTP fuzz. Two arenas are plenty: model calls run one at a time on the
  inference worker, so request threads rarely allocate at the same instant;
- freed pages stay mapped until trimmed: a dropped ONNX Runtime session (a model reload, an OTA
  swap) stayed in RSS.
Both functions do nothing without glibc (musl, macOS); an operator's MALLOC_ARENA_MAX wins.
"""

from __future__ import annotations

import ctypes
import gc
import os

M_ARENA_MAX = -8  # mallopt() parameter number (glibc's malloc.h)
DAEMON_ARENAS = 2


def limit_arenas(count: int = DAEMON_ARENAS) -> bool:
    """Cap malloc arenas for the threads created from now on; True when applied. Call it first thing."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None or os.environ.get("MALLOC_ARENA_MAX"):
        return False
    return bool(mallopt(M_ARENA_MAX, count))


def return_freed_memory() -> None:
    """Hand freed heap pages back to the OS (malloc_trim), e.g. once a dropped model's session is gone:
    10 reloads of the shipped model grew RSS by 30-50 MB without it, ~6 MB with it
    (tests/daemon/test_reload_memory.py)."""
    gc.collect()  # the session is freed when its last reference goes, which a cycle may hold
    trim = _glibc_function("malloc_trim")
    if trim is not None:
        trim(0)


def _glibc_function(name: str):
    try:
        process = ctypes.CDLL(None)  # the symbols the process already loaded, libc's among them
    except OSError:
        return None
    return getattr(process, name, None)
