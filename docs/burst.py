# Burst: consented events from 256 connections for SECONDS (far past what the writer commits), rate limit off.
# Prints the answers by status, the server's memory each second, and whether every 202 is in the database.
# usage: python3 docs/burst.py BINARY PORT SECONDS
import subprocess, sys, os, time, json, tempfile, sqlite3, http.client, re
binary, port, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
d = tempfile.mkdtemp()
p = subprocess.Popen([binary, "--data-dir", d, "--listen", f"127.0.0.1:{port}", "--rate-limit", "0", "serve"],
                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "server.log"), "w"))
for _ in range(400):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); c.getresponse().read(); break
    except Exception: time.sleep(0.02)
ids = []
c = http.client.HTTPConnection("127.0.0.1", port)
for i in range(500):
    c.request("POST", "/api/consent", body='{"site":"demo","revision":1,"action":"accept_all"}', headers={"Content-Type": "text/plain"})
    ids.append(json.loads(c.getresponse().read())["consent_id"])
script = os.path.join(d, "burst.lua")
open(script, "w").write("""local ids = {__IDS__}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) s202 = 0; s429 = 0; s503 = 0; other = 0 end
request = function()
  local body = '{"site":"demo","consent_id":"' .. ids[math.random(#ids)] .. '","name":"pageview","url":"http://localhost/p' .. math.random(50) .. '"}'
  return wrk.format("POST", "/api/event", {["Content-Type"] = "text/plain", ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}, body)
end
response = function(status, headers, body)
  if status == 202 then s202 = s202 + 1 elseif status == 429 then s429 = s429 + 1
  elseif status == 503 then s503 = s503 + 1 else other = other + 1 end
end
done = function(summary, latency, requests)
  local a, b, c, o = 0, 0, 0, 0
  for _, t in ipairs(threads) do a = a + t:get("s202"); b = b + t:get("s429"); c = c + t:get("s503"); o = o + t:get("other") end
  io.write(string.format("STATUS 202=%d 429=%d 503=%d other=%d\\n", a, b, c, o))
end
""".replace("__IDS__", ",".join(json.dumps(i) for i in ids)))
w = subprocess.Popen(["wrk", "-t2", "-c256", f"-d{secs}s", "--latency", "-s", script, f"http://127.0.0.1:{port}/api/event"],
                     stdout=subprocess.PIPE, text=True)
rss = []
while w.poll() is None:
    if p.poll() is not None:
        print("THE SERVER EXITED:", open(os.path.join(d, "server.log")).read()[-3000:]); break
    status = open(f"/proc/{p.pid}/status").read()
    rss.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) // 1024)
    time.sleep(1)
out = w.stdout.read()
c = http.client.HTTPConnection("127.0.0.1", port); c.request("GET", "/healthz"); healthz = c.getresponse().status
p.terminate(); p.wait()
print(out)
print("RSS MB each second:", rss)
print("healthz after:", healthz)
acked = int(re.search(r"STATUS 202=(\d+)", out).group(1))
stored = sqlite3.connect(os.path.join(d, "assent.db")).execute("SELECT COUNT(*) FROM events").fetchone()[0]
print(f"202 answers {acked}, events stored {stored}: {'every 202 stored' if stored >= acked else 'LOST ' + str(acked - stored)}")
