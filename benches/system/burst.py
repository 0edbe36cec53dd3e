#!/usr/bin/env python3
"""Socket burst: acks/s of the daemon's Unix socket, in seconds not minutes.

    python3 benches/system/burst.py [--binary target/release/zoneagent]
                                    [--events 10000] [--producers 8]

Starts a private named (scripts/named-private.sh, loopback ports checked to
be free) and `zoneagent run` with a socket in a temporary directory, creates
100 zones, then measures two bursts of record.created events, `--repeat`
times each (after the daemon has taken the previous burst from the spool):

  one      `--events` events streamed on one connection;
  many     `--producers` connections at once, `--events` events each.

acks/s is the number of events acknowledged (durable in the spool) divided
by the time from the first byte sent to the last ack received. The deploys
of those events run meanwhile, as they would in production. Everything
started is stopped by pid at the end. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZONES = 100


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


def event(tag: str, i: int) -> bytes:
    z = i % ZONES
    e = {"id": f"{tag}-{i}", "type": "record.created", "zone_uuid": f"bz{z}",
         "record": {"uuid": f"{tag}-r{i}", "record_type": "A", "name": f"h{i}",
                    "value": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "ttl": 300}}
    return (json.dumps(e, separators=(",", ":")) + "\n").encode()


def burst(path: Path, payloads: list[bytes], timeout: float) -> dict:
    """Sends each payload on its own connection at once; times the acks."""
    counts = [0] * len(payloads)
    errors = []
    socks = []
    for _ in payloads:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(str(path))
        socks.append(s)
    expected = [p.count(b"\n") for p in payloads]
    done_at = [0.0] * len(payloads)

    def read(k: int) -> None:
        buf = b""
        try:
            while counts[k] < expected[k]:
                chunk = socks[k].recv(1 << 16)
                if not chunk:
                    errors.append(f"connection {k} closed early")
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if b'"ok":true' not in line:
                        errors.append(line[:200].decode(errors="replace"))
                    counts[k] += 1
            done_at[k] = time.monotonic()
        except OSError as e:
            errors.append(str(e))

    readers = [threading.Thread(target=read, args=(k,)) for k in range(len(payloads))]
    writers = [threading.Thread(target=socks[k].sendall, args=(payloads[k],))
               for k in range(len(payloads))]
    for t in readers:
        t.start()
    start = time.monotonic()
    for t in writers:
        t.start()
    for t in writers + readers:
        t.join(timeout)
    for s in socks:
        s.close()
    total = sum(counts)
    took = max(done_at) - start if all(done_at) else float("nan")
    return {"events": total, "seconds": took, "acks_per_s": total / took if took else 0,
            "errors": errors[:3]}


def settle(new: Path, timeout: float) -> None:
    """Waits until the daemon has taken every file from spool/new (its
    deploys of the previous burst are then done or under way), then one
    second more, so one burst's deploy does not run into the next burst."""
    deadline = time.monotonic() + timeout
    while any(new.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=str(REPO / "target" / "release" / "zoneagent"))
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--producers", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="zoneagent-burst-"))
    named_dir = work / "named"
    include = work / "named.conf.zoneagent"
    port, ctl = free_port(), free_port()
    out = subprocess.run(["bash", str(REPO / "scripts" / "named-private.sh"), "start",
                          str(named_dir), str(port), str(ctl), str(include)],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    rndc = env["RNDC"].strip('"').split()
    sock_path = work / "agent.sock"
    q = json.dumps
    (work / "zoneagent.toml").write_text(
        f"[paths]\nspool = {q(str(work / 'spool'))}\nstate = {q(str(work / 'state'))}\n"
        f"zones = {q(str(work / 'zones'))}\ninclude = {q(str(include))}\n"
        f"[bind]\nrndc = {q(rndc)}\nserver = \"127.0.0.1:{port}\"\n"
        f"named_conf = {q(str(named_dir / 'named.conf'))}\n"
        f"[socket]\npath = {q(str(sock_path))}\nmode = \"0600\"\n")
    log = open(work / "daemon.log", "wb")
    daemon = subprocess.Popen([args.binary, "--config", str(work / "zoneagent.toml"), "run"],
                              stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not sock_path.exists():
            if time.monotonic() > deadline or daemon.poll() is not None:
                print((work / "daemon.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        zones = b"".join(
            (json.dumps({"id": f"z{z}", "type": "zone.snapshot",
                         "zone": {"uuid": f"bz{z}", "domain": f"burst{z}.test",
                                  "created_at": "2026-01-01T00:00:00Z", "records": []}})
             + "\n").encode() for z in range(ZONES))
        burst(sock_path, [zones], args.timeout)
        settle(work / "spool" / "new", args.timeout)
        failed = False
        for r in range(args.repeat):
            one = burst(sock_path, [b"".join(event(f"one{r}", i) for i in range(args.events))],
                        args.timeout)
            settle(work / "spool" / "new", args.timeout)
            many = burst(sock_path, [b"".join(event(f"p{r}.{k}", i) for i in range(args.events))
                                     for k in range(args.producers)], args.timeout)
            settle(work / "spool" / "new", args.timeout)
            print(f"run {r + 1}: one connection: {one['events']} events in {one['seconds']:.3f} s"
                  f" = {one['acks_per_s']:,.0f} acks/s {one['errors'] or ''}")
            print(f"run {r + 1}: {args.producers} producers: {many['events']} events in "
                  f"{many['seconds']:.3f} s = {many['acks_per_s']:,.0f} acks/s "
                  f"{many['errors'] or ''}", flush=True)
            failed |= bool(one["errors"] or many["errors"])
        return 1 if failed else 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        subprocess.run(["bash", str(REPO / "scripts" / "named-private.sh"), "stop",
                        str(named_dir)], capture_output=True, timeout=60)
        log.close()
        if os.environ.get("KEEP") != "1":
            subprocess.run(["rm", "-rf", str(work)], check=False)


if __name__ == "__main__":
    sys.exit(main())
