"""The exact SPF record to publish so every CXone SPF IP of the region passes.

For a domain whose record does not give ``pass`` to every SPF IP of its
region, :func:`propose` writes the record to publish instead:

* with a record: the same text with the missing addresses added as
  ``ip4:`` terms (which cost no DNS lookup, RFC 7208 4.6.4) in front of the
  first ``all`` or ``redirect=``; everything else, qualifiers and spacing
  included, is left as it was;
* without a record: ``v=spf1 ip4:... ~all``. The default is ``~all``
  (softfail) rather than ``-all`` (fail): a domain without SPF usually
  has other senders nobody listed yet, and ``-all`` would make their mail
  fail SPF from the day it is published. Once DMARC reports show every
  legitimate sender listed, ``-all`` is the stricter choice.

The proposal is proven before it is shown: ``check_host()`` is evaluated
against the proposed text (without publishing it) for every SPF IP of the
region, and the record tree is walked again to show its DNS-querying terms
did not grow. A record that is broken (several records, a syntax error,
over a lookup limit, an include without a target) gets no proposal: what
must be fixed first is said instead, because adding terms to a record that
cannot be evaluated changes nothing for receivers.

Records over 255 bytes are split into several character-strings, cut at
spaces where possible; receivers join them with nothing in between (RFC
7208 3.3), so each space stays inside a string.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .findings import STRING_LIMIT, DomainFacts, Finding
from .regions import spf_ips
from .resolver import UDP_LIMIT
from .spf import IpVerdict, SpfEvaluator

__all__ = [
    "DEFAULT_QUALIFIER",
    "DEFAULT_TTL",
    "Proposal",
    "Verification",
    "add_ip4_terms",
    "console_value",
    "new_record",
    "propose",
    "split_strings",
    "zone_line",
]

log = logging.getLogger(__name__)

#: The qualifier of ``all`` in a record written from nothing (softfail).
DEFAULT_QUALIFIER = "~"

#: The TTL of the zone-file line, in seconds.
DEFAULT_TTL = 3600

#: Findings that make the current record unusable: fix these first.
BLOCKING = (
    "spf.domain-missing",
    "spf.multiple-records",
    "spf.syntax-error",
    "spf.include-target-missing",
    "spf.too-many-lookups",
    "spf.too-many-void-lookups",
)


@dataclass(frozen=True)
class Verification:
    """The proposed record, evaluated before it is published.

    Attributes
    ----------
    ips
        ``check_host()`` against the proposed text, per region SPF IP.
    dns_lookups_before, dns_lookups_after
        DNS-querying terms of the current and the proposed record tree.
    """

    ips: tuple[IpVerdict, ...]
    dns_lookups_before: int
    dns_lookups_after: int

    @property
    def all_pass(self) -> bool:
        """True when every region SPF IP passes the proposed record."""
        return bool(self.ips) and all(v.result == "pass" for v in self.ips)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "ips": [{"ip": v.ip, "result": v.result} for v in self.ips],
            "all_pass": self.all_pass,
            "dns_lookups_before": self.dns_lookups_before,
            "dns_lookups_after": self.dns_lookups_after,
        }


@dataclass(frozen=True)
class Proposal:
    """What to publish for one domain, or why nothing can be proposed yet.

    Attributes
    ----------
    needed
        True when some SPF IP of the region does not pass; ``None`` when a
        DNS failure leaves it unknown.
    record
        The full record text to publish, or ``None``.
    strings
        ``record`` cut into character-strings of at most 255 bytes.
    console_value
        What to paste into a DNS provider's console.
    zone_line
        The same record as one line of an RFC 1035 master file.
    verification
        The proof that the record works, when there is a record.
    blocked_by
        What must be fixed before a record can be proposed, or ``None``.
    optional
        True for an SES-verified domain: CXone does not send from the SPF
        IPs for it, so publishing is a fallback, not a fix.
    note
        A few sentences for a person: what changed and what to watch.
    """

    needed: bool | None
    record: str | None = None
    strings: tuple[str, ...] = ()
    console_value: str | None = None
    zone_line: str | None = None
    verification: Verification | None = None
    blocked_by: str | None = None
    optional: bool = False
    note: str = ""
    added: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``extra["proposal"]`` of a domain's result)."""
        check = self.verification
        return {
            "needed": self.needed,
            "record": self.record,
            "strings": list(self.strings),
            "console_value": self.console_value,
            "zone_line": self.zone_line,
            "verification": check.to_dict() if check else None,
            "blocked_by": self.blocked_by,
            "optional": self.optional,
            "added": list(self.added),
            "note": self.note,
        }


