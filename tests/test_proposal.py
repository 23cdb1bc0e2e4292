"""Proposed SPF records: written right, split right, and proven to work.

Three layers of proof:

* pure tests of the text operations (inserting ``ip4:`` terms, splitting
  into strings, the console value and the zone-file line);
* property-style cases: seeded random records (long ones needing several
  strings, with redirect, without ``all``, with ``+all``...) proposed over a
  zone file, each proposal re-evaluated by pyspf, an SPF implementation
  independent of the kit's, for every region SPF IP and for its lookups;
* publication: every proposal for the finding zones is written into a copy
  of its zone, Knot serves the copy, and the audit through real DNS must
  then say ``authorised`` with the same lookup count as before.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.zone
import pytest
import spf as pyspf

from cxone_audit.audit import DomainResult, audit_domain
from cxone_audit.findings import Finding, diagnose, gather_facts
from cxone_audit.proposal import (
    DEFAULT_QUALIFIER,
    Proposal,
    add_ip4_terms,
    console_value,
    new_record,
    propose,
    split_strings,
    zone_line,
)
from cxone_audit.regions import REGION_CODES, get_region, spf_ips
from cxone_audit.resolver import LiveResolver, Resolver
from cxone_audit.spf import PROBE_IP, SpfEvaluator

from .zones import HEAD, zone

DATA = Path(__file__).resolve().parent / "data" / "findings"


# ---------------------------------------------------------------------------
# Inserting ip4: terms


@pytest.mark.parametrize(("record", "expected"), [
    ("v=spf1 a mx ~all", "v=spf1 a mx ip4:192.0.2.7 ip4:192.0.2.8 ~all"),
    ("v=spf1  a   -all  exp=x.example",
     "v=spf1  a   ip4:192.0.2.7 ip4:192.0.2.8 -all  exp=x.example"),
    ("v=spf1 include:a.example redirect=b.example",
     "v=spf1 include:a.example ip4:192.0.2.7 ip4:192.0.2.8 redirect=b.example"),
    ("v=spf1 mx ?all redirect=b.example",
     "v=spf1 mx ip4:192.0.2.7 ip4:192.0.2.8 ?all redirect=b.example"),
    ("v=spf1 a mx", "v=spf1 a mx ip4:192.0.2.7 ip4:192.0.2.8"),
    ("v=spf1 a  ", "v=spf1 a ip4:192.0.2.7 ip4:192.0.2.8  "),
    ("v=spf1", "v=spf1 ip4:192.0.2.7 ip4:192.0.2.8"),
    ("v=spf1 +all", "v=spf1 ip4:192.0.2.7 ip4:192.0.2.8 +all"),
    ("v=spf1 ALL", "v=spf1 ip4:192.0.2.7 ip4:192.0.2.8 ALL"),
    # RFC 7208 5.1: an address after 'all' is never reached; it moves in
    # front of 'all' rather than standing there twice. Other dead terms,
    # and live terms after a redirect, stay.
    ("v=spf1 mx -all ip4:192.0.2.7 a +ip4:192.0.2.8/32",
     "v=spf1 mx ip4:192.0.2.7 ip4:192.0.2.8 -all a"),
    ("v=spf1 mx redirect=b.example ip4:192.0.2.7",
     "v=spf1 mx ip4:192.0.2.7 ip4:192.0.2.8 redirect=b.example "
     "ip4:192.0.2.7"),
    ("v=spf1 a:allhosts.example ~all",
     "v=spf1 a:allhosts.example ip4:192.0.2.7 ip4:192.0.2.8 ~all"),
])
def test_ip4_terms_go_in_front_of_all_or_redirect(
    record: str, expected: str
) -> None:
    assert add_ip4_terms(record, ["192.0.2.7", "192.0.2.8"]) == expected


def test_ip4_terms_at_the_front() -> None:
    record = "v=spf1 -ip4:192.0.2.0/24  include:a.example ~all"

    assert add_ip4_terms(record, ["192.0.2.7"], front=True) == (
        "v=spf1 ip4:192.0.2.7 -ip4:192.0.2.0/24  include:a.example ~all")


def test_nothing_to_add_leaves_the_record() -> None:
    assert add_ip4_terms("v=spf1 -all", []) == "v=spf1 -all"


def test_new_record_defaults_to_softfail() -> None:
    assert DEFAULT_QUALIFIER == "~"
    assert new_record(["192.0.2.7", "192.0.2.8"]) == (
        "v=spf1 ip4:192.0.2.7 ip4:192.0.2.8 ~all")
    assert new_record(["192.0.2.7"], "-") == "v=spf1 ip4:192.0.2.7 -all"
    with pytest.raises(ValueError):
        new_record(["192.0.2.7"], "!")


# ---------------------------------------------------------------------------
# Splitting into strings


def _random_text(rng: random.Random) -> str:
    words = []
    for _ in range(rng.randrange(0, 120)):
        length = rng.choice([1, 5, 14, 30, 60, 300])
        words.append("".join(rng.choice("abc.:/-0123456789é")
                             for _ in range(rng.randrange(1, length + 1))))
    return " " * rng.randrange(0, 2) + " ".join(words)


@pytest.mark.parametrize("seed", range(200))
def test_split_strings_properties(seed: int) -> None:
    rng = random.Random(seed)
    text = _random_text(rng)
    limit = rng.choice([255, 255, 64, 4])

    pieces = split_strings(text, limit)

    # RFC 7208 3.3: receivers join the strings with nothing in between.
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= limit for p in pieces)
    assert all(pieces[:-1])
    for piece, after in zip(pieces, pieces[1:], strict=False):
        window = (piece + after).encode()[:limit]
        if b" " in window and len(piece.encode()) < limit:
            # Cut after the last space of the window, not before it.
            assert piece.endswith(" ")


def test_split_keeps_short_text_whole() -> None:
    assert split_strings("v=spf1 -all") == ["v=spf1 -all"]
    assert split_strings("") == [""]


def test_split_cuts_after_a_space_and_within_255_bytes() -> None:
    text = "v=spf1 " + " ".join(f"ip4:198.51.100.{n}" for n in range(40))

    pieces = split_strings(text)

    assert len(pieces) == 3
    for piece, after in zip(pieces, pieces[1:], strict=False):
        # Each cut falls after a space, as late as 255 bytes allow: the
        # next term would not have fitted.
        assert piece.endswith(" ") and len(piece) <= 255
        assert len(piece) + len(after.split(" ")[0]) > 255


def test_split_never_cuts_inside_a_character() -> None:
    pieces = split_strings("é" * 200, 255)

    assert [len(p.encode()) for p in pieces] == [254, 146]


def test_console_value_and_zone_line_round_trip() -> None:
    record = 'v=spf1 ' + "ip4:198.51.100.1 " * 20 + 'exp=x"y\\z.example -all'
    strings = split_strings(record)

    line = zone_line("example.com", strings)
    loaded = dns.zone.from_text(HEAD + line + "\n", origin=dns.name.root,
                                relativize=False)
    rdataset = loaded.find_rdataset("example.com.", "TXT")

    assert len(strings) == 2
    assert line.startswith('example.com. 3600 IN TXT "v=spf1 ')
    assert [s.decode() for s in rdataset[0].strings] == strings
    assert console_value(strings) == line.split(" IN TXT ", 1)[1]
    assert console_value(["v=spf1 -all"]) == "v=spf1 -all"


# ---------------------------------------------------------------------------
# Property-style proposals, re-evaluated by pyspf

_VENDORS = """
v1.example. IN TXT "v=spf1 ip4:198.51.100.0/28 a:h.example ~all"
v2.example. IN TXT "v=spf1 include:v1.example -all"
v3.example. IN TXT "v=spf1 ip4:203.0.113.0/24 -all"
h.example. IN A 198.51.100.200
gen.example. IN MX 10 h.example.
gen.example. IN A 198.51.100.201
"""

_ENDINGS = ["~all", "-all", "?all", "+all", "", "redirect=v3.example",
            "-all redirect=v3.example", "~all ip4:{ip}", "redirect=v3.example "
            "exp=explain.example"]


def _random_record(rng: random.Random, region: str) -> str:
    own = list(spf_ips(region))
    terms = [f"ip4:198.51.{rng.randrange(256)}.{rng.randrange(256)}"
             for _ in range(rng.choice([0, 2, 8, 30, 45]))]
    terms += rng.sample(own, rng.randrange(len(own) + 1))
    terms += rng.sample(["include:v2.example", "a:h.example", "mx", "a",
                         "include:v3.example"], rng.randrange(4))
    terms = [f"ip4:{t}" if t in own else t for t in terms]
    rng.shuffle(terms)
    ending = rng.choice(_ENDINGS).format(ip=rng.choice(own))
    gap = " " * rng.choice([1, 1, 2])
    return gap.join(["v=spf1", *terms, ending]).rstrip(" ") + " " * (
        rng.random() < 0.2)


def _published(record: str | None) -> str:
    if record is None:
        return ""
    chunks = [record[i:i + 200] for i in range(0, len(record), 200)]
    return "gen.example. IN TXT " + " ".join(f'"{c}"' for c in chunks)


def _pyspf_lookup(resolver: Resolver) -> Callable[..., list[Any]]:
    """pyspf's DNS hook, answered by one of the kit's resolvers."""

    def lookup(name, qtype, strict=True, timeout=None):
        answer = asyncio.run(resolver.query(name, qtype))
        if answer.temporary:
            raise pyspf.TempError(f"DNS {answer.rcode} {answer.detail}")
        found = []
        for index, text in enumerate(answer.records):
            if qtype in ("TXT", "SPF"):
                value: Any = [s.encode() for s in answer.strings[index]]
            elif qtype == "MX":
                preference, host = text.split(" ", 1)
                value = (int(preference), host)
            else:
                value = text
            found.append(((name, qtype), value))
        return found

    return lookup


def _pyspf(ip: str, domain: str, record: str) -> tuple[str, int]:
    """pyspf's result for ``record`` (not published) and its lookups."""
    query = pyspf.query(i=ip, s=f"postmaster@{domain}", h=domain)
    result, _, _ = query.check(spf=record)
    return result, query.lookups


