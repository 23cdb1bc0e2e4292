"""LiveResolver against real servers on loopback.

Answers come from Knot DNS serving the real-world snapshot as the root zone.
Failures come from two small servers the tests open themselves: a UDP socket
that never answers (timeouts) and an asyncio responder that answers every
question with one rcode (SERVFAIL). Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from cxone_audit.errors import ResolverConfigError
from cxone_audit.resolver import UDP_LIMIT, Answer, LiveResolver

from .conftest import PROJECT, REALWORLD_ZONE
from .knot import KNOTD_ENV, REQUIRE_ENV

knot = pytest.mark.knot


def _zone_txt(name: str) -> list[tuple[str, ...]]:
    """The character-strings of ``name``'s TXT records, read from the file."""
    zone = dns.zone.from_file(str(REALWORLD_ZONE), origin=".",
                              relativize=False)
    rdataset = zone.find_rdataset(name + ".", dns.rdatatype.TXT)
    return [tuple(s.decode() for s in r.strings) for r in rdataset]


def _largest_txt() -> tuple[str, int]:
    """The TXT name of the zone whose records take the most octets."""
    zone = dns.zone.from_file(str(REALWORLD_ZONE), origin=".",
                              relativize=False)
    sizes = {}
    for name, rdataset in zone.iterate_rdatasets(dns.rdatatype.TXT):
        sizes[str(name).rstrip(".")] = sum(
            len(s) for r in rdataset for s in r.strings
        )
    name = max(sizes, key=sizes.__getitem__)
    return name, sizes[name]


def _live(address: tuple[str, int], **options: float) -> LiveResolver:
    host, port = address
    return LiveResolver([f"{host}:{port}"], **options)  # type: ignore[arg-type]


def ask(resolver: LiveResolver, name: str, rtype: str = "TXT") -> Answer:
    return asyncio.run(resolver.query(name, rtype))


# --- answers from Knot --------------------------------------------------


@knot
def test_noerror_answer_holds_the_records(realworld_knot) -> None:
    answer = ask(_live(realworld_knot), "gmail.com")

    assert answer.rcode == "NOERROR"
    assert not answer.temporary and not answer.void
    expected = sorted("".join(s) for s in _zone_txt("gmail.com"))
    assert sorted(answer.records) == expected
    assert any(r.startswith("v=spf1 ") for r in answer.records)


@knot
def test_unknown_name_is_nxdomain(realworld_knot) -> None:
    answer = ask(_live(realworld_knot), "no-such-name.org001.example")

    assert answer.rcode == "NXDOMAIN"
    assert answer.records == ()
    assert answer.void and not answer.temporary


@knot
def test_name_without_the_type_is_no_data(realworld_knot) -> None:
    # ns.test holds A and AAAA only: the name exists, TXT does not.
    resolver = _live(realworld_knot)
    txt = ask(resolver, "ns.test", "TXT")
    address = ask(resolver, "ns.test", "A")

    assert (txt.rcode, txt.records) == ("NOERROR", ())
    assert txt.void
    assert address.records == ("127.0.0.1",)


@knot
def test_txt_strings_are_kept_as_published(realworld_knot) -> None:
    # _nblcust.gandi.net is split into strings that end with a space.
    name = "_nblcust.gandi.net"
    published = _zone_txt(name)
    assert any(len(s) > 1 and s[0].endswith(" ") for s in published)

    answer = ask(_live(realworld_knot), name)

    assert list(answer.strings) == published
    # RFC 7208 3.3: the record is the strings joined with nothing between.
    assert answer.records == tuple("".join(s) for s in published)


@knot
def test_large_answer_arrives_whole_over_tcp(realworld_knot) -> None:
    name, octets = _largest_txt()
    assert octets > 2000, "the snapshot should hold its 2.3 KB SPF record"

    answer = ask(_live(realworld_knot), name)

    # RFC 1035 4.2.1: over 512 octets the UDP answer is truncated (TC=1)
    # and the question is asked again over TCP.
    assert answer.rcode == "NOERROR"
    assert answer.size > UDP_LIMIT
    assert answer.records == tuple("".join(s) for s in _zone_txt(name))
    assert len(answer.records[0]) == octets


