"""DMARC discovery (RFC 7489 6.6.3) and record parsing (RFC 7489 6.3, 6.4)."""

from __future__ import annotations

import json

import pytest

from cxone_audit.dmarc import (
    is_dmarc_record,
    lookup_dmarc,
    organisational_domain,
    parse_dmarc,
)
from cxone_audit.resolver import LiveResolver, ZoneFileResolver

from .contextdns import CONTEXT_ZONE, FailingResolver, run, silent_server
from .zones import zone

# ---------------------------------------------------------------------------
# Parsing one record


def test_parse_full_record() -> None:
    record = parse_dmarc(
        "v=DMARC1; p=Reject; sp=none; pct=30; "
        "rua=mailto:a@example.test, mailto:b@example.net!5m; "
        "ruf=mailto:f@example.test; adkim=s; aspf=S; fo=0:d; ri=3600"
    )

    assert record.problems == ()
    assert record.policy == "reject"
    assert record.subdomain_policy == "none"
    assert record.pct == 30
    assert record.rua == ("mailto:a@example.test", "mailto:b@example.net!5m")
    assert record.ruf == ("mailto:f@example.test",)
    assert (record.adkim, record.aspf) == ("s", "s")
    assert (record.fo, record.ri) == ("0:d", 3600)
    assert record.usable


def test_parse_defaults() -> None:
    record = parse_dmarc("v=DMARC1;p=none;")

    assert record.problems == ()
    assert (record.pct, record.adkim, record.aspf) == (100, "r", "r")
    assert (record.fo, record.ri) == ("0", 86400)
    assert record.subdomain_policy is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v=DMARC1; p=none", True),
        ("V = DMARC1 ;p=none", True),
        ("v=DMARC1", True),
        ("v=dmarc1; p=none", False),       # DMARC1 is case-sensitive
        ("v=DMARC10; p=none", False),
        ("p=none; v=DMARC1", False),
        ("v=spf1 -all", False),
    ],
)
def test_version_tag(text: str, expected: bool) -> None:
    assert is_dmarc_record(text) is expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("v=DMARC1; rua=mailto:a@example.test", "required p tag is missing"),
        ("v=DMARC1; p=block", "p=block is not none, quarantine or reject"),
        ("v=DMARC1; p=none; sp=drop", "sp=drop is not"),
        ("v=DMARC1; p=none; pct=101", "pct=101 is not a whole number"),
        ("v=DMARC1; p=none; pct=-5", "pct=-5 is not a whole number"),
        ("v=DMARC1; p=none; pct=half", "pct=half"),
        ("v=DMARC1; p=none; adkim=strict", "adkim=strict is not r"),
        ("v=DMARC1; p=none; fo=2", "fo=2 is not"),
        ("v=DMARC1; p=none; ri=daily", "ri=daily is not a number"),
        ("v=DMARC1; p=none; rua=https://r.example/x", "not a mailto: URI"),
        ("v=DMARC1; p=none; rua=mailto:reports", "has no e-mail address"),
        ("v=DMARC1; p=none; colour=blue", "unknown tag colour"),
        ("v=DMARC1; p=none; np=reject", "tag np comes from DMARCbis"),
        ("v=DMARC1; p=none; p=reject", "tag p appears more than once"),
        ("v=DMARC1; p=none; junk", "'junk' is not a tag=value pair"),
        ("p=none; v=DMARC1", "does not start with v=DMARC1"),
    ],
)
def test_parse_problems(text: str, problem: str) -> None:
    record = parse_dmarc(text)

    assert any(problem in p for p in record.problems), record.problems


def test_bad_values_fall_back_to_defaults() -> None:
    # RFC 7489 6.3: a value that cannot be read gives way to the default.
    record = parse_dmarc("v=DMARC1; p=quarantine; pct=abc; adkim=x")

    assert (record.pct, record.adkim) == (100, "r")
    assert record.usable


def test_first_of_duplicate_tags_wins() -> None:
    assert parse_dmarc("v=DMARC1; p=none; p=reject").policy == "none"


def test_unusable_records() -> None:
    assert not parse_dmarc("v=DMARC1; sp=reject").usable
    assert not parse_dmarc("v=DMARC1; p=none; sp=bad").usable
    assert parse_dmarc("v=DMARC1; p=none; pct=bad").usable


