"""Findings: the catalogue, and each finding met through real DNS.

The zones in ``data/findings/`` hold one small case per finding; Knot serves
each as the root zone on loopback and the audit asks it through
LiveResolver, exactly as it would ask the Internet. Pure tests of the
catalogue and of the syntax locator need no server.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import spftrace

from cxone_audit.allowlist import CurrentAllowlist
from cxone_audit.audit import DomainResult, audit_domain
from cxone_audit.findings import (
    CATALOGUE,
    FAMILIES,
    SEVERITIES,
    Finding,
    find_syntax_error,
    lookup_tree,
    other_region_verdicts,
)
from cxone_audit.regions import REGION_CODES, allowlist_ips, get_region, spf_ips
from cxone_audit.resolver import LiveResolver, ZoneFileResolver
from cxone_audit.spf import SpfEvaluator

from .zones import zone

DATA = Path(__file__).resolve().parent / "data" / "findings"

Audit = Callable[..., DomainResult]


@pytest.fixture(scope="module")
def audit(knot_for) -> Audit:
    """``audit(zone_file, domain, region="EU1", columns=None)`` via Knot."""

    def run(zone_file: str, domain: str, region: str = "EU1",
            columns: dict[str, Any] | None = None) -> DomainResult:
        host, port = knot_for(DATA / zone_file)
        resolver = LiveResolver([f"{host}:{port}"], timeout=2, retries=1)
        return asyncio.run(audit_domain(domain, region, resolver,
                                        columns=columns))

    return run


def found(result: DomainResult) -> dict[str, dict[str, Any]]:
    """The result's findings by code."""
    return {f["code"]: f for f in result.extra["findings"]}


def families(result: DomainResult) -> set[str]:
    return {f["family"] for f in result.extra["findings"]}


# ---------------------------------------------------------------------------
# The catalogue


def test_catalogue_entries_are_complete() -> None:
    assert len(CATALOGUE) >= 25
    for code, entry in CATALOGUE.items():
        assert code == entry.code
        assert re.fullmatch(r"[a-z]+\.[a-z0-9-]+", code), code
        assert entry.family in FAMILIES, code
        assert entry.severity in SEVERITIES, code
        assert entry.title and "\n" not in entry.title, code
        assert len(entry.title) <= 80, code
        assert len(entry.explanation) > 60, code
        assert entry.action, code
        assert entry.rfc == "" or entry.rfc.startswith("RFC "), code


def test_codes_name_their_family() -> None:
    prefixes = {"dns": "dns.", "context": ("dmarc.", "ses.", "mx."),
                "allowlist": "allowlist."}
    for code, entry in CATALOGUE.items():
        wanted = prefixes.get(entry.family, "spf.")
        assert code.startswith(wanted), code


def test_rules_cited_where_the_brief_asks() -> None:
    assert "4.5" in CATALOGUE["spf.multiple-records"].rfc
    assert "4.6.4" in CATALOGUE["spf.too-many-lookups"].rfc
    assert "5.2" in CATALOGUE["spf.include-target-missing"].rfc
    assert "6.1" in CATALOGUE["spf.redirect-ignored"].rfc
    assert "5.5" in CATALOGUE["spf.ptr"].rfc
    assert "3.1" in CATALOGUE["spf.spf-rr-type"].rfc
    assert "3.4" in CATALOGUE["spf.txt-over-512"].rfc


def test_finding_rejects_unknown_code_and_severity() -> None:
    with pytest.raises(ValueError):
        Finding("spf.no-such-thing", "x")
    with pytest.raises(ValueError):
        Finding("spf.no-record", "x", severity="urgent")


def test_finding_json_carries_catalogue_and_detail() -> None:
    finding = Finding("spf.ptr", "ptr used", {"terms": []}, severity="high")

    data = finding.to_dict()

    assert data["code"] == "spf.ptr"
    assert data["severity"] == "high"
    assert data["family"] == "policy"
    assert data["title"] == CATALOGUE["spf.ptr"].title
    assert data["detail"] == "ptr used"
    assert data["rfc"] == "RFC 7208 5.5"
    assert Finding("spf.ptr", "x").to_dict()["severity"] == "low"