@knot
def test_large_answer_is_really_truncated_over_udp(realworld_knot) -> None:
    # Guard for the test above: without TCP the answer would be cut.
    name, _ = _largest_txt()
    host, port = realworld_knot
    query = dns.message.make_query(name + ".", "TXT", use_edns=False)

    response = dns.query.udp(query, host, port=port, timeout=2,
                             ignore_trailing=True)

    assert response.flags & dns.flags.TC


# --- nameserver forms ---------------------------------------------------


@knot
@pytest.mark.parametrize("form", ["127.0.0.1:{port}", "[::1]:{port}"])
@knot
def test_nameserver_forms_reach_knot(realworld_knot, form: str) -> None:
    text = form.format(port=realworld_knot[1])
    resolver = LiveResolver([text])

    answer = ask(resolver, "google.com")

    assert answer.rcode == "NOERROR"
    assert answer.records[0].startswith("v=spf1")
    assert text in resolver.describe()


@pytest.mark.parametrize(
    "text",
    ["not-an-address", "127.0.0.1:domain", "127.0.0.1:0",
     "127.0.0.1:70000", "[::1", "[::1]:x", "ns.example.com:53", ""],
)
def test_bad_nameserver_text_is_a_config_error(text: str) -> None:
    with pytest.raises(ResolverConfigError):
        LiveResolver([text])


def test_bad_timeout_and_retries_are_config_errors() -> None:
    with pytest.raises(ResolverConfigError):
        LiveResolver(["127.0.0.1"], timeout=0)
    with pytest.raises(ResolverConfigError):
        LiveResolver(["127.0.0.1"], retries=-1)


# --- cache and in-flight sharing -----------------------------------------


@knot
def test_same_question_twice_is_sent_once(realworld_knot) -> None:
    resolver = _live(realworld_knot)

    async def twice() -> tuple[Answer, Answer]:
        first = await resolver.query("google.com", "TXT")
        second = await resolver.query("GOOGLE.com.", "txt")
        return first, second

    first, second = asyncio.run(twice())

    assert first == second
    assert resolver.stats.sent == 1
    assert resolver.stats.cache_hits == 1


@knot
def test_negative_answers_are_cached(realworld_knot) -> None:
    resolver = _live(realworld_knot)

    async def run() -> None:
        for _ in range(3):
            await resolver.query("missing.org001.example", "TXT")
            await resolver.query("ns.test", "TXT")

    asyncio.run(run())

    assert resolver.stats.sent == 2
    assert resolver.stats.cache_hits == 4


@knot
def test_concurrent_identical_questions_share_one_query(
    realworld_knot,
) -> None:
    resolver = _live(realworld_knot)

    async def crowd() -> list[Answer]:
        asks = [resolver.query("spf.protection.outlook.com", "TXT")
                for _ in range(20)]
        return await asyncio.gather(*asks)

    answers = asyncio.run(crowd())

    assert len(set(answers)) == 1
    assert answers[0].rcode == "NOERROR"
    assert resolver.stats.sent == 1
    assert resolver.stats.cache_hits == 19


# --- failures -----------------------------------------------------------


def _drain(sock: socket.socket) -> int:
    """Count the datagrams waiting on ``sock``."""
    sock.setblocking(False)
    count = 0
    while True:
        try:
            sock.recv(4096)
        except BlockingIOError:
            return count
        count += 1


