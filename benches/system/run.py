#!/usr/bin/env python3
"""System benchmark for zoneagent against a private BIND named (and octoDNS).

    python3 benches/system/run.py [--zones 1000,10000,100000] [--quick] [--json OUT] [--perf DIR]

Python 3.11 standard library only (octoDNS is pip-installed into a
temporary venv for measurement F). Everything runs under one temporary
directory; every server listens on 127.0.0.1 only, on ports checked to be
free, and is stopped by pid in a `finally`. Each step has a time limit.

Measurements (per zone count N unless noted):

  A  cold import: `zoneagent import dump.json` into an empty named, until it
     exits 0 (zoneagent confirms the served serials itself; checked again
     here with dig on a sample and with a UDP SOA sweep of every zone).
  C  no-op rebuild right after the import: time and files written (0
     expected).
  B  named's own cold load of the same include: fresh named, time until
     every zone answers its SOA with the expected serial (UDP sweep).
  D  event latency with the daemon running: record.updated dropped into the
     spool (maildir), until named serves the new serial; beside it named's
     own `rndc reload ZONE` after rewriting a zone file.
  E  burst through the Unix socket (one env, 1000 zones by default): 10
     record.created per zone streamed on one connection; acks/s and time
     until every zone serves its final state.
  F  octoDNS (YamlProvider -> octodns_bind.ZoneFileProvider) syncing the same
     zones into an empty directory, then a second (no-op) run.
  G  zone.created through the spool until named answers the new zone's SOA,
     then zone.deleted until it answers REFUSED; beside them named's own
     `rndc addzone` of a hand-written file and `rndc delzone`.
  S  daemon start until it logs "zoneagent ready" (READY=1).
  R  peak RSS: the daemon's VmHWM beside named's VmRSS; the import's peak
     (wait4's ru_maxrss: the agent or its named-checkconf, whichever is
     larger) beside named's.

Every row of the table shows named's own figure from the same run and the
ratio to it, and the target of issue 10 where there is one, MET or MISSED
(targets are judged at 10k zones and more). The agent talks to named over
its own control-channel client with bind.add_zones (new zones by rndc
addzone); --rndc-process runs the rndc program instead. --perf DIR records
the daemon (not BIND's tools) with `perf record -g` during D and keeps the
top of `perf report` in DIR/perf-N.txt. --quick (100 zones, no octoDNS) is
what scripts/test.sh runs.

Notes:
  * The zoneagent binary is built (cargo build --release, unless --no-build)
    and copied into the work directory, so a concurrent rebuild of target/
    cannot change it mid-run; its sha256 is printed with the table.
  * `zoneagent status` takes the state lock, so while the daemon runs the
    state files are read directly (pending = deployed.pending_reload).
  * --journaled-fs runs everything on a fresh journaled ext4 (loop device):
    without a journal ext4 checks every candidate inode for a recent
    deletion when it creates a file, which makes the spool and temp-file
    churn far more expensive than on a normal server.
  * The machine may be shared: load averages and CPU times are reported next
    to wall-clock times.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import json
import math
import os
import random
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMED_PRIVATE = REPO / "scripts" / "named-private.sh"
NAMESERVERS = ["ns1.vps.org.", "ns2.vps.org."]
RECORDS_PER_ZONE = 20


class BenchError(Exception):
    """A step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def now() -> float:
    return time.perf_counter()


# ---------------------------------------------------------------------------
# Processes and ports
# ---------------------------------------------------------------------------


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def proc_cpu(pid: int | None) -> tuple[float, float]:
    """(own user+sys, waited-for children's user+sys) of a process, seconds."""
    if pid is None:
        return 0.0, 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0, 0.0
    tck = os.sysconf("SC_CLK_TCK")
    # fields[0] is the state (field 3): utime is field 14, i.e. fields[11]
    return (int(fields[11]) + int(fields[12])) / tck, (int(fields[13]) + int(fields[14])) / tck


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def run(argv, *, timeout: float, check: bool = True, env=None, cwd=None, what: str = ""):
    """Runs a command with a time limit; raises BenchError on failure. The
    result carries `.wall`, `.cpu` (user+sys of it and its children) and
    `.maxrss_kib` (its peak resident set, from wait4)."""
    t0 = now()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=err, env=env, cwd=cwd)
        except OSError as e:
            raise BenchError(f"{what or argv[0]}: cannot run: {e}") from e
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = now() - t0
        if wall >= timeout and proc.returncode < 0:
            raise BenchError(f"{what or argv[0]}: timed out after {timeout} s")
        out.seek(0)
        err.seek(0)
        p = subprocess.CompletedProcess(proc.args, proc.returncode,
                                        out.read().decode(errors="replace"),
                                        err.read().decode(errors="replace"))
    p.wall = wall
    # wait4's ru_maxrss is the largest of the child and its waited-for
    # descendants (for `import`: the agent or its named-checkconf).
    p.cpu = usage.ru_utime + usage.ru_stime
    p.maxrss_kib = usage.ru_maxrss
    if check and p.returncode != 0:
        raise BenchError(
            f"{what or argv[0]} exited {p.returncode}\n"
            f"argv: {' '.join(map(str, argv))}\n"
            f"stdout (tail): {p.stdout[-3000:]}\nstderr (tail): {p.stderr[-3000:]}"
        )
    return p


def proc_rss_kib(pid: int | None) -> dict:
    """VmRSS and VmHWM (peak) of a running process, KiB."""
    out = {"rss": None, "hwm": None}
    if pid is None:
        return out
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                out["hwm"] = int(line.split()[1])
    return out


def ports_in_use() -> set[int]:
    used = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(f).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) > 3:
                used.add(int(parts[1].rsplit(":", 1)[1], 16))
    return used


