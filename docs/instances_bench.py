#!/usr/bin/env python3
"""Ingestion on one or several Assent instances, measured with wrk (Debian package) from outside.

    python3 docs/instances_bench.py BINARY SECONDS [DATABASE_URL [INSTANCES]]

Without DATABASE_URL: one server on a temporary SQLite directory. With it: INSTANCES servers (default 1),
each with a data directory of its own, on that PostgreSQL database (which should be empty: the first start
creates the demo site). Each server gets its own wrk (-t1, 32/INSTANCES connections) at the same time, sending
consented page views (the README's simple mix) under 2000 consent ids; then /healthz of the first server alone
as the baseline. Prints one Markdown row. Servers and wrk talk on 127.0.0.1 only and stop by themselves.
"""
import http.client, json, os, re, subprocess, sys, tempfile, time

binary, seconds = sys.argv[1], sys.argv[2]
url = sys.argv[3] if len(sys.argv) > 3 else None
count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

def start(port):
    d = tempfile.mkdtemp()
    args = [binary, "--data-dir", d, "--listen", f"127.0.0.1:{port}", "--rate-limit", "0"]
    if url:
        args += ["--database-url", url]
    p = subprocess.Popen(args + ["serve"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        try:
            c = http.client.HTTPConnection("127.0.0.1", port)
            c.request("GET", "/healthz")
            if c.getresponse().status == 200:
                return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")

ports = [18300 + i for i in range(count)]
servers = [start(ports[0])]
servers += [start(p) for p in ports[1:]]
c = http.client.HTTPConnection("127.0.0.1", ports[0])
ids = []
for _ in range(2000):
    c.request("POST", "/api/consent", body='{"site":"demo","revision":1,"action":"accept_all"}',
              headers={"Content-Type": "text/plain"})
    ids.append(json.loads(c.getresponse().read())["consent_id"])
script = os.path.join(tempfile.mkdtemp(), "events.lua")
with open(script, "w") as f:
    f.write("local ids = {%s}\nlocal paths = {\"/\", \"/pricing\", \"/blog\", \"/docs\", \"/about\"}\n"
            % ",".join(json.dumps(i) for i in ids))
    f.write("request = function()\n  local body = '{\"site\":\"demo\",\"consent_id\":\"' .. ids[math.random(#ids)] .. "
            "'\",\"name\":\"pageview\",\"url\":\"http://localhost' .. paths[math.random(#paths)] .. "
            "'\",\"referrer\":\"https://www.google.com/\",\"screen_width\":1440}'\n"
            "  return wrk.format(\"POST\", \"/api/event\", {[\"Content-Type\"] = \"text/plain\", "
            "[\"User-Agent\"] = \"%s\"}, body)\nend\n" % UA)

def wrk(port, path, threads, conns, lua=None):
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency"]
    cmd += (["-s", lua] if lua else []) + [f"http://127.0.0.1:{port}{path}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

def parse(out):
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    non = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p99, int(non.group(1)) if non else 0

runs = [wrk(p, "/api/event", 1 if count > 1 else 2, 32 // count, script) for p in ports]
results = [parse(r.communicate()[0]) for r in runs]
health = parse(wrk(ports[0], "/healthz", 2, 32).communicate()[0])
total = sum(r[0] for r in results)
rss = []
for s in servers:
    status = open(f"/proc/{s.pid}/status").read()
    rss.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) // 1024)
for s in servers:
    s.terminate()
    s.wait()
store = "SQLite" if not url else f"PostgreSQL, {count} instance{'s' if count > 1 else ''}"
print(f"| {store} | {total:,.0f} | {' / '.join(r[1] for r in results)} | "
      f"{sum(r[2] for r in results)} | {health[0]:,.0f} | {total / health[0]:.2f} | {' / '.join(map(str, rss))} MB |")
