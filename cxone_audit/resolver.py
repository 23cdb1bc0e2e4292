"""DNS I/O: the one place where the kit asks DNS questions.

Every lookup of an audit goes through a :class:`Resolver`. Two backends share
the interface:

* :class:`LiveResolver` asks real nameservers with dnspython's asynchronous
  resolver (UDP, then TCP when an answer comes back truncated).
* :class:`ZoneFileResolver` answers from RFC 1035 master files, the way an
  authoritative server would, without any network.

A resolver keeps one cache for its whole life, normally one run. A
``(name, type)`` pair is asked at most once: identical questions in flight
wait for the same answer, NXDOMAIN and no-data answers are cached, timeouts
and SERVFAIL are not (a later question may succeed). Each answer records what
came back, so it can be shown as evidence in a report.

DNS failures are returned as :class:`Answer` values with an rcode, never
raised: an audit turns them into ``temperror`` verdicts. Only configuration
mistakes raise :class:`~cxone_audit.errors.ResolverConfigError`.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.asyncresolver
import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import dns.zone

from .errors import ResolverConfigError

__all__ = [
    "TEMPORARY_RCODES",
    "Answer",
    "LiveResolver",
    "Resolver",
    "ResolverStats",
    "ZoneFileResolver",
    "parse_nameserver",
]

log = logging.getLogger(__name__)

#: Outcomes that say nothing about the data: retry later, never cache.
TEMPORARY_RCODES = frozenset({"TIMEOUT", "SERVFAIL", "REFUSED", "ERROR"})

#: RFC 1035 4.2.1: UDP messages are limited to 512 octets without EDNS.
UDP_LIMIT = 512

#: UDP payload size offered in EDNS (RFC 6891).
EDNS_PAYLOAD = 1232

#: CNAMEs followed before giving up, as dnspython does for a response.
MAX_CNAME_CHAIN = dns.message.MAX_CHAIN

#: RFC 1034 3.6.2: a CNAME chain that loops is an error, which recursive
#: resolvers answer with SERVFAIL; both backends say so in these words.
CNAME_LOOP = "CNAME loop"
CNAME_TOO_LONG = f"CNAME chain of {MAX_CNAME_CHAIN} or more CNAMEs"

_NEEDED_TYPES = frozenset({"TXT", "A", "AAAA", "MX", "PTR", "CNAME", "SPF"})


@dataclass(frozen=True)
class Answer:
    """What DNS said to one question.

    Attributes
    ----------
    name
        The name asked, lower case, without the trailing dot.
    rtype
        The record type asked (``"TXT"``, ``"A"``, ``"MX"``...).
    rcode
        ``NOERROR``, ``NXDOMAIN``, or a temporary failure: ``TIMEOUT``,
        ``SERVFAIL``, ``REFUSED`` or ``ERROR``.
    records
        The answer's records in presentation form, after following CNAMEs:
        TXT as the concatenation of its strings (RFC 7208 3.3), MX as
        ``"preference exchange"``, addresses and names as text.
    strings
        For TXT only: each record's character-strings, as published.
    size
        Octets of the DNS response message (over 512 needs TCP without EDNS).
    cnames
        The CNAME chain followed to reach the answer, if any.
    detail
        A human-readable note about a failure.
    """

    name: str
    rtype: str
    rcode: str
    records: tuple[str, ...] = ()
    strings: tuple[tuple[str, ...], ...] = ()
    size: int = 0
    cnames: tuple[str, ...] = ()
    detail: str = ""

    @property
    def temporary(self) -> bool:
        """True when the answer is a failure that may clear up on retry."""
        return self.rcode in TEMPORARY_RCODES

    @property
    def void(self) -> bool:
        """True for NXDOMAIN or an empty answer (RFC 7208 4.6.4)."""
        return not self.temporary and not self.records

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready form of the answer."""
        data: dict[str, object] = {
            "name": self.name,
            "type": self.rtype,
            "rcode": self.rcode,
            "records": list(self.records),
        }
        if self.strings:
            data["strings"] = [list(s) for s in self.strings]
        if self.size:
            data["size"] = self.size
        if self.cnames:
            data["cnames"] = list(self.cnames)
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass
class ResolverStats:
    """Counters of one resolver's life.

    Attributes
    ----------
    sent
        Questions put on the wire (or to the zone), retries included.
    cache_hits
        Questions answered from the cache or by joining one in flight.
    failures
        Answers with a temporary rcode.
    """

    sent: int = 0
    cache_hits: int = 0
    failures: int = 0
    distinct: set[tuple[str, str]] = field(default_factory=set)

    def to_dict(self) -> dict[str, int]:
        """The counters by name, for a run's record."""
        return {
            "queries_sent": self.sent,
            "cache_hits": self.cache_hits,
            "temporary_failures": self.failures,
            "distinct_questions": len(self.distinct),
        }