_GIVEN_PORTS: set[int] = set()


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (and not in /proc/net)."""
    used = ports_in_use()
    rng = random.Random()
    for _ in range(500):
        port = rng.randrange(20000, 60000)
        if port in used or port in _GIVEN_PORTS:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _GIVEN_PORTS.add(port)
        return port
    raise BenchError("no free port found on 127.0.0.1")


def pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # state is the field after the ")" that ends the command name
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class Named:
    """A private named on 127.0.0.1 (started with scripts/named-private.sh)."""

    def __init__(self, directory: Path, include: Path):
        self.dir = directory
        self.include = include
        self.port = free_port()
        self.ctl = free_port()
        self.rndc: list[str] = []
        self.pid: int | None = None

    def start_script(self) -> float:
        """First start: named-private.sh writes the config and the key."""
        t0 = now()
        p = run(
            ["bash", NAMED_PRIVATE, "start", self.dir, self.port, self.ctl, self.include],
            timeout=60,
            what="named-private.sh start",
        )
        elapsed = now() - t0
        env = {}
        for line in p.stdout.splitlines():
            if "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip().strip('"')
        if "RNDC" not in env:
            raise BenchError(f"named-private.sh printed no RNDC line: {p.stdout!r}")
        self.rndc = env["RNDC"].split()
        self.pid = self.read_pid()
        return elapsed

    def start_background(self) -> tuple[subprocess.Popen, float]:
        """Restarts named with the config the script wrote, without waiting:
        returns the foreground process (it exits once named has daemonized,
        which at start-up is after the zones have loaded) and the wall-clock
        epoch at exec."""
        used = ports_in_use()
        if self.port in used or self.ctl in used:
            raise BenchError(f"port {self.port} or {self.ctl} is in use; cannot restart named")
        epoch = time.time()
        proc = subprocess.Popen(
            ["named", "-4", "-L", str(self.dir / "named.log"), "-c", str(self.dir / "named.conf")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        return proc, epoch

    def read_pid(self, wait: float = 0) -> int:
        deadline = time.monotonic() + wait
        while True:
            try:
                pid = int((self.dir / "named.pid").read_text().strip())
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if f"-c {self.dir}/named.conf" in cmd and pid_alive(pid):
                    return pid
            except (OSError, ValueError):
                pass
            if time.monotonic() >= deadline:
                raise BenchError(f"named in {self.dir} has no live pid")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        if not pid_alive(pid):
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            log(f"named pid {pid} ignored SIGTERM; SIGKILL")
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        with contextlib.suppress(OSError):
            (self.dir / "named.pid").unlink()

    def rndc_cmd(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        return run([*self.rndc, *args], timeout=timeout, what=f"rndc {' '.join(args)}")


# ---------------------------------------------------------------------------
# DNS over UDP (stdlib socket)
# ---------------------------------------------------------------------------

T_A, T_SOA, T_TXT = 1, 6, 16
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}


def encode_question(name: str, qtype: int) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        b = label.encode("ascii")
        out.append(len(b))
        out += b
    out.append(0)
    out += struct.pack("!HH", qtype, 1)
    return bytes(out)


def skip_name(buf: bytes, off: int) -> int:
    while True:
        n = buf[off]
        if n == 0:
            return off + 1
        if n & 0xC0 == 0xC0:
            return off + 2
        off += 1 + n


def parse_response(buf: bytes):
    """(id, rcode, question bytes, [(type, rdata)])."""
    qid, flags, qd, an, _ns, _ar = struct.unpack_from("!HHHHHH", buf, 0)
    off = 12
    qstart = off
    for _ in range(qd):
        off = skip_name(buf, off) + 4
    question = buf[qstart:off]
    answers = []
    for _ in range(an):
        off = skip_name(buf, off)
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", buf, off)
        off += 10
        answers.append((rtype, buf, off, rdlen))
        off += rdlen
    return qid, flags & 0xF, question, answers


def soa_serial_of(answers) -> int | None:
    for rtype, buf, off, _n in answers:
        if rtype == T_SOA:
            off = skip_name(buf, off)
            off = skip_name(buf, off)
            return struct.unpack_from("!I", buf, off)[0]
    return None


def a_values_of(answers) -> set[str]:
    return {
        ".".join(str(b) for b in buf[off : off + 4]) for t, buf, off, n in answers if t == T_A and n == 4
    }


class Resolver:
    """One UDP socket towards named; single queries with a deadline."""

    def __init__(self, port: int):
        self.server = ("127.0.0.1", port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.next_id = random.randrange(65536)

    def close(self) -> None:
        self.sock.close()

    def query(self, name: str, qtype: int, timeout: float = 0.2):
        """(rcode, answers) or None on timeout."""
        self.next_id = (self.next_id + 1) & 0xFFFF
        qid = self.next_id
        question = encode_question(name, qtype)
        try:
            self.sock.sendto(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + question, self.server)
        except OSError:
            return None
        deadline = now() + timeout
        while True:
            left = deadline - now()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            try:
                buf = self.sock.recv(65535)
            except BlockingIOError:
                continue
            except OSError:  # ICMP port unreachable: nothing listens yet
                return None
            try:
                rid, rcode, q, answers = parse_response(buf)
            except (struct.error, IndexError):
                continue
            if rid == qid and q.lower() == question.lower():
                return rcode, answers

    def serial(self, zone: str, timeout: float = 0.2) -> int | None:
        r = self.query(zone, T_SOA, timeout)
        if r is None or r[0] != 0:
            return None
        return soa_serial_of(r[1])

    def wait_serial_change(self, zone: str, old: int | None, deadline: float, interval: float = 0.001):
        """Polls SOA every `interval` until the serial differs from `old`;
        returns (perf_counter time seen, serial, queries) or raises."""
        queries = 0
        while True:
            t_send = now()
            if t_send > deadline:
                raise BenchError(f"{zone}: serial still {old} at the deadline")
            r = self.query(zone, T_SOA, timeout=0.05)
            queries += 1
            t = now()
            if r is not None and r[0] == 0:
                s = soa_serial_of(r[1])
                if s is not None and s != old:
                    return t, s, queries
            pause = t_send + interval - now()
            if pause > 0:
                time.sleep(pause)


def sweep(port: int, items, check, deadline: float, window: int = 200, min_round: float = 0.005,
          resend_after: float = 0.2):
    """Queries every (name, qtype) of `items` until `check(i, rcode, answers)`
    holds for each, re-asking the ones that do not hold in rounds (pipelined,
    at most `window` in flight). Returns (perf time the last one held,
    stats dict). Raises BenchError at the deadline with what is missing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
        if opt is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, opt, 8 << 20)
                break
    sock.setblocking(False)
    server = ("127.0.0.1", port)
    questions = [encode_question(n, t) for n, t in items]
    pending = set(range(len(items)))
    last_answer: dict[int, str] = {}
    sent = answered = rounds = lost = 0
    last_ok = now()
    qid = random.randrange(65536)
    try:
        while pending:
            rounds += 1
            round_start = now()
            todo = deque(sorted(pending))
            inflight: dict[int, tuple[int, float]] = {}
            while todo or inflight:
                if now() > deadline:
                    missing = sorted(pending)
                    sample = ", ".join(f"{items[i][0]} ({last_answer.get(i, 'no answer')})" for i in missing[:5])
                    raise BenchError(f"{len(missing)} of {len(items)} not as expected at the deadline: {sample}")
                while todo and len(inflight) < window:
                    i = todo.popleft()
                    qid = (qid + 1) & 0xFFFF
                    while qid in inflight:
                        qid = (qid + 1) & 0xFFFF
                    try:
                        sock.sendto(struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + questions[i], server)
                    except BlockingIOError:
                        todo.appendleft(i)
                        break
                    except OSError:  # e.g. ECONNREFUSED reported late: count as lost
                        pass
                    inflight[qid] = (i, now())
                    sent += 1
                r, _, _ = select.select([sock], [], [], 0.01)
                if r:
                    while True:
                        try:
                            buf = sock.recv(65535)
                        except BlockingIOError:
                            break
                        except OSError:  # ICMP errors while named is not yet listening
                            continue
                        try:
                            rid, rcode, q, answers = parse_response(buf)
                        except (struct.error, IndexError):
                            continue
                        entry = inflight.get(rid)
                        if entry is None or q.lower() != questions[entry[0]].lower():
                            continue
                        del inflight[rid]
                        answered += 1
                        i = entry[0]
                        try:
                            ok = check(i, rcode, answers)
                        except Exception as e:  # a malformed answer counts as not yet
                            ok = False
                            last_answer[i] = f"check error {e}"
                        if ok:
                            if i in pending:
                                pending.discard(i)
                                last_ok = now()
                        else:
                            last_answer[i] = RCODES.get(rcode, str(rcode)) + (
                                f" serial {soa_serial_of(answers)}" if rcode == 0 else ""
                            )
                t = now()
                for k, (i, ts) in list(inflight.items()):
                    if t - ts > resend_after:
                        del inflight[k]
                        lost += 1
                        todo.append(i)
            if pending:
                pause = round_start + min_round - now()
                if pause > 0:
                    time.sleep(pause)
    finally:
        sock.close()
    return last_ok, {"queries": sent, "answers": answered, "rounds": rounds, "lost": lost}


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def zone_uuid(i: int) -> str:
    return f"bench-zone-{i:05d}"


def zone_domain(i: int) -> str:
    return f"z{i:05d}.bench.test"


