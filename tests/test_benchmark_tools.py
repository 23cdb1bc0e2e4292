"""The benchmark's own tools: the domain generator and the delaying proxy.

The proxy is tested against a real Knot server on 127.0.0.1: it must hold
each message for the delay asked, keep answers with their questions when
many are in flight, and count queries and distinct (name, type) pairs.
"""

from __future__ import annotations

import asyncio
import csv
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dns.asyncquery
import dns.message
import dns.query
import dns.rdatatype
import dns.resolver
import pytest

from benchmarks.cpu_split import _cpu_ms_per_row
from benchmarks.generate import (
    REGIONS,
    SEED_ZONE,
    clone_label,
    generate,
    load_seed,
    rename,
)
from benchmarks.knot import KnotServer, find_knotd, knot_server
from benchmarks.proxy import DelayProxy, question
from cxone_audit.audit import audit_domain
from cxone_audit.inputs import read_rows
from cxone_audit.resolver import LiveResolver, ZoneFileResolver
from tests.knot import knot_required

SEED_ROWS = 119

# --------------------------------------------------------------- generator


def test_clone_labels_are_as_long_as_the_tokens_they_replace() -> None:
    labels = {clone_label(i) for i in (0, 1, 35, 36, 36**5 - 1)}
    assert len(labels) == 5
    assert all(len(label) == len("org008") for label in labels)
    with pytest.raises(ValueError):
        clone_label(36**5)


def test_rename_touches_only_the_token() -> None:
    line = ('org006.example. IN TXT "v=spf1 include:org060.example '
            'include:org006.example.mail.protection.outlook.com '
            'mx:org006-example.mail ~all"')
    renamed = rename(line, "org006", "c00001")
    assert "org006" not in renamed
    assert "include:org060.example" in renamed
    assert renamed.startswith("c00001.example.")
    assert "mx:c00001-example.mail" in renamed


def test_full_passes_repeat_every_seed_row_equally(tmp_path: Path) -> None:
    generated = generate(2 * SEED_ROWS, tmp_path, seed_value=1)

    templates = Counter(
        rename(r.domain, r.clone, r.template) for r in generated.rows)
    assert len(templates) == SEED_ROWS
    assert set(templates.values()) == {2}

    regions = Counter(r.region for r in generated.rows)
    assert set(regions) == set(REGIONS)
    assert max(regions.values()) - min(regions.values()) <= 1

    domains = [r.domain for r in generated.rows]
    assert len(set(domains)) == len(domains)


def test_files_match_the_plan_and_the_seed(tmp_path: Path) -> None:
    generated = generate(50, tmp_path, seed_value=2)
    with generated.domains.open(encoding="utf-8", newline="") as handle:
        listed = list(csv.DictReader(handle))
    assert [(r["domain"], r["region"]) for r in listed] == [
        (r.domain, r.region) for r in generated.rows]

    zone = generated.zone.read_text(encoding="utf-8")
    seed = load_seed()
    assert zone.startswith(seed.zone_text.rstrip("\n"))
    for row in generated.rows:
        assert f"\n{row.domain}. " in zone, row.domain
    cloned = sum(len(seed.sections[t]) for t in
                 {r.clone: r.template for r in generated.rows}.values())
    assert generated.zone_records == cloned


def test_same_seed_same_files(tmp_path: Path) -> None:
    first = generate(60, tmp_path / "a", seed_value=3)
    second = generate(60, tmp_path / "b", seed_value=3)
    other = generate(60, tmp_path / "c", seed_value=4)
    assert first.zone.read_bytes() == second.zone.read_bytes()
    assert first.domains.read_bytes() == second.domains.read_bytes()
    assert first.domains.read_bytes() != other.domains.read_bytes()


