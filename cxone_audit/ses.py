"""Amazon SES: whether a domain is verified, by the user's word or DNS.

CXone sends ACD channel e-mail for a domain through Amazon SES when the
domain is verified there, and through NICE's own mail system otherwise. Only
in the second case must the domain's SPF record authorise the region's SPF
IPs.

DNS can show signs of verification, not prove it:

* legacy verification leaves a TXT record at ``_amazonses.<domain>``, one
  token per AWS account and region;
* older set-ups put the token at the domain itself, as ``amazonses:<token>``;
* a custom MAIL FROM domain has the MX ``feedback-smtp.<region>.amazonses.com``
  and exists only under a verified identity;
* Easy DKIM, today's usual way, publishes three CNAMEs at
  ``<token>._domainkey.<domain>`` whose tokens are random, so they cannot be
  listed from DNS.

That is why what the user states (a spreadsheet's ``ses_verified`` cell)
wins over the DNS signs; both are recorded.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from dataclasses import dataclass
from typing import Any

from .resolver import Answer, Resolver

__all__ = ["SES_SOURCES", "SesResult", "lookup_ses", "read_stated"]

log = logging.getLogger(__name__)

#: Where ``SesResult.verified`` comes from.
SES_SOURCES = ("stated", "dns", "unknown")

_YES = frozenset({"yes", "y", "sim", "s", "true", "verdadeiro", "1",
                  "verified", "verificado", "x"})
_NO = frozenset({"no", "n", "nao", "false", "falso", "0", "not verified",
                 "nao verificado"})
_UNKNOWN = frozenset({"", "unknown", "?", "-", "desconhecido", "n/a", "na",
                      "nan", "none"})

_DKIM_NOTE = (
    "Easy DKIM CNAMEs (<token>._domainkey.{domain}) cannot be listed "
    "without their random tokens, so DNS alone cannot rule SES out."
)

_EXPLAIN_VERIFIED = (
    "The domain is verified in Amazon SES, so CXone sends its ACD e-mail "
    "through SES. SES uses an envelope sender under amazonses.com by "
    "default, so receivers check amazonses.com's SPF, not {domain}'s: the "
    "CXone SPF IP results are informational. DMARC then passes only "
    "through DKIM aligned with {domain} (Easy DKIM) or a custom MAIL FROM "
    "subdomain of {domain}."
)
_EXPLAIN_NOT_VERIFIED = (
    "The domain is not verified in Amazon SES, so CXone sends its ACD "
    "e-mail through NICE's own mail system and {domain}'s SPF record must "
    "authorise the region's CXone SPF IPs."
)
_EXPLAIN_UNKNOWN = (
    "Whether the domain is verified in Amazon SES is unknown. Unless it "
    "is, CXone sends through NICE's own mail system and {domain}'s SPF "
    "record must authorise the region's CXone SPF IPs. If SES is used, "
    "say so in an ses_verified column (yes/no)."
)


@dataclass(frozen=True)
class SesResult:
    """Whether a domain is verified in Amazon SES, and how we know.

    Attributes
    ----------
    domain
        The domain asked about.
    verified
        ``True``, ``False`` or ``None`` (unknown).
    source
        ``"stated"`` (the user's cell decided), ``"dns"`` (a DNS sign) or
        ``"unknown"``.
    stated
        The user's cell as given, or ``None``.
    dns_signs
        ``True`` when DNS shows a verification record, ``False`` when it
        shows none, ``None`` when a lookup failed.
    tokens
        The verification tokens found in DNS.
    evidence
        What was looked at and found, one sentence each.
    explanation
        What the answer means for the SPF audit.
    """

    domain: str
    verified: bool | None
    source: str
    stated: str | None = None
    dns_signs: bool | None = None
    tokens: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    explanation: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form of the result."""
        return {
            "domain": self.domain,
            "verified": self.verified,
            "source": self.source,
            "stated": self.stated,
            "dns_signs": self.dns_signs,
            "tokens": list(self.tokens),
            "evidence": list(self.evidence),
            "explanation": self.explanation,
        }


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().replace(".", " ").split())


def read_stated(value: object) -> tuple[bool | None, str]:
    """Read a ``ses_verified`` cell: yes/no/unknown, in English or Portuguese.

    Accepts ``yes``/``no``, ``sim``/``não``, ``true``/``false``, ``1``/``0``
    (and spreadsheet booleans), in any case, with or without accents.

    Returns
    -------
    tuple
        The value (``None`` for unknown or empty) and, when the cell could
        not be read, a sentence saying so (otherwise ``""``).
    """
    if value is None:
        return None, ""
    if isinstance(value, bool):
        return value, ""
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value), ""

    text = str(value).strip()
    # A spreadsheet column of 1/0 with blanks comes through as 1.0/0.0.
    if text in ("1.0", "0.0"):
        return text == "1.0", ""

    folded = _fold(text)
    if folded in _YES:
        return True, ""
    if folded in _NO:
        return False, ""
    if folded in _UNKNOWN:
        return None, ""
    return None, (f"ses_verified value {str(value)!r} is not yes/no "
                  "(sim/não, true/false, 1/0): treated as unknown")


