"""The same audit through real DNS and through the zone file.

The sample rows are audited twice: once with LiveResolver asking Knot, which
serves the sample zone on loopback, and once with ZoneFileResolver reading
the same file. Every row must come out the same: status, reason, SPF
summary, per-IP verdicts and the DNS evidence, up to what legitimately
differs between a server and a file (message sizes, run times, the order of
records in an RRset).
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest

from cxone_audit.audit import STATUSES, DomainResult
from cxone_audit.batch import audit_rows
from cxone_audit.inputs import read_rows
from cxone_audit.outputs import result_to_dict
from cxone_audit.resolver import LiveResolver, Resolver, ZoneFileResolver

pytestmark = pytest.mark.knot

#: Keys that measure a run rather than describe DNS data.
VOLATILE = frozenset({"size", "elapsed_seconds", "seconds", "elapsed_ms",
                      "duration", "started", "finished"})


def _audit(rows: list, resolver: Resolver) -> list[DomainResult]:
    return asyncio.run(audit_rows(rows, resolver, progress=False))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


#: Record types whose data are domain names.
NAME_TYPES = frozenset({"MX", "CNAME", "PTR", "NS"})


def _evidence(answer: dict[str, Any]) -> dict[str, Any]:
    # RFC 4343: names compare without case, and Knot lower-cases the names
    # inside RDATA while a master file keeps them as typed.
    if answer["type"] in NAME_TYPES:
        answer["records"] = [r.lower() for r in answer["records"]]
    # dnspython reports NXDOMAIN without the CNAMEs that led to it.
    if answer["rcode"] == "NXDOMAIN":
        answer.pop("cnames", None)
    return answer


def comparable(result: DomainResult) -> dict[str, Any]:
    """``result_to_dict`` without sizes and timings, names in lower case."""
    data = _strip(copy.deepcopy(result_to_dict(result)))
    data["evidence"] = [_evidence(a) for a in data.get("evidence", [])]
    return data


@pytest.fixture(scope="module")
def both(sample_knot, sample_zone: Path, sample_domains: Path):
    rows = read_rows(sample_domains)
    host, port = sample_knot
    live = LiveResolver([f"{host}:{port}"], timeout=2, retries=1)
    offline = ZoneFileResolver(sample_zone)
    return rows, _audit(rows, live), _audit(rows, offline), live


def test_rows_in_equal_rows_out(both) -> None:
    rows, served, read, _ = both

    assert len(served) == len(read) == len(rows) > 0
    assert [r.row for r in served] == [r.row for r in rows]
    assert [r.row for r in read] == [r.row for r in rows]


def test_knot_answered_every_question(both) -> None:
    # Knot serves the whole namespace as a root zone: nothing may time out.
    # (SERVFAIL is allowed: the sample holds a CNAME loop on purpose.)
    _, served, _, _ = both

    rcodes = {a.rcode for r in served for a in r.evidence}
    assert rcodes <= {"NOERROR", "NXDOMAIN", "SERVFAIL"}
    assert "NOERROR" in rcodes


def test_every_row_has_the_same_status(both) -> None:
    _, served, read, _ = both

    pairs = [(s.row, s.input, s.status, r.status)
             for s, r in zip(served, read, strict=True)
             if s.status != r.status]
    assert pairs == []
    assert {s.status for s in served} <= set(STATUSES)


def test_every_row_has_the_same_ip_verdicts(both) -> None:
    _, served, read, _ = both

    for live_result, file_result in zip(served, read, strict=True):
        live_ips = [v.to_dict() for v in live_result.ips]
        file_ips = [v.to_dict() for v in file_result.ips]
        assert live_ips == file_ips, live_result.input


def test_every_row_is_identical_but_for_sizes(both) -> None:
    _, served, read, _ = both

    differing = [
        s.input for s, r in zip(served, read, strict=True)
        if comparable(s) != comparable(r)
    ]
    assert differing == []


def test_evidence_was_asked_through_knot(both) -> None:
    # The comparison means something only if the live run asked DNS.
    _, served, _, live = both

    audited = [r for r in served if r.status != "input-error"]
    assert audited
    assert all(r.evidence for r in audited)
    assert live.stats.sent >= len({r.domain for r in audited})
    assert any(a.size > 0 for r in audited for a in r.evidence)
