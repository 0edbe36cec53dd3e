#!/usr/bin/env python3
"""DNSSEC figures for zoneagent against a private BIND named.

    python3 benches/system/dnssec.py [--zones 1000] [--samples 30] [--binary PATH]

Python 3.11 standard library only; helpers (zones, spool writes) come from
benches/system/run.py. Every named listens on 127.0.0.1 only, on ports
checked to be free, and is stopped by pid in a `finally`. Short runs: the
machine is shared, read the ratios.

  L  record change -> signed answer served: a record.updated event into the
     running daemon's spool, until named answers the new value *with its
     RRSIG* (DO queries every millisecond); beside it the same for a zone of
     the same server that is not signed (inline signing, no policy); beside
     each, named's own figure: rewrite such a zone's file (serial past the
     served one) + `rndc reload ZONE` until the (signed) answer is served.
  S  cold import of N zones x 20 records with signing on (`dnssec-policy
     default`): `zoneagent import` until it exits (served serials
     confirmed), and until every zone serves a signed SOA; beside it the
     same import unsigned, and named's own time to load and sign the same
     files (a fresh named given the same include, until every zone serves a
     signed SOA).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402  (the system benchmark's helpers)

T_A, T_SOA, T_RRSIG = 1, 6, 46


def query_packet(qid: int, name: str, qtype: int) -> bytes:
    """A query with EDNS0 and the DO bit, so RRSIGs come along."""
    header = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1)
    opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0x8000, 0)
    return header + bench.encode_question(name, qtype) + opt


def signed_answer(buf: bytes, qtype: int, value: str | None = None) -> tuple[bool, bool]:
    """(answer matches, answer carries an RRSIG over it)."""
    _qid, rcode, _q, answers = bench.parse_response(buf)
    if rcode != 0:
        return False, False
    sig = any(
        t == T_RRSIG and struct.unpack_from("!H", b, off)[0] == qtype for t, b, off, _n in answers
    )
    if value is None:
        return any(t == qtype for t, *_ in answers), sig
    return bench.a_values_of(answers) == {value}, sig


class Named:
    """A private named: its own directory, config, rndc key and ports."""

    def __init__(self, root: Path, include: Path):
        self.dir = root
        self.dir.mkdir(parents=True, exist_ok=True)
        self.include = include
        if not include.exists():
            include.write_text("")
        self.port = bench.free_port()
        self.ctl = bench.free_port()
        while self.ctl == self.port:
            self.ctl = bench.free_port()
        key = subprocess.run(
            ["tsig-keygen", "-a", "hmac-sha256", "bench"], capture_output=True, text=True, check=True
        ).stdout
        (self.dir / "rndc.key").write_text(key)
        (self.dir / "rndc.conf").write_text(
            f'include "{self.dir}/rndc.key";\n'
            f'options {{ default-key "bench"; default-server 127.0.0.1; default-port {self.ctl}; }};\n'
        )
        d = self.dir
        (self.dir / "named.conf").write_text(
            f'include "{d}/rndc.key";\n'
            f'options {{ directory "{d}"; pid-file "{d}/named.pid"; lock-file "{d}/named.lock";\n'
            f'  session-keyfile "{d}/session.key"; managed-keys-directory "{d}";\n'
            f"  listen-on port {self.port} {{ 127.0.0.1; }}; listen-on-v6 {{ none; }};\n"
            "  recursion no; dnssec-validation no; notify no; };\n"
            f"controls {{ inet 127.0.0.1 port {self.ctl} allow {{ 127.0.0.1; }} keys {{ bench; }}; }};\n"
            f'logging {{ channel l {{ file "{d}/named.log"; severity info; print-time yes; }};\n'
            "  category default { l; }; };\n"
            f'include "{include}";\n'
        )
        self.rndc = ["rndc", "-c", str(d / "rndc.conf")]
        self.proc: subprocess.Popen | None = None

    def start(self, wait_rndc: bool = True) -> float:
        """Starts named in the foreground (a child we stop by pid); returns
        the perf-counter time of the exec."""
        t0 = bench.now()
        self.proc = subprocess.Popen(
            ["named", "-4", "-f", "-c", str(self.dir / "named.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if wait_rndc:
            deadline = time.monotonic() + 20
            while subprocess.run([*self.rndc, "status"], capture_output=True).returncode != 0:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise bench.BenchError(f"named in {self.dir} did not start")
                time.sleep(0.02)
        return t0

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)


def agent_config(root: Path, named: Named, dnssec: str) -> Path:
    q = bench.toml_str
    cfg = root / "zoneagent.toml"
    cfg.write_text(
        f"[paths]\nspool = {q(root / 'spool')}\nstate = {q(root / 'state')}\n"
        f"zones = {q(root / 'zones')}\ninclude = {q(named.include)}\n"
        f"[bind]\nrndc = {json.dumps(named.rndc)}\nserver = \"127.0.0.1:{named.port}\"\n"
        "confirm_timeout = 120\n"
        f"{dnssec}"
    )
    return cfg


def dnssec_section(root: Path, extra: str = "") -> str:
    keys = root / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    return f'[dnssec]\npolicy = "default"\nkey_directory = {bench.toml_str(keys)}\n{extra}'


def sweep_signed(port: int, domains: list[str], deadline: float) -> float:
    """Asks every zone's SOA (DO) until each is served with its RRSIG;
    returns the perf time the last one was."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.settimeout(0.05)
    left = dict(enumerate(domains))
    last = bench.now()
    try:
        while left:
            if bench.now() > deadline:
                raise bench.BenchError(f"{len(left)} zones not signed at the deadline, e.g. {next(iter(left.values()))}")
            batch = list(left.items())[:200]
            for i, d in batch:
                sock.sendto(query_packet(i, d, T_SOA), ("127.0.0.1", port))
            got = 0
            while got < len(batch):
                try:
                    buf = sock.recv(65535)
                except OSError:
                    break
                got += 1
                qid = struct.unpack_from("!H", buf, 0)[0]
                ok, sig = signed_answer(buf, T_SOA)
                if ok and sig and qid in left:
                    del left[qid]
                    last = bench.now()
            if got < len(batch):
                time.sleep(0.01)
    finally:
        sock.close()
    return last


