"""The bundled sample: ``data/sample_domains.csv`` over ``data/sample.zone``.

The sample is the README's first command, so it has to show every status
the audit can give, keep every input row, and give each invented customer
domain the status its records were written for. The per-IP results are
checked a second time with pyspf, an RFC 7208 evaluator independent of the
kit's (spftrace), over the same zone.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import dns.name
import dns.rdatatype
import dns.zone
import pytest
import spf as pyspf

from cxone_audit.audit import STATUSES, DomainResult
from cxone_audit.batch import audit_rows
from cxone_audit.inputs import InputRow, read_rows
from cxone_audit.regions import spf_ips
from cxone_audit.resolver import CNAME_LOOP, Answer, ZoneFileResolver
from cxone_audit.spf import SpfEvaluator

PROJECT = Path(__file__).resolve().parent.parent
SAMPLE_ZONE = PROJECT / "data" / "sample.zone"
SAMPLE_DOMAINS = PROJECT / "data" / "sample_domains.csv"
REALWORLD_ZONE = PROJECT / "tests" / "data" / "realworld" / "realworld.zone"

#: The owner cell of the rows taken from the real-world snapshot.
SNAPSHOT_OWNER = "real-world snapshot"

P, F, S, N = "pass", "fail", "softfail", "neutral"

#: Invented rows: input cell -> (normalised domain, status, how).
#: ``how`` is the region's per-IP results in table order when the record
#: can be evaluated, else words the row's reason must contain.
DESIGNED: dict[str, tuple[str | None, str, tuple[str, ...] | str]] = {
    # every CXone SPF IP of the region authorised
    "northwind-travel.example": (
        "northwind-travel.example", "authorised", (P, P, P, P)),
    "mail.northwind-travel.example": (
        "mail.northwind-travel.example", "authorised", (P, P, P, P)),
    "KIWI-ENERGY.EXAMPLE.": ("kiwi-energy.example", "authorised", (P, P)),
    "  sakura-logistics.example  ": (
        "sakura-logistics.example", "authorised", (P, P)),
    "cx-admin@maple-bank.example": (
        "maple-bank.example", "authorised", (P, P)),
    "rhein-moebel.example": ("rhein-moebel.example", "authorised",
                             (P, P, P, P)),
    "lagoa-azul.example": ("lagoa-azul.example", "authorised", (P, P, P, P)),
    "tamisa-seguros.example": ("tamisa-seguros.example", "authorised",
                               (P, P)),
    "fjordline-cargo.example": ("fjordline-cargo.example", "authorised",
                                (P, P, P, P)),
    "yamato-denki.example": ("yamato-denki.example", "authorised", (P, P)),
    "https://www.orchard-books.example/path": (
        "www.orchard-books.example", "authorised", (P, P, P, P)),
    "sunny-bakery.example": ("sunny-bakery.example", "authorised",
                             (P, P, P, P)),
    # partly authorised
    "lindqvist-bygg.example": ("lindqvist-bygg.example", "partly-authorised",
                               (P, P, F, F)),
    "prairie-health.example": ("prairie-health.example", "partly-authorised",
                               (P, P, P, S)),
    "bücher.example": ("xn--bcher-kva.example", "partly-authorised",
                       (P, P, S, S)),
    "quillon-games.example": ("quillon-games.example", "partly-authorised",
                              (P, F)),
    # not authorised
    "thistle-whisky.example": ("thistle-whisky.example", "not-authorised",
                               (F, F)),
    "pampas-cafe.example": ("pampas-cafe.example", "not-authorised", (S, S)),
    "mesa-verde-clinic.example": ("mesa-verde-clinic.example",
                                  "not-authorised", (N, N, N, N)),
    "coral-reef-tours.example": ("coral-reef-tours.example",
                                 "not-authorised", (F, F)),
    "dormant-holdings.example": ("dormant-holdings.example",
                                 "not-authorised", (F, F)),
    "ostrava-steel.example": ("ostrava-steel.example", "not-authorised",
                              (F, F, F, F)),
    "highland-estates.example": ("highland-estates.example",
                                 "not-authorised", (F, F)),
    "old-mill-press.example": ("old-mill-press.example", "not-authorised",
                               (F, F, F, F)),
    # no SPF record
    "quiet-meadow-farm.example": ("quiet-meadow-farm.example", "no-spf",
                                  ("none", "none")),
    "kumo-design.example": ("kumo-design.example", "no-spf",
                            ("none", "none")),
    # SPF errors (permerror)
    "duplex-printing.example": ("duplex-printing.example", "spf-error",
                                "multiple v=spf1"),
    "granite-quarry.example": ("granite-quarry.example", "spf-error",
                               "'1.2.3'"),
    "harvest-moon-foods.example": ("harvest-moon-foods.example", "spf-error",
                                   "nclude:"),
    "omnichannel-mart.example": ("omnichannel-mart.example", "spf-error",
                                 "dns lookup limit"),
    "legacy-relay.example": ("legacy-relay.example", "spf-error",
                             "void dns lookup limit"),
    "blue-harbor-dental.example": ("blue-harbor-dental.example", "spf-error",
                                   "no spf record"),
    # DNS errors (temperror): CNAME loops
    "sunrise-yoga.example": ("sunrise-yoga.example", "dns-error",
                             "spf.mailcircle.example"),
    "tidewater-legal.example": ("tidewater-legal.example", "dns-error",
                                "tidewater-legal.example"),
    # rows that cannot be audited
    "": (None, "input-error", "empty"),
    "acme corp.example": (None, "input-error", "not a valid domain"),
    "tundra-telecom.example": ("tundra-telecom.example", "input-error",
                               "unknown cxone region"),
    "Northwind-Travel.example": ("northwind-travel.example", "input-error",
                                 "duplicate of row 1"),
}

#: Where each designed CNAME loop is met.
LOOPS = {"sunrise-yoga.example": "spf.mailcircle.example",
         "tidewater-legal.example": "tidewater-legal.example"}


@pytest.fixture(scope="module")
def rows() -> list[InputRow]:
    return read_rows(SAMPLE_DOMAINS)


@pytest.fixture(scope="module")
def results(rows: list[InputRow]) -> list[DomainResult]:
    resolver = ZoneFileResolver(SAMPLE_ZONE)
    return asyncio.run(audit_rows(rows, resolver, progress=False))


@pytest.fixture(scope="module")
def by_input(results: list[DomainResult]) -> dict[str, DomainResult]:
    found = {r.input: r for r in results}
    assert len(found) == len(results), "input cells must be unique"
    return found


def _cells() -> list[dict[str, str]]:
    with SAMPLE_DOMAINS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_status_appears(results: list[DomainResult]) -> None:
    seen = {r.status for r in results}

    assert seen == set(STATUSES)


def test_rows_in_equal_rows_out_in_order(
    rows: list[InputRow], results: list[DomainResult]
) -> None:
    cells = _cells()

    assert len(results) == len(rows) == len(cells)
    assert [r.row for r in results] == list(range(1, len(cells) + 1))
    assert [r.input for r in results] == [c["domain"] for c in cells]


def test_sample_is_small_and_mixed() -> None:
    cells = _cells()
    snapshot = [c for c in cells if c["owner"] == SNAPSHOT_OWNER]
    invented = [c for c in cells if c["owner"] != SNAPSHOT_OWNER]

    assert len(cells) < 200
    assert len(snapshot) >= 30
    assert {c["domain"] for c in invented} == set(DESIGNED)


def test_other_columns_pass_through(results: list[DomainResult]) -> None:
    cells = _cells()

    for row, result in zip(cells, results, strict=True):
        assert result.columns == {"ses_verified": row["ses_verified"],
                                  "owner": row["owner"]}
    assert {c["ses_verified"] for c in cells} - {""} == {"yes", "no",
                                                        "unknown"}
    # A formula in an input cell is kept as data; outputs neutralise it.
    assert results[15].columns["owner"].startswith("=HYPERLINK(")


@pytest.mark.parametrize("cell", list(DESIGNED))
def test_designed_row_gets_its_status(
    by_input: dict[str, DomainResult], cell: str
) -> None:
    domain, status, how = DESIGNED[cell]
    result = by_input[cell]

    assert (result.domain, result.status) == (domain, status), result.reason
    if isinstance(how, tuple):
        assert tuple(v.result for v in result.ips) == how
        assert tuple(v.ip for v in result.ips) == spf_ips(result.region)
    else:
        assert how in result.reason.lower(), result.reason


@pytest.mark.parametrize("domain", sorted(LOOPS))
def test_cname_loop_is_the_dns_error(
    by_input: dict[str, DomainResult], domain: str
) -> None:
    result = by_input[domain]
    failed = [a for a in result.evidence if a.temporary]

    assert result.status == "dns-error"
    assert {v.result for v in result.ips} == {"temperror"}
    assert failed
    assert {(a.name, a.rcode, a.detail) for a in failed} == {
        (LOOPS[domain], "SERVFAIL", CNAME_LOOP)}


def test_wrong_region_row_authorises_the_other_region(
    by_input: dict[str, DomainResult],
) -> None:
    # thistle-whisky is listed as UK1 but its record holds EU1's addresses.
    resolver = ZoneFileResolver(SAMPLE_ZONE)
    evaluator = SpfEvaluator(resolver)
    eu1 = asyncio.run(evaluator.check_ips(spf_ips("EU1"),
                                          "thistle-whisky.example"))

    assert by_input["thistle-whisky.example"].region.code == "UK1"
    assert [v.result for v in eu1] == ["pass"] * 4


def test_input_rows_are_normalised(by_input: dict[str, DomainResult]) -> None:
    notes = {cell: " / ".join(by_input[cell].notes) for cell in (
        "KIWI-ENERGY.EXAMPLE.", "  sakura-logistics.example  ",
        "cx-admin@maple-bank.example",
        "https://www.orchard-books.example/path", "bücher.example")}

    assert "trailing dot" in notes["KIWI-ENERGY.EXAMPLE."]
    assert "lower-cased" in notes["KIWI-ENERGY.EXAMPLE."]
    assert "space" in notes["  sakura-logistics.example  "]
    assert "e-mail" in notes["cx-admin@maple-bank.example"]
    assert "URL" in notes["https://www.orchard-books.example/path"]
    assert "xn--bcher-kva.example" in notes["bücher.example"]
    assert by_input["lagoa-azul.example"].region.code == "EU1"
    assert by_input["tamisa-seguros.example"].region.code == "UK1"


def _txt(result: DomainResult) -> Answer:
    return next(a for a in result.evidence
                if (a.name, a.rtype) == (result.domain, "TXT"))


def test_hostile_text_arrives_verbatim(
    by_input: dict[str, DomainResult],
) -> None:
    result = by_input["quillon-games.example"]
    strings = set(_txt(result).strings)
    failing = result.failing_ips[0]

    assert strings >= {
        ("<script>alert(1)</script>",),
        ('=HYPERLINK("https://evil.example/?v=spf1",'
         '"v=spf1 include:_spf.google.com -all")',),
        ('say "hi" to C:\\mail\\spf and \\"escaped\\" quotes',
         "</td><img src=x onerror=alert(3)>"),
        ("caf\u00e9 \u2709 @SUM(1+1)",),
    }
    # Only the real record is SPF; the look-alike starts with "=".
    assert result.spf.records == (
        "v=spf1 ip4:52.56.74.209 exp=why.quillon-games.example -all",)
    assert failing.explanation == (
        "<img src=x onerror=alert(2)> 18.132.96.228 may not send for "
        "quillon-games.example")


def test_split_and_large_answers(by_input: dict[str, DomainResult]) -> None:
    split = by_input["fjordline-cargo.example"]
    large = _txt(by_input["yamato-denki.example"])

    assert len(split.spf.strings) == 4
    assert "".join(split.spf.strings) == split.spf.record
    assert "ip4:3.73.46.42" in split.spf.record
    # RFC 1035 4.2.1: over 512 octets needs TCP (or EDNS).
    assert large.size > 512


def _pyspf_lookup(resolver: ZoneFileResolver):
    """pyspf's DNS hook, answered from the zone file."""

    def lookup(name, qtype, strict=True, timeout=None):
        answer = asyncio.run(resolver.query(name, qtype))
        if answer.temporary:
            raise pyspf.TempError(f"DNS {answer.rcode} {answer.detail}")
        found = []
        for index, text in enumerate(answer.records):
            if qtype in ("TXT", "SPF"):
                value = [s.encode() for s in answer.strings[index]]
            elif qtype == "MX":
                preference, host = text.split(" ", 1)
                value = (int(preference), host)
            else:
                value = text
            found.append(((name, qtype), value))
        return found

    return lookup