def _normalise(name: str) -> str:
    return name.strip().rstrip(".").lower()


class Resolver(abc.ABC):
    """Base of the DNS backends: the cache and in-flight sharing.

    Subclasses implement :meth:`_ask`, which puts one question to DNS and
    returns an :class:`Answer` whatever happens.
    """

    def __init__(self) -> None:
        self.stats = ResolverStats()
        self._answers: dict[tuple[str, str], Answer] = {}
        self._pending: dict[tuple[str, str], asyncio.Future[Answer]] = {}

    @abc.abstractmethod
    def describe(self) -> str:
        """One line saying where answers come from, for a run's record."""

    @abc.abstractmethod
    async def _ask(self, name: str, rtype: str) -> Answer:
        """Ask one question, uncached. Must not raise for DNS failures."""

    async def query(self, name: str, rtype: str) -> Answer:
        """Answer ``(name, rtype)``, asking DNS at most once per resolver.

        Parameters
        ----------
        name
            A domain name, with or without the trailing dot.
        rtype
            A record type such as ``"TXT"``.
        """
        key = (_normalise(name), rtype.upper())

        cached = self._answers.get(key)
        if cached is not None:
            self.stats.cache_hits += 1
            return cached

        pending = self._pending.get(key)
        if pending is not None:
            self.stats.cache_hits += 1
            return await asyncio.shield(pending)

        return await self._ask_once(key)

    async def _ask_once(self, key: tuple[str, str]) -> Answer:
        future: asyncio.Future[Answer] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[key] = future
        self.stats.distinct.add(key)
        try:
            answer = await self._ask(*key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved when nobody else waits
            raise
        finally:
            del self._pending[key]

        # Keep NXDOMAIN and no-data; let timeouts and SERVFAIL be asked again.
        if answer.temporary:
            self.stats.failures += 1
            # Each row's result carries the failure (dns-error); -v shows it.
            log.info("DNS %s %s: %s %s", *key, answer.rcode, answer.detail)
        else:
            self._answers[key] = answer
        future.set_result(answer)
        return answer

    def forget(self) -> None:
        """Drop every cached answer (counters are kept)."""
        self._answers.clear()


def parse_nameserver(text: str) -> tuple[str, int]:
    """Split ``"1.1.1.1"``, ``"127.0.0.1:5353"`` or ``"[::1]:5353"``.

    Returns
    -------
    tuple
        The address and the port (53 when none is given).

    Raises
    ------
    ResolverConfigError
        If the address is not an IP address or the port is not a number.
    """
    text = text.strip()
    host, port = text, "53"

    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        host = host if closed else text  # "[::1" lacks its "]": invalid
        port = rest.removeprefix(":") or "53"
    elif text.count(":") == 1:
        host, port = text.split(":")

    try:
        address = str(ipaddress.ip_address(host))
        number = int(port)
    except ValueError as exc:
        raise ResolverConfigError(
            f"bad nameserver {text!r}: give an IP address, optionally with "
            "a port, as 1.1.1.1, 127.0.0.1:5353 or [::1]:5353"
        ) from exc
    if not 0 < number < 65536:
        raise ResolverConfigError(f"bad port in nameserver {text!r}")
    return address, number


def _record_text(rdata: object, rtype: str) -> str:
    if rtype in ("TXT", "SPF"):
        strings = rdata.strings  # type: ignore[attr-defined]
        return b"".join(strings).decode("utf-8", "replace")
    if rtype == "MX":
        exchange = str(rdata.exchange).rstrip(".")  # type: ignore[attr-defined]
        return f"{rdata.preference} {exchange or '.'}"  # type: ignore[attr-defined]
    if rtype in ("CNAME", "PTR"):
        return str(rdata.target).rstrip(".")  # type: ignore[attr-defined]
    return rdata.to_text()  # type: ignore[attr-defined]


def _txt_strings(rdata: object) -> tuple[str, ...]:
    strings = rdata.strings  # type: ignore[attr-defined]
    return tuple(s.decode("utf-8", "replace") for s in strings)


def _answer_from_rrset(
    name: str,
    rtype: str,
    rrset: dns.rrset.RRset | None,
    size: int,
    cnames: Sequence[str] = (),
) -> Answer:
    # RFC 2181 5: an RRset has no order; give the records RFC 4034 6.3's
    # canonical one, so results do not depend on which server answered.
    rdatas = sorted(rrset or (), key=lambda r: r.to_digestable())
    strings: tuple[tuple[str, ...], ...] = ()
    if rtype in ("TXT", "SPF"):
        strings = tuple(_txt_strings(r) for r in rdatas)
    return Answer(
        name=name,
        rtype=rtype,
        rcode="NOERROR",
        records=tuple(_record_text(r, rtype) for r in rdatas),
        strings=strings,
        size=size,
        cnames=tuple(cnames),
    )


class LiveResolver(Resolver):
    """Ask real nameservers with dnspython.

    Parameters
    ----------
    nameservers
        Addresses such as ``"1.1.1.1"``, ``"127.0.0.1:5353"`` or
        ``"[::1]:5353"``. Empty or ``None``: the system resolver
        configuration (``/etc/resolv.conf`` or the platform's equivalent).
    timeout
        Seconds to wait for one server's answer. An attempt asks the
        servers in turn, so it may take ``timeout`` once per server.
    retries
        Further attempts after a timeout or SERVFAIL.
    """

    def __init__(
        self,
        nameservers: Iterable[str] | None = None,
        timeout: float = 3.0,
        retries: int = 1,
    ) -> None:
        super().__init__()
        if timeout <= 0 or retries < 0:
            raise ResolverConfigError(
                "timeout must be positive and retries zero or more"
            )
        self.timeout = timeout
        self.retries = retries
        self._servers = [parse_nameserver(n) for n in nameservers or ()]
        self._resolver = self._build()

    def _build(self) -> dns.asyncresolver.Resolver:
        if not self._servers:
            try:
                resolver = dns.asyncresolver.Resolver(configure=True)
            except dns.exception.DNSException as exc:
                raise ResolverConfigError(
                    "no system resolver configuration found; "
                    "pass --nameserver"
                ) from exc
        else:
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(address, port)
                for address, port in self._servers
            ]
        # The timeout is per server: one attempt may try every server in
        # turn, so a dead first server leaves the next time to answer.
        resolver.timeout = self.timeout
        resolver.lifetime = self.timeout * max(1, len(resolver.nameservers))
        resolver.cache = None

        # RFC 6891 6.2.5: offer a 1232-octet UDP buffer (the size DNS Flag
        # Day 2020 settled on), so answers over 512 octets come back over
        # UDP instead of truncated and asked again over TCP.
        resolver.use_edns(0, 0, EDNS_PAYLOAD)
        return resolver

    def describe(self) -> str:
        """Which nameservers answer, for a run's record."""
        if not self._servers:
            servers = ", ".join(str(n) for n in self._resolver.nameservers)
            return f"system resolver ({servers})"
        shown = [
            f"[{a}]:{p}" if ":" in a else f"{a}:{p}" for a, p in self._servers
        ]
        return "nameservers " + ", ".join(shown)

    async def _ask(self, name: str, rtype: str) -> Answer:
        answer = Answer(name, rtype, "ERROR")
        for attempt in range(self.retries + 1):
            self.stats.sent += 1
            log.debug("query %s %s (attempt %d)", name, rtype, attempt + 1)
            answer = await self._attempt(name, rtype)
            if answer.rcode not in ("TIMEOUT", "SERVFAIL"):
                break
        return answer

    async def _attempt(self, name: str, rtype: str) -> Answer:
        try:
            result = await self._resolver.resolve(
                name + ".", rtype, raise_on_no_answer=False, search=False
            )
        except dns.resolver.NXDOMAIN:
            return Answer(name, rtype, "NXDOMAIN")
        except dns.resolver.LifetimeTimeout:
            return Answer(name, rtype, "TIMEOUT", detail="no answer in time")
        except dns.resolver.NoNameservers as exc:
            return Answer(name, rtype, "SERVFAIL", detail=_servfail_detail(exc))
        except (dns.name.EmptyLabel, dns.name.LabelTooLong,
                dns.name.NameTooLong) as exc:
            return Answer(name, rtype, "NXDOMAIN", detail=str(exc))
        except dns.exception.DNSException as exc:
            return Answer(name, rtype, "ERROR", detail=str(exc))

        cnames = _cname_chain(result.response, result.qname)

        # Size as a plain RFC 1035 answer, without our EDNS OPT record, to
        # judge whether resolvers without EDNS must fall back to TCP.
        result.response.use_edns(False)
        size = len(result.response.to_wire())
        return _answer_from_rrset(name, rtype, result.rrset, size, cnames)