# ---------------------------------------------------------------------------
# The syntax locator


def _error(text: str) -> str:
    with pytest.raises(spftrace.SpfPermError) as caught:
        spftrace.parse(text)
    return str(caught.value)


@pytest.mark.parametrize(("record", "position", "term"), [
    ("v=spf1 ip4:1.2.3.4 ip4:1.2.3.400 -all", 2, "ip4:1.2.3.400"),
    ("v=spf1 a mx foo:bar -all", 3, "foo:bar"),
    ("v=spf1 redirect=a.example ip4:1.2.3.4 redirect=b.example", 3,
     "redirect=b.example"),
    ("v=spf1  include:a.example   ~al", 2, "~al"),
    ("v=spf2 -all", 0, "v=spf2"),
])
def test_syntax_error_is_located(record: str, position: int,
                                 term: str) -> None:
    problem = find_syntax_error(record)

    assert problem is not None
    assert (problem.position, problem.term) == (position, term)
    assert record[problem.offset:problem.offset + len(term)] == term
    # The parser reads left to right: its error is the first bad term's.
    assert problem.message == _error(record)


def test_valid_record_has_no_syntax_error() -> None:
    assert find_syntax_error("v=spf1 ip4:1.2.3.4 include:a.example -all") \
        is None


def test_lookup_tree_adds_up_to_the_walk() -> None:
    resolver = zone("""
top.example. IN TXT "v=spf1 include:a.example mx redirect=r.example"
top.example. IN MX 10 h.example.
h.example. IN A 198.51.100.1
a.example. IN TXT "v=spf1 include:b.example a:h.example ~all"
b.example. IN TXT "v=spf1 exists:%{i}.list.example ?all"
r.example. IN TXT "v=spf1 a:h.example -all"
""")
    walk = asyncio.run(SpfEvaluator(resolver).check_record("top.example"))

    tree = lookup_tree(walk.events)

    assert [(n["term"], n["cost"]) for n in tree] == [
        ("include:a.example", 4), ("mx", 1), ("redirect=r.example", 2)]
    assert tree[0]["children"][0]["children"][0]["in"] == "b.example"
    assert sum(n["cost"] for n in tree) == walk.dns_lookups == 7


# ---------------------------------------------------------------------------
# Record health, through Knot


def test_multiple_records(audit: Audit) -> None:
    result = audit("record.zone", "multi.example")

    finding = found(result)["spf.multiple-records"]
    assert finding["severity"] == "critical"
    assert len(finding["data"]["records"]) == 2
    assert "spf.multiple-records" in result.extra["proposal"]["blocked_by"]


def test_no_record_notes_a_near_miss(audit: Audit) -> None:
    result = audit("record.zone", "nospf.example")

    finding = found(result)["spf.no-record"]
    assert finding["data"]["near_misses"] == ["spf1 ip4:216.20.244.25 -all"]
    assert result.status == "no-spf"


def test_a_domain_that_does_not_exist_is_not_told_to_publish(
    audit: Audit,
) -> None:
    # RFC 7208 4.3: NXDOMAIN for the domain gives 'none', as no record
    # does; but a typo in the spreadsheet needs its spelling checked, not a
    # record published at a name that does not exist.
    result = audit("record.zone", "no-such-name.example")

    codes = found(result)
    assert result.status == "no-spf"
    assert "does not exist" in result.reason
    assert "NXDOMAIN" in result.reason
    assert "spf.domain-missing" in codes
    assert "spf.no-record" not in codes
    # Nor advice to publish SPF or DMARC at a name that does not exist.
    assert set(codes) == {"spf.domain-missing"}
    assert codes["spf.domain-missing"]["severity"] == "high"
    assert result.spf.void_lookups == 0
    proposal = result.extra["proposal"]
    assert proposal["record"] is None
    assert "spf.domain-missing" in proposal["blocked_by"]
    assert "spelling" in proposal["note"]


