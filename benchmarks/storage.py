"""Storage benchmark: the real server over HTTP vs raw SQLCipher inserts, in one run.

Run by hand (never in CI):  .venv/bin/python benchmarks/storage.py [--records 100000]

1. Starts `foxden serve` (a real Hypercorn process on loopback, a real SQLCipher file).
2. POSTs 100-record batches of ~450-byte payloads, HAWK-signed like Firefox, into one
   collection until it holds --records records; reports records/s.
3. Inserts the same rows, 100 per transaction, straight into a second SQLCipher file with the
   same schema and pragmas (WAL, synchronous=FULL): the bound.  Prints the ratio.
4. Times `newer=` reads (full=1) on that collection through the server and the equivalent
   SQL on the raw file, and reports the server's RSS.
5. (--users N, default 4) N other users POST concurrently, one client process each, into
   their own collections: the server's write throughput when one user's 10 ms clock is
   not the limit. Step 2 is bounded by it: each write of a user needs its own 10 ms
   timestamp (it must be later than the last), so one user can make at most 100 writes/s,
   i.e. 10,000 records/s in 100-record POSTs, however fast the server is.
"""

from __future__ import annotations

import argparse
import base64
import json
import multiprocessing
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.crypto import hawk, tokenlib  # noqa: E402
from server.db.engine import Database  # noqa: E402

MASTER = "benchmark master secret"
BATCH = 100


def payload(i: int) -> str:
    """~450 bytes, shaped like an encrypted Sync record."""
    ct = base64.b64encode(os.urandom(240)).decode()
    return json.dumps({"ciphertext": ct, "IV": base64.b64encode(os.urandom(16)).decode(),
                       "hmac": os.urandom(32).hex()})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


class Signer(httpx.Auth):
    def __init__(self, url: str, uid: int) -> None:
        secrets_ = tokenlib.TokenSecrets.from_master(MASTER)
        salt = tokenlib.new_salt()
        self.token = tokenlib.make_token(secrets_, {
            "uid": uid, "node": url, "expires": time.time() + 36000, "salt": salt})
        self.key = tokenlib.derived_secret(secrets_, self.token, salt).encode()
        self.port = int(url.rsplit(":", 1)[1])

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers["Authorization"] = hawk.sign_header(
            self.key, self.token, request.method, request.url.raw_path.decode(),
            "127.0.0.1", self.port, int(time.time()), secrets.token_urlsafe(8))
        yield request