def _servfail_detail(exc: dns.resolver.NoNameservers) -> str:
    """Why every server failed; a CNAME loop is named as such.

    An authoritative server answers a loop inside its zone with the looping
    CNAMEs; dnspython then gives up with ``ChainTooLong``.
    """
    for error in exc.kwargs.get("errors") or ():
        if any(isinstance(part, dns.message.ChainTooLong) for part in error):
            responses = [p for p in error if isinstance(p, dns.message.Message)]
            return _chain_problem(responses[0] if responses else None)
    return str(exc)


def _chain_problem(response: dns.message.Message | None) -> str:
    if response is None or len(response.question) != 1:
        return CNAME_TOO_LONG
    aliases = {rrset.name: rrset[0].target for rrset in response.answer
               if rrset.rdtype == dns.rdatatype.CNAME}
    qname = response.question[0].name
    seen: set[dns.name.Name] = set()

    # RFC 1034 3.6.2: the chain loops when it comes back to a name it named.
    while qname in aliases:
        if qname in seen:
            return CNAME_LOOP
        seen.add(qname)
        qname = aliases[qname]
    return CNAME_TOO_LONG


def _cname_chain(
    response: dns.message.Message, qname: dns.name.Name
) -> list[str]:
    chain: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.CNAME:
            chain.append(str(rrset[0].target).rstrip("."))
    return chain


