"""SPF verdicts: RFC 7208 ``check_host()`` for CXone's sending IPs.

The evaluation itself is spftrace's (an RFC 7208 evaluator that returns a
trace of every step), run over the kit's own :class:`~.resolver.Resolver`, so
that every DNS question of a run is asked once and kept as evidence. This
module turns spftrace's trace into the facts an audit reports: for each IP
the result, the term that decided it and the include/redirect chain that led
there; for the domain its record, its DNS-querying terms (limit 10, RFC 7208
4.6.4) and its void lookups (limit 2).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import spftrace
import spftrace.evaluator
import spftrace.parser
from spftrace.evaluator import valid_domain
from spftrace.macros import MacroContext, expand, truncate_domain

from .resolver import Answer, Resolver

__all__ = [
    "PROBE_IP",
    "RESULTS",
    "IpVerdict",
    "RecordCheck",
    "SpfEvaluator",
    "spf_records",
]

log = logging.getLogger(__name__)

#: The seven results of RFC 7208 2.6.
RESULTS = ("pass", "fail", "softfail", "neutral", "none", "permerror",
           "temperror")

#: An address no SPF record authorises (RFC 5737 TEST-NET-1), evaluated to
#: walk the whole record tree and count its DNS-querying terms.
PROBE_IP = "192.0.2.1"

#: RFC 7208 4.6.4: at most 10 DNS-querying terms and 2 void lookups.
MAX_DNS_TERMS = spftrace.MAX_DNS_TERMS
MAX_VOID_LOOKUPS = spftrace.MAX_VOID_LOOKUPS


@dataclass(frozen=True)
class IpVerdict:
    """The result of ``check_host()`` for one IP.

    Attributes
    ----------
    ip
        The client IP evaluated.
    result
        One of :data:`RESULTS`.
    matched
        The term that decided the result, such as ``"ip4:3.73.46.42"`` or
        ``"~all"``, inside whichever record it was found; ``None`` when no
        term matched (default ``neutral``) or evaluation stopped on an error.
    matched_in
        The domain whose record holds ``matched``.
    path
        The ``include:``/``redirect=`` terms followed, outermost first, to
        reach the record that holds ``matched``.
    reason
        Why evaluation stopped, for ``permerror``, ``temperror`` and
        ``none``; empty otherwise.
    explanation
        The expanded ``exp=`` text of a ``fail`` (RFC 7208 6.2), if any.
    """

    ip: str
    result: str
    matched: str | None = None
    matched_in: str | None = None
    path: tuple[str, ...] = ()
    reason: str = ""
    explanation: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (one entry of a result's ``ips``)."""
        return {
            "ip": self.ip,
            "result": self.result,
            "matched": self.matched,
            "matched_in": self.matched_in,
            "path": list(self.path),
            "reason": self.reason,
        }

    def explain(self) -> str:
        """One sentence saying why the IP got its result."""
        if self.reason:
            return f"{self.result}: {self.reason}"
        if self.matched is None:
            return f"{self.result}: no term matched (RFC 7208 4.7 default)"
        where = f" in {self.matched_in}" if self.matched_in else ""
        via = f" via {' > '.join(self.path)}" if self.path else ""
        return f"{self.result}: matched {self.matched}{where}{via}"


@dataclass(frozen=True)
class RecordCheck:
    """What the whole-record walk found.

    Attributes
    ----------
    result
        The result for :data:`PROBE_IP`: ``none`` when there is no record,
        ``permerror``/``temperror`` when the record cannot be evaluated.
    reason
        The evaluator's reason for an error result.
    dns_lookups
        DNS-querying terms the full walk needs, counted past the limit.
    void_lookups
        Void lookups met on the walk.
    """

    result: str
    reason: str
    dns_lookups: int
    void_lookups: int
    events: tuple[dict[str, Any], ...] = field(default=(), repr=False)


#: Distinct record texts and ``ip4`` networks remembered per process. A
#: batch meets the same provider records (``include:_spf.google.com``...)
#: for every domain; the bound keeps memory flat on any list.
PARSE_CACHE_SIZE = 4096
NETWORK_CACHE_SIZE = 16384


def _remember_parsed_records() -> None:
    """Let spftrace parse each distinct record text once per process.

    spftrace parses a record again on every ``check_host()``; an audit
    evaluates the same provider records for every IP of every domain, and
    parsing was a tenth of its CPU time. :func:`spftrace.parser.parse` is a
    pure function of the text and nothing changes a parsed record after it
    is built, so the parsed form can be shared. A text that does not parse
    raises each time (exceptions are not remembered).
    """
    current = spftrace.evaluator.parse
    if current is spftrace.parser.parse:
        spftrace.evaluator.parse = functools.lru_cache(
            maxsize=PARSE_CACHE_SIZE)(current)


