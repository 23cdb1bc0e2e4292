"""Run a peer tool over a task list, in its own process, for the benchmark.

``python -m benchmarks.peers TOOL TASKS.json PORT OUT.json``

``TASKS.json`` is a list of ``[domain, [ip, ...]]``. ``TOOL`` is:

``rtt``
    50 UDP queries for the root SOA, one after the other (no tasks: ``-``):
    the round trip a query costs through the proxy.

``pyspf``
    pyspf's ``spf.check2`` for every IP of the domain's region, with the
    domain as MAIL FROM (``postmaster@domain``) and HELO. pyspf asks DNS
    through dnspython's default resolver, pointed at 127.0.0.1:PORT. Like
    pyspf itself, nothing is cached between two checks.
``checkdmarc``
    checkdmarc's Python API for SPF and DMARC only:
    ``checkdmarc.spf.check_spf`` and ``checkdmarc.dmarc.check_dmarc`` for
    each domain, with ``nameservers=[Do53Nameserver("127.0.0.1", PORT)]``.
    The other checks of ``check_domains`` (DNSSEC, SOA, NS, MX, MTA-STS,
    TLS-RPT, BIMI) are not run. checkdmarc keeps its own DNS cache across
    domains.

The domains are checked one after the other, as each tool does. Results
and the CPU and wall time of the loop alone go to ``OUT.json``. This module
imports nothing from cxone_audit, so the process's peak memory is the
peer's own.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any


def run_pyspf(tasks: list[Any], port: int) -> list[Any]:
    import dns.resolver
    import spf

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = port
    resolver.timeout = 5.0
    resolver.lifetime = 5.0
    dns.resolver.default_resolver = resolver

    results = []
    for domain, ips in tasks:
        verdicts = []
        for ip in ips:
            try:
                result, _ = spf.check2(i=ip, s=f"postmaster@{domain}",
                                       h=domain)
            except Exception as exc:  # noqa: BLE001 - recorded, not fatal
                result = f"exception: {exc!r}"
            verdicts.append(result)
        results.append([domain, verdicts])
    return results


def run_checkdmarc(tasks: list[Any], port: int) -> list[Any]:
    import dns.nameserver
    from checkdmarc.dmarc import check_dmarc
    from checkdmarc.spf import check_spf

    servers = [dns.nameserver.Do53Nameserver("127.0.0.1", port)]
    results = []
    for domain, _ in tasks:
        try:
            found = check_spf(domain, nameservers=servers, timeout=5.0)
            dmarc = check_dmarc(domain, nameservers=servers, timeout=5.0)
        except Exception as exc:  # noqa: BLE001 - recorded, not fatal
            results.append([domain, {"exception": repr(exc)}])
            continue
        results.append([domain, {"spf_valid": found.get("valid"),
                                 "spf_error": found.get("error"),
                                 "dmarc_valid": dmarc.get("valid")}])
    return results


def run_rtt(tasks: list[Any], port: int) -> list[Any]:
    """Round trips of 50 UDP queries for the root SOA, in seconds."""
    import dns.message
    import dns.query

    query = dns.message.make_query(".", "SOA")
    times = []
    for _ in range(50):
        started = time.perf_counter()
        dns.query.udp(query, "127.0.0.1", port=port, timeout=5.0)
        times.append(time.perf_counter() - started)
    return times


TOOLS = {"pyspf": run_pyspf, "checkdmarc": run_checkdmarc, "rtt": run_rtt}


def main(argv: list[str]) -> int:
    tool, tasks_path, port, out_path = argv
    tasks = []
    if tasks_path != "-":
        tasks = json.loads(Path(tasks_path).read_text(encoding="utf-8"))
    runner = TOOLS[tool]

    cpu, wall = time.process_time(), time.perf_counter()
    results = runner(tasks, int(port))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall

    Path(out_path).write_text(json.dumps({
        "tool": tool, "domains": len(tasks), "loop_cpu_seconds": cpu,
        "loop_wall_seconds": wall, "results": results,
    }), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
