"""MX: who receives a domain's mail, and where its allowlist lives.

CXone system e-mail (password resets, chat transcripts, reports) reaches a
customer's users through the mail service named by the domain's MX records.
:func:`lookup_mx` lists those hosts, recognises common services from their
names, and gives a hint on where that service's administrators allowlist the
CXone region's allowlist IPs.

Recognition looks only at host names: a service is named when the MX host
ends with one of its published suffixes. A gateway in front of another
service (Mimecast in front of Microsoft 365, say) is what the MX shows, and
it is where the allowlist belongs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .resolver import Answer, Resolver

__all__ = [
    "MX_STATUSES",
    "MailService",
    "MxResult",
    "SERVICES",
    "lookup_mx",
    "parse_mx",
    "recognise_service",
]

log = logging.getLogger(__name__)

#: ``found``: MX hosts listed; ``none``: no MX records (or no such domain);
#: ``null-mx``: the domain says it accepts no mail (RFC 7505);
#: ``dns-error``: the lookup failed, nothing is known.
MX_STATUSES = ("found", "none", "null-mx", "dns-error")


@dataclass(frozen=True)
class MailService:
    """A mail service recognised from its MX host names.

    Attributes
    ----------
    key
        A short stable identifier, such as ``"microsoft365"``.
    name
        The name shown to users.
    suffixes
        Host-name suffixes of the service's inbound MX hosts.
    allowlist_hint
        Where the service's administrators allowlist sending IPs.
    first_label
        When set, the host's first label must also be this one (for
        services that share a suffix with unrelated hosts).
    """

    key: str
    name: str
    suffixes: tuple[str, ...]
    allowlist_hint: str
    first_label: str | None = None

    def matches(self, host: str) -> bool:
        """Tell whether ``host`` is one of the service's MX host names."""
        if self.first_label and host.split(".")[0] != self.first_label:
            return False
        return any(host == s or host.endswith("." + s) for s in self.suffixes)


SERVICES: tuple[MailService, ...] = (
    MailService(
        "microsoft365", "Microsoft 365 (Exchange Online Protection)",
        ("mail.protection.outlook.com", "mx.microsoft",
         "mail.protection.office365.us",
         "mail.protection.partner.outlook.cn"),
        "In the Microsoft Defender portal, add the IPs to the IP Allow List "
        "of the default connection filter policy (Email & collaboration > "
        "Policies & rules > Threat policies > Anti-spam), or run "
        "Set-HostedConnectionFilterPolicy with -IPAllowList in Exchange "
        "Online PowerShell.",
    ),
    MailService(
        "google", "Google Workspace (Gmail)",
        ("google.com", "googlemail.com"),
        "In the Google Admin console, go to Apps > Google Workspace > Gmail "
        "> Spam, phishing and malware and add the IPs to the Email "
        "allowlist. If mail passes another gateway before Gmail, list that "
        "gateway under Inbound gateway instead.",
    ),
    MailService(
        "mimecast", "Mimecast",
        ("mimecast.com", "mimecast.co.za", "mimecast-offshore.com"),
        "In the Mimecast Administration Console, add the IPs to a Permitted "
        "Senders policy (Gateway > Policies). If the messages carry one of "
        "your own domains in From, an Anti-Spoofing policy exception for "
        "these IPs is needed too.",
    ),
    MailService(
        "proofpoint", "Proofpoint",
        ("pphosted.com", "ppe-hosted.com"),
        "In Proofpoint, add the IPs to the Safe Sender list or a "
        "connection-level allow list (Organizational Safe List in "
        "Proofpoint Protection Server, Sender Lists in Proofpoint "
        "Essentials).",
    ),
    MailService(
        "barracuda", "Barracuda Email Protection",
        ("barracudanetworks.com", "barracuda.com"),
        "In Barracuda Email Gateway Defense, go to Inbound Settings > IP "
        "Address Policies and add each IP with the policy Exempt.",
    ),
    MailService(
        "cisco", "Cisco Secure Email (IronPort)",
        ("iphmx.com",),
        "In Cisco Secure Email, add the IPs to the ALLOWED_LIST sender group "
        "(called WHITELIST in older releases) of the inbound listener's "
        "Host Access Table (Mail Policies > HAT Overview), then commit.",
    ),
    MailService(
        "trendmicro", "Trend Micro Email Security",
        ("trendmicro.com", "trendmicro.eu", "trendmicro.co.jp",
         "tmes.trendmicro.com"),
        "In Trend Micro Email Security, add the IPs to the approved IP "
        "addresses of the inbound connection filtering (IP reputation) "
        "settings.",
    ),
    MailService(
        "sophos", "Sophos Email",
        ("sophos.com",),
        "In Sophos Central, add the IPs to the allowed senders of Email "
        "Security (the allow list accepts IP addresses), so reputation "
        "filtering lets them through.",
    ),
    MailService(
        "cloudflare", "Cloudflare Email Routing",
        ("mx.cloudflare.net",),
        "Cloudflare Email Routing only forwards mail and has no IP allow "
        "list: allowlist the IPs at the mailbox provider the routes forward "
        "to.",
    ),
    MailService(
        "zoho", "Zoho Mail",
        ("zoho.com", "zoho.eu", "zoho.in", "zoho.com.au", "zoho.jp",
         "zohomail.com", "zoho.com.cn", "zohomail.ca", "zoho.sa"),
        "In the Zoho Mail Admin Console, go to Spam Control and add the IPs "
        "to the allowlisted IP addresses.",
    ),
    MailService(
        "amazon", "Amazon WorkMail / SES inbound",
        ("amazonaws.com",),
        "Mail is received by Amazon SES (WorkMail uses it too): in the SES "
        "console, Email receiving > IP address filters, add an Allow filter "
        "for each IP in the receiving region.",
        first_label="inbound-smtp",
    ),
    MailService(
        "amazon-ses-mail-from", "Amazon SES custom MAIL FROM (bounces only)",
        ("amazonses.com",),
        "This name is an SES custom MAIL FROM domain: its MX only takes "
        "bounces and complaints for SES, so there is nothing to allowlist "
        "here; allowlist the IPs where the users' mailboxes are.",
        first_label="feedback-smtp",
    ),
)

