"""The daemon caps glibc's malloc arenas: with one arena per allocating thread (glibc's default, up to
8 per core), memory one request thread frees is not reused by the others and RSS kept climbing through
the HTTP fuzz (scripts/bench_faults.py). Counted with malloc_info() in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

# Eight threads allocating at once, as waitress' request threads do; then glibc lists its heaps.
COUNT_ARENAS = textwrap.dedent("""
    import ctypes, os, sys, tempfile, threading
    sys.path.insert(0, {root!r})
    if sys.argv[1] == "limited":
        from device.heap import limit_arenas
        assert limit_arenas()
    barrier = threading.Barrier(8)
    kept = []
    def allocate():
        barrier.wait()
        kept.extend(bytearray(300_000) for _ in range(20))
    threads = [threading.Thread(target=allocate) for _ in range(8)]
    for thread in threads: thread.start()
    for thread in threads: thread.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    path = os.path.join(tempfile.mkdtemp(), "malloc_info.xml")
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    print(open(path).read().count("<heap nr="))
""")


def arenas(mode: str) -> int:
    script = COUNT_ARENAS.format(root=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60, env={})
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_the_daemon_limits_malloc_arenas_to_two():
    assert arenas("default") > 2  # what the cap changes: glibc gives concurrent threads arenas of their own
    assert arenas("limited") <= 2