def test_clones_get_the_verdicts_of_their_templates(tmp_path: Path) -> None:
    """A clone is its template renamed: the kit must judge both alike."""
    generated = generate(SEED_ROWS, tmp_path, seed_value=5)
    resolver = ZoneFileResolver(generated.zone)

    async def verdicts(domain: str, region: str) -> tuple[object, ...]:
        result = await audit_domain(domain, region, resolver)
        return result.status, tuple((v.ip, v.result) for v in result.ips)

    async def compare() -> list[str]:
        differ = []
        for row in generated.rows[::6]:
            template = rename(row.domain, row.clone, row.template)
            ours = await verdicts(row.domain, row.region)
            if ours != await verdicts(template, row.region):
                differ.append(row.domain)
        return differ

    assert asyncio.run(compare()) == []


# ------------------------------------------------------------------- proxy


def test_question_reads_name_and_type() -> None:
    wire = dns.message.make_query("Mixed.Case.Example", "TXT").to_wire()
    assert question(wire) == ("mixed.case.example", dns.rdatatype.TXT)
    root = dns.message.make_query(".", "SOA").to_wire()
    assert question(root) == ("", dns.rdatatype.SOA)
    assert question(wire[:14]) is None


def _need_knot() -> None:
    if find_knotd() is None:
        if knot_required():
            pytest.fail("knotd not found and CXONE_REQUIRE_KNOT is set")
        pytest.skip("knotd (Knot DNS) not found")


@pytest.fixture(scope="module")
def knot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnotServer]:
    _need_knot()
    # The seed zone holds answers over 512 octets.
    server = knot_server(SEED_ZONE, tmp_path_factory.mktemp("knot"))
    with server:
        yield server


def _udp(port: int, name: str, rtype: str = "TXT") -> float:
    query = dns.message.make_query(name, rtype)
    started = time.perf_counter()
    dns.query.udp(query, "127.0.0.1", port=port, timeout=5)
    return time.perf_counter() - started


def _tcp(port: int, name: str, rtype: str = "TXT") -> float:
    query = dns.message.make_query(name, rtype)
    started = time.perf_counter()
    dns.query.tcp(query, "127.0.0.1", port=port, timeout=5)
    return time.perf_counter() - started


@pytest.mark.knot
def test_proxy_holds_each_message_the_delay(knot: KnotServer) -> None:
    delay = 0.040
    with DelayProxy(knot.address, delay_ms=0) as fast:
        baseline = min(_udp(fast.port, "gmail.com") for _ in range(3))
    with DelayProxy(knot.address, delay_ms=delay * 1000) as slow:
        udp = min(_udp(slow.port, "gmail.com") for _ in range(3))
        tcp = min(_tcp(slow.port, "gmail.com") for _ in range(3))

    # UDP: D each way. TCP: 2D for the handshake, then D each way.
    assert baseline < delay
    assert 2 * delay - 0.002 <= udp < 2 * delay + 0.040
    assert 4 * delay - 0.002 <= tcp < 4 * delay + 0.060


@pytest.mark.knot
def test_proxy_counts_queries_and_distinct_pairs(knot: KnotServer) -> None:
    with DelayProxy(knot.address, delay_ms=1) as proxy:
        for name in ("gmail.com", "GMail.com", "gmail.com"):
            _udp(proxy.port, name)
        _udp(proxy.port, "gmail.com", "MX")
        _tcp(proxy.port, "google.com")
        stats = proxy.snapshot()

        assert (stats.queries, stats.udp, stats.tcp) == (5, 4, 1)
        assert stats.tcp_connections == 1
        assert stats.pairs == {("gmail.com", dns.rdatatype.TXT),
                               ("gmail.com", dns.rdatatype.MX),
                               ("google.com", dns.rdatatype.TXT)}
        assert stats.by_type[dns.rdatatype.TXT] == 4

        proxy.reset()
        assert proxy.snapshot().queries == 0
        assert not proxy.snapshot().pairs


@pytest.mark.knot
def test_truncated_answer_costs_a_tcp_query(knot: KnotServer) -> None:
    with DelayProxy(knot.address, delay_ms=1) as proxy:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = proxy.port
        answer = resolver.resolve("org034.example", "TXT")
        stats = proxy.snapshot()

    assert len(answer.response.to_wire()) > 512
    assert (stats.truncated, stats.udp, stats.tcp) == (1, 1, 1)
    assert len(stats.pairs) == 1