# ---------------------------------------------------------------------------
# Organisational domain (RFC 7489 3.2)


@pytest.mark.parametrize(
    ("domain", "org"),
    [
        ("example.com", "example.com"),
        ("a.b.example.com", "example.com"),
        ("mail.example.co.uk", "example.co.uk"),
        ("Shop.Example.COM.BR.", "example.com.br"),
        ("sales.contoso.test", "contoso.test"),
        ("co.uk", None),
        ("com", None),
    ],
)
def test_organisational_domain(domain: str, org: str | None) -> None:
    assert organisational_domain(domain) == org


# ---------------------------------------------------------------------------
# Discovery through the context zone


@pytest.fixture(scope="module")
def context() -> ZoneFileResolver:
    return ZoneFileResolver(CONTEXT_ZONE)


def test_own_record(context: ZoneFileResolver) -> None:
    result = run(lookup_dmarc("contoso.test", context))

    assert result.status == "found"
    assert result.found_at == "contoso.test"
    assert result.policy == "reject"
    assert result.subdomain_policy == "quarantine"
    # The domain's own record: p applies, not sp.
    assert result.applied_policy == "reject"
    assert result.rua == ("mailto:dmarc@contoso.test",
                          "mailto:agg@reports.example!10m")
    assert result.ruf == ("mailto:forensic@contoso.test",)
    assert (result.adkim, result.aspf) == ("s", "r")
    assert result.problems == ()
    assert result.queried == ("_dmarc.contoso.test",)
    assert "refused" in result.meaning


def test_subdomain_falls_back_to_org_and_gets_sp(
    context: ZoneFileResolver,
) -> None:
    result = run(lookup_dmarc("sales.contoso.test", context))

    assert result.status == "found"
    assert result.found_at == "contoso.test"
    assert result.org_domain == "contoso.test"
    assert result.applied_policy == "quarantine"
    assert result.queried == ("_dmarc.sales.contoso.test",
                              "_dmarc.contoso.test")


def test_deep_subdomain_that_does_not_exist_falls_back(
    context: ZoneFileResolver,
) -> None:
    # NXDOMAIN at _dmarc.<name> is "no record", not a failure.
    result = run(lookup_dmarc("a.b.nowhere.contoso.test", context))

    assert result.status == "found"
    assert result.found_at == "contoso.test"
    assert result.applied_policy == "quarantine"


def test_subdomain_with_its_own_record(context: ZoneFileResolver) -> None:
    result = run(lookup_dmarc("support.contoso.test", context))

    assert result.found_at == "support.contoso.test"
    assert result.applied_policy == "none"
    assert len(result.queried) == 1


def test_subdomain_without_sp_gets_p() -> None:
    resolver = zone('_dmarc.example.test. TXT "v=DMARC1; p=reject"\n')

    result = run(lookup_dmarc("news.example.test", resolver))

    assert result.applied_policy == "reject"
    assert result.subdomain_policy is None


def test_record_behind_a_cname(context: ZoneFileResolver) -> None:
    result = run(lookup_dmarc("fabrikam.test", context))

    assert result.status == "found"
    assert result.policy == "quarantine"
    assert result.pct == 25
    assert "25%" in result.meaning and "normal delivery" in result.meaning


def test_two_records_mean_no_dmarc(context: ZoneFileResolver) -> None:
    result = run(lookup_dmarc("tailspin.test", context))

    assert result.status == "invalid"
    assert result.applied_policy is None
    assert len(result.records) == 2
    assert any("2 DMARC records" in p for p in result.problems)


def test_two_records_at_a_subdomain_do_not_fall_back() -> None:
    # RFC 7489 6.6.3 step 4: several records end the search.
    resolver = zone(
        '_dmarc.example.test. TXT "v=DMARC1; p=reject"\n'
        '_dmarc.shop.example.test. TXT "v=DMARC1; p=none"\n'
        '_dmarc.shop.example.test. TXT "v=DMARC1; p=quarantine"\n'
    )

    result = run(lookup_dmarc("shop.example.test", resolver))

    assert result.status == "invalid"
    assert result.found_at == "shop.example.test"
    assert result.queried == ("_dmarc.shop.example.test",)


