import asyncio

import pytest

from cxone_audit.audit import audit_domain
from cxone_audit.resolver import Answer, ZoneFileResolver
from cxone_audit.spf import SpfEvaluator, spf_records

from .zones import HEAD, zone

EU = ("216.20.244.25", "216.20.248.25", "3.73.46.42", "18.193.197.37")

BODY = """
good.example. IN TXT ( "v=spf1 ip4:216.20.244.25 ip4:216.20.248.25"
                       " ip4:3.73.46.42 ip4:18.193.197.37 -all" )
viainc.example. IN TXT "v=spf1 include:_spf.viainc.example ~all"
_spf.viainc.example. IN TXT "v=spf1 include:_deep.viainc.example -all"
_deep.viainc.example. IN TXT "v=spf1 ip4:216.20.240.0/20 ip4:3.73.46.42 ?all"
redir.example. IN TXT "v=spf1 redirect=_spf.viainc.example"
half.example. IN TXT "v=spf1 ip4:216.20.244.25 ip4:3.73.46.42 -all"
none.example. IN TXT "google-site-verification=abc"
two.example. IN TXT "v=spf1 -all"
two.example. IN TXT "v=spf1 +all"
loopy.example. IN TXT "v=spf1 include:loopy.example -all"
"""


def run(coro):
    return asyncio.run(coro)


def test_deciding_term_and_include_path() -> None:
    evaluator = SpfEvaluator(zone(BODY))

    inner = run(evaluator.check_host("3.73.46.42", "viainc.example"))
    ranged = run(evaluator.check_host("216.20.248.25", "viainc.example"))
    outside = run(evaluator.check_host("18.193.197.37", "viainc.example"))

    assert (inner.result, inner.matched, inner.matched_in, inner.path) == (
        "pass", "ip4:3.73.46.42", "_deep.viainc.example",
        ("include:_spf.viainc.example", "include:_deep.viainc.example"))
    assert (ranged.result, ranged.matched) == ("pass", "ip4:216.20.240.0/20")
    assert (outside.result, outside.matched, outside.matched_in) == (
        "softfail", "~all", "viainc.example")


def test_redirect_is_part_of_the_path() -> None:
    evaluator = SpfEvaluator(zone(BODY))

    verdict = run(evaluator.check_host("18.193.197.37", "redir.example"))

    assert verdict.result == "fail"
    assert verdict.matched == "-all"
    assert verdict.path == ("redirect=_spf.viainc.example",)


def test_errors_carry_a_reason_and_no_match() -> None:
    evaluator = SpfEvaluator(zone(BODY))

    two = run(evaluator.check_host("3.73.46.42", "two.example"))
    loop = run(evaluator.check_host("3.73.46.42", "loopy.example"))
    nothing = run(evaluator.check_host("3.73.46.42", "none.example"))

    assert (two.result, two.matched) == ("permerror", None)
    assert two.reason
    assert loop.result == "permerror"
    assert (nothing.result, nothing.reason) != ("none", "")


def test_record_walk_counts_lookups() -> None:
    evaluator = SpfEvaluator(zone(BODY))

    walk = run(evaluator.check_record("viainc.example"))
    flat = run(evaluator.check_record("good.example"))

    assert (walk.dns_lookups, walk.void_lookups) == (2, 0)
    assert (flat.dns_lookups, flat.result) == (0, "fail")


def test_policy_override_is_evaluated_without_publishing() -> None:
    evaluator = SpfEvaluator(zone(BODY))

    verdict = run(evaluator.check_host(
        "3.73.46.42", "none.example", policy="v=spf1 ip4:3.73.46.42 -all"))

    assert (verdict.result, verdict.matched) == ("pass", "ip4:3.73.46.42")


def test_spf_records_are_picked_by_version_tag() -> None:
    answer = Answer("x.example", "TXT", "NOERROR", records=(
        "v=spf1 -all", "V=SPF1", "v=spf10 -all", "v=spf1x", "other"))

    assert spf_records(answer) == ["v=spf1 -all", "V=SPF1"]


@pytest.mark.parametrize(("domain", "status"), [
    ("good.example", "authorised"),
    ("half.example", "partly-authorised"),
    ("viainc.example", "partly-authorised"),
    ("none.example", "no-spf"),
    ("nowhere.example", "no-spf"),
    ("two.example", "spf-error"),
    ("redir.example", "partly-authorised"),
])
def test_status_per_domain(domain: str, status: str) -> None:
    result = run(audit_domain(domain, "EU1", zone(BODY)))

    assert result.status == status, result.reason
    assert [v.ip for v in result.ips] == list(EU)


def test_good_domain_keeps_strings_and_evidence() -> None:
    result = run(audit_domain("good.example", "Europa", zone(BODY)))

    assert result.spf.strings == ("v=spf1 ip4:216.20.244.25 ip4:216.20.248.25",
                                  " ip4:3.73.46.42 ip4:18.193.197.37 -all")
    assert result.spf.record == "".join(result.spf.strings)
    assert ("good.example", "TXT") in {(a.name, a.rtype)
                                       for a in result.evidence}
    assert result.failing_ips == []


def test_not_authorised_lists_every_ip() -> None:
    result = run(audit_domain("good.example", "UK1", zone(BODY)))

    assert result.status == "not-authorised"
    assert "52.56.74.209 (fail)" in result.reason


class _Dead(ZoneFileResolver):
    """Times out for one name; counts the questions that reach it."""

    dead = "slow.example"
    dead_asks = 0

    async def _ask(self, name: str, rtype: str) -> Answer:
        if name == self.dead:
            self.dead_asks += 1
            return Answer(name, rtype, "TIMEOUT", detail="test")
        return await super()._ask(name, rtype)


def test_a_timeout_is_temperror_asked_once_per_domain_never_cached() -> None:
    body = BODY + 'uses.example. IN TXT "v=spf1 include:slow.example -all"\n'
    resolver = _Dead.from_text(HEAD + body)

    first = run(audit_domain("uses.example", "EU1", resolver))
    asks_for_first = resolver.dead_asks
    run(audit_domain("uses.example", "EU1", resolver))

    assert first.status == "dns-error"
    assert {v.result for v in first.ips} == {"temperror"}
    assert "no SPF" not in first.reason
    assert first.reason.endswith("(test)")  # the failure's detail is shown
    slow = [a.rcode for a in first.evidence if a.name == "slow.example"]
    assert slow == ["TIMEOUT"]
    assert asks_for_first == 1
    # Temporary failures are not cached for the run: asked again.
    assert resolver.dead_asks == 2


def test_a_record_parsed_once_gives_every_ip_its_own_verdict() -> None:
    import spftrace.evaluator

    evaluator = SpfEvaluator(zone(BODY))
    parse = spftrace.evaluator.parse
    before = parse.cache_info().hits

    verdicts = run(evaluator.check_ips(EU, "half.example"))

    assert [v.result for v in verdicts] == ["pass", "fail", "pass", "fail"]
    assert parse.cache_info().hits - before >= len(EU) - 1


def test_a_record_that_does_not_parse_fails_every_time() -> None:
    body = 'bad.example. IN TXT "v=spf1 ip4:216.20.244.300 -all"\n'
    evaluator = SpfEvaluator(zone(body))

    first, second = run(evaluator.check_ips(EU[:2], "bad.example"))

    assert first.result == second.result == "permerror"
    assert "invalid IPv4 network" in second.reason