def make_zone(i: int) -> dict:
    d = zone_domain(i)
    u = zone_uuid(i)
    hi, lo = (i >> 8) & 255, i & 255
    dkim_key = base64.b64encode(hashlib.sha512(d.encode()).digest() * 5).decode()  # 428 chars
    recs = [
        ("A", "@", f"10.{hi}.{lo}.1", 3600, None),
        ("A", "www", f"10.{hi}.{lo}.2", 300, None),
        ("A", "mail", f"10.{hi}.{lo}.3", 3600, None),
        ("A", "mail2", f"10.{hi}.{lo}.4", 3600, None),
        ("A", "api", f"10.{hi}.{lo}.5", 300, None),
        ("A", "sip", f"10.{hi}.{lo}.6", None, None),
        # i in two 16-bit groups: up to 100,000 zones have valid addresses.
        ("AAAA", "@", f"2001:0db8:{i >> 16:x}:{i & 0xFFFF:x}::1", 3600, None),
        ("AAAA", "www", f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::2", 300, None),
        ("AAAA", "api", f"2001:db8:{i >> 16:x}:{i & 0xFFFF:x}:0:0:0:5", 300, None),
        ("MX", "@", f"mail.{d}", 3600, 10),
        ("MX", "@", f"mail2.{d}", 3600, 20),
        ("TXT", "@", f"v=spf1 mx a:mail.{d} ~all", 3600, None),
        ("TXT", "sel1._domainkey", f"v=DKIM1; k=rsa; p={dkim_key}", 3600, None),
        ("TXT", "_dmarc", f"v=DMARC1; p=reject; rua=mailto:dmarc@{d}", None, None),
        ("CNAME", "blog", f"www.{d}", 3600, None),
        ("CNAME", "shop", f"www.{d}.", 3600, None),
        ("SRV", "_sip._tcp", f"5 5060 sip.{d}", 3600, 10),
        ("SRV", "_xmpp-client._tcp", f"0 5222 mail.{d}", 3600, 20),
        ("CAA", "@", '0 issue "letsencrypt.org"', 3600, None),
        ("CAA", "@", f'0 iodef "mailto:security@{d}"', 3600, None),
    ]
    assert len(recs) == RECORDS_PER_ZONE
    records = [
        {
            "uuid": f"{u}-r{j:02d}",
            "record_type": t,
            "name": name,
            "value": value,
            "ttl": ttl,
            "priority": prio,
            "created_at": "2026-01-18T16:45:00Z",
        }
        for j, (t, name, value, ttl, prio) in enumerate(recs)
    ]
    return {
        "uuid": u,
        "domain": d,
        "created_at": "2026-01-18T16:45:00Z",
        "record_count": len(records),
        "records": records,
    }


API_RECORD = 4  # index of the "api" A record (changed by the latency events)


# ---------------------------------------------------------------------------
# zoneagent environment
# ---------------------------------------------------------------------------


def toml_str(s) -> str:
    return json.dumps(str(s))


class Env:
    """One zoneagent + named setup with N zones."""

    def __init__(self, root: Path, n: int, binary: Path, with_socket: bool, native_control: bool = True):
        self.root = root
        self.native_control = native_control
        self.ready_s: float | None = None
        self.n = n
        self.binary = binary
        self.named = Named(root / "named", root / "named.conf.zoneagent")
        self.zones_dir = root / "zones"
        self.state = root / "state"
        self.spool = root / "spool"
        self.socket_path = root / "agent.sock" if with_socket else None
        self.config = root / "zoneagent.toml"
        self.daemon: subprocess.Popen | None = None
        self.daemon_log = root / "daemon.log"
        self.domains = [zone_domain(i) for i in range(n)]

    def write_config(self) -> None:
        lines = [
            "[paths]",
            f"spool = {toml_str(self.spool)}",
            f"state = {toml_str(self.state)}",
            f"zones = {toml_str(self.zones_dir)}",
            f"include = {toml_str(self.named.include)}",
            "[zone]",
            f"nameservers = {json.dumps(NAMESERVERS)}",
            "[bind]",
            f"rndc = {json.dumps(self.named.rndc)}",
            f"server = {toml_str(f'127.0.0.1:{self.named.port}')}",
            "confirm_timeout = 120",
        ]
        if self.native_control:
            # The agent's own control-channel client (one kept connection)
            # and rndc addzone/delzone for new and deleted zones.
            lines += [
                f"control = {toml_str(f'127.0.0.1:{self.named.ctl}')}",
                f"control_key_file = {toml_str(self.named.dir / 'rndc.key')}",
                "add_zones = true",
            ]
        lines += [
            "[log]",
            'format = "json"',
        ]
        if self.socket_path:
            lines += ["[socket]", f"path = {toml_str(self.socket_path)}", 'mode = "0600"']
        self.config.write_text("\n".join(lines) + "\n")

    def za(self, *args, timeout: float, check: bool = True, env_extra=None):
        env = dict(os.environ)
        if env_extra:
            env.update(env_extra)
        return run([self.binary, "--config", self.config, *args], timeout=timeout, check=check,
                   env=env, what=f"zoneagent {args[0]}")

    def status(self) -> dict:
        p = self.za("status", "--json", timeout=120)
        return json.loads(p.stdout)

    def served_serials_from_state(self) -> dict[str, tuple[int, bool]]:
        """domain -> (serial, pending) read from the state files (usable
        while the daemon holds the lock)."""
        out = {}
        for f in (self.state / "zones").glob("*.json"):
            d = json.loads(f.read_text()).get("deployed") or {}
            if d:
                out[d["domain"]] = (d["serial"], bool(d.get("pending_reload")))
        return out

    def start_daemon(self) -> None:
        env = dict(os.environ, ZONEAGENT_LOG="info")
        logf = open(self.daemon_log, "ab")
        self.daemon = subprocess.Popen(
            [str(self.binary), "--config", str(self.config), "run"],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
        )
        logf.close()
        t0 = now()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise BenchError(f"zoneagent run exited {self.daemon.returncode}: {tail(self.daemon_log)}")
            text = self.daemon_log.read_text(errors="replace")
            if "zoneagent ready" in text and (self.socket_path is None or self.socket_path.exists()):
                self.ready_s = now() - t0
                return
            time.sleep(0.02)
        raise BenchError(f"zoneagent run not ready within 60 s: {tail(self.daemon_log)}")

    def stop_daemon(self) -> int | None:
        if self.daemon is None:
            return None
        self.daemon_rss = proc_rss_kib(self.daemon.pid)
        p, self.daemon = self.daemon, None
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                log(f"zoneagent run pid {p.pid} ignored SIGTERM; SIGKILL")
                p.kill()
                p.wait(timeout=10)
        return p.returncode

    def stop_all(self) -> None:
        with contextlib.suppress(Exception):
            self.stop_daemon()
        with contextlib.suppress(Exception):
            self.named.stop()


def tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return "(no log)"


def file_snapshot(paths: list[Path]) -> dict[str, tuple]:
    snap = {}
    for base in paths:
        if base.is_file():
            st = base.stat()
            snap[str(base)] = (st.st_ino, st.st_mtime_ns, st.st_size)
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            for fn in filenames:
                p = os.path.join(dirpath, fn)
                with contextlib.suppress(OSError):
                    st = os.lstat(p)
                    snap[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return snap


def snapshot_diff(before: dict, after: dict) -> list[str]:
    changed = [p for p in after if p in before and before[p] != after[p]]
    added = [p for p in after if p not in before]
    removed = [p for p in before if p not in after]
    return [f"changed {p}" for p in changed] + [f"added {p}" for p in added] + [f"removed {p}" for p in removed]


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s) - 1e-9) - 1))
    return s[k]


LOG_TS = re.compile(r'"timestamp":"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z"')


def log_epoch(line: str) -> float | None:
    m = LOG_TS.search(line)
    if not m:
        return None
    stamp = m.group(1)
    base, _, frac = stamp.partition(".")
    t = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t + (float("0." + frac) if frac else 0.0)


def log_fields(line: str) -> dict:
    """The fields of one daemon log line: JSON (`[log] format = "json"`,
    the fields under "fields") or text (`key=value`)."""
    with contextlib.suppress(ValueError):
        rec = json.loads(line)
        if isinstance(rec, dict):
            return rec.get("fields", rec)
    return {k: int(v) for k, v in re.findall(r"\b(\w+)[=:] ?(\d+)\b", line)}


def batch_lines(path: Path, since: int = 0) -> list[dict]:
    """The daemon's `batch done` lines (after byte offset `since`)."""
    return log_lines(path, "batch done",
                     ("events", "applied", "failed", "zones_written", "zones_deleted", "pending"), since)


def deployed_lines(path: Path, since: int = 0) -> list[dict]:
    """The daemon's `deployed` lines: where each pass's time went."""
    return log_lines(path, "deployed", ("zones", "render_ms", "check_ms", "install_and_save_ms",
                                        "reload_and_confirm_ms"), since)


def log_lines(path: Path, message: str, keys: tuple, since: int = 0) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        f.seek(since)
        for raw in f:
            line = raw.decode(errors="replace")
            if message not in line:
                continue
            fields = log_fields(line)
            if fields.get("message", message) != message:
                continue
            rec = {"epoch": log_epoch(line)}
            for key in keys:
                v = fields.get(key)
                rec[key] = int(v) if isinstance(v, (int, float)) or (isinstance(v, str) and v.isdigit()) else None
            out.append(rec)
    return out


# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------


def measure_import(env: Env, dump: Path, args) -> dict:
    """A: cold import into an empty named; C follows from the caller."""
    res: dict = {}
    env.named.start_script()
    env.write_config()
    log(f"N={env.n}: named pid {env.named.pid} on 127.0.0.1:{env.named.port}; dry run, then import")
    p = env.za("import", "--dry-run", dump, timeout=args.step_timeout)
    res["dry_run_s"], res["dry_run_cpu_s"] = p.wall, p.cpu
    res["loadavg_before"] = loadavg()
    named_cpu0 = proc_cpu(env.named.pid)[0]
    p = env.za("import", dump, timeout=args.step_timeout)
    res["import_s"], res["import_cpu_s"], res["maxrss_kib"] = p.wall, p.cpu, p.maxrss_kib
    res["named_cpu_during_import_s"] = proc_cpu(env.named.pid)[0] - named_cpu0
    res["import_stderr"] = p.stderr.strip().splitlines()[-1:] if p.stderr.strip() else []

    # Independent checks: status, dig on a sample, a UDP sweep of all zones.
    st = env.status()
    serials = {z["domain"]: z["serial"] for z in st["zones"]}
    if len(serials) != env.n or st.get("pending") != 0:
        raise BenchError(f"after import: status shows {len(serials)} zones, pending {st.get('pending')}")
    rng = random.Random(7)
    sample = sorted({0, env.n - 1, *rng.sample(range(env.n), min(env.n, 20))})
    for i in sample:
        d = zone_domain(i)
        out = run(["dig", "@127.0.0.1", "-p", env.named.port, "+norec", "+short", "+time=2", "+tries=2",
                   d, "SOA"], timeout=20, what="dig").stdout.split()
        if len(out) < 3 or int(out[2]) != serials[d]:
            raise BenchError(f"dig {d} SOA gave {out}, state says serial {serials[d]}")
    d0 = zone_domain(sample[1] if len(sample) > 1 else 0)
    txt = run(["dig", "@127.0.0.1", "-p", env.named.port, "+norec", "+short", f"sel1._domainkey.{d0}", "TXT"],
              timeout=20, what="dig").stdout
    if "v=DKIM1" not in txt or txt.count('"') < 4:
        raise BenchError(f"DKIM TXT of {d0} not served as split strings: {txt!r}")
    res["dig_checked"] = len(sample)
    expected = [serials[d] for d in env.domains]
    sweep(env.named.port, [(d, T_SOA) for d in env.domains],
          lambda i, rc, ans: rc == 0 and soa_serial_of(ans) == expected[i],
          deadline=now() + 60)
    res["sweep_checked"] = env.n
    res["serials"] = serials
    # Breakdown evidence: named-checkconf -z over every zone (what the
    # import runs once over the temporary files).
    chk = env.root / "checkconf.conf"
    chk.write_text(
        f'options {{ directory "{env.zones_dir}"; check-names primary fail; check-mx fail; '
        'check-mx-cname fail; check-srv-cname fail; check-integrity yes; };\n'
        + env.named.include.read_text()
    )
    p = run(["named-checkconf", "-z", chk], timeout=args.step_timeout, what="named-checkconf -z")
    res["checkconf_all_s"] = p.wall
    return res