# ---------------------------------------------------------------------------
# Writing the record (pure)


def _term_offsets(record: str) -> list[tuple[int, str]]:
    # RFC 7208 12: terms are separated by spaces; keep where each starts.
    found, offset = [], 0
    for piece in record.split(" "):
        if piece:
            found.append((offset, piece))
        offset += len(piece) + 1
    return found


def _is_all_or_redirect(term: str) -> bool:
    word = term.lstrip("+-~?").lower()
    return word == "all" or term.lower().startswith("redirect=")


def _without_dead_copies(record: str, ips: Sequence[str]) -> str:
    """Drop ``ip4:`` terms for ``ips`` that stand after ``all``.

    RFC 7208 5.1: terms after ``all`` are never tested. An address listed
    there is one the record meant to authorise; it is added in front of
    ``all`` instead, and a second copy would keep the dead term.
    """
    wanted = {f"{prefix}ip4:{ip}{suffix}" for ip in ips
              for prefix in ("", "+") for suffix in ("", "/32")}
    terms = _term_offsets(record)
    first_all = next((n for n, (_, t) in enumerate(terms)
                      if t.lstrip("+-~?").lower() == "all"), None)
    if first_all is None:
        return record

    for offset, term in reversed(terms[first_all + 1:]):
        if term.lower() in wanted:
            record = record[:offset].rstrip(" ") + record[offset + len(term):]
    return record


def add_ip4_terms(record: str, ips: Iterable[str], *,
                  front: bool = False) -> str:
    """Add ``ip4:`` terms to ``record``, leaving everything else as it is.

    Parameters
    ----------
    record
        An SPF record (``v=spf1 ...``).
    ips
        IPv4 addresses to add, in order (the ones that do not pass: one
        listed after ``all`` is moved in front of it).
    front
        Put the terms right after ``v=spf1`` instead of in front of the
        first ``all``/``redirect=``; used when an earlier term decides the
        IPs otherwise (``-ip4:...``, ``-include:...``).

    Returns
    -------
    str
        The new record. Without ``all`` and ``redirect=`` the terms go at
        the end.
    """
    ips = list(ips)
    terms = _term_offsets(record)
    added = " ".join(f"ip4:{ip}" for ip in ips)
    if not added:
        return record
    if not front:
        record = _without_dead_copies(record, ips)
        terms = _term_offsets(record)

    # RFC 7208 4.6.2: mechanisms are tested in order; terms in front of
    # 'all' are reached, and modifiers may stand anywhere (RFC 7208 6).
    anchors = terms[1:2] if front else [
        (offset, t) for offset, t in terms[1:] if _is_all_or_redirect(t)
    ]
    if anchors:
        at = anchors[0][0]
        return f"{record[:at]}{added} {record[at:]}"
    end = len(record.rstrip(" "))
    return f"{record[:end]} {added}{record[end:]}"


def new_record(ips: Iterable[str], qualifier: str = DEFAULT_QUALIFIER) -> str:
    """A minimal record authorising ``ips``: ``v=spf1 ip4:... ~all``."""
    if qualifier not in ("~", "-", "?", "+", ""):
        raise ValueError(f"not an SPF qualifier: {qualifier!r}")
    terms = " ".join(f"ip4:{ip}" for ip in ips)
    return f"v=spf1 {terms} {qualifier}all"