async def _signs(
    domain: str, resolver: Resolver
) -> tuple[bool | None, list[str], list[str]]:
    """Look for SES verification records: (found, tokens, evidence)."""
    evidence: list[str] = []
    tokens: list[str] = []
    failed = False

    # Legacy verification at _amazonses.<domain>, the older form at the
    # apex, and an SES custom MAIL FROM MX. The questions go out at once.
    legacy, apex, mx = await asyncio.gather(
        resolver.query(f"_amazonses.{domain}", "TXT"),
        resolver.query(domain, "TXT"),
        resolver.query(domain, "MX"),
    )
    if legacy.temporary:
        failed = True
        evidence.append(_failure(legacy))
    elif legacy.records:
        tokens.extend(sorted(legacy.records))
        evidence.append(
            f"TXT {legacy.name} holds {len(legacy.records)} SES "
            "verification token(s) (one per AWS account and region)"
        )
    else:
        evidence.append(f"no TXT at {legacy.name}")

    if apex.temporary:
        failed = True
        evidence.append(_failure(apex))
    else:
        found = sorted(r for r in apex.records
                       if r.strip().lower().startswith("amazonses:"))
        tokens.extend(r.strip().split(":", 1)[1].strip() for r in found)
        if found:
            evidence.append(f"TXT {apex.name} holds an amazonses: "
                            "verification record")

    mail_from = _mail_from_sign(mx)
    if mx.temporary:
        failed = True
        evidence.append(_failure(mx))
    elif mail_from:
        evidence.append(mail_from)

    if tokens or mail_from:
        return True, tokens, evidence
    return (None if failed else False), tokens, evidence


def _mail_from_sign(mx: Answer) -> str:
    # A custom MAIL FROM domain has one MX feedback-smtp.<region>.amazonses.com
    # and SES accepts it only under a verified identity (its parent domain).
    for record in mx.records:
        host = record.partition(" ")[2].rstrip(".").lower()
        labels = host.split(".")
        if (len(labels) == 4 and labels[0] == "feedback-smtp"
                and host.endswith(".amazonses.com")):
            return (f"MX {mx.name} is {host}: an SES custom MAIL FROM "
                    f"domain (AWS region {labels[1]}), set up under a "
                    "verified SES identity")
    return ""


def _failure(answer: Answer) -> str:
    why = f"{answer.rtype} {answer.name}: {answer.rcode}"
    return why + (f" ({answer.detail})" if answer.detail else "")


async def lookup_ses(
    domain: str, resolver: Resolver, stated: str | None = None
) -> SesResult:
    """Decide whether ``domain`` is verified in Amazon SES.

    Parameters
    ----------
    domain
        A normalised domain name.
    resolver
        The run's resolver; every lookup goes through it.
    stated
        The user's ``ses_verified`` cell, if any: it wins over DNS signs.

    Returns
    -------
    SesResult
        Never raises for DNS trouble: a failed lookup is evidence.
    """
    domain = domain.strip().rstrip(".").lower()
    said, unreadable = read_stated(stated)
    signs, tokens, evidence = await _signs(domain, resolver)
    evidence.append(_DKIM_NOTE.format(domain=domain))
    if unreadable:
        evidence.append(unreadable)

    if said is not None:
        verified, source = said, "stated"
        evidence.insert(0, f"ses_verified stated as {stated!r}")
        if said is False and signs:
            evidence.append("DNS shows SES verification records although "
                            "the domain is stated as not verified")
    elif signs:
        verified, source = True, "dns"
    else:
        verified, source = None, "unknown"

    log.debug("SES %s: %s (%s)", domain, verified, source)
    return SesResult(
        domain=domain, verified=verified, source=source,
        stated=None if stated is None else str(stated),
        dns_signs=signs, tokens=tuple(tokens), evidence=tuple(evidence),
        explanation=_explain(verified, source, domain),
    )


def _explain(verified: bool | None, source: str, domain: str) -> str:
    if verified is None:
        return _EXPLAIN_UNKNOWN.format(domain=domain)
    if not verified:
        return _EXPLAIN_NOT_VERIFIED.format(domain=domain)
    text = _EXPLAIN_VERIFIED.format(domain=domain)
    if source == "dns":
        text += (" This rests on DNS signs, which show a verification in "
                 "some AWS account, not necessarily CXone's: state "
                 "ses_verified to be sure.")
    return text