def measure_rebuild(env: Env, args) -> dict:
    """C: no-op rebuild; counts files written."""
    paths = [env.zones_dir, env.state, env.named.include]
    before = file_snapshot(paths)
    p = env.za("rebuild", timeout=args.step_timeout)
    after = file_snapshot(paths)
    diff = snapshot_diff(before, after)
    # a second run, to see the warm-cache figure
    p2 = env.za("rebuild", timeout=args.step_timeout)
    return {
        "rebuild_s": p.wall,
        "rebuild_cpu_s": p.cpu,
        "rebuild_again_s": p2.wall,
        "writes": len(diff),
        "writes_sample": diff[:10],
        "files_watched": len(before),
        "stderr": p.stderr.strip().splitlines()[-1:] if p.stderr.strip() else [],
    }


NAMED_STAMP = re.compile(r"^(\d\d-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d)\.(\d{3})")


def named_log_epoch(line: str) -> float | None:
    """The epoch of a named log line (`print-time yes`), if it has one."""
    m = NAMED_STAMP.match(line)
    if not m:
        return None
    return time.mktime(time.strptime(m.group(1), "%d-%b-%Y %H:%M:%S")) + int(m.group(2)) / 1000


def named_log_all_loaded(named_log: Path, offset: int) -> float | None:
    """Epoch of the first `all zones loaded` logged past byte `offset`."""
    try:
        with open(named_log, "rb") as f:
            f.seek(offset)
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if "all zones loaded" in line and (at := named_log_epoch(line)) is not None:
            return at
    return None


def measure_named_reload_all(env: Env, args) -> dict:
    """named's own figure for E: `rndc reload` of a running named after every
    zone file changed (touched, so named loads each again), until its log
    has a `loaded serial` line for each (its `all zones loaded` comes when
    the loads are queued, long before they are done). The agent's files
    stay as they are."""
    named_log = env.named.dir / "named.log"
    files = [p for p in env.zones_dir.iterdir() if p.name.endswith(".zone") and not p.name.startswith(".")]
    later = time.time() + 2
    for p in files:
        os.utime(p, (later, later))
    offset = named_log.stat().st_size
    epoch0 = time.time()
    env.named.rndc_cmd("reload", timeout=args.step_timeout)
    deadline = now() + args.step_timeout
    seen, last = 0, None
    with open(named_log, "rb") as f:
        f.seek(offset)
        buf = b""
        while seen < len(files) and now() < deadline:
            chunk = f.read()
            if not chunk:
                time.sleep(0.05)
                continue
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace")
                if "loaded serial" in line and (at := named_log_epoch(line)) is not None:
                    seen += 1
                    last = at
    if seen < len(files) or last is None:
        return {"zones": len(files), "loaded": seen, "error": "named did not load every zone again"}
    return {"zones": len(files), "all_loaded_s": last - epoch0}


