"""A CNAME loop is a DNS error (SERVFAIL) in both resolver backends.

RFC 1034 3.6.2 asks resolvers to detect CNAME loops; recursive resolvers
answer SERVFAIL. Knot, authoritative for the loop, answers with the looping
CNAMEs and dnspython gives up on the chain; the zone-file backend finds the
loop itself. Both must say ``SERVFAIL`` / ``CNAME loop``, so an audit that
meets a loop reports ``dns-error`` whichever backend it runs on.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from cxone_audit.audit import audit_domain
from cxone_audit.resolver import (
    CNAME_LOOP,
    CNAME_TOO_LONG,
    LiveResolver,
    Resolver,
    ZoneFileResolver,
    _servfail_detail,
)


def _chain(label: str, links: int) -> list[str]:
    lines = [f"c{i}.{label}.test. IN CNAME c{i + 1}.{label}.test."
             for i in range(links)]
    return lines + [f'c{links}.{label}.test. IN TXT "end of {label}"']


ZONE = "\n".join([
    ". 86400 IN SOA ns.test. hostmaster.test. 1 3600 900 604800 300",
    ". 86400 IN NS ns.test.",
    "ns.test. IN A 127.0.0.1",
    "ns.test. IN AAAA ::1",
    "self.loop.test. IN CNAME SELF.Loop.test.",
    "a.loop.test. IN CNAME b.loop.test.",
    "b.loop.test. IN CNAME a.loop.test.",
    "into.loop.test. IN CNAME a.loop.test.",
    "alias.ok.test. IN CNAME target.ok.test.",
    'target.ok.test. IN TXT "v=spf1 ip4:3.73.46.42 -all"',
    'looped.example. IN TXT "v=spf1 include:a.loop.test '
    'ip4:52.56.74.209 ip4:18.132.96.228 -all"',
    "itself.example. IN CNAME self.loop.test.",
    *_chain("fifteen", 15),
    *_chain("sixteen", 16),
]) + "\n"

LOOP_NAMES = ["self.loop.test", "a.loop.test", "b.loop.test",
              "into.loop.test", "itself.example"]


def _ask(resolver: Resolver, name: str, rtype: str = "TXT"):
    return asyncio.run(resolver.query(name, rtype))


@pytest.fixture(scope="module")
def zone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("loops") / "loops.zone"
    path.write_text(ZONE, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", LOOP_NAMES)
def test_zone_file_loop_is_servfail(name: str) -> None:
    answer = _ask(ZoneFileResolver.from_text(ZONE), name)

    assert (answer.rcode, answer.detail) == ("SERVFAIL", CNAME_LOOP)
    assert answer.temporary and not answer.records


def test_zone_file_loop_is_asked_again() -> None:
    # Temporary failures are not cached: a later question may succeed.
    resolver = ZoneFileResolver.from_text(ZONE)

    _ask(resolver, "a.loop.test")
    _ask(resolver, "a.loop.test")

    assert resolver.stats.sent == 2
    assert resolver.stats.failures == 2


def test_zone_file_chains_that_do_not_loop() -> None:
    resolver = ZoneFileResolver.from_text(ZONE)

    short = _ask(resolver, "alias.ok.test")
    fifteen = _ask(resolver, "c0.fifteen.test")
    sixteen = _ask(resolver, "c0.sixteen.test")
    cname = _ask(resolver, "a.loop.test", "CNAME")

    assert short.records == ("v=spf1 ip4:3.73.46.42 -all",)
    assert fifteen.records == ("end of fifteen",)
    assert len(fifteen.cnames) == 15
    # dnspython gives up after 16 CNAMEs in one response; so does the file.
    assert (sixteen.rcode, sixteen.detail) == ("SERVFAIL", CNAME_TOO_LONG)
    # Asking for the CNAME itself follows nothing.
    assert (cname.rcode, cname.records) == ("NOERROR", ("b.loop.test",))


def _response(qname: str, links: list[tuple[str, str]]) -> dns.message.Message:
    query = dns.message.make_query(qname, dns.rdatatype.TXT)
    response = dns.message.make_response(query)
    for owner, target in links:
        response.answer.append(dns.rrset.from_text(
            owner, 300, "IN", "CNAME", target))
    return response


def _no_servers(error: Exception, response: dns.message.Message | None):
    request = dns.message.make_query("x.test.", dns.rdatatype.TXT)
    return dns.resolver.NoNameservers(
        request=request,
        errors=[("Do53:127.0.0.1@53", False, 53, error, response)],
    )


def test_live_detail_tells_a_loop_from_a_long_chain() -> None:
    names = [f"c{i}.test." for i in range(18)]
    links = list(zip(names, names[1:], strict=False))
    long_chain = _response(names[0], links)
    loop = _response("a.test.", [("a.test.", "b.test."),
                                 ("b.test.", "A.TEST.")])
    too_long = dns.message.ChainTooLong()
    other = dns.resolver.YXDOMAIN()

    assert _servfail_detail(_no_servers(too_long, loop)) == CNAME_LOOP
    assert _servfail_detail(_no_servers(too_long, long_chain)) == (
        CNAME_TOO_LONG)
    assert _servfail_detail(_no_servers(too_long, None)) == CNAME_TOO_LONG
    assert "All nameservers failed" in _servfail_detail(
        _no_servers(other, None))


@pytest.mark.parametrize("name", LOOP_NAMES + ["alias.ok.test"])
def test_knot_and_zone_file_agree(knot_for, zone_file: Path,
                                  name: str) -> None:
    host, port = knot_for(zone_file)
    live = LiveResolver([f"{host}:{port}"], timeout=2, retries=0)
    offline = ZoneFileResolver(zone_file)

    served, read = _ask(live, name), _ask(offline, name)

    assert (served.rcode, served.detail, served.records) == (
        read.rcode, read.detail, read.records)
    if name in LOOP_NAMES:
        assert (served.rcode, served.detail) == ("SERVFAIL", CNAME_LOOP)


@pytest.mark.parametrize("domain", ["looped.example", "itself.example"])
def test_audit_reports_dns_error_in_both_backends(
    knot_for, zone_file: Path, domain: str
) -> None:
    host, port = knot_for(zone_file)
    backends = [LiveResolver([f"{host}:{port}"], timeout=2, retries=0),
                ZoneFileResolver(zone_file)]

    results = [asyncio.run(audit_domain(domain, "UK1", resolver))
               for resolver in backends]

    for result in results:
        assert result.status == "dns-error", result.reason
        assert [v.result for v in result.ips] == ["temperror"] * 2
        assert any(a.detail == CNAME_LOOP for a in result.evidence)
