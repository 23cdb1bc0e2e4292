"""Findings: what is wrong with a domain's e-mail DNS, and what to do.

The :data:`CATALOGUE` holds one :class:`FindingType` per problem the kit can
name: a stable code (``spf.cxone-ips-missing``), a default severity, a
one-line title, an explanation citing the rule it follows and the action
that fixes it. A :class:`Finding` is one occurrence for one domain: the
code, the severity that applies there (context can raise or lower it), one
sentence of domain-specific detail and the data behind it.

:func:`diagnose` is pure: it reads a :class:`DomainFacts` (the DNS answers,
``check_host()`` verdicts and the record walk an audit already has) and
returns findings. :func:`gather_facts` asks the few extra questions the
catalogue needs (the other regions' SPF IPs, the SPF RR type) through the
resolver the caller passes.

Families, kept apart so DNS trouble is never mistaken for configuration:

``cxone``   the region's CXone SPF IPs and what they get
``record``  one valid record, its include/redirect targets, the limits
``policy``  what the record says about everyone else (``+all``, ``ptr``...)
``size``    the TXT answer and the strings a DNS console needs
``dns``     timeouts and server failures: nothing is known, try again
``context`` DMARC, Amazon SES and MX, which change what a finding means
``allowlist`` the mail server's current allowlist, when one was given
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import spftrace

from .regions import REGION_CODES, Region, allowlist_ips, spf_ips
from .resolver import UDP_LIMIT, Answer, Resolver
from .spf import (
    MAX_DNS_TERMS,
    MAX_VOID_LOOKUPS,
    PROBE_IP,
    IpVerdict,
    RecordCheck,
    SpfEvaluator,
    spf_records,
    verdict_from_trace,
)

__all__ = [
    "CATALOGUE",
    "FAMILIES",
    "SEVERITIES",
    "DomainFacts",
    "Finding",
    "FindingType",
    "SyntaxProblem",
    "diagnose",
    "find_syntax_error",
    "gather_facts",
    "lookup_tree",
]

log = logging.getLogger(__name__)

#: Most urgent first.
SEVERITIES = ("critical", "high", "medium", "low", "info")

FAMILIES: dict[str, str] = {
    "cxone": "CXone SPF IPs",
    "record": "SPF record health",
    "policy": "SPF policy for other senders",
    "size": "record and answer size",
    "dns": "DNS trouble (not a configuration problem)",
    "context": "DMARC, Amazon SES and MX",
    "allowlist": "CXone allowlist IPs at the mail server",
}

#: RFC 1035 3.3: a character-string holds at most 255 octets.
STRING_LIMIT = 255

_DNS_MECHANISMS = frozenset({"include", "a", "mx", "ptr", "exists"})


@dataclass(frozen=True)
class FindingType:
    """One entry of the catalogue.

    Attributes
    ----------
    code
        Stable identifier, ``family.name``; reports and tests key on it.
    family
        One of :data:`FAMILIES`.
    severity
        The default severity, one of :data:`SEVERITIES`.
    title
        One line saying what is wrong.
    explanation
        Why it matters, citing the rule (RFC section) where one applies.
    action
        What to do about it.
    rfc
        The rule the finding follows, such as ``"RFC 7208 4.5"``.
    """

    code: str
    family: str
    severity: str
    title: str
    explanation: str
    action: str
    rfc: str = ""


def _entry(*args: str) -> tuple[str, FindingType]:
    found = FindingType(*args)
    return found.code, found


CATALOGUE: dict[str, FindingType] = dict([
    _entry(
        "spf.cxone-ips-missing", "cxone", "high",
        "CXone SPF IPs of the region are not authorised",
        "ACD channel e-mail that CXone sends through its own mail system "
        "leaves from the region's SPF IPs with the domain as sender. A "
        "receiver runs check_host() for the connecting IP; anything but "
        "'pass' leaves DMARC without an SPF pass, and a 'fail' may be "
        "rejected on SPF alone (RFC 7208 8.4). How serious it is depends "
        "on the DMARC policy: p=reject rejects such mail, p=quarantine "
        "sends it to spam, p=none delivers it. A domain verified in Amazon "
        "SES for CXone sends through SES instead, and these IPs do not "
        "matter for it.",
        "Add the missing IPs as ip4: terms in front of the record's 'all' "
        "(the proposed record does exactly that, without DNS lookups).",
        "RFC 7208 2.6, 4.6.2",
    ),
    _entry(
        "spf.other-region-authorised", "cxone", "medium",
        "Another CXone region's SPF IPs are authorised instead",
        "The record authorises every SPF IP of a different CXone region "
        "but not all of the domain's own region. Either the region given "
        "for the domain is wrong, or the record was written for the wrong "
        "region.",
        "Check which region the CXone tenant is in; correct the region "
        "column, or add the right region's SPF IPs.",
    ),
    _entry(
        "spf.no-record", "record", "high",
        "No SPF record",
        "The domain publishes no TXT record starting with 'v=spf1', so "
        "check_host() returns 'none' for every sender: no IP is authorised "
        "and receivers cannot tell forged mail from real mail.",
        "Publish one SPF record listing every service that sends as the "
        "domain (see the proposed record for CXone).",
        "RFC 7208 4.5",
    ),
    _entry(
        "spf.domain-missing", "record", "high",
        "The domain does not exist in DNS",
        "The TXT lookup for the domain answered NXDOMAIN: no such name "
        "exists, so check_host() returns 'none' and there is nowhere to "
        "publish a record. This is most often a misspelt domain in the "
        "input, or a domain that was never set up in DNS.",
        "Check the spelling of the domain in the input. If it is right, "
        "create the domain in DNS before publishing an SPF record for it.",
        "RFC 7208 4.3",
    ),
    _entry(
        "spf.multiple-records", "record", "critical",
        "More than one SPF record",
        "Two or more TXT records at one name start with 'v=spf1'. "
        "check_host() then returns 'permerror' for every sender, so SPF "
        "passes for nobody.",
        "Merge the records into one: keep one 'v=spf1', put every term of "
        "the others in front of a single 'all', and delete the rest.",
        "RFC 7208 4.5",
    ),
    _entry(
        "spf.syntax-error", "record", "critical",
        "The SPF record has a syntax error",
        "A record that does not follow the grammar makes check_host() "
        "return 'permerror' for every sender as soon as it is read. When a "
        "long record is published as several strings they are joined with "
        "nothing in between (RFC 7208 3.3), so a space forgotten at the "
        "end of a string glues two terms together.",
        "Correct or remove the term named in the detail.",
        "RFC 7208 4.6, 12",
    ),
    _entry(
        "spf.include-target-missing", "record", "critical",
        "An include or redirect points to a name without an SPF record",
        "An 'include:' whose target has no SPF record makes check_host() "
        "return 'permerror' (RFC 7208 5.2), and so does a 'redirect=' "
        "whose target has none (RFC 7208 6.1). Every sender evaluated past "
        "that term gets 'permerror'.",
        "Remove the term, or correct its target (a typo, or a provider "
        "that has renamed or retired its SPF name).",
        "RFC 7208 5.2, 6.1",
    ),
    _entry(
        "spf.too-many-lookups", "record", "critical",
        "More than 10 DNS-querying terms",
        "include, a, mx, ptr, exists and redirect each cost one DNS "
        "lookup, counted through every included record. Past 10 the "
        "result is 'permerror' for every sender evaluated that far.",
        "Remove includes of services no longer used, replace 'a' and 'mx' "
        "with ip4:/ip6: terms where the addresses are stable, or move "
        "senders to subdomains with their own records. ip4:/ip6: terms "
        "cost nothing.",
        "RFC 7208 4.6.4",
    ),
    _entry(
        "spf.too-many-void-lookups", "record", "high",
        "More than 2 void lookups",
        "A lookup that returns no records (NXDOMAIN or an empty answer) "
        "is void. Past 2 voids check_host() should return 'permerror'.",
        "Remove the terms that point to names that do not exist or have "
        "no addresses.",
        "RFC 7208 4.6.4",
    ),
    _entry(
        "spf.redirect-ignored", "record", "low",
        "'redirect=' is ignored because the record has 'all'",
        "A redirect modifier only applies when no mechanism matches, and "
        "'all' always matches; the redirect is dead text.",
        "Remove either the redirect or the 'all', whichever was not "
        "meant.",
        "RFC 7208 6.1",
    ),
    _entry(
        "spf.terms-after-all", "record", "low",
        "Mechanisms after 'all' are never evaluated",
        "Mechanisms are tested left to right and 'all' always matches, so "
        "whatever follows it never applies; it is often a term that was "
        "meant to authorise a sender.",
        "Move the terms in front of 'all' or delete them.",
        "RFC 7208 5.1",
    ),
    _entry(
        "spf.pass-all", "policy", "critical",
        "The record authorises every host on the Internet",
        "'+all' (or 'all' without a qualifier, or a range covering every "
        "address) gives 'pass' to any sender, so anyone can send mail "
        "that passes SPF as the domain.",
        "Replace it with '~all' or '-all' once every legitimate sender is "
        "listed.",
        "RFC 7208 5.1",
    ),
    _entry(
        "spf.neutral-all", "policy", "medium",
        "'?all': unlisted senders get 'neutral'",
        "A 'neutral' result asserts nothing; receivers treat it like "
        "'none' (RFC 7208 8.2), so forged mail is not told apart.",
        "Use '~all' (softfail) or '-all' (fail) once every legitimate "
        "sender is listed.",
        "RFC 7208 8.2",
    ),
    _entry(
        "spf.no-all", "policy", "medium",
        "No 'all' and no 'redirect=': unlisted senders get 'neutral'",
        "When no mechanism matches and there is no redirect the result is "
        "'neutral' by default, which asserts nothing about other senders.",
        "End the record with '~all' or '-all'.",
        "RFC 7208 4.7",
    ),
    _entry(
        "spf.ptr", "policy", "low",
        "'ptr' is used",
        "The ptr mechanism is slow, unreliable and puts load on the "
        "reverse DNS of others; RFC 7208 5.5 says it should not be "
        "published, and some receivers ignore it.",
        "Replace it with ip4:/ip6: terms for the hosts it was meant to "
        "cover.",
        "RFC 7208 5.5",
    ),
    _entry(
        "spf.spf-rr-type", "policy", "low",
        "An SPF record of DNS type SPF (99) is published",
        "RFC 7208 3.1 requires SPF records to be published as TXT only; "
        "type 99 was retired (RFC 7208 14.1) and receivers no longer read "
        "it. A stale copy confuses whoever maintains the zone.",
        "Delete the record of type SPF; keep the TXT record.",
        "RFC 7208 3.1",
    ),
    _entry(
        "spf.txt-over-512", "size", "low",
        "The TXT answer is over 512 bytes",
        "A DNS answer over 512 bytes does not fit a UDP reply without "
        "EDNS, so such receivers must retry over TCP; a few fail and get "
        "'temperror'. All TXT records at the name count, not only SPF.",
        "Shorten the record (merge ip4: ranges, drop unused includes) or "
        "remove stale TXT records at the same name.",
        "RFC 7208 3.4",
    ),
    _entry(
        "spf.record-over-255", "size", "info",
        "The record is longer than 255 bytes",
        "One DNS character-string holds at most 255 bytes (RFC 1035 "
        "3.3), so a longer record is published as several strings that "
        "receivers join with nothing in between (RFC 7208 3.3). Pasting "
        "it into a DNS console as one string fails or is cut on some "
        "consoles.",
        "When editing it, paste the quoted strings the kit shows; keep "
        "each space inside a string.",
        "RFC 7208 3.3",
    ),
    _entry(
        "dns.timeout", "dns", "medium",
        "DNS lookups timed out",
        "No answer came back in time. check_host() returns 'temperror' "
        "for what depends on it: nothing is known about the record from "
        "this run. Receivers that meet the same timeout defer the mail.",
        "Run the audit again; if it persists, check the domain's "
        "nameservers (and the resolver used for the audit).",
        "RFC 7208 2.6.6",
    ),
    _entry(
        "dns.servfail", "dns", "high",
        "DNS lookups failed (SERVFAIL)",
        "The resolver could not get an answer from the domain's "
        "nameservers (a broken delegation, a DNSSEC failure, servers "
        "down). check_host() returns 'temperror'; receivers defer mail.",
        "Check the domain's delegation, DNSSEC and nameservers; run the "
        "audit again.",
        "RFC 7208 2.6.6",
    ),
    _entry(
        "dns.error", "dns", "medium",
        "DNS lookups were refused or failed",
        "A server refused the question or the query failed locally, so "
        "nothing is known about the answer.",
        "Check the resolver used for the audit (--nameserver) and run it "
        "again.",
        "RFC 7208 2.6.6",
    ),
    _entry(
        "dmarc.missing", "context", "medium",
        "No DMARC record",
        "Without a DMARC record at _dmarc.<domain> receivers apply their "
        "own rules; SPF and DKIM results are not tied to the From domain "
        "and forged mail is not reported.",
        "Publish 'v=DMARC1; p=none; rua=mailto:...' to start collecting "
        "reports, then move to quarantine or reject.",
        "RFC 7489 6.1",
    ),
    _entry(
        "dmarc.invalid", "context", "medium",
        "The DMARC record cannot be used",
        "A DMARC record that does not parse, or more than one, is "
        "ignored: receivers act as if there were none.",
        "Publish exactly one record starting 'v=DMARC1;' with a valid "
        "'p=' tag.",
        "RFC 7489 6.6.3",
    ),
    _entry(
        "dmarc.monitor-only", "context", "info",
        "DMARC policy p=none (monitoring only)",
        "With p=none receivers deliver mail that fails DMARC, so a "
        "missing CXone authorisation goes unnoticed until the policy is "
        "tightened.",
        "Fix SPF for CXone before moving to p=quarantine or p=reject.",
        "RFC 7489 6.3",
    ),
    _entry(
        "ses.not-seen", "context", "low",
        "Stated as SES-verified, but no SES verification is visible",
        "The input says the domain is verified in Amazon SES, yet DNS "
        "shows neither an _amazonses TXT token nor an SES MAIL FROM. "
        "Easy DKIM tokens cannot be listed from DNS, so this may still be "
        "right.",
        "Confirm the SES verification in the AWS console; if it is not "
        "verified, CXone sends from its SPF IPs and they must be "
        "authorised.",
    ),
    _entry(
        "mx.allowlist", "context", "info",
        "Allow CXone system e-mail at the domain's mail servers",
        "CXone system e-mail (password resets, chat transcripts, reports) "
        "comes from the region's allowlist IPs; a mail server or filter "
        "in front of it that does not accept them may drop that mail.",
        "Add the region's allowlist IPs to the allowlist of the mail "
        "servers named by the MX records (or of the filtering service in "
        "front of them).",
    ),
    _entry(
        "allowlist.missing", "allowlist", "medium",
        "The mail server's allowlist lacks CXone allowlist IPs",
        "CXone system e-mail (password resets, chat transcripts, reports) "
        "comes from the region's allowlist IPs. The current allowlist "
        "given for the domain accepts neither these addresses nor a "
        "network holding them, so a mail server or filter that lets only "
        "listed senders through may drop or quarantine that mail. A line "
        "that refuses an IP before any line accepts it counts as missing: "
        "the first matching line decides, as in a Postfix cidr: table.",
        "Add the IPs named in the detail at the mail servers named by the "
        "MX records (or the filtering service in front of them); "
        "'cxone-audit allowlist --current FILE' writes them as a list, a "
        "Postfix table or an Exchange Online command. Remove, or move "
        "below the additions, any line named as refusing them.",
    ),
    _entry(
        "allowlist.other-region", "allowlist", "low",
        "The allowlist holds CXone IPs of other regions",
        "Entries of the current allowlist hold CXone allowlist IPs of a "
        "region other than the domain's: a tenant that moved, or IPs "
        "copied from the wrong table. They do nothing for the domain's own "
        "region and let in mail it does not expect from CXone.",
        "Check the domain's CXone region; if it is right, remove these "
        "entries unless another tenant needs them.",
    ),
    _entry(
        "allowlist.unreadable", "allowlist", "low",
        "The allowlist file given for the domain could not be read",
        "A file holding the mail server's current allowlist was named for "
        "the domain, but it could not be opened or read, so nothing was "
        "compared with the region's allowlist IPs. The SPF audit of the "
        "domain does not depend on it.",
        "Correct the path (a relative path in the spreadsheet's allowlist "
        "column is read from the spreadsheet's folder) or export the "
        "allowlist again as a text or CSV file, then run the audit again.",
    ),
])


@dataclass(frozen=True)
class Finding:
    """One finding for one domain.

    Attributes
    ----------
    code
        A key of :data:`CATALOGUE`.
    detail
        One sentence about this domain: which IPs, which term, how many.
    data
        The facts behind the detail, JSON-ready.
    severity
        The severity that applies here; the catalogue's default when
        empty.
    """

    code: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)
    severity: str = ""

    def __post_init__(self) -> None:
        if self.code not in CATALOGUE:
            raise ValueError(f"unknown finding code {self.code!r}")
        if self.severity and self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def entry(self) -> FindingType:
        """The catalogue entry of this finding."""
        return CATALOGUE[self.code]

    @property
    def level(self) -> str:
        """The severity in force: this finding's, else the catalogue's."""
        return self.severity or self.entry.severity

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: catalogue text and this domain's detail."""
        entry = self.entry
        return {
            "code": self.code,
            "severity": self.level,
            "family": entry.family,
            "title": entry.title,
            "detail": self.detail,
            "explanation": entry.explanation,
            "action": entry.action,
            "rfc": entry.rfc,
            "data": dict(self.data),
        }