_UNKNOWN_HINT = (
    "The MX hosts are not a service the kit recognises: ask whoever runs "
    "{host} to accept mail from the IPs without spam filtering (an IP allow "
    "list or a connection-level exemption)."
)
_NULL_HINT = (
    "The domain accepts no mail (null MX, RFC 7505), so there is nothing to "
    "allowlist; its users must receive CXone mail at another domain."
)
_NXDOMAIN_HINT = (
    "The domain does not exist in DNS, so it receives no mail: check the "
    "spelling, or allowlist the IPs for the domain its users really use."
)
_NONE_HINT = (
    "Without MX records mail goes to the domain's own address (RFC 5321 "
    "5.1): allowlist the IPs on the server at that address, if any."
)


@dataclass(frozen=True)
class MxResult:
    """The MX records of one domain and the service behind them.

    Attributes
    ----------
    domain
        The domain asked about.
    status
        One of :data:`MX_STATUSES`.
    hosts
        ``(preference, host)`` pairs, most preferred first.
    service
        The name of the service of the most preferred recognised host,
        ``"unknown"`` when none is recognised, ``None`` without MX hosts.
    service_key
        The :attr:`MailService.key` of ``service``, or ``None``.
    services
        Every distinct service among the hosts, in preference order.
    allowlist_hint
        One or two sentences on where to allowlist CXone's IPs.
    problems
        What is wrong with the MX records or the lookup.
    """

    domain: str
    status: str
    hosts: tuple[tuple[int, str], ...] = ()
    service: str | None = None
    service_key: str | None = None
    services: tuple[str, ...] = ()
    allowlist_hint: str = ""
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form of the result."""
        return {
            "domain": self.domain,
            "status": self.status,
            "hosts": [[p, h] for p, h in self.hosts],
            "service": self.service,
            "service_key": self.service_key,
            "services": list(self.services),
            "allowlist_hint": self.allowlist_hint,
            "problems": list(self.problems),
        }


def recognise_service(host: str) -> MailService | None:
    """Find the known mail service an MX host name belongs to, if any."""
    host = host.strip().rstrip(".").lower()
    for service in SERVICES:
        if service.matches(host):
            return service
    return None


def parse_mx(records: tuple[str, ...] | list[str]) -> list[tuple[int, str]]:
    """``"10 mx.example.com"`` texts as sorted ``(preference, host)`` pairs.

    RFC 5321 5.1: lower preference values are tried first; equal values
    keep no order, so ties are sorted by name for a stable listing.
    """
    hosts: list[tuple[int, str]] = []
    for text in records:
        preference, _, host = text.strip().partition(" ")
        host = host.strip().rstrip(".").lower() or "."
        hosts.append((int(preference), host))
    return sorted(hosts)


async def lookup_mx(domain: str, resolver: Resolver) -> MxResult:
    """List ``domain``'s MX hosts and recognise the service behind them.

    Parameters
    ----------
    domain
        A normalised domain name.
    resolver
        The run's resolver; the one lookup goes through it.

    Returns
    -------
    MxResult
        Never raises for DNS trouble: that is the ``dns-error`` status.
    """
    domain = domain.strip().rstrip(".").lower()
    answer = await resolver.query(domain, "MX")

    if answer.temporary:
        return _dns_error(domain, answer)
    hosts = tuple(parse_mx(answer.records))

    if not hosts:
        if answer.rcode == "NXDOMAIN":
            return MxResult(domain, "none",
                            problems=("the domain does not exist (NXDOMAIN)",),
                            allowlist_hint=_NXDOMAIN_HINT)
        return MxResult(domain, "none", problems=("no MX records",),
                        allowlist_hint=_NONE_HINT)

    # RFC 7505 3: a null MX is one record, preference 0, exchange ".".
    if any(host == "." for _, host in hosts):
        return _null_mx(domain, hosts)
    return _found(domain, hosts)


def _found(domain: str, hosts: tuple[tuple[int, str], ...]) -> MxResult:
    services: list[MailService] = []
    for _, host in hosts:
        service = recognise_service(host)
        if service is not None and service not in services:
            services.append(service)

    problems = _origin_appended(domain, hosts)
    if len(services) > 1:
        problems.append(
            "the MX hosts belong to several services ("
            + ", ".join(s.name for s in services)
            + "): allowlist the IPs at each"
        )

    primary = services[0] if services else None
    log.debug("MX %s: %s", domain, primary.name if primary else "unknown")
    return MxResult(
        domain, "found", hosts=hosts,
        service=primary.name if primary else "unknown",
        service_key=primary.key if primary else None,
        services=tuple(s.name for s in services),
        allowlist_hint=(primary.allowlist_hint if primary
                        else _UNKNOWN_HINT.format(host=hosts[0][1])),
        problems=tuple(problems),
    )


def _origin_appended(
    domain: str, hosts: tuple[tuple[int, str], ...]
) -> list[str]:
    """Hosts like ``aspmx.l.google.com.example.com``.

    RFC 1035 5.1: in a master file a name without a final dot is relative
    to the origin, so a forgotten dot appends the domain to the host name.
    """
    problems: list[str] = []
    for _, host in hosts:
        intended = host.removesuffix("." + domain)
        if intended != host and recognise_service(intended) is not None:
            problems.append(
                f"MX host {host} looks like {intended} with {domain} "
                f"appended: the zone probably lacks the final dot after "
                f"{intended}, and mail cannot reach it"
            )
    return problems


def _null_mx(domain: str, hosts: tuple[tuple[int, str], ...]) -> MxResult:
    problems: list[str] = []
    if len(hosts) > 1:
        problems.append("a null MX (\"0 .\") must be the only MX record "
                        "(RFC 7505 3); senders may try the other hosts")
    if any(pref != 0 for pref, host in hosts if host == "."):
        problems.append("a null MX must have preference 0 (RFC 7505 3)")
    return MxResult(domain, "null-mx", hosts=hosts,
                    allowlist_hint=_NULL_HINT, problems=tuple(problems))


def _dns_error(domain: str, answer: Answer) -> MxResult:
    why = f"MX {answer.name}: {answer.rcode}"
    if answer.detail:
        why += f" ({answer.detail})"
    return MxResult(domain, "dns-error", problems=(why,),
                    allowlist_hint="The mail service is unknown: the MX "
                    "lookup failed; run the audit again later.")