def split_strings(text: str, limit: int = STRING_LIMIT) -> list[str]:
    """Cut ``text`` into character-strings of at most ``limit`` bytes.

    Cuts fall just after a space where the window has one, so the space
    stays at the end of a string and every string starts with a term;
    receivers join the strings with nothing in between (RFC 7208 3.3), so
    ``"".join(split_strings(text)) == text`` always holds. A window without
    a space is cut at ``limit`` bytes, never inside a UTF-8 character.
    """
    if limit < 4:
        raise ValueError("limit must be at least 4 bytes")
    data, pieces = text.encode("utf-8"), []
    while len(data) > limit:
        cut = data.rfind(b" ", 0, limit) + 1
        if cut <= 0:
            cut = limit
            while data[cut] & 0xC0 == 0x80:  # inside a UTF-8 sequence
                cut -= 1
        pieces.append(data[:cut].decode("utf-8"))
        data = data[cut:]
    pieces.append(data.decode("utf-8"))
    return pieces


def _quoted(text: str) -> str:
    # RFC 1035 5.1: inside quotes, '"' and '\' are escaped with '\'.
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def console_value(strings: Sequence[str]) -> str:
    """The value to paste into a DNS provider's console.

    One string is pasted as it is. Several are given as quoted strings
    separated by a space, the form Amazon Route 53 requires and BIND-style
    editors take for a long TXT record. Consoles that split long values
    themselves take the plain record text instead.
    """
    if len(strings) == 1:
        return strings[0]
    return " ".join(_quoted(s) for s in strings)


def zone_line(domain: str, strings: Sequence[str],
              ttl: int = DEFAULT_TTL) -> str:
    """The record as one master-file line: ``<domain>. TTL IN TXT "..."``."""
    owner = domain.rstrip(".") + "."
    return f"{owner} {ttl} IN TXT {' '.join(_quoted(s) for s in strings)}"


# ---------------------------------------------------------------------------
# Deciding and proving


def _blocker(facts: DomainFacts, findings: Sequence[Finding]) -> str | None:
    """What must be fixed before anything can be proposed."""
    if facts.txt.temporary:
        return (f"the TXT lookup for {facts.domain} failed "
                f"({facts.txt.rcode}): run the audit again")
    for code in BLOCKING:
        found = next((f for f in findings if f.code == code), None)
        if found is not None:
            return f"{found.entry.title} ({code}): {found.detail}"

    # A permerror no finding names (for instance an mx with over 10 hosts).
    for verdict in facts.verdicts:
        if verdict.result in ("permerror", "temperror"):
            return f"{verdict.ip} gets {verdict.explain()}"
    return None


async def _verify(
    evaluator: SpfEvaluator, facts: DomainFacts, record: str
) -> Verification:
    """Evaluate ``record`` as if published, for every region SPF IP."""
    ips = spf_ips(facts.region)
    verdicts = await evaluator.check_ips(ips, facts.domain, policy=record)
    walk = await evaluator.check_record(facts.domain, policy=record)
    before = facts.walk.dns_lookups if facts.walk is not None else 0
    return Verification(tuple(verdicts), before, walk.dns_lookups)


async def propose(
    facts: DomainFacts,
    findings: Sequence[Finding],
    evaluator: SpfEvaluator,
) -> Proposal:
    """The record to publish for ``facts.domain``, proven, or why not.

    Parameters
    ----------
    facts
        What the audit learnt (see :func:`.findings.gather_facts`).
    findings
        :func:`.findings.diagnose` of the same facts; blocking findings
        stop the proposal.
    evaluator
        Evaluates the proposed text without publishing it.
    """
    if facts.txt.temporary:
        return Proposal(needed=None, blocked_by=_blocker(facts, findings),
                        note="Nothing is known about the record yet.")
    missing = [v.ip for v in facts.failing]
    if not missing:
        return Proposal(needed=False, note=(
            f"Every {facts.region.code} SPF IP already passes: nothing to "
            "change."))

    blocked = _blocker(facts, findings)
    if blocked is not None:
        return Proposal(needed=True, blocked_by=blocked,
                        optional=facts.ses_verified, note=_blocked_note(facts))
    return await _build(facts, missing, evaluator)