UNSIGNED_FIRST = {"count": 0}


def wait_signed_value(sock: socket.socket, port: int, name: str, value: str, want_sig: bool,
                      deadline: float) -> float:
    """Polls name/A (DO) every millisecond until it is `value` (with an
    RRSIG when `want_sig`); returns the perf time it was seen. Counts, in
    UNSIGNED_FIRST, new values served without their RRSIG first."""
    qid = random.randrange(65536)
    counted = False
    while True:
        if bench.now() > deadline:
            raise bench.BenchError(f"{name} never served {value}")
        qid = (qid + 1) & 0xFFFF
        sock.sendto(query_packet(qid, name, T_A), ("127.0.0.1", port))
        buf = None
        while buf is None:
            try:
                b = sock.recv(65535)
            except OSError:
                break
            # Late answers to earlier queries are skipped.
            if struct.unpack_from("!H", b, 0)[0] == qid:
                buf = b
        if buf is None:
            continue
        ok, sig = signed_answer(buf, T_A, value)
        if ok and (sig or not want_sig):
            return bench.now()
        if ok and not counted:
            UNSIGNED_FIRST["count"] += 1
            counted = True
        time.sleep(0.001)


def ask_serial(sock: socket.socket, port: int, zone: str) -> int:
    """The SOA serial served for `zone` (answers to earlier queries on
    the socket are skipped by id)."""
    qid = random.randrange(1 << 16)
    sock.sendto(query_packet(qid, zone, T_SOA), ("127.0.0.1", port))
    deadline = bench.now() + 5
    while bench.now() < deadline:
        try:
            buf = sock.recv(65535)
        except OSError:
            continue
        rid, rcode, _q, answers = bench.parse_response(buf)
        if rid == qid and rcode == 0 and bench.soa_serial_of(answers) is not None:
            return bench.soa_serial_of(answers)
    raise bench.BenchError(f"no SOA for {zone}")