def test_pyspf_agrees_on_every_ip(
    results: list[DomainResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pyspf, "DNSLookup",
                        _pyspf_lookup(ZoneFileResolver(SAMPLE_ZONE)))
    audited = [r for r in results if r.status != "input-error"]

    differing = []
    for result in audited:
        for verdict in result.ips:
            theirs, _ = pyspf.check2(i=verdict.ip, h=result.domain,
                                     s=f"postmaster@{result.domain}")
            if theirs != verdict.result:
                differing.append((result.domain, verdict.ip, theirs,
                                  verdict.result))

    assert len(audited) > 100
    assert differing == []


def _zone(path: Path) -> dns.zone.Zone:
    return dns.zone.from_file(str(path), origin=dns.name.root,
                              relativize=False)


def test_zone_is_one_root_zone_without_delegations() -> None:
    zone = _zone(SAMPLE_ZONE)
    ns_owners = {name for name, node in zone.nodes.items()
                 if node.get_rdataset(1, dns.rdatatype.NS)}
    soa_owners = {name for name, node in zone.nodes.items()
                  if node.get_rdataset(1, dns.rdatatype.SOA)}
    ns_host = zone.get_node(dns.name.from_text("ns.test."))

    assert ns_owners == soa_owners == {dns.name.root}
    assert ns_host.get_rdataset(1, dns.rdatatype.A)[0].address == "127.0.0.1"
    assert ns_host.get_rdataset(1, dns.rdatatype.AAAA)[0].address == "::1"


@pytest.mark.skipif(not REALWORLD_ZONE.is_file(),
                    reason="the real-world snapshot is not in tests/data")
def test_snapshot_records_are_kept_verbatim() -> None:
    sample, snapshot = _zone(SAMPLE_ZONE), _zone(REALWORLD_ZONE)

    def rrsets(zone: dns.zone.Zone, name: dns.name.Name) -> list[str]:
        node = zone.get_node(name)
        return sorted(str(r) for r in node.rdatasets) if node else []

    changed = [str(name) for name in snapshot.nodes
               if rrsets(sample, name) != rrsets(snapshot, name)]
    assert changed == []
    assert len(sample.nodes) > len(snapshot.nodes)


def _records(resolver: ZoneFileResolver, name: str, rtype: str) -> list[str]:
    return list(asyncio.run(resolver.query(name, rtype)).records)


def test_mx_and_dmarc_variety() -> None:
    resolver = ZoneFileResolver(SAMPLE_ZONE)
    invented = [DESIGNED[c][0] for c in DESIGNED
                if DESIGNED[c][1] != "input-error"]
    mx = " ".join(r for d in invented for r in _records(resolver, d, "MX"))
    dmarc = {d: " ".join(_records(resolver, f"_dmarc.{d}", "TXT"))
             for d in invented}

    for host in (".mail.protection.outlook.com", " aspmx.l.google.com",
                 ".mimecast.com", ".pphosted.com", "0 ."):
        assert host in f" {mx}", host
    for policy in ("p=reject", "p=quarantine", "p=none", "p=quarentine"):
        assert any(policy + ";" in text for text in dmarc.values()), policy
    assert dmarc["mail.northwind-travel.example"] == ""
    assert "p=reject" in dmarc["northwind-travel.example"]
    assert any(text == "" for d, text in dmarc.items() if "." not in
               d.removesuffix(".example"))
