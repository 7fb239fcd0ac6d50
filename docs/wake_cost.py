#!/usr/bin/env python3
"""What waking a thread costs on this machine: two processes pass a byte back and forth over two pipes, 20 000
round trips, first both pinned to CPU 0 and then on CPUs 0 and 1. Each round trip is two wake-ups; across CPUs
each wakes a CPU that went idle while it waited, which on a virtual machine may mean a trip to the hypervisor
(BENCHMARKS.md, 2026-12-02 morning). Prints the wall time and the CPU time (both processes) per round trip.

    python3 docs/wake_cost.py
"""
import os
import resource
import sys
import time

ROUND_TRIPS = 20000


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def round_trips(echo_cpu):
    to_echo, from_main = os.pipe()
    to_main, from_echo = os.pipe()
    echo = os.fork()
    if echo == 0:
        os.sched_setaffinity(0, {echo_cpu})
        for _ in range(ROUND_TRIPS):
            os.write(from_echo, os.read(to_echo, 1))
        os._exit(0)
    os.sched_setaffinity(0, {0})
    cpu_before = own_cpu() + children_cpu()
    start = time.perf_counter()
    for _ in range(ROUND_TRIPS):
        os.write(from_main, b"x")
        os.read(to_main, 1)
    wall = time.perf_counter() - start
    os.waitpid(echo, 0)
    cpu = own_cpu() + children_cpu() - cpu_before
    for fd in (to_echo, from_main, to_main, from_echo):
        os.close(fd)
    return wall / ROUND_TRIPS * 1e6, cpu / ROUND_TRIPS * 1e6


def main():
    if os.cpu_count() < 2:
        sys.exit("needs two CPUs")
    for name, echo_cpu in [("same CPU", 0), ("across CPUs", 1)]:
        wall, cpu = round_trips(echo_cpu)
        print(f"{name}: {wall:.1f} µs wall, {cpu:.1f} µs CPU per round trip")


if __name__ == "__main__":
    main()