@dataclass(frozen=True)
class DomainFacts:
    """What an audit learnt about one domain, as the findings read it.

    Attributes
    ----------
    domain, region
        The domain audited and its CXone region.
    txt
        The TXT answer at the domain.
    verdicts
        ``check_host()`` for each SPF IP of the region.
    walk
        The whole-record walk (lookup counts and trace); ``None`` when the
        TXT lookup failed.
    spf_rr
        The answer to a question of type SPF (99), if asked.
    other_regions
        ``check_host()`` for the SPF IPs of each other region, by code.
    troubles
        Every DNS answer of the audit with a temporary failure.
    dmarc, mx, ses
        The context checks' JSON forms, when they ran.
    allowlist
        The ``allowlist`` section of the result (see
        :func:`~.allowlist.allowlist_section`), when an allowlist was
        given.
    """

    domain: str
    region: Region
    txt: Answer
    verdicts: tuple[IpVerdict, ...]
    walk: RecordCheck | None = None
    spf_rr: Answer | None = None
    other_regions: Mapping[str, tuple[IpVerdict, ...]] = field(
        default_factory=dict
    )
    troubles: tuple[Answer, ...] = ()
    dmarc: Mapping[str, Any] | None = None
    mx: Mapping[str, Any] | None = None
    ses: Mapping[str, Any] | None = None
    allowlist: Mapping[str, Any] | None = None

    @property
    def records(self) -> list[str]:
        """The SPF records at the domain (RFC 7208 4.5)."""
        return spf_records(self.txt)

    @property
    def record(self) -> str | None:
        """The one SPF record, or ``None`` when there is not exactly one."""
        records = self.records
        return records[0] if len(records) == 1 else None

    @property
    def strings(self) -> tuple[str, ...]:
        """The character-strings of the one SPF record, as published."""
        for text, parts in zip(self.txt.records, self.txt.strings,
                               strict=False):
            if text == self.record:
                return parts
        return ()

    @property
    def dmarc_policy(self) -> str | None:
        """The DMARC policy receivers apply, if one applies.

        ``none``, ``quarantine`` or ``reject``; ``None`` when no DMARC
        applies or the lookup failed.
        """
        policy = (self.dmarc or {}).get("applied_policy")
        return str(policy) if policy else None

    @property
    def ses_verified(self) -> bool:
        """True when the domain is verified in Amazon SES (stated or seen)."""
        return bool((self.ses or {}).get("verified"))

    @property
    def events(self) -> tuple[dict[str, Any], ...]:
        """The walk's trace events (empty without a walk)."""
        return self.walk.events if self.walk is not None else ()

    @property
    def failing(self) -> list[IpVerdict]:
        """The region's SPF IPs that do not get ``pass``."""
        return [v for v in self.verdicts if v.result != "pass"]


