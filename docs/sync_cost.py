#!/usr/bin/env python3
"""What one sync costs on this machine's disk: 2 000 rounds of a `pwrite` and an `fsync` (or `fdatasync`) on a
file in DIR (default /tmp), overwriting in place and extending the file; wall time and the process's CPU time
per round (BENCHMARKS.md, 2026-12-02); then 1 to 4 threads syncing files of their own at the same time, to
see whether the disk overlaps flushes (BENCHMARKS.md, 2026-12-02 afternoon). The files are removed at the end.

    python3 docs/sync_cost.py [DIR]
"""
import os
import sys
import tempfile
import threading
import time

ROUNDS = 2000


def measure(fd, sync, size, offset_of):
    block = b"y" * size
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(ROUNDS):
        os.pwrite(fd, block, offset_of(i, size))
        sync(fd)
    return (time.perf_counter() - wall) / ROUNDS * 1e6, (time.process_time() - cpu) / ROUNDS * 1e6


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
    fd, path = tempfile.mkstemp(dir=directory, prefix="sync-cost-")
    try:
        area = 64 * 1024 * ROUNDS
        os.pwrite(fd, b"\0" * area, 0)
        os.fsync(fd)
        for name, sync in [("fsync", os.fsync), ("fdatasync", os.fdatasync)]:
            for size in [4096, 16384, 65536]:
                wall, cpu = measure(fd, sync, size, lambda i, n: (i * n) % (area - n))
                print(f"{name} overwriting {size // 1024} KiB: {wall:.1f} µs wall, {cpu:.1f} µs CPU")
        os.ftruncate(fd, 0)
        wall, cpu = measure(fd, os.fsync, 16384, lambda i, n: i * n)
        print(f"fsync extending the file by 16 KiB: {wall:.1f} µs wall, {cpu:.1f} µs CPU")
    finally:
        os.close(fd)
        os.unlink(path)

    for threads in range(1, 5):
        rate, per_sync = concurrent_syncs(directory, threads)
        print(f"{threads} thread(s) syncing at once: {rate:.0f} syncs/s in all, {per_sync:.0f} µs per sync")


def concurrent_syncs(directory, threads):
    """`threads` threads, each overwriting 8 KiB of a file of its own and `fdatasync`ing it ROUNDS times (the
    calls release Python's lock); the syncs per second of all of them together and the wall time per sync."""
    paths = []
    for _ in range(threads):
        fd, path = tempfile.mkstemp(dir=directory, prefix="sync-cost-")
        os.pwrite(fd, b"\0" * 8192 * 64, 0)
        os.fsync(fd)
        os.close(fd)
        paths.append(path)

    def sync_loop(path):
        fd = os.open(path, os.O_RDWR)
        block = b"y" * 8192
        for i in range(ROUNDS):
            os.pwrite(fd, block, (i % 64) * 8192)
            os.fdatasync(fd)
        os.close(fd)

    workers = [threading.Thread(target=sync_loop, args=(path,)) for path in paths]
    started = time.perf_counter()
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        for path in paths:
            os.unlink(path)
    wall = time.perf_counter() - started
    return threads * ROUNDS / wall, wall / ROUNDS * 1e6


if __name__ == "__main__":
    main()