def test_syntax_error_names_term_and_position(audit: Audit) -> None:
    result = audit("record.zone", "syntax.example")

    data = found(result)["spf.syntax-error"]["data"]
    assert (data["term"], data["position"]) == ("ip4:3.73.46.420", 3)
    assert data["message"] == _error("v=spf1 ip4:3.73.46.420")
    assert "string_without_trailing_space" not in data


def test_syntax_error_from_strings_joined_without_space(audit: Audit) -> None:
    result = audit("record.zone", "glued.example")

    finding = found(result)["spf.syntax-error"]
    assert finding["data"]["term"] == "ip4:216.20.244.25ip4:3.73.46.42"
    assert finding["data"]["string_without_trailing_space"] == 1
    assert "RFC 7208 3.3" in finding["detail"]


def test_too_many_lookups_costs_each_include(audit: Audit) -> None:
    result = audit("record.zone", "lookups.example")

    data = found(result)["spf.too-many-lookups"]["data"]
    costs = [(n["term"], n["cost"]) for n in data["tree"]]
    assert costs == [("include:big.example", 6), ("include:mid.example", 4),
                     ("a:h3.example", 1), ("mx", 1)]
    assert data["total"] == result.spf.dns_lookups == 12
    mid = data["tree"][1]
    assert [(c["term"], c["cost"]) for c in mid["children"]] == [
        ("include:small.example", 2), ("a:h1.example", 1)]


def test_too_many_void_lookups(audit: Audit) -> None:
    result = audit("record.zone", "voids.example")

    data = found(result)["spf.too-many-void-lookups"]["data"]
    assert data["total"] == 3
    assert [v["name"] for v in data["lookups"]] == [
        "gone1.example", "gone2.example", "gone3.example"]
    assert result.extra["proposal"]["blocked_by"]


@pytest.mark.parametrize(("domain", "via", "target"), [
    ("missinc.example", "include", "nowhere.example"),
    ("missredir.example", "redirect", "plain.example"),
])
def test_include_or_redirect_target_missing(
    audit: Audit, domain: str, via: str, target: str
) -> None:
    result = audit("record.zone", domain)

    data = found(result)["spf.include-target-missing"]["data"]
    assert (data["via"], data["target"], data["in"]) == (via, target, domain)
    assert result.status == "spf-error"


def test_redirect_ignored_because_of_all(audit: Audit) -> None:
    result = audit("record.zone", "redirall.example")

    data = found(result)["spf.redirect-ignored"]["data"]
    assert data == {"redirect": "redirect=spf.vendor.example", "all": "-all"}


def test_terms_after_all(audit: Audit) -> None:
    result = audit("record.zone", "after.example")

    data = found(result)["spf.terms-after-all"]["data"]
    assert data["terms"] == ["ip4:3.73.46.42", "ip4:216.20.248.25"]
    # The IPs listed after ~all fail, so the proposal adds them before it.
    assert result.extra["proposal"]["record"].startswith(
        "v=spf1 ip4:216.20.244.25 ip4:216.20.248.25 ip4:3.73.46.42 "
        "ip4:18.193.197.37 ~all")


def test_healthy_record_has_no_spf_findings(audit: Audit) -> None:
    result = audit("record.zone", "healthy.example")

    assert families(result) <= {"context"}
    assert result.extra["proposal"]["needed"] is False


# ---------------------------------------------------------------------------
# Policy, through Knot


def test_pass_all(audit: Audit) -> None:
    result = audit("policy.zone", "passall.example")

    finding = found(result)["spf.pass-all"]
    assert finding["severity"] == "critical"
    assert finding["data"]["matched"] == "+all"
    assert "spf.cxone-ips-missing" not in found(result)


def test_pass_all_hidden_in_an_include(audit: Audit) -> None:
    result = audit("policy.zone", "passinc.example")

    data = found(result)["spf.pass-all"]["data"]
    assert (data["matched"], data["in"], data["path"]) == (
        "ip4:0.0.0.0/0", "open.example", ["include:open.example"])


