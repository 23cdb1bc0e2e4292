"""Results for the report tests: a tiny zone audited for real.

The zone holds one domain per status worth showing, plus hostile text in a
TXT record, in a domain cell and in a pass-through spreadsheet column. One
row names a current allowlist file in its ``Allowlist`` column.
:func:`audited_results` audits it with the kit's own batch runner;
:func:`scaled_results` repeats those results under varied names to reach a
few thousand rows without auditing each one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from cxone_audit.audit import DomainResult
from cxone_audit.batch import audit_rows
from cxone_audit.inputs import rows_from_frame
from cxone_audit.outputs import RunInfo, write_outputs
from cxone_audit.regions import spf_ips
from cxone_audit.resolver import ZoneFileResolver

HOSTILE_SCRIPT = "<script>alert(1)</script>"
HOSTILE_IMG = '"><img src=x onerror=alert(1)>'
HOSTILE_CELL = "<script>alert(2)</script>"
HOSTILE_CELL_IMG = "'><img src=y onerror=alert(2)>"

#: Where the ``Allowlist`` column's file names start.
ALLOWLISTS = Path(__file__).resolve().parent / "data" / "allowlist"

_NA1 = " ".join(f"ip4:{ip}" for ip in spf_ips("NA1"))
_EU1_FIRST = spf_ips("EU1")[0]


def _txt(text: str) -> str:
    """A TXT rdata in master-file syntax (RFC 1035 5.1 escapes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


ZONE = f"""\
$ORIGIN example.test.
$TTL 300
@        SOA ns.example.test. admin.example.test. 1 3600 600 86400 300
@        NS  ns.example.test.
ns       A   192.0.2.53
good     TXT {_txt("v=spf1 include:_spf.good.example.test -all")}
_spf.good TXT {_txt(f"v=spf1 {_NA1} -all")}
partly   TXT {_txt(f"v=spf1 ip4:{_EU1_FIRST} mx ~all")}
partly   MX  10 mail.partly.example.test.
mail.partly A 192.0.2.25
nospf    TXT {_txt("google-site-verification=abc123")}
nospf    TXT {_txt(HOSTILE_SCRIPT)}
evil     TXT {_txt("v=spf1 " + HOSTILE_SCRIPT + " -all")}
evil2    TXT {_txt("v=spf1 ip4:192.0.2.1 include:" + HOSTILE_IMG + " -all")}
softfail TXT {_txt("v=spf1 ip4:192.0.2.1 ~all")}
"""

#: The input spreadsheet: domain, region, and a pass-through column.
INPUT_ROWS = [
    ("good.example.test", "NA1", "main brand"),
    ("partly.example.test", "EU1", HOSTILE_CELL),
    ("nospf.example.test", "UK1", "no record yet"),
    ("evil.example.test", "AU1", HOSTILE_CELL_IMG),
    ("evil2.example.test", "CA1", "second hostile record"),
    ("Softfail.Example.Test.", "JP1", "=HYPERLINK(\"x\")"),
    ("<b>bad</b>", "NA1", "hostile domain cell"),
    ("unlisted.other.test", "NA1", "outside the zone"),
    ("good.example.test", "NA1", "duplicate row"),
]

#: The ``Allowlist`` cell of a domain (empty for the others).
ALLOWLIST_CELLS = {"partly.example.test": "gateway-allowlist.txt"}

#: Extra checks another part of the kit may add; the report must show them.
EXTRA = {
    "partly.example.test": {
        "findings": [{
            "code": "spf-softfail-all",
            "severity": "medium",
            "title": "The record ends with ~all",
            "detail": "Mail from other IPs " + HOSTILE_SCRIPT,
        }],
        "proposal": {
            "record": "v=spf1 ip4:216.20.244.25 ip4:216.20.248.25 mx ~all",
            "dns_lookups": 1,
        },
        "dmarc": {"record": "v=DMARC1; p=none", "policy": "none",
                  "note": HOSTILE_IMG},
    },
}


def audited_results() -> list[DomainResult]:
    """Audit :data:`INPUT_ROWS` against :data:`ZONE`, offline."""
    frame = pd.DataFrame(INPUT_ROWS, columns=["Domain", "Region", "Owner"])
    frame["Allowlist"] = [ALLOWLIST_CELLS.get(d, "") for d in frame["Domain"]]
    rows = rows_from_frame(frame)
    resolver = ZoneFileResolver.from_text(ZONE)
    results = asyncio.run(audit_rows(rows, resolver, progress=False,
                                     allowlist_folder=ALLOWLISTS))
    return [_with_extra(r) for r in results]


def _with_extra(result: DomainResult) -> DomainResult:
    extra = EXTRA.get(result.domain or "")
    if not extra:
        return result
    return dataclasses.replace(result, extra={**result.extra, **extra})


def scaled_results(
    base: Sequence[DomainResult], rows: int
) -> list[DomainResult]:
    """``rows`` results: ``base`` repeated with numbered domain names."""
    out = []
    for index in range(rows):
        result = base[index % len(base)]
        number = index // len(base)
        name = _numbered(result.domain, number)
        out.append(dataclasses.replace(
            result, row=index + 1, domain=name,
            input=_numbered(result.input, number) or result.input,
        ))
    return out


def _numbered(name: str | None, number: int) -> str | None:
    if not name or number == 0:
        return name
    first, _, rest = name.partition(".")
    return f"{first}-{number:05d}.{rest}"


def write_results(results: Sequence[DomainResult], out_dir: Path) -> Path:
    """Write the run's outputs as the CLI would; return results.json."""
    info = RunInfo(resolver="zone file example.test (tests)",
                   input="domains.xlsx", default_region=None,
                   dns={"queries_sent": 42, "cache_hits": 7,
                        "temporary_failures": 1, "distinct_questions": 40})
    return write_outputs(results, info, out_dir)["json"]
