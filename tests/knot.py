"""Run Knot DNS (``knotd``) on loopback for the tests.

One :class:`KnotServer` serves one master file as the root zone ``.`` on a
free port of 127.0.0.1 and ::1. With a root zone every name the kit asks
about gets an authoritative answer, and names the file does not hold get
NXDOMAIN, as on the Internet (a non-root zone would answer REFUSED).

Everything the server writes (configuration, a copy of the zone, its
database and control socket) lives under a directory the caller gives,
normally a pytest temporary directory. The benchmarks start the same
server on their big generated zones (``benchmarks/knot.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

#: Environment variable that turns "knotd is missing" from a skip into a
#: failure (CI sets it, so the DNS tests can never be skipped there).
REQUIRE_ENV = "CXONE_REQUIRE_KNOT"

#: Environment variable naming the knotd binary to use.
KNOTD_ENV = "CXONE_KNOTD"

HOSTS = ("127.0.0.1", "::1")

_CONFIG = """\
server:
    rundir: "{run}"
    listen: [ {listen} ]
log:
  - target: "{run}/knotd.log"
    any: {log_level}
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
    """The path of ``knotd``, also where ``/usr/sbin`` is not on PATH.

    ``CXONE_KNOTD`` names the binary explicitly; if it names nothing
    executable, Knot counts as missing.
    """
    chosen = os.environ.get(KNOTD_ENV, "").strip()
    if chosen:
        return chosen if os.access(chosen, os.X_OK) else None
    found = shutil.which("knotd")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "knotd"
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def knot_required() -> bool:
    """True when missing Knot must fail the run rather than skip."""
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def _port_is_free(port: int, hosts: tuple[str, ...] = HOSTS) -> bool:
    for host in hosts:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(family, kind) as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    return False
    return True


def free_port(hosts: tuple[str, ...] = HOSTS) -> int:
    """A port that is free for UDP and TCP on every one of ``hosts``."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if _port_is_free(port, hosts):
            return port
    raise KnotError("no free loopback port found")


def soa_answers(host: str, port: int, timeout: float = 0.1) -> bool:
    """True when ``host:port`` answers the root SOA authoritatively."""
    query = dns.message.make_query(".", dns.rdatatype.SOA)
    try:
        response = dns.query.udp(query, host, port=port, timeout=timeout)
    except (OSError, dns.exception.DNSException):
        return False
    return response.rcode() == dns.rcode.NOERROR and bool(response.answer)


@dataclass
class KnotServer:
    """One ``knotd`` serving ``zone`` as the root zone.

    Parameters
    ----------
    zone
        The master file to serve.
    workdir
        An empty directory for the configuration, database and logs.
    hosts
        The loopback addresses to listen on; :attr:`address` is the first.
    copy_zone
        Serve a copy of ``zone`` (the default), so the original is never
        touched; a benchmark's big generated zone is served where it is.
    ready_seconds
        How long to wait for the zone to answer (big zones load slowly).
    log_level
        knotd's log level for ``any``.
    """

    zone: Path
    workdir: Path
    hosts: tuple[str, ...] = HOSTS
    copy_zone: bool = True
    ready_seconds: float = 10.0
    log_level: str = "info"
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """The address :attr:`address` names."""
        return self.hosts[0]

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def log_text(self) -> str:
        """What knotd logged (its log file, then its own output)."""
        parts = [self.workdir / "run" / "knotd.log", self.workdir / "knotd.out"]
        return "".join(p.read_text(errors="replace") for p in parts
                       if p.exists())

    def start(self, attempts: int = 3) -> KnotServer:
        """Start knotd on a free port and wait until it answers.

        A port found free can be taken by someone else before knotd binds
        it, so a server that never answers is stopped and tried again on
        another port.
        """
        knotd = find_knotd()
        if knotd is None:
            raise KnotError("knotd not found (Debian package 'knot')")

        for _ in range(attempts):
            self.port = free_port(self.hosts)
            config = self._write_config()
            with open(self.workdir / "knotd.out", "wb") as output:
                self.process = subprocess.Popen(
                    [knotd, "-c", str(config)],
                    stdout=output,
                    stderr=subprocess.STDOUT,
                )
            if self._wait_ready():
                return self
            self.stop()
        raise KnotError(f"knotd did not answer on loopback:\n{self.log_text}")

    def _write_config(self) -> Path:
        run, zones = self.workdir / "run", self.workdir / "zones"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        zone = self.zone.resolve()
        if self.copy_zone:
            zones.mkdir(exist_ok=True)
            shutil.copyfile(zone, zones / "root.zone")
            zone = zones / "root.zone"

        listen = ", ".join(f"{host}@{self.port}" for host in self.hosts)
        config = self.workdir / "knot.conf"
        config.write_text(
            _CONFIG.format(run=run, zones=zone.parent, zone_name=zone.name,
                           listen=listen, log_level=self.log_level),
            encoding="utf-8",
        )
        return config

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.ready_seconds
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            if all(soa_answers(h, self.port) for h in self.hosts):
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        """Stop knotd (SIGTERM, then SIGKILL after 5 seconds)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def __enter__(self) -> KnotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