class ZoneFileResolver(Resolver):
    """Answer from RFC 1035 master files, as an authoritative server would.

    A name the zones hold answers with its records (CNAMEs are followed
    inside the zones); a name under a zone's origin that does not exist is
    NXDOMAIN; a name outside every zone is ``REFUSED``, which an audit treats
    as a temporary error rather than as "no record".

    Parameters
    ----------
    paths
        One master file or several. ``$ORIGIN`` in a file sets its origin;
        a file without one is read as the root zone.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path]) -> None:
        super().__init__()
        if isinstance(paths, (str, Path)):
            paths = [paths]
        self.paths = [Path(p) for p in paths]
        self._set_zones([_load_zone(p) for p in self.paths])

    def _set_zones(self, zones: list[dns.zone.Zone]) -> None:
        self._zones = sorted(zones, key=lambda z: len(z.origin), reverse=True)
        self._existing = {id(z): _existing_names(z) for z in self._zones}

    @classmethod
    def from_text(cls, text: str) -> ZoneFileResolver:
        """Build a resolver from master-file text rather than a file."""
        resolver = cls.__new__(cls)
        Resolver.__init__(resolver)
        resolver.paths = []
        resolver._set_zones([_parse_zone(text, "<text>")])
        return resolver

    def describe(self) -> str:
        """Which zone files answer, for a run's record."""
        names = ", ".join(p.name for p in self.paths) or "zone text"
        return f"zone file {names}"

    async def _ask(self, name: str, rtype: str) -> Answer:
        self.stats.sent += 1
        log.debug("zone query %s %s", name, rtype)
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as exc:
            return Answer(name, rtype, "NXDOMAIN", detail=str(exc))
        return self._lookup(name, qname, rtype)

    def _zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        for zone in self._zones:
            if qname.is_subdomain(zone.origin):
                return zone
        return None

    def _lookup(self, name: str, qname: dns.name.Name, rtype: str) -> Answer:
        rdtype = dns.rdatatype.from_text(rtype)
        cnames: list[str] = []
        rrsets: list[dns.rrset.RRset] = []
        seen = {qname}

        # RFC 1034 4.3.2: follow CNAMEs while the chain stays in our zones.
        for _ in range(MAX_CNAME_CHAIN):
            zone = self._zone_for(qname)
            if zone is None:
                if cnames:
                    break
                return Answer(name, rtype, "REFUSED",
                              detail="name outside the zone file")
            node, exists = _find_node(zone, self._existing[id(zone)], qname)
            if node is None:
                # RFC 6604 3: the rcode is that of the chain's last name.
                rcode = "NOERROR" if exists else "NXDOMAIN"
                return Answer(name, rtype, rcode, cnames=tuple(cnames))
            found = node.get_rdataset(dns.rdataclass.IN, rdtype)
            if found is not None:
                rrsets.append(_rrset(qname, found))
                break
            alias = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if alias is None or rdtype == dns.rdatatype.CNAME:
                break
            rrsets.append(_rrset(qname, alias))
            qname = alias[0].target
            # RFC 1034 3.6.2: a loop is an error; resolvers say SERVFAIL.
            if qname in seen:
                return Answer(name, rtype, "SERVFAIL", detail=CNAME_LOOP)
            seen.add(qname)
            cnames.append(str(qname).rstrip("."))
        else:
            return Answer(name, rtype, "SERVFAIL", detail=CNAME_TOO_LONG)

        final = rrsets[-1] if rrsets and rrsets[-1].rdtype == rdtype else None
        size = _response_size(name, rdtype, rrsets)
        return _answer_from_rrset(name, rtype, final, size, cnames)


