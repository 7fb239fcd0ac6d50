#!/usr/bin/env python3
"""Events against /healthz with wrk -t2 -c32 on a release binary started here (a temporary data directory, an
unused loopback port, the rate limit off), with the WAL's restarts (the checkpoint sequence in its header)
counted over the events' run and the writer's batch and commit histograms read from /metrics at the end. Used to
compare builds that differ in how SQLite syncs and checkpoints (BENCHMARKS.md, 2026-12-02).

    python3 docs/wal_bench.py target/release/assent [SECONDS]
"""
import http.client
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
CONSENT_IDS = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(port, seconds=60):
    """Polls /healthz until it answers 200 (each poll waits at most 5 s, then 0.1 s between polls)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("the server did not answer /healthz")


def mint_consent_ids(port, count=CONSENT_IDS):
    """`count` consent ids that accepted everything on the demo site."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    ids = []
    for _ in range(count):
        conn.request("POST", "/api/consent", body='{"site":"demo","revision":1,"action":"accept_all"}',
                     headers={"Content-Type": "application/json"})
        ids.append(json.loads(conn.getresponse().read())["consent_id"])
    return ids


def event_script(ids):
    """A wrk script cycling through a pool of page views formatted once per thread (see examples/bench/load.rs)."""
    return f"""local ids = {{{",".join(json.dumps(i) for i in ids)}}}
local paths = {{"/", "/pricing", "/blog", "/docs", "/about"}}
local pool = {{}}
local next_request = 0
init = function(args)
  math.randomseed(os.time() * 100 + math.random(1000))
  for i = 1, 20000 do
    local body = '{{"site":"demo","consent_id":"' .. ids[math.random(#ids)] ..
      '","name":"pageview","url":"http://localhost' .. paths[math.random(#paths)] ..
      '","referrer":"https://www.google.com/","screen_width":1440}}'
    pool[i] = wrk.format("POST", "/api/event", {{["Content-Type"] = "text/plain", ["User-Agent"] = "{UA}"}}, body)
  end
end
request = function()
  next_request = next_request % #pool + 1
  return pool[next_request]
end
"""


def wrk(url, seconds, script=None):
    command = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", url] + (["-s", script] if script else [])
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    worst = re.search(r"Latency\s+\S+\s+\S+\s+(\S+)", out).group(1)
    return rate, p99, worst


def checkpoint_sequence(wal_path):
    with open(wal_path, "rb") as wal:
        header = wal.read(32)
    return struct.unpack(">I", header[12:16])[0]


def main():
    binary = sys.argv[1]
    seconds = sys.argv[2] if len(sys.argv) > 2 else "8"
    data = tempfile.mkdtemp(prefix="assent-wal-bench-")
    port = free_port()
    server = subprocess.Popen([binary, "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--rate-limit", "0"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port)
        script = os.path.join(data, "events.lua")
        with open(script, "w") as f:
            f.write(event_script(mint_consent_ids(port)))
        events_url = f"http://127.0.0.1:{port}/api/event"
        wrk(events_url, 2, script)  # warm-up: the WAL reaches its size, the visits open
        wal = os.path.join(data, "assent.db-wal")
        before = checkpoint_sequence(wal)
        events = wrk(events_url, seconds, script)
        restarts = checkpoint_sequence(wal) - before
        health = wrk(f"http://127.0.0.1:{port}/healthz", seconds)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(data)
    for line in metrics.splitlines():
        if line.startswith(("assent_writer_batch_size", "assent_writer_commit_seconds")):
            print("   ", line)
    print(f"events {events[0]:.0f}/s p99 {events[1]} max {events[2]}; /healthz {health[0]:.0f}/s p99 {health[1]}; "
          f"ratio {events[0] / health[0]:.2f}; WAL restarts during the events: {restarts}")


if __name__ == "__main__":
    main()