@pytest.mark.knot
@pytest.mark.parametrize(("name", "transports"), [
    ("org065.example", (1, 0)),       # 513 to 1232 octets: UDP with EDNS
    ("org034.example", (1, 1)),       # over 1232 octets: truncated, TCP
])
def test_kit_offers_edns_and_measures_plain_size(
    knot: KnotServer, name: str, transports: tuple[int, int]
) -> None:
    zone = ZoneFileResolver(SEED_ZONE)
    with DelayProxy(knot.address, delay_ms=0) as proxy:
        live = LiveResolver([f"127.0.0.1:{proxy.port}"])
        answer = asyncio.run(live.query(name, "TXT"))
        stats = proxy.snapshot()

    # RFC 6891: the kit offers a 1232-octet buffer, so only answers larger
    # than that are retried over TCP; the size it reports is the answer's
    # size without EDNS, the same as the zone-file backend computes.
    assert (stats.udp, stats.tcp) == transports
    assert answer.size > 512
    assert answer.size == asyncio.run(zone.query(name, "TXT")).size


@pytest.mark.knot
def test_answers_stay_with_their_questions(knot: KnotServer) -> None:
    """Many queries in flight at once: each gets the answer to its own."""
    names = ["gmail.com", "google.com", "_spf.google.com", "spf.mailjet.com",
             "amazonses.com", "sendgrid.net", "mailgun.org", "live.com"]

    async def ask_all(port: int) -> list[tuple[str, str]]:
        async def ask(name: str) -> tuple[str, str]:
            query = dns.message.make_query(name, "TXT")
            response = await dns.asyncquery.udp(
                query, "127.0.0.1", port=port, timeout=5)
            text = "\n".join(r.to_text() for r in response.answer)
            return str(response.question[0].name), text
        return await asyncio.gather(*(ask(n) for n in names * 25))

    with DelayProxy(knot.address, delay_ms=0) as direct:
        expected = dict(asyncio.run(ask_all(direct.port)))
    with DelayProxy(knot.address, delay_ms=20) as proxy:
        got = asyncio.run(ask_all(proxy.port))
        assert proxy.snapshot().queries == len(names) * 25

    assert len(expected) == len(names) and all(expected.values())
    assert all(expected[name] == text for name, text in got)


def test_a_benchmarked_child_can_be_interrupted(tmp_path: Path) -> None:
    import signal
    import sys

    from benchmarks.run import run_child

    probe = [sys.executable, "-c",
             "import signal; print(signal.getsignal(signal.SIGINT))"]
    # As in a shell's background job, where SIGINT starts out ignored.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        child = run_child(probe, tmp_path, "probe", timeout=60)
    finally:
        signal.signal(signal.SIGINT, previous)

    assert child.returncode == 0
    assert "default_int_handler" in child.stdout


def test_child_memory_is_the_childs_own(tmp_path: Path) -> None:
    import sys

    from benchmarks.run import run_child

    ballast = bytearray(400 * 1024 * 1024)  # this process: 400 MB resident
    ballast[::4096] = b"x" * len(ballast[::4096])
    sleeper = [sys.executable, "-c", "import time; time.sleep(0.6)"]

    child = run_child(sleeper, tmp_path, "sleeper", timeout=60)

    assert len(ballast) and child.returncode == 0
    assert 1 < child.max_rss_mb < 100


# --------------------------------------------------------------- cpu split


def test_cpu_split_second_pass_sends_nothing(tmp_path: Path) -> None:
    """The "every answer cached" pass must really ask DNS nothing, or its
    CPU time would not be the audit's alone."""
    generated = generate(60, tmp_path / "data", seed_value=7)
    rows = read_rows(generated.domains)
    _need_knot()

    with knot_server(generated.zone, tmp_path) as server:
        resolver = LiveResolver([f"{server.host}:{server.port}"])
        first = _cpu_ms_per_row(rows, resolver)
        sent = resolver.stats.sent
        second = _cpu_ms_per_row(rows, resolver)

    assert sent >= len(rows)
    assert resolver.stats.sent == sent
    assert first > 0 and second > 0
