"""Amazon SES verification: the user's statement and the DNS signs."""

from __future__ import annotations

import json
import math

import pytest

from cxone_audit.resolver import LiveResolver, ZoneFileResolver
from cxone_audit.ses import lookup_ses, read_stated

from .contextdns import CONTEXT_ZONE, FailingResolver, run
from .zones import zone


@pytest.fixture(scope="module")
def context() -> ZoneFileResolver:
    return ZoneFileResolver(CONTEXT_ZONE)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("yes", True), ("Yes", True), (" SIM ", True), ("true", True),
        ("1", True), (1, True), (1.0, True), ("1.0", True), (True, True),
        ("0.0", False),
        ("no", False), ("Não", False), ("NAO", False), ("false", False),
        ("0", False), (0, False), (False, False),
        ("", None), ("unknown", None), ("desconhecido", None), (None, None),
        (math.nan, None),
    ],
)
def test_read_stated(cell: object, expected: bool | None) -> None:
    value, problem = read_stated(cell)

    assert value is expected
    assert problem == ""


def test_unreadable_statement_is_unknown_and_said() -> None:
    value, problem = read_stated("maybe")

    assert value is None
    assert "'maybe'" in problem


def test_legacy_and_apex_tokens(context: ZoneFileResolver) -> None:
    result = run(lookup_ses("contoso.test", context))

    assert result.verified is True
    assert result.source == "dns"
    assert result.dns_signs is True
    assert len(result.tokens) == 3
    assert "Qk9HVVMtb2xkLWZvcm0tdG9rZW4=" in result.tokens
    assert any("2 SES verification token" in e for e in result.evidence)
    assert any("amazonses:" in e for e in result.evidence)
    # Verified: the customer's SPF is not what receivers check.
    assert "amazonses.com" in result.explanation
    assert "informational" in result.explanation
    assert "not necessarily CXone's" in result.explanation


def test_no_signs_and_nothing_stated(context: ZoneFileResolver) -> None:
    result = run(lookup_ses("plain.test", context))

    assert result.verified is None
    assert result.source == "unknown"
    assert result.dns_signs is False
    assert any("_domainkey" in e for e in result.evidence)
    assert "ses_verified" in result.explanation


def test_statement_wins_over_missing_signs(context: ZoneFileResolver) -> None:
    result = run(lookup_ses("plain.test", context, stated="sim"))

    assert (result.verified, result.source) == (True, "stated")
    assert result.stated == "sim"
    assert result.dns_signs is False
    assert "not necessarily" not in result.explanation


def test_statement_wins_over_signs(context: ZoneFileResolver) -> None:
    result = run(lookup_ses("contoso.test", context, stated="no"))

    assert (result.verified, result.source) == (False, "stated")
    assert result.dns_signs is True
    assert any("although" in e for e in result.evidence)
    assert "must authorise" in result.explanation


def test_unreadable_statement_falls_back_to_dns(
    context: ZoneFileResolver,
) -> None:
    result = run(lookup_ses("contoso.test", context, stated="perhaps"))

    assert (result.verified, result.source) == (True, "dns")
    assert any("'perhaps'" in e for e in result.evidence)


def test_custom_mail_from_domain(context: ZoneFileResolver) -> None:
    result = run(lookup_ses("bounce.contoso.test", context))

    assert (result.verified, result.source) == (True, "dns")
    assert result.tokens == ()
    assert any("custom MAIL FROM" in e and "eu-west-1" in e
               for e in result.evidence)


def test_apex_token_alone() -> None:
    resolver = zone('example.test. TXT "amazonses:dG9rZW4="\n'
                    'example.test. TXT "v=spf1 -all"\n')

    result = run(lookup_ses("example.test", resolver))

    assert result.verified is True
    assert result.tokens == ("dG9rZW4=",)


def test_timeout_leaves_signs_unknown(context: ZoneFileResolver) -> None:
    resolver = FailingResolver(context, ["_amazonses.plain.test"])

    result = run(lookup_ses("plain.test", resolver))

    assert result.dns_signs is None
    assert result.verified is None
    assert any("TIMEOUT" in e for e in result.evidence)


def test_timeout_does_not_hide_a_sign_found_elsewhere(
    context: ZoneFileResolver,
) -> None:
    resolver = FailingResolver(context, ["contoso.test"])

    result = run(lookup_ses("contoso.test", resolver))

    assert result.dns_signs is True
    assert len(result.tokens) == 2


def test_result_is_json_ready(context: ZoneFileResolver) -> None:
    data = run(lookup_ses("contoso.test", context, stated="yes")).to_dict()

    assert json.loads(json.dumps(data)) == data


def test_knot_gives_the_same_results(knot_for, context) -> None:
    host, port = knot_for(CONTEXT_ZONE)
    live = LiveResolver([f"{host}:{port}"], timeout=2.0)

    for domain, stated in [("contoso.test", None), ("plain.test", "não"),
                           ("fabrikam.test", None),
                           ("bounce.contoso.test", None)]:
        over_dns = run(lookup_ses(domain, live, stated)).to_dict()
        from_file = run(lookup_ses(domain, context, stated)).to_dict()
        assert over_dns == from_file, domain

    assert run(lookup_ses("contoso.test", live)).verified is True