def measure_latency(work: Path, binary: Path, samples: int) -> dict:
    """L: signed and unsigned record changes through the daemon, and named's
    own rewrite + reload of a signed zone."""
    root = work / "latency"
    named = Named(root / "named", root / "named.conf.zoneagent")
    daemon = None
    try:
        named.start()
        zones = [bench.make_zone(i) for i in range(4)]
        # Zones 0 and 2 signed, 1 and 3 not; 0 and 1 change through the
        # agent, 2 and 3 through named alone.
        unsigned = [bench.zone_domain(1), bench.zone_domain(3)]
        cfg = agent_config(root, named, dnssec_section(root, f"except = {json.dumps(unsigned)}\n"))
        dump = root / "dump.json"
        dump.write_text(json.dumps(zones))
        p = subprocess.run([binary, "-c", cfg, "import", dump], capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise bench.BenchError(f"import failed: {p.stderr}")
        log = open(root / "daemon.log", "w")
        daemon = subprocess.Popen([binary, "-c", cfg, "run"], stdin=subprocess.DEVNULL,
                                  stdout=log, stderr=log)
        time.sleep(1.0)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.05)
        # Every zone is signed before the first sample.
        sweep_signed(named.port, [bench.zone_domain(0), bench.zone_domain(2)], bench.now() + 60)
        api = zones[0]["records"][bench.API_RECORD]
        own = {}
        for key, zi in (("named_signed", 2), ("named_unsigned", 3)):
            d = bench.zone_domain(zi)
            f = root / "zones" / f"{d}.zone"
            own[key] = (d, f, f.read_text())
        lat = {"signed": [], "unsigned": [], "named_signed": [], "named_unsigned": []}
        for k in range(samples):
            value = f"10.250.{(k >> 8) & 255}.{k & 255}"
            for key, zi in (("signed", 0), ("unsigned", 1)):
                event = {
                    "id": f"bench-dnssec-{key}-{k}-{random.randrange(1 << 30)}",
                    "type": "record.updated",
                    "zone_uuid": bench.zone_uuid(zi),
                    "record": {**{x: api[x] for x in ("uuid", "record_type", "name", "ttl", "priority")},
                               "value": value, "uuid": zones[zi]["records"][bench.API_RECORD]["uuid"]},
                }
                t0 = bench.now()
                bench.spool_event(root / "spool", event, k)
                t = wait_signed_value(sock, named.port, f"api.{bench.zone_domain(zi)}", value,
                                      key == "signed", t0 + 30)
                lat[key].append(t - t0)
                time.sleep(random.uniform(0.02, 0.05))
            # named alone: the zone's file with a serial past the served
            # one (the signer's, for the signed zone), then rndc reload ZONE.
            for key, (own_domain, own_file, own_text) in own.items():
                served = ask_serial(sock, named.port, own_domain)
                text = bench.SOA_LINE.sub(lambda m: m.group(1) + str(served + 1), own_text, count=1)
                text = bench.API_LINE.sub(lambda m: m.group(1) + value, text, count=1)
                tmp = own_file.with_name(f".{own_file.name}.bench")
                t0 = bench.now()
                with open(tmp, "w") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, own_file)
                os.utime(own_file)
                rel = subprocess.run([*named.rndc, "reload", own_domain], capture_output=True,
                                     text=True, check=True)
                if "up-to-date" in rel.stdout:
                    raise bench.BenchError(f"named skipped the reload of {own_domain}: {rel.stdout}")
                t = wait_signed_value(sock, named.port, f"api.{own_domain}", value,
                                      key == "named_signed", t0 + 30)
                lat[key].append(t - t0)
                time.sleep(random.uniform(0.02, 0.05))
        sock.close()
        out = {k: bench.summarize_ms(v) for k, v in lat.items()}
        out["signed_values_served_unsigned_first"] = UNSIGNED_FIRST["count"]
        return out
    finally:
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        named.stop()