async def _build(
    facts: DomainFacts, missing: list[str], evaluator: SpfEvaluator
) -> Proposal:
    current = facts.record
    if current is None:
        record = new_record(missing)
        check = await _verify(evaluator, facts, record)
    else:
        record = add_ip4_terms(current, missing)
        check = await _verify(evaluator, facts, record)
        if not check.all_pass:
            # An earlier term decides the IPs (say -ip4: or -include:):
            # terms at the front are tested before it (RFC 7208 4.6.2).
            record = add_ip4_terms(current, missing, front=True)
            check = await _verify(evaluator, facts, record)

    strings = split_strings(record)
    if not check.all_pass:
        failing = ", ".join(f"{v.ip} ({v.result})" for v in check.ips
                            if v.result != "pass")
        return Proposal(needed=True, verification=check,
                        optional=facts.ses_verified,
                        blocked_by=f"the proposed record still does not "
                        f"pass every IP: {failing}")
    log.debug("%s: proposal verified (%d lookups)", facts.domain,
              check.dns_lookups_after)
    return Proposal(
        needed=True, record=record, strings=tuple(strings),
        console_value=console_value(strings),
        zone_line=zone_line(facts.domain, strings), verification=check,
        optional=facts.ses_verified, added=tuple(missing),
        note=_note(facts, missing, record, check),
    )


def _blocked_note(facts: DomainFacts) -> str:
    if facts.txt.rcode == "NXDOMAIN":
        return (f"{facts.domain} does not exist in DNS, so there is no "
                "name to publish a record at. Check the domain's spelling "
                "in the input, then run the audit again.")
    return ("The current record cannot be evaluated, so adding CXone's "
            "IPs to it would change nothing for receivers. Fix the "
            "problem named in blocked_by, then run the audit again for a "
            "proposal.")


def _moved_note(current: str, missing: list[str]) -> str:
    if _without_dead_copies(current, missing) == current:
        return ""
    return (", but for the same addresses listed after 'all', where they "
            "were never reached: they are moved, not copied")


def _note(
    facts: DomainFacts, missing: list[str], record: str,
    check: Verification,
) -> str:
    sentences = [
        f"Adds {', '.join(f'ip4:{ip}' for ip in missing)}"
        + (" to a new record." if facts.record is None else
           " in front of the record's 'all' (or 'redirect='); nothing "
           "else changes" + _moved_note(facts.record, missing) + "."),
        f"Checked before publishing: every {facts.region.code} SPF IP "
        f"passes; DNS-querying terms {check.dns_lookups_before} before, "
        f"{check.dns_lookups_after} after (ip4: costs no lookup).",
    ]
    if facts.record is None:
        sentences.append(
            "New records end in '~all' (softfail): list every other "
            "service that sends as the domain first, then '-all' is the "
            "stricter choice.")
    if len(record.encode()) > STRING_LIMIT:
        sentences.append(
            f"The record is over {STRING_LIMIT} bytes: publish it as the "
            "strings shown, each space kept inside a string (RFC 7208 3.3).")
    if _answer_estimate(facts, record) > UDP_LIMIT:
        sentences.append(
            "The TXT answer will be over 512 bytes and need TCP for "
            "receivers without EDNS (RFC 7208 3.4): consider shortening.")
    if facts.ses_verified:
        sentences.insert(0, (
            "Optional: the domain is verified in Amazon SES, so CXone sends "
            "through SES and does not use these IPs; publish this only as "
            "a fallback in case SES is turned off for the domain."))
    return " ".join(sentences)


def _answer_estimate(facts: DomainFacts, record: str) -> int:
    """About how big the TXT answer gets with ``record`` in it.

    The current answer's size, plus the growth of the text and one length
    octet per extra string (a new RR adds its header and owner name).
    """
    grown = len(record) - len(facts.record or "")
    if facts.record is None:
        grown += 12 + len(facts.domain) + 2  # a new RR: header and name
    strings = len(split_strings(record)) - max(len(facts.strings), 1)
    return facts.txt.size + grown + strings if facts.txt.size else 0