def measure_named_load(env: Env, serials: dict, repeats: int, args) -> dict:
    """B: stop named, start it again on the same include, until every zone
    answers its SOA with the expected serial (swept from the moment named
    is started)."""
    expected = [serials[d] for d in env.domains]
    runs = []
    named_log = env.named.dir / "named.log"
    for _ in range(repeats):
        env.named.stop()
        time.sleep(0.2)
        offset = named_log.stat().st_size if named_log.exists() else 0
        t0 = now()
        proc, epoch = env.named.start_background()
        parent = {}

        def waiter():
            proc.wait()
            parent["t"] = now()

        threading.Thread(target=waiter, daemon=True).start()
        try:
            # Until named answers at all (nothing listens at first: queries
            # would only time out), one probe every 2 ms; then every zone.
            probe = Resolver(env.named.port)
            try:
                while probe.query(env.domains[0], T_SOA, timeout=0.002) is None:
                    if now() - t0 > args.step_timeout:
                        raise BenchError("named did not answer at all after its start")
                    time.sleep(0.002)
            finally:
                probe.close()
            t_listen = now() - t0
            t_done, stats = sweep(env.named.port, [(d, T_SOA) for d in env.domains],
                                  lambda i, rc, ans: rc == 0 and soa_serial_of(ans) == expected[i],
                                  deadline=now() + args.step_timeout, min_round=0.01, resend_after=0.05)
        finally:
            try:
                proc.wait(timeout=args.step_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            env.named.pid = env.named.read_pid(wait=10)
        if proc.returncode != 0:
            raise BenchError(f"named exited {proc.returncode} at start: {tail(named_log)}")
        logged = None
        for _ in range(50):
            logged = named_log_all_loaded(named_log, offset)
            if logged:
                break
            time.sleep(0.05)
        runs.append({
            "served_s": t_done - t0,
            "first_answer_s": t_listen,
            "named_parent_exit_s": parent.get("t", now()) - t0,
            "log_all_zones_loaded_s": (logged - epoch) if logged else None,
            **stats,
        })
    served = [r["served_s"] for r in runs]
    return {"runs": runs, "served_median_s": statistics.median(served), "served_min_s": min(served)}


def spool_event(spool: Path, event: dict, seqno: int) -> None:
    """Writes an event the maildir way: tmp/, fsync, rename into new/, fsync new/."""
    name = f"{time.time_ns():020d}.bench.{seqno:06d}.json"
    tmp = spool / "tmp" / name
    with open(tmp, "wb") as f:
        f.write(json.dumps(event).encode())
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, spool / "new" / name)
    fd = os.open(spool / "new", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


SOA_LINE = re.compile(r"^(@\s.*?\bSOA\s+\S+\s+\S+\s+)(\d+)", re.M)
API_LINE = re.compile(r"^(api\s+\d+\s+IN\s+A\s+)(\S+)$", re.M)


def measure_latency(env: Env, samples: int, args) -> dict:
    """D: one record.updated through the spool until the new serial is
    served, interleaved with named's own rewrite + `rndc reload ZONE`."""
    za_zone = 0
    own_zone = env.n - 1 if env.n > 1 else 0
    za_domain, own_domain = zone_domain(za_zone), zone_domain(own_zone)
    own_file = env.zones_dir / f"{own_domain}.zone"
    own_text = own_file.read_text()
    if not SOA_LINE.search(own_text) or not API_LINE.search(own_text):
        raise BenchError(f"cannot find the SOA serial or the api A line in {own_file}:\n{own_text[:600]}")
    res = Resolver(env.named.port)
    za_lat, own_lat, za_queries, wrong_values = [], [], [], 0
    api = make_zone(za_zone)["records"][API_RECORD]
    log_offset = env.daemon_log.stat().st_size
    recorder = start_perf(env, args)
    cpu0 = proc_cpu(env.daemon.pid)
    named_cpu0 = proc_cpu(env.named.pid)[0]
    load0 = loadavg()
    try:
        za_serial = res.serial(za_domain, 1.0)
        own_serial = res.serial(own_domain, 1.0)
        if za_serial is None or own_serial is None:
            raise BenchError(f"{za_domain} or {own_domain} not served before the latency run")
        for k in range(samples):
            # zoneagent: one event through the spool
            value = f"10.250.{(k >> 8) & 255}.{k & 255}"
            event = {
                "id": f"bench-lat-{k}-{random.randrange(1 << 30)}",
                "type": "record.updated",
                "zone_uuid": zone_uuid(za_zone),
                "record": {**{x: api[x] for x in ("uuid", "record_type", "name", "ttl", "priority")},
                           "value": value},
            }
            t0 = now()
            spool_event(env.spool, event, k)
            t_seen, za_serial_new, q = res.wait_serial_change(za_domain, za_serial, t0 + 30)
            za_lat.append(t_seen - t0)
            za_queries.append(q)
            za_serial = za_serial_new
            r = res.query(f"api.{za_domain}", T_A, 1.0)
            if r is None or a_values_of(r[1]) != {value}:
                wrong_values += 1
            time.sleep(random.uniform(0.02, 0.05))

            # named alone: rewrite the file with serial + 1, rndc reload ZONE
            own_serial_new = (own_serial + 1) & 0xFFFFFFFF or 1
            text = SOA_LINE.sub(lambda m: m.group(1) + str(own_serial_new), own_text, count=1)
            text = API_LINE.sub(lambda m: m.group(1) + value, text, count=1)
            tmp = own_file.with_name(f".{own_file.name}.bench")
            t0 = now()
            with open(tmp, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, own_file)
            os.utime(own_file)
            env.named.rndc_cmd("reload", own_domain)
            t_seen, s, _ = res.wait_serial_change(own_domain, own_serial, t0 + 30)
            own_lat.append(t_seen - t0)
            own_serial = s
            time.sleep(random.uniform(0.02, 0.05))
    finally:
        res.close()
    cpu1 = proc_cpu(env.daemon.pid)
    named_cpu1 = proc_cpu(env.named.pid)[0]
    profile = stop_perf(recorder, env, args)
    batches = batch_lines(env.daemon_log, log_offset)
    return {
        "profile": profile,
        # named's CPU over the run covers both reloads of each sample (the
        # agent's and its own): halved, it is named's CPU per reload.
        "named_cpu_ms_per_reload": 1000 * (named_cpu1 - named_cpu0) / (2 * samples),
        "samples": samples,
        "loadavg": f"{load0} -> {loadavg()}",
        "daemon_cpu_ms_per_event": 1000 * (cpu1[0] - cpu0[0]) / samples,
        "daemon_children_cpu_ms_per_event": 1000 * (cpu1[1] - cpu0[1]) / samples,
        "zoneagent_ms": summarize_ms(za_lat),
        "named_reload_ms": summarize_ms(own_lat),
        "p50_gap_ms": 1000 * (pct(za_lat, 50) - pct(own_lat, 50)),
        "wrong_values": wrong_values,
        "queries_per_sample_median": statistics.median(za_queries),
        "daemon_batches": len(batches),
        "daemon_zones_written": sum(b["zones_written"] or 0 for b in batches),
    }


def start_perf(env: Env, args, what: str = "latency"):
    """`perf record -g` on the daemon (not its children: BIND's tools are
    other processes), when --perf is given."""
    if not args.perf or shutil.which("perf") is None:
        return None
    out = Path(args.perf) / f"perf-{what}-{env.n}.data"
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o", str(out), "-p", str(env.daemon.pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf attaches
    return proc, out


def stop_perf(recorder, env: Env, args, what: str = "latency") -> dict | None:
    """Stops perf and keeps the top of `perf report` (self time by symbol)."""
    if recorder is None:
        return None
    proc, out = recorder
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    # perf follows the daemon's children until they exec: keep the daemon's
    # own threads (comm zoneagent), not BIND's tools.
    rep = run(["perf", "report", "-i", out, "--no-children", "--stdio", "--comms", "zoneagent",
               "--percentage", "relative", "--sort", "dso,symbol", "--percent-limit", "0.7", "-g", "none"],
              timeout=300, check=False, what="perf report")
    lines = [ln for ln in rep.stdout.splitlines() if ln.strip() and not ln.startswith("#")]
    (Path(args.perf) / f"perf-{what}-{env.n}.txt").write_text(rep.stdout)
    return {"data": str(out), "top": lines[:40]}


def zone_file_text(domain: str) -> str:
    return (f"$ORIGIN {domain}.\n$TTL 3600\n"
            f"@ IN SOA {NAMESERVERS[0]} hostmaster.{domain}. 1 3600 600 604800 300\n"
            + "".join(f"@ IN NS {ns}\n" for ns in NAMESERVERS))


def measure_created(env: Env, samples: int, args) -> dict:
    """G: zone.created through the spool until named answers the new zone's
    SOA, then zone.deleted until it answers REFUSED; beside each, named's
    own `rndc addzone` of a hand-written file and `rndc delzone`."""
    res = Resolver(env.named.port)
    tag = f"{random.randrange(1 << 20):05x}"
    za_add, za_del, own_add, own_del = [], [], [], []
    own_ok = True

    def wait_rcode(name: str, want, deadline: float) -> float:
        while True:
            r = res.query(name, T_SOA, timeout=0.05)
            t = now()
            if r is not None and want(r):
                return t
            if t > deadline:
                raise BenchError(f"{name}: not as expected at the deadline (last {r and r[0]})")
            time.sleep(0.001)

    served = lambda r: r[0] == 0 and soa_serial_of(r[1]) is not None  # noqa: E731
    refused = lambda r: r[0] == 5  # noqa: E731
    try:
        for k in range(samples):
            uuid, domain = f"bench-new-{tag}-{k}", f"new{k}-{tag}.bench.test"
            t0 = now()
            spool_event(env.spool, {"id": f"{uuid}-c", "type": "zone.created",
                                    "zone": {"uuid": uuid, "domain": domain,
                                             "created_at": "2026-01-18T16:45:00Z"}}, k)
            za_add.append(wait_rcode(domain, served, t0 + 60) - t0)
            time.sleep(random.uniform(0.02, 0.05))
            t0 = now()
            spool_event(env.spool, {"id": f"{uuid}-d", "type": "zone.deleted", "zone_uuid": uuid}, k)
            za_del.append(wait_rcode(domain, refused, t0 + 60) - t0)
            time.sleep(random.uniform(0.02, 0.05))
            if not own_ok:
                continue
            own = f"own{k}-{tag}.bench.test"
            path = env.root / f"{own}.zone"
            t0 = now()
            path.write_text(zone_file_text(own))
            p = run([*env.named.rndc, "addzone", own, f'{{ type primary; file "{path}"; }};'],
                    timeout=30, check=False, what="rndc addzone")
            if p.returncode != 0:
                log(f"named's own addzone not measured: {p.stderr.strip()[:200]}")
                own_ok = False
                continue
            own_add.append(wait_rcode(own, served, t0 + 60) - t0)
            t0 = now()
            env.named.rndc_cmd("delzone", own)
            own_del.append(wait_rcode(own, refused, t0 + 60) - t0)
            time.sleep(random.uniform(0.02, 0.05))
    finally:
        res.close()
    out = {"samples": samples, "created_ms": summarize_ms(za_add), "deleted_ms": summarize_ms(za_del)}
    if own_add:
        out["named_addzone_ms"] = summarize_ms(own_add)
        out["named_delzone_ms"] = summarize_ms(own_del)
    return out


def summarize_ms(values: list[float]) -> dict:
    ms = [v * 1000 for v in values]
    return {
        "p50": pct(ms, 50),
        "p90": pct(ms, 90),
        "p99": pct(ms, 99),
        "max": max(ms),
        "min": min(ms),
        "mean": statistics.fmean(ms),
    }


def measure_burst(env: Env, per_zone: int, args) -> dict:
    """E: one socket connection streams per_zone record.created per zone."""
    n = env.n
    events = []
    final = {}
    for k in range(per_zone):
        for i in range(n):
            name = f"b{k}"
            value = f"172.{16 + k}.{i >> 8 & 255}.{i & 255}"
            events.append({
                "id": f"bench-burst-{i}-{k}",
                "type": "record.created",
                "zone_uuid": zone_uuid(i),
                "record": {"uuid": f"{zone_uuid(i)}-burst-{k}", "record_type": "A", "name": name,
                           "value": value, "ttl": 300, "priority": None,
                           "created_at": "2026-01-18T16:45:00Z"},
            })
            final[i] = (f"{name}.{zone_domain(i)}", value)
    payload = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events).encode()
    total = len(events)
    log_offset = env.daemon_log.stat().st_size
    before = env.served_serials_from_state()

    recorder = start_perf(env, args, "burst")
    cpu0, named0, load0 = proc_cpu(env.daemon.pid), proc_cpu(env.named.pid)[0], loadavg()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(args.step_timeout)
    sock.connect(str(env.socket_path))
    acks = {"ok": 0, "err": 0, "first_err": None, "t_last": None, "error": None}

    def reader():
        buf = b""
        try:
            while acks["ok"] + acks["err"] < total:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    acks["error"] = "connection closed early"
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if line.startswith(b'{"ok":true'):
                        acks["ok"] += 1
                    elif b'"ok":true' in line:
                        acks["ok"] += 1
                    else:
                        acks["err"] += 1
                        acks["first_err"] = acks["first_err"] or line[:300].decode(errors="replace")
                acks["t_last"] = now()
        except OSError as e:
            acks["error"] = str(e)

    send_done = {}

    def writer():
        try:
            sock.sendall(payload)
            send_done["t"] = now()
        except OSError as e:
            send_done["error"] = str(e)

    rt = threading.Thread(target=reader, daemon=True)
    wt = threading.Thread(target=writer, daemon=True)
    t0 = now()
    epoch0 = time.time()
    rt.start()
    wt.start()
    wt.join(args.step_timeout)
    rt.join(args.step_timeout)
    with contextlib.suppress(OSError):
        sock.close()
    if acks["error"] or send_done.get("error") or acks["ok"] != total:
        raise BenchError(f"burst: {acks['ok']}/{total} acked ok, {acks['err']} refused "
                         f"(first: {acks['first_err']}), errors: {acks['error']} {send_done.get('error')}")
    t_acked = acks["t_last"] - t0

    # Every zone serves its final record (events apply in order, so the last
    # record of each zone being served means the zone has all of them).
    # A sample of one zone in 20 is watched first, so the watching does not
    # take named's CPU from the loading; then every zone is asked (that
    # sweep's end is the time taken).
    items = [final[i] for i in range(n)]
    sample = items[::20]
    sweep(env.named.port, [(name, T_A) for name, _ in sample],
          lambda i, rc, ans: rc == 0 and a_values_of(ans) == {sample[i][1]},
          deadline=now() + args.step_timeout, min_round=0.1)
    t_served, sweep_stats = sweep(env.named.port, [(name, T_A) for name, _ in items],
                                  lambda i, rc, ans: rc == 0 and a_values_of(ans) == {items[i][1]},
                                  deadline=now() + args.step_timeout, min_round=0.1)
    served_s = t_served - t0

    # Then: spool empty, no zone pending in the state, serials stable.
    deadline = now() + 60
    while True:
        left = [p for p in (env.spool / "new").iterdir() if not p.name.startswith(".")]
        st = env.served_serials_from_state()
        pending = sum(1 for _, p in st.values() if p)
        if not left and pending == 0:
            break
        if now() > deadline:
            raise BenchError(f"burst: {len(left)} events still in spool/new, {pending} zones pending after 60 s")
        time.sleep(0.01)
    t_quiet = now() - t0
    cpu1, named1 = proc_cpu(env.daemon.pid), proc_cpu(env.named.pid)[0]
    profile = stop_perf(recorder, env, args, "burst")
    st = env.served_serials_from_state()
    expected = [st[zone_domain(i)][0] for i in range(n)]
    sweep(env.named.port, [(zone_domain(i), T_SOA) for i in range(n)],
          lambda i, rc, ans: rc == 0 and soa_serial_of(ans) == expected[i], deadline=now() + 30)
    # Full check of every record added (outside the timing).
    want = {}
    for e in events:
        want[f"{e['record']['name']}.{zone_domain(int(e['zone_uuid'].rsplit('-', 1)[1]))}"] = e["record"]["value"]
    names = sorted(want)
    sweep(env.named.port, [(nm, T_A) for nm in names],
          lambda i, rc, ans: rc == 0 and a_values_of(ans) == {want[names[i]]}, deadline=now() + 60)
    failed = [p.name for p in (env.spool / "failed").iterdir()]
    changed = sum(1 for d, (s, _) in st.items() if before.get(d, (None,))[0] != s)

    batches = [b for b in batch_lines(env.daemon_log, log_offset) if b["epoch"] is None or b["epoch"] >= epoch0 - 1]
    last_batch = max((b["epoch"] for b in batches if b["epoch"]), default=None)
    return {
        "events": total,
        "zones": n,
        "acked_s": t_acked,
        "send_done_s": send_done.get("t", t0) - t0,
        "acked_per_s": total / t_acked if t_acked > 0 else float("inf"),
        "all_served_s": served_s,
        "spool_empty_and_confirmed_s": t_quiet,
        "daemon_last_batch_done_s": (last_batch - epoch0) if last_batch else None,
        "zones_with_new_serial": changed,
        "loadavg": f"{load0} -> {loadavg()}",
        "daemon_cpu_s": cpu1[0] - cpu0[0],
        "daemon_children_cpu_s": cpu1[1] - cpu0[1],
        "named_cpu_s": named1 - named0,
        "failed_events": len(failed),
        "passes": len(batches),
        "pass_events": [b["events"] for b in batches],
        "pass_done_at_s": [round(b["epoch"] - epoch0, 3) for b in batches if b["epoch"]],
        "pass_phases_ms": [{k: v for k, v in d.items() if k != "epoch"}
                           for d in deployed_lines(env.daemon_log, log_offset)
                           if d["epoch"] is None or d["epoch"] >= epoch0 - 1],
        "renders_zones_written": sum(b["zones_written"] or 0 for b in batches),
        "reloads_passes_with_writes": sum(1 for b in batches if (b["zones_written"] or 0) > 0),
        "sweep": sweep_stats,
        "perf": profile,
    }


