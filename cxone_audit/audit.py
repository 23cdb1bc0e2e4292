"""Audit one domain: its SPF record against its CXone region's SPF IPs.

:func:`audit_domain` is the orchestration step for one row: it asks the
resolver for the domain's TXT records, evaluates ``check_host()`` for every
SPF IP of the region, walks the record once more to count its lookups, and
sums it all up as a :class:`DomainResult` with one status.

Statuses (``DomainResult.status``), most urgent first:

``input-error``
    The row could not be audited (no domain, invalid name, unknown region,
    duplicate); ``reason`` says which.
``dns-error``
    A DNS lookup timed out or failed (RFC 7208 ``temperror``). This says
    nothing about the record: run again later.
``no-spf``
    The domain publishes no SPF record (RFC 7208 ``none``).
``spf-error``
    The record cannot be evaluated for at least one CXone IP (``permerror``:
    syntax, more than one record, over 10 DNS-querying terms...).
``not-authorised``
    No CXone SPF IP of the region gets ``pass``.
``partly-authorised``
    Some CXone SPF IPs get ``pass``, others do not.
``authorised``
    Every CXone SPF IP of the region gets ``pass``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .allowlist import CurrentAllowlist, allowlist_section, as_current
from .dmarc import lookup_dmarc
from .findings import diagnose, gather_facts
from .inputs import find_cell
from .mx import lookup_mx
from .proposal import propose
from .regions import Region, get_region, spf_ips
from .resolver import Answer, Resolver
from .ses import lookup_ses
from .spf import IpVerdict, RecordCheck, SpfEvaluator, spf_records

__all__ = [
    "STATUSES",
    "DomainResult",
    "SpfSummary",
    "audit_domain",
    "input_error",
]

log = logging.getLogger(__name__)

#: The reason of a ``no-spf`` row whose domain does not exist at all.
DOMAIN_MISSING = "the domain does not exist (NXDOMAIN): check its spelling"

#: Every status, most urgent first, with the words a report shows for it.
STATUSES: dict[str, str] = {
    "input-error": "row could not be audited",
    "dns-error": "DNS lookup failed (temperror): see the reason",
    "no-spf": "no SPF record",
    "spf-error": "SPF record error (permerror)",
    "not-authorised": "no CXone SPF IP authorised",
    "partly-authorised": "some CXone SPF IPs not authorised",
    "authorised": "every CXone SPF IP authorised",
}


@dataclass(frozen=True)
class SpfSummary:
    """The domain's SPF record and what it costs.

    Attributes
    ----------
    record
        The SPF record text (strings joined, RFC 7208 3.3), or ``None``.
    records
        Every ``v=spf1`` record found; more than one is a permerror.
    strings
        The character-strings of the SPF TXT record as published.
    dns_lookups
        DNS-querying terms the whole record tree uses (limit 10).
    void_lookups
        Void lookups met on the way (limit 2).
    result
        The record's result for an address it does not list.
    reason
        Why the record cannot be evaluated, when it cannot.
    """

    record: str | None = None
    records: tuple[str, ...] = ()
    strings: tuple[str, ...] = ()
    dns_lookups: int = 0
    void_lookups: int = 0
    result: str = "none"
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the ``spf`` object of a result)."""
        return {
            "record": self.record,
            "records": list(self.records),
            "strings": list(self.strings),
            "dns_lookups": self.dns_lookups,
            "void_lookups": self.void_lookups,
            "result": self.result,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DomainResult:
    """Everything the audit found for one input row.

    Attributes
    ----------
    row
        The row's 1-based position in the input.
    input
        The domain cell as the user wrote it.
    domain
        The normalised domain, or ``None`` when there is none.
    region
        The CXone region, or ``None`` when unknown.
    status
        One of :data:`STATUSES`.
    reason
        One sentence explaining the status.
    notes
        What input normalisation changed (case, e-mail address, URL...).
    columns
        The row's other spreadsheet columns, passed through.
    spf
        The record and its lookup counts.
    ips
        ``check_host()`` for each SPF IP of the region.
    evidence
        Every DNS answer the audit used.
    extra
        Results of further checks, keyed by name (kept in the JSON).
    """

    row: int
    input: str
    domain: str | None
    region: Region | None
    status: str
    reason: str
    notes: tuple[str, ...] = ()
    columns: dict[str, Any] = field(default_factory=dict)
    spf: SpfSummary = field(default_factory=SpfSummary)
    ips: tuple[IpVerdict, ...] = ()
    evidence: tuple[Answer, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failing_ips(self) -> list[IpVerdict]:
        """The region's SPF IPs that do not get ``pass``."""
        return [v for v in self.ips if v.result != "pass"]


def input_error(
    row: int,
    raw: str,
    reason: str,
    *,
    domain: str | None = None,
    region: Region | None = None,
    notes: Sequence[str] = (),
    columns: dict[str, Any] | None = None,
) -> DomainResult:
    """A result for a row that could not be audited."""
    return DomainResult(
        row=row, input=raw, domain=domain, region=region,
        status="input-error", reason=reason, notes=tuple(notes),
        columns=dict(columns or {}),
    )


class _Recorder(Resolver):
    """A per-domain view of the run's resolver that keeps what it answered.

    The run's resolver caches no timeout or SERVFAIL, so that another domain
    asks again later. Within one domain's audit, though, a question that
    failed is not asked again: every check of the domain sees the same
    answer, and a dead server costs its timeout once per domain, not once
    per IP and check.
    """

    def __init__(self, inner: Resolver) -> None:
        super().__init__()
        self.inner = inner
        self.used: dict[tuple[str, str], Answer] = {}

    def describe(self) -> str:
        return self.inner.describe()

    async def _ask(self, name: str, rtype: str) -> Answer:
        raise NotImplementedError  # query() below never reaches it

    async def query(self, name: str, rtype: str) -> Answer:
        failed = self.used.get((name.rstrip(".").lower(), rtype.upper()))
        if failed is not None and failed.temporary:
            return failed

        answer = await self.inner.query(name, rtype)
        self.used.setdefault((answer.name, answer.rtype), answer)
        return answer


async def audit_domain(
    domain: str,
    region: str | Region,
    resolver: Resolver,
    *,
    row: int = 1,
    raw: str | None = None,
    notes: Sequence[str] = (),
    columns: dict[str, Any] | None = None,
    allowlist: CurrentAllowlist | Sequence[str] | None = None,
) -> DomainResult:
    """Audit one domain's SPF record for its CXone region.

    Parameters
    ----------
    domain
        A normalised domain name (see :mod:`cxone_audit.inputs`).
    region
        A region code or name, or a :class:`~.regions.Region`.
    resolver
        The run's resolver; all lookups go through it.
    row, raw, notes, columns
        Where the domain came from, carried into the result.
    allowlist
        The current allowlist of the domain's mail server, already read:
        entry texts, or a :class:`~.allowlist.CurrentAllowlist` (which
        names its file, or says why it could not be read). It is compared
        with the region's allowlist IPs; ``None`` compares nothing.

    Returns
    -------
    DomainResult
        Never raises for DNS trouble: that is a ``dns-error`` status. Its
        ``extra`` holds the context checks (``dmarc``, ``mx``, ``ses``, and
        ``allowlist`` when one was given), the ``findings`` and the
        ``proposal`` (see :mod:`cxone_audit.findings` and
        :mod:`cxone_audit.proposal`).
    """
    region = get_region(region)
    current = as_current(allowlist)
    recorder = _Recorder(resolver)
    evaluator = SpfEvaluator(recorder)

    txt, verdicts, walk, summary = await _check_spf(
        domain, region, evaluator, recorder
    )
    status, reason = judge(verdicts, summary)
    if status == "dns-error":
        reason += _failure_details(recorder.used.values())
    context = await _context(domain, recorder, columns or {})
    if current is not None:
        context["allowlist"] = allowlist_section(current, region)
    extra = await _diagnose(domain, region, recorder, evaluator,
                            (txt, verdicts, walk), context)

    log.info("%s (%s): %s", domain, region.code, status)
    return DomainResult(
        row=row, input=raw if raw is not None else domain, domain=domain,
        region=region, status=status, reason=reason, notes=tuple(notes),
        columns=dict(columns or {}), spf=summary, ips=verdicts,
        evidence=tuple(recorder.used.values()), extra=extra,
    )


async def _check_spf(
    domain: str, region: Region, evaluator: SpfEvaluator, recorder: Resolver
) -> tuple[Answer, tuple[IpVerdict, ...], RecordCheck | None, SpfSummary]:
    """The TXT answer, the verdict per region SPF IP and the record walk."""
    # RFC 7208 4.4: the record is looked up as TXT at the domain itself.
    txt = await recorder.query(domain, "TXT")
    if txt.temporary:
        # RFC 7208 4.4: a failed lookup is temperror for every IP alike;
        # asking again per IP would only multiply the wait.
        why = f"TXT {domain}: {txt.rcode}"
        verdicts = tuple(IpVerdict(ip, "temperror", reason=why)
                         for ip in spf_ips(region))
        return txt, verdicts, None, SpfSummary(result="temperror",
                                               reason=why)

    verdicts = tuple(await evaluator.check_ips(spf_ips(region), domain))
    walk = await evaluator.check_record(domain)
    summary = _summary(txt, walk.result, walk.reason,
                       walk.dns_lookups, walk.void_lookups)
    return txt, verdicts, walk, summary


def _stated_ses(columns: Mapping[str, Any]) -> str | None:
    """The row's ``ses_verified`` cell (header matched loosely), if any."""
    return find_cell(columns, "ses_verified")


async def _context(
    domain: str, recorder: Resolver, columns: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """DMARC, MX and SES: what changes the meaning of the SPF verdicts."""
    dmarc = await lookup_dmarc(domain, recorder)
    mx = await lookup_mx(domain, recorder)
    ses = await lookup_ses(domain, recorder, _stated_ses(columns))
    return {"dmarc": dmarc.to_dict(), "mx": mx.to_dict(),
            "ses": ses.to_dict()}


async def _diagnose(
    domain: str,
    region: Region,
    recorder: _Recorder,
    evaluator: SpfEvaluator,
    spf: tuple[Answer, tuple[IpVerdict, ...], RecordCheck | None],
    context: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Findings and the proposed record, with the context checks."""
    txt, verdicts, walk = spf
    facts = await gather_facts(domain, region, recorder, evaluator, txt,
                               verdicts, walk, context)
    troubles = tuple(a for a in recorder.used.values() if a.temporary)
    facts = dataclasses.replace(facts, troubles=troubles)

    findings = diagnose(facts)
    proposal = await propose(facts, findings, evaluator)
    return {**context, "findings": [f.to_dict() for f in findings],
            "proposal": proposal.to_dict()}


def _failure_details(answers: Iterable[Answer]) -> str:
    """What the failed answers said (``" (CNAME loop)"``), if anything."""
    details = sorted({a.detail for a in answers if a.temporary and a.detail})
    return f" ({'; '.join(details)})" if details else ""


def _summary(
    txt: Answer, result: str, reason: str, lookups: int, voids: int
) -> SpfSummary:
    # RFC 7208 4.3: NXDOMAIN gives 'none' as a missing record does; say
    # which, since a misspelt domain needs correcting, not a record.
    if txt.rcode == "NXDOMAIN":
        reason = DOMAIN_MISSING
    # RFC 7208 4.6.4 limits void lookups made by terms; the lookup of the
    # record itself is not one, so a domain without TXT has none.
    if txt.void:
        voids = 0
    records = spf_records(txt)
    strings: tuple[str, ...] = ()
    for text, parts in zip(txt.records, txt.strings, strict=False):
        if len(records) == 1 and text == records[0]:
            strings = parts
    return SpfSummary(
        record=records[0] if len(records) == 1 else None,
        records=tuple(records),
        strings=strings,
        dns_lookups=lookups,
        void_lookups=voids,
        result=result,
        reason=reason,
    )


def judge(
    verdicts: Sequence[IpVerdict], spf: SpfSummary
) -> tuple[str, str]:
    """One status and a reason from the per-IP verdicts.

    A temperror anywhere wins (the data is incomplete), then the absence of a
    record, then permerror; otherwise the count of ``pass`` decides.
    """
    results = [v.result for v in verdicts]
    failing = [v for v in verdicts if v.result != "pass"]

    if "temperror" in results:
        first = next(v for v in verdicts if v.result == "temperror")
        return "dns-error", f"DNS lookup failed: {first.reason}"
    if results and all(r == "none" for r in results):
        return "no-spf", _no_spf_reason(spf)
    if "permerror" in results:
        first = next(v for v in verdicts if v.result == "permerror")
        return "spf-error", f"permerror: {first.reason}"
    if not failing:
        return "authorised", f"all {len(verdicts)} CXone SPF IPs pass"

    listed = ", ".join(f"{v.ip} ({v.result})" for v in failing)
    if len(failing) == len(verdicts):
        return "not-authorised", f"no CXone SPF IP passes: {listed}"
    return "partly-authorised", (
        f"{len(failing)} of {len(verdicts)} CXone SPF IPs do not pass: "
        f"{listed}"
    )


def _no_spf_reason(spf: SpfSummary) -> str:
    if spf.reason == DOMAIN_MISSING:
        return DOMAIN_MISSING
    if spf.reason and "no v=spf1" not in spf.reason:
        return f"no SPF record ({spf.reason})"
    return "the domain publishes no v=spf1 TXT record"