def cpu_s(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _user_client(url: str, uid: int, bodies: list[str], go: Any, out: Any) -> None:
    """One concurrent user (a forked process): POST every body, report start/end times."""
    client = httpx.Client(base_url=f"{url}/1.5/{uid}", auth=Signer(url, uid), timeout=60)
    client.get("/info/collections")  # connect before the clock starts
    go.wait()
    t0 = time.perf_counter()
    for body in bodies:
        r = client.post("/storage/bookmarks", content=body,
                        headers={"Content-Type": "application/json"})
        if r.status_code != 200 or r.json()["failed"]:
            out.put(("error", f"{r.status_code} {r.text[:200]}"))
            return
    out.put((t0, time.perf_counter()))


def concurrent_users(url: str, pid: int, users: int, per_user: int) -> tuple[float, float]:
    """records/s of ``users`` clients POSTing at once, and server CPU ms per POST."""
    ctx = multiprocessing.get_context("fork")
    go, out = ctx.Event(), ctx.Queue()
    procs = []
    for u in range(users):
        uid = 1000 + u
        bodies = [json.dumps([{"id": f"u{uid}-{b:05d}-{i:03d}", "payload": payload(i)}
                              for i in range(BATCH)]) for b in range(per_user // BATCH)]
        procs.append(ctx.Process(target=_user_client, args=(url, uid, bodies, go, out)))
    for p in procs:
        p.start()
    time.sleep(1.0)  # every client connected and waiting
    cpu0 = cpu_s(pid)
    go.set()
    results = [out.get(timeout=600) for _ in procs]
    cpu = cpu_s(pid) - cpu0
    for p in procs:
        p.join()
    errors = [r[1] for r in results if r[0] == "error"]
    if errors:
        raise SystemExit(f"concurrent POST failed: {errors[0]}")
    start, end = min(r[0] for r in results), max(r[1] for r in results)
    posts = users * (per_user // BATCH)
    return posts * BATCH / (end - start), cpu / posts * 1000


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--reads", type=int, default=50)
    ap.add_argument("--users", type=int, default=4,
                    help="concurrent users for step 5 (0: skip)")
    ap.add_argument("--user-records", type=int, default=10_000,
                    help="records each concurrent user POSTs in step 5")
    args = ap.parse_args()
    n_batches = args.records // BATCH
    rows = [(f"bso{i:08d}", payload(i)) for i in range(n_batches * BATCH)]
    tmp = Path(tempfile.mkdtemp(prefix="foxden-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FOXDEN_SYNC_MASTER_SECRET": MASTER, "FOXDEN_MDNS": "false"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "--data-dir", str(tmp / "data"), "--log-level",
         "warning", "serve", "--listen", f"127.0.0.1:{port}", "--tls", "off",
         "--public-url", url], env=env, cwd=ROOT)
    try:
        client = httpx.Client(base_url=f"{url}/1.5/1", auth=Signer(url, 1), timeout=60)
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/__lbheartbeat__", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        rss_start = rss_kb(proc.pid)

        # --- HTTP inserts
        cpu0 = cpu_s(proc.pid)
        t0 = time.perf_counter()
        marks: list[float] = []
        for b in range(n_batches):
            chunk = rows[b * BATCH:(b + 1) * BATCH]
            body = json.dumps([{"id": i, "payload": p} for i, p in chunk])
            r = client.post("/storage/bookmarks", content=body,
                            headers={"Content-Type": "application/json"})
            if r.status_code != 200 or r.json()["failed"]:
                raise SystemExit(f"POST failed: {r.status_code} {r.text[:200]}")
            marks.append(float(r.json()["modified"]))
        http_s = time.perf_counter() - t0
        http_cpu_ms = (cpu_s(proc.pid) - cpu0) / n_batches * 1000
        rss_after_write = rss_kb(proc.pid)

        # --- raw SQLCipher inserts, same schema and pragmas, same rows
        raw = Database(tmp / "raw.db", secrets.token_bytes(32))
        raw.write_sync(lambda c: c.execute(
            "INSERT INTO storage_collections (id, name) VALUES (7, 'bookmarks')"))
        t0 = time.perf_counter()
        for b in range(n_batches):
            ts = 1_700_000_000_000 + b * 10
            chunk = rows[b * BATCH:(b + 1) * BATCH]
            raw.write_sync(lambda c, chunk=chunk, ts=ts: c.executemany(
                "INSERT INTO storage_bso (uid, collection_id, id, modified, expiry, sortindex,"
                " payload_size, payload) VALUES (1, 7, ?, ?, ?, NULL, ?, ?)",
                [(i, ts, ts + 2_100_000_000_000, len(p), p) for i, p in chunk]))
        raw_s = time.perf_counter() - t0

        total = n_batches * BATCH
        http_rate, raw_rate = total / http_s, total / raw_s
        print(f"\nrecords: {total} in {n_batches} POSTs of {BATCH} (~{len(rows[0][1])} B each)")
        print(f"{'path':<28}{'records/s':>12}")
        print(f"{'HTTP (HAWK, JSON, server)':<28}{http_rate:>12.0f}")
        print(f"{'raw SQLCipher executemany':<28}{raw_rate:>12.0f}")
        print(f"ratio HTTP/raw: {http_rate / raw_rate:.2f}  (aim >= 0.50)")
        print(f"one user's ceiling: 100 writes/s x {BATCH} = {100 * BATCH} records/s (each "
              f"write needs its own 10 ms timestamp); HTTP at "
              f"{http_rate / (100 * BATCH):.0%} of it")
        print(f"per POST: {http_s / n_batches * 1000:.2f} ms wall, server CPU "
              f"{http_cpu_ms:.2f} ms (all threads)")

        # --- newer= reads on the full collection
        print(f"\nnewer= reads on a {total}-record collection (full=1), {args.reads} each")
        print(f"{'returns':>8}{'server p50 ms':>15}{'p95 ms':>9}{'raw SQL p50 ms':>16}"
              f"{'ratio':>7}")
        for want in (100, 1000, 10000):
            if want >= total:
                continue
            since = marks[-(want // BATCH) - 1]
            times = []
            for _ in range(args.reads):
                t = time.perf_counter()
                r = client.get("/storage/bookmarks",
                               params={"newer": f"{since:.2f}", "full": "1"})
                times.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200 or len(r.json()) != want:
                    raise SystemExit(f"read failed: {r.status_code} {len(r.json())}")
            raw_since = 1_700_000_000_000 + (n_batches - want // BATCH - 1) * 10
            rtimes = []
            for _ in range(args.reads):
                t = time.perf_counter()
                got = raw.read_sync(lambda c, s=raw_since: c.execute(
                    "SELECT id, modified, payload, sortindex FROM storage_bso WHERE uid = 1 "
                    "AND collection_id = 7 AND modified > ? AND expiry > ? "
                    "ORDER BY modified DESC, id DESC LIMIT 10001", (s, 0)).fetchall())
                rtimes.append((time.perf_counter() - t) * 1000)
                assert len(got) == want
            p50, rp50 = statistics.median(times), statistics.median(rtimes)
            print(f"{want:>8}{p50:>15.1f}{pct(times, 95):>9.1f}{rp50:>16.2f}"
                  f"{p50 / rp50:>7.1f}")
        raw.close()
        rss_end = rss_kb(proc.pid)
        print(f"\nserver RSS: start {rss_start[0] / 1024:.0f} MiB, after writes "
              f"{rss_after_write[0] / 1024:.0f} MiB, end {rss_end[0] / 1024:.0f} MiB, "
              f"peak {rss_end[1] / 1024:.0f} MiB")
        db_mb = sum(f.stat().st_size for f in (tmp / "data").glob("foxden.db*")) / 2**20
        print(f"database on disk: {db_mb:.0f} MiB")

        # --- concurrent users (after the measurements above, so they are unaffected)
        if args.users > 0:
            rate, cpu_ms = concurrent_users(url, proc.pid, args.users, args.user_records)
            print(f"\n{args.users} users POSTing at once ({args.user_records} records each): "
                  f"{rate:.0f} records/s, ratio to raw {rate / raw_rate:.2f}, "
                  f"server CPU {cpu_ms:.2f} ms per POST")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
