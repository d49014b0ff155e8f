#!/usr/bin/env python3
"""The reference workflow's harness reduced to its streaming loop, for
bench/harness_overhead to compare against: POST to Ollama's /api/generate
with stream on and decode every NDJSON line, the way the original Python
script did with requests (http.client when requests is not installed).

    harness_overhead_ref.py URL TOKENS

Prints one JSON object: the loop's CPU time and share of one core, and the
peak RSS of the interpreter (imports included, as a user would run it).
"""
import json
import resource
import sys
import time

url, tokens = sys.argv[1].rstrip("/"), int(sys.argv[2])
body = {"model": "fake:latest", "prompt": "Write a long story about a lighthouse keeper.",
        "stream": True, "options": {"num_predict": tokens, "temperature": 0, "seed": 42}}
try:
    import requests
    lib = "requests"
except ImportError:
    requests = None
    import http.client
    import urllib.parse
    lib = "http.client"

seen = 0
t0, c0 = time.monotonic(), time.process_time()
if requests:
    with requests.post(url + "/api/generate", json=body, stream=True, timeout=60) as r:
        for line in r.iter_lines():
            if line and json.loads(line).get("response"):
                seen += 1
else:
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    conn.request("POST", "/api/generate", json.dumps(body), {"Content-Type": "application/json"})
    for line in conn.getresponse():
        if line.strip() and json.loads(line).get("response"):
            seen += 1
wall, cpu = time.monotonic() - t0, time.process_time() - c0
rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rss_mb = rss_kib / (1024 * 1024) if sys.platform == "darwin" else rss_kib / 1024
print(json.dumps({"engine": "python-" + lib, "tokens": seen, "wall_s": round(wall, 3),
                  "cpu_s": round(cpu, 4), "cpu_pct_of_one_core": round(100 * cpu / wall, 4),
                  "cpu_us_per_token": round(1e6 * cpu / max(seen, 1), 2),
                  "peak_rss_mb": round(rss_mb, 2)}))
