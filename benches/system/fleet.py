#!/usr/bin/env python3
"""Fleet benchmark: zoneagent's primary and two secondaries that follow it
through the catalog zone (RFC 9432), NOTIFY and TSIG-signed transfers.

    python3 benches/system/fleet.py [--samples 50] [--burst 1000]
        [--big-records 100000] [--no-build] [--binary PATH] [--json OUT]

Python 3.11 standard library only; reuses run.py's private named, DNS
client and helpers. Every server listens on 127.0.0.1, on ports checked to
be free, and is stopped by pid in a `finally`. Each secondary is configured
with the text `zoneagent catalog secondary-conf` prints (options part
patched into its named.conf, the rest included), so the benchmark measures
the configuration operators paste.

Measurements, each next to the primary's own figure:

  N  new zone: one zone.snapshot dropped into the spool → served by the
     primary, and → served (same serial) by every secondary; p50/p99 over
     --samples zones.
  B  burst: --burst new zones in one spool file (one batch) → all served by
     the primary, and by every secondary.
  R  record change: one record.updated → new serial on the primary, and on
     every secondary; p50/p99 over --samples changes (rotating over zones).
  X  transfer size: one changed record in a --big-records zone; the bytes
     the secondary's IXFR took (from its `Transfer completed` log line),
     next to the full AXFR of the same zone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as sysbench  # noqa: E402  (run.py beside this file)

from run import (  # noqa: E402
    BenchError, Named, Resolver, log, make_zone, now, pct, spool_event, toml_str,
)

CATALOG = "catalog.zoneagent.bench"
KEY_NAME = "zoneagent-transfer"
NAMESERVERS = ["ns1.vps.org.", "ns2.vps.org."]
PRIMARY_OPTIONS = ["    notify-rate 10000;", "    startup-notify-rate 10000;", "    transfers-out 200;"]
XFER_DONE = re.compile(
    r"transfer of '(?P<zone>[^/]+)/IN' from \S+: Transfer completed: "
    r"(?P<msgs>\d+) messages, (?P<records>\d+) records, (?P<bytes>\d+) bytes")


def fleet_zone(i: int, tag: str) -> dict:
    z = make_zone(i)
    old = z["domain"]
    z["uuid"] = f"{tag}-{z['uuid']}"
    z["domain"] = old.replace(".bench.test", f".{tag}.fleet.test")
    for r in z["records"]:
        r["uuid"] = f"{tag}-{r['uuid']}"
        if isinstance(r["value"], str):
            r["value"] = r["value"].replace(old, z["domain"])
    return z


def big_zone(n: int) -> dict:
    records = [{
        "uuid": f"big-r{j:06d}", "record_type": "A", "name": f"h{j:06d}",
        "value": f"10.{(j >> 16) & 255}.{(j >> 8) & 255}.{j & 255}", "ttl": 300, "priority": None,
    } for j in range(n)]
    return {"uuid": "big-zone", "domain": "big.fleet.test", "created_at": "2026-01-18T16:45:00Z",
            "records": records}


class Secondary:
    """A private named that follows the primary as secondary-conf says."""

    def __init__(self, root: Path, n: int):
        self.dir = root / f"secondary{n}"
        self.zone_dir = self.dir / "catalog-zones"
        self.include = root / f"secondary{n}.conf"
        self.named = Named(self.dir, self.include)

    def start(self, conf_text: str) -> None:
        options, top, inside = [], [], False
        for line in conf_text.splitlines():
            if line.strip() == "// BEGIN options":
                inside = True
            elif line.strip() == "// END options":
                inside = False
            else:
                (options if inside else top).append(line)
        self.include.write_text("\n".join(top) + "\n")
        self.zone_dir.mkdir(parents=True, exist_ok=True)
        start_with_options(self.named, options)

    def transfers(self, zone: str) -> list[dict]:
        text = (self.dir / "named.log").read_text(errors="replace")
        return [m.groupdict() for m in XFER_DONE.finditer(text) if m["zone"] == zone]


def start_with_options(named: Named, options: list[str]) -> None:
    """named-private.sh writes the config (with the include) and starts
    named; then `options` go into its options block and named is started
    again on the same ports."""
    named.start_script()
    named.stop()
    conf = named.dir / "named.conf"
    text = conf.read_text()
    marker = "    interface-interval 0;\n"
    if marker not in text:
        raise BenchError(f"cannot find the options block in {conf}")
    conf.write_text(text.replace(marker, marker + "\n".join(options) + "\n", 1))
    proc, _ = named.start_background()
    if proc.wait(timeout=60) != 0:
        raise BenchError(f"named failed to start: {sysbench.tail(named.dir / 'named.log')}")
    named.pid = named.read_pid(wait=10)


def wait_served(resolvers: list[Resolver], zone: str, serial: int | None, t0: float,
                deadline: float) -> list[float]:
    """Polls each resolver until it serves `zone` (with `serial` when given,
    else any serial); returns the time each first did, relative to t0."""
    seen: list[float | None] = [None] * len(resolvers)
    while any(s is None for s in seen):
        if now() > deadline:
            raise BenchError(f"{zone}: not served everywhere by the deadline ({seen})")
        for i, r in enumerate(resolvers):
            if seen[i] is None:
                s = r.serial(zone, timeout=0.05)
                if s is not None and (serial is None or s == serial):
                    seen[i] = now() - t0
        time.sleep(0.001)
    return seen  # type: ignore[return-value]


def spool_group(spool: Path, events: list[dict]) -> None:
    """One spool file of many events (the socket's group format)."""
    name = f"{time.time_ns():020d}.bench.group.ndjson"
    tmp = spool / "tmp" / name
    with open(tmp, "wb") as f:
        f.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, spool / "new" / name)