# ---------------------------------------------------------------------------
# octoDNS
# ---------------------------------------------------------------------------


def octodns_yaml(zone: dict) -> dict:
    """octoDNS YamlProvider content for one API zone (same records)."""
    d = zone["domain"]
    groups: dict[tuple[str, str], list] = {}
    ttls: dict[tuple[str, str], int] = {}

    def absname(v: str) -> str:
        return v if v.endswith(".") else v + "."

    for r in zone["records"]:
        name = "" if r["name"] == "@" else r["name"]
        t = r["record_type"]
        ttl = r["ttl"] if r["ttl"] is not None else 3600
        key = (name, t)
        ttls[key] = min(ttls.get(key, ttl), ttl)
        v = r["value"]
        if t in ("A", "AAAA"):
            val = v
        elif t == "MX":
            val = {"preference": r["priority"], "exchange": absname(v)}
        elif t == "TXT":
            val = v.replace(";", "\\;")
        elif t == "CNAME":
            val = absname(v)
        elif t == "SRV":
            w, port, target = v.split()
            val = {"priority": r["priority"], "weight": int(w), "port": int(port), "target": absname(target)}
        elif t == "CAA":
            flags, tag, rest = v.split(" ", 2)
            val = {"flags": int(flags), "tag": tag, "value": rest.strip('"')}
        else:
            raise BenchError(f"octoDNS conversion: no mapping for {t}")
        groups.setdefault(key, []).append(val)
    groups[("", "NS")] = list(NAMESERVERS)
    ttls[("", "NS")] = 3600
    out: dict[str, list] = {}
    for (name, t), vals in groups.items():
        rec = {"type": t, "ttl": ttls[(name, t)]}
        if t == "CNAME":
            rec["value"] = vals[0]
        else:
            rec["values"] = vals
        out.setdefault(name, []).append(rec)
    return {k: (v[0] if len(v) == 1 else v) for k, v in out.items()}


def measure_octodns(root: Path, zones: list[dict], args) -> dict:
    """F: octodns-sync from YAML to zone files, cold then again (no-op)."""
    venv = root / "octodns-venv"
    log("octoDNS: creating a venv and installing octodns octodns-bind (PyPI)")
    t0 = now()
    run([sys.executable, "-m", "venv", venv], timeout=300, what="python3 -m venv")
    pip = venv / "bin" / "pip"
    run([pip, "install", "--disable-pip-version-check", "-q", "octodns", "octodns-bind"], timeout=900,
        what="pip install octodns octodns-bind")
    install_s = now() - t0
    versions = {}
    for line in run([pip, "list", "--format=json", "--disable-pip-version-check"], timeout=120,
                    what="pip list").stdout.splitlines()[-1:]:
        for pkg in json.loads(line):
            if pkg["name"].lower() in ("octodns", "octodns-bind", "dnspython", "pyyaml"):
                versions[pkg["name"]] = pkg["version"]

    cfg_dir = root / "octodns" / "config"
    out_dir = root / "octodns" / "zones"
    cfg_dir.mkdir(parents=True)
    out_dir.mkdir(parents=True)
    for z in zones:
        # JSON is YAML: one file per zone, `<domain>.yaml`.
        (cfg_dir / f"{z['domain']}.yaml").write_text(json.dumps(octodns_yaml(z), indent=1) + "\n")
    conf_lines = [
        "manager:",
        "  max_workers: 1",
        "providers:",
        "  config:",
        "    class: octodns.provider.yaml.YamlProvider",
        f"    directory: {cfg_dir}",
        "    default_ttl: 3600",
        "    enforce_order: false",
        "    escaped_semicolons: true",
        "  bind:",
        "    class: octodns_bind.ZoneFileProvider",
        f"    directory: {out_dir}",
        "    file_extension: .zone",
        "    hostmaster_email: hostmaster@vps.org",
        "    default_ttl: 3600",
        "zones:",
    ]
    for z in zones:
        conf_lines += [f"  {z['domain']}.:", "    sources: [config]", "    targets: [bind]"]
    conf = root / "octodns" / "octodns.yaml"
    conf.write_text("\n".join(conf_lines) + "\n")
    sync = venv / "bin" / "octodns-sync"

    def one_run(label: str) -> dict:
        before = file_snapshot([out_dir])
        t = now()
        p = run([sync, "--config-file", conf, "--doit"], timeout=args.step_timeout, what=f"octodns-sync ({label})")
        elapsed = now() - t
        after = file_snapshot([out_dir])
        (root / "octodns" / f"sync-{label}.log").write_text(p.stdout + p.stderr)
        return {"s": elapsed, "writes": len(snapshot_diff(before, after)), "files": len(after)}

    log(f"octoDNS: syncing {len(zones)} zones (cold)")
    cold = one_run("cold")
    log("octoDNS: syncing again (no change)")
    again = one_run("noop")
    # The output is loadable: check one file the strict way.
    d0 = zones[0]["domain"]
    chk = run(["named-checkzone", "-k", "fail", "-i", "local", d0, out_dir / f"{d0}.zone"], timeout=60,
              check=False, what="named-checkzone")
    return {
        "versions": versions,
        "install_s": install_s,
        "cold_s": cold["s"],
        "cold_files": cold["files"],
        "noop_s": again["s"],
        "noop_writes": again["writes"],
        "checkzone_ok": chk.returncode == 0,
        "checkzone_out": (chk.stdout + chk.stderr).strip().splitlines()[-2:],
    }