def test_neutral_all(audit: Audit) -> None:
    result = audit("policy.zone", "neutral.example")

    assert found(result)["spf.neutral-all"]["data"]["matched"] == "?all"
    assert found(result)["spf.cxone-ips-missing"]


def test_no_all_and_no_redirect(audit: Audit) -> None:
    result = audit("policy.zone", "noall.example")

    assert found(result)["spf.no-all"]["severity"] == "medium"
    assert "spf.neutral-all" not in found(result)


def test_ptr(audit: Audit) -> None:
    result = audit("policy.zone", "ptr.example")

    data = found(result)["spf.ptr"]["data"]
    assert data["terms"] == [{"term": "ptr", "in": "ptr.example"}]


def test_spf_rr_type_99(audit: Audit) -> None:
    result = audit("policy.zone", "type99.example")

    data = found(result)["spf.spf-rr-type"]["data"]
    assert data["records"] == ["v=spf1 ip4:216.20.244.25 -all"]
    assert data["same_as_txt"] is False
    asked = {(a.name, a.rtype) for a in result.evidence}
    assert ("type99.example", "SPF") in asked


# ---------------------------------------------------------------------------
# Size, through Knot


def test_long_record_and_large_answer(audit: Audit) -> None:
    result = audit("size.zone", "long.example")

    over_255 = found(result)["spf.record-over-255"]["data"]
    over_512 = found(result)["spf.txt-over-512"]["data"]
    assert over_255["length"] == len(result.spf.record) > 255
    assert len(over_255["strings"]) == 4
    assert over_512["size"] > 512
    assert over_512["txt_records"] == 4


def test_short_record_has_no_size_finding(audit: Audit) -> None:
    result = audit("size.zone", "short.example")

    assert "size" not in families(result)


# ---------------------------------------------------------------------------
# CXone and context, through Knot


def test_other_region_authorised_instead(audit: Audit) -> None:
    result = audit("cxone.zone", "wrongregion.example")

    missing = found(result)["spf.cxone-ips-missing"]
    other = found(result)["spf.other-region-authorised"]
    assert [i["ip"] for i in missing["data"]["ips"]] == list(spf_ips("EU1"))
    assert {i["result"] for i in missing["data"]["ips"]} == {"fail"}
    assert other["data"]["authorised_regions"] == ["UK1"]
    assert audit("cxone.zone", "wrongregion.example", "UK1").status == (
        "authorised")


@pytest.mark.parametrize(("domain", "severity", "context_code"), [
    ("reject.example", "critical", None),
    ("quarantine.example", "high", None),
    ("monitor.example", "medium", "dmarc.monitor-only"),
    ("nodmarc.example", "high", "dmarc.missing"),
    ("baddmarc.example", "high", "dmarc.invalid"),
])
def test_dmarc_policy_sets_the_severity(
    audit: Audit, domain: str, severity: str, context_code: str | None
) -> None:
    result = audit("cxone.zone", domain)

    codes = found(result)
    assert codes["spf.cxone-ips-missing"]["severity"] == severity
    dmarc_codes = {c for c in codes if c.startswith("dmarc.")}
    assert dmarc_codes == ({context_code} if context_code else set())
    assert result.extra["dmarc"]["domain"] == domain


def test_ses_stated_makes_missing_ips_info(audit: Audit) -> None:
    result = audit("cxone.zone", "sesstated.example",
                   columns={"SES verified": "yes"})

    missing = found(result)["spf.cxone-ips-missing"]
    assert missing["severity"] == "info"
    assert "Amazon SES" in missing["detail"]
    assert "ses.not-seen" in found(result)
    assert result.extra["ses"]["verified"] is True
    assert result.extra["proposal"]["optional"] is True
    assert result.extra["proposal"]["note"].startswith("Optional")


def test_ses_seen_in_dns_is_not_questioned(audit: Audit) -> None:
    result = audit("cxone.zone", "sesseen.example",
                   columns={"ses_verified": "sim"})

    assert found(result)["spf.cxone-ips-missing"]["severity"] == "info"
    assert "ses.not-seen" not in found(result)