# ---------------------------------------------------------------------------
# Syntax errors


@dataclass(frozen=True)
class SyntaxProblem:
    """Where a record stops following the RFC 7208 grammar.

    Attributes
    ----------
    message
        spftrace's parser error text.
    term
        The offending term (``"v=spf1"`` for a bad version).
    position
        1-based position of the term among the record's terms (the
        version is 0).
    offset
        0-based character offset of the term in the record text.
    """

    message: str
    term: str
    position: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"message": self.message, "term": self.term,
                "position": self.position, "offset": self.offset}


def _parse_error(text: str) -> str | None:
    try:
        spftrace.parse(text)
    except spftrace.SpfPermError as exc:
        return str(exc)
    return None


def _terms_with_offsets(text: str) -> list[tuple[int, str]]:
    # RFC 7208 12: terms are separated by one or more spaces (SP only).
    found, offset = [], 0
    for piece in text.split(" "):
        if piece:
            found.append((offset, piece))
        offset += len(piece) + 1
    return found


def find_syntax_error(text: str) -> SyntaxProblem | None:
    """Locate the first term of ``text`` that spftrace's parser rejects.

    The whole record is parsed first; when it fails, ever longer prefixes
    of its terms are parsed until one fails, which names the culprit (a
    duplicate ``redirect=`` is found at its second occurrence).

    Returns
    -------
    SyntaxProblem or None
        ``None`` when the record parses.
    """
    message = _parse_error(text)
    if message is None:
        return None

    terms = _terms_with_offsets(text)
    if not terms or _parse_error(terms[0][1]) is not None:
        word = terms[0][1] if terms else text
        return SyntaxProblem(message, word, 0, terms[0][0] if terms else 0)

    for position in range(1, len(terms)):
        prefix = " ".join(["v=spf1"] + [t for _, t in terms[1:position + 1]])
        error = _parse_error(prefix)
        if error is not None:
            offset, term = terms[position]
            return SyntaxProblem(error, term, position, offset)
    offset, term = terms[-1]
    return SyntaxProblem(message, term, len(terms) - 1, offset)