def ms(values: list[float]) -> tuple[float, float]:
    v = [x * 1000 for x in values]
    return pct(v, 50), pct(v, 99)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--big-records", type=int, default=100_000)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--binary")
    ap.add_argument("--json")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    sysbench.preflight()
    work = Path(tempfile.mkdtemp(prefix="zoneagent-fleet-"))
    binary = sysbench.build_binary(args, work)
    primary = Named(work / "primary", work / "named.conf.zoneagent")
    secondaries = [Secondary(work, 1), Secondary(work, 2)]
    daemon = None
    results: dict = {}

    def on_signal(signum, _frame):
        raise BenchError(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    try:
        # The primary's own tuning (README "Fleet"): BIND sends NOTIFYs at
        # notify-rate (default 20/s, in ticks of 0.5 s); every new member
        # zone NOTIFYs each secondary when it loads, ahead of the catalog's.
        start_with_options(primary, PRIMARY_OPTIONS)
        key_file = work / "transfer.key"
        key = sysbench.run(["tsig-keygen", "-a", "hmac-sha256", KEY_NAME], timeout=30).stdout
        key_file.write_text(key)
        config = work / "zoneagent.toml"

        def write_config(ports: list[int]) -> None:
            config.write_text("\n".join([
                "[paths]",
                f"spool = {toml_str(work / 'spool')}",
                f"state = {toml_str(work / 'state')}",
                f"zones = {toml_str(work / 'zones')}",
                f"include = {toml_str(primary.include)}",
                "[zone]", f"nameservers = {json.dumps(NAMESERVERS)}",
                f"max_records = {max(10_000, args.big_records + 10)}",
                "[soa]", "refresh = 60", "retry = 10",
                "[spool]", "max_event_bytes = 268435456",
                "[bind]", f"rndc = {json.dumps(primary.rndc)}",
                f"server = {toml_str(f'127.0.0.1:{primary.port}')}", "confirm_timeout = 120",
                "[log]", 'format = "json"',
                "[catalog]", f"zone = {toml_str(CATALOG)}", f"tsig_key_file = {toml_str(key_file)}",
                f"secondaries = {json.dumps([f'127.0.0.1:{p}' for p in ports])}",
            ]) + "\n")

        def za(*a, timeout=120):
            return sysbench.run([binary, "--config", config, *a], timeout=timeout, what=f"zoneagent {a[0]}")

        write_config([])
        for s in secondaries:
            text = za("catalog", "secondary-conf", "--primary", f"127.0.0.1:{primary.port}",
                      "--zone-directory", str(s.zone_dir)).stdout
            s.start(text)
        write_config([s.named.port for s in secondaries])
        spool = work / "spool"
        log_path = work / "daemon.log"
        logf = open(log_path, "ab")
        daemon = subprocess.Popen([str(binary), "--config", str(config), "run"], stdin=subprocess.DEVNULL,
                                  stdout=logf, stderr=logf, env=dict(os.environ, ZONEAGENT_LOG="info"))
        logf.close()
        deadline = time.monotonic() + 60
        while "zoneagent ready" not in log_path.read_text(errors="replace"):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"daemon not ready: {sysbench.tail(log_path)}")
            time.sleep(0.02)
        p_res = Resolver(primary.port)
        s_res = [Resolver(s.named.port) for s in secondaries]
        seq = 0

        def drop(event: dict) -> float:
            nonlocal seq
            seq += 1
            t0 = now()
            spool_event(spool, event, seq)
            return t0

        # A seed zone: the catalog exists before the measurements.
        seed = fleet_zone(0, "seed")
        t0 = drop({"id": "seed", "type": "zone.snapshot", "zone": seed})
        wait_served([p_res, *s_res], seed["domain"], None, t0, now() + 60)
        time.sleep(0.5)

        # N: new zones one by one.
        log(f"N: {args.samples} new zones, one at a time")
        new_p, new_s = [], []
        zones = []
        for k in range(args.samples):
            z = fleet_zone(k, "new")
            zones.append(z)
            t0 = drop({"id": f"new-{k}", "type": "zone.snapshot", "zone": z})
            (tp,) = wait_served([p_res], z["domain"], None, t0, t0 + 60)
            serial = p_res.serial(z["domain"], 1.0)
            ts = wait_served(s_res, z["domain"], serial, t0, t0 + 60)
            new_p.append(tp)
            new_s.append(max(ts))
            time.sleep(0.05)
        results["new_zone"] = {"primary_ms": ms(new_p), "secondaries_ms": ms(new_s)}

        # R: record changes, rotating over the new zones.
        log(f"R: {args.samples} record changes")
        chg_p, chg_s = [], []
        for k in range(args.samples):
            z = zones[k % len(zones)]
            rec = dict(z["records"][sysbench.API_RECORD])
            rec["value"] = f"10.251.{(k >> 8) & 255}.{k & 255}"
            old = p_res.serial(z["domain"], 1.0)
            t0 = drop({"id": f"chg-{k}", "type": "record.updated", "zone_uuid": z["uuid"], "record": rec})
            tp, serial, _ = p_res.wait_serial_change(z["domain"], old, t0 + 60)
            ts = wait_served(s_res, z["domain"], serial, t0, t0 + 60)
            chg_p.append(tp - t0)
            chg_s.append(max(ts))
            time.sleep(0.05)
        results["record_change"] = {"primary_ms": ms(chg_p), "secondaries_ms": ms(chg_s)}

        # B: a burst of new zones in one spool file.
        log(f"B: {args.burst} new zones in one batch")
        burst = [fleet_zone(k, "burst") for k in range(args.burst)]
        events = [{"id": f"burst-{k}", "type": "zone.snapshot", "zone": z} for k, z in enumerate(burst)]
        t0 = now()
        spool_group(spool, events)
        items = [(z["domain"], sysbench.T_SOA) for z in burst]
        ok = lambda _i, rcode, answers: rcode == 0 and bool(answers)  # noqa: E731
        tp, _ = sysbench.sweep(primary.port, items, ok, now() + 300)
        t_all = max(sysbench.sweep(s.named.port, items, ok, now() + 300)[0] for s in secondaries)
        results["burst"] = {"zones": args.burst, "primary_s": tp - t0, "secondaries_s": t_all - t0}

        # X: IXFR of one changed record in a big zone.
        log(f"X: one record changed in a {args.big_records}-record zone")
        big = big_zone(args.big_records)
        t0 = drop({"id": "big", "type": "zone.snapshot", "zone": big})
        wait_served([p_res], big["domain"], None, t0, t0 + 300)
        serial = p_res.serial(big["domain"], 1.0)
        wait_served(s_res, big["domain"], serial, t0, t0 + 300)
        axfr = secondaries[0].transfers(big["domain"])
        rec = dict(big["records"][7])
        rec["value"] = "10.99.99.99"
        t0 = drop({"id": "big-chg", "type": "record.updated", "zone_uuid": big["uuid"], "record": rec})
        _, serial, _ = p_res.wait_serial_change(big["domain"], serial, t0 + 300)
        wait_served(s_res, big["domain"], serial, t0, t0 + 300)
        time.sleep(0.3)
        after = secondaries[0].transfers(big["domain"])
        plog = (primary.dir / "named.log").read_text(errors="replace")
        kinds = re.findall(rf"transfer of '{re.escape(big['domain'])}/IN': (AXFR|IXFR) ended", plog)
        results["transfer"] = {
            "records": args.big_records,
            "axfr_bytes": int(axfr[0]["bytes"]) if axfr else None,
            "change_bytes": int(after[-1]["bytes"]) if len(after) > len(axfr) else None,
            "change_kind": kinds[-1] if kinds else None,
        }
        for r in [p_res, *s_res]:
            r.close()
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        for s in secondaries:
            try:
                s.named.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping a secondary: {e}")
        try:
            primary.stop()
        except Exception as e:  # noqa: BLE001
            log(f"stopping the primary: {e}")
    print(render_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.keep:
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def render_table(r: dict) -> str:
    rows = ["| what | every secondary | the primary's own | target | met |", "|---|---|---|---|---|"]
    n, c, b, x = r["new_zone"], r["record_change"], r["burst"], r["transfer"]
    rows.append(f"| new zone → served, p50 / p99 | {n['secondaries_ms'][0]:.0f} / "
                f"{n['secondaries_ms'][1]:.0f} ms | {n['primary_ms'][0]:.0f} / {n['primary_ms'][1]:.0f} ms "
                f"| p50 < 500 ms | {'met' if n['secondaries_ms'][0] < 500 else 'missed'} |")
    rows.append(f"| {b['zones']} new zones in one burst → all served | {b['secondaries_s']:.2f} s | "
                f"{b['primary_s']:.2f} s | < 2 s | {'met' if b['secondaries_s'] < 2 else 'missed'} |")
    rows.append(f"| record change → new serial, p50 / p99 | {c['secondaries_ms'][0]:.0f} / "
                f"{c['secondaries_ms'][1]:.0f} ms | {c['primary_ms'][0]:.0f} / {c['primary_ms'][1]:.0f} ms "
                f"| p50 ≤ 60 ms | {'met' if c['secondaries_ms'][0] <= 60 else 'missed'} |")
    cb = x["change_bytes"]
    rows.append(f"| one changed record in a {x['records']:,}-record zone: bytes transferred | "
                f"{cb if cb is not None else '?'} B ({x['change_kind'] or '?'}) | full AXFR "
                f"{x['axfr_bytes'] if x['axfr_bytes'] is not None else '?'} B | IXFR < 2 KB | "
                f"{'met' if cb is not None and cb < 2048 and x['change_kind'] == 'IXFR' else 'missed'} |")
    return "\n".join(rows)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"fleet benchmark failed: {e}", file=sys.stderr)
        sys.exit(1)