def test_without_ses_the_same_record_is_critical(audit: Audit) -> None:
    result = audit("cxone.zone", "sesstated.example")

    assert found(result)["spf.cxone-ips-missing"]["severity"] == "critical"


def test_mx_gives_an_allowlist_hint(audit: Audit) -> None:
    result = audit("cxone.zone", "withmx.example")

    finding = found(result)["mx.allowlist"]
    assert finding["severity"] == "info"
    assert finding["data"]["mx"] == ["mx1.mailhost.example"]
    assert finding["data"]["allowlist_ips"] == list(allowlist_ips("EU1"))
    assert result.extra["mx"]["status"] == "found"


def test_findings_are_sorted_most_severe_first(audit: Audit) -> None:
    result = audit("cxone.zone", "nodmarc.example")

    ranks = [SEVERITIES.index(f["severity"])
             for f in result.extra["findings"]]
    assert ranks == sorted(ranks) and len(ranks) >= 2


# ---------------------------------------------------------------------------
# DNS trouble, kept apart from configuration


def test_servfail_in_an_include_is_dns_trouble(audit: Audit) -> None:
    result = audit("dns.zone", "loopinc.example")

    finding = found(result)["dns.servfail"]
    assert result.status == "dns-error"
    assert finding["data"]["spf_known"] is True
    names = {q["name"] for q in finding["data"]["questions"]}
    assert names == {"spf.loop.example"}
    assert families(result) <= {"dns", "context"}
    assert "temperror" in result.extra["proposal"]["blocked_by"]


def test_servfail_at_the_domain_reports_nothing_else(audit: Audit) -> None:
    result = audit("dns.zone", "loopself.example")

    finding = found(result)["dns.servfail"]
    assert finding["severity"] == "high"
    assert finding["data"]["spf_known"] is False
    assert families(result) <= {"dns", "context"}
    assert not [c for c in found(result) if c.startswith("spf.")]
    assert result.extra["proposal"]["needed"] is None


def _refusing() -> ZoneFileResolver:
    """A resolver that answers ``elsewhere.test`` with REFUSED.

    A zone file answers names outside its zones with REFUSED, as a server
    that is not authoritative for them would.
    """
    return ZoneFileResolver.from_text(
        "$ORIGIN example.\n$TTL 300\n"
        "@ IN SOA ns.example. h.example. 1 3600 600 86400 300\n"
        "@ IN NS ns.example.\nns IN A 127.0.0.1\n")


def test_refused_is_dns_trouble_too() -> None:
    result = asyncio.run(audit_domain("elsewhere.test", "EU1", _refusing()))

    assert set(found(result)) == {"dns.error"}
    assert result.status == "dns-error"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback UDP port that receives queries and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_timeouts_are_dns_trouble_only(silent_server: str) -> None:
    resolver = LiveResolver([silent_server], timeout=0.2, retries=0)

    result = asyncio.run(audit_domain("quiet.example", "EU1", resolver))

    codes = found(result)
    assert set(codes) == {"dns.timeout"}
    assert codes["dns.timeout"]["severity"] == "high"
    assert result.status == "dns-error"
    asked = {q["type"] for q in codes["dns.timeout"]["data"]["questions"]}
    assert {"TXT", "MX"} <= asked


def test_wrong_region_is_found_through_dns_mechanisms_and_ranges() -> None:
    resolver = zone(
        'via-a.example. IN TXT "v=spf1 a:cx.via-a.example -all"\n'
        "cx.via-a.example. IN A 52.56.74.209\n"
        "cx.via-a.example. IN A 18.132.96.228\n"
        'via-range.example. IN TXT "v=spf1 ip4:52.56.74.0/24 '
        'ip4:18.132.96.228 ~all"\n'
        'unrelated.example. IN TXT "v=spf1 ip4:10.0.0.0/8 -all"\n'
    )

    for domain in ("via-a.example", "via-range.example"):
        result = asyncio.run(audit_domain(domain, "EU1", resolver))
        codes = [f["code"] for f in result.extra["findings"]]
        assert "spf.other-region-authorised" in codes, domain

    evaluator = SpfEvaluator(resolver)
    walk = asyncio.run(evaluator.check_record("unrelated.example"))
    skipped = asyncio.run(other_region_verdicts(
        evaluator, "unrelated.example", get_region("EU1"), walk))
    assert skipped == {}


