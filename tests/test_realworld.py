"""The real-world snapshot: the kit agrees with pyspf and spftrace.

``data/realworld/expected.tsv`` holds, for every domain of ``domains.csv``
and each SPF IP of its row's region, the result pyspf 2.0.14 and spftrace
0.3.0 gave against the zone served by Knot (they agree on all 318 checks).
The kit audits the same rows through Knot and through the zone file, and
every check must give the same result.
"""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from pathlib import Path

import pytest

from cxone_audit.audit import DomainResult
from cxone_audit.batch import audit_rows
from cxone_audit.inputs import read_rows
from cxone_audit.regions import spf_ips
from cxone_audit.resolver import LiveResolver, Resolver, ZoneFileResolver

from .conftest import REALWORLD_DOMAINS, REALWORLD_EXPECTED, REALWORLD_ZONE


def _expected(path: Path = REALWORLD_EXPECTED) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


EXPECTED = _expected()
CHECKS = [
    pytest.param(e["domain"], e["region"], e["ip"], e["pyspf"],
                 id=f"{e['domain']}-{e['region']}-{e['ip']}")
    for e in EXPECTED
]
BACKENDS = [pytest.param("knot", marks=pytest.mark.knot), "zonefile"]


def _audit(resolver: Resolver) -> dict[tuple[str, str], DomainResult]:
    rows = read_rows(REALWORLD_DOMAINS)
    results = asyncio.run(audit_rows(rows, resolver, progress=False))
    return {(r.domain or "", r.region.code if r.region else ""): r
            for r in results}


@pytest.fixture(scope="module")
def zonefile_results() -> dict[tuple[str, str], DomainResult]:
    return _audit(ZoneFileResolver(REALWORLD_ZONE))


@pytest.fixture(scope="module")
def knot_results(realworld_knot) -> dict[tuple[str, str], DomainResult]:
    host, port = realworld_knot
    return _audit(LiveResolver([f"{host}:{port}"], timeout=2, retries=1))


@pytest.fixture(params=BACKENDS)
def results(request) -> dict[tuple[str, str], DomainResult]:
    return request.getfixturevalue(f"{request.param}_results")


def test_expected_table_is_whole() -> None:
    # 318 checks, each evaluator agreeing with the other.
    assert len(EXPECTED) == 318
    assert all(e["pyspf"] == e["spftrace"] for e in EXPECTED)

    with REALWORLD_DOMAINS.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 119
    wanted = Counter((r["domain"], r["region"]) for r in rows)
    checked = Counter((e["domain"], e["region"]) for e in EXPECTED)
    assert set(checked) == set(wanted)
    for key, count in checked.items():
        assert count == len(spf_ips(key[1])), key


@pytest.mark.parametrize(("domain", "region", "ip", "wanted"), CHECKS)
def test_check_host_agrees(results, domain, region, ip, wanted) -> None:
    result = results[(domain, region)]

    verdicts = {v.ip: v for v in result.ips}
    assert verdicts[ip].result == wanted, verdicts[ip].reason


def test_every_row_audited_once(results) -> None:
    assert len(results) == 119
    assert all(r.status != "input-error" for r in results.values())
    assert all(r.status != "dns-error" for r in results.values())


def test_no_row_authorises_cxone(results) -> None:
    # README: none of these records authorises a CXone address.
    statuses = Counter(r.status for r in results.values())

    assert statuses["authorised"] == statuses["partly-authorised"] == 0
    assert set(statuses) <= {"not-authorised", "spf-error"}
