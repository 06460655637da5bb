#!/usr/bin/env python3
"""A flood of wrong sign-ins against a running server, and one right sign-in during it.

    benches/http/signin_flood.py PID [--port 8080] [--flood 200] [--password PW]

Starts FLOOD threads that each post a wrong password for the demo admin at once, each from an
address of its own in `X-Forwarded-For` (the server must trust 127.0.0.1 as a proxy:
`CRM_TRUSTED_PROXIES=127.0.0.1`), signs the admin in with the right password 0.2 s later
(retrying on 503 as a client told `Retry-After` would, every 0.1 s), and prints the server's
`VmRSS`, `VmHWM` and `Threads` (from /proc/PID/status) before the flood and 2 s after its last
answer, the answers' statuses, the slowest answer, and how long the right sign-in took.
docs/benchmarks.md ("Sign-in floods and memory") has the runs of record.
"""

import argparse
import collections
import http.client
import json
import threading
import time


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "Threads"):
                fields[key] = value.strip()
    return fields


def sign_in(port, password, client):
    body = json.dumps(
        {"organization": "demo", "email": "admin@demo.example", "password": password}
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.monotonic()
    conn.request(
        "POST",
        "/api/v1/auth/login",
        body,
        {"content-type": "application/json", "x-forwarded-for": client},
    )
    answer = conn.getresponse().status
    conn.close()
    return answer, time.monotonic() - started


def main():
    args = argparse.ArgumentParser()
    args.add_argument("pid", type=int)
    args.add_argument("--port", type=int, default=8080)
    args.add_argument("--flood", type=int, default=200)
    args.add_argument("--password", default="demo-password-123456")
    a = args.parse_args()

    print("before", status(a.pid))
    answers = collections.Counter()
    slowest = [0.0]
    lock = threading.Lock()

    def wrong(i):
        code, took = sign_in(a.port, "wrong-password", f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}")
        with lock:
            answers[code] += 1
            slowest[0] = max(slowest[0], took)

    threads = [threading.Thread(target=wrong, args=(i + 1,)) for i in range(a.flood)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    started = time.monotonic()
    tries = 0
    while True:
        tries += 1
        code, _ = sign_in(a.port, a.password, "192.0.2.1")
        if code != 503:
            break
        time.sleep(0.1)
    right = time.monotonic() - started
    for t in threads:
        t.join()
    time.sleep(2)
    print("after", status(a.pid))
    print("answers", dict(answers), f"slowest {slowest[0]:.2f} s")
    print(f"right sign-in: {code} after {right:.2f} s ({tries} tries)")


if __name__ == "__main__":
    main()
