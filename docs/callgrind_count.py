#!/usr/bin/env python3
"""Instructions per request in the server's user space: the binary runs under `valgrind --tool=callgrind` (a
temporary data directory, an unused loopback port, the rate limit off); 200 consent ids are minted, then the
counters are zeroed and dumped around 20 s of page views (wrk -t1 -c32) and 20 s of /healthz. Prints each dump's
total over the requests wrk counted; the dumps (OUTDIR/cg.*) open with `callgrind_annotate --inclusive=yes`.
A binary built with frame pointers and symbols reads best (BENCHMARKS.md, 2026-12-02).

    python3 docs/callgrind_count.py target/release/assent OUTDIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wal_bench import event_script, free_port, mint_consent_ids, wait_until_up  # noqa: E402


def main():
    binary, out = sys.argv[1], os.path.abspath(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    data = tempfile.mkdtemp(prefix="assent-callgrind-")
    port = free_port()
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p",
         binary, "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--rate-limit", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def control(*args):
        subprocess.run(["callgrind_control", *args, str(server.pid)], stdout=subprocess.DEVNULL, check=True)

    def wrk(path, script=None):
        command = ["wrk", "-t1", "-c32", "-d20s", f"http://127.0.0.1:{port}{path}"] + (["-s", script] if script else [])
        out_text = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return int(re.search(r"(\d+) requests in", out_text).group(1))

    try:
        wait_until_up(port, seconds=240)  # valgrind starts slowly
        script = os.path.join(data, "events.lua")
        with open(script, "w") as f:
            f.write(event_script(mint_consent_ids(port, 200)))
        control("--zero")
        requests = {"events": wrk("/api/event", script)}
        control("--dump=events")
        control("--zero")
        requests["healthz"] = wrk("/healthz")
        control("--dump=healthz")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data)
    for name in sorted(os.listdir(out)):
        text = open(os.path.join(out, name), errors="replace").read()
        trigger = re.search(r"^desc: Trigger: dump (\w+)$", text, re.M)
        total = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if trigger and total and trigger.group(1) in requests:
            n = requests[trigger.group(1)]
            print(f"{trigger.group(1)}: {n} requests, {int(total.group(1)) / n:,.0f} instructions each ({name})")


if __name__ == "__main__":
    main()