def _rrset(qname: dns.name.Name, rdataset: object) -> dns.rrset.RRset:
    rrset = dns.rrset.RRset(qname, dns.rdataclass.IN,
                            rdataset.rdtype)  # type: ignore[attr-defined]
    rrset.update(rdataset)  # type: ignore[arg-type]
    return rrset


def _existing_names(zone: dns.zone.Zone) -> frozenset[dns.name.Name]:
    """Every name that exists in ``zone``, empty non-terminals included."""
    names: set[dns.name.Name] = set()
    for name in zone.nodes:
        while name not in names and name.is_subdomain(zone.origin):
            names.add(name)
            if name == zone.origin:
                break
            name = name.parent()
    return frozenset(names)


def _find_node(
    zone: dns.zone.Zone,
    existing: frozenset[dns.name.Name],
    qname: dns.name.Name,
) -> tuple[object | None, bool]:
    """The node for ``qname`` (or its wildcard) and whether the name exists.

    RFC 4592 2.2: a name that does not exist is answered from ``*.`` at its
    closest encloser, if there is one; an empty non-terminal exists.
    """
    if qname in existing:
        return zone.get_node(qname), True

    encloser = qname.parent()
    while encloser not in existing and encloser != zone.origin:
        encloser = encloser.parent()
    wild = zone.get_node(dns.name.Name((b"*",) + encloser.labels))
    return wild, wild is not None


def _response_size(
    name: str, rdtype: int, rrsets: list[dns.rrset.RRset]
) -> int:
    query = dns.message.make_query(name + ".", rdtype, use_edns=False)
    response = dns.message.make_response(query)
    response.answer.extend(rrsets)
    return len(response.to_wire(max_size=65535))


def _parse_zone(text: str, label: str) -> dns.zone.Zone:
    try:
        try:
            return dns.zone.from_text(
                text, origin=None, relativize=False, check_origin=False
            )
        except dns.zone.UnknownOrigin:
            return dns.zone.from_text(
                text, origin=dns.name.root, relativize=False,
                check_origin=False,
            )
    except dns.exception.DNSException as exc:
        raise ResolverConfigError(
            f"cannot read zone file {label}: {exc}"
        ) from exc


def _load_zone(path: Path) -> dns.zone.Zone:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ResolverConfigError(
            f"cannot open zone file {path}: {exc.strerror}"
        ) from exc
    except UnicodeDecodeError as exc:
        raise ResolverConfigError(
            f"cannot read zone file {path}: not UTF-8 text (octet "
            f"{exc.start}); write other octets as \\DDD (RFC 1035 5.1)"
        ) from exc
    return _parse_zone(text, str(path))
