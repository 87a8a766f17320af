"""Four processes share one session through a FileStore.

The parent signs up (writing the file), then starts PROCESSES children that
each make a Client on the same file and call GET /auth/me in a loop for
DURATION seconds. Pass: zero sign-outs, every call answered, and the
refreshes latchd logged in that time (`method=POST path=/auth/refresh`)
within 20% of one per access-token lifetime: the processes refresh under
the file's lock and adopt each other's tokens instead of each refreshing.

Usage: python3 tests/multiprocess.py [--duration 120] [--processes 4] [--ttl 10] [--out FILE]
(LATCHD_URL and LATCHD_LOG from the environment, as tools/test-sdk-long.sh sets them.)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from latch_client import Client, FileStore, RefreshPolicy, SignedOut  # noqa: E402

URL = os.environ.get("LATCHD_URL", "")
LOG = os.environ.get("LATCHD_LOG", "")


def refreshes() -> list[str]:
    with open(LOG, encoding="utf-8") as f:
        return [line for line in f if "method=POST path=/auth/refresh " in line]


def worker(path: str, seconds: float, out: Any) -> None:
    c = Client(URL, store=FileStore(path), refresh_policy=RefreshPolicy(fraction=0.05))
    signed_out: list[str] = []
    c.on("signed_out", lambda e: signed_out.append(e.reason) if isinstance(e, SignedOut) else None)
    refreshed = [0, 0]
    c.on("token_refreshed", lambda e: refreshed.__setitem__(1 if e.adopted else 0, refreshed[1 if e.adopted else 0] + 1))
    calls = ok = 0
    errors: list[str] = []
    end = time.time() + seconds
    while time.time() < end:
        calls += 1
        try:
            c.me()
            ok += 1
        except Exception as e:  # noqa: BLE001 - counted
            errors.append(f"{type(e).__name__}: {e}")
        time.sleep(0.1)
    out.put({"calls": calls, "ok": ok, "errors": errors[:5], "error_count": len(errors), "signed_out": signed_out,
             "refreshed": refreshed[0], "adopted": refreshed[1]})


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--ttl", type=float, default=10)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if not URL or not LOG:
        print("multiprocess: LATCHD_URL and LATCHD_LOG must be set", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "tokens.json")
        Client(URL, store=FileStore(path)).sign_up(f"procs-{uuid.uuid4().hex[:8]}@example.com", "correct horse battery staple")
        before = len(refreshes())
        ctx = multiprocessing.get_context("spawn")
        q = ctx.Queue()
        procs = [ctx.Process(target=worker, args=(path, args.duration, q)) for _ in range(args.processes)]
        for p in procs:
            p.start()
        results = [q.get(timeout=args.duration + 120) for _ in procs]
        for p in procs:
            p.join()
        seen = refreshes()[before:]
    expected = args.duration / args.ttl
    r = {
        "processes": args.processes, "seconds": args.duration, "ttl": args.ttl,
        "calls": sum(x["calls"] for x in results), "ok": sum(x["ok"] for x in results),
        "errors": sum(x["error_count"] for x in results), "signed_out": sum(len(x["signed_out"]) for x in results),
        "refreshed_in_processes": sum(x["refreshed"] for x in results), "adopted_in_processes": sum(x["adopted"] for x in results),
        "server_refreshes": len(seen), "server_refreshes_not_200": sum(1 for line in seen if "status=200 " not in line),
        "expected_refreshes": expected, "ratio": round(len(seen) / expected, 3),
        "first_errors": [e for x in results for e in x["errors"]][:5],
    }
    problems = []
    if r["signed_out"]:
        problems.append(f"{r['signed_out']} sign-outs")
    if r["errors"] or r["ok"] != r["calls"]:
        problems.append(f"{r['calls'] - r['ok']} of {r['calls']} calls failed")
    if r["server_refreshes_not_200"]:
        problems.append(f"{r['server_refreshes_not_200']} refreshes not answered 200")
    if abs(r["ratio"] - 1) > 0.2:
        problems.append(f"latchd saw {len(seen)} refreshes, not within 20% of {expected}")
    if any(p.exitcode != 0 for p in procs):
        problems.append("a process failed")
    print("multiprocess: " + json.dumps(r))
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps({**r, "pass": not problems, "problems": problems}) + "\n")
    for problem in problems:
        print(f"multiprocess: FAIL {problem}", file=sys.stderr)
    print("multiprocess: " + ("pass" if not problems else f"{len(problems)} problem(s)"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
