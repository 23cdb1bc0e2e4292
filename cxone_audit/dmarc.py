"""DMARC: find the policy that applies to a domain and say what it means.

:func:`lookup_dmarc` follows RFC 7489 6.6.3: ask for TXT at
``_dmarc.<domain>``; when that holds no DMARC record, ask at
``_dmarc.<organisational domain>``, the domain one label below its public
suffix (RFC 7489 3.2, with the Public Suffix List bundled in the
``publicsuffixlist`` package; nothing is downloaded). :func:`parse_dmarc`
reads one record's tags (RFC 7489 6.3 and 6.4) without any DNS.

A DNS failure is never taken for "no record": it gives the status
``dns-error`` and the lookup stops there.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from publicsuffixlist import PublicSuffixList

from .resolver import Answer, Resolver

__all__ = [
    "DMARC_STATUSES",
    "DmarcRecord",
    "DmarcResult",
    "lookup_dmarc",
    "organisational_domain",
    "parse_dmarc",
]

log = logging.getLogger(__name__)

#: ``found``: one usable record; ``none``: no record at the domain or its
#: organisational domain; ``invalid``: records that receivers cannot use as
#: published; ``dns-error``: a lookup failed, nothing is known.
DMARC_STATUSES = ("found", "none", "invalid", "dns-error")

POLICIES = ("none", "quarantine", "reject")

# RFC 7489 6.3: the tags of the record and their defaults.
_DEFAULTS = {
    "adkim": "r", "aspf": "r", "fo": "0", "pct": "100", "rf": "afrf",
    "ri": "86400",
}
_KNOWN_TAGS = frozenset(
    {"v", "p", "sp", "pct", "rua", "ruf", "adkim", "aspf", "fo", "rf", "ri"}
)
# Tags of DMARCbis (the draft that follows RFC 7489), not of RFC 7489.
_DMARCBIS_TAGS = frozenset({"np", "psd", "t"})

# RFC 7489 6.4: "v" is case-insensitive, "DMARC1" is not (%x44.4d...).
_VERSION = re.compile(r"[vV][ \t]*=[ \t]*DMARC1[ \t]*(;|$)")
_SIZE_LIMIT = re.compile(r"![0-9]+[kmgt]?$", re.IGNORECASE)

# RFC 6.6.4: when a message is not sampled by pct, the next milder policy.
_MILDER = {"reject": "quarantine", "quarantine": "normal delivery",
           "none": "normal delivery"}


@dataclass(frozen=True)
class DmarcRecord:
    """The tags of one DMARC record, as receivers read them.

    Attributes
    ----------
    text
        The record as published.
    tags
        Every ``tag=value`` pair in order, names in lower case.
    policy, subdomain_policy
        ``p`` and ``sp``, or ``None`` when absent or not a valid value.
    pct
        The percentage of failing mail the policy applies to (default 100).
    rua, ruf
        The aggregate and failure report URIs, as published.
    adkim, aspf
        DKIM and SPF alignment mode: ``r`` (relaxed) or ``s`` (strict).
    fo, ri
        Failure reporting options and the aggregate report interval.
    problems
        What is wrong with the record, one sentence each.
    """

    text: str
    tags: tuple[tuple[str, str], ...] = ()
    policy: str | None = None
    subdomain_policy: str | None = None
    pct: int = 100
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    adkim: str = "r"
    aspf: str = "r"
    fo: str = "0"
    ri: int = 86400
    problems: tuple[str, ...] = ()

    @property
    def usable(self) -> bool:
        """True when receivers can apply the record as published.

        RFC 7489 6.6.3 step 5: a record without a valid ``p``, or with an
        invalid ``sp``, is not applied as published.
        """
        sp_bad = self.tag("sp") is not None and self.subdomain_policy is None
        return self.policy is not None and not sp_bad

    def tag(self, name: str) -> str | None:
        """Return the value of the first ``name`` tag, or ``None``."""
        for key, value in self.tags:
            if key == name:
                return value
        return None


@dataclass(frozen=True)
class DmarcResult:
    """The DMARC policy of one domain.

    Attributes
    ----------
    domain
        The domain asked about.
    status
        One of :data:`DMARC_STATUSES`.
    record
        The DMARC record used (or the one that is invalid), or ``None``.
    records
        Every DMARC record at the name where the search stopped.
    found_at
        The domain whose ``_dmarc`` name holds the record: ``domain``
        itself or its organisational domain.
    org_domain
        The organisational domain (RFC 7489 3.2), or ``None`` for a
        public suffix.
    policy, subdomain_policy
        The record's ``p`` and ``sp`` values.
    applied_policy
        What receivers apply to this domain's failing mail: ``p`` when the
        record is the domain's own, ``sp`` (else ``p``) when it was found at
        the organisational domain of a subdomain; ``none`` for an invalid
        record with a valid ``rua`` (RFC 7489 6.6.3 step 5); ``None`` when
        no DMARC applies.
    pct, rua, ruf, adkim, aspf
        The record's other tags (defaults filled in).
    problems
        Syntax problems, multiple records, lookups that failed.
    meaning
        One or two sentences on what happens to mail that fails DMARC.
    queried
        The ``_dmarc`` names asked, in order.
    """

    domain: str
    status: str
    record: str | None = None
    records: tuple[str, ...] = ()
    found_at: str | None = None
    org_domain: str | None = None
    policy: str | None = None
    subdomain_policy: str | None = None
    applied_policy: str | None = None
    pct: int | None = None
    rua: tuple[str, ...] = ()
    ruf: tuple[str, ...] = ()
    adkim: str | None = None
    aspf: str | None = None
    problems: tuple[str, ...] = ()
    meaning: str = ""
    queried: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form of the result."""
        return {
            "domain": self.domain,
            "status": self.status,
            "record": self.record,
            "records": list(self.records),
            "found_at": self.found_at,
            "org_domain": self.org_domain,
            "policy": self.policy,
            "subdomain_policy": self.subdomain_policy,
            "applied_policy": self.applied_policy,
            "pct": self.pct,
            "rua": list(self.rua),
            "ruf": list(self.ruf),
            "adkim": self.adkim,
            "aspf": self.aspf,
            "problems": list(self.problems),
            "meaning": self.meaning,
            "queried": list(self.queried),
        }