def _glued_strings(
    problem: SyntaxProblem, strings: Sequence[str]
) -> int | None:
    """The 1-based string whose end falls inside the bad term, if any.

    Only when splitting the term there gives two terms that parse: then a
    space is missing where the strings join.
    """
    end = 0
    for number, part in enumerate(strings[:-1], start=1):
        end += len(part)
        inside = end - problem.offset
        if 0 < inside < len(problem.term):
            left, right = problem.term[:inside], problem.term[inside:]
            if _parse_error(f"v=spf1 {left} {right}") is None:
                return number
    return None


# ---------------------------------------------------------------------------
# The lookup cost tree, from the walk's trace


@dataclass
class _Node:
    term: str
    record: str
    target: str | None = None
    children: list[_Node] = field(default_factory=list)

    @property
    def cost(self) -> int:
        return 1 + sum(child.cost for child in self.children)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"term": self.term, "in": self.record,
                                "cost": self.cost}
        if self.target is not None:
            data["target"] = self.target
        if self.children:
            data["children"] = [c.to_dict() for c in self.children]
        return data


def lookup_tree(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The DNS-querying terms of a record walk, nested by include/redirect.

    Each node is ``{"term", "in", "cost", "target"?, "children"?}`` where
    ``cost`` counts the term itself and everything under it (RFC 7208
    4.6.4 counts include, a, mx, ptr, exists and redirect), so the costs
    of the top level add up to the walk's total.
    """
    root = _Node("", "")
    stack, domains = [root], [""]
    last: _Node | None = None
    redirect_arg = ""

    for event in events:
        kind = event["kind"]
        if kind == "check_start":
            domains[-1] = event["domain"]
        elif kind == "mech_start" and event["mechanism"] in _DNS_MECHANISMS:
            last = _Node(event["raw"], domains[-1])
            stack[-1].children.append(last)
        elif kind == "macro_expand" and event.get("mechanism") == "redirect":
            redirect_arg = event.get("before") or ""
        elif kind == "recurse_in":
            stack.append(_entered(event, stack[-1], last, domains[-1],
                                  redirect_arg))
            domains.append(event["domain"])
        elif kind == "recurse_out" and len(stack) > 1:
            stack.pop()
            domains.pop()
    return [child.to_dict() for child in root.children]


def _entered(
    event: Mapping[str, Any], frame: _Node, last: _Node | None,
    record: str, redirect_arg: str,
) -> _Node:
    # RFC 7208 6.1: redirect= is a DNS-querying term without a mech_start.
    if event["via"] == "include" and last is not None:
        last.target = event["domain"]
        return last
    node = _Node(f"redirect={redirect_arg or event['domain']}", record,
                 target=event["domain"])
    frame.children.append(node)
    return node


# ---------------------------------------------------------------------------
# Gathering the extra facts


def _ruled_out(ips: Sequence[str], walk: RecordCheck | None) -> bool:
    """True when the record walk shows that none of ``ips`` can pass.

    RFC 7208 5: an address is matched by an ``ip4`` range, by the DNS
    mechanisms ``a``, ``mx``, ``ptr`` and ``exists``, or by ``all``. The walk
    evaluated an address that no term lists, so it met every term of the
    tree, and its result is what the ``all`` terms give. Without DNS
    mechanisms and with no ``ip4`` range holding one of ``ips``, those
    addresses get the walk's result, which is not ``pass``.
    """
    if walk is None or walk.result == "pass":
        return False

    networks = []
    for event in walk.events:
        if event["kind"] != "mech_start":
            continue
        if event["mechanism"] in ("a", "mx", "ptr", "exists"):
            return False
        if event["mechanism"] == "ip4":
            prefix = event["cidr4"] if event["cidr4"] is not None else 32
            networks.append(ipaddress.ip_network(
                f"{event['arg']}/{prefix}", strict=False))

    listed = [ipaddress.ip_address(ip) for ip in (*ips, PROBE_IP)]
    return not any(ip in net for ip in listed for net in networks)


async def other_region_verdicts(
    evaluator: SpfEvaluator,
    domain: str,
    region: Region,
    walk: RecordCheck | None = None,
) -> dict[str, tuple[IpVerdict, ...]]:
    """``check_host()`` for the SPF IPs of every region but ``region``.

    A region's IPs are evaluated in order until one does not pass: that
    region is then not the one authorised, and the rest are not needed. A
    region whose IPs the record walk rules out (:func:`_ruled_out`) is not
    evaluated at all.
    """
    found: dict[str, tuple[IpVerdict, ...]] = {}
    for code in REGION_CODES:
        if code == region.code or _ruled_out(spf_ips(code), walk):
            continue
        verdicts: list[IpVerdict] = []
        for ip in spf_ips(code):
            verdicts.append(await evaluator.check_host(ip, domain))
            if verdicts[-1].result != "pass":
                break
        found[code] = tuple(verdicts)
    return found


async def gather_facts(
    domain: str,
    region: Region,
    resolver: Resolver,
    evaluator: SpfEvaluator,
    txt: Answer,
    verdicts: Sequence[IpVerdict],
    walk: RecordCheck | None,
    context: Mapping[str, Mapping[str, Any]] | None = None,
) -> DomainFacts:
    """Ask the questions the catalogue needs beyond the audit's own.

    Parameters
    ----------
    domain, region
        The domain and its CXone region.
    resolver
        Used for the SPF RR type question (RFC 7208 3.1); pass the audit's
        recording resolver so the answer is kept as evidence.
    evaluator
        Evaluates the other regions' SPF IPs when some of the region's do
        not pass (a likely wrong region).
    txt, verdicts, walk
        What the audit already has.
    context
        ``{"dmarc": ..., "mx": ..., "ses": ...}``, the JSON forms of the
        context checks, and ``"allowlist"`` when an allowlist was given.
    """
    context = context or {}
    others: dict[str, tuple[IpVerdict, ...]] = {}
    spf_rr = None
    if not txt.temporary:
        spf_rr = await resolver.query(domain, "SPF")
        # A record that cannot be evaluated authorises no region reliably.
        usable = walk is not None and walk.result not in ("permerror",
                                                          "temperror")
        if usable and any(v.result != "pass" for v in verdicts):
            others = await other_region_verdicts(evaluator, domain, region,
                                                 walk)

    return DomainFacts(
        domain=domain, region=region, txt=txt, verdicts=tuple(verdicts),
        walk=walk, spf_rr=spf_rr, other_regions=others,
        dmarc=context.get("dmarc"), mx=context.get("mx"),
        ses=context.get("ses"), allowlist=context.get("allowlist"),
    )


# ---------------------------------------------------------------------------
# The checks


def diagnose(facts: DomainFacts) -> list[Finding]:
    """Every finding for one domain, most severe first.

    When the domain's own TXT lookup failed, nothing is known about its
    record: only DNS trouble and the context checks are reported. When the
    domain does not exist, that is the one thing to fix: advice to publish
    SPF or DMARC records at it would send the reader the wrong way.
    """
    checks = [_dns_trouble, _context_findings, _allowlist_findings]
    if facts.txt.rcode == "NXDOMAIN":
        checks = [_record_findings, _dns_trouble]
    elif not facts.txt.temporary:
        checks = [_record_findings, _cxone_findings, _policy_findings,
                  _size_findings] + checks

    findings = [f for check in checks for f in check(facts)]
    order = {code: n for n, code in enumerate(CATALOGUE)}
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.level),
                                           order[f.code]))


# -- record health ----------------------------------------------------------


def _record_findings(facts: DomainFacts) -> list[Finding]:
    records = facts.records
    if not records:
        return [_no_record(facts)]
    if len(records) > 1:
        return [Finding(
            "spf.multiple-records",
            f"{len(records)} TXT records at {facts.domain} start with "
            "v=spf1",
            {"domain": facts.domain, "records": records},
        )]
    return (_syntax_findings(facts) + _target_findings(facts)
            + _limit_findings(facts) + _order_findings(facts))


def _no_record(facts: DomainFacts) -> Finding:
    if facts.txt.rcode == "NXDOMAIN":
        return Finding("spf.domain-missing",
                       f"{facts.domain} does not exist (NXDOMAIN)",
                       {"domain": facts.domain})

    # Near misses: text that was meant as SPF but is not 'v=spf1 ...'.
    near = [t for t in facts.txt.records if "spf" in t.lower()[:12]]
    detail = f"no TXT record at {facts.domain} starts with 'v=spf1'"
    if near:
        detail += f"; {len(near)} TXT record(s) look like a mistyped one"
    return Finding("spf.no-record", detail,
                   {"domain": facts.domain, "near_misses": near})


def _parse_errors(facts: DomainFacts) -> list[tuple[str, str]]:
    """``(domain, record)`` of every record the walk could not parse."""
    found, domain = [], facts.domain
    for event in facts.events:
        if event["kind"] == "check_start":
            domain = event["domain"]
        elif event["kind"] == "parse_error":
            found.append((domain, event["policy"]))
    if not found and facts.record is not None:
        if find_syntax_error(facts.record) is not None:
            found.append((facts.domain, facts.record))
    return found


def _syntax_findings(facts: DomainFacts) -> list[Finding]:
    findings = []
    for domain, text in _parse_errors(facts):
        problem = find_syntax_error(text)
        if problem is None:
            continue
        data = {"domain": domain, "record": text, **problem.to_dict()}
        detail = (f"term {problem.position} {problem.term!r} of the record "
                  f"at {domain}: {problem.message}")
        glued = (_glued_strings(problem, facts.strings)
                 if domain == facts.domain else None)
        if glued is not None:
            data["string_without_trailing_space"] = glued
            detail += (f" (string {glued} ends inside this term: a space is "
                       "missing where the strings join, RFC 7208 3.3)")
        findings.append(Finding("spf.syntax-error", detail, data))
    return findings


def _target_findings(facts: DomainFacts) -> list[Finding]:
    # RFC 7208 5.2 and 6.1: an include or redirect target that returns
    # 'none' is a permerror.
    findings = []
    holders, terms = {0: facts.domain}, {0: ""}
    for event in facts.events:
        kind, depth = event["kind"], event["depth"]
        if kind == "check_start":
            holders[depth] = event["domain"]
        elif kind == "mech_start":
            terms[depth] = event["raw"]
        elif kind == "recurse_out" and event.get("result") == "none":
            findings.append(_missing_target(
                event, holders.get(depth, facts.domain), terms.get(depth)))
    return findings


def _missing_target(
    event: Mapping[str, Any], holder: str, include: str | None
) -> Finding:
    via, target = event["via"], event["domain"]
    term = (include if via == "include" and include
            else f"{via}{':' if via == 'include' else '='}{target}")
    return Finding(
        "spf.include-target-missing",
        f"{term} in the record at {holder} points to {target}, which has "
        "no SPF record",
        {"via": via, "target": target, "term": term, "in": holder},
    )


def _limit_findings(facts: DomainFacts) -> list[Finding]:
    walk = facts.walk
    if walk is None:
        return []
    findings = []

    # RFC 7208 4.6.4: at most 10 DNS-querying terms in the whole tree.
    if walk.dns_lookups > MAX_DNS_TERMS:
        tree = lookup_tree(walk.events)
        costs = ", ".join(f"{n['term']} {n['cost']}" for n in tree)
        findings.append(Finding(
            "spf.too-many-lookups",
            f"{walk.dns_lookups} DNS-querying terms (limit "
            f"{MAX_DNS_TERMS}): {costs}",
            {"total": walk.dns_lookups, "limit": MAX_DNS_TERMS,
             "tree": tree, "complete": _walk_complete(walk)},
        ))

    # RFC 7208 4.6.4: at most 2 void lookups.
    if walk.void_lookups > MAX_VOID_LOOKUPS:
        voids = [{"name": e["name"], "term": e.get("term")}
                 for e in walk.events if e["kind"] == "void_lookup"]
        listed = ", ".join(f"{v['name']} ({v['term']})" for v in voids)
        findings.append(Finding(
            "spf.too-many-void-lookups",
            f"{walk.void_lookups} void lookups (limit {MAX_VOID_LOOKUPS}): "
            f"{listed}",
            {"total": walk.void_lookups, "limit": MAX_VOID_LOOKUPS,
             "lookups": voids},
        ))
    return findings


def _walk_complete(walk: RecordCheck) -> bool:
    """False when the walk stopped on an error other than the limits."""
    return not any(e["kind"] in ("exit", "parse_error") for e in walk.events)


def _terms(record: str) -> list[spftrace.Term]:
    try:
        return spftrace.parse(record).terms
    except spftrace.SpfPermError:
        return []


def _order_findings(facts: DomainFacts) -> list[Finding]:
    terms = _terms(facts.record or "")
    alls = [t for t in terms if t.is_mechanism and t.name == "all"]
    if not alls:
        return []
    first = terms.index(alls[0])
    findings = []

    # RFC 7208 6.1: redirect applies only when no mechanism matched.
    if any(not t.is_mechanism and t.name == "redirect" for t in terms):
        redirect = next(t.raw for t in terms if t.name == "redirect")
        findings.append(Finding(
            "spf.redirect-ignored",
            f"{redirect} is never used: {alls[0].raw} always matches first",
            {"redirect": redirect, "all": alls[0].raw},
        ))

    # RFC 7208 5.1: mechanisms after 'all' will never be tested.
    after = [t.raw for t in terms[first + 1:] if t.is_mechanism]
    if after:
        findings.append(Finding(
            "spf.terms-after-all",
            f"never evaluated after {alls[0].raw}: {' '.join(after)}",
            {"all": alls[0].raw, "terms": after},
        ))
    return findings


# -- policy -----------------------------------------------------------------


def _policy_findings(facts: DomainFacts) -> list[Finding]:
    findings = _catch_all(facts) + _ptr_findings(facts)
    rr = facts.spf_rr
    if rr is not None and rr.records:
        findings.append(Finding(
            "spf.spf-rr-type",
            f"{facts.domain} has {len(rr.records)} record(s) of type SPF",
            {"records": list(rr.records),
             "same_as_txt": list(rr.records) == facts.records},
        ))
    return findings


def _catch_all(facts: DomainFacts) -> list[Finding]:
    """What the record gives an address it does not list (the probe)."""
    walk = facts.walk
    if walk is None or facts.record is None:
        return []
    probe = verdict_from_trace(PROBE_IP, walk.result, walk.events)
    where = {"matched": probe.matched, "in": probe.matched_in,
             "path": list(probe.path)}

    if probe.result == "pass":
        return [Finding(
            "spf.pass-all",
            f"an address listed nowhere ({PROBE_IP}) gets pass: "
            f"{probe.explain()}", where)]
    if probe.result != "neutral":
        return []
    if probe.matched is None:
        return [Finding(
            "spf.no-all",
            "no 'all' on the evaluation path: unlisted senders get "
            "neutral by default", where)]
    return [Finding(
        "spf.neutral-all",
        f"unlisted senders get neutral: {probe.explain()}", where)]


def _ptr_findings(facts: DomainFacts) -> list[Finding]:
    # RFC 7208 5.5: ptr should not be published; look through the tree.
    found, domain = [], facts.domain
    for event in facts.events:
        if event["kind"] == "check_start":
            domain = event["domain"]
        elif event["kind"] == "mech_start" and event["mechanism"] == "ptr":
            found.append({"term": event["raw"], "in": domain})
    if not found and facts.record is not None:
        found = [{"term": t.raw, "in": facts.domain}
                 for t in _terms(facts.record) if t.name == "ptr"]
    if not found:
        return []
    listed = ", ".join(f"{p['term']} in {p['in']}" for p in found)
    return [Finding("spf.ptr", f"ptr used: {listed}", {"terms": found})]


# -- size -------------------------------------------------------------------


def _size_findings(facts: DomainFacts) -> list[Finding]:
    findings = []
    txt = facts.txt

    # RFC 7208 3.4: an answer over 512 octets needs TCP without EDNS.
    if txt.size > UDP_LIMIT and facts.records:
        findings.append(Finding(
            "spf.txt-over-512",
            f"the TXT answer for {facts.domain} is {txt.size} bytes "
            f"({len(txt.records)} TXT record(s))",
            {"size": txt.size, "limit": UDP_LIMIT,
             "txt_records": len(txt.records)},
        ))

    # RFC 7208 3.3 and RFC 1035 3.3: over 255 bytes means several strings.
    record = facts.record
    if record is not None and len(record.encode()) > STRING_LIMIT:
        findings.append(Finding(
            "spf.record-over-255",
            f"the record is {len(record.encode())} bytes, published as "
            f"{len(facts.strings)} string(s)",
            {"length": len(record.encode()), "strings": list(facts.strings)},
        ))
    return findings


# -- DNS trouble ------------------------------------------------------------


_TROUBLE_CODES = {"TIMEOUT": "dns.timeout", "SERVFAIL": "dns.servfail"}


def _dns_trouble(facts: DomainFacts) -> list[Finding]:
    by_code: dict[str, list[Answer]] = {}
    for answer in facts.troubles:
        code = _TROUBLE_CODES.get(answer.rcode, "dns.error")
        by_code.setdefault(code, []).append(answer)

    findings = []
    for code, answers in by_code.items():
        asked = [f"{a.name} {a.rtype}" for a in answers]
        findings.append(Finding(
            code,
            f"no usable answer for {', '.join(asked)}",
            {"questions": [a.to_dict() for a in answers],
             "spf_known": not facts.txt.temporary},
            severity="high" if facts.txt.temporary else "",
        ))
    return findings


# -- CXone ------------------------------------------------------------------


def _cxone_findings(facts: DomainFacts) -> list[Finding]:
    failing = [v for v in facts.failing if v.result != "temperror"]
    if not failing:
        return []
    severity, why = _missing_severity(facts, failing)
    listed = ", ".join(f"{v.ip} ({v.result})" for v in failing)
    missing = Finding(
        "spf.cxone-ips-missing",
        f"{len(failing)} of {len(facts.verdicts)} {facts.region.code} SPF "
        f"IPs do not pass: {listed}; {why}",
        {"region": facts.region.code,
         "ips": [v.to_dict() | {"why": v.explain()} for v in failing],
         "severity_reason": why},
        severity=severity,
    )
    return [missing] + _other_region(facts)


def _missing_severity(
    facts: DomainFacts, failing: Sequence[IpVerdict]
) -> tuple[str, str]:
    """The severity of missing CXone IPs, and why, from the context."""
    # CXONE.md: an SES-verified domain sends ACD e-mail through SES.
    if facts.ses_verified:
        how = "stated" if (facts.ses or {}).get("source") == "stated" else (
            "shown by DNS")
        return "info", (f"the domain is verified in Amazon SES ({how}), so "
                        "CXone sends its ACD e-mail through SES and these "
                        "IPs are not used for it")
    policy = facts.dmarc_policy
    if policy == "reject":
        return "critical", "DMARC p=reject: receivers reject such mail"
    if policy == "quarantine":
        return "high", "DMARC p=quarantine: such mail goes to spam"
    hard = any(v.result in ("fail", "permerror") for v in failing)
    if policy == "none":
        return ("high" if hard else "medium"), (
            "DMARC p=none: delivered unless the receiver acts on the SPF "
            "result alone")
    return "high", ("no usable DMARC policy: receivers act on the SPF "
                    "result alone (RFC 7208 8.4 allows rejecting a fail)")


def _other_region(facts: DomainFacts) -> list[Finding]:
    passing = [
        code for code, verdicts in facts.other_regions.items()
        if len(verdicts) == len(spf_ips(code))
        and all(v.result == "pass" for v in verdicts)
    ]
    if not passing:
        return []
    return [Finding(
        "spf.other-region-authorised",
        f"every SPF IP of {', '.join(passing)} passes, but not all of "
        f"{facts.region.code}: is the region right?",
        {"region": facts.region.code, "authorised_regions": passing},
    )]


# -- context ----------------------------------------------------------------


def _context_findings(facts: DomainFacts) -> list[Finding]:
    return _dmarc_findings(facts) + _ses_findings(facts) + _mx_findings(facts)


def _dmarc_findings(facts: DomainFacts) -> list[Finding]:
    dmarc = facts.dmarc
    if not dmarc or dmarc.get("status") == "dns-error":
        return []
    status = dmarc.get("status")
    name = f"_dmarc.{dmarc.get('found_at') or facts.domain}"
    problems = list(dmarc.get("problems") or [])

    if status == "none":
        asked = " and ".join(dmarc.get("queried") or [name])
        return [Finding("dmarc.missing", f"no DMARC record at {asked}",
                        {"queried": list(dmarc.get("queried") or [])})]
    if status == "invalid":
        return [Finding(
            "dmarc.invalid", f"{name}: {'; '.join(problems) or 'unusable'}",
            {"name": name, "records": list(dmarc.get("records") or []),
             "problems": problems,
             "applied_policy": dmarc.get("applied_policy")},
        )]
    if facts.dmarc_policy == "none":
        return [Finding("dmarc.monitor-only", f"{name} applies p=none",
                        {"name": name, "record": dmarc.get("record")})]
    return []


def _ses_findings(facts: DomainFacts) -> list[Finding]:
    ses = facts.ses or {}
    # The user says verified; DNS shows no sign (and no lookup failed).
    if ses.get("source") != "stated" or not ses.get("verified"):
        return []
    if ses.get("dns_signs") is not False:
        return []
    return [Finding(
        "ses.not-seen",
        f"stated as SES-verified ({ses.get('stated')!r}), but no "
        f"_amazonses TXT token is published for {facts.domain}",
        {"stated": ses.get("stated"), "evidence": ses.get("evidence", [])},
    )]


def _mail_hosts(facts: DomainFacts) -> tuple[list[str], str, str] | None:
    """The MX hosts, their service and its allowlist hint, if any MX."""
    mx = facts.mx or {}
    if mx.get("status") != "found":
        return None
    hosts = [host for _, host in mx.get("hosts") or []]
    return hosts, mx.get("service") or "unknown", mx.get("allowlist_hint", "")


def _mx_findings(facts: DomainFacts) -> list[Finding]:
    mail = _mail_hosts(facts)
    # When the domain's current allowlist was compared, allowlist.missing
    # names exactly the IPs to add (and the MX hosts to add them at), or
    # nothing is missing; the generic advice to add every allowlist IP of
    # the region would then ask for IPs the allowlist already accepts.
    if mail is None or _allowlist_compared(facts):
        return []
    hosts, service, hint = mail
    ips = list(allowlist_ips(facts.region))
    return [Finding(
        "mx.allowlist",
        f"mail for {facts.domain} goes to {', '.join(hosts)} ({service}); "
        f"allow {facts.region.code} system e-mail from {', '.join(ips)}",
        {"mx": hosts, "service": service, "region": facts.region.code,
         "allowlist_ips": ips, "hint": hint},
    )]


# -- allowlist --------------------------------------------------------------


def _allowlist_compared(facts: DomainFacts) -> bool:
    """True when a current allowlist was read and compared."""
    section = facts.allowlist
    return section is not None and "error" not in section


def _allowlist_findings(facts: DomainFacts) -> list[Finding]:
    section = facts.allowlist
    if not section:
        return []
    if "error" in section:
        return [Finding(
            "allowlist.unreadable", str(section["error"]),
            {"file": section.get("file"), "error": section["error"]},
        )]
    return _allowlist_missing(facts, section) + _allowlist_others(section)


def _allowlist_missing(
    facts: DomainFacts, section: Mapping[str, Any]
) -> list[Finding]:
    missing = list(section.get("missing") or [])
    if not missing:
        return []
    refused = {c["ip"]: c["refused_by"] for c in section.get("ips") or []
               if c.get("refused_by")}
    detail = (f"{len(missing)} of {len(section.get('ips') or [])} "
              f"{facts.region.code} allowlist IPs are not accepted by "
              f"{_source(section)}: {', '.join(missing)}")
    detail += "".join(f"; {ip} is refused first by {line!r}"
                      for ip, line in refused.items())
    data: dict[str, Any] = {"file": section.get("file"),
                            "region": facts.region.code, "missing": missing,
                            "refused_by": refused}

    mail = _mail_hosts(facts)
    if mail is not None:
        hosts, service, hint = mail
        detail += (f"; mail for {facts.domain} goes to {', '.join(hosts)} "
                   f"({service})")
        data |= {"mx": hosts, "service": service, "hint": hint}
    return [Finding("allowlist.missing", detail, data)]


def _allowlist_others(section: Mapping[str, Any]) -> list[Finding]:
    others = list(section.get("other_region") or [])
    if not others:
        return []
    listed = "; ".join(f"{o['entry']!r} holds {'/'.join(o['regions'])} IPs"
                       for o in others)
    return [Finding(
        "allowlist.other-region",
        f"CXone allowlist IPs of other regions in {_source(section)}: "
        f"{listed}",
        {"file": section.get("file"), "entries": others},
    )]


def _source(section: Mapping[str, Any]) -> str:
    file = section.get("file")
    return str(file) if file else "the current allowlist"