@knot
def test_a_silent_first_nameserver_falls_through_to_the_next(
    realworld_knot,
) -> None:
    # --timeout is per server: a dead first server must leave the second
    # time to answer, within one attempt (no retry needed).
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{silent.getsockname()[1]}"
        live = f"127.0.0.1:{realworld_knot[1]}"
        resolver = LiveResolver([dead, live], timeout=0.3, retries=0)

        answer = ask(resolver, "google.com")
        datagrams = _drain(silent)

    assert answer.rcode == "NOERROR"
    assert answer.records[0].startswith("v=spf1")
    assert datagrams == 1
    assert resolver.stats.sent == 1


def test_timeout_is_temporary_counted_and_not_cached() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        resolver = LiveResolver([f"127.0.0.1:{port}"], timeout=0.2,
                                retries=2)

        first = ask(resolver, "org001.example")
        datagrams = _drain(silent)
        again = ask(resolver, "org001.example")

    assert first.rcode == again.rcode == "TIMEOUT"
    assert first.temporary and not first.void
    # One attempt and two retries, each a datagram the server received.
    assert datagrams == 3
    # Not cached: the second question went to the wire again.
    assert resolver.stats.sent == 6
    assert resolver.stats.cache_hits == 0
    assert resolver.stats.failures == 2


class _FixedRcode(asyncio.DatagramProtocol):
    """Answer every DNS question with one rcode and no records."""

    def __init__(self, rcode: int) -> None:
        self.rcode = rcode
        self.questions = 0
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:  # type: ignore[override]
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # type: ignore[override]
        self.questions += 1
        response = dns.message.make_response(dns.message.from_wire(data))
        response.set_rcode(self.rcode)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)


@asynccontextmanager
async def fixed_rcode_server(
    rcode: int, host: str = "127.0.0.1"
) -> AsyncIterator[tuple[_FixedRcode, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _FixedRcode(rcode), local_addr=(host, 0)
    )
    try:
        yield protocol, transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def test_servfail_is_temporary_and_not_cached() -> None:
    async def run() -> tuple[Answer, Answer, int, LiveResolver]:
        async with fixed_rcode_server(dns.rcode.SERVFAIL) as (server, port):
            resolver = LiveResolver([f"127.0.0.1:{port}"], timeout=1,
                                    retries=1)
            first = await resolver.query("org001.example", "TXT")
            again = await resolver.query("org001.example", "TXT")
            return first, again, server.questions, resolver

    first, again, questions, resolver = asyncio.run(run())

    assert first.rcode == again.rcode == "SERVFAIL"
    assert first.temporary
    # Each question: one attempt and one retry; the second is not cached.
    assert questions == resolver.stats.sent == 4
    assert resolver.stats.failures == 2


def test_ipv6_nameserver_form_is_asked_over_ipv6() -> None:
    # A responder on ::1 only: the question must arrive there.
    async def run() -> tuple[Answer, int]:
        async with fixed_rcode_server(dns.rcode.NXDOMAIN, "::1") as (
            server, port,
        ):
            resolver = LiveResolver([f"[::1]:{port}"], timeout=1)
            answer = await resolver.query("org001.example", "TXT")
            return answer, server.questions

    answer, questions = asyncio.run(run())

    assert answer.rcode == "NXDOMAIN"
    assert questions == 1


# --- the Knot fixture itself ---------------------------------------------


def _without_knot(require: str) -> subprocess.CompletedProcess[str]:
    """Run one Knot test in a child pytest that cannot find knotd."""
    env = {**os.environ, KNOTD_ENV: "/nonexistent/knotd",
           REQUIRE_ENV: require}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p",
         "no:cacheprovider",
         "tests/test_resolver_live.py::test_unknown_name_is_nxdomain"],
        capture_output=True, text=True, cwd=PROJECT, env=env, timeout=120,
    )


def test_missing_knot_skips_with_a_reason() -> None:
    done = _without_knot("")

    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
    assert "knotd (Knot DNS) not found" in done.stdout


def test_missing_knot_fails_when_required() -> None:
    done = _without_knot("1")

    assert done.returncode == 1, done.stdout
    assert REQUIRE_ENV in done.stdout
    assert "skipped" not in done.stdout