# ---------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------


def build_binary(args, work: Path) -> Path:
    if not args.no_build:
        log("cargo build --release")
        run(["cargo", "build", "--release"], timeout=1800, cwd=REPO, what="cargo build --release")
    src = Path(args.binary) if args.binary else REPO / "target" / "release" / "zoneagent"
    if not src.is_file():
        raise BenchError(f"no zoneagent binary at {src} (build it with cargo build --release)")
    dst = work / "zoneagent"
    shutil.copy2(src, dst)  # frozen copy: others may rebuild target/ meanwhile
    return dst


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def preflight() -> None:
    missing = [t for t in ("named", "named-checkconf", "named-checkzone", "rndc", "tsig-keygen", "dig")
               if shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
    if missing:
        raise BenchError(f"missing tools: {', '.join(missing)} "
                         "(apt-get install -y bind9 bind9-utils bind9-dnsutils)")
    if not NAMED_PRIVATE.is_file():
        raise BenchError(f"{NAMED_PRIVATE} not found")
    if sys.version_info < (3, 11):
        raise BenchError("Python 3.11 or newer is needed")


def fs_info(path: Path) -> dict:
    """The file system holding `path`: type, device, and for ext4 whether it
    has a journal (without one, ext4 checks every candidate inode for a
    recent deletion when it allocates, which makes file creation after heavy
    churn expensive)."""
    path = path.resolve()
    best = ("", "", "")
    with contextlib.suppress(OSError):
        for line in Path("/proc/mounts").read_text().splitlines():
            dev, mnt, fstype, *_ = line.split()
            if (str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best[1]):
                best = (dev, mnt, fstype)
    info = {"device": best[0], "mount": best[1], "type": best[2]}
    if best[2] == "ext4":
        name = Path(best[0]).name
        with contextlib.suppress(OSError):
            info["journal"] = Path(f"/sys/fs/ext4/{name}/journal_task").read_text().strip() != "<none>"
    return info


class LoopExt4:
    """A fresh journaled ext4 on a loop device, mounted for the run."""

    def __init__(self, image: Path, mountpoint: Path, size_gib: int):
        self.image, self.mnt, self.mounted = image, mountpoint, False
        run(["truncate", "-s", f"{size_gib}G", image], timeout=30, what="truncate")
        run(["mkfs.ext4", "-q", "-F", image], timeout=300, what="mkfs.ext4")
        mountpoint.mkdir()
        run(["mount", "-o", "loop", image, mountpoint], timeout=60, what="mount -o loop")
        self.mounted = True

    def close(self) -> None:
        if self.mounted:
            p = run(["umount", self.mnt], timeout=120, check=False, what="umount")
            if p.returncode != 0:
                log(f"umount {self.mnt} failed: {p.stderr.strip()}")
            else:
                self.mounted = False
        with contextlib.suppress(OSError):
            self.image.unlink()


def fmt_s(v) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def ratio(a, b) -> str:
    if a is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("MET" if ok else "MISSED")


def fmt_kib(v) -> str:
    return "-" if v is None else f"{v / 1024:.0f} MiB"


def render_table(results: dict, markdown: bool = False) -> str:
    """One row per figure: the agent's value, named's own figure from the
    same run, their ratio, and the issue's target where it has one."""
    rows: list[tuple[str, ...]] = []

    def add(m, n, v, named="-", rat="-", target="", ok=None, note=""):
        rows.append((m, str(n), v, named, rat, target, verdict(ok), note))

    for n_str, r in results["by_n"].items():
        n = int(n_str)
        big = n >= 10000
        a, b, c = r.get("A"), r.get("B"), r.get("C")
        b_s = b["served_median_s"] if b else None
        if a:
            ok = a["import_s"] / b_s <= 2 if (b_s and big) else None
            add("A  cold import until served (check included)", n, fmt_s(a["import_s"]),
                fmt_s(b_s) + " cold load", ratio(a["import_s"], b_s), "<= 2x named" if big else "", ok,
                f"cpu {fmt_s(a['import_cpu_s'])}; named-checkconf -z alone {fmt_s(a['checkconf_all_s'])}")
            add("A  import peak RSS (agent or its checkconf)", n, fmt_kib(a.get("maxrss_kib")),
                fmt_kib(a.get("named_rss_kib")) + " named", ratio(a.get("maxrss_kib"), a.get("named_rss_kib")))
        if c and b:
            limit = 0.1 if n <= 10000 else 1.0
            ok = c["rebuild_s"] <= limit if big else None
            add("C  no-op rebuild", n, fmt_s(c["rebuild_s"]),
                fmt_s(b.get("reconfig_s")) + " rndc reconfig", ratio(c["rebuild_s"], b.get("reconfig_s")),
                f"<= {fmt_s(limit)}" if big else "", ok, f"{c['writes']} files written")
        s = r.get("S")
        if s and b_s:
            ok = s["ready_s"] <= 1 if n >= 100000 else None
            add("S  daemon start until ready", n, fmt_s(s["ready_s"]), fmt_s(b_s) + " cold load",
                ratio(s["ready_s"], b_s), "<= 1 s at 100k" if n >= 100000 else "", ok)
        d = r.get("D")
        if d:
            z, o = d["zoneagent_ms"], d["named_reload_ms"]
            add("D  record event -> served p50", n, f"{z['p50']:.1f} ms", f"{o['p50']:.1f} ms rndc reload",
                ratio(z["p50"], o["p50"]), "<= named + 5 ms", d["p50_gap_ms"] <= 5 if big else None,
                f"gap {d['p50_gap_ms']:+.1f} ms; {d['samples']} samples; wrong values {d['wrong_values']}")
            add("D  record event -> served p99", n, f"{z['p99']:.1f} ms", f"{o['p99']:.1f} ms rndc reload",
                ratio(z["p99"], o["p99"]), "< 50 ms", z["p99"] < 50 if big else None)
            add("D  agent CPU per event (daemon, no tools)", n, f"{d['daemon_cpu_ms_per_event']:.2f} ms",
                f"{d['named_cpu_ms_per_reload']:.2f} ms named/reload",
                ratio(d["daemon_cpu_ms_per_event"], d["named_cpu_ms_per_reload"]), "<= 1 ms",
                d["daemon_cpu_ms_per_event"] <= 1 if big else None,
                f"tools {d['daemon_children_cpu_ms_per_event']:.1f} ms/event")
        g = r.get("G")
        if g:
            za, own = g["created_ms"], g.get("named_addzone_ms")
            add("G  zone.created -> served p50", n, f"{za['p50']:.1f} ms",
                f"{own['p50']:.1f} ms rndc addzone" if own else "-", ratio(za["p50"], own and own["p50"]),
                "<= 50 ms", za["p50"] <= 50 if big else None, f"p99 {za['p99']:.1f} ms; {g['samples']} samples")
            za, own = g["deleted_ms"], g.get("named_delzone_ms")
            add("G  zone.deleted -> refused p50", n, f"{za['p50']:.1f} ms",
                f"{own['p50']:.1f} ms rndc delzone" if own else "-", ratio(za["p50"], own and own["p50"]),
                note=f"p99 {za['p99']:.1f} ms")
        e = r.get("E")
        if e:
            own = (e.get("named_reload_all") or {}).get("all_loaded_s")
            add("E  socket burst: all served", n, fmt_s(e["all_served_s"]),
                f"{fmt_s(own)} rndc reload of all" if own else fmt_s(b_s) + " cold load",
                ratio(e["all_served_s"], own or b_s), "<= 3 s (100k events, 10k zones)",
                e["all_served_s"] <= 3 if e["events"] >= 100000 else None,
                f"{e['events']} events, {e['acked_per_s']:,.0f} acks/s, {e['passes']} passes; "
                f"named cold load {fmt_s(b_s)}")
        rss = r.get("RSS")
        if rss:
            add("R  daemon peak RSS", n, fmt_kib(rss["agent_hwm_kib"]), fmt_kib(rss["named_rss_kib"]) + " named",
                ratio(rss["agent_hwm_kib"], rss["named_rss_kib"]))
    f = results.get("F")
    if f and "error" not in f:
        add("F  octoDNS sync (cold, files only)", f["zones"], fmt_s(f["cold_s"]),
            note=f"no-op again {fmt_s(f['noop_s'])}, {f['noop_writes']} files rewritten")

    head = ("measurement", "N", "agent", "named (same run)", "ratio", "target", "", "notes")
    if markdown:
        def cell(x):
            return x.replace("|", "\\|")
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(cell(x) for x in r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(r[i]) for r in [*rows, head]) for i in range(len(head) - 1)]
    def line(r):
        return "  ".join(f"{x:<{w[i]}}" if i < len(w) else x for i, x in enumerate(r)).rstrip()
    return "\n".join([line(head), line(tuple("-" * x for x in w) + ("-----",)), *map(line, rows)])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zones", default=None, help="comma-separated zone counts (default 1000,10000,100000; --quick: 100)")
    ap.add_argument("--quick", action="store_true",
                    help="100 zones, 20 latency samples, 1 named restart, no octoDNS (for CI)")
    ap.add_argument("--json", dest="json_out", help="write the figures as JSON to this file")
    ap.add_argument("--markdown", help="also write the table as Markdown to this file (for the README)")
    ap.add_argument("--samples", type=int, default=None, help="latency samples (default 200; --quick: 20)")
    ap.add_argument("--named-restarts", type=int, default=None, help="B repeats (default 3; --quick: 1)")
    ap.add_argument("--burst-zones", type=int, default=1000,
                    help="N of the env used for E and F (default 1000; else the smallest N)")
    ap.add_argument("--burst-per-zone", type=int, default=10)
    ap.add_argument("--skip-burst", action="store_true", help="no E (and no F, which runs on the same N)")
    ap.add_argument("--latency-on", default="all", choices=["all", "largest"],
                    help="run D on every N (default) or only the largest")
    ap.add_argument("--skip-octodns", action="store_true")
    ap.add_argument("--rndc-process", action="store_true",
                    help="let the agent run the rndc program (default: its own control-channel client "
                         "and rndc addzone/delzone)")
    ap.add_argument("--created-samples", type=int, default=None,
                    help="zone.created/zone.deleted samples (default 50; --quick: 10)")
    ap.add_argument("--perf", metavar="DIR",
                    help="perf record the daemon during D and E; writes perf-{latency,burst}-N.data and .txt into DIR")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build --release")
    ap.add_argument("--binary", help="zoneagent binary (default target/release/zoneagent)")
    ap.add_argument("--workdir", help="parent of the temporary directory (default $TMPDIR)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--journaled-fs", action="store_true",
                    help="run on a fresh journaled ext4 (loop device, needs root) instead of the work "
                         "directory's own file system")
    ap.add_argument("--step-timeout", type=float, default=600, help="limit for each step, seconds")
    ap.add_argument("--max-seconds", type=float, default=3600, help="limit for the whole run")
    args = ap.parse_args()

    zone_counts = sorted({int(x) for x in (args.zones or ("100" if args.quick else "1000,10000,100000")).split(",") if x})
    if not zone_counts or min(zone_counts) < 2 or max(zone_counts) > 100000:
        ap.error("--zones: counts between 2 and 100000")
    samples = args.samples or (20 if args.quick else 200)
    restarts = args.named_restarts or (1 if args.quick else 3)
    created_samples = args.created_samples or (10 if args.quick else 50)
    if args.quick:
        args.skip_octodns = True
    burst_n = args.burst_zones if args.burst_zones in zone_counts else zone_counts[0]
    if args.skip_burst:
        burst_n = -1

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(_signum, _frame):
        raise BenchError(f"the whole run exceeded --max-seconds {args.max_seconds}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(args.max_seconds))
    os.environ["PATH"] = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"

    top = Path(tempfile.mkdtemp(prefix="zoneagent-bench-", dir=args.workdir))
    work = top
    loopfs: LoopExt4 | None = None
    envs: list[Env] = []
    results: dict = {
        "meta": {
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "argv": sys.argv,
            "zones": zone_counts,
            "records_per_zone": RECORDS_PER_ZONE,
            "latency_samples": samples,
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg(),
            "workdir": str(top),
        },
        "by_n": {},
    }
    code = 0
    try:
        if args.journaled_fs:
            loopfs = LoopExt4(top / "fs.img", top / "fs", 8)
            work = top / "fs"
        results["meta"]["fs"] = fs_info(work)
        preflight()
        with contextlib.suppress(Exception):
            results["meta"]["git"] = run(["git", "-C", REPO, "describe", "--always", "--dirty"], timeout=10).stdout.strip()
            results["meta"]["named"] = run(["named", "-v"], timeout=10).stdout.strip()
        binary = build_binary(args, work)
        results["meta"]["binary_sha256"] = sha256_file(binary)[:16]
        log(f"work directory {work}")
        for n in zone_counts:
            log(f"N={n}: generating {n} zones x {RECORDS_PER_ZONE} records")
            zones = [make_zone(i) for i in range(n)]
            dump = work / f"dump-{n}.json"
            dump.write_text(json.dumps(zones))
            r: dict = {}
            results["by_n"][str(n)] = r
            env = Env(work / f"n{n}", n, binary, with_socket=(n == burst_n),
                      native_control=not args.rndc_process)
            env.root.mkdir()
            envs.append(env)
            r["A"] = measure_import(env, dump, args)
            r["A"]["named_rss_kib"] = proc_rss_kib(env.named.pid)["rss"]
            serials = r["A"].pop("serials")
            log(f"N={n}: A import {fmt_s(r['A']['import_s'])}")
            r["C"] = measure_rebuild(env, args)
            log(f"N={n}: C rebuild {fmt_s(r['C']['rebuild_s'])}, {r['C']['writes']} writes")
            r["B"] = measure_named_load(env, serials, restarts, args)
            r["B"]["reconfig_s"] = statistics.median(
                env.named.rndc_cmd("reconfig", timeout=args.step_timeout).wall for _ in range(3))
            log(f"N={n}: B named load {fmt_s(r['B']['served_median_s'])}, "
                f"no-op reconfig {fmt_s(r['B']['reconfig_s'])}")
            if args.latency_on == "all" or n == zone_counts[-1] or n == burst_n:
                env.start_daemon()
                r["S"] = {"ready_s": env.ready_s}
                log(f"N={n}: D latency, {samples} samples (daemon pid {env.daemon.pid})")
                r["D"] = measure_latency(env, samples, args)
                d = r["D"]
                log(f"N={n}: D p50 {d['zoneagent_ms']['p50']:.1f} ms (named alone {d['named_reload_ms']['p50']:.1f})")
                if n == burst_n:
                    log(f"N={n}: E burst of {n * args.burst_per_zone} events through the socket")
                    r["E"] = measure_burst(env, args.burst_per_zone, args)
                    log(f"N={n}: E {r['E']['acked_per_s']:.0f} acks/s, served in {fmt_s(r['E']['all_served_s'])}")
                    r["E"]["named_reload_all"] = measure_named_reload_all(env, args)
                    log(f"N={n}: E named's own reload of all zones: "
                        f"{fmt_s(r['E']['named_reload_all'].get('all_loaded_s'))}")
                log(f"N={n}: G zone.created/zone.deleted, {created_samples} samples")
                r["G"] = measure_created(env, created_samples, args)
                log(f"N={n}: G created p50 {r['G']['created_ms']['p50']:.1f} ms")
                named_rss = proc_rss_kib(env.named.pid)["rss"]
                rc = env.stop_daemon()
                r["RSS"] = {"agent_hwm_kib": env.daemon_rss["hwm"], "named_rss_kib": named_rss}
                if rc != 0:
                    raise BenchError(f"zoneagent run exited {rc} on SIGTERM: {tail(env.daemon_log)}")
                st = env.status()
                if st.get("pending") != 0:
                    raise BenchError(f"status --json after the daemon: pending {st.get('pending')}")
            env.stop_all()
            if n == burst_n and not args.skip_octodns:
                try:
                    f = measure_octodns(work, zones, args)
                    f["zones"] = n
                    results["F"] = f
                except BenchError as e:
                    log(f"octoDNS skipped: {e}")
                    results["F"] = {"zones": n, "error": str(e)}
            del zones
    except (BenchError, KeyboardInterrupt) as e:
        log(f"FAILED: {e}")
        results["error"] = str(e)
        code = 1
    finally:
        signal.alarm(0)
        for env in envs:
            env.stop_all()
        if (args.keep or code) and not loopfs:
            log(f"kept {top}")
        else:
            if loopfs:
                loopfs.close()
            shutil.rmtree(top, ignore_errors=True)
    results["meta"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results["meta"]["loadavg_end"] = loadavg()
    if any(results["by_n"].values()):
        m = results["meta"]
        fs = m.get("fs", {})
        print(f"zoneagent {m.get('git', '?')} (binary sha256 {m.get('binary_sha256', '?')}); "
              f"{m.get('named', 'named ?')}; {m['cpus']} cpus; "
              f"fs {fs.get('type', '?')} on {fs.get('device', '?')}"
              + (f" (journal: {'yes' if fs['journal'] else 'NO'})" if "journal" in fs else "")
              + f"; loadavg {m['loadavg_start']} -> {m.get('loadavg_end')}")
        print(render_table(results))
        if args.markdown:
            Path(args.markdown).write_text(render_table(results, markdown=True) + "\n")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=2, default=str) + "\n")
        log(f"wrote {args.json_out}")
    if code:
        print(f"benchmark FAILED: {results.get('error', '?').splitlines()[0]}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