async def _propose(resolver: Resolver, domain: str,
                   region: str) -> tuple[Proposal, list[Finding]]:
    evaluator = SpfEvaluator(resolver)
    place = get_region(region)
    txt = await resolver.query(domain, "TXT")
    verdicts = await evaluator.check_ips(spf_ips(place), domain)
    walk = await evaluator.check_record(domain)
    facts = await gather_facts(domain, place, resolver, evaluator, txt,
                               verdicts, walk)
    findings = diagnose(facts)
    return await propose(facts, findings, evaluator), findings


def _removed(proposed: str, added: list[str]) -> str:
    """``proposed`` without the inserted ``ip4:`` run (and its one space)."""
    run = " ".join(f"ip4:{ip}" for ip in added)
    for candidate in (run + " ", " " + run):
        if candidate in proposed:
            return proposed.replace(candidate, "", 1)
    raise AssertionError(f"{run!r} not inserted as one run")


def _dead_copies_dropped(current: str, added: list[str]) -> str:
    """``current`` without a term after ``all`` that the proposal moved in
    front of it (RFC 7208 5.1). Of the generated endings only
    ``~all ip4:IP`` has a term after ``all``."""
    match = re.search(r"~all( +)ip4:(\S+)", current)
    if match and match.group(2) in added:
        return current[:match.start(1)] + current[match.end():]
    return current