_remember_parsed_records()


@functools.lru_cache(maxsize=NETWORK_CACHE_SIZE)
def _ip4_network(arg: str, cidr: int | None) -> ipaddress.IPv4Network:
    # RFC 7208 5.6: ip4-network with its ip4-cidr-length (32 by default).
    return ipaddress.IPv4Network(f"{arg}/{cidr}", strict=False)


class _Evaluator(spftrace.Evaluator):
    """spftrace's evaluator with two changes.

    * RFC 7208 6.2 explanation text: spftrace 0.3 checks the whole
      ``exp=`` TXT text as one macro-string, which may not hold spaces, so
      every explanation with a space was lost. RFC 7208 6.2 defines it as
      ``*( macro-string / SP )``: each piece between spaces is expanded on
      its own.
    * ``ip4`` ranges are built once per process instead of on every match
      (the same comparison as spftrace's, about a tenth of the CPU time).
    """

    def _match_ip4(self, term: Any, ctx: MacroContext) -> bool:
        if not ctx.is_v4:
            return super()._match_ip4(term, ctx)  # traces the family skip
        return ctx.ip in _ip4_network(term.arg, term.cidr4)

    async def _explanation(  # type: ignore[override]
        self, ip: Any, domain: str, sender: str, helo: str, exp_term: Any
    ) -> str | None:
        ctx = MacroContext(ip=ip, sender=sender, helo=helo, domain=domain,
                           receiver=self.receiver, session=self.session)
        try:
            # RFC 7208 4.6.4: the exp= lookup uses no void-lookup budget.
            with self.session.void_exempt():
                target = truncate_domain(await expand(exp_term.arg or "", ctx))
                if not valid_domain(target):
                    return None
                _, answers = await self.session.query(target, "TXT")
            # RFC 7208 6.2: anything but exactly one TXT record is ignored.
            if len(answers) != 1:
                return None
            pieces = [await expand(p, ctx, exp=True)
                      for p in answers[0].split(" ")]
        except (spftrace.SpfError, spftrace.DnsError, ValueError):
            return None
        text = " ".join(pieces)
        self.trace.add("exp", domain=target, text=text)
        return text


