"""Where the kit's CPU goes: the DNS client, or the audit itself.

``python -m benchmarks.cpu_split --n 2000``

Generates N domains (:mod:`benchmarks.generate`), serves them with Knot on
127.0.0.1 and audits them in this process twice with the kit's library:

1. through :class:`~cxone_audit.resolver.LiveResolver`, a new resolver with
   an empty cache, as ``cxone-audit audit --nameserver`` would;
2. again with the same resolver, whose cache now answers every question, so
   no DNS message is sent: what remains is the audit itself (SPF
   evaluation, findings, proposals, DMARC, MX and SES interpretation).

It prints the CPU time per domain of each pass (``time.process_time``: this
process only, Knot excluded) and their difference, the cost of the DNS
client. No output files are written, so neither pass includes them.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from cxone_audit.batch import audit_rows
from cxone_audit.inputs import read_rows
from cxone_audit.resolver import LiveResolver

from .generate import generate
from .knot import knot_server


def _cpu_ms_per_row(rows: list, resolver: LiveResolver) -> float:
    started = time.process_time()
    asyncio.run(audit_rows(rows, resolver, progress=False, keep=False))
    return (time.process_time() - started) * 1000 / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=2000,
                        help="how many domains to generate (default 2000)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cxone-cpu-"))
    generated = generate(args.n, work / "data")
    rows = read_rows(generated.domains)

    with knot_server(generated.zone, work) as knot:
        resolver = LiveResolver([f"{knot.host}:{knot.port}"])
        live = _cpu_ms_per_row(rows, resolver)
        sent = resolver.stats.sent
        cached = _cpu_ms_per_row(rows, resolver)

    print(f"{len(rows)} domains, {sent} DNS queries "
          f"({sent / len(rows):.2f} per domain)")
    print(f"  through DNS (empty cache): {live:6.2f} ms CPU per domain")
    print(f"  every answer cached:       {cached:6.2f} ms CPU per domain")
    print(f"  the DNS client's share:    {live - cached:6.2f} ms per domain "
          f"({(live - cached) * len(rows) / sent:.2f} ms per query)")


if __name__ == "__main__":
    main()