@pytest.mark.parametrize("seed", range(60))
def test_random_record_proposal_is_proven(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(seed)
    region = rng.choice(REGION_CODES)
    current = None if rng.random() < 0.1 else _random_record(rng, region)
    resolver = zone(_VENDORS + _published(current))
    monkeypatch.setattr(pyspf, "DNSLookup", _pyspf_lookup(resolver))

    proposal, findings = asyncio.run(_propose(resolver, "gen.example",
                                              region))

    before = {ip: _pyspf(ip, "gen.example", current or "v=spf1")[0]
              for ip in spf_ips(region)}
    if all(r == "pass" for r in before.values()):
        assert proposal.needed is False and proposal.record is None
        return
    assert proposal.needed is True
    assert proposal.blocked_by is None, [f.code for f in findings]
    record = proposal.record
    assert record is not None

    # Only the missing addresses were added, as one run; the rest is as it
    # was, spacing and qualifiers included, but for a dead copy after 'all'.
    missing = [ip for ip, r in before.items() if r != "pass"]
    assert list(proposal.added) == missing
    if current is not None:
        assert _removed(record, missing) == _dead_copies_dropped(current,
                                                                 missing)
    else:
        assert record == new_record(missing)

    # Strings: joined with nothing in between, none over 255 bytes.
    assert "".join(proposal.strings) == record
    assert all(len(s.encode()) <= 255 for s in proposal.strings)
    assert len(proposal.strings) == len(split_strings(record))

    # The kit's own proof, then pyspf's, independent of it.
    check = proposal.verification
    assert check is not None and check.all_pass
    assert check.dns_lookups_after == check.dns_lookups_before
    for ip in spf_ips(region):
        assert _pyspf(ip, "gen.example", record)[0] == "pass", ip
    if current is not None:
        assert _pyspf(PROBE_IP, "gen.example", record)[1] == (
            _pyspf(PROBE_IP, "gen.example", current)[1])


@pytest.mark.parametrize(("record", "where"), [
    ("v=spf1 +all", None),
    ("v=spf1 ip4:216.20.244.25 ?all", "?all"),
    ("v=spf1 ip4:216.20.244.25 redirect=v3.example", "redirect="),
    ("v=spf1 ip4:216.20.244.25 a", None),
])
def test_named_shapes(record: str, where: str | None) -> None:
    resolver = zone(_VENDORS + _published(record))

    proposal, _ = asyncio.run(_propose(resolver, "gen.example", "EU1"))

    if record == "v=spf1 +all":
        assert proposal.needed is False
        return
    proposed = proposal.record or ""
    tail = "ip4:18.193.197.37"
    assert proposed.endswith(tail) if where is None else (
        proposed.index(tail) < proposed.index(where))
    assert proposal.verification is not None
    assert proposal.verification.all_pass


def test_term_that_denies_first_moves_the_ip4_terms_to_the_front() -> None:
    resolver = zone(_VENDORS + _published(
        "v=spf1 -ip4:216.20.240.0/20 ip4:3.73.46.42 ip4:18.193.197.37 ~all"))

    proposal, _ = asyncio.run(_propose(resolver, "gen.example", "EU1"))

    assert proposal.record == (
        "v=spf1 ip4:216.20.244.25 ip4:216.20.248.25 -ip4:216.20.240.0/20 "
        "ip4:3.73.46.42 ip4:18.193.197.37 ~all")
    assert proposal.verification is not None
    assert proposal.verification.all_pass


@pytest.mark.parametrize(("body", "code"), [
    ('gen.example. IN TXT "v=spf1 -all"\ngen.example. IN TXT "v=spf1 ~all"',
     "spf.multiple-records"),
    ('gen.example. IN TXT "v=spf1 ip4:1.2.3 -all"', "spf.syntax-error"),
    ('gen.example. IN TXT "v=spf1 include:none.example -all"',
     "spf.include-target-missing"),
    ('gen.example. IN TXT "v=spf1 a:x1.example a:x2.example a:x3.example '
     '-all"', "spf.too-many-void-lookups"),
    ('gen.example. IN TXT "v=spf1 ' + "a:h.example " * 11 + '-all"',
     "spf.too-many-lookups"),
])
def test_broken_record_says_what_to_fix_first(body: str, code: str) -> None:
    resolver = zone(_VENDORS + body)

    proposal, _ = asyncio.run(_propose(resolver, "gen.example", "EU1"))

    assert proposal.needed is True
    assert proposal.record is None
    assert proposal.blocked_by is not None and code in proposal.blocked_by
    assert "Fix" in proposal.note


def test_proposal_json_has_the_agreed_keys() -> None:
    resolver = zone(_VENDORS)

    proposal, _ = asyncio.run(_propose(resolver, "gen.example", "UK1"))
    data = proposal.to_dict()

    assert {"needed", "record", "strings", "console_value", "zone_line",
            "verification", "blocked_by", "note"} <= set(data)
    assert data["record"] == "v=spf1 ip4:52.56.74.209 ip4:18.132.96.228 ~all"
    assert data["verification"]["ips"] == [
        {"ip": "52.56.74.209", "result": "pass"},
        {"ip": "18.132.96.228", "result": "pass"}]
    assert data["verification"]["dns_lookups_before"] == 0
    assert data["zone_line"] == (
        'gen.example. 3600 IN TXT "v=spf1 ip4:52.56.74.209 '
        'ip4:18.132.96.228 ~all"')


# ---------------------------------------------------------------------------
# Publication through Knot

ZONES = ("record.zone", "policy.zone", "size.zone", "cxone.zone")


def _domains(path: Path) -> list[str]:
    loaded = dns.zone.from_file(str(path), origin=dns.name.root,
                                relativize=False)
    names = []
    for name, node in loaded.nodes.items():
        text = name.to_text(omit_final_dot=True)
        if node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT) is None:
            continue
        if not text.startswith("_") and text.count(".") == 1:
            names.append(text)
    return sorted(names)