class _Transport(spftrace.BaseResolver):
    """Routes spftrace's lookups through the kit's resolver and its cache."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    async def _lookup(self, name: str, rtype: str) -> tuple[str, list[str]]:
        answer = await self.resolver.query(name, rtype)
        return answer.rcode, _evaluator_records(answer)


def _evaluator_records(answer: Answer) -> list[str]:
    # spftrace wants MX exchanges alone; RFC 7208 5.4 needs no preference.
    if answer.rtype == "MX":
        return [r.split(" ", 1)[1] for r in answer.records]
    return list(answer.records)


def spf_records(answer: Answer) -> list[str]:
    """The SPF records among a TXT answer (RFC 7208 4.5).

    A record is SPF when it is exactly ``v=spf1`` or starts with ``v=spf1 ``,
    compared without regard to case.
    """
    return [
        text for text in answer.records
        if text.lower() == "v=spf1" or text.lower().startswith("v=spf1 ")
    ]


class SpfEvaluator:
    """Evaluate SPF for many IPs over one shared :class:`Resolver`.

    Parameters
    ----------
    resolver
        Every lookup goes through it; its cache is shared by all domains.
    time_limit
        Seconds one ``check_host()`` may take before it is a ``temperror``.
    """

    def __init__(self, resolver: Resolver, time_limit: float = 20.0) -> None:
        self.resolver = resolver
        self._transport = _Transport(resolver)
        self._limits = spftrace.Limits(time_limit=time_limit)
        self._audit_limits = spftrace.Limits(time_limit=time_limit, audit=True)

    async def check_host(
        self, ip: str, domain: str, policy: str | None = None
    ) -> IpVerdict:
        """RFC 7208 ``check_host(ip, domain, postmaster@domain)``.

        Parameters
        ----------
        ip
            The client address.
        domain
            The MAIL FROM domain.
        policy
            Evaluate this record text instead of the published one (used to
            prove a proposed record before it is published).
        """
        return await self.evaluate(ip, f"postmaster@{domain}", domain, policy)

    async def evaluate(
        self, ip: str, sender: str, helo: str, policy: str | None = None
    ) -> IpVerdict:
        """RFC 7208 ``check_host()`` for any sender and HELO identity.

        RFC 7208 2.4: an empty ``sender`` checks ``postmaster@helo``.
        """
        evaluator = _Evaluator(
            self._transport, self._limits, policy_override=policy
        )
        result = await evaluator.evaluate(ip, sender, helo)
        verdict = verdict_from_trace(ip, result.result, _verdict_events(result))
        if result.explanation is None:
            return verdict
        return dataclasses.replace(verdict, explanation=result.explanation)

    async def check_ips(
        self, ips: Iterable[str], domain: str, policy: str | None = None
    ) -> list[IpVerdict]:
        """:meth:`check_host` for each IP, in order."""
        return [await self.check_host(ip, domain, policy) for ip in ips]

    async def check_record(
        self, domain: str, policy: str | None = None
    ) -> RecordCheck:
        """Walk the whole record tree and count its lookups.

        RFC 7208 4.6.4 counts DNS-querying terms as evaluation reaches them.
        The walk evaluates :data:`PROBE_IP`, which matches no real term, in
        spftrace's audit mode, which counts on past the limit of 10.
        """
        evaluator = _Evaluator(
            self._transport, self._audit_limits, policy_override=policy
        )
        result = await evaluator.evaluate(
            PROBE_IP, f"postmaster@{domain}", domain
        )
        events = tuple(result.trace.to_list())
        return RecordCheck(
            result=result.result,
            reason=_limit_reason(result) or _stop_reason(events),
            dns_lookups=result.dns_terms_used,
            void_lookups=result.void_lookups_used,
            events=events,
        )


#: The trace events :func:`verdict_from_trace` replays, and those that say
#: why an evaluation stopped.
_VERDICT_EVENTS = frozenset({
    "check_start", "mech_start", "recurse_in", "recurse_out", "mech_match",
    "exit", "parse_error", "error", "txt_error",
})


def _verdict_events(result: spftrace.Result) -> list[dict[str, Any]]:
    """The events a verdict needs, as dicts (a third of a full trace)."""
    return [{"kind": e.kind, **e.data} for e in result.trace.events
            if e.kind in _VERDICT_EVENTS]


@dataclass
class _Frame:
    """One record being evaluated while the trace is replayed."""

    domain: str
    entered_by: str | None
    decided: list[tuple[str, str]] = field(default_factory=list)
    pending: str | None = None


def _limit_reason(result: spftrace.Result) -> str:
    # RFC 7208 4.6.4: past either limit the result is permerror.
    if result.dns_terms_used > MAX_DNS_TERMS:
        return (
            f"{result.dns_terms_used} DNS-querying terms, over the limit "
            f"of {MAX_DNS_TERMS} (RFC 7208 4.6.4)"
        )
    if result.void_lookups_used > MAX_VOID_LOOKUPS:
        return (
            f"{result.void_lookups_used} void lookups, over the limit "
            f"of {MAX_VOID_LOOKUPS} (RFC 7208 4.6.4)"
        )
    return ""


def _stop_reason(events: Sequence[dict[str, Any]]) -> str:
    for event in reversed(events):
        if event["kind"] in ("exit", "parse_error", "error", "txt_error"):
            return str(event.get("reason") or event.get("message") or "")
    return ""


def verdict_from_trace(
    ip: str, result: str, events: Sequence[dict[str, Any]]
) -> IpVerdict:
    """Replay spftrace's events to find the deciding term and its path.

    A frame is pushed for each include or redirect entered. A match inside a
    frame decides that frame; when an include's frame returns ``pass`` the
    include itself matches (RFC 7208 5.2) and its inner chain is kept.
    """
    frames = [_Frame(domain="", entered_by=None)]
    returned: list[tuple[str, str]] = []

    for event in events:
        kind, frame = event["kind"], frames[-1]
        if kind == "check_start":
            frame.domain = event["domain"]
        elif kind == "mech_start":
            frame.pending = event["raw"]
        elif kind == "recurse_in":
            term = frame.pending if event["via"] == "include" else None
            entered = term or f"redirect={event['domain']}"
            frames.append(_Frame(event["domain"], entered))
            returned = []
        elif kind == "recurse_out" and len(frames) > 1:
            child = frames.pop()
            returned = [(child.domain, child.entered_by or "")] + child.decided
            if event["via"] == "redirect":
                frames[-1].decided = returned
        elif kind == "mech_match":
            inner = returned if event["raw"].lower().split(":")[0].lstrip(
                "+-~?") == "include" else []
            frame.decided = [(frame.domain, event["raw"])] + inner[1:]
            returned = []

    return _verdict(ip, result, frames[0].decided, _stop_reason(events))


def _verdict(
    ip: str, result: str, chain: list[tuple[str, str]], reason: str
) -> IpVerdict:
    if result in ("permerror", "temperror", "none") or not chain:
        if result == "none" and not reason:
            reason = "no SPF record"
        return IpVerdict(ip, result, reason=reason)

    matched_in, matched = chain[-1]
    path = tuple(term for _, term in chain[:-1])
    return IpVerdict(ip, result, matched, matched_in, path)
