"""Serve a root zone with Knot DNS (``knotd``) on 127.0.0.1 for a benchmark.

One root zone ``.`` holds every name, so names it lacks get NXDOMAIN, as on
the Internet. Everything Knot writes stays in the work directory given.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

_CONFIG = """\
server:
    rundir: "{run}"
    listen: [ 127.0.0.1@{port} ]
log:
  - target: "{run}/knotd.log"
    any: warning
control:
    listen: "{run}/knot.sock"
database:
    storage: "{run}/db"
template:
  - id: default
    storage: "{zones}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
zone:
  - domain: .
    file: "{zone_name}"
"""


class KnotError(RuntimeError):
    """knotd could not be started or did not answer."""


def find_knotd() -> str | None:
    """The path of ``knotd``, also when ``/usr/sbin`` is not on PATH."""
    found = shutil.which("knotd")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "knotd"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise KnotError("no free loopback port")


def soa_answers(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when ``host:port`` answers the root SOA."""
    query = dns.message.make_query(".", dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, host, port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


class Knot:
    """One ``knotd`` serving ``zone`` as the root zone on 127.0.0.1.

    The zone file is used where it is (not copied): big generated zones
    are not worth a second copy.
    """

    host = "127.0.0.1"

    def __init__(self, zone: Path, workdir: Path) -> None:
        self.zone = zone.resolve()
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def start(self, ready_seconds: float = 600.0) -> Knot:
        """Start knotd and wait until the zone answers (big zones load
        for a while)."""
        knotd = find_knotd()
        if knotd is None:
            raise KnotError("knotd not found (Debian package 'knot')")
        self.port = free_port()
        config = self._write_config()
        with open(self.workdir / "knotd.out", "wb") as output:
            self.process = subprocess.Popen(
                [knotd, "-c", str(config)], stdout=output,
                stderr=subprocess.STDOUT,
            )

        deadline = time.monotonic() + ready_seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if soa_answers(self.host, self.port):
                return self
            time.sleep(0.05)
        log = self.log_text()
        self.stop()
        raise KnotError(f"knotd did not serve the zone:\n{log}")

    def _write_config(self) -> Path:
        run = self.workdir / "knot-run"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        config = self.workdir / "knot.conf"
        config.write_text(_CONFIG.format(
            run=run, zones=self.zone.parent, zone_name=self.zone.name,
            port=self.port,
        ), encoding="utf-8")
        return config

    def log_text(self) -> str:
        parts = [self.workdir / "knot-run" / "knotd.log",
                 self.workdir / "knotd.out"]
        return "".join(p.read_text(errors="replace") for p in parts
                       if p.exists())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> Knot:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