def test_missing_p_with_rua_counts_as_none(
    context: ZoneFileResolver,
) -> None:
    result = run(lookup_dmarc("noreply.test", context))

    assert result.status == "invalid"
    assert result.policy is None
    assert result.applied_policy == "none"
    assert any("pct=150" in p for p in result.problems)
    assert any("step 5" in p for p in result.problems)


def test_missing_p_without_rua_is_no_dmarc() -> None:
    resolver = zone('_dmarc.example.test. TXT "v=DMARC1; sp=reject"\n')

    result = run(lookup_dmarc("example.test", resolver))

    assert result.status == "invalid"
    assert result.applied_policy is None


def test_lower_case_version_is_ignored_and_org_used(
    context: ZoneFileResolver,
) -> None:
    result = run(lookup_dmarc("mail.example.co.uk", context))

    assert result.found_at == "example.co.uk"
    assert result.applied_policy == "quarantine"
    assert result.queried == ("_dmarc.mail.example.co.uk",
                              "_dmarc.example.co.uk")
    assert any("does not start with v=DMARC1" in p for p in result.problems)


def test_no_record_anywhere(context: ZoneFileResolver) -> None:
    result = run(lookup_dmarc("www.plain.test", context))

    assert result.status == "none"
    assert result.record is None
    assert result.applied_policy is None
    assert result.queried == ("_dmarc.www.plain.test", "_dmarc.plain.test")


def test_other_txt_records_are_not_dmarc() -> None:
    resolver = zone(
        '_dmarc.example.test. TXT "google-site-verification=abc"\n'
    )

    result = run(lookup_dmarc("example.test", resolver))

    assert result.status == "none"
    assert result.problems == ()


# ---------------------------------------------------------------------------
# DNS failures are never "no record"


def test_timeout_at_the_domain(context: ZoneFileResolver) -> None:
    resolver = FailingResolver(context, ["_dmarc.sales.contoso.test"])

    result = run(lookup_dmarc("sales.contoso.test", resolver))

    assert result.status == "dns-error"
    assert result.applied_policy is None
    assert "TIMEOUT" in result.problems[-1]
    # The organisational domain is not asked: the first answer is unknown.
    assert ("_dmarc.contoso.test", "TXT") not in resolver.asked


def test_timeout_at_the_org_domain(context: ZoneFileResolver) -> None:
    resolver = FailingResolver(context, ["_dmarc.contoso.test"], "SERVFAIL")

    result = run(lookup_dmarc("sales.contoso.test", resolver))

    assert result.status == "dns-error"
    assert "_dmarc.contoso.test: SERVFAIL" in result.problems[-1]


def test_real_timeout_through_live_resolver() -> None:
    with silent_server() as server:
        resolver = LiveResolver([server], timeout=0.2, retries=0)
        result = run(lookup_dmarc("example.test", resolver))

    assert result.status == "dns-error"
    assert "TIMEOUT" in result.problems[0]


def test_result_is_json_ready(context: ZoneFileResolver) -> None:
    for domain in ("contoso.test", "tailspin.test", "plain.test"):
        data = run(lookup_dmarc(domain, context)).to_dict()
        assert json.loads(json.dumps(data)) == data
        assert data["status"] in ("found", "none", "invalid", "dns-error")


# ---------------------------------------------------------------------------
# Real DNS: the same answers from knotd


CONTEXT_DOMAINS = [
    "contoso.test", "sales.contoso.test", "support.contoso.test",
    "fabrikam.test", "tailspin.test", "noreply.test",
    "mail.example.co.uk", "plain.test", "x.nowhere.test",
]


def test_knot_gives_the_same_results(knot_for, context) -> None:
    host, port = knot_for(CONTEXT_ZONE)
    live = LiveResolver([f"{host}:{port}"], timeout=2.0)

    for domain in CONTEXT_DOMAINS:
        over_dns = run(lookup_dmarc(domain, live)).to_dict()
        from_file = run(lookup_dmarc(domain, context)).to_dict()
        assert over_dns == from_file, domain

    assert live.stats.sent > 0 and live.stats.failures == 0