@functools.cache
def _suffix_list() -> PublicSuffixList:
    # The list bundled with the package; never fetched from the network.
    return PublicSuffixList()


def organisational_domain(domain: str) -> str | None:
    """Return the organisational domain of ``domain`` (RFC 7489 3.2).

    The public suffix plus one label, from the Public Suffix List bundled in
    ``publicsuffixlist``; an unknown top-level label counts as a suffix, so
    ``mail.example.test`` gives ``example.test``. ``None`` for a public
    suffix itself.
    """
    name = domain.strip().rstrip(".").lower()
    found = _suffix_list().privatesuffix(name)
    return str(found) if found else None


def is_dmarc_record(text: str) -> bool:
    """Tell whether ``text`` starts with ``v=DMARC1`` (RFC 7489 6.6.3)."""
    return _VERSION.match(text.lstrip()) is not None


def parse_dmarc(text: str) -> DmarcRecord:
    """Read the tags of one DMARC record (RFC 7489 6.3, 6.4).

    Never raises: every problem becomes a sentence in ``problems``, and a
    value that cannot be read falls back to the tag's default, as RFC 7489
    6.3 asks of receivers.
    """
    problems: list[str] = []
    tags = _split_tags(text, problems)
    values = dict(reversed(tags))  # the first occurrence of a tag wins

    _check_tag_names(tags, problems)
    policy = _policy(values, "p", problems)
    subdomain_policy = _policy(values, "sp", problems)
    rua = _uris(values, "rua", problems)
    ruf = _uris(values, "ruf", problems)

    return DmarcRecord(
        text=text,
        tags=tuple(tags),
        policy=policy,
        subdomain_policy=subdomain_policy,
        pct=_pct(values, problems),
        rua=rua,
        ruf=ruf,
        adkim=_alignment(values, "adkim", problems),
        aspf=_alignment(values, "aspf", problems),
        fo=_fo(values, problems),
        ri=_ri(values, problems),
        problems=tuple(problems),
    )