# ---------------------------------------------------------------------------
# The mail server's current allowlist

EU1_ALLOW = allowlist_ips("EU1")
NA1_ALLOW = allowlist_ips("NA1")
MAILED = zone(
    'mailed.example. IN TXT "v=spf1 '
    + " ".join(f"ip4:{ip}" for ip in spf_ips("EU1")) + ' -all"\n'
    "mailed.example. IN MX 10 mx1.mailed.example.\n"
    "mx1.mailed.example. IN A 192.0.2.10\n"
)


def _with_allowlist(allowlist: CurrentAllowlist | list[str]) -> DomainResult:
    return asyncio.run(audit_domain("mailed.example", "EU1", MAILED,
                                    allowlist=allowlist))


def test_allowlist_missing_names_the_ips_and_the_mail_servers() -> None:
    result = _with_allowlist(
        CurrentAllowlist("gw.txt", (*EU1_ALLOW[:2], NA1_ALLOW[0])))

    codes = found(result)
    missing = codes["allowlist.missing"]
    assert missing["severity"] == "medium"
    assert missing["family"] == "allowlist"
    assert missing["data"]["missing"] == list(EU1_ALLOW[2:])
    assert missing["data"]["file"] == "gw.txt"
    assert missing["data"]["mx"] == ["mx1.mailed.example"]
    assert all(ip in missing["detail"] for ip in EU1_ALLOW[2:])
    assert "gw.txt" in missing["detail"]

    other = codes["allowlist.other-region"]
    assert other["severity"] == "low"
    assert [e["regions"] for e in other["data"]["entries"]] == [["NA1"]]
    # The exact IPs to add replace the generic advice to add them all.
    assert "mx.allowlist" not in codes


def test_allowlist_missing_names_the_line_that_refuses_an_ip() -> None:
    refused = f"{EU1_ALLOW[0]}/32 REJECT"

    result = _with_allowlist([refused, *EU1_ALLOW])

    missing = found(result)["allowlist.missing"]
    assert missing["data"]["missing"] == [EU1_ALLOW[0]]
    assert missing["data"]["refused_by"] == {EU1_ALLOW[0]: refused}
    assert refused in missing["detail"]


def test_complete_allowlist_asks_for_nothing() -> None:
    result = _with_allowlist(list(EU1_ALLOW))

    codes = found(result)
    assert not [c for c in codes if c.startswith("allowlist.")]
    assert "mx.allowlist" not in codes
    assert result.extra["allowlist"]["complete"] is True


@pytest.mark.parametrize("code", [c for c in REGION_CODES if c != "EU1"])
def test_every_other_region_is_reported(code: str) -> None:
    result = _with_allowlist([*EU1_ALLOW, allowlist_ips(code)[-1]])

    entries = found(result)["allowlist.other-region"]["data"]["entries"]
    assert [e["regions"] for e in entries] == [[code]]


def test_unreadable_allowlist_keeps_the_generic_advice() -> None:
    result = _with_allowlist(
        CurrentAllowlist("gone.txt", error="cannot read allowlist file "
                         "gone.txt: No such file or directory"))

    codes = found(result)
    unreadable = codes["allowlist.unreadable"]
    assert unreadable["severity"] == "low"
    assert "No such file" in unreadable["detail"]
    assert unreadable["data"]["file"] == "gone.txt"
    assert "mx.allowlist" in codes
    assert result.status == "authorised"


def test_allowlist_findings_do_not_depend_on_dns() -> None:
    result = asyncio.run(audit_domain("elsewhere.test", "EU1", _refusing(),
                                      allowlist=[]))

    assert set(found(result)) == {"dns.error", "allowlist.missing"}
    assert result.status == "dns-error"