def _audit_all(address: tuple[str, int],
               domains: list[str]) -> dict[str, DomainResult]:
    resolver = LiveResolver([f"{address[0]}:{address[1]}"], timeout=2)

    async def run() -> list[DomainResult]:
        return list(await asyncio.gather(
            *(audit_domain(d, "EU1", resolver) for d in domains)))

    return {r.domain or "": r for r in asyncio.run(run())}


def _publish(path: Path, records: dict[str, list[str]], out: Path) -> Path:
    """A copy of the zone with each domain's SPF TXT replaced."""
    loaded = dns.zone.from_file(str(path), origin=dns.name.root,
                                relativize=False)
    for domain, strings in records.items():
        node = loaded.find_node(f"{domain}.", create=True)
        old = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT)
        kept = [r for r in (old or []) if not b"".join(r.strings)
                .lower().startswith(b"v=spf1")]
        node.delete_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT)
        rdataset = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.TXT,
                                     create=True)
        text = " ".join('"' + s + '"' for s in strings)
        new = dns.rdata.from_text("IN", "TXT", text)
        for rdata in [*kept, new]:
            rdataset.add(rdata, 300)
    loaded.to_file(str(out), relativize=False)
    return out


def _knot_lookup(address: tuple[str, int]) -> Callable[..., list[Any]]:
    """pyspf's DNS hook, asking Knot with dnspython's blocking resolver."""
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [address[0]]
    resolver.port = address[1]

    def lookup(name, qtype, strict=True, timeout=None):
        try:
            answer = resolver.resolve(name, qtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        found = []
        for rdata in answer.rrset or []:
            if qtype in ("TXT", "SPF"):
                value: Any = list(rdata.strings)
            elif qtype == "MX":
                value = (rdata.preference, rdata.exchange.to_text(True))
            else:
                value = rdata.to_text()
            found.append(((name, qtype), value))
        return found

    return lookup


@pytest.mark.parametrize("zone_file", ZONES)
def test_published_proposals_authorise_every_ip(
    knot_for, tmp_path: Path, zone_file: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = DATA / zone_file
    domains = _domains(path)
    before = _audit_all(knot_for(path), domains)
    proposals = {d: r.extra["proposal"] for d, r in before.items()
                 if r.extra["proposal"]["record"]}
    assert proposals

    fixed = _publish(path, {d: p["strings"] for d, p in proposals.items()},
                     tmp_path / zone_file)
    address = knot_for(fixed)
    after = _audit_all(address, list(proposals))
    monkeypatch.setattr(pyspf, "DNSLookup", _knot_lookup(address))

    for domain, proposal in proposals.items():
        result = after[domain]
        assert result.status == "authorised", (domain, result.reason)
        assert result.spf.record == proposal["record"]
        assert list(result.spf.strings) == proposal["strings"]
        assert result.spf.dns_lookups == before[domain].spf.dns_lookups
        assert proposal["verification"]["dns_lookups_after"] == (
            result.spf.dns_lookups)
        for ip in spf_ips("EU1"):
            assert pyspf.check2(i=ip, s=f"postmaster@{domain}",
                                h=domain)[0] == "pass"