def measure_import(work: Path, binary: Path, n: int, signed: bool) -> dict:
    """S: a cold import of n zones into an empty named, until the import
    exits and (signed) until every zone serves a signed SOA."""
    root = work / f"import-{'signed' if signed else 'unsigned'}"
    named = Named(root / "named", root / "named.conf.zoneagent")
    try:
        named.start()
        cfg = agent_config(root, named, dnssec_section(root) if signed else "")
        dump = root / "dump.json"
        dump.write_text(json.dumps([bench.make_zone(i) for i in range(n)]))
        t0 = bench.now()
        p = subprocess.run([binary, "-c", cfg, "import", dump], capture_output=True, text=True, timeout=600)
        t_import = bench.now()
        if p.returncode != 0:
            raise bench.BenchError(f"import failed: {p.stderr[-2000:]}")
        out = {"import_s": t_import - t0}
        if signed:
            t_signed = sweep_signed(named.port, [bench.zone_domain(i) for i in range(n)], t0 + 600)
            out["all_signed_s"] = t_signed - t0
        return out
    finally:
        named.stop()


def measure_named_sign(work: Path, n: int) -> dict:
    """S: named's own cold load and signing of the same zone files: a fresh
    named given an include of them with the agent's signing stanza."""
    src = work / "import-signed" / "zones"
    root = work / "named-own"
    zones = root / "zones"
    zones.mkdir(parents=True)
    keys = root / "keys"
    keys.mkdir()
    stanzas = []
    for i in range(n):
        d = bench.zone_domain(i)
        shutil.copy(src / f"{d}.zone", zones / f"{d}.zone")
        stanzas.append(
            f'zone "{d}" {{\n\ttype primary;\n\tfile "{zones}/{d}.zone";\n'
            f'\tdnssec-policy "default";\n\tinline-signing yes;\n\tkey-directory "{keys}";\n}};\n'
        )
    include = root / "include.conf"
    include.write_text("".join(stanzas))
    named = Named(root / "named", include)
    try:
        t0 = named.start(wait_rndc=False)
        t = sweep_signed(named.port, [bench.zone_domain(i) for i in range(n)], t0 + 600)
        return {"all_signed_s": t - t0}
    finally:
        named.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zones", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--binary", type=Path, default=bench.REPO / "target" / "release" / "zoneagent")
    args = ap.parse_args()
    if not args.binary.is_file():
        print(f"no binary at {args.binary}: cargo build --release first", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="zoneagent-dnssec-bench-"))
    try:
        bench.log(f"L: {args.samples} samples")
        lat = measure_latency(work, args.binary, args.samples)
        bench.log(f"S: cold import of {args.zones} zones, unsigned then signed, then named alone")
        plain = measure_import(work, args.binary, args.zones, signed=False)
        signed = measure_import(work, args.binary, args.zones, signed=True)
        own = measure_named_sign(work, args.zones)
    finally:
        if args.keep:
            bench.log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    r = lambda a, b: f"{a / b:.2f}x"  # noqa: E731
    print(f"| what | zoneagent | named alone | ratio |")
    print("|---|---|---|---|")
    for key, label in (("signed", "signed"), ("unsigned", "unsigned (same server)")):
        z, n = lat[key], lat[f"named_{key}"]
        print(f"| record change -> {label} answer served, p50 / p99 | "
              f"{z['p50']:.1f} / {z['p99']:.1f} ms | {n['p50']:.1f} / {n['p99']:.1f} ms | "
              f"{r(z['p50'], n['p50'])} / {r(z['p99'], n['p99'])} |")
    print(f"| signed changes (the agent's and named's own) whose new value was served "
          f"without its RRSIG first | {lat['signed_values_served_unsigned_first']} of "
          f"{2 * args.samples} | | |")
    print(f"| cold import of {args.zones} zones, unsigned: import returns | {plain['import_s']:.2f} s | | |")
    print(f"| cold import of {args.zones} zones, signed: import returns | {signed['import_s']:.2f} s | | |")
    print(f"| cold import of {args.zones} zones, signed: every zone serves a signed SOA | "
          f"{signed['all_signed_s']:.2f} s | {own['all_signed_s']:.2f} s | "
          f"{r(signed['all_signed_s'], own['all_signed_s'])} |")
    print(json.dumps({"latency_ms": lat, "import_unsigned": plain, "import_signed": signed, "named_own": own}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
