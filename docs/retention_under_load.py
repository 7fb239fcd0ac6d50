# Ingestion under load while the server's start-up retention run deletes old data and then scrubs the pages
# (a VACUUM in builds before the scrub). Drives the server with wrk (Debian package), on a copy of a seeded directory.
# usage: python3 docs/retention_under_load.py BINARY SEEDED_DIR PORT SECONDS
import subprocess, sys, os, time, sqlite3, shutil, json, re, tempfile
binary, seeded, port, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
d = tempfile.mkdtemp(dir="/tmp"); shutil.rmtree(d); shutil.copytree(seeded, d)
db = sqlite3.connect(os.path.join(d, "assent.db"))
ids = [r[0] for r in db.execute("SELECT DISTINCT consent_id FROM consents WHERE action='accept_all' ORDER BY created_at DESC LIMIT 2000")]
db.close()
ids = [i.hex() if isinstance(i, bytes) else (format(i, '032x') if isinstance(i, int) else i) for i in ids]
q = lambda xs: ",".join(json.dumps(x) for x in xs)
script = os.path.join(tempfile.mkdtemp(), "s.lua")
open(script, "w").write(f"""local ids = {{{q(ids)}}}
local paths = {{"/", "/pricing", "/blog", "/docs", "/about"}}
request = function()
  local body = '{{"site":"shop","consent_id":"' .. ids[math.random(#ids)] .. '","name":"pageview","url":"https://shop.test' .. paths[math.random(#paths)] .. '","referrer":"https://www.google.com/","screen_width":1440}}'
  return wrk.format("POST", "/api/event", {{["Content-Type"] = "text/plain", ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}}, body)
end
""")
log = open(d + ".log", "w")
p = subprocess.Popen([binary, "--data-dir", d, "--listen", f"127.0.0.1:{port}", "--rate-limit", "0", "serve"], stdout=subprocess.DEVNULL, stderr=log)
import http.client
for _ in range(400):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); c.getresponse().read(); break
    except Exception: time.sleep(0.01)
t0 = time.time()
w = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{secs}s", "--latency", "--timeout", "30s", "-s", script, f"http://127.0.0.1:{port}/api/event"], stdout=subprocess.PIPE, text=True)
print("wrk started", time.strftime("%H:%M:%S", time.gmtime(t0)), t0)
out = w.communicate()[0]
p.terminate(); p.wait(); log.close()
print(out)
print(open(log.name).read()[-3000:])
db = sqlite3.connect(os.path.join(d, "assent.db"))
print("events", db.execute("select count(*) from events").fetchone())
shutil.rmtree(d)