def _split_tags(text: str, problems: list[str]) -> list[tuple[str, str]]:
    # RFC 7489 6.4: tag-value pairs separated by ";", spaces allowed around.
    tags: list[tuple[str, str]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            problems.append(f"'{part}' is not a tag=value pair")
            continue
        tags.append((name.strip().lower(), value.strip()))

    # RFC 7489 6.4: v=DMARC1 must be the first tag.
    if not tags or tags[0] != ("v", "DMARC1"):
        problems.append("the record does not start with v=DMARC1")
    return tags


def _check_tag_names(
    tags: list[tuple[str, str]], problems: list[str]
) -> None:
    seen: set[str] = set()
    for name, _ in tags:
        if name in seen:
            problems.append(f"tag {name} appears more than once; receivers "
                            "may read either value")
        seen.add(name)

        # RFC 7489 6.3: unknown tags are ignored by receivers.
        if name in _DMARCBIS_TAGS:
            problems.append(f"tag {name} comes from DMARCbis, not RFC 7489; "
                            "older receivers ignore it")
        elif name not in _KNOWN_TAGS:
            problems.append(f"unknown tag {name} (receivers ignore it)")


def _policy(
    values: dict[str, str], name: str, problems: list[str]
) -> str | None:
    value = values.get(name)
    if value is None:
        if name == "p":
            problems.append("the required p tag is missing")
        return None
    if value.lower() not in POLICIES:
        problems.append(f"{name}={value} is not none, quarantine or reject")
        return None
    return value.lower()


def _pct(values: dict[str, str], problems: list[str]) -> int:
    value = values.get("pct", _DEFAULTS["pct"])
    if value.isascii() and value.isdigit() and int(value) <= 100:
        return int(value)
    problems.append(f"pct={value} is not a whole number from 0 to 100; "
                    "receivers use the default, 100")
    return 100


def _alignment(values: dict[str, str], name: str, problems: list[str]) -> str:
    value = values.get(name, _DEFAULTS[name])
    if value.lower() in ("r", "s"):
        return value.lower()
    problems.append(f"{name}={value} is not r (relaxed) or s (strict); "
                    "receivers use r")
    return "r"


def _fo(values: dict[str, str], problems: list[str]) -> str:
    value = values.get("fo", _DEFAULTS["fo"])
    options = [o.strip() for o in value.split(":")]
    if all(o in ("0", "1", "d", "s") for o in options):
        return ":".join(options)
    problems.append(f"fo={value} is not a colon-separated list of 0, 1, d, s")
    return _DEFAULTS["fo"]


def _ri(values: dict[str, str], problems: list[str]) -> int:
    value = values.get("ri", _DEFAULTS["ri"])
    if value.isascii() and value.isdigit():
        return int(value)
    problems.append(f"ri={value} is not a number of seconds")
    return int(_DEFAULTS["ri"])


def _uris(
    values: dict[str, str], name: str, problems: list[str]
) -> tuple[str, ...]:
    value = values.get(name)
    if value is None:
        return ()
    uris = tuple(u.strip() for u in value.split(",") if u.strip())

    # RFC 7489 6.2: every receiver supports mailto:; other schemes may not
    # be understood. A "!size" suffix limits the report size.
    for uri in uris:
        address = _SIZE_LIMIT.sub("", uri)
        if not address.lower().startswith("mailto:"):
            problems.append(f"{name} URI {uri} is not a mailto: URI")
        elif "@" not in address:
            problems.append(f"{name} URI {uri} has no e-mail address")
    if not uris:
        problems.append(f"{name} is empty")
    return uris


def _has_valid_rua(record: DmarcRecord) -> bool:
    return any(
        _SIZE_LIMIT.sub("", u).lower().startswith("mailto:") and "@" in u
        for u in record.rua
    )


async def _dmarc_at(
    domain: str, resolver: Resolver
) -> tuple[Answer, list[str], list[str]]:
    """Ask TXT at ``_dmarc.<domain>``.

    Returns the answer, its DMARC records, and the TXT records there that
    look like failed attempts at one.
    """
    answer = await resolver.query(f"_dmarc.{domain}", "TXT")
    # An RRset has no order: sort, so every server gives the same result.
    texts = sorted(answer.records)
    records = [r for r in texts if is_dmarc_record(r)]
    near = [r for r in texts if not is_dmarc_record(r) and "dmarc" in r.lower()]
    return answer, records, near


async def lookup_dmarc(domain: str, resolver: Resolver) -> DmarcResult:
    """Find and read the DMARC policy that applies to ``domain``.

    Parameters
    ----------
    domain
        A normalised domain name.
    resolver
        The run's resolver; every lookup goes through it.

    Returns
    -------
    DmarcResult
        Never raises for DNS trouble: that is the ``dns-error`` status.
    """
    domain = domain.strip().rstrip(".").lower()
    org = organisational_domain(domain)
    problems: list[str] = []
    queried: list[str] = []

    # RFC 7489 6.6.3 steps 1-2: the domain's own _dmarc name.
    answer, records, near = await _dmarc_at(domain, resolver)
    queried.append(answer.name)
    if answer.temporary:
        return _dns_error(domain, org, answer, queried)
    _note_near_misses(answer.name, near, problems)
    found_at = domain

    # RFC 7489 6.6.3 step 3: none there, so the organisational domain's.
    if not records and org and org != domain:
        answer, records, near = await _dmarc_at(org, resolver)
        queried.append(answer.name)
        if answer.temporary:
            return _dns_error(domain, org, answer, queried, problems)
        _note_near_misses(answer.name, near, problems)
        found_at = org

    base = {"domain": domain, "org_domain": org, "queried": tuple(queried)}
    if not records:
        log.debug("DMARC %s: no record", domain)
        return DmarcResult(status="none", problems=tuple(problems),
                           meaning=_meaning(None, None, 100), **base)
    return _judge(records, found_at, problems, base)


def _judge(
    records: list[str], found_at: str, problems: list[str],
    base: dict[str, Any],
) -> DmarcResult:
    # RFC 7489 6.6.3 step 4: several records mean no DMARC at all.
    if len(records) > 1:
        problems.append(
            f"{len(records)} DMARC records at _dmarc.{found_at}: receivers "
            "apply no DMARC policy until only one remains (RFC 7489 6.6.3)"
        )
        return DmarcResult(status="invalid", records=tuple(records),
                           found_at=found_at, problems=tuple(problems),
                           meaning=_meaning(None, None, 100), **base)

    parsed = parse_dmarc(records[0])
    problems.extend(parsed.problems)
    applied = _applied(parsed, found_at, base["domain"])
    if not parsed.usable and applied == "none":
        problems.append("receivers treat the record as p=none because its "
                        "rua is valid (RFC 7489 6.6.3 step 5)")

    return DmarcResult(
        status="found" if parsed.usable else "invalid",
        record=parsed.text, records=tuple(records), found_at=found_at,
        policy=parsed.policy, subdomain_policy=parsed.subdomain_policy,
        applied_policy=applied, pct=parsed.pct, rua=parsed.rua,
        ruf=parsed.ruf, adkim=parsed.adkim, aspf=parsed.aspf,
        problems=tuple(problems),
        meaning=_meaning(applied, found_at, parsed.pct),
        **base,
    )


def _applied(record: DmarcRecord, found_at: str, domain: str) -> str | None:
    # RFC 7489 6.6.3 step 5: an unusable record counts as p=none when it
    # names a valid rua, and as no DMARC otherwise.
    if not record.usable:
        return "none" if _has_valid_rua(record) else None

    # RFC 7489 6.3: sp applies to subdomains, under the org domain's record.
    if found_at != domain and record.subdomain_policy is not None:
        return record.subdomain_policy
    return record.policy


def _note_near_misses(name: str, near: list[str], problems: list[str]) -> None:
    # RFC 7489 6.6.3 step 2: records not starting with v=DMARC1 are dropped.
    for text in near:
        problems.append(
            f"TXT at {name} is ignored because it does not start with "
            f"v=DMARC1 (exactly, upper-case DMARC1): {text!r}"
        )


def _dns_error(
    domain: str, org: str | None, answer: Answer, queried: list[str],
    problems: list[str] | None = None,
) -> DmarcResult:
    why = f"TXT {answer.name}: {answer.rcode}"
    if answer.detail:
        why += f" ({answer.detail})"
    return DmarcResult(
        domain=domain, status="dns-error", org_domain=org,
        problems=tuple([*(problems or []), why]),
        meaning="The DMARC policy is unknown: a DNS lookup failed; "
                "run the audit again later.",
        queried=tuple(queried),
    )


def _meaning(applied: str | None, found_at: str | None, pct: int) -> str:
    if applied is None:
        return ("No DMARC policy applies: receivers judge mail that fails "
                "SPF and DKIM by their own rules.")
    where = f" (record of {found_at})" if found_at else ""
    effect = {
        "none": "is delivered as usual; the policy only asks for reports",
        "quarantine": "goes to spam or quarantine",
        "reject": "is refused by receivers",
    }[applied]
    text = (f"Mail whose From domain fails DMARC (neither SPF nor DKIM "
            f"passes aligned with it) {effect}{where}.")
    if pct < 100 and applied != "none":
        text += (f" pct={pct}: that holds for {pct}% of it, the rest gets "
                 f"{_MILDER[applied]} (RFC 7489 6.6.4).")
    return text
